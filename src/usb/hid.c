/*
 * usb-tablet, usb-mouse, usb-kbd: descriptors as QEMU 7.2 gives them, HID
 * class requests (HID 1.11 §7.2) and interrupt IN reports built from input
 * events.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "usb/hid.h"

#define HID_DT_HID 0x21
#define HID_DT_REPORT 0x22

/* bmRequestType << 8 | bRequest of the HID class requests (HID 1.11 §7.2). */
#define HID_GET_REPORT 0xa101
#define HID_GET_IDLE 0xa102
#define HID_GET_PROTOCOL 0xa103
#define HID_SET_REPORT 0x2109
#define HID_SET_IDLE 0x210a
#define HID_SET_PROTOCOL 0x210b

/* String indexes as QEMU numbers them; 5 is the old serial "42" it keeps for old machines. */
enum {
	STR_MANUFACTURER = 1, STR_PRODUCT_MOUSE, STR_PRODUCT_TABLET, STR_PRODUCT_KEYBOARD,
	STR_SERIAL_COMPAT, STR_CONFIG_MOUSE, STR_CONFIG_TABLET, STR_CONFIG_KEYBOARD,
	STR_SERIAL_MOUSE, STR_SERIAL_TABLET, STR_SERIAL_KEYBOARD, STR_COUNT,
};

static const char *const hid_strings[STR_COUNT] = {
	[STR_MANUFACTURER] = "QEMU",
	[STR_PRODUCT_MOUSE] = "QEMU USB Mouse",
	[STR_PRODUCT_TABLET] = "QEMU USB Tablet",
	[STR_PRODUCT_KEYBOARD] = "QEMU USB Keyboard",
	[STR_SERIAL_COMPAT] = "42",
	[STR_CONFIG_MOUSE] = "HID Mouse",
	[STR_CONFIG_TABLET] = "HID Tablet",
	[STR_CONFIG_KEYBOARD] = "HID Keyboard",
	[STR_SERIAL_MOUSE] = "89126",
	[STR_SERIAL_TABLET] = "28754",
	[STR_SERIAL_KEYBOARD] = "68284",
};

/* Report descriptors (HID 1.11 §6.2.2): the guest parses these to read the reports below. */
static const uint8_t mouse_report_desc[] = {
	0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00,	/* Mouse: Pointer */
	0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01,	/* buttons 1-3 */
	0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05,	/* 3 bits + 5 pad */
	0x81, 0x01, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x09, 0x38,	/* X, Y, wheel */
	0x15, 0x81, 0x25, 0x7f, 0x75, 0x08, 0x95, 0x03, 0x81, 0x06,	/* -127..127, relative */
	0xc0, 0xc0,
};

static const uint8_t tablet_report_desc[] = {
	0x05, 0x01, 0x09, 0x01, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00,	/* Pointer: Pointer */
	0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01,	/* buttons 1-3 */
	0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05,
	0x81, 0x01, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x00,	/* X, Y */
	0x26, 0xff, 0x7f, 0x35, 0x00, 0x46, 0xff, 0x7f, 0x75, 0x10,	/* 0..0x7fff, 16 bits */
	0x95, 0x02, 0x81, 0x02, 0x05, 0x01, 0x09, 0x38, 0x15, 0x81,	/* wheel */
	0x25, 0x7f, 0x35, 0x00, 0x45, 0x00, 0x75, 0x08, 0x95, 0x01,
	0x81, 0x06, 0xc0, 0xc0,
};

static const uint8_t keyboard_report_desc[] = {
	0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x75, 0x01, 0x95, 0x08,	/* Keyboard: 8 modifiers */
	0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
	0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0x95, 0x05,	/* reserved byte */
	0x75, 0x01, 0x05, 0x08, 0x19, 0x01, 0x29, 0x05, 0x91, 0x02,	/* 5 LEDs out */
	0x95, 0x01, 0x75, 0x03, 0x91, 0x01, 0x95, 0x06, 0x75, 0x08,	/* pad, 6 key slots */
	0x15, 0x00, 0x25, 0xff, 0x05, 0x07, 0x19, 0x00, 0x29, 0xff,
	0x81, 0x00, 0xc0,
};

#define DEVICE_DESC(product, serial) {						\
	18, USB_DT_DEVICE, 0x00, 0x01,	/* USB 1.0 */				\
	0, 0, 0, 8,			/* class per interface, ep0 8 bytes */	\
	0x27, 0x06, 0x01, 0x00,		/* QEMU's vendor 0627, product 0001 */	\
	0x00, 0x00, STR_MANUFACTURER, product, serial, 1 }

