/*
 * VHDX (Microsoft "VHDX Format Specification" v1.0): the on-disk layout and
 * the driver state shared by the files of this folder:
 *   header.c  file identifier, the two headers, region table, metadata
 *   log.c     the metadata log: search, replay (§2.3.3) and writes
 *   vhdx.c    open/close, BAT, reads, writes, status, info, check
 *   create.c  qemu-img create -f vhdx
 * Behaviour follows QEMU 7.2's block/vhdx*.c where the spec leaves room.
 */
#ifndef KESTREL_BLOCK_VHDX_H
#define KESTREL_BLOCK_VHDX_H

#include "block/block_int.h"

#include <stdbool.h>
#include <stdint.h>

#define VHDX_MiB			(1024ull * 1024)
/* §2.1: the header section, 1 MiB, in 64 KiB structures. */
#define VHDX_HEADER1_OFFSET		(64 * 1024)
#define VHDX_HEADER2_OFFSET		(128 * 1024)
#define VHDX_REGION1_OFFSET		(192 * 1024)
#define VHDX_REGION2_OFFSET		(256 * 1024)
#define VHDX_HEADER_SECTION_END		VHDX_MiB
#define VHDX_HEADER_SIZE		4096	/* checksummed part of a header */
#define VHDX_TABLE_SIZE			(64 * 1024)	/* region/metadata tables */
#define VHDX_LOG_SECTOR			4096
#define VHDX_BLOCK_MIN			VHDX_MiB
#define VHDX_BLOCK_MAX			(256 * VHDX_MiB)
#define VHDX_MAX_SECTORS_PER_BLOCK	(1ull << 23)
#define VHDX_MAX_SIZE			(64ull << 40)	/* 64 TiB */

/* §2.5.1 BAT entry: state in bits 0-2, file offset in MiB in bits 20-63. */
#define VHDX_BAT_STATE_MASK		7
#define VHDX_BAT_OFFSET_MASK		0xfffffffffff00000ull
enum {
	PAYLOAD_BLOCK_NOT_PRESENT = 0,
	PAYLOAD_BLOCK_UNDEFINED = 1,
	PAYLOAD_BLOCK_ZERO = 2,
	PAYLOAD_BLOCK_UNMAPPED = 3,
	PAYLOAD_BLOCK_UNMAPPED_V095 = 5,	/* pre-1.0 drafts, QEMU reads it as unmapped */
	PAYLOAD_BLOCK_FULLY_PRESENT = 6,
	PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7,
};

/* §2.2.2 header, the fields we use (little endian on disk). */
struct vhdx_header {
	uint64_t seq;
	uint8_t file_write_guid[16];
	uint8_t data_write_guid[16];
	uint8_t log_guid[16];
	uint16_t log_version;
	uint16_t version;
	uint32_t log_length;
	uint64_t log_offset;
	uint8_t raw[VHDX_HEADER_SIZE];	/* as read: reserved bytes are kept on update */
};

struct vhdx_region {
	uint64_t start, end;
};
#define VHDX_MAX_REGIONS	2050	/* the log, 2047 region entries, slack */

struct vhdx_state {
	struct vhdx_header hdr[2];
	int cur;			/* index of the current header */
	uint8_t session_guid[16];	/* FileWriteGuid of this open (§2.2.2) */
	bool first_write_done;
	bool log_replayed;		/* on open, for check's "corruptions fixed" */

	uint64_t bat_offset, bat_length;	/* BAT region */
	uint64_t meta_offset, meta_length;	/* metadata region */
	uint32_t block_size;
	uint32_t logical_sector, physical_sector;
	uint64_t disk_size;
	bool fixed;			/* LeaveBlockAllocated */
	uint32_t chunk_ratio;		/* payload blocks per sector bitmap block */
	uint64_t bat_entries;
	uint64_t *bat;			/* host endian */

	struct vhdx_region regions[VHDX_MAX_REGIONS];	/* overlap checks (log, BAT, metadata) */
	int n_regions;

	/* log.c: the circular log (§2.3) */
	uint64_t log_offset;
	uint32_t log_length;
	uint64_t log_seq;		/* next entry's sequence number */
	uint32_t log_write;		/* where the next entry goes */
	uint32_t log_tail;		/* start of the last entry written */
	pthread_mutex_t lock;
};

/* crc32c over buf with the 4 bytes at crc_off counted as zero (§2.2.2). */
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t crc_off);
void vhdx_set_checksum(uint8_t *buf, size_t len, size_t crc_off);
/* Region and metadata item GUIDs (§2.2.3.1, §2.6.2), in on-disk byte order (header.c). */
extern const uint8_t vhdx_bat_guid[16], vhdx_metadata_guid[16], vhdx_file_param_guid[16],
	vhdx_virtual_size_guid[16], vhdx_page83_guid[16], vhdx_logical_sector_guid[16],
	vhdx_phys_sector_guid[16], vhdx_parent_locator_guid[16];
void vhdx_guid_generate(uint8_t guid[16]);
bool vhdx_guid_is_zero(const uint8_t guid[16]);

/* header.c */
int vhdx_read_headers(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen);
int vhdx_read_regions(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen);
int vhdx_read_metadata(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen);
/* Two updates (both headers valid afterwards), as §2.2.2.1 asks; log_guid NULL: kept. */
int vhdx_update_headers(struct block_dev *bd, struct vhdx_state *s, bool new_data_guid,
			const uint8_t *log_guid);
/* Serialises a header into its 4 KiB, checksum included. */
void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf);
bool vhdx_region_overlaps(const struct vhdx_state *s, uint64_t start, uint64_t len);
int vhdx_region_add(struct vhdx_state *s, uint64_t start, uint64_t len);

/* log.c */
/* Replays a dirty log (opened read-write), or refuses as QEMU does (read-only). */
int vhdx_log_open(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen);
/* Writes len bytes at file offset off through the log, then replays them (QEMU's way). */
int vhdx_log_write_and_flush(struct block_dev *bd, struct vhdx_state *s, const void *data,
			     uint32_t len, uint64_t off);
/* The first guest-visible write of this open: new DataWriteGuid (§2.2.2). */
int vhdx_user_visible_write(struct block_dev *bd, struct vhdx_state *s);

/* create.c */
int vhdx_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen);
extern const struct block_opt_desc vhdx_create_opts[];

#endif
