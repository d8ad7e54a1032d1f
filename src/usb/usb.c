/* The USB device model's endpoint 0: control transfers and the standard requests (USB 2.0 ch. 9). */
#include <string.h>

#include "usb/usb.h"

void usb_device_reset(struct usb_device *dev)
{
	dev->addr = 0;
	dev->pending_addr = 0;
	dev->config = 0;
	dev->remote_wakeup = false;
	dev->stage = USB_CTRL_IDLE;
	dev->stalled = false;
	dev->len = dev->pos = 0;
	if (dev->ops && dev->ops->reset)
		dev->ops->reset(dev);
}

int usb_string_desc(const struct usb_desc *d, unsigned i, uint8_t *out, unsigned max)
{
	const char *s;
	unsigned n = 2;

	if (max < 4)
		return USB_RET_STALL;
	if (i == 0) {
		/* String descriptor zero: the language IDs, US English only (USB 2.0 §9.6.7). */
		out[0] = 4;
		out[1] = USB_DT_STRING;
		out[2] = 0x09;
		out[3] = 0x04;
		return 4;
	}
	if (i >= d->nr_strings || !d->strings[i])
		return USB_RET_STALL;
	/* UTF-16LE; the descriptors' strings are ASCII. */
	for (s = d->strings[i]; *s && n + 2 <= max && n + 2 <= 255; s++) {
		out[n++] = (uint8_t)*s;
		out[n++] = 0;
	}
	out[0] = (uint8_t)n;
	out[1] = USB_DT_STRING;
	return (int)n;
}

static int get_descriptor(struct usb_device *dev, uint16_t value, uint8_t *out, unsigned max)
{
	const struct usb_desc *d = dev->desc;
	unsigned type = value >> 8, index = value & 0xff, n;

	switch (type) {
	case USB_DT_DEVICE:
		n = d->device[0];
		break;
	case USB_DT_CONFIG:
		if (index != 0)
			return USB_RET_STALL;
		n = (unsigned)d->config_len;
		break;
	case USB_DT_STRING:
		return usb_string_desc(d, index, out, max);
	default:
		/* Device qualifier and the rest: a full-speed-only device stalls (§9.6.2). */
		return USB_RET_STALL;
	}
	if (n > max)
		n = max;
	memcpy(out, type == USB_DT_DEVICE ? d->device : d->config, n);
	return (int)n;
}

/* A standard request, or the device's own; returns the data length or USB_RET_STALL. */
static int standard_request(struct usb_device *dev, const struct usb_setup *s, uint8_t *data)
{
	unsigned req = (unsigned)s->request_type << 8 | s->request;
	const uint8_t *cfg = dev->desc->config;

	switch (req) {
	case USB_REQ_GET_DESCRIPTOR:
		return get_descriptor(dev, s->value, data, USB_CTRL_MAX);
	case USB_REQ_GET_STATUS_DEV:
		/* Self-powered from bmAttributes, remote wakeup as last set (§9.4.5). */
		data[0] = (uint8_t)((cfg[7] & 0x40 ? 1 : 0) | (dev->remote_wakeup ? 2 : 0));
		data[1] = 0;
		return 2;
	case USB_REQ_GET_STATUS_IF:
	case USB_REQ_GET_STATUS_EP:
		data[0] = data[1] = 0;
		return 2;
	case USB_REQ_CLEAR_FEATURE_DEV:
	case USB_REQ_SET_FEATURE_DEV:
		if (s->value != 1)	/* DEVICE_REMOTE_WAKEUP; TEST_MODE is high speed only */
			return USB_RET_STALL;
		dev->remote_wakeup = req == USB_REQ_SET_FEATURE_DEV;
		return 0;
	case USB_REQ_CLEAR_FEATURE_EP:
	case USB_REQ_SET_FEATURE_EP:
		return s->value == 0 ? 0 : USB_RET_STALL;	/* ENDPOINT_HALT */
	case USB_REQ_SET_ADDRESS:
		if (s->value > 127)
			return USB_RET_STALL;
		dev->pending_addr = (uint8_t)s->value;
		return 0;
	case USB_REQ_GET_CONFIGURATION:
		data[0] = dev->config;
		return 1;
	case USB_REQ_SET_CONFIGURATION:
		/* bConfigurationValue of the one configuration, or 0 to unconfigure (§9.4.7). */
		if (s->value != 0 && s->value != cfg[5])
			return USB_RET_STALL;
		dev->config = (uint8_t)s->value;
		return 0;
	case USB_REQ_GET_INTERFACE:
		data[0] = 0;
		return dev->config ? 1 : USB_RET_STALL;
	case USB_REQ_SET_INTERFACE:
		return s->value == 0 && dev->config ? 0 : USB_RET_STALL;
	}
	if (!dev->ops->control)
		return USB_RET_STALL;
	return dev->ops->control(dev, s, data, s->length < USB_CTRL_MAX ? s->length : USB_CTRL_MAX);
}

