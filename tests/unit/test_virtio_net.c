/*
 * virtio/net.c (virtio 1.2 §5.1) against a fake back end: frames are built in
 * fake guest RAM as a driver would, kicks are calls to queue_notify.  Checked:
 * the virtio_net_hdr travels only to a back end that speaks it, mergeable
 * receive buffers and num_buffers, a full ring holding the back end until
 * the next receive kick, the control queue's RX mode and MAC filter, and the
 * guest offloads reaching the back end once negotiated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "fake_virtio.h"
#include "virtio/devices.h"
#include "virtio/pci.h"

#define RAM_SIZE (4 * MIB)
#define QSIZE 16
#define RING(q) FAKE_RING(q)	/* desc; avail +0x1000; used +0x2000 */
#define BUF(q, i) (0x100000 + 0x40000 * (uint64_t)(q) + 0x1000 * (uint64_t)(i))
#define F_NEXT 1
#define F_WRITE 2
#define HDR 12

#define F_GUEST_CSUM (1ULL << 1)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_MRG_RXBUF (1ULL << 15)
#define F_CTRL_VQ (1ULL << 17)
#define F_CTRL_RX (1ULL << 18)

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct peer {
	struct net_client nc;
	uint8_t last[NET_MAX_FRAME];
	size_t last_len;
	int frames, wakes, offload_calls;
	int last_queue;
	bool csum, tso4, tso6, ecn;
};

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct virtio_pci vp;
	struct virtio_net net;
	struct peer peer;
	uint16_t avail_idx[8], next_desc[8];
};

static ssize_t peer_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct peer *p = nc->opaque;
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++) {
		/* Longer than any back end takes: counted, not kept. */
		if (n + iov[i].iov_len <= sizeof(p->last))
			memcpy(p->last + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	p->last_len = n;
	p->frames++;
	return (ssize_t)n;
}

static ssize_t peer_receive_queue(struct net_client *nc, unsigned queue, const struct iovec *iov,
				  int iovcnt)
{
	((struct peer *)nc->opaque)->last_queue = (int)queue;
	return peer_receive(nc, iov, iovcnt);
}

static void peer_wake(struct net_client *nc)
{
	((struct peer *)nc->opaque)->wakes++;
}

static void peer_offload(struct net_client *nc, bool csum, bool tso4, bool tso6, bool ecn)
{
	struct peer *p = nc->opaque;

	p->offload_calls++;
	p->csum = csum;
	p->tso4 = tso4;
	p->tso6 = tso6;
	p->ecn = ecn;
}

static const struct net_client_ops peer_ops = {
	.type = "test", .receive = peer_receive, .receive_queue = peer_receive_queue,
	.wake = peer_wake, .set_offload = peer_offload,
};

static uint8_t *ram(struct fx *f, uint64_t gpa)
{
	return f->mem.host + gpa;
}

/* A device with pairs queue pairs whose driver took features and enabled every queue. */
static struct fx *make_pairs(bool vnet_peer, uint64_t features, unsigned pairs)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fake_memory_init(&f->mem, RAM_SIZE), 0);
	assert_int_equal(pci_bus_init(&f->bus), 0);
	assert_int_equal(virtio_net_init(&f->net, "nic.0", our_mac, pairs), 0);
	f->peer.nc.ops = &peer_ops;
	f->peer.nc.opaque = &f->peer;
	f->peer.nc.has_vnet_hdr = vnet_peer;
	net_connect(&f->net.nc, &f->peer.nc);
	assert_int_equal(virtio_pci_create(&f->vp, &f->bus, -1, &virtio_net_ops, &f->net,
					   2 * pairs + 1, &f->mem, -1, NULL), 0);
	virtio_net_attach(&f->net, &f->vp.vdev);
	f->peer.wakes = 0;
	assert_true(fake_virtio_rings_ready(&f->vp.vdev, 2 * pairs + 1, QSIZE));
	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1 | features;
	f->vp.vdev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	return f;
}

static struct fx *make(bool vnet_peer, uint64_t features)
{
	return make_pairs(vnet_peer, features, 1);
}

