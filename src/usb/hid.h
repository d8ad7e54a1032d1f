/*
 * USB HID devices as QEMU 7.2 presents them (hw/usb/dev-hid.c): usb-tablet
 * (absolute pointer, 0..0x7fff on both axes), usb-mouse (relative, boot
 * protocol capable) and usb-kbd (boot keyboard with LEDs).  Same vendor,
 * product, strings and report descriptors, so guest drivers see the same
 * device.  Input events arrive through core/input.h on any thread and are
 * queued; the controller polls endpoint 1 and gets NAK while nothing is new
 * (HID 1.11 §7.2.4 idle rate 0), or the last state again once the idle
 * period the guest set has passed.
 */
#ifndef KESTREL_USB_HID_H
#define KESTREL_USB_HID_H

#include <pthread.h>

#include "core/input.h"
#include "usb/usb.h"

enum usb_hid_kind {
	USB_HID_TABLET,
	USB_HID_MOUSE,
	USB_HID_KEYBOARD,
};

#define USB_HID_QUEUE 16	/* pointer states waiting for the guest (QEMU's QUEUE_LENGTH) */
#define USB_HID_MAX_KEYS 16	/* keys tracked as held; a report carries 6 */

struct usb_hid_pointer {
	int dx, dy, dz;		/* relative motion not yet reported; dz < 0: wheel up */
	int x, y;		/* tablet: absolute 0..INPUT_ABS_MAX */
	unsigned buttons;	/* enum input_button bits */
};

struct usb_hid {
	struct usb_device dev;	/* first: the controller sees only this */
	enum usb_hid_kind kind;
	pthread_mutex_t lock;	/* input threads vs the controller's frame walk */
	struct usb_hid_pointer q[USB_HID_QUEUE];
	unsigned head, n;
	struct usb_hid_pointer last;	/* what the guest saw last (idle reports, GET_REPORT) */
	uint8_t mods;			/* keyboard: modifier bits, usages 0xe0-0xe7 */
	uint8_t keys[USB_HID_MAX_KEYS];	/* held keys' usages, in press order */
	unsigned nr_keys;
	bool key_changed;
	uint8_t leds;		/* SET_REPORT output: num, caps, scroll, compose, kana */
	uint8_t idle;		/* SET_IDLE duration, 4 ms units; 0: report on change only */
	uint8_t protocol;	/* SET_PROTOCOL: 0 boot, 1 report */
	uint64_t last_report_ms;
	struct input *input;	/* registered with, NULL if none */
};

/* Sets up a device of that kind, unconnected and unregistered; id may be NULL. */
int usb_hid_init(struct usb_hid *h, enum usb_hid_kind kind, const char *id);
void usb_hid_destroy(struct usb_hid *h);

/* Registers h as a keyboard or pointer with in (QEMU's handler names). */
int usb_hid_attach_input(struct usb_hid *h, struct input *in);

/* The -device name (usb-tablet, usb-mouse, usb-kbd); -1 from usb_hid_kind_parse if none. */
const char *usb_hid_kind_name(enum usb_hid_kind kind);
int usb_hid_kind_parse(const char *name);

/* The HID usage (HID Usage Tables §10) of a qnum key, 0 if it has none. */
uint8_t usb_hid_usage(unsigned qnum);

/* Input handler entry points, also called directly by tests. */
void usb_hid_key(void *dev, unsigned qnum, bool down);
void usb_hid_rel(void *dev, int dx, int dy, int dz, unsigned buttons);
void usb_hid_abs(void *dev, int x, int y, int dz, unsigned buttons);

#endif
