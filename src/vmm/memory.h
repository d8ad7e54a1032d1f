/*
 * Guest RAM: one anonymous host mapping shown to the guest as up to two KVM
 * memory slots, below the PCI hole and above 4 GiB, as QEMU's pc machine lays
 * it out.
 */
#ifndef KESTREL_VMM_MEMORY_H
#define KESTREL_VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GIB (1ULL << 30)
#define MIB (1ULL << 20)
/* QEMU pc (i440fx): RAM from 3 GiB up moves above 4 GiB when it would cross 3.5 GiB. */
#define MEMORY_LOWMEM_LIMIT (3 * GIB)
#define MEMORY_LOWMEM_SPLIT (0xe0000000ULL)
#define MEMORY_HIGHMEM_BASE (4 * GIB)

struct memory_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_memory {
	uint8_t *host;		/* the whole mapping */
	uint64_t ram_size;
	struct memory_region regions[2];
	unsigned nr_regions;
};

/* Computes the region layout for ram_size without mapping anything (unit-testable). */
void memory_layout(struct guest_memory *mem, uint64_t ram_size);

/* Maps RAM and registers it with KVM; logs and returns -1 on failure. */
int memory_init(struct guest_memory *mem, int vm_fd, uint64_t ram_size);
void memory_destroy(struct guest_memory *mem);

/*
 * Host address of [gpa, gpa + len) if it lies entirely inside one RAM region,
 * else NULL.  Every guest-physical access the VMM makes goes through here.
 */
void *memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/* Copies into guest RAM; returns -1 when the range is not RAM. */
int memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, size_t len);

#endif
