/*
 * hw/e1000.c driven as a driver does: through its BARs, over fake guest RAM,
 * linked to a fake back end that records frames and can send some.  Checked:
 * EEPROM (EERD and microwire), PHY, transmit (legacy, checksum offload,
 * TSO), receive (filters, buffer chains, a full ring held back), interrupts,
 * reset, and hostile rings and buffers outside RAM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "core/vmstate.h"
#include "hw/e1000.h"

#define RAM_SIZE (4 * MIB)
#define TX_RING 0x10000
#define RX_RING 0x11000
#define TX_BUF 0x20000
#define RX_BUF 0x100000
#define RING 8

enum {
	CTRL = 0x0, STATUS = 0x8, EECD = 0x10, EERD = 0x14, MDIC = 0x20, ICR = 0xc0, ICS = 0xc8,
	IMS = 0xd0, IMC = 0xd8, RCTL = 0x100, TCTL = 0x400, RDBAL = 0x2800, RDBAH = 0x2804,
	RDLEN = 0x2808, RDH = 0x2810, RDT = 0x2818, TDBAL = 0x3800, TDBAH = 0x3804,
	TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818, RAL0 = 0x5400, RAH0 = 0x5404, MTA = 0x5200,
};

static const uint8_t MAC[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct peer {
	struct net_client nc;
	uint8_t frames[8][2048];
	size_t lens[8];
	unsigned count, wakes;
};

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct e1000 nic;
	struct peer peer;
	unsigned irq_changes;
	bool irq;
	uint64_t mmio, io;
};

static ssize_t peer_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct peer *p = nc->opaque;
	size_t len = net_iov_size(iov, iovcnt), off = 0;

	if (p->count < 8 && len <= sizeof(p->frames[0])) {
		for (int i = 0; i < iovcnt; off += iov[i].iov_len, i++)
			memcpy(p->frames[p->count] + off, iov[i].iov_base, iov[i].iov_len);
		p->lens[p->count] = len;
	}
	p->count++;
	return (ssize_t)len;
}

static void peer_wake(struct net_client *nc)
{
	((struct peer *)nc->opaque)->wakes++;
}

static const struct net_client_ops peer_ops = {
	.type = "test", .receive = peer_receive, .wake = peer_wake,
};

static void set_irq(void *opaque, unsigned line, bool level)
{
	struct fx *f = opaque;

	assert_int_equal(line, 11);
	f->irq = level;
	f->irq_changes++;
}

static void cfg_write(struct fx *f, unsigned reg, uint32_t v, unsigned size)
{
	uint8_t b[4];
	uint32_t addr = 0x80000000u | (f->nic.pci.slot << 11) | (reg & 0xfc);

	pci_config_address_io(&f->bus, 0, true, (uint8_t *)&addr, 4);
	memcpy(b, &v, 4);
	pci_config_data_io(&f->bus, reg & 3, true, b, size);
}

static uint32_t cfg_read(struct fx *f, unsigned reg)
{
	uint32_t addr = 0x80000000u | (f->nic.pci.slot << 11) | (reg & 0xfc), v = 0;

	pci_config_address_io(&f->bus, 0, true, (uint8_t *)&addr, 4);
	pci_config_data_io(&f->bus, 0, false, (uint8_t *)&v, 4);
	return v;
}

static void w32(struct fx *f, unsigned reg, uint32_t v)
{
	pci_mmio_io(&f->bus, f->mmio + reg - PCI_MMIO_WINDOW_BASE, true, (uint8_t *)&v, 4);
}

static uint32_t r32(struct fx *f, unsigned reg)
{
	uint32_t v = 0;

	pci_mmio_io(&f->bus, f->mmio + reg - PCI_MMIO_WINDOW_BASE, false, (uint8_t *)&v, 4);
	return v;
}

static uint8_t *ram(struct fx *f, uint64_t gpa)
{
	return f->mem.host + gpa;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fake_memory_init(&f->mem, RAM_SIZE) < 0 || pci_bus_init(&f->bus) < 0)
		return -1;
	f->peer.nc = (struct net_client){ .ops = &peer_ops, .opaque = &f->peer };
	e1000_init(&f->nic, "nic0", MAC);
	net_connect(&f->nic.nc, &f->peer.nc);
	if (e1000_attach(&f->nic, &f->bus, -1, &f->mem, set_irq, f) < 0)
		return -1;
	f->mmio = cfg_read(f, PCI_BAR0) & ~0xfu;
	f->io = cfg_read(f, PCI_BAR0 + 4) & ~3u;
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_MASTER, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	e1000_detach(&f->nic);
	e1000_release(&f->nic);
	pci_bus_destroy(&f->bus);
	fake_memory_free(&f->mem);
	free(f);
	return 0;
}

/* ---- identity, EEPROM, PHY ---------------------------------------------------- */

