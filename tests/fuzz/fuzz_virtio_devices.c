/*
 * A hostile driver of the virtio devices other than virtio-blk (which
 * fuzz_virtqueue covers): virtio-net, virtio-console, virtio-rng and
 * virtio-balloon, each a virtio-pci function driven through its BARs and
 * config space by 8-byte register records (fuzz_virtio.h), kicks of any
 * queue included.  Record op 7 is the host's side instead: a frame from the
 * network back end, console input, or a new balloon target.  The rest of the
 * input is guest RAM: rings, descriptors, frames, control commands, PFN lists.
 *
 * Guest RAM is page-aligned mmap'd memory with inaccessible pages on either
 * side of each region (the balloon's discards madvise it, which must not hit
 * the heap), so any host access outside it faults.  Checked after every
 * record: a queue gives back exactly what it took (only the balloon's
 * statistics buffer is held), a queue in use has its rings in RAM, a device
 * that needs a reset uses no queue, FEATURES_OK only with offered features,
 * frames to the back end are whole Ethernet frames no longer than
 * NET_MAX_FRAME made of guest RAM, offloads reach it only as negotiated, a
 * received frame takes one buffer (up to 64 mergeable ones) or none,
 * console input is not held while the guest has buffers, and the balloon's
 * "actual" never exceeds RAM.
 *
 * Header: [0] device (0 net, 1 console, 2 rng, 3 balloon), [1] options
 * (net: 1 back end with a vnet header, bits 1-2 queue pairs - 1; balloon:
 * 1 deflate-on-oom, 2 free page reporting, 4 RAM above 4 MiB in 2 MiB host
 * pages), [2] flags (2 a second RAM region past a hole), [3] number of
 * records.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/devices.h"
#include "virtio/pci.h"
#include "fuzz_virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define LOW_SIZE (64 * 1024)
#define HIGH_GPA 0x100000
#define HIGH_SIZE (16 * 1024)
#define HUGE_GPA 0x400000
#define HUGE_PAGE (2 * MIB)
#define HUGE_SIZE (2 * HUGE_PAGE)
#define HEADER 16
#define SLOT 1

enum { DEV_NET, DEV_CONSOLE, DEV_RNG, DEV_BALLOON };

/* virtio-net feature bits (virtio 1.2 §5.1.3) the checks look at. */
#define F_GUEST_CSUM (1ULL << 1)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_GUEST_TSO6 (1ULL << 8)
#define F_GUEST_ECN (1ULL << 9)
#define F_MRG_RXBUF (1ULL << 15)
#define BALLOON_STATS_QUEUE 2

static uint8_t *low, *high, *huge;
static struct guest_memory mem;
static struct pci_bus bus;
static struct virtio_pci vp;
static struct chardev console_cd;
static struct virtio_balloon balloon;

/* The network back end: takes the guest's frames, holds a refused one until woken. */
struct peer {
	struct net_client nc;
	struct virtio_net *nic;
	unsigned frames;
	uint8_t held[NET_VNET_HDR_LEN + 65536];
	size_t held_len;
	unsigned held_queue;
};

static struct virtio_net net;
static struct peer peer;
static struct virtio_console console;

/* size bytes aligned to align, between two inaccessible pages. */
static uint8_t *map_guarded(size_t size, size_t align)
{
	size_t total = size + align + 2 * 4096;
	uint8_t *p = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		abort();
	uintptr_t start = ((uintptr_t)p + 4096 + align - 1) & ~(uintptr_t)(align - 1);
	if (mprotect((void *)start, size, PROT_READ | PROT_WRITE) < 0)
		abort();
	return (uint8_t *)start;
}

static void init_once(void)
{
	if (low)
		return;
	low = map_guarded(LOW_SIZE, 4096);
	high = map_guarded(HIGH_SIZE, 4096);
	huge = map_guarded(HUGE_SIZE, HUGE_PAGE);
	/* The console's chardev: output into a memory file, so the kernel reads every byte. */
	memset(&console_cd, 0, sizeof(console_cd));
	pthread_mutex_init(&console_cd.lock, NULL);
	console_cd.in_fd = console_cd.listen_fd = console_cd.hold_fd = -1;
	console_cd.out_fd = memfd_create("fuzz-console", MFD_CLOEXEC);
	if (console_cd.out_fd < 0 || virtio_balloon_init(&balloon) < 0)
		abort();
}

