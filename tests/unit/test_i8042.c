/*
 * The i8042 and its PS/2 keyboard and mouse, driven through ports 0x60/0x64
 * as Linux's i8042/atkbd/psmouse drivers and SeaBIOS's ps2port.c drive them,
 * with input arriving through core/input.h as VNC and the monitor send it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/input.h"
#include "core/keycodes.h"
#include "hw/i8042.h"
#include "fake.h"

struct rig {
	struct i8042 kbc;
	struct input in;
	struct power_log power;
	bool level[16];
	unsigned raises[16];	/* rising edges per line */
};

static void rig_irq(void *opaque, unsigned irq, bool level)
{
	struct rig *r = opaque;

	assert_true(irq == 1 || irq == 12);
	if (level && !r->level[irq])
		r->raises[irq]++;
	r->level[irq] = level;
}

static int setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	struct power_sink sink;

	assert_non_null(r);
	sink = power_log_sink(&r->power);
	assert_int_equal(i8042_init(&r->kbc, &sink, rig_irq, r), 0);
	assert_int_equal(input_init(&r->in), 0);
	assert_int_equal(i8042_attach_input(&r->kbc, &r->in), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	i8042_destroy(&r->kbc);
	input_destroy(&r->in);
	free(r);
	return 0;
}

static uint8_t inb(struct rig *r, uint16_t port)
{
	uint8_t v = 0xcc;

	if (port == 0x64)
		i8042_command_io(&r->kbc, 0, false, &v, 1);
	else
		i8042_data_io(&r->kbc, 0, false, &v, 1);
	return v;
}

static void outb(struct rig *r, uint16_t port, uint8_t v)
{
	if (port == 0x64)
		i8042_command_io(&r->kbc, 0, true, &v, 1);
	else
		i8042_data_io(&r->kbc, 0, true, &v, 1);
}

/* Reads the output buffer as a driver does: status first, OBF must be set. */
static uint8_t read_byte(struct rig *r, bool aux)
{
	uint8_t st = inb(r, 0x64);

	if (!(st & I8042_STR_OBF))
		fail_msg("output buffer empty (status 0x%02x)", st);
	if (!!(st & I8042_STR_AUX_OBF) != aux)
		fail_msg("byte from the %s port, expected the %s", st & 0x20 ? "aux" : "kbd",
			 aux ? "aux" : "kbd");
	return inb(r, 0x60);
}

static void expect_bytes(struct rig *r, bool aux, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = read_byte(r, aux);
		if (b != want[i])
			fail_msg("byte %zu: 0x%02x, expected 0x%02x", i, b, want[i]);
	}
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
}

#define EXPECT(r, aux, ...) do { \
	static const uint8_t w_[] = { __VA_ARGS__ }; \
	expect_bytes(r, aux, w_, sizeof(w_)); \
} while (0)

static void ctl_cmd(struct rig *r, uint8_t cmd)
{
	assert_false(inb(r, 0x64) & I8042_STR_IBF);
	outb(r, 0x64, cmd);
}

static void write_ctr(struct rig *r, uint8_t ctr)
{
	ctl_cmd(r, 0x60);
	outb(r, 0x60, ctr);
}

static void aux_write(struct rig *r, uint8_t v)
{
	ctl_cmd(r, 0xd4);
	outb(r, 0x60, v);
}

/* Linux's i8042_controller_check / selftest / CTR read-back, SeaBIOS's ps2_kbd_setup. */
static void test_controller_probe(void **state)
{
	struct rig *r = *state;

	assert_int_equal(inb(r, 0x64) & 0x03, 0);
	ctl_cmd(r, 0xaa);
	EXPECT(r, false, 0x55);
	assert_true(inb(r, 0x64) & I8042_STR_SYSFLAG);
	ctl_cmd(r, 0xab);
	EXPECT(r, false, 0x00);
	ctl_cmd(r, 0xa9);
	EXPECT(r, false, 0x00);
	ctl_cmd(r, 0x20);
	EXPECT(r, false, 0x03);	/* both interrupts on after reset, as QEMU */
	write_ctr(r, 0x61);	/* XLATE | AUXDIS | KBDINT */
	ctl_cmd(r, 0x20);
	EXPECT(r, false, 0x61);
	ctl_cmd(r, 0xc0);
	EXPECT(r, false, 0x80);
	ctl_cmd(r, 0xd0);
	uint8_t out = read_byte(r, false);
	assert_true(out & 0x01);	/* not in reset */
	assert_true(out & 0x02);	/* A20 on */
	ctl_cmd(r, 0xdd);
	ctl_cmd(r, 0xd0);
	assert_false(read_byte(r, false) & 0x02);
	/* 0xd2/0xd3: bytes looped back as if from the keyboard or the mouse. */
	ctl_cmd(r, 0xd2);
	outb(r, 0x60, 0x5a);
	EXPECT(r, false, 0x5a);
	write_ctr(r, 0x03);
	ctl_cmd(r, 0xd3);
	outb(r, 0x60, 0xa5);
	EXPECT(r, true, 0xa5);
	assert_int_equal(r->power.count, 0);
}

