/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PCI enumeration through configuration mechanism #1 (PCI Local Bus 3.0
 * §3.2.2.3.2: an address dword to 0xCF8, data at 0xCFC..0xCFF), BAR
 * sizing and, where needed, assignment.
 *
 * BAR policy.  On QEMU pc SeaBIOS has assigned every BAR before the probe
 * runs; kestrel's direct boot is expected to assign them too.  The probe
 * only steps in where it must, and only for the BARs its drivers use
 * (pci_bar_map), so that it tests the VMM's layout rather than its own:
 *  - a memory BAR reading 0 is unassigned: it gets an address;
 *  - a 64-bit memory BAR above 4 GiB cannot be reached through entry.S's
 *    0..4 GiB identity map: it is moved below 4 GiB.  (Mapping it instead
 *    would mean editing live page tables from CPL3; moving it also
 *    exercises the VMM's BAR-relocation path, which SeaBIOS needs anyway.)
 * New addresses come from the 32-bit PCI hole, [max(0xC0000000, top of
 * the e820 entries below it), 0xFEC00000): 0xFEC00000 and up hold the
 * IOAPIC, HPET, LAPIC and the BIOS.  Each is naturally aligned and skips
 * every range another BAR already decodes.  Only bus 0 is changed: a BAR
 * behind a bridge must stay inside the bridge's window, which the probe
 * does not program.  I/O BARs are never assigned (the probe needs none).
 */
#include "probe.h"

#define PCI_ADDR		0xcf8
#define PCI_DATA		0xcfc

#define PCI_VENDOR_ID		0x00
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_CLASS_REVISION	0x08
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SUBSYSTEM_ID	0x2e
#define PCI_CAP_PTR		0x34
#define PCI_SECONDARY_BUS	0x19
#define PCI_CLASS_HOST_BRIDGE	0x0600

#define PCI_COMMAND_IO		0x0001
#define PCI_COMMAND_MEM		0x0002
#define PCI_COMMAND_MASTER	0x0004
#define PCI_STATUS_CAP_LIST	0x0010

#define PCI_BAR_IO		0x1
#define PCI_BAR_MEM_TYPE	0x6
#define PCI_BAR_MEM_64		0x4
#define PCI_BAR_MEM_PREF	0x8

#define PCI_HOLE_START		0xc0000000ull
#define PCI_HOLE_END		0xfec00000ull	/* IOAPIC and up: not ours */
#define FOUR_GIB		((uint64_t)1 << 32)

static struct pci_func funcs[PCI_FUNCS_MAX];
static int nfuncs = -1;			/* -1: not scanned yet */
static const struct platform *plat;	/* for the e820 map */

static uint32_t cfg_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	return 1u << 31 | (uint32_t)bus << 16 | (uint32_t)dev << 11 |
	       (uint32_t)fn << 8 | (off & 0xfc);
}

static uint32_t cfg_read32_at(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	outl(PCI_ADDR, cfg_addr(bus, dev, fn, off));
	return inl(PCI_DATA);
}

uint32_t pci_read32(const struct pci_func *f, uint8_t off)
{
	return cfg_read32_at(f->bus, f->dev, f->fn, off);
}

uint16_t pci_read16(const struct pci_func *f, uint8_t off)
{
	outl(PCI_ADDR, cfg_addr(f->bus, f->dev, f->fn, off));
	return inw((uint16_t)(PCI_DATA + (off & 2)));
}

uint8_t pci_read8(const struct pci_func *f, uint8_t off)
{
	outl(PCI_ADDR, cfg_addr(f->bus, f->dev, f->fn, off));
	return inb((uint16_t)(PCI_DATA + (off & 3)));
}

void pci_write32(const struct pci_func *f, uint8_t off, uint32_t v)
{
	outl(PCI_ADDR, cfg_addr(f->bus, f->dev, f->fn, off));
	outl(PCI_DATA, v);
}

void pci_write16(const struct pci_func *f, uint8_t off, uint16_t v)
{
	outl(PCI_ADDR, cfg_addr(f->bus, f->dev, f->fn, off));
	outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

/*
 * Size one BAR (PCI 3.0 §6.2.5.1): write all ones, read back the mask,
 * restore.  The caller has turned decoding off, so the all-ones address
 * is never live.  Returns how many BAR slots it used (2 for 64-bit).
 */
static int bar_size(struct pci_func *f, int i, int nbars)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
	struct pci_bar *b = &f->bar[i];
	uint32_t lo = pci_read32(f, off), mlo, hi = 0, mhi = 0xffffffff;
	uint64_t mask;

	pci_write32(f, off, 0xffffffff);
	mlo = pci_read32(f, off);
	pci_write32(f, off, lo);
	if (!mlo)
		return 1;			/* not implemented */

	b->io = lo & PCI_BAR_IO;
	if (b->io) {
		b->addr = lo & ~3u;
		/* Upper 16 bits may read 0 on I/O BARs: ignore them. */
		b->size = (uint16_t)(~(mlo & ~3u) + 1);
		return 1;
	}
	b->pref = lo & PCI_BAR_MEM_PREF;
	b->is64 = (lo & PCI_BAR_MEM_TYPE) == PCI_BAR_MEM_64 && i + 1 < nbars;
	if (b->is64) {
		hi = pci_read32(f, off + 4);
		pci_write32(f, off + 4, 0xffffffff);
		mhi = pci_read32(f, off + 4);
		pci_write32(f, off + 4, hi);
	}
	mask = (uint64_t)mhi << 32 | (mlo & ~0xfu);
	b->addr = ((uint64_t)hi << 32 | lo) & ~(uint64_t)0xf;
	b->size = ~mask + 1;
	return b->is64 ? 2 : 1;
}

