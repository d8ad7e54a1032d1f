/*
 * The GDB stub on arbitrary client bytes: the framing state machine
 * (gdb/packet.c), then each whole packet through the command handler
 * (gdb/stub.c) over a mock target with 4-level page tables in 64 KiB of
 * "guest memory".  Checked: every reply frames and parses back to itself,
 * and the stub's breakpoint table never exceeds its bound.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gdb/packet.h"
#include "gdb/stub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

#define MEM (64u << 10)
static uint8_t mem[MEM];
static struct gdb_x86_regs regs[2];
static struct gdb_debug dbg;

static int m_count(void *o) { (void)o; return 2; }

static int m_get(void *o, int cpu, struct gdb_x86_regs *r)
{
	(void)o;
	if (cpu < 0 || cpu > 1)
		abort();	/* the stub must only name vCPUs that exist */
	*r = regs[cpu];
	return 0;
}

static int m_set(void *o, int cpu, const struct gdb_x86_regs *r)
{
	(void)o;
	if (cpu < 0 || cpu > 1)
		abort();
	regs[cpu] = *r;
	return 0;
}

static int m_read(void *o, uint64_t gpa, void *buf, size_t n)
{
	(void)o;
	if (gpa >= MEM || n > MEM - gpa)
		return -EFAULT;
	memcpy(buf, mem + gpa, n);
	return 0;
}

static int m_write(void *o, uint64_t gpa, const void *buf, size_t n)
{
	(void)o;
	if (gpa >= MEM || n > MEM - gpa)
		return -EFAULT;
	memcpy(mem + gpa, buf, n);
	return 0;
}

static int m_debug(void *o, const struct gdb_debug *d) { (void)o; dbg = *d; return 0; }
static int m_resume(void *o, int step) { (void)o; return step > 1 ? (abort(), 0) : 0; }
static int m_stop(void *o) { (void)o; return 0; }

static int m_monitor(void *o, const char *line, char *out, size_t outlen)
{
	(void)o;
	strncpy(out, line, outlen - 1);
	out[outlen - 1] = 0;
	return 0;
}

static void m_detach(void *o, bool kill) { (void)o; (void)kill; }

static const struct gdb_target_ops ops = {
	m_count, m_get, m_set, m_read, m_write, m_debug, m_resume, m_stop, m_monitor, m_detach,
};

static void setup(void)
{
	uint64_t e;

	memset(mem, 0, sizeof(mem));
	memset(regs, 0, sizeof(regs));
	/* PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 -> 4K pages at 0x8000.. */
	e = 0x2000 | 3; memcpy(mem + 0x1000, &e, 8);
	e = 0x3000 | 3; memcpy(mem + 0x2000, &e, 8);
	e = 0x4000 | 3; memcpy(mem + 0x3000, &e, 8);
	e = 0x0 | 0x83; memcpy(mem + 0x3008, &e, 8);		/* 2M page at PA 0 */
	for (uint64_t i = 0; i < 8; i++) {
		e = (0x8000 + i * 0x1000) | 3;
		memcpy(mem + 0x4000 + i * 8, &e, 8);
	}
	regs[0].cr0 = 0x80000001;
	regs[0].cr3 = 0x1000;
	regs[0].cr4 = 0x20;
	regs[0].efer = 0x500;
	regs[1] = regs[0];
	regs[1].cr0 = 1;	/* vCPU 1 without paging */
}

static void check_reply(const struct gdb_stub *s)
{
	static char framed[2 * GDB_PACKET_MAX + 8];
	struct gdb_rx rx;
	enum gdb_rx_event ev = GDB_RX_NONE;
	int n = gdb_frame(s->reply, s->reply_len, framed, sizeof(framed));

	if (n < 0 || s->reply_len > GDB_PACKET_MAX)
		abort();
	gdb_rx_init(&rx);
	for (int i = 0; i < n; i++)
		ev = gdb_rx_feed(&rx, (uint8_t)framed[i]);
	if (ev != GDB_RX_PACKET || rx.len != s->reply_len || memcmp(rx.buf, s->reply, rx.len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct gdb_rx rx;
	static struct gdb_stub s;

	setup();
	gdb_rx_init(&rx);
	gdb_stub_init(&s, &ops, NULL);
	for (size_t i = 0; i < len; i++) {
		/* The checksum is not what the fuzzer should spend its time on: any is accepted. */
		enum gdb_rx_event ev = gdb_rx_feed(&rx, data[i]);
		if (ev != GDB_RX_PACKET && ev != GDB_RX_BAD_CSUM)
			continue;
		enum gdb_action act = gdb_stub_handle(&s, (const char *)rx.buf, rx.len);
		if (act == GDB_ACT_REPLY || act == GDB_ACT_DETACH)
			check_reply(&s);
		if (s.nr_bps > GDB_MAX_SW_BP)
			abort();
		if (act == GDB_ACT_DETACH || act == GDB_ACT_KILL)
			gdb_stub_reset(&s);
	}
	gdb_stub_reset(&s);
	gdb_stub_free(&s);
	return 0;
}
