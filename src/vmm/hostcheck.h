/* kestrel --check-host: a virt-host-validate style checklist. */
#ifndef KESTREL_VMM_HOSTCHECK_H
#define KESTREL_VMM_HOSTCHECK_H

#include <stdio.h>

/* The three hosts Kestrel meets (README: what runs where). */
enum host_kind {
	HOST_NO_KVM,	/* no /dev/kvm: options and images work, no guest runs */
	HOST_KVM_PVM,	/* KVM in PVM mode: guest CPL3 native, guest kernel emulated */
	HOST_KVM_HW,	/* vmx/svm: every guest runs natively */
	HOST_KVM_OTHER,	/* /dev/kvm without vmx/svm or kvm_pvm (say, nested emulation) */
};

enum host_kind hostcheck_kind(void);

/* Prints the checklist to out; returns 0 when a VM can run here, 1 otherwise. */
int hostcheck_run(FILE *out);

#endif
