/*
 * hw/pci.c as a guest sees it: configuration mechanism #1 on 0xcf8/0xcfc
 * (PCI Local Bus 3.0 §3.2.2.3.2), BAR sizing and relocation (§6.2.5.1),
 * command-register decode gating, and the capability list (§6.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/vmstate.h"
#include "hw/pci.h"

#define CFG_ENABLE 0x80000000u

/* A device whose BAR handlers record what reached them. */
struct dummy {
	struct pci_device pci;
	int calls;
	int bar;		/* which BAR's handler ran last */
	uint64_t offset;
	bool is_write;
	unsigned size;
	uint8_t written[8];
	int config_writes;
	unsigned last_reg, last_size;
};

struct bar_ctx {
	struct dummy *d;
	int index;
};

struct fx {
	struct pci_bus bus;
	struct dummy dev;
	struct bar_ctx ctx[PCI_BARS];
};

static void dummy_access(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			 unsigned size)
{
	struct bar_ctx *c = opaque;
	struct dummy *d = c->d;

	d->calls++;
	d->bar = c->index;
	d->offset = offset;
	d->is_write = is_write;
	d->size = size;
	if (is_write)
		memcpy(d->written, data, size);
	else
		memset(data, 0x40 + c->index, size);
}

static void dummy_config_written(struct pci_device *dev, unsigned reg, unsigned size)
{
	struct dummy *d = (struct dummy *)dev;

	d->config_writes++;
	d->last_reg = reg;
	d->last_size = size;
}

#define MEM_BAR 0
#define MEM_BAR_SIZE 0x1000
#define IO_BAR 2
#define IO_BAR_SIZE 0x20
#define BIG_BAR 3
#define BIG_BAR_SIZE 0x4000

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t vndr[8] = { 0, 0, 8, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	uint8_t msix[12] = { 0 };

	if (!f || pci_bus_init(&f->bus) < 0)
		return -1;
	pci_device_init(&f->dev.pci, "dummy", 0x1234, 0x5678, 0x0200ab, 0x07, 0x1af4, 0x0042);
	for (int i = 0; i < PCI_BARS; i++)
		f->ctx[i] = (struct bar_ctx){ &f->dev, i };
	pci_device_add_bar(&f->dev.pci, MEM_BAR, MEM_BAR_SIZE, false, dummy_access, &f->ctx[MEM_BAR]);
	pci_device_add_bar(&f->dev.pci, IO_BAR, IO_BAR_SIZE, true, dummy_access, &f->ctx[IO_BAR]);
	pci_device_add_bar(&f->dev.pci, BIG_BAR, BIG_BAR_SIZE, false, dummy_access, &f->ctx[BIG_BAR]);
	assert_int_equal(pci_device_add_cap(&f->dev.pci, PCI_CAP_ID_VNDR, vndr, sizeof(vndr)), 0x40);
	assert_int_equal(pci_device_add_cap(&f->dev.pci, PCI_CAP_ID_MSIX, msix, sizeof(msix)), 0x48);
	f->dev.pci.config[PCI_INTERRUPT_PIN] = 1;
	f->dev.pci.config_written = dummy_config_written;
	if (pci_bus_plug(&f->bus, &f->dev.pci, 3) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	pci_bus_destroy(&f->bus);
	free(f);
	return 0;
}

static uint32_t cfg_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return CFG_ENABLE | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static void latch(struct pci_bus *bus, uint32_t addr)
{
	uint8_t b[4];

	memcpy(b, &addr, 4);
	pci_config_address_io(bus, 0, true, b, 4);
}

/* A guest's config read: latch the dword, then read 0xcfc + (reg & 3). */
static uint32_t cfg_read_at(struct pci_bus *bus, uint32_t addr, unsigned byte, unsigned size)
{
	uint8_t b[4] = { 0x5a, 0x5a, 0x5a, 0x5a };
	uint32_t v = 0;

	latch(bus, addr);
	pci_config_data_io(bus, byte, false, b, size);
	memcpy(&v, b, size);
	return v;
}

static uint32_t cfg_read(struct pci_bus *bus, unsigned slot, unsigned reg, unsigned size)
{
	return cfg_read_at(bus, cfg_addr(0, slot, 0, reg), reg & 3, size);
}

static void cfg_write(struct pci_bus *bus, unsigned slot, unsigned reg, uint32_t v, unsigned size)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	latch(bus, cfg_addr(0, slot, 0, reg));
	pci_config_data_io(bus, reg & 3, true, b, size);
}

