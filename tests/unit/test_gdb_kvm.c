/*
 * vmm/gdb_kvm.c without /dev/kvm: a struct vm with two vCPUs whose fds are
 * fake, ioctl wrapped (-Wl,--wrap=ioctl) to answer KVM_GET_* and record
 * KVM_SET_*, and a real TCP client speaking the protocol to the real stub.
 * Checked: registers from REGS/SREGS/FPU/MSRS, KVM_SET_GUEST_DEBUG flags and
 * debug registers for Z0/Z1/steps, one vCPU let out for a step, a
 * KVM_EXIT_DEBUG turned into a stop reply, the guest's own int3 re-injected,
 * and detach clearing guest debug and resuming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/kvm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/gdb_kvm.h"

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

#define FD0 1000
static struct kvm_guest_debug last_debug[2];
static unsigned debug_calls;
static struct kvm_regs set_regs;
static unsigned set_regs_calls;
static struct kvm_vcpu_events events;
static unsigned events_set;

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != FD0 && fd != FD0 + 1)
		return __real_ioctl(fd, req, arg);
	int cpu = fd - FD0;
	if (req == KVM_GET_REGS) {
		struct kvm_regs *r = arg;
		memset(r, 0, sizeof(*r));
		r->rax = 0x1111 + (unsigned)cpu;
		r->rip = 0xffffffff81000000ull + (unsigned)cpu;
		r->rflags = 0x246;
		return 0;
	}
	if (req == KVM_GET_SREGS) {
		struct kvm_sregs *s = arg;
		memset(s, 0, sizeof(*s));
		s->cs.selector = 0x10;
		s->gs.base = 0xffff888000000000ull;
		s->cr0 = 0x80050033;
		s->cr3 = 0x1000;
		s->cr4 = 0x20;
		s->efer = 0xd01;
		return 0;
	}
	if (req == KVM_GET_FPU) {
		struct kvm_fpu *f = arg;
		memset(f, 0, sizeof(*f));
		f->fcw = 0x37f;
		f->mxcsr = 0x1f80;
		f->xmm[3][0] = 0x5a;
		return 0;
	}
	if (req == KVM_GET_MSRS) {
		struct kvm_msrs *m = arg;
		m->entries[0].data = m->entries[0].index == 0xc0000102 ? 0x7777 : 0;
		return 1;
	}
	if (req == KVM_SET_GUEST_DEBUG) {
		last_debug[cpu] = *(struct kvm_guest_debug *)arg;
		debug_calls++;
		return 0;
	}
	if (req == KVM_SET_REGS) {
		set_regs = *(struct kvm_regs *)arg;
		set_regs_calls++;
		return 0;
	}
	if (req == KVM_GET_VCPU_EVENTS) {
		memset(arg, 0, sizeof(struct kvm_vcpu_events));
		return 0;
	}
	if (req == KVM_SET_VCPU_EVENTS) {
		events = *(struct kvm_vcpu_events *)arg;
		events_set++;
		return 0;
	}
	return -1;
}

static struct vm vm;
static struct vcpu vcpus[2];
static struct gdb_kvm *kt;
static int sock = -1;

static void send_pkt(const char *p)
{
	char buf[1024];
	unsigned sum = 0;

	for (const char *c = p; *c; c++)
		sum += (unsigned char)*c;
	int n = snprintf(buf, sizeof(buf), "$%s#%02x", p, sum & 0xff);
	assert_int_equal(write(sock, buf, (size_t)n), n);
}

/* The next packet's payload (acks skipped). */
static const char *recv_pkt(void)
{
	static char out[8192];
	size_t n = 0;
	char c;

	do
		assert_int_equal(read(sock, &c, 1), 1);
	while (c != '$');
	for (;;) {
		assert_int_equal(read(sock, &c, 1), 1);
		if (c == '#')
			break;
		assert_true(n < sizeof(out) - 1);
		out[n++] = c;
	}
	out[n] = 0;
	char cs[2];
	assert_int_equal(read(sock, cs, 2), 2);
	return out;
}

/* The stub acts on its own thread and a resume has no reply: poll (5 s at most). */
#define WAIT_FOR(cond) do { \
		for (int w_ = 0; w_ < 5000 && !(cond); w_++) \
			usleep(1000); \
		assert_true(cond); \
	} while (0)

static const char *cmd(const char *p)
{
	send_pkt(p);
	return recv_pkt();
}