/* Configuration, interface, HID and endpoint descriptors (USB 2.0 §9.6.3-6, HID 1.11 §6.2.1). */
#define CONFIG_DESC(cfgstr, subclass, proto, hid_lo, hid_hi, rlen, maxp) {		\
	9, USB_DT_CONFIG, 34, 0, 1, 1, cfgstr, 0xa0, 50,	/* bus powered, wakeup, 100 mA */ \
	9, 4, 0, 0, 1, 3, subclass, proto, 0,			/* HID interface, 1 endpoint */ \
	9, HID_DT_HID, hid_lo, hid_hi, 0, 1, HID_DT_REPORT, rlen, 0,			\
	7, 5, 0x81, 3, maxp, 0, 10 }				/* EP1 IN interrupt, 10 ms */

static const uint8_t dev_desc[3][18] = {
	[USB_HID_TABLET] = DEVICE_DESC(STR_PRODUCT_TABLET, STR_SERIAL_TABLET),
	[USB_HID_MOUSE] = DEVICE_DESC(STR_PRODUCT_MOUSE, STR_SERIAL_MOUSE),
	[USB_HID_KEYBOARD] = DEVICE_DESC(STR_PRODUCT_KEYBOARD, STR_SERIAL_KEYBOARD),
};

static const uint8_t cfg_desc[3][34] = {
	[USB_HID_TABLET] = CONFIG_DESC(STR_CONFIG_TABLET, 0, 2, 0x01, 0x00,
				       sizeof(tablet_report_desc), 8),
	[USB_HID_MOUSE] = CONFIG_DESC(STR_CONFIG_MOUSE, 1, 2, 0x01, 0x00,
				      sizeof(mouse_report_desc), 4),
	[USB_HID_KEYBOARD] = CONFIG_DESC(STR_CONFIG_KEYBOARD, 1, 1, 0x11, 0x01,
					 sizeof(keyboard_report_desc), 8),
};

static const struct usb_desc hid_desc[3] = {
	[USB_HID_TABLET] = { dev_desc[USB_HID_TABLET], cfg_desc[USB_HID_TABLET], 34,
			     hid_strings, STR_COUNT },
	[USB_HID_MOUSE] = { dev_desc[USB_HID_MOUSE], cfg_desc[USB_HID_MOUSE], 34,
			    hid_strings, STR_COUNT },
	[USB_HID_KEYBOARD] = { dev_desc[USB_HID_KEYBOARD], cfg_desc[USB_HID_KEYBOARD], 34,
			       hid_strings, STR_COUNT },
};

static const char *const kind_names[3] = {
	[USB_HID_TABLET] = "usb-tablet", [USB_HID_MOUSE] = "usb-mouse",
	[USB_HID_KEYBOARD] = "usb-kbd",
};

/* QEMU's product_desc (info usb) and input handler names (info mice). */
static const char *const products[3] = {
	[USB_HID_TABLET] = "QEMU USB Tablet", [USB_HID_MOUSE] = "QEMU USB Mouse",
	[USB_HID_KEYBOARD] = "QEMU USB Keyboard",
};
static const char *const handler_names[3] = {
	[USB_HID_TABLET] = "QEMU HID Tablet", [USB_HID_MOUSE] = "QEMU HID Mouse",
	[USB_HID_KEYBOARD] = "QEMU HID Keyboard",
};

const char *usb_hid_kind_name(enum usb_hid_kind kind)
{
	return kind_names[kind];
}

int usb_hid_kind_parse(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, kind_names[i]))
			return i;
	return -1;
}

/*
 * qnum (XT set 1 make code, 0x80 | code after 0xe0) to HID usage (HID Usage
 * Tables 1.12 §10, whose table gives both columns).
 */
