/* virtio-rng (virtio 1.2 §5.4): one queue of writable buffers, filled from getrandom(). */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio/devices.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_PER_REQUEST 4096	/* bounds host work per guest request */

static int rng_handle(struct virtio_device *vdev, struct vq_request *req)
{
	uint8_t buf[RNG_MAX_PER_REQUEST];
	size_t want = req->in_len < sizeof(buf) ? req->in_len : sizeof(buf);
	ssize_t got;

	do {
		got = getrandom(buf, want, 0);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return 0;	/* no entropy now: an empty answer, the driver asks again */
	return (int)iov_from_buf(req->in, req->nr_in, 0, buf, (size_t)got);
}

static void rng_notify(struct virtio_device *vdev, unsigned q)
{
	virtio_process_queue(vdev, q, rng_handle);
}

const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng-pci",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = 0x00ff00,	/* "unclassified", as QEMU */
	.num_queues = 1,
	.queue_max = RNG_QUEUE_SIZE,
	.queue_notify = rng_notify,
};

int virtio_rng_plug(const struct virtio_plug *at)
{
	return virtio_pci_plug(at, &virtio_rng_ops, NULL);
}
