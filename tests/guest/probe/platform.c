/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the VMM told the guest: the PVH start_info (command line, memory
 * map), the ACPI tables, the MP table and CPUID; and power-off through
 * the register the FADT names.  Every pointer comes from the VMM under
 * test, so each is bounds-checked against the 4 GiB identity map first:
 * a page fault here would be a triple fault, with no report.
 */
#include "probe.h"

#define MIB			((uint64_t)1 << 20)
#define MAPPED_LIMIT		((uint64_t)1 << 32)	/* entry.S maps 0..4 GiB */
#define MEMMAP_MAX		128

#define ACPI_HDR_LEN		36
#define ACPI_RSDP_V1_LEN	20
#define ACPI_RSDP_V2_LEN	36

/* ACPI 6.4 §5.2.9 FADT field offsets */
#define FADT_DSDT		40
#define FADT_PM1A_CNT_BLK	64
#define FADT_PM1B_CNT_BLK	68
#define FADT_FLAGS		112
#define FADT_X_DSDT		140
#define FADT_SLEEP_CONTROL_REG	244
#define FADT_HW_REDUCED_ACPI	(1u << 20)

#define MADT_ENTRIES		44		/* after LAPIC address, flags */
#define MADT_LAPIC		0
#define MADT_X2APIC		9

/* MP spec 1.4 §4 */
#define MPC_HDR_LEN		44
#define MPC_PROCESSOR		0
#define MPC_CPU_ENABLED		0x01

