/*
 * BIOS-mediated Linux boot (-kernel with an explicit -bios), as QEMU's pc
 * machine does it (hw/i386/x86.c x86_load_linux): the VMM does not load the
 * kernel; it patches the bzImage's setup header and hands the pieces to the
 * firmware over fw_cfg, where QEMU's linuxboot_dma.bin option ROM copies
 * them into place and enters the real-mode setup code like a boot loader.
 *
 * This file is the pure part: where each piece goes and what the header says.
 */
#ifndef KESTREL_VMM_BOOT_LINUXBOOT_H
#define KESTREL_VMM_BOOT_LINUXBOOT_H

#include <stddef.h>
#include <stdint.h>

/* QEMU's spots for a "high and recent" kernel (protocol 2.02 or later). */
#define LINUXBOOT_SETUP_ADDR 0x10000u		/* real-mode setup, its segment at 0x1000 */
#define LINUXBOOT_CMDLINE_ADDR 0x20000u
#define LINUXBOOT_KERNEL_ADDR 0x100000u		/* protected-mode code */
/* What QEMU's pc machine keeps free at the top of low RAM for the firmware's ACPI data. */
#define LINUXBOOT_ACPI_DATA_SIZE 0x28000u
#define LINUXBOOT_LOADER_TYPE 0xb0		/* boot.rst: 0xB is QEMU's loader ID */

/* Where the firmware's loader puts each piece, as the fw_cfg ADDR and SIZE items say. */
struct linuxboot_plan {
	uint32_t setup_addr;
	uint32_t setup_size;	/* the file's first bytes: boot sector and real-mode setup */
	uint32_t kernel_addr;
	uint32_t kernel_size;	/* the rest of the file */
	uint32_t cmdline_addr;
	uint32_t cmdline_size;	/* with the terminating NUL */
	uint32_t initrd_addr;	/* 0 without an initrd */
	uint32_t initrd_size;
};

/*
 * Checks a bzImage of len bytes against low_ram (guest RAM below 4 GiB) and
 * an initrd of initrd_size bytes (0 for none), and patches its setup header
 * in place: type_of_loader, CAN_USE_HEAP and heap_end_ptr, cmd_line_ptr,
 * ramdisk_image/ramdisk_size and, for a vga= argument, vid_mode.
 * Returns 0 and fills plan, or -1 with a message in err.
 */
int linuxboot_prepare(uint8_t *kernel, size_t len, const char *cmdline, uint64_t initrd_size,
		      uint64_t low_ram, struct linuxboot_plan *plan, char *err, size_t errlen);

#endif
