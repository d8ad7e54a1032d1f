#include "virtio/virtqueue.h"

#include <string.h>

/* Ring layouts, virtio 1.2 §2.7.5-§2.7.8. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* avail: flags, idx, ring[size], used_event.  used: flags, idx, ring[size] {id, len}, avail_event. */
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_IDX 2
#define USED_RING 4

void vq_reset(struct virtqueue *vq)
{
	const struct guest_memory *mem = vq->mem;

	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->msix_vector = 0xffff;	/* VIRTIO_MSI_NO_VECTOR */
}

static void *ring_ptr(const struct virtqueue *vq, uint64_t gpa, uint64_t len)
{
	return memory_ptr(vq->mem, gpa, len);
}

bool vq_check_rings(const struct virtqueue *vq)
{
	uint64_t n = vq->size;

	return n && n <= VQ_MAX_SIZE && !(n & (n - 1)) &&
	       ring_ptr(vq, vq->desc_gpa, 16 * n) &&
	       ring_ptr(vq, vq->avail_gpa, 6 + 2 * n) &&
	       ring_ptr(vq, vq->used_gpa, 6 + 8 * n);
}

static uint16_t load16_acquire(const void *p)
{
	uint16_t v;
	__atomic_load((const uint16_t *)p, &v, __ATOMIC_ACQUIRE);
	return v;
}

static void store16_release(void *p, uint16_t v)
{
	__atomic_store((uint16_t *)p, &v, __ATOMIC_RELEASE);
}

/* Adds one buffer to the request, enforcing readable-before-writable and the bounds. */
static int add_segment(const struct virtqueue *vq, struct vq_request *req,
		       const struct vring_desc *d, const char **msg)
{
	void *host;

	if (d->len == 0)
		return 0;	/* harmless; nothing to map */
	host = memory_ptr(vq->mem, d->addr, d->len);
	if (!host) {
		*msg = "descriptor points outside guest RAM";
		return -1;
	}
	if (d->flags & VRING_DESC_F_WRITE) {
		if (req->nr_in == VQ_MAX_SEGS) {
			*msg = "too many buffers in one request";
			return -1;
		}
		req->in[req->nr_in++] = (struct iovec){ host, d->len };
		req->in_len += d->len;
	} else {
		if (req->nr_in) {
			*msg = "readable buffer after a writable one";
			return -1;
		}
		if (req->nr_out == VQ_MAX_SEGS) {
			*msg = "too many buffers in one request";
			return -1;
		}
		req->out[req->nr_out++] = (struct iovec){ host, d->len };
		req->out_len += d->len;
	}
	if (req->in_len + req->out_len > VQ_MAX_REQUEST) {
		*msg = "request larger than the device accepts";
		return -1;
	}
	return 0;
}

/* Walks an indirect table (§2.7.5.3): no nesting, no NEXT beyond it, no loops. */
static int walk_indirect(const struct virtqueue *vq, struct vq_request *req,
			 const struct vring_desc *outer, const char **msg)
{
	const struct vring_desc *table;
	unsigned n = outer->len / 16, i = 0, steps = 0;

	if (outer->len % 16 || n == 0 || n > VQ_MAX_SIZE || (outer->flags & VRING_DESC_F_NEXT)) {
		*msg = "malformed indirect descriptor";
		return -1;
	}
	table = memory_ptr(vq->mem, outer->addr, outer->len);
	if (!table) {
		*msg = "indirect table outside guest RAM";
		return -1;
	}
	for (;;) {
		struct vring_desc d;
		memcpy(&d, &table[i], sizeof(d));	/* one snapshot: the guest may race us */
		if (d.flags & VRING_DESC_F_INDIRECT) {
			*msg = "nested indirect descriptor";
			return -1;
		}
		if (add_segment(vq, req, &d, msg) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
		if (i >= n || ++steps >= n) {
			*msg = i >= n ? "indirect chain runs off its table" : "indirect chain loops";
			return -1;
		}
	}
}

int vq_pop(struct virtqueue *vq, struct vq_request *req, const char **msg)
{
	const uint8_t *avail = ring_ptr(vq, vq->avail_gpa, 6 + 2 * (uint64_t)vq->size);
	const struct vring_desc *table = ring_ptr(vq, vq->desc_gpa, 16 * (uint64_t)vq->size);
	uint16_t avail_idx, head, i;
	unsigned steps = 0;

	*msg = NULL;
	if (!vq->ready || !avail || !table)
		return 0;
	avail_idx = load16_acquire(avail + AVAIL_IDX);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		*msg = "available index moved by more than the queue size";
		return -1;
	}
	memcpy(&head, avail + AVAIL_RING + 2 * (vq->last_avail % vq->size), 2);
	if (head >= vq->size) {
		*msg = "available ring names a descriptor beyond the queue";
		return -1;
	}
	vq->last_avail++;
	if (vq->event_idx && !vq->no_notify) {
		/* avail_event: kick us again once the driver passes this index (§2.7.10). */
		uint8_t *used = ring_ptr(vq, vq->used_gpa, 6 + 8 * (uint64_t)vq->size);
		if (used)
			store16_release(used + USED_RING + 8 * vq->size, vq->last_avail);
	}

	req->head = head;
	req->nr_out = req->nr_in = 0;
	req->out_len = req->in_len = 0;
	for (i = head;;) {
		struct vring_desc d;
		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (steps || req->nr_out || req->nr_in) {
				*msg = "indirect descriptor inside a chain";
				return -1;
			}
			return walk_indirect(vq, req, &d, msg) < 0 ? -1 : 1;
		}
		if (add_segment(vq, req, &d, msg) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		i = d.next;
		if (i >= vq->size || ++steps >= vq->size) {
			*msg = i >= vq->size ? "chain runs off the descriptor table" : "descriptor chain loops";
			return -1;
		}
	}
}

