/*
 * The body of the image-format fuzz targets (fuzz_vpc.c, fuzz_vdi.c): an
 * image from fuzz bytes, opened read-only and read as kestrel-img
 * info/map/convert/check read it, which must never write to it; then a copy
 * opened read-write and written to (block allocation), and read back.
 */
#ifndef KESTREL_FUZZ_BLOCKMAP_H
#define KESTREL_FUZZ_BLOCKMAP_H

#include "fuzz_image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes at a few places (partial blocks, a block boundary, the end), then reads. */
static inline void fuzz_image_write(struct block_dev *bd, uint8_t *buf)
{
	uint64_t len = block_length(bd);
	/* vdi blocks are 1 MiB, vpc's 2 MiB by default: pieces across both boundaries. */
	const uint64_t at[] = { 0, 4096, (1 << 20) - 512, (2 << 20) - 4096, len - 1 };

	memset(buf, 0x5a, 1 << 20);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]) && len; i++) {
		uint64_t n = len - at[i] < 8192 ? len - at[i] : 8192;
		if (at[i] < len)
			block_pwrite(bd, at[i], buf, (size_t)n);
	}
	if (len)
		block_write_zeroes(bd, 0, len < (1 << 20) ? len : 1 << 20, true);
	fuzz_image_read(bd, buf);
}

static inline int fuzz_blockmap(const char *fmt, const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	char path[64], err[512];
	uint8_t *buf = malloc(1 << 20);
	int fd = fuzz_image_file(data, size, path, sizeof(path));

	if (!buf)
		abort();
	if (block_open(path, fmt, BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err,
		       sizeof(err)) == 0) {
		fuzz_image_walk(bd, buf);
		block_close(bd);
	}
	fuzz_image_unchanged(fd, data, size);
	close(fd);
	fd = fuzz_image_file(data, size, path, sizeof(path));
	if (block_open(path, fmt, BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err, sizeof(err)) == 0) {
		fuzz_image_write(bd, buf);
		block_close(bd);
	}
	close(fd);
	free(buf);
	return 0;
}

#endif
