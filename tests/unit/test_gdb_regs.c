/*
 * gdb/regs.c: the target description and the 'g'/'p' layouts agree, register
 * by register, with the sizes and order QEMU's i386-64bit.xml gives gdb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb/regs.h"

static void test_xml_matches_the_table(void **state)
{
	(void)state;
	size_t len, total = 0;
	const char *xml = gdb_target_xml(&len);
	const char *p = xml;
	char name[32];
	unsigned bits;
	int n = 0;

	assert_int_equal(strlen(xml), len);
	assert_non_null(strstr(xml, "<architecture>i386:x86-64</architecture>"));
	assert_non_null(strstr(xml, "<feature name=\"org.gnu.gdb.i386.core\">"));
	assert_non_null(strstr(xml, "<feature name=\"org.gnu.gdb.i386.sse\">"));
	while ((p = strstr(p, "<reg name=\"")) != NULL) {
		assert_int_equal(sscanf(p, "<reg name=\"%31[^\"]\" bitsize=\"%u\"", name, &bits), 2);
		assert_string_equal(name, gdb_reg_name(n));
		assert_int_equal(bits, 8 * (unsigned)gdb_reg_size(n));
		total += bits / 8;
		n++;
		p++;
	}
	assert_int_equal(n, GDB_NR_REGS);
	assert_int_equal(total, GDB_REGS_BYTES);
	/* The SSE registers come after the core feature closes. */
	assert_true(strstr(xml, "name=\"xmm0\"") > strstr(xml, "org.gnu.gdb.i386.sse"));
	assert_true(strstr(xml, "name=\"fop\"") < strstr(xml, "org.gnu.gdb.i386.sse"));
}

static void test_qemu_numbering(void **state)
{
	(void)state;
	/* target/i386/gdbstub.c: 16 GPRs, rip, eflags, 6 segments + 3 bases, 6 control, 16 FP, 16 XMM, mxcsr. */
	assert_int_equal(gdb_reg_lookup("rip"), 16);
	assert_int_equal(gdb_reg_lookup("eflags"), 17);
	assert_int_equal(gdb_reg_lookup("fs_base"), 24);
	assert_int_equal(gdb_reg_lookup("k_gs_base"), 26);
	assert_int_equal(gdb_reg_lookup("cr0"), 27);
	assert_int_equal(gdb_reg_lookup("efer"), 32);
	assert_int_equal(gdb_reg_lookup("st0"), 33);
	assert_int_equal(gdb_reg_lookup("fop"), 48);
	assert_int_equal(gdb_reg_lookup("xmm0"), 49);
	assert_int_equal(gdb_reg_lookup("mxcsr"), 65);
	assert_int_equal(gdb_reg_size(33), 10);
	assert_int_equal(gdb_reg_size(66), -1);
	assert_int_equal(gdb_reg_lookup("nosuch"), -1);
}

static void test_pack_unpack(void **state)
{
	(void)state;
	struct gdb_x86_regs r, back;
	uint8_t raw[GDB_REGS_BYTES], one[16];

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 16; i++)
		r.gpr[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
	r.rip = 0xffffffff81000000ull;
	r.rflags = 0xffffffff00000246ull;	/* only 32 bits go on the wire */
	r.seg[5] = 0x2b;
	r.efer = 0xd01;
	r.st[7][9] = 0x40;
	r.xmm[15][15] = 0x99;
	r.mxcsr = 0x1f80;
	gdb_regs_pack(&r, raw);
	assert_memory_equal(raw + 16 * 8, &r.rip, 8);
	assert_memory_equal(raw + 17 * 8, "\x46\x02\x00\x00", 4);
	assert_memory_equal(raw + 17 * 8 + 4 + 5 * 4, "\x2b\x00\x00\x00", 4);
	assert_int_equal(raw[GDB_REGS_BYTES - 5], 0x99);
	assert_memory_equal(raw + GDB_REGS_BYTES - 4, "\x80\x1f\x00\x00", 4);

	memset(&back, 0xff, sizeof(back));
	assert_int_equal(gdb_regs_unpack(&back, raw, sizeof(raw)), 0);
	uint8_t again[GDB_REGS_BYTES];
	gdb_regs_pack(&back, again);
	assert_memory_equal(again, raw, sizeof(raw));
	/* A 4-byte wire register clears the field's upper half. */
	assert_true(back.rflags == 0x246 && back.seg[5] == 0x2b && back.efer == 0xd01);
	assert_int_equal(gdb_reg_get(&r, gdb_reg_lookup("st7"), one), 10);
	assert_int_equal(one[9], 0x40);
	/* A 'G' cut mid-register is refused; a longer one too. */
	assert_int_equal(gdb_regs_unpack(&back, raw, 16 * 8 + 3), -1);
	assert_int_equal(gdb_regs_unpack(&back, raw, sizeof(raw) + 1), -1);
	assert_int_equal(gdb_regs_unpack(&back, raw, 16 * 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_matches_the_table),
		cmocka_unit_test(test_qemu_numbering),
		cmocka_unit_test(test_pack_unpack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
