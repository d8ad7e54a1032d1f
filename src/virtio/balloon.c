/*
 * virtio-balloon (virtio 1.2 §5.5): the host names a target, the guest
 * hands pages back on the inflate queue and takes them again on the deflate
 * queue.  Pages given to us are returned to the host kernel at once
 * (memory_discard: MADV_DONTNEED, MADV_REMOVE for shared memory); a
 * deflated page needs nothing, it refaults on the guest's next touch.
 *
 * Queues as QEMU numbers them: 0 inflate, 1 deflate, 2 statistics, then the
 * free page reporting queue (3) when free-page-reporting=on.  QEMU never
 * offers FREE_PAGE_HINT's queue unless asked, and neither do we; Linux
 * numbers the queues it finds the same way (absent ones take no index).
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/devices.h"

#define BALLOON_QUEUE_SIZE 128
#define INFLATE_QUEUE 0
#define DEFLATE_QUEUE 1
#define STATS_QUEUE 2
#define REPORTING_QUEUE 3
#define BALLOON_PFN_SHIFT 12	/* PFNs are 4 KiB whatever the host page size (§5.5.6) */

struct balloon_config {
	uint32_t num_pages;
	uint32_t actual;
} __attribute__((packed));

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

static void balloon_read_config(struct virtio_device *vdev, uint32_t offset, void *buf,
				uint32_t len)
{
	struct virtio_balloon *b = vdev->opaque;
	struct balloon_config c = { .num_pages = b->num_pages, .actual = b->actual };

	if (offset + len <= sizeof(c))
		memcpy(buf, (uint8_t *)&c + offset, len);
}

/* The driver writes "actual" (§5.5.6.1); a change is the BALLOON_CHANGE event. */
static void balloon_write_config(struct virtio_device *vdev, uint32_t offset, const void *buf,
				 uint32_t len)
{
	struct virtio_balloon *b = vdev->opaque;
	struct balloon_config c = { .num_pages = b->num_pages, .actual = b->actual };
	uint64_t one = 1;

	if (offset < offsetof(struct balloon_config, actual) || offset + len > sizeof(c))
		return;	/* num_pages is the device's; the driver may not write it */
	memcpy((uint8_t *)&c + offset, buf, len);
	/* The guest cannot give more than its RAM; the host reports RAM minus this. */
	if (b->mem && c.actual > b->mem->ram_size >> BALLOON_PFN_SHIFT)
		c.actual = (uint32_t)(b->mem->ram_size >> BALLOON_PFN_SHIFT);
	if (c.actual == b->actual)
		return;
	b->actual = c.actual;
	if (b->change_fd >= 0 && write(b->change_fd, &one, sizeof(one)) < 0)
		log_debug("virtio-balloon: eventfd: %s", strerror(errno));
}

/*
 * Inflated 4 KiB pages inside a huge host page: remember which of its pages
 * the guest gave, and free the host page once it has all of them.  One page
 * is tracked at a time (as QEMU does); a driver filling huge pages one after
 * the other, as Linux and the probe do, gets them all back.
 */
static void balloon_partial(struct virtio_balloon *b, uint64_t gpa, uint64_t len, uint64_t page)
{
	const unsigned words = sizeof(b->partial_bits) / sizeof(b->partial_bits[0]);

	for (uint64_t a = gpa; a < gpa + len; a += 4096) {
		uint64_t base = a & ~(page - 1), bit = (a - base) >> BALLOON_PFN_SHIFT;
		bool full = true;

		if (base != b->partial_base || page != b->partial_size) {
			memset(b->partial_bits, 0, sizeof(b->partial_bits));
			b->partial_base = base;
			b->partial_size = page;
		}
		b->partial_bits[bit / 64] |= 1ULL << (bit % 64);
		for (unsigned i = 0; i < (page >> BALLOON_PFN_SHIFT) / 64 && i < words; i++)
			full &= b->partial_bits[i] == UINT64_MAX;
		if (full) {
			if (memory_discard(b->mem, base, page) < 0)
				log_debug("virtio-balloon: cannot discard a huge page at 0x%llx",
					  (unsigned long long)base);
			b->partial_size = 0;
		}
	}
}

