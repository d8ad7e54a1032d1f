/* util/size.c: QEMU's size syntax ("-m 1.5G") and plain unsigned integers. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/size.h"

#define KIB (1ULL << 10)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define TIB (1ULL << 40)

static uint64_t size_ok(const char *text, uint64_t unit)
{
	uint64_t v = 0xdeadbeef;

	assert_true(size_parse(text, unit, &v));
	return v;
}

static void size_bad(const char *text, uint64_t unit)
{
	uint64_t v = 0x1234;

	assert_false(size_parse(text, unit, &v));
	/* A failed parse must not leave a half-computed value behind. */
	assert_int_equal(v, 0x1234);
}

static void test_bare_number_uses_default_unit(void **state)
{
	assert_int_equal(size_ok("128", MIB), 128 * MIB);
	assert_int_equal(size_ok("128", 1), 128);
	assert_int_equal(size_ok("0", MIB), 0);
	assert_int_equal(size_ok("007", KIB), 7 * KIB);
}

static void test_suffixes_both_cases(void **state)
{
	assert_int_equal(size_ok("4096B", MIB), 4096);
	assert_int_equal(size_ok("4096b", MIB), 4096);
	assert_int_equal(size_ok("512k", MIB), 512 * KIB);
	assert_int_equal(size_ok("512K", MIB), 512 * KIB);
	assert_int_equal(size_ok("128m", 1), 128 * MIB);
	assert_int_equal(size_ok("128M", 1), 128 * MIB);
	assert_int_equal(size_ok("1G", MIB), GIB);
	assert_int_equal(size_ok("1g", MIB), GIB);
	assert_int_equal(size_ok("2T", MIB), 2 * TIB);
	assert_int_equal(size_ok("2t", MIB), 2 * TIB);
}

static void test_fractions(void **state)
{
	assert_int_equal(size_ok("1.5G", MIB), GIB + GIB / 2);
	assert_int_equal(size_ok("0.5M", 1), MIB / 2);
	assert_int_equal(size_ok("2.25k", 1), 2304);
	assert_int_equal(size_ok("1.0G", 1), GIB);
	assert_int_equal(size_ok("0.001k", 1), 1);	/* 1.024 bytes, truncated */
	assert_int_equal(size_ok("1.123456789T", 1),
			 TIB + (uint64_t)((unsigned __int128)123456789 * TIB / 1000000000));
}

static void test_fraction_rules(void **state)
{
	/* QEMU: a non-zero fraction needs a unit; none after the point is fine. */
	size_bad("1.5", MIB);
	size_bad("1.5", 1);
	size_bad("0.5b", 1);
	assert_int_equal(size_ok("1024.0", 1), 1024);
	assert_int_equal(size_ok("1.0b", 1), 1);
	assert_int_equal(size_ok("1.", 1), 1);
	assert_int_equal(size_ok("1.G", 1), GIB);
	assert_int_equal(size_ok("1.k", 1), KIB);
	size_bad(".5G", 1);
	size_bad("1.5.5G", 1);
	size_bad("1.5e3k", 1);		/* no exponent */
	size_bad("1e3", 1);
	size_bad("1.5 k", 1);
	/* The fraction is exact to 2^-64 and half a byte rounds up (qemu-img 7.2). */
	assert_int_equal(size_ok("1.1234567891G", 1), 1206302542);
	assert_int_equal(size_ok("0.00048828125k", 1), 1);
	assert_int_equal(size_ok("0.0004k", 1), 0);
	/* A fraction that rounds to 1.0 as a double counts as 0, as in qemu-img 7.2. */
	assert_int_equal(size_ok("1.999999999999999999999k", 1), KIB);
}

