#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* QEMU's suffix_mul with unit 1024: 0 when c is not a suffix. */
static uint64_t suffix_mul(char c)
{
	switch (toupper((unsigned char)c)) {
	case 'B': return 1;
	case 'K': return 1ULL << 10;
	case 'M': return 1ULL << 20;
	case 'G': return 1ULL << 30;
	case 'T': return 1ULL << 40;
	case 'P': return 1ULL << 50;
	case 'E': return 1ULL << 60;
	default: return 0;
	}
}

/* strtoull as qemu_strtou64 checks it: no digits is -EINVAL, overflow -ERANGE. */
static int strtou64(const char *text, char **end, int base, uint64_t *val)
{
	errno = 0;
	*val = strtoull(text, end, base);
	if (*end == text)
		return -EINVAL;
	return errno == ERANGE ? -ERANGE : 0;
}

/*
 * The fraction after the integer part, as a 0.64 fixed-point number.  QEMU
 * converts (double)fraction * 2^64 to uint64_t; a fraction that rounds to
 * 1.0 ("0.99999999999999999999k") comes out as 0 on x86-64, and qemu-img
 * 7.2 prints exactly that, so it is kept.
 */
static int parse_fraction(const char *f, char **end, uint64_t *valf)
{
	double fraction;

	errno = 0;
	fraction = strtod(f, end);
	if (*end == f || errno == ERANGE) {
		*end = (char *)f + 1;	/* "1." and "1.k": no digits after the point */
		return 0;
	}
	if (memchr(f, 'e', (size_t)(*end - f)) || memchr(f, 'E', (size_t)(*end - f)))
		return -EINVAL;
	*valf = fraction < 1.0 ? (uint64_t)(fraction * 0x1p64) : 0;
	return 0;
}

int size_strtosz(const char *text, uint64_t *out, bool *hex_suffix)
{
	uint64_t val, valf = 0, mul;
	bool hex = false, suffixed;
	char *end;
	int ret;

	if (!text)
		return -EINVAL;
	ret = strtou64(text, &end, 10, &val);
	if (ret < 0) {
		/* Junk after an overflowing number is a syntax error first. */
		return ret == -ERANGE && *end ? -EINVAL : ret;
	}
	if (memchr(text, '-', (size_t)(end - text)))
		return -EINVAL;
	if (val == 0 && (*end == 'x' || *end == 'X')) {
		ret = strtou64(text, &end, 16, &val);
		if (ret < 0)
			return ret == -ERANGE && *end ? -EINVAL : ret;
		if (*end == '.')
			return -EINVAL;
		hex = true;
	} else if (*end == '.') {
		ret = parse_fraction(end, &end, &valf);
		if (ret < 0)
			return ret;
	}
	mul = suffix_mul(*end);
	suffixed = mul != 0;
	if (suffixed)
		end++;
	else
		mul = 1;
	if (*end)
		return -EINVAL;
	if (mul == 1 && valf)
		return -EINVAL;	/* a fraction of a byte: QEMU wants a scale */
	if (mul > 1) {
		/* 64.64 fixed point times the unit, 0.5 rounded up (QEMU's do_strtosz). */
		unsigned __int128 whole = (unsigned __int128)val * mul;
		unsigned __int128 part = (unsigned __int128)valf * mul;
		whole += (uint64_t)(part >> 64);
		whole += (uint64_t)part >> 63;
		if (whole >> 64)
			return -ERANGE;
		val = (uint64_t)whole;
	}
	if (hex_suffix)
		*hex_suffix = hex && suffixed;
	*out = val;
	return 0;
}

bool size_parse(const char *text, uint64_t default_unit, uint64_t *out)
{
	size_t len = text ? strlen(text) : 0;
	uint64_t v;

	if (size_strtosz(text, &v, NULL) < 0)
		return false;
	if (len && isdigit((unsigned char)text[len - 1]) && default_unit > 1) {
		if (v > UINT64_MAX / default_unit)
			return false;
		v *= default_unit;
	}
	*out = v;
	return true;
}
