/*
 * ACPI tables for the pc machine: RSDP, XSDT/RSDT, FADT (+FACS), MADT and the
 * iasl-compiled DSDT, written into the BIOS area where guests look for them.
 */
#ifndef KESTREL_VMM_BOOT_ACPI_H
#define KESTREL_VMM_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/memory.h"

#define ACPI_MAX_NODES 8

/* NUMA topology for SRAT and SLIT (-numa); nr_nodes == 0: neither table. */
struct acpi_numa {
	unsigned nr_nodes;
	uint8_t cpu_node[256];		/* proximity domain of each vCPU */
	uint64_t node_mem[ACPI_MAX_NODES];	/* bytes of RAM per node, in guest order */
	uint64_t ram_size;
	bool slit;			/* -numa dist given: QEMU builds a SLIT only then */
	uint8_t distance[ACPI_MAX_NODES][ACPI_MAX_NODES];
};

struct acpi_config {
	unsigned cpus;		/* enabled processors */
	unsigned maxcpus;	/* listed, the rest disabled (hotplug) */
	const struct acpi_numa *numa;	/* NULL: no NUMA tables */
};

/* acpi_numa.c: SRAT (ACPI 6.4 §5.2.16) and SLIT (§5.2.17) into buf; 0 when they do not fit. */
size_t acpi_srat_build(uint8_t *buf, size_t room, const struct acpi_config *cfg);
size_t acpi_slit_build(uint8_t *buf, size_t room, const struct acpi_numa *numa);
void acpi_table_header(void *table, const char *sig, uint32_t len, uint8_t rev);

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