static const uint8_t qnum_to_usage[256] = {
	[0x01] = 0x29, [0x02] = 0x1e, [0x03] = 0x1f, [0x04] = 0x20, [0x05] = 0x21,
	[0x06] = 0x22, [0x07] = 0x23, [0x08] = 0x24, [0x09] = 0x25, [0x0a] = 0x26,
	[0x0b] = 0x27, [0x0c] = 0x2d, [0x0d] = 0x2e, [0x0e] = 0x2a, [0x0f] = 0x2b,
	[0x10] = 0x14, [0x11] = 0x1a, [0x12] = 0x08, [0x13] = 0x15, [0x14] = 0x17,
	[0x15] = 0x1c, [0x16] = 0x18, [0x17] = 0x0c, [0x18] = 0x12, [0x19] = 0x13,
	[0x1a] = 0x2f, [0x1b] = 0x30, [0x1c] = 0x28, [0x1d] = 0xe0, [0x1e] = 0x04,
	[0x1f] = 0x16, [0x20] = 0x07, [0x21] = 0x09, [0x22] = 0x0a, [0x23] = 0x0b,
	[0x24] = 0x0d, [0x25] = 0x0e, [0x26] = 0x0f, [0x27] = 0x33, [0x28] = 0x34,
	[0x29] = 0x35, [0x2a] = 0xe1, [0x2b] = 0x31, [0x2c] = 0x1d, [0x2d] = 0x1b,
	[0x2e] = 0x06, [0x2f] = 0x19, [0x30] = 0x05, [0x31] = 0x11, [0x32] = 0x10,
	[0x33] = 0x36, [0x34] = 0x37, [0x35] = 0x38, [0x36] = 0xe5, [0x37] = 0x55,
	[0x38] = 0xe2, [0x39] = 0x2c, [0x3a] = 0x39, [0x3b] = 0x3a, [0x3c] = 0x3b,
	[0x3d] = 0x3c, [0x3e] = 0x3d, [0x3f] = 0x3e, [0x40] = 0x3f, [0x41] = 0x40,
	[0x42] = 0x41, [0x43] = 0x42, [0x44] = 0x43, [0x45] = 0x53, [0x46] = 0x47,
	[0x47] = 0x5f, [0x48] = 0x60, [0x49] = 0x61, [0x4a] = 0x56, [0x4b] = 0x5c,
	[0x4c] = 0x5d, [0x4d] = 0x5e, [0x4e] = 0x57, [0x4f] = 0x59, [0x50] = 0x5a,
	[0x51] = 0x5b, [0x52] = 0x62, [0x53] = 0x63, [0x54] = 0x46, [0x56] = 0x64,
	[0x57] = 0x44, [0x58] = 0x45, [0x70] = 0x88, [0x73] = 0x87, [0x79] = 0x8a,
	[0x7b] = 0x8b, [0x7d] = 0x89,
	[0x9c] = 0x58, [0x9d] = 0xe4, [0xb5] = 0x54, [0xb7] = 0x46, [0xb8] = 0xe6,
	[0xc6] = 0x48, [0xc7] = 0x4a, [0xc8] = 0x52, [0xc9] = 0x4b, [0xcb] = 0x50,
	[0xcd] = 0x4f, [0xcf] = 0x4d, [0xd0] = 0x51, [0xd1] = 0x4e, [0xd2] = 0x49,
	[0xd3] = 0x4c, [0xdb] = 0xe3, [0xdc] = 0xe7, [0xdd] = 0x65, [0xde] = 0x66,
};

uint8_t usb_hid_usage(unsigned qnum)
{
	return qnum < 256 ? qnum_to_usage[qnum] : 0;
}

/* HID button bits: 1 left, 2 right, 3 middle (Button page usages 1-3). */
static uint8_t hid_buttons(unsigned b)
{
	return (uint8_t)((b & INPUT_BTN_LEFT ? 1 : 0) | (b & INPUT_BTN_RIGHT ? 2 : 0) |
			 (b & INPUT_BTN_MIDDLE ? 4 : 0));
}

static int clamp127(int v)
{
	return v < -127 ? -127 : v > 127 ? 127 : v;
}

/* Queues a pointer state: a new entry when the buttons change, else merged into the last. */
static void pointer_event(struct usb_hid *h, int dx, int dy, int dz, int x, int y,
			  unsigned buttons)
{
	struct usb_hid_pointer *t;

	pthread_mutex_lock(&h->lock);
	t = h->n ? &h->q[(h->head + h->n - 1) % USB_HID_QUEUE] : NULL;
	if (!t || (t->buttons != buttons && h->n < USB_HID_QUEUE)) {
		t = &h->q[(h->head + h->n) % USB_HID_QUEUE];
		*t = (struct usb_hid_pointer){ .buttons = buttons };
		h->n++;
	}
	t->dx += dx;
	t->dy += dy;
	t->dz += dz;
	t->x = x;
	t->y = y;
	t->buttons = buttons;
	pthread_mutex_unlock(&h->lock);
}

