/*
 * An address bus (port I/O or MMIO): ranges mapped to device handlers.  Ranges
 * are registered while the VM is built and only read once vCPUs run, so
 * dispatch needs no lock; each device locks its own state.
 */
#ifndef KESTREL_HW_BUS_H
#define KESTREL_HW_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* offset is relative to the range's base; data holds size bytes, little-endian. */
typedef void (*bus_access_fn)(void *dev, uint64_t offset, bool is_write, uint8_t *data,
			      unsigned size);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_access_fn access;
	void *dev;
	const char *name;	/* for "info mtree" */
};

struct bus {
	struct bus_range *ranges;	/* sorted by base, never overlapping */
	size_t count;
};

/* Returns -1 when the range overlaps one already registered or memory runs out. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *dev,
		 const char *name);

/* Returns false when no device claims addr: reads then see all ones. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, bool is_write, uint8_t *data,
		  unsigned size);

void bus_free(struct bus *bus);

#endif
