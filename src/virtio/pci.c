#include "virtio/pci.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

/* BAR layout, as QEMU's virtio-pci: MSI-X in BAR 1, the virtio structures in BAR 4. */
#define MSIX_BAR 1
#define MSIX_BAR_SIZE 0x1000
#define MSIX_PBA_OFFSET 0x800
#define VIRTIO_BAR 4
#define VIRTIO_BAR_SIZE 0x4000
#define COMMON_OFFSET 0x0000
#define ISR_OFFSET 0x1000
#define DEVICE_OFFSET 0x2000
#define NOTIFY_OFFSET 0x3000
#define NOTIFY_MULTIPLIER 4
#define REGION_SIZE 0x1000

/* struct virtio_pci_cap cfg_type values (§4.1.4). */
#define CAP_COMMON_CFG 1
#define CAP_NOTIFY_CFG 2
#define CAP_ISR_CFG 3
#define CAP_DEVICE_CFG 4
#define CAP_PCI_CFG 5

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1

/* Common configuration registers (§4.1.4.3). */
enum {
	CFG_DEVICE_FEATURE_SELECT = 0x00, CFG_DEVICE_FEATURE = 0x04,
	CFG_DRIVER_FEATURE_SELECT = 0x08, CFG_DRIVER_FEATURE = 0x0c,
	CFG_MSIX_CONFIG = 0x10, CFG_NUM_QUEUES = 0x12, CFG_DEVICE_STATUS = 0x14,
	CFG_CONFIG_GENERATION = 0x15, CFG_QUEUE_SELECT = 0x16, CFG_QUEUE_SIZE = 0x18,
	CFG_QUEUE_MSIX_VECTOR = 0x1a, CFG_QUEUE_ENABLE = 0x1c, CFG_QUEUE_NOTIFY_OFF = 0x1e,
	CFG_QUEUE_DESC = 0x20, CFG_QUEUE_DRIVER = 0x28, CFG_QUEUE_DEVICE = 0x30,
	CFG_END = 0x38,
};

static uint64_t offered_features(const struct virtio_device *vdev)
{
	return (vdev->ops->features | vdev->extra_features | VIRTIO_F_VERSION_1 |
		VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX) & ~vdev->no_features;
}

/* ---- interrupts -------------------------------------------------------- */

static bool msix_enabled(const struct virtio_pci *vp, uint8_t cap, bool *masked)
{
	uint16_t ctrl;

	memcpy(&ctrl, vp->pci.config + cap + 2, 2);
	*masked = ctrl & MSIX_CTRL_MASKALL;
	return ctrl & MSIX_CTRL_ENABLE;
}

static uint8_t msix_cap(const struct virtio_pci *vp)
{
	for (uint8_t p = vp->pci.config[PCI_CAPABILITY_LIST]; p; p = vp->pci.config[p + 1])
		if (vp->pci.config[p] == PCI_CAP_ID_MSIX)
			return p;
	return 0;
}

