/*
 * A hostile guest's virtqueues.  The input is a 16-byte header (queue
 * parameters) followed by guest RAM: descriptor table, avail ring, indirect
 * tables and buffers, wherever the bytes put them.  Three modes:
 *
 *   0  vq_pop / vq_push / vq_should_interrupt in a loop on the raw queue;
 *   1  the same queue behind virtio-blk (virtio_blk_ops.queue_notify) over a
 *      32 KiB raw image in a temporary file;
 *   2  a virtio-blk PCI function driven through its BARs and config space by
 *      8-byte records (the driver's register traffic, kicks included), the
 *      rest of the input being RAM as before.
 *
 * Guest RAM is two malloc'd regions with a hole between (or one region), so
 * any host access outside them lands in an AddressSanitizer redzone.
 * Checked on top: every mapped segment lies inside a region, the segment
 * counts and byte totals agree and stay within VQ_MAX_SEGS / VQ_MAX_REQUEST,
 * a refusal carries a message, heads lie inside the queue, and the used index
 * moves by exactly one per accepted request.
 *
 * Header: [0] mode, [1] log2 queue size, [2] flags (1 event idx, 2 two
 * regions, 4 read-only disk, 8 ring addresses from [8..13], 16 discard),
 * [3] mode 2: number of register records, [4..5] initial last_avail,
 * [6..7] initial used idx, [8..9] desc/16, [10..11] avail/2, [12..13] used/4.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/devices.h"
#include "virtio/pci.h"
#include "fuzz_virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define LOW_SIZE (64 * 1024)
#define HIGH_GPA 0x100000
#define HIGH_SIZE (16 * 1024)
#define DISK_SIZE (32 * 1024)
#define HEADER 16

static uint8_t *low, *high;
static struct block_dev *disk_rw, *disk_ro;
static uint8_t disk_image[DISK_SIZE];
static int disk_fd = -1;

static void init_once(void)
{
	char path[] = "/tmp/kestrel-fuzz-vq-XXXXXX";
	char err[256];

	if (low)
		return;
	low = malloc(LOW_SIZE);
	high = malloc(HIGH_SIZE);
	disk_fd = mkstemp(path);
	if (!low || !high || disk_fd < 0)
		abort();
	for (size_t i = 0; i < DISK_SIZE; i++)
		disk_image[i] = (uint8_t)(i * 13 + (i >> 9));
	if (pwrite(disk_fd, disk_image, DISK_SIZE, 0) != DISK_SIZE)
		abort();
	if (block_open(path, "raw", BLOCK_NO_LOCK, &disk_rw, err, sizeof(err)) < 0 ||
	    block_open(path, "raw", BLOCK_NO_LOCK | BLOCK_RDONLY, &disk_ro, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_virtqueue: %s\n", err);
		abort();
	}
	unlink(path);
}

static void memory_setup(struct guest_memory *mem, bool two, const uint8_t *body, size_t n)
{
	fuzz_virtio_memory(mem, low, LOW_SIZE, high, HIGH_GPA, HIGH_SIZE, two, body, n);
}

static void queue_params(struct virtqueue *vq, const uint8_t *h)
{
	uint64_t n = 1ULL << (h[1] % 11);	/* 1 .. 1024 */

	vq->size = (uint16_t)n;
	vq->event_idx = h[2] & 1;
	vq->last_avail = fuzz_get16(h + 4);
	vq->used_idx = fuzz_get16(h + 6);
	if (h[2] & 8) {
		vq->desc_gpa = (uint64_t)fuzz_get16(h + 8) * 16;
		vq->avail_gpa = (uint64_t)fuzz_get16(h + 10) * 2;
		vq->used_gpa = (uint64_t)fuzz_get16(h + 12) * 4;
		/* The top bit of each moves the ring to the high region's range. */
		if (vq->desc_gpa >= 0x80000)
			vq->desc_gpa += HIGH_GPA - 0x80000;
	} else {
		/* The layout a driver would pick: desc, avail, used, packed from 0. */
		vq->desc_gpa = 0;
		vq->avail_gpa = 16 * n;
		vq->used_gpa = (16 * n + 6 + 2 * n + 3) & ~3ULL;
	}
}

/* Invariants of an accepted request; touches every byte so ASan sees the ranges. */
static void check_request(const struct guest_memory *mem, const struct virtqueue *vq,
			  const struct vq_request *req)
{
	size_t out = 0, in = 0;
	volatile uint8_t sink = 0;

	if (req->head >= vq->size || req->nr_out > VQ_MAX_SEGS || req->nr_in > VQ_MAX_SEGS)
		abort();
	for (unsigned i = 0; i < req->nr_out; i++) {
		const struct iovec *v = &req->out[i];
		if (!fuzz_in_ram(mem, v->iov_base, v->iov_len) || v->iov_len == 0)
			abort();
		out += req->out[i].iov_len;
		sink ^= ((const uint8_t *)req->out[i].iov_base)[0];
		sink ^= ((const uint8_t *)req->out[i].iov_base)[req->out[i].iov_len - 1];
	}
	for (unsigned i = 0; i < req->nr_in; i++) {
		const struct iovec *v = &req->in[i];
		if (!fuzz_in_ram(mem, v->iov_base, v->iov_len) || v->iov_len == 0)
			abort();
		in += req->in[i].iov_len;
		((uint8_t *)req->in[i].iov_base)[0] = 0xa5;
		((uint8_t *)req->in[i].iov_base)[req->in[i].iov_len - 1] = 0x5a;
	}
	if (out != req->out_len || in != req->in_len || out + in > VQ_MAX_REQUEST)
		abort();
	(void)sink;
}