static uint32_t mmio_read(struct pci_bus *bus, uint64_t gpa, unsigned size)
{
	uint8_t b[8] = { 0 };
	uint32_t v = 0;

	assert_true(gpa >= PCI_MMIO_WINDOW_BASE);
	pci_mmio_io(bus, gpa - PCI_MMIO_WINDOW_BASE, false, b, size);
	memcpy(&v, b, size < 4 ? size : 4);
	return v;
}

static uint32_t pio_read(struct pci_bus *bus, uint16_t port, unsigned size)
{
	uint8_t b[4] = { 0 };
	uint32_t v = 0;

	assert_true(port >= PCI_IO_WINDOW_BASE);
	pci_pio_io(bus, port - PCI_IO_WINDOW_BASE, false, b, size);
	memcpy(&v, b, size);
	return v;
}

/* ---- mechanism #1 ------------------------------------------------------------ */

static void test_address_latch(void **state)
{
	struct fx *f = *state;
	uint8_t b[4];
	uint32_t v;

	latch(&f->bus, 0x80001234);
	pci_config_address_io(&f->bus, 0, false, b, 4);
	memcpy(&v, b, 4);
	assert_int_equal(v, 0x80001234);
	/* Narrow accesses at 0xcf8 are not the address register. */
	b[0] = 0;
	pci_config_address_io(&f->bus, 0, false, b, 1);
	assert_int_equal(b[0], 0xff);
	b[0] = 0x00;
	pci_config_address_io(&f->bus, 0, true, b, 1);
	pci_config_address_io(&f->bus, 0, false, b, 4);
	memcpy(&v, b, 4);
	assert_int_equal(v, 0x80001234);
}

static void test_absent_devices_read_all_ones(void **state)
{
	struct fx *f = *state;

	for (unsigned size = 1; size <= 4; size *= 2) {
		uint32_t ones = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
		assert_int_equal(cfg_read(&f->bus, 5, 0, size), ones);	/* empty slot */
		assert_int_equal(cfg_read(&f->bus, 31, 0x3c, size), ones);
		/* Other buses and functions of a present device are empty too. */
		assert_int_equal(cfg_read_at(&f->bus, cfg_addr(1, 0, 0, 0), 0, size), ones);
		assert_int_equal(cfg_read_at(&f->bus, cfg_addr(255, 3, 0, 0), 0, size), ones);
		assert_int_equal(cfg_read_at(&f->bus, cfg_addr(0, 0, 1, 0), 0, size), ones);
		assert_int_equal(cfg_read_at(&f->bus, cfg_addr(0, 3, 7, 0), 0, size), ones);
		/* Without the enable bit, 0xcfc is not a configuration cycle. */
		assert_int_equal(cfg_read_at(&f->bus, cfg_addr(0, 0, 0, 0) & ~CFG_ENABLE, 0, size),
				 ones);
	}
	/* Writes to nothing are dropped, and do not reach slot 0. */
	latch(&f->bus, cfg_addr(0, 0, 1, PCI_INTERRUPT_LINE));
	uint8_t b = 0x77;
	pci_config_data_io(&f->bus, 0, true, &b, 1);
	assert_int_not_equal(cfg_read(&f->bus, 0, PCI_INTERRUPT_LINE, 1), 0x77);
	latch(&f->bus, cfg_addr(0, 3, 0, PCI_INTERRUPT_LINE) & ~CFG_ENABLE);
	pci_config_data_io(&f->bus, 0, true, &b, 1);
	assert_int_not_equal(cfg_read(&f->bus, 3, PCI_INTERRUPT_LINE, 1), 0x77);
	assert_int_equal(f->dev.config_writes, 0);
}

