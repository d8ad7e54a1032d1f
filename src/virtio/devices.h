/* The virtio device models (one file each) and what they need to be created. */
#ifndef KESTREL_VIRTIO_DEVICES_H
#define KESTREL_VIRTIO_DEVICES_H

#include "block/block.h"
#include "ui/chardev.h"
#include "virtio/virtio.h"

extern const struct virtio_device_ops virtio_rng_ops;
extern const struct virtio_device_ops virtio_blk_ops;
extern const struct virtio_device_ops virtio_console_ops;

/* virtio-blk: the device state behind virtio_blk_ops. */
struct virtio_blk {
	struct block_dev *disk;
	char serial[21];	/* VIRTIO_BLK_ID_BYTES, NUL-terminated here */
	bool readonly;
	bool discard;
	uint64_t reads, writes, flushes;
};

/* virtio-console (single port): bytes in from the chardev, out to it. */
struct virtio_console {
	struct chardev *cd;
	struct virtio_device *vdev;	/* set once plugged */
	uint8_t pending[4096];		/* host input the guest has no buffer for yet */
	size_t npending;
};

/* Host input for the console (the chardev frontend). */
void virtio_console_input(void *opaque, const uint8_t *buf, size_t len);

#endif
