/*
 * A GDB stub over a synthetic machine, for tests/system/test_gdb.py: real
 * gdb talks to the real stub (src/gdb) with everything but KVM in place.
 *
 * Guest physical memory is an 8 MiB buffer with 4-level page tables:
 *   VA 0x0-0x1fffff          4K pages -> PA 0x100000 + VA (text, data)
 *   VA 0x200000-0x3fffff     one 2M page -> PA 0x400000
 *   VA 0x40000000-0x7fffffff one 1G page -> PA 0 (only the first 8 MiB backed)
 *   VA 0xffffffff80000000    one 4K page -> PA 0x500000 (a "kernel" string)
 * Each vCPU "executes" one byte per instruction.  Continuing runs until an
 * int3 byte in memory (a patched breakpoint), an exec debug register, a
 * write watchpoint (the fake performs the write), PC 0x30000 (power-off),
 * or Ctrl-C.  Every call the stub makes is logged to LOG, one per line.
 *
 * Usage: fake_gdb_target SPEC LOG [NCPUS]; prints "port N" when listening.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb/pagewalk.h"
#include "gdb/server.h"

#define MEM_SIZE (8u << 20)
#define MAX_CPUS 8
#define TEXT 0x10000ull
#define POWEROFF_PC 0x30000ull

struct fake {
	uint8_t *mem;
	int ncpus;
	struct gdb_x86_regs regs[MAX_CPUS];
	struct gdb_debug dbg;
	struct gdb_server *srv;
	FILE *log;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	bool running;
};

static void logf_(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void logf_(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f->log, fmt, ap);
	va_end(ap);
	fputc('\n', f->log);
	fflush(f->log);
}

static int fake_count(void *o)
{
	return ((struct fake *)o)->ncpus;
}

static int fake_get_regs(void *o, int cpu, struct gdb_x86_regs *r)
{
	struct fake *f = o;

	if (cpu < 0 || cpu >= f->ncpus)
		return -EINVAL;
	*r = f->regs[cpu];
	return 0;
}

static int fake_set_regs(void *o, int cpu, const struct gdb_x86_regs *r)
{
	struct fake *f = o;

	if (cpu < 0 || cpu >= f->ncpus)
		return -EINVAL;
	if (memcmp(&f->regs[cpu], r, sizeof(*r)) != 0)
		logf_(f, "set_regs cpu=%d rip=%#" PRIx64 " rax=%#" PRIx64, cpu, r->rip, r->gpr[0]);
	f->regs[cpu] = *r;
	return 0;
}

static int fake_read_phys(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct fake *f = o;

	/* Past the backed memory reads fail, as unbacked guest addresses do. */
	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, f->mem + gpa, len);
	return 0;
}

static int fake_write_phys(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct fake *f = o;
	char hex[40] = "";

	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -EFAULT;
	memcpy(f->mem + gpa, buf, len);
	for (size_t i = 0; i < len && i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)buf)[i]);
	logf_(f, "write_phys %#" PRIx64 " %s", gpa, hex);
	return 0;
}

static int fake_set_debug(void *o, const struct gdb_debug *d)
{
	struct fake *f = o;

	f->dbg = *d;
	logf_(f, "set_debug sw_bp=%d dr7=%#" PRIx64 " dr0=%#" PRIx64 " dr1=%#" PRIx64, d->sw_bp,
	      d->dr7, d->dr[0], d->dr[1]);
	return 0;
}

static int virt_byte(struct fake *f, int cpu, uint64_t va, uint8_t *b, uint64_t *pa)
{
	struct gdb_paging pg = { f->regs[cpu].cr0, f->regs[cpu].cr3, f->regs[cpu].cr4,
				 f->regs[cpu].efer };
	uint64_t left;
	int rc = gdb_translate(&pg, va, fake_read_phys, f, pa, &left);

	return rc < 0 ? rc : fake_read_phys(f, *pa, b, 1);
}

/* The debug register whose enabled exec (rw 00) or write (rw 01/11) slot matches. */
static int dr_match(struct fake *f, bool exec, uint64_t addr)
{
	for (int i = 0; i < 4; i++) {
		unsigned rw = (unsigned)(f->dbg.dr7 >> (16 + 4 * i)) & 3;
		if (!(f->dbg.dr7 & (3ull << (2 * i))))
			continue;
		if (exec && rw == 0 && f->dbg.dr[i] == addr)
			return i;
		if (!exec && rw != 0 && (addr == UINT64_MAX || f->dbg.dr[i] == addr))
			return i;
	}
	return -1;
}