static void test_identity_and_bars(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cfg_read(f, 0), 0x100e8086);
	assert_int_equal(cfg_read(f, 8) >> 8, 0x020000);
	assert_true(f->mmio >= PCI_MMIO_WINDOW_BASE);
	assert_int_equal(f->mmio & (E1000_MMIO_SIZE - 1), 0);
	assert_true(cfg_read(f, PCI_BAR0 + 4) & 1);	/* BAR1 is I/O */
	assert_true(r32(f, STATUS) & 0x2);		/* link up */
	/* The MAC is in receive address 0, marked valid. */
	assert_int_equal(r32(f, RAL0), 0x12005452);
	assert_int_equal(r32(f, RAH0), 0x80005634);
}

static uint16_t eerd(struct fx *f, unsigned word)
{
	w32(f, EERD, (word << 8) | 1);
	uint32_t v = r32(f, EERD);
	assert_true(v & 0x10);	/* DONE */
	return (uint16_t)(v >> 16);
}

static void test_eeprom_eerd(void **state)
{
	struct fx *f = *state;
	uint16_t sum = 0;

	assert_int_equal(eerd(f, 0), 0x5452);
	assert_int_equal(eerd(f, 1), 0x1200);
	assert_int_equal(eerd(f, 2), 0x5634);
	for (unsigned i = 0; i < 64; i++)
		sum = (uint16_t)(sum + eerd(f, i));
	assert_int_equal(sum, 0xbaba);	/* what e1000 drivers check */
	assert_int_equal(eerd(f, 200), 0);	/* beyond the EEPROM: done, zero */
}

/* Linux's e1000_shift_out/in_ee_bits for the 82540's microwire EEPROM. */
static uint16_t microwire_read(struct fx *f, unsigned word)
{
	uint32_t cmd = (6u << 6) | word;	/* READ opcode 110b, 6 address bits */
	uint16_t data = 0;

	w32(f, EECD, 0x02);				/* CS */
	for (int bit = 8; bit >= 0; bit--) {
		uint32_t di = (cmd >> bit) & 1 ? 0x04 : 0;
		w32(f, EECD, 0x02 | di);
		w32(f, EECD, 0x02 | di | 0x01);		/* SK rises: bit in */
		w32(f, EECD, 0x02 | di);
	}
	for (int bit = 0; bit < 16; bit++) {
		w32(f, EECD, 0x02 | 0x01);
		data = (uint16_t)(data << 1 | !!(r32(f, EECD) & 0x08));
		w32(f, EECD, 0x02);
	}
	w32(f, EECD, 0);				/* CS low */
	return data;
}

static void test_eeprom_microwire(void **state)
{
	struct fx *f = *state;

	assert_true(r32(f, EECD) & 0x100);	/* EEPROM present */
	assert_int_equal(microwire_read(f, 0), 0x5452);
	assert_int_equal(microwire_read(f, 2), 0x5634);
	assert_int_equal(microwire_read(f, 0x0e), 0x8086);
}

static void test_phy_through_mdic(void **state)
{
	struct fx *f = *state;

	w32(f, MDIC, (2u << 26) | (1u << 21) | (2u << 16));	/* read PHY 1 reg 2 */
	uint32_t v = r32(f, MDIC);
	assert_true(v & (1u << 28));
	assert_int_equal(v & 0xffff, 0x0141);
	w32(f, MDIC, (2u << 26) | (1u << 21) | (1u << 16));
	assert_true(r32(f, MDIC) & 0x4);			/* link status */
	w32(f, MDIC, (2u << 26) | (3u << 21) | (2u << 16));	/* no PHY at address 3 */
	assert_true(r32(f, MDIC) & (1u << 30));
}

/* ---- transmit ------------------------------------------------------------------ */

static void tx_setup(struct fx *f)
{
	w32(f, TDBAL, TX_RING);
	w32(f, TDBAH, 0);
	w32(f, TDLEN, RING * 16);
	w32(f, TDH, 0);
	w32(f, TDT, 0);
	w32(f, TCTL, 0x2);
}

