/*
 * virtio-net (virtio 1.2 §5.1): queue 0 receives, queue 1 transmits, queue 2
 * is the control queue.  Frames travel with a virtio_net_hdr; when the back
 * end is a TAP with IFF_VNET_HDR the header passes straight through, so the
 * guest's checksum and TSO offloads reach the host kernel (QEMU's
 * peer_has_vnet_hdr rule: without one, no offload is offered).
 */
#include "virtio/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/vhost.h"
#include "util/log.h"
#include "virtio/devices.h"

/* Queue 2k receives and 2k+1 transmits for pair k; the control queue follows (§5.1.2). */
#define RX_QUEUE(pair) (2 * (pair))
#define TX_QUEUE(pair) (2 * (pair) + 1)
#define NET_QUEUE_SIZE 256

/* Feature bits (§5.1.3). */
#define F_CSUM (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_GUEST_TSO6 (1ULL << 8)
#define F_GUEST_ECN (1ULL << 9)
#define F_HOST_TSO4 (1ULL << 11)
#define F_HOST_TSO6 (1ULL << 12)
#define F_HOST_ECN (1ULL << 13)
#define F_MRG_RXBUF (1ULL << 15)
#define F_STATUS (1ULL << 16)
#define F_CTRL_VQ (1ULL << 17)
#define F_CTRL_RX (1ULL << 18)
#define F_MQ (1ULL << 22)
#define F_CTRL_MAC_ADDR (1ULL << 23)

#define OFFLOAD_FEATURES (F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_GUEST_ECN | \
			  F_HOST_TSO4 | F_HOST_TSO6 | F_HOST_ECN)

#define S_LINK_UP 1

/* Control queue classes and commands (§5.1.6.5). */
#define CTRL_RX 0
#define CTRL_RX_PROMISC 0
#define CTRL_RX_ALLMULTI 1
#define CTRL_RX_ALLUNI 2
#define CTRL_RX_NOMULTI 3
#define CTRL_RX_NOUNI 4
#define CTRL_RX_NOBCAST 5
#define CTRL_MAC 1
#define CTRL_MAC_TABLE_SET 0
#define CTRL_MAC_ADDR_SET 1
#define CTRL_MQ 4
#define CTRL_MQ_VQ_PAIRS_SET 0
#define CTRL_OK 0
#define CTRL_ERR 1

struct net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

#define MAX_RX_CHAINS 64	/* mergeable buffers per frame: 64 KiB in 1 KiB buffers */
#define VIRTIO_NET_TX_ROUND 8	/* requests sent between two completions */

static void net_read_config(struct virtio_device *vdev, uint32_t offset, void *buf, uint32_t len)
{
	struct virtio_net *n = vdev->opaque;
	struct net_config c = { .status = S_LINK_UP, .max_virtqueue_pairs = (uint16_t)n->max_pairs };

	memcpy(c.mac, n->mac, 6);
	if (offset + len <= sizeof(c))
		memcpy(buf, (uint8_t *)&c + offset, len);
}

static void net_write_config(struct virtio_device *vdev, uint32_t offset, const void *buf,
			     uint32_t len)
{
	struct virtio_net *n = vdev->opaque;

	/* Legacy drivers set the MAC by writing it (§5.1.4.2); 1.x ones use CTRL_MAC. */
	if (offset + len <= 6 && !virtio_has_feature(vdev, F_CTRL_MAC_ADDR))
		memcpy(n->mac + offset, buf, len);
}

/* ---- receive ---------------------------------------------------------------- */

static bool mac_in_table(const struct virtio_net *n, const uint8_t *mac, unsigned from,
			 unsigned to)
{
	for (unsigned i = from; i < to; i++)
		if (memcmp(n->mac_table[i], mac, 6) == 0)
			return true;
	return false;
}

/* QEMU's receive_filter: what the driver's RX mode and MAC table let through. */
static bool net_accepts(const struct virtio_net *n, const uint8_t *dst)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (n->promisc)
		return true;
	if (memcmp(dst, bcast, 6) == 0)
		return !n->nobcast;
	if (dst[0] & 1) {
		if (n->nomulti)
			return false;
		return n->allmulti || n->multi_overflow ||
		       mac_in_table(n, dst, n->uni_entries, n->uni_entries + n->multi_entries);
	}
	if (n->nouni)
		return false;
	if (n->alluni || n->uni_overflow || memcmp(dst, n->mac, 6) == 0)
		return true;
	return mac_in_table(n, dst, 0, n->uni_entries);
}

