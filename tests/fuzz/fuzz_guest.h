/*
 * Shared by the loader fuzz targets: 64 MiB of fake guest RAM from malloc,
 * so AddressSanitizer's redzones catch any write a loader makes past it.
 */
#ifndef KESTREL_TESTS_FUZZ_GUEST_H
#define KESTREL_TESTS_FUZZ_GUEST_H

#include <stdlib.h>

#include "vmm/boot/boot.h"
#include "core/memory.h"

#define FUZZ_RAM_SIZE (64ULL << 20)

static struct guest_memory fuzz_mem;
static uint8_t fuzz_initrd[12288];

static inline const struct guest_memory *fuzz_guest_memory(void)
{
	if (!fuzz_mem.host) {
		memory_layout(&fuzz_mem, FUZZ_RAM_SIZE);
		fuzz_mem.host = malloc(FUZZ_RAM_SIZE);
		if (!fuzz_mem.host)
			abort();
		fuzz_mem.regions[0].host = fuzz_mem.host;
	}
	return &fuzz_mem;
}

/*
 * The request boot_setup would make.  The low bit of the input's length picks
 * whether an initrd comes along, so both placement paths are reached without
 * spending input bytes on it.
 */
static inline struct boot_request fuzz_boot_request(size_t len)
{
	return (struct boot_request){
		.mem = fuzz_guest_memory(),
		.initrd = fuzz_initrd,
		.initrd_len = (len & 1) ? sizeof(fuzz_initrd) : 0,
		.cmdline = "console=ttyS0 earlyprintk=serial panic=-1",
		.rsdp = 0xe0000,
	};
}

#endif
