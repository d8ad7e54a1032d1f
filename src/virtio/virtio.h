/*
 * A virtio device model, independent of its transport (kvmtool's split): the
 * device fills a struct virtio_device_ops; the PCI transport (virtio/pci.c)
 * owns feature negotiation, status registers and interrupts, and virtio.c
 * holds what every transport shares (queue processing, NEEDS_RESET, config
 * changes, the device's initial and reset state).
 */
#ifndef KESTREL_VIRTIO_VIRTIO_H
#define KESTREL_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

/* Device IDs and common feature bits (virtio 1.2 §5, §6). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5

#define VIRTIO_F_INDIRECT_DESC (1ULL << 28)
#define VIRTIO_F_EVENT_IDX (1ULL << 29)
#define VIRTIO_F_VERSION_1 (1ULL << 32)

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_MAX_QUEUES 8

struct virtio_device;

struct virtio_device_ops {
	const char *name;
	uint16_t device_id;
	uint32_t pci_class;
	uint64_t features;		/* device-specific offers; the transport adds the rest */
	unsigned num_queues;
	uint16_t queue_max;
	uint32_t config_size;
	void (*read_config)(struct virtio_device *vdev, uint32_t offset, void *buf, uint32_t len);
	void (*write_config)(struct virtio_device *vdev, uint32_t offset, const void *buf,
			     uint32_t len);
	/* The driver kicked queue q; process what it made available. */
	void (*queue_notify)(struct virtio_device *vdev, unsigned q);
	/* The driver reset the device: drop device state (queues are reset by the transport). */
	void (*reset)(struct virtio_device *vdev);
	/* Optional: the driver set DRIVER_OK (lock held). */
	void (*start)(struct virtio_device *vdev);
	/* Optional: the queues are about to be reset; take back any given away (lock held). */
	void (*stop)(struct virtio_device *vdev);
	/*
	 * Optional: the machine takes the device away (the I/O thread has stopped,
	 * the transport goes next): let go of the VM's resources.
	 */
	void (*unplug)(struct virtio_device *vdev);
};

struct virtio_device {
	const struct virtio_device_ops *ops;
	void *opaque;			/* the device model's state */
	pthread_mutex_t lock;		/* queues, status, features */
	uint64_t extra_features;	/* per-instance offers, e.g. read-only */
	unsigned num_queues;		/* per instance (virtio-blk num-queues=); set at creation */
	uint64_t driver_features;
	uint8_t status;
	uint8_t config_generation;
	struct virtqueue vqs[VIRTIO_MAX_QUEUES];
	/* Set by the transport: raise the used-buffer interrupt for queue q. */
	void (*interrupt)(struct virtio_device *vdev, unsigned q);
	/* Set by the transport: raise the configuration-change interrupt. */
	void (*config_interrupt)(struct virtio_device *vdev);
	/*
	 * Set by the transport, for queues served outside this process (vhost),
	 * lock held: set_queue_kick makes eventfd fd q's doorbell (-1: kicks go
	 * to queue_notify again; 0 or -1 returned); queue_call_fd returns an
	 * eventfd whose signal raises q's interrupt (-1: the transport has none).
	 */
	int (*set_queue_kick)(struct virtio_device *vdev, unsigned q, int fd);
	int (*queue_call_fd)(struct virtio_device *vdev, unsigned q);
	uint64_t no_features;		/* transport offers this instance must not make */
	void *transport;
};

static inline bool virtio_has_feature(const struct virtio_device *vdev, uint64_t bit)
{
	return (vdev->driver_features & bit) != 0;
}

/*
 * Sets vdev up for a device model (ops + opaque) with num_queues queues (0:
 * the model's default) over guest memory mem; the transport then sets its
 * callbacks.  Returns -1 when there are more queues than VIRTIO_MAX_QUEUES.
 */
int virtio_device_init(struct virtio_device *vdev, const struct virtio_device_ops *ops,
		       void *opaque, unsigned num_queues, const struct guest_memory *mem);

/* Back to the state after init: queues, negotiated features, status (§2.4). */
void virtio_device_reset(struct virtio_device *vdev);

/*
 * Processes every pending request on q with handle(): returns the bytes written
 * into the request's writable buffers, or -1 to fail the device.  Signals the
 * guest when it asked to be told; on a malformed chain the device goes to
 * NEEDS_RESET (virtio 1.2 §2.1.2) and nothing outside guest RAM is touched.
 */
void virtio_process_queue(struct virtio_device *vdev, unsigned q,
			  int (*handle)(struct virtio_device *vdev, struct vq_request *req));

/* The device changed its configuration space: bump the generation and interrupt (§2.5.1). */
void virtio_config_changed(struct virtio_device *vdev);

/* The device failed the guest's protocol: log it, set NEEDS_RESET, stop using queues. */
void virtio_needs_reset(struct virtio_device *vdev, const char *why);

#endif
