/*
 * The 82540EM as drivers see it (Intel PCI/PCI-X Family of Gigabit Ethernet
 * Controllers Software Developer's Manual, 8254x; register names from it).
 * Every descriptor and buffer address the guest gives is checked against
 * guest RAM: a bad one ends that transfer, never the process.
 */
#include "hw/e1000.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/log.h"
#include "core/memory.h"
#include "core/vmstate.h"

/* Registers (byte offsets). */
enum {
	CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, CTRL_EXT = 0x0018,
	MDIC = 0x0020, ICR = 0x00c0, ITR = 0x00c4, ICS = 0x00c8, IMS = 0x00d0, IMC = 0x00d8,
	RCTL = 0x0100, TCTL = 0x0400, PBA = 0x1000,
	RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810, RDT = 0x2818,
	TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818,
	STATS_START = 0x4000, STATS_END = 0x4100,
	MTA = 0x5200, RAL0 = 0x5400, RAH0 = 0x5404,
};

#define CTRL_SLU (1u << 6)
#define CTRL_RST (1u << 26)
#define STATUS_FD 0x1
#define STATUS_LU 0x2
#define STATUS_SPEED_1000 0x80

#define EECD_SK 0x01
#define EECD_CS 0x02
#define EECD_DI 0x04
#define EECD_DO 0x08
#define EECD_FWE 0x30
#define EECD_REQ 0x40
#define EECD_GNT 0x80
#define EECD_PRES 0x100
#define EEPROM_READ_OPCODE 6		/* microwire: 110b */
#define EERD_START 0x1
#define EERD_DONE 0x10
#define EEPROM_CHECKSUM 0xbaba		/* what words 0..0x3f add up to */

#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ (2u << 26)
#define MDIC_READY (1u << 28)
#define MDIC_ERROR (1u << 30)
#define PHY_ADDR 1

#define ICR_TXDW 0x01
#define ICR_TXQE 0x02
#define ICR_LSC 0x04
#define ICR_RXT0 0x80

#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)
#define RCTL_MPE (1u << 4)
#define RCTL_BAM (1u << 15)
#define RCTL_BSEX (1u << 25)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN (1u << 1)
#define RAH_AV (1u << 31)

/* Transmit descriptor command bits (legacy and data descriptors agree on these). */
#define TXD_EOP 0x01
#define TXD_IC 0x04		/* legacy: insert checksum; data descriptor: TSE */
#define TXD_RS 0x08
#define TXD_DEXT 0x20
#define TXD_DD 0x01		/* status */
#define POPTS_IXSM 0x01
#define POPTS_TXSM 0x02
#define TUCMD_IP 0x02
#define TUCMD_TCP 0x01

#define RXD_DD 0x01
#define RXD_EOP 0x02
#define MIN_FRAME 60		/* without the FCS */

static uint32_t reg(const struct e1000 *e, unsigned r) { return e->regs[r / 4]; }
static void set_reg(struct e1000 *e, unsigned r, uint32_t v) { e->regs[r / 4] = v; }

/* DMA (descriptors, buffers) only while the guest lets the function master the bus. */
static bool bus_master(const struct e1000 *e)
{
	uint16_t cmd;

	memcpy(&cmd, e->pci.config + PCI_COMMAND, 2);
	return cmd & PCI_COMMAND_MASTER;
}

/* ---- interrupts ----------------------------------------------------------- */

static void update_irq(struct e1000 *e)
{
	bool level = (reg(e, ICR) & reg(e, IMS)) != 0;

	if (level != e->irq_level && e->set_irq) {
		e->irq_level = level;
		e->set_irq(e->irq_opaque, e->pci.config[PCI_INTERRUPT_LINE], level);
	}
}

static void raise_cause(struct e1000 *e, uint32_t cause)
{
	set_reg(e, ICR, reg(e, ICR) | cause);
	update_irq(e);
}

/* ---- power-on state --------------------------------------------------------- */