static void destroy(struct fx *f)
{
	virtio_net_detach(&f->net);
	virtio_pci_destroy(&f->vp);
	virtio_net_release(&f->net);
	pci_bus_destroy(&f->bus);
	fake_memory_free(&f->mem);
	free(f);
}

/* One buffer per chain, made available on queue q. */
static void post(struct fx *f, unsigned q, uint64_t gpa, uint32_t len, bool write)
{
	uint16_t i = f->next_desc[q]++ % QSIZE;
	uint16_t flags = write ? F_WRITE : 0;
	uint8_t d[16];

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memset(d + 14, 0, 2);
	memcpy(ram(f, RING(q) + 16 * i), d, 16);
	memcpy(ram(f, RING(q) + 0x1000 + 4 + 2 * (f->avail_idx[q] % QSIZE)), &i, 2);
	f->avail_idx[q]++;
	memcpy(ram(f, RING(q) + 0x1000 + 2), &f->avail_idx[q], 2);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	uint16_t v;

	memcpy(&v, ram(f, RING(q) + 0x2000 + 2), 2);
	return v;
}

static uint32_t used_len(struct fx *f, unsigned q, unsigned k)
{
	uint32_t v;

	memcpy(&v, ram(f, RING(q) + 0x2000 + 4 + 8 * (k % QSIZE) + 4), 4);
	return v;
}

