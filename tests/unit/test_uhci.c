/*
 * usb/uhci.c driven as a guest driver drives it: registers through BAR4,
 * a frame list, queue heads and TDs in fake guest RAM, frames run one at a
 * time.  Checked: register defaults and write-1-to-clear bits, control
 * transfers (GET_DESCRIPTOR, SET_ADDRESS, SET_CONFIGURATION) with TD status
 * and length write-back, interrupt IN reports from input events, NAK,
 * C_ERR countdown, IOC interrupts, and hostile schedules (loops, pointers
 * outside RAM, illegal lengths) that must end bounded with no crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake.h"
#include "usb/hid.h"
#include "usb/uhci.h"

#define RAM_SIZE (1 * MIB)
#define FL 0x1000	/* frame list */
#define QH 0x2000
#define TDS 0x3000	/* TD i at TDS + 16 * i */
#define BUF 0x8000	/* TD i's buffer at BUF + 0x100 * i */

struct fix {
	struct guest_memory mem;
	struct uhci u;
	struct usb_hid tablet;
	struct input in;
	int irq_calls;
	bool irq;
};

static void set_irq(void *opaque, unsigned line, bool level)
{
	struct fix *f = opaque;

	f->irq_calls++;
	f->irq = level;
}

static uint16_t rd16(struct fix *f, unsigned off)
{
	uint8_t b[2];

	uhci_io(&f->u, off, false, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static void wr16(struct fix *f, unsigned off, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	uhci_io(&f->u, off, true, b, 2);
}

static void wr32(struct fix *f, unsigned off, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	uhci_io(&f->u, off, true, b, 4);
}

static uint32_t *g32(struct fix *f, uint64_t gpa)
{
	return (uint32_t *)(f->mem.host + gpa);
}

static uint32_t token(unsigned pid, unsigned addr, unsigned ep, unsigned len)
{
	return pid | addr << 8 | ep << 15 | ((len - 1) & 0x7ff) << 21;
}

/* TD i: linked depth first to TD i+1, or terminating when last. */
static void put_td(struct fix *f, unsigned i, bool last, uint32_t ctrl, uint32_t tok)
{
	uint32_t *td = g32(f, TDS + 16 * i);

	td[0] = last ? UHCI_LINK_T : (TDS + 16 * (i + 1)) | UHCI_LINK_VF;
	td[1] = ctrl;
	td[2] = tok;
	td[3] = BUF + 0x100 * i;
}

/* Every frame points at one QH whose queue starts at TD 0. */
static void point_frames_at_qh(struct fix *f)
{
	for (unsigned i = 0; i < 1024; i++)
		*g32(f, FL + 4 * i) = QH | UHCI_LINK_Q;
	*g32(f, QH) = UHCI_LINK_T;
	*g32(f, QH + 4) = TDS;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(fake_memory_init(&f->mem, RAM_SIZE), 0);
	assert_int_equal(uhci_init(&f->u, &f->mem, set_irq, f), 0);
	f->u.pci.config[PCI_COMMAND] |= PCI_COMMAND_MASTER | PCI_COMMAND_IO;
	f->u.pci.config[PCI_INTERRUPT_LINE] = 11;
	assert_int_equal(usb_hid_init(&f->tablet, USB_HID_TABLET, "t0"), 0);
	assert_int_equal(input_init(&f->in), 0);
	assert_int_equal(usb_hid_attach_input(&f->tablet, &f->in), 0);
	assert_int_equal(uhci_attach(&f->u, 0, &f->tablet.dev), 0);
	for (unsigned i = 0; i < 1024; i++)
		*g32(f, FL + 4 * i) = UHCI_LINK_T;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	uhci_destroy(&f->u);
	usb_hid_destroy(&f->tablet);
	input_destroy(&f->in);
	fake_memory_free(&f->mem);
	free(f);
	return 0;
}

/* What a driver does first: reset the port, enable it, point at the frame list, run. */
static void start(struct fix *f)
{
	wr16(f, UHCI_PORTSC1, UHCI_PORT_PR);
	wr16(f, UHCI_PORTSC1, 0);
	wr16(f, UHCI_PORTSC1, UHCI_PORT_PED | UHCI_PORT_CSC);
	wr32(f, UHCI_FLBASEADD, FL);
	wr16(f, UHCI_USBCMD, UHCI_CMD_RS | UHCI_CMD_MAXP);
}

static void run_frames(struct fix *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		uhci_run_frame(&f->u);
}

/* A control transfer on QH: SETUP, IN/OUT data in 8-byte packets, then the status stage. */
static void control(struct fix *f, unsigned addr, const uint8_t s[8], uint8_t *data)
{
	unsigned len = s[6] | s[7] << 8, n = 0, i = 1;
	bool in = s[0] & 0x80;
	uint32_t act = UHCI_TD_ACTIVE | 3u << UHCI_TD_CERR_SHIFT;

	point_frames_at_qh(f);
	memcpy(f->mem.host + BUF, s, 8);
	put_td(f, 0, false, act, token(USB_PID_SETUP, addr, 0, 8));
	for (; n < len; i++, n += 8) {
		unsigned chunk = len - n < 8 ? len - n : 8;
		if (!in)
			memcpy(f->mem.host + BUF + 0x100 * i, data + n, chunk);
		put_td(f, i, false, act, token(in ? USB_PID_IN : USB_PID_OUT, addr, 0, chunk));
	}
	put_td(f, i, true, act | UHCI_TD_IOC, token(in ? USB_PID_OUT : USB_PID_IN, addr, 0, 0));
	run_frames(f, 1);
	for (unsigned j = 1, m = 0; in && j < i; j++, m += 8)
		memcpy(data + m, f->mem.host + BUF + 0x100 * j, len - m < 8 ? len - m : 8);
}

static void test_register_defaults(void **state)
{
	struct fix *f = *state;
	uint8_t b;

	assert_int_equal(rd16(f, UHCI_USBCMD), 0);
	assert_int_equal(rd16(f, UHCI_USBSTS), UHCI_STS_HALTED);
	uhci_io(&f->u, UHCI_SOFMOD, false, &b, 1);
	assert_int_equal(b, 0x40);
	/* Port 1 has the tablet: connected, change seen; port 2 is empty. */
	assert_int_equal(rd16(f, UHCI_PORTSC1), UHCI_PORT_ALWAYS1 | UHCI_PORT_CCS | UHCI_PORT_CSC);
	assert_int_equal(rd16(f, UHCI_PORTSC1 + 2), UHCI_PORT_ALWAYS1);
	/* CSC is write-1-to-clear; a byte write of the high half leaves it alone. */
	b = 0;
	uhci_io(&f->u, UHCI_PORTSC1 + 1, true, &b, 1);
	assert_true(rd16(f, UHCI_PORTSC1) & UHCI_PORT_CSC);
	wr16(f, UHCI_PORTSC1, UHCI_PORT_CSC);
	assert_false(rd16(f, UHCI_PORTSC1) & UHCI_PORT_CSC);
	/* An empty port cannot be enabled. */
	wr16(f, UHCI_PORTSC1 + 2, UHCI_PORT_PED);
	assert_false(rd16(f, UHCI_PORTSC1 + 2) & UHCI_PORT_PED);
	/* RS clears HCHalted; the frame counter runs only then. */
	start(f);
	assert_int_equal(rd16(f, UHCI_USBSTS) & UHCI_STS_HALTED, 0);
	run_frames(f, 3);
	assert_int_equal(rd16(f, UHCI_FRNUM), 3);
	wr16(f, UHCI_USBCMD, 0);
	run_frames(f, 3);
	assert_int_equal(rd16(f, UHCI_FRNUM), 3);
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_HALTED);
	/* HCRESET puts everything back. */
	wr16(f, UHCI_USBCMD, UHCI_CMD_HCRESET);
	assert_int_equal(rd16(f, UHCI_FRNUM), 0);
	assert_int_equal(rd16(f, UHCI_USBCMD), 0);
}

static void test_get_device_descriptor(void **state)
{
	struct fix *f = *state;
	static const uint8_t get_dev[8] = { 0x80, 6, 0, 1, 0, 0, 18, 0 };
	/* QEMU's usb-tablet: USB 1.0, ep0 8 bytes, 0627:0001, strings 1/3/10, 1 config. */
	static const uint8_t want[18] = { 18, 1, 0x00, 0x01, 0, 0, 0, 8, 0x27, 0x06, 0x01, 0x00,
					  0, 0, 1, 3, 10, 1 };
	uint8_t got[18] = { 0 };

	start(f);
	wr16(f, UHCI_USBINTR, UHCI_INTR_IOC);
	control(f, 0, get_dev, got);
	assert_memory_equal(got, want, 18);
	/* Status written back: inactive, no error, ActLen n-1 (0x7ff for zero bytes). */
	assert_int_equal(*g32(f, TDS + 4) & (UHCI_TD_ACTIVE | UHCI_TD_STALLED | UHCI_TD_ACTLEN), 7);
	assert_int_equal(*g32(f, TDS + 16 + 4) & UHCI_TD_ACTLEN, 7);
	assert_int_equal(*g32(f, TDS + 48 + 4) & UHCI_TD_ACTLEN, 1);
	assert_int_equal(*g32(f, TDS + 64 + 4) & (UHCI_TD_ACTIVE | UHCI_TD_ACTLEN), 0x7ff);
	/* The queue is drained and the IOC TD raised the interrupt. */
	assert_int_equal(*g32(f, QH + 4), UHCI_LINK_T);
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_USBINT);
	assert_true(f->irq);
	wr16(f, UHCI_USBSTS, UHCI_STS_USBINT);
	run_frames(f, 1);
	assert_false(f->irq);
}