static void msix_fire(struct virtio_pci *vp, uint16_t vector)
{
	struct msix_entry *e = &vp->msix[vector];
	struct kvm_msi msi = { .address_lo = e->addr_lo, .address_hi = e->addr_hi, .data = e->data };

	if (ioctl(vp->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		log_debug("%s: KVM_SIGNAL_MSI: %s", vp->pci.name, strerror(errno));
}

/*
 * Delivers vectors held back while masked, now that neither the function nor
 * the entry is (PCI 3.0 §6.8.3.5); caller holds vdev->lock.
 */
static void msix_deliver_pending(struct virtio_pci *vp)
{
	uint8_t cap = msix_cap(vp);
	bool function_masked;

	if (!cap || !msix_enabled(vp, cap, &function_masked) || function_masked)
		return;
	for (unsigned n = 0; n < VIRTIO_PCI_MSIX_VECTORS; n++) {
		if (!(vp->msix_pending & (1ULL << n)) || (vp->msix[n].ctrl & MSIX_ENTRY_MASKED))
			continue;
		vp->msix_pending &= ~(1ULL << n);
		msix_fire(vp, (uint16_t)n);
	}
}

/* Config space changed (called under the bus lock): the MSI-X enable/mask bits may have. */
static void set_intx(struct virtio_pci *vp, bool level)
{
	struct kvm_irq_level irq = { .irq = vp->pci.config[PCI_INTERRUPT_LINE], .level = level };

	if (level == vp->intx_level)
		return;
	vp->intx_level = level;
	if (ioctl(vp->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_debug("%s: KVM_IRQ_LINE: %s", vp->pci.name, strerror(errno));
}

/* Raises vector (MSI-X) or INTx with the ISR bit; caller holds vdev->lock. */
static void raise(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	bool masked;
	uint8_t cap = msix_cap(vp);

	if (cap && msix_enabled(vp, cap, &masked)) {
		if (vector == VIRTIO_MSI_NO_VECTOR || vector >= VIRTIO_PCI_MSIX_VECTORS)
			return;
		if (masked || (vp->msix[vector].ctrl & MSIX_ENTRY_MASKED))
			vp->msix_pending |= 1ULL << vector;	/* delivered on unmask */
		else
			msix_fire(vp, vector);
		return;
	}
	vp->isr |= isr_bit;
	if (!(vp->pci.config[PCI_COMMAND + 1] & (PCI_COMMAND_INTX_DISABLE >> 8)))
		set_intx(vp, true);
}

static void queue_interrupt(struct virtio_device *vdev, unsigned q)
{
	struct virtio_pci *vp = vdev->transport;

	raise(vp, vdev->vqs[q].msix_vector, 1);
}

/* ---- kicks through ioeventfd ------------------------------------------------ */

static void kick_fn(void *opaque)
{
	struct virtio_kick *k = opaque;

	k->vp->vdev.ops->queue_notify(&k->vp->vdev, k->queue);
}

static int ioeventfd(struct virtio_pci *vp, struct virtio_kick *k, bool assign)
{
	struct kvm_ioeventfd ioe = {
		.addr = k->addr, .len = 2, .fd = k->watch.fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};
	return ioctl(vp->vm_fd, KVM_IOEVENTFD, &ioe);
}

static void kick_release(struct virtio_pci *vp, struct virtio_kick *k)
{
	if (!k->addr)
		return;
	ioeventfd(vp, k, false);
	/* A device's own doorbell (vhost) is the device's to close. */
	if (k->ext_fd < 0) {
		iothread_unwatch(vp->io, &k->watch);
		close(k->watch.fd);
	}
	k->addr = 0;
}

static void kicks_release(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		kick_release(vp, &vp->kicks[q]);
}

/*
 * DRIVER_OK: each ready queue's 16-bit notify write becomes an eventfd signal
 * in the kernel, so kicks cost the guest no exit to us.  If the guest moves
 * the BAR later, kicks still arrive through the MMIO exit path.
 */
static void kicks_assign(struct virtio_pci *vp)
{
	/*
	 * Read without the bus lock: we hold vdev->lock, and config writes take the
	 * bus lock before vdev->lock.  A BAR moving under us only costs the fast path.
	 */
	uint16_t cmd;
	memcpy(&cmd, vp->pci.config + PCI_COMMAND, 2);
	uint64_t base = (cmd & PCI_COMMAND_MEMORY) ? vp->pci.bars[VIRTIO_BAR].addr : 0;

	if (!base)
		return;
	for (unsigned q = 0; q < vp->vdev.num_queues; q++) {
		struct virtio_kick *k = &vp->kicks[q];
		if (!vp->vdev.vqs[q].ready || k->addr)
			continue;
		k->vp = vp;
		k->queue = q;
		if (k->ext_fd >= 0) {
			/* The device's doorbell goes straight to whoever reads it (vhost). */
			k->watch.fd = k->ext_fd;
			k->addr = base + NOTIFY_OFFSET + NOTIFY_MULTIPLIER * q;
			if (ioeventfd(vp, k, true) < 0) {
				log_debug("%s: no ioeventfd for queue %u: %s", vp->pci.name, q,
					  strerror(errno));
				k->addr = 0;	/* kicks arrive as MMIO exits; the device forwards them */
			}
			continue;
		}
		if (!vp->io)
			continue;
		k->addr = base + NOTIFY_OFFSET + NOTIFY_MULTIPLIER * q;
		k->watch = (struct iothread_watch){
			.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = kick_fn, .opaque = k,
		};
		bool assigned = k->watch.fd >= 0 && ioeventfd(vp, k, true) == 0;
		if (assigned && iothread_watch(vp->io, &k->watch) == 0)
			continue;
		log_debug("%s: no ioeventfd for queue %u: %s", vp->pci.name, q, strerror(errno));
		if (assigned)
			ioeventfd(vp, k, false);	/* or KVM would swallow kicks nobody reads */
		if (k->watch.fd >= 0)
			close(k->watch.fd);
		k->addr = 0;
	}
}

static int set_queue_kick(struct virtio_device *vdev, unsigned q, int fd)
{
	struct virtio_pci *vp = vdev->transport;

	if (q >= VIRTIO_MAX_QUEUES)
		return -1;
	kick_release(vp, &vp->kicks[q]);
	vp->kicks[q].ext_fd = fd;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		kicks_assign(vp);
	return 0;
}

static void call_fn(void *opaque)
{
	struct virtio_call *c = opaque;
	struct virtio_device *vdev = &c->vp->vdev;

	/* The other side already applied the driver's suppression (event idx, flags). */
	pthread_mutex_lock(&vdev->lock);
	raise(c->vp, vdev->vqs[c->queue].msix_vector, 1);
	pthread_mutex_unlock(&vdev->lock);
}

/*
 * The eventfd is read on the I/O thread, which raises the interrupt the way
 * our own completions do: MSI-X (pending while masked) or INTx with the ISR.
 */
static int queue_call_fd(struct virtio_device *vdev, unsigned q)
{
	struct virtio_pci *vp = vdev->transport;
	struct virtio_call *c = &vp->calls[q % VIRTIO_MAX_QUEUES];

	if (q >= VIRTIO_MAX_QUEUES || !vp->io)
		return -1;
	if (c->watched)
		return c->watch.fd;
	*c = (struct virtio_call){
		.vp = vp, .queue = q,
		.watch = { .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .fn = call_fn, .opaque = c },
	};
	if (c->watch.fd < 0 || iothread_watch(vp->io, &c->watch) < 0) {
		log_debug("%s: no call eventfd for queue %u: %s", vp->pci.name, q, strerror(errno));
		if (c->watch.fd >= 0)
			close(c->watch.fd);
		return -1;
	}
	c->watched = true;
	return c->watch.fd;
}

static void calls_release(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct virtio_call *c = &vp->calls[q];
		if (!c->watched)
			continue;
		iothread_unwatch(vp->io, &c->watch);
		close(c->watch.fd);
		c->watched = false;
	}
}

static bool touches(unsigned offset, unsigned size, unsigned reg, unsigned len)
{
	return offset < reg + len && reg < offset + size;
}

/*
 * One access through the PCI_CFG window: length 1, 2 or 4 at offset of one
 * of our BARs, aligned to its length; anything else is ignored (reads 0).
 * Called with the bus lock held, as BAR dispatch is.
 */
static void pci_cfg_access(struct virtio_pci *vp, bool is_write)
{
	uint8_t *cap = vp->pci.config + vp->pci_cfg_cap;
	uint8_t bar = cap[4];
	uint32_t offset, length;

	memcpy(&offset, cap + 8, 4);
	memcpy(&length, cap + 12, 4);
	if (!is_write)
		memset(cap + 16, 0, 4);
	if (bar >= PCI_BARS || !vp->pci.bars[bar].size || vp->pci.bars[bar].io ||
	    (length != 1 && length != 2 && length != 4) || offset % length ||
	    (uint64_t)offset + length > vp->pci.bars[bar].size)
		return;
	vp->pci.bars[bar].access(vp->pci.bars[bar].opaque, offset, is_write, cap + 16, length);
}

static void config_read(struct pci_device *pci, unsigned offset, unsigned size)
{
	struct virtio_pci *vp = pci->opaque;

	if (touches(offset, size, vp->pci_cfg_cap + 16, 4))
		pci_cfg_access(vp, false);
}

/*
 * After a config write: pending MSI-X messages may go out, and if the
 * notify region moved or stopped decoding, the kernel's doorbells follow it,
 * or KVM would swallow writes meant for whatever lies at the old address.
 */
static void config_written(struct pci_device *pci, unsigned offset, unsigned size)
{
	struct virtio_pci *vp = pci->opaque;

	if (vp->pci_cfg_cap && touches(offset, size, vp->pci_cfg_cap + 16, 4))
		pci_cfg_access(vp, true);	/* takes vdev->lock itself, as BAR accesses do */
	pthread_mutex_lock(&vp->vdev.lock);
	msix_deliver_pending(vp);
	if (touches(offset, size, PCI_COMMAND, 2) ||
	    touches(offset, size, PCI_BAR0 + 4 * VIRTIO_BAR, 8)) {
		uint16_t cmd;
		memcpy(&cmd, vp->pci.config + PCI_COMMAND, 2);
		uint64_t base = (cmd & PCI_COMMAND_MEMORY) ? vp->pci.bars[VIRTIO_BAR].addr : 0;
		for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
			const struct virtio_kick *k = &vp->kicks[q];
			if (!k->addr)
				continue;
			if (k->addr != base + NOTIFY_OFFSET + NOTIFY_MULTIPLIER * q) {
				kicks_release(vp);
				if (vp->vdev.status & VIRTIO_STATUS_DRIVER_OK)
					kicks_assign(vp);
			}
			break;	/* all doorbells move together */
		}
	}
	pthread_mutex_unlock(&vp->vdev.lock);
}

/* ---- device reset and status --------------------------------------------- */

static void device_reset(struct virtio_pci *vp)
{
	struct virtio_device *vdev = &vp->vdev;

	/* Queues served elsewhere come back before their state is thrown away. */
	if (vdev->ops->stop)
		vdev->ops->stop(vdev);
	kicks_release(vp);
	virtio_device_reset(vdev);
	vp->isr = 0;
	vp->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	set_intx(vp, false);
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
}

/* The transport's configuration-change interrupt (virtio 1.2 §4.1.4.5: ISR bit 1). */
static void config_interrupt(struct virtio_device *vdev)
{
	struct virtio_pci *vp = vdev->transport;

	raise(vp, vp->config_msix_vector, 2);
}

static void write_status(struct virtio_pci *vp, uint8_t status)
{
	struct virtio_device *vdev = &vp->vdev;
	uint64_t offered = offered_features(vdev);

	if (status == 0) {
		device_reset(vp);
		return;
	}
	/* NEEDS_RESET is the device's bit: the driver MUST NOT set it (§2.1.2). */
	status &= (uint8_t)~VIRTIO_STATUS_NEEDS_RESET;
	/* FEATURES_OK stays clear when the driver took what was not offered (§3.1.1). */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(vdev->status & VIRTIO_STATUS_FEATURES_OK)) {
		if ((vdev->driver_features & ~offered) || !(vdev->driver_features & VIRTIO_F_VERSION_1))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
			vdev->vqs[i].event_idx = virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX);
	}
	bool starting = (status & VIRTIO_STATUS_DRIVER_OK) && !(vdev->status & VIRTIO_STATUS_DRIVER_OK);
	if (starting)
		kicks_assign(vp);
	vdev->status = (uint8_t)(status | (vdev->status & VIRTIO_STATUS_NEEDS_RESET));
	if (starting && vdev->ops->start && !(vdev->status & VIRTIO_STATUS_NEEDS_RESET))
		vdev->ops->start(vdev);
}

