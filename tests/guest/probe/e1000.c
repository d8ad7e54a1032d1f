/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Intel 82540EM (e1000, 8086:100E) for the probe's IPv4 host, chosen
 * with nic=e1000: legacy descriptors, polling, interrupts masked.  The MAC
 * comes from the EEPROM through EERD and must match receive address 0.
 */
#include "probe.h"

#define E1000_VENDOR	0x8086
#define E1000_DEVICE	0x100e

#define CTRL	0x0000
#define STATUS	0x0008
#define EERD	0x0014
#define IMC	0x00d8
#define RCTL	0x0100
#define TCTL	0x0400
#define TIPG	0x0410
#define RDBAL	0x2800
#define RDBAH	0x2804
#define RDLEN	0x2808
#define RDH	0x2810
#define RDT	0x2818
#define TDBAL	0x3800
#define TDBAH	0x3804
#define TDLEN	0x3808
#define TDH	0x3810
#define TDT	0x3818
#define RAL0	0x5400
#define RAH0	0x5404

#define CTRL_SLU	(1u << 6)
#define CTRL_RST	(1u << 26)
#define RCTL_EN		(1u << 1)
#define RCTL_BAM	(1u << 15)
#define RCTL_SECRC	(1u << 26)
#define TCTL_EN		(1u << 1)
#define TCTL_PSP	(1u << 3)
#define TXD_EOP		0x01
#define TXD_IFCS	0x02
#define TXD_RS		0x08
#define DD		0x01
#define RXD_EOP		0x02

#define RING		32		/* descriptors per ring (512 bytes, 128-aligned) */
#define BUF		2048

struct desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso_or_csum_lo, cmd_or_csum_hi;	/* tx: cso, cmd; rx: checksum */
	uint8_t status, css_or_errors;
	uint16_t special;
};

static struct desc rx_ring[RING] __attribute__((aligned(128)));
static struct desc tx_ring[RING] __attribute__((aligned(128)));
static uint8_t rx_buf[RING][BUF] __attribute__((aligned(64)));
static uint8_t tx_buf[RING][BUF] __attribute__((aligned(64)));
static volatile uint8_t *regs;
static uint32_t rx_next, tx_next;

static uint32_t rd(uint32_t r) { return *(volatile uint32_t *)(regs + r); }
static void wr(uint32_t r, uint32_t v) { *(volatile uint32_t *)(regs + r) = v; }

static uint64_t tsc_ms(uint64_t ms)
{
	uint64_t hz = tsc_hz();

	return (hz ? hz : 2000000000ull) / 1000 * ms;
}

static bool eeprom_word(unsigned w, uint16_t *out)
{
	uint64_t t0 = rdtsc();

	wr(EERD, w << 8 | 1);
	while (!(rd(EERD) & 0x10)) {
		if (rdtsc() - t0 > tsc_ms(100))
			return false;
		cpu_relax();
	}
	*out = (uint16_t)(rd(EERD) >> 16);
	return true;
}

