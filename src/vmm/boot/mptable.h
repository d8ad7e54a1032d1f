/* Intel MultiProcessor Specification 1.4 tables, for guests that do not use ACPI. */
#ifndef KESTREL_VMM_BOOT_MPTABLE_H
#define KESTREL_VMM_BOOT_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

/* Builds the floating pointer and configuration table for cpus processors into buf
 * (the bytes at guest address base); returns the length used, 0 if room is short. */
size_t mptable_build(uint8_t *buf, size_t room, uint64_t base, unsigned cpus);

/* Writes them to MPTABLE_ADDR; returns -1 if they do not fit. */
int mptable_install(const struct guest_memory *mem, unsigned cpus);

#endif
