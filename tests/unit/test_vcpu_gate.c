/*
 * The vCPU start gate of -S and the pause of QMP stop/cont (vmm/vm.c):
 * vCPU threads that loop on vcpu_wait_runnable, as vcpu_thread does around
 * KVM_RUN, with the KVM_RUN itself replaced by a counter.  No KVM needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm.h"

#define NR_VCPUS 3

static _Atomic unsigned long runs[NR_VCPUS];

/* vcpu_thread's shape: the gate, then "KVM_RUN" (counted). */
static void *fake_vcpu(void *arg)
{
	struct vcpu *v = arg;

	while (vcpu_wait_runnable(v)) {
		atomic_fetch_add(&runs[v->index], 1);
		usleep(200);
	}
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static unsigned long total_runs(void)
{
	unsigned long t = 0;

	for (unsigned i = 0; i < NR_VCPUS; i++)
		t += atomic_load(&runs[i]);
	return t;
}

/* A vm with NR_VCPUS vCPUs that have a kvm_run page but no KVM behind them. */
static void fake_vm(struct vm *vm, struct vcpu *vcpus, struct kvm_run *pages)
{
	memset(vm, 0, sizeof(*vm));
	atomic_init(&vm->stop, VM_RUNNING);
	atomic_init(&vm->pause_requested, false);
	atomic_init(&vm->solo_vcpu, -1);	/* as vm_init: no gdb single-step */
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(vm->wake_fd >= 0);
	vm->fd = -1;
	vm->vcpus = vcpus;
	vm->nr_vcpus = NR_VCPUS;
	for (unsigned i = 0; i < NR_VCPUS; i++) {
		memset(&vcpus[i], 0, sizeof(vcpus[i]));
		vcpus[i].vm = vm;
		vcpus[i].index = i;
		vcpus[i].fd = -1;
		vcpus[i].run = &pages[i];
		atomic_store(&runs[i], 0);
	}
}

static void test_gate_holds_until_resume(void **state)
{
	struct vm vm;
	struct vcpu vcpus[NR_VCPUS];
	struct kvm_run pages[NR_VCPUS];
	pthread_t threads[NR_VCPUS];

	fake_vm(&vm, vcpus, pages);
	vm_hold_vcpus(&vm);		/* -S, before the threads start */
	for (unsigned i = 0; i < NR_VCPUS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, fake_vcpu, &vcpus[i]), 0);

	/* Held: every thread parks at the gate, none ever "runs". */
	for (int tries = 0; tries < 2000; tries++) {
		pthread_mutex_lock(&vm.pause_lock);
		unsigned parked = vm.nr_parked;
		pthread_mutex_unlock(&vm.pause_lock);
		if (parked == NR_VCPUS)
			break;
		sleep_ms(1);
	}
	assert_int_equal(vm.nr_parked, NR_VCPUS);
	assert_true(vm_is_paused(&vm));
	sleep_ms(20);
	assert_int_equal(total_runs(), 0);

	/* cont: the gate opens for every vCPU. */
	vm_resume(&vm);
	for (int tries = 0; tries < 2000; tries++) {
		bool all = true;
		for (unsigned i = 0; i < NR_VCPUS; i++)
			all &= atomic_load(&runs[i]) > 0;
		if (all)
			break;
		sleep_ms(1);
	}
	for (unsigned i = 0; i < NR_VCPUS; i++)
		assert_true(atomic_load(&runs[i]) > 0);

	/* stop: vm_pause returns once all are parked, and nothing runs after. */
	vm_pause(&vm);
	unsigned long frozen = total_runs();
	sleep_ms(20);
	assert_int_equal(total_runs(), frozen);

	/* A stop of the VM (quit) releases parked threads: they end. */
	vm_request_stop(&vm, VM_STOP_QUIT, 0);
	for (unsigned i = 0; i < NR_VCPUS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	assert_int_equal(total_runs(), frozen);
	close(vm.wake_fd);
	pthread_cond_destroy(&vm.pause_cond);
	pthread_mutex_destroy(&vm.pause_lock);
}

/* Without -S the gate is open from the start. */
static void test_no_hold_runs_at_once(void **state)
{
	struct vm vm;
	struct vcpu vcpus[NR_VCPUS];
	struct kvm_run pages[NR_VCPUS];
	pthread_t thread;

	fake_vm(&vm, vcpus, pages);
	assert_int_equal(pthread_create(&thread, NULL, fake_vcpu, &vcpus[0]), 0);
	for (int tries = 0; tries < 2000 && atomic_load(&runs[0]) == 0; tries++)
		sleep_ms(1);
	assert_true(atomic_load(&runs[0]) > 0);
	vm_request_stop(&vm, VM_STOP_QUIT, 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	close(vm.wake_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gate_holds_until_resume),
		cmocka_unit_test(test_no_hold_runs_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