static void tx_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t lower, uint8_t cso_or_popts,
		    uint8_t css)
{
	uint8_t *d = ram(f, TX_RING + 16 * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &lower, 4);
	d[12] = 0;
	d[13] = css;
	if (!(lower & (0x20u << 24)))
		d[10] = cso_or_popts;	/* legacy: CSO */
	else
		d[13] = cso_or_popts;	/* data: POPTS */
}

static void test_transmit_legacy(void **state)
{
	struct fx *f = *state;
	uint8_t frame[100];

	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 3);
	memcpy(ram(f, TX_BUF), frame, 40);
	memcpy(ram(f, TX_BUF + 0x1000), frame + 40, 60);
	tx_setup(f);
	w32(f, IMS, 0x1);	/* TXDW */
	tx_desc(f, 0, TX_BUF, 40, 0, 0);					/* no EOP */
	tx_desc(f, 1, TX_BUF + 0x1000, 60 | ((0x01u | 0x08u) << 24), 0, 0);	/* EOP|RS */
	w32(f, TDT, 2);
	assert_int_equal(f->peer.count, 1);
	assert_int_equal(f->peer.lens[0], 100);
	assert_memory_equal(f->peer.frames[0], frame, 100);
	assert_int_equal(r32(f, TDH), 2);
	assert_true(ram(f, TX_RING + 16 + 12)[0] & 1);		/* DD written back */
	assert_true(f->irq);
	assert_true(r32(f, ICR) & 0x1);				/* reading acknowledges */
	assert_false(f->irq);
	assert_int_equal(r32(f, ICR), 0);
}

/* Ones' complement sum over [p, p+len), folded, not inverted. */
static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void test_transmit_legacy_checksum(void **state)
{
	struct fx *f = *state;
	uint8_t frame[64] = { 0 };

	for (unsigned i = 20; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 1);
	frame[30] = frame[31] = 0;	/* the checksum field, seeded with 0 */
	memcpy(ram(f, TX_BUF), frame, sizeof(frame));
	tx_setup(f);
	tx_desc(f, 0, TX_BUF, sizeof(frame) | ((0x01u | 0x04u) << 24), 30, 20);	/* EOP|IC */
	w32(f, TDT, 1);
	assert_int_equal(f->peer.count, 1);
	/* Summing the covered bytes with the checksum in place gives 0xffff. */
	assert_int_equal(csum(f->peer.frames[0] + 20, sizeof(frame) - 20, 0), 0xffff);
	assert_memory_equal(f->peer.frames[0], frame, 30);
}

/* An Ethernet + IPv4 + TCP header (54 bytes) for a TSO super-frame of payload bytes. */
static size_t tso_frame(uint8_t *p, size_t payload)
{
	static const uint8_t eth[14] = { 0x52, 0x54, 0, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56,
					 0x08, 0x00 };
	uint8_t *ip = p + 14, *tcp = p + 34;

	memset(p, 0, 54);
	memcpy(p, eth, 14);
	ip[0] = 0x45;
	ip[4] = 0x12, ip[5] = 0x34;	/* ID */
	ip[8] = 64, ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x02\x0f\x0a\x00\x02\x02", 8);
	tcp[0] = 0x30, tcp[1] = 0x39, tcp[2] = 0x00, tcp[3] = 0x50;
	memcpy(tcp + 4, "\x00\x00\x10\x00", 4);	/* seq 4096 */
	tcp[12] = 0x50;
	tcp[13] = 0x18;			/* PSH|ACK */
	/* The pseudo-header sum without the length, as Linux seeds it for TSO. */
	uint16_t seed = csum(ip + 12, 8, 6);
	tcp[16] = (uint8_t)(seed >> 8), tcp[17] = (uint8_t)seed;
	for (size_t i = 0; i < payload; i++)
		p[54 + i] = (uint8_t)(i % 251);
	return 54 + payload;
}

