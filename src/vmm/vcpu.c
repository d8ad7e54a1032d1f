#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/boot/layout.h"
#include "vmm/cpu_model.h"
#include "vmm/gdb_kvm.h"
#include "vmm/vm.h"

#define CPUID_HYPERVISOR (1u << 31)	/* CPUID.1:ECX, "running under a hypervisor" */
#define X86_CR0_PE 0x1
#define X86_CR0_ET 0x10
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x400
#define APIC_MODE_EXTINT 0x700

/*
 * "-cpu host": what KVM supports, with this vCPU's APIC ID and the hypervisor
 * bit.  Must be set before the guest enables long mode (PVM refuses EFER.LME
 * otherwise, and real hardware wants it before the first CPUID anyway).
 */
static int vcpu_set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *host = vcpu->vm->host->cpuid;
	size_t size = sizeof(*host) + host->nent * sizeof(host->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int rc;

	if (!c)
		return -1;
	memcpy(c, host, size);
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (vcpu->index << 24) | (1u << 16);
			e->ecx |= CPUID_HYPERVISOR;
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu->index;	/* x2APIC ID */
			break;
		default:
			break;
		}
	}
	cpu_model_apply(&vcpu->vm->cfg->cpu, c);
	rc = ioctl(vcpu->fd, KVM_SET_CPUID2, c);
	if (rc < 0)
		log_error("vCPU %u: KVM_SET_CPUID2: %s", vcpu->index, strerror(errno));
	free(c);
	return rc;
}

/* What firmware leaves behind: the local APIC in virtual-wire mode (8259 via LINT0). */
static int vcpu_set_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t lvt;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -1;
	memcpy(&lvt, lapic.regs + APIC_LVT0, 4);
	lvt = (lvt & ~0x700u) | APIC_MODE_EXTINT;
	memcpy(lapic.regs + APIC_LVT0, &lvt, 4);
	memcpy(&lvt, lapic.regs + APIC_LVT1, 4);
	lvt = (lvt & ~0x700u) | APIC_MODE_NMI;
	memcpy(lapic.regs + APIC_LVT1, &lvt, 4);
	return ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic);
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned index)
{
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		log_error("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return -1;
	}
	vcpu->run = mmap(NULL, (size_t)vm->host->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		log_error("vCPU %u: cannot map kvm_run: %s", index, strerror(errno));
		return -1;
	}
	if (vcpu_set_cpuid(vcpu) < 0)
		return -1;
	if (vcpu_set_lapic(vcpu) < 0) {
		log_error("vCPU %u: cannot set up the local APIC: %s", index, strerror(errno));
		return -1;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->host->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void flat_segment(struct kvm_segment *seg, uint16_t selector, uint8_t type)
{
	*seg = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

static int state_failed(struct vcpu *vcpu, const char *what)
{
	log_error("vCPU %u: cannot set the %s register state: %s", vcpu->index, what,
		  strerror(errno));
	return -1;
}

static int get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs, const char *what)
{
	return ioctl(vcpu->fd, KVM_GET_SREGS, sregs) < 0 ? state_failed(vcpu, what) : 0;
}

/* Loads sregs, regs and a reset FPU (FNINIT values) into the vCPU; what names the state. */
static int set_state(struct vcpu *vcpu, struct kvm_sregs *sregs, struct kvm_regs *regs,
		     const char *what)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	if (ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return state_failed(vcpu, what);
	return 0;
}

int vcpu_set_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t ebx, uint32_t esi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 0x2, .rip = entry, .rbx = ebx, .rsi = esi };

	if (get_sregs(vcpu, &sregs, "boot") < 0)
		return -1;
	/* Flat 32-bit protected mode, paging off: both boot protocols start here. */
	flat_segment(&sregs.cs, BOOT_CS_SELECTOR, 0xb);	/* execute/read, accessed */
	flat_segment(&sregs.ds, BOOT_DS_SELECTOR, 0x3);	/* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	return set_state(vcpu, &sregs, &regs, "boot");
}

static void real_segment(struct kvm_segment *seg, uint16_t selector, uint8_t type)
{
	*seg = (struct kvm_segment){
		.base = (uint64_t)selector << 4, .limit = 0xffff, .selector = selector,
		.type = type, .present = 1, .s = 1,
	};
}

int vcpu_set_reset_state(struct vcpu *vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 0x2, .rip = 0xfff0 };

	if (get_sregs(vcpu, &sregs, "reset") < 0)
		return -1;
	/* Intel SDM vol. 3 §9.1.4: the first instruction is fetched from 0xfffffff0. */
	real_segment(&sregs.cs, 0xf000, 0xb);
	sregs.cs.base = 0xffff0000;
	real_segment(&sregs.ds, 0, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = sregs.idt.base = 0;
	sregs.gdt.limit = sregs.idt.limit = 0xffff;
	sregs.cr0 = 0x60000010;	/* CD, NW, ET */
	sregs.cr2 = sregs.cr3 = sregs.cr4 = 0;
	sregs.efer = 0;
	return set_state(vcpu, &sregs, &regs, "reset");
}

void vcpu_dump_registers(struct vcpu *vcpu, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: cannot read registers: %s", vcpu->index, strerror(errno));
		return;
	}
	/* QEMU's "info registers" layout, which people already know how to read. */
	fprintf(out,
		"CPU#%u\n"
		"RAX=%016" PRIx64 " RBX=%016" PRIx64 " RCX=%016" PRIx64 " RDX=%016" PRIx64 "\n"
		"RSI=%016" PRIx64 " RDI=%016" PRIx64 " RBP=%016" PRIx64 " RSP=%016" PRIx64 "\n"
		"R8 =%016" PRIx64 " R9 =%016" PRIx64 " R10=%016" PRIx64 " R11=%016" PRIx64 "\n"
		"R12=%016" PRIx64 " R13=%016" PRIx64 " R14=%016" PRIx64 " R15=%016" PRIx64 "\n"
		"RIP=%016" PRIx64 " RFL=%08" PRIx64 " CPL=%u\n"
		"CS =%04x %016" PRIx64 " %08x\n"
		"SS =%04x %016" PRIx64 " %08x\n"
		"GDT=     %016" PRIx64 " %08x\n"
		"IDT=     %016" PRIx64 " %08x\n"
		"CR0=%08" PRIx64 " CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08" PRIx64 "\n"
		"EFER=%016" PRIx64 "\n",
		vcpu->index, (uint64_t)r.rax, (uint64_t)r.rbx, (uint64_t)r.rcx, (uint64_t)r.rdx,
		(uint64_t)r.rsi, (uint64_t)r.rdi, (uint64_t)r.rbp, (uint64_t)r.rsp,
		(uint64_t)r.r8, (uint64_t)r.r9, (uint64_t)r.r10, (uint64_t)r.r11,
		(uint64_t)r.r12, (uint64_t)r.r13, (uint64_t)r.r14, (uint64_t)r.r15,
		(uint64_t)r.rip, (uint64_t)r.rflags, s.cs.dpl,
		s.cs.selector, (uint64_t)s.cs.base, s.cs.limit,
		s.ss.selector, (uint64_t)s.ss.base, s.ss.limit,
		(uint64_t)s.gdt.base, s.gdt.limit, (uint64_t)s.idt.base, s.idt.limit,
		(uint64_t)s.cr0, (uint64_t)s.cr2, (uint64_t)s.cr3, (uint64_t)s.cr4, (uint64_t)s.efer);
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* String instructions (rep outsb) arrive as count accesses back to back. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (!bus_dispatch(&vcpu->vm->pio, run->io.port, is_write, data, run->io.size))
			log_debug("unhandled port %s 0x%x (size %u)", is_write ? "write" : "read",
				  run->io.port, run->io.size);
	}
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (!bus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.is_write,
			  run->mmio.data, run->mmio.len))
		log_debug("unhandled MMIO %s 0x%llx (size %u)", run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr, run->mmio.len);
}

