/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-net (virtio 1.2 §5.1) and a tiny IPv4 host on top of it: ARP,
 * ICMP echo, UDP echo (port 7), a DHCP client (RFC 2131, just
 * DISCOVER/OFFER/REQUEST/ACK) and a TFTP reader (RFC 1350, octet mode).
 * Queue 0 receives, queue 1 transmits; every frame carries the 12-byte
 * virtio_net_hdr (VERSION_1).  VIRTIO_NET_F_MRG_RXBUF is accepted when
 * offered, so a frame may span several receive buffers (num_buffers).
 */
#include "virtio.h"

#define F_MAC		5
#define F_MRG_RXBUF	15
#define F_STATUS	16
#define F_CSUM		0
#define F_GUEST_CSUM	1
#define F_GUEST_TSO4	7
#define F_GUEST_TSO6	8
#define F_GUEST_ECN	9
#define F_HOST_TSO4	11
#define F_HOST_TSO6	12
#define F_CTRL_VQ	17
#define F_MQ		22
#define PAIRS_MAX	3		/* 2 x 3 + 1 queues fit the driver's queue pool */

#define HDR_LEN		12
#define RX_BUFS		128
#define RX_BUF_MAX	2048
#define TX_BUFS		32
#define TX_BUF_LEN	(HDR_LEN + 1514)
#define FRAME_MAX	(65536 + 64)

#define ETH_ARP		0x0806
#define ETH_IP		0x0800
#define ETH_BENCH	0x88b5		/* IEEE "local experimental": bench frames */
#define IP_ICMP		1
#define IP_UDP		17
#define ECHO_PORT	7
#define DHCP_SERVER	67
#define DHCP_CLIENT	68
#define TFTP_PORT	69
#define ARP_CACHE	8

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
};

static struct {
	struct virtio_dev vd;
	struct virtq rxq[PAIRS_MAX], txq[PAIRS_MAX], ctrlq;
	unsigned pairs;				/* in use */
	unsigned rx_next, tx_next;		/* round-robin over the pairs */
	uint32_t rx_count[PAIRS_MAX], tx_count[PAIRS_MAX];
	bool mrg;
	uint8_t mac[6];
	uint32_t ip, mask, router, dns, server;	/* host byte order; ip 0: none yet */
	char bootfile[128];
	char hostname[64];
	uint32_t rx_len;			/* bytes per receive buffer */
	uint16_t rx_slot[PAIRS_MAX][VQ_SIZE_MAX];	/* head descriptor -> buffer */
	uint16_t tx_slot[PAIRS_MAX][VQ_SIZE_MAX];
	uint16_t tx_free[TX_BUFS];
	int tx_nfree;
	struct arp_entry arp[ARP_CACHE];
	int arp_next;
	uint32_t icmp_answered, udp_answered, arp_answered;
	uint32_t needs_csum;			/* frames whose header said NEEDS_CSUM */
	bool quit;
	bool e1000;				/* nic=e1000: the 82540EM instead (e1000.c) */
} net;

static uint8_t rx_bufs[RX_BUFS][RX_BUF_MAX] __attribute__((aligned(64)));
static uint8_t tx_bufs[TX_BUFS][TX_BUF_LEN] __attribute__((aligned(64)));
static uint8_t frame[FRAME_MAX] __attribute__((aligned(64)));
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- helpers ----------------------------------------------------------------- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* RFC 1071 one's complement sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += be16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static bool parse_ip(const char *s, uint32_t *ip)
{
	uint32_t v = 0, part = 0;
	int dots = 0, digits = 0;

	if (!s)
		return false;
	for (;; s++) {
		if (*s >= '0' && *s <= '9') {
			part = part * 10 + (uint32_t)(*s - '0');
			if (part > 255 || ++digits > 3)
				return false;
		} else if (*s == '.' || !*s) {
			if (!digits)
				return false;
			v = v << 8 | part;
			part = 0;
			digits = 0;
			if (!*s)
				break;
			if (++dots > 3)
				return false;
		} else {
			return false;
		}
	}
	*ip = v;
	return dots == 3;
}

