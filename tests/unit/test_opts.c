/* util/opts.c: QEMU's "key=val,flag,,escaped" option lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/opts.h"

static struct opts *parse_ok(const char *text, const char *implied)
{
	char err[128] = "";
	struct opts *o = opts_parse(text, implied, err, sizeof(err));

	assert_non_null(o);
	assert_string_equal(err, "");
	return o;
}

static void test_implied_key(void **state)
{
	struct opts *o = parse_ok("128", "size");

	assert_int_equal(o->count, 1);
	assert_string_equal(opts_get(o, "size"), "128");
	assert_null(opts_first_unused(o));
	opts_free(o);

	/* Only the first element may be implied; the rest need keys or are flags. */
	o = parse_ok("4,cores=2", "cpus");
	assert_string_equal(opts_get(o, "cpus"), "4");
	assert_string_equal(opts_get(o, "cores"), "2");
	opts_free(o);

	/* An explicit key in first place is not the implied one. */
	o = parse_ok("size=1G", "size");
	assert_string_equal(opts_get(o, "size"), "1G");
	assert_int_equal(o->count, 1);
	opts_free(o);
}

static void test_no_implied_key_makes_flags(void **state)
{
	struct opts *o = parse_ok("server", NULL);

	assert_string_equal(opts_get(o, "server"), "on");
	opts_free(o);
}

static void test_flags(void **state)
{
	struct opts *o = parse_ok("/tmp/s,server,nowait", "path");

	assert_int_equal(o->count, 3);
	assert_string_equal(opts_get(o, "path"), "/tmp/s");
	assert_string_equal(opts_get(o, "server"), "on");
	assert_string_equal(opts_get(o, "wait"), "off");
	assert_null(opts_get(o, "nowait"));
	opts_free(o);

	/* "no" alone is a flag named "no", not an empty negation. */
	o = parse_ok("x,no", "path");
	assert_string_equal(opts_get(o, "no"), "on");
	opts_free(o);
}

static void test_comma_escape(void **state)
{
	struct opts *o = parse_ok("/tmp/a,,b,server", "path");

	assert_string_equal(opts_get(o, "path"), "/tmp/a,b");
	assert_string_equal(opts_get(o, "server"), "on");
	opts_free(o);

	o = parse_ok("k=a,,,,b,,", NULL);
	assert_int_equal(o->count, 1);
	assert_string_equal(opts_get(o, "k"), "a,,b,");
	opts_free(o);
}

static void test_values_keep_equals(void **state)
{
	struct opts *o = parse_ok("append=console=ttyS0 quiet", NULL);

	assert_string_equal(opts_get(o, "append"), "console=ttyS0 quiet");
	opts_free(o);

	o = parse_ok("k=", NULL);
	assert_string_equal(opts_get(o, "k"), "");
	opts_free(o);
}

static void test_empty_elements(void **state)
{
	struct opts *o = parse_ok("", NULL);

	assert_int_equal(o->count, 0);
	assert_null(opts_first_unused(o));
	opts_free(o);

	/* Trailing and doubled separators are harmless, as in QEMU. */
	o = parse_ok("a=1,", NULL);
	assert_int_equal(o->count, 1);
	opts_free(o);
}

static void test_empty_key_rejected(void **state)
{
	char err[128] = "";

	assert_null(opts_parse("=1", NULL, err, sizeof(err)));
	assert_string_equal(err, "Invalid parameter ''");
	err[0] = '\0';
	assert_null(opts_parse("size=1,=2", "size", err, sizeof(err)));
	assert_string_not_equal(err, "");
}

static void test_last_occurrence_wins(void **state)
{
	struct opts *o = parse_ok("a=1,b=2,a=3", NULL);

	assert_string_equal(opts_get(o, "a"), "3");
	assert_null(opts_get(o, "missing"));
	/* Both "a"s were marked used; only b is left. */
	assert_string_equal(opts_first_unused(o), "b");
	assert_string_equal(opts_get(o, "b"), "2");
	assert_null(opts_first_unused(o));
	opts_free(o);
}

static void test_first_unused_in_order(void **state)
{
	struct opts *o = parse_ok("2,bogus=1,other=2", "cpus");

	assert_string_equal(opts_first_unused(o), "cpus");
	opts_get(o, "cpus");
	assert_string_equal(opts_first_unused(o), "bogus");
	opts_get(o, "other");
	assert_string_equal(opts_first_unused(o), "bogus");
	opts_free(o);
}

static void test_get_bool(void **state)
{
	static const char *const on[] = { "on", "yes", "true", "y" };
	static const char *const off[] = { "off", "no", "false", "n" };
	char text[32];
	bool v;

	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "k=%s", on[i]);
		struct opts *o = parse_ok(text, NULL);
		v = false;
		assert_true(opts_get_bool(o, "k", &v));
		assert_true(v);
		assert_null(opts_first_unused(o));
		opts_free(o);

		snprintf(text, sizeof(text), "k=%s", off[i]);
		o = parse_ok(text, NULL);
		v = true;
		assert_true(opts_get_bool(o, "k", &v));
		assert_false(v);
		opts_free(o);
	}
}

static void test_get_bool_absent_and_bad(void **state)
{
	struct opts *o = parse_ok("k=maybe,nowait", NULL);
	bool v = true;

	assert_true(opts_get_bool(o, "absent", &v));
	assert_true(v);			/* untouched */
	v = false;
	assert_true(opts_get_bool(o, "absent", &v));
	assert_false(v);
	assert_false(opts_get_bool(o, "k", &v));
	assert_true(opts_get_bool(o, "wait", &v));
	assert_false(v);
	opts_free(o);

	o = parse_ok("k=ON", NULL);	/* QEMU's booleans are lower case */
	assert_false(opts_get_bool(o, "k", &v));
	opts_free(o);
}

static void test_free_null(void **state)
{
	opts_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_implied_key),
		cmocka_unit_test(test_no_implied_key_makes_flags),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_comma_escape),
		cmocka_unit_test(test_values_keep_equals),
		cmocka_unit_test(test_empty_elements),
		cmocka_unit_test(test_empty_key_rejected),
		cmocka_unit_test(test_last_occurrence_wins),
		cmocka_unit_test(test_first_unused_in_order),
		cmocka_unit_test(test_get_bool),
		cmocka_unit_test(test_get_bool_absent_and_bad),
		cmocka_unit_test(test_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
