#include "vmm/vm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/layout.h"
#include "vmm/firmware.h"

/* The vCPU kick signal: it only has to interrupt KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig) { (void)sig; }

static int vm_create_kvm(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	vm->fd = ioctl(vm->host->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	/* Intel VT-x needs these private pages for real mode; harmless elsewhere. */
	if (ioctl(vm->host->fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(vm->fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->host->fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t addr = KVM_IDENTITY_MAP_ADDR;
		if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
			log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
			return -1;
		}
	}
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -1;
	}
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int vm_create(struct vm *vm, const struct kvm_host *host, const struct vm_config *cfg,
	      const struct vm_backends *backends)
{
	struct boot_entry entry;
	struct sigaction sa;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->host = host;
	vm->backends = backends;
	vm->console = backends->serial;
	vm->fd = vm->wake_fd = -1;
	atomic_init(&vm->stop, VM_RUNNING);
	atomic_init(&vm->pause_requested, false);
	atomic_init(&vm->solo_vcpu, -1);
	atomic_init(&vm->internal_error, false);
	atomic_init(&vm->io_error, false);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);

	if (cfg->smp.maxcpus > (unsigned)host->max_vcpus) {
		log_error("-smp: %u CPUs requested, this host's KVM supports at most %d",
			  cfg->smp.maxcpus, host->max_vcpus);
		return -1;
	}
	vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->wake_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);	/* no SA_RESTART: KVM_RUN must return */

	if (vm_create_kvm(vm) < 0 || memory_init(&vm->mem, vm->fd, cfg->ram_size, cfg->memory.backing,
					      cfg->memory.nr_backing, cfg->memory.mem_lock) < 0 ||
	    pc_create_devices(vm) < 0)
		return -1;

	vm->vcpus = calloc(cfg->smp.cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		log_error("out of memory");
		return -1;
	}
	for (unsigned i = 0; i < cfg->smp.cpus; i++) {
		if (vcpu_create(vm, &vm->vcpus[i], i) < 0)
			return -1;
		vm->nr_vcpus++;
	}
	/* No -kernel, or -bios: the PC way, firmware from the reset vector. */
	if (vm_config_firmware_boot(cfg))
		return firmware_setup(vm) < 0 ? -1 : vcpu_set_reset_state(&vm->vcpus[0]);
	if (boot_setup(&vm->mem, cfg, &entry) < 0)
		return -1;
	/* The APs wait for INIT/SIPI from the guest, as on a real machine. */
	return vcpu_set_boot_state(&vm->vcpus[0], entry.entry, entry.ebx, entry.esi);
}

int vm_start(struct vm *vm)
{
	sigset_t kick, old;

	/* vCPU threads must receive the kick even if the caller blocks it. */
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, &old);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int err = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
		if (err) {
			log_error("cannot start vCPU %u: %s", i, strerror(err));
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			vm_request_stop(vm, VM_STOP_ERROR, 1);
			return -1;
		}
		vm->vcpus[i].thread_started = true;
		if (vm->cfg->debug_threads) {
			/* QEMU's -name debug-threads=on name for a KVM vCPU thread. */
			char tname[16];
			snprintf(tname, sizeof(tname), "CPU %u/KVM", i & 0xffff);
			pthread_setname_np(vm->vcpus[i].thread, tname);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* Makes every vCPU leave KVM_RUN soon and look at the VM's stop and pause flags. */
static void vm_kick_vcpus(struct vm *vm)
{
	/* immediate_exit covers a vCPU between its check and KVM_RUN; the signal the rest. */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		v->run->immediate_exit = 1;
		if (v->thread_started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

void vm_request_stop(struct vm *vm, enum vm_stop reason, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop, &expected, (int)reason))
		return;
	vm->exit_status = status;
	vm_kick_vcpus(vm);
	/* Parked vCPUs and a waiting vm_pause() must see the stop too. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd write: %s", strerror(errno));
}

void vm_internal_error(struct vm *vm)
{
	uint64_t one = 1;

	atomic_store(&vm->pause_requested, true);
	atomic_store(&vm->internal_error, true);
	vm_kick_vcpus(vm);
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd write: %s", strerror(errno));
}

void vm_io_error(struct vm *vm, bool stop)
{
	uint64_t one = 1;

	if (stop) {
		atomic_store(&vm->pause_requested, true);
		vm_kick_vcpus(vm);
	}
	atomic_store(&vm->io_error, true);
	if (write(vm->wake_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd write: %s", strerror(errno));
}

void vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, true);
	vm_kick_vcpus(vm);
	while (vm->nr_parked < vm->nr_vcpus && atomic_load(&vm->stop) == VM_RUNNING)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_hold_vcpus(struct vm *vm)
{
	/* No thread runs yet: each finds the flag before its first KVM_RUN. */
	atomic_store(&vm->pause_requested, true);
}

void vm_pause_async(struct vm *vm)
{
	atomic_store(&vm->pause_requested, true);
	vm_kick_vcpus(vm);
}

bool vm_is_paused(struct vm *vm)
{
	return atomic_load(&vm->pause_requested);
}

void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->pause_cond);	/* vm_pause may be waiting for us */
	while (atomic_load(&vm->pause_requested) && atomic_load(&vm->stop) == VM_RUNNING &&
	       atomic_load(&vm->solo_vcpu) != (int)vcpu->index)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->nr_parked--;
	/* Cleared under the lock so a kick for the next pause is never lost. */
	if (atomic_load(&vm->stop) == VM_RUNNING)
		vcpu->run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vcpu_wait_runnable(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	while (atomic_load(&vm->stop) == VM_RUNNING) {
		/* gdb's single-step lets one vCPU run while the others stay parked. */
		if (!atomic_load(&vm->pause_requested) ||
		    atomic_load(&vm->solo_vcpu) == (int)vcpu->index)
			return true;
		vcpu_park(vcpu);
	}
	return false;
}

uint64_t vm_exit_count(const struct vm *vm)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		total += vm->vcpus[i].exits;
	return total;
}

void vm_destroy(struct vm *vm)
{
	if (atomic_load(&vm->stop) == VM_RUNNING && vm->wake_fd >= 0)
		vm_request_stop(vm, VM_STOP_QUIT, 0);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	pc_destroy_devices(vm);
	firmware_destroy(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	memory_destroy(&vm->mem);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	vm->fd = vm->wake_fd = -1;
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
}
