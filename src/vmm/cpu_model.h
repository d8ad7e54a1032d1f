/*
 * -cpu models as CPUID: "host" passes what KVM supports (less invtsc with
 * QEMU's default migratable=on), "qemu64" filters it down to QEMU's qemu64
 * model as QEMU 7.2 shows it under KVM (target/i386/cpu.c builtin_x86_defs
 * plus kvm_default_props).  A pure function of the table, so unit tests see
 * exactly what a guest's CPUID would read.
 */
#ifndef KESTREL_VMM_CPU_MODEL_H
#define KESTREL_VMM_CPU_MODEL_H

#include <linux/kvm.h>

#include "vmm/config.h"

/* Rewrites c (KVM_GET_SUPPORTED_CPUID's table, per vCPU) for the model; may drop entries. */
void cpu_model_apply(const struct cpu_config *cpu, struct kvm_cpuid2 *c);

#endif
