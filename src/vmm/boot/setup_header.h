/*
 * The bzImage setup header (Documentation/x86/boot.rst, "The Real-Mode
 * Kernel Header"): its field offsets and little-endian accessors, shared by
 * the direct loader (bzimage.c) and the firmware path (linuxboot.c).
 */
#ifndef KESTREL_VMM_BOOT_SETUP_HEADER_H
#define KESTREL_VMM_BOOT_SETUP_HEADER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HDR_SETUP_SECTS 0x1f1
#define HDR_VID_MODE 0x1fa
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP_END 0x201	/* the setup header ends at 0x202 + this byte */
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_CODE32_START 0x214
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_INIT_SIZE 0x260

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80

static inline uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static inline uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;
	memcpy(&v, p + off, 2);
	return v;
}

static inline void put32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }
static inline void put16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }

#endif