#define VRING_USED_F_NO_NOTIFY 1

void vq_set_notification(struct virtqueue *vq, bool enable)
{
	uint8_t *used = ring_ptr(vq, vq->used_gpa, 6 + 8 * (uint64_t)vq->size);
	const uint8_t *avail = ring_ptr(vq, vq->avail_gpa, 6 + 2 * (uint64_t)vq->size);
	uint16_t flags;

	if (vq->no_notify == !enable || !used || !avail)
		return;
	vq->no_notify = !enable;
	if (vq->event_idx) {
		/* Kick when the driver passes what it has made available so far. */
		if (enable)
			store16_release(used + USED_RING + 8 * vq->size, load16_acquire(avail + AVAIL_IDX));
	} else {
		memcpy(&flags, used, 2);
		flags = enable ? (uint16_t)(flags & ~VRING_USED_F_NO_NOTIFY)
			       : (uint16_t)(flags | VRING_USED_F_NO_NOTIFY);
		store16_release(used, flags);
	}
	/* The flag must be visible before we look at avail again (§2.7.10). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

unsigned vq_avail_pending(struct virtqueue *vq)
{
	const uint8_t *avail = ring_ptr(vq, vq->avail_gpa, 6 + 2 * (uint64_t)vq->size);

	if (!vq->ready || !avail)
		return 0;
	return (uint16_t)(load16_acquire(avail + AVAIL_IDX) - vq->last_avail);
}

bool vq_has_avail(struct virtqueue *vq)
{
	return vq_avail_pending(vq) != 0;
}

void vq_unpop(struct virtqueue *vq, unsigned n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written)
{
	uint8_t *used = ring_ptr(vq, vq->used_gpa, 6 + 8 * (uint64_t)vq->size);
	uint32_t elem[2] = { head, written };

	if (!used)
		return;
	memcpy(used + USED_RING + 8 * (vq->used_idx % vq->size), elem, 8);
	vq->used_idx++;
	/* The element must be visible before the index that publishes it (§2.7.8.2). */
	store16_release(used + USED_IDX, vq->used_idx);
}

void vq_push_many(struct virtqueue *vq, const uint16_t *heads, const uint32_t *written, unsigned n)
{
	uint8_t *used = ring_ptr(vq, vq->used_gpa, 6 + 8 * (uint64_t)vq->size);

	if (!used || !n)
		return;
	for (unsigned i = 0; i < n; i++) {
		uint32_t elem[2] = { heads[i], written ? written[i] : 0 };
		memcpy(used + USED_RING + 8 * ((uint16_t)(vq->used_idx + i) % vq->size), elem, 8);
	}
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	/* Every element visible before the index that publishes them (§2.7.8.2). */
	store16_release(used + USED_IDX, vq->used_idx);
}

bool vq_should_interrupt(struct virtqueue *vq)
{
	const uint8_t *avail = ring_ptr(vq, vq->avail_gpa, 6 + 2 * (uint64_t)vq->size);
	uint16_t flags, used_event, old;
	bool need;

	if (!avail)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* used idx store before reading the driver's wishes */
	if (!vq->event_idx) {
		flags = load16_acquire(avail);
		return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
	}
	/* vring_need_event (§2.7.10): interrupt if used_event lies in (old, new]. */
	used_event = load16_acquire(avail + AVAIL_RING + 2 * vq->size);
	old = vq->signalled_used;
	need = !vq->signalled_valid ||
	       (uint16_t)(vq->used_idx - used_event - 1) < (uint16_t)(vq->used_idx - old);
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	return need;
}

/* Copies between a segment list (from skip bytes in) and a flat buffer. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - skip;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *seg = (uint8_t *)iov[i].iov_base + skip;
		if (to_iov)
			memcpy(seg, buf + done, chunk);
		else
			memcpy(buf + done, seg, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	return iov_copy(iov, n, skip, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
	return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}
