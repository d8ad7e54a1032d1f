/* iscsi.c: LUNs on iSCSI targets as disks (libiscsi; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_ISCSI_H
#define KESTREL_BLOCK_ISCSI_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opts;
struct block_proto;

/* QEMU's BlockdevOptionsIscsi (plus its runtime "password"); the strings are the caller's. */
struct block_iscsi_opts {
	const char *portal;		/* host[:port] or [v6addr][:port] */
	const char *target;		/* the target's IQN */
	int lun;
	const char *user, *password, *password_secret;
	const char *initiator_name;	/* NULL: QEMU's default */
	int header_digest;		/* libiscsi's enum iscsi_header_digest */
	int timeout;			/* seconds per request; 0: none (QEMU's default) */
	bool alone;			/* a protocol node without a format over it */
};

/* QEMU's default header-digest, none-crc32c (libiscsi's ISCSI_HEADER_DIGEST_NONE_CRC32C). */
#define BLOCK_ISCSI_DIGEST_DEFAULT 1

bool block_iscsi_protocol(const char *proto);
/*
 * iscsi://[user[%password]@]host[:port]/target-iqn/lun into o, with
 * libiscsi's grammar (which QEMU uses); *storage to free after use.
 */
int block_iscsi_parse_uri(const char *uri, struct block_iscsi_opts *o, char **storage, char *err,
			  size_t errlen);
/* -blockdev driver=iscsi's options under pfx ("" or "file.") into o. */
int block_iscsi_read_opts(struct opts *opts, const char *pfx, struct block_iscsi_opts *o,
			  char *err, size_t errlen);
/* The node's name as qemu-img shows it: json:{"driver": format, "file": {...}}, or the
 * iscsi node's options alone where o->alone. */
int block_iscsi_display(const struct block_iscsi_opts *o, const char *format, char *buf,
			size_t len);
/* Opens the LUN, with format (NULL: probe) over it. */
int block_iscsi_open(const struct block_iscsi_opts *o, const char *format, unsigned flags,
		     struct block_dev *parent, struct block_dev **out, char *err, size_t errlen);
/* The LUN alone, without a format over it (create on a LUN: iscsi_create.c). */
int block_iscsi_connect(const struct block_iscsi_opts *o, const struct block_proto **proto,
			void **conn, char *err, size_t errlen);
bool block_iscsi_available(void);

/*
 * The LUN's shape as the target reports it (READ CAPACITY 16, Block Limits
 * VPD), checked before use: a hostile target cannot make Kestrel divide by
 * zero, overflow the size, or ask for transfers it cannot buffer.
 */
struct block_iscsi_geom {
	uint32_t block_size;
	uint64_t blocks;
	uint32_t max_xfer;		/* bytes per READ/WRITE, a multiple of block_size */
};
int block_iscsi_geometry(uint32_t block_size, uint64_t returned_lba, uint32_t max_xfer_blocks,
			 struct block_iscsi_geom *g, char *err, size_t errlen);

/*
 * Byte reads and writes over whole-block commands: read-modify-write of the
 * partial blocks at either end through bounce (block_size bytes).  io moves
 * n whole blocks at lba; returns 0 or a negative errno.
 */
typedef int (*block_iscsi_io_fn)(void *ctx, bool write, uint64_t lba, void *buf, uint32_t n);
int block_iscsi_rw(const struct block_iscsi_geom *g, block_iscsi_io_fn io, void *ctx, bool write,
		   uint64_t off, void *buf, size_t len, uint8_t *bounce);

#endif