static void frame(uint8_t *b, size_t len, const uint8_t *dst)
{
	memcpy(b, dst, 6);
	memcpy(b + 6, "\x02\x00\x00\x00\x00\x09", 6);
	b[12] = 0x88;
	b[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		b[i] = (uint8_t)(i * 3);
}

static ssize_t deliver(struct fx *f, const uint8_t *b, size_t len)
{
	struct iovec iov = { (void *)b, len };

	return net_send(&f->peer.nc, &iov, 1);
}

static void test_tx_strips_the_header_for_a_plain_back_end(void **state)
{
	struct fx *f = make(false, 0);
	uint8_t *b = ram(f, BUF(1, 0));

	assert_false(f->vp.vdev.extra_features & F_GUEST_CSUM);	/* no offloads offered */
	memset(b, 0xaa, HDR);
	frame(b + HDR, 60, our_mac);
	post(f, 1, BUF(1, 0), HDR + 60, false);
	virtio_net_ops.queue_notify(&f->vp.vdev, 1);
	assert_int_equal(f->peer.frames, 1);
	assert_int_equal(f->peer.last_len, 60);
	assert_memory_equal(f->peer.last, b + HDR, 60);
	assert_int_equal(used_idx(f, 1), 1);
	destroy(f);
}

static void test_tx_keeps_the_header_for_a_vnet_back_end(void **state)
{
	struct fx *f = make(true, 0);
	uint8_t *b = ram(f, BUF(1, 0));

	assert_true(f->vp.vdev.extra_features & F_GUEST_CSUM);
	assert_true(f->net.nc.using_vnet_hdr && f->peer.nc.using_vnet_hdr);
	memset(b, 0, HDR);
	b[0] = 1;	/* NEEDS_CSUM: for the host kernel to act on */
	frame(b + HDR, 100, our_mac);
	post(f, 1, BUF(1, 0), HDR + 100, false);
	virtio_net_ops.queue_notify(&f->vp.vdev, 1);
	assert_int_equal(f->peer.last_len, HDR + 100);
	assert_memory_equal(f->peer.last, b, HDR + 100);
	destroy(f);
}

/*
 * A guest frame beyond 64 KiB (a TSO frame's limit) is no frame any back end
 * takes: a TAP refuses the write, a socket peer hangs up, a hub would hand
 * it to another guest.  It is dropped and its buffer returned.
 */
static void test_tx_frame_longer_than_64k_is_dropped(void **state)
{
	struct fx *f = make(true, 0);
	uint8_t *b = ram(f, BUF(1, 0));

	memset(b, 0, HDR);
	frame(b + HDR, 65536 + 1, our_mac);
	post(f, 1, BUF(1, 0), HDR + 65536 + 1, false);
	virtio_net_ops.queue_notify(&f->vp.vdev, 1);
	assert_int_equal(f->peer.frames, 0);
	assert_int_equal(used_idx(f, 1), 1);
	/* 64 KiB exactly still goes. */
	post(f, 1, BUF(1, 0), HDR + 65536, false);
	virtio_net_ops.queue_notify(&f->vp.vdev, 1);
	assert_int_equal(f->peer.frames, 1);
	assert_int_equal(f->peer.last_len, HDR + 65536);
	assert_int_equal(used_idx(f, 1), 2);
	destroy(f);
}

static void test_rx_merges_buffers_and_counts_them(void **state)
{
	struct fx *f = make(false, F_MRG_RXBUF);
	uint8_t in[1000], out[1000];
	uint16_t nb;

	for (unsigned i = 0; i < 4; i++)
		post(f, 0, BUF(0, i), 400, true);
	frame(in, sizeof(in), our_mac);
	assert_int_equal(deliver(f, in, sizeof(in)), sizeof(in));
	/* 12 + 1000 bytes in 400-byte buffers: three of them. */
	assert_int_equal(used_idx(f, 0), 3);
	assert_int_equal(used_len(f, 0, 0), 400);
	assert_int_equal(used_len(f, 0, 1), 400);
	assert_int_equal(used_len(f, 0, 2), HDR + 1000 - 800);
	memcpy(&nb, ram(f, BUF(0, 0) + 10), 2);
	assert_int_equal(nb, 3);
	memcpy(out, ram(f, BUF(0, 0) + HDR), 388);
	memcpy(out + 388, ram(f, BUF(0, 1)), 400);
	memcpy(out + 788, ram(f, BUF(0, 2)), 212);
	assert_memory_equal(in, out, sizeof(in));
	destroy(f);
}

static void test_rx_full_ring_holds_the_back_end_until_a_kick(void **state)
{
	struct fx *f = make(false, F_MRG_RXBUF);
	uint8_t in[200];

	frame(in, sizeof(in), our_mac);
	assert_int_equal(deliver(f, in, sizeof(in)), 0);	/* no buffers: try later */
	assert_int_equal(used_idx(f, 0), 0);
	/* Out of buffers, the device wants to hear about new ones (no NO_NOTIFY). */
	uint16_t flags;
	memcpy(&flags, ram(f, RING(0) + 0x2000), 2);
	assert_int_equal(flags & 1, 0);
	post(f, 0, BUF(0, 0), 2048, true);
	virtio_net_ops.queue_notify(&f->vp.vdev, 0);
	assert_int_equal(f->peer.wakes, 1);
	assert_int_equal(deliver(f, in, sizeof(in)), sizeof(in));
	assert_int_equal(used_idx(f, 0), 1);
	/* With buffers in hand, kicks are suppressed. */
	memcpy(&flags, ram(f, RING(0) + 0x2000), 2);
	assert_int_equal(flags & 1, 1);
	destroy(f);
}

static void test_rx_frame_too_big_without_mergeable_buffers_is_dropped(void **state)
{
	struct fx *f = make(false, 0);
	uint8_t in[1000];

	post(f, 0, BUF(0, 0), 512, true);
	post(f, 0, BUF(0, 1), 512, true);
	frame(in, sizeof(in), our_mac);
	assert_int_equal(deliver(f, in, sizeof(in)), sizeof(in));	/* taken, dropped */
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(f->net.rx_dropped, 1);
	frame(in, 100, our_mac);
	assert_int_equal(deliver(f, in, 100), 100);
	assert_int_equal(used_idx(f, 0), 1);				/* the buffer was kept */
	destroy(f);
}

/* Sends one control command on queue cq: class, cmd, data; returns the ack byte. */
static uint8_t ctrl_on(struct fx *f, unsigned cq, uint8_t cls, uint8_t cmd, const void *data,
		       uint32_t len)
{
	uint8_t *b = ram(f, BUF(cq, f->next_desc[cq]));
	uint64_t gpa = BUF(cq, f->next_desc[cq]);
	uint16_t i = f->next_desc[cq] % QSIZE, j = (uint16_t)((i + 1) % QSIZE);
	uint8_t d[16];
	uint32_t l = 2 + len, one = 1;
	uint16_t flags = F_NEXT, wflags = F_WRITE;
	uint64_t ack_gpa = gpa + 0x800;

	b[0] = cls;
	b[1] = cmd;
	memcpy(b + 2, data, len);
	*ram(f, ack_gpa) = 0xee;
	memcpy(d, &gpa, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &j, 2);
	memcpy(ram(f, RING(cq) + 16 * i), d, 16);
	memcpy(d, &ack_gpa, 8);
	memcpy(d + 8, &one, 4);
	memcpy(d + 12, &wflags, 2);
	memset(d + 14, 0, 2);
	memcpy(ram(f, RING(cq) + 16 * j), d, 16);
	f->next_desc[cq] += 2;
	memcpy(ram(f, RING(cq) + 0x1000 + 4 + 2 * (f->avail_idx[cq] % QSIZE)), &i, 2);
	f->avail_idx[cq]++;
	memcpy(ram(f, RING(cq) + 0x1000 + 2), &f->avail_idx[cq], 2);
	virtio_net_ops.queue_notify(&f->vp.vdev, cq);
	return *ram(f, ack_gpa);
}

static uint8_t ctrl(struct fx *f, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	return ctrl_on(f, 2, cls, cmd, data, len);
}

static void test_ctrl_rx_mode_and_mac_table_filter(void **state)
{
	struct fx *f = make(false, F_MRG_RXBUF | F_CTRL_VQ | F_CTRL_RX);
	static const uint8_t other[6] = { 0x52, 0x54, 0x00, 0x99, 0x99, 0x99 };
	static const uint8_t listed[6] = { 0x52, 0x54, 0x00, 0x77, 0x77, 0x77 };
	uint8_t in[64], off = 0;
	uint8_t table[4 + 6 + 4];
	uint32_t one = 1, zero = 0;

	for (unsigned i = 0; i < 8; i++)
		post(f, 0, BUF(0, i), 2048, true);
	frame(in, sizeof(in), other);
	deliver(f, in, sizeof(in));
	assert_int_equal(used_idx(f, 0), 1);	/* promiscuous after reset, as QEMU */

	assert_int_equal(ctrl(f, 0, 0, &off, 1), 0);	/* PROMISC off: ack OK */
	deliver(f, in, sizeof(in));
	assert_int_equal(used_idx(f, 0), 1);	/* filtered */
	frame(in, sizeof(in), our_mac);
	deliver(f, in, sizeof(in));
	assert_int_equal(used_idx(f, 0), 2);	/* ours */
	memset(in, 0xff, 6);
	deliver(f, in, sizeof(in));
	assert_int_equal(used_idx(f, 0), 3);	/* broadcast */

	memcpy(table, &one, 4);
	memcpy(table + 4, listed, 6);
	memcpy(table + 10, &zero, 4);
	assert_int_equal(ctrl(f, 1, 0, table, sizeof(table)), 0);	/* MAC_TABLE_SET */
	frame(in, sizeof(in), listed);
	deliver(f, in, sizeof(in));
	assert_int_equal(used_idx(f, 0), 4);
	/* Malformed: more entries claimed than sent. */
	uint32_t five = 5;
	memcpy(table, &five, 4);
	assert_int_equal(ctrl(f, 1, 0, table, sizeof(table)), 1);
	assert_int_equal(ctrl(f, 9, 0, &off, 1), 1);			/* unknown class */
	destroy(f);
}

static void test_offloads_reach_the_back_end_once_negotiated(void **state)
{
	struct fx *f = make(true, F_GUEST_CSUM | F_GUEST_TSO4 | F_MRG_RXBUF);

	post(f, 0, BUF(0, 0), 2048, true);
	virtio_net_ops.queue_notify(&f->vp.vdev, 0);
	assert_int_equal(f->peer.offload_calls, 1);
	assert_true(f->peer.csum && f->peer.tso4);
	assert_false(f->peer.tso6 || f->peer.ecn);
	virtio_net_ops.queue_notify(&f->vp.vdev, 0);
	assert_int_equal(f->peer.offload_calls, 1);	/* once per DRIVER_OK */
	virtio_net_ops.reset(&f->vp.vdev);
	assert_int_equal(f->peer.offload_calls, 2);	/* reset turns them off */
	assert_false(f->peer.csum || f->peer.tso4);
	destroy(f);
}

#define F_MQ (1ULL << 22)

static void test_multiqueue_pairs_steering_and_transmit(void **state)
{
	struct fx *f = make_pairs(false, F_MRG_RXBUF | F_CTRL_VQ | F_MQ, 2);
	uint16_t two = 2, three = 3, max;
	uint8_t in[100];

	assert_true(f->vp.vdev.extra_features & F_MQ);
	virtio_net_ops.read_config(&f->vp.vdev, 8, &max, 2);
	assert_int_equal(max, 2);
	/* With MQ the control queue follows the pairs: queue 4, not 2 (§5.1.2). */
	assert_int_equal(ctrl_on(f, 4, 4, 0, &three, 2), 1);	/* more pairs than there are */
	assert_int_equal(ctrl_on(f, 4, 4, 0, &two, 2), 0);
	assert_int_equal(f->net.curr_pairs, 2);

	post(f, 0, BUF(0, 0), 2048, true);
	post(f, 2, BUF(2, 0), 2048, true);
	frame(in, sizeof(in), our_mac);
	struct iovec iov = { in, sizeof(in) };
	assert_int_equal(net_send_queue(&f->peer.nc, 1, &iov, 1), sizeof(in));
	assert_int_equal(used_idx(f, 2), 1);	/* back-end queue 1 -> pair 1's receive queue */
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(net_send_queue(&f->peer.nc, 0, &iov, 1), sizeof(in));
	assert_int_equal(used_idx(f, 0), 1);

	uint8_t *b = ram(f, BUF(3, 0));
	memset(b, 0, HDR);
	frame(b + HDR, 60, our_mac);
	post(f, 3, BUF(3, 0), HDR + 60, false);
	virtio_net_ops.queue_notify(&f->vp.vdev, 3);	/* pair 1 transmits */
	assert_int_equal(f->peer.frames, 1);
	assert_int_equal(f->peer.last_queue, 1);	/* on the back end's queue 1 */

	virtio_net_ops.reset(&f->vp.vdev);
	assert_int_equal(f->net.curr_pairs, 1);
	destroy(f);
}

static void test_config_space_has_mac_and_link(void **state)
{
	struct fx *f = make(false, 0);
	uint8_t mac[6];
	uint16_t status, pairs;

	virtio_net_ops.read_config(&f->vp.vdev, 0, mac, 6);
	virtio_net_ops.read_config(&f->vp.vdev, 6, &status, 2);
	virtio_net_ops.read_config(&f->vp.vdev, 8, &pairs, 2);
	assert_memory_equal(mac, our_mac, 6);
	assert_int_equal(status, 1);	/* VIRTIO_NET_S_LINK_UP */
	assert_int_equal(pairs, 1);
	destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_strips_the_header_for_a_plain_back_end),
		cmocka_unit_test(test_tx_keeps_the_header_for_a_vnet_back_end),
		cmocka_unit_test(test_tx_frame_longer_than_64k_is_dropped),
		cmocka_unit_test(test_rx_merges_buffers_and_counts_them),
		cmocka_unit_test(test_rx_full_ring_holds_the_back_end_until_a_kick),
		cmocka_unit_test(test_rx_frame_too_big_without_mergeable_buffers_is_dropped),
		cmocka_unit_test(test_ctrl_rx_mode_and_mac_table_filter),
		cmocka_unit_test(test_offloads_reach_the_back_end_once_negotiated),
		cmocka_unit_test(test_multiqueue_pairs_steering_and_transmit),
		cmocka_unit_test(test_config_space_has_mac_and_link),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
