/*
 * libFuzzer target: a vdi image from fuzz bytes (src/block/vdi.c), read,
 * checked and written through the block library as fuzz_blockmap.h does.
 */
#include "fuzz_blockmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_blockmap("vdi", data, size);
}