static void pr_ip(const char *label, uint32_t ip)
{
	pr("%s%u.%u.%u.%u", label, ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static uint64_t ms_ticks(uint64_t ms)
{
	uint64_t hz = tsc_hz();

	return (hz ? hz : 2000000000ull) / 1000 * ms;
}

/* CRC-32 (IEEE, zlib's), so the host can check a TFTP file with zlib.crc32. */
static uint32_t crc32(uint32_t crc, const uint8_t *p, uint32_t len)
{
	crc = ~crc;
	for (uint32_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc >> 1 ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

/* ---- the driver ---------------------------------------------------------------- */

static void rx_post(unsigned pair, uint16_t b)
{
	struct vq_buf buf = { rx_bufs[b], net.rx_len };
	int head = vq_add(&net.rxq[pair], &buf, 0, 1);

	if (head >= 0)
		net.rx_slot[pair][head] = b;
}

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (§5.1.6.5.5) on the control queue. */
static bool set_pairs(unsigned pairs)
{
	static uint8_t cmd[4], ack;
	struct vq_buf b[2] = { { cmd, 4 }, { &ack, 1 } };
	uint32_t len;

	cmd[0] = 4;
	cmd[1] = 0;
	cmd[2] = (uint8_t)pairs;
	cmd[3] = 0;
	ack = 0xee;
	if (!vq_xfer(&net.ctrlq, b, 1, 1, &len))
		return false;
	if (ack != 0)
		return fail("net: VQ_PAIRS_SET %u refused (ack %u)", pairs, ack);
	return true;
}

static bool net_init(const struct platform *p, const struct args *a)
{
	uint64_t rxbuf = RX_BUF_MAX, pairs = 1, offload = 0, want;
	uint16_t max_pairs = 1;

	const char *nic = arg_get(a, "nic");

	if (nic && !str_eq(nic, "virtio") && !str_eq(nic, "e1000"))
		return fail("net: bad nic=%s (virtio or e1000)", nic);
	net.e1000 = nic && str_eq(nic, "e1000");
	net.pairs = 1;
	if (net.e1000)
		return e1000_open(p, net.mac);
	if (!arg_u64(a, "rxbuf", &rxbuf) || rxbuf < 64 || rxbuf > RX_BUF_MAX)
		return fail("net: bad rxbuf=%s (64..%d)", arg_get(a, "rxbuf"), RX_BUF_MAX);
	if (!arg_u64(a, "pairs", &pairs) || pairs < 1 || pairs > PAIRS_MAX)
		return fail("net: bad pairs=%s (1..%d)", arg_get(a, "pairs"), PAIRS_MAX);
	if (!arg_u64(a, "offload", &offload) || offload > 1)
		return fail("net: bad offload=%s (0 or 1)", arg_get(a, "offload"));
	if (!virtio_find(p, VIRTIO_ID_NET, 0, &net.vd))
		return fail("net: no usable virtio-net device");
	want = 1ull << F_MAC | 1ull << F_MRG_RXBUF | 1ull << F_STATUS;
	if (pairs > 1)
		want |= 1ull << F_MQ | 1ull << F_CTRL_VQ;
	/* Checksum and TSO offloads: frames from the host may then come with NEEDS_CSUM. */
	if (offload)
		want |= 1ull << F_CSUM | 1ull << F_GUEST_CSUM | 1ull << F_GUEST_TSO4 |
			1ull << F_GUEST_TSO6 | 1ull << F_GUEST_ECN | 1ull << F_HOST_TSO4 |
			1ull << F_HOST_TSO6;
	if (!virtio_negotiate(&net.vd, want))
		return false;
	if (offload)
		say("net: offloads:%s%s%s%s", virtio_has(&net.vd, F_CSUM) ? " csum" : "",
		    virtio_has(&net.vd, F_GUEST_CSUM) ? " guest_csum" : "",
		    virtio_has(&net.vd, F_GUEST_TSO4) ? " guest_tso4" : "",
		    virtio_has(&net.vd, F_GUEST_TSO6) ? " guest_tso6" : "");
	if (pairs > 1) {
		if (!virtio_has(&net.vd, F_MQ) || !virtio_has(&net.vd, F_CTRL_VQ))
			return fail("net: pairs=%lu needs VIRTIO_NET_F_MQ and CTRL_VQ, not offered", pairs);
		max_pairs = virtio_cfg16(&net.vd, 8);
		if (max_pairs < pairs || max_pairs > PAIRS_MAX)
			return fail("net: device has %u queue pairs, pairs=%lu wanted", max_pairs, pairs);
	}
	net.pairs = (unsigned)pairs;
	if (!virtio_has(&net.vd, F_MAC))
		return fail("net: the device offers no MAC (VIRTIO_NET_F_MAC)");
	net.mrg = virtio_has(&net.vd, F_MRG_RXBUF);
	/* Without mergeable buffers each buffer must hold a whole frame (§5.1.6.3). */
	if (!net.mrg && rxbuf < HDR_LEN + 1514)
		return fail("net: rxbuf=%lu needs VIRTIO_NET_F_MRG_RXBUF, not offered", rxbuf);
	net.rx_len = (uint32_t)rxbuf;
	for (int i = 0; i < 6; i++)
		net.mac[i] = virtio_cfg8(&net.vd, (uint32_t)i);
	/* Every pair the device has is set up; the control queue comes after them (§5.1.2). */
	for (unsigned k = 0; k < max_pairs; k++)
		if (!virtio_vq_init(&net.vd, &net.rxq[k], (uint16_t)(2 * k), RX_BUFS) ||
		    !virtio_vq_init(&net.vd, &net.txq[k], (uint16_t)(2 * k + 1), 64))
			return false;
	if (pairs > 1 && !virtio_vq_init(&net.vd, &net.ctrlq, (uint16_t)(2 * max_pairs), 8))
		return false;
	virtio_driver_ok(&net.vd);
	if (pairs > 1 && !set_pairs(net.pairs))
		return false;
	for (uint16_t b = 0; b < RX_BUFS; b++)
		rx_post(b % net.pairs, b);
	for (unsigned k = 0; k < net.pairs; k++)
		vq_kick(&net.rxq[k]);
	net.tx_nfree = TX_BUFS;
	for (int i = 0; i < TX_BUFS; i++)
		net.tx_free[i] = (uint16_t)i;
	say("net: mac %02x:%02x:%02x:%02x:%02x:%02x%s%s", net.mac[0], net.mac[1], net.mac[2],
	    net.mac[3], net.mac[4], net.mac[5], net.mrg ? " mrg_rxbuf" : "",
	    virtio_has(&net.vd, F_STATUS) && (virtio_cfg16(&net.vd, 6) & 1) ? " link up" : "");
	if (pairs > 1)
		say("net: %u of %u queue pairs", net.pairs, max_pairs);
	return true;
}

static void tx_reclaim(void)
{
	uint32_t id, len;

	if (net.e1000)
		return;		/* the e1000 driver reclaims as it sends */
	for (unsigned k = 0; k < net.pairs; k++)
		while (vq_poll(&net.txq[k], &id, &len))
			if (id < VQ_SIZE_MAX)
				net.tx_free[net.tx_nfree++] = net.tx_slot[k][id];
}

/*
 * Waits, at most limit ticks, until the device has taken every frame queued:
 * a VMM may send a frame only after the kick returned, so powering off
 * before this can lose the last one.
 */
static bool tx_drain(uint64_t limit)
{
	uint64_t t0 = rdtsc();

	while (!net.e1000 && net.tx_nfree < TX_BUFS) {
		if (rdtsc() - t0 > limit)
			return false;
		tx_reclaim();
		cpu_relax();
	}
	return true;
}

/* Sends one Ethernet frame (without the virtio header); waits for a free buffer. */
static bool net_send(const uint8_t *f, uint32_t len, bool kick)
{
	uint64_t t0 = rdtsc(), limit = virtio_ticks(10);

	if (net.e1000)
		return e1000_send(f, len);
	if (len > TX_BUF_LEN - HDR_LEN)
		return fail("net: frame of %u bytes too long", len);
	tx_reclaim();
	while (!net.tx_nfree) {
		if (rdtsc() - t0 > limit)
			return fail("net: transmit queue stuck (status 0x%x)", virtio_status(&net.vd));
		cpu_relax();
		tx_reclaim();
	}
	uint16_t b = net.tx_free[--net.tx_nfree];
	memset(tx_bufs[b], 0, HDR_LEN);
	memcpy(tx_bufs[b] + HDR_LEN, f, len);
	if (len < 60)	/* pad to the Ethernet minimum */
		memset(tx_bufs[b] + HDR_LEN + len, 0, 60 - len), len = 60;
	struct vq_buf buf = { tx_bufs[b], HDR_LEN + len };
	unsigned k = net.tx_next;
	/* Round-robin over the pairs in use; a burst (no kick yet) stays on one. */
	if (kick)
		net.tx_next = (net.tx_next + 1) % net.pairs;
	int head = vq_add(&net.txq[k], &buf, 1, 0);
	if (head < 0)
		return fail("net: no transmit descriptor");
	net.tx_slot[k][head] = b;
	net.tx_count[k]++;
	if (kick)
		vq_kick_if_needed(&net.txq[k]);
	return true;
}

/*
 * The next received frame, assembled into frame[] from num_buffers buffers;
 * 0 if none is waiting.  Buffers go straight back to the device.
 */
static uint32_t net_recv(void)
{
	uint32_t id, len, total = 0, nbufs = 1;
	bool reposted = false;
	unsigned k = net.rx_next;

	if (net.e1000)
		return e1000_recv(frame, FRAME_MAX);
	/* The next pair with a frame waiting, round-robin. */
	for (unsigned tries = 0; tries < net.pairs; tries++) {
		k = (net.rx_next + tries) % net.pairs;
		if (*(volatile uint16_t *)&net.rxq[k].used->idx != net.rxq[k].last_used)
			break;
	}
	net.rx_next = (k + 1) % net.pairs;
	for (uint32_t i = 0; i < nbufs; i++) {
		uint64_t t0 = rdtsc();
		while (!vq_poll(&net.rxq[k], &id, &len)) {
			if (i == 0)
				return 0;
			/* The rest of a merged frame is already used; it cannot be long. */
			if (rdtsc() - t0 > virtio_ticks(1)) {
				fail("net: frame of %u buffers incomplete", nbufs);
				return 0;
			}
		}
		if (id >= VQ_SIZE_MAX || len > net.rx_len) {
			fail("net: bad used element id %u len %u", id, len);
			return 0;
		}
		uint16_t b = net.rx_slot[k][id];
		uint32_t skip = 0;
		if (i == 0) {
			if (len < HDR_LEN)
				len = HDR_LEN;
			nbufs = net.mrg ? be16((const uint8_t[]){ rx_bufs[b][11], rx_bufs[b][10] }) : 1;
			if (rx_bufs[b][0] & 1)	/* VIRTIO_NET_HDR_F_NEEDS_CSUM */
				net.needs_csum++;
			if (!nbufs)
				nbufs = 1;
			skip = HDR_LEN;
		}
		if (total + len - skip <= FRAME_MAX)
			memcpy(frame + total, rx_bufs[b] + skip, len - skip);
		total += len - skip;
		rx_post(k, b);
		reposted = true;
	}
	net.rx_count[k]++;
	if (reposted)
		vq_kick_if_needed(&net.rxq[k]);
	return total <= FRAME_MAX ? total : 0;
}

/* ---- ARP, IPv4, ICMP, UDP -------------------------------------------------- */

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, net.mac, 6);
	put16(f + 12, type);
}

static void arp_learn(uint32_t ip, const uint8_t *mac)
{
	for (int i = 0; i < ARP_CACHE; i++) {
		if (net.arp[i].ip == ip) {
			memcpy(net.arp[i].mac, mac, 6);
			return;
		}
	}
	net.arp[net.arp_next].ip = ip;
	memcpy(net.arp[net.arp_next].mac, mac, 6);
	net.arp_next = (net.arp_next + 1) % ARP_CACHE;
}

static const uint8_t *arp_lookup(uint32_t ip)
{
	for (int i = 0; i < ARP_CACHE; i++)
		if (ip && net.arp[i].ip == ip)
			return net.arp[i].mac;
	return 0;
}

static bool arp_send(uint16_t op, const uint8_t *tha, uint32_t tpa)
{
	uint8_t f[42];

	eth_header(f, op == 1 ? bcast : tha, ETH_ARP);
	put16(f + 14, 1);		/* Ethernet */
	put16(f + 16, ETH_IP);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, op);
	memcpy(f + 22, net.mac, 6);
	put32(f + 28, net.ip);
	memcpy(f + 32, op == 1 ? (const uint8_t[6]){ 0 } : tha, 6);
	put32(f + 38, tpa);
	return net_send(f, sizeof(f), true);
}

/* An IPv4 + UDP frame around payload, to dst (MAC) / dip:dport. */
static bool udp_send(const uint8_t *dmac, uint32_t sip, uint32_t dip, uint16_t sport,
		     uint16_t dport, const uint8_t *payload, uint32_t plen)
{
	static uint8_t f[1514];
	static uint16_t ip_id;
	uint32_t ulen = 8 + plen, sum;
	uint8_t *ip = f + 14, *udp = ip + 20;

	if (14 + 20 + ulen > sizeof(f))
		return fail("net: UDP payload of %u bytes too long", plen);
	eth_header(f, dmac, ETH_IP);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + ulen));
	put16(ip + 4, ++ip_id);
	ip[8] = 64;
	ip[9] = IP_UDP;
	put32(ip + 12, sip);
	put32(ip + 16, dip);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)ulen);
	put16(udp + 6, 0);
	memcpy(udp + 8, payload, plen);
	/* Pseudo-header (RFC 768) + header + data. */
	sum = csum_add(0, ip + 12, 8) + IP_UDP + ulen;
	sum = csum_add(sum, udp, ulen);
	uint16_t c = csum_fold(sum);
	put16(udp + 6, c ? c : 0xffff);
	return net_send(f, 14 + 20 + ulen, true);
}

