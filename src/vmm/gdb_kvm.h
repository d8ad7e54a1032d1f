/*
 * The GDB stub's target over KVM (issue 23): vCPU registers through
 * KVM_GET/SET_REGS, SREGS, FPU and MSRs, guest RAM through the memory map,
 * breakpoints and steps through KVM_SET_GUEST_DEBUG, and run control by
 * parking every vCPU (vm_pause) while gdb holds the machine.  A guest reset
 * rebuilds the VM; the stub and its connection live on across it.
 */
#ifndef KESTREL_VMM_GDB_KVM_H
#define KESTREL_VMM_GDB_KVM_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/vm.h"

struct gdb_kvm;

/* A monitor line for qRcmd ("monitor info registers"): the app runs it through HMP. */
typedef int (*gdb_kvm_monitor_fn)(void *opaque, const char *line, char *out, size_t outlen);

/* Listens on spec (-gdb's device); NULL with a message in err on failure. */
struct gdb_kvm *gdb_kvm_open(const char *spec, unsigned nr_vcpus, gdb_kvm_monitor_fn monitor,
			     void *opaque, char *err, size_t errlen);
void gdb_kvm_close(struct gdb_kvm *kt);
/* The VM the stub debugs from now (NULL: none, between resets; stop says why it went). */
void gdb_kvm_set_vm(struct gdb_kvm *kt, struct vm *vm, enum vm_stop stop);
/* From a vCPU thread on KVM_EXIT_DEBUG: parks the VM and tells gdb. */
void gdb_kvm_debug_exit(struct vcpu *vcpu);
/* gdb holds the VM stopped: QMP query-status says "debug". */
bool gdb_kvm_holds_vm(const struct gdb_kvm *kt);
const char *gdb_kvm_address(const struct gdb_kvm *kt);

#endif