static void run(struct fake *f, int cpu)
{
	struct gdb_x86_regs *r = &f->regs[cpu];
	struct gdb_stop st = { .reason = GDB_STOP_TRAP, .cpu = cpu };
	uint64_t pa;
	uint8_t b;
	int i;

	for (uint64_t n = 0; n < 0x10000; n++) {
		uint64_t pc = r->rip + n;
		i = dr_match(f, true, pc);
		if (n && i >= 0) {
			r->rip = pc;
			st.dr6 = 1u << i;
			gdb_server_notify_stop(f->srv, &st);
			return;
		}
		if (virt_byte(f, cpu, pc, &b, &pa) < 0)
			break;
		if (b == 0xcc && f->dbg.sw_bp) {
			/* KVM's #BP exit (SW_BP): RIP still at the int3. */
			r->rip = pc;
			gdb_server_notify_stop(f->srv, &st);
			return;
		}
	}
	i = dr_match(f, false, UINT64_MAX);
	if (i >= 0) {
		/* The "program" stores to the watched variable: a #DB after the write. */
		uint64_t va = f->dbg.dr[i];
		if (virt_byte(f, cpu, va, &b, &pa) == 0) {
			f->mem[pa]++;
			logf_(f, "guest_write %#" PRIx64 " %02x", va, f->mem[pa]);
		}
		r->rip += 3;
		st.dr6 = 1u << i;
		gdb_server_notify_stop(f->srv, &st);
		return;
	}
	/* Nothing to hit: it runs until gdb's Ctrl-C. */
	f->running = true;
}

static int fake_resume(void *o, int step_cpu)
{
	struct fake *f = o;

	logf_(f, "resume step=%d", step_cpu);
	if (step_cpu >= 0) {
		if (step_cpu >= f->ncpus)
			return -EINVAL;
		f->regs[step_cpu].rip++;
		struct gdb_stop st = { .reason = GDB_STOP_TRAP, .cpu = step_cpu, .dr6 = 1u << 14 };
		gdb_server_notify_stop(f->srv, &st);
		return 0;
	}
	/* A vCPU gdb sent to the power-off address powers the machine off. */
	for (int c = 0; c < f->ncpus; c++) {
		if (f->regs[c].rip == POWEROFF_PC) {
			struct gdb_stop st = { .reason = GDB_STOP_POWEROFF, .cpu = c };
			gdb_server_notify_stop(f->srv, &st);
			return 0;
		}
	}
	/* The last vCPU runs into the breakpoints, so a stop names a thread other than 1. */
	run(f, f->ncpus - 1);
	return 0;
}

static int fake_stop(void *o)
{
	struct fake *f = o;

	logf_(f, "stop running=%d", f->running);
	f->running = false;
	return 0;
}

static int fake_monitor(void *o, const char *line, char *out, size_t outlen)
{
	struct fake *f = o;

	logf_(f, "monitor %s", line);
	if (strcmp(line, "info registers") == 0) {
		snprintf(out, outlen, "RAX=%016" PRIx64 " RIP=%016" PRIx64 " CR3=%016" PRIx64 "\n",
			 f->regs[0].gpr[0], f->regs[0].rip, f->regs[0].cr3);
		return 0;
	}
	snprintf(out, outlen, "unknown command: '%s'\n", line);
	return 0;
}

static void fake_detach(void *o, bool kill)
{
	struct fake *f = o;

	logf_(f, "detach kill=%d", kill);
	pthread_mutex_lock(&f->lock);
	f->done = true;
	pthread_cond_signal(&f->done_cond);
	pthread_mutex_unlock(&f->lock);
}

static const struct gdb_target_ops fake_ops = {
	.vcpu_count = fake_count,
	.get_regs = fake_get_regs,
	.set_regs = fake_set_regs,
	.read_phys = fake_read_phys,
	.write_phys = fake_write_phys,
	.set_debug = fake_set_debug,
	.resume = fake_resume,
	.stop = fake_stop,
	.monitor = fake_monitor,
	.detach = fake_detach,
};