/* What the dispatcher found that the running scenario may want. */
struct rx_info {
	uint32_t sip, dip;
	uint16_t sport, dport;
	const uint8_t *smac;
	const uint8_t *data;
	uint32_t len;
	bool udp;
	bool bench;
};

/* Answers ARP, ICMP echo and UDP echo; reports other UDP to the caller in *ri. */
static void net_dispatch(const uint8_t *f, uint32_t len, struct rx_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	if (len < 14)
		return;
	uint16_t type = be16(f + 12);
	if (type == ETH_BENCH) {
		ri->bench = true;
		ri->len = len;
		return;
	}
	if (type == ETH_ARP && len >= 42 && be16(f + 20) <= 2) {
		uint32_t spa = be32(f + 28), tpa = be32(f + 38);
		if (spa)
			arp_learn(spa, f + 22);
		if (be16(f + 20) == 1 && net.ip && tpa == net.ip) {
			net.arp_answered++;
			arp_send(2, f + 22, spa);
		}
		return;
	}
	if (type != ETH_IP || len < 34)
		return;
	const uint8_t *ip = f + 14;
	uint32_t ihl = (uint32_t)(ip[0] & 15) * 4, tot = be16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > len)
		return;
	if (csum_fold(csum_add(0, ip, ihl)) != 0)
		return;
	uint32_t sip = be32(ip + 12), dip = be32(ip + 16);
	const uint8_t *l4 = ip + ihl;
	uint32_t l4len = tot - ihl;
	if (sip)
		arp_learn(sip, f + 6);
	bool for_us = net.ip ? dip == net.ip : true;
	if (ip[9] == IP_ICMP && l4len >= 8 && l4[0] == 8 && for_us && net.ip) {
		static uint8_t r[1514];
		if (14 + tot > sizeof(r))
			return;
		memcpy(r, f, 14 + tot);
		eth_header(r, f + 6, ETH_IP);
		uint8_t *rip = r + 14, *icmp = rip + ihl;
		put32(rip + 12, net.ip);
		put32(rip + 16, sip);
		rip[8] = 64;
		put16(rip + 10, 0);
		put16(rip + 10, csum_fold(csum_add(0, rip, ihl)));
		icmp[0] = 0;	/* echo reply */
		put16(icmp + 2, 0);
		put16(icmp + 2, csum_fold(csum_add(0, icmp, l4len)));
		net.icmp_answered++;
		net_send(r, 14 + tot, true);
		return;
	}
	if (ip[9] != IP_UDP || l4len < 8)
		return;
	uint32_t ulen = be16(l4 + 4);
	if (ulen < 8 || ulen > l4len)
		return;
	ri->udp = true;
	ri->sip = sip;
	ri->dip = dip;
	ri->sport = be16(l4);
	ri->dport = be16(l4 + 2);
	ri->smac = f + 6;
	ri->data = l4 + 8;
	ri->len = ulen - 8;
	if (ri->dport == ECHO_PORT && for_us && net.ip) {
		if (ri->len == 4 && memcmp(ri->data, "quit", 4) == 0)
			net.quit = true;
		net.udp_answered++;
		udp_send(f + 6, net.ip, sip, ECHO_PORT, ri->sport, ri->data, ri->len);
		ri->udp = false;	/* handled */
	}
}

