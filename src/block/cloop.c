/*
 * cloop: the compressed loop images of Knoppix's cloop module, read-only as
 * QEMU reads them.  Version 2.0 layout (cloop's compressed_loop.h): a 128
 * byte shell script preamble, then big-endian block_size and n_blocks, then
 * n_blocks + 1 big-endian 64-bit file offsets; block i is the zlib stream
 * [offsets[i], offsets[i+1]) that inflates to exactly block_size bytes.
 */
#include "block/readonly.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLOOP_HEADER		136		/* preamble + block_size + n_blocks */
#define CLOOP_MAX_BLOCK		(64u << 20)	/* QEMU's MAX_BLOCK_SIZE */
#define CLOOP_MAX_OFFSETS	(512u << 20)	/* QEMU: 16 TB at 256 KB blocks */

struct cloop {
	uint32_t block_size;
	uint32_t n_blocks;
	uint64_t *offsets;		/* n_blocks + 1 entries */
	struct ro_cache cache;		/* the last block read */
};

static int cloop_header(struct block_dev *bd, struct cloop *s, uint64_t fsize, char *err,
			size_t errlen)
{
	uint8_t hdr[8];
	uint64_t table;
	int ret;

	if (fsize < CLOOP_HEADER)
		return block_err(err, errlen, "cloop header is truncated: the file has %llu bytes",
				 (unsigned long long)fsize);
	ret = bfile_pread(bd, 128, hdr, sizeof(hdr));
	if (ret < 0)
		return block_err(err, errlen, "Could not read the cloop header: %s", strerror(-ret));
	s->block_size = ld_be32(hdr);
	s->n_blocks = ld_be32(hdr + 4);
	/* QEMU's checks and words, in its order. */
	if (s->block_size % 512)
		return block_err(err, errlen, "block_size %u must be a multiple of 512",
				 s->block_size);
	if (s->block_size == 0)
		return block_err(err, errlen, "block_size cannot be zero");
	if (s->block_size > CLOOP_MAX_BLOCK)
		return block_err(err, errlen, "block_size %u must be %u MB or less", s->block_size,
				 CLOOP_MAX_BLOCK >> 20);
	if (s->n_blocks > (UINT32_MAX - 1) / 8)
		return block_err(err, errlen, "n_blocks %u must be %u or less", s->n_blocks,
				 (UINT32_MAX - 1) / 8);
	table = ((uint64_t)s->n_blocks + 1) * 8;
	if (table > CLOOP_MAX_OFFSETS)
		return block_err(err, errlen,
				 "image requires too many offsets, try increasing block size");
	/* Beyond QEMU: the table must be in the file before anything is allocated for it. */
	if (table > fsize - CLOOP_HEADER)
		return block_err(err, errlen, "cloop offsets table of %u blocks is truncated: "
				 "it needs %llu bytes, the file has %llu", s->n_blocks,
				 (unsigned long long)(CLOOP_HEADER + table),
				 (unsigned long long)fsize);
	return 0;
}

/* The offsets table: increasing, after the table itself, inside the file. */
static int cloop_offsets(struct block_dev *bd, struct cloop *s, uint64_t fsize,
			 uint64_t *max_block, char *err, size_t errlen)
{
	size_t n = (size_t)s->n_blocks + 1;
	uint64_t end = CLOOP_HEADER + n * 8;
	int ret;

	s->offsets = malloc(n * 8);
	if (!s->offsets)
		return block_err(err, errlen, "Could not allocate offsets table");
	ret = bfile_pread(bd, CLOOP_HEADER, s->offsets, n * 8);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the offsets table: %s",
				 strerror(-ret));
	*max_block = 1;
	for (size_t i = 0; i < n; i++) {
		s->offsets[i] = ld_be64(&s->offsets[i]);
		if (i == 0) {
			if (s->offsets[0] < end)
				return block_err(err, errlen, "block 0 at offset %llu overlaps the "
						 "offsets table, image file is corrupt",
						 (unsigned long long)s->offsets[0]);
			continue;
		}
		if (s->offsets[i] < s->offsets[i - 1])
			return block_err(err, errlen, "offsets not monotonically increasing at "
					 "index %zu, image file is corrupt", i);
		if (s->offsets[i] - s->offsets[i - 1] > 2ull * CLOOP_MAX_BLOCK)
			return block_err(err, errlen, "invalid compressed block size at index %zu, "
					 "image file is corrupt", i);
		if (s->offsets[i] - s->offsets[i - 1] > *max_block)
			*max_block = s->offsets[i] - s->offsets[i - 1];
	}
	if (s->offsets[n - 1] > fsize)
		return block_err(err, errlen, "block %u ends at offset %llu, past the end of the "
				 "file (%llu bytes)", s->n_blocks - 1,
				 (unsigned long long)s->offsets[n - 1], (unsigned long long)fsize);
	return 0;
}

static void cloop_close(struct block_dev *bd)
{
	struct cloop *s = bd->opaque;

	ro_cache_fini(&s->cache);
	free(s->offsets);
	free(s);
}

static int cloop_parse(struct block_dev *bd, uint64_t fsize, char *err, size_t errlen)
{
	struct cloop *s = bd->opaque;
	uint64_t max_block = 1;

	if (ro_cache_init(&s->cache) < 0)
		return block_err(err, errlen, "Could not initialise zlib");
	if (cloop_header(bd, s, fsize, err, errlen) < 0 ||
	    cloop_offsets(bd, s, fsize, &max_block, err, errlen) < 0)
		return -1;
	s->cache.in_len = (size_t)max_block;
	s->cache.out_len = s->block_size;
	bd->size = (uint64_t)s->n_blocks * s->block_size;
	return 0;
}

static int cloop_open(struct block_dev *bd, char *err, size_t errlen)
{
	return ro_open(bd, sizeof(struct cloop), cloop_parse, err, errlen);
}

static int cloop_fill(struct block_dev *bd, uint64_t unit, uint8_t *dst, size_t skip, size_t n)
{
	struct cloop *s = bd->opaque;
	struct ro_unit u;

	if (unit >= s->n_blocks)
		return -EIO;
	u.index = unit;
	u.off = s->offsets[unit];
	u.len = (size_t)(s->offsets[unit + 1] - u.off);
	u.out = s->block_size;
	u.codec = RO_ZLIB;
	return ro_cache_read(bd, &s->cache, &u, dst, skip, n);
}

static int cloop_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct cloop *s = bd->opaque;

	return ro_read_units(bd, off, buf, len, s->block_size, cloop_fill);
}

const struct block_driver block_cloop_driver = {
	.name = "cloop",
	.open = cloop_open,
	.close = cloop_close,
	.pread = cloop_pread,
	.status = block_status_all_data,
	.get_info = ro_get_info,
};
