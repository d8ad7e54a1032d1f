/* The host side of KVM: /dev/kvm, its API version and the capabilities Kestrel uses. */
#ifndef KESTREL_VMM_KVM_H
#define KESTREL_VMM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>

struct kvm_host {
	int fd;
	int run_size;		/* bytes of struct kvm_run to mmap per vCPU */
	int max_vcpus;
	struct kvm_cpuid2 *cpuid;	/* KVM_GET_SUPPORTED_CPUID, what "-cpu host" passes on */
};

struct kvm_required_cap {
	int cap;
	const char *what;	/* finishes "KVM lacks ..." */
};

extern const struct kvm_required_cap kvm_required_caps[];
extern const unsigned kvm_required_caps_count;

/* Opens /dev/kvm and checks everything Kestrel needs; logs one sentence per problem. */
int kvm_host_open(struct kvm_host *host);
/*
 * The same, but /dev/kvm that cannot be opened is not logged: returns
 * KVM_HOST_ABSENT with errno set (the caller decides whether that is fatal).
 */
#define KVM_HOST_ABSENT (-2)
int kvm_host_try_open(struct kvm_host *host);
void kvm_host_close(struct kvm_host *host);

/* True when the module is KVM's PVM flavour (no hardware virtualization). */
bool kvm_host_is_pvm(void);

/* True when /proc/cpuinfo lists vmx or svm. */
bool kvm_host_has_hw_virt(void);

#endif
