/* Strict UTF-8 (RFC 3629 §3). */
#ifndef KESTREL_UTIL_UTF8_H
#define KESTREL_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes one UTF-8 sequence strictly: no overlong forms, no surrogates,
 * nothing past U+10FFFF.  Sets *cp to -1 for an invalid one, which then
 * counts as one byte.  Returns the bytes used; n must be >= 1.
 */
size_t utf8_decode(const uint8_t *p, size_t n, int32_t *cp);

/* Whether s[0..len) is all valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/*
 * Encodes cp into 1 to 4 bytes at buf and returns how many; 0, writing
 * nothing, for a value that is no Unicode scalar (a surrogate, negative or
 * past U+10FFFF).
 */
size_t utf8_encode(char *buf, int32_t cp);

#endif
