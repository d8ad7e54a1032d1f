/*
 * %XX escapes (RFC 3986 section 2.1) decoded in place, as QEMU's URI
 * parser hands out path, host and query values: shared by the URL parsers
 * of the network protocols (gluster, nfs).
 */
#include "block/block_int.h"
#include "util/bytes.h"

bool block_uri_unescape(char *s, bool strict)
{
	char *w = s;

	for (; *s; s++) {
		int hi = *s == '%' ? hex_digit(s[1]) : -1;
		int lo = hi < 0 ? -1 : hex_digit(s[2]);
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