/* ---- common configuration ------------------------------------------------ */

static struct virtqueue *selected(struct virtio_pci *vp)
{
	if (vp->queue_select >= vp->vdev.num_queues)
		return NULL;
	return &vp->vdev.vqs[vp->queue_select];
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off)
{
	struct virtio_device *vdev = &vp->vdev;
	struct virtqueue *vq = selected(vp);

	switch (off) {
	case CFG_DEVICE_FEATURE_SELECT: return vp->device_feature_select;
	case CFG_DEVICE_FEATURE:
		return vp->device_feature_select > 1 ? 0 :
		       (uint32_t)(offered_features(vdev) >> (32 * vp->device_feature_select));
	case CFG_DRIVER_FEATURE_SELECT: return vp->driver_feature_select;
	case CFG_DRIVER_FEATURE:
		return vp->driver_feature_select > 1 ? 0 :
		       (uint32_t)(vdev->driver_features >> (32 * vp->driver_feature_select));
	case CFG_MSIX_CONFIG: return vp->config_msix_vector;
	case CFG_NUM_QUEUES: return vdev->num_queues;
	case CFG_DEVICE_STATUS: return vdev->status;
	case CFG_CONFIG_GENERATION: return vdev->config_generation;
	case CFG_QUEUE_SELECT: return vp->queue_select;
	case CFG_QUEUE_SIZE: return vq ? vq->size : 0;
	case CFG_QUEUE_MSIX_VECTOR: return vq ? vq->msix_vector : VIRTIO_MSI_NO_VECTOR;
	case CFG_QUEUE_ENABLE: return vq ? vq->ready : 0;
	case CFG_QUEUE_NOTIFY_OFF: return vp->queue_select;
	case CFG_QUEUE_DESC: return vq ? vq->desc_gpa : 0;
	case CFG_QUEUE_DESC + 4: return vq ? vq->desc_gpa >> 32 : 0;
	case CFG_QUEUE_DRIVER: return vq ? vq->avail_gpa : 0;
	case CFG_QUEUE_DRIVER + 4: return vq ? vq->avail_gpa >> 32 : 0;
	case CFG_QUEUE_DEVICE: return vq ? vq->used_gpa : 0;
	case CFG_QUEUE_DEVICE + 4: return vq ? vq->used_gpa >> 32 : 0;
	}
	return 0;
}