static void eeprom_init(struct e1000 *e)
{
	static const uint16_t tmpl[E1000_EEPROM_WORDS] = {
		[3] = 0x0000, [4] = 0xffff, [8] = 0x3000, [9] = 0x1000, [0x0a] = 0x6403,
		[0x0b] = 0x100e, [0x0c] = 0x8086, [0x0d] = 0x100e, [0x0e] = 0x8086,
		[0x0f] = 0x3040, [0x10] = 0x0008, [0x11] = 0x2000, [0x12] = 0x7e14,
		[0x13] = 0x0048, [0x14] = 0x1000, [0x15] = 0x00d8, [0x17] = 0x2700,
		[0x18] = 0x6cc9, [0x19] = 0x3150, [0x1a] = 0x0722, [0x1b] = 0x040b,
		[0x1c] = 0x0984, [0x1e] = 0xc000, [0x1f] = 0x0706, [0x20] = 0x1008,
		[0x22] = 0x0f04, [0x23] = 0x7fff, [0x24] = 0x4d01,
	};
	uint16_t sum = 0;

	memcpy(e->eeprom, tmpl, sizeof(tmpl));
	for (int i = 0; i < 3; i++)
		e->eeprom[i] = (uint16_t)(e->mac[2 * i] | e->mac[2 * i + 1] << 8);
	for (int i = 0; i < E1000_EEPROM_WORDS - 1; i++)
		sum = (uint16_t)(sum + e->eeprom[i]);
	e->eeprom[E1000_EEPROM_WORDS - 1] = (uint16_t)(EEPROM_CHECKSUM - sum);
}

/* The 88E1011 PHY with the link up and autonegotiation done, as QEMU shows it. */
static void phy_init(struct e1000 *e)
{
	static const uint16_t phy[32] = {
		[0] = 0x1140, [1] = 0x796d, [2] = 0x0141, [3] = 0x0c20, [4] = 0x0de1,
		[5] = 0x45e0, [6] = 0x0005, [9] = 0x0e00, [10] = 0x3c00, [15] = 0x3000,
		[16] = 0x0360, [17] = 0xac00, [20] = 0x0c60, [26] = 0x0000,
	};
	memcpy(e->phy, phy, sizeof(phy));
}

static void reset_regs(struct e1000 *e)
{
	memset(e->regs, 0, sizeof(e->regs));
	memset(&e->eecd, 0, sizeof(e->eecd));
	memset(&e->ctx, 0, sizeof(e->ctx));
	e->tx_len = 0;
	e->tx_overflow = false;
	set_reg(e, CTRL, CTRL_SLU | 0x0200 /* full duplex */);
	set_reg(e, STATUS, STATUS_FD | STATUS_LU | STATUS_SPEED_1000 | 0x80000 /* GIO master */);
	set_reg(e, EECD, EECD_PRES | EECD_GNT);
	set_reg(e, PBA, 0x00100030);
	set_reg(e, RAL0, (uint32_t)(e->mac[0] | e->mac[1] << 8 | e->mac[2] << 16 |
				    (uint32_t)e->mac[3] << 24));
	set_reg(e, RAH0, (uint32_t)(e->mac[4] | e->mac[5] << 8) | RAH_AV);
	phy_init(e);
	if (e->irq_level && e->set_irq)
		e->set_irq(e->irq_opaque, e->pci.config[PCI_INTERRUPT_LINE], false);
	e->irq_level = false;
}

/* ---- EEPROM and PHY ------------------------------------------------------------ */

/* Microwire, bit by bit: 3 opcode and 6 address bits in, then 16 data bits out. */
static void eecd_write(struct e1000 *e, uint32_t val)
{
	uint32_t old = e->eecd.old;

	e->eecd.old = val & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ);
	set_reg(e, EECD, (val & (EECD_FWE | EECD_REQ)) | EECD_PRES | EECD_GNT);
	if (!(val & EECD_CS))
		return;
	if ((val ^ old) & EECD_CS) {	/* chip select rises: a new command */
		e->eecd.val_in = 0;
		e->eecd.bit_in = 0;
		e->eecd.bit_out = 0;
		e->eecd.reading = false;
	}
	if (!((val ^ old) & EECD_SK))
		return;
	if (!(val & EECD_SK)) {		/* falling clock: next output bit */
		e->eecd.bit_out++;
		return;
	}
	e->eecd.val_in = e->eecd.val_in << 1 | !!(val & EECD_DI);
	if (++e->eecd.bit_in == 9 && !e->eecd.reading) {
		e->eecd.bit_out = ((e->eecd.val_in & 0x3f) << 4) - 1;
		e->eecd.reading = ((e->eecd.val_in >> 6) & 7) == EEPROM_READ_OPCODE;
	}
}