/*
 * KVM cannot run this vCPU on (QEMU 7.2 kvm_cpu_exec, ret < 0): the register
 * dump, then the VM pauses in the "internal-error" run state with the
 * monitors up, so the user can inspect it (info registers, xp) and reset or
 * quit.  The lines before the dump are QEMU's, which people search for.
 */
static void vcpu_fail(struct vcpu *vcpu)
{
	vcpu_dump_registers(vcpu, stderr);
	vm_internal_error(vcpu->vm);
}

/*
 * kvm_handle_internal_error: the suberror and its data; an emulation failure
 * in user mode only dumps and goes on (kvm_arch_stop_on_emulation_error: KVM
 * has already queued #UD for the guest there), anywhere else stops.
 * Returns whether the vCPU may run on.
 */
static bool vcpu_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s;

	fprintf(stderr, "KVM internal error. Suberror: %u\n", run->internal.suberror);
	for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
		fprintf(stderr, "extra data[%u]: 0x%016" PRIx64 "\n", i,
			(uint64_t)run->internal.data[i]);
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		fprintf(stderr, "emulation failure\n");
		if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) == 0 && (s.cr0 & X86_CR0_PE) &&
		    (s.cs.selector & 3) == 3) {
			vcpu_dump_registers(vcpu, stderr);
			return true;
		}
	}
	vcpu_fail(vcpu);
	return true;	/* it parks: vm_internal_error paused the VM */
}

/* Handles one exit; returns false when this vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	vcpu->exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return true;
	case KVM_EXIT_SHUTDOWN:
		/*
		 * A triple fault resets a PC, and QEMU (kvm_cpu_exec) does just
		 * that: a guest reset, or with -no-reboot a shutdown.
		 */
		log_debug("vCPU %u: triple fault (KVM_EXIT_SHUTDOWN): resetting", vcpu->index);
		if (log_verbose())
			vcpu_dump_registers(vcpu, stderr);
		vm_request_stop(vcpu->vm, VM_STOP_RESET, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, 0);
		} else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			vm_request_stop(vcpu->vm, VM_STOP_RESET, 0);
		} else {
			fprintf(stderr, "KVM: system event %u\n", run->system_event.type);
			vcpu_fail(vcpu);
		}
		return true;
	case KVM_EXIT_FAIL_ENTRY:
		/* target/i386/kvm/kvm.c kvm_arch_handle_exit's wording. */
		fprintf(stderr, "KVM: entry failed, hardware error 0x%llx\n",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(vcpu);
		return true;
	case KVM_EXIT_INTERNAL_ERROR:
		return vcpu_internal_error(vcpu);
	case KVM_EXIT_DEBUG:
		gdb_kvm_debug_exit(vcpu);	/* a gdb breakpoint, watchpoint or step */
		return true;
	default:
		fprintf(stderr, "KVM: unknown exit reason %u\n", run->exit_reason);
		vcpu_fail(vcpu);
		return true;
	}
}

void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;

	atomic_store(&vcpu->tid, (long)gettid());
	while (vcpu_wait_runnable(vcpu)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "error: kvm run failed %s\n", strerror(errno));
			vcpu_fail(vcpu);
			continue;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	return NULL;
}
