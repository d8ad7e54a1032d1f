/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio 1.x over PCI, modern interface only (virtio 1.2 §4.1), and split
 * virtqueues (§2.7), by polling.  See virtio.h for the no-interrupt model.
 */
#include "virtio.h"

#define PCI_CAP_ID_VNDR		0x09

/* struct virtio_pci_cap (§4.1.4) */
#define VCAP_CFG_TYPE		3
#define VCAP_BAR		4
#define VCAP_OFFSET		8
#define VCAP_LENGTH		12
#define VCAP_NOTIFY_MULT	16	/* struct virtio_pci_notify_cap */
#define VCAP_COMMON		1
#define VCAP_NOTIFY		2
#define VCAP_ISR		3
#define VCAP_DEVICE		4

/* struct virtio_pci_common_cfg (§4.1.4.3) */
#define CC_DFSELECT		0
#define CC_DF			4
#define CC_GFSELECT		8
#define CC_GF			12
#define CC_MSIX_CONFIG		16
#define CC_NUM_QUEUES		18
#define CC_STATUS		20
#define CC_CFG_GENERATION	21
#define CC_Q_SELECT		22
#define CC_Q_SIZE		24
#define CC_Q_MSIX		26
#define CC_Q_ENABLE		28
#define CC_Q_NOTIFY_OFF		30
#define CC_Q_DESC		32
#define CC_Q_DRIVER		40
#define CC_Q_DEVICE		48
#define CC_LEN			56	/* up to queue_device: all we touch */

#define VIRTIO_MSI_NO_VECTOR	0xffff
#define VQ_POOL			8	/* queues per boot; console needs 4 */

/* §4.1.4.3.1: aligned accesses of the field's own width. */
static uint8_t r8(volatile uint8_t *b, uint32_t off)
{
	return *(volatile uint8_t *)(b + off);
}

static uint16_t r16(volatile uint8_t *b, uint32_t off)
{
	return *(volatile uint16_t *)(b + off);
}

static uint32_t r32(volatile uint8_t *b, uint32_t off)
{
	return *(volatile uint32_t *)(b + off);
}

static void w8(volatile uint8_t *b, uint32_t off, uint8_t v)
{
	*(volatile uint8_t *)(b + off) = v;
}

static void w16(volatile uint8_t *b, uint32_t off, uint16_t v)
{
	*(volatile uint16_t *)(b + off) = v;
}

static void w32(volatile uint8_t *b, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(b + off) = v;
}

/* 64-bit fields as two 32-bit halves, low first: §4.1.4.3.1 allows it. */
static void w64(volatile uint8_t *b, uint32_t off, uint64_t v)
{
	w32(b, off, (uint32_t)v);
	w32(b, off + 4, (uint32_t)(v >> 32));
}

