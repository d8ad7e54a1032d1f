/* dmg (dmg.c): types and limits of UDIF chunk tables, and the driver state. */
#ifndef KESTREL_BLOCK_DMG_H
#define KESTREL_BLOCK_DMG_H

#include "block/readonly.h"

/* Chunk types of a BLKXTable entry. */
#define DMG_UDZE	0x00000000u	/* zeroes */
#define DMG_UDRW	0x00000001u	/* raw data */
#define DMG_UDIG	0x00000002u	/* ignored: reads as zeroes */
#define DMG_UDZO	0x80000005u	/* zlib */
#define DMG_UDBZ	0x80000006u	/* bzip2 */
#define DMG_ULFO	0x80000007u	/* lzfse */
#define DMG_UDCM	0x7ffffffeu	/* comment */
#define DMG_UDLE	0xffffffffu	/* last entry */

/* QEMU's DMG_LENGTHS_MAX and DMG_SECTORCOUNTS_MAX: what one chunk may buffer. */
#define DMG_CHUNK_BYTES_MAX	(64u << 20)
#define DMG_CHUNK_SECTORS_MAX	(DMG_CHUNK_BYTES_MAX / 512)

struct dmg_chunk {
	uint64_t sector;	/* first disk sector */
	uint64_t count;		/* sectors */
	uint64_t offset;	/* of the data in the file */
	uint64_t length;	/* of the data in the file */
	uint32_t type;
};

struct dmg {
	struct dmg_chunk *chunks;	/* sorted by sector */
	size_t n, cap;
	uint64_t koly;			/* offset of the trailer: the data ends here */
	uint64_t data_fork;
	unsigned warned_lzfse, warned_bzip2, warned_unknown;
	struct ro_cache cache;		/* the last compressed chunk read */
};

#endif
