/*
 * libFuzzer target: the read-only formats dmg, cloop and bochs (src/block/
 * dmg.c, cloop.c, bochs.c).  The first byte picks the format, the rest is the
 * image, opened read-only and read the way kestrel-img info/map/convert read
 * it: the start of the disk, then pieces spread over all of it (chunk and
 * extent lookups at every scale).  Besides sanitizer reports it aborts if the
 * image file changed: reading must never write.
 */
#include "block/block_img.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const formats[] = { "dmg", "cloop", "bochs" };

static void read_image(struct block_dev *bd, uint8_t *buf, size_t buflen)
{
	struct block_info info;
	uint64_t len = block_length(bd), off, pnum, map;
	unsigned flags;

	block_get_info(bd, &info);
	block_status(bd, 0, len, &pnum, &map, &flags);
	for (off = 0; off < len && off < (1 << 20); off += buflen)
		block_pread(bd, off, buf, len - off < buflen ? (size_t)(len - off) : buflen);
	/* 64 reads across the disk, unaligned, crossing unit boundaries. */
	for (uint64_t i = 1; len > 4096 && i <= 64; i++) {
		off = len / 65 * i + i * 7;
		if (off < len)
			block_pread(bd, off, buf, len - off < 4096 ? (size_t)(len - off) : 4096);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	char path[64], err[512];
	uint8_t *buf, *after;
	size_t n;
	int fd;

	if (size < 1)
		return 0;
	fd = memfd_create("fuzz-roimg", 0);
	n = size - 1;
	if (fd < 0 || (n && write(fd, data + 1, n) != (ssize_t)n))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (block_open(path, formats[data[0] % 3], BLOCK_RDONLY | BLOCK_NO_LOCK, &bd, err,
		       sizeof(err)) == 0) {
		buf = malloc(1 << 20);
		if (!buf)
			abort();
		read_image(bd, buf, 1 << 20);
		free(buf);
		block_close(bd);
	}
	/* Reading must never have written. */
	after = malloc(n ? n : 1);
	if (!after || pread(fd, after, n, 0) != (ssize_t)n || memcmp(after, data + 1, n))
		abort();
	free(after);
	close(fd);
	return 0;
}
