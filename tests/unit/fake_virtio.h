/*
 * The queue layout the virtio device unit tests share, set up as a driver
 * leaves it just before DRIVER_OK: queue q's descriptor table at
 * FAKE_RING(q), its available ring 4 KiB above, its used ring 8 KiB above.
 */
#ifndef KESTREL_TESTS_UNIT_FAKE_VIRTIO_H
#define KESTREL_TESTS_UNIT_FAKE_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define FAKE_RING(q) (0x10000 * (uint64_t)((q) + 1))
#define FAKE_AVAIL(q) (FAKE_RING(q) + 0x1000)
#define FAKE_USED(q) (FAKE_RING(q) + 0x2000)

/* Places and enables queues 0 .. nr - 1 with size entries; false if a ring lies outside RAM. */
static inline bool fake_virtio_rings_ready(struct virtio_device *vdev, unsigned nr, uint16_t size)
{
	for (unsigned q = 0; q < nr; q++) {
		struct virtqueue *vq = &vdev->vqs[q];

		vq->size = size;
		vq->desc_gpa = FAKE_RING(q);
		vq->avail_gpa = FAKE_AVAIL(q);
		vq->used_gpa = FAKE_USED(q);
		if (!vq_check_rings(vq))
			return false;
		vq->ready = true;
	}
	return true;
}

#endif
