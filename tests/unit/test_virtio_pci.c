/*
 * virtio/pci.c, the virtio 1.x modern PCI transport (virtio 1.2 §4.1), driven
 * the way a guest driver does: find the structures through the capability
 * list in config space, then read and write them through the BARs with
 * pci_mmio_io.  The device behind it is a dummy that records what the
 * transport asks of it.  vm_fd is -1, so KVM_SIGNAL_MSI and KVM_IRQ_LINE fail
 * and only log; what they would deliver is seen through the ISR and the PBA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fake.h"
#include "virtio/pci.h"
#include "core/iothread.h"

#define RAM_SIZE (1 * MIB)
#define QMAX 64
#define NQUEUES 2
#define DEV_FEATURES ((1ULL << 0) | (1ULL << 5) | (1ULL << 40))
#define CONFIG_SIZE 8

/* Common configuration layout (§4.1.4.3). */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_MSIX 0x10
#define C_NUMQ 0x12
#define C_STATUS 0x14
#define C_CFGGEN 0x15
#define C_Q_SELECT 0x16
#define C_Q_SIZE 0x18
#define C_Q_MSIX 0x1a
#define C_Q_ENABLE 0x1c
#define C_Q_NOFF 0x1e
#define C_Q_DESC 0x20
#define C_Q_AVAIL 0x28
#define C_Q_USED 0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define NO_VECTOR 0xffff

struct dummy {
	int notifies;
	unsigned last_q;
	int resets;
	int config_reads, config_writes;
	uint32_t last_off, last_len;
	uint8_t config[CONFIG_SIZE];
	bool process;		/* run virtio_process_queue on notify */
	int handled;
};

static int dummy_handle(struct virtio_device *vdev, struct vq_request *req)
{
	struct dummy *d = vdev->opaque;

	d->handled++;
	return (int)req->in_len;
}

static void dummy_notify(struct virtio_device *vdev, unsigned q)
{
	struct dummy *d = vdev->opaque;

	d->notifies++;
	d->last_q = q;
	if (d->process)
		virtio_process_queue(vdev, q, dummy_handle);
}

static void dummy_reset(struct virtio_device *vdev)
{
	((struct dummy *)vdev->opaque)->resets++;
}

static void dummy_read_config(struct virtio_device *vdev, uint32_t off, void *buf, uint32_t len)
{
	struct dummy *d = vdev->opaque;

	d->config_reads++;
	d->last_off = off;
	d->last_len = len;
	memcpy(buf, d->config + off, len);
}

static void dummy_write_config(struct virtio_device *vdev, uint32_t off, const void *buf,
			       uint32_t len)
{
	struct dummy *d = vdev->opaque;

	d->config_writes++;
	d->last_off = off;
	d->last_len = len;
	memcpy(d->config + off, buf, len);
}

static const struct virtio_device_ops dummy_ops = {
	.name = "virtio-dummy",
	.device_id = 0x1e,
	.pci_class = 0x00ff00,
	.features = DEV_FEATURES,
	.num_queues = NQUEUES,
	.queue_max = QMAX,
	.config_size = CONFIG_SIZE,
	.read_config = dummy_read_config,
	.write_config = dummy_write_config,
	.queue_notify = dummy_notify,
	.reset = dummy_reset,
};

struct fx {
	struct guest_memory mem;
	struct pci_bus bus;
	struct virtio_pci vp;
	struct dummy dev;
	unsigned slot;
	/* Where the guest found things (GPA). */
	uint64_t common, isr, device, notify, msix_table, msix_pba;
	uint32_t notify_mult;
	uint8_t msix_cap;
	uint8_t pci_cfg;	/* the PCI_CFG capability's config offset */
};

/* ---- config space, as a guest reaches it through 0xcf8/0xcfc ----------------- */

static uint32_t cfg_read(struct fx *f, unsigned reg, unsigned size)
{
	uint32_t a = 0x80000000u | f->slot << 11 | (reg & 0xfc), v = 0;
	uint8_t b[4];

	memcpy(b, &a, 4);
	pci_config_address_io(&f->bus, 0, true, b, 4);
	pci_config_data_io(&f->bus, reg & 3, false, b, size);
	memcpy(&v, b, size);
	return v;
}

static void cfg_write(struct fx *f, unsigned reg, uint32_t v, unsigned size)
{
	uint32_t a = 0x80000000u | f->slot << 11 | (reg & 0xfc);
	uint8_t b[4];

	memcpy(b, &a, 4);
	pci_config_address_io(&f->bus, 0, true, b, 4);
	memcpy(b, &v, 4);
	pci_config_data_io(&f->bus, reg & 3, true, b, size);
}

/* ---- BAR accesses ------------------------------------------------------------ */

static uint64_t mmio_read(struct fx *f, uint64_t gpa, unsigned size)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0xcc, sizeof(b));
	pci_mmio_io(&f->bus, gpa - PCI_MMIO_WINDOW_BASE, false, b, size);
	memcpy(&v, b, size);
	return v;
}

static void mmio_write(struct fx *f, uint64_t gpa, uint64_t v, unsigned size)
{
	uint8_t b[8];

	memcpy(b, &v, 8);
	pci_mmio_io(&f->bus, gpa - PCI_MMIO_WINDOW_BASE, true, b, size);
}

static uint64_t common_read(struct fx *f, unsigned off, unsigned size)
{
	return mmio_read(f, f->common + off, size);
}

static void common_write(struct fx *f, unsigned off, uint64_t v, unsigned size)
{
	mmio_write(f, f->common + off, v, size);
}

static uint64_t bar_address(struct fx *f, unsigned bar)
{
	return cfg_read(f, PCI_BAR0 + 4 * bar, 4) & ~0xfu;
}

