/*
 * The SDL window's option syntax and title (ui/sdl_opts.c), its scancode
 * table checked against the keysym tables (ui/keymap.c, an independent
 * source), and the command-line options that reach it (cli/options.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli/options.h"
#include "ui/keymap.h"
#include "ui/sdl.h"

#include "options_harness.h"

#define PARSE(cfg, ...) parse_to((cfg), devnull, (const char *[]){ __VA_ARGS__, NULL })

static void test_parse(void **state)
{
	struct sdl_options o;
	char err[256];

	sdl_defaults(&o);
	assert_int_equal(sdl_parse("", &o, err, sizeof(err)), 0);
	assert_int_equal(o.grab_mod, SDL_GRAB_LCTRL_LALT);
	assert_true(o.window_close);
	assert_false(o.full_screen);
	assert_int_equal(sdl_parse(",grab-mod=rctrl,window-close=off,full-screen=on", &o, err,
				   sizeof(err)), 0);
	assert_int_equal(o.grab_mod, SDL_GRAB_RCTRL);
	assert_false(o.window_close);
	assert_true(o.full_screen);
	assert_int_equal(sdl_parse(",grab-mod=lshift-lctrl-lalt,window-close=yes", &o, err,
				   sizeof(err)), 0);
	assert_int_equal(o.grab_mod, SDL_GRAB_LSHIFT_LCTRL_LALT);
	assert_true(o.window_close);
	assert_int_equal(sdl_parse(",grab-mod=lctrl-lalt", &o, err, sizeof(err)), 0);
	assert_int_equal(o.grab_mod, SDL_GRAB_LCTRL_LALT);
}

static void test_errors(void **state)
{
	static const struct { const char *in, *msg; } bad[] = {
		{ ",foo=1", "Parameter 'foo' is unexpected" },
		{ ",grab-mod=lalt", "Parameter 'grab-mod' does not accept value 'lalt'" },
		{ ",full-screen=2", "Parameter 'full-screen' expects 'on' or 'off'" },
		{ ",show-cursor=on", "Parameter 'show-cursor' is not supported by Kestrel's SDL display" },
		{ ",gl=on", "Parameter 'gl' is not supported by Kestrel's SDL display" },
		{ ",window-close", "Expected '=' after parameter 'window-close'" },
		{ ",,", "Parameter '' is unexpected" },
	};
	struct sdl_options o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sdl_defaults(&o);
		assert_int_equal(sdl_parse(bad[i].in, &o, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].msg);
	}
}

static void test_title(void **state)
{
	struct sdl_options o;
	char t[160];

	sdl_defaults(&o);
	sdl_title(&o, false, t, sizeof(t));
	assert_string_equal(t, "QEMU");
	sdl_title(&o, true, t, sizeof(t));
	assert_string_equal(t, "QEMU - Press Ctrl-Alt-G to exit grab");
	snprintf(o.name, sizeof(o.name), "myos");
	o.grab_mod = SDL_GRAB_RCTRL;
	sdl_title(&o, true, t, sizeof(t));
	assert_string_equal(t, "QEMU (myos-0) - Press Right-Ctrl-G to exit grab");
	o.grab_mod = SDL_GRAB_LSHIFT_LCTRL_LALT;
	sdl_title(&o, true, t, sizeof(t));
	assert_string_equal(t, "QEMU (myos-0) - Press Ctrl-Alt-Shift-G to exit grab");
}

/* HID usage (HID Usage Tables §10) -> the X11 keysym of the same en-us key. */
static const struct { unsigned hid; uint32_t keysym; } same_key[] = {
	{ 0x28, 0xff0d }, { 0x29, 0xff1b }, { 0x2a, 0xff08 }, { 0x2b, 0xff09 }, { 0x2c, ' ' },
	{ 0x2d, '-' }, { 0x2e, '=' }, { 0x2f, '[' }, { 0x30, ']' }, { 0x31, '\\' },
	{ 0x33, ';' }, { 0x34, '\'' }, { 0x35, '`' }, { 0x36, ',' }, { 0x37, '.' },
	{ 0x38, '/' }, { 0x39, 0xffe5 }, { 0x46, 0xff61 }, { 0x47, 0xff14 }, { 0x48, 0xff13 },
	{ 0x49, 0xff63 }, { 0x4a, 0xff50 }, { 0x4b, 0xff55 }, { 0x4c, 0xffff }, { 0x4d, 0xff57 },
	{ 0x4e, 0xff56 }, { 0x4f, 0xff53 }, { 0x50, 0xff51 }, { 0x51, 0xff54 }, { 0x52, 0xff52 },
	{ 0x53, 0xff7f }, { 0x54, 0xffaf }, { 0x55, 0xffaa }, { 0x56, 0xffad }, { 0x57, 0xffab },
	{ 0x58, 0xff8d }, { 0x62, 0xffb0 }, { 0x63, 0xffae }, { 0x65, 0xff67 },
	{ 0xe0, 0xffe3 }, { 0xe1, 0xffe1 }, { 0xe2, 0xffe9 }, { 0xe3, 0xffeb },
	{ 0xe4, 0xffe4 }, { 0xe5, 0xffe2 }, { 0xe6, 0xffea }, { 0xe7, 0xffec },
};

