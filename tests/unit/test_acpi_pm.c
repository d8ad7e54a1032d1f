/* hw/acpi_pm.c: PM1 control (S5 power-off), SCI_EN, and the 24-bit PM timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/vmstate.h"
#include "hw/acpi_pm.h"
#include "fake.h"

#define SCI_EN 0x0001
#define SLP_EN 0x2000
#define SLP_TYP(n) ((uint16_t)((n) << 10))

struct pm_fixture {
	struct acpi_pm pm;
	struct power_log log;
	bool sci;
	int sci_changes;
};

static void on_sci(void *opaque, bool level)
{
	struct pm_fixture *f = opaque;

	f->sci = level;
	f->sci_changes++;
}

static int setup(void **state)
{
	struct pm_fixture *f = calloc(1, sizeof(*f));
	struct power_sink sink;

	if (!f)
		return -1;
	sink = power_log_sink(&f->log);
	acpi_pm_init(&f->pm, &sink, on_sci, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct pm_fixture *f = *state;

	acpi_pm_destroy(&f->pm);
	free(f);
	return 0;
}

static uint32_t rd(struct pm_fixture *f, uint64_t offset, unsigned size)
{
	uint8_t data[4];
	uint32_t v = 0;

	memset(data, 0xcc, sizeof(data));
	acpi_pm_io(&f->pm, offset, false, data, size);
	memcpy(&v, data, size);
	return v;
}

static void wr16(struct pm_fixture *f, uint64_t offset, uint16_t v)
{
	uint8_t data[2];

	memcpy(data, &v, 2);
	acpi_pm_io(&f->pm, offset, true, data, 2);
}

static void test_sci_en_reads_set(void **state)
{
	struct pm_fixture *f = *state;

	assert_int_equal(rd(f, ACPI_PM1_CNT_OFFSET, 2) & SCI_EN, SCI_EN);
	/* The OS cannot turn ACPI mode off: there is no SMI port to ask. */
	wr16(f, ACPI_PM1_CNT_OFFSET, 0);
	assert_int_equal(rd(f, ACPI_PM1_CNT_OFFSET, 2), SCI_EN);
	assert_int_equal(f->log.count, 0);
}

static void test_s5_powers_off(void **state)
{
	struct pm_fixture *f = *state;

	wr16(f, ACPI_PM1_CNT_OFFSET, SLP_TYP(ACPI_PM_S5_SLP_TYP) | SLP_EN | SCI_EN);
	assert_int_equal(f->log.count, 1);
	assert_int_equal(f->log.last, POWER_EVENT_OFF);
	/* SLP_EN is write-only; SLP_TYP is kept. */
	assert_int_equal(rd(f, ACPI_PM1_CNT_OFFSET, 2),
			 SLP_TYP(ACPI_PM_S5_SLP_TYP) | SCI_EN);
}

static void test_other_sleep_types_do_nothing(void **state)
{
	struct pm_fixture *f = *state;

	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ACPI_PM_S5_SLP_TYP)
			continue;
		wr16(f, ACPI_PM1_CNT_OFFSET, SLP_TYP(typ) | SLP_EN);
	}
	/* S5's type without SLP_EN only arms it. */
	wr16(f, ACPI_PM1_CNT_OFFSET, SLP_TYP(ACPI_PM_S5_SLP_TYP));
	assert_int_equal(f->log.count, 0);
}

static void test_pm1_evt_block(void **state)
{
	struct pm_fixture *f = *state;
	uint8_t data[4] = { 0xff, 0xff, 0x21, 0x01 };

	assert_int_equal(rd(f, ACPI_PM1_EVT_OFFSET, 4), 0);
	wr16(f, 2, 0x0100);			/* PWRBTN_EN */
	assert_int_equal(rd(f, 2, 2), 0x0100);
	/* A 4-byte write clears status bits and sets the enable half. */
	acpi_pm_io(&f->pm, 0, true, data, 4);
	assert_int_equal(rd(f, 0, 4), 0x01210000);
	assert_int_equal(f->log.count, 0);
	assert_int_equal(f->sci_changes, 0);
}