static void put64(uint8_t *mem, uint64_t pa, uint64_t v)
{
	memcpy(mem + pa, &v, 8);
}

static void build_memory(struct fake *f)
{
	uint8_t *m = f->mem;

	put64(m, 0x1000 + 0 * 8, 0x2000 | 3);		/* PML4[0] */
	put64(m, 0x1000 + 511 * 8, 0x5000 | 3);		/* PML4[511] */
	put64(m, 0x2000 + 0 * 8, 0x3000 | 3);		/* PDPT[0] */
	put64(m, 0x2000 + 1 * 8, 0x0 | 0x83);		/* PDPT[1]: 1G page at PA 0 */
	put64(m, 0x3000 + 0 * 8, 0x4000 | 3);		/* PD[0] -> PT */
	put64(m, 0x3000 + 1 * 8, 0x400000 | 0x83);	/* PD[1]: 2M page at PA 0x400000 */
	for (uint64_t i = 0; i < 512; i++)
		put64(m, 0x4000 + i * 8, (0x100000 + i * 0x1000) | 3);
	put64(m, 0x5000 + 510 * 8, 0x6000 | 3);
	put64(m, 0x6000 + 0 * 8, 0x7000 | 3);
	put64(m, 0x7000 + 0 * 8, 0x500000 | 3);
	memset(m + 0x100000 + TEXT, 0x90, 0x10000);	/* nops */
	for (int i = 0; i < 8; i++) {
		m[0x100000 + 0x1000 + i] = (uint8_t)(0x11 * (i + 1));	/* 4K page */
		m[0x400000 + 0x123 + i] = (uint8_t)(0xa0 + i);		/* 2M page */
		m[0x600000 + i] = (uint8_t)(0xb0 + i);			/* 1G page */
	}
	memcpy(m + 0x500000, "kernel", 7);
}

static void build_regs(struct fake *f)
{
	for (int c = 0; c < f->ncpus; c++) {
		struct gdb_x86_regs *r = &f->regs[c];
		memset(r, 0, sizeof(*r));
		for (int i = 0; i < 16; i++)
			r->gpr[i] = 0x1000ull * (uint64_t)(c + 1) + (uint64_t)i;
		r->rip = TEXT + 0x100 * (uint64_t)c;
		r->rflags = 0x202;
		r->seg[0] = 0x10;
		r->seg[1] = 0x18;
		r->fs_base = 0x7f0000001000ull;
		r->gs_base = 0xffff888000000000ull;
		r->k_gs_base = 0x1234;
		r->cr0 = 0x80050033;
		r->cr3 = 0x1000;
		r->cr4 = 0x20;		/* PAE */
		r->efer = 0x500;	/* LME | LMA */
		r->fctrl = 0x37f;
		r->mxcsr = 0x1f80;
	}
}

int main(int argc, char **argv)
{
	struct fake f = { .ncpus = 2 };
	char err[256];

	if (argc < 3) {
		fprintf(stderr, "usage: %s SPEC LOG [NCPUS]\n", argv[0]);
		return 2;
	}
	if (argc > 3)
		f.ncpus = atoi(argv[3]);
	if (f.ncpus < 1 || f.ncpus > MAX_CPUS) {
		fprintf(stderr, "bad vCPU count\n");
		return 2;
	}
	f.mem = calloc(1, MEM_SIZE);
	f.log = fopen(argv[2], "w");
	if (!f.mem || !f.log) {
		perror("fake_gdb_target");
		return 1;
	}
	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.done_cond, NULL);
	build_memory(&f);
	build_regs(&f);
	f.srv = gdb_server_open(argv[1], &fake_ops, &f, err, sizeof(err));
	if (!f.srv) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (gdb_server_start(f.srv) < 0) {
		fprintf(stderr, "cannot start the server thread\n");
		return 1;
	}
	printf("port %d\n", gdb_server_port(f.srv));
	fflush(stdout);
	pthread_mutex_lock(&f.lock);
	while (!f.done)
		pthread_cond_wait(&f.done_cond, &f.lock);
	pthread_mutex_unlock(&f.lock);
	gdb_server_close(f.srv);
	logf_(&f, "exit");
	fclose(f.log);
	free(f.mem);
	return 0;
}