static void test_reset_lines(void **state)
{
	struct rig *r = *state;

	ctl_cmd(r, 0xd1);
	outb(r, 0x60, 0xdf);	/* A20 on, reset line high: nothing happens */
	assert_int_equal(r->power.count, 0);
	ctl_cmd(r, 0xd1);
	outb(r, 0x60, 0xde);	/* bit 0 low: the CPU is reset */
	assert_int_equal(r->power.count, 1);
	ctl_cmd(r, 0xfe);
	assert_int_equal(r->power.count, 2);
	ctl_cmd(r, 0xff);	/* pulses nothing */
	ctl_cmd(r, 0xf0);	/* pulses bits 0-3: reset (QEMU) */
	assert_int_equal(r->power.count, 3);
	assert_int_equal(r->power.last, POWER_EVENT_RESET);
}

/* atkbd: reset, ID, set LEDs, typematic, scancode set, echo. */
static void test_keyboard_commands(void **state)
{
	struct rig *r = *state;

	outb(r, 0x60, 0xff);
	EXPECT(r, false, 0xfa, 0xaa);
	assert_int_equal(r->raises[1], 2);	/* one edge per byte */
	write_ctr(r, 0x47);	/* translated */
	outb(r, 0x60, 0xf2);
	EXPECT(r, false, 0xfa, 0xab, 0x41);
	write_ctr(r, 0x07);	/* untranslated */
	outb(r, 0x60, 0xf2);
	EXPECT(r, false, 0xfa, 0xab, 0x83);
	outb(r, 0x60, 0xed);
	outb(r, 0x60, 0x07);
	EXPECT(r, false, 0xfa, 0xfa);
	assert_int_equal(r->kbc.kbd.leds, 7);
	outb(r, 0x60, 0xf3);
	outb(r, 0x60, 0x20);
	EXPECT(r, false, 0xfa, 0xfa);
	outb(r, 0x60, 0xee);
	EXPECT(r, false, 0xee);
	outb(r, 0x60, 0xf0);
	outb(r, 0x60, 0x00);
	EXPECT(r, false, 0xfa, 0xfa, 0x02);	/* an ack for each byte, then the set */
	outb(r, 0x60, 0xf0);
	outb(r, 0x60, 0x07);	/* no set 7 */
	EXPECT(r, false, 0xfa, 0xfe);
	outb(r, 0x60, 0x42);	/* not a command */
	EXPECT(r, false, 0xfe);
	/* 0xf5 disables scanning: keys are dropped until 0xf4. */
	outb(r, 0x60, 0xf5);
	EXPECT(r, false, 0xfa);
	input_key(&r->in, 0x1e, true);
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
	outb(r, 0x60, 0xf4);
	EXPECT(r, false, 0xfa);
	input_key(&r->in, 0x1e, true);
	EXPECT(r, false, 0x1c);
}

/* A, right Ctrl, Print Screen and Pause in set 2, untranslated. */
static void test_keys_set2(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x03);
	input_key(&r->in, 0x1e, true);
	input_key(&r->in, 0x1e, false);
	EXPECT(r, false, 0x1c, 0xf0, 0x1c);
	assert_true(r->level[1] == false);
	input_key(&r->in, 0x9d, true);
	input_key(&r->in, 0x9d, false);
	EXPECT(r, false, 0xe0, 0x14, 0xe0, 0xf0, 0x14);
	input_key(&r->in, 0xb7, true);
	input_key(&r->in, 0xb7, false);
	EXPECT(r, false, 0xe0, 0x12, 0xe0, 0x7c, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
	input_key(&r->in, 0xc6, true);
	input_key(&r->in, 0xc6, false);	/* Pause has no break */
	EXPECT(r, false, 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77);
	input_key(&r->in, 0x41, true);	/* F7: 0x83, the code past 0x7f */
	EXPECT(r, false, 0x83);
	/* qnum 0x54 is Print Screen to QEMU too (its qnum map), not a bare SysRq. */
	input_key(&r->in, 0x54, true);
	EXPECT(r, false, 0xe0, 0x12, 0xe0, 0x7c);
	input_key(&r->in, 0x54, false);
	EXPECT(r, false, 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12);
}