static void test_transmit_tso(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = ram(f, TX_BUF);
	size_t len = tso_frame(buf, 2500);
	uint8_t *ctx = ram(f, TX_RING);
	uint32_t cmd;

	tx_setup(f);
	/* Context: IP at 14 (csum at 24, to 33), TCP at 34 (csum at 50), TSE, hdrlen 54, mss 1000. */
	memset(ctx, 0, 16);
	ctx[0] = 14, ctx[1] = 24, ctx[2] = 33, ctx[4] = 34, ctx[5] = 50;
	cmd = 2500 | (0x20u << 24) | (0x03u << 24) | (0x04u << 24);	/* DEXT, TCP|IP, TSE */
	memcpy(ctx + 8, &cmd, 4);
	ctx[13] = 54;
	ctx[14] = 1000 & 0xff, ctx[15] = 1000 >> 8;
	/* Data: DEXT, DTYP 1, TSE|EOP|RS, POPTS IXSM|TXSM. */
	tx_desc(f, 1, TX_BUF, (uint32_t)len | (1u << 20) | ((0x20u | 0x04u | 0x01u | 0x08u) << 24),
		0x03, 0);
	w32(f, TDT, 2);
	assert_int_equal(f->peer.count, 3);
	for (unsigned s = 0; s < 3; s++) {
		const uint8_t *p = f->peer.frames[s], *ip = p + 14, *tcp = p + 34;
		size_t n = s < 2 ? 1000 : 500;
		uint32_t seq = (uint32_t)(tcp[4] << 24 | tcp[5] << 16 | tcp[6] << 8 | tcp[7]);
		assert_int_equal(f->peer.lens[s], 54 + n);
		assert_int_equal(ip[2] << 8 | ip[3], 40 + n);
		assert_int_equal(ip[4] << 8 | ip[5], 0x1234 + s);
		assert_int_equal(seq, 4096 + 1000 * s);
		assert_int_equal(tcp[13], s < 2 ? 0x10 : 0x18);		/* PSH on the last only */
		assert_int_equal(csum(ip, 20, 0), 0xffff);		/* IP header checksum */
		/* TCP checksum over pseudo-header + segment. */
		uint32_t pseudo = csum(ip + 12, 8, 6) + (uint32_t)(20 + n);
		assert_int_equal(csum(tcp, 20 + n, pseudo), 0xffff);
		assert_memory_equal(p + 54, buf + 54 + 1000 * s, n);
	}
}

static void test_transmit_hostile(void **state)
{
	struct fx *f = *state;

	tx_setup(f);
	/* A buffer outside RAM: the frame is dropped, the ring goes on. */
	tx_desc(f, 0, 64 * MIB, 100 | ((0x01u | 0x08u) << 24), 0, 0);
	tx_desc(f, 1, TX_BUF, 60 | ((0x01u | 0x08u) << 24), 0, 0);
	w32(f, TDT, 2);
	assert_int_equal(f->peer.count, 1);
	assert_int_equal(f->peer.lens[0], 60);
	assert_int_equal(r32(f, TDH), 2);
	/* A ring outside RAM stops transmission, nothing else. */
	w32(f, TDBAL, 0xfff00000u);
	w32(f, TDH, 0);
	w32(f, TDT, 3);
	assert_int_equal(f->peer.count, 1);
	assert_int_equal(r32(f, TCTL) & 2, 0);
	/* A tail past the ring's end and a huge length: no crash, no frame. */
	memset(ram(f, TX_RING), 0, RING * 16);
	tx_desc(f, 0, TX_BUF, 0xfffff | ((0x01u | 0x08u | 0x20u) << 24) | (1u << 20), 0, 0);
	tx_setup(f);
	w32(f, TDT, 0xffff);
	assert_int_equal(f->peer.count, 1);
	/* Bus mastering off: no DMA at all. */
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	tx_setup(f);
	tx_desc(f, 0, TX_BUF, 60 | ((0x01u | 0x08u) << 24), 0, 0);
	w32(f, TDT, 1);
	assert_int_equal(f->peer.count, 1);
}

/* ---- receive -------------------------------------------------------------------- */

static void rx_setup(struct fx *f, uint32_t rctl)
{
	for (unsigned i = 0; i < RING; i++) {
		uint8_t *d = ram(f, RX_RING + 16 * i);
		uint64_t addr = RX_BUF + 0x1000 * i;
		memset(d, 0, 16);
		memcpy(d, &addr, 8);
	}
	w32(f, RDBAL, RX_RING);
	w32(f, RDBAH, 0);
	w32(f, RDLEN, RING * 16);
	w32(f, RDH, 0);
	w32(f, RDT, RING - 1);	/* 7 buffers for the NIC */
	w32(f, RCTL, rctl);
}

static ssize_t deliver(struct fx *f, const uint8_t *dst, size_t len)
{
	uint8_t frame[8192] = { 0 };
	struct iovec iov = { frame, len };

	memcpy(frame, dst, 6);
	memcpy(frame + 6, "\x52\x54\x00\x00\x00\x01", 6);
	for (size_t i = 12; i < len; i++)
		frame[i] = (uint8_t)i;
	return f->nic.nc.ops->receive(&f->nic.nc, &iov, 1);
}

