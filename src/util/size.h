/* Sizes as QEMU spells them: "128", "128M", "1G", "512k", "4096B". */
#ifndef KESTREL_UTIL_SIZE_H
#define KESTREL_UTIL_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Parses a size with an optional suffix B, K, M, G, T (case-insensitive, powers
 * of 1024); a bare number is multiplied by default_unit.  A fraction is allowed
 * with a suffix ("1.5G").  Returns false on any syntax error or overflow.
 */
bool size_parse(const char *text, uint64_t default_unit, uint64_t *out);

/* Parses a decimal or 0x-prefixed unsigned integer that must fill the whole string. */
bool uint_parse(const char *text, uint64_t *out);

#endif