/* Walks the capability list as a driver does (§4.1.4) and records the structures. */
static void discover(struct fx *f)
{
	unsigned seen = 0, guard = 0;

	for (unsigned p = cfg_read(f, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(f, p + 1, 1)) {
		assert_true(++guard < 48);
		uint8_t id = (uint8_t)cfg_read(f, p, 1);
		if (id == PCI_CAP_ID_MSIX) {
			uint32_t table = cfg_read(f, p + 4, 4), pba = cfg_read(f, p + 8, 4);
			f->msix_cap = (uint8_t)p;
			f->msix_table = bar_address(f, table & 7) + (table & ~7u);
			f->msix_pba = bar_address(f, pba & 7) + (pba & ~7u);
			continue;
		}
		if (id != PCI_CAP_ID_VNDR)
			continue;
		uint8_t type = (uint8_t)cfg_read(f, p + 3, 1), bar = (uint8_t)cfg_read(f, p + 4, 1);
		if (type == 5) {	/* PCI_CFG: a window, not a structure in a BAR */
			assert_int_equal(cfg_read(f, p + 2, 1), 20);
			f->pci_cfg = (uint8_t)p;
			seen |= 1u << type;
			continue;
		}
		uint64_t at = bar_address(f, bar) + cfg_read(f, p + 8, 4);
		uint32_t len = cfg_read(f, p + 12, 4);
		assert_true(len > 0);
		switch (type) {
		case 1:
			f->common = at;
			assert_true(len >= 0x38);
			break;
		case 2:
			f->notify = at;
			assert_int_equal(cfg_read(f, p + 2, 1), 20);	/* cap_len with multiplier */
			f->notify_mult = cfg_read(f, p + 16, 4);
			break;
		case 3: f->isr = at; break;
		case 4:
			f->device = at;
			assert_true(len >= CONFIG_SIZE);
			break;
		}
		seen |= 1u << type;
	}
	assert_int_equal(seen, 0x3e);	/* common, notify, ISR, device, PCI_CFG */
	assert_int_not_equal(f->msix_cap, 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fake_memory_init(&f->mem, RAM_SIZE) < 0 || pci_bus_init(&f->bus) < 0)
		return -1;
	if (virtio_pci_create(&f->vp, &f->bus, -1, &dummy_ops, &f->dev, 0, &f->mem, -1, NULL) < 0)
		return -1;
	f->slot = f->vp.pci.slot;
	discover(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_pci_destroy(&f->vp);
	pci_bus_destroy(&f->bus);
	fake_memory_free(&f->mem);
	free(f);
	return 0;
}

static uint8_t status(struct fx *f)
{
	return (uint8_t)common_read(f, C_STATUS, 1);
}

static void negotiate(struct fx *f, uint64_t features)
{
	common_write(f, C_STATUS, 0, 1);
	common_write(f, C_STATUS, S_ACK, 1);
	common_write(f, C_STATUS, S_ACK | S_DRIVER, 1);
	common_write(f, C_GFSELECT, 0, 4);
	common_write(f, C_GF, (uint32_t)features, 4);
	common_write(f, C_GFSELECT, 1, 4);
	common_write(f, C_GF, features >> 32, 4);
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK, 1);
}

#define DESC(q) (0x10000 + 0x4000 * (q))
#define AVAIL(q) (DESC(q) + 0x1000)
#define USED(q) (DESC(q) + 0x2000)

static void setup_queue(struct fx *f, unsigned q, uint16_t size)
{
	common_write(f, C_Q_SELECT, q, 2);
	common_write(f, C_Q_SIZE, size, 2);
	common_write(f, C_Q_DESC, DESC(q), 4);
	common_write(f, C_Q_DESC + 4, 0, 4);
	common_write(f, C_Q_AVAIL, AVAIL(q), 4);
	common_write(f, C_Q_AVAIL + 4, 0, 4);
	common_write(f, C_Q_USED, USED(q), 4);
	common_write(f, C_Q_USED + 4, 0, 4);
	common_write(f, C_Q_ENABLE, 1, 2);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 1);
}

/* The driver's whole initialisation (§3.1.1) with every queue. */
static void driver_up(struct fx *f)
{
	negotiate(f, VIRTIO_F_VERSION_1 | DEV_FEATURES);
	assert_true(status(f) & S_FEATURES_OK);
	for (unsigned q = 0; q < NQUEUES; q++)
		setup_queue(f, q, 16);
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, 1);
}

static void kick(struct fx *f, unsigned q)
{
	common_write(f, C_Q_SELECT, q, 2);
	uint16_t off = (uint16_t)common_read(f, C_Q_NOFF, 2);
	mmio_write(f, f->notify + (uint64_t)off * f->notify_mult, q, 2);
}

/* One readable and one writable buffer on queue q, made available. */
static void post_request(struct fx *f, unsigned q, uint16_t avail_idx)
{
	uint8_t *ram = f->mem.host;
	struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d[2] = {
		{ 0x80000, 16, 1, 1 },	/* readable, NEXT -> 1 */
		{ 0x81000, 8, 2, 0 },	/* writable */
	};
	uint16_t head = 0, idx = (uint16_t)(avail_idx + 1);

	memcpy(ram + DESC(q), d, sizeof(d));
	memcpy(ram + AVAIL(q) + 4 + 2 * (avail_idx % 16), &head, 2);
	memcpy(ram + AVAIL(q) + 2, &idx, 2);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	uint16_t v;

	memcpy(&v, f->mem.host + USED(q) + 2, 2);
	return v;
}

/* ---- identity and capabilities ------------------------------------------------ */