static inline void mb(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

/* x86 keeps loads and stores to WB memory in order; stop the compiler. */
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static uint64_t phys_of(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/*
 * Ring memory.  §2.7 alignment: descriptor table 16, avail 2, used 4;
 * each queue gets its own page-aligned block so no two share a line.
 */
struct vq_mem {
	struct virtq_desc desc[VQ_SIZE_MAX];
	struct virtq_avail avail;
	struct virtq_used used __attribute__((aligned(64)));
} __attribute__((aligned(4096)));

static struct vq_mem vq_pool[VQ_POOL];
static int vq_pool_used;

uint64_t virtio_ticks(uint64_t seconds)
{
	uint64_t hz = tsc_hz();

	/* Uncalibrated: assume a fast TSC, so a timeout is never too short. */
	return seconds * (hz ? hz : 5000000000ull);
}

const char *virtio_type_name(int type, char buf[16])
{
	static const char *const names[] = {
		[VIRTIO_ID_NET] = "net", [VIRTIO_ID_BLK] = "blk",
		[VIRTIO_ID_CONSOLE] = "console", [VIRTIO_ID_RNG] = "rng",
		[VIRTIO_ID_BALLOON] = "balloon",
	};
	char num[16];
	const char *n;
	int i = 0;

	if (type > 0 && type <= VIRTIO_ID_BALLOON)
		return names[type];
	for (const char *s = "unknown("; *s;)
		buf[i++] = *s++;
	for (n = count_str(type, num); *n;)
		buf[i++] = *n++;
	buf[i++] = ')';
	buf[i] = 0;
	return buf;
}

/*
 * §4.1.2: vendor 0x1af4; device 0x1040 + type for modern-only devices,
 * 0x1000-0x103f for transitional ones, whose type is the subsystem ID.
 */
int virtio_pci_type(const struct pci_func *f)
{
	if (f->vendor != VIRTIO_VENDOR || f->hdr != 0)
		return 0;
	if (f->device >= 0x1040 && f->device <= 0x107f)
		return f->device - 0x1040;
	if (f->device >= 0x1000 && f->device <= 0x103f)
		return f->subsys;
	return 0;
}

/*
 * §4.1.4: the first capability of each type that the probe can use wins
 * (the list order is the device's preference).  Usable: in a memory BAR
 * that holds the whole structure and that the 0..4 GiB map reaches
 * (pci_bar_map assigns or moves it there if needed).  Then memory
 * decoding and bus mastering on: the rings are DMA.
 */
bool virtio_map(struct virtio_dev *vd, struct pci_func *f)
{
	uint8_t c = 0;

	memset(vd, 0, sizeof(*vd));
	vd->pci = f;
	vd->type = virtio_pci_type(f);
	while ((c = pci_cap_next(f, c, PCI_CAP_ID_VNDR))) {
		uint8_t type = pci_read8(f, c + VCAP_CFG_TYPE);
		uint8_t bar = pci_read8(f, c + VCAP_BAR);
		uint32_t off = pci_read32(f, c + VCAP_OFFSET);
		uint32_t len = pci_read32(f, c + VCAP_LENGTH);
		const struct pci_bar *b = bar < 6 ? &f->bar[bar] : NULL;
		volatile uint8_t *at;

		if (type < VCAP_COMMON || type > VCAP_DEVICE ||
		    (type == VCAP_COMMON && vd->common) ||
		    (type == VCAP_NOTIFY && vd->notify) ||
		    (type == VCAP_ISR && vd->isr) ||
		    (type == VCAP_DEVICE && vd->device))
			continue;
		if (!b || (uint64_t)off + len > b->size || !pci_bar_map(f, bar))
			continue;
		at = phys(b->addr + off);
		if (type == VCAP_COMMON && len >= CC_LEN) {
			vd->common = at;
		} else if (type == VCAP_NOTIFY) {
			vd->notify = at;
			vd->notify_len = len;
			vd->notify_mult = pci_read32(f, c + VCAP_NOTIFY_MULT);
		} else if (type == VCAP_ISR) {
			vd->isr = at;
		} else if (type == VCAP_DEVICE) {
			vd->device = at;
			vd->device_len = len;
		}
	}
	if (!vd->common || !vd->notify)
		return false;
	pci_enable(f);
	return true;
}

bool virtio_find(const struct platform *p, int type, int nth,
		 struct virtio_dev *vd)
{
	struct pci_func *f;
	int n = pci_scan(p, &f);
	char tb[16];

	for (int i = 0; i < n; i++) {
		int t = virtio_pci_type(&f[i]);

		if (!t || (type && t != type) || nth--)
			continue;
		if (virtio_map(vd, &f[i]))
			return true;
		say("virtio: %02x:%02x.%x %s: no usable common and notify capabilities",
		    f[i].bus, f[i].dev, f[i].fn, virtio_type_name(t, tb));
		return false;
	}
	say("virtio: no %s device", type ? virtio_type_name(type, tb) : "virtio");
	return false;
}

uint8_t virtio_status(const struct virtio_dev *vd)
{
	return r8(vd->common, CC_STATUS);
}

static void status_set(struct virtio_dev *vd, uint8_t bits)
{
	w8(vd->common, CC_STATUS, r8(vd->common, CC_STATUS) | bits);
}

/* §4.1.4.3.2: after writing 0, wait for device_status to read 0. */
void virtio_reset(struct virtio_dev *vd)
{
	uint64_t t0 = rdtsc(), limit = virtio_ticks(5);

	w8(vd->common, CC_STATUS, 0);
	while (r8(vd->common, CC_STATUS)) {
		if (rdtsc() - t0 > limit) {
			say("virtio: %02x:%02x.%x reset did not complete",
			    vd->pci->bus, vd->pci->dev, vd->pci->fn);
			return;
		}
		cpu_relax();
	}
}

/* §3.1.1 steps 1-4: reset, ACKNOWLEDGE, DRIVER, read the features. */
static void features_read(struct virtio_dev *vd)
{
	virtio_reset(vd);
	status_set(vd, VIRTIO_S_ACKNOWLEDGE);
	status_set(vd, VIRTIO_S_DRIVER);

	w32(vd->common, CC_DFSELECT, 0);
	vd->offered = r32(vd->common, CC_DF);
	w32(vd->common, CC_DFSELECT, 1);
	vd->offered |= (uint64_t)r32(vd->common, CC_DF) << 32;
}

bool virtio_negotiate(struct virtio_dev *vd, uint64_t wanted)
{
	features_read(vd);

	/* §6.1: without VERSION_1 this is a legacy device; we speak 1.x only. */
	if (!(vd->offered >> VIRTIO_F_VERSION_1 & 1)) {
		status_set(vd, VIRTIO_S_FAILED);
		return fail("virtio: device does not offer VIRTIO_F_VERSION_1 (features 0x%016lx)",
			    vd->offered);
	}
	vd->features = vd->offered & (wanted | (uint64_t)1 << VIRTIO_F_VERSION_1);
	w32(vd->common, CC_GFSELECT, 0);
	w32(vd->common, CC_GF, (uint32_t)vd->features);
	w32(vd->common, CC_GFSELECT, 1);
	w32(vd->common, CC_GF, (uint32_t)(vd->features >> 32));

	/* §3.1.1 step 6: the device may refuse the subset we chose. */
	status_set(vd, VIRTIO_S_FEATURES_OK);
	if (!(virtio_status(vd) & VIRTIO_S_FEATURES_OK)) {
		status_set(vd, VIRTIO_S_FAILED);
		return fail("virtio: device refused features 0x%016lx",
			    vd->features);
	}
	return true;
}

/* §4.1.5.1.3 virtqueue configuration, before DRIVER_OK. */
bool virtio_vq_init(struct virtio_dev *vd, struct virtq *vq, uint16_t index,
		    uint16_t max)
{
	struct vq_mem *m;
	uint16_t size, n, noff;
	uint64_t at;

	if (index >= r16(vd->common, CC_NUM_QUEUES))
		return fail("virtio: queue %u: device has only %u", index,
			    r16(vd->common, CC_NUM_QUEUES));
	if (vq_pool_used == VQ_POOL)
		return fail("virtio: more than %d queues", VQ_POOL);
	w16(vd->common, CC_Q_SELECT, index);
	size = r16(vd->common, CC_Q_SIZE);
	if (!size)
		return fail("virtio: queue %u not available", index);
	if (max > VQ_SIZE_MAX)
		max = VQ_SIZE_MAX;
	/* §2.7: a split queue's size is a power of 2; the driver may shrink it. */
	for (n = 1; n * 2 <= size && n * 2 <= max;)
		n *= 2;

	m = &vq_pool[vq_pool_used++];
	memset(m, 0, sizeof(*m));
	memset(vq, 0, sizeof(*vq));
	vq->vd = vd;
	vq->index = index;
	vq->size = n;
	vq->desc = m->desc;
	vq->avail = &m->avail;
	vq->used = &m->used;
	vq->num_free = n;
	for (uint16_t i = 0; i < n; i++)
		m->desc[i].next = (uint16_t)(i + 1);
	/* Polling only: ask for no used-buffer notifications (§2.7.7). */
	m->avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	w16(vd->common, CC_Q_SIZE, n);
	w64(vd->common, CC_Q_DESC, phys_of(m->desc));
	w64(vd->common, CC_Q_DRIVER, phys_of(&m->avail));
	w64(vd->common, CC_Q_DEVICE, phys_of(&m->used));
	w16(vd->common, CC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	noff = r16(vd->common, CC_Q_NOTIFY_OFF);
	/* §4.1.4.4: the queue's notify address; it must lie in the capability. */
	at = (uint64_t)noff * vd->notify_mult;
	if (at + 2 > vd->notify_len)
		return fail("virtio: queue %u notify offset 0x%lx outside the %u-byte notify region",
			    index, at, vd->notify_len);
	vq->notify = (volatile uint16_t *)(vd->notify + at);
	w16(vd->common, CC_Q_ENABLE, 1);
	return true;
}

void virtio_driver_ok(struct virtio_dev *vd)
{
	w16(vd->common, CC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
	status_set(vd, VIRTIO_S_DRIVER_OK);
}

/*
 * §2.5.1 / §4.1.4.3: config_generation before and after; retry if the
 * device changed its configuration in between.
 */
static uint64_t cfg_read(const struct virtio_dev *vd, uint32_t off, int width)
{
	uint64_t v = 0;
	uint8_t g;

	if (!vd->device || off + (uint32_t)width > vd->device_len)
		return 0;
	do {
		g = r8(vd->common, CC_CFG_GENERATION);
		switch (width) {
		case 1:
			v = r8(vd->device, off);
			break;
		case 2:
			v = r16(vd->device, off);
			break;
		case 4:
			v = r32(vd->device, off);
			break;
		case 8:
			v = r32(vd->device, off) |
			    (uint64_t)r32(vd->device, off + 4) << 32;
			break;
		}
	} while (g != r8(vd->common, CC_CFG_GENERATION));
	return v;
}

uint8_t virtio_cfg8(const struct virtio_dev *vd, uint32_t off)
{
	return (uint8_t)cfg_read(vd, off, 1);
}

uint16_t virtio_cfg16(const struct virtio_dev *vd, uint32_t off)
{
	return (uint16_t)cfg_read(vd, off, 2);
}

uint32_t virtio_cfg32(const struct virtio_dev *vd, uint32_t off)
{
	return (uint32_t)cfg_read(vd, off, 4);
}

uint64_t virtio_cfg64(const struct virtio_dev *vd, uint32_t off)
{
	return cfg_read(vd, off, 8);
}

/* §2.7.13: fill descriptors from the free list, then publish the head. */
int vq_add(struct virtq *vq, const struct vq_buf *bufs, int n_out, int n_in)
{
	int n = n_out + n_in;
	uint16_t head = vq->free_head, i = head, last = head;
	volatile uint16_t *idx = &vq->avail->idx;

	if (n <= 0 || n > vq->num_free)
		return -1;
	for (int k = 0; k < n; k++) {
		struct virtq_desc *d = &vq->desc[i];

		d->addr = phys_of(bufs[k].addr);
		d->len = bufs[k].len;
		/* d->next already links to the next free descriptor. */
		d->flags = (uint16_t)((k >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
				      (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		last = i;
		i = d->next;
	}
	vq->free_head = vq->desc[last].next;
	vq->num_free = (uint16_t)(vq->num_free - n);

	vq->avail->ring[*idx & (vq->size - 1)] = head;
	/* §2.7.13.3.1: the ring entry before the index that publishes it. */
	barrier();
	*idx = (uint16_t)(*idx + 1);
	return head;
}

/* §4.1.5.2: write the queue index to its notify address. */
void vq_kick(struct virtq *vq)
{
	/* The avail index must be visible before the device looks. */
	mb();
	*vq->notify = vq->index;
}

void vq_kick_if_needed(struct virtq *vq)
{
	mb();
	if (!(*(volatile uint16_t *)&vq->used->flags & VIRTQ_USED_F_NO_NOTIFY))
		*vq->notify = vq->index;
}

bool vq_poll(struct virtq *vq, uint32_t *id, uint32_t *len)
{
	volatile uint16_t *used_idx = &vq->used->idx;
	struct virtq_used_elem e;
	uint16_t i, n;

	if (*used_idx == vq->last_used)
		return false;
	/* §2.7.14: read the element only after seeing the index move. */
	barrier();
	e = vq->used->ring[vq->last_used & (vq->size - 1)];
	vq->last_used++;
	*id = e.id;
	*len = e.len;
	if (e.id >= vq->size)
		return true;		/* the caller sees a bad id */
	/* Back onto the free list: the chain's tail links to the old head. */
	i = (uint16_t)e.id;
	for (n = 1; (vq->desc[i].flags & VIRTQ_DESC_F_NEXT) && n < vq->size; n++)
		i = vq->desc[i].next;
	vq->num_free = (uint16_t)(vq->num_free + n);
	vq->desc[i].next = vq->free_head;
	vq->free_head = (uint16_t)e.id;
	return true;
}

bool vq_wait(struct virtq *vq, uint32_t *id, uint32_t *len, uint64_t ticks)
{
	const struct pci_func *f = vq->vd->pci;
	uint64_t t0 = rdtsc(), check = t0, step = virtio_ticks(1) / 1000;
	uint8_t st;

	for (;;) {
		if (vq_poll(vq, id, len))
			return true;
		/*
		 * §2.1.2: a device that gives up sets DEVICE_NEEDS_RESET and
		 * stops; look every millisecond so a test hears it at once.
		 * (Reading device_status is an exit; used->idx is not.)
		 */
		if (rdtsc() - check > step) {
			check = rdtsc();
			st = virtio_status(vq->vd);
			if (st & VIRTIO_S_NEEDS_RESET) {
				say("virtio: %02x:%02x.%x device needs reset (status 0x%x)",
				    f->bus, f->dev, f->fn, st);
				return false;
			}
			if (check - t0 > ticks) {
				say("virtio: %02x:%02x.%x queue %u: no answer (status 0x%x)",
				    f->bus, f->dev, f->fn, vq->index, st);
				return false;
			}
		}
		cpu_relax();
	}
}

bool vq_xfer(struct virtq *vq, const struct vq_buf *bufs, int n_out, int n_in,
	     uint32_t *len)
{
	int head = vq_add(vq, bufs, n_out, n_in);
	uint32_t id;

	if (head < 0)
		return fail("virtio: queue %u full", vq->index);
	vq_kick(vq);
	if (!vq_wait(vq, &id, len, virtio_ticks(10)))
		return fail("virtio: queue %u: request not completed", vq->index);
	if (id != (uint32_t)head)
		return fail("virtio: queue %u: used id %u, expected %d", vq->index,
			    id, head);
	return true;
}

/*
 * Scenario "virtio": every virtio function, its type and the features it
 * offers, plus where its capabilities live (for comparing VMMs).  Each
 * device is reset afterwards, as the probe found it.
 */
bool scenario_virtio(const struct platform *p, const struct args *a)
{
	struct pci_func *f;
	int n = pci_scan(p, &f), found = 0;
	char tb[16];

	for (int i = 0; i < n; i++) {
		int t = virtio_pci_type(&f[i]);
		struct virtio_dev vd;

		if (!t)
			continue;
		found++;
		if (!virtio_map(&vd, &f[i])) {
			say("virtio: %02x:%02x.%x %s no modern interface (no common/notify capability)",
			    f[i].bus, f[i].dev, f[i].fn, virtio_type_name(t, tb));
			continue;
		}
		features_read(&vd);
		virtio_reset(&vd);
		say("virtio: %02x:%02x.%x %s features 0x%016lx", f[i].bus,
		    f[i].dev, f[i].fn, virtio_type_name(t, tb), vd.offered);
		say("virtio-caps: %02x:%02x.%x common 0x%lx notify 0x%lx mult %u isr 0x%lx device 0x%lx len %u queues %u",
		    f[i].bus, f[i].dev, f[i].fn, phys_of((const void *)vd.common),
		    phys_of((const void *)vd.notify), vd.notify_mult,
		    phys_of((const void *)vd.isr), phys_of((const void *)vd.device),
		    vd.device_len, r16(vd.common, CC_NUM_QUEUES));
	}
	say("virtio: %d devices", found);
	return true;
}