static void test_string_descriptor(void **state)
{
	struct fix *f = *state;
	static const uint8_t get_str[8] = { 0x80, 6, 3, 3, 0x09, 0x04, 64, 0 };
	const char *want = "QEMU USB Tablet";
	uint8_t got[64] = { 0 };

	start(f);
	control(f, 0, get_str, got);
	assert_int_equal(got[0], 2 + 2 * strlen(want));
	assert_int_equal(got[1], USB_DT_STRING);
	for (size_t i = 0; i < strlen(want); i++) {
		assert_int_equal(got[2 + 2 * i], want[i]);
		assert_int_equal(got[3 + 2 * i], 0);
	}
}

static void test_set_address_and_configuration(void **state)
{
	struct fix *f = *state;
	static const uint8_t set_addr[8] = { 0, 5, 5, 0, 0, 0, 0, 0 };
	static const uint8_t set_cfg[8] = { 0, 9, 1, 0, 0, 0, 0, 0 };
	static const uint8_t get_cfg[8] = { 0x80, 8, 0, 0, 0, 0, 1, 0 };
	uint8_t v = 0xee;

	start(f);
	control(f, 0, set_addr, NULL);
	assert_int_equal(f->tablet.dev.addr, 5);
	/* Address 0 no longer answers: the SETUP times out and C_ERR counts down. */
	control(f, 0, get_cfg, &v);
	assert_true(*g32(f, TDS + 4) & UHCI_TD_TIMEOUT);
	assert_true(*g32(f, TDS + 4) & UHCI_TD_ACTIVE);
	assert_int_equal((*g32(f, TDS + 4) >> UHCI_TD_CERR_SHIFT) & 3, 2);
	run_frames(f, 2);
	assert_int_equal(*g32(f, TDS + 4) & (UHCI_TD_ACTIVE | UHCI_TD_STALLED), UHCI_TD_STALLED);
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_ERRINT);

	control(f, 5, set_cfg, NULL);
	v = 0xee;
	control(f, 5, get_cfg, &v);
	assert_int_equal(v, 1);
	assert_int_equal(f->tablet.dev.config, 1);
	/* A port reset takes the device back to address 0, unconfigured. */
	wr16(f, UHCI_PORTSC1, UHCI_PORT_PR);
	assert_int_equal(f->tablet.dev.addr, 0);
	assert_int_equal(f->tablet.dev.config, 0);
}