static void test_identity(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0x1040 + 0x1e);
	assert_int_equal(cfg_read(f, PCI_REVISION_ID, 1), 1);	/* modern only (§4.1.2.1) */
	assert_int_equal(cfg_read(f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(f, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_read(f, PCI_CLASS_DEVICE, 2), 0x00ff);
	/* Every structure lives in a BAR that decodes. */
	assert_int_not_equal(f->common, 0);
	assert_int_not_equal(f->notify_mult, 0);
	assert_int_equal(common_read(f, C_NUMQ, 2), NQUEUES);
}

static void test_msix_capability(void **state)
{
	struct fx *f = *state;
	uint16_t ctrl = (uint16_t)cfg_read(f, f->msix_cap + 2, 2);

	/* Table size is N - 1: a vector per queue and one for configuration changes. */
	assert_int_equal(ctrl & 0x7ff, VIRTIO_PCI_MSIX_VECTORS - 1);
	assert_int_equal(ctrl & 0xc000, 0);
	/* Only enable and function mask are writable. */
	cfg_write(f, f->msix_cap + 2, 0xffff, 2);
	assert_int_equal(cfg_read(f, f->msix_cap + 2, 2), 0xc000 | (VIRTIO_PCI_MSIX_VECTORS - 1));
	cfg_write(f, f->msix_cap + 4, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, f->msix_cap + 4, 4), 1);	/* table: BAR 1, offset 0 */
}

/* ---- features ------------------------------------------------------------------- */

static void test_device_features(void **state)
{
	struct fx *f = *state;
	uint64_t lo, hi;

	common_write(f, C_DFSELECT, 0, 4);
	lo = common_read(f, C_DF, 4);
	common_write(f, C_DFSELECT, 1, 4);
	hi = common_read(f, C_DF, 4);
	assert_int_equal(common_read(f, C_DFSELECT, 4), 1);
	/* VERSION_1 (bit 32) is bit 0 of the second word. */
	assert_true(hi & 1);
	assert_true(hi & (1u << 8));	/* the device's bit 40 */
	assert_true(lo & 1);
	assert_true(lo & (1u << 5));
	assert_true(lo & (1u << 28));	/* INDIRECT_DESC */
	assert_true(lo & (1u << 29));	/* EVENT_IDX */
	assert_false(lo & (1u << 3));
	common_write(f, C_DFSELECT, 2, 4);
	assert_int_equal(common_read(f, C_DF, 4), 0);
	common_write(f, C_DFSELECT, 0xffffffff, 4);
	assert_int_equal(common_read(f, C_DF, 4), 0);
	/* The device's offer is read-only. */
	common_write(f, C_DFSELECT, 0, 4);
	common_write(f, C_DF, 0, 4);
	assert_int_equal(common_read(f, C_DF, 4), lo);
}

static void test_features_ok_accepted(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | (1ULL << 5));
	assert_int_equal(status(f), S_ACK | S_DRIVER | S_FEATURES_OK);
	common_write(f, C_GFSELECT, 0, 4);
	assert_int_equal(common_read(f, C_GF, 4), (1u << 29) | (1u << 5));
	common_write(f, C_GFSELECT, 1, 4);
	assert_int_equal(common_read(f, C_GF, 4), 1);
	assert_true(f->vp.vdev.vqs[0].event_idx);
	/* Once FEATURES_OK stands, the driver's features are fixed. */
	common_write(f, C_GFSELECT, 0, 4);
	common_write(f, C_GF, 0xffffffff, 4);
	assert_int_equal(common_read(f, C_GF, 4), (1u << 29) | (1u << 5));
	assert_int_equal(f->vp.vdev.driver_features,
			 VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | (1ULL << 5));
}

static void test_features_ok_refused_unoffered(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1 | (1ULL << 3));
	assert_false(status(f) & S_FEATURES_OK);
	assert_int_equal(status(f), S_ACK | S_DRIVER);
	/* A high unoffered bit counts too. */
	negotiate(f, VIRTIO_F_VERSION_1 | (1ULL << 63));
	assert_false(status(f) & S_FEATURES_OK);
	negotiate(f, VIRTIO_F_VERSION_1 | DEV_FEATURES | (1ULL << 33));
	assert_false(status(f) & S_FEATURES_OK);
}

static void test_features_ok_refused_without_version_1(void **state)
{
	struct fx *f = *state;

	/* A legacy driver: everything offered but VERSION_1 (§6.1). */
	negotiate(f, DEV_FEATURES | VIRTIO_F_INDIRECT_DESC);
	assert_false(status(f) & S_FEATURES_OK);
	negotiate(f, 0);
	assert_false(status(f) & S_FEATURES_OK);
	/* And the same driver, fixed, succeeds after a reset. */
	negotiate(f, VIRTIO_F_VERSION_1);
	assert_true(status(f) & S_FEATURES_OK);
}

static void test_driver_feature_select_out_of_range(void **state)
{
	struct fx *f = *state;

	common_write(f, C_STATUS, S_ACK | S_DRIVER, 1);
	common_write(f, C_GFSELECT, 2, 4);
	common_write(f, C_GF, 0xffffffff, 4);
	assert_int_equal(common_read(f, C_GF, 4), 0);
	assert_int_equal(f->vp.vdev.driver_features, 0);
}

/* ---- queues ------------------------------------------------------------------- */

