/* virtio-blk (virtio 1.2 §5.2) over the block layer. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "virtio/devices.h"

#define BLK_QUEUE_SIZE 256
#define SECTOR 512ULL
#define BLK_SEG_MAX (VQ_MAX_SEGS - 2)	/* header and status take two */
#define BLK_MAX_DISCARD_SECTORS (1u << 22)
/* QEMU's iothread defaults: poll-max-ns 32 us, growing from 4 us by doubling. */
#define BLK_POLL_MAX_NS 32000u
#define BLK_POLL_START_NS 4000u
#define BLK_POLL_SETTLE_NS 1000u	/* no new request for this long: the driver is done */

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

static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t bytes)
{
	uint64_t size = block_length(blk->disk);

	return sector <= size / SECTOR && bytes <= size - sector * SECTOR;
}

/* A batch of requests between taking them from the queue and completing them. */
struct blk_round {
	struct vq_request reqs[VIRTIO_BLK_BATCH];
	struct block_req io[VIRTIO_BLK_BATCH];	/* the block requests they turned into */
	int io_of[VIRTIO_BLK_BATCH];		/* request -> io index, -1: answered already */
	uint8_t status[VIRTIO_BLK_BATCH];
	uint32_t written[VIRTIO_BLK_BATCH];	/* data bytes for the driver */
	uint32_t type[VIRTIO_BLK_BATCH];	/* T_IN, T_OUT, ... */
};

/* Drops skip bytes from the front of a request's segments (the header of a write). */
static struct iovec *iov_advance(struct iovec *iov, unsigned *n, size_t skip)
{
	while (*n && skip >= iov->iov_len) {
		skip -= iov->iov_len;
		iov++;
		(*n)--;
	}
	if (*n) {
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
	}
	return iov;
}

static bool iov_is_zero(const struct iovec *iov, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!block_buffer_is_zero(iov[i].iov_base, iov[i].iov_len))
			return false;
	return true;
}

/* DISCARD and WRITE_ZEROES carry one range (max_*_seg is 1). */
static uint8_t prepare_range(struct virtio_blk *blk, const struct vq_request *req, bool zero,
			     struct block_req *io)
{
	struct discard_range r;

	if (req->out_len < sizeof(struct blk_header) + sizeof(r))
		return S_IOERR;
	iov_to_buf(req->out, req->nr_out, sizeof(struct blk_header), &r, sizeof(r));
	if (!in_range(blk, r.sector, (uint64_t)r.num_sectors * SECTOR) ||
	    r.num_sectors > BLK_MAX_DISCARD_SECTORS || blk->readonly)
		return S_IOERR;
	if (!zero && !blk->discard)
		return S_OK;	/* discard is a hint; ignoring it is allowed (§5.2.6.2) */
	*io = (struct block_req){
		.op = zero ? BLOCK_OP_WRITE_ZEROES : BLOCK_OP_DISCARD,
		.offset = r.sector * SECTOR,
		.len = (uint64_t)r.num_sectors * SECTOR,
		.may_unmap = zero && blk->discard && (r.flags & 1),
	};
	return S_OK;
}

/*
 * Turns a request into a block request in io (true), or answers it here
 * (false: *status and *written are final).  The request's shape (a header,
 * a status byte) was checked when it was taken.
 */
