/*
 * Test doubles shared by the unit tests: a power sink that records what the
 * platform devices signal, and guest RAM over a plain heap buffer so loaders
 * and table builders run without KVM.
 */
#ifndef KESTREL_TESTS_UNIT_FAKE_H
#define KESTREL_TESTS_UNIT_FAKE_H

#include <stdlib.h>
#include <string.h>

#include "hw/power.h"
#include "core/memory.h"

struct power_log {
	int count;
	enum power_event last;
	int status;
};

static inline void power_log_event(void *opaque, enum power_event event, int status)
{
	struct power_log *log = opaque;

	log->count++;
	log->last = event;
	log->status = status;
}

static inline struct power_sink power_log_sink(struct power_log *log)
{
	memset(log, 0, sizeof(*log));
	return (struct power_sink){ .event = power_log_event, .opaque = log };
}

/*
 * Lays out ram_size bytes as the VMM would and backs them with calloc'd memory
 * (pages appear only when touched).  Returns 0, or -1 when the host refuses.
 */
static inline int fake_memory_init(struct guest_memory *mem, uint64_t ram_size)
{
	uint64_t offset = 0;

	memory_layout(mem, ram_size);
	mem->host = calloc(1, ram_size);
	if (!mem->host)
		return -1;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		mem->regions[i].host = mem->host + offset;
		offset += mem->regions[i].size;
	}
	return 0;
}

static inline void fake_memory_free(struct guest_memory *mem)
{
	free(mem->host);
	mem->host = NULL;
}

#endif