static void test_queue_size(void **state)
{
	struct fx *f = *state;

	for (unsigned q = 0; q < NQUEUES; q++) {
		common_write(f, C_Q_SELECT, q, 2);
		assert_int_equal(common_read(f, C_Q_SELECT, 2), q);
		assert_int_equal(common_read(f, C_Q_SIZE, 2), QMAX);
		assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
		assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
	}
	common_write(f, C_Q_SELECT, 0, 2);
	common_write(f, C_Q_SIZE, 32, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 32);
	common_write(f, C_Q_SIZE, 48, 2);	/* not a power of two */
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 32);
	common_write(f, C_Q_SIZE, 2 * QMAX, 2);	/* beyond the maximum */
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 32);
	common_write(f, C_Q_SIZE, 0, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 32);
	common_write(f, C_Q_SIZE, 0x8000, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 32);
	common_write(f, C_Q_SIZE, 1, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 1);
	common_write(f, C_Q_SIZE, QMAX, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), QMAX);
	/* The other queue kept its own size. */
	common_write(f, C_Q_SELECT, 1, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), QMAX);

	/* A queue that does not exist reads size 0 and ignores writes (§4.1.4.3). */
	common_write(f, C_Q_SELECT, NQUEUES, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 0);
	common_write(f, C_Q_SIZE, 16, 2);
	common_write(f, C_Q_ENABLE, 1, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 0);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
	common_write(f, C_Q_SELECT, 0xffff, 2);
	common_write(f, C_Q_DESC, 0x1000, 4);
	assert_int_equal(common_read(f, C_Q_DESC, 4), 0);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
}

static void test_queue_addresses_in_halves(void **state)
{
	struct fx *f = *state;

	common_write(f, C_Q_SELECT, 1, 2);
	common_write(f, C_Q_DESC, 0x12345000, 4);
	common_write(f, C_Q_DESC + 4, 0x9, 4);
	common_write(f, C_Q_AVAIL + 4, 0xa, 4);	/* high half first */
	common_write(f, C_Q_AVAIL, 0x23456000, 4);
	common_write(f, C_Q_USED, 0x34567000, 4);
	common_write(f, C_Q_USED + 4, 0xb, 4);
	assert_int_equal(common_read(f, C_Q_DESC, 4), 0x12345000);
	assert_int_equal(common_read(f, C_Q_DESC + 4, 4), 0x9);
	assert_int_equal(common_read(f, C_Q_AVAIL, 4), 0x23456000);
	assert_int_equal(common_read(f, C_Q_AVAIL + 4, 4), 0xa);
	assert_int_equal(common_read(f, C_Q_USED + 4, 4), 0xb);
	assert_int_equal(f->vp.vdev.vqs[1].desc_gpa, 0x912345000ULL);
	assert_int_equal(f->vp.vdev.vqs[1].avail_gpa, 0xa23456000ULL);
	assert_int_equal(f->vp.vdev.vqs[1].used_gpa, 0xb34567000ULL);
	/* Rewriting one half leaves the other. */
	common_write(f, C_Q_DESC, 0x1000, 4);
	assert_int_equal(f->vp.vdev.vqs[1].desc_gpa, 0x900001000ULL);
	common_write(f, C_Q_DESC + 4, 0, 4);
	assert_int_equal(f->vp.vdev.vqs[1].desc_gpa, 0x1000);
	/* One 64-bit access works as well. */
	common_write(f, C_Q_USED, 0x0000000c00002000ULL, 8);
	assert_int_equal(f->vp.vdev.vqs[1].used_gpa, 0xc00002000ULL);
	assert_int_equal(common_read(f, C_Q_USED, 8), 0xc00002000ULL);
	/* Queue 0 untouched. */
	assert_int_equal(f->vp.vdev.vqs[0].desc_gpa, 0);
}

static void test_queue_enable_good_rings(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1);
	setup_queue(f, 0, 16);
	assert_true(f->vp.vdev.vqs[0].ready);
	assert_false(status(f) & S_NEEDS_RESET);
	/* Enabled: the queue's registers are fixed now. */
	common_write(f, C_Q_SIZE, 32, 2);
	common_write(f, C_Q_DESC, 0x40000, 4);
	common_write(f, C_Q_MSIX, 1, 2);
	assert_int_equal(common_read(f, C_Q_SIZE, 2), 16);
	assert_int_equal(common_read(f, C_Q_DESC, 4), DESC(0));
	assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
	/* Writing 0 to queue_enable does not disable it (only reset does). */
	common_write(f, C_Q_ENABLE, 0, 2);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 1);
}

static void test_queue_enable_rings_outside_ram(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1);
	common_write(f, C_Q_SELECT, 0, 2);
	common_write(f, C_Q_DESC, DESC(0), 4);
	common_write(f, C_Q_AVAIL, AVAIL(0), 4);
	common_write(f, C_Q_USED, RAM_SIZE - 16, 4);	/* 6 + 8 * 64 bytes do not fit */
	common_write(f, C_Q_ENABLE, 1, 2);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
	assert_true(status(f) & S_NEEDS_RESET);
	assert_true(status(f) & S_FEATURES_OK);
	/* The driver's later status writes keep NEEDS_RESET until a reset. */
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, 1);
	assert_true(status(f) & S_NEEDS_RESET);
	/* Without MSI-X, the configuration-change bit of the ISR tells the driver. */
	assert_int_equal(mmio_read(f, f->isr, 1) & 2, 2);
	common_write(f, C_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
}

static void test_queue_enable_high_half_outside_ram(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1);
	common_write(f, C_Q_SELECT, 1, 2);
	common_write(f, C_Q_SIZE, 16, 2);
	common_write(f, C_Q_DESC, DESC(1), 4);
	common_write(f, C_Q_DESC + 4, 1, 4);	/* 4 GiB up: past this guest's RAM */
	common_write(f, C_Q_AVAIL, AVAIL(1), 4);
	common_write(f, C_Q_USED, USED(1), 4);
	common_write(f, C_Q_ENABLE, 1, 2);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
	assert_true(status(f) & S_NEEDS_RESET);
}

