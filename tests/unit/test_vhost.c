/*
 * vhost-net without the kernel module: net/vhost.c and the virtio-net device
 * drive a fake /dev/vhost-net (an injected ioctl that records every call and
 * can fail one).  Checked: the ioctl order QEMU and kvmtool use (owner and
 * features at open; features, memory table, per ring NUM/BASE/ADDR/KICK/CALL,
 * then the back end on both rings), the memory table with RAM split around
 * the PCI hole, ring host addresses, eventfd and TAP plumbing, the rollback
 * when the kernel refuses a step, the teardown order (back end off, bases
 * read, eventfds unbound), and the device handing rings over at DRIVER_OK,
 * forwarding kicks and interrupts, refusing frames meanwhile, and resuming
 * in userspace where the kernel stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "net/vhost.h"
/* <linux/virtio_config.h> names the bit number; kestrel's virtio.h the mask. */
#undef VIRTIO_F_VERSION_1
#include "virtio/devices.h"
#include "virtio/pci.h"

#include "fake_virtio.h"

#define MAX_CALLS 64

struct call {
	unsigned long req;
	uint64_t u64;				/* SET/GET_FEATURES */
	struct vhost_vring_state state;		/* NUM, BASE, GET_VRING_BASE */
	struct vhost_vring_addr addr;
	struct vhost_vring_file file;		/* KICK, CALL, NET_SET_BACKEND */
	unsigned nregions;
	struct vhost_memory_region regions[VHOST_NET_MAX_REGIONS];
};

struct fake_kernel {
	struct call calls[MAX_CALLS];
	unsigned n;
	int fd;				/* the descriptor every call must use */
	bool wrong_fd;
	uint64_t features;		/* what GET_FEATURES answers */
	unsigned long fail_req;		/* this request fails with EIO ... */
	unsigned fail_nth;		/* ... the nth time (1-based); 0: never */
	unsigned seen_fail_req;
	uint16_t stop_base[2];		/* what GET_VRING_BASE answers per ring */
};

static int fake_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake_kernel *k = ctx;
	struct call *c;

	if (fd != k->fd)
		k->wrong_fd = true;
	if (req == k->fail_req && ++k->seen_fail_req == k->fail_nth) {
		errno = EIO;
		return -1;
	}
	if (k->n == MAX_CALLS)
		fail_msg("too many vhost ioctls");
	c = &k->calls[k->n++];
	memset(c, 0, sizeof(*c));
	c->req = req;
	switch (req) {
	case VHOST_GET_FEATURES:
		memcpy(arg, &k->features, 8);
		break;
	case VHOST_SET_FEATURES:
		memcpy(&c->u64, arg, 8);
		break;
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
		memcpy(&c->state, arg, sizeof(c->state));
		break;
	case VHOST_GET_VRING_BASE: {
		struct vhost_vring_state *s = arg;
		c->state.index = s->index;
		s->num = k->stop_base[s->index & 1];
		break;
	}
	case VHOST_SET_VRING_ADDR:
		memcpy(&c->addr, arg, sizeof(c->addr));
		break;
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_NET_SET_BACKEND:
		memcpy(&c->file, arg, sizeof(c->file));
		break;
	case VHOST_SET_MEM_TABLE: {
		const struct vhost_memory *m = arg;
		c->nregions = m->nregions;
		assert_true(m->nregions <= VHOST_NET_MAX_REGIONS);
		memcpy(c->regions, m->regions, m->nregions * sizeof(m->regions[0]));
		break;
	}
	}
	return 0;
}

#define ALL_FEATURES (VHOST_NET_RING_FEATURES | VHOST_NET_HDR_FEATURE)

static void kernel_init(struct fake_kernel *k, int fd, uint64_t features)
{
	memset(k, 0, sizeof(*k));
	k->fd = fd;
	k->features = features;
}

static void open_fake(struct vhost_net *v, struct fake_kernel *k)
{
	char err[256];

	assert_int_equal(vhost_net_open(v, k->fd, fake_ioctl, k, err, sizeof(err)), 0);
	assert_int_equal(k->n, 2);
	assert_int_equal(k->calls[0].req, VHOST_SET_OWNER);
	assert_int_equal(k->calls[1].req, VHOST_GET_FEATURES);
	assert_true(v->features == k->features);
	k->n = 0;
}

/* Two regions as the pc machine lays out 5 GiB: 3 GiB at 0, 2 GiB at 4 GiB. */
static uint8_t fake_ram[64];
static const struct vhost_region split_ram[2] = {
	{ .gpa = 0, .size = 3ULL << 30, .host = fake_ram },
	{ .gpa = 4ULL << 30, .size = 2ULL << 30, .host = fake_ram + 32 },
};

