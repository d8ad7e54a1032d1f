/* util/utf8.c: strict decoding and its encoder, which json_parse.c's modified UTF-8 builds on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/utf8.h"

/* Each length's first and last scalar value, and the ones around the surrogates. */
static void test_encode_round_trip(void **state)
{
	static const struct {
		int32_t cp;
		const char *bytes;
	} cases[] = {
		{ 0x0, "\x00" }, { 0x7F, "\x7f" }, { 0x80, "\xc2\x80" }, { 0x7FF, "\xdf\xbf" },
		{ 0x800, "\xe0\xa0\x80" }, { 0xD7FF, "\xed\x9f\xbf" }, { 0xE000, "\xee\x80\x80" },
		{ 0xFFFF, "\xef\xbf\xbf" }, { 0x10000, "\xf0\x90\x80\x80" },
		{ 0x10FFFF, "\xf4\x8f\xbf\xbf" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t want = cases[i].cp ? strlen(cases[i].bytes) : 1;
		char buf[4];
		int32_t cp;

		assert_int_equal(utf8_encode(buf, cases[i].cp), want);
		assert_memory_equal(buf, cases[i].bytes, want);
		assert_int_equal(utf8_decode((const uint8_t *)buf, want, &cp), want);
		assert_int_equal(cp, cases[i].cp);
	}
}

/* What is no Unicode scalar value is not encoded at all. */
static void test_encode_refuses(void **state)
{
	static const int32_t bad[] = { -1, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0x110000, INT32_MAX };
	char buf[4] = { 'x', 'x', 'x', 'x' };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(utf8_encode(buf, bad[i]), 0);
	assert_memory_equal(buf, "xxxx", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_encode_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