bool e1000_open(const struct platform *p, uint8_t mac[6])
{
	struct pci_func *f;
	int n = pci_scan(p, &f), i;
	uint64_t t0;

	for (i = 0; i < n; i++)
		if (f[i].vendor == E1000_VENDOR && f[i].device == E1000_DEVICE)
			break;
	if (i == n)
		return fail("e1000: no 8086:100e function");
	if (!pci_bar_map(&f[i], 0))
		return fail("e1000: BAR0 cannot be mapped");
	pci_enable(&f[i]);
	regs = phys(f[i].bar[0].addr);

	wr(IMC, 0xffffffff);
	wr(CTRL, rd(CTRL) | CTRL_RST);
	t0 = rdtsc();
	while (rd(CTRL) & CTRL_RST) {
		if (rdtsc() - t0 > tsc_ms(100))
			return fail("e1000: reset did not complete");
		cpu_relax();
	}
	wr(IMC, 0xffffffff);
	for (int w = 0; w < 3; w++) {
		uint16_t v;
		if (!eeprom_word((unsigned)w, &v))
			return fail("e1000: EEPROM read (EERD) did not complete");
		mac[2 * w] = (uint8_t)v;
		mac[2 * w + 1] = (uint8_t)(v >> 8);
	}
	uint32_t ral = rd(RAL0), rah = rd(RAH0);
	if (ral != (uint32_t)(mac[0] | mac[1] << 8 | mac[2] << 16 | (uint32_t)mac[3] << 24) ||
	    (rah & 0xffff) != (uint32_t)(mac[4] | mac[5] << 8))
		return fail("e1000: RAL0/RAH0 %08x/%08x disagree with the EEPROM", ral, rah);
	wr(CTRL, rd(CTRL) | CTRL_SLU);

	for (int d = 0; d < RING; d++) {
		rx_ring[d] = (struct desc){ .addr = (uint64_t)(uintptr_t)rx_buf[d] };
		tx_ring[d] = (struct desc){ .addr = (uint64_t)(uintptr_t)tx_buf[d], .status = DD };
	}
	wr(RDBAL, (uint32_t)(uintptr_t)rx_ring);
	wr(RDBAH, 0);
	wr(RDLEN, sizeof(rx_ring));
	wr(RDH, 0);
	wr(RDT, RING - 1);
	wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);	/* 2 KiB buffers */
	wr(TDBAL, (uint32_t)(uintptr_t)tx_ring);
	wr(TDBAH, 0);
	wr(TDLEN, sizeof(tx_ring));
	wr(TDH, 0);
	wr(TDT, 0);
	wr(TIPG, 10 | 8 << 10 | 6 << 20);
	wr(TCTL, TCTL_EN | TCTL_PSP | 0x10 << 4 | 0x40 << 12);
	rx_next = tx_next = 0;
	say("net: e1000 %02x:%02x.%x mac %02x:%02x:%02x:%02x:%02x:%02x%s", f[i].bus, f[i].dev,
	    f[i].fn, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
	    rd(STATUS) & 2 ? " link up" : "");
	return true;
}

/* Sends one frame (padded to 60 bytes); waits for the slot's last frame to be gone. */
bool e1000_send(const uint8_t *frame, uint32_t len)
{
	struct desc *d = &tx_ring[tx_next];
	uint64_t t0 = rdtsc();

	if (len > BUF)
		return fail("e1000: frame of %u bytes too long", len);
	while (!(*(volatile uint8_t *)&d->status & DD)) {
		if (rdtsc() - t0 > tsc_ms(10000))
			return fail("e1000: transmit ring stuck (TDH %u TDT %u)", rd(TDH), rd(TDT));
		cpu_relax();
	}
	memcpy(tx_buf[tx_next], frame, len);
	if (len < 60) {
		memset(tx_buf[tx_next] + len, 0, 60 - len);
		len = 60;
	}
	d->length = (uint16_t)len;
	d->cmd_or_csum_hi = TXD_EOP | TXD_IFCS | TXD_RS;
	d->status = 0;
	tx_next = (tx_next + 1) % RING;
	wr(TDT, tx_next);
	return true;
}

/* The next received frame into out (at most max bytes); 0 if none is waiting. */
uint32_t e1000_recv(uint8_t *out, uint32_t max)
{
	struct desc *d = &rx_ring[rx_next];
	uint32_t len = 0;

	if (!(*(volatile uint8_t *)&d->status & DD))
		return 0;
	/* Frames fit one buffer at this MTU; a chained or bad one is skipped. */
	if ((d->status & RXD_EOP) && !d->css_or_errors && d->length <= max) {
		len = d->length;
		memcpy(out, rx_buf[rx_next], len);
	}
	d->status = 0;
	wr(RDT, rx_next);	/* the buffer goes back to the NIC */
	rx_next = (rx_next + 1) % RING;
	return len ? len : 0;
}
