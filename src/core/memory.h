/*
 * Guest RAM: one anonymous host mapping shown to the guest as up to two KVM
 * memory slots, below the PCI hole and above 4 GiB, as QEMU's pc machine lays
 * it out.
 */
#ifndef KESTREL_VMM_MEMORY_H
#define KESTREL_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GIB (1ULL << 30)
#define MIB (1ULL << 20)
/* QEMU pc (i440fx): RAM from 3 GiB up moves above 4 GiB when it would cross 3.5 GiB. */
#define MEMORY_LOWMEM_LIMIT (3 * GIB)
#define MEMORY_LOWMEM_SPLIT (0xe0000000ULL)
#define MEMORY_HIGHMEM_BASE (4 * GIB)

/* The legacy VGA window, left out of low RAM's KVM slots (memory.c set_slots). */
#define MEMORY_VGA_HOLE_START 0xa0000ULL
#define MEMORY_VGA_HOLE_END 0xc0000ULL
#define MEMORY_SLOT_ABOVE_VGA 2	/* the KVM slot of low RAM above the hole */

#define MEMORY_MAX_BLOCKS 8	/* backends: one per NUMA node at most */

enum memory_kind {
	MEMORY_ANON,		/* memory-backend-ram (share=on: shared anonymous) */
	MEMORY_FILE,		/* memory-backend-file, -mem-path: a file, or a temporary one in a directory */
	MEMORY_MEMFD,		/* memory-backend-memfd */
};

/* numactl's policies, as -object memory-backend-*,policy= names them (MPOL_*). */
enum memory_policy {
	MEMORY_POLICY_DEFAULT,
	MEMORY_POLICY_PREFERRED,
	MEMORY_POLICY_BIND,
	MEMORY_POLICY_INTERLEAVE,
};

/* How one stretch of guest RAM is backed on the host. */
struct memory_backing {
	enum memory_kind kind;
	uint64_t size;
	const char *path;	/* MEMORY_FILE: a file, or a directory for a temporary one */
	bool share;		/* MAP_SHARED: the host sees guest writes (vhost-user, etc.) */
	bool prealloc;		/* fault everything in now, fail now if the host cannot */
	bool hugetlb;		/* MEMORY_MEMFD: MFD_HUGETLB */
	uint64_t hugetlbsize;	/* MEMORY_MEMFD hugetlb page size, 0: the host default */
	bool merge;		/* MADV_MERGEABLE: KSM may merge identical pages */
	bool dump;		/* false: MADV_DONTDUMP, left out of core dumps */
	uint64_t host_nodes;	/* bit n: host NUMA node n (mbind), 0: none given */
	enum memory_policy policy;
};

/* One mapped backend: where it is and how to give its pages back. */
struct memory_block {
	uint8_t *host;
	uint64_t size;
	uint64_t page_size;	/* 4 KiB, or the hugetlb page size */
	int fd;			/* -1 for anonymous memory */
	bool punch;		/* shared or hugetlb: MADV_REMOVE frees the backing pages */
};

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
	size_t map_size;	/* the reserved area, ram_size rounded up to its alignment */
	struct memory_block blocks[MEMORY_MAX_BLOCKS];
	unsigned nr_blocks;
};

/* Computes the region layout for ram_size without mapping anything (unit-testable). */
void memory_layout(struct guest_memory *mem, uint64_t ram_size);

/*
 * Maps RAM from the backends (laid end to end in guest-physical order; their
 * sizes add up to ram_size) and registers it with KVM.  nr == 0 means one
 * anonymous, lazily allocated, mergeable backend.  mem_lock mlocks it all
 * (-overcommit mem-lock=on).  Logs and returns -1 on failure.
 */
int memory_init(struct guest_memory *mem, int vm_fd, uint64_t ram_size,
		const struct memory_backing *backends, unsigned nr, bool mem_lock);
void memory_destroy(struct guest_memory *mem);
/*
 * What can be checked of a backend before a VM exists: a mem-path's directory
 * and the host-nodes it binds to.  Logs and returns -1 on the first problem.
 */
int memory_backing_check(const struct memory_backing *b);

/*
 * Host address of [gpa, gpa + len) if it lies entirely inside one RAM region,
 * else NULL.  Every guest-physical access the VMM makes goes through here.
 */
void *memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/* Copies into guest RAM; returns -1 when the range is not RAM. */
int memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, size_t len);

/*
 * Gives guest pages back to the host (balloon, free page reporting): the
 * range is rounded inward to whole host pages, then dropped with
 * MADV_DONTNEED, or MADV_REMOVE where the memory is shared or hugetlb (only
 * that frees the backing file's pages).  Returns -1 when it is not RAM.
 */
int memory_discard(const struct guest_memory *mem, uint64_t gpa, uint64_t len);
int memory_discard_host(const struct guest_memory *mem, void *host, size_t len);

/* The host page size behind guest address gpa (4 KiB, or the hugetlb size); 0 if not RAM. */
uint64_t memory_page_size(const struct guest_memory *mem, uint64_t gpa);

#endif
