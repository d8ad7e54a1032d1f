/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest probe: a freestanding x86-64 PVH program that runs at CPL3 on
 * an identity map of the first 4 GiB (see entry.S) and reports what the
 * VMM gave it on COM1.  No libc; only the compiler's freestanding headers.
 */
#ifndef PROBE_H
#define PROBE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Xen public/arch-x86/hvm/start_info.h, handed over in %ebx. */
#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;		/* version >= 1 */
	uint32_t memmap_entries;	/* version >= 1 */
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;			/* E820 type: 1 = RAM */
	uint32_t reserved;
};

#define E820_RAM 1

/* What platform_probe() learned; the scenarios and power-off use it. */
struct platform {
	const struct hvm_start_info *si;	/* NULL if the magic is wrong */
	const char *cmdline;			/* never NULL */
	const struct hvm_memmap_entry *memmap;	/* validated, or NULL */
	uint32_t memmap_entries;
	uint64_t ram_bytes;
	const uint8_t *fadt;			/* NULL if none */
	int madt_cpus;				/* -1: no MADT */
	int mp_cpus;				/* -1: no MP table */
	const uint8_t *srat;			/* NULL if none (no NUMA) */
	const uint8_t *slit;			/* NULL if none */
};

/* Port I/O: allowed at CPL3 by the TSS I/O bitmap. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/*
 * CPUID leaves 0, 1 and 0x40000000 as {eax, ebx, ecx, edx}, taken at CPL0
 * by entry.S.  There is deliberately no cpuid() helper: on PVM, CPUID at
 * CPL3 runs natively and describes the host, not the VMM's guest CPU.
 */
#define CPUID_VENDOR	0
#define CPUID_FEATURES	1
#define CPUID_HV	2
extern const uint32_t boot_cpuid[3][4];

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/*
 * A pointer to guest-physical memory (identity mapped).  Laundered through
 * asm so the compiler cannot reason about small constant addresses
 * (GCC 12 warns on dereferencing them).
 */
static inline void *phys(uint64_t pa)
{
	__asm__("" : "+r"(pa));
	return (void *)pa;
}

/* Unaligned little-endian loads from firmware tables. */
static inline uint16_t get16(const void *p)
{
	uint16_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t get32(const void *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t get64(const void *p)
{
	uint64_t v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

/* io.c */
void serial_init(void);
void serial_putc(char c);
bool serial_poll(uint8_t *c);
void pr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* multiboot.c: a PVH start_info from a Multiboot2 entry's information, else si. */
const struct hvm_start_info *multiboot_adapt(const struct hvm_start_info *si);

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vpr(const char *fmt, va_list ap);
void delay_tsc(uint64_t ticks);
const char *count_str(int n, char buf[16]);
bool str_eq(const char *a, const char *b);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* platform.c */
void platform_probe(const struct hvm_start_info *si, struct platform *p);
void platform_poweroff(const struct platform *p) __attribute__((noreturn));
/* The ACPI power button: enable it, then poll for a press (QMP system_powerdown). */
void platform_power_button_arm(const struct platform *p);
bool platform_power_button_pressed(const struct platform *p);

/* scenarios.c: the scenario arguments, for the scenarios in other files. */
#define ARGS_MAX 8

struct args {
	char buf[256];
	const char *name;
	char *key[ARGS_MAX];
	const char *val[ARGS_MAX];
	int n;
};

const char *arg_get(const struct args *a, const char *key);
bool arg_u64(const struct args *a, const char *key, uint64_t *v);
bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* TSC ticks per second, calibrated once against the PIT (0: failed). */
uint64_t tsc_hz(void);
/* A 16 MiB-aligned range of one RAM entry, above the image, below 4 GiB. */
bool mem_find(const struct platform *p, uint64_t bytes, uint64_t *at);

/* e1000.c: the 82540EM behind the probe's IPv4 host (net scenarios with nic=e1000). */
bool e1000_open(const struct platform *p, uint8_t mac[6]);
bool e1000_send(const uint8_t *frame, uint32_t len);
uint32_t e1000_recv(uint8_t *out, uint32_t max);

/* pci.c */
#define PCI_FUNCS_MAX 64

struct pci_bar {
	uint64_t addr;			/* 0: unassigned */
	uint64_t size;			/* 0: not implemented */
	bool io, is64, pref;
};

struct pci_func {
	uint8_t bus, dev, fn;
	uint8_t hdr;			/* header type, without the MF bit */
	uint16_t vendor, device, subsys;
	uint32_t class;			/* class, subclass, prog-if */
	struct pci_bar bar[6];
};

int pci_scan(const struct platform *p, struct pci_func **list);
bool pci_bar_map(struct pci_func *f, int i);
void pci_enable(const struct pci_func *f);
uint8_t pci_cap_next(const struct pci_func *f, uint8_t from, uint8_t id);
uint32_t pci_read32(const struct pci_func *f, uint8_t off);
uint16_t pci_read16(const struct pci_func *f, uint8_t off);
uint8_t pci_read8(const struct pci_func *f, uint8_t off);
void pci_write32(const struct pci_func *f, uint8_t off, uint32_t v);
void pci_write16(const struct pci_func *f, uint8_t off, uint16_t v);

/* Scenarios in their device's file. */
bool scenario_pci(const struct platform *p, const struct args *a);
bool scenario_virtio(const struct platform *p, const struct args *a);
bool scenario_blk_write(const struct platform *p, const struct args *a);
bool scenario_blk_read(const struct platform *p, const struct args *a);
bool scenario_blk_bench(const struct platform *p, const struct args *a);
bool scenario_rng(const struct platform *p, const struct args *a);
bool scenario_console(const struct platform *p, const struct args *a);
bool scenario_net_respond(const struct platform *p, const struct args *a);
bool scenario_net_send(const struct platform *p, const struct args *a);
bool scenario_net_dhcp(const struct platform *p, const struct args *a);
bool scenario_net_tftp(const struct platform *p, const struct args *a);
bool scenario_net_blast(const struct platform *p, const struct args *a);
bool scenario_net_sink(const struct platform *p, const struct args *a);
bool scenario_balloon(const struct platform *p, const struct args *a);
bool scenario_mem_hold(const struct platform *p, const struct args *a);
bool scenario_numa(const struct platform *p, const struct args *a);

#endif