/*
 * Key names through the keyboard in set 2, against QEMU 7.2's bytes for the
 * same "sendkey NAME" (recorded with -trace ps2_put_keycode; an empty row:
 * QEMU's keyboard has no code for the key and sends nothing).
 */
static void test_keys_as_qemu(void **state)
{
	static const struct {
		const char *name, *bytes;
	} keys[] = {
		{ "alt_r", "e0 11 e0 f0 11" }, { "menu", "" }, { "f7", "83 f0 83" },
		{ "num_lock", "77 f0 77" }, { "scroll_lock", "7e f0 7e" },
		{ "kp_divide", "e0 4a e0 f0 4a" }, { "kp_multiply", "7c f0 7c" },
		{ "kp_enter", "e0 5a e0 f0 5a" }, { "less", "61 f0 61" }, { "f11", "78 f0 78" },
		{ "home", "e0 6c e0 f0 6c" }, { "delete", "e0 71 e0 f0 71" },
		{ "stop", "e0 28 e0 f0 28" }, { "help", "" }, { "meta_l", "e0 1f e0 f0 1f" },
		{ "meta_r", "e0 27 e0 f0 27" }, { "compose", "e0 2f e0 f0 2f" },
		{ "ro", "51 f0 51" }, { "hiragana", "62 f0 62" }, { "henkan", "64 f0 64" },
		{ "yen", "6a f0 6a" }, { "muhenkan", "67 f0 67" },
		{ "katakanahiragana", "13 f0 13" }, { "kp_comma", "6d f0 6d" },
		{ "kp_equals", "0f f0 0f" }, { "power", "e0 37 e0 f0 37" },
		{ "sleep", "e0 3f e0 f0 3f" }, { "wake", "e0 5e e0 f0 5e" },
		{ "audionext", "e0 4d e0 f0 4d" }, { "volumeup", "e0 32 e0 f0 32" },
		{ "mail", "e0 48 e0 f0 48" }, { "ac_home", "e0 3a e0 f0 3a" },
		{ "ac_bookmarks", "e0 18 e0 f0 18" }, { "lang1", "" },
		{ "sysrq", "e0 12 e0 7c e0 f0 7c e0 f0 12" },	/* QEMU makes it "print" */
	};
	struct rig *r = *state;

	write_ctr(r, 0x03);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int q = keycodes_qnum(keys[i].name, strlen(keys[i].name));
		char got[64] = "";

		assert_true(q > 0);
		input_key(&r->in, (unsigned)q, true);
		input_key(&r->in, (unsigned)q, false);
		while (inb(r, 0x64) & I8042_STR_OBF)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%02x",
				 got[0] ? " " : "", inb(r, 0x60));
		if (strcmp(got, keys[i].bytes))
			fail_msg("%s: '%s', QEMU sends '%s'", keys[i].name, got, keys[i].bytes);
	}
}