static void test_scancodes(void **state)
{
	for (unsigned i = 0; i < 26; i++)	/* a..z */
		assert_int_equal(sdl_scancode_to_qnum(0x04 + i), keymap_qnum(KEYMAP_EN_US, 'a' + i));
	for (unsigned i = 0; i < 9; i++)	/* 1..9, then 0 */
		assert_int_equal(sdl_scancode_to_qnum(0x1e + i), keymap_qnum(KEYMAP_EN_US, '1' + i));
	assert_int_equal(sdl_scancode_to_qnum(0x27), keymap_qnum(KEYMAP_EN_US, '0'));
	for (unsigned i = 0; i < 12; i++)	/* F1..F12 */
		assert_int_equal(sdl_scancode_to_qnum(0x3a + i), keymap_qnum(KEYMAP_EN_US, 0xffbe + i));
	for (unsigned i = 0; i < 9; i++)	/* keypad 1..9 */
		assert_int_equal(sdl_scancode_to_qnum(0x59 + i), keymap_qnum(KEYMAP_EN_US, 0xffb1 + i));
	for (size_t i = 0; i < sizeof(same_key) / sizeof(same_key[0]); i++) {
		unsigned q = sdl_scancode_to_qnum(same_key[i].hid);

		assert_int_not_equal(q, 0);
		assert_int_equal(q, keymap_qnum(KEYMAP_EN_US, same_key[i].keysym));
	}
	/* No key: reserved/error codes and beyond the table. */
	assert_int_equal(sdl_scancode_to_qnum(0), 0);
	assert_int_equal(sdl_scancode_to_qnum(3), 0);
	assert_int_equal(sdl_scancode_to_qnum(512), 0);
	assert_int_equal(sdl_scancode_to_qnum(0x64), 0x56);	/* the 102nd key (ISO) */
}

static void test_command_line(void **state)
{
	struct vm_config cfg;

	if (!sdl_built_in()) {
		assert_int_equal(PARSE(&cfg, "-display", "sdl"), OPTIONS_ERROR);
		options_free(&cfg);
		assert_int_equal(PARSE(&cfg, "-sdl"), OPTIONS_ERROR);
		options_free(&cfg);
		return;
	}
	assert_int_equal(PARSE(&cfg, "-display", "sdl,grab-mod=rctrl"), OPTIONS_RUN);
	assert_int_equal(cfg.display, DISPLAY_SDL);
	assert_string_equal(cfg.sdl_opts, ",grab-mod=rctrl");
	assert_null(cfg.vnc);			/* no default VNC beside the window */
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-sdl", "-alt-grab", "-no-quit", "-full-screen"), OPTIONS_RUN);
	assert_int_equal(cfg.display, DISPLAY_SDL);
	assert_int_equal(cfg.sdl_grab, 1);
	assert_true(cfg.no_quit);
	assert_true(cfg.full_screen);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-sdl", "-ctrl-grab"), OPTIONS_RUN);
	assert_int_equal(cfg.sdl_grab, 2);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-display", "sdl,show-cursor=on"), OPTIONS_ERROR);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-display", "sdlx"), OPTIONS_ERROR);
	options_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_title),
		cmocka_unit_test(test_scancodes),
		cmocka_unit_test(test_command_line),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
