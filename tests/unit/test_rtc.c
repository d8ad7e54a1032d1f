/* hw/rtc.c: the MC146818A CMOS clock as PC firmware reads it, and its saved state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/vmstate.h"
#include "hw/rtc.h"

/* 2026-12-07 22:35:08 UTC, a Monday. */
static time_t fixed_now(time_t *t)
{
	time_t v = 1796682908;

	if (t)
		*t = v;
	return v;
}

static uint8_t rd(struct rtc *rtc, uint8_t reg)
{
	uint8_t v = reg;

	rtc_io(rtc, 0, true, &v, 1);
	rtc_io(rtc, 1, false, &v, 1);
	return v;
}

static void wr(struct rtc *rtc, uint8_t reg, uint8_t val)
{
	rtc_io(rtc, 0, true, &reg, 1);
	rtc_io(rtc, 1, true, &val, 1);
}

static void test_clock_in_bcd_and_binary(void **state)
{
	struct rtc rtc;

	(void)state;
	rtc_init(&rtc);
	rtc.now = fixed_now;
	assert_int_equal(rd(&rtc, 0x00), 0x08);	/* seconds, BCD */
	assert_int_equal(rd(&rtc, 0x02), 0x35);
	assert_int_equal(rd(&rtc, 0x04), 0x22);
	assert_int_equal(rd(&rtc, 0x07), 0x07);
	assert_int_equal(rd(&rtc, 0x08), 0x12);
	assert_int_equal(rd(&rtc, 0x09), 0x26);
	assert_int_equal(rd(&rtc, 0x32), 0x20);	/* century */
	wr(&rtc, 0x0b, 0x06);			/* binary, 24 h */
	assert_int_equal(rd(&rtc, 0x04), 22);
	wr(&rtc, 0x00, 0x59);			/* the clock follows the host */
	assert_int_equal(rd(&rtc, 0x00), 8);
	rtc_set_base(&rtc, false, 3600);
	assert_int_equal(rd(&rtc, 0x04), 23);
	rtc_destroy(&rtc);
}

static void test_state_round_trip(void **state)
{
	struct vmstate_membuf m = { 0 };
	struct vmstate_out out;
	struct vmstate_in in;
	struct rtc a, b;

	(void)state;
	rtc_init(&a);
	rtc_init(&b);
	a.now = b.now = fixed_now;
	rtc_set_base(&a, false, -86400);	/* -rtc base= a day back */
	wr(&a, 0x40, 0xab);			/* CMOS RAM */
	wr(&a, 0x0b, 0x06);
	rd(&a, 0x41);				/* index left at 0x41 */
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(rtc_save(&a, &out, 0), 0);
	vmstate_out_free(&out);

	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_string_equal(in.name, "mc146818rtc");
	assert_int_equal(rtc_load(&b, &in), 0);
	assert_int_equal(b.index, 0x41);
	assert_int_equal(rd(&b, 0x40), 0xab);
	assert_int_equal(rd(&b, 0x07), 6);	/* binary, and a day back */
	vmstate_in_free(&in);
	free(m.data);

	/* A hostile index is refused by name and changes nothing. */
	memset(&m, 0, sizeof(m));
	a.index = 0x90;
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(rtc_save(&a, &out, 0), 0);
	vmstate_out_free(&out);
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_int_equal(rtc_load(&b, &in), -1);
	assert_string_equal(in.err, "migration stream: section 'mc146818rtc' instance 0: "
			    "index 0x90 past the 128 CMOS bytes");
	assert_int_equal(b.index, 0x07);	/* as the last read left it */
	vmstate_in_free(&in);
	free(m.data);
	rtc_destroy(&a);
	rtc_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock_in_bcd_and_binary),
		cmocka_unit_test(test_state_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