static void memory_setup(const uint8_t *h, const uint8_t *body, size_t n)
{
	bool hugepages = h[0] % 4 == DEV_BALLOON && (h[1] & 4);

	fuzz_virtio_memory(&mem, low, LOW_SIZE, high, HIGH_GPA, HIGH_SIZE,
			   (h[2] & 2) && !hugepages, body, n);
	if (!hugepages)
		return;
	/* Like a hugetlb backend above low RAM: the balloon frees it 2 MiB at a time. */
	if (madvise(huge, HUGE_SIZE, MADV_DONTNEED) < 0)
		abort();
	if (n > LOW_SIZE)
		memcpy(huge, body + LOW_SIZE, n - LOW_SIZE < HUGE_SIZE ? n - LOW_SIZE : HUGE_SIZE);
	mem.regions[1] = (struct memory_region){ .gpa = HUGE_GPA, .size = HUGE_SIZE, .host = huge };
	mem.nr_regions = 2;
	mem.ram_size += HUGE_SIZE;
	mem.blocks[0] = (struct memory_block){ .host = low, .size = LOW_SIZE, .page_size = 4096,
					       .fd = -1 };
	mem.blocks[1] = (struct memory_block){ .host = huge, .size = HUGE_SIZE,
					       .page_size = HUGE_PAGE, .fd = -1 };
	mem.nr_blocks = 2;
}

/* ---- the network back end ---------------------------------------------------- */

static ssize_t peer_receive_queue(struct net_client *nc, unsigned queue, const struct iovec *iov,
				  int iovcnt)
{
	struct peer *p = nc->opaque;
	size_t len = 0, hdr = nc->using_vnet_hdr ? NET_VNET_HDR_LEN : 0;
	volatile uint8_t sink = 0;

	if (queue >= p->nic->max_pairs || iovcnt < 1 || iovcnt > VQ_MAX_SEGS)
		abort();
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0 || !fuzz_in_ram(&mem, iov[i].iov_base, iov[i].iov_len))
			abort();
		sink ^= ((const uint8_t *)iov[i].iov_base)[0];
		sink ^= ((const uint8_t *)iov[i].iov_base)[iov[i].iov_len - 1];
		len += iov[i].iov_len;
	}
	/* A whole Ethernet frame behind the header, and no longer than any back end takes. */
	if (len < hdr + 14 || len > NET_MAX_FRAME - NET_VNET_HDR_LEN + hdr)
		abort();
	p->frames++;
	(void)sink;
	return (ssize_t)len;
}

static ssize_t peer_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	return peer_receive_queue(nc, 0, iov, iovcnt);
}

/* The NIC has buffers again: a TAP would read on, so offer the held frame once more. */
static void peer_wake(struct net_client *nc)
{
	struct peer *p = nc->opaque;
	struct iovec iov = { p->held, p->held_len };

	if (!p->held_len)
		return;
	if (net_send_queue(nc, p->held_queue, &iov, 1) != 0)
		p->held_len = 0;
}

static void peer_offload(struct net_client *nc, bool csum, bool tso4, bool tso6, bool ecn)
{
	struct peer *p = nc->opaque;
	const struct virtio_device *vdev = p->nic->vdev;

	/* Offloads only to a back end with a header, and only what the driver took. */
	if (!nc->using_vnet_hdr || !vdev)
		abort();
	if ((csum || tso4 || tso6 || ecn) && !(vdev->status & VIRTIO_STATUS_DRIVER_OK))
		abort();
	if ((csum && !virtio_has_feature(vdev, F_GUEST_CSUM)) ||
	    (tso4 && !virtio_has_feature(vdev, F_GUEST_TSO4)) ||
	    (tso6 && !virtio_has_feature(vdev, F_GUEST_TSO6)) ||
	    (ecn && !virtio_has_feature(vdev, F_GUEST_ECN)))
		abort();
}

static const struct net_client_ops peer_ops = {
	.type = "fuzz", .receive = peer_receive, .receive_queue = peer_receive_queue,
	.wake = peer_wake, .set_offload = peer_offload,
};

static uint16_t used_total(void)
{
	uint16_t n = 0;

	for (unsigned q = 0; q < vp.vdev.num_queues; q++)
		n = (uint16_t)(n + vp.vdev.vqs[q].used_idx);
	return n;
}

/*
 * A frame from the back end: [1] bits 0-1 the destination (our MAC,
 * broadcast, multicast, another unicast), bits 2-3 the channel queue (bit 4:
 * none, the back end's plain receive), [2..3]
 * payload length, [4..5] header flags and GSO type, [6] the address's last
 * byte and where the frame splits in two, [7] the fill byte.
 */