static void test_receive(void **state)
{
	struct fx *f = *state;

	rx_setup(f, 0x2 | (1u << 15) | (1u << 26));	/* EN, BAM, SECRC; 2 KiB buffers */
	w32(f, IMS, 0x80);				/* RXT0 */
	assert_int_equal(deliver(f, MAC, 100), 100);
	uint8_t *d = ram(f, RX_RING);
	assert_int_equal(d[8] | d[9] << 8, 100);
	assert_int_equal(d[12], 0x3);			/* DD|EOP */
	assert_memory_equal(ram(f, RX_BUF), MAC, 6);
	assert_int_equal(ram(f, RX_BUF)[99], 99);
	assert_int_equal(r32(f, RDH), 1);
	assert_true(f->irq);

	/* Short frames are padded to 60 bytes. */
	assert_int_equal(deliver(f, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", 42), 42);
	assert_int_equal(ram(f, RX_RING + 16)[8], 60);

	/* Another station's unicast and unlisted multicast are filtered (taken, not stored). */
	assert_int_equal(deliver(f, (const uint8_t *)"\x52\x54\x00\x99\x99\x99", 80), 80);
	assert_int_equal(deliver(f, (const uint8_t *)"\x01\x00\x5e\x00\x00\x01", 80), 80);
	assert_int_equal(r32(f, RDH), 2);
	/* ... until the multicast table lists the address (MO 0: bits 47:36). */
	unsigned h = ((0x01u << 8 | 0x00u) >> 4) & 0xfff;
	w32(f, MTA + 4 * (h >> 5), 1u << (h & 31));
	assert_int_equal(deliver(f, (const uint8_t *)"\x01\x00\x5e\x00\x00\x01", 80), 80);
	assert_int_equal(r32(f, RDH), 3);

	/* A frame longer than a buffer spans descriptors; EOP on the last. */
	assert_int_equal(deliver(f, MAC, 3000), 3000);
	assert_int_equal(ram(f, RX_RING + 16 * 3)[12], 0x1);
	assert_int_equal(ram(f, RX_RING + 16 * 4)[12], 0x3);
	assert_int_equal(ram(f, RX_RING + 16 * 4)[8] | ram(f, RX_RING + 16 * 4)[9] << 8, 952);
	assert_int_equal(r32(f, RDH), 5);

	/* Two buffers left (5, 6): a 3-buffer frame waits, and RDT moving wakes the back end. */
	assert_int_equal(deliver(f, MAC, 5000), 0);
	unsigned wakes = f->peer.wakes;
	w32(f, RDT, 1);
	assert_int_equal(f->peer.wakes, wakes + 1);
	assert_int_equal(deliver(f, MAC, 5000), 5000);
	assert_int_equal(r32(f, RDH), 0);
}

static void test_receive_fcs_and_disabled(void **state)
{
	struct fx *f = *state;

	/* Without SECRC the 4-byte FCS is stored too. */
	rx_setup(f, 0x2);
	assert_int_equal(deliver(f, MAC, 100), 100);
	assert_int_equal(ram(f, RX_RING)[8], 104);
	/* Receiver off: frames are dropped. */
	w32(f, RCTL, 0);
	assert_int_equal(deliver(f, MAC, 100), -1);
	/* Oversized frames are dropped. */
	w32(f, RCTL, 0x2);
	uint8_t big[20000] = { 0 };
	struct iovec iov = { big, sizeof(big) };
	memcpy(big, MAC, 6);
	assert_int_equal(f->nic.nc.ops->receive(&f->nic.nc, &iov, 1), -1);
}

static void test_receive_hostile(void **state)
{
	struct fx *f = *state;

	rx_setup(f, 0x2 | (1u << 26));
	/* A buffer outside RAM: the descriptor says error (RXE), RAM is untouched. */
	uint64_t bad = 64 * MIB;
	memcpy(ram(f, RX_RING), &bad, 8);
	assert_int_equal(deliver(f, MAC, 100), 100);
	assert_int_equal(ram(f, RX_RING)[13], 0x80);
	/* A ring outside RAM and a tail past its end: frames wait or drop, nothing breaks. */
	w32(f, RDBAL, 0xfff00000u);
	w32(f, RDH, 0);
	w32(f, RDT, 5);
	deliver(f, MAC, 100);
	w32(f, RDBAL, RX_RING);
	w32(f, RDT, 0x7fff);
	assert_int_equal(deliver(f, MAC, 100), 0);
}

/* ---- interrupts and reset ------------------------------------------------------------ */

static void test_interrupt_mask_and_reset(void **state)
{
	struct fx *f = *state;

	w32(f, ICS, 0x4);		/* LSC, masked */
	assert_false(f->irq);
	w32(f, IMS, 0x4);
	assert_true(f->irq);
	w32(f, IMC, 0x4);
	assert_false(f->irq);
	assert_int_equal(r32(f, ICR), 0x4);

	w32(f, RCTL, 0x2);
	w32(f, IMS, 0xff);
	w32(f, CTRL, 1u << 26);		/* RST */
	assert_int_equal(r32(f, RCTL), 0);
	assert_int_equal(r32(f, 0xd0), 0);	/* IMS */
	assert_int_equal(r32(f, RAL0), 0x12005452);	/* the MAC comes back from the EEPROM */
	assert_false(r32(f, CTRL) & (1u << 26));

	/* The I/O BAR reaches the same registers. */
	uint32_t addr = STATUS, v = 0;
	pci_pio_io(&f->bus, f->io - PCI_IO_WINDOW_BASE, true, (uint8_t *)&addr, 4);
	pci_pio_io(&f->bus, f->io + 4 - PCI_IO_WINDOW_BASE, false, (uint8_t *)&v, 4);
	assert_int_equal(v, r32(f, STATUS));
}

/* ---- saved state ---------------------------------------------------------- */

static void save_nic(struct fx *f, struct vmstate_membuf *m)
{
	struct vmstate_out out;

	memset(m, 0, sizeof(*m));
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, m }), 0);
	assert_int_equal(pci_device_save(&f->bus, &f->nic.pci, f->nic.pci.slot << 3, &out), 0);
	assert_int_equal(e1000_save(&f->nic, &out, 0), 0);
	assert_int_equal(vmstate_out_end(&out), 0);
	vmstate_out_free(&out);
}