/* What QEMU's keyboard sends for Print Screen and Pause under modifiers (set 2). */
static void test_keys_modifiers(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x03);
	input_key(&r->in, 0x1d, true);	/* Ctrl+Pause: Break */
	input_key(&r->in, 0xc6, true);
	input_key(&r->in, 0xc6, false);
	input_key(&r->in, 0x1d, false);
	EXPECT(r, false, 0x14, 0xe0, 0x7e, 0xe0, 0xf0, 0x7e, 0xf0, 0x14);
	input_key(&r->in, 0x38, true);	/* Alt+Print Screen: SysRq */
	input_key(&r->in, 0xb7, true);
	input_key(&r->in, 0xb7, false);
	input_key(&r->in, 0x38, false);
	EXPECT(r, false, 0x11, 0xf0, 0x11, 0x11, 0x84, 0xf0, 0x84, 0xf0, 0x11, 0x11, 0xf0, 0x11);
	input_key(&r->in, 0x2a, true);	/* Shift+Print Screen: no fake shift */
	input_key(&r->in, 0xb7, true);
	input_key(&r->in, 0xb7, false);
	input_key(&r->in, 0x2a, false);
	EXPECT(r, false, 0x12, 0xe0, 0x7c, 0xe0, 0xf0, 0x7c, 0xf0, 0x12);
	/* Set 1, untranslated: Ctrl+Pause and Alt+Print Screen. */
	outb(r, 0x60, 0xf0);
	outb(r, 0x60, 0x01);
	EXPECT(r, false, 0xfa, 0xfa);
	input_key(&r->in, 0x9d, true);
	input_key(&r->in, 0xc6, true);
	input_key(&r->in, 0x9d, false);
	EXPECT(r, false, 0xe0, 0x1d, 0xe0, 0x46, 0xe0, 0xc6, 0xe0, 0x9d);
	input_key(&r->in, 0x38, true);
	input_key(&r->in, 0xb7, true);
	input_key(&r->in, 0xb7, false);
	EXPECT(r, false, 0x38, 0xb8, 0x38, 0x54, 0xd4, 0xb8, 0x38);
	/* The keyboard's reset forgets held modifiers. */
	outb(r, 0x60, 0xff);
	EXPECT(r, false, 0xfa, 0xaa);
	input_key(&r->in, 0xb7, true);
	EXPECT(r, false, 0xe0, 0x12, 0xe0, 0x7c);
}

/* The same keys with the controller translating (Linux's and SeaBIOS's default). */
static void test_keys_translated(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x43);
	input_key(&r->in, 0x1e, true);
	input_key(&r->in, 0x1e, false);
	EXPECT(r, false, 0x1e, 0x9e);
	input_key(&r->in, 0x9d, true);
	input_key(&r->in, 0x9d, false);
	EXPECT(r, false, 0xe0, 0x1d, 0xe0, 0x9d);
	input_key(&r->in, 0xb7, true);
	input_key(&r->in, 0xb7, false);
	EXPECT(r, false, 0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa);
	input_key(&r->in, 0xc6, true);
	EXPECT(r, false, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5);
	/* Every qnum with a set 2 code comes back as itself once translated (0x54: Print). */
	for (unsigned q = 1; q < 0x80; q++) {
		if (q == 0x54)
			continue;
		input_key(&r->in, q, true);
		if (!(inb(r, 0x64) & I8042_STR_OBF))
			continue;
		uint8_t b = inb(r, 0x60);
		if (b != q)
			fail_msg("qnum 0x%02x came back as 0x%02x", q, b);
		assert_false(inb(r, 0x64) & I8042_STR_OBF);
		input_key(&r->in, q, false);
		assert_int_equal(read_byte(r, false), q | 0x80);
		assert_false(inb(r, 0x64) & I8042_STR_OBF);
	}
	/* Scancode set 1 with translation off: the qnum's bytes as they are. */
	write_ctr(r, 0x03);
	outb(r, 0x60, 0xf0);
	outb(r, 0x60, 0x01);
	EXPECT(r, false, 0xfa, 0xfa);
	input_key(&r->in, 0xc8, true);	/* Up */
	input_key(&r->in, 0xc8, false);
	EXPECT(r, false, 0xe0, 0x48, 0xe0, 0xc8);
}

static void test_keyboard_queue_bounded(void **state)
{
	struct rig *r = *state;
	unsigned n = 0;

	write_ctr(r, 0x03);
	for (unsigned i = 0; i < 1000; i++)
		input_key(&r->in, 0x9d, i & 1);	/* 2 or 3 bytes each */
	while (inb(r, 0x64) & I8042_STR_OBF) {
		inb(r, 0x60);
		assert_true(++n <= 17);
	}
	/* One byte latched plus at most 16 queued, and only whole keys. */
	assert_true(n >= 15);
	/* A command reply still gets through a full queue, ahead of the events. */
	for (unsigned i = 0; i < 100; i++)
		input_key(&r->in, 0x1e, true);
	outb(r, 0x60, 0xee);
	assert_int_equal(inb(r, 0x60), 0x1c);	/* the byte already latched */
	assert_int_equal(inb(r, 0x60), 0xee);
	/* A command drops the unread replies of the one before it (QEMU's cqueue). */
	while (inb(r, 0x64) & I8042_STR_OBF)
		inb(r, 0x60);
	outb(r, 0x60, 0xf2);	/* fa ab 83: fa latched, ab 83 queued */
	outb(r, 0x60, 0xee);
	assert_int_equal(inb(r, 0x60), 0xfa);
	assert_int_equal(inb(r, 0x60), 0xee);
}

