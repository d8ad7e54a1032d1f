/*
 * size_parse and uint_parse, with properties checked on every success:
 * a size that does not end in a digit does not depend on the default unit,
 * and one that does (QEMU's "legacy suffix-less format", e.g. -m 128)
 * scales exactly by it.  "1." or "0xb" end in no digit, so QEMU does not
 * scale them either.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *text = malloc(len + 1);
	uint64_t bytes, mib, v;

	if (!text)
		return 0;
	memcpy(text, data, len);
	text[len] = '\0';

	/* The parsers see the text up to its first NUL, like argv strings. */
	size_t slen = strlen(text);
	bool ok_b = size_parse(text, 1, &bytes);
	bool ok_m = size_parse(text, 1ULL << 20, &mib);
	bool suffixed = slen > 0 && !(text[slen - 1] >= '0' && text[slen - 1] <= '9');

	if (suffixed) {
		if (ok_b != ok_m || (ok_b && bytes != mib))
			abort();
	} else if (ok_m) {
		if (!ok_b || bytes > UINT64_MAX >> 20 || bytes << 20 != mib)
			abort();
	} else if (ok_b && bytes <= UINT64_MAX >> 20) {
		abort();	/* fits times a MiB, yet refused */
	}
	if (uint_parse(text, &v) && v != strtoull(text, NULL, 0))
		abort();
	free(text);
	return 0;
}
