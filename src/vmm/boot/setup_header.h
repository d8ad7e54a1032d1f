/*
 * The bzImage setup header (Documentation/x86/boot.rst, "The Real-Mode
 * Kernel Header"): its field offsets (little-endian: util/bytes.h), shared by
 * the direct loader (bzimage.c) and the firmware path (linuxboot.c).
 */
#ifndef KESTREL_VMM_BOOT_SETUP_HEADER_H
#define KESTREL_VMM_BOOT_SETUP_HEADER_H

#include "util/bytes.h"

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

#endif