/* An interrupt IN TD for endpoint 1 at address 0 in the QH. */
static void put_intr_td(struct fix *f)
{
	point_frames_at_qh(f);
	memset(f->mem.host + BUF, 0xee, 16);
	put_td(f, 0, true, UHCI_TD_ACTIVE | UHCI_TD_SPD | 3u << UHCI_TD_CERR_SHIFT,
	       token(USB_PID_IN, 0, 1, 8));
}

static void test_tablet_report_and_nak(void **state)
{
	struct fix *f = *state;
	static const uint8_t set_cfg[8] = { 0, 9, 1, 0, 0, 0, 0, 0 };
	const uint8_t *r = f->mem.host + BUF;
	unsigned x = 400 * 0x7fff / 799, y = 300 * 0x7fff / 599;

	start(f);
	control(f, 0, set_cfg, NULL);
	put_intr_td(f);
	run_frames(f, 1);
	/* Nothing happened yet: NAK, still active, the queue does not advance. */
	assert_int_equal(*g32(f, TDS + 4) & (UHCI_TD_ACTIVE | UHCI_TD_NAK),
			 UHCI_TD_ACTIVE | UHCI_TD_NAK);
	assert_int_equal(*g32(f, QH + 4), TDS);
	assert_int_equal(r[0], 0xee);

	/* input_pointer on an 800x600 screen reaches the tablet scaled to 0..0x7fff. */
	input_pointer(&f->in, 400, 300, 800, 600, 0, INPUT_BTN_LEFT);
	run_frames(f, 1);
	assert_int_equal(*g32(f, TDS + 4) & (UHCI_TD_ACTIVE | UHCI_TD_NAK), 0);
	assert_int_equal(*g32(f, TDS + 4) & UHCI_TD_ACTLEN, 5);	/* 6 bytes */
	assert_int_equal(r[0], 1);
	assert_int_equal(r[1] | r[2] << 8, x);
	assert_int_equal(r[3] | r[4] << 8, y);
	assert_int_equal(r[5], 0);
	/* Short packet with SPD: USBINT set; the queue stopped at the TD (inactive now). */
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_USBINT);
	assert_int_equal(*g32(f, QH + 4), TDS);

	/* The corner maps to 0x7fff exactly; the wheel up is +1 in HID. */
	put_intr_td(f);
	input_pointer(&f->in, 799, 599, 800, 600, -1, 0);
	run_frames(f, 1);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1] | r[2] << 8, 0x7fff);
	assert_int_equal(r[3] | r[4] << 8, 0x7fff);
	assert_int_equal(r[5], 1);
	put_intr_td(f);
	run_frames(f, 1);
	assert_true(*g32(f, TDS + 4) & UHCI_TD_NAK);
}