static int load_nic(struct fx *g, struct vmstate_membuf *m, char *err)
{
	struct vmstate_in in;
	int rc = 0;

	m->pos = 0;
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, m }), 0);
	while (rc == 0 && vmstate_next_section(&in) == 1)
		rc = !strcmp(in.name, "e1000") ? e1000_load(&g->nic, &in) :
		     pci_device_load(&g->bus, &g->nic.pci, &in);
	strcpy(err, in.err);
	vmstate_in_free(&in);
	return rc;
}

static void test_state_round_trip(void **state)
{
	struct fx *f = *state, *g = NULL;
	struct vmstate_membuf m;
	char err[400];

	w32(f, RDBAL, RX_RING);
	w32(f, RDLEN, RING * 16);
	w32(f, RDT, 5);
	w32(f, MTA + 8, 0xa5a5a5a5);
	w32(f, IMS, 0x80);
	w32(f, ICS, 0x80);		/* a pending receive-timer interrupt */
	assert_true(f->irq);
	save_nic(f, &m);

	assert_int_equal(setup((void **)&g), 0);
	assert_false(g->irq);
	assert_int_equal(load_nic(g, &m, err), 0);
	assert_true(g->irq);		/* the line follows ICR & IMS */
	assert_int_equal(r32(g, RDBAL), RX_RING);
	assert_int_equal(r32(g, RDT), 5);
	assert_int_equal(r32(g, MTA + 8), 0xa5a5a5a5);
	assert_int_equal(r32(g, RAL0), 0x12005452);
	assert_int_equal(r32(g, ICR), 0x80);	/* read clears, as on the source */
	assert_false(g->irq);
	free(m.data);

	/* A hostile frame length is refused by name; the NIC keeps its state. */
	f->nic.tx_len = E1000_TX_MAX + 1;
	save_nic(f, &m);
	f->nic.tx_len = 0;
	w32(g, RDT, 3);
	assert_int_equal(load_nic(g, &m, err), -1);
	assert_non_null(strstr(err, "section 'e1000' instance 0: transmit frame of"));
	assert_int_equal(r32(g, RDT), 3);
	free(m.data);
	teardown((void **)&g);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity_and_bars),
		T(test_eeprom_eerd),
		T(test_eeprom_microwire),
		T(test_phy_through_mdic),
		T(test_transmit_legacy),
		T(test_transmit_legacy_checksum),
		T(test_transmit_tso),
		T(test_transmit_hostile),
		T(test_receive),
		T(test_receive_fcs_and_disabled),
		T(test_receive_hostile),
		T(test_state_round_trip),
		T(test_interrupt_mask_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
