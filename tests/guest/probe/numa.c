/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scenario "numa": the NUMA topology the firmware tables describe, as
 * Linux's acpi_numa_init reads it: SRAT (ACPI 6.4 §5.2.16) processor and
 * memory affinity entries, SLIT (§5.2.17) distances.
 */
#include "probe.h"

#define SRAT_ENTRIES	48	/* header, reserved 4 + 8 bytes */
#define SRAT_LAPIC	0
#define SRAT_MEMORY	1
#define SRAT_X2APIC	2
#define NODES_MAX	64

bool scenario_numa(const struct platform *p, const struct args *a)
{
	uint64_t seen = 0;
	unsigned nodes = 0;

	if (!p->srat) {
		say("numa: no srat");
		say("numa: nodes 0");
		return true;
	}
	const uint8_t *t = p->srat, *end = t + get32(t + 4);
	for (const uint8_t *e = t + SRAT_ENTRIES; e + 2 <= end && e[1] >= 2; e += e[1]) {
		uint32_t node;

		if (e + e[1] > end)
			return fail("numa: srat entry at +%ld overruns the table", (long)(e - t));
		if (e[0] == SRAT_LAPIC && e[1] >= 16 && (get32(e + 4) & 1)) {
			node = e[2] | (uint32_t)e[9] << 8 | (uint32_t)e[10] << 16 | (uint32_t)e[11] << 24;
			say("numa: srat cpu apic %u node %u", e[3], node);
		} else if (e[0] == SRAT_X2APIC && e[1] >= 24 && (get32(e + 12) & 1)) {
			node = get32(e + 4);
			say("numa: srat cpu x2apic %u node %u", get32(e + 8), node);
		} else if (e[0] == SRAT_MEMORY && e[1] >= 40 && (get32(e + 28) & 1)) {
			node = get32(e + 2);
			if (get32(e + 28) & 2)
				continue;	/* hot-pluggable ranges are not present memory */
			say("numa: srat mem 0x%lx-0x%lx node %u", get64(e + 8),
			    get64(e + 8) + get64(e + 16) - 1, node);
		} else {
			continue;
		}
		if (node < NODES_MAX && !(seen >> node & 1)) {
			seen |= 1ull << node;
			nodes++;
		}
	}
	say("numa: nodes %u", nodes);
	if (p->slit) {
		uint64_t n = get64(p->slit + 36);
		const uint8_t *m = p->slit + 44;

		if (n > 16 || 44 + n * n > get32(p->slit + 4))
			return fail("numa: slit with %lu localities does not fit its table", n);
		for (uint64_t i = 0; i < n; i++) {
			char row[16 * 4 + 1];
			int k = 0;

			for (uint64_t j = 0; j < n; j++) {
				unsigned v = m[i * n + j];
				row[k++] = ' ';
				if (v >= 100)
					row[k++] = (char)('0' + v / 100);
				if (v >= 10)
					row[k++] = (char)('0' + v / 10 % 10);
				row[k++] = (char)('0' + v % 10);
			}
			row[k] = 0;
			say("numa: slit %lu:%s", i, row);
		}
	}
	return true;
}
