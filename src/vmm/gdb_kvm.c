/* The GDB stub's KVM target; see gdb_kvm.h. */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "gdb/server.h"
#include "util/log.h"
#include "vmm/gdb_kvm.h"

#define MSR_KERNEL_GS_BASE 0xc0000102

struct gdb_kvm {
	struct gdb_server *srv;
	pthread_mutex_t lock;	/* vm: held across every target call */
	struct vm *vm;
	unsigned nr_vcpus;
	struct gdb_debug dbg;
	gdb_kvm_monitor_fn monitor;
	void *monitor_opaque;
};

/* The one stub of this process, for the vCPU threads' debug exits. */
static struct gdb_kvm *_Atomic active;

static struct vm *hold(struct gdb_kvm *kt)
{
	pthread_mutex_lock(&kt->lock);
	if (!kt->vm) {
		pthread_mutex_unlock(&kt->lock);
		return NULL;
	}
	/* Every call but stop() is made with the VM stopped: make sure the vCPUs are parked. */
	atomic_store(&kt->vm->solo_vcpu, -1);
	vm_pause(kt->vm);
	return kt->vm;
}

static void release(struct gdb_kvm *kt)
{
	pthread_mutex_unlock(&kt->lock);
}

static struct vcpu *vcpu_of(struct vm *vm, int cpu)
{
	return cpu >= 0 && (unsigned)cpu < vm->nr_vcpus ? &vm->vcpus[cpu] : NULL;
}

static int kt_count(void *o)
{
	struct gdb_kvm *kt = o;
	return (int)kt->nr_vcpus;
}

