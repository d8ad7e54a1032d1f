/*
 * gdb/stub.c over a mock target (no socket): int3 patching hidden from
 * reads and kept under writes, debug-register allocation and DR7 encoding,
 * stop replies (T05 with thread, watch, T02, W00, X09), threads, vCont.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gdb/stub.h"

#define MEM 0x10000
static uint8_t mem[MEM];
static struct gdb_x86_regs regs[3];
static struct gdb_debug dbg;
static int resumed_step = -9;

static int m_count(void *o) { (void)o; return 3; }
static int m_get(void *o, int c, struct gdb_x86_regs *r) { (void)o; *r = regs[c]; return 0; }
static int m_set(void *o, int c, const struct gdb_x86_regs *r) { (void)o; regs[c] = *r; return 0; }

static int m_read(void *o, uint64_t gpa, void *b, size_t n)
{
	(void)o;
	if (gpa >= MEM || n > MEM - gpa)
		return -EFAULT;
	memcpy(b, mem + gpa, n);
	return 0;
}

static int m_write(void *o, uint64_t gpa, const void *b, size_t n)
{
	(void)o;
	if (gpa >= MEM || n > MEM - gpa)
		return -EFAULT;
	memcpy(mem + gpa, b, n);
	return 0;
}

static int m_debug(void *o, const struct gdb_debug *d) { (void)o; dbg = *d; return 0; }
static int m_resume(void *o, int s) { (void)o; resumed_step = s; return 0; }
static int m_stop(void *o) { (void)o; return 0; }
static void m_detach(void *o, bool k) { (void)o; (void)k; }

static const struct gdb_target_ops ops = {
	.vcpu_count = m_count, .get_regs = m_get, .set_regs = m_set, .read_phys = m_read,
	.write_phys = m_write, .set_debug = m_debug, .resume = m_resume, .stop = m_stop,
	.detach = m_detach,
};

static struct gdb_stub s;

static const char *cmd(const char *p)
{
	enum gdb_action a = gdb_stub_handle(&s, p, strlen(p));
	return a == GDB_ACT_RESUME ? "<resume>" : s.reply;
}

static int setup(void **state)
{
	(void)state;
	memset(mem, 0x90, sizeof(mem));
	memset(regs, 0, sizeof(regs));	/* no paging: virtual is physical */
	memset(&dbg, 0, sizeof(dbg));
	gdb_stub_init(&s, &ops, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	gdb_stub_free(&s);
	return 0;
}

static void test_int3_hidden_and_kept(void **state)
{
	(void)state;
	assert_string_equal(cmd("Z0,100,1"), "OK");
	assert_int_equal(mem[0x100], 0xcc);
	assert_true(dbg.sw_bp);
	/* gdb reads what it would without its breakpoint. */
	assert_string_equal(cmd("mfe,4"), "90909090");
	/* A write over it changes the saved byte; the int3 stays until removal. */
	assert_string_equal(cmd("Mff,2:1234"), "OK");
	assert_int_equal(mem[0xff], 0x12);
	assert_int_equal(mem[0x100], 0xcc);
	assert_string_equal(cmd("m100,1"), "34");
	assert_string_equal(cmd("z0,100,1"), "OK");
	assert_int_equal(mem[0x100], 0x34);
	assert_false(dbg.sw_bp);
	assert_string_equal(cmd("z0,100,1"), "E02");	/* ENOENT */
	/* Outside memory: an error, nothing written. */
	assert_string_equal(cmd("Z0,20000,1"), "E0e");
	assert_int_equal(s.nr_bps, 0);
}

