/*
 * What the read-only formats (dmg, cloop, bochs) share: QEMU opens them
 * through bdrv_apply_auto_read_only, has no block_status for them (every
 * byte is data, with no host offset) and no bdrv_get_info.
 */
#ifndef KESTREL_BLOCK_READONLY_H
#define KESTREL_BLOCK_READONLY_H

#include "block/block_int.h"

#include <zlib.h>

/* Refuses a writable open with qemu-img's "Image is read-only". */
int ro_open_check(const struct block_dev *bd, char *err, size_t errlen);
/* As QEMU's default block status for a format without one: data, no offset. */
int ro_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum, uint64_t *map,
	      unsigned *flags);
/* No bdrv_get_info: qemu-img info prints no dirty flag and no cluster size. */
int ro_get_info(struct block_dev *bd, struct block_info *info);

/*
 * One zlib stream in[0..inlen) inflated into exactly outlen bytes of out:
 * a stream that ends early, runs longer or is damaged is -EIO.  The output
 * buffer bounds the work, so a "bomb" costs no more than outlen.
 */
int ro_inflate(z_stream *zs, const void *in, size_t inlen, void *out, size_t outlen);

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
