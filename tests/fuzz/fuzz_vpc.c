/*
 * libFuzzer target: a vpc image from fuzz bytes (src/block/vpc.c), read,
 * checked and written through the block library as fuzz_blockmap.h does.
 */
#include "fuzz_blockmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_blockmap("vpc", data, size);
}