static int setup(void **state)
{
	char err[256];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *addr;

	(void)state;
	memset(&vm, 0, sizeof(vm));
	vm.vcpus = vcpus;
	vm.nr_vcpus = 2;
	for (unsigned i = 0; i < 2; i++) {
		vcpus[i] = (struct vcpu){ .vm = &vm, .index = i, .fd = FD0 + (int)i };
		vcpus[i].run = calloc(1, sizeof(struct kvm_run));
	}
	pthread_mutex_init(&vm.pause_lock, NULL);
	pthread_cond_init(&vm.pause_cond, NULL);
	atomic_init(&vm.stop, VM_RUNNING);
	atomic_init(&vm.solo_vcpu, -1);
	vm.nr_parked = 2;	/* no threads: every vCPU counts as parked */
	kt = gdb_kvm_open("tcp:127.0.0.1:0", 2, NULL, NULL, err, sizeof(err));
	assert_non_null(kt);
	gdb_kvm_set_vm(kt, &vm, VM_RUNNING);
	addr = gdb_kvm_address(kt);
	assert_non_null(strrchr(addr, ':'));
	sa.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sock = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(sock);
	gdb_kvm_set_vm(kt, NULL, VM_STOP_QUIT);
	gdb_kvm_close(kt);
	for (unsigned i = 0; i < 2; i++)
		free(vcpus[i].run);
	return 0;
}

static void test_registers_from_kvm(void **state)
{
	(void)state;
	const char *g = cmd("g");

	/* The attach paused the VM: gdb holds it ("debug"). */
	assert_true(gdb_kvm_holds_vm(kt));
	assert_true(atomic_load(&vm.pause_requested));
	assert_int_equal(strlen(g), 2 * 608);
	assert_memory_equal(g, "1111000000000000", 16);
	assert_memory_equal(g + 16 * 16, "00000081ffffffff", 16);	/* rip */
	assert_string_equal(cmd("p19"), "000000008088ffff");		/* gs_base */
	assert_string_equal(cmd("p1a"), "7777000000000000");		/* k_gs_base (MSR) */
	assert_string_equal(cmd("p20"), "010d000000000000");		/* efer */
	assert_string_equal(cmd("p29"), "7f030000");			/* fctrl */
	assert_string_equal(cmd("p34"), "5a000000000000000000000000000000");	/* xmm3 */
	assert_string_equal(cmd("Hg2"), "OK");
	assert_memory_equal(cmd("p0"), "1211000000000000", 16);
	/* A register write goes back with KVM_SET_REGS, RFLAGS bit 1 kept. */
	assert_string_equal(cmd("P0=efbeadde00000000"), "OK");
	assert_int_equal(set_regs_calls, 1);
	assert_true(set_regs.rax == 0xdeadbeef && (set_regs.rflags & 2));
	/* Memory outside RAM (this VM has none): an error, never a crash. */
	assert_true(cmd("m1000,8")[0] == 'E');
}

static void test_guest_debug_and_steps(void **state)
{
	(void)state;
	struct kvm_run *run = vcpus[1].run;

	assert_string_equal(cmd("Z1,ffffffff81000010,1"), "OK");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(last_debug[i].control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
		assert_true(last_debug[i].arch.debugreg[0] == 0xffffffff81000010ull);
		assert_true(last_debug[i].arch.debugreg[7] == 0x602);
	}
	/* Step vCPU 1 only: SINGLESTEP on it alone, and it alone leaves the parking lot. */
	send_pkt("vCont;s:2");
	WAIT_FOR(atomic_load(&vm.solo_vcpu) == 1);
	assert_true(last_debug[1].control & KVM_GUESTDBG_SINGLESTEP);
	assert_false(last_debug[0].control & KVM_GUESTDBG_SINGLESTEP);
	assert_int_equal(atomic_load(&vm.solo_vcpu), 1);
	assert_false(gdb_kvm_holds_vm(kt));
	/* The step's #DB (DR6.BS): the VM parks and gdb hears T05 for thread 2. */
	run->exit_reason = KVM_EXIT_DEBUG;
	run->debug.arch.exception = 1;
	run->debug.arch.dr6 = 0x4000;
	gdb_kvm_debug_exit(&vcpus[1]);
	assert_int_equal(atomic_load(&vm.solo_vcpu), -1);
	assert_string_equal(recv_pkt(), "T05thread:02;");
	assert_true(gdb_kvm_holds_vm(kt));
	/* Continue: every vCPU runs; the guest's own int3 goes back to the guest. */
	send_pkt("vCont;c");
	WAIT_FOR(!atomic_load(&vm.pause_requested));
	assert_false(atomic_load(&vm.pause_requested));
	run->debug.arch.exception = 3;
	run->debug.arch.pc = 0x1234;
	gdb_kvm_debug_exit(&vcpus[1]);
	assert_int_equal(events_set, 1);
	assert_true(events.exception.injected && events.exception.nr == 3);
	assert_false(atomic_load(&vm.pause_requested));
	/* Ctrl-C: parked again, T02. */
	assert_int_equal(write(sock, "\x03", 1), 1);
	assert_string_equal(recv_pkt(), "T02thread:02;");
	assert_true(atomic_load(&vm.pause_requested));
	/* Detach: guest debug off everywhere, and the VM runs on. */
	assert_string_equal(cmd("D"), "OK");
	WAIT_FOR(!atomic_load(&vm.pause_requested) && !gdb_kvm_holds_vm(kt));
	assert_int_equal(last_debug[0].control, 0);
	assert_int_equal(last_debug[1].control, 0);
	assert_false(atomic_load(&vm.pause_requested));
	assert_false(gdb_kvm_holds_vm(kt));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registers_from_kvm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_debug_and_steps, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