static void test_reset_clears_everything(void **state)
{
	struct fx *f = *state;

	driver_up(f);
	common_write(f, C_MSIX, 0, 2);
	assert_int_equal(status(f), S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	f->vp.vdev.vqs[0].last_avail = 5;	/* as if requests had been taken */
	f->vp.vdev.vqs[0].used_idx = 5;
	int resets = f->dev.resets;
	common_write(f, C_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
	assert_int_equal(f->dev.resets, resets + 1);
	assert_int_equal(f->vp.vdev.driver_features, 0);
	assert_int_equal(common_read(f, C_MSIX, 2), NO_VECTOR);
	common_write(f, C_GFSELECT, 0, 4);
	assert_int_equal(common_read(f, C_GF, 4), 0);
	common_write(f, C_GFSELECT, 1, 4);
	assert_int_equal(common_read(f, C_GF, 4), 0);
	for (unsigned q = 0; q < NQUEUES; q++) {
		common_write(f, C_Q_SELECT, q, 2);
		assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
		assert_int_equal(common_read(f, C_Q_SIZE, 2), QMAX);
		assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
		assert_int_equal(common_read(f, C_Q_DESC, 8), 0);
		assert_int_equal(common_read(f, C_Q_AVAIL, 8), 0);
		assert_int_equal(common_read(f, C_Q_USED, 8), 0);
		assert_int_equal(f->vp.vdev.vqs[q].last_avail, 0);
		assert_int_equal(f->vp.vdev.vqs[q].used_idx, 0);
		assert_false(f->vp.vdev.vqs[q].event_idx);
	}
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
	/* Notifications after a reset reach nothing. */
	kick(f, 0);
	assert_int_equal(f->dev.notifies, 0);
	/* And the driver can start again. */
	driver_up(f);
	kick(f, 1);
	assert_int_equal(f->dev.notifies, 1);
}

static void test_reset_clears_needs_reset(void **state)
{
	struct fx *f = *state;

	driver_up(f);
	virtio_needs_reset(&f->vp.vdev, "test");
	assert_true(status(f) & S_NEEDS_RESET);
	/* Every queue stops. */
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 0);
	kick(f, 0);
	assert_int_equal(f->dev.notifies, 0);
	common_write(f, C_STATUS, 0, 1);
	assert_int_equal(status(f), 0);
	driver_up(f);
	assert_false(status(f) & S_NEEDS_RESET);
}

/* ---- notifications ---------------------------------------------------------------- */

static void test_notify_needs_driver_ok(void **state)
{
	struct fx *f = *state;

	negotiate(f, VIRTIO_F_VERSION_1);
	setup_queue(f, 0, 16);
	kick(f, 0);
	assert_int_equal(f->dev.notifies, 0);
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, 1);
	kick(f, 0);
	assert_int_equal(f->dev.notifies, 1);
	assert_int_equal(f->dev.last_q, 0);
	/* Queue 1 is not enabled. */
	kick(f, 1);
	assert_int_equal(f->dev.notifies, 1);
	/* A queue beyond num_queues, and the rest of the notify region. */
	mmio_write(f, f->notify + NQUEUES * f->notify_mult, 0, 2);
	mmio_write(f, f->notify + 0xffc, 0, 4);
	assert_int_equal(f->dev.notifies, 1);
	/* Reads of the notify region do not notify. */
	mmio_read(f, f->notify, 2);
	assert_int_equal(f->dev.notifies, 1);
}

static void test_notify_each_queue(void **state)
{
	struct fx *f = *state;

	driver_up(f);
	for (unsigned q = 0; q < NQUEUES; q++) {
		common_write(f, C_Q_SELECT, q, 2);
		assert_int_equal(common_read(f, C_Q_NOFF, 2), q);
		kick(f, q);
		assert_int_equal(f->dev.last_q, q);
	}
	assert_int_equal(f->dev.notifies, NQUEUES);
}

static void test_notify_processes_queue(void **state)
{
	struct fx *f = *state;

	f->dev.process = true;
	driver_up(f);
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(f->dev.handled, 1);
	assert_int_equal(used_idx(f, 0), 1);
	/* No MSI-X: the used-buffer interrupt sets ISR bit 0, and reading clears it (§4.1.4.5). */
	assert_true(f->vp.intx_level);
	assert_int_equal(mmio_read(f, f->isr, 1), 1);
	assert_false(f->vp.intx_level);
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
	assert_int_equal(mmio_read(f, f->isr, 4), 0);
}

static void test_notify_bad_chain_needs_reset(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = f->mem.host;
	uint64_t bad[2] = { RAM_SIZE, 16 };
	uint16_t idx = 1;

	f->dev.process = true;
	driver_up(f);
	memcpy(ram + DESC(0), bad, 16);
	memcpy(ram + AVAIL(0) + 2, &idx, 2);
	kick(f, 0);
	assert_int_equal(f->dev.handled, 0);
	assert_true(status(f) & S_NEEDS_RESET);
	assert_int_equal(used_idx(f, 0), 0);
	assert_int_equal(mmio_read(f, f->isr, 1), 2);	/* configuration change */
	/* The queue is dead until the driver resets the device. */
	kick(f, 0);
	assert_int_equal(f->dev.notifies, 1);
}

/*
 * DEVICE_NEEDS_RESET is the device's to set (§2.1.2: the driver MUST NOT):
 * a driver writing it gets neither the bit nor a device that stops, with
 * its queues still enabled, halfway.
 */
static void test_driver_cannot_set_needs_reset(void **state)
{
	struct fx *f = *state;

	f->dev.process = true;
	driver_up(f);
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK | S_NEEDS_RESET, 1);
	assert_false(status(f) & S_NEEDS_RESET);
	assert_int_equal(common_read(f, C_Q_ENABLE, 2), 1);
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(f->dev.handled, 1);
	assert_int_equal(used_idx(f, 0), 1);
}

