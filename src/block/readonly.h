/*
 * What the read-only formats (dmg, cloop, bochs) share: QEMU opens them
 * through bdrv_apply_auto_read_only, has no block_status for them (every
 * byte is data, with no host offset) and no bdrv_get_info.
 */
#ifndef KESTREL_BLOCK_READONLY_H
#define KESTREL_BLOCK_READONLY_H

#include "block/block_int.h"

#include <pthread.h>
#include <zlib.h>

/*
 * The open of a read-only format: a writable open is refused with
 * qemu-img's "Image is read-only" (QEMU's bdrv_apply_auto_read_only), then
 * bd->opaque gets state_size zeroed bytes and parse reads the file (fsize
 * bytes) into them.  When parse fails, the driver's close frees what it left.
 */
typedef int (*ro_parse_fn)(struct block_dev *bd, uint64_t fsize, char *err, size_t errlen);
int ro_open(struct block_dev *bd, size_t state_size, ro_parse_fn parse, char *err,
	    size_t errlen);
/* No bdrv_get_info: qemu-img info prints no dirty flag and no cluster size. */
int ro_get_info(struct block_dev *bd, struct block_info *info);

/* How a compressed unit (cloop block, dmg chunk) is packed. */
enum ro_codec { RO_ZLIB, RO_BZIP2 };

/* Whether this build reads bzip2 (libbz2 found by meson: dmg's UDBZ chunks). */
bool ro_have_bzip2(void);

/*
 * The last compressed unit read, unpacked, for the reads that follow it in
 * the same unit; in and out grow on first use to the sizes the driver's
 * tables allow (in_len, out_len), so opening allocates nothing.
 */
struct ro_cache {
	uint8_t *in, *out;
	size_t in_len, out_len;
	uint64_t unit;			/* in out; UINT64_MAX: none */
	z_stream zs;
	pthread_mutex_t lock;
	bool ready;			/* ro_cache_init succeeded */
};

int ro_cache_init(struct ro_cache *c);
void ro_cache_fini(struct ro_cache *c);

/* Where a compressed unit lies and what it unpacks to. */
struct ro_unit {
	uint64_t index, off;
	size_t len, out;		/* len <= in_len, out <= out_len */
	enum ro_codec codec;
};

/*
 * Bytes [skip, skip+n) of unit u, unpacked (if it is not the cached one)
 * into exactly u->out bytes: a stream that ends early, runs longer or is
 * damaged is -EIO.  The output buffer bounds the work, so a decompression
 * "bomb" costs no more than u->out.
 */
int ro_cache_read(struct block_dev *bd, struct ro_cache *c, const struct ro_unit *u,
		  uint8_t *dst, size_t skip, size_t n);

/*
 * Reads whose units (blocks, chunks, sectors) the driver fetches one at a
 * time: calls fill(bd, unit, dst, skip, n) for each piece of [off, off+len)
 * that lies in one unit of unit_len bytes.
 */
typedef int (*ro_fill_fn)(struct block_dev *bd, uint64_t unit, uint8_t *dst, size_t skip,
			  size_t n);
int ro_read_units(struct block_dev *bd, uint64_t off, uint8_t *buf, size_t len,
		  uint64_t unit_len, ro_fill_fn fill);

#endif