static void test_host_bridge(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cfg_read(&f->bus, 0, PCI_VENDOR_ID, 4), 0x12378086);
	assert_int_equal(cfg_read(&f->bus, 0, PCI_VENDOR_ID, 2), 0x8086);
	assert_int_equal(cfg_read(&f->bus, 0, PCI_DEVICE_ID, 2), 0x1237);
	/* Class 06/00/00: bridge, host bridge. */
	assert_int_equal(cfg_read(&f->bus, 0, PCI_REVISION_ID, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(&f->bus, 0, PCI_HEADER_TYPE, 1), 0);
	/* Its identity is read-only. */
	cfg_write(&f->bus, 0, PCI_VENDOR_ID, 0xdeadbeef, 4);
	assert_int_equal(cfg_read(&f->bus, 0, PCI_VENDOR_ID, 4), 0x12378086);
}

static void test_device_header(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cfg_read(&f->bus, 3, PCI_VENDOR_ID, 4), 0x56781234);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_REVISION_ID, 4), 0x0200ab07);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00421af4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_INTERRUPT_PIN, 1), 1);
	/* Firmware left decoding on. */
	assert_int_equal(cfg_read(&f->bus, 3, PCI_COMMAND, 2) & 3, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
}

static void test_sub_dword_accesses(void **state)
{
	struct fx *f = *state;

	/* Every byte and word lane of 0xcfc returns its own bytes. */
	assert_int_equal(cfg_read(&f->bus, 3, 0, 1), 0x34);
	assert_int_equal(cfg_read(&f->bus, 3, 1, 1), 0x12);
	assert_int_equal(cfg_read(&f->bus, 3, 2, 1), 0x78);
	assert_int_equal(cfg_read(&f->bus, 3, 3, 1), 0x56);
	assert_int_equal(cfg_read(&f->bus, 3, 0, 2), 0x1234);
	assert_int_equal(cfg_read(&f->bus, 3, 2, 2), 0x5678);
	assert_int_equal(cfg_read(&f->bus, 3, 0x0b, 1), 0x02);
	assert_int_equal(cfg_read(&f->bus, 3, 0x0a, 2), 0x0200);

	/* Byte write at 0xcfc + 0 of dword 0x3c: the interrupt line, and only it. */
	cfg_write(&f->bus, 3, PCI_INTERRUPT_LINE, 0x0a, 1);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_INTERRUPT_LINE, 4), 0x0000010a);
	assert_int_equal(f->dev.config_writes, 1);
	assert_int_equal(f->dev.last_reg, PCI_INTERRUPT_LINE);
	assert_int_equal(f->dev.last_size, 1);
	/* Byte write at 0xcfc + 1 (the pin) is read-only. */
	cfg_write(&f->bus, 3, PCI_INTERRUPT_PIN, 0x04, 1);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_INTERRUPT_LINE, 4), 0x0000010a);
	assert_int_equal(f->dev.last_reg, PCI_INTERRUPT_PIN);
	/* Dword write over the whole register: only the line changes. */
	cfg_write(&f->bus, 3, PCI_INTERRUPT_LINE, 0xffffff05, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_INTERRUPT_LINE, 4), 0x00000105);
	/* Word write at 0xcfc + 2 of dword 0x04 is the status register: read-only here. */
	uint16_t status = (uint16_t)cfg_read(&f->bus, 3, PCI_STATUS, 2);
	cfg_write(&f->bus, 3, PCI_STATUS, 0x0000, 2);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_STATUS, 2), status);
	assert_int_equal(f->dev.last_reg, PCI_STATUS);
	assert_int_equal(f->dev.last_size, 2);
}

