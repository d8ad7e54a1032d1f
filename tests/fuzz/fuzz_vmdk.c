/*
 * libFuzzer target: a VMDK file from fuzz bytes (a sparse "KDMV"/"COWD"
 * extent or a descriptor), opened read-only and read as kestrel-img
 * info/map/convert/check read it; reading must never write.  Then a copy is
 * opened read-write and written, full and partial grains and zeroes, to
 * drive the allocation paths over hostile tables.  Extent names a fuzzed
 * descriptor gives resolve under /proc/self/fd, where the driver's
 * confinement refuses them: no host file is ever opened.
 */
#include "fuzz_image.h"
#include "util/json_tree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_image_walk, and the extents list info prints. */
static void read_all(struct block_dev *bd, uint8_t *buf)
{
	jfree(block_info_specific(bd));
	fuzz_image_walk(bd, buf);
}

static void write_some(struct block_dev *bd, uint8_t *buf)
{
	uint64_t len = block_length(bd);

	memset(buf, 0x5a, 1 << 17);
	if (len >= (1 << 17))
		block_pwrite(bd, 0, buf, 1 << 17);
	if (len >= 70000)
		block_pwrite(bd, 4096, buf, 70000 - 4096);
	if (len >= (1 << 18))
		block_write_zeroes(bd, 1 << 17, 1 << 17, false);
	if (len > 512)
		block_pwrite(bd, len - 512, buf, 512);
	block_flush(bd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct block_dev *bd;
	char path[64], err[512];
	uint8_t *buf = malloc(1 << 20);
	int fd, fd2;

	if (!buf)
		abort();
	fd = fuzz_image_file(data, size, path, sizeof(path));
	/* No backing files: a fuzzed parent name must not open files of the host. */
	if (block_open(path, "vmdk", BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err,
		       sizeof(err)) == 0) {
		read_all(bd, buf);
		block_close(bd);
	}
	fuzz_image_unchanged(fd, data, size);
	close(fd);
	fd2 = fuzz_image_file(data, size, path, sizeof(path));
	if (block_open(path, "vmdk", BLOCK_NO_LOCK | BLOCK_NO_BACKING, &bd, err, sizeof(err)) == 0) {
		write_some(bd, buf);
		read_all(bd, buf);
		block_close(bd);
	}
	close(fd2);
	free(buf);
	return 0;
}
