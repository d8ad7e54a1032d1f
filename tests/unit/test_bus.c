/* hw/bus.c: range registration and dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hw/bus.h"

struct fake_dev {
	int id;
	int calls;
	uint64_t offset;
	bool is_write;
	unsigned size;
	uint8_t written[8];
};

static void fake_access(void *opaque, uint64_t offset, bool is_write, uint8_t *data,
			unsigned size)
{
	struct fake_dev *d = opaque;

	d->calls++;
	d->offset = offset;
	d->is_write = is_write;
	d->size = size;
	if (is_write)
		memcpy(d->written, data, size);
	else
		memset(data, d->id, size);
}

static void test_register_rejects_overlap(void **state)
{
	struct bus bus = { 0 };
	struct fake_dev d = { 0 };

	assert_int_equal(bus_register(&bus, 0x3f8, 8, fake_access, &d, "fake"), 0);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, fake_access, &d, "fake"), -1);	/* same */
	assert_int_equal(bus_register(&bus, 0x3f0, 9, fake_access, &d, "fake"), -1);	/* tail in */
	assert_int_equal(bus_register(&bus, 0x3ff, 1, fake_access, &d, "fake"), -1);	/* last byte */
	assert_int_equal(bus_register(&bus, 0x3fa, 1, fake_access, &d, "fake"), -1);	/* inside */
	assert_int_equal(bus_register(&bus, 0x300, 0x200, fake_access, &d, "fake"), -1);	/* around */
	assert_int_equal(bus.count, 1);
	/* Touching ends do not overlap. */
	assert_int_equal(bus_register(&bus, 0x3f0, 8, fake_access, &d, "fake"), 0);
	assert_int_equal(bus_register(&bus, 0x400, 1, fake_access, &d, "fake"), 0);
	assert_int_equal(bus.count, 3);
	assert_string_equal(bus.ranges[0].name, "fake");
	bus_free(&bus);
	assert_int_equal(bus.count, 0);
	assert_null(bus.ranges);
}

static void test_register_rejects_bad_ranges(void **state)
{
	struct bus bus = { 0 };
	struct fake_dev d = { 0 };

	assert_int_equal(bus_register(&bus, 0x60, 0, fake_access, &d, "fake"), -1);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 1, 4, fake_access, &d, "fake"), -1);
	assert_int_equal(bus.count, 0);
	bus_free(&bus);
}

static void test_ranges_kept_sorted(void **state)
{
	static const uint64_t bases[] = { 0xcf9, 0x60, 0x604, 0x3f8, 0x64, 0x501, 0x600 };
	static const uint64_t lens[] = { 1, 1, 4, 8, 1, 2, 4 };
	struct fake_dev devs[7];
	struct bus bus = { 0 };

	for (int i = 0; i < 7; i++) {
		devs[i] = (struct fake_dev){ .id = 0x10 + i };
		assert_int_equal(bus_register(&bus, bases[i], lens[i], fake_access, &devs[i], "fake"), 0);
	}
	for (size_t i = 1; i < bus.count; i++)
		assert_true(bus.ranges[i - 1].base + bus.ranges[i - 1].len <= bus.ranges[i].base);

	/* Every address reaches its own device with the offset inside the range. */
	for (int i = 0; i < 7; i++) {
		for (uint64_t off = 0; off < lens[i]; off++) {
			uint8_t data[4] = { 0 };
			int before = devs[i].calls;
			assert_true(bus_dispatch(&bus, bases[i] + off, false, data, 2));
			assert_int_equal(devs[i].calls, before + 1);
			assert_int_equal(devs[i].offset, off);
			assert_int_equal(devs[i].size, 2);
			assert_int_equal(data[0], 0x10 + i);
			assert_int_equal(data[1], 0x10 + i);
			assert_int_equal(data[2], 0);
		}
	}
	bus_free(&bus);
}

static void test_write_dispatch(void **state)
{
	struct bus bus = { 0 };
	struct fake_dev d = { .id = 1 };
	uint8_t data[4] = { 0x78, 0x56, 0x34, 0x12 };

	assert_int_equal(bus_register(&bus, 0x600, 12, fake_access, &d, "fake"), 0);
	assert_true(bus_dispatch(&bus, 0x608, true, data, 4));
	assert_true(d.is_write);
	assert_int_equal(d.offset, 8);
	assert_memory_equal(d.written, data, 4);
	bus_free(&bus);
}

static void test_unclaimed(void **state)
{
	struct bus bus = { 0 };
	struct fake_dev d = { .id = 1 };
	uint8_t data[4] = { 0x12, 0x34, 0x56, 0x78 };

	/* An empty bus answers all ones. */
	assert_false(bus_dispatch(&bus, 0x80, false, data, 4));
	assert_memory_equal(data, ((uint8_t[]){ 0xff, 0xff, 0xff, 0xff }), 4);

	assert_int_equal(bus_register(&bus, 0x3f8, 8, fake_access, &d, "fake"), 0);
	memset(data, 0, sizeof(data));
	assert_false(bus_dispatch(&bus, 0x3f7, false, data, 2));
	assert_memory_equal(data, ((uint8_t[]){ 0xff, 0xff, 0, 0 }), 4);
	assert_false(bus_dispatch(&bus, 0x400, false, data, 1));
	assert_false(bus_dispatch(&bus, UINT64_MAX, false, data, 1));

	/* Unclaimed writes are dropped and leave the buffer alone. */
	memset(data, 0x42, sizeof(data));
	assert_false(bus_dispatch(&bus, 0x400, true, data, 4));
	assert_memory_equal(data, ((uint8_t[]){ 0x42, 0x42, 0x42, 0x42 }), 4);
	assert_int_equal(d.calls, 0);
	bus_free(&bus);
}

static void test_high_mmio_addresses(void **state)
{
	struct bus bus = { 0 };
	struct fake_dev d = { .id = 9 };
	uint8_t data[8];

	assert_int_equal(bus_register(&bus, 0xfec00000, 0x1000, fake_access, &d, "fake"), 0);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 0xfff, 0xfff, fake_access, &d, "fake"), 0);
	assert_true(bus_dispatch(&bus, 0xfec00ffc, false, data, 4));
	assert_int_equal(d.offset, 0xffc);
	assert_false(bus_dispatch(&bus, 0xfec01000, false, data, 4));
	assert_true(bus_dispatch(&bus, UINT64_MAX - 1, false, data, 1));
	assert_int_equal(d.offset, 0xffe);
	bus_free(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_rejects_overlap),
		cmocka_unit_test(test_register_rejects_bad_ranges),
		cmocka_unit_test(test_ranges_kept_sorted),
		cmocka_unit_test(test_write_dispatch),
		cmocka_unit_test(test_unclaimed),
		cmocka_unit_test(test_high_mmio_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
