/* Sizes as QEMU spells them: "128", "128M", "1G", "1.5k", "0x1000", "4096B". */
#ifndef KESTREL_UTIL_SIZE_H
#define KESTREL_UTIL_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * QEMU's qemu_strtosz (util/cutils.c), byte for byte: leading blanks and a
 * '+' are allowed; a decimal integer, optionally with a fraction ("1.5k",
 * "1.k", "1024.0": a non-zero fraction needs a suffix, no exponent), or a
 * 0x hex integer (no fraction); then at most one suffix B K M G T P E
 * (either case, powers of 1024).  The fraction is scaled exactly and 0.5 of
 * a byte rounds up.  Returns 0, -EINVAL (syntax) or -ERANGE (2^64 or more).
 * *hex_suffix (may be NULL) reports hex with a suffix, which QEMU accepts
 * with a deprecation warning.  *out is only written on success.
 */
int size_strtosz(const char *text, uint64_t *out, bool *hex_suffix);

/*
 * A size for an option whose bare numbers are in default_unit (QEMU's -m
 * is in MiB): parsed as qemu_strtosz does, then multiplied by default_unit
 * when the text ends in a digit, as QEMU's "legacy suffix-less format"
 * fix-up does.  Returns false on any syntax error or overflow.
 */
bool size_parse(const char *text, uint64_t default_unit, uint64_t *out);

/* Parses a decimal or 0x-prefixed unsigned integer that must fill the whole string. */
bool uint_parse(const char *text, uint64_t *out);

#endif
