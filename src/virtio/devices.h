/* The virtio device models (one file each) and what they need to be created. */
#ifndef KESTREL_VIRTIO_DEVICES_H
#define KESTREL_VIRTIO_DEVICES_H

#include "block/block.h"
#include "ui/chardev.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

extern const struct virtio_device_ops virtio_rng_ops;
extern const struct virtio_device_ops virtio_blk_ops;
extern const struct virtio_device_ops virtio_console_ops;
extern const struct virtio_device_ops virtio_net_ops;

#define VIRTIO_BLK_WORKERS 4	/* requests served in parallel (aio=threads) */
#define VIRTIO_BLK_BATCH 64	/* requests taken from a queue per round */

/*
 * Workers that run a batch of requests at once, so a queue depth above one
 * keeps several host I/Os in flight; created on the first multi-request batch.
 */
struct blk_pool {
	pthread_mutex_t lock;		/* the batch hand-off below */
	pthread_cond_t work, done;
	pthread_t threads[VIRTIO_BLK_WORKERS];
	unsigned nthreads;
	bool stop;
	struct virtio_device *vdev;
	struct vq_request *reqs;	/* [VIRTIO_BLK_BATCH] */
	int *results;			/* bytes written per request, -1 for a bad one */
	unsigned n, next, finished;
};

/* virtio-blk: the device state behind virtio_blk_ops. */
struct virtio_blk {
	struct block_dev *disk;
	char serial[21];	/* VIRTIO_BLK_ID_BYTES, NUL-terminated here */
	bool readonly;
	bool discard;
	uint64_t reads, writes, flushes;	/* updated atomically */
	pthread_mutex_t notify_lock;	/* one round at a time: the I/O thread or a vCPU */
	bool pool_ready;
	struct blk_pool pool;
};

/* Stops the worker threads and frees the batch buffers. */
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