static void set_addr_part(uint64_t *addr, unsigned part, uint64_t v)
{
	/* 64-bit fields may be written as two 32-bit halves (§4.1.3.1). */
	if (part == 0)
		*addr = (*addr & ~0xffffffffULL) | (v & 0xffffffffULL);
	else
		*addr = (*addr & 0xffffffffULL) | (v << 32);
}

static void common_write(struct virtio_pci *vp, unsigned off, uint64_t v, unsigned size)
{
	struct virtio_device *vdev = &vp->vdev;
	struct virtqueue *vq = selected(vp);
	unsigned shift;

	switch (off) {
	case CFG_DEVICE_FEATURE_SELECT: vp->device_feature_select = (uint32_t)v; return;
	case CFG_DRIVER_FEATURE_SELECT: vp->driver_feature_select = (uint32_t)v; return;
	case CFG_DRIVER_FEATURE:
		if (vp->driver_feature_select > 1 || (vdev->status & VIRTIO_STATUS_FEATURES_OK))
			return;
		shift = 32 * vp->driver_feature_select;
		vdev->driver_features = (vdev->driver_features & ~(0xffffffffULL << shift)) |
					((v & 0xffffffffULL) << shift);
		return;
	case CFG_MSIX_CONFIG:
		vp->config_msix_vector = v < VIRTIO_PCI_MSIX_VECTORS ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case CFG_DEVICE_STATUS: write_status(vp, (uint8_t)v); return;
	case CFG_QUEUE_SELECT: vp->queue_select = (uint16_t)v; return;
	default: break;
	}
	if (!vq || vq->ready)
		return;	/* queue registers are fixed once the queue is enabled */
	switch (off) {
	case CFG_QUEUE_SIZE:
		if (v && v <= vdev->ops->queue_max && !(v & (v - 1)))
			vq->size = (uint16_t)v;
		return;
	case CFG_QUEUE_MSIX_VECTOR:
		vq->msix_vector = v < VIRTIO_PCI_MSIX_VECTORS ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		return;
	case CFG_QUEUE_ENABLE:
		/* A device that needs a reset uses no queue until it gets one (§2.1.2). */
		if (v != 1 || (vdev->status & VIRTIO_STATUS_NEEDS_RESET))
			return;
		if (!vq_check_rings(vq)) {
			virtio_needs_reset(vdev, "queue rings outside guest RAM or bad queue size");
			return;
		}
		vq->ready = true;
		return;
	case CFG_QUEUE_DESC: case CFG_QUEUE_DESC + 4:
		set_addr_part(&vq->desc_gpa, (off - CFG_QUEUE_DESC) / 4, v);
		if (size == 8) vq->desc_gpa = v;
		return;
	case CFG_QUEUE_DRIVER: case CFG_QUEUE_DRIVER + 4:
		set_addr_part(&vq->avail_gpa, (off - CFG_QUEUE_DRIVER) / 4, v);
		if (size == 8) vq->avail_gpa = v;
		return;
	case CFG_QUEUE_DEVICE: case CFG_QUEUE_DEVICE + 4:
		set_addr_part(&vq->used_gpa, (off - CFG_QUEUE_DEVICE) / 4, v);
		if (size == 8) vq->used_gpa = v;
		return;
	}
}