static void test_last_dword(void **state)
{
	struct fx *f = *state;

	/* Reads at the top of config space stay inside it. */
	assert_int_equal(cfg_read(&f->bus, 3, 0xfc, 4), 0);
	assert_int_equal(cfg_read(&f->bus, 3, 0xff, 1), 0);
	assert_int_equal(cfg_read(&f->bus, 3, 0xfe, 2), 0);
	cfg_write(&f->bus, 3, 0xfc, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 3, 0xfc, 4), 0);
	/* A dword at 0xcfc + 3 of the last register would run past config space. */
	assert_int_equal(cfg_read_at(&f->bus, cfg_addr(0, 3, 0, 0xfc), 3, 4), 0xffffffff);
	assert_int_equal(cfg_read_at(&f->bus, cfg_addr(0, 3, 0, 0xfc), 2, 4), 0xffffffff);
	uint8_t b[4] = { 0xff, 0xff, 0xff, 0xff };
	latch(&f->bus, cfg_addr(0, 3, 0, 0xfc));
	pci_config_data_io(&f->bus, 3, true, b, 4);
	assert_int_equal(cfg_read(&f->bus, 3, 0xfc, 4), 0);
	assert_int_equal(f->dev.config_writes, 1);	/* only the in-range write above */
}

static void test_command_register_mask(void **state)
{
	struct fx *f = *state;

	cfg_write(&f->bus, 3, PCI_COMMAND, 0xffff, 2);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_COMMAND, 2),
			 PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
				 PCI_COMMAND_INTX_DISABLE);
	cfg_write(&f->bus, 3, PCI_COMMAND, 0, 2);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_COMMAND, 2), 0);
}

/* ---- BARs --------------------------------------------------------------------- */

static void test_bars_assigned(void **state)
{
	struct fx *f = *state;
	uint32_t mem = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4);
	uint32_t io = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4);
	uint32_t big = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 4);

	/* Memory BARs: 32-bit, in the window, aligned to their size. */
	assert_int_equal(mem & 0xf, 0);
	assert_true(mem >= PCI_MMIO_WINDOW_BASE && mem + MEM_BAR_SIZE <= PCI_MMIO_WINDOW_END);
	assert_int_equal(mem & (MEM_BAR_SIZE - 1), 0);
	assert_int_equal(big & (BIG_BAR_SIZE - 1), 0);
	assert_true(big >= mem + MEM_BAR_SIZE || big + BIG_BAR_SIZE <= mem);
	/* I/O BARs: bit 0 set, in the I/O window. */
	assert_int_equal(io & 3, 1);
	assert_true((io & ~3u) >= PCI_IO_WINDOW_BASE && (io & ~3u) + IO_BAR_SIZE <= PCI_IO_WINDOW_END);
	assert_int_equal(io & (IO_BAR_SIZE - 1) & ~3u, 0);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4, 4), 0);	/* unused */

	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, MEM_BAR), mem);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, BIG_BAR), big);
	/* Each BAR reaches its own handler, at offsets relative to its start. */
	assert_int_equal(mmio_read(&f->bus, mem + 0x10, 4), 0x40404040);
	assert_int_equal(f->dev.bar, MEM_BAR);
	assert_int_equal(f->dev.offset, 0x10);
	assert_int_equal(mmio_read(&f->bus, big + BIG_BAR_SIZE - 1, 1), 0x43);
	assert_int_equal(f->dev.bar, BIG_BAR);
	assert_int_equal(f->dev.offset, BIG_BAR_SIZE - 1);
	assert_int_equal(pio_read(&f->bus, (uint16_t)((io & ~3u) + 4), 2), 0x4242);
	assert_int_equal(f->dev.bar, IO_BAR);
	assert_int_equal(f->dev.offset, 4);
	assert_int_equal(f->dev.calls, 3);
}

static void test_bar_sizing(void **state)
{
	struct fx *f = *state;
	uint32_t mem = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4);
	uint32_t io = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4);
	uint32_t big = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 4);

	/* As firmware sizes BARs: decoding off, all ones, read back ~(size - 1) | flags. */
	cfg_write(&f->bus, 3, PCI_COMMAND, 0, 2);
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4), ~(uint32_t)(MEM_BAR_SIZE - 1));
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4),
			 ~(uint32_t)(IO_BAR_SIZE - 1) | 1);
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 4), ~(uint32_t)(BIG_BAR_SIZE - 1));
	/* Unimplemented BARs read back zero: size 0. */
	for (unsigned i = 0; i < PCI_BARS; i++) {
		if (i == MEM_BAR || i == IO_BAR || i == BIG_BAR)
			continue;
		cfg_write(&f->bus, 3, PCI_BAR0 + 4 * i, 0xffffffff, 4);
		assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * i, 4), 0);
	}
	/* Restore, turn decoding back on: the device is where it was. */
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, mem, 4);
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, io, 4);
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, big, 4);
	cfg_write(&f->bus, 3, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO, 2);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4), mem);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4), io);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, MEM_BAR), mem);
	assert_int_equal(mmio_read(&f->bus, mem, 4), 0x40404040);
	assert_int_equal(pio_read(&f->bus, (uint16_t)(io & ~3u), 1), 0x42);

	/* The host bridge has no BARs at all. */
	cfg_write(&f->bus, 0, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 0, PCI_BAR0, 4), 0);
}