static bool blk_prepare(struct virtio_blk *blk, struct vq_request *req, struct block_req *io,
			uint32_t *type, uint8_t *status, uint32_t *written)
{
	struct blk_header h;
	size_t data_in = req->in_len - 1;

	iov_to_buf(req->out, req->nr_out, 0, &h, sizeof(h));
	*type = h.type;
	*status = S_OK;
	*written = 0;
	io->op = (enum block_op)-1;
	switch (h.type) {
	case T_IN:
		if (data_in % SECTOR || !in_range(blk, h.sector, data_in)) {
			*status = S_IOERR;
			return false;
		}
		/* The status byte ends the last segment; len stops the transfer before it. */
		*io = (struct block_req){ .op = BLOCK_OP_READ, .offset = h.sector * SECTOR,
					  .len = data_in, .iov = req->in, .niov = req->nr_in };
		return true;
	case T_OUT: {
		size_t len = req->out_len - sizeof(h);
		unsigned n = req->nr_out;
		struct iovec *iov;

		if (blk->readonly || len % SECTOR || !in_range(blk, h.sector, len)) {
			*status = S_IOERR;
			return false;
		}
		iov = iov_advance(req->out, &n, sizeof(h));
		*io = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = h.sector * SECTOR,
					  .len = len, .iov = iov, .niov = n };
		/* detect-zeroes: a write of zeroes becomes a zero range (maybe a hole). */
		if (blk->detect_zeroes != BLK_DETECT_ZEROES_OFF && len && iov_is_zero(iov, n)) {
			io->op = BLOCK_OP_WRITE_ZEROES;
			io->may_unmap = blk->detect_zeroes == BLK_DETECT_ZEROES_UNMAP;
		}
		return true;
	}
	case T_FLUSH:
		*io = (struct block_req){ .op = BLOCK_OP_FLUSH };
		return true;
	case T_GET_ID: {
		char id[20] = { 0 };	/* VIRTIO_BLK_ID_BYTES, NUL-padded, not terminated */
		memcpy(id, blk->serial, strnlen(blk->serial, sizeof(id)));
		*written = (uint32_t)iov_from_buf(req->in, req->nr_in, 0, id,
						  data_in < sizeof(id) ? data_in : sizeof(id));
		return false;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES:
		*status = prepare_range(blk, req, h.type == T_WRITE_ZEROES, io);
		return *status == S_OK && io->op != (enum block_op)-1;
	default:
		*status = S_UNSUPP;
		return false;
	}
}

/*
 * QEMU's virtio-blk accounting: reads and writes (write-zeroes as writes,
 * detect-zeroes or not), flushes, discards as unmaps; one per request, a
 * request refused before the image as invalid.  io is NULL for those.
 */
static void blk_account(struct virtio_blk *blk, const struct block_req *io, uint32_t type,
			uint8_t status, uint64_t ns)
{
	enum block_acct_type t;

	switch (type) {
	case T_IN: t = BLOCK_ACCT_READ; break;
	case T_OUT: case T_WRITE_ZEROES: t = BLOCK_ACCT_WRITE; break;
	case T_FLUSH: t = BLOCK_ACCT_FLUSH; break;
	case T_DISCARD: t = BLOCK_ACCT_UNMAP; break;
	default: return;
	}
	if (!io) {
		if (status == S_IOERR)
			block_acct_invalid(blk->disk, t);
		return;
	}
	block_acct_done(blk->disk, t, io->offset, t == BLOCK_ACCT_FLUSH ? 0 : io->len, ns,
			io->result < 0);
}

/* The status and byte count of a request whose block request completed. */
static void blk_complete(struct virtio_blk *blk, const struct block_req *io, uint32_t type,
			 uint8_t *status, uint32_t *written)
{
	*status = io->result < 0 ? S_IOERR : S_OK;
	if (io->result < 0)
		return;
	if (type == T_IN) {
		*written = (uint32_t)io->len;
		__atomic_fetch_add(&blk->reads, 1, __ATOMIC_RELAXED);
	} else if (type == T_OUT) {
		__atomic_fetch_add(&blk->writes, 1, __ATOMIC_RELAXED);
	} else if (type == T_FLUSH) {
		__atomic_fetch_add(&blk->flushes, 1, __ATOMIC_RELAXED);
	}
}

/*
 * A failed block request under werror=/rerror=: ignore completes it as
 * done, report leaves the error for the guest, stop waits (in the hook)
 * until the VM runs again and then retries, as QEMU re-issues its failed
 * requests on cont.  Flushes, discards and zero writes count as writes.
 */
static void blk_on_error(struct virtio_blk *blk, struct block_req *io, uint32_t type)
{
	bool is_read = type == T_IN;

	while (io->result < 0) {
		enum block_error_action a = is_read ? blk->rerror : blk->werror;
		int err = -io->result;
		bool retry = false;

		if (a == BLOCK_ERR_ENOSPC)
			a = err == ENOSPC ? BLOCK_ERR_STOP : BLOCK_ERR_REPORT;
		if (blk->on_error.fn)
			retry = blk->on_error.fn(blk->on_error.opaque, blk->drive, is_read, err, a);
		if (a == BLOCK_ERR_IGNORE)
			io->result = 0;
		if (a != BLOCK_ERR_STOP || !retry)
			return;
		block_aio_run(blk->aio, blk->disk, io, 1);
	}
}

