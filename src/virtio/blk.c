/* virtio-blk (virtio 1.2 §5.2) over the block layer. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/devices.h"

#define BLK_QUEUE_SIZE 256
#define SECTOR 512ULL
#define BLK_SEG_MAX (VQ_MAX_SEGS - 2)	/* header and status take two */
#define BLK_MAX_DISCARD_SECTORS (1u << 22)

#define VIRTIO_BLK_F_SEG_MAX (1ULL << 2)
#define VIRTIO_BLK_F_RO (1ULL << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ULL << 6)
#define VIRTIO_BLK_F_FLUSH (1ULL << 9)
#define VIRTIO_BLK_F_MQ (1ULL << 12)
#define VIRTIO_BLK_F_DISCARD (1ULL << 13)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ULL << 14)

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

struct blk_config {
	uint64_t capacity;
	uint32_t size_max, seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed));

struct blk_header {
	uint32_t type, reserved;
	uint64_t sector;
};

struct discard_range {
	uint64_t sector;
	uint32_t num_sectors, flags;
};

static void blk_read_config(struct virtio_device *vdev, uint32_t offset, void *buf, uint32_t len)
{
	struct virtio_blk *blk = vdev->opaque;
	struct blk_config c = {
		.capacity = block_length(blk->disk) / SECTOR,
		.seg_max = BLK_SEG_MAX,
		.blk_size = SECTOR,
		.num_queues = (uint16_t)vdev->num_queues,
		.max_discard_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_discard_seg = 1,
		.discard_sector_alignment = 1,
		.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = blk->discard,
	};

	if (offset + len <= sizeof(c))
		memcpy(buf, (uint8_t *)&c + offset, len);
}

/* Moves len bytes between the disk at pos and the request's segments (skipping skip bytes). */
static int transfer(struct virtio_blk *blk, const struct iovec *iov, unsigned n, size_t skip,
		    uint64_t pos, size_t len, bool write)
{
	for (unsigned i = 0; i < n && len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len)
			chunk = len;
		uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
		int rc = write ? block_pwrite(blk->disk, pos, p, chunk)
			       : block_pread(blk->disk, pos, p, chunk);
		if (rc < 0)
			return rc;
		pos += chunk;
		len -= chunk;
		skip = 0;
	}
	return 0;
}

static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
	uint64_t size = block_length(blk->disk);

	return sector <= size / SECTOR && bytes <= size - sector * SECTOR;
}

static uint8_t blk_discard_or_zero(struct virtio_blk *blk, const struct vq_request *req,
				   bool zero)
{
	struct discard_range r;

	if (req->out_len < sizeof(struct blk_header) + sizeof(r))
		return S_IOERR;
	iov_to_buf(req->out, req->nr_out, sizeof(struct blk_header), &r, sizeof(r));
	if (!in_range(blk, r.sector, (uint64_t)r.num_sectors * SECTOR) ||
	    r.num_sectors > BLK_MAX_DISCARD_SECTORS)
		return S_IOERR;
	if (blk->readonly)
		return S_IOERR;
	if (zero)
		return block_write_zeroes(blk->disk, r.sector * SECTOR, (uint64_t)r.num_sectors * SECTOR,
					  blk->discard && (r.flags & 1)) < 0 ? S_IOERR : S_OK;
	if (!blk->discard)
		return S_OK;	/* discard is a hint; ignoring it is allowed (§5.2.6.2) */
	return block_discard(blk->disk, r.sector * SECTOR, (uint64_t)r.num_sectors * SECTOR) < 0
		       ? S_IOERR : S_OK;
}