/* struct kvm_msrs ends in a flexible array: one entry after its 8-byte header. */
union msr_one {
	struct kvm_msrs h;
	uint8_t raw[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

static int read_kernel_gs_base(int fd, uint64_t *val)
{
	union msr_one m;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.h.entries[0].index = MSR_KERNEL_GS_BASE;
	if (ioctl(fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*val = m.h.entries[0].data;
	return 0;
}

static int write_kernel_gs_base(int fd, uint64_t val)
{
	union msr_one m;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.h.entries[0].index = MSR_KERNEL_GS_BASE;
	m.h.entries[0].data = val;
	return ioctl(fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EIO;
}

static void regs_from_kvm(struct gdb_x86_regs *r, const struct kvm_regs *k,
			  const struct kvm_sregs *s, const struct kvm_fpu *f)
{
	const uint64_t g[16] = { k->rax, k->rbx, k->rcx, k->rdx, k->rsi, k->rdi, k->rbp, k->rsp,
				 k->r8, k->r9, k->r10, k->r11, k->r12, k->r13, k->r14, k->r15 };

	memcpy(r->gpr, g, sizeof(g));
	r->rip = k->rip;
	r->rflags = k->rflags;
	r->seg[0] = s->cs.selector;
	r->seg[1] = s->ss.selector;
	r->seg[2] = s->ds.selector;
	r->seg[3] = s->es.selector;
	r->seg[4] = s->fs.selector;
	r->seg[5] = s->gs.selector;
	r->fs_base = s->fs.base;
	r->gs_base = s->gs.base;
	r->cr0 = s->cr0;
	r->cr2 = s->cr2;
	r->cr3 = s->cr3;
	r->cr4 = s->cr4;
	r->cr8 = s->cr8;
	r->efer = s->efer;
	for (int i = 0; i < 8; i++)
		memcpy(r->st[i], f->fpr[i], 10);
	r->fctrl = f->fcw;
	r->fstat = f->fsw;
	r->ftag = f->ftwx;
	r->fioff = (uint32_t)f->last_ip;
	r->fiseg = (uint32_t)(f->last_ip >> 32);
	r->fooff = (uint32_t)f->last_dp;
	r->foseg = (uint32_t)(f->last_dp >> 32);
	r->fop = f->last_opcode;
	memcpy(r->xmm, f->xmm, sizeof(r->xmm));
	r->mxcsr = f->mxcsr;
}

/* The three register sets gdb sees, read in one place for both directions. */
struct vcpu_state {
	struct kvm_regs k;
	struct kvm_sregs s;
	struct kvm_fpu f;
};

static int read_vcpu_state(int fd, struct vcpu_state *st, struct gdb_x86_regs *r)
{
	if (ioctl(fd, KVM_GET_REGS, &st->k) < 0 || ioctl(fd, KVM_GET_SREGS, &st->s) < 0 ||
	    ioctl(fd, KVM_GET_FPU, &st->f) < 0)
		return -errno;
	memset(r, 0, sizeof(*r));
	regs_from_kvm(r, &st->k, &st->s, &st->f);
	return 0;
}

static int kt_get_regs(void *o, int cpu, struct gdb_x86_regs *r)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	struct vcpu_state st;
	struct vcpu *v;
	int rc;

	if (!vm)
		return -EAGAIN;
	v = vcpu_of(vm, cpu);
	rc = v ? read_vcpu_state(v->fd, &st, r) : -EINVAL;
	if (rc == 0)
		rc = read_kernel_gs_base(v->fd, &r->k_gs_base);
	release(kt);
	return rc;
}

static int set_gprs(int fd, struct kvm_regs *k, const struct gdb_x86_regs *old,
		    const struct gdb_x86_regs *r)
{
	__u64 *g[16] = { &k->rax, &k->rbx, &k->rcx, &k->rdx, &k->rsi, &k->rdi, &k->rbp, &k->rsp,
			 &k->r8, &k->r9, &k->r10, &k->r11, &k->r12, &k->r13, &k->r14, &k->r15 };

	if (!memcmp(old->gpr, r->gpr, sizeof(r->gpr)) && old->rip == r->rip &&
	    old->rflags == r->rflags)
		return 0;
	for (int i = 0; i < 16; i++)
		*g[i] = r->gpr[i];
	k->rip = r->rip;
	/* Bit 1 of RFLAGS is always 1 (SDM 3.4.3). */
	k->rflags = (k->rflags & ~0xffffffffull) | (r->rflags & 0xffffffffull) | 2;
	return ioctl(fd, KVM_SET_REGS, k) < 0 ? -errno : 0;
}

static int set_sregs(int fd, struct kvm_sregs *s, const struct gdb_x86_regs *old,
		     const struct gdb_x86_regs *r)
{
	if (old->fs_base == r->fs_base && old->gs_base == r->gs_base && old->cr0 == r->cr0 &&
	    old->cr2 == r->cr2 && old->cr3 == r->cr3 && old->cr4 == r->cr4 &&
	    old->cr8 == r->cr8 && old->efer == r->efer && !memcmp(old->seg, r->seg, sizeof(r->seg)))
		return 0;
	/* Selectors alone: the hidden descriptor parts stay as the guest loaded them. */
	s->cs.selector = (uint16_t)r->seg[0];
	s->ss.selector = (uint16_t)r->seg[1];
	s->ds.selector = (uint16_t)r->seg[2];
	s->es.selector = (uint16_t)r->seg[3];
	s->fs.selector = (uint16_t)r->seg[4];
	s->gs.selector = (uint16_t)r->seg[5];
	s->fs.base = r->fs_base;
	s->gs.base = r->gs_base;
	s->cr0 = r->cr0;
	s->cr2 = r->cr2;
	s->cr3 = r->cr3;
	s->cr4 = r->cr4;
	s->cr8 = r->cr8;
	s->efer = r->efer;
	return ioctl(fd, KVM_SET_SREGS, s) < 0 ? -errno : 0;
}

static int set_fpu(int fd, struct kvm_fpu *f, const struct gdb_x86_regs *old,
		   const struct gdb_x86_regs *r)
{
	if (!memcmp(old->st, r->st, sizeof(r->st)) && !memcmp(old->xmm, r->xmm, sizeof(r->xmm)) &&
	    old->fctrl == r->fctrl && old->fstat == r->fstat && old->ftag == r->ftag &&
	    old->mxcsr == r->mxcsr && old->fop == r->fop)
		return 0;
	for (int i = 0; i < 8; i++)
		memcpy(f->fpr[i], r->st[i], 10);
	f->fcw = (uint16_t)r->fctrl;
	f->fsw = (uint16_t)r->fstat;
	f->ftwx = (uint8_t)r->ftag;
	f->last_opcode = (uint16_t)r->fop;
	memcpy(f->xmm, r->xmm, sizeof(f->xmm));
	f->mxcsr = r->mxcsr;
	return ioctl(fd, KVM_SET_FPU, f) < 0 ? -errno : 0;
}

/* Only what gdb changed goes back, so a register write never disturbs the rest. */
static int kt_set_regs(void *o, int cpu, const struct gdb_x86_regs *r)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	struct gdb_x86_regs old;
	struct vcpu_state st;
	struct vcpu *v;
	uint64_t kgs = 0;
	int rc;

	if (!vm)
		return -EAGAIN;
	v = vcpu_of(vm, cpu);
	rc = v ? read_vcpu_state(v->fd, &st, &old) : -EINVAL;
	if (rc == 0)
		rc = set_gprs(v->fd, &st.k, &old, r);
	if (rc == 0)
		rc = set_sregs(v->fd, &st.s, &old, r);
	if (rc == 0)
		rc = set_fpu(v->fd, &st.f, &old, r);
	if (rc == 0)
		rc = read_kernel_gs_base(v->fd, &kgs);
	if (rc == 0 && kgs != r->k_gs_base)
		rc = write_kernel_gs_base(v->fd, r->k_gs_base);
	release(kt);
	return rc;
}

/* RAM only: MMIO and holes fail the access (E0e to gdb), as no device is touched by a look. */
static int kt_read_phys(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	void *p;

	if (!vm)
		return -EAGAIN;
	p = memory_ptr(&vm->mem, gpa, len);
	if (p)
		memcpy(buf, p, len);
	release(kt);
	return p ? 0 : -EFAULT;
}

static int kt_write_phys(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	int rc;

	if (!vm)
		return -EAGAIN;
	rc = memory_write(&vm->mem, gpa, buf, len) < 0 ? -EFAULT : 0;
	release(kt);
	return rc;
}

/*
 * KVM_SET_GUEST_DEBUG on every vCPU (Documentation/virt/kvm/api.rst
 * 4.59): int3s trap to us with SW_BP, DR0-3/DR7 are ours with HW_BP, and
 * step_cpu alone gets SINGLESTEP.  DR7 bits 9-10 (GE, reserved 1) as QEMU sets them.
 */
static int apply_debug(struct gdb_kvm *kt, struct vm *vm, int step_cpu)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct kvm_guest_debug d = { 0 };
		if (kt->dbg.sw_bp || kt->dbg.dr7 || (int)i == step_cpu)
			d.control = KVM_GUESTDBG_ENABLE;
		if (kt->dbg.sw_bp)
			d.control |= KVM_GUESTDBG_USE_SW_BP;
		if (kt->dbg.dr7) {
			d.control |= KVM_GUESTDBG_USE_HW_BP;
			for (int n = 0; n < 4; n++)
				d.arch.debugreg[n] = kt->dbg.dr[n];
			d.arch.debugreg[7] = kt->dbg.dr7 | 0x600;
		}
		if ((int)i == step_cpu)
			d.control |= KVM_GUESTDBG_SINGLESTEP;
		if (ioctl(vm->vcpus[i].fd, KVM_SET_GUEST_DEBUG, &d) < 0) {
			int err = errno;
			log_error("gdbstub: KVM_SET_GUEST_DEBUG on vCPU %u: %s", i, strerror(err));
			return -err;
		}
	}
	return 0;
}

static int kt_set_debug(void *o, const struct gdb_debug *dbg)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	int rc;