static void net_inject(const uint8_t *r)
{
	static uint8_t frame[NET_VNET_HDR_LEN + 65536];
	size_t hdr = peer.nc.using_vnet_hdr ? NET_VNET_HDR_LEN : 0;
	size_t len = hdr + fuzz_get16(r + 2), split = r[6] < len ? r[6] : len;
	uint8_t dst[4][6] = { { 0 }, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
			      { 0x01, 0x00, 0x5e, 0x00, 0x00, r[6] }, { 0x02, 0, 0, 0, 0, r[6] } };
	struct virtio_net_hdr vh = { .flags = r[4], .gso_type = r[5], .num_buffers = 0xffff };
	struct iovec iov[2] = { { frame, split }, { frame + split, len - split } };
	unsigned queue = (r[1] & 0x10) ? 0 : (r[1] >> 2) & 3;
	uint64_t frames = net.rx_frames;
	uint16_t used = used_total();

	memcpy(dst[0], net.mac, 6);
	memset(frame, r[7], len);
	memcpy(frame, &vh, hdr);
	memcpy(frame + hdr, dst[r[1] & 3], len - hdr < 6 ? len - hdr : 6);
	const struct iovec *v = split ? iov : iov + 1;
	ssize_t rc = (r[1] & 0x10) ? net_send(&peer.nc, v, split ? 2 : 1)
				   : net_send_queue(&peer.nc, queue, v, split ? 2 : 1);
	if (rc != 0 && rc != (ssize_t)len)
		abort();
	if (rc == 0 && len) {
		if (!net.rx_waiting)
			abort();	/* nothing would ever wake the back end */
		memcpy(peer.held, frame, len);
		peer.held_len = len;
		peer.held_queue = queue;
	}
	if (vp.vdev.status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	uint16_t took = (uint16_t)(used_total() - used);
	if (net.rx_frames != frames) {
		/* One buffer per frame, or up to 64 when they merge (§5.1.6.3.1). */
		unsigned most = virtio_has_feature(&vp.vdev, F_MRG_RXBUF) ? 64 : 1;
		if (net.rx_frames != frames + 1 || rc == 0 || took < 1 || took > most)
			abort();
	} else if (took) {
		abort();	/* dropped or filtered: no buffer used */
	}
}

/* ---- host events -------------------------------------------------------------- */

/*
 * virtio-console's ops with the receive kicks counted: only a kick that
 * reached the device (the BAR mapped, memory decoding on, the queue ready)
 * obliges it to deliver typed-ahead input.
 */
static unsigned console_rx_kicks;
static struct virtio_device_ops console_counted_ops;

static void console_counted_notify(struct virtio_device *vdev, unsigned q)
{
	if (q == 0)
		console_rx_kicks++;
	virtio_console_ops.queue_notify(vdev, q);
}

static void console_check_fill(void)
{
	const struct virtio_device *vdev = &vp.vdev;

	/* Typed-ahead input waits only while the guest has no buffer for it. */
	if (console.npending && (vdev->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(vdev->status & VIRTIO_STATUS_NEEDS_RESET) && vdev->vqs[0].ready &&
	    vq_avail_pending(&vp.vdev.vqs[0]))
		abort();
}

static void balloon_event(const uint8_t *r)
{
	uint32_t v = fuzz_get32(r + 4);
	uint64_t target = (r[1] & 1) ? (uint64_t)v << 12 : mem.ram_size - ((uint64_t)v << 12);
	uint64_t stats[BALLOON_NR_STATS], interval;
	int64_t last;

	if (r[1] & 2) {
		virtio_balloon_stats(&balloon, stats, &last, &interval);
		(void)virtio_balloon_actual(&balloon);
		return;
	}
	virtio_balloon_set_target(&balloon, mem.ram_size, target);
	uint64_t want = target > mem.ram_size ? 0 : (mem.ram_size - target) >> 12;
	if (balloon.num_pages != want)
		abort();
}

static void host_event(unsigned dev, const uint8_t *r)
{
	static const uint8_t rng_kick[FUZZ_VIRTIO_RECORD] = { 2 };
	uint8_t text[6000];
	size_t n;

	switch (dev) {
	case DEV_NET:
		net_inject(r);
		break;
	case DEV_CONSOLE:
		n = fuzz_get16(r + 2) % sizeof(text);
		for (size_t i = 0; i < n; i++)
			text[i] = r[4 + i % 4];
		virtio_console_input(&console, text, n);
		console_check_fill();
		break;
	case DEV_RNG:
		fuzz_virtio_io(&bus, &vp, SLOT, rng_kick);
		break;
	default:
		balloon_event(r);
		break;
	}
}

/* ---- invariants --------------------------------------------------------------- */

static void check(unsigned dev, unsigned frames_before, uint16_t used_before)
{
	const struct virtio_device *vdev = &vp.vdev;
	uint64_t offered = (vdev->ops->features | vdev->extra_features | VIRTIO_F_VERSION_1 |
			    VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX) & ~vdev->no_features;
	bool broken = vdev->status & VIRTIO_STATUS_NEEDS_RESET;

	if ((vdev->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((vdev->driver_features & ~offered) || !(vdev->driver_features & VIRTIO_F_VERSION_1)))
		abort();
	for (unsigned q = 0; q < vdev->num_queues; q++) {
		const struct virtqueue *vq = &vdev->vqs[q];
		unsigned held = dev == DEV_BALLOON && q == BALLOON_STATS_QUEUE && balloon.stats_held;
		if (vq->ready && (broken || !vq_check_rings(vq)))
			abort();
		/* Every request taken is given back at once, but a held statistics buffer. */
		if (!broken && (uint16_t)(vq->last_avail - vq->used_idx) != held)
			abort();
	}
	switch (dev) {
	case DEV_NET:
		/* Each frame sent is a transmit request completed. */
		if (peer.frames - frames_before > (uint16_t)(used_total() - used_before) && !broken)
			abort();
		if (net.curr_pairs < 1 || net.curr_pairs > net.max_pairs ||
		    net.uni_entries + net.multi_entries > VIRTIO_NET_MAC_TABLE)
			abort();
		break;
	case DEV_BALLOON:
		if (balloon.actual > mem.ram_size >> 12 ||
		    (balloon.partial_size && balloon.partial_size != HUGE_PAGE))
			abort();
		break;
	case DEV_CONSOLE:
		if (console.npending > sizeof(console.pending))
			abort();
		break;
	}
}

/* ---- one run ------------------------------------------------------------------ */

static const struct virtio_device_ops *device_setup(unsigned dev, const uint8_t *h, void **state,
						    unsigned *queues)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	unsigned pairs = 1 + ((h[1] >> 1) & 3) % NET_MAX_QUEUES;

	*queues = 0;
	switch (dev) {
	case DEV_NET:
		if (virtio_net_init(&net, "fuzz-nic", mac, pairs) < 0)
			abort();
		memset(&peer, 0, sizeof(peer));
		peer.nc.ops = &peer_ops;
		peer.nc.opaque = &peer;
		peer.nc.has_vnet_hdr = h[1] & 1;
		peer.nic = &net;
		net_connect(&net.nc, &peer.nc);
		*state = &net;
		*queues = 2 * pairs + 1;
		return &virtio_net_ops;
	case DEV_CONSOLE:
		memset(&console, 0, sizeof(console));
		console.cd = &console_cd;
		if (ftruncate(console_cd.out_fd, 0) < 0 || lseek(console_cd.out_fd, 0, SEEK_SET) < 0)
			abort();
		*state = &console;
		console_counted_ops = virtio_console_ops;
		console_counted_ops.queue_notify = console_counted_notify;
		return &console_counted_ops;
	case DEV_RNG:
		*state = NULL;
		return &virtio_rng_ops;
	default:
		balloon.deflate_on_oom = h[1] & 1;
		balloon.free_page_reporting = h[1] & 2;
		balloon.num_pages = 0;
		*state = &balloon;
		*queues = balloon.free_page_reporting ? 4 : 3;
		return &virtio_balloon_ops;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *rest = data + HEADER;
	unsigned dev;
	size_t n, nrec;
	void *state;
	unsigned queues;

	if (len < HEADER)
		return 0;
	init_once();
	dev = data[0] % 4;
	n = len - HEADER;
	nrec = data[3];
	if (nrec * FUZZ_VIRTIO_RECORD > n)
		nrec = n / FUZZ_VIRTIO_RECORD;
	memory_setup(data, rest + nrec * FUZZ_VIRTIO_RECORD, n - nrec * FUZZ_VIRTIO_RECORD);
	const struct virtio_device_ops *ops = device_setup(dev, data, &state, &queues);
	if (pci_bus_init(&bus) < 0 ||
	    virtio_pci_create(&vp, &bus, SLOT, ops, state, queues, &mem, -1, NULL) < 0)
		abort();
	if (dev == DEV_NET)
		virtio_net_attach(&net, &vp.vdev);
	else if (dev == DEV_CONSOLE)
		console.vdev = &vp.vdev;
	else if (dev == DEV_BALLOON && virtio_balloon_attach(&balloon, &vp.vdev, &mem, NULL) < 0)
		abort();

	for (size_t i = 0; i < nrec; i++) {
		const uint8_t *r = rest + FUZZ_VIRTIO_RECORD * i;
		unsigned frames = peer.frames;
		uint16_t used = used_total();
		unsigned rx_kicks = console_rx_kicks;
		if ((r[0] & 7) == 7)
			host_event(dev, r);
		else
			fuzz_virtio_io(&bus, &vp, SLOT, r);
		if (dev == DEV_CONSOLE && console_rx_kicks != rx_kicks)
			console_check_fill();	/* a receive kick reached the device */
		check(dev, frames, used);
	}

	if (dev == DEV_NET) {
		virtio_net_detach(&net);
		virtio_net_release(&net);
	} else if (dev == DEV_BALLOON) {
		virtio_balloon_detach(&balloon, NULL);
	}
	virtio_pci_destroy(&vp);
	pci_bus_destroy(&bus);
	return 0;
}