static void test_unconfigured_endpoint_stalls(void **state)
{
	struct fix *f = *state;

	start(f);
	put_intr_td(f);
	run_frames(f, 1);
	assert_int_equal(*g32(f, TDS + 4) & (UHCI_TD_ACTIVE | UHCI_TD_STALLED), UHCI_TD_STALLED);
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_ERRINT);
}

/* A TD linked to itself depth first, outside any queue: the walk stops at its budget. */
static void test_td_loop_bounded(void **state)
{
	struct fix *f = *state;
	uint32_t *td = g32(f, TDS);

	*g32(f, FL) = TDS;
	td[0] = TDS | UHCI_LINK_VF;
	td[1] = UHCI_TD_ACTIVE;
	td[2] = token(USB_PID_IN, 9, 1, 8);	/* nobody at 9, C_ERR 0: retried forever */
	td[3] = BUF;
	start(f);
	run_frames(f, 1);
	assert_int_equal(f->u.last_walk_links, UHCI_FRAME_BUDGET);
	assert_false(rd16(f, UHCI_USBSTS) & UHCI_STS_HALTED);
	assert_int_equal(rd16(f, UHCI_FRNUM), 1);
}

static void test_qh_loops_bounded(void **state)
{
	struct fix *f = *state;

	/* A QH whose horizontal link is itself, empty queue. */
	*g32(f, FL) = QH | UHCI_LINK_Q;
	*g32(f, QH) = QH | UHCI_LINK_Q;
	*g32(f, QH + 4) = UHCI_LINK_T;
	start(f);
	run_frames(f, 1);
	assert_int_equal(f->u.last_walk_links, UHCI_FRAME_BUDGET);
	/* A QH whose element is itself. */
	*g32(f, FL + 4) = QH | UHCI_LINK_Q;
	*g32(f, QH + 4) = QH | UHCI_LINK_Q;
	run_frames(f, 1);
	assert_int_equal(f->u.last_walk_links, UHCI_FRAME_BUDGET);
	/* A queue whose completed TD points back at itself depth first. */
	*g32(f, FL + 8) = QH | UHCI_LINK_Q;
	*g32(f, QH) = UHCI_LINK_T;
	*g32(f, QH + 4) = TDS;
	static const uint8_t get_status[8] = { 0x80, 0, 0, 0, 0, 0, 2, 0 };
	wr16(f, UHCI_PORTSC1, UHCI_PORT_PED);
	memcpy(f->mem.host + BUF, get_status, 8);
	put_td(f, 0, false, UHCI_TD_ACTIVE, token(USB_PID_SETUP, 0, 0, 8));
	*g32(f, TDS) = TDS | UHCI_LINK_VF;
	run_frames(f, 1);
	assert_false(*g32(f, TDS + 4) & UHCI_TD_ACTIVE);
	assert_int_equal(*g32(f, QH + 4), TDS | UHCI_LINK_VF);
	assert_true(f->u.last_walk_links < UHCI_FRAME_BUDGET);
	assert_false(rd16(f, UHCI_USBSTS) & UHCI_STS_HALTED);
}

