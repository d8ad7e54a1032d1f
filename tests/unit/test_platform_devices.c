/* The small pc devices: i8042 reset line, port 0xcf9, isa-debug-exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hw/debug_exit.h"
#include "hw/debugcon.h"
#include "hw/i8042.h"
#include "hw/reset_control.h"
#include "fake.h"

static void test_i8042_pulse_reset(void **state)
{
	struct power_log log;
	struct power_sink sink = power_log_sink(&log);
	struct i8042 kbc;
	uint8_t v;

	assert_int_equal(i8042_init(&kbc, &sink, NULL, NULL), 0);
	v = 0xfe;
	i8042_command_io(&kbc, 0, true, &v, 1);
	assert_int_equal(log.count, 1);
	assert_int_equal(log.last, POWER_EVENT_RESET);

	/*
	 * Other commands, and 0xfe written to the data port, reset nothing (0xf1
	 * pulses bits 1-3 but not the reset line; 0xf0 would, as in QEMU).
	 */
	static const uint8_t others[] = { 0x00, 0xaa, 0xad, 0xd1, 0xf1, 0xff };
	for (size_t i = 0; i < sizeof(others); i++) {
		v = others[i];
		i8042_command_io(&kbc, 0, true, &v, 1);
	}
	v = 0xfe;
	i8042_data_io(&kbc, 0, true, &v, 1);
	assert_int_equal(log.count, 1);
	i8042_destroy(&kbc);
}

static void test_i8042_reads(void **state)
{
	struct power_log log;
	struct power_sink sink = power_log_sink(&log);
	struct i8042 kbc;
	uint8_t data[2];

	assert_int_equal(i8042_init(&kbc, &sink, NULL, NULL), 0);
	memset(data, 0xcc, sizeof(data));
	i8042_command_io(&kbc, 0, false, data, 1);
	/*
	 * System flag set (as after a BIOS POST), keylock off, last write a
	 * command, both buffers empty: Linux's i8042 probe is satisfied.
	 */
	assert_int_equal(data[0], 0x1c);
	memset(data, 0xcc, sizeof(data));
	i8042_data_io(&kbc, 0, false, data, 2);
	assert_int_equal(data[0], 0);
	assert_int_equal(data[1], 0);
	assert_int_equal(log.count, 0);
	i8042_destroy(&kbc);
}

static void test_reset_control(void **state)
{
	struct power_log log;
	struct power_sink sink = power_log_sink(&log);
	struct reset_control rc;
	uint8_t v;

	reset_control_init(&rc, &sink);
	v = 0xcc;
	reset_control_io(&rc, 0, false, &v, 1);
	assert_int_equal(v, 0);

	v = 0x02;			/* SYS_RST alone: arms, does not reset */
	reset_control_io(&rc, 0, true, &v, 1);
	assert_int_equal(log.count, 0);
	reset_control_io(&rc, 0, false, &v, 1);
	assert_int_equal(v, 0x02);

	v = RESET_CONTROL_VALUE;	/* 0x06 */
	reset_control_io(&rc, 0, true, &v, 1);
	assert_int_equal(log.count, 1);
	assert_int_equal(log.last, POWER_EVENT_RESET);
	/* RST_CPU is a trigger, not state: it reads back clear. */
	reset_control_io(&rc, 0, false, &v, 1);
	assert_int_equal(v, 0x02);

	v = 0x00;
	reset_control_io(&rc, 0, true, &v, 1);
	assert_int_equal(log.count, 1);
}

static int debug_exit_status(uint32_t value, unsigned size)
{
	struct power_log log;
	struct power_sink sink = power_log_sink(&log);
	struct debug_exit de;
	uint8_t data[4];

	debug_exit_init(&de, &sink);
	memcpy(data, &value, 4);
	debug_exit_io(&de, 0, true, data, size);
	assert_int_equal(log.count, 1);
	assert_int_equal(log.last, POWER_EVENT_EXIT);
	return log.status;
}

static void test_debug_exit_status(void **state)
{
	/* QEMU: exit((value << 1) | 1), so a test guest's 0 means exit status 1. */
	assert_int_equal(debug_exit_status(0, 1), 1);
	assert_int_equal(debug_exit_status(1, 1), 3);
	assert_int_equal(debug_exit_status(0x10, 1), 0x21);
	assert_int_equal(debug_exit_status(0x7f, 1), 0xff);
	assert_int_equal(debug_exit_status(0x80, 1), 0x01);	/* 8-bit exit status */
	assert_int_equal(debug_exit_status(0x0102, 2), 0x05);
	assert_int_equal(debug_exit_status(0xffffff02, 1), 0x05);	/* size bounds it */
	assert_int_equal(debug_exit_status(0x31, 4), 0x63);
}

static void test_debug_exit_read(void **state)
{
	struct power_log log;
	struct power_sink sink = power_log_sink(&log);
	struct debug_exit de;
	uint8_t data[2] = { 0, 0 };

	debug_exit_init(&de, &sink);
	debug_exit_io(&de, 0, false, data, 2);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(log.count, 0);
}

struct byte_log {
	uint8_t bytes[8];
	unsigned count;
};

static void log_byte(void *opaque, uint8_t byte)
{
	struct byte_log *log = opaque;

	if (log->count < sizeof(log->bytes))
		log->bytes[log->count] = byte;
	log->count++;
}

/* isa-debugcon hands each written byte to its transmit callback; reads say 0xe9. */
static void test_debugcon(void **state)
{
	(void)state;
	struct byte_log log = { .count = 0 };
	struct debugcon d = { .transmit = log_byte, .opaque = &log };
	uint8_t data[2] = { 'k', 'x' };

	debugcon_io(&d, 0, true, data, 1);
	data[0] = '\n';
	debugcon_io(&d, 0, true, data, 1);
	assert_int_equal(log.count, 2);
	assert_int_equal(log.bytes[0], 'k');
	assert_int_equal(log.bytes[1], '\n');
	debugcon_io(&d, 0, false, data, 2);
	assert_int_equal(data[0], 0xe9);
	assert_int_equal(data[1], 0);
	assert_int_equal(log.count, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i8042_pulse_reset),
		cmocka_unit_test(test_i8042_reads),
		cmocka_unit_test(test_reset_control),
		cmocka_unit_test(test_debug_exit_status),
		cmocka_unit_test(test_debug_exit_read),
		cmocka_unit_test(test_debugcon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