static bool mapped(uint64_t pa, uint64_t len)
{
	return pa < MAPPED_LIMIT && len <= MAPPED_LIMIT - pa;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static const char *cmdline_of(const struct hvm_start_info *si)
{
	if (!si || !si->cmdline_paddr || !mapped(si->cmdline_paddr, 1))
		return "";
	return phys(si->cmdline_paddr);
}

static void memmap_probe(const struct hvm_start_info *si, struct platform *p)
{
	const struct hvm_memmap_entry *e;
	uint32_t n;

	p->ram_bytes = 0;
	n = si && si->version >= 1 ? si->memmap_entries : 0;
	if (n > MEMMAP_MAX)
		n = MEMMAP_MAX;
	if (!n || !mapped(si->memmap_paddr, n * sizeof(*e))) {
		say("e820: none");
		n = 0;
	}
	p->memmap = n ? phys(si->memmap_paddr) : NULL;
	p->memmap_entries = n;
	for (uint32_t i = 0; i < n; i++) {
		e = &p->memmap[i];
		say("e820: 0x%016lx-0x%016lx %u", e->addr, e->addr + e->size,
		    e->type);
		if (e->type == E820_RAM)
			p->ram_bytes += e->size;
	}
	say("memory: %lu MiB", (p->ram_bytes + MIB - 1) / MIB);
}

/* A whole ACPI table (header and body) inside the map, or NULL. */
static const uint8_t *acpi_map(uint64_t pa)
{
	const uint8_t *t;
	uint32_t len;

	if (!pa || !mapped(pa, ACPI_HDR_LEN))
		return NULL;
	t = phys(pa);
	len = get32(t + 4);
	if (len < ACPI_HDR_LEN || !mapped(pa, len))
		return NULL;
	return t;
}

/* Print one "acpi: SIG at ADDR len LEN" line; the table, or NULL. */
static const uint8_t *acpi_show(uint64_t pa)
{
	const uint8_t *t = acpi_map(pa);

	if (!t) {
		say("acpi: unreadable table at 0x%lx", pa);
		return NULL;
	}
	say("acpi: %.*s at 0x%lx len %u%s", 4, (const char *)t, pa,
	    get32(t + 4), sum8(t, get32(t + 4)) ? " bad checksum" : "");
	return t;
}

/* ACPI 6.4 §5.2.5.3: rev 0 checksums 20 bytes, rev 2+ also all 36. */
static bool rsdp_valid(uint64_t pa)
{
	const uint8_t *r;

	if (!mapped(pa, ACPI_RSDP_V2_LEN))
		return false;
	r = phys(pa);
	if (memcmp(r, "RSD PTR ", 8) || sum8(r, ACPI_RSDP_V1_LEN))
		return false;
	return r[15] < 2 || !sum8(r, ACPI_RSDP_V2_LEN);
}

/* ACPI 6.4 §5.2.5.1: on a 16-byte boundary in the BIOS area. */
static uint64_t rsdp_scan(void)
{
	for (uint64_t pa = 0xe0000; pa < 0x100000; pa += 16)
		if (rsdp_valid(pa))
			return pa;
	return 0;
}

static uint64_t fadt_dsdt(const uint8_t *f)
{
	uint32_t len = get32(f + 4);

	if (len >= FADT_X_DSDT + 8 && get64(f + FADT_X_DSDT))
		return get64(f + FADT_X_DSDT);
	return len >= FADT_DSDT + 4 ? get32(f + FADT_DSDT) : 0;
}

/* Enabled Processor Local APIC and x2APIC structures (ACPI 6.4 §5.2.12). */
static int madt_cpus(const uint8_t *m)
{
	uint32_t len = get32(m + 4), off = MADT_ENTRIES;
	int n = 0;

	while (off + 2 <= len) {
		const uint8_t *e = m + off;

		if (e[1] < 2 || off + e[1] > len)
			break;
		if (e[0] == MADT_LAPIC && e[1] >= 8 && (get32(e + 4) & 1))
			n++;
		if (e[0] == MADT_X2APIC && e[1] >= 16 && (get32(e + 8) & 1))
			n++;
		off += e[1];
	}
	return n;
}

static void acpi_probe(const struct hvm_start_info *si, struct platform *p)
{
	uint64_t rsdp = si ? si->rsdp_paddr : 0, root_pa;
	const uint8_t *r, *root;
	unsigned int esize;
	uint32_t n;

	if (rsdp && !rsdp_valid(rsdp)) {
		say("acpi: bad rsdp at 0x%lx from start_info", rsdp);
		rsdp = 0;
	}
	if (!rsdp)
		rsdp = rsdp_scan();
	if (!rsdp) {
		say("acpi: none");
		return;
	}
	r = phys(rsdp);
	say("acpi: rsdp at 0x%lx oem %.*s", rsdp, 6, (const char *)r + 9);

	/* XSDT (64-bit entries) when the RSDP is ACPI 2.0+ and has one. */
	root_pa = r[15] >= 2 ? get64(r + 24) : 0;
	esize = root_pa ? 8 : 4;
	if (!root_pa)
		root_pa = get32(r + 16);
	root = acpi_show(root_pa);
	if (!root)
		return;

	n = (get32(root + 4) - ACPI_HDR_LEN) / esize;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = root + ACPI_HDR_LEN + i * esize;
		const uint8_t *t = acpi_show(esize == 8 ? get64(e) : get32(e));

		if (!t)
			continue;
		if (!memcmp(t, "FACP", 4)) {
			p->fadt = t;
			/* The DSDT hangs off the FADT, not the root table. */
			acpi_show(fadt_dsdt(t));
		} else if (!memcmp(t, "APIC", 4)) {
			p->madt_cpus = madt_cpus(t);
		} else if (!memcmp(t, "SRAT", 4)) {
			p->srat = t;
		} else if (!memcmp(t, "SLIT", 4)) {
			p->slit = t;
		}
	}
}

static uint64_t mp_scan(uint64_t base, uint64_t len)
{
	for (uint64_t pa = base; pa + 16 <= base + len; pa += 16) {
		const uint8_t *f = phys(pa);

		if (!memcmp(f, "_MP_", 4) && f[8] &&
		    mapped(pa, f[8] * 16) && !sum8(f, f[8] * 16))
			return pa;
	}
	return 0;
}

