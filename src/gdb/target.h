/*
 * What the GDB stub needs from the machine it debugs: registers, physical
 * memory, debug controls and run control.  The stub knows nothing of KVM;
 * the VMM implements this over its vCPU ioctls (vmm/gdb_kvm.c) and the
 * tests over synthetic registers and memory (tests/gdb/fake_target.c).
 */
#ifndef KESTREL_GDB_TARGET_H
#define KESTREL_GDB_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One x86-64 vCPU as gdb sees it: QEMU's i386-64bit register set. */
struct gdb_x86_regs {
	uint64_t gpr[16];	/* rax rbx rcx rdx rsi rdi rbp rsp r8..r15 (gdb's order) */
	uint64_t rip;
	uint64_t rflags;
	uint32_t seg[6];	/* cs ss ds es fs gs selectors */
	uint64_t fs_base, gs_base, k_gs_base;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint8_t st[8][10];	/* x87 registers, 80-bit, in FXSAVE's order (st0 first) */
	uint32_t fctrl, fstat, ftag, fiseg, fioff, foseg, fooff, fop;
	uint8_t xmm[16][16];
	uint32_t mxcsr;
};

/* Debug register model: DR0-3 addresses and DR7 as the SDM (vol. 3, 18.2.4) lays it out. */
struct gdb_debug {
	bool sw_bp;		/* int3 traps to the debugger, not the guest */
	uint64_t dr[4];
	uint64_t dr7;
};

/* Why a vCPU stopped, as the stub reports it (GDB RSP "Stop Reply Packets"). */
enum gdb_stop_reason {
	GDB_STOP_TRAP,		/* breakpoint, watchpoint or single-step: SIGTRAP */
	GDB_STOP_INTERRUPT,	/* the debugger asked (Ctrl-C): SIGINT */
	GDB_STOP_POWEROFF,	/* the guest powered off: W00 */
	GDB_STOP_KILLED,	/* the VM was ended from elsewhere: X09 */
};

struct gdb_stop {
	enum gdb_stop_reason reason;
	int cpu;		/* the vCPU that stopped (0-based) */
	uint64_t dr6;		/* GDB_STOP_TRAP: DR6 as the #DB left it (B0-B3: which DRn hit) */
};

/*
 * Every call but stop() is made with all vCPUs stopped.  All return 0 or a
 * negative errno.  resume() starts every vCPU (step_cpu < 0) or single-steps
 * one (step_cpu >= 0, the others stay stopped, as QEMU's gdbstub does); when
 * they stop again the target calls gdb_server_notify_stop().
 */
struct gdb_target_ops {
	int (*vcpu_count)(void *opaque);
	int (*get_regs)(void *opaque, int cpu, struct gdb_x86_regs *regs);
	int (*set_regs)(void *opaque, int cpu, const struct gdb_x86_regs *regs);
	int (*read_phys)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*write_phys)(void *opaque, uint64_t gpa, const void *buf, size_t len);
	int (*set_debug)(void *opaque, const struct gdb_debug *dbg);
	int (*resume)(void *opaque, int step_cpu);
	int (*stop)(void *opaque);	/* asynchronous: may be called while running */
	/* qRcmd: one monitor (HMP) line; writes its output, NUL-terminated. */
	int (*monitor)(void *opaque, const char *line, char *out, size_t outlen);
	/* D/k: the debugger left; the VM keeps running (D) or ends (k). */
	void (*detach)(void *opaque, bool kill);
};

#endif
