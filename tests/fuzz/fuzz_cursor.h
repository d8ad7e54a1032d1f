/*
 * The fuzz input read as a stream of little-endian values, for the device
 * targets that turn it into register accesses (e1000, VGA).  Past the end of
 * the input every read is zero.
 */
#ifndef KESTREL_TESTS_FUZZ_CURSOR_H
#define KESTREL_TESTS_FUZZ_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cursor {
	const uint8_t *p;
	size_t left;
};

static inline uint32_t take(struct cursor *c, unsigned bytes)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bytes && c->left; i++, c->left--)
		v |= (uint32_t)*c->p++ << (8 * i);
	return v;
}

#endif
