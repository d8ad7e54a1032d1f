/*
 * gdb/pagewalk.c on synthetic page tables in a buffer: no paging, 32-bit
 * (4K and 4M pages), PAE, 4-level and 5-level long mode with 4K/2M/1G
 * pages, not-present entries, non-canonical addresses and tables outside
 * memory (SDM vol. 3, ch. 4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gdb/pagewalk.h"

#define MEM (1u << 20)
static uint8_t mem[MEM];
static unsigned reads;

static int rd(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	(void)opaque;
	reads++;
	if (gpa >= MEM || len > MEM - gpa)
		return -EIO;
	memcpy(buf, mem + gpa, len);
	return 0;
}

static void put64(uint64_t pa, uint64_t v)
{
	memcpy(mem + pa, &v, 8);
}

static void put32(uint64_t pa, uint32_t v)
{
	memcpy(mem + pa, &v, 4);
}

static int tr(const struct gdb_paging *pg, uint64_t va, uint64_t *pa, uint64_t *left)
{
	return gdb_translate(pg, va, rd, NULL, pa, left);
}

static void test_no_paging(void **state)
{
	(void)state;
	struct gdb_paging pg = { .cr0 = 1 };	/* protected mode, PG clear */
	uint64_t pa, left;

	assert_int_equal(tr(&pg, 0xb8123, &pa, &left), 0);
	assert_true(pa == 0xb8123 && left == 0x1000 - 0x123);
}

/* 4-level: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000. */
static void build4(void)
{
	memset(mem, 0, MEM);
	put64(0x1000 + 0x1ff * 8, 0x2000 | 3);		/* VA 0xffff8... */
	put64(0x1000, 0x2000 | 3);
	put64(0x2000, 0x3000 | 3);
	put64(0x2000 + 8, 0x40000000ull | 0x83);	/* 1G page at PA 1G */
	put64(0x3000, 0x4000 | 3);
	put64(0x3000 + 8, 0x600000 | 0x83);		/* 2M page */
	put64(0x3000 + 16, 0x7000 | 2);			/* not present */
	put64(0x4000 + 5 * 8, 0x9000 | 3);		/* VA 0x5000 -> PA 0x9000 */
	put64(0x4000 + 6 * 8, 0x00ffffff00000000ull | 0xa000 | 3);	/* bits above 51 ignored */
}

static void test_long_mode_4_level(void **state)
{
	(void)state;
	struct gdb_paging pg = { .cr0 = 0x80000001, .cr3 = 0x1000, .cr4 = 0x20, .efer = 0x500 };
	uint64_t pa, left;

	build4();
	assert_int_equal(tr(&pg, 0x5abc, &pa, &left), 0);
	assert_true(pa == 0x9abc && left == 0x1000 - 0xabc);
	assert_int_equal(tr(&pg, 0x6000, &pa, &left), 0);
	assert_true(pa == 0x000fffff0000a000ull);
	assert_int_equal(tr(&pg, 0x212345, &pa, &left), 0);
	assert_true(pa == 0x612345 && left == 0x200000 - 0x12345);
	assert_int_equal(tr(&pg, 0x40000000 + 0x1234567, &pa, &left), 0);
	assert_true(pa == 0x41234567 && left == 0x40000000 - 0x1234567);
	/* Higher half: PML4[511] shares the PDPT here. */
	assert_int_equal(tr(&pg, 0xffffff8000005000ull, &pa, &left), 0);
	assert_true(pa == 0x9000);
	assert_int_equal(tr(&pg, 0x4000, &pa, &left), -EFAULT);	/* PTE 4 empty */
	assert_int_equal(tr(&pg, 0x400000, &pa, &left), -EFAULT);	/* PDE P clear */
	assert_int_equal(tr(&pg, 0x800000000000ull, &pa, &left), -EFAULT);	/* non-canonical */
	/* A table pointer past memory: the read's error comes back. */
	put64(0x3000 + 24, 0x7ff000000ull | 3);
	assert_int_equal(tr(&pg, 0x600000, &pa, &left), -EIO);
	/* The walk never writes (no A/D bits): the tables are unchanged. */
	uint64_t e;
	memcpy(&e, mem + 0x4000 + 5 * 8, 8);
	assert_true(e == (0x9000 | 3));
}

static void test_long_mode_5_level(void **state)
{
	(void)state;
	struct gdb_paging pg = { .cr0 = 0x80000001, .cr3 = 0x8000, .cr4 = 0x1020, .efer = 0x500 };
	uint64_t pa, left;

	build4();
	/* PML5[1] -> the 4-level PML4: VA bit 48 selects it. */
	put64(0x8000 + 8, 0x1000 | 3);
	assert_int_equal(tr(&pg, 0x1000000005abcull, &pa, &left), 0);
	assert_true(pa == 0x9abc);
	assert_int_equal(tr(&pg, 0x5abc, &pa, &left), -EFAULT);	/* PML5[0] empty */
	/* Canonical under LA57 but not under 4-level paging. */
	assert_int_equal(tr(&pg, 0x0100000000000000ull, &pa, &left), -EFAULT);
	pg.cr4 = 0x20;
	assert_int_equal(tr(&pg, 0x1000000005abcull, &pa, &left), -EFAULT);
}

static void test_pae(void **state)
{
	(void)state;
	struct gdb_paging pg = { .cr0 = 0x80000001, .cr3 = 0x1020, .cr4 = 0x20 };
	uint64_t pa, left;

	memset(mem, 0, MEM);
	put64(0x1020 + 3 * 8, 0x2000 | 1);		/* PDPTE 3: VA 0xc0000000.. */
	put64(0x2000, 0x3000 | 3);
	put64(0x2000 + 8, 0x800000 | 0x83);		/* 2M page */
	put64(0x3000 + 4 * 8, 0x5000 | 3);
	assert_int_equal(tr(&pg, 0xc0004321, &pa, &left), 0);
	assert_true(pa == 0x5321);
	assert_int_equal(tr(&pg, 0xc0212345, &pa, &left), 0);
	assert_true(pa == 0x812345);
	assert_int_equal(tr(&pg, 0x00004321, &pa, &left), -EFAULT);	/* PDPTE 0 empty */
}

static void test_32bit(void **state)
{
	(void)state;
	struct gdb_paging pg = { .cr0 = 0x80000001, .cr3 = 0x1000, .cr4 = 0x10 };
	uint64_t pa, left;

	memset(mem, 0, MEM);
	put32(0x1000 + 0x300 * 4, 0x2000 | 3);		/* VA 0xc0000000 */
	put32(0x2000 + 1 * 4, 0x7000 | 3);
	/* 4M page with PSE-36 bits: PDE bits 20:13 = physical 39:32 = 0x1. */
	put32(0x1000 + 0x301 * 4, 0x00c00000u | (1u << 13) | 0x83);
	assert_int_equal(tr(&pg, 0xc0001abc, &pa, &left), 0);
	assert_true(pa == 0x7abc);
	assert_int_equal(tr(&pg, 0xc0412345, &pa, &left), 0);
	assert_true(pa == 0x100c12345ull && left == 0x400000 - 0x12345);
	/* Without CR4.PSE the PS bit is ignored: the PDE points at a table (0xc02000, unbacked). */
	pg.cr4 = 0;
	assert_int_equal(tr(&pg, 0xc0412345, &pa, &left), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_paging),
		cmocka_unit_test(test_long_mode_4_level),
		cmocka_unit_test(test_long_mode_5_level),
		cmocka_unit_test(test_pae),
		cmocka_unit_test(test_32bit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