/* psmouse: reset, ID, the IntelliMouse and Explorer knocks, enable, packets. */
static void test_mouse_intellimouse(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x47);
	ctl_cmd(r, 0xa8);
	aux_write(r, 0xff);
	EXPECT(r, true, 0xfa, 0xaa, 0x00);
	assert_int_equal(r->raises[12], 3);
	assert_int_equal(r->raises[1], 0);
	aux_write(r, 0xf2);
	EXPECT(r, true, 0xfa, 0x00);
	static const uint8_t imps[] = { 200, 100, 80 };
	for (unsigned i = 0; i < 3; i++) {
		aux_write(r, 0xf3);
		aux_write(r, imps[i]);
		EXPECT(r, true, 0xfa, 0xfa);
	}
	aux_write(r, 0xf2);
	EXPECT(r, true, 0xfa, 0x03);
	aux_write(r, 0xe8);
	aux_write(r, 0x03);
	EXPECT(r, true, 0xfa, 0xfa);
	aux_write(r, 0xe7);
	EXPECT(r, true, 0xfa);
	aux_write(r, 0xe9);
	EXPECT(r, true, 0xfa, 0x10, 0x03, 80);
	aux_write(r, 0xe6);
	EXPECT(r, true, 0xfa);
	/* Disabled: motion is not reported. */
	input_pointer_rel(&r->in, 5, 5, 0, 0);
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
	aux_write(r, 0xf4);
	EXPECT(r, true, 0xfa);
	/* Right 10, down 3 (PS/2: -3), wheel up, left button. */
	input_pointer_rel(&r->in, 10, 3, -1, INPUT_BTN_LEFT);
	EXPECT(r, true, 0x29, 0x0a, 0xfd, 0xff);
	/* Left 300: split into -255 and -45, sign bit set, buttons held. */
	input_pointer_rel(&r->in, -300, 0, 0, INPUT_BTN_LEFT | INPUT_BTN_RIGHT);
	EXPECT(r, true, 0x1b, 0x01, 0x00, 0x00, 0x1b, 0xd3, 0x00, 0x00);
	/* A button change alone is a packet; so is a still event (QEMU's sync sends one). */
	input_pointer_rel(&r->in, 0, 0, 0, 0);
	EXPECT(r, true, 0x08, 0x00, 0x00, 0x00);
	input_pointer_rel(&r->in, 0, 0, 0, 0);
	EXPECT(r, true, 0x08, 0x00, 0x00, 0x00);
}

/* A plain PS/2 mouse (no knock) has no wheel: wheel motion is one packet, then dropped. */
static void test_mouse_plain_wheel(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x47);
	aux_write(r, 0xf4);
	EXPECT(r, true, 0xfa);
	input_pointer_rel(&r->in, 1, 0, 3, 0);
	EXPECT(r, true, 0x08, 0x01, 0x00);
	input_pointer_rel(&r->in, 0, 0, 0, 0);
	EXPECT(r, true, 0x08, 0x00, 0x00);	/* the wheel left nothing behind */
}