int virtio_blk_start(struct virtio_blk *blk, char *err, size_t errlen)
{
	if (blk->aio)
		return 0;
	blk->round = calloc(1, sizeof(*blk->round));
	if (!blk->round) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (block_aio_open(blk->engine, &blk->aio, err, errlen) < 0) {
		free(blk->round);
		blk->round = NULL;
		return -1;
	}
	return 0;
}

void virtio_blk_release(struct virtio_blk *blk)
{
	block_aio_close(blk->aio);
	blk->aio = NULL;
	free(blk->round);
	blk->round = NULL;
	pthread_mutex_destroy(&blk->notify_lock);
}

/* Takes up to a batch of well-formed requests; *bad says why taking stopped, if it did. */
static unsigned take_batch(struct virtio_device *vdev, struct virtqueue *vq,
			   struct vq_request *reqs, const char **bad)
{
	unsigned n = 0;

	*bad = NULL;
	pthread_mutex_lock(&vdev->lock);
	while (n < VIRTIO_BLK_BATCH) {
		const char *why = NULL;
		int got = vq_pop(vq, &reqs[n], &why);
		if (got == 0)
			break;
		if (got < 0) {
			*bad = why ? why : "malformed request";
			break;
		}
		/* A header to read and a status to write are the minimum (§5.2.6). */
		if (reqs[n].out_len < sizeof(struct blk_header) || reqs[n].in_len < 1) {
			*bad = "request without a header or a status byte";
			break;
		}
		n++;
	}
	pthread_mutex_unlock(&vdev->lock);
	return n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t virtio_blk_poll_window(uint64_t poll_ns, uint64_t idle_ns)
{
	if (idle_ns > BLK_POLL_MAX_NS)
		poll_ns /= 2;
	else if (poll_ns < BLK_POLL_MAX_NS)
		poll_ns = poll_ns ? poll_ns * 2 : BLK_POLL_START_NS;
	if (poll_ns < BLK_POLL_START_NS)
		return 0;
	return poll_ns > BLK_POLL_MAX_NS ? BLK_POLL_MAX_NS : poll_ns;
}

/* A kick after the queue slept: size the next poll window by how long it slept. */
static void blk_poll_adapt(struct virtio_blk *blk)
{
	if (!blk->idle_since_ns)
		return;
	blk->poll_ns = virtio_blk_poll_window(blk->poll_ns,
					      now_ns() - blk->idle_since_ns + blk->poll_ns);
	blk->idle_since_ns = 0;
}

/*
 * After a round, watches the available ring for the driver's next request
 * instead of sleeping, with its kicks switched off meanwhile: at low queue
 * depth that saves the driver a notify exit and us a wake-up.  Kicks are on
 * again before we give up, and the ring is checked once more after that
 * (§2.7.10), so a request made meanwhile is never missed.  True if one came.
 */
static bool blk_poll(struct virtio_device *vdev, struct virtqueue *vq, struct virtio_blk *blk)
{
	bool got = false;

	if (blk->poll_ns) {
		uint64_t now = now_ns(), deadline = now + blk->poll_ns, seen_at = 0;
		unsigned seen = 0;

		pthread_mutex_lock(&vdev->lock);
		vq_set_notification(vq, false);
		pthread_mutex_unlock(&vdev->lock);
		do {
			pthread_mutex_lock(&vdev->lock);
			unsigned pending = vq_avail_pending(vq);
			pthread_mutex_unlock(&vdev->lock);
			/*
			 * A driver refilling a deep queue adds requests one by one:
			 * wait until it pauses, so they run as one batch.
			 */
			if (pending != seen) {
				seen = pending;
				seen_at = now;
			}
			if (seen >= VIRTIO_BLK_BATCH || (seen && now - seen_at >= BLK_POLL_SETTLE_NS))
				break;
			__builtin_ia32_pause();
			now = now_ns();
		} while (now < deadline);
		got = seen > 0;
	}
	pthread_mutex_lock(&vdev->lock);
	vq_set_notification(vq, true);
	got = got || vq_has_avail(vq);
	pthread_mutex_unlock(&vdev->lock);
	if (!got)
		blk->idle_since_ns = now_ns();
	return got;
}

/*
 * A kick: take up to a batch of requests under the device lock, run their
 * I/O on the request engine without it, then publish all completions and
 * interrupt once.  Repeats until the queue is empty and stays so for the
 * poll window.
 */
static void blk_notify(struct virtio_device *vdev, unsigned q)
{
	struct virtio_blk *blk = vdev->opaque;
	struct virtqueue *vq = &vdev->vqs[q];
	char err[256];

	pthread_mutex_lock(&blk->notify_lock);
	if (!blk->aio && virtio_blk_start(blk, err, sizeof(err)) < 0) {
		pthread_mutex_unlock(&blk->notify_lock);
		virtio_needs_reset(vdev, err);
		return;
	}
	blk_poll_adapt(blk);
	struct blk_round *r = blk->round;
	for (;;) {
		const char *bad;
		unsigned n = take_batch(vdev, vq, r->reqs, &bad), nio = 0;

		for (unsigned i = 0; i < n; i++) {
			r->io_of[i] = -1;
			if (blk_prepare(blk, &r->reqs[i], &r->io[nio], &r->type[i], &r->status[i],
					&r->written[i]))
				r->io_of[i] = (int)nio++;
		}
		uint64_t t0 = block_acct_now(), ns = 0;
		if (nio) {
			block_aio_run(blk->aio, blk->disk, r->io, nio);
			ns = block_acct_now() - t0;	/* the batch ran together */
			for (unsigned i = 0; i < n; i++)
				if (r->io_of[i] >= 0 && r->io[r->io_of[i]].result < 0)
					blk_on_error(blk, &r->io[r->io_of[i]], r->type[i]);
		}
		for (unsigned i = 0; i < n; i++) {
			struct vq_request *req = &r->reqs[i];
			if (r->io_of[i] >= 0)
				blk_complete(blk, &r->io[r->io_of[i]], r->type[i], &r->status[i],
					     &r->written[i]);
			blk_account(blk, r->io_of[i] >= 0 ? &r->io[r->io_of[i]] : NULL, r->type[i],
				    r->status[i], ns);
			/* The status is the last writable byte, after any data. */
			iov_from_buf(req->in, req->nr_in, req->in_len - 1, &r->status[i], 1);
		}

		pthread_mutex_lock(&vdev->lock);
		bool pushed = false;
		/* A device reset meanwhile owns the rings now: drop the stale completions. */
		for (unsigned i = 0; i < n && vq->ready; i++) {
			vq_push(vq, r->reqs[i].head, r->written[i] + 1);
			pushed = true;
		}
		if (pushed && vq_should_interrupt(vq))
			vdev->interrupt(vdev, q);
		if (bad)
			virtio_needs_reset(vdev, bad);
		pthread_mutex_unlock(&vdev->lock);
		if (bad)
			break;
		if (n < VIRTIO_BLK_BATCH && !blk_poll(vdev, vq, blk))
			break;
	}
	pthread_mutex_unlock(&blk->notify_lock);
}

static void blk_unplug(struct virtio_device *vdev)
{
	virtio_blk_release(vdev->opaque);
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
	.unplug = blk_unplug,
};

int virtio_blk_plug(struct virtio_blk *blk, const struct virtio_blk_conf *conf,
		    const struct virtio_plug *at)
{
	char err[256];

	memset(blk, 0, sizeof(*blk));
	pthread_mutex_init(&blk->notify_lock, NULL);
	blk->disk = conf->disk;
	blk->readonly = conf->disk && block_is_readonly(conf->disk);
	blk->discard = conf->discard;
	blk->detect_zeroes = conf->detect_zeroes;
	blk->engine = conf->engine;
	blk->drive = conf->drive;
	blk->werror = conf->werror;
	blk->rerror = conf->rerror;
	blk->on_error = conf->on_error;
	snprintf(blk->serial, sizeof(blk->serial), "%s", conf->serial);
	/* The request engine now, so that start-up fails if aio= cannot be had. */
	if (virtio_blk_start(blk, err, sizeof(err)) < 0) {
		log_error("%s: %s", conf->drive, err);
		virtio_blk_release(blk);
		return -1;
	}
	if (virtio_pci_plug(at, &virtio_blk_ops, blk) < 0) {
		virtio_blk_release(blk);
		return -1;
	}
	if (blk->readonly)
		at->vp->vdev.extra_features |= VIRTIO_BLK_F_RO;
	return 0;
}