/* Polls for up to ms milliseconds, answering what comes; true once a UDP datagram to port arrives. */
static bool net_wait_udp(uint16_t port, uint64_t ms, struct rx_info *ri)
{
	uint64_t t0 = rdtsc(), limit = ms_ticks(ms);

	while (rdtsc() - t0 < limit && !net.quit) {
		uint32_t len = net_recv();
		if (!len) {
			cpu_relax();
			continue;
		}
		net_dispatch(frame, len, ri);
		if (ri->udp && ri->dport == port)
			return true;
	}
	return false;
}

/* The peer's MAC by ARP (retrying every 250 ms); NULL on timeout. */
static const uint8_t *arp_resolve(uint32_t ip, uint64_t seconds)
{
	uint64_t t0 = rdtsc();
	struct rx_info ri;

	while (rdtsc() - t0 < virtio_ticks(seconds)) {
		const uint8_t *mac = arp_lookup(ip);
		if (mac)
			return mac;
		if (!arp_send(1, bcast, ip))
			return 0;
		uint64_t t1 = rdtsc();
		while (rdtsc() - t1 < ms_ticks(250) && !arp_lookup(ip)) {
			uint32_t len = net_recv();
			if (len)
				net_dispatch(frame, len, &ri);
			else
				cpu_relax();
		}
	}
	return 0;
}

