/*
 * libFuzzer target: a qcow2 image from fuzz bytes, opened read-only and read
 * the way kestrel-img info/map/convert [-l] [--bitmaps]/check read it.  Besides sanitizer
 * reports it aborts if the image file changed: reading must never write.
 */
#include "fuzz_image.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	struct block_info info;
	struct block_check_result res;
	struct block_snapshot *snaps = NULL;
	struct block_bitmap *bitmaps = NULL;
	int nsnaps, nbitmaps;
	char path[64], err[512];
	uint8_t *buf, *after;
	uint64_t len;
	int fd;

	fd = memfd_create("fuzz-qcow2", 0);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* No backing files: a fuzzed name must not open files of the host. */
	if (block_open(path, "qcow2", BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err,
		       sizeof(err)) == 0) {
		buf = malloc(1 << 20);
		if (!buf)
			abort();
		block_get_info(bd, &info);
		nbitmaps = block_bitmap_list(bd, &bitmaps);
		/* Each bitmap's content: the directory, table and data parsers (bitmap.c). */
		for (int i = 0; i < nbitmaps && i < 8; i++) {
			struct block_bitmap_data bdata;
			if (block_bitmap_get(bd, bitmaps[i].name, &bdata, err, sizeof(err)) == 0)
				free(bdata.bits);
		}
		if (nbitmaps >= 0)
			free(bitmaps);
		nsnaps = block_snapshot_list(bd, &snaps);
		fuzz_image_read(bd, buf);
		block_check(bd, 0, &res, NULL);
		/* convert -l: the first snapshot's state, read through its own L1 table. */
		if (nsnaps > 0 && block_snapshot_load_tmp(bd, snaps[0].name, err, sizeof(err)) == 0) {
			len = block_length(bd);
			block_pread(bd, 0, buf, len < (1 << 20) ? (size_t)len : 1 << 20);
		}
		if (nsnaps >= 0)
			free(snaps);
		free(buf);
		block_close(bd);
	}
	/* Reading must never have written. */
	after = malloc(size ? size : 1);
	if (!after || pread(fd, after, size, 0) != (ssize_t)size || memcmp(after, data, size))
		abort();
	free(after);
	close(fd);
	return 0;
}