static void test_intx_disable(void **state)
{
	struct fx *f = *state;

	f->dev.process = true;
	driver_up(f);
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE, 2);
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(used_idx(f, 0), 1);
	/* The ISR still says why; the line stays low. */
	assert_false(f->vp.intx_level);
	assert_int_equal(mmio_read(f, f->isr, 1), 1);
}

static void test_isr_writes_ignored(void **state)
{
	struct fx *f = *state;

	mmio_write(f, f->isr, 3, 1);
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
}

/* ---- device configuration -------------------------------------------------------- */

static void test_device_config(void **state)
{
	struct fx *f = *state;

	memcpy(f->dev.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_int_equal(mmio_read(f, f->device + 4, 4), 0x88776655);
	assert_int_equal(f->dev.last_off, 4);
	assert_int_equal(f->dev.last_len, 4);
	assert_int_equal(mmio_read(f, f->device + 7, 1), 0x88);
	mmio_write(f, f->device + 2, 0xbeef, 2);
	assert_int_equal(f->dev.config_writes, 1);
	assert_int_equal(f->dev.config[2], 0xef);
	assert_int_equal(f->dev.config[3], 0xbe);
	/* Past config_size: zeros, and the device is not asked. */
	int reads = f->dev.config_reads;
	assert_int_equal(mmio_read(f, f->device + 6, 4), 0);
	assert_int_equal(mmio_read(f, f->device + CONFIG_SIZE, 1), 0);
	assert_int_equal(mmio_read(f, f->device + 0xffc, 4), 0);
	assert_int_equal(f->dev.config_reads, reads);
	mmio_write(f, f->device + 6, 0xffffffff, 4);
	assert_int_equal(f->dev.config_writes, 1);
}

static void test_common_cfg_edges(void **state)
{
	struct fx *f = *state;

	/* Past the common structure: zeros; writes do nothing. */
	assert_int_equal(common_read(f, 0x38, 4), 0);
	assert_int_equal(common_read(f, 0xffc, 4), 0);
	common_write(f, 0x40, 0xffffffff, 4);
	assert_int_equal(status(f), 0);
	/* num_queues is read-only. */
	common_write(f, C_NUMQ, 7, 2);
	assert_int_equal(common_read(f, C_NUMQ, 2), NQUEUES);
	assert_int_equal(common_read(f, C_CFGGEN, 1), 0);
	/* Oversized accesses are dropped, not overflowed. */
	uint8_t big[16];
	memset(big, 0x5a, sizeof(big));
	pci_mmio_io(&f->bus, f->common + C_STATUS - PCI_MMIO_WINDOW_BASE, true, big, 16);
	assert_int_equal(status(f), 0);
}

/* ---- MSI-X -------------------------------------------------------------------- */

static uint32_t msix_read(struct fx *f, unsigned off)
{
	return (uint32_t)mmio_read(f, f->msix_table + off, 4);
}

static void msix_write(struct fx *f, unsigned off, uint32_t v)
{
	mmio_write(f, f->msix_table + off, v, 4);
}

static uint32_t pba(struct fx *f)
{
	return (uint32_t)mmio_read(f, f->msix_pba, 4);
}

static void msix_enable(struct fx *f, bool function_mask)
{
	cfg_write(f, f->msix_cap + 2, 0x8000 | (function_mask ? 0x4000 : 0), 2);
}

static void test_msix_table(void **state)
{
	struct fx *f = *state;

	/* Entries start masked (PCI 3.0 §6.8.2.9). */
	for (unsigned v = 0; v < VIRTIO_PCI_MSIX_VECTORS; v++)
		assert_int_equal(msix_read(f, 16 * v + 12) & 1, 1);
	for (unsigned v = 0; v < VIRTIO_PCI_MSIX_VECTORS; v++) {
		msix_write(f, 16 * v + 0, 0xfee00000 | v << 12);
		msix_write(f, 16 * v + 4, v);
		msix_write(f, 16 * v + 8, 0x4000 + v);
	}
	for (unsigned v = 0; v < VIRTIO_PCI_MSIX_VECTORS; v++) {
		assert_int_equal(msix_read(f, 16 * v + 0), 0xfee00000 | v << 12);
		assert_int_equal(msix_read(f, 16 * v + 4), v);
		assert_int_equal(msix_read(f, 16 * v + 8), 0x4000 + v);
		assert_int_equal(f->vp.msix[v].data, 0x4000 + v);
	}
	/* Past the table: reads zero, writes vanish. */
	msix_write(f, 16 * VIRTIO_PCI_MSIX_VECTORS, 0x12345678);
	assert_int_equal(msix_read(f, 16 * VIRTIO_PCI_MSIX_VECTORS), 0);
	/* Only aligned dwords (PCI 3.0 §6.8.2): others read all ones and write nothing. */
	assert_int_equal(mmio_read(f, f->msix_table + 8, 2), 0xffff);
	assert_int_equal(mmio_read(f, f->msix_table + 9, 1), 0xff);
	assert_int_equal(mmio_read(f, f->msix_table + 2, 4), 0xffffffff);
	mmio_write(f, f->msix_table + 8, 0, 2);
	mmio_write(f, f->msix_table + 6, 0, 4);
	assert_int_equal(msix_read(f, 8), 0x4000);
	assert_int_equal(msix_read(f, 4), 0);
	/* The PBA is read-only. */
	mmio_write(f, f->msix_pba, 0xffffffff, 4);
	assert_int_equal(pba(f), 0);
	assert_int_equal(mmio_read(f, f->msix_pba + 8, 4), 0);
}

static void test_msix_vectors_in_common_cfg(void **state)
{
	struct fx *f = *state;

	common_write(f, C_Q_SELECT, 0, 2);
	common_write(f, C_Q_MSIX, 1, 2);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), 1);
	common_write(f, C_Q_MSIX, VIRTIO_PCI_MSIX_VECTORS - 1, 2);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), VIRTIO_PCI_MSIX_VECTORS - 1);
	/* A vector the table does not have reads back NO_VECTOR (§4.1.4.3.1). */
	common_write(f, C_Q_MSIX, VIRTIO_PCI_MSIX_VECTORS, 2);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
	common_write(f, C_Q_MSIX, NO_VECTOR, 2);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), NO_VECTOR);
	common_write(f, C_MSIX, 0, 2);
	assert_int_equal(common_read(f, C_MSIX, 2), 0);
	common_write(f, C_MSIX, NO_VECTOR, 2);
	assert_int_equal(common_read(f, C_MSIX, 2), NO_VECTOR);
}