/* ---- DHCP (RFC 2131/2132) ------------------------------------------------------- */

#define DHCP_MAGIC	0x63825363u
#define DHCP_XID	0x6b657374u	/* "kest" */

static uint32_t dhcp_build(uint8_t *m, uint8_t type, uint32_t req_ip, uint32_t server)
{
	uint32_t n;

	memset(m, 0, 300);
	m[0] = 1;		/* BOOTREQUEST */
	m[1] = 1;		/* Ethernet */
	m[2] = 6;
	put32(m + 4, DHCP_XID);
	put16(m + 10, 0x8000);	/* broadcast: we have no address to be answered at */
	memcpy(m + 28, net.mac, 6);
	put32(m + 236, DHCP_MAGIC);
	n = 240;
	m[n++] = 53; m[n++] = 1; m[n++] = type;
	if (req_ip) {
		m[n++] = 50; m[n++] = 4; put32(m + n, req_ip); n += 4;
	}
	if (server) {
		m[n++] = 54; m[n++] = 4; put32(m + n, server); n += 4;
	}
	m[n++] = 55; m[n++] = 5; m[n++] = 1; m[n++] = 3; m[n++] = 6; m[n++] = 12; m[n++] = 67;
	m[n++] = 255;
	return n < 300 ? 300 : n;
}

