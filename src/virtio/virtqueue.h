/*
 * Split virtqueues (virtio 1.2 §2.7), device side.  Every descriptor the
 * guest hands over is checked before use: addresses must lie inside guest
 * RAM, chains may not loop or outgrow the queue, indirect tables must be
 * well formed, and readable buffers must precede writable ones.  A queue that
 * breaks a rule reports it and the device goes to NEEDS_RESET.
 */
#ifndef KESTREL_VIRTIO_VIRTQUEUE_H
#define KESTREL_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/memory.h"

#define VQ_MAX_SIZE 1024
#define VQ_MAX_SEGS 128		/* buffers per request after indirect expansion */
/*
 * Bytes per request, a bound on guest demands.  The largest legitimate one is
 * a free page report: Linux sends up to 32 blocks of up to 4 MiB (2^10 pages).
 */
#define VQ_MAX_REQUEST (128u << 20)

struct virtqueue {
	const struct guest_memory *mem;
	uint16_t size;		/* set by the driver, a power of two */
	bool ready;
	bool event_idx;		/* VIRTIO_F_EVENT_IDX negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail;	/* next avail ring entry to take */
	uint16_t used_idx;	/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx when we last interrupted (event idx) */
	bool signalled_valid;
	uint16_t msix_vector;
	bool no_notify;		/* kicks suppressed: VIRTQ_USED_F_NO_NOTIFY / avail_event left behind */
};

/* One request: the driver's readable buffers (out) then the writable ones (in). */
struct vq_request {
	uint16_t head;
	unsigned nr_out, nr_in;
	struct iovec out[VQ_MAX_SEGS];
	struct iovec in[VQ_MAX_SEGS];
	size_t out_len, in_len;
};

void vq_reset(struct virtqueue *vq);

/* True when the ring addresses lie in guest RAM; call when the driver enables the queue. */
bool vq_check_rings(const struct virtqueue *vq);

/*
 * Takes the next available request.  Returns 1 with req filled, 0 if none is
 * pending, -1 if the guest broke a rule (msg says which; the queue is unusable).
 */
int vq_pop(struct virtqueue *vq, struct vq_request *req, const char **msg);

/*
 * Asks the driver to kick us (enable) or not to bother while we are busy
 * with the queue anyway (§2.7.10).  After enabling, check the queue again:
 * the driver may have added buffers before it saw the change.
 */
void vq_set_notification(struct virtqueue *vq, bool enable);

/* Whether the driver has made buffers available that we have not taken. */
bool vq_has_avail(struct virtqueue *vq);
/* How many requests the driver has made available that we have not taken. */
unsigned vq_avail_pending(struct virtqueue *vq);

/* Gives back the last n requests taken and not pushed (virtio-net: a frame that did not fit). */
void vq_unpop(struct virtqueue *vq, unsigned n);

/* Returns a request with written bytes to the guest. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t written);
/*
 * Returns n requests at once (written NULL: 0 bytes each): one index update,
 * so a driver polling the used ring sees the batch in one cache-line move.
 */
void vq_push_many(struct virtqueue *vq, const uint16_t *heads, const uint32_t *written, unsigned n);

/* Whether the driver wants an interrupt for what was pushed (flags / event idx). */
bool vq_should_interrupt(struct virtqueue *vq);

/* Copy helpers across a request's segments. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);

#endif