/* Sets queue 0 to vector 1 and the configuration vector to 0, then brings the driver up. */
static void driver_up_msix(struct fx *f)
{
	f->dev.process = true;
	negotiate(f, VIRTIO_F_VERSION_1);
	common_write(f, C_MSIX, 0, 2);
	common_write(f, C_Q_SELECT, 0, 2);
	common_write(f, C_Q_MSIX, 1, 2);
	assert_int_equal(common_read(f, C_Q_MSIX, 2), 1);
	setup_queue(f, 0, 16);
	common_write(f, C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, 1);
}

static void test_msix_pending_while_masked(void **state)
{
	struct fx *f = *state;

	msix_enable(f, false);
	driver_up_msix(f);
	msix_write(f, 16 * 1 + 0, 0xfee00000);
	msix_write(f, 16 * 1 + 8, 0x41);
	/* Vector 1 is still masked: the interrupt waits in the PBA. */
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(used_idx(f, 0), 1);
	assert_int_equal(pba(f), 1u << 1);
	/* With MSI-X on, neither the ISR nor INTx is used. */
	assert_false(f->vp.intx_level);
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
	/* Unmasking delivers it and clears the pending bit. */
	msix_write(f, 16 * 1 + 12, 0);
	assert_int_equal(pba(f), 0);
	/* Unmasked: the next one goes straight out. */
	post_request(f, 0, 1);
	kick(f, 0);
	assert_int_equal(used_idx(f, 0), 2);
	assert_int_equal(pba(f), 0);
	/* Masked again: pending again; vector 0 (configuration) unaffected. */
	msix_write(f, 16 * 1 + 12, 1);
	post_request(f, 0, 2);
	kick(f, 0);
	assert_int_equal(pba(f), 1u << 1);
}

static void test_msix_function_mask(void **state)
{
	struct fx *f = *state;

	msix_enable(f, true);
	driver_up_msix(f);
	msix_write(f, 16 * 1 + 12, 0);	/* the entry itself is unmasked */
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(pba(f), 1u << 1);
}

static void test_msix_config_vector(void **state)
{
	struct fx *f = *state;

	msix_enable(f, false);
	driver_up_msix(f);
	/* NEEDS_RESET signals the configuration vector (0), masked: pending. */
	virtio_needs_reset(&f->vp.vdev, "test");
	assert_int_equal(pba(f), 1u << 0);
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
	msix_write(f, 12, 0);
	assert_int_equal(pba(f), 0);
}

static void test_msix_no_vector(void **state)
{
	struct fx *f = *state;

	/* MSI-X on, but the queue has no vector: nothing is raised anywhere (§4.1.5.1.2.1). */
	msix_enable(f, false);
	f->dev.process = true;
	driver_up(f);
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(used_idx(f, 0), 1);
	assert_int_equal(pba(f), 0);
	assert_int_equal(mmio_read(f, f->isr, 1), 0);
	assert_false(f->vp.intx_level);
}

static void test_msix_disabled_uses_isr(void **state)
{
	struct fx *f = *state;

	/* Vectors programmed, but MSI-X off in the capability: INTx and the ISR. */
	driver_up_msix(f);
	post_request(f, 0, 0);
	kick(f, 0);
	assert_int_equal(pba(f), 0);
	assert_true(f->vp.intx_level);
	assert_int_equal(mmio_read(f, f->isr, 1), 1);
}

