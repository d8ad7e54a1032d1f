/*
 * Loads and stores of fixed-width integers at any alignment, with the byte
 * order in the name (QEMU's ld*_p/st*_p spelling): ld_le32 reads a
 * little-endian 32-bit value, st_be16 writes a big-endian 16-bit one.  Guest
 * formats say which order they use (PCI config space, the Linux setup header
 * and ACPI are little-endian; SCSI/MMC and fw_cfg are big-endian), so no
 * caller depends on the host's order.
 */
#ifndef KESTREL_UTIL_BYTES_H
#define KESTREL_UTIL_BYTES_H

#include <stdint.h>

static inline uint16_t ld_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t ld_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t ld_le64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)ld_le32(b) | (uint64_t)ld_le32(b + 4) << 32;
}

static inline uint16_t ld_be16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t ld_be32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static inline uint64_t ld_be64(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)ld_be32(b) << 32 | (uint64_t)ld_be32(b + 4);
}

static inline void st_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void st_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	st_le16(b, (uint16_t)v);
	st_le16(b + 2, (uint16_t)(v >> 16));
}

static inline void st_le64(void *p, uint64_t v)
{
	uint8_t *b = p;
	st_le32(b, (uint32_t)v);
	st_le32(b + 4, (uint32_t)(v >> 32));
}

static inline void st_be16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void st_be32(void *p, uint32_t v)
{
	uint8_t *b = p;
	st_be16(b, (uint16_t)(v >> 16));
	st_be16(b + 2, (uint16_t)v);
}

static inline void st_be64(void *p, uint64_t v)
{
	uint8_t *b = p;
	st_be32(b, (uint32_t)(v >> 32));
	st_be32(b + 4, (uint32_t)v);
}

/* A hexadecimal digit's value, either case; -1 for anything else. */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