/* ---- BAR handlers --------------------------------------------------------- */

static void virtio_bar_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			  unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_device *vdev = &vp->vdev;
	uint64_t v = 0;
	unsigned notify_q = VIRTIO_MAX_QUEUES;

	if (size > 8)
		return;
	if (is_write)
		memcpy(&v, data, size);
	else
		memset(data, 0, size);

	pthread_mutex_lock(&vdev->lock);
	if (offset < COMMON_OFFSET + REGION_SIZE) {
		if (offset >= CFG_END)
			goto out;
		if (is_write)
			common_write(vp, (unsigned)offset, v, size);
		else {
			v = common_read(vp, (unsigned)offset);
			memcpy(data, &v, size);
		}
	} else if (offset < ISR_OFFSET + REGION_SIZE) {
		if (!is_write) {
			/* Reading the ISR acknowledges it and drops INTx (§4.1.4.5). */
			data[0] = vp->isr;
			vp->isr = 0;
			set_intx(vp, false);
		}
	} else if (offset < DEVICE_OFFSET + REGION_SIZE) {
		uint32_t off = (uint32_t)(offset - DEVICE_OFFSET);
		if (off + size > vdev->ops->config_size)
			goto out;
		if (is_write) {
			if (vdev->ops->write_config)
				vdev->ops->write_config(vdev, off, data, size);
		} else if (vdev->ops->read_config) {
			vdev->ops->read_config(vdev, off, data, size);
		}
	} else if (is_write) {
		unsigned q = (unsigned)(offset - NOTIFY_OFFSET) / NOTIFY_MULTIPLIER;
		if (q < vdev->num_queues && vdev->vqs[q].ready &&
		    (vdev->status & VIRTIO_STATUS_DRIVER_OK))
			notify_q = q;
	}
