/*
 * The block layer shared by kestrel (virtio-blk, IDE, floppy) and kestrel-img:
 * an opened image is a struct block_dev with explicit state, no globals, safe
 * to use from several threads (each driver serialises its own metadata).
 *
 * This header is what the VMM uses: open and close, positional I/O, request
 * accounting.  Requests are synchronous here; the VMM issues them from its
 * I/O threads, and batches of them go through aio.h (a thread pool or
 * io_uring).  What only kestrel-img needs (create, check, snapshots,
 * bitmaps, amend, measure, allocation status) is in block_img.h.
 */
#ifndef KESTREL_BLOCK_BLOCK_H
#define KESTREL_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct block_dev;

/* Open flags. */
#define BLOCK_RDONLY	0x01	/* refuse writes (readonly=on, backing files) */
#define BLOCK_NOCACHE	0x02	/* O_DIRECT: cache=none/directsync */
#define BLOCK_DSYNC	0x04	/* O_DSYNC: cache=writethrough/directsync */
#define BLOCK_NO_FLUSH	0x08	/* flushes are ignored: cache=unsafe */
#define BLOCK_NO_LOCK	0x10	/* skip the image lock (kestrel-img -U, tests) */
/* 0x20..0x100: kestrel-img's flags (block_img.h). */

/*
 * qcow2 metadata overlap checks before each write (QEMU's overlap-check=
 * option): a write that would land on metadata fails with EIO and marks the
 * image corrupt.  Zero in these bits is QEMU's default, "cached".
 */
#define BLOCK_OL_MASK		0x600
#define BLOCK_OL_CACHED		0x000
#define BLOCK_OL_NONE		0x200
#define BLOCK_OL_CONSTANT	0x400
#define BLOCK_OL_ALL		0x600
/* Sets the BLOCK_OL_* bits of *flags for QEMU's mode name; -1 for an unknown name. */
int block_overlap_check_flags(const char *mode, unsigned *flags);

/*
 * Opens path as format ("raw", "qcow2", or NULL to probe, warning as QEMU
 * does when a raw image is probed).  Backing files open read-only.  An image
 * is locked (OFD locks, like QEMU's) so a second writer is refused with a
 * message naming the holder.  Returns 0, or -1 with a message in err.
 */
int block_open(const char *path, const char *format, unsigned flags, struct block_dev **out,
	       char *err, size_t errlen);
void block_close(struct block_dev *bd);
/*
 * block_open with the id of the secret (block_secret_add) that unlocks an
 * encrypted image: QEMU's key-secret= option.  NULL: none given.
 */
int block_open_key(const char *path, const char *format, unsigned flags, const char *key_secret,
		   struct block_dev **out, char *err, size_t errlen);
/*
 * The process's secrets (QEMU's -object secret,id=,data=|file=), which
 * key-secret= options name: kestrel-img's --object and the VMM's -object add
 * them.  0, or -1 (duplicate id, out of memory).
 */
int block_secret_add(const char *id, const void *data, size_t len);
/* The bytes of secret id (NUL-terminated, len without it), or NULL. */
const char *block_secret_lookup(const char *id, size_t *len);

/* Virtual disk size in bytes. */
uint64_t block_length(const struct block_dev *bd);
const char *block_format_name(const struct block_dev *bd);
/* Whether Kestrel has a driver for the image format name (raw, qcow2, ...). */
bool block_format_has_driver(const char *name);
/* Whether this build has the client of the network protocol driver name (nbd, nfs, ...). */
bool block_network_driver_available(const char *name);
bool block_is_readonly(const struct block_dev *bd);

/* Each returns 0 or a negative errno; a range beyond the disk is -EINVAL. */
int block_pread(struct block_dev *bd, uint64_t offset, void *buf, size_t len);
int block_pwrite(struct block_dev *bd, uint64_t offset, const void *buf, size_t len);
int block_flush(struct block_dev *bd);
/* Deallocates (qcow2: discards clusters; raw: punches holes); reads then return zeroes. */
int block_discard(struct block_dev *bd, uint64_t offset, uint64_t len);
int block_write_zeroes(struct block_dev *bd, uint64_t offset, uint64_t len, bool may_unmap);
bool block_buffer_is_zero(const void *buf, size_t len);

/*
 * Creates a temporary qcow2 overlay backed by bd's file (snapshot=on); the
 * file is unlinked at once so it vanishes with the process.
 */
int block_open_snapshot_overlay(const char *path, const char *format, unsigned flags,
				struct block_dev **out, char *err, size_t errlen);

/*
 * I/O accounting, QEMU's BlockAcctStats: the device models call these once
 * per guest request, as QEMU's do (block_acct_start/done in virtio-blk and
 * IDE), so the counts are guest requests, not block-layer pieces.  Kept with
 * the image so they survive a guest reset, as a BlockBackend's do.
 * Thread-safe (atomic counters).
 */
enum block_acct_type { BLOCK_ACCT_READ, BLOCK_ACCT_WRITE, BLOCK_ACCT_FLUSH, BLOCK_ACCT_UNMAP,
		       BLOCK_ACCT_NR };

struct block_stats {
	uint64_t bytes[BLOCK_ACCT_NR];
	uint64_t ops[BLOCK_ACCT_NR];
	uint64_t failed_ops[BLOCK_ACCT_NR];
	uint64_t invalid_ops[BLOCK_ACCT_NR];
	uint64_t total_time_ns[BLOCK_ACCT_NR];
	uint64_t wr_highest_offset;	/* end of the highest write */
	uint64_t last_access_ns;	/* CLOCK_MONOTONIC of the last completion; 0: none */
};

/* A request done (failed: not counted in bytes/ops/time, as QEMU's block_account_one_io). */
void block_acct_done(struct block_dev *bd, enum block_acct_type type, uint64_t offset,
		     uint64_t bytes, uint64_t ns, bool failed);
/* A request refused before it reached the image (out of range, read-only). */
void block_acct_invalid(struct block_dev *bd, enum block_acct_type type);
void block_get_stats(struct block_dev *bd, struct block_stats *out);
/* CLOCK_MONOTONIC in ns, for the callers' request timing. */
uint64_t block_acct_now(void);

#endif
