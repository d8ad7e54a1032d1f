/*
 * The NUMA tables of a -numa guest: SRAT (ACPI 6.4 §5.2.16) says which
 * proximity domain each CPU and each RAM range belongs to; SLIT (§5.2.17)
 * gives the distances between domains.  Laid out as QEMU's build_srat and
 * build_slit lay them out, so a guest sees the same topology on either.
 */
#include <string.h>

#include "vmm/boot/acpi.h"

#define SRAT_HEADER 48		/* table header, reserved1 (= 1), 8 reserved bytes */
#define SRAT_CPU_LEN 16
#define SRAT_MEM_LEN 40
#define SRAT_ENABLED 1u
#define SLIT_HEADER 44		/* table header, number of localities (u64) */

static uint8_t *srat_cpu(uint8_t *p, unsigned apic_id, unsigned node)
{
	uint32_t flags = SRAT_ENABLED;

	memset(p, 0, SRAT_CPU_LEN);
	p[0] = 0;		/* Processor Local APIC/SAPIC Affinity */
	p[1] = SRAT_CPU_LEN;
	p[2] = (uint8_t)node;	/* proximity domain [7:0]; [31:8] at 9..11 */
	p[3] = (uint8_t)apic_id;
	memcpy(p + 4, &flags, 4);
	return p + SRAT_CPU_LEN;
}

static uint8_t *srat_mem(uint8_t *p, uint64_t base, uint64_t len, unsigned node)
{
	uint32_t domain = node, flags = SRAT_ENABLED;

	memset(p, 0, SRAT_MEM_LEN);
	p[0] = 1;		/* Memory Affinity */
	p[1] = SRAT_MEM_LEN;
	memcpy(p + 2, &domain, 4);
	memcpy(p + 8, &base, 8);
	memcpy(p + 16, &len, 8);
	memcpy(p + 28, &flags, 4);
	return p + SRAT_MEM_LEN;
}

/*
 * One node's RAM, [start, start + size) in the order RAM is laid out: below
 * the PCI hole first, the rest from 4 GiB (core/memory.h), so a node may need
 * two entries.
 */
static uint8_t *srat_node_mem(uint8_t *p, uint64_t start, uint64_t size, uint64_t ram_size,
			      unsigned node)
{
	uint64_t low = ram_size >= MEMORY_LOWMEM_SPLIT ? MEMORY_LOWMEM_LIMIT : ram_size;
	uint64_t end = start + size;

	if (start < low)
		p = srat_mem(p, start, (end < low ? end : low) - start, node);
	if (end > low) {
		uint64_t from = start > low ? start : low;
		p = srat_mem(p, MEMORY_HIGHMEM_BASE + (from - low), end - from, node);
	}
	return p;
}

size_t acpi_srat_build(uint8_t *buf, size_t room, const struct acpi_config *cfg)
{
	const struct acpi_numa *numa = cfg->numa;
	size_t need = SRAT_HEADER + (size_t)cfg->maxcpus * SRAT_CPU_LEN +
		      2 * numa->nr_nodes * SRAT_MEM_LEN;
	uint32_t reserved1 = 1;	/* "must be 1" for backward compatibility */
	uint64_t start = 0;
	uint8_t *p = buf + SRAT_HEADER;

	if (need > room || numa->nr_nodes > ACPI_MAX_NODES)
		return 0;
	memset(buf, 0, SRAT_HEADER);
	memcpy(buf + 36, &reserved1, 4);
	/* Every possible CPU, as QEMU lists them: hot-plugged ones keep their node. */
	for (unsigned i = 0; i < cfg->maxcpus && i < 256; i++)
		p = srat_cpu(p, i, numa->cpu_node[i]);
	for (unsigned n = 0; n < numa->nr_nodes; n++) {
		if (numa->node_mem[n])
			p = srat_node_mem(p, start, numa->node_mem[n], numa->ram_size, n);
		start += numa->node_mem[n];
	}
	acpi_table_header(buf, "SRAT", (uint32_t)(p - buf), 1);
	return (size_t)(p - buf);
}

size_t acpi_slit_build(uint8_t *buf, size_t room, const struct acpi_numa *numa)
{
	uint64_t n = numa->nr_nodes;
	size_t len = SLIT_HEADER + n * n;

	if (len > room || n > ACPI_MAX_NODES)
		return 0;
	memset(buf, 0, SLIT_HEADER);
	memcpy(buf + 36, &n, 8);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			buf[SLIT_HEADER + i * n + j] = numa->distance[i][j];
	acpi_table_header(buf, "SLIT", (uint32_t)len, 1);
	return len;
}
