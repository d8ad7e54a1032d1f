/*
 * libFuzzer target: a VHDX image from fuzz bytes.  A VHDX file is mostly
 * zeroes at fixed MiB offsets (header section, log, BAT, metadata), so the
 * input is a sparse description of the file, chunks of
 *   [u32 LE offset in KiB][u16 LE length][length bytes]
 * written into an empty file (make_vhdx_seeds.py encodes real images so).
 * The image is read the way kestrel-img info/map/convert/check read it (read
 * only: aborts if that wrote anything), then opened read-write, which
 * replays a dirty log, and written to: allocation and the log writer.
 */
#include "block/block_img.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX	(16u << 20)	/* a cap on the file the input describes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int build_file(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-vhdx", 0);
	size_t i = 0;

	if (fd < 0)
		abort();
	while (size - i >= 6) {
		uint64_t off = ((uint64_t)data[i] | (uint64_t)data[i + 1] << 8 |
				(uint64_t)data[i + 2] << 16 | (uint64_t)data[i + 3] << 24) * 1024;
		size_t len = (size_t)data[i + 4] | (size_t)data[i + 5] << 8;
		i += 6;
		if (len > size - i)
			len = size - i;
		if (off + len <= FILE_MAX && pwrite(fd, data + i, len, (off_t)off) != (ssize_t)len)
			abort();
		i += len;
	}
	return fd;
}

static uint8_t *file_bytes(int fd, size_t *len)
{
	struct stat st;
	uint8_t *b;

	if (fstat(fd, &st) < 0)
		abort();
	*len = (size_t)st.st_size;
	b = malloc(*len ? *len : 1);
	if (!b || pread(fd, b, *len, 0) != (ssize_t)*len)
		abort();
	return b;
}

static void read_all(struct block_dev *bd, uint8_t *buf)
{
	struct block_info info;
	struct block_check_result res;
	uint64_t len = block_length(bd), off;

	block_get_info(bd, &info);
	/* The first blocks, in pieces that cross block boundaries at 1 MiB block size. */
	for (off = 0; off < len && off < (3 << 20); off += 768 << 10)
		block_pread(bd, off, buf, len - off < (256 << 10) ? (size_t)(len - off) : 256 << 10);
	off = 0;
	for (int i = 0; i < 64 && off < len; i++) {
		uint64_t pnum, map;
		unsigned flags;
		if (block_status(bd, off, len - off, &pnum, &map, &flags) < 0 || !pnum)
			break;
		off += pnum;
	}
	block_check(bd, 0, &res, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	char path[64], err[512];
	uint8_t *buf = malloc(1 << 20), *before, *after;
	size_t blen, alen;
	int fd = build_file(data, size);

	if (!buf)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	before = file_bytes(fd, &blen);
	if (block_open(path, "vhdx", BLOCK_RDONLY | BLOCK_NO_LOCK, &bd, err, sizeof(err)) == 0) {
		read_all(bd, buf);
		block_close(bd);
	}
	/* Reading must never have written. */
	after = file_bytes(fd, &alen);
	if (alen != blen || memcmp(before, after, blen))
		abort();
	free(before);
	free(after);
	/* Read-write: log replay on open, then writes that allocate blocks. */
	if (block_open(path, "vhdx", BLOCK_NO_LOCK | BLOCK_NO_FLUSH, &bd, err, sizeof(err)) == 0) {
		uint64_t len = block_length(bd);
		memset(buf, 0xa5, 8192);
		if (len >= 8192) {
			block_pwrite(bd, 0, buf, 8192);
			block_pwrite(bd, (len / 2) & ~4095ull, buf, 4096);
			block_write_zeroes(bd, 0, 4096, false);
		}
		read_all(bd, buf);
		block_close(bd);
	}
	free(buf);
	close(fd);
	return 0;
}
