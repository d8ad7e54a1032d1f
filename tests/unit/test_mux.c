/* chardev/mux.c: the -nographic Ctrl-a escape keys, as QEMU's mux chardev has them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "chardev/mux.h"

static void test_plain_bytes_pass(void **state)
{
	struct mux m = { 0 };
	uint8_t out;

	for (unsigned b = 0; b < 256; b++) {
		if (b == MUX_ESCAPE)
			continue;
		out = (uint8_t)~b;
		assert_int_equal(mux_input(&m, (uint8_t)b, &out), MUX_PASS);
		assert_int_equal(out, b);
		assert_false(m.escaped);
	}
}

static void escape_then(uint8_t key, enum mux_action want)
{
	struct mux m = { 0 };
	uint8_t out = 0;

	assert_int_equal(mux_input(&m, MUX_ESCAPE, &out), MUX_SWALLOW);
	assert_true(m.escaped);
	assert_int_equal(mux_input(&m, key, &out), want);
	assert_false(m.escaped);
	/* Back to normal: the next byte goes to the guest. */
	assert_int_equal(mux_input(&m, 'z', &out), MUX_PASS);
	assert_int_equal(out, 'z');
}

static void test_every_escape_key(void **state)
{
	escape_then('h', MUX_HELP);
	escape_then('?', MUX_HELP);
	escape_then('x', MUX_QUIT);
	escape_then('c', MUX_MONITOR);
	escape_then('b', MUX_BREAK);
	escape_then('s', MUX_FLUSH);
}

static void test_ctrl_a_twice_sends_one(void **state)
{
	struct mux m = { 0 };
	uint8_t out = 0;

	assert_int_equal(mux_input(&m, MUX_ESCAPE, &out), MUX_SWALLOW);
	assert_int_equal(mux_input(&m, MUX_ESCAPE, &out), MUX_PASS);
	assert_int_equal(out, MUX_ESCAPE);
	assert_false(m.escaped);
	/* A third Ctrl-a starts a new escape rather than passing through. */
	assert_int_equal(mux_input(&m, MUX_ESCAPE, &out), MUX_SWALLOW);
	assert_int_equal(mux_input(&m, 'x', &out), MUX_QUIT);
}

static void test_unknown_escape_swallowed(void **state)
{
	static const uint8_t keys[] = { 'a', 'X', 'H', 'q', '\r', 0x00, 0x02, 0xff };

	for (size_t i = 0; i < sizeof(keys); i++)
		escape_then(keys[i], MUX_SWALLOW);
}

static void test_help_text(void **state)
{
	static const char *const keys[] = { "C-a h", "C-a x", "C-a s", "C-a b", "C-a c",
					     "C-a C-a" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(strstr(mux_help_text, keys[i]));
	/* Raw terminal: every line ends in CR LF. */
	for (const char *p = mux_help_text; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(p > mux_help_text && p[-1] == '\r');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_bytes_pass),
		cmocka_unit_test(test_every_escape_key),
		cmocka_unit_test(test_ctrl_a_twice_sends_one),
		cmocka_unit_test(test_unknown_escape_swallowed),
		cmocka_unit_test(test_help_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
