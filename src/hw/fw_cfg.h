/*
 * QEMU's firmware configuration device (docs/specs/fw_cfg.rst): a selector
 * port, a byte-wide data port and a DMA interface through which firmware
 * (SeaBIOS) reads the machine's description: RAM size, e820, CPU count, boot
 * order and named files such as the ACPI table loader script.
 */
#ifndef KESTREL_HW_FW_CFG_H
#define KESTREL_HW_FW_CFG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

#define FW_CFG_PORT_BASE 0x510		/* selector (16 bit) at 0x510, data at 0x511 */
#define FW_CFG_PORT_LEN 2
#define FW_CFG_DMA_PORT 0x514		/* 64-bit big-endian descriptor address */
#define FW_CFG_DMA_PORT_LEN 8

/* Selector keys (fw_cfg.rst "Selector Register"). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_UUID 0x02
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NOGRAPHIC 0x04
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MACHINE_ID 0x06
#define FW_CFG_KERNEL_ADDR 0x07
#define FW_CFG_KERNEL_SIZE 0x08
#define FW_CFG_KERNEL_CMDLINE 0x09
#define FW_CFG_INITRD_ADDR 0x0a
#define FW_CFG_INITRD_SIZE 0x0b
#define FW_CFG_BOOT_DEVICE 0x0c
#define FW_CFG_NUMA 0x0d
#define FW_CFG_BOOT_MENU 0x0e
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_KERNEL_ENTRY 0x10
#define FW_CFG_KERNEL_DATA 0x11
#define FW_CFG_INITRD_DATA 0x12
#define FW_CFG_CMDLINE_ADDR 0x13
#define FW_CFG_CMDLINE_SIZE 0x14
#define FW_CFG_CMDLINE_DATA 0x15
#define FW_CFG_SETUP_ADDR 0x16
#define FW_CFG_SETUP_SIZE 0x17
#define FW_CFG_SETUP_DATA 0x18
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_ARCH_LOCAL 0x8000
#define FW_CFG_IRQ0_OVERRIDE (FW_CFG_ARCH_LOCAL + 2)
#define FW_CFG_E820_TABLE (FW_CFG_ARCH_LOCAL + 3)

#define FW_CFG_ID_TRADITIONAL 0x1
#define FW_CFG_ID_DMA 0x2

/* FWCfgDmaAccess.control bits. */
#define FW_CFG_DMA_CTL_ERROR 0x01
#define FW_CFG_DMA_CTL_READ 0x02
#define FW_CFG_DMA_CTL_SKIP 0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE 0x10

#define FW_CFG_MAX_ITEMS 64
#define FW_CFG_FILE_NAME_MAX 56

struct fw_cfg_item {
	uint16_t key;
	uint8_t *data;		/* owned */
	uint32_t len;
	char name[FW_CFG_FILE_NAME_MAX];	/* files only */
};

struct fw_cfg {
	pthread_mutex_t lock;
	const struct guest_memory *mem;
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	unsigned nr_items;
	unsigned nr_files;
	int cur;		/* selected item, -1 for none */
	uint32_t offset;	/* read position in it */
	uint8_t dma_addr[8];	/* the big-endian address register */
};

int fw_cfg_init(struct fw_cfg *fw, const struct guest_memory *mem);
void fw_cfg_destroy(struct fw_cfg *fw);

/* Each copies data; -1 when out of room or memory. */
int fw_cfg_add_bytes(struct fw_cfg *fw, uint16_t key, const void *data, size_t len);
/* Takes data (malloc'd) without copying it, freed even on failure: for a kernel or initrd. */
int fw_cfg_add_owned(struct fw_cfg *fw, uint16_t key, void *data, size_t len);
int fw_cfg_add_u16(struct fw_cfg *fw, uint16_t key, uint16_t value);
int fw_cfg_add_u32(struct fw_cfg *fw, uint16_t key, uint32_t value);
int fw_cfg_add_u64(struct fw_cfg *fw, uint16_t key, uint64_t value);
int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len);

/* Port handlers: fw_cfg_io at FW_CFG_PORT_BASE, fw_cfg_dma_io at FW_CFG_DMA_PORT. */
void fw_cfg_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void fw_cfg_dma_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
