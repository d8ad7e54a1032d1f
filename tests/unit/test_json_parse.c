/*
 * The JSON reader of json: pseudo-filenames (src/util/json_parse.c) and its
 * flattening into block options.  Every expected message is what qemu-img
 * 7.2 prints after "Could not parse the JSON options: " for the same text
 * (`qemu-img info 'json:TEXT'`, checked by hand; tests/system/
 * test_img_names.py compares the two programs on a subset).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/json_parse.h"
#include "util/opts.h"

struct bad_case {
	const char *text;
	const char *message;
};

static const struct bad_case bad[] = {
	{ "{", "JSON parse error, premature EOI" },
	{ "", "Expecting a JSON value" },
	{ "  \t\n", "Expecting a JSON value" },
	{ "{\"driver\":\"qcow2\"", "JSON parse error, premature EOI" },
	{ "{\"a\":1,\"a\":2}", "JSON parse error, duplicate key" },
	{ "{} x", "Expecting at most one JSON value" },
	{ "{} {}", "Expecting at most one JSON value" },
	{ "{\"a\":1}}", "Expecting at most one JSON value" },
	{ "{} @", "Expecting at most one JSON value" },
	{ "0e1", "Expecting at most one JSON value" },
	{ "{1:2}", "JSON parse error, key is not a string in object" },
	{ "{\"a\" 1}", "JSON parse error, missing : in object pair" },
	{ "{\"a\":1 \"b\":2}", "JSON parse error, expected separator in dict" },
	{ "{\"a\":}", "JSON parse error, expecting value" },
	{ "{\"a\":[1 2]}", "JSON parse error, expected separator in list" },
	{ "{\"a\":[1,]}", "JSON parse error, expecting value" },
	{ "{,}", "JSON parse error, expecting value" },
	{ "]", "JSON parse error, expecting value" },
	{ "{\"a\":\"\\q\"}", "JSON parse error, invalid escape sequence in string" },
	{ "{\"a\":\"\\u12\"}", "JSON parse error, \\u12\" is not a valid Unicode character" },
	{ "{\"a\":\"\\ud800\"}", "JSON parse error, \\ud800 is not a valid Unicode character" },
	{ "{\"a\":foo}", "JSON parse error, invalid keyword 'foo'" },
	{ "{\"a\":@}", "JSON parse error, stray '@'" },
	{ "{\"a\":01}", "JSON parse error, stray '01'" },
	{ "{\"a\":1.}", "JSON parse error, stray '1.}'" },
	{ "{\"a\":-}", "JSON parse error, stray '-}'" },
	{ "{\"a\":\"x", "JSON parse error, stray '\"x'" },
	{ "{\"a\":%d}", "JSON parse error, stray '%'" },
	{ "{\"a\":\"\xc3\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\xc0\xaf\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	/* Modified UTF-8 (QEMU's util/unicode.c): no noncharacters, surrogates, 5-byte forms. */
	{ "{\"a\":\"\xef\xbf\xbe\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\xef\xb7\x90\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\xed\xa0\x80\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\xf4\x90\x80\x80\"}", "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\xf8\x88\x80\x80\x80\"}",
	  "JSON parse error, invalid UTF-8 sequence in string" },
	{ "{\"a\":\"\\ufffe\"}", "JSON parse error, \\ufffe is not a valid Unicode character" },
};

static void test_errors_match_qemu(void **state)
{
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_value *v = json_parse(bad[i].text, strlen(bad[i].text), err,
						  sizeof(err));
		if (v || strcmp(err, bad[i].message)) {
			print_error("input '%s': got '%s', want '%s'\n", bad[i].text,
				    v ? "(a value)" : err, bad[i].message);
			fail();
		}
	}
}

static struct opts *flat(const char *text)
{
	char err[256];
	struct json_value *v = json_parse(text, strlen(text), err, sizeof(err));
	struct opts *o = calloc(1, sizeof(*o));

	assert_non_null(v);
	assert_non_null(o);
	assert_int_equal(json_flatten(v, o), 0);
	json_free(v);
	return o;
}

static void test_values_and_flattening(void **state)
{
	struct opts *o = flat("{'driver':'qcow2','file':{'driver':'file','filename':'a\"b'},"
			      "\"n\":null,\"t\":true,\"f\":false,\"x\":[1,{\"y\":-2}],"
			      "\"u\":18446744073709551615,\"z\":\"\\u0000\\ud83d\\ude00\","
			      "\"r\":\"\xc0\x80\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
	static const char *const want[][2] = {
		{ "driver", "qcow2" }, { "file.driver", "file" }, { "file.filename", "a\"b" },
		{ "n", "" }, { "t", "on" }, { "f", "off" }, { "x.0", "1" }, { "x.1.y", "-2" },
		{ "u", "18446744073709551615" },
		/* Modified UTF-8: U+0000 is C0 80; the surrogate pair is U+1F600. */
		{ "z", "\xc0\x80\xf0\x9f\x98\x80" },
		/* Raw C0 80 stays NUL; valid 2-, 3- and 4-byte characters pass as they are. */
		{ "r", "\xc0\x80\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
	};

	(void)state;
	assert_int_equal(o->count, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < o->count; i++) {
		assert_string_equal(o->items[i].key, want[i][0]);
		assert_string_equal(o->items[i].value, want[i][1]);
		assert_int_equal(o->items[i].null, i == 3);
	}
	opts_free(o);
}

static void test_nesting_limit(void **state)
{
	char text[2 * JSON_MAX_NESTING + 8], err[256];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < JSON_MAX_NESTING + 1; i++)
		text[n++] = '[';
	text[n] = '\0';
	assert_null(json_parse(text, n, err, sizeof(err)));
	assert_string_equal(err, "JSON nesting depth limit exceeded");
	/* At the limit it still parses. */
	n = 0;
	for (int i = 0; i < JSON_MAX_NESTING; i++)
		text[n++] = '[';
	for (int i = 0; i < JSON_MAX_NESTING; i++)
		text[n++] = ']';
	struct json_value *v = json_parse(text, n, err, sizeof(err));
	assert_non_null(v);
	json_free(v);
}

static void test_numbers(void **state)
{
	static const char text[] = "[9223372036854775807, -9223372036854775808, "
				   "9223372036854775808, 1e3, -0, 0.5]";
	char err[64];
	struct json_value *v = json_parse(text, strlen(text), err, sizeof(err));

	(void)state;
	assert_non_null(v);
	assert_int_equal(v->count, 6);
	assert_int_equal(v->items[0]->type, JSON_INT);
	assert_true(v->items[0]->i == INT64_MAX);
	assert_true(v->items[1]->i == INT64_MIN);
	assert_int_equal(v->items[2]->type, JSON_UINT);
	assert_true(v->items[2]->u == 9223372036854775808ULL);
	assert_int_equal(v->items[3]->type, JSON_DOUBLE);
	assert_true(v->items[3]->d == 1000.0);
	assert_int_equal(v->items[4]->type, JSON_INT);
	assert_int_equal(v->items[5]->type, JSON_DOUBLE);
	json_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_match_qemu),
		cmocka_unit_test(test_values_and_flattening),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
