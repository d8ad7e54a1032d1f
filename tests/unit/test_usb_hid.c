/*
 * usb/usb.c and usb/hid.c without a controller: control transfers stage by
 * stage (standard and HID class requests), the descriptors QEMU 7.2's HID
 * devices give, and interrupt IN reports from key and pointer events
 * (keyboard modifiers and rollover, LEDs by SET_REPORT, idle repeat, boot
 * protocol, relative motion split over reports, NAK when nothing is new).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "usb/hid.h"

/* Runs a whole control transfer; returns the IN data length, or USB_RET_STALL. */
static int ctl(struct usb_device *d, uint8_t rt, uint8_t req, uint16_t value, uint16_t index,
	       uint16_t len, uint8_t *data)
{
	uint8_t s[8] = { rt, req, (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)index,
			 (uint8_t)(index >> 8), (uint8_t)len, (uint8_t)(len >> 8) };
	unsigned got = 0;
	int r;

	assert_int_equal(usb_handle_packet(d, USB_PID_SETUP, 0, s, 8), 8);
	if (rt & 0x80) {
		while (got < len) {
			r = usb_handle_packet(d, USB_PID_IN, 0, data + got, 8);
			if (r < 0)
				return r;
			got += (unsigned)r;
			if (r < 8)
				break;
		}
		return usb_handle_packet(d, USB_PID_OUT, 0, NULL, 0) < 0 ? USB_RET_STALL :
			(int)got;
	}
	for (; got < len; got += 8) {
		r = usb_handle_packet(d, USB_PID_OUT, 0, data + got, len - got < 8 ? len - got : 8);
		if (r < 0)
			return r;
	}
	return usb_handle_packet(d, USB_PID_IN, 0, NULL, 0);
}

static struct usb_hid *new_hid(enum usb_hid_kind kind)
{
	struct usb_hid *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	assert_int_equal(usb_hid_init(h, kind, NULL), 0);
	usb_device_reset(&h->dev);
	assert_int_equal(ctl(&h->dev, 0, 9, 1, 0, 0, NULL), 0);	/* SET_CONFIGURATION 1 */
	return h;
}

static void free_hid(struct usb_hid *h)
{
	usb_hid_destroy(h);
	free(h);
}

static int poll(struct usb_hid *h, uint8_t *buf)
{
	memset(buf, 0xee, 8);
	return usb_handle_packet(&h->dev, USB_PID_IN, 1, buf, 8);
}

/* The configuration's HID descriptor gives the report descriptor's length; they agree. */
static void test_descriptors(void **state)
{
	static const unsigned report_len[3] = { 74, 52, 63 };	/* QEMU's tablet, mouse, kbd */
	static const uint8_t subclass_proto[3][2] = { { 0, 2 }, { 1, 2 }, { 1, 1 } };

	(void)state;
	for (int k = 0; k < 3; k++) {
		struct usb_hid *h = new_hid((enum usb_hid_kind)k);
		uint8_t cfg[64], rep[128], hid[16];

		assert_int_equal(ctl(&h->dev, 0x80, 6, 0x0200, 0, 64, cfg), 34);
		assert_int_equal(cfg[2], 34);
		assert_int_equal(cfg[9 + 5], 3);	/* interface class HID */
		assert_int_equal(cfg[9 + 6], subclass_proto[k][0]);
		assert_int_equal(cfg[9 + 7], subclass_proto[k][1]);
		assert_int_equal(cfg[18 + 7] | cfg[18 + 8] << 8, report_len[k]);
		assert_int_equal(cfg[27 + 2], 0x81);	/* EP1 IN, interrupt */
		assert_int_equal(cfg[27 + 3], 3);
		assert_int_equal(ctl(&h->dev, 0x81, 6, 0x2200, 0, 128, rep), report_len[k]);
		assert_int_equal(rep[0], 0x05);
		assert_int_equal(rep[report_len[k] - 1], 0xc0);
		assert_int_equal(ctl(&h->dev, 0x81, 6, 0x2100, 0, 9, hid), 9);
		assert_memory_equal(hid, cfg + 18, 9);
		/* A short wLength cuts the answer. */
		assert_int_equal(ctl(&h->dev, 0x80, 6, 0x0200, 0, 9, cfg), 9);
		free_hid(h);
	}
}

