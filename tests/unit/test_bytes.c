/* util/bytes.h: each load and store has the byte order its name says, at any alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/bytes.h"

static const uint8_t seq[9] = { 0xaa, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };

static void test_loads(void **state)
{
	(void)state;
	const uint8_t *p = seq + 1;	/* odd address: no alignment assumed */

	assert_int_equal(ld_le16(p), 0x0201);
	assert_int_equal(ld_be16(p), 0x0102);
	assert_int_equal(ld_le32(p), 0x04030201u);
	assert_int_equal(ld_be32(p), 0x01020304u);
	assert_true(ld_le64(p) == 0x0807060504030201ull);
	assert_true(ld_be64(p) == 0x0102030405060708ull);
}

static void test_stores(void **state)
{
	(void)state;
	uint8_t b[9];

	memset(b, 0xee, sizeof(b));
	st_le16(b + 1, 0x0201);
	assert_memory_equal(b + 1, seq + 1, 2);
	st_be16(b + 1, 0x0102);
	assert_memory_equal(b + 1, seq + 1, 2);
	st_le32(b + 1, 0x04030201u);
	assert_memory_equal(b + 1, seq + 1, 4);
	st_be32(b + 1, 0x01020304u);
	assert_memory_equal(b + 1, seq + 1, 4);
	st_le64(b + 1, 0x0807060504030201ull);
	assert_memory_equal(b + 1, seq + 1, 8);
	st_be64(b + 1, 0x0102030405060708ull);
	assert_memory_equal(b + 1, seq + 1, 8);
	assert_int_equal(b[0], 0xee);	/* nothing written outside */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads),
		cmocka_unit_test(test_stores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