/* MP spec 1.4 §4.1: the floating pointer, then the configuration table. */
static void mp_probe(struct platform *p)
{
	uint64_t ebda = (uint64_t)get16(phys(0x40e)) << 4, fp = 0;
	const uint8_t *c;
	uint32_t cfg, len, off;
	int n = 0;

	if (ebda && ebda + 1024 <= 0xa0000)
		fp = mp_scan(ebda, 1024);
	if (!fp)
		fp = mp_scan(0x9fc00, 1024);
	if (!fp)
		fp = mp_scan(0xf0000, 0x10000);
	if (!fp) {
		say("mptable: none");
		return;
	}

	cfg = get32((const uint8_t *)phys(fp) + 4);
	if (!cfg) {
		/* §4.1: no table, a default configuration (all have 2 CPUs) */
		p->mp_cpus = 2;
		say("mptable: %d cpus", p->mp_cpus);
		return;
	}
	c = mapped(cfg, MPC_HDR_LEN) ? phys(cfg) : NULL;
	len = c ? get16(c + 4) : 0;
	if (!c || memcmp(c, "PCMP", 4) || len < MPC_HDR_LEN ||
	    !mapped(cfg, len) || sum8(c, len)) {
		say("mptable: bad configuration table at 0x%x", cfg);
		return;
	}
	/* Processor entries are 20 bytes, the other base types 8 (§4.3). */
	for (off = MPC_HDR_LEN; off < len;) {
		if (c[off] == MPC_PROCESSOR) {
			if (off + 20 > len)
				break;
			n += (c[off + 3] & MPC_CPU_ENABLED) != 0;
			off += 20;
		} else if (c[off] <= 4) {
			off += 8;
		} else {
			break;
		}
	}
	p->mp_cpus = n;
	say("mptable: %d cpus", n);
}

static void cpu_probe(void)
{
	const uint32_t *v = boot_cpuid[CPUID_VENDOR], *h = boot_cpuid[CPUID_HV];
	char vendor[13], hv[13] = "none";

	memcpy(vendor, &v[1], 4);		/* EBX EDX ECX */
	memcpy(vendor + 4, &v[3], 4);
	memcpy(vendor + 8, &v[2], 4);
	vendor[12] = 0;

	/* CPUID.1:ECX[31] says leaf 0x40000000 holds a hypervisor name. */
	if (boot_cpuid[CPUID_FEATURES][2] & (1u << 31)) {
		memcpy(hv, &h[1], 4);		/* EBX ECX EDX */
		memcpy(hv + 4, &h[2], 4);
		memcpy(hv + 8, &h[3], 4);
		hv[12] = 0;
		if (!hv[0])
			memcpy(hv, "unknown", 8);
	}
	say("cpu: %s hypervisor %s", vendor, hv);
}

void platform_probe(const struct hvm_start_info *si, struct platform *p)
{
	char a[16], b[16];
	int n;

	p->si = si && si->magic == HVM_START_MAGIC ? si : NULL;
	p->cmdline = cmdline_of(p->si);
	p->fadt = NULL;
	p->madt_cpus = -1;
	p->mp_cpus = -1;
	p->srat = p->slit = NULL;

	say("cmdline: %s", p->cmdline);
	memmap_probe(p->si, p);
	acpi_probe(p->si, p);
	mp_probe(p);

	/* The MADT is what OSes believe; the MP table is the fallback. */
	n = p->madt_cpus >= 0 ? p->madt_cpus : p->mp_cpus >= 0 ? p->mp_cpus : 1;
	say("cpus: %d (madt %s, mptable %s)", n, count_str(p->madt_cpus, a),
	    count_str(p->mp_cpus, b));
	cpu_probe();
}

/* "_S5_" PackageOp PkgLength NumElements <SLP_TYPa> (ACPI 6.4 §7.4.2). */
static unsigned int dsdt_s5_slp_typ(const uint8_t *d)
{
	uint32_t len = get32(d + 4);

	for (uint32_t i = ACPI_HDR_LEN; i + 7 <= len; i++) {
		const uint8_t *q = d + i + 4;

		if (memcmp(d + i, "_S5_", 4) || *q++ != 0x12)
			continue;
		q += 1 + (*q >> 6);	/* PkgLength: bits 7:6 = extra bytes */
		q++;			/* NumElements */
		if (q + 2 > d + len)
			return 0;
		switch (*q) {
		case 0x00:		/* ZeroOp */
			return 0;
		case 0x01:		/* OneOp */
			return 1;
		case 0xff:		/* OnesOp */
			return 7;
		case 0x0a:		/* BytePrefix */
		case 0x0b:		/* WordPrefix */
		case 0x0c:		/* DWordPrefix */
			return q[1] & 7;
		}
		return 0;
	}
	return 0;
}