static void test_standard_requests(void **state)
{
	struct usb_hid *h = new_hid(USB_HID_MOUSE);
	uint8_t b[8];

	(void)state;
	assert_int_equal(ctl(&h->dev, 0x80, 0, 0, 0, 2, b), 2);	/* GET_STATUS */
	assert_int_equal(b[0], 0);
	assert_int_equal(ctl(&h->dev, 0, 3, 1, 0, 0, NULL), 0);	/* SET_FEATURE wakeup */
	assert_int_equal(ctl(&h->dev, 0x80, 0, 0, 0, 2, b), 2);
	assert_int_equal(b[0], 2);
	assert_int_equal(ctl(&h->dev, 0, 1, 1, 0, 0, NULL), 0);	/* CLEAR_FEATURE */
	assert_int_equal(ctl(&h->dev, 0x80, 0, 0, 0, 2, b), 2);
	assert_int_equal(b[0], 0);
	/* Unknown requests, a second configuration and a qualifier stall. */
	assert_int_equal(ctl(&h->dev, 0x80, 0x33, 0, 0, 4, b), USB_RET_STALL);
	assert_int_equal(ctl(&h->dev, 0, 9, 2, 0, 0, NULL), USB_RET_STALL);
	assert_int_equal(ctl(&h->dev, 0x80, 6, 0x0600, 0, 10, b), USB_RET_STALL);
	/* SET_ADDRESS applies only once its status stage is done (USB 2.0 §9.4.6). */
	uint8_t s[8] = { 0, 5, 7, 0, 0, 0, 0, 0 };
	assert_int_equal(usb_handle_packet(&h->dev, USB_PID_SETUP, 0, s, 8), 8);
	assert_int_equal(h->dev.addr, 0);
	assert_int_equal(usb_handle_packet(&h->dev, USB_PID_IN, 0, b, 8), 0);
	assert_int_equal(h->dev.addr, 7);
	/* Unconfigured: endpoint 1 stalls. */
	assert_int_equal(ctl(&h->dev, 0, 9, 0, 0, 0, NULL), 0);
	assert_int_equal(poll(h, b), USB_RET_STALL);
	free_hid(h);
}

static void test_keyboard_reports(void **state)
{
	struct usb_hid *h = new_hid(USB_HID_KEYBOARD);
	uint8_t b[8];

	(void)state;
	assert_int_equal(poll(h, b), USB_RET_NAK);
	usb_hid_key(h, 0x2a, true);	/* left shift */
	usb_hid_key(h, 0x1e, true);	/* a */
	assert_int_equal(poll(h, b), 8);
	assert_int_equal(b[0], 0x02);
	assert_int_equal(b[1], 0);
	assert_int_equal(b[2], 0x04);
	assert_int_equal(b[3], 0);
	assert_int_equal(poll(h, b), USB_RET_NAK);
	usb_hid_key(h, 0xc8, true);	/* up arrow (0xe0 0x48) */
	assert_int_equal(poll(h, b), 8);
	assert_int_equal(b[3], 0x52);
	usb_hid_key(h, 0x1e, false);
	assert_int_equal(poll(h, b), 8);
	assert_int_equal(b[2], 0x52);
	assert_int_equal(b[3], 0);
	/* Seven keys held: every slot reports ErrorRollOver. */
	for (unsigned q = 0x10; q < 0x17; q++)
		usb_hid_key(h, q, true);
	assert_int_equal(poll(h, b), 8);
	for (int i = 2; i < 8; i++)
		assert_int_equal(b[i], 0x01);
	assert_int_equal(b[0], 0x02);
	free_hid(h);
}

