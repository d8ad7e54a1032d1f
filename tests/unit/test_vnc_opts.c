/* QEMU's -vnc syntax (ui/vnc_opts.c) and the keysym tables (ui/keymap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ui/keymap.h"
#include "ui/vnc.h"

static void test_addresses(void **state)
{
	struct vnc_options o;
	char err[256];

	assert_int_equal(vnc_parse(":3", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, VNC_TCP);
	assert_string_equal(o.host, "");
	assert_int_equal(o.display, 3);
	assert_int_equal(o.websocket, -1);
	assert_int_equal(o.to, -1);
	assert_int_equal(vnc_parse("localhost:0,to=99", &o, err, sizeof(err)), 0);
	assert_string_equal(o.host, "localhost");
	assert_int_equal(o.to, 99);
	assert_int_equal(vnc_parse("[::1]:2", &o, err, sizeof(err)), 0);
	assert_string_equal(o.host, "::1");
	assert_int_equal(o.display, 2);
	assert_int_equal(vnc_parse("unix:/run/v.sock", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, VNC_UNIX);
	assert_string_equal(o.path, "/run/v.sock");
	assert_int_equal(vnc_parse("none", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, VNC_OFF);
}

static void test_flags(void **state)
{
	struct vnc_options o;
	char err[256];

	assert_int_equal(vnc_parse(":1,password=on,lossy=on,share=ignore", &o, err, sizeof(err)), 0);
	assert_true(o.password);
	assert_true(o.lossy);
	assert_int_equal(o.share, VNC_SHARE_IGNORE);
	assert_int_equal(vnc_parse(":1,password", &o, err, sizeof(err)), 0);
	assert_true(o.password);
	assert_int_equal(vnc_parse(":4,websocket=on", &o, err, sizeof(err)), 0);
	assert_int_equal(o.websocket, 5704);	/* QEMU: 5700 + display */
	assert_int_equal(vnc_parse(":4,websocket=6080", &o, err, sizeof(err)), 0);
	assert_int_equal(o.websocket, 6080);
	assert_int_equal(vnc_parse("host:5500,reverse=on", &o, err, sizeof(err)), 0);
	assert_true(o.reverse);
	assert_int_equal(o.display, 5500);	/* the viewer's port itself */
}

static void test_refused(void **state)
{
	static const char *const bad[][2] = {
		{ ":1,foo=bar", "Invalid parameter 'foo'" },
		{ ":1,tls-creds=x", "Invalid parameter 'tls-creds'" },
		{ ":1,password=maybe", "expects 'on' or 'off'" },
		{ ":1,share=force-shared", "force-shared is not supported" },
		{ ":1,share=x", "unknown vnc share= option" },
		{ ":1,to=x", "Parameter 'to'" },
		{ ":5,to=4", "below the display number" },
		{ ":x", "can't convert to a number" },
		{ ":70000", "can't convert to a number" },
		{ "nohost", "expected HOST:DISPLAY" },
		{ "[::1:2", "expected [IPV6]:DISPLAY" },
		{ "unix:/x,to=3", "to= needs a TCP display" },
		{ "unix:/x,websocket=on", "websocket=on needs a TCP display" },
		{ "unix:/x,reverse=on", "reverse=on needs HOST:PORT" },
		{ "h:1,reverse=on,websocket=on", "not supported with reverse=on" },
		{ "password=on", "address missing" },
	};
	struct vnc_options o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(vnc_parse(bad[i][0], &o, err, sizeof(err)), -1);
		if (!strstr(err, bad[i][1]))
			fail_msg("'%s': '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
	}
}

static void test_keymaps(void **state)
{
	assert_int_equal(keymap_find("en-us"), KEYMAP_EN_US);
	assert_int_equal(keymap_find("de"), KEYMAP_DE);
	assert_int_equal(keymap_find("fr"), KEYMAP_FR);
	assert_int_equal(keymap_find("ja"), KEYMAP_JA);
	assert_int_equal(keymap_find("xx"), -1);
	/* en-us: letters, shifted symbols on their key, extended keys with 0x80 */
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 'a'), 0x1e);
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 'A'), 0x1e);
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, '@'), 0x03);
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 0xff0d), 0x1c);	/* Return */
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 0xff52), 0xc8);	/* Up */
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 0xffe4), 0x9d);	/* Control_R */
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 0xffc9), 0x58);	/* F12 */
	assert_int_equal(keymap_qnum(KEYMAP_EN_US, 0x12345), 0);
	/* de: QWERTZ, umlauts, AltGr symbols, <> key */
	assert_int_equal(keymap_qnum(KEYMAP_DE, 'z'), 0x15);
	assert_int_equal(keymap_qnum(KEYMAP_DE, 'Y'), 0x2c);
	assert_int_equal(keymap_qnum(KEYMAP_DE, 0xf6), 0x27);	/* odiaeresis */
	assert_int_equal(keymap_qnum(KEYMAP_DE, 0xd6), 0x27);	/* Odiaeresis */
	assert_int_equal(keymap_qnum(KEYMAP_DE, '@'), 0x10);
	assert_int_equal(keymap_qnum(KEYMAP_DE, '<'), 0x56);
	assert_int_equal(keymap_qnum(KEYMAP_DE, 'a'), 0x1e);	/* unchanged keys from en-us */
	/* fr: AZERTY, digits on the shifted number row */
	assert_int_equal(keymap_qnum(KEYMAP_FR, 'a'), 0x10);
	assert_int_equal(keymap_qnum(KEYMAP_FR, 'q'), 0x1e);
	assert_int_equal(keymap_qnum(KEYMAP_FR, 'm'), 0x27);
	assert_int_equal(keymap_qnum(KEYMAP_FR, '1'), 0x02);
	assert_int_equal(keymap_qnum(KEYMAP_FR, 0xe9), 0x03);	/* eacute */
	/* ja: JIS symbols, yen and ro keys */
	assert_int_equal(keymap_qnum(KEYMAP_JA, '@'), 0x1a);
	assert_int_equal(keymap_qnum(KEYMAP_JA, ':'), 0x28);
	assert_int_equal(keymap_qnum(KEYMAP_JA, '\\'), 0x73);
	assert_int_equal(keymap_qnum(KEYMAP_JA, 0xa5), 0x7d);	/* yen */
	assert_int_equal(keymap_qnum(KEYMAP_JA, 'q'), 0x10);
}

/* Every table entry is a valid qnum: a make code, or 0x80 | an extended one. */
static void test_tables_valid(void **state)
{
	for (int l = 0; l < KEYMAP_COUNT; l++)
		for (uint32_t ks = 0x20; ks < 0x100; ks++) {
			unsigned q = keymap_qnum(l, ks);
			assert_true(q < 0x100);
			if (ks >= 'a' && ks <= 'z')
				assert_true(q != 0);	/* every layout types every letter */
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_keymaps),
		cmocka_unit_test(test_tables_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