static uint32_t eecd_read(const struct e1000 *e)
{
	uint32_t v = EECD_PRES | EECD_GNT | e->eecd.old;
	unsigned bit = e->eecd.bit_out;

	if (!e->eecd.reading ||
	    (e->eeprom[(bit >> 4) & 0x3f] >> ((bit & 0xf) ^ 0xf) & 1))
		v |= EECD_DO;
	return v;
}

static uint32_t eerd_value(const struct e1000 *e, uint32_t val)
{
	unsigned addr = (val >> 8) & 0xff;

	if (!(val & EERD_START))
		return val & ~EERD_DONE;
	if (addr >= E1000_EEPROM_WORDS)
		return val | EERD_DONE;		/* done, data 0 */
	return (uint32_t)e->eeprom[addr] << 16 | (addr << 8) | EERD_DONE;
}

static uint32_t mdic_value(struct e1000 *e, uint32_t val)
{
	unsigned phy_addr = (val >> 21) & 0x1f, r = (val >> 16) & 0x1f;

	if (phy_addr != PHY_ADDR)
		return val | MDIC_READY | MDIC_ERROR;
	if ((val & (3u << 26)) == MDIC_OP_READ)
		return (val & ~0xffffu) | e->phy[r] | MDIC_READY;
	if ((val & (3u << 26)) == MDIC_OP_WRITE) {
		uint16_t data = (uint16_t)val;
		if (r == 0) {
			/* Reset and restart-autonegotiation bits clear themselves; the link stays up. */
			data &= (uint16_t)~0x8200;
			raise_cause(e, ICR_LSC);
		}
		if (r != 1 && r != 2 && r != 3)		/* status and ID are read-only */
			e->phy[r] = data;
	}
	return val | MDIC_READY;
}