static int blk_handle(struct virtio_device *vdev, struct vq_request *req)
{
	struct virtio_blk *blk = vdev->opaque;
	struct blk_header h;
	size_t data_in;
	uint8_t status = S_OK;
	uint32_t written = 0;

	/* A header to read and a status byte to write are the minimum (§5.2.6). */
	if (req->out_len < sizeof(h) || req->in_len < 1)
		return -1;
	iov_to_buf(req->out, req->nr_out, 0, &h, sizeof(h));
	data_in = req->in_len - 1;

	switch (h.type) {
	case T_IN:
		if (data_in % SECTOR || !in_range(blk, h.sector, data_in) ||
		    transfer(blk, req->in, req->nr_in, 0, h.sector * SECTOR, data_in, false) < 0) {
			status = S_IOERR;
			break;
		}
		__atomic_fetch_add(&blk->reads, 1, __ATOMIC_RELAXED);
		written = (uint32_t)data_in;
		break;
	case T_OUT: {
		size_t len = req->out_len - sizeof(h);
		if (blk->readonly || len % SECTOR || !in_range(blk, h.sector, len) ||
		    transfer(blk, req->out, req->nr_out, sizeof(h), h.sector * SECTOR, len, true) < 0) {
			status = S_IOERR;
			break;
		}
		__atomic_fetch_add(&blk->writes, 1, __ATOMIC_RELAXED);
		break;
	}
	case T_FLUSH:
		status = block_flush(blk->disk) < 0 ? S_IOERR : S_OK;
		__atomic_fetch_add(&blk->flushes, 1, __ATOMIC_RELAXED);
		break;
	case T_GET_ID: {
		char id[20] = { 0 };	/* VIRTIO_BLK_ID_BYTES, NUL-padded, not terminated */
		memcpy(id, blk->serial, strnlen(blk->serial, sizeof(id)));
		written = (uint32_t)iov_from_buf(req->in, req->nr_in, 0, id,
						 data_in < sizeof(id) ? data_in : sizeof(id));
		break;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES:
		status = blk_discard_or_zero(blk, req, h.type == T_WRITE_ZEROES);
		break;
	default:
		status = S_UNSUPP;
		break;
	}
	/* The status is the last writable byte, after any data. */
	iov_from_buf(req->in, req->nr_in, req->in_len - 1, &status, 1);
	return (int)(written + 1);
}

/* ---- parallel request execution ------------------------------------------ */

static void *blk_worker(void *arg)
{
	struct blk_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		if (p->next >= p->n) {
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		unsigned i = p->next++;
		pthread_mutex_unlock(&p->lock);
		int result = blk_handle(p->vdev, &p->reqs[i]);	/* the I/O, unlocked */
		pthread_mutex_lock(&p->lock);
		p->results[i] = result;
		if (++p->finished == p->n)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int pool_start(struct virtio_blk *blk, struct virtio_device *vdev)
{
	struct blk_pool *p = &blk->pool;

	memset(p, 0, sizeof(*p));
	p->vdev = vdev;
	p->reqs = calloc(VIRTIO_BLK_BATCH, sizeof(*p->reqs));
	p->results = calloc(VIRTIO_BLK_BATCH, sizeof(*p->results));
	if (!p->reqs || !p->results)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (; p->nthreads < VIRTIO_BLK_WORKERS; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, blk_worker, p) != 0)
			break;
	if (p->nthreads)
		return 0;
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);
fail:
	free(p->reqs);
	free(p->results);
	return -1;
}

void virtio_blk_release(struct virtio_blk *blk)
{
	struct blk_pool *p = &blk->pool;

	if (blk->pool_ready) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->work);
		pthread_mutex_unlock(&p->lock);
		for (unsigned i = 0; i < p->nthreads; i++)
			pthread_join(p->threads[i], NULL);
		pthread_cond_destroy(&p->work);
		pthread_cond_destroy(&p->done);
		pthread_mutex_destroy(&p->lock);
		free(p->reqs);
		free(p->results);
		blk->pool_ready = false;
	}
	pthread_mutex_destroy(&blk->notify_lock);
}

/* Runs n taken requests on the workers and waits for all of them. */
static void pool_run(struct blk_pool *p, unsigned n)
{
	pthread_mutex_lock(&p->lock);
	p->n = n;
	p->next = p->finished = 0;
	pthread_cond_broadcast(&p->work);
	while (p->finished < n)
		pthread_cond_wait(&p->done, &p->lock);
	p->n = p->next = 0;
	pthread_mutex_unlock(&p->lock);
}

/*
 * A kick: take up to a batch of requests under the device lock, run them in
 * parallel without it, then publish all completions and interrupt once.
 * Repeats until the queue is empty.
 */
static void blk_notify(struct virtio_device *vdev, unsigned q)
{
	struct virtio_blk *blk = vdev->opaque;
	struct virtqueue *vq = &vdev->vqs[q];
	struct blk_pool *p = &blk->pool;
	const char *why = NULL;

	pthread_mutex_lock(&blk->notify_lock);
	if (!blk->pool_ready)
		blk->pool_ready = pool_start(blk, vdev) == 0;
	if (!blk->pool_ready) {
		/* No threads to be had: serve the queue one request at a time. */
		pthread_mutex_unlock(&blk->notify_lock);
		virtio_process_queue(vdev, q, blk_handle);
		return;
	}
	for (;;) {
		unsigned n = 0;
		int got = 0;

		pthread_mutex_lock(&vdev->lock);
		while (n < VIRTIO_BLK_BATCH && (got = vq_pop(vq, &p->reqs[n], &why)) == 1) {
			/* Shape first (a header to read, a status to write): a bad one ends the batch. */
			if (p->reqs[n].out_len < sizeof(struct blk_header) || p->reqs[n].in_len < 1) {
				got = -1;
				why = "request without a header or a status byte";
				break;
			}
			n++;
		}
		pthread_mutex_unlock(&vdev->lock);
		if (n)
			pool_run(p, n);

		pthread_mutex_lock(&vdev->lock);
		bool pushed = false, bad = got < 0;
		/* A device reset meanwhile owns the rings now: drop the stale completions. */
		for (unsigned i = 0; i < n && vq->ready; i++) {
			if (p->results[i] < 0) {
				bad = true;
				why = "malformed request";
				break;
			}
			vq_push(vq, p->reqs[i].head, (uint32_t)p->results[i]);
			pushed = true;
		}
		if (pushed && vq_should_interrupt(vq))
			vdev->interrupt(vdev, q);
		if (bad)
			virtio_needs_reset(vdev, why);
		pthread_mutex_unlock(&vdev->lock);
		if (bad || n < VIRTIO_BLK_BATCH)
			break;
	}
	pthread_mutex_unlock(&blk->notify_lock);
}

const struct virtio_device_ops virtio_blk_ops = {
	.name = "virtio-blk-pci",
	.device_id = VIRTIO_ID_BLOCK,
	.pci_class = 0x010000,	/* mass storage, SCSI: what QEMU reports */
	/* MQ is offered always: num_queues in the config says how many (1 by default). */
	.features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH |
		    VIRTIO_BLK_F_MQ | VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES,
	.num_queues = 1,
	.queue_max = BLK_QUEUE_SIZE,
	.config_size = sizeof(struct blk_config),
	.read_config = blk_read_config,
	.queue_notify = blk_notify,
};