/* Parses a reply for us; returns its message type (0: not ours). */
static uint8_t dhcp_parse(const struct rx_info *ri, uint32_t *yiaddr)
{
	const uint8_t *m = ri->data;
	uint8_t type = 0;

	if (ri->len < 240 || m[0] != 2 || be32(m + 4) != DHCP_XID || be32(m + 236) != DHCP_MAGIC ||
	    memcmp(m + 28, net.mac, 6) != 0)
		return 0;
	*yiaddr = be32(m + 16);
	for (uint32_t i = 240; i + 1 < ri->len && m[i] != 255;) {
		uint8_t opt = m[i], olen = m[i + 1];
		const uint8_t *v = m + i + 2;
		if (opt == 0) {
			i++;
			continue;
		}
		if (i + 2 + olen > ri->len)
			break;
		if (opt == 53 && olen >= 1)
			type = v[0];
		else if (opt == 1 && olen >= 4)
			net.mask = be32(v);
		else if (opt == 3 && olen >= 4)
			net.router = be32(v);
		else if (opt == 6 && olen >= 4)
			net.dns = be32(v);
		else if (opt == 54 && olen >= 4)
			net.server = be32(v);
		else if (opt == 12 && olen > 0 && olen < sizeof(net.hostname)) {
			memcpy(net.hostname, v, olen);
			net.hostname[olen] = 0;
		} else if (opt == 67 && olen > 0 && olen < sizeof(net.bootfile)) {
			memcpy(net.bootfile, v, olen);
			net.bootfile[olen] = 0;
		}
		i += 2u + olen;
	}
	/* BOOTP's file field, where slirp puts bootfile= too. */
	if (!net.bootfile[0] && m[108]) {
		uint32_t k = 0;
		for (; k < 127 && m[108 + k]; k++)
			net.bootfile[k] = (char)m[108 + k];
		net.bootfile[k] = 0;
	}
	return type;
}

static bool dhcp_run(uint64_t seconds)
{
	static uint8_t msg[576];
	uint64_t t0 = rdtsc();
	struct rx_info ri;
	uint32_t offered = 0, yi;

	while (rdtsc() - t0 < virtio_ticks(seconds)) {
		uint32_t n = dhcp_build(msg, offered ? 3 : 1, offered, offered ? net.server : 0);
		if (!udp_send(bcast, 0, 0xffffffffu, DHCP_CLIENT, DHCP_SERVER, msg, n))
			return false;
		while (net_wait_udp(DHCP_CLIENT, 1000, &ri)) {
			uint8_t type = dhcp_parse(&ri, &yi);
			if (type == 2 && !offered) {		/* OFFER: request it */
				offered = yi;
				break;
			}
			if (type == 5 && offered && yi == offered) {	/* ACK */
				net.ip = yi;
				pr_ip("probe: net: dhcp: ip ", net.ip);
				pr_ip(" mask ", net.mask);
				pr_ip(" router ", net.router);
				pr_ip(" dns ", net.dns);
				pr_ip(" server ", net.server);
				if (net.bootfile[0])
					pr(" bootfile %s", net.bootfile);
				if (net.hostname[0])
					pr(" hostname %s", net.hostname);
				pr("\n");
				return true;
			}
			if (type == 6)				/* NAK: start over */
				offered = 0;
		}
	}
	return fail("net: no DHCP lease within %lu s", seconds);
}

/* ip=A.B.C.D or ip=dhcp (the default). */
static bool net_address(const struct args *a, uint64_t seconds)
{
	const char *ip = arg_get(a, "ip");

	if (!ip || str_eq(ip, "dhcp"))
		return dhcp_run(seconds);
	if (!parse_ip(ip, &net.ip))
		return fail("net: bad ip=%s", ip);
	pr_ip("probe: net: ip ", net.ip);
	pr("\n");
	return true;
}

/* ---- scenarios ---------------------------------------------------------------- */

/*
 * "net-respond[,ip=A|dhcp][,timeout=S][,count=N]": answers ARP, ping and UDP
 * echo until timeout (default 30 s), until N ICMP+UDP requests were answered,
 * or until a UDP "quit" arrives on port 7.  With count=, missing the count
 * FAILs.
 */
bool scenario_net_respond(const struct platform *p, const struct args *a)
{
	uint64_t timeout = 30, count = 0, t0;
	struct rx_info ri;

	if (!arg_u64(a, "timeout", &timeout) || !arg_u64(a, "count", &count))
		return fail("net: bad timeout= or count=");
	if (!net_init(p, a) || !net_address(a, timeout))
		return false;
	say("net: ready");
	t0 = rdtsc();
	while (rdtsc() - t0 < virtio_ticks(timeout) && !net.quit &&
	       (!count || net.icmp_answered + net.udp_answered < count)) {
		uint32_t len = net_recv();
		if (len)
			net_dispatch(frame, len, &ri);
		else
			cpu_relax();
	}
	say("net: answered %u icmp %u udp %u arp%s", net.icmp_answered, net.udp_answered,
	    net.arp_answered, net.quit ? " (quit)" : "");
	say("net: received %u frames with NEEDS_CSUM", net.needs_csum);
	if (net.pairs > 1) {
		pr("probe: net: frames per pair:");
		for (unsigned k = 0; k < net.pairs; k++)
			pr(" rx%u %u tx%u %u", k, net.rx_count[k], k, net.tx_count[k]);
		pr("\n");
	}
	tx_reclaim();
	if (count && net.icmp_answered + net.udp_answered < count)
		return fail("net: answered %u of %lu requests", net.icmp_answered + net.udp_answered,
			    count);
	return true;
}