out:
	pthread_mutex_unlock(&vdev->lock);
	/* Requests are processed outside the register lock; the device takes it as needed. */
	if (notify_q < VIRTIO_MAX_QUEUES)
		vdev->ops->queue_notify(vdev, notify_q);
}

static void msix_bar_io(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			unsigned size)
{
	struct virtio_pci *vp = opaque;
	uint32_t v = 0;

	if (size != 4 || (offset & 3)) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&vp->vdev.lock);
	if (offset >= MSIX_PBA_OFFSET) {
		unsigned word = (unsigned)(offset - MSIX_PBA_OFFSET) / 4;
		if (!is_write) {
			v = word < 2 ? (uint32_t)(vp->msix_pending >> (32 * word)) : 0;
			memcpy(data, &v, 4);
		}
	} else if (offset / 16 < VIRTIO_PCI_MSIX_VECTORS) {
		unsigned n = (unsigned)offset / 16, field = (unsigned)(offset % 16) / 4;
		uint32_t *f = (uint32_t *)&vp->msix[n] + field;
		if (!is_write) {
			memcpy(data, f, 4);
		} else {
			memcpy(&v, data, 4);
			*f = v;
			if (field == 3)
				msix_deliver_pending(vp);
		}
	} else if (!is_write) {
		memset(data, 0, 4);
	}
	pthread_mutex_unlock(&vp->vdev.lock);
}

/* ---- setup ---------------------------------------------------------------- */

struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2];
	uint32_t offset, length;
} __attribute__((packed));

/* Returns the capability's config offset, 0 if config space is full. */
static uint8_t add_virtio_cap(struct pci_device *pci, uint8_t type, uint8_t bar, uint32_t offset,
			      uint32_t length, const uint32_t *multiplier)
{
	uint8_t body[20];
	struct virtio_pci_cap cap = {
		.cap_len = multiplier ? 20 : 16, .cfg_type = type, .bar = bar,
		.offset = offset, .length = length,
	};

	memcpy(body, &cap, sizeof(cap));
	if (multiplier)
		memcpy(body + 16, multiplier, 4);
	return pci_device_add_cap(pci, PCI_CAP_ID_VNDR, body, cap.cap_len);
}

/*
 * VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): a window into the BARs through config
 * space, for drivers that cannot map them (firmware in real mode, BARs out of
 * reach).  The guest writes bar, offset and length, then reads or writes
 * pci_cfg_data; bar/offset/length/data are writable.
 */
static void add_pci_cfg_cap(struct virtio_pci *vp)
{
	uint32_t zero = 0;

	/* The 4 bytes after the common header are pci_cfg_data, initially 0. */
	vp->pci_cfg_cap = add_virtio_cap(&vp->pci, CAP_PCI_CFG, 0, 0, 0, &zero);
	if (!vp->pci_cfg_cap)
		return;
	vp->pci.wmask[vp->pci_cfg_cap + 4] = 0xff;			/* bar */
	memset(vp->pci.wmask + vp->pci_cfg_cap + 8, 0xff, 12);	/* offset, length, data */
	vp->pci.config_read = config_read;
}