static void test_strtosz_errors(void **state)
{
	uint64_t v = 7;
	bool hex = false;

	assert_int_equal(size_strtosz("16E", &v, NULL), -ERANGE);
	assert_int_equal(size_strtosz("16.5E", &v, NULL), -ERANGE);
	assert_int_equal(size_strtosz("99999999999999999999", &v, NULL), -ERANGE);
	assert_int_equal(size_strtosz("0x10000000000000000", &v, NULL), -ERANGE);
	assert_int_equal(size_strtosz("99999999999999999999x", &v, NULL), -EINVAL);
	assert_int_equal(size_strtosz("1.5", &v, NULL), -EINVAL);
	assert_int_equal(size_strtosz("", &v, NULL), -EINVAL);
	assert_int_equal(v, 7);
	assert_int_equal(size_strtosz("0x1k", &v, &hex), 0);
	assert_int_equal(v, KIB);
	assert_true(hex);
	assert_int_equal(size_strtosz("0x1b", &v, &hex), 0);	/* b is a hex digit */
	assert_int_equal(v, 0x1b);
	assert_false(hex);
	assert_int_equal(size_strtosz("8E", &v, NULL), 0);
	assert_int_equal(v, 1ULL << 63);
}

static void test_garbage(void **state)
{
	size_bad(NULL, MIB);
	size_bad("", MIB);
	size_bad("M", MIB);
	size_bad("-1", MIB);
	size_bad(" -1", MIB);
	size_bad("1 ", MIB);
	size_bad("1MB", MIB);
	size_bad("1KiB", MIB);
	size_bad("1X", MIB);
	size_bad("0x", MIB);
	size_bad("00x10", MIB);
	size_bad("0x1.5k", MIB);
	size_bad("lots", MIB);
	size_bad("nan", 1);
	size_bad("inf", 1);
	/* strtoull's leading blanks and '+' are QEMU's syntax too. */
	assert_int_equal(size_ok("+1", 1), 1);
	assert_int_equal(size_ok(" 5", 1), 5);
	/* Hex, and a bare number times the unit as QEMU's -m fix-up does. */
	assert_int_equal(size_ok("0x10", 1), 16);
	assert_int_equal(size_ok("0x10", MIB), 16 * MIB);
	assert_int_equal(size_ok("1.0", MIB), MIB);
	assert_int_equal(size_ok("1P", 1), 1ULL << 50);
	assert_int_equal(size_ok("2E", 1), 2ULL << 60);
}

static void test_overflow(void **state)
{
	assert_int_equal(size_ok("16777215T", 1), 16777215 * TIB);
	size_bad("16777216T", 1);			/* exactly 2^64 */
	size_bad("17179869184G", 1);			/* 2^34 GiB = 2^64 */
	size_bad("18446744073709551616", 1);		/* 2^64 */
	size_bad("99999999999999999999999", 1);
	size_bad("18446744073709551615", MIB);		/* fits alone, not times the unit */
	/* The fraction is less than one unit, so it can never carry past 2^64 - 1. */
	assert_int_equal(size_ok("16777215.5T", 1), 16777215 * TIB + TIB / 2);
	assert_int_equal(size_ok("17592186044415M", 1), 17592186044415ULL * MIB);
}

static void test_uint_parse(void **state)
{
	uint64_t v = 0;

	assert_true(uint_parse("0", &v));
	assert_int_equal(v, 0);
	assert_true(uint_parse("4096", &v));
	assert_int_equal(v, 4096);
	assert_true(uint_parse("0x501", &v));
	assert_int_equal(v, 0x501);
	assert_true(uint_parse("0XfF", &v));
	assert_int_equal(v, 0xff);
	assert_true(uint_parse("18446744073709551615", &v));
	assert_int_equal(v, UINT64_MAX);

	v = 77;
	assert_false(uint_parse(NULL, &v));
	assert_false(uint_parse("", &v));
	assert_false(uint_parse("-1", &v));
	assert_false(uint_parse(" 1", &v));
	assert_false(uint_parse("1 ", &v));
	assert_false(uint_parse("12a", &v));
	assert_false(uint_parse("0x", &v));
	assert_false(uint_parse("two", &v));
	assert_false(uint_parse("18446744073709551616", &v));
	assert_int_equal(v, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_number_uses_default_unit),
		cmocka_unit_test(test_suffixes_both_cases),
		cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_fraction_rules),
		cmocka_unit_test(test_strtosz_errors),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_uint_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
