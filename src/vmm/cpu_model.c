#include "vmm/cpu_model.h"

#include <string.h>

/* CPUID bits (Intel SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E). */
#define L1_EDX_QEMU64 0x078bfbfdu	/* PPRO_FEATURES | MTRR | CLFLUSH | MCA | PSE36 */
#define L1_ECX_SSE3 (1u << 0)
#define L1_ECX_CX16 (1u << 13)
#define L1_ECX_X2APIC (1u << 21)	/* kvm_default_props: x2apic=on */
#define L1_ECX_HYPERVISOR (1u << 31)
#define EXT1_EDX_QEMU64 ((1u << 11) | (1u << 20) | (1u << 29))	/* SYSCALL, NX, LM */
#define EXT1_EDX_AMD_ALIASES 0x0183f3ffu	/* leaf 1 EDX bits AMD repeats here */
#define EXT1_ECX_LAHF_LM (1u << 0)	/* svm: off under KVM (kvm_default_props) */
#define EXT7_EDX_INVTSC (1u << 8)	/* unmigratable: the TSC rate moves with the host */
/* kvmclock, nopiodelay, kvmclock2, async PF, steal time, PV EOI, stable bit */
#define KVM_FEATURES_DEFAULT ((1u << 0) | (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5) | \
			      (1u << 6) | (1u << 24))

#define QEMU64_LEVEL 0xdu
#define QEMU64_XLEVEL 0x8000000au
/* family 15, model 107 (0x6b), stepping 1 in leaf 1 EAX's split encoding */
#define QEMU64_SIGNATURE 0x00060fb1u
static const char qemu64_brand[48] = "QEMU Virtual CPU version 2.5+";

static void vendor_amd(struct kvm_cpuid_entry2 *e)
{
	memcpy(&e->ebx, "Auth", 4);
	memcpy(&e->edx, "enti", 4);
	memcpy(&e->ecx, "cAMD", 4);
}

static bool qemu64_keeps(const struct kvm_cpuid_entry2 *e)
{
	if (e->function >= 0x40000000u && e->function < 0x40000100u)
		return true;	/* KVM's paravirt leaves */
	if (e->function >= 0x80000000u)
		return e->function <= QEMU64_XLEVEL;
	return e->function <= QEMU64_LEVEL;
}

static uint32_t leaf1_edx(const struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			return c->entries[i].edx & L1_EDX_QEMU64;
	return 0;
}

static void qemu64_entry(struct kvm_cpuid_entry2 *e, uint32_t edx1)
{
	const char *brand;

	switch (e->function) {
	case 0:
		e->eax = e->eax < QEMU64_LEVEL ? e->eax : QEMU64_LEVEL;
		vendor_amd(e);
		break;
	case 1:
		e->eax = QEMU64_SIGNATURE;
		e->edx &= L1_EDX_QEMU64;
		e->ecx = (e->ecx & (L1_ECX_SSE3 | L1_ECX_CX16 | L1_ECX_X2APIC)) | L1_ECX_HYPERVISOR;
		break;
	case 0x40000001:
		e->eax &= KVM_FEATURES_DEFAULT;
		break;
	case 0x80000000:
		e->eax = QEMU64_XLEVEL;
		vendor_amd(e);
		break;
	case 0x80000001:
		e->edx = (e->edx & EXT1_EDX_QEMU64) | (edx1 & EXT1_EDX_AMD_ALIASES);
		e->ecx &= EXT1_ECX_LAHF_LM;
		e->eax = QEMU64_SIGNATURE;
		e->ebx = 0;
		break;
	case 0x80000002: case 0x80000003: case 0x80000004:
		brand = qemu64_brand + (e->function - 0x80000002u) * 16;
		memcpy(&e->eax, brand, 4);
		memcpy(&e->ebx, brand + 4, 4);
		memcpy(&e->ecx, brand + 8, 4);
		memcpy(&e->edx, brand + 12, 4);
		break;
	case 0x80000008:
		e->ebx = 0;	/* no IBPB/virt-ssbd...: none is part of qemu64 */
		break;
	case 2: case 4: case 0xb: case 0x80000005: case 0x80000006:
		break;		/* caches and topology stay the host's (as QEMU's cache-info=host) */
	default:
		/* 5, 6, 7, 0xa, 0xd, 0x80000007, 0x8000000a: none of their features is in qemu64 */
		e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	}
}

void cpu_model_apply(const struct cpu_config *cpu, struct kvm_cpuid2 *c)
{
	uint32_t edx1 = leaf1_edx(c);
	unsigned n = 0;

	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 e = c->entries[i];
		if (cpu->model == CPU_MODEL_HOST) {
			if (cpu->migratable && e.function == 0x80000007)
				e.edx &= ~EXT7_EDX_INVTSC;
		} else {
			if (!qemu64_keeps(&e))
				continue;
			qemu64_entry(&e, edx1);
		}
		c->entries[n++] = e;
	}
	c->nent = n;
}