/* ---- transmit --------------------------------------------------------------- */

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t sum_bytes(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/*
 * Writes the ones' complement sum of frame[css .. cse] (cse 0: to the end)
 * at cso, on top of what the driver seeded there (the pseudo-header sum).
 */
static void insert_checksum(uint8_t *frame, size_t len, unsigned css, unsigned cso, unsigned cse)
{
	size_t end = cse && cse + 1u < len ? cse + 1u : len;
	uint16_t c;

	if (css >= end || cso + 2u > len)
		return;
	c = fold(sum_bytes(frame + css, end - css, 0));
	frame[cso] = (uint8_t)(c >> 8);
	frame[cso + 1] = (uint8_t)c;
}

/*
 * Sent without the register lock (tx_lock still keeps the frame ours): a
 * back end may hand it straight to another NIC of this VM, whose own
 * transmit may be sending to us.
 */
static void send_frame(struct e1000 *e, uint8_t *frame, size_t len)
{
	struct iovec iov = { frame, len };

	e->tx_frames++;
	pthread_mutex_unlock(&e->lock);
	net_send(&e->nc, &iov, 1);
	pthread_mutex_lock(&e->lock);
}

/* The checksums the driver asked for (POPTS), from the context descriptor. */
static void offload_checksums(struct e1000 *e, uint8_t *frame, size_t len)
{
	if (e->tx_popts & POPTS_IXSM)
		insert_checksum(frame, len, e->ctx.ipcss, e->ctx.ipcso, e->ctx.ipcse);
	if (e->tx_popts & POPTS_TXSM)
		insert_checksum(frame, len, e->ctx.tucss, e->ctx.tucso, e->ctx.tucse);
}

/*
 * TCP segmentation (TSE): the header (hdrlen bytes) is repeated in front of
 * each mss-sized piece of payload, with the IP length and ID, the TCP
 * sequence number and flags fixed up, then the checksums done per segment.
 */
static void send_tso(struct e1000 *e)
{
	const struct e1000_tx_ctx *c = &e->ctx;
	size_t hdr = c->hdrlen, payload = e->tx_len > hdr ? e->tx_len - hdr : 0;
	uint8_t seg[E1000_TX_MAX];
	uint16_t ip_id = 0;
	uint32_t seq = 0;

	if (!c->mss || hdr < (size_t)c->tucss + 20 || hdr > 256 || !c->tcp) {
		offload_checksums(e, e->tx_frame, e->tx_len);
		send_frame(e, e->tx_frame, e->tx_len);
		return;
	}
	if (c->ipv4)
		ip_id = (uint16_t)(e->tx_frame[c->ipcss + 4] << 8 | e->tx_frame[c->ipcss + 5]);
	memcpy(&seq, e->tx_frame + c->tucss + 4, 4);
	seq = __builtin_bswap32(seq);
	for (size_t off = 0; off < payload || off == 0; off += c->mss) {
		size_t n = payload - off < c->mss ? payload - off : c->mss, total = hdr + n;
		bool last = off + n >= payload;
		uint8_t *tcp = seg + c->tucss;

		memcpy(seg, e->tx_frame, hdr);
		memcpy(seg + hdr, e->tx_frame + hdr + off, n);
		if (c->ipv4) {
			uint16_t iplen = (uint16_t)(total - c->ipcss);
			seg[c->ipcss + 2] = (uint8_t)(iplen >> 8);
			seg[c->ipcss + 3] = (uint8_t)iplen;
			seg[c->ipcss + 4] = (uint8_t)(ip_id >> 8);
			seg[c->ipcss + 5] = (uint8_t)ip_id;
			ip_id++;
		} else {	/* IPv6: payload length after the 40-byte header */
			uint16_t plen = (uint16_t)(total - c->ipcss - 40);
			seg[c->ipcss + 4] = (uint8_t)(plen >> 8);
			seg[c->ipcss + 5] = (uint8_t)plen;
		}
		uint32_t s = __builtin_bswap32(seq + (uint32_t)off);
		memcpy(tcp + 4, &s, 4);
		if (!last)
			tcp[13] &= (uint8_t)~0x09;	/* FIN and PSH only on the last segment */
		/*
		 * The driver seeded the TCP checksum with the pseudo-header sum
		 * without the length; add this segment's TCP length.
		 */
		uint32_t seed = (uint32_t)(tcp[c->tucso - c->tucss] << 8 |
					   tcp[c->tucso - c->tucss + 1]);
		seed += (uint32_t)(total - c->tucss);
		seed = (seed & 0xffff) + (seed >> 16);
		tcp[c->tucso - c->tucss] = (uint8_t)(seed >> 8);
		tcp[c->tucso - c->tucss + 1] = (uint8_t)seed;
		if (c->ipv4) {
			seg[c->ipcso] = seg[c->ipcso + 1] = 0;
			insert_checksum(seg, total, c->ipcss, c->ipcso, c->ipcse);
		}
		insert_checksum(seg, total, c->tucss, c->tucso, 0);
		send_frame(e, seg, total);
		if (last)
			break;
	}
}

static void finish_frame(struct e1000 *e)
{
	if (!e->tx_overflow && e->tx_len) {
		if (e->tx_tse)
			send_tso(e);
		else {
			offload_checksums(e, e->tx_frame, e->tx_len);
			send_frame(e, e->tx_frame, e->tx_len);
		}
	}
	e->tx_len = 0;
	e->tx_overflow = false;
	e->tx_popts = 0;
	e->tx_tse = false;
}

static void append(struct e1000 *e, uint64_t addr, uint32_t len)
{
	const void *p = memory_ptr(e->mem, addr, len);

	if (!p || len > sizeof(e->tx_frame) - e->tx_len) {
		e->tx_overflow = true;	/* a bad or oversized frame is dropped whole */
		return;
	}
	memcpy(e->tx_frame + e->tx_len, p, len);
	e->tx_len += len;
}

static void context_descriptor(struct e1000 *e, const uint8_t *d)
{
	struct e1000_tx_ctx *c = &e->ctx;
	uint32_t cmdlen;

	c->ipcss = d[0];
	c->ipcso = d[1];
	c->ipcse = (uint16_t)(d[2] | d[3] << 8);
	c->tucss = d[4];
	c->tucso = d[5];
	c->tucse = (uint16_t)(d[6] | d[7] << 8);
	memcpy(&cmdlen, d + 8, 4);
	c->paylen = cmdlen & 0xfffff;
	c->tcp = (cmdlen >> 24) & TUCMD_TCP;
	c->ipv4 = (cmdlen >> 24) & TUCMD_IP;
	c->hdrlen = d[13];
	c->mss = (uint16_t)(d[14] | d[15] << 8);
}

/* One descriptor; returns its command byte (for RS). */
static uint8_t tx_descriptor(struct e1000 *e, const uint8_t *d)
{
	uint64_t addr;
	uint32_t lower;
	uint8_t cmd = d[11];

	memcpy(&addr, d, 8);
	memcpy(&lower, d + 8, 4);
	if (cmd & TXD_DEXT) {
		unsigned dtyp = (lower >> 20) & 0xf;
		if (dtyp == 0) {
			context_descriptor(e, d);
			return cmd;
		}
		if (dtyp != 1)
			return cmd;	/* unknown: skipped */
		if (!e->tx_len) {
			e->tx_popts = d[13];
			e->tx_tse = cmd & TXD_IC;	/* TSE in a data descriptor */
		}
		append(e, addr, lower & 0xfffff);
	} else {
		append(e, addr, lower & 0xffff);
		/* Legacy checksum: CSO and CSS from the descriptor, on the last one. */
		if ((cmd & TXD_EOP) && (cmd & TXD_IC) && !e->tx_overflow)
			insert_checksum(e->tx_frame, e->tx_len, d[13], d[10], 0);
	}
	if (cmd & TXD_EOP)
		finish_frame(e);
	return cmd;
}

/* Serves the transmit ring; caller holds tx_lock and the register lock. */
static void transmit(struct e1000 *e)
{
	uint32_t sent = 0, cause = 0;

	for (;;) {
		uint64_t base = (uint64_t)reg(e, TDBAH) << 32 | reg(e, TDBAL);
		uint32_t count = reg(e, TDLEN) / 16, head = reg(e, TDH);
		if (!(reg(e, TCTL) & TCTL_EN) || !count || !e->attached || !bus_master(e) ||
		    head == reg(e, TDT) || sent++ > count)
			break;
		uint8_t *d = head < count ? memory_ptr(e->mem, base + head * 16ULL, 16) : NULL;
		uint8_t desc[16];
		if (!d) {
			log_warn("e1000: transmit ring outside guest RAM; transmit stopped");
			set_reg(e, TCTL, reg(e, TCTL) & ~TCTL_EN);
			break;
		}
		memcpy(desc, d, 16);
		if (tx_descriptor(e, desc) & TXD_RS) {
			d[12] |= TXD_DD;
			cause |= ICR_TXDW;
		}
		set_reg(e, TDH, (head + 1) % count);
	}
	if (reg(e, TDH) == reg(e, TDT))
		cause |= ICR_TXQE;
	if (cause && e->attached)
		raise_cause(e, cause);
}

/* ---- receive ---------------------------------------------------------------- */

static size_t rx_buffer_size(uint32_t rctl)
{
	static const size_t plain[4] = { 2048, 1024, 512, 256 };
	static const size_t ext[4] = { 2048, 16384, 8192, 4096 };
	unsigned bsize = (rctl >> 16) & 3;

	return (rctl & RCTL_BSEX) ? ext[bsize] : plain[bsize];
}

static bool accept(const struct e1000 *e, const uint8_t *dst)
{
	uint32_t rctl = reg(e, RCTL);
	static const unsigned mo_shift[4] = { 4, 3, 2, 0 };

	if (rctl & RCTL_UPE)
		return true;
	if (dst[0] & 1) {
		if (!memcmp(dst, "\xff\xff\xff\xff\xff\xff", 6))
			return rctl & RCTL_BAM;
		if (rctl & RCTL_MPE)
			return true;
		unsigned f = ((unsigned)(dst[5] << 8 | dst[4]) >> mo_shift[(rctl >> 12) & 3]) & 0xfff;
		return reg(e, MTA + 4 * (f >> 5)) & (1u << (f & 31));
	}
	for (unsigned i = 0; i < 16; i++) {
		uint32_t lo = reg(e, RAL0 + 8 * i), hi = reg(e, RAH0 + 8 * i);
		uint8_t a[6] = { (uint8_t)lo, (uint8_t)(lo >> 8), (uint8_t)(lo >> 16),
				 (uint8_t)(lo >> 24), (uint8_t)hi, (uint8_t)(hi >> 8) };
		if ((hi & RAH_AV) && !memcmp(a, dst, 6))
			return true;
	}
	return false;
}

static ssize_t e1000_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct e1000 *e = nc->opaque;
	uint8_t frame[16384 + 4];
	size_t len = 0, size = net_iov_size(iov, iovcnt);
	ssize_t ret = (ssize_t)size;

	if (size > sizeof(frame) - 4)
		return -1;	/* larger than any buffer chain we make */
	for (int i = 0; i < iovcnt; i++) {
		memcpy(frame + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	pthread_mutex_lock(&e->lock);
	if (!e->attached || !(reg(e, RCTL) & RCTL_EN) || !bus_master(e) || len < 14 ||
	    !accept(e, frame)) {
		bool listening = e->attached && (reg(e, RCTL) & RCTL_EN);
		pthread_mutex_unlock(&e->lock);
		return listening ? ret : -1;	/* filtered: taken; nobody listening: dropped */
	}
	if (len < MIN_FRAME) {		/* short frames are padded, as the wire would */
		memset(frame + len, 0, MIN_FRAME - len);
		len = MIN_FRAME;
	}
	if (!(reg(e, RCTL) & RCTL_SECRC)) {	/* the FCS stays unless the driver strips it */
		uint32_t fcs = (uint32_t)crc32(0, frame, (uInt)len);
		memcpy(frame + len, &fcs, 4);
		len += 4;
	}

	uint64_t base = (uint64_t)reg(e, RDBAH) << 32 | reg(e, RDBAL);
	uint32_t count = reg(e, RDLEN) / 16, head = reg(e, RDH), tail = reg(e, RDT);
	size_t bufsize = rx_buffer_size(reg(e, RCTL));
	uint32_t need = (uint32_t)((len + bufsize - 1) / bufsize);
	uint32_t avail = count && head < count && tail < count ? (tail + count - head) % count : 0;

	if (avail < need) {
		pthread_mutex_unlock(&e->lock);
		return 0;	/* no room: the back end holds the frame until RDT moves */
	}
	for (size_t done = 0; done < len; head = (head + 1) % count) {
		uint8_t *d = memory_ptr(e->mem, base + head * 16ULL, 16);
		size_t n = len - done < bufsize ? len - done : bufsize;
		uint64_t addr;
		void *buf;

		if (!d) {
			log_warn("e1000: receive ring outside guest RAM; frame dropped");
			break;
		}
		memcpy(&addr, d, 8);
		buf = memory_ptr(e->mem, addr, n);
		if (buf)
			memcpy(buf, frame + done, n);
		done += n;
		d[8] = (uint8_t)n;
		d[9] = (uint8_t)(n >> 8);
		d[12] = RXD_DD | (done == len ? RXD_EOP : 0);
		d[13] = buf ? 0 : 0x80;		/* RXE: the buffer was not in RAM */
	}
	set_reg(e, RDH, head);
	e->rx_frames++;
	raise_cause(e, ICR_RXT0);
	pthread_mutex_unlock(&e->lock);
	return ret;
}

/* ---- register access -------------------------------------------------------- */

static uint32_t reg_read(struct e1000 *e, unsigned r)
{
	uint32_t v;

	switch (r) {
	case EECD:
		return eecd_read(e);
	case ICR:
		v = reg(e, ICR);	/* reading acknowledges every cause */
		set_reg(e, ICR, 0);
		update_irq(e);
		return v;
	default:
		v = reg(e, r);
		if (r >= STATS_START && r < STATS_END)
			set_reg(e, r, 0);	/* statistics clear on read */
		return v;
	}
}

enum { AFTER_NOTHING, AFTER_WAKE_RX, AFTER_TRANSMIT };

/* Returns what to do once the register lock is dropped. */
static int reg_write(struct e1000 *e, unsigned r, uint32_t v)
{
	switch (r) {
	case CTRL:
		if (v & CTRL_RST) {
			reset_regs(e);
			return AFTER_NOTHING;
		}
		set_reg(e, CTRL, v);
		return AFTER_NOTHING;
	case STATUS:
		return AFTER_NOTHING;	/* read-only */
	case EECD:
		eecd_write(e, v);
		return AFTER_NOTHING;
	case EERD:
		set_reg(e, EERD, eerd_value(e, v));
		return AFTER_NOTHING;
	case MDIC:
		set_reg(e, MDIC, mdic_value(e, v));
		return AFTER_NOTHING;
	case ICR:
		set_reg(e, ICR, reg(e, ICR) & ~v);
		update_irq(e);
		return AFTER_NOTHING;
	case ICS:
		raise_cause(e, v);
		return AFTER_NOTHING;
	case IMS:
		set_reg(e, IMS, reg(e, IMS) | v);
		update_irq(e);
		return AFTER_NOTHING;
	case IMC:
		set_reg(e, IMS, reg(e, IMS) & ~v);
		update_irq(e);
		return AFTER_NOTHING;
	case RDLEN:
	case TDLEN:
		set_reg(e, r, v & 0xfff80);
		return AFTER_NOTHING;
	case RDH:
	case RDT:
	case TDH:
		set_reg(e, r, v & 0xffff);
		return r == RDT ? AFTER_WAKE_RX : AFTER_NOTHING;
	case TDT:
		set_reg(e, TDT, v & 0xffff);
		return AFTER_TRANSMIT;
	case RCTL:
		set_reg(e, RCTL, v);
		return (v & RCTL_EN) ? AFTER_WAKE_RX : AFTER_NOTHING;
	case TCTL:
		set_reg(e, TCTL, v);
		return AFTER_TRANSMIT;
	default:
		if (r >= STATS_START && r < STATS_END)
			return AFTER_NOTHING;	/* counters are the device's */
		set_reg(e, r, v);
		return AFTER_NOTHING;
	}
}

/* Registers are 32 bits wide; narrower accesses read or merge part of one. */
static void reg_access(struct e1000 *e, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	unsigned r = (unsigned)offset & ~3u, shift = ((unsigned)offset & 3) * 8;
	int after = AFTER_NOTHING;

	if (offset >= E1000_MMIO_SIZE || size > 4 || (offset & 3) + size > 4) {
		if (!is_write)
			memset(data, 0, size);
		return;
	}
	pthread_mutex_lock(&e->lock);
	if (is_write) {
		uint32_t v = 0, mask = size == 4 ? ~0u : ((1u << (size * 8)) - 1) << shift;
		memcpy(&v, data, size);
		v = (reg(e, r) & ~mask) | (v << shift & mask);
		after = reg_write(e, r, v);
	} else {
		uint32_t v = reg_read(e, r) >> shift;
		memcpy(data, &v, size);
	}
	pthread_mutex_unlock(&e->lock);
	if (after == AFTER_WAKE_RX)
		net_wake_peer(&e->nc);	/* frames the back end held can come now */
	if (after == AFTER_TRANSMIT) {
		pthread_mutex_lock(&e->tx_lock);	/* one transmit round at a time */
		pthread_mutex_lock(&e->lock);
		transmit(e);
		pthread_mutex_unlock(&e->lock);
		pthread_mutex_unlock(&e->tx_lock);
	}
}

static void mmio_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	reg_access(opaque, offset, is_write, data, size);
}

/* The I/O BAR: IOADDR at 0 selects a register, IODATA at 4 reaches it. */
static void io_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct e1000 *e = opaque;

	if (offset == 0 && size == 4) {
		if (is_write)
			memcpy(&e->io_addr, data, 4);
		else
			memcpy(data, &e->io_addr, 4);
	} else if (offset == 4 && size == 4) {
		reg_access(e, e->io_addr & (E1000_MMIO_SIZE - 1) & ~3u, is_write, data, 4);
	} else if (!is_write) {
		memset(data, 0xff, size);
	}
}

