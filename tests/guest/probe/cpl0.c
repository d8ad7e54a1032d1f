/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one scenario that must run in kernel mode: entry.S calls probe_cpl0()
 * in long mode, before the drop to CPL3.  "probe=emulation-failure" loads an
 * x87 operand from an address no RAM backs.  KVM then has to emulate the
 * instruction as MMIO, and its emulator cannot do x87 loads: at CPL0 that is
 * KVM_EXIT_INTERNAL_ERROR, suberror 1 ("emulation failure"), which a VMM must
 * report (QEMU pauses in the "internal-error" run state).  At CPL3 KVM would
 * inject #UD into the guest instead, hence this hook.
 */
#include "probe.h"

/* The PCI hole at 3 GiB: never RAM with -m up to 3 GiB, never a device here. */
#define NO_RAM 0xc0000000ul

void probe_cpl0(uint32_t si_addr);

static bool word_at(const char *s, const char *w)
{
	while (*w)
		if (*s++ != *w++)
			return false;
	return *s == 0 || *s == ' ' || *s == ',';
}

static bool cmdline_has(const char *s, const char *word)
{
	for (; *s; s++)
		if ((s[0] == 'p') && word_at(s, word))
			return true;
	return false;
}

void probe_cpl0(uint32_t si_addr)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)si_addr;

	if (!si || si->magic != HVM_START_MAGIC || !si->cmdline_paddr ||
	    si->cmdline_paddr >= NO_RAM)
		return;
	if (!cmdline_has((const char *)(uintptr_t)si->cmdline_paddr, "probe=emulation-failure"))
		return;
	serial_init();
	say("emulation-failure: x87 load from 0x%lx at CPL0", NO_RAM);
	__asm__ volatile("fldl (%0)\n\tfstp %%st(0)" : : "r"(NO_RAM) : "memory");
}
