/*
 * Firmware boot (no -kernel): the BIOS image (SeaBIOS by default) mapped as a
 * read-only KVM slot ending at 4 GiB, its last 128 KiB copied into RAM at
 * 0xe0000 (the "isa-bios" alias the reset vector runs from once shadowed),
 * and the fw_cfg entries and CMOS bytes SeaBIOS reads to learn the machine.
 */
#ifndef KESTREL_VMM_FIRMWARE_H
#define KESTREL_VMM_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;

#define FIRMWARE_MAX_SIZE (16u << 20)
#define FIRMWARE_ISA_BIOS_SIZE 0x20000u	/* 0xe0000-0xfffff */
#define FIRMWARE_ROM_SLOT 10		/* KVM memory slot, clear of RAM's */

/* QEMU's option ROM for BIOS-mediated -kernel boot (Debian's qemu-system-data). */
#define FIRMWARE_LINUXBOOT_ROM_NAME "linuxboot_dma.bin"
#define FIRMWARE_LINUXBOOT_ROM "/usr/share/qemu/" FIRMWARE_LINUXBOOT_ROM_NAME

/*
 * The BIOS image can be mapped: a regular file of whole 64 KiB blocks, at
 * most FIRMWARE_MAX_SIZE.  Checked from its size alone, before a VM exists.
 */
int firmware_check_bios(const char *path);

/* Loads -bios (or the default) and fills fw_cfg and CMOS; logs and returns -1 on failure. */
int firmware_setup(struct vm *vm);
void firmware_destroy(struct vm *vm);

/* The same without a VM: the kernel, initrd size and -append as QEMU checks them. */
int firmware_linux_check(const struct vm_config *cfg);

/* -kernel with -bios: the kernel, initrd and command line as fw_cfg items (firmware_linux.c). */
int firmware_linux_setup(struct vm *vm);

/* Writes the bootorder file contents (bootindex= paths) into buf; returns its length. */
size_t firmware_bootorder(const struct vm *vm, char *buf, size_t room);

/* CMOS boot-device nibbles for a -boot order string ("cad"); -1 on a bad letter. */
int firmware_cmos_boot_order(const char *order, uint8_t *flag2, uint8_t *flag1);

#endif
