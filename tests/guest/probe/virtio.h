/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The probe's virtio 1.x driver core: the modern PCI transport (virtio 1.2
 * §4.1) and split virtqueues (§2.7), driven by polling.  There are no
 * interrupts: the 8259 and IOAPIC stay masked, MSI-X stays disabled, and
 * every avail ring carries VIRTQ_AVAIL_F_NO_INTERRUPT, so the driver
 * simply polls used->idx against a TSC deadline.
 *
 * Memory is identity mapped (entry.S), so a pointer is its own physical
 * address and static buffers can be handed to the device as they are.
 */
#ifndef PROBE_VIRTIO_H
#define PROBE_VIRTIO_H

#include "probe.h"

#define VIRTIO_VENDOR		0x1af4

/* Device types (virtio 1.2 §5) */
#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLK		2
#define VIRTIO_ID_CONSOLE	3
#define VIRTIO_ID_RNG		4
#define VIRTIO_ID_BALLOON	5

/* Feature bits shared by all devices (§6) */
#define VIRTIO_F_VERSION_1	32

/* device_status (§2.1) */
#define VIRTIO_S_ACKNOWLEDGE	0x01
#define VIRTIO_S_DRIVER		0x02
#define VIRTIO_S_DRIVER_OK	0x04
#define VIRTIO_S_FEATURES_OK	0x08
#define VIRTIO_S_NEEDS_RESET	0x40
#define VIRTIO_S_FAILED		0x80

/* Descriptor flags (§2.7.5) */
#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2	/* device writes (a device-writable buffer) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	1

/*
 * Split queues are a power of 2.  The drivers ask for VQ_SIZE_DEFAULT
 * entries; only blk-bench asks for more (queue depth x 3 descriptors).
 * VQ_SIZE_MAX sizes the ring memory.
 */
#define VQ_SIZE_DEFAULT		64
#define VQ_SIZE_MAX		256

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VQ_SIZE_MAX];
	uint16_t used_event;		/* unused: no VIRTIO_F_EVENT_IDX */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VQ_SIZE_MAX];
	uint16_t avail_event;
};

struct virtio_dev {
	struct pci_func *pci;
	int type;			/* VIRTIO_ID_* */
	volatile uint8_t *common;	/* struct virtio_pci_common_cfg */
	volatile uint8_t *notify;
	volatile uint8_t *isr;		/* NULL if the device has none */
	volatile uint8_t *device;	/* device-specific config, or NULL */
	uint32_t device_len;
	uint32_t notify_mult;		/* notify_off_multiplier */
	uint32_t notify_len;
	uint64_t offered;		/* the device's features */
	uint64_t features;		/* what was negotiated */
};

struct virtq {
	struct virtio_dev *vd;
	uint16_t index;
	uint16_t size;			/* entries, a power of 2 */
	uint16_t free_head;		/* descriptor free list, via .next */
	uint16_t num_free;
	uint16_t last_used;		/* next used->idx to consume */
	volatile uint16_t *notify;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
};

/* One buffer of a chain; all device-readable ones come first (§2.7.4.2). */
struct vq_buf {
	void *addr;
	uint32_t len;
};

const char *virtio_type_name(int type, char buf[16]);
/* The virtio type of a PCI function (§4.1.2), or 0 if it is not virtio. */
int virtio_pci_type(const struct pci_func *f);
/* Map the capabilities (§4.1.4) of the nth device of the type (0: any). */
bool virtio_find(const struct platform *p, int type, int nth,
		 struct virtio_dev *vd);
bool virtio_map(struct virtio_dev *vd, struct pci_func *f);

void virtio_reset(struct virtio_dev *vd);
/*
 * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, accept offered & wanted
 * (VERSION_1 always, and it must be offered), FEATURES_OK and check it.
 */
bool virtio_negotiate(struct virtio_dev *vd, uint64_t wanted);
bool virtio_vq_init(struct virtio_dev *vd, struct virtq *vq, uint16_t index,
		    uint16_t max);
void virtio_driver_ok(struct virtio_dev *vd);
uint8_t virtio_status(const struct virtio_dev *vd);

/* Device configuration reads, consistent per §2.5.1 (config_generation). */
uint8_t virtio_cfg8(const struct virtio_dev *vd, uint32_t off);
uint16_t virtio_cfg16(const struct virtio_dev *vd, uint32_t off);
uint32_t virtio_cfg32(const struct virtio_dev *vd, uint32_t off);
uint64_t virtio_cfg64(const struct virtio_dev *vd, uint32_t off);

static inline bool virtio_has(const struct virtio_dev *vd, int bit)
{
	return vd->features >> bit & 1;
}

/* The head descriptor's index, or -1 if the ring is too full. */
int vq_add(struct virtq *vq, const struct vq_buf *bufs, int n_out, int n_in);
void vq_kick(struct virtq *vq);
/* vq_kick unless the device set VIRTQ_USED_F_NO_NOTIFY (§2.7.10). */
void vq_kick_if_needed(struct virtq *vq);
/* Take one used element if there is one; the chain's descriptors are freed. */
bool vq_poll(struct virtq *vq, uint32_t *id, uint32_t *len);
/* vq_poll until the deadline (TSC); on timeout report the device state. */
bool vq_wait(struct virtq *vq, uint32_t *id, uint32_t *len, uint64_t ticks);
/* add + kick + wait for that chain: a synchronous request. */
bool vq_xfer(struct virtq *vq, const struct vq_buf *bufs, int n_out, int n_in,
	     uint32_t *len);
/* TSC ticks for a timeout in seconds. */
uint64_t virtio_ticks(uint64_t seconds);

#endif
