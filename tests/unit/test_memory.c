/* core/memory.c layout and bounds, and vmm/boot/e820.c, without KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "core/memory.h"

static void test_layout_small(void **state)
{
	struct guest_memory mem;

	memory_layout(&mem, 128 * MIB);
	assert_int_equal(mem.ram_size, 128 * MIB);
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(mem.regions[0].gpa, 0);
	assert_int_equal(mem.regions[0].size, 128 * MIB);
	assert_null(mem.host);
}

static void test_layout_split(void **state)
{
	struct guest_memory mem;

	/* Just under QEMU's split point: all of it stays low, up to 3.5 GiB. */
	memory_layout(&mem, 0xe0000000ULL - 4096);
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(mem.regions[0].size, 0xe0000000ULL - 4096);

	memory_layout(&mem, 0xe0000000ULL);
	assert_int_equal(mem.nr_regions, 2);
	assert_int_equal(mem.regions[0].gpa, 0);
	assert_int_equal(mem.regions[0].size, 3 * GIB);
	assert_int_equal(mem.regions[1].gpa, 4 * GIB);
	assert_int_equal(mem.regions[1].size, 0xe0000000ULL - 3 * GIB);

	memory_layout(&mem, 4 * GIB);
	assert_int_equal(mem.nr_regions, 2);
	assert_int_equal(mem.regions[0].size, 3 * GIB);
	assert_int_equal(mem.regions[1].gpa, 4 * GIB);
	assert_int_equal(mem.regions[1].size, 1 * GIB);
	assert_int_equal(mem.regions[0].size + mem.regions[1].size, mem.ram_size);
}

/* Host pointers are only compared, never dereferenced: no real backing needed. */
static void fake_host(struct guest_memory *mem, uint64_t ram_size, uint8_t *host)
{
	memory_layout(mem, ram_size);
	mem->host = host;
	mem->regions[0].host = host;
	if (mem->nr_regions > 1)
		mem->regions[1].host = host + mem->regions[0].size;
}

static void test_ptr_bounds_low(void **state)
{
	struct guest_memory mem;
	uint8_t *host = (uint8_t *)(uintptr_t)0x100000000000ULL;

	fake_host(&mem, 16 * MIB, host);
	assert_ptr_equal(memory_ptr(&mem, 0, 1), host);
	assert_ptr_equal(memory_ptr(&mem, 0x1234, 16), host + 0x1234);
	assert_ptr_equal(memory_ptr(&mem, 0, 16 * MIB), host);
	assert_ptr_equal(memory_ptr(&mem, 16 * MIB - 1, 1), host + 16 * MIB - 1);
	assert_ptr_equal(memory_ptr(&mem, 16 * MIB, 0), host + 16 * MIB);
	assert_null(memory_ptr(&mem, 16 * MIB, 1));
	assert_null(memory_ptr(&mem, 16 * MIB - 1, 2));
	assert_null(memory_ptr(&mem, 0, 16 * MIB + 1));
	assert_null(memory_ptr(&mem, 16 * MIB + 1, 0));
	/* Lengths and addresses that would wrap around. */
	assert_null(memory_ptr(&mem, 4096, UINT64_MAX));
	assert_null(memory_ptr(&mem, UINT64_MAX, 2));
	assert_null(memory_ptr(&mem, UINT64_MAX - 4095, 8192));
}

static void test_ptr_bounds_split(void **state)
{
	struct guest_memory mem;
	uint8_t *host = (uint8_t *)(uintptr_t)0x100000000000ULL;

	fake_host(&mem, 4 * GIB, host);
	assert_ptr_equal(memory_ptr(&mem, 3 * GIB - 8, 8), host + 3 * GIB - 8);
	/* The PCI hole is not RAM, nor is a range that straddles into it. */
	assert_null(memory_ptr(&mem, 3 * GIB, 1));
	assert_null(memory_ptr(&mem, 3 * GIB - 8, 16));
	assert_null(memory_ptr(&mem, 0xfec00000, 4));
	/* High RAM follows low RAM in the host mapping. */
	assert_ptr_equal(memory_ptr(&mem, 4 * GIB, 8), host + 3 * GIB);
	assert_ptr_equal(memory_ptr(&mem, 5 * GIB - 1, 1), host + 4 * GIB - 1);
	assert_null(memory_ptr(&mem, 5 * GIB, 1));
	assert_null(memory_ptr(&mem, 4 * GIB - 1, 2));
}

static void test_write(void **state)
{
	struct guest_memory mem;
	uint8_t *host = calloc(1, MIB);
	const char msg[] = "hello";

	assert_non_null(host);
	fake_host(&mem, MIB, host);
	assert_int_equal(memory_write(&mem, 0x500, msg, sizeof(msg)), 0);
	assert_memory_equal(host + 0x500, msg, sizeof(msg));
	assert_int_equal(memory_write(&mem, MIB - 2, msg, sizeof(msg)), -1);
	assert_int_equal(host[MIB - 2], 0);	/* nothing partial */
	free(host);
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* Entries are sorted, do not overlap, and RAM never covers a boot structure. */
static void check_sane(const struct e820_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(e[i].size > 0);
		if (i > 0)
			assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
		if (e[i].type != E820_RAM)
			continue;
		uint64_t end = e[i].addr + e[i].size;
		assert_false(e[i].addr < ACPI_TABLES_ADDR + ACPI_TABLES_SIZE &&
			     end > ACPI_TABLES_ADDR);
		assert_false(e[i].addr < MPTABLE_ADDR + MPTABLE_SIZE && end > MPTABLE_ADDR);
		assert_false(e[i].addr < EBDA_ADDR + 1 && end > EBDA_ADDR);
	}
}

static void test_e820_128m(void **state)
{
	struct guest_memory mem;
	struct e820_entry e[E820_MAX_ENTRIES];
	size_t n;

	memory_layout(&mem, 128 * MIB);
	n = e820_build(&mem, e);
	assert_int_equal(n, 5);
	check_entry(&e[0], 0, 0x9fc00, E820_RAM);
	check_entry(&e[1], 0x9fc00, 0x400, E820_RESERVED);
	check_entry(&e[2], 0xe0000, 0x20000, E820_RESERVED);
	check_entry(&e[3], 0x100000, 127 * MIB, E820_RAM);
	check_entry(&e[4], 0xfeffc000, 0x4000, E820_RESERVED);
	check_sane(e, n);
}

static void test_e820_4g(void **state)
{
	struct guest_memory mem;
	struct e820_entry e[E820_MAX_ENTRIES];
	size_t n;

	memory_layout(&mem, 4 * GIB);
	n = e820_build(&mem, e);
	assert_int_equal(n, 6);
	check_entry(&e[3], 0x100000, 3 * GIB - MIB, E820_RAM);
	check_entry(&e[4], 0xfeffc000, 0x4000, E820_RESERVED);
	check_entry(&e[5], 4 * GIB, GIB, E820_RAM);
	check_sane(e, n);

	/* All RAM is reported, none twice. */
	uint64_t ram = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].type == E820_RAM)
			ram += e[i].size;
	assert_int_equal(ram, 4 * GIB - (MIB - 0x9fc00));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_small),
		cmocka_unit_test(test_layout_split),
		cmocka_unit_test(test_ptr_bounds_low),
		cmocka_unit_test(test_ptr_bounds_split),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_e820_128m),
		cmocka_unit_test(test_e820_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
