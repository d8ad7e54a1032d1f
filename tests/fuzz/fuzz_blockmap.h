/*
 * The body of the image-format fuzz targets (fuzz_vpc.c, fuzz_vdi.c): an
 * image from fuzz bytes, opened read-only and read as kestrel-img
 * info/map/convert/check read it, which must never write to it; then a copy
 * opened read-write and written to (block allocation), and read back.
 */
#ifndef KESTREL_FUZZ_BLOCKMAP_H
#define KESTREL_FUZZ_BLOCKMAP_H

#include "block/block_img.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline int fuzz_image_file(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz-image", 0);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

/* The first 4 MiB, then status over a bounded part of the disk, reading its data. */
static inline void fuzz_image_read(struct block_dev *bd, uint8_t *buf)
{
	uint64_t len = block_length(bd), off;

	for (off = 0; off < len && off < (4 << 20); off += 1 << 20)
		block_pread(bd, off, buf, len - off < (1 << 20) ? (size_t)(len - off) : 1 << 20);
	off = 0;
	for (int i = 0; i < 4096 && off < len; i++) {
		uint64_t pnum, map;
		unsigned flags;
		if (block_status(bd, off, len - off, &pnum, &map, &flags) < 0 || !pnum)
			break;
		if ((flags & BLOCK_STATUS_DATA) && pnum <= (1 << 20))
			block_pread(bd, off, buf, (size_t)pnum);
		off += pnum;
	}
}

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

static inline int fuzz_image(const char *fmt, const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	struct block_info info;
	struct block_check_result res;
	char path[64], err[512];
	uint8_t *buf = malloc(1 << 20), *after = malloc(size ? size : 1);
	int fd = fuzz_image_file(data, size, path, sizeof(path));

	if (!buf || !after)
		abort();
	if (block_open(path, fmt, BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err,
		       sizeof(err)) == 0) {
		block_get_info(bd, &info);
		fuzz_image_read(bd, buf);
		block_check(bd, 0, &res, NULL);
		block_close(bd);
	}
	/* Reading must never have written. */
	if (pread(fd, after, size, 0) != (ssize_t)size || memcmp(after, data, size))
		abort();
	close(fd);
	fd = fuzz_image_file(data, size, path, sizeof(path));
	if (block_open(path, fmt, BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err, sizeof(err)) == 0) {
		fuzz_image_write(bd, buf);
		block_close(bd);
	}
	close(fd);
	free(after);
	free(buf);
	return 0;
}

#endif
