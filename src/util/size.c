#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

bool uint_parse(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!text || !isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool suffix_unit(char c, uint64_t *unit)
{
	switch (toupper((unsigned char)c)) {
	case 'B': *unit = 1; return true;
	case 'K': *unit = 1ULL << 10; return true;
	case 'M': *unit = 1ULL << 20; return true;
	case 'G': *unit = 1ULL << 30; return true;
	case 'T': *unit = 1ULL << 40; return true;
	default: return false;
	}
}

bool size_parse(const char *text, uint64_t default_unit, uint64_t *out)
{
	uint64_t whole = 0, unit = default_unit;
	uint64_t frac_num = 0, frac_den = 1;
	const char *p = text;

	if (!text || !isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return false;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		/* Up to nine fractional digits are plenty for "1.5G". */
		for (int digits = 0; isdigit((unsigned char)*p); p++, digits++) {
			if (digits >= 9)
				return false;
			frac_num = frac_num * 10 + (uint64_t)(*p - '0');
			frac_den *= 10;
		}
	}
	if (*p != '\0') {
		if (!suffix_unit(*p, &unit) || p[1] != '\0')
			return false;
	} else if (frac_den != 1) {
		return false;	/* "1.5" alone is ambiguous, QEMU rejects it too */
	}
	if (whole > UINT64_MAX / unit)
		return false;
	uint64_t value = whole * unit;
	if (frac_num) {
		/* frac_num < frac_den <= 1e9 and unit <= 2^40: the product fits. */
		uint64_t extra = (uint64_t)((unsigned __int128)frac_num * unit / frac_den);
		if (value > UINT64_MAX - extra)
			return false;
		value += extra;
	}
	*out = value;
	return true;
}