	kt->dbg = *dbg;
	if (!vm)
		return 0;
	rc = apply_debug(kt, vm, -1);
	release(kt);
	return rc;
}

static int kt_resume(void *o, int step_cpu)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);
	int rc;

	if (!vm)
		return -EAGAIN;
	if (step_cpu >= (int)vm->nr_vcpus) {
		release(kt);
		return -EINVAL;
	}
	rc = apply_debug(kt, vm, step_cpu);
	if (rc == 0 && step_cpu >= 0) {
		/* One vCPU leaves the parking lot; the others stay (QEMU's gdbstub under KVM). */
		pthread_mutex_lock(&vm->pause_lock);
		atomic_store(&vm->solo_vcpu, step_cpu);
		pthread_cond_broadcast(&vm->pause_cond);
		pthread_mutex_unlock(&vm->pause_lock);
	} else if (rc == 0) {
		vm_resume(vm);
	}
	release(kt);
	return rc;
}

static int kt_stop(void *o)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);

	if (vm)
		release(kt);
	return 0;
}

static int kt_monitor(void *o, const char *line, char *out, size_t outlen)
{
	struct gdb_kvm *kt = o;

	return kt->monitor ? kt->monitor(kt->monitor_opaque, line, out, outlen) : -ENOSYS;
}

static void kt_detach(void *o, bool kill)
{
	struct gdb_kvm *kt = o;
	struct vm *vm = hold(kt);

	memset(&kt->dbg, 0, sizeof(kt->dbg));
	if (!vm)
		return;
	(void)apply_debug(kt, vm, -1);
	/* k ends the VM as QEMU does; D and a lost debugger let it run on. */
	if (kill)
		vm_request_stop(vm, VM_STOP_QUIT, 0);
	else
		vm_resume(vm);
	release(kt);
}