int virtio_pci_create(struct virtio_pci *vp, struct pci_bus *bus, int slot,
		      const struct virtio_device_ops *ops, void *opaque, unsigned num_queues,
		      const struct guest_memory *mem, int vm_fd, struct iothread *io)
{
	struct virtio_device *vdev = &vp->vdev;
	const uint32_t multiplier = NOTIFY_MULTIPLIER;
	uint8_t msix[12] = { 0 };
	uint16_t table_size = VIRTIO_PCI_MSIX_VECTORS - 1;
	uint32_t table = MSIX_BAR, pba = MSIX_PBA_OFFSET | MSIX_BAR;
	uint8_t cap;

	memset(vp, 0, sizeof(*vp));
	vp->vm_fd = vm_fd;
	vp->bus = bus;
	vp->io = io;
	if (virtio_device_init(vdev, ops, opaque, num_queues, mem) < 0)
		return -1;
	vdev->transport = vp;
	vdev->interrupt = queue_interrupt;
	vdev->config_interrupt = config_interrupt;
	vdev->set_queue_kick = set_queue_kick;
	vdev->queue_call_fd = queue_call_fd;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->kicks[i].ext_fd = -1;
	vp->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned i = 0; i < VIRTIO_PCI_MSIX_VECTORS; i++)
		vp->msix[i].ctrl = MSIX_ENTRY_MASKED;

	/* Modern-only device: ID 0x1040 + type, revision 1 (§4.1.2.1). */
	pci_device_init(&vp->pci, ops->name, 0x1af4, (uint16_t)(0x1040 + ops->device_id),
			ops->pci_class, 1, 0x1af4, (uint16_t)(0x1040 + ops->device_id));
	vp->pci.config[PCI_INTERRUPT_PIN] = 1;	/* INTA# */
	vp->pci.config_written = config_written;
	vp->pci.opaque = vp;
	vp->pci.config[PCI_INTERRUPT_LINE] = 11;	/* a level-triggered ISA line, as SeaBIOS picks */
	pci_device_add_bar(&vp->pci, MSIX_BAR, MSIX_BAR_SIZE, false, msix_bar_io, vp);
	pci_device_add_bar(&vp->pci, VIRTIO_BAR, VIRTIO_BAR_SIZE, false, virtio_bar_io, vp);

	memcpy(msix + 2, &table_size, 2);
	memcpy(msix + 4, &table, 4);
	memcpy(msix + 8, &pba, 4);
	cap = pci_device_add_cap(&vp->pci, PCI_CAP_ID_MSIX, msix, sizeof(msix));
	if (cap) {
		/* Only the enable and function-mask bits are the guest's to write. */
		uint16_t mask = MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL;
		memcpy(vp->pci.wmask + cap + 2, &mask, 2);
	}
	add_virtio_cap(&vp->pci, CAP_COMMON_CFG, VIRTIO_BAR, COMMON_OFFSET, CFG_END, NULL);
	add_virtio_cap(&vp->pci, CAP_ISR_CFG, VIRTIO_BAR, ISR_OFFSET, 4, NULL);
	add_virtio_cap(&vp->pci, CAP_DEVICE_CFG, VIRTIO_BAR, DEVICE_OFFSET,
		       ops->config_size ? ops->config_size : 4, NULL);
	add_virtio_cap(&vp->pci, CAP_NOTIFY_CFG, VIRTIO_BAR, NOTIFY_OFFSET,
		       NOTIFY_MULTIPLIER * vdev->num_queues, &multiplier);
	add_pci_cfg_cap(vp);
	return pci_bus_plug(bus, &vp->pci, slot);
}

int virtio_pci_plug(const struct virtio_plug *at, const struct virtio_device_ops *ops,
		    void *opaque)
{
	if (virtio_pci_create(at->vp, at->bus, at->slot, ops, opaque, at->num_queues, at->mem,
			      at->vm_fd, at->io) < 0) {
		log_error("%s: PCI slot %d is taken or the bus is full", ops->name, at->slot);
		return -1;
	}
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	kicks_release(vp);
	calls_release(vp);
	pthread_mutex_destroy(&vp->vdev.lock);
}
