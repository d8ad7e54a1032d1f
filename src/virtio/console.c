/*
 * virtio-console (virtio 1.2 §5.3), one port without MULTIPORT: queue 0
 * carries host input to the guest, queue 1 guest output to the chardev.  A
 * Linux guest sees it as hvc0.
 */
#include <string.h>

#include "virtio/devices.h"

#define CONSOLE_QUEUE_SIZE 128
#define RX_QUEUE 0
#define TX_QUEUE 1

struct console_config {
	uint16_t cols, rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
} __attribute__((packed));

static void console_read_config(struct virtio_device *vdev, uint32_t offset, void *buf,
				uint32_t len)
{
	struct console_config c = { .cols = 80, .rows = 25, .max_nr_ports = 1 };

	if (offset + len <= sizeof(c))
		memcpy(buf, (uint8_t *)&c + offset, len);
}

static void console_write_config(struct virtio_device *vdev, uint32_t offset, const void *buf,
				 uint32_t len)
{
	struct virtio_console *con = vdev->opaque;
	uint32_t ch;

	/* emerg_wr (VIRTIO_CONSOLE_F_EMERG_WRITE is not offered, but writes are harmless). */
	if (offset == offsetof(struct console_config, emerg_wr) && len == 4 && con->cd) {
		memcpy(&ch, buf, 4);
		uint8_t byte = (uint8_t)ch;
		chardev_write(con->cd, &byte, 1);
	}
}

static int console_tx(struct virtio_device *vdev, struct vq_request *req)
{
	struct virtio_console *con = vdev->opaque;

	for (unsigned i = 0; i < req->nr_out && con->cd; i++)
		chardev_write(con->cd, req->out[i].iov_base, req->out[i].iov_len);
	return 0;
}

/* Moves typed-ahead host input into the guest's receive buffers; caller holds the lock. */
static void console_fill(struct virtio_console *con)
{
	struct virtio_device *vdev = con->vdev;
	struct virtqueue *vq = &vdev->vqs[RX_QUEUE];
	struct vq_request req;
	const char *why;
	bool pushed = false;

	while (con->npending && (vdev->status & VIRTIO_STATUS_DRIVER_OK)) {
		int got = vq_pop(vq, &req, &why);
		if (got <= 0) {
			if (got < 0)
				virtio_needs_reset(vdev, why);
			break;
		}
		size_t n = iov_from_buf(req.in, req.nr_in, 0, con->pending, con->npending);
		memmove(con->pending, con->pending + n, con->npending - n);
		con->npending -= n;
		vq_push(vq, req.head, (uint32_t)n);
		pushed = true;
	}
	if (pushed && vq_should_interrupt(vq))
		vdev->interrupt(vdev, RX_QUEUE);
}

static void console_notify(struct virtio_device *vdev, unsigned q)
{
	struct virtio_console *con = vdev->opaque;

	if (q == TX_QUEUE) {
		virtio_process_queue(vdev, q, console_tx);
		return;
	}
	/* New receive buffers: deliver what the host typed meanwhile. */
	pthread_mutex_lock(&vdev->lock);
	console_fill(con);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_console_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct virtio_console *con = opaque;
	struct virtio_device *vdev = con->vdev;

	if (!vdev)
		return;
	pthread_mutex_lock(&vdev->lock);
	/* Beyond 4 KiB the guest is not reading: drop, as a full line would. */
	if (len > sizeof(con->pending) - con->npending)
		len = sizeof(con->pending) - con->npending;
	memcpy(con->pending + con->npending, buf, len);
	con->npending += len;
	console_fill(con);
	pthread_mutex_unlock(&vdev->lock);
}

static void console_reset(struct virtio_device *vdev)
{
	struct virtio_console *con = vdev->opaque;

	con->npending = 0;
}

static void console_unplug(struct virtio_device *vdev)
{
	struct virtio_console *con = vdev->opaque;

	if (con)
		con->vdev = NULL;
}

const struct virtio_device_ops virtio_console_ops = {
	.name = "virtio-serial-pci",
	.device_id = VIRTIO_ID_CONSOLE,
	.pci_class = 0x078000,	/* communication, other */
	.num_queues = 2,
	.queue_max = CONSOLE_QUEUE_SIZE,
	.config_size = sizeof(struct console_config),
	.read_config = console_read_config,
	.write_config = console_write_config,
	.queue_notify = console_notify,
	.reset = console_reset,
	.unplug = console_unplug,
};

int virtio_console_plug(struct virtio_console *con, const struct virtio_plug *at)
{
	if (virtio_pci_plug(at, &virtio_console_ops, con) < 0)
		return -1;
	if (con)
		con->vdev = &at->vp->vdev;
	return 0;
}