static const struct gdb_target_ops kvm_ops = {
	.vcpu_count = kt_count,
	.get_regs = kt_get_regs,
	.set_regs = kt_set_regs,
	.read_phys = kt_read_phys,
	.write_phys = kt_write_phys,
	.set_debug = kt_set_debug,
	.resume = kt_resume,
	.stop = kt_stop,
	.monitor = kt_monitor,
	.detach = kt_detach,
};

struct gdb_kvm *gdb_kvm_open(const char *spec, unsigned nr_vcpus, gdb_kvm_monitor_fn monitor,
			     void *opaque, char *err, size_t errlen)
{
	struct gdb_kvm *kt = calloc(1, sizeof(*kt));

	if (!kt) {
		snprintf(err, errlen, "gdbstub: out of memory");
		return NULL;
	}
	pthread_mutex_init(&kt->lock, NULL);
	kt->nr_vcpus = nr_vcpus ? nr_vcpus : 1;
	kt->monitor = monitor;
	kt->monitor_opaque = opaque;
	kt->srv = gdb_server_open(spec, &kvm_ops, kt, err, errlen);
	if (!kt->srv || gdb_server_start(kt->srv) < 0) {
		if (kt->srv)
			snprintf(err, errlen, "gdbstub: cannot start its thread");
		gdb_server_close(kt->srv);
		free(kt);
		return NULL;
	}
	atomic_store(&active, kt);
	return kt;
}

void gdb_kvm_close(struct gdb_kvm *kt)
{
	if (!kt)
		return;
	atomic_store(&active, NULL);
	gdb_server_close(kt->srv);
	pthread_mutex_destroy(&kt->lock);
	free(kt);
}

void gdb_kvm_set_vm(struct gdb_kvm *kt, struct vm *vm, enum vm_stop stop)
{
	if (!kt)
		return;
	pthread_mutex_lock(&kt->lock);
	kt->vm = vm;
	if (vm) {
		kt->nr_vcpus = vm->nr_vcpus;
		/* A rebuilt VM's vCPUs get the debugger's breakpoints again. */
		if (kt->dbg.sw_bp || kt->dbg.dr7)
			(void)apply_debug(kt, vm, -1);
	}
	pthread_mutex_unlock(&kt->lock);
	if (!vm && (stop == VM_STOP_POWEROFF || stop == VM_STOP_QUIT || stop == VM_STOP_EXIT)) {
		struct gdb_stop st = { .reason = stop == VM_STOP_QUIT ? GDB_STOP_KILLED
								      : GDB_STOP_POWEROFF };
		gdb_server_notify_stop(kt->srv, &st);
	}
}

static void reinject_bp(struct vcpu *vcpu)
{
	struct kvm_vcpu_events ev;

	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0) {
		log_error("gdbstub: vCPU %u: KVM_GET_VCPU_EVENTS: %s", vcpu->index, strerror(errno));
		return;
	}
	ev.flags = 0;	/* only the exception: NMI, SIPI and shadow state as they are */
	ev.exception.injected = 1;
	ev.exception.nr = 3;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	if (ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		log_error("gdbstub: vCPU %u: KVM_SET_VCPU_EVENTS: %s", vcpu->index, strerror(errno));
}

void gdb_kvm_debug_exit(struct vcpu *vcpu)
{
	struct gdb_kvm *kt = atomic_load(&active);
	struct kvm_run *run = vcpu->run;
	struct gdb_stop st = { .reason = GDB_STOP_TRAP, .cpu = (int)vcpu->index };

	if (!kt)
		return;
	/* #DB (vector 1) carries DR6: which DRn hit, or BS for a step; #BP (3) is an int3. */
	if (run->debug.arch.exception == 1)
		st.dr6 = run->debug.arch.dr6;
	if (run->debug.arch.exception == 3 && !gdb_server_has_sw_bp(kt->srv, run->debug.arch.pc)) {
		/* The guest's own int3 (Linux patches text with them): its #BP, as QEMU re-injects. */
		reinject_bp(vcpu);
		return;
	}
	atomic_store(&vcpu->vm->solo_vcpu, -1);
	vm_pause_async(vcpu->vm);
	gdb_server_notify_stop(kt->srv, &st);
}

bool gdb_kvm_holds_vm(const struct gdb_kvm *kt)
{
	return kt && gdb_server_holds_vm(kt->srv);
}

const char *gdb_kvm_address(const struct gdb_kvm *kt)
{
	return gdb_server_address(kt->srv);
}
