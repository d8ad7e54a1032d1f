/*
 * Accelerators: -machine accel=, -accel and -enable-kvm (QEMU 7.2
 * softmmu/vl.c configure_accelerators, as a binary built with KVM only).
 */
#ifndef KESTREL_CLI_ACCEL_H
#define KESTREL_CLI_ACCEL_H

#include <stdbool.h>
#include <stdio.h>

#include "vmm/config.h"
#include "vmm/kvm.h"

/* -machine accel=LIST (also -enable-kvm: "kvm"); the last one wins. */
int accel_machine_option(struct vm_config *cfg, const char *opt, const char *arg,
			 const char *list);
/* -accel NAME[,prop=value...]|help; 1 when help was printed. */
int accel_option(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
/* Once every option is read: -accel and -machine accel= together are refused. */
int accel_check(const struct vm_config *cfg);

/*
 * Opens the accelerator the list names, as QEMU's configure_accelerators:
 * names Kestrel lacks (tcg) or does not know are reported and skipped; KVM
 * is opened into host.  Machine none runs no guest code, so there, when
 * /dev/kvm cannot be opened and the list goes on after kvm (kvm:tcg, or no
 * list at all), it starts without an accelerator (*kvm_enabled false)
 * where QEMU would fall back to TCG.  Returns 0, or -1 after logging.
 */
int accel_configure(const struct vm_config *cfg, struct kvm_host *host, bool *kvm_enabled);

#endif