/* ---- life cycle ------------------------------------------------------------- */

static const struct net_client_ops e1000_client_ops = {
	.type = "nic",
	.receive = e1000_receive,
};

int e1000_init(struct e1000 *e, const char *name, const uint8_t mac[6])
{
	memset(e, 0, sizeof(*e));
	e->nc.ops = &e1000_client_ops;
	e->nc.opaque = e;
	snprintf(e->nc.id, sizeof(e->nc.id), "%s", name);
	memcpy(e->mac, mac, 6);
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->tx_lock, NULL);
	return 0;
}

int e1000_attach(struct e1000 *e, struct pci_bus *bus, int slot, const struct guest_memory *mem,
		 e1000_irq_fn set_irq, void *irq_opaque)
{
	pthread_mutex_lock(&e->lock);
	e->mem = mem;
	e->set_irq = set_irq;
	e->irq_opaque = irq_opaque;
	e->irq_level = false;
	eeprom_init(e);
	reset_regs(e);
	/* Frames go to the back end bare: an e1000 has no virtio-net header. */
	e->nc.using_vnet_hdr = false;
	if (e->nc.peer)
		e->nc.peer->using_vnet_hdr = false;
	pci_device_init(&e->pci, "e1000", 0x8086, 0x100e, 0x020000, 0x03, 0x1af4, 0x1100);
	e->pci.config[PCI_INTERRUPT_PIN] = 1;	/* INTA# */
	e->pci.config[PCI_INTERRUPT_LINE] = 11;
	e->pci.opaque = e;
	pci_device_add_bar(&e->pci, 0, E1000_MMIO_SIZE, false, mmio_io, e);
	pci_device_add_bar(&e->pci, 1, E1000_IO_SIZE, true, io_io, e);
	e->attached = true;
	pthread_mutex_unlock(&e->lock);
	if (pci_bus_plug(bus, &e->pci, slot) < 0) {
		e1000_detach(e);
		return -1;
	}
	net_wake_peer(&e->nc);
	return 0;
}

