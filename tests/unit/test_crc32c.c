/*
 * CRC-32C (src/util/crc32c.c) against the published check value and the
 * RFC 3720 (iSCSI) appendix B.4 vectors, plus continuation over pieces,
 * which VHDX's log checksum relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/crc32c.h"

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_rfc3720(void **state)
{
	uint8_t buf[32];

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
}

/* Every split point, every alignment: the 8-byte path and the tail agree. */
static void test_continuation(void **state)
{
	uint8_t buf[100];
	uint32_t whole;

	(void)state;
	for (int i = 0; i < 100; i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	whole = crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut++)
		assert_int_equal(crc32c(crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut), whole);
	for (size_t off = 1; off < 8; off++) {
		uint32_t bytewise = 0;
		for (size_t i = off; i < sizeof(buf); i++)
			bytewise = crc32c(bytewise, buf + i, 1);
		assert_int_equal(crc32c(0, buf + off, sizeof(buf) - off), bytewise);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_rfc3720),
		cmocka_unit_test(test_continuation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
