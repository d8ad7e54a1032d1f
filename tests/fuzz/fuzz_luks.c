/*
 * libFuzzer target: a LUKS volume from fuzz bytes, opened as kestrel-img info
 * opens it (header only) and with the fixed passphrase of the seeds
 * (make_luks_seeds.sh), then read and its info built.  The PBKDF2 iteration
 * fields are clamped before the file is written, so that every input costs
 * milliseconds: the bound the driver itself applies (2^25) is for users, not
 * for a fuzzer's time budget.  Aborts if reading changed the file.
 */
#include "block/block_img.h"
#include "util/json_tree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_FUZZ_ITERS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LUKS1 phdr: the master key digest count at 164, keyslot counts at 212 + 48 * i. */
static void clamp_iters(uint8_t *p, size_t size)
{
	size_t offs[9] = { 164 };

	for (int i = 0; i < 8; i++)
		offs[i + 1] = 212 + 48 * (size_t)i;
	for (int i = 0; i < 9; i++) {
		if (offs[i] + 4 > size)
			continue;
		uint32_t v = (uint32_t)p[offs[i]] << 24 | (uint32_t)p[offs[i] + 1] << 16 |
			     (uint32_t)p[offs[i] + 2] << 8 | p[offs[i] + 3];
		if (v > MAX_FUZZ_ITERS) {
			v %= MAX_FUZZ_ITERS;
			p[offs[i]] = 0;
			p[offs[i] + 1] = 0;
			p[offs[i] + 2] = (uint8_t)(v >> 8);
			p[offs[i] + 3] = (uint8_t)v;
		}
	}
}

static void read_all(struct block_dev *bd)
{
	struct block_info info;
	struct jnode *spec;
	uint8_t *buf = malloc(1 << 20);
	uint64_t len = block_length(bd);

	if (!buf)
		abort();
	block_get_info(bd, &info);
	spec = block_info_specific(bd);
	jfree(spec);
	for (uint64_t off = 0; off < len && off < (4 << 20); off += 1 << 20)
		block_pread(bd, off, buf, len - off < (1 << 20) ? (size_t)(len - off) : 1 << 20);
	if (len > 3)
		block_pread(bd, 1, buf, (size_t)(len < 4096 ? len : 4096) - 2);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int secret_added;
	struct block_dev *bd;
	uint8_t *copy, *after;
	char path[64], err[512];
	int fd;

	if (!secret_added++ && block_secret_add("fuzz", "kestrel-fuzz", 12) < 0)
		abort();
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	clamp_iters(copy, size);
	fd = memfd_create("fuzz-luks", 0);
	if (fd < 0 || (size && write(fd, copy, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (block_open(path, "luks", BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_IO, &bd, err,
		       sizeof(err)) == 0) {
		read_all(bd);
		block_close(bd);
	}
	if (block_open_key(path, "luks", BLOCK_RDONLY | BLOCK_NO_LOCK, "fuzz", &bd, err,
			   sizeof(err)) == 0) {
		read_all(bd);
		block_close(bd);
	}
	after = malloc(size ? size : 1);
	if (!after || pread(fd, after, size, 0) != (ssize_t)size || memcmp(after, copy, size))
		abort();
	free(after);
	free(copy);
	close(fd);
	return 0;
}
