/*
 * blkdebug config files (src/block/blkdebug_rules.c): any text either
 * parses into rules or is refused with a message; parsed rules then take
 * events and requests driven by the same input without crashing, and a
 * check never returns anything but 0 or a negative errno in 1..4095.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/blkdebug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct blkdebug *s = blkdebug_new();
	char err[256] = "";
	size_t split = 0;

	if (!s)
		return 0;
	/* Text up to the first 0xff byte is the config; the rest drives events and checks. */
	while (split < len && data[split] != 0xff)
		split++;
	if (blkdebug_parse_config(s, (const char *)data, split, err, sizeof(err)) < 0) {
		if (!err[0])
			abort();	/* every refusal says why */
		blkdebug_free(s);
		return 0;
	}
	for (size_t i = split + 1; i + 2 < len; i += 3) {
		int ret;
		blkdebug_event(s, (enum blkdebug_event)(data[i] % (BLKDBG__MAX + 1)));
		ret = blkdebug_check(s, (uint64_t)data[i + 1] * 512, data[i + 2],
				     (enum blkdebug_iotype)(data[i + 2] % BLKDBG_IO__MAX));
		if (ret > 0 || ret < -4095)
			abort();
	}
	blkdebug_free(s);
	return 0;
}