/*
 * "net-send,ip=A|dhcp,peer=B[,gw=G][,count=N][,timeout=S][,quit=1]":
 * resolves the peer (or, off-link, the gateway G; with DHCP the router) by
 * ARP, sends N UDP datagrams to the peer's echo port and checks each echo.
 */
bool scenario_net_send(const struct platform *p, const struct args *a)
{
	uint64_t count = 10, timeout = 30, quit = 0;
	uint32_t peer, gw = 0, got = 0;
	const uint8_t *pmac;
	const char *gws = arg_get(a, "gw");
	struct rx_info ri;
	uint8_t msg[32], mac[6];

	if (!arg_u64(a, "count", &count) || !arg_u64(a, "timeout", &timeout) ||
	    !arg_u64(a, "quit", &quit) || !parse_ip(arg_get(a, "peer"), &peer) ||
	    (gws && !parse_ip(gws, &gw)))
		return fail("net: bad count=, timeout=, quit=, peer= or gw=");
	if (!net_init(p, a) || !net_address(a, timeout))
		return false;
	say("net: ready");
	if (!gw && net.mask && (peer & net.mask) != (net.ip & net.mask))
		gw = net.router;
	pmac = arp_resolve(gw ? gw : peer, timeout);
	if (!pmac) {
		pr_ip("probe: FAIL: net: no ARP answer from ", gw ? gw : peer);
		pr("\n");
		return false;
	}
	memcpy(mac, pmac, 6);
	say("net: peer mac %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
	    mac[5]);
	for (uint32_t i = 0; i < count; i++) {
		uint32_t n = 0;
		const char *w = "kestrel ";
		while (*w)
			msg[n++] = (uint8_t)*w++;
		msg[n++] = (uint8_t)('0' + i / 100 % 10);
		msg[n++] = (uint8_t)('0' + i / 10 % 10);
		msg[n++] = (uint8_t)('0' + i % 10);
		bool ok = false;
		for (int tries = 0; tries < 5 && !ok; tries++) {
			if (!udp_send(mac, net.ip, peer, 4242, ECHO_PORT, msg, n))
				return false;
			while (!ok && net_wait_udp(4242, 500, &ri))
				ok = ri.sip == peer && ri.len == n && memcmp(ri.data, msg, n) == 0;
		}
		got += ok;
	}
	say("net: sent %lu got %u echoes", count, got);
	if (quit &&
	    (!udp_send(mac, net.ip, peer, 4242, ECHO_PORT, (const uint8_t *)"quit", 4) ||
	     !tx_drain(virtio_ticks(5))))
		return fail("net: the quit datagram was not sent");
	tx_reclaim();
	if (got != count)
		return fail("net: %lu echoes missing", count - got);
	return true;
}

/* "net-dhcp[,timeout=S]": a lease, printed. */
bool scenario_net_dhcp(const struct platform *p, const struct args *a)
{
	uint64_t timeout = 30;

	if (!arg_u64(a, "timeout", &timeout))
		return fail("net: bad timeout=");
	return net_init(p, a) && dhcp_run(timeout);
}

/*
 * "net-tftp[,file=NAME][,ip=A|dhcp][,server=S][,timeout=S]": reads NAME
 * (default: the DHCP bootfile) from the TFTP server (default: the DHCP
 * server) in octet mode and prints its size and CRC-32.
 */