static void bar_write(struct pci_func *f, int i, uint64_t addr)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
	uint32_t flags = pci_read32(f, off) & 0xf;

	pci_write32(f, off, (uint32_t)addr | flags);
	if (f->bar[i].is64)
		pci_write32(f, off + 4, (uint32_t)(addr >> 32));
	f->bar[i].addr = addr;
}

/* Does [a, a+len) meet a memory BAR other than skip, below 4 GiB? */
static const struct pci_bar *bar_overlap(uint64_t a, uint64_t len,
					 const struct pci_bar *skip)
{
	for (int n = 0; n < nfuncs; n++) {
		for (int i = 0; i < 6; i++) {
			const struct pci_bar *b = &funcs[n].bar[i];

			if (b == skip || b->io || !b->size || !b->addr ||
			    b->addr >= FOUR_GIB)
				continue;
			if (a < b->addr + b->size && b->addr < a + len)
				return b;
		}
	}
	return NULL;
}

/* First naturally aligned free range in the hole, or 0. */
static uint64_t hole_alloc(uint64_t start, const struct pci_bar *b)
{
	uint64_t a = (start + b->size - 1) & ~(b->size - 1);
	const struct pci_bar *o;

	while (a + b->size <= PCI_HOLE_END) {
		o = bar_overlap(a, b->size, b);
		if (!o)
			return a;
		a = (o->addr + o->size + b->size - 1) & ~(b->size - 1);
	}
	return 0;
}

/* Where the hole starts: above every e820 entry that lies below it. */
static uint64_t hole_start(const struct platform *p)
{
	uint64_t start = PCI_HOLE_START;

	for (uint32_t i = 0; i < p->memmap_entries; i++) {
		const struct hvm_memmap_entry *e = &p->memmap[i];
		uint64_t end = e->addr + e->size;

		if (e->addr < PCI_HOLE_END && end > start)
			start = end < PCI_HOLE_END ? end : PCI_HOLE_END;
	}
	return start;
}

static void func_add(uint8_t bus, uint8_t dev, uint8_t fn);

static void bus_scan(uint8_t bus)
{
	for (uint8_t dev = 0; dev < 32; dev++) {
		uint32_t id = cfg_read32_at(bus, dev, 0, PCI_VENDOR_ID);
		uint8_t nfn = 1;

		if ((id & 0xffff) == 0xffff)
			continue;
		/* Header type bit 7: a multi-function device. */
		if (cfg_read32_at(bus, dev, 0, 0x0c) >> 16 & 0x80)
			nfn = 8;
		for (uint8_t fn = 0; fn < nfn; fn++)
			if ((cfg_read32_at(bus, dev, fn, PCI_VENDOR_ID) & 0xffff) != 0xffff)
				func_add(bus, dev, fn);
	}
}

static void func_add(uint8_t bus, uint8_t dev, uint8_t fn)
{
	struct pci_func *f;
	uint32_t id, cls;
	uint16_t cmd;
	int nbars;

	if (nfuncs == PCI_FUNCS_MAX) {
		say("pci: %02x:%02x.%x not recorded: more than %d functions",
		    bus, dev, fn, PCI_FUNCS_MAX);
		return;
	}
	f = &funcs[nfuncs++];
	memset(f, 0, sizeof(*f));
	f->bus = bus;
	f->dev = dev;
	f->fn = fn;
	id = pci_read32(f, PCI_VENDOR_ID);
	cls = pci_read32(f, PCI_CLASS_REVISION);
	f->vendor = (uint16_t)id;
	f->device = (uint16_t)(id >> 16);
	f->class = cls >> 8;
	f->hdr = pci_read8(f, PCI_HEADER_TYPE) & 0x7f;
	say("pci: %02x:%02x.%x %04x:%04x class %06x", bus, dev, fn, f->vendor,
	    f->device, f->class);

	nbars = f->hdr == 0 ? 6 : f->hdr == 1 ? 2 : 0;
	if (f->hdr == 0)
		f->subsys = pci_read16(f, PCI_SUBSYSTEM_ID);
	/*
	 * Decoding off while the BARs hold all ones (PCI 3.0 §6.2.5.1), but
	 * never on a host bridge, which may decode RAM itself (Linux's
	 * mmio_always_on quirk does the same).
	 */
	cmd = pci_read16(f, PCI_COMMAND);
	if (f->class >> 8 != PCI_CLASS_HOST_BRIDGE)
		pci_write16(f, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_COMMAND_MEM | PCI_COMMAND_IO)));
	for (int i = 0; i < nbars;)
		i += bar_size(f, i, nbars);
	pci_write16(f, PCI_COMMAND, cmd);

	/* A bridge the firmware configured: follow it.  Others stay unseen. */
	if (f->hdr == 1) {
		uint8_t sec = pci_read8(f, PCI_SECONDARY_BUS);

		if (sec > bus)
			bus_scan(sec);
		else
			say("pci: %02x:%02x.%x bridge without a secondary bus number, not scanned",
			    bus, dev, fn);
	}
}

