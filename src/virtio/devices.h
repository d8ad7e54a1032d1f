/* The virtio device models (one file each) and what they need to be created. */
#ifndef KESTREL_VIRTIO_DEVICES_H
#define KESTREL_VIRTIO_DEVICES_H

#include "block/aio.h"
#include "block/block.h"
#include "ui/chardev.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

extern const struct virtio_device_ops virtio_rng_ops;
extern const struct virtio_device_ops virtio_blk_ops;
extern const struct virtio_device_ops virtio_console_ops;
extern const struct virtio_device_ops virtio_net_ops;

#define VIRTIO_BLK_BATCH BLOCK_AIO_MAX_BATCH	/* requests taken from a queue per round */

/* detect-zeroes=: how a write of only zeroes is turned into a cheaper request. */
enum blk_detect_zeroes {
	BLK_DETECT_ZEROES_OFF,
	BLK_DETECT_ZEROES_ON,		/* written as a zero range */
	BLK_DETECT_ZEROES_UNMAP,	/* ... that may deallocate (needs discard=unmap) */
};

struct blk_round;	/* one batch of requests in flight (blk.c) */

/* virtio-blk: the device state behind virtio_blk_ops. */
struct virtio_blk {
	struct block_dev *disk;
	char serial[21];	/* VIRTIO_BLK_ID_BYTES, NUL-terminated here */
	bool readonly;
	bool discard;
	enum blk_detect_zeroes detect_zeroes;
	enum block_aio_engine engine;	/* aio= */
	uint64_t reads, writes, flushes;	/* updated atomically */
	pthread_mutex_t notify_lock;	/* one round at a time: the I/O thread or a vCPU */
	struct block_aio *aio;		/* opened by virtio_blk_start or the first kick */
	struct blk_round *round;
};

/*
 * Opens the request engine (aio=) so that start-up can fail with its reason
 * (io_uring unavailable, no threads); 0, or -1 with a message in err.
 */
int virtio_blk_start(struct virtio_blk *blk, char *err, size_t errlen);
/* Stops the request engine and frees the batch buffers. */
void virtio_blk_release(struct virtio_blk *blk);

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