/* The negotiated guest offloads, handed to the back end once per DRIVER_OK; caller holds the lock. */
static void net_apply_offloads(struct virtio_net *n, struct virtio_device *vdev)
{
	struct net_client *peer = n->nc.peer;

	if (n->offloads_set || !(vdev->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	n->offloads_set = true;
	if (peer && n->nc.using_vnet_hdr && peer->ops->set_offload)
		peer->ops->set_offload(peer, virtio_has_feature(vdev, F_GUEST_CSUM),
				       virtio_has_feature(vdev, F_GUEST_TSO4),
				       virtio_has_feature(vdev, F_GUEST_TSO6),
				       virtio_has_feature(vdev, F_GUEST_ECN));
}

/*
 * Copies one frame into the receive queue, across several buffers when the
 * driver took VIRTIO_NET_F_MRG_RXBUF (§5.1.6.3.1), and sets num_buffers.
 * Returns 1 when delivered, 0 when the ring has no room now, -1 when the
 * frame cannot ever fit (dropped).  Caller holds vdev->lock.
 */
static int net_fill_rx(struct virtio_net *n, struct virtio_device *vdev, struct virtqueue *vq,
		       const struct virtio_net_hdr *hdr, const struct iovec *iov, int iovcnt,
		       size_t skip)
{
	bool mrg = virtio_has_feature(vdev, F_MRG_RXBUF);
	size_t payload = net_iov_size(iov, iovcnt) - skip, done = 0;
	struct vq_request first, cur, *req;
	uint16_t heads[MAX_RX_CHAINS];
	uint32_t lens[MAX_RX_CHAINS];
	unsigned nchains = 0;
	const char *why;

	while (nchains == 0 || done < payload) {
		if (nchains == MAX_RX_CHAINS || (nchains && !mrg)) {
			vq_unpop(vq, nchains);
			return -1;	/* larger than the buffers the driver posts */
		}
		req = nchains ? &cur : &first;
		int got = vq_pop(vq, req, &why);
		if (got < 0) {
			virtio_needs_reset(vdev, why);
			return -1;
		}
		if (got == 0) {
			vq_unpop(vq, nchains);
			return 0;
		}
		size_t off = 0, room = req->in_len;
		if (nchains == 0) {
			if (room < NET_VNET_HDR_LEN) {
				vq_unpop(vq, 1);
				virtio_needs_reset(vdev, "receive buffer smaller than the header");
				return -1;
			}
			iov_from_buf(req->in, req->nr_in, 0, hdr, NET_VNET_HDR_LEN);
			off = NET_VNET_HDR_LEN;
		}
		/* Copy the next piece of the frame from the sender's segments. */
		size_t want = payload - done < room - off ? payload - done : room - off;
		size_t copied = 0, pos = skip + done;
		for (int i = 0; i < iovcnt && copied < want; i++) {
			if (pos >= iov[i].iov_len) {
				pos -= iov[i].iov_len;
				continue;
			}
			size_t chunk = iov[i].iov_len - pos;
			if (chunk > want - copied)
				chunk = want - copied;
			iov_from_buf(req->in, req->nr_in, off + copied,
				     (const uint8_t *)iov[i].iov_base + pos, chunk);
			copied += chunk;
			pos = 0;
		}
		done += copied;
		heads[nchains] = req->head;
		lens[nchains] = (uint32_t)(off + copied);
		nchains++;
	}
	uint16_t nb = (uint16_t)nchains;
	iov_from_buf(first.in, first.nr_in, offsetof(struct virtio_net_hdr, num_buffers), &nb, 2);
	vq_push_many(vq, heads, lens, nchains);
	return 1;
}

/* The control queue's index: after the last pair with MQ, else 2 (§5.1.2). */
static unsigned ctrl_queue(const struct virtio_net *n, const struct virtio_device *vdev)
{
	return virtio_has_feature(vdev, F_MQ) ? 2 * n->max_pairs : 2;
}

/* A frame from the back end's channel queue goes to receive queue pair queue % pairs in use. */
static ssize_t net_receive_queue(struct net_client *nc, unsigned queue, const struct iovec *iov,
				 int iovcnt)
{
	struct virtio_net *n = nc->opaque;
	struct virtio_device *vdev = n->vdev;
	unsigned rxq;
	struct virtio_net_hdr hdr = { 0 };
	size_t len = net_iov_size(iov, iovcnt), skip = 0;
	uint8_t dst[6];
	ssize_t rc = (ssize_t)len;

	if (!vdev)
		return 0;	/* no VM right now (a reset): the back end waits for our wake */
	pthread_mutex_lock(&vdev->lock);
	rxq = RX_QUEUE(virtio_has_feature(vdev, F_MQ) ? queue % n->curr_pairs : 0);
	if (n->vhost_pair[rxq / 2]) {
		rc = 0;	/* the kernel owns the ring; the TAP keeps the frame until it lets go */
		goto out;
	}
	if (!(vdev->status & VIRTIO_STATUS_DRIVER_OK) || !vdev->vqs[rxq].ready ||
	    (vdev->status & VIRTIO_STATUS_NEEDS_RESET)) {
		n->rx_waiting = true;
		rc = 0;
		goto out;
	}
	if (nc->using_vnet_hdr) {
		if (len < NET_VNET_HDR_LEN)
			goto out;
		iov_to_buf(iov, (unsigned)iovcnt, 0, &hdr, NET_VNET_HDR_LEN);
		skip = NET_VNET_HDR_LEN;
		/* Without GUEST_CSUM the flags must be zero (§5.1.6.4.1). */
		if (!virtio_has_feature(vdev, F_GUEST_CSUM))
			hdr = (struct virtio_net_hdr){ 0 };
	}
	if (len - skip < 14 || iov_to_buf(iov, (unsigned)iovcnt, skip, dst, 6) != 6)
		goto out;
	if (!net_accepts(n, dst))
		goto out;	/* filtered: taken and dropped, as a real NIC */
	struct virtqueue *vq = &vdev->vqs[rxq];
	int got = net_fill_rx(n, vdev, vq, &hdr, iov, iovcnt, skip);
	if (got == 0) {
		/* Out of buffers: now we want the driver's kick (QEMU's virtio_net_has_buffers). */
		vq_set_notification(vq, true);
		got = net_fill_rx(n, vdev, vq, &hdr, iov, iovcnt, skip);
	}
	if (got == 0) {
		n->rx_waiting = true;	/* the next receive kick wakes the back end */
		rc = 0;
		goto out;
	}
	/* While buffers last, kicks for new ones would only cost the guest exits. */
	vq_set_notification(vq, false);
	if (got < 0) {
		n->rx_dropped++;
		goto out;
	}
	n->rx_frames++;
	if (vq_should_interrupt(vq))
		vdev->interrupt(vdev, rxq);
out:
	pthread_mutex_unlock(&vdev->lock);
	return rc;
}

static ssize_t net_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	return net_receive_queue(nc, 0, iov, iovcnt);
}

/* ---- transmit --------------------------------------------------------------- */

/* Sends one guest frame on the back end's channel pair; the header goes only if it uses one. */
static void net_send_request(struct virtio_net *n, unsigned pair, const struct vq_request *req)
{
	struct iovec v[VQ_MAX_SEGS];
	size_t skip = n->nc.using_vnet_hdr ? 0 : NET_VNET_HDR_LEN;
	int cnt = 0;

	/* No Ethernet frame: a runt, or beyond 64 KiB (TSO's limit) that no back end takes. */
	if (req->out_len < NET_VNET_HDR_LEN + 14 || req->out_len > NET_MAX_FRAME)
		return;
	for (unsigned i = 0; i < req->nr_out; i++) {
		size_t l = req->out[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		v[cnt++] = (struct iovec){ (uint8_t *)req->out[i].iov_base + skip, l - skip };
		skip = 0;
	}
	net_send_queue(&n->nc, pair, v, cnt);
}

/*
 * Takes a few requests under the device lock, sends them without it (a hub
 * may carry a frame into another NIC, which takes its own lock), then
 * completes them: small rounds hand buffers back to the driver early, as
 * QEMU's per-packet push does.
 */
static void net_tx(struct virtio_net *n, struct virtio_device *vdev, unsigned pair)
{
	struct virtqueue *vq = &vdev->vqs[TX_QUEUE(pair)];
	struct vq_request *reqs = n->tx_reqs + pair * VIRTIO_NET_TX_BATCH;
	const char *why;

	pthread_mutex_lock(&n->tx_lock[pair]);
	for (;;) {
		unsigned count = 0;
		pthread_mutex_lock(&vdev->lock);
		/* No kicks while we drain the queue; re-armed and re-checked when it is empty. */
		vq_set_notification(vq, count == 0 && !vq_has_avail(vq));
		while (count < VIRTIO_NET_TX_ROUND) {
			int got = vq_pop(vq, &reqs[count], &why);
			if (got < 0) {
				virtio_needs_reset(vdev, why);
				break;
			}
			if (got == 0)
				break;
			count++;
		}
		pthread_mutex_unlock(&vdev->lock);
		if (!count)
			break;
		for (unsigned i = 0; i < count; i++)
			net_send_request(n, pair, &reqs[i]);
		uint16_t heads[VIRTIO_NET_TX_ROUND];
		for (unsigned i = 0; i < count; i++)
			heads[i] = reqs[i].head;
		pthread_mutex_lock(&vdev->lock);
		vq_push_many(vq, heads, NULL, count);
		n->tx_frames += count;
		if (vq_should_interrupt(vq))
			vdev->interrupt(vdev, TX_QUEUE(pair));
		pthread_mutex_unlock(&vdev->lock);
	}
	pthread_mutex_unlock(&n->tx_lock[pair]);
}

/* ---- control queue ---------------------------------------------------------- */

static void vhost_steer(struct virtio_net *n, struct virtio_device *vdev);

static uint8_t ctrl_rx(struct virtio_net *n, uint8_t cmd, const uint8_t *data, size_t len)
{
	bool *modes[] = { &n->promisc, &n->allmulti, &n->alluni, &n->nomulti, &n->nouni,
			  &n->nobcast };

	if (len != 1 || cmd > CTRL_RX_NOBCAST)
		return CTRL_ERR;
	*modes[cmd] = data[0] != 0;
	return CTRL_OK;
}

/* TABLE_SET: two struct virtio_net_ctrl_mac (u32 entries, then the MACs), unicast first. */
static uint8_t ctrl_mac(struct virtio_net *n, uint8_t cmd, const uint8_t *data, size_t len)
{
	uint32_t uni, multi;

	if (cmd == CTRL_MAC_ADDR_SET) {
		if (len != 6)
			return CTRL_ERR;
		memcpy(n->mac, data, 6);
		return CTRL_OK;
	}
	if (cmd != CTRL_MAC_TABLE_SET || len < 4)
		return CTRL_ERR;
	memcpy(&uni, data, 4);
	if (uni > (len - 4) / 6)
		return CTRL_ERR;
	size_t moff = 4 + 6 * (size_t)uni;
	if (len < moff + 4)
		return CTRL_ERR;
	memcpy(&multi, data + moff, 4);
	if (multi > (len - moff - 4) / 6 || len != moff + 4 + 6 * (size_t)multi)
		return CTRL_ERR;
	n->uni_overflow = uni > VIRTIO_NET_MAC_TABLE;
	n->uni_entries = n->uni_overflow ? 0 : uni;
	memcpy(n->mac_table, data + 4, 6 * n->uni_entries);
	n->multi_overflow = n->uni_entries + multi > VIRTIO_NET_MAC_TABLE;
	n->multi_entries = n->multi_overflow ? 0 : multi;
	memcpy(n->mac_table[n->uni_entries], data + moff + 4, 6 * n->multi_entries);
	return CTRL_OK;
}

/* VQ_PAIRS_SET (§5.1.6.5.5): how many pairs the driver uses; we steer receive over them. */
static uint8_t ctrl_mq(struct virtio_net *n, struct virtio_device *vdev, uint8_t cmd,
		       const uint8_t *data, size_t len)
{
	uint16_t pairs;

	if (cmd != CTRL_MQ_VQ_PAIRS_SET || len != 2 || !virtio_has_feature(vdev, F_MQ))
		return CTRL_ERR;
	memcpy(&pairs, data, 2);
	if (pairs < 1 || pairs > n->max_pairs)
		return CTRL_ERR;
	n->curr_pairs = pairs;
	vhost_steer(n, vdev);
	return CTRL_OK;
}

static int ctrl_handle(struct virtio_device *vdev, struct vq_request *req)
{
	struct virtio_net *n = vdev->opaque;
	uint8_t buf[4 + 2 * (4 + 6 * 256)], ack = CTRL_ERR;
	size_t len;

	if (req->out_len < 2 || req->in_len < 1 || req->out_len > sizeof(buf))
		return req->in_len ? (int)iov_from_buf(req->in, req->nr_in, 0, &ack, 1) : -1;
	len = iov_to_buf(req->out, req->nr_out, 0, buf, req->out_len);
	if (buf[0] == CTRL_RX)
		ack = ctrl_rx(n, buf[1], buf + 2, len - 2);
	else if (buf[0] == CTRL_MAC)
		ack = ctrl_mac(n, buf[1], buf + 2, len - 2);
	else if (buf[0] == CTRL_MQ)
		ack = ctrl_mq(n, vdev, buf[1], buf + 2, len - 2);
	return (int)iov_from_buf(req->in, req->nr_in, 0, &ack, 1);
}

static void net_notify(struct virtio_device *vdev, unsigned q)
{
	struct virtio_net *n = vdev->opaque;

	unsigned ctrl;
	bool wake;

	pthread_mutex_lock(&vdev->lock);
	net_apply_offloads(n, vdev);
	ctrl = ctrl_queue(n, vdev);
	if (q != ctrl && q / 2 < n->max_pairs && n->vhost_pair[q / 2]) {
		/* A kick that came as an MMIO exit (no ioeventfd): pass it to the kernel. */
		uint64_t one = 1;
		if (write(n->vhost_kick[q / 2][q % 2], &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_debug("%s: vhost kick: %s", n->nc.id, strerror(errno));
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	wake = q != ctrl && q % 2 == 0 && n->rx_waiting;
	if (wake)
		n->rx_waiting = false;
	pthread_mutex_unlock(&vdev->lock);
	if (q == ctrl)
		virtio_process_queue(vdev, q, ctrl_handle);
	else if (q % 2 == 1 && q / 2 < n->max_pairs)
		net_tx(n, vdev, q / 2);
	else if (wake)
		net_wake_peer(&n->nc);	/* new buffers: the back end holding a frame retries */
}

/* ---- vhost-net ---------------------------------------------------------------- */

/*
 * Multiqueue TAP with vhost: the kernel spreads flows over every attached
 * queue, so only the pairs the driver uses may stay attached (QEMU's
 * tap_enable/tap_disable).  Without vhost we steer in userspace instead.
 */
static void vhost_steer(struct virtio_net *n, struct virtio_device *vdev)
{
	struct net_client *peer = n->nc.peer;
	unsigned used = virtio_has_feature(vdev, F_MQ) ? n->curr_pairs : 1;

	if (!n->vhost_pair[0] || !peer || !peer->ops->enable_queue)
		return;
	for (unsigned pair = 0; pair < n->max_pairs; pair++)
		peer->ops->enable_queue(peer, pair, pair < used);
}

static void *ring_ptr(const struct virtqueue *vq, uint64_t gpa, uint64_t len)
{
	return memory_ptr(vq->mem, gpa, len);
}

/*
 * Hands pair's rings to the kernel (vdev->lock held).  Returns false when
 * the pair stays in userspace: no vhost, a queue not enabled, no interrupt
 * path, or the kernel refused (said in the log).
 */
static bool vhost_start_pair(struct virtio_net *n, struct virtio_device *vdev, unsigned pair)
{
	struct net_client *peer = n->nc.peer;
	const struct guest_memory *mem = vdev->vqs[0].mem;
	struct vhost_region regions[VHOST_NET_MAX_REGIONS];
	struct vhost_ring rings[2];
	struct vhost_net *v;
	char err[256];
	int backend_fd = -1;

	v = peer && peer->ops->vhost ? peer->ops->vhost(peer, pair, &backend_fd) : NULL;
	if (!v || !mem || mem->nr_regions > VHOST_NET_MAX_REGIONS)
		return false;
	for (unsigned i = 0; i < 2; i++) {
		const struct virtqueue *vq = &vdev->vqs[2 * pair + i];
		if (!vq->ready)
			return false;	/* the driver does not use this pair */
		int call = vdev->queue_call_fd ? vdev->queue_call_fd(vdev, 2 * pair + i) : -1;
		if (call < 0) {
			log_warn("%s: no interrupt eventfd for vhost-net; queue pair %u stays in "
				 "userspace", n->nc.id, pair);
			return false;
		}
		rings[i] = (struct vhost_ring){
			.num = vq->size, .base = vq->last_avail, .call_fd = call, .kick_fd = -1,
			.desc = ring_ptr(vq, vq->desc_gpa, 16ULL * vq->size),
			.avail = ring_ptr(vq, vq->avail_gpa, 6 + 2ULL * vq->size),
			.used = ring_ptr(vq, vq->used_gpa, 6 + 8ULL * vq->size),
		};
	}
	for (unsigned i = 0; i < mem->nr_regions; i++)
		regions[i] = (struct vhost_region){ .gpa = mem->regions[i].gpa,
						    .size = mem->regions[i].size,
						    .host = mem->regions[i].host };
	for (unsigned i = 0; i < 2; i++) {
		rings[i].kick_fd = n->vhost_kick[pair][i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (rings[i].kick_fd < 0) {
			snprintf(err, sizeof(err), "eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	if (vhost_net_start(v, vhost_net_ack(v, vdev->driver_features, n->nc.using_vnet_hdr),
			    regions, mem->nr_regions, rings, backend_fd, err, sizeof(err)) < 0)
		goto fail;
	for (unsigned i = 0; i < 2; i++)
		vdev->set_queue_kick(vdev, 2 * pair + i, n->vhost_kick[pair][i]);
	n->vhost_pair[pair] = true;
	peer->ops->vhost_running(peer, pair, true);
	log_debug("%s: queue pair %u served by vhost-net", n->nc.id, pair);
	return true;
fail:
	log_warn("%s: %s; queue pair %u stays in userspace", n->nc.id, err, pair);
	for (unsigned i = 0; i < 2; i++) {
		if (n->vhost_kick[pair][i] >= 0)
			close(n->vhost_kick[pair][i]);
		n->vhost_kick[pair][i] = -1;
	}
	return false;
}

/* Takes pair's rings back from the kernel where it stopped (vdev->lock held). */
static void vhost_stop_pair(struct virtio_net *n, struct virtio_device *vdev, unsigned pair)
{
	struct net_client *peer = n->nc.peer;
	int backend_fd;
	struct vhost_net *v = peer->ops->vhost(peer, pair, &backend_fd);
	uint16_t base[2];
	bool known = vhost_net_stop(v, base) == 0;

	if (!known)
		log_warn("%s: vhost-net did not say where queue pair %u stopped", n->nc.id, pair);
	for (unsigned i = 0; i < 2; i++) {
		struct virtqueue *vq = &vdev->vqs[2 * pair + i];
		uint16_t *used_idx = ring_ptr(vq, vq->used_gpa + 2, 2);

		vdev->set_queue_kick(vdev, 2 * pair + i, -1);
		close(n->vhost_kick[pair][i]);
		n->vhost_kick[pair][i] = -1;
		/* Userspace goes on from there: the kernel completed all it took (§2.7.13). */
		if (known && used_idx) {
			vq->last_avail = base[i];
			vq->used_idx = *used_idx;
			vq->signalled_valid = false;
			/* The kernel may have left kicks suppressed: ask for them again. */
			vq->no_notify = true;
			vq_set_notification(vq, true);
		}
	}
	n->vhost_pair[pair] = false;
	peer->ops->vhost_running(peer, pair, false);
}

/* DRIVER_OK: offloads to the TAP, then each enabled pair to vhost-net where there is one. */
static void net_start(struct virtio_device *vdev)
{
	struct virtio_net *n = vdev->opaque;

	net_apply_offloads(n, vdev);
	for (unsigned pair = 0; pair < n->max_pairs; pair++)
		if (pair == 0 || virtio_has_feature(vdev, F_MQ))
			vhost_start_pair(n, vdev, pair);
	vhost_steer(n, vdev);
}

static void net_stop(struct virtio_device *vdev)
{
	struct virtio_net *n = vdev->opaque;
	struct net_client *peer = n->nc.peer;
	bool had = n->vhost_pair[0];

	for (unsigned pair = 0; pair < n->max_pairs; pair++)
		if (n->vhost_pair[pair])
			vhost_stop_pair(n, vdev, pair);
	/* Every TAP queue back for the userspace path, which steers by itself. */
	for (unsigned pair = 0; had && peer->ops->enable_queue && pair < n->max_pairs; pair++)
		peer->ops->enable_queue(peer, pair, true);
}

static void net_reset(struct virtio_device *vdev)
{
	struct virtio_net *n = vdev->opaque;
	struct net_client *peer = n->nc.peer;

	/* QEMU starts promiscuous until the driver says otherwise. */
	n->promisc = true;
	n->allmulti = n->alluni = n->nomulti = n->nouni = n->nobcast = false;
	n->uni_entries = n->multi_entries = 0;
	n->uni_overflow = n->multi_overflow = false;
	n->curr_pairs = 1;
	if (n->offloads_set && peer && n->nc.using_vnet_hdr && peer->ops->set_offload)
		peer->ops->set_offload(peer, false, false, false, false);
	n->offloads_set = false;
}

static void net_unplug(struct virtio_device *vdev)
{
	virtio_net_detach(vdev->opaque);
}

const struct virtio_device_ops virtio_net_ops = {
	.name = "virtio-net-pci",
	.device_id = VIRTIO_ID_NET,
	.pci_class = 0x020000,	/* network, Ethernet */
	.features = F_MAC | F_STATUS | F_MRG_RXBUF | F_CTRL_VQ | F_CTRL_RX | F_CTRL_MAC_ADDR,
	.num_queues = 3,
	.queue_max = NET_QUEUE_SIZE,
	.config_size = sizeof(struct net_config),
	.read_config = net_read_config,
	.write_config = net_write_config,
	.queue_notify = net_notify,
	.reset = net_reset,
	.start = net_start,
	.stop = net_stop,
	.unplug = net_unplug,
};

static const struct net_client_ops nic_ops = {
	.type = "nic",
	.receive = net_receive,
	.receive_queue = net_receive_queue,
};

int virtio_net_init(struct virtio_net *n, const char *name, const uint8_t mac[6], unsigned pairs)
{
	memset(n, 0, sizeof(*n));
	if (pairs < 1 || pairs > NET_MAX_QUEUES)
		return -1;
	n->tx_reqs = calloc(NET_MAX_QUEUES * VIRTIO_NET_TX_BATCH, sizeof(*n->tx_reqs));
	if (!n->tx_reqs)
		return -1;
	for (unsigned i = 0; i < NET_MAX_QUEUES; i++) {
		pthread_mutex_init(&n->tx_lock[i], NULL);
		n->vhost_kick[i][0] = n->vhost_kick[i][1] = -1;
	}
	n->max_pairs = n->curr_pairs = pairs;
	n->curr_pairs = 1;
	memcpy(n->mac, mac, 6);
	n->promisc = true;
	n->nc.ops = &nic_ops;
	n->nc.opaque = n;
	snprintf(n->nc.id, sizeof(n->nc.id), "%s", name);
	return 0;
}

void virtio_net_attach(struct virtio_net *n, struct virtio_device *vdev)
{
	struct net_client *peer = n->nc.peer;

	/* The guest's headers go through only to a back end that speaks them. */
	n->nc.using_vnet_hdr = peer && peer->has_vnet_hdr;
	if (peer)
		peer->using_vnet_hdr = n->nc.using_vnet_hdr;
	if (n->nc.using_vnet_hdr)
		vdev->extra_features |= OFFLOAD_FEATURES;
	if (n->max_pairs > 1)
		vdev->extra_features |= F_MQ;
	/* Ring features the kernel cannot serve are not offered (QEMU's kernel_feature_bits). */
	int backend_fd;
	struct vhost_net *v = peer && peer->ops->vhost ? peer->ops->vhost(peer, 0, &backend_fd) : NULL;
	if (v)
		vdev->no_features = VHOST_NET_RING_FEATURES & ~v->features;
	n->curr_pairs = 1;
	n->offloads_set = false;
	n->vdev = vdev;
	net_wake_peer(&n->nc);
}

void virtio_net_detach(struct virtio_net *n)
{
	struct virtio_device *vdev = n->vdev;

	/* The kernel must stop writing into RAM that is about to go away. */
	if (vdev) {
		pthread_mutex_lock(&vdev->lock);
		net_stop(vdev);
		pthread_mutex_unlock(&vdev->lock);
	}
	n->vdev = NULL;
}

int virtio_net_plug(struct virtio_net *n, const struct virtio_plug *at)
{
	if (virtio_pci_plug(at, &virtio_net_ops, n) < 0)
		return -1;
	virtio_net_attach(n, &at->vp->vdev);
	return 0;
}

void virtio_net_release(struct virtio_net *n)
{
	free(n->tx_reqs);
	n->tx_reqs = NULL;
	for (unsigned i = 0; i < NET_MAX_QUEUES; i++)
		pthread_mutex_destroy(&n->tx_lock[i]);
}