/* ACPI 6.4 §5.2.3.2 Generic Address Structure, 8-bit register. */
static void gas_write8(const uint8_t *gas, uint8_t v)
{
	uint64_t addr = get64(gas + 4);

	if (gas[0] == 0 && mapped(addr, 1))
		*(volatile uint8_t *)phys(addr) = v;
	else if (gas[0] == 1)
		outb((uint16_t)addr, v);
}

/*
 * The ACPI fixed power button (6.4 §4.8.3.1): PM1_EN and PM1_STS live in
 * the PM1a event block, status in its first half, enable in the second.
 * The SCI it raises goes nowhere (the 8259 and IOAPIC are masked), so the
 * probe polls the status bit instead.
 */
#define FADT_PM1A_EVT_BLK	56
#define FADT_PM1_EVT_LEN	88
#define PM1_PWRBTN		0x0100

static uint16_t pm1_evt_port(const struct platform *p)
{
	const uint8_t *f = p->fadt;

	if (!f || get32(f + 4) < FADT_PM1_EVT_LEN + 1)
		return 0;
	return (uint16_t)get32(f + FADT_PM1A_EVT_BLK);
}

void platform_power_button_arm(const struct platform *p)
{
	uint16_t port = pm1_evt_port(p);

	if (!port)
		return;
	outw(port, PM1_PWRBTN);		/* clear a stale press (write one to clear) */
	outw((uint16_t)(port + p->fadt[FADT_PM1_EVT_LEN] / 2), PM1_PWRBTN);
}

bool platform_power_button_pressed(const struct platform *p)
{
	uint16_t port = pm1_evt_port(p);

	if (!port || !(inw(port) & PM1_PWRBTN))
		return false;
	outw(port, PM1_PWRBTN);
	return true;
}

/*
 * S5 through the FADT: the sleep control register on hardware-reduced
 * ACPI (ACPI 6.4 §4.8.3.7: SLP_TYP at bits 4:2, SLP_EN bit 5), else
 * PM1x_CNT (§4.8.4.2.1: SLP_TYP at bits 12:10, SLP_EN bit 13).  If the
 * VMM ignores both, isa-debug-exit (if present) ends QEMU.
 */
void platform_poweroff(const struct platform *p)
{
	const uint8_t *f = p->fadt;

	say("poweroff");
	if (f) {
		uint32_t len = get32(f + 4);
		uint32_t flags = len >= FADT_FLAGS + 4 ? get32(f + FADT_FLAGS) : 0;
		const uint8_t *dsdt = acpi_map(fadt_dsdt(f));
		unsigned int typ = dsdt ? dsdt_s5_slp_typ(dsdt) : 0;
		const uint8_t *slp = f + FADT_SLEEP_CONTROL_REG;

		if ((flags & FADT_HW_REDUCED_ACPI) &&
		    len >= FADT_SLEEP_CONTROL_REG + 12 && get64(slp + 4)) {
			gas_write8(slp, (uint8_t)(typ << 2 | 1 << 5));
		} else if (len >= FADT_PM1B_CNT_BLK + 4) {
			uint32_t pm1a = get32(f + FADT_PM1A_CNT_BLK);
			uint32_t pm1b = get32(f + FADT_PM1B_CNT_BLK);

			if (pm1a)
				outw((uint16_t)pm1a, (uint16_t)(typ << 10 | 1 << 13));
			if (pm1b)
				outw((uint16_t)pm1b, (uint16_t)(typ << 10 | 1 << 13));
		}
		/* The VMM stops us asynchronously; give it a moment. */
		delay_tsc(2000000000ull);
	}
	outb(0xf4, 0x31);
	for (;;)
		cpu_relax();
}