static void test_power_button_sci(void **state)
{
	struct pm_fixture *f = *state;

	/* Not enabled by the guest: nothing latches, no SCI (as PIIX4 PM in QEMU). */
	acpi_pm_power_button(&f->pm);
	assert_int_equal(rd(f, 0, 2), 0);
	assert_false(f->sci);

	wr16(f, 2, 0x0100);			/* PWRBTN_EN */
	assert_false(f->sci);
	acpi_pm_power_button(&f->pm);
	assert_int_equal(rd(f, 0, 2), 0x0100);
	assert_true(f->sci);
	assert_int_equal(f->sci_changes, 1);
	acpi_pm_power_button(&f->pm);		/* level, not edge: no second call */
	assert_int_equal(f->sci_changes, 1);

	/* Write-one-to-clear: a 0 leaves it, a 1 clears it and drops the SCI. */
	wr16(f, 0, 0x0000);
	assert_true(f->sci);
	wr16(f, 0, 0x0100);
	assert_int_equal(rd(f, 0, 2), 0);
	assert_false(f->sci);
	assert_int_equal(f->sci_changes, 2);

	/* Masking a pending status drops the line too. */
	acpi_pm_power_button(&f->pm);
	assert_true(f->sci);
	wr16(f, 2, 0x0000);
	assert_false(f->sci);
	assert_int_equal(rd(f, 0, 2), 0x0100);
	assert_int_equal(f->log.count, 0);	/* the guest decides whether to power off */
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void test_pm_timer_advances(void **state)
{
	struct pm_fixture *f = *state;
	uint32_t t0 = rd(f, ACPI_PM_TMR_OFFSET, 4);

	sleep_ms(20);
	uint32_t t1 = rd(f, ACPI_PM_TMR_OFFSET, 4);
	/* 20 ms at 3.579545 MHz is 71591 ticks; allow a slow, loaded host. */
	uint32_t delta = (t1 - t0) & 0xffffff;
	assert_true(delta >= 71591);
	assert_true(delta < 71591 * 100);
}

static void test_pm_timer_is_24_bit(void **state)
{
	struct pm_fixture *f = *state;

	/* Pretend the machine started 5 s ago: 17.9 million ticks, past 2^24. */
	f->pm.start_ns -= 5000000000ULL;
	for (int i = 0; i < 1000; i++) {
		assert_true(rd(f, ACPI_PM_TMR_OFFSET, 4) <= 0xffffff);
		assert_int_equal(rd(f, ACPI_PM_TMR_OFFSET + 3, 1), 0);
	}
	uint32_t t = rd(f, ACPI_PM_TMR_OFFSET, 4);
	uint64_t ticks = 5ULL * ACPI_PM_TIMER_HZ;
	/* Wrapped once: the counter is near 17.9M - 16.8M, not near 17.9M. */
	assert_true(t >= (ticks & 0xffffff));
	assert_true(t < (ticks & 0xffffff) + ACPI_PM_TIMER_HZ);
}

/* PM1 registers and the timer carry over; the SCI line follows the loaded bits. */
static void test_state_round_trip(void **state)
{
	struct pm_fixture *f = *state, *g = NULL;
	struct vmstate_membuf m = { 0 };
	struct vmstate_out out;
	struct vmstate_in in;

	wr16(f, 2, 0x0100);
	acpi_pm_power_button(&f->pm);
	f->pm.start_ns -= 5000000000ULL;	/* the source has run for 5 s */
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(acpi_pm_save(&f->pm, &out, 0), 0);
	vmstate_out_free(&out);

	assert_int_equal(setup((void **)&g), 0);
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_string_equal(in.name, "piix4_pm");
	assert_int_equal(acpi_pm_load(&g->pm, &in), 0);
	assert_true(g->sci);
	assert_int_equal(rd(g, 0, 4), 0x01000100);
	/* 5 s of ticks, wrapped at 24 bits, not a fresh timer near 0. */
	uint32_t t = rd(g, ACPI_PM_TMR_OFFSET, 4), want = (5ULL * ACPI_PM_TIMER_HZ) & 0xffffff;
	assert_true(t >= want && t < want + ACPI_PM_TIMER_HZ);
	vmstate_in_free(&in);
	free(m.data);
	teardown((void **)&g);
}

static void test_timer_read_only_and_out_of_range(void **state)
{
	struct pm_fixture *f = *state;
	uint8_t data[4] = { 0 };

	acpi_pm_io(&f->pm, ACPI_PM_TMR_OFFSET, true, data, 4);
	assert_int_equal(f->log.count, 0);
	/* Past the block's end reads as zero, never past the register file. */
	memset(data, 0xcc, sizeof(data));
	acpi_pm_io(&f->pm, 10, false, data, 4);
	assert_int_equal(data[2], 0);
	assert_int_equal(data[3], 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_sci_en_reads_set),
		T(test_s5_powers_off),
		T(test_other_sleep_types_do_nothing),
		T(test_pm1_evt_block),
		T(test_power_button_sci),
		T(test_pm_timer_advances),
		T(test_pm_timer_is_24_bit),
		T(test_timer_read_only_and_out_of_range),
		T(test_state_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