static void expect_host_error(struct fix *f, uint16_t bit)
{
	run_frames(f, 1);
	assert_true(rd16(f, UHCI_USBSTS) & bit);
	assert_true(rd16(f, UHCI_USBSTS) & UHCI_STS_HALTED);
	assert_false(rd16(f, UHCI_USBCMD) & UHCI_CMD_RS);
	assert_true(f->irq);	/* HSE and HCPE interrupt whatever USBINTR says */
}

static void test_link_past_ram(void **state)
{
	struct fix *f = *state;

	*g32(f, FL) = 0xfffffff2;	/* a QH at the top of the address space */
	start(f);
	expect_host_error(f, UHCI_STS_HSE);
}

static void test_frame_list_past_ram(void **state)
{
	struct fix *f = *state;

	start(f);
	wr32(f, UHCI_FLBASEADD, 0x7ffff000);
	expect_host_error(f, UHCI_STS_HSE);
}

static void test_buffer_past_ram(void **state)
{
	struct fix *f = *state;
	static const uint8_t set_cfg[8] = { 0, 9, 1, 0, 0, 0, 0, 0 };

	start(f);
	control(f, 0, set_cfg, NULL);
	put_intr_td(f);
	g32(f, TDS)[3] = RAM_SIZE - 2;	/* a 6-byte report would cross the end of RAM */
	input_pointer(&f->in, 1, 1, 10, 10, 0, 0);
	expect_host_error(f, UHCI_STS_HSE);
}

static void test_illegal_maxlen(void **state)
{
	struct fix *f = *state;

	point_frames_at_qh(f);
	put_td(f, 0, true, UHCI_TD_ACTIVE, token(USB_PID_IN, 0, 0, 0x600));
	start(f);
	expect_host_error(f, UHCI_STS_HCPE);
}

static void test_no_bus_master_no_dma(void **state)
{
	struct fix *f = *state;

	f->u.pci.config[PCI_COMMAND] &= (uint8_t)~PCI_COMMAND_MASTER;
	*g32(f, FL) = 0xfffffff2;
	start(f);
	run_frames(f, 1);
	assert_false(rd16(f, UHCI_USBSTS) & UHCI_STS_HSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_device_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_string_descriptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_address_and_configuration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tablet_report_and_nak, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfigured_endpoint_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_td_loop_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qh_loops_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_past_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_list_past_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_past_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_illegal_maxlen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_bus_master_no_dma, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