/* Returns guest pages [gpa, gpa + len) to the host; bad ranges are the guest's loss. */
static void balloon_discard(struct virtio_balloon *b, uint64_t gpa, uint64_t len)
{
	uint64_t page = memory_page_size(b->mem, gpa);

	if (page > 4096 && page <= BALLOON_PARTIAL_MAX) {
		/* Whole huge pages in the run go at once; the ragged ends are tracked. */
		uint64_t lo = (gpa + page - 1) & ~(page - 1), hi = (gpa + len) & ~(page - 1);
		if (lo >= hi) {
			balloon_partial(b, gpa, len, page);
			return;
		}
		if (gpa < lo)
			balloon_partial(b, gpa, lo - gpa, page);
		if (memory_discard(b->mem, lo, hi - lo) < 0)
			log_debug("virtio-balloon: cannot discard huge pages");
		if (hi < gpa + len)
			balloon_partial(b, hi, gpa + len - hi, page);
		return;
	}
	if (memory_discard(b->mem, gpa, len) < 0)
		log_debug("virtio-balloon: cannot discard 0x%llx+0x%llx", (unsigned long long)gpa,
			  (unsigned long long)len);
}

/*
 * Inflate and deflate buffers are arrays of 32-bit PFNs (§5.5.6).  Runs of
 * consecutive PFNs, ascending or descending (drivers take pages from either
 * end of their free lists), are discarded with one call.
 */
static int balloon_pages(struct virtio_device *vdev, struct vq_request *req, bool inflate)
{
	struct virtio_balloon *b = vdev->opaque;
	uint64_t lo = 0, hi = 0, n = 0;	/* the run: PFNs [lo, hi) */
	uint32_t pfn;

	for (size_t off = 0; off + 4 <= req->out_len; off += 4) {
		if (iov_to_buf(req->out, req->nr_out, off, &pfn, 4) != 4)
			break;
		n++;
		if (!inflate)
			continue;
		if (hi > lo && (uint64_t)pfn == hi) {
			hi++;
			continue;
		}
		if (hi > lo && (uint64_t)pfn + 1 == lo) {
			lo--;
			continue;
		}
		if (hi > lo)
			balloon_discard(b, lo << BALLOON_PFN_SHIFT, (hi - lo) << BALLOON_PFN_SHIFT);
		lo = pfn;
		hi = (uint64_t)pfn + 1;
	}
	if (hi > lo)
		balloon_discard(b, lo << BALLOON_PFN_SHIFT, (hi - lo) << BALLOON_PFN_SHIFT);
	if (inflate)
		b->inflated += n;
	else
		b->deflated += n;
	return 0;
}

static int balloon_inflate(struct virtio_device *vdev, struct vq_request *req)
{
	return balloon_pages(vdev, req, true);
}

static int balloon_deflate(struct virtio_device *vdev, struct vq_request *req)
{
	return balloon_pages(vdev, req, false);
}

/*
 * Free page reporting (§5.5.6.7): device-writable buffers that are the
 * free pages themselves; their content is of no interest, only their place.
 */
static int balloon_report(struct virtio_device *vdev, struct vq_request *req)
{
	struct virtio_balloon *b = vdev->opaque;

	for (unsigned i = 0; i < req->nr_in; i++) {
		if (memory_discard_host(b->mem, req->in[i].iov_base, req->in[i].iov_len) < 0)
			log_debug("virtio-balloon: cannot discard a reported range");
		b->reported += req->in[i].iov_len >> BALLOON_PFN_SHIFT;
	}
	return 0;
}

