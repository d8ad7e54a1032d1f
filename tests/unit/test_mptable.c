/* vmm/boot/mptable.c: MP Specification 1.4 tables, walked as a guest would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/mptable.h"

#define BASE MPTABLE_ADDR

static uint8_t buf[MPTABLE_SIZE];

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Entry lengths by type (§4.3): processors are 20 bytes, the rest 8. */
static unsigned entry_len(uint8_t type)
{
	return type == 0 ? 20 : 8;
}

static void check(unsigned cpus)
{
	size_t used;

	memset(buf, 0x5a, sizeof(buf));
	used = mptable_build(buf, sizeof(buf), BASE, cpus);
	assert_true(used > 16 + 44);

	/* Floating pointer: 16 bytes, "_MP_", checksum, pointer to the table. */
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(acpi_sum(buf, 16), 0);
	uint32_t physptr = le32(buf + 4);
	assert_true(physptr >= BASE && physptr - BASE + 44 <= used);
	assert_int_equal(buf[11], 0);		/* feature byte 1: a table is present */

	const uint8_t *t = buf + (physptr - BASE);
	uint16_t len = le16(t + 4);
	assert_memory_equal(t, "PCMP", 4);
	assert_int_equal(t[6], 4);
	assert_true(physptr - BASE + len <= used);
	assert_int_equal(acpi_sum(t, len), 0);
	assert_int_equal(le32(t + 36), 0xfee00000);

	unsigned count = le16(t + 34), seen = 0, procs = 0, bsps = 0, ioapics = 0, ints = 0;
	uint8_t ioapic_id = 0;
	for (uint32_t off = 44; off < len; seen++) {
		const uint8_t *e = t + off;
		assert_true(off + entry_len(e[0]) <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], procs);		/* APIC ID */
			assert_true(e[3] & 1);			/* enabled */
			if (e[3] & 2) {
				assert_int_equal(procs, 0);	/* BSP only on cpu 0 */
				bsps++;
			}
			procs++;
			break;
		case 2:
			ioapics++;
			ioapic_id = e[1];
			assert_int_equal(le32(e + 4), 0xfec00000);
			break;
		case 3:
			ints++;
			assert_int_equal(e[6], ioapic_id);
			/* The PIT's IRQ 0 is wired to pin 2, as on real boards. */
			if (e[5] == 0)
				assert_int_equal(e[7], 2);
			else
				assert_int_equal(e[7], e[5]);
			break;
		}
		off += entry_len(e[0]);
	}
	assert_int_equal(seen, count);
	assert_int_equal(procs, cpus);
	assert_int_equal(bsps, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ints, 15);
	/* The I/O APIC's ID must not collide with a processor's. */
	assert_true(ioapic_id >= cpus);
}

static void test_one_cpu(void **state)
{
	check(1);
}

static void test_many_cpus(void **state)
{
	check(2);
	check(8);
	check(64);
	check(254);
}

static void test_too_small(void **state)
{
	size_t need = mptable_build(buf, sizeof(buf), BASE, 4);

	assert_true(need > 0);
	assert_int_equal(mptable_build(buf, need - 1, BASE, 4), 0);
	assert_int_equal(mptable_build(buf, 0, BASE, 4), 0);
	assert_int_equal(mptable_build(buf, need, BASE, 4), need);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_many_cpus),
		cmocka_unit_test(test_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
