/*
 * ACPI tables for the pc machine: RSDP, XSDT/RSDT, FADT (+FACS), MADT and the
 * iasl-compiled DSDT, written into the BIOS area where guests look for them.
 */
#ifndef KESTREL_VMM_BOOT_ACPI_H
#define KESTREL_VMM_BOOT_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

struct acpi_config {
	unsigned cpus;		/* enabled processors */
	unsigned maxcpus;	/* listed, the rest disabled (hotplug) */
};

/*
 * Builds the tables into buf (the bytes that will sit at guest address base)
 * and returns the used length, or 0 when room is too small.  The RSDP is first,
 * at base.
 */
size_t acpi_build(uint8_t *buf, size_t room, uint64_t base, const struct acpi_config *cfg);

/* Writes the tables to ACPI_TABLES_ADDR; returns -1 if they do not fit. */
int acpi_install(const struct guest_memory *mem, const struct acpi_config *cfg, uint64_t *rsdp);

/* Byte sum, for checksums. */
uint8_t acpi_sum(const void *data, size_t len);

#endif