static void test_two_devices(void **state)
{
	struct fx *f = *state;
	struct virtio_pci *other = calloc(1, sizeof(*other));
	struct dummy d2 = { 0 };

	assert_non_null(other);
	assert_int_equal(virtio_pci_create(other, &f->bus, -1, &dummy_ops, &d2, 0, &f->mem, -1, NULL), 0);
	assert_int_not_equal(other->pci.slot, f->slot);
	/* Its BARs do not overlap ours: our status write does not reach it. */
	common_write(f, C_STATUS, S_ACK, 1);
	assert_int_equal(other->vdev.status, 0);
	assert_int_equal(f->vp.vdev.status, S_ACK);
	virtio_pci_destroy(other);
	free(other);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- doorbells (KVM_IOEVENTFD) follow the BAR -------------------------------- */

/* 0 if KVM took a 2-byte ioeventfd at addr, else -errno (EEXIST: one is there). */
static int try_doorbell(int vm_fd, uint64_t addr)
{
	int fd = eventfd(0, EFD_CLOEXEC);
	struct kvm_ioeventfd ioe = { .addr = addr, .len = 2, .fd = fd };
	int ret = ioctl(vm_fd, KVM_IOEVENTFD, &ioe) < 0 ? -errno : 0;

	if (ret == 0) {
		ioe.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
		ioctl(vm_fd, KVM_IOEVENTFD, &ioe);
	}
	close(fd);
	return ret;
}

static void test_doorbells_follow_a_moved_bar(void **state)
{
	struct fx *f = *state;
	struct iothread io = { 0 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm_fd;

	if (kvm < 0)
		skip();
	vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm_fd >= 0);
	assert_int_equal(iothread_start(&io), 0);
	/* The fixture's function again, now on a VM and an I/O thread. */
	virtio_pci_destroy(&f->vp);
	assert_int_equal(virtio_pci_create(&f->vp, &f->bus, -1, &dummy_ops, &f->dev, 0, &f->mem,
					   vm_fd, &io), 0);
	discover(f);
	driver_up(f);
	uint64_t old = f->notify, bar = bar_address(f, 4);
	assert_int_equal(try_doorbell(vm_fd, old), -EEXIST);	/* queue 0's doorbell is in KVM */

	/* The guest moves the BAR (both halves of the 64-bit register). */
	uint64_t moved = bar + 0x100000;
	cfg_write(f, PCI_BAR0 + 16, (uint32_t)moved, 4);
	cfg_write(f, PCI_BAR0 + 20, (uint32_t)(moved >> 32), 4);
	assert_int_equal(bar_address(f, 4), moved);
	assert_int_equal(try_doorbell(vm_fd, old), 0);			/* gone from there */
	assert_int_equal(try_doorbell(vm_fd, old + moved - bar), -EEXIST);	/* and here */

	/* Kicks at the new address still reach the device (on the I/O thread). */
	discover(f);
	assert_int_equal(f->notify, old + moved - bar);
	int before = __atomic_load_n(&f->dev.notifies, __ATOMIC_SEQ_CST);
	kick(f, 1);
	for (int i = 0; i < 1000 && __atomic_load_n(&f->dev.notifies, __ATOMIC_SEQ_CST) == before; i++)
		usleep(1000);
	assert_int_equal(f->dev.notifies, before + 1);
	assert_int_equal(f->dev.last_q, 1);

	/* Memory decoding off: no doorbells anywhere. */
	uint32_t cmd = cfg_read(f, PCI_COMMAND, 2);
	cfg_write(f, PCI_COMMAND, cmd & ~2u, 2);
	assert_int_equal(try_doorbell(vm_fd, f->notify), 0);

	virtio_pci_destroy(&f->vp);
	iothread_stop(&io);
	/* The fixture's teardown destroys it once more: leave a plain function. */
	assert_int_equal(virtio_pci_create(&f->vp, &f->bus, -1, &dummy_ops, &f->dev, 0, &f->mem,
					   -1, NULL), 0);
	close(vm_fd);
	close(kvm);
}

/* §4.1.4.9: the PCI_CFG window reaches the same registers as the BAR. */
static void test_pci_cfg_window(void **state)
{
	struct fx *f = *state;
	unsigned c = f->pci_cfg, bar = 4;
	uint64_t base = bar_address(f, bar);

	/* Find which BAR holds the common config: the window addresses BAR + offset. */
	for (unsigned b = 0; b < 6; b++)
		if (f->common >= bar_address(f, b) && bar_address(f, b) &&
		    f->common - bar_address(f, b) < 0x4000)
			bar = b, base = bar_address(f, b);
	uint32_t off = (uint32_t)(f->common - base);

	/* Read device_feature (select 0) through the window and through the BAR. */
	common_write(f, C_DFSELECT, 0, 4);
	cfg_write(f, c + 4, bar, 1);
	cfg_write(f, c + 8, off + C_DF, 4);
	cfg_write(f, c + 12, 4, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), (uint32_t)common_read(f, C_DF, 4));
	assert_int_equal(cfg_read(f, c + 16, 4) & (uint32_t)DEV_FEATURES, (uint32_t)DEV_FEATURES);

	/* Write the status byte through the window; the BAR sees it. */
	cfg_write(f, c + 8, off + C_STATUS, 4);
	cfg_write(f, c + 12, 1, 4);
	cfg_write(f, c + 16, S_ACK, 1);
	assert_int_equal(status(f), S_ACK);

	/* Bad windows do nothing and read 0: unaligned, odd length, no such BAR, past the end. */
	cfg_write(f, c + 8, off + C_DF + 1, 4);
	cfg_write(f, c + 12, 4, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	cfg_write(f, c + 8, off + C_DF, 4);
	cfg_write(f, c + 12, 3, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	cfg_write(f, c + 12, 4, 4);
	cfg_write(f, c + 4, 5, 1);	/* BAR5 is not implemented */
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	cfg_write(f, c + 4, bar, 1);
	cfg_write(f, c + 8, 0xfffffffc, 4);
	assert_int_equal(cfg_read(f, c + 16, 4), 0);
	cfg_write(f, c + 16, 0xffffffff, 4);	/* ignored, no crash */
	assert_int_equal(status(f), S_ACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity),
		T(test_pci_cfg_window),
		T(test_doorbells_follow_a_moved_bar),
		T(test_msix_capability),
		T(test_device_features),
		T(test_features_ok_accepted),
		T(test_features_ok_refused_unoffered),
		T(test_features_ok_refused_without_version_1),
		T(test_driver_feature_select_out_of_range),
		T(test_queue_size),
		T(test_queue_addresses_in_halves),
		T(test_queue_enable_good_rings),
		T(test_queue_enable_rings_outside_ram),
		T(test_queue_enable_high_half_outside_ram),
		T(test_reset_clears_everything),
		T(test_reset_clears_needs_reset),
		T(test_notify_needs_driver_ok),
		T(test_notify_each_queue),
		T(test_notify_processes_queue),
		T(test_notify_bad_chain_needs_reset),
		T(test_driver_cannot_set_needs_reset),
		T(test_intx_disable),
		T(test_isr_writes_ignored),
		T(test_device_config),
		T(test_common_cfg_edges),
		T(test_msix_table),
		T(test_msix_vectors_in_common_cfg),
		T(test_msix_pending_while_masked),
		T(test_msix_function_mask),
		T(test_msix_config_vector),
		T(test_msix_no_vector),
		T(test_msix_disabled_uses_isr),
		T(test_two_devices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
