/*
 * Shared by the device fuzz targets (IDE, floppy, fw_cfg): a small guest RAM
 * of one malloc'd region, so AddressSanitizer's redzones catch any DMA past
 * it, and temporary raw images for the drives.
 */
#ifndef KESTREL_TESTS_FUZZ_DEVICE_H
#define KESTREL_TESTS_FUZZ_DEVICE_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "core/memory.h"

/* RAM of size bytes at guest address 0, allocated once and zeroed on every call. */
static inline struct guest_memory *fuzz_device_ram(size_t size)
{
	static struct guest_memory mem;

	if (!mem.host) {
		mem.host = malloc(size);
		if (!mem.host)
			abort();
		mem.ram_size = size;
		mem.regions[0] = (struct memory_region){ .gpa = 0, .size = size, .host = mem.host };
		mem.nr_regions = 1;
	}
	memset(mem.host, 0, size);
	return &mem;
}

/* A zero-filled raw image of bytes, already unlinked; opened with block flags. */
static inline struct block_dev *fuzz_temp_image(size_t bytes, unsigned flags)
{
	char path[] = "/tmp/kestrel-fuzz-XXXXXX", err[200];
	int fd = mkstemp(path);
	struct block_dev *bd = NULL;

	if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0)
		abort();
	close(fd);
	if (block_open(path, "raw", flags, &bd, err, sizeof(err)) < 0)
		abort();
	unlink(path);
	return bd;
}

#endif