static void rings_init(struct vhost_ring r[2])
{
	r[0] = (struct vhost_ring){ .num = 256, .base = 3, .desc = fake_ram + 1, .avail = fake_ram + 2,
				    .used = fake_ram + 4, .kick_fd = 40, .call_fd = 41 };
	r[1] = (struct vhost_ring){ .num = 128, .base = 9, .desc = fake_ram + 8, .avail = fake_ram + 10,
				    .used = fake_ram + 12, .kick_fd = 42, .call_fd = 43 };
}

static void assert_file(const struct call *c, unsigned long req, unsigned index, int fd)
{
	assert_int_equal(c->req, req);
	assert_int_equal(c->file.index, index);
	assert_int_equal(c->file.fd, fd);
}

static void test_open_reports_the_device_and_errno(void **state)
{
	struct vhost_net v;
	struct fake_kernel k;
	char err[256];

	/* No module on this host, or one we may not open: either way the path and errno are named. */
	if (access(VHOST_NET_DEVICE, F_OK) != 0) {
		assert_int_equal(vhost_net_open(&v, -1, fake_ioctl, &k, err, sizeof(err)), -1);
		assert_string_equal(err, "/dev/vhost-net: No such file or directory");
	}
	kernel_init(&k, 77, ALL_FEATURES);
	k.fail_req = VHOST_SET_OWNER;
	k.fail_nth = 1;
	assert_int_equal(vhost_net_open(&v, 77, fake_ioctl, &k, err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/vhost-net: VHOST_SET_OWNER: Input/output error");
	assert_int_equal(v.fd, -1);
}

static void test_start_sequence_memory_table_and_rings(void **state)
{
	struct vhost_net v;
	struct fake_kernel k;
	struct vhost_ring r[2];
	char err[256];
	unsigned i = 0;

	kernel_init(&k, 77, ALL_FEATURES);
	open_fake(&v, &k);
	rings_init(r);
	uint64_t f = vhost_net_ack(&v, VHOST_NET_RING_FEATURES | 0xff /* offloads: not the kernel's */,
				   true);
	assert_true(f == VHOST_NET_RING_FEATURES);
	assert_int_equal(vhost_net_start(&v, f, split_ram, 2, r, 55, err, sizeof(err)), 0);
	assert_true(v.running);
	assert_false(k.wrong_fd);
	assert_int_equal(k.n, 1 + 1 + 2 * 5 + 2);

	assert_int_equal(k.calls[i].req, VHOST_SET_FEATURES);
	assert_true(k.calls[i++].u64 == VHOST_NET_RING_FEATURES);
	assert_int_equal(k.calls[i].req, VHOST_SET_MEM_TABLE);
	assert_int_equal(k.calls[i].nregions, 2);
	assert_true(k.calls[i].regions[0].guest_phys_addr == 0);
	assert_true(k.calls[i].regions[0].memory_size == 3ULL << 30);
	assert_true(k.calls[i].regions[0].userspace_addr == (uintptr_t)fake_ram);
	assert_true(k.calls[i].regions[1].guest_phys_addr == 4ULL << 30);
	assert_true(k.calls[i].regions[1].memory_size == 2ULL << 30);
	assert_true(k.calls[i].regions[1].userspace_addr == (uintptr_t)(fake_ram + 32));
	i++;
	for (unsigned ring = 0; ring < 2; ring++) {
		assert_int_equal(k.calls[i].req, VHOST_SET_VRING_NUM);
		assert_int_equal(k.calls[i].state.index, ring);
		assert_int_equal(k.calls[i++].state.num, r[ring].num);
		assert_int_equal(k.calls[i].req, VHOST_SET_VRING_BASE);
		assert_int_equal(k.calls[i].state.index, ring);
		assert_int_equal(k.calls[i++].state.num, r[ring].base);
		assert_int_equal(k.calls[i].req, VHOST_SET_VRING_ADDR);
		assert_int_equal(k.calls[i].addr.index, ring);
		assert_true(k.calls[i].addr.desc_user_addr == (uintptr_t)r[ring].desc);
		assert_true(k.calls[i].addr.avail_user_addr == (uintptr_t)r[ring].avail);
		assert_true(k.calls[i].addr.used_user_addr == (uintptr_t)r[ring].used);
		assert_int_equal(k.calls[i++].addr.flags, 0);	/* no dirty log */
		assert_file(&k.calls[i++], VHOST_SET_VRING_KICK, ring, r[ring].kick_fd);
		assert_file(&k.calls[i++], VHOST_SET_VRING_CALL, ring, r[ring].call_fd);
	}
	/* The TAP goes on last, RX then TX: only then may the kernel move frames. */
	assert_file(&k.calls[i++], VHOST_NET_SET_BACKEND, 0, 55);
	assert_file(&k.calls[i++], VHOST_NET_SET_BACKEND, 1, 55);

	/* Stop: TAP off both rings, then the bases, then our eventfds let go. */
	k.n = 0;
	k.stop_base[0] = 17;
	k.stop_base[1] = 1000;
	uint16_t base[2];
	assert_int_equal(vhost_net_stop(&v, base), 0);
	assert_false(v.running);
	assert_int_equal(base[0], 17);
	assert_int_equal(base[1], 1000);
	assert_int_equal(k.n, 8);
	assert_file(&k.calls[0], VHOST_NET_SET_BACKEND, 0, -1);
	assert_file(&k.calls[1], VHOST_NET_SET_BACKEND, 1, -1);
	assert_int_equal(k.calls[2].req, VHOST_GET_VRING_BASE);
	assert_int_equal(k.calls[2].state.index, 0);
	assert_int_equal(k.calls[3].req, VHOST_GET_VRING_BASE);
	assert_int_equal(k.calls[3].state.index, 1);
	assert_file(&k.calls[4], VHOST_SET_VRING_KICK, 0, -1);
	assert_file(&k.calls[5], VHOST_SET_VRING_CALL, 0, -1);
	assert_file(&k.calls[6], VHOST_SET_VRING_KICK, 1, -1);
	assert_file(&k.calls[7], VHOST_SET_VRING_CALL, 1, -1);
	k.n = 0;
	assert_int_equal(vhost_net_stop(&v, base), 0);	/* stopped already: nothing to do */
	assert_int_equal(k.n, 0);
}

static void test_header_feature_only_without_a_tap_header(void **state)
{
	struct vhost_net v;
	struct fake_kernel k;

	kernel_init(&k, 77, ALL_FEATURES & ~(1ULL << 29));	/* a kernel without EVENT_IDX */
	open_fake(&v, &k);
	uint64_t driver = VHOST_NET_RING_FEATURES;
	assert_true(vhost_net_ack(&v, driver, false) ==
		    ((VHOST_NET_RING_FEATURES & ~(1ULL << 29)) | VHOST_NET_HDR_FEATURE));
	assert_true(vhost_net_ack(&v, 1ULL << 32, true) == 1ULL << 32);
}

/* The kernel refuses the TX back end: RX's is taken off again and both rings' eventfds unbound. */
static void test_failed_start_is_undone(void **state)
{
	struct vhost_net v;
	struct fake_kernel k;
	struct vhost_ring r[2];
	char err[256];

	kernel_init(&k, 77, ALL_FEATURES);
	open_fake(&v, &k);
	rings_init(r);
	k.fail_req = VHOST_NET_SET_BACKEND;
	k.fail_nth = 2;
	assert_int_equal(vhost_net_start(&v, 1ULL << 32, split_ram, 2, r, 55, err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/vhost-net: VHOST_NET_SET_BACKEND: Input/output error");
	assert_false(v.running);
	unsigned i = 1 + 1 + 2 * 5 + 1;	/* up to RX's back end, which succeeded */
	assert_int_equal(k.n, i + 1 + 4);
	assert_file(&k.calls[i++], VHOST_NET_SET_BACKEND, 0, -1);
	assert_file(&k.calls[i++], VHOST_SET_VRING_KICK, 0, -1);
	assert_file(&k.calls[i++], VHOST_SET_VRING_CALL, 0, -1);
	assert_file(&k.calls[i++], VHOST_SET_VRING_KICK, 1, -1);
	assert_file(&k.calls[i++], VHOST_SET_VRING_CALL, 1, -1);

	/* A refused memory table: nothing else was set, so nothing is undone. */
	kernel_init(&k, 77, ALL_FEATURES);
	open_fake(&v, &k);
	k.fail_req = VHOST_SET_MEM_TABLE;
	k.fail_nth = 1;
	assert_int_equal(vhost_net_start(&v, 1ULL << 32, split_ram, 2, r, 55, err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/vhost-net: VHOST_SET_MEM_TABLE: Input/output error");
	assert_int_equal(k.n, 1);	/* SET_FEATURES only */
	/* Too many regions for one table. */
	assert_int_equal(vhost_net_start(&v, 1ULL << 32, split_ram, VHOST_NET_MAX_REGIONS + 1, r, 55,
					 err, sizeof(err)), -1);
}

/* ---- the device ------------------------------------------------------------- */

#define RAM_SIZE (5ULL << 30)	/* split around the PCI hole: 3 GiB + 2 GiB above 4 GiB */
#define QSIZE 16
#define RING(q) FAKE_RING(q)	/* desc; avail +0x1000; used +0x2000 */
#define STATUS_REG 0x14	/* common configuration, virtio 1.2 §4.1.4.3 */
#define VIRTIO_BAR 4

struct tap_double {
	struct net_client nc;
	struct vhost_net vhost[2];	/* one per TAP queue */
	unsigned queues;
	int backend_fd;
	int running_calls;
	bool running;			/* queue 0 */
	bool attached[2];		/* TUNSETQUEUE state */
	int frames;
};

static struct vhost_net *td_vhost(struct net_client *nc, unsigned queue, int *backend_fd)
{
	struct tap_double *t = nc->opaque;

	if (queue >= t->queues)
		return NULL;
	*backend_fd = t->backend_fd + (int)queue;
	return &t->vhost[queue];
}

static void td_running(struct net_client *nc, unsigned queue, bool on)
{
	struct tap_double *t = nc->opaque;

	t->running_calls++;
	if (queue == 0)
		t->running = on;
}

static void td_enable(struct net_client *nc, unsigned queue, bool on)
{
	((struct tap_double *)nc->opaque)->attached[queue & 1] = on;
}

static ssize_t td_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	((struct tap_double *)nc->opaque)->frames++;
	return (ssize_t)net_iov_size(iov, iovcnt);
}

static const struct net_client_ops td_ops = {
	.type = "tap", .receive = td_receive, .vhost = td_vhost, .vhost_running = td_running,
	.enable_queue = td_enable,
};

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct iothread io;
	struct virtio_pci vp;
	struct virtio_net net;
	struct tap_double tap;
	struct fake_kernel k[2];	/* one per vhost instance */
	uint16_t next_desc[5], avail_idx[5];
};

static void bar_write8(struct fx *f, uint64_t off, uint8_t v)
{
	f->vp.pci.bars[VIRTIO_BAR].access(f->vp.pci.bars[VIRTIO_BAR].opaque, off, true, &v, 1);
}

static uint32_t bar_read32(struct fx *f, uint64_t off)
{
	uint32_t v;

	f->vp.pci.bars[VIRTIO_BAR].access(f->vp.pci.bars[VIRTIO_BAR].opaque, off, false,
					  (uint8_t *)&v, 4);
	return v;
}

static struct fx *make_pairs(uint64_t kernel_features, unsigned pairs)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint64_t off = 0;

	assert_non_null(f);
	/* Lazily backed, as the VMM's own RAM: only the pages the test touches exist. */
	memory_layout(&f->mem, RAM_SIZE);
	f->mem.host = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(f->mem.host != MAP_FAILED);
	assert_int_equal(f->mem.nr_regions, 2);
	for (unsigned i = 0; i < f->mem.nr_regions; i++) {
		f->mem.regions[i].host = f->mem.host + off;
		off += f->mem.regions[i].size;
	}
	assert_int_equal(pci_bus_init(&f->bus), 0);
	assert_int_equal(iothread_start(&f->io), 0);
	assert_int_equal(virtio_net_init(&f->net, "nic.0", (const uint8_t *)"\x52\x54\x00\x01\x02\x03",
					 pairs), 0);
	for (unsigned i = 0; i < pairs; i++) {
		char err[256];
		kernel_init(&f->k[i], 99 + (int)i, kernel_features);
		assert_int_equal(vhost_net_open(&f->tap.vhost[i], 99 + (int)i, fake_ioctl, &f->k[i],
						err, sizeof(err)), 0);
		f->k[i].n = 0;
	}
	f->tap.queues = pairs;
	f->tap.backend_fd = 123;
	f->tap.nc.ops = &td_ops;
	f->tap.nc.opaque = &f->tap;
	f->tap.nc.has_vnet_hdr = true;
	net_connect(&f->net.nc, &f->tap.nc);
	assert_int_equal(virtio_pci_create(&f->vp, &f->bus, -1, &virtio_net_ops, &f->net,
					   2 * pairs + 1, &f->mem, -1, &f->io), 0);
	virtio_net_attach(&f->net, &f->vp.vdev);
	assert_true(fake_virtio_rings_ready(&f->vp.vdev, 2 * pairs + 1, QSIZE));
	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | (1ULL << 15);
	f->vp.vdev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			    VIRTIO_STATUS_FEATURES_OK;
	return f;
}

static struct fx *make(uint64_t kernel_features)
{
	return make_pairs(kernel_features, 1);
}

static void destroy(struct fx *f)
{
	iothread_stop(&f->io);
	virtio_net_detach(&f->net);
	virtio_pci_destroy(&f->vp);
	virtio_net_release(&f->net);
	pci_bus_destroy(&f->bus);
	munmap(f->mem.host, RAM_SIZE);
	free(f);
}

static void driver_ok(struct fx *f)
{
	bar_write8(f, STATUS_REG, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static const struct call *find(const struct fake_kernel *k, unsigned long req, unsigned index)
{
	for (unsigned i = 0; i < k->n; i++) {
		const struct call *c = &k->calls[i];
		unsigned ci = req == VHOST_SET_VRING_ADDR ? c->addr.index :
			      (req == VHOST_SET_VRING_NUM || req == VHOST_SET_VRING_BASE ||
			       req == VHOST_GET_VRING_BASE) ? c->state.index : c->file.index;
		if (c->req == req && (req == VHOST_SET_MEM_TABLE || req == VHOST_SET_FEATURES ||
				      ci == index))
			return c;
	}
	fail_msg("no vhost ioctl 0x%lx for ring %u", req, index);
	return NULL;
}

static void test_unserved_ring_features_are_not_offered(void **state)
{
	struct fx *f = make(ALL_FEATURES & ~(1ULL << 29));	/* no EVENT_IDX in this kernel */
	uint32_t lo;

	bar_write8(f, 0x00, 0);	/* device_feature_select 0 */
	lo = bar_read32(f, 0x04);
	assert_false(lo & (1u << 29));
	assert_true(lo & (1u << 28));	/* INDIRECT_DESC: the kernel has it */
	assert_true(lo & (1u << 15));	/* MRG_RXBUF */
	destroy(f);
}

static void test_driver_ok_hands_the_pair_to_the_kernel(void **state)
{
	struct fx *f = make(ALL_FEATURES);
	struct virtio_device *vdev = &f->vp.vdev;
	struct fake_kernel *k = &f->k[0];
	uint64_t count;

	f->vp.vdev.vqs[0].last_avail = 5;	/* where a driver already was */
	driver_ok(f);
	assert_true(f->net.vhost_pair[0]);
	assert_true(f->tap.running);
	assert_false(k->wrong_fd);

	/* Features: what the driver took that the kernel serves; the TAP has the header. */
	assert_true(find(k, VHOST_SET_FEATURES, 0)->u64 ==
		    (VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | (1ULL << 15)));
	/* The memory table is the VM's RAM regions, low and above 4 GiB, by host address. */
	const struct call *m = find(k, VHOST_SET_MEM_TABLE, 0);
	assert_int_equal(m->nregions, 2);
	assert_true(m->regions[0].guest_phys_addr == 0 && m->regions[0].memory_size == 3ULL << 30);
	assert_true(m->regions[0].userspace_addr == (uintptr_t)f->mem.host);
	assert_true(m->regions[1].guest_phys_addr == 4ULL << 30);
	assert_true(m->regions[1].memory_size == 2ULL << 30);
	assert_true(m->regions[1].userspace_addr == (uintptr_t)(f->mem.host + (3ULL << 30)));
	/* Rings: size, where to start, host addresses of the driver's rings. */
	for (unsigned q = 0; q < 2; q++) {
		const struct call *a = find(k, VHOST_SET_VRING_ADDR, q);
		assert_int_equal(find(k, VHOST_SET_VRING_NUM, q)->state.num, QSIZE);
		assert_int_equal(find(k, VHOST_SET_VRING_BASE, q)->state.num, q == 0 ? 5 : 0);
		assert_true(a->addr.desc_user_addr == (uintptr_t)(f->mem.host + RING(q)));
		assert_true(a->addr.avail_user_addr == (uintptr_t)(f->mem.host + RING(q) + 0x1000));
		assert_true(a->addr.used_user_addr == (uintptr_t)(f->mem.host + RING(q) + 0x2000));
		assert_int_equal(find(k, VHOST_NET_SET_BACKEND, q)->file.fd, 123);
		/* The kick eventfd is the device's doorbell; the call eventfd is the transport's. */
		assert_int_equal(find(k, VHOST_SET_VRING_KICK, q)->file.fd, f->net.vhost_kick[0][q]);
		assert_int_equal(find(k, VHOST_SET_VRING_CALL, q)->file.fd, f->vp.calls[q].watch.fd);
		assert_true(f->vp.calls[q].watched);
	}
	/* The control queue stays ours: no ring 2 for the kernel. */
	for (unsigned i = 0; i < k->n; i++)
		assert_true(k->calls[i].req == VHOST_SET_FEATURES ||
			    k->calls[i].req == VHOST_SET_MEM_TABLE || k->calls[i].file.index < 2);

	/* A kick that came as an MMIO exit reaches the kernel's eventfd, not our TX path. */
	vdev->ops->queue_notify(vdev, 1);
	assert_int_equal(read(f->net.vhost_kick[0][1], &count, 8), 8);
	assert_int_equal(count, 1);
	assert_int_equal(f->tap.frames, 0);

	/* The kernel's "call" becomes the queue's interrupt (INTx here: no MSI-X enabled). */
	uint64_t one = 1;
	assert_int_equal(write(f->vp.calls[0].watch.fd, &one, 8), 8);
	for (int i = 0; i < 500 && !__atomic_load_n(&f->vp.isr, __ATOMIC_SEQ_CST); i++)
		nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
	pthread_mutex_lock(&vdev->lock);
	assert_int_equal(f->vp.isr & 1, 1);
	pthread_mutex_unlock(&vdev->lock);

	/* Frames from the TAP's userspace path are held back while the kernel owns the ring. */
	uint8_t frame[12 + 60] = { 0 };
	memcpy(frame + 12, "\x52\x54\x00\x01\x02\x03", 6);
	struct iovec iov = { frame, sizeof(frame) };
	assert_int_equal(net_send(&f->tap.nc, &iov, 1), 0);

	/* Detach (the VM goes away): the kernel lets go, userspace resumes where it stopped. */
	uint16_t used = 7, no_notify = 1;
	memcpy(f->mem.host + RING(0) + 0x2000 + 2, &used, 2);
	memcpy(f->mem.host + RING(0) + 0x2000, &no_notify, 2);	/* as the kernel may leave it */
	k->n = 0;
	k->stop_base[0] = 9;
	k->stop_base[1] = 4;
	iothread_stop(&f->io);
	virtio_net_detach(&f->net);
	assert_int_equal(k->calls[0].req, VHOST_NET_SET_BACKEND);
	assert_int_equal(k->calls[0].file.fd, -1);
	assert_int_equal(k->calls[1].req, VHOST_NET_SET_BACKEND);
	assert_int_equal(k->calls[2].req, VHOST_GET_VRING_BASE);
	assert_int_equal(k->calls[3].req, VHOST_GET_VRING_BASE);
	assert_int_equal(vdev->vqs[0].last_avail, 9);
	assert_int_equal(vdev->vqs[0].used_idx, 7);
	assert_int_equal(vdev->vqs[1].last_avail, 4);
	uint16_t flags;
	memcpy(&flags, f->mem.host + RING(0) + 0x2000, 2);
	assert_int_equal(flags, 0);	/* kicks asked for again */
	assert_false(f->net.vhost_pair[0]);
	assert_false(f->tap.running);
	assert_int_equal(f->tap.running_calls, 2);
	assert_int_equal(f->net.vhost_kick[0][0], -1);
	destroy(f);
}

static void test_reset_takes_the_rings_back_first(void **state)
{
	struct fx *f = make(ALL_FEATURES);

	driver_ok(f);
	assert_true(f->net.vhost_pair[0]);
	f->k[0].n = 0;
	bar_write8(f, STATUS_REG, 0);
	assert_false(f->net.vhost_pair[0]);
	assert_false(f->tap.running);
	assert_int_equal(f->k[0].calls[0].req, VHOST_NET_SET_BACKEND);
	assert_int_equal(f->k[0].calls[2].req, VHOST_GET_VRING_BASE);
	/* Back in userspace: a frame is taken (and, with no DRIVER_OK, held) by the device. */
	assert_int_equal(f->vp.vdev.vqs[0].ready, false);
	destroy(f);
}

/* The kernel refuses: the pair stays in userspace and works as before. */
static void test_refused_start_leaves_the_pair_in_userspace(void **state)
{
	struct fx *f = make(ALL_FEATURES);

	f->k[0].fail_req = VHOST_SET_MEM_TABLE;
	f->k[0].fail_nth = 1;
	driver_ok(f);
	assert_false(f->net.vhost_pair[0]);
	assert_false(f->tap.running);
	assert_int_equal(f->tap.running_calls, 0);
	assert_int_equal(f->net.vhost_kick[0][0], -1);
	/* TX kick is served here again: an empty queue sends nothing but must not crash. */
	f->vp.vdev.ops->queue_notify(&f->vp.vdev, 1);
	assert_int_equal(f->tap.frames, 0);
	destroy(f);
}

#define F_CTRL_VQ (1ULL << 17)
#define F_MQ (1ULL << 22)

static void put_desc(struct fx *f, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = f->mem.host + RING(q) + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET on control queue 4 (§5.1.6.5.5); returns the ack. */
static uint8_t set_pairs(struct fx *f, uint16_t pairs)
{
	const unsigned cq = 4;
	uint64_t gpa = 0x200000 + 0x1000 * (uint64_t)f->next_desc[cq];
	uint8_t *b = f->mem.host + gpa;
	uint16_t i = f->next_desc[cq] % QSIZE, j = (uint16_t)((i + 1) % QSIZE);

	b[0] = 4;	/* VIRTIO_NET_CTRL_MQ */
	b[1] = 0;	/* VQ_PAIRS_SET */
	memcpy(b + 2, &pairs, 2);
	b[0x800] = 0xee;
	put_desc(f, cq, i, gpa, 4, 1 /* NEXT */, j);
	put_desc(f, cq, j, gpa + 0x800, 1, 2 /* WRITE */, 0);
	f->next_desc[cq] += 2;
	memcpy(f->mem.host + RING(cq) + 0x1000 + 4 + 2 * (f->avail_idx[cq] % QSIZE), &i, 2);
	f->avail_idx[cq]++;
	memcpy(f->mem.host + RING(cq) + 0x1000 + 2, &f->avail_idx[cq], 2);
	f->vp.vdev.ops->queue_notify(&f->vp.vdev, cq);
	return b[0x800];
}

/* Each pair on its own vhost instance and TAP queue; only the pairs in use stay attached. */
static void test_multiqueue_pairs_and_tap_queues(void **state)
{
	struct fx *f = make_pairs(ALL_FEATURES, 2);

	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1 | F_CTRL_VQ | F_MQ;
	driver_ok(f);
	assert_true(f->net.vhost_pair[0] && f->net.vhost_pair[1]);
	assert_int_equal(find(&f->k[0], VHOST_NET_SET_BACKEND, 1)->file.fd, 123);
	assert_int_equal(find(&f->k[1], VHOST_NET_SET_BACKEND, 0)->file.fd, 124);
	assert_true(find(&f->k[1], VHOST_SET_VRING_ADDR, 0)->addr.desc_user_addr ==
		    (uintptr_t)(f->mem.host + RING(2)));
	assert_true(find(&f->k[1], VHOST_SET_VRING_ADDR, 1)->addr.used_user_addr ==
		    (uintptr_t)(f->mem.host + RING(3) + 0x2000));
	/* One pair in use until the driver says more: TAP queue 1 may not take flows. */
	assert_true(f->tap.attached[0]);
	assert_false(f->tap.attached[1]);
	assert_int_equal(set_pairs(f, 2), 0);
	assert_true(f->tap.attached[1]);
	assert_int_equal(set_pairs(f, 1), 0);
	assert_false(f->tap.attached[1]);
	/* The control queue stayed ours (it answered); reset takes both pairs back. */
	bar_write8(f, STATUS_REG, 0);
	assert_false(f->net.vhost_pair[0] || f->net.vhost_pair[1]);
	assert_true(f->tap.attached[0] && f->tap.attached[1]);	/* userspace steers itself */
	destroy(f);

	/* Without VIRTIO_NET_F_MQ only pair 0 exists for the driver (queue 2 is control). */
	f = make_pairs(ALL_FEATURES, 2);
	f->vp.vdev.driver_features = VIRTIO_F_VERSION_1 | F_CTRL_VQ;
	driver_ok(f);
	assert_true(f->net.vhost_pair[0]);
	assert_false(f->net.vhost_pair[1]);
	assert_int_equal(f->k[1].n, 0);
	assert_false(f->tap.attached[1]);
	destroy(f);
}

/* ---- the real kernel, where there is one ------------------------------------- */

/*
 * On a host with vhost_net, the same sequence against /dev/vhost-net itself:
 * a TAP in a private network namespace, "guest RAM" in this process, and this
 * test as the driver.  A frame put on the TX ring comes out of the TAP; a
 * frame sent into the TAP lands in a posted RX buffer behind the header, with
 * the call eventfd signalled.  Skipped (with the reason) where the module or
 * the privileges are missing.
 */
#define KRAM (1u << 20)
#define KQ 16
#define KRING(r) (0x10000u * ((r) + 1))	/* desc; avail +0x1000; used +0x2000 */

static void kpost(uint8_t *ram, unsigned r, uint16_t idx, uint64_t gpa, uint32_t len, bool write)
{
	uint16_t flags = write ? 2 : 0, slot = idx % KQ;

	memcpy(ram + KRING(r) + 16 * slot, &gpa, 8);
	memcpy(ram + KRING(r) + 16 * slot + 8, &len, 4);
	memcpy(ram + KRING(r) + 16 * slot + 12, &flags, 2);
	memcpy(ram + KRING(r) + 0x1000 + 4 + 2 * slot, &slot, 2);
	uint16_t next = (uint16_t)(idx + 1);
	__atomic_store_n((uint16_t *)(ram + KRING(r) + 0x1000 + 2), next, __ATOMIC_RELEASE);
}

static uint16_t kused(uint8_t *ram, unsigned r)
{
	return __atomic_load_n((uint16_t *)(ram + KRING(r) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}

static bool wait_used(uint8_t *ram, unsigned r, uint16_t want)
{
	for (int i = 0; i < 1000 && kused(ram, r) != want; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	return kused(ram, r) == want;
}

static void test_with_the_kernel(void **state)
{
	struct vhost_net v;
	struct ifreq ifr = { 0 };
	struct vhost_ring rings[2];
	char err[256];
	int tap, ps, hdr = 12, vfd = open(VHOST_NET_DEVICE, O_RDWR | O_CLOEXEC);
	uint64_t one = 1;

	if (vfd < 0) {
		fprintf(stderr, "skipped: %s: %s\n", VHOST_NET_DEVICE, strerror(errno));
		skip();
	}
	/* Our own network namespace: the TAP never shows outside this process. */
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "skipped: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		close(vfd);
		skip();
	}
	tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(tap >= 0);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "kvt0");
	assert_int_equal(ioctl(tap, TUNSETIFF, &ifr), 0);
	assert_int_equal(ioctl(tap, TUNSETVNETHDRSZ, &hdr), 0);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(ps >= 0);
	/* No IPv6 autoconfiguration chatter on the TAP while we look for our frames. */
	int sysctl = open("/proc/sys/net/ipv6/conf/kvt0/disable_ipv6", O_WRONLY | O_CLOEXEC);
	if (sysctl >= 0) {
		if (write(sysctl, "1", 1) != 1)
			fprintf(stderr, "note: disable_ipv6: %s\n", strerror(errno));
		close(sysctl);
	}
	assert_int_equal(ioctl(ps, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(ps, SIOCSIFFLAGS, &ifr), 0);
	assert_int_equal(ioctl(ps, SIOCGIFINDEX, &ifr), 0);
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = ifr.ifr_ifindex, .sll_halen = 6 };
	assert_int_equal(bind(ps, (struct sockaddr *)&ll, sizeof(ll)), 0);

	uint8_t *ram = mmap(NULL, KRAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ram != MAP_FAILED);
	struct vhost_region region = { .gpa = 0, .size = KRAM, .host = ram };
	for (unsigned r = 0; r < 2; r++)
		rings[r] = (struct vhost_ring){
			.num = KQ, .base = 0, .desc = ram + KRING(r), .avail = ram + KRING(r) + 0x1000,
			.used = ram + KRING(r) + 0x2000,
			.kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
			.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
		};
	assert_int_equal(vhost_net_open(&v, vfd, NULL, NULL, err, sizeof(err)), 0);
	assert_true(v.features & (1ULL << 32));
	assert_int_equal(vhost_net_start(&v, vhost_net_ack(&v, 1ULL << 32, true), &region, 1, rings,
					 tap, err, sizeof(err)), 0);

	/* TX: header (no offload) + a 60-byte frame, out of the TAP. */
	uint8_t *tx = ram + 0x40000, got[2048];
	memset(tx, 0, 12);
	memset(tx + 12, 0xff, 6);
	memcpy(tx + 18, "\x02\x00\x00\x00\x00\x07\x88\xb5", 8);
	for (int i = 26; i < 72; i++)
		tx[i] = (uint8_t)i;
	kpost(ram, VHOST_NET_TX, 0, 0x40000, 72, false);
	assert_int_equal(write(rings[VHOST_NET_TX].kick_fd, &one, 8), 8);
	struct pollfd p = { .fd = ps, .events = POLLIN };
	ssize_t n = 0;
	for (int tries = 0; tries < 20; tries++) {	/* anything else the stack sent is skipped */
		assert_int_equal(poll(&p, 1, 2000), 1);
		n = recv(ps, got, sizeof(got), 0);
		if (n >= 14 && got[12] == 0x88 && got[13] == 0xb5)
			break;
	}
	assert_int_equal(n, 60);
	assert_memory_equal(got, tx + 12, 60);
	assert_true(wait_used(ram, VHOST_NET_TX, 1));

	/* RX: a posted buffer, then a frame into the TAP from the host side. */
	kpost(ram, VHOST_NET_RX, 0, 0x50000, 2048, true);
	assert_int_equal(write(rings[VHOST_NET_RX].kick_fd, &one, 8), 8);
	uint8_t in[64];
	memset(in, 0xff, 6);
	memcpy(in + 6, "\x02\x00\x00\x00\x00\x08\x88\xb5", 8);
	for (int i = 14; i < 64; i++)
		in[i] = (uint8_t)(i * 5);
	assert_int_equal(sendto(ps, in, sizeof(in), 0, (struct sockaddr *)&ll, sizeof(ll)),
			 sizeof(in));
	assert_true(wait_used(ram, VHOST_NET_RX, 1));
	uint32_t len;
	memcpy(&len, ram + KRING(VHOST_NET_RX) + 0x2000 + 4 + 4, 4);
	assert_int_equal(len, 12 + sizeof(in));
	assert_memory_equal(ram + 0x50000 + 12, in, sizeof(in));
	p = (struct pollfd){ .fd = rings[VHOST_NET_RX].call_fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);

	uint16_t base[2];
	assert_int_equal(vhost_net_stop(&v, base), 0);
	assert_int_equal(base[VHOST_NET_RX], 1);
	assert_int_equal(base[VHOST_NET_TX], 1);
	vhost_net_close(&v);
	for (unsigned r = 0; r < 2; r++) {
		close(rings[r].kick_fd);
		close(rings[r].call_fd);
	}
	close(ps);
	close(tap);
	munmap(ram, KRAM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_reports_the_device_and_errno),
		cmocka_unit_test(test_start_sequence_memory_table_and_rings),
		cmocka_unit_test(test_header_feature_only_without_a_tap_header),
		cmocka_unit_test(test_failed_start_is_undone),
		cmocka_unit_test(test_unserved_ring_features_are_not_offered),
		cmocka_unit_test(test_driver_ok_hands_the_pair_to_the_kernel),
		cmocka_unit_test(test_reset_takes_the_rings_back_first),
		cmocka_unit_test(test_refused_start_leaves_the_pair_in_userspace),
		cmocka_unit_test(test_multiqueue_pairs_and_tap_queues),
		cmocka_unit_test(test_with_the_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