static void test_mouse_explorer_and_remote(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x47);
	static const uint8_t imex[] = { 200, 200, 80 };
	for (unsigned i = 0; i < 3; i++) {
		aux_write(r, 0xf3);
		aux_write(r, imex[i]);
		EXPECT(r, true, 0xfa, 0xfa);
	}
	aux_write(r, 0xf2);
	EXPECT(r, true, 0xfa, 0x04);
	aux_write(r, 0xf4);
	EXPECT(r, true, 0xfa);
	/* Explorer: 4-bit wheel (down 2) with buttons 4 and 5 in bits 4/5. */
	input_pointer_rel(&r->in, 0, 0, 2, INPUT_BTN_SIDE);
	EXPECT(r, true, 0x08, 0x00, 0x00, 0x12);
	/* Remote mode: nothing until polled (0xeb). */
	aux_write(r, 0xf0);
	EXPECT(r, true, 0xfa);
	input_pointer_rel(&r->in, 7, 0, 0, INPUT_BTN_SIDE);
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
	aux_write(r, 0xeb);
	EXPECT(r, true, 0xfa, 0x08, 0x07, 0x00, 0x10);
	/* Wrap mode echoes until 0xec. */
	aux_write(r, 0xee);
	aux_write(r, 0x42);
	aux_write(r, 0xec);
	EXPECT(r, true, 0xfa, 0x42, 0xfa);
	/* The aux port disabled (0xa7): mouse bytes wait, and no IRQ 12. */
	ctl_cmd(r, 0xa7);
	aux_write(r, 0xf2);
	unsigned before = r->raises[12];
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
	ctl_cmd(r, 0xa8);
	EXPECT(r, true, 0xfa, 0x04);
	assert_true(r->raises[12] > before);
}

/* IRQs follow the command byte's enable bits; the data still arrives. */
static void test_irq_enables(void **state)
{
	struct rig *r = *state;

	write_ctr(r, 0x40);	/* no interrupts: polling (SeaBIOS during setup) */
	input_key(&r->in, 0x1e, true);
	assert_int_equal(r->raises[1], 0);
	EXPECT(r, false, 0x1e);
	write_ctr(r, 0x41);
	input_key(&r->in, 0x1e, false);
	assert_int_equal(r->raises[1], 1);
	assert_true(r->level[1]);
	EXPECT(r, false, 0x9e);
	assert_false(r->level[1]);
	/* Keyboard port disabled (0xad): keys wait in the queue; 0xae lets them out. */
	ctl_cmd(r, 0xad);
	input_key(&r->in, 0x30, true);
	assert_false(inb(r, 0x64) & I8042_STR_OBF);
	ctl_cmd(r, 0xae);
	EXPECT(r, false, 0x30);
}

/* query-mice's view: QEMU's names and ids, the mouse current. */
static void test_input_registration(void **state)
{
	struct rig *r = *state;
	struct input_mouse_info mice[4];

	assert_int_equal(input_mice(&r->in, mice, 4), 1);
	assert_string_equal(mice[0].name, "QEMU PS/2 Mouse");
	assert_int_equal(mice[0].index, 2);
	assert_true(mice[0].current);
	assert_false(mice[0].absolute);
	assert_string_equal(r->in.handlers[0].name, "QEMU PS/2 Keyboard");
	assert_int_equal(r->in.handlers[0].index, 1);
	/* A rebuilt VM (reset) registers under the same ids. */
	input_unregister(&r->in, &r->kbc);
	assert_int_equal(input_mice(&r->in, mice, 4), 0);
	assert_int_equal(i8042_attach_input(&r->kbc, &r->in), 0);
	assert_int_equal(input_mice(&r->in, mice, 4), 1);
	assert_int_equal(mice[0].index, 2);
}

/* Hostile port traffic: every byte to both ports, in a pseudo-random order. */
static void test_hostile_ports(void **state)
{
	struct rig *r = *state;
	uint32_t x = 12345;

	for (unsigned i = 0; i < 200000; i++) {
		x = x * 1103515245 + 12345;
		uint8_t v = (uint8_t)(x >> 16);
		switch ((x >> 28) & 3) {
		case 0: outb(r, 0x60, v); break;
		case 1:
			/* 0xfe and even 0xfX reset: counted, harmless here. */
			outb(r, 0x64, v);
			break;
		case 2: inb(r, 0x60); break;
		default: inb(r, 0x64); break;
		}
		if (i % 7 == 0)
			input_key(&r->in, v, v & 1);
		if (i % 11 == 0)
			input_pointer_rel(&r->in, (int)x, (int)(x >> 3), (int)v - 128, v);
		assert_true(r->kbc.own_count <= sizeof(r->kbc.own));
		assert_true(r->kbc.kbd.q.ev_count <= PS2_QUEUE_SIZE);
		assert_true(r->kbc.mouse.q.ev_count <= PS2_QUEUE_SIZE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_controller_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_set2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_as_qemu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_modifiers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_translated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_queue_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mouse_intellimouse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mouse_plain_wheel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mouse_explorer_and_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_enables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_registration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ports, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
