#include "hw/bus.h"

#include <stdlib.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_access_fn access, void *dev,
		 const char *name)
{
	size_t i = 0;

	if (len == 0 || base + len < base)
		return -1;
	while (i < bus->count && bus->ranges[i].base < base)
		i++;
	if (i > 0 && bus->ranges[i - 1].base + bus->ranges[i - 1].len > base)
		return -1;
	if (i < bus->count && base + len > bus->ranges[i].base)
		return -1;

	struct bus_range *r = realloc(bus->ranges, (bus->count + 1) * sizeof(*r));
	if (!r)
		return -1;
	bus->ranges = r;
	memmove(&r[i + 1], &r[i], (bus->count - i) * sizeof(*r));
	r[i] = (struct bus_range){
		.base = base, .len = len, .access = access, .dev = dev, .name = name,
	};
	bus->count++;
	return 0;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, bool is_write, uint8_t *data,
		  unsigned size)
{
	size_t lo = 0, hi = bus->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			r->access(r->dev, addr - r->base, is_write, data, size);
			return true;
		}
	}
	if (!is_write)
		memset(data, 0xff, size);
	return false;
}

void bus_free(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = 0;
}
