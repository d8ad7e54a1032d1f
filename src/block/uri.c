/*
 * %XX escapes (RFC 3986 section 2.1) decoded in place, as QEMU's URI
 * parser hands out path, host and query values: shared by the URL parsers
 * of the network protocols (gluster, nfs).
 */
#include "block/block_int.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool block_uri_unescape(char *s, bool strict)
{
	char *w = s;

	for (; *s; s++) {
		int hi = *s == '%' ? hexval(s[1]) : -1;
		int lo = hi < 0 ? -1 : hexval(s[2]);
		if (*s == '%' && strict && (lo < 0 || (hi == 0 && lo == 0)))
			return false;
		if (lo < 0) {
			*w++ = *s;
			continue;
		}
		*w++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*w = '\0';
	return true;
}