static void test_keyboard_leds_idle_protocol(void **state)
{
	struct usb_hid *h = new_hid(USB_HID_KEYBOARD);
	uint8_t leds = 0x02, b[8];

	(void)state;
	assert_int_equal(ctl(&h->dev, 0x21, 9, 0x0200, 0, 1, &leds), 0);	/* SET_REPORT */
	assert_int_equal(h->leds, 0x02);
	/* SET_IDLE 2 (8 ms): the unchanged report repeats once 8 ms have passed. */
	assert_int_equal(ctl(&h->dev, 0x21, 10, 0x0200, 0, 0, NULL), 0);
	assert_int_equal(ctl(&h->dev, 0xa1, 2, 0, 0, 1, b), 1);
	assert_int_equal(b[0], 2);
	h->dev.now_ms = 7;
	assert_int_equal(poll(h, b), USB_RET_NAK);
	h->dev.now_ms = 8;
	assert_int_equal(poll(h, b), 8);
	assert_int_equal(poll(h, b), USB_RET_NAK);
	assert_int_equal(ctl(&h->dev, 0x21, 11, 0, 0, 0, NULL), 0);	/* boot protocol */
	assert_int_equal(ctl(&h->dev, 0xa1, 3, 0, 0, 1, b), 1);
	assert_int_equal(b[0], 0);
	/* GET_REPORT gives the current state without waiting. */
	usb_hid_key(h, 0x1c, true);
	assert_int_equal(ctl(&h->dev, 0xa1, 1, 0x0100, 0, 8, b), 8);
	assert_int_equal(b[2], 0x28);
	/* SET_REPORT on a mouse has no output report: stall. */
	struct usb_hid *m = new_hid(USB_HID_MOUSE);
	assert_int_equal(ctl(&m->dev, 0x21, 9, 0x0200, 0, 1, &leds), USB_RET_STALL);
	free_hid(m);
	free_hid(h);
}

static void test_mouse_reports(void **state)
{
	struct usb_hid *h = new_hid(USB_HID_MOUSE);
	uint8_t b[8];

	(void)state;
	assert_int_equal(poll(h, b), USB_RET_NAK);
	usb_hid_rel(h, 200, -5, 0, INPUT_BTN_RIGHT);
	assert_int_equal(poll(h, b), 4);
	assert_int_equal(b[0], 0x02);
	assert_int_equal((int8_t)b[1], 127);
	assert_int_equal((int8_t)b[2], -5);
	assert_int_equal(poll(h, b), 4);
	assert_int_equal((int8_t)b[1], 73);
	assert_int_equal(b[2], 0);
	assert_int_equal(poll(h, b), USB_RET_NAK);
	/* A button change is its own report; motion with the same buttons merges. */
	usb_hid_rel(h, 1, 0, 0, 0);
	usb_hid_rel(h, 1, 0, 0, INPUT_BTN_LEFT | INPUT_BTN_MIDDLE);
	usb_hid_rel(h, 2, 0, 0, INPUT_BTN_LEFT | INPUT_BTN_MIDDLE);
	assert_int_equal(poll(h, b), 4);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[1], 1);
	assert_int_equal(poll(h, b), 4);
	assert_int_equal(b[0], 0x05);
	assert_int_equal(b[1], 3);
	/* Boot protocol: three bytes (HID 1.11 B.2). */
	assert_int_equal(ctl(&h->dev, 0x21, 11, 0, 0, 0, NULL), 0);
	usb_hid_rel(h, 0, 1, 0, 0);
	assert_int_equal(poll(h, b), 3);
	free_hid(h);
}

/* Registered with core/input under QEMU's names; pointer events pick the tablet. */
static void test_input_registration(void **state)
{
	struct usb_hid *t = new_hid(USB_HID_TABLET), *m = new_hid(USB_HID_MOUSE);
	struct input in;
	uint8_t b[8];

	(void)state;
	assert_int_equal(input_init(&in), 0);
	assert_int_equal(usb_hid_attach_input(m, &in), 0);
	assert_int_equal(usb_hid_attach_input(t, &in), 0);
	assert_string_equal(input_current_mouse(&in)->name, "QEMU HID Tablet");
	input_pointer(&in, 0, 0, 640, 480, 0, 0);
	assert_int_equal(poll(t, b), 6);
	assert_int_equal(poll(m, b), USB_RET_NAK);
	usb_hid_destroy(t);
	free(t);
	assert_string_equal(input_current_mouse(&in)->name, "QEMU HID Mouse");
	free_hid(m);
	input_destroy(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_standard_requests),
		cmocka_unit_test(test_keyboard_reports),
		cmocka_unit_test(test_keyboard_leds_idle_protocol),
		cmocka_unit_test(test_mouse_reports),
		cmocka_unit_test(test_input_registration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
