/*
 * The transport-independent half of a virtio device (virtio 1.2 §2): queue
 * processing, NEEDS_RESET and configuration changes.  What reaches the guest
 * goes through the callbacks the transport set (interrupt, config_interrupt),
 * so nothing here knows PCI.
 */
#include "virtio/virtio.h"

#include "util/log.h"

int virtio_device_init(struct virtio_device *vdev, const struct virtio_device_ops *ops,
		       void *opaque, unsigned num_queues, const struct guest_memory *mem)
{
	vdev->ops = ops;
	vdev->opaque = opaque;
	vdev->num_queues = num_queues ? num_queues : ops->num_queues;
	if (vdev->num_queues > VIRTIO_MAX_QUEUES)
		return -1;
	pthread_mutex_init(&vdev->lock, NULL);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->vqs[i].mem = mem;
	virtio_device_reset(vdev);
	return 0;
}

void virtio_device_reset(struct virtio_device *vdev)
{
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vq_reset(&vdev->vqs[i]);
		/* queue_size reads the maximum after reset (virtio 1.2 §4.1.4.3). */
		vdev->vqs[i].size = vdev->ops->queue_max;
	}
	vdev->driver_features = 0;
	vdev->status = 0;
}

void virtio_needs_reset(struct virtio_device *vdev, const char *why)
{
	log_warn("%s: guest error, device needs reset: %s", vdev->ops->name, why);
	vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->vqs[i].ready = false;
	/* A configuration change interrupt tells the driver to look at the status (§2.1.2). */
	vdev->config_interrupt(vdev);
}

void virtio_config_changed(struct virtio_device *vdev)
{
	vdev->config_generation++;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		vdev->config_interrupt(vdev);
}

void virtio_process_queue(struct virtio_device *vdev, unsigned q,
			  int (*handle)(struct virtio_device *vdev, struct vq_request *req))
{
	struct virtqueue *vq = &vdev->vqs[q];
	struct vq_request req;
	const char *why;
	bool pushed = false;

	pthread_mutex_lock(&vdev->lock);
	for (;;) {
		int got = vq_pop(vq, &req, &why);
		if (got == 0)
			break;
		if (got < 0) {
			virtio_needs_reset(vdev, why);
			break;
		}
		int written = handle(vdev, &req);
		if (written < 0) {
			virtio_needs_reset(vdev, "malformed request");
			break;
		}
		vq_push(vq, req.head, (uint32_t)written);
		pushed = true;
	}
	if (pushed && vq_should_interrupt(vq))
		vdev->interrupt(vdev, q);
	pthread_mutex_unlock(&vdev->lock);
}