static int setup_stage(struct usb_device *dev, const uint8_t *buf, unsigned len)
{
	struct usb_setup *s = &dev->setup;
	int r;

	/* A SETUP always starts a new transfer, whatever stage the last one was in (§8.5.3). */
	if (len != 8)
		return USB_RET_STALL;
	s->request_type = buf[0];
	s->request = buf[1];
	s->value = (uint16_t)(buf[2] | buf[3] << 8);
	s->index = (uint16_t)(buf[4] | buf[5] << 8);
	s->length = (uint16_t)(buf[6] | buf[7] << 8);
	dev->stalled = false;
	dev->pos = 0;
	dev->len = 0;
	if (s->length && !(s->request_type & 0x80)) {
		/* Host to device with data: the request runs once the data is in. */
		dev->stage = USB_CTRL_DATA_OUT;
		return 8;
	}
	r = standard_request(dev, s, dev->buf);
	if (r < 0) {
		dev->stalled = true;
		r = 0;
	}
	dev->len = (unsigned)r < s->length ? (unsigned)r : s->length;
	dev->stage = s->length ? USB_CTRL_DATA_IN : USB_CTRL_STATUS_IN;
	return 8;	/* SETUP is always acknowledged; errors stall the next stage */
}

static int control_in(struct usb_device *dev, uint8_t *buf, unsigned len)
{
	unsigned n;
	int r;

	if (dev->stalled)
		return USB_RET_STALL;
	switch (dev->stage) {
	case USB_CTRL_DATA_IN:
		n = dev->len - dev->pos;
		if (n > len)
			n = len;
		memcpy(buf, dev->buf + dev->pos, n);
		dev->pos += n;
		return (int)n;
	case USB_CTRL_DATA_OUT:
		/* The IN status stage of a host-to-device transfer: now run the request. */
		r = standard_request(dev, &dev->setup, dev->buf);
		dev->stage = USB_CTRL_IDLE;
		return r < 0 ? USB_RET_STALL : 0;
	case USB_CTRL_STATUS_IN:
		dev->stage = USB_CTRL_IDLE;
		if (dev->setup.request_type == 0 && dev->setup.request == 5)
			dev->addr = dev->pending_addr;
		return 0;
	case USB_CTRL_IDLE:
		break;
	}
	return USB_RET_STALL;
}

static int control_out(struct usb_device *dev, const uint8_t *buf, unsigned len)
{
	unsigned n;

	if (dev->stalled)
		return USB_RET_STALL;
	switch (dev->stage) {
	case USB_CTRL_DATA_OUT:
		n = dev->setup.length - dev->pos;
		if (len > n)
			return USB_RET_BABBLE;
		if (dev->pos + len > USB_CTRL_MAX)
			return USB_RET_STALL;
		memcpy(dev->buf + dev->pos, buf, len);
		dev->pos += len;
		return (int)len;
	case USB_CTRL_DATA_IN:
		/* The OUT status stage, possibly before all data was read (§8.5.3.2). */
		dev->stage = USB_CTRL_IDLE;
		return 0;
	case USB_CTRL_STATUS_IN:
	case USB_CTRL_IDLE:
		break;
	}
	return USB_RET_STALL;
}

int usb_handle_packet(struct usb_device *dev, int pid, unsigned ep, uint8_t *buf, unsigned len)
{
	if (ep == 0) {
		switch (pid) {
		case USB_PID_SETUP:
			return setup_stage(dev, buf, len);
		case USB_PID_IN:
			return control_in(dev, buf, len);
		case USB_PID_OUT:
			return control_out(dev, buf, len);
		}
		return USB_RET_STALL;
	}
	/* Endpoints other than 0 exist only in the configured state (§9.1.1.5). */
	if (!dev->config || ep > 15)
		return USB_RET_STALL;
	if (pid == USB_PID_IN && dev->ops->data_in)
		return dev->ops->data_in(dev, ep, buf, len);
	return USB_RET_STALL;
}