static void bar_show(const struct pci_func *f, int i, const char *note)
{
	const struct pci_bar *b = &f->bar[i];

	say("pci: %02x:%02x.%x bar%d %s%s 0x%lx size 0x%lx%s", f->bus, f->dev,
	    f->fn, i, b->io ? "io" : b->is64 ? "mem64" : "mem32",
	    b->pref ? " pref" : "", b->addr, b->size, note);
}

/*
 * Make memory BAR i reachable through the 0..4 GiB map, by the policy at
 * the top of this file.  Done on demand, for the BARs a driver uses, so
 * the probe moves as little of the VMM's layout as it can.
 */
bool pci_bar_map(struct pci_func *f, int i)
{
	struct pci_bar *b = &f->bar[i];
	uint64_t old = b->addr, a;
	uint16_t cmd;

	if (i < 0 || i > 5 || !b->size || b->io)
		return false;
	if (b->addr && b->addr + b->size <= FOUR_GIB)
		return true;
	if (f->bus != 0) {
		bar_show(f, i, " (behind a bridge: not moved)");
		return false;
	}
	a = b->size <= PCI_HOLE_END ? hole_alloc(hole_start(plat), b) : 0;
	if (!a) {
		bar_show(f, i, " (no room below 4 GiB)");
		return false;
	}
	cmd = pci_read16(f, PCI_COMMAND);
	pci_write16(f, PCI_COMMAND, (uint16_t)(cmd & ~PCI_COMMAND_MEM));
	bar_write(f, i, a);
	pci_write16(f, PCI_COMMAND, cmd);
	if (old)
		say("pci: %02x:%02x.%x bar%d moved from 0x%lx", f->bus, f->dev,
		    f->fn, i, old);
	bar_show(f, i, old ? " (moved)" : " (assigned)");
	return true;
}

/* Memory decoding and bus mastering, whatever the firmware (if any) did. */
void pci_enable(const struct pci_func *f)
{
	uint16_t cmd = pci_read16(f, PCI_COMMAND);

	pci_write16(f, PCI_COMMAND, cmd | PCI_COMMAND_MEM | PCI_COMMAND_MASTER);
}

/*
 * Scan once (bus 0, then what configured bridges lead to), printing one
 * "pci: BB:SS.F VVVV:DDDD class CCSSPP" line per function, then one line
 * per BAR as found.  Later calls return the same table silently.
 */
int pci_scan(const struct platform *p, struct pci_func **list)
{
	if (nfuncs < 0) {
		plat = p;
		nfuncs = 0;
		bus_scan(0);
		for (int n = 0; n < nfuncs; n++)
			for (int i = 0; i < 6; i++)
				if (funcs[n].bar[i].size)
					bar_show(&funcs[n], i, "");
	}
	*list = funcs;
	return nfuncs;
}

/* First capability of type id at or after the one at `from` (0: start). */
uint8_t pci_cap_next(const struct pci_func *f, uint8_t from, uint8_t id)
{
	uint8_t off;
	int guard = 48;			/* (256 - 64) / 4: a loop can't be longer */

	if (!(pci_read16(f, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	off = from ? pci_read8(f, from + 1) : pci_read8(f, PCI_CAP_PTR);
	while (off >= 0x40 && guard--) {
		off &= 0xfc;
		if (pci_read8(f, off) == id)
			return off;
		off = pci_read8(f, off + 1);
	}
	return 0;
}

/* Scenario "pci": the enumeration alone (its lines are the report). */
bool scenario_pci(const struct platform *p, const struct args *a)
{
	struct pci_func *f;
	int n = pci_scan(p, &f);

	say("pci: %d functions", n);
	return n > 0 || fail("pci: no functions on bus 0");
}