static void test_bar_relocation(void **state)
{
	struct fx *f = *state;
	uint32_t old = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4);
	uint32_t moved = 0xe8000000;

	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, moved, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4), moved);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, MEM_BAR), moved);
	assert_int_equal(mmio_read(&f->bus, moved + 0x24, 4), 0x40404040);
	assert_int_equal(f->dev.offset, 0x24);
	assert_int_equal(f->dev.calls, 1);
	/* The old range decodes nothing now. */
	assert_int_equal(mmio_read(&f->bus, old, 4), 0xffffffff);
	assert_int_equal(mmio_read(&f->bus, old + 0x24, 2), 0xffff);
	assert_int_equal(f->dev.calls, 1);
	/* A write at the new address carries data and offset. */
	uint8_t b[4] = { 1, 2, 3, 4 };
	pci_mmio_io(&f->bus, moved + 8 - PCI_MMIO_WINDOW_BASE, true, b, 4);
	assert_int_equal(f->dev.calls, 2);
	assert_true(f->dev.is_write);
	assert_int_equal(f->dev.offset, 8);
	assert_memory_equal(f->dev.written, b, 4);
	/* One past the end is not the device. */
	assert_int_equal(mmio_read(&f->bus, moved + MEM_BAR_SIZE, 1), 0xff);
	assert_int_equal(f->dev.calls, 2);
}

static void test_bar_relocation_keeps_alignment(void **state)
{
	struct fx *f = *state;

	/* Low bits below the size are hard-wired: an unaligned address is truncated. */
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 0xe9003abc, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * BIG_BAR, 4), 0xe9000000);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, BIG_BAR), 0xe9000000);
	assert_int_equal(mmio_read(&f->bus, 0xe9003abc, 1), 0x43);
	assert_int_equal(f->dev.offset, 0x3abc);
}

static void test_bar_relocation_bytewise(void **state)
{
	struct fx *f = *state;
	uint32_t old = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4);

	/* A guest may program the BAR a word or a byte at a time. */
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR + 2, 0xea12, 2);
	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR + 1, 0x30, 1);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4), 0xea123000);
	assert_int_equal(mmio_read(&f->bus, 0xea123000, 4), 0x40404040);
	assert_int_equal(mmio_read(&f->bus, old, 4), 0xffffffff);
	assert_int_equal(f->dev.calls, 1);
}

static void test_io_bar_relocation(void **state)
{
	struct fx *f = *state;
	uint32_t old = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4) & ~3u;

	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 0xd000, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4), 0xd001);
	assert_int_equal(pio_read(&f->bus, 0xd01f, 1), 0x42);
	assert_int_equal(f->dev.offset, 0x1f);
	assert_int_equal(pio_read(&f->bus, (uint16_t)old, 1), 0xff);
	assert_int_equal(pio_read(&f->bus, 0xd020, 1), 0xff);
	assert_int_equal(f->dev.calls, 1);
}