static void run_queue(const uint8_t *h, const uint8_t *body, size_t n)
{
	static struct vq_request req;	/* 4 KiB: off the stack */
	struct guest_memory mem;
	struct virtqueue vq;

	memory_setup(&mem, h[2] & 2, body, n);
	vq.mem = &mem;
	vq_reset(&vq);
	queue_params(&vq, h);
	if (!vq_check_rings(&vq))
		return;
	vq.ready = true;
	for (unsigned i = 0; i <= vq.size; i++) {
		const char *msg = NULL;
		uint16_t used_before = vq.used_idx;
		int got = vq_pop(&vq, &req, &msg);
		if (got == 0)
			break;
		if (got < 0) {
			if (!msg)
				abort();
			break;
		}
		if (got != 1 || msg)
			abort();
		check_request(&mem, &vq, &req);
		/* Also a copy across the segments, with a skip from the input. */
		uint8_t buf[64];
		size_t skip = h[14] % 32;
		size_t want = req.out_len > skip ? req.out_len - skip : 0;
		if (iov_to_buf(req.out, req.nr_out, skip, buf, sizeof(buf)) !=
		    (want < sizeof(buf) ? want : sizeof(buf)))
			abort();
		want = req.in_len > skip ? req.in_len - skip : 0;
		if (iov_from_buf(req.in, req.nr_in, skip, buf, sizeof(buf)) !=
		    (want < sizeof(buf) ? want : sizeof(buf)))
			abort();
		vq_push(&vq, req.head, (uint32_t)req.in_len);
		if ((uint16_t)(vq.used_idx - used_before) != 1)
			abort();
		vq_should_interrupt(&vq);
	}
}

static void reset_disk(void)
{
	if (pwrite(disk_fd, disk_image, DISK_SIZE, 0) != DISK_SIZE)
		abort();
}

static void run_blk(const uint8_t *h, const uint8_t *rest, size_t n, bool transport)
{
	static struct virtio_pci vp;
	static struct pci_bus bus;
	struct guest_memory mem;
	struct virtio_blk blk = {
		.disk = (h[2] & 4) ? disk_ro : disk_rw,
		.readonly = (h[2] & 4) != 0,
		.discard = (h[2] & 16) != 0,
	};
	const uint8_t *records = rest;
	size_t nrec = transport ? h[3] : 0;

	if (nrec * FUZZ_VIRTIO_RECORD > n)
		nrec = n / FUZZ_VIRTIO_RECORD;
	strcpy(blk.serial, "fuzz");
	memory_setup(&mem, h[2] & 2, rest + nrec * FUZZ_VIRTIO_RECORD,
		     n - nrec * FUZZ_VIRTIO_RECORD);
	if (pci_bus_init(&bus) < 0 ||
	    virtio_pci_create(&vp, &bus, 1, &virtio_blk_ops, &blk, 0, &mem, -1, NULL) < 0)
		abort();

	if (!transport) {
		struct virtqueue *vq = &vp.vdev.vqs[0];
		queue_params(vq, h);
		if (vq->size > virtio_blk_ops.queue_max)
			vq->size = virtio_blk_ops.queue_max;
		if (!vq_check_rings(vq))
			goto out;
		vq->ready = true;
		vp.vdev.driver_features = VIRTIO_F_VERSION_1 | ((h[2] & 1) ? VIRTIO_F_EVENT_IDX : 0);
		vp.vdev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
		uint16_t used_start = vq->used_idx, taken_start = vq->last_avail;
		virtio_blk_ops.queue_notify(&vp.vdev, 0);
		/*
		 * One used entry per request taken; and unless the queue broke, every
		 * request the driver offered (as the avail index reads now: the device's
		 * own writes may have landed on the ring) was taken.
		 */
		uint16_t taken = (uint16_t)(vq->last_avail - taken_start);
		uint16_t done = (uint16_t)(vq->used_idx - used_start);
		if (vp.vdev.status & VIRTIO_STATUS_NEEDS_RESET) {
			/* The request that broke it may or may not have been taken. */
			if (taken != done && taken != (uint16_t)(done + 1))
				abort();
		} else if (done != taken ||
			   vq->last_avail !=
			   fuzz_get16((const uint8_t *)memory_ptr(&mem, vq->avail_gpa, 4) + 2)) {
			abort();
		}
		goto out;
	}

	for (size_t i = 0; i < nrec; i++)
		fuzz_virtio_io(&bus, &vp, 1, records + FUZZ_VIRTIO_RECORD * i);
out:
	virtio_pci_destroy(&vp);
	virtio_blk_release(&blk);	/* joins the request workers started by a kick */
	pci_bus_destroy(&bus);
	if (!blk.readonly)
		reset_disk();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < HEADER)
		return 0;
	init_once();
	switch (data[0] % 3) {
	case 0:
		run_queue(data, data + HEADER, len - HEADER);
		break;
	case 1:
		run_blk(data, data + HEADER, len - HEADER, false);
		break;
	default:
		run_blk(data, data + HEADER, len - HEADER, true);
		break;
	}
	return 0;
}
