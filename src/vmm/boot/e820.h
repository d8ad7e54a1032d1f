/* The guest's physical memory map (BIOS INT 15h E820 format). */
#ifndef KESTREL_VMM_BOOT_E820_H
#define KESTREL_VMM_BOOT_E820_H

#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX_ENTRIES 8

/* Packed: Linux's boot_params.e820_table has exactly this 20-byte layout. */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fills out (room for E820_MAX_ENTRIES) and returns the entry count. */
size_t e820_build(const struct guest_memory *mem, struct e820_entry *out);

#endif