static void test_debug_registers(void **state)
{
	(void)state;
	assert_string_equal(cmd("Z1,1000,1"), "OK");
	assert_string_equal(cmd("Z2,2000,8"), "OK");
	assert_string_equal(cmd("Z4,3002,2"), "OK");
	assert_string_equal(cmd("Z2,4000,4"), "OK");
	/* DR7 (SDM 18.2.4): G0-G3, then R/W,LEN per slot: 00/00, 01/10, 11/01, 01/11. */
	assert_true(dbg.dr[0] == 0x1000 && dbg.dr[1] == 0x2000 && dbg.dr[2] == 0x3002);
	assert_true(dbg.dr7 == (0xaaull | 0x0ull << 16 | 0x9ull << 20 | 0x7ull << 24 | 0xdull << 28));
	assert_string_equal(cmd("Z1,5000,1"), "E1c");	/* four slots only: ENOSPC */
	assert_string_equal(cmd("Z2,6001,4"), "E16");	/* misaligned */
	assert_string_equal(cmd("Z2,6000,3"), "E16");
	assert_string_equal(cmd("Z3,6000,4"), "");	/* read-only watch: unsupported, as QEMU */
	/* A #DB with B1 set names the write watchpoint in slot 1. */
	struct gdb_stop st = { .reason = GDB_STOP_TRAP, .cpu = 2, .dr6 = 2 };
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "T05watch:2000;thread:03;");
	st.dr6 = 4;
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "T05awatch:3002;thread:03;");
	st.dr6 = 1;	/* the exec breakpoint: a plain trap */
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "T05thread:03;");
	assert_string_equal(cmd("z2,2000,8"), "OK");
	assert_true((dbg.dr7 & 0xc) == 0);
	gdb_stub_reset(&s);
	assert_true(dbg.dr7 == 0);
}

static void test_stops_threads_and_resume(void **state)
{
	(void)state;
	struct gdb_stop st = { .reason = GDB_STOP_INTERRUPT, .cpu = 1 };

	assert_string_equal(cmd("?"), "T05thread:01;");
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "T02thread:02;");
	assert_string_equal(cmd("qC"), "QC02");	/* the stopped vCPU is current */
	st.reason = GDB_STOP_POWEROFF;
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "W00");
	st.reason = GDB_STOP_KILLED;
	gdb_stub_stopped(&s, &st);
	assert_string_equal(s.reply, "X09");
	assert_string_equal(cmd("qfThreadInfo"), "m01,02,03");
	assert_string_equal(cmd("qsThreadInfo"), "l");
	assert_string_equal(cmd("T3"), "OK");
	assert_string_equal(cmd("T4"), "E03");
	assert_string_equal(cmd("Hg3"), "OK");
	regs[2].rip = 0x1234;
	assert_string_equal(cmd("p10"), "3412000000000000");
	assert_string_equal(cmd("Hg9"), "E16");
	assert_string_equal(cmd("vCont;s:2;c"), "<resume>");
	assert_int_equal(resumed_step, 1);
	assert_string_equal(cmd("vCont;c"), "<resume>");
	assert_int_equal(resumed_step, -1);
	assert_string_equal(cmd("s"), "<resume>");
	assert_int_equal(resumed_step, 2);	/* Hc unset: the Hg vCPU */
	assert_string_equal(cmd("Hc1"), "OK");
	assert_string_equal(cmd("c4000"), "<resume>");
	assert_true(regs[0].rip == 0x4000 && resumed_step == -1);
	assert_string_equal(cmd("vCont;s:9"), "E16");
	assert_int_equal(gdb_stub_handle(&s, "k", 1), GDB_ACT_KILL);
}

static void test_registers_and_bad_packets(void **state)
{
	(void)state;
	char g[2 * 608 + 2];

	regs[0].gpr[0] = 0x1122334455667788ull;
	strcpy(g, cmd("g"));
	assert_int_equal(strlen(g), 2 * 608);
	assert_memory_equal(g, "8877665544332211", 16);
	g[0] = 'f';
	g[1] = 'f';
	char G[2 * 608 + 2] = "G";
	strcat(G, g);
	assert_string_equal(cmd(G), "OK");
	assert_true(regs[0].gpr[0] == 0x11223344556677ffull);
	assert_string_equal(cmd("P0=0100000000000000"), "OK");
	assert_true(regs[0].gpr[0] == 1);
	assert_string_equal(cmd("P0=01"), "E16");
	assert_string_equal(cmd("p42"), "");		/* past the last register */
	assert_string_equal(cmd("G0"), "E16");
	assert_string_equal(cmd("m0,zz"), "E16");
	assert_string_equal(cmd("mffff,10"), "90");	/* partial read up to the end of RAM */
	assert_string_equal(cmd("m10000,1"), "E0e");
	assert_string_equal(cmd("X10,2:a"), "E16");	/* length mismatch */
	assert_string_equal(cmd("Xffff,0:"), "OK");	/* gdb's X probe */
	assert_string_equal(cmd("qRcmd,696e666f"), "");	/* no monitor behind this target */
	assert_string_equal(cmd("bogus"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_int3_hidden_and_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stops_threads_and_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registers_and_bad_packets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