void usb_hid_rel(void *dev, int dx, int dy, int dz, unsigned buttons)
{
	struct usb_hid *h = dev;

	pointer_event(h, dx, dy, dz, 0, 0, buttons);
}

void usb_hid_abs(void *dev, int x, int y, int dz, unsigned buttons)
{
	struct usb_hid *h = dev;

	pointer_event(h, 0, 0, dz, x, y, buttons);
}

void usb_hid_key(void *dev, unsigned qnum, bool down)
{
	struct usb_hid *h = dev;
	uint8_t u = usb_hid_usage(qnum);
	unsigned i;

	if (!u)
		return;
	pthread_mutex_lock(&h->lock);
	if (u >= 0xe0) {
		uint8_t bit = (uint8_t)(1u << (u - 0xe0));
		h->key_changed |= !!(h->mods & bit) != down;
		h->mods = down ? h->mods | bit : h->mods & (uint8_t)~bit;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	for (i = 0; i < h->nr_keys && h->keys[i] != u; i++)
		;
	if (down && i == h->nr_keys && h->nr_keys < USB_HID_MAX_KEYS) {
		h->keys[h->nr_keys++] = u;
		h->key_changed = true;
	} else if (!down && i < h->nr_keys) {
		memmove(&h->keys[i], &h->keys[i + 1], h->nr_keys - i - 1);
		h->nr_keys--;
		h->key_changed = true;
	}
	pthread_mutex_unlock(&h->lock);
}

/* The boot keyboard report (HID 1.11 appendix B.1): modifiers, reserved, 6 keys. */
static int keyboard_report(struct usb_hid *h, uint8_t *buf, unsigned len)
{
	uint8_t r[8] = { h->mods };
	unsigned n = len < 8 ? len : 8;

	/* More than 6 keys: every slot says ErrorRollOver (usage 1, HID Usage Tables §10). */
	for (unsigned i = 0; i < 6; i++)
		r[2 + i] = h->nr_keys > 6 ? 0x01 : i < h->nr_keys ? h->keys[i] : 0;
	memcpy(buf, r, n);
	return (int)n;
}

/* Takes up to one report's worth from the head of the queue (all of it once it is drained). */
static int pointer_report(struct usb_hid *h, struct usb_hid_pointer *e, uint8_t *buf,
			  unsigned len)
{
	uint8_t r[6];
	int dx = clamp127(e->dx), dy = clamp127(e->dy), dz = clamp127(e->dz);
	unsigned n;

	e->dx -= dx;
	e->dy -= dy;
	e->dz -= dz;
	r[0] = hid_buttons(e->buttons);
	if (h->kind == USB_HID_TABLET) {
		r[1] = (uint8_t)e->x;
		r[2] = (uint8_t)(e->x >> 8);
		r[3] = (uint8_t)e->y;
		r[4] = (uint8_t)(e->y >> 8);
		r[5] = (uint8_t)-dz;	/* HID wheel: positive is away from the user (up) */
		n = 6;
	} else {
		r[1] = (uint8_t)dx;
		r[2] = (uint8_t)dy;
		r[3] = (uint8_t)-dz;
		n = h->protocol == 0 ? 3 : 4;	/* boot protocol: buttons, X, Y (HID 1.11 B.2) */
	}
	if (n > len)
		n = len;
	memcpy(buf, r, n);
	return (int)n;
}

static bool idle_due(const struct usb_hid *h)
{
	return h->idle && h->dev.now_ms - h->last_report_ms >= (uint64_t)h->idle * 4;
}

static int hid_data_in(struct usb_device *dev, unsigned ep, uint8_t *buf, unsigned len)
{
	struct usb_hid *h = (struct usb_hid *)dev;
	struct usb_hid_pointer still;
	int r = USB_RET_NAK;

	if (ep != 1)
		return USB_RET_STALL;
	pthread_mutex_lock(&h->lock);
	if (h->kind == USB_HID_KEYBOARD) {
		if (h->key_changed || idle_due(h)) {
			r = keyboard_report(h, buf, len);
			h->key_changed = false;
		}
	} else if (h->n) {
		struct usb_hid_pointer *e = &h->q[h->head];
		r = pointer_report(h, e, buf, len);
		h->last = *e;
		if (!e->dx && !e->dy && !e->dz) {
			h->head = (h->head + 1) % USB_HID_QUEUE;
			h->n--;
		}
	} else if (idle_due(h)) {
		still = h->last;
		still.dx = still.dy = still.dz = 0;
		r = pointer_report(h, &still, buf, len);
	}
	if (r >= 0)
		h->last_report_ms = dev->now_ms;
	pthread_mutex_unlock(&h->lock);
	return r;
}

static int hid_control(struct usb_device *dev, const struct usb_setup *s, uint8_t *data,
		       unsigned len)
{
	struct usb_hid *h = (struct usb_hid *)dev;
	unsigned req = (unsigned)s->request_type << 8 | s->request;
	struct usb_hid_pointer still;
	int r = USB_RET_STALL;

	pthread_mutex_lock(&h->lock);
	switch (req) {
	case USB_REQ_GET_DESCRIPTOR_IF:
		if (s->value >> 8 == HID_DT_REPORT) {
			const uint8_t *d = h->kind == USB_HID_TABLET ? tablet_report_desc :
				h->kind == USB_HID_MOUSE ? mouse_report_desc : keyboard_report_desc;
			unsigned n = h->kind == USB_HID_TABLET ? sizeof(tablet_report_desc) :
				h->kind == USB_HID_MOUSE ? sizeof(mouse_report_desc) :
				sizeof(keyboard_report_desc);
			r = (int)(n < len ? n : len);
			memcpy(data, d, (size_t)r);
		} else if (s->value >> 8 == HID_DT_HID) {
			r = (int)(9 < len ? 9 : len);
			memcpy(data, dev->desc->config + 18, (size_t)r);
		}
		break;
	case HID_GET_REPORT:
		if (h->kind == USB_HID_KEYBOARD) {
			r = keyboard_report(h, data, len);
		} else {
			still = h->last;
			still.dx = still.dy = still.dz = 0;
			r = pointer_report(h, &still, data, len);
		}
		break;
	case HID_SET_REPORT:
		/* The keyboard's one output report: its LEDs (HID 1.11 B.1). */
		if (h->kind == USB_HID_KEYBOARD && s->length >= 1) {
			h->leds = data[0];
			r = 0;
		}
		break;
	case HID_GET_IDLE:
		data[0] = h->idle;
		r = len ? 1 : 0;
		break;
	case HID_SET_IDLE:
		h->idle = (uint8_t)(s->value >> 8);
		h->last_report_ms = dev->now_ms;
		r = 0;
		break;
	case HID_GET_PROTOCOL:
		data[0] = h->protocol;
		r = len ? 1 : 0;
		break;
	case HID_SET_PROTOCOL:
		h->protocol = (uint8_t)(s->value & 1);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

static void hid_reset(struct usb_device *dev)
{
	struct usb_hid *h = (struct usb_hid *)dev;

	pthread_mutex_lock(&h->lock);
	h->head = h->n = 0;
	h->idle = 0;
	h->protocol = 1;	/* report protocol after reset (HID 1.11 §7.2.6) */
	h->key_changed = false;
	h->leds = 0;
	pthread_mutex_unlock(&h->lock);
}

static const struct usb_device_ops hid_ops = {
	.control = hid_control,
	.data_in = hid_data_in,
	.reset = hid_reset,
};

int usb_hid_init(struct usb_hid *h, enum usb_hid_kind kind, const char *id)
{
	int r;

	memset(h, 0, sizeof(*h));
	r = pthread_mutex_init(&h->lock, NULL);
	if (r)
		return -r;
	h->kind = kind;
	h->protocol = 1;
	h->dev.product = products[kind];
	h->dev.desc = &hid_desc[kind];
	h->dev.ops = &hid_ops;
	h->dev.speed_mbps = 12;
	snprintf(h->dev.id, sizeof(h->dev.id), "%s", id ? id : "");
	return 0;
}

static const struct input_handler_ops hid_input_ops = {
	.key = usb_hid_key,
	.rel = usb_hid_rel,
	.abs = usb_hid_abs,
};

int usb_hid_attach_input(struct usb_hid *h, struct input *in)
{
	static const unsigned kinds[3] = {
		[USB_HID_TABLET] = INPUT_MOUSE_ABS, [USB_HID_MOUSE] = INPUT_MOUSE_REL,
		[USB_HID_KEYBOARD] = INPUT_KEYBOARD,
	};

	if (input_register(in, handler_names[h->kind], kinds[h->kind], &hid_input_ops, h) < 0)
		return -1;
	h->input = in;
	return 0;
}

void usb_hid_destroy(struct usb_hid *h)
{
	if (h->input)
		input_unregister(h->input, h);
	h->input = NULL;
	pthread_mutex_destroy(&h->lock);
}