/* Gives the guest its statistics buffer back so it fills it again (§5.5.6.3). */
static void stats_request(struct virtio_balloon *b)
{
	struct virtio_device *vdev = b->vdev;
	struct virtqueue *vq = &vdev->vqs[STATS_QUEUE];

	if (!b->stats_held || !vq->ready || !(vdev->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	b->stats_held = false;
	vq_push(vq, b->stats_head, 0);
	if (vq_should_interrupt(vq))
		vdev->interrupt(vdev, STATS_QUEUE);
}

/* A buffer of tag/value pairs; kept (not used) until the next poll. Caller holds the lock. */
static void stats_receive(struct virtio_balloon *b)
{
	struct virtio_device *vdev = b->vdev;
	struct virtqueue *vq = &vdev->vqs[STATS_QUEUE];
	struct vq_request req;
	struct balloon_stat st;
	const char *why;
	int got;

	while ((got = vq_pop(vq, &req, &why)) != 0) {
		if (got < 0) {
			virtio_needs_reset(vdev, why);
			return;
		}
		if (b->stats_held)	/* the driver may have only one buffer out (§5.5.6.3) */
			vq_push(vq, b->stats_head, 0);
		for (size_t off = 0; off + sizeof(st) <= req.out_len; off += sizeof(st)) {
			iov_to_buf(req.out, req.nr_out, off, &st, sizeof(st));
			if (st.tag < BALLOON_NR_STATS)
				b->stats[st.tag] = st.val;
		}
		b->stats_last_update = time(NULL);
		b->stats_head = req.head;
		b->stats_held = true;
	}
}

static void balloon_notify(struct virtio_device *vdev, unsigned q)
{
	struct virtio_balloon *b = vdev->opaque;

	switch (q) {
	case INFLATE_QUEUE:
		virtio_process_queue(vdev, q, balloon_inflate);
		break;
	case DEFLATE_QUEUE:
		virtio_process_queue(vdev, q, balloon_deflate);
		break;
	case STATS_QUEUE:
		pthread_mutex_lock(&vdev->lock);
		stats_receive(b);
		pthread_mutex_unlock(&vdev->lock);
		break;
	case REPORTING_QUEUE:
		virtio_process_queue(vdev, q, balloon_report);
		break;
	}
}

static void balloon_reset(struct virtio_device *vdev)
{
	struct virtio_balloon *b = vdev->opaque;

	/* A driver that resets the device owns all its memory again. */
	b->actual = 0;
	b->stats_held = false;
}

static void balloon_unplug(struct virtio_device *vdev)
{
	struct virtio_balloon *b = vdev->opaque;

	virtio_balloon_detach(b, b->io);
}

const struct virtio_device_ops virtio_balloon_ops = {
	.name = "virtio-balloon-pci",
	.device_id = VIRTIO_ID_BALLOON,
	.pci_class = 0x00ff00,	/* "unclassified", as QEMU */
	.features = 1ULL << VIRTIO_BALLOON_F_STATS_VQ,	/* QEMU always offers it */
	.num_queues = 3,
	.queue_max = BALLOON_QUEUE_SIZE,
	.config_size = sizeof(struct balloon_config),
	.read_config = balloon_read_config,
	.write_config = balloon_write_config,
	.queue_notify = balloon_notify,
	.reset = balloon_reset,
	.unplug = balloon_unplug,
};

static void timer_arm(struct virtio_balloon *b)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)b->polling_interval;
	its.it_interval.tv_sec = (time_t)b->polling_interval;
	if (timerfd_settime(b->timer_fd, 0, &its, NULL) < 0)
		log_debug("virtio-balloon: timerfd: %s", strerror(errno));
}

/* The I/O thread: time to ask for fresh statistics (QEMU's balloon_stats_poll_cb). */
static void timer_fired(void *opaque)
{
	struct virtio_balloon *b = opaque;

	/* The I/O thread has read the expirations already. */
	if (!b->vdev)
		return;
	pthread_mutex_lock(&b->vdev->lock);
	stats_request(b);
	pthread_mutex_unlock(&b->vdev->lock);
}