static void test_memory_enable_gates_mmio(void **state)
{
	struct fx *f = *state;
	uint32_t mem = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4);
	uint32_t io = cfg_read(&f->bus, 3, PCI_BAR0 + 4 * IO_BAR, 4) & ~3u;
	uint8_t b[4] = { 9, 9, 9, 9 };

	cfg_write(&f->bus, 3, PCI_COMMAND, PCI_COMMAND_IO, 2);
	assert_int_equal(mmio_read(&f->bus, mem, 4), 0xffffffff);
	pci_mmio_io(&f->bus, mem - PCI_MMIO_WINDOW_BASE, true, b, 4);
	assert_int_equal(f->dev.calls, 0);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, MEM_BAR), 0);
	/* I/O decoding is separate. */
	assert_int_equal(pio_read(&f->bus, (uint16_t)io, 1), 0x42);
	assert_int_equal(f->dev.calls, 1);

	cfg_write(&f->bus, 3, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(pio_read(&f->bus, (uint16_t)io, 1), 0xff);
	assert_int_equal(f->dev.calls, 1);
	assert_int_equal(mmio_read(&f->bus, mem, 4), 0x40404040);
	assert_int_equal(f->dev.calls, 2);
	assert_int_equal(pci_bar_address(&f->bus, &f->dev.pci, MEM_BAR), mem);
}

static void test_plug(void **state)
{
	struct fx *f = *state;
	struct pci_device a, b, c;

	pci_device_init(&a, "a", 0x1111, 1, 0, 0, 0, 0);
	pci_device_init(&b, "b", 0x2222, 2, 0, 0, 0, 0);
	pci_device_init(&c, "c", 0x3333, 3, 0, 0, 0, 0);
	pci_device_add_bar(&a, 0, 0x10000, false, dummy_access, &f->ctx[0]);
	/* -1 takes the first free slot after the host bridge. */
	assert_int_equal(pci_bus_plug(&f->bus, &a, -1), 0);
	assert_int_equal(a.slot, 1);
	assert_int_equal(pci_bus_plug(&f->bus, &b, 3), -1);	/* taken */
	assert_int_equal(pci_bus_plug(&f->bus, &b, PCI_SLOTS), -1);
	assert_int_equal(pci_bus_plug(&f->bus, &b, -1), 0);
	assert_int_equal(b.slot, 2);
	assert_int_equal(pci_bus_plug(&f->bus, &c, -1), 0);
	assert_int_equal(c.slot, 4);
	assert_int_equal(cfg_read(&f->bus, 4, PCI_VENDOR_ID, 2), 0x3333);
	/* A 64 KiB BAR is 64 KiB aligned, after the dummy's. */
	uint32_t bar = cfg_read(&f->bus, 1, PCI_BAR0, 4);
	assert_int_equal(bar & 0xffff, 0);
	assert_true(bar >= PCI_MMIO_WINDOW_BASE);
	assert_int_not_equal(bar, cfg_read(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, 4));
}

static void test_bus_full(void **state)
{
	struct fx *f = *state;
	struct pci_device *devs = calloc(PCI_SLOTS, sizeof(*devs));
	int plugged = 0;

	assert_non_null(devs);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		pci_device_init(&devs[i], "x", 0x1000, (uint16_t)i, 0, 0, 0, 0);
		if (pci_bus_plug(&f->bus, &devs[i], -1) == 0)
			plugged++;
	}
	/* 32 slots, minus the host bridge and the dummy. */
	assert_int_equal(plugged, PCI_SLOTS - 2);
	free(devs);
}

static void test_mmio_window_exhausted(void **state)
{
	struct fx *f = *state;
	struct pci_device a, b;

	/* Larger than the whole window: refused, not wrapped around. */
	pci_device_init(&a, "a", 0x1111, 1, 0, 0, 0, 0);
	pci_device_add_bar(&a, 0, 1ULL << 31, false, dummy_access, &f->ctx[0]);
	assert_int_equal(pci_bus_plug(&f->bus, &a, -1), -1);
	pci_device_init(&b, "b", 0x1111, 1, 0, 0, 0, 0);
	pci_device_add_bar(&b, 0, 0x10000, true, dummy_access, &f->ctx[0]);	/* all of I/O space */
	assert_int_equal(pci_bus_plug(&f->bus, &b, -1), -1);
	assert_int_equal(cfg_read(&f->bus, 1, PCI_VENDOR_ID, 2), 0xffff);
}

/* ---- capabilities ------------------------------------------------------------ */