void e1000_detach(struct e1000 *e)
{
	pthread_mutex_lock(&e->lock);
	e->attached = false;
	e->mem = NULL;
	e->set_irq = NULL;
	pthread_mutex_unlock(&e->lock);
}

void e1000_release(struct e1000 *e)
{
	pthread_mutex_destroy(&e->tx_lock);
	pthread_mutex_destroy(&e->lock);
}

/* ---- saved state ---------------------------------------------------------- */

static int e1000_post_load(void *obj, unsigned version, char *err, size_t errlen)
{
	const struct e1000 *e = obj;

	(void)version;
	if (e->tx_len > E1000_TX_MAX) {
		snprintf(err, errlen, "transmit frame of %zu bytes, past its %u", e->tx_len,
			 E1000_TX_MAX);
		return -1;
	}
	return 0;
}

#define E(member, t) VMS_FIELD(struct e1000, member, t)
static const struct vmstate_field e1000_fields[] = {
	VMS_ARRAY(struct e1000, regs, VMS_U32, E1000_MMIO_SIZE / 4),
	VMS_ARRAY(struct e1000, eeprom, VMS_U16, E1000_EEPROM_WORDS),
	VMS_ARRAY(struct e1000, phy, VMS_U16, 32),
	E(io_addr, VMS_U32),
	E(eecd.old, VMS_U32), E(eecd.val_in, VMS_U32), E(eecd.bit_in, VMS_U32),
	E(eecd.bit_out, VMS_U32), E(eecd.reading, VMS_BOOL),
	E(ctx.ipcss, VMS_U8), E(ctx.ipcso, VMS_U8), E(ctx.tucss, VMS_U8), E(ctx.tucso, VMS_U8),
	E(ctx.hdrlen, VMS_U8), E(ctx.ipcse, VMS_U16), E(ctx.tucse, VMS_U16), E(ctx.mss, VMS_U16),
	E(ctx.paylen, VMS_U32), E(ctx.tcp, VMS_BOOL), E(ctx.ipv4, VMS_BOOL),
	VMS_ARRAY(struct e1000, tx_frame, VMS_BYTES, E1000_TX_MAX),
	E(tx_len, VMS_U64), E(tx_overflow, VMS_BOOL), E(tx_popts, VMS_U8), E(tx_tse, VMS_BOOL),
	VMS_END
};
#undef E

static const struct vmstate_desc e1000_vmstate = {
	"e1000", sizeof(struct e1000), 1, 1, e1000_fields, e1000_post_load,
};

int e1000_save(struct e1000 *e, struct vmstate_out *out, unsigned instance)
{
	int rc;

	pthread_mutex_lock(&e->tx_lock);
	pthread_mutex_lock(&e->lock);
	rc = vmstate_save(out, &e1000_vmstate, instance, e);
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_unlock(&e->tx_lock);
	return rc;
}

int e1000_load(struct e1000 *e, struct vmstate_in *in)
{
	int rc;

	pthread_mutex_lock(&e->tx_lock);
	pthread_mutex_lock(&e->lock);
	rc = vmstate_load(in, &e1000_vmstate, e);
	if (rc == 0)
		update_irq(e);
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_unlock(&e->tx_lock);
	return rc;
}
