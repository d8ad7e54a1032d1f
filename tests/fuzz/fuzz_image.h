/*
 * The body of the per-format image fuzzers (fuzz_qed.c, fuzz_parallels.c,
 * fuzz_qcow2.c) and the pieces the others share (fuzz_blockmap.h,
 * fuzz_vmdk.c): fuzz bytes as an image of one format, opened read-only and
 * read the way kestrel-img info/map/convert/check read it.  Aborts if the
 * file changed: reading must never write.
 */
#ifndef KESTREL_FUZZ_IMAGE_H
#define KESTREL_FUZZ_IMAGE_H

#include "block/block_img.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The fuzz bytes in a memfd, named by *path: the image a target opens. */
static inline int fuzz_image_file(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz-image", 0);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

/* The first 4 MiB, then block status over a bounded part of the disk, reading its data. */
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

/* What kestrel-img info, map, convert and check do with an image. */
static inline void fuzz_image_walk(struct block_dev *bd, uint8_t *buf)
{
	struct block_check_result res;
	struct block_info info;

	block_get_info(bd, &info);
	fuzz_image_read(bd, buf);
	memset(&res, 0, sizeof(res));
	block_check(bd, 0, &res, NULL);
}

/* Reading must never have written: the file still holds the fuzz bytes. */
static inline void fuzz_image_unchanged(int fd, const uint8_t *data, size_t size)
{
	uint8_t *after = malloc(size ? size : 1);

	if (!after || pread(fd, after, size, 0) != (ssize_t)size || memcmp(after, data, size))
		abort();
	free(after);
}

static inline int fuzz_image(const uint8_t *data, size_t size, const char *format)
{
	struct block_dev *bd;
	char path[64], err[512];
	uint8_t *buf;
	int fd = fuzz_image_file(data, size, path, sizeof(path));

	/* No backing files: a fuzzed name must not open files of the host. */
	if (block_open(path, format, BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err,
		       sizeof(err)) == 0) {
		buf = malloc(1 << 20);
		if (!buf)
			abort();
		fuzz_image_walk(bd, buf);
		free(buf);
		block_close(bd);
	}
	fuzz_image_unchanged(fd, data, size);
	close(fd);
	return 0;
}

#endif