bool scenario_net_tftp(const struct platform *p, const struct args *a)
{
	static uint8_t req[160];
	uint64_t timeout = 30;
	uint32_t server = 0, total = 0, crc = 0, n = 0;
	uint16_t block = 1, tid = 0;
	const char *file = arg_get(a, "file"), *srv = arg_get(a, "server");
	const uint8_t *smac;
	struct rx_info ri;

	if (!arg_u64(a, "timeout", &timeout) || (srv && !parse_ip(srv, &server)))
		return fail("net: bad timeout= or server=");
	if (!net_init(p, a) || !net_address(a, timeout))
		return false;
	if (!server)
		server = net.server ? net.server : net.router;
	if (!file || !*file)
		file = net.bootfile;
	if (!*file)
		return fail("net: tftp: no file= and no DHCP bootfile");
	/* Off-link servers are reached through the router. */
	uint32_t hop = net.mask && (server & net.mask) != (net.ip & net.mask) ? net.router : server;
	smac = arp_resolve(hop, timeout);
	if (!smac)
		return fail("net: tftp: no ARP answer from the server");
	uint8_t mac[6];
	memcpy(mac, smac, 6);
	put16(req, 1);		/* RRQ */
	n = 2;
	for (const char *c = file; *c && n < 120; c++)
		req[n++] = (uint8_t)*c;
	req[n++] = 0;
	for (const char *c = "octet"; *c; c++)
		req[n++] = (uint8_t)*c;
	req[n++] = 0;
	uint64_t t0 = rdtsc();
	bool sent_rrq = false, done = false;
	uint8_t ack[4];
	while (!done) {
		if (rdtsc() - t0 > virtio_ticks(timeout))
			return fail("net: tftp: timed out at block %u", block);
		if (!sent_rrq || tid == 0) {
			if (!udp_send(mac, net.ip, server, 1069, TFTP_PORT, req, n))
				return false;
			sent_rrq = true;
		} else {
			/* Re-ACK the last block: our ACK or its DATA may have been lost. */
			put16(ack, 4);
			put16(ack + 2, (uint16_t)(block - 1));
			udp_send(mac, net.ip, server, 1069, tid, ack, 4);
		}
		while (net_wait_udp(1069, 1000, &ri)) {
			if (ri.len < 4)
				continue;
			uint16_t op = be16(ri.data);
			if (op == 5)
				return fail("net: tftp: error %u: %.*s", be16(ri.data + 2),
					    (int)(ri.len > 4 ? ri.len - 5 : 0), (const char *)ri.data + 4);
			if (op != 3 || be16(ri.data + 2) != block)
				continue;
			tid = ri.sport;
			uint32_t dlen = ri.len - 4;
			crc = crc32(crc, ri.data + 4, dlen);
			total += dlen;
			put16(ack, 4);
			put16(ack + 2, block);
			udp_send(mac, net.ip, server, 1069, tid, ack, 4);
			block++;
			t0 = rdtsc();
			if (dlen < 512) {
				done = true;
				break;
			}
		}
	}
	say("net: tftp: %s %u bytes crc32 0x%08x", file, total, crc);
	tx_reclaim();
	return true;
}

/*
 * "net-blast,count=N,size=S": N frames of S bytes (60..1514) of type
 * 0x88b5 to the broadcast address, as fast as the queue takes them.
 */
bool scenario_net_blast(const struct platform *p, const struct args *a)
{
	static uint8_t f[1514];
	uint64_t count = 100000, size = 1514, hz = tsc_hz();

	if (!arg_u64(a, "count", &count) || !arg_u64(a, "size", &size) || size < 60 || size > 1514)
		return fail("net: bad count= or size= (60..1514)");
	if (!hz)
		return fail("net: TSC calibration failed");
	if (!net_init(p, a))
		return false;
	eth_header(f, bcast, ETH_BENCH);
	for (uint32_t i = 14; i < size; i++)
		f[i] = (uint8_t)i;
	uint64_t t0 = rdtsc();
	for (uint64_t i = 0; i < count; i++) {
		put32(f + 14, (uint32_t)i);
		/* Kick once per 16 frames, as a NAPI-style driver batches. */
		if (!net_send(f, (uint32_t)size, (i & 15) == 15 || i + 1 == count))
			return false;
	}
	if (!tx_drain(virtio_ticks(10)))
		return fail("net-bench: transmit queue stuck");
	uint64_t us = (rdtsc() - t0) * 1000000 / hz;
	if (!us)
		us = 1;
	say("net-bench: tx count %lu size %lu time_us %lu pps %lu mbps %lu", count, size, us,
	    count * 1000000 / us, count * size / us);
	return true;
}

/*
 * "net-sink,count=N[,timeout=S][,idle=MS]": counts frames of type 0x88b5
 * from the first one until N arrived or none came for idle ms (default
 * 2000); prints the rate.
 */
bool scenario_net_sink(const struct platform *p, const struct args *a)
{
	uint64_t count = 100000, timeout = 60, idle = 2000, hz = tsc_hz(), got = 0, bytes = 0;
	uint64_t t0 = 0, last = 0, start = rdtsc();
	struct rx_info ri;

	if (!arg_u64(a, "count", &count) || !arg_u64(a, "timeout", &timeout) ||
	    !arg_u64(a, "idle", &idle))
		return fail("net: bad count=, timeout= or idle=");
	if (!hz)
		return fail("net: TSC calibration failed");
	if (!net_init(p, a))
		return false;
	say("net: ready");
	while (got < count) {
		uint64_t now = rdtsc();
		if (got ? now - last > ms_ticks(idle) : now - start > virtio_ticks(timeout))
			break;
		uint32_t len = net_recv();
		if (!len) {
			cpu_relax();
			continue;
		}
		net_dispatch(frame, len, &ri);
		if (!ri.bench)
			continue;
		last = rdtsc();
		if (!got)
			t0 = last;
		got++;
		bytes += len;
	}
	uint64_t us = got > 1 ? (last - t0) * 1000000 / hz : 1;
	if (!us)
		us = 1;
	say("net-bench: rx count %lu bytes %lu time_us %lu pps %lu mbps %lu", got, bytes, us,
	    got * 1000000 / us, bytes / us);
	if (!got)
		return fail("net: no bench frames arrived");
	return true;
}
