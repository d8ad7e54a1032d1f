/* util/json_write: QEMU's string quoting and QDict member order, without json-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/json_write.h"

static void check_quoted(const char *in, size_t len, const char *want)
{
	struct json_buf b = { 0 };

	json_write_string(&b, in, len);
	json_buf_add(&b, "", 1);
	assert_false(b.failed);
	assert_string_equal(b.data, want);
	free(b.data);
}

/* qobject/json-writer.c quoted_str: ASCII out, \uXXXX upper-case, U+FFFD for bad bytes. */
static void test_quoting(void **state)
{
	(void)state;
	check_quoted("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	check_quoted("\b\f\n\r\t\x01", 6, "\"\\b\\f\\n\\r\\t\\u0001\"");
	check_quoted("\x7f", 1, "\"\\u007F\"");
	check_quoted("caf\xc3\xa9", 5, "\"caf\\u00E9\"");
	check_quoted("\xf0\x9f\x98\x80", 4, "\"\\uD83D\\uDE00\"");
	check_quoted("x\xffy", 3, "\"x\\uFFFDy\"");
	check_quoted("\xc0\xaf", 2, "\"\\uFFFD\\uFFFD\"");	/* overlong '/' */
	check_quoted("a\0b", 3, "\"a\\u0000b\"");
}

/* QEMU 7.2 prints query-version as {"qemu": {"micro", "minor", "major"}, "package"}. */
static void test_qdict_order(void **state)
{
	(void)state;
	struct json_member ver[] = { { .key = "major" }, { .key = "minor" }, { .key = "micro" } };
	struct json_member top[] = { { .key = "qemu" }, { .key = "package" } };

	json_qdict_sort(ver, 3);
	assert_string_equal(ver[0].key, "micro");
	assert_string_equal(ver[1].key, "minor");
	assert_string_equal(ver[2].key, "major");
	json_qdict_sort(top, 2);
	assert_string_equal(top[0].key, "qemu");
	assert_string_equal(top[1].key, "package");
	assert_int_equal(json_qdict_bucket(""), 12345u % 512u);
}

static void test_buf_grows(void **state)
{
	(void)state;
	struct json_buf b = { 0 };

	for (unsigned i = 0; i < 1000; i++)
		json_buf_str(&b, "0123456789");
	assert_false(b.failed);
	assert_int_equal(b.len, 10000);
	assert_memory_equal(b.data + 9990, "0123456789", 10);
	free(b.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_qdict_order),
		cmocka_unit_test(test_buf_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