int virtio_balloon_init(struct virtio_balloon *b)
{
	for (unsigned i = 0; i < BALLOON_NR_STATS; i++)
		b->stats[i] = UINT64_MAX;
	b->change_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->change_fd < 0 || b->timer_fd < 0)
		return -1;
	return 0;
}

int virtio_balloon_attach(struct virtio_balloon *b, struct virtio_device *vdev,
			  const struct guest_memory *mem, struct iothread *io)
{
	b->vdev = vdev;
	b->io = io;
	b->mem = mem;
	b->actual = 0;		/* a new VM: the guest holds nothing yet */
	b->stats_held = false;
	b->partial_size = 0;
	if (b->deflate_on_oom)
		vdev->extra_features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (b->free_page_reporting)
		vdev->extra_features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
	if (!io)
		return 0;
	b->timer_watch = (struct iothread_watch){ .fd = b->timer_fd, .fn = timer_fired, .opaque = b };
	if (iothread_watch(io, &b->timer_watch) < 0)
		return -1;
	b->timer_watched = true;
	timer_arm(b);
	return 0;
}

/* After the I/O thread has stopped: nothing runs the device any more. */
void virtio_balloon_detach(struct virtio_balloon *b, struct iothread *io)
{
	if (b->timer_watched)
		iothread_unwatch(io, &b->timer_watch);
	b->timer_watched = false;
	b->vdev = NULL;
	b->mem = NULL;
	b->io = NULL;
}

int virtio_balloon_plug(struct virtio_balloon *b, const struct virtio_plug *at)
{
	struct virtio_plug here = *at;

	if (b->free_page_reporting)
		here.num_queues = 4;
	if (virtio_pci_plug(&here, &virtio_balloon_ops, b) < 0)
		return -1;
	if (virtio_balloon_attach(b, &at->vp->vdev, at->mem, at->io) < 0) {
		log_error("virtio-balloon: cannot watch the statistics timer");
		virtio_balloon_detach(b, at->io);
		virtio_pci_destroy(at->vp);
		return -1;
	}
	return 0;
}

/* QEMU's virtio_balloon_to_target: a target above RAM means "deflate all". */
void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t ram_size, uint64_t target)
{
	if (target > ram_size)
		target = ram_size;
	if (!b->vdev) {
		b->num_pages = (uint32_t)((ram_size - target) >> BALLOON_PFN_SHIFT);
		return;
	}
	pthread_mutex_lock(&b->vdev->lock);
	b->num_pages = (uint32_t)((ram_size - target) >> BALLOON_PFN_SHIFT);
	virtio_config_changed(b->vdev);
	pthread_mutex_unlock(&b->vdev->lock);
}

uint32_t virtio_balloon_actual(struct virtio_balloon *b)
{
	uint32_t actual;

	if (!b->vdev)
		return b->actual;
	pthread_mutex_lock(&b->vdev->lock);
	actual = b->actual;
	pthread_mutex_unlock(&b->vdev->lock);
	return actual;
}

void virtio_balloon_set_interval(struct virtio_balloon *b, uint64_t seconds)
{
	if (b->vdev)
		pthread_mutex_lock(&b->vdev->lock);
	b->polling_interval = seconds;
	timer_arm(b);
	if (b->vdev)
		pthread_mutex_unlock(&b->vdev->lock);
}

void virtio_balloon_stats(struct virtio_balloon *b, uint64_t out[BALLOON_NR_STATS],
			  int64_t *last_update, uint64_t *interval)
{
	if (b->vdev)
		pthread_mutex_lock(&b->vdev->lock);
	memcpy(out, b->stats, sizeof(b->stats));
	*last_update = b->stats_last_update;
	*interval = b->polling_interval;
	if (b->vdev)
		pthread_mutex_unlock(&b->vdev->lock);
}