static void test_capability_list(void **state)
{
	struct fx *f = *state;
	uint8_t ids[2] = { PCI_CAP_ID_VNDR, PCI_CAP_ID_MSIX };
	unsigned n = 0, p;

	assert_true(cfg_read(&f->bus, 3, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* The host bridge has none. */
	assert_false(cfg_read(&f->bus, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (p = cfg_read(&f->bus, 3, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(&f->bus, 3, p + 1, 1)) {
		assert_true(p >= 0x40 && p <= 0xfc);
		assert_int_equal(p & 3, 0);
		assert_true(n < 2);
		assert_int_equal(cfg_read(&f->bus, 3, p, 1), ids[n]);
		n++;
	}
	assert_int_equal(n, 2);
	/* The body is what the device gave, after id and next. */
	assert_int_equal(cfg_read(&f->bus, 3, 0x42, 1), 8);
	assert_int_equal(cfg_read(&f->bus, 3, 0x44, 4), 0xeeddccbb);
	/* And the guest cannot rewrite the chain or the bodies. */
	cfg_write(&f->bus, 3, PCI_CAPABILITY_LIST, 0x80, 1);
	cfg_write(&f->bus, 3, 0x40, 0xffffffff, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_CAPABILITY_LIST, 1), 0x40);
	assert_int_equal(cfg_read(&f->bus, 3, 0x40, 4), 0xaa080000 | 0x48 << 8 | PCI_CAP_ID_VNDR);
}

static void test_capability_space_runs_out(void **state)
{
	struct pci_device d;
	uint8_t body[20] = { 0 };
	unsigned added = 0, n = 0, last = 0;
	uint8_t at;

	pci_device_init(&d, "caps", 1, 2, 0, 0, 0, 0);
	while ((at = pci_device_add_cap(&d, PCI_CAP_ID_VNDR, body, sizeof(body))) != 0) {
		assert_true(at >= 0x40 && at + sizeof(body) <= 0x100);
		assert_int_equal(at & 3, 0);
		added++;
		assert_true(added < 16);
	}
	/* (0x100 - 0x40) / 20 rounded to dwords: 9 fit. */
	assert_int_equal(added, 9);
	/* A short one still fits at the end. */
	at = pci_device_add_cap(&d, PCI_CAP_ID_MSIX, body, 8);
	assert_int_not_equal(at, 0);
	added++;
	assert_int_equal(pci_device_add_cap(&d, 1, body, 1), 0);	/* no room for id + next */
	/* The list visits each capability once, in order, and ends. */
	for (unsigned p = d.config[PCI_CAPABILITY_LIST]; p; p = d.config[p + 1]) {
		assert_true(p > last);
		last = p;
		n++;
		assert_true(n <= added);
	}
	assert_int_equal(n, added);
	assert_int_equal(d.config[last], PCI_CAP_ID_MSIX);
}

/* An expansion ROM: sized like a BAR through 0x30, decoded only while enabled, read-only. */
static void test_expansion_rom(void **state)
{
	struct fx *f = *state;
	static uint8_t rom[5000];
	uint64_t at = PCI_MMIO_WINDOW_BASE + 0x100000;
	uint8_t b[4] = { 1, 2, 3, 4 };

	for (unsigned i = 0; i < sizeof(rom); i++)
		rom[i] = (uint8_t)(i * 13 + 0x55);
	rom[0] = 0x55, rom[1] = 0xaa;
	assert_int_equal(cfg_read(&f->bus, 3, PCI_ROM_ADDRESS, 4), 0);	/* none yet */
	pci_device_set_rom(&f->dev.pci, rom, sizeof(rom));
	cfg_write(&f->bus, 3, PCI_ROM_ADDRESS, 0xfffffffe, 4);
	assert_int_equal(cfg_read(&f->bus, 3, PCI_ROM_ADDRESS, 4), 0xffffe000);	/* 8 KiB */
	cfg_write(&f->bus, 3, PCI_ROM_ADDRESS, (uint32_t)at, 4);		/* placed, disabled */
	assert_int_equal(mmio_read(&f->bus, at, 4), 0xffffffff);
	cfg_write(&f->bus, 3, PCI_ROM_ADDRESS, (uint32_t)at | PCI_ROM_ENABLE, 4);
	assert_int_equal(mmio_read(&f->bus, at, 2), 0xaa55);
	assert_int_equal(mmio_read(&f->bus, at + 4096, 1), rom[4096]);
	assert_int_equal(mmio_read(&f->bus, at + 6000, 4), 0);		/* past the image */
	pci_mmio_io(&f->bus, at - PCI_MMIO_WINDOW_BASE, true, b, 4);	/* ignored */
	assert_int_equal(mmio_read(&f->bus, at, 2), 0xaa55);
	assert_int_equal(f->dev.calls, 0);
	/* Memory decoding off hides it too. */
	cfg_write(&f->bus, 3, PCI_COMMAND, 0, 2);
	assert_int_equal(mmio_read(&f->bus, at, 4), 0xffffffff);
}

/* ---- saved state ---------------------------------------------------------- */
static void save_config(struct fx *f, struct vmstate_membuf *m)
{
	struct vmstate_out out;

	memset(m, 0, sizeof(*m));
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, m }), 0);
	assert_int_equal(pci_device_save(&f->bus, &f->dev.pci, 3 << 3, &out), 0);
	vmstate_out_free(&out);
}

static int load_config(struct fx *g, struct vmstate_membuf *m, char *err)
{
	struct vmstate_in in;
	int rc;

	m->pos = 0;
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_int_equal(in.instance, 3 << 3);
	rc = pci_device_load(&g->bus, &g->dev.pci, &in);
	strcpy(err, in.err);
	vmstate_in_free(&in);
	return rc;
}

static void test_state_round_trip(void **state)
{
	struct fx *f = *state, *g = NULL;
	struct vmstate_membuf m;
	uint32_t moved = 0xe8000000;
	char err[400];

	cfg_write(&f->bus, 3, PCI_BAR0 + 4 * MEM_BAR, moved, 4);
	cfg_write(&f->bus, 3, PCI_INTERRUPT_LINE, 11, 1);
	save_config(f, &m);

	assert_int_equal(setup((void **)&g), 0);
	g->dev.config_writes = 0;
	assert_int_equal(load_config(g, &m, err), 0);
	/* The BAR decodes where the source's guest put it; the device was told. */
	assert_int_equal(pci_bar_address(&g->bus, &g->dev.pci, MEM_BAR), moved);
	assert_int_equal(mmio_read(&g->bus, moved + 0x10, 4), 0x40404040);
	assert_int_equal(cfg_read(&g->bus, 3, PCI_INTERRUPT_LINE, 1), 11);
	assert_int_equal(g->dev.config_writes, 1);
	assert_int_equal(g->dev.last_size, 256);

	/* Another device in that slot on the destination: refused, nothing changed. */
	g->dev.pci.config[PCI_DEVICE_ID] ^= 1;
	cfg_write(&g->bus, 3, PCI_INTERRUPT_LINE, 5, 1);
	assert_int_equal(load_config(g, &m, err), -1);
	assert_string_equal(err, "migration stream: section 'pci-config' instance 24: device "
			    "1234:5678 class 0200ab in the stream, 1234:5679 class 0200ab here");
	assert_int_equal(cfg_read(&g->bus, 3, PCI_INTERRUPT_LINE, 1), 5);
	free(m.data);
	teardown((void **)&g);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_address_latch),
		T(test_absent_devices_read_all_ones),
		T(test_host_bridge),
		T(test_device_header),
		T(test_sub_dword_accesses),
		T(test_last_dword),
		T(test_command_register_mask),
		T(test_bars_assigned),
		T(test_bar_sizing),
		T(test_bar_relocation),
		T(test_bar_relocation_keeps_alignment),
		T(test_bar_relocation_bytewise),
		T(test_io_bar_relocation),
		T(test_memory_enable_gates_mmio),
		T(test_plug),
		T(test_bus_full),
		T(test_mmio_window_exhausted),
		T(test_capability_list),
		cmocka_unit_test(test_capability_space_runs_out),
		T(test_state_round_trip),
		T(test_expansion_rom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
