/*
 * Direct kernel boot (-kernel/-initrd/-append): loads a Linux bzImage or a PVH
 * ELF, writes the platform tables, and says where the boot CPU starts.
 */
#ifndef KESTREL_VMM_BOOT_BOOT_H
#define KESTREL_VMM_BOOT_BOOT_H

#include <stdint.h>

#include "vmm/config.h"
#include "core/memory.h"

/* The boot CPU starts in flat 32-bit protected mode, paging off, at entry. */
struct boot_entry {
	uint32_t entry;
	uint32_t ebx;	/* PVH: hvm_start_info */
	uint32_t esi;	/* Linux: boot_params */
};

/* Everything a kernel loader needs besides the kernel bytes. */
struct boot_request {
	const struct guest_memory *mem;
	const uint8_t *initrd;
	size_t initrd_len;
	const char *cmdline;
	uint64_t rsdp;
};

struct acpi_numa;
/* -numa as the ACPI SRAT/SLIT builders take it (also for firmware boot's tables). */
void boot_numa_describe(const struct vm_config *cfg, struct acpi_numa *numa);

int boot_setup(const struct guest_memory *mem, const struct vm_config *cfg,
	       struct boot_entry *entry);

/* Loaders (bzimage.c, pvh.c); each logs its own errors and returns -1. */
int bzimage_load(const struct boot_request *req, const uint8_t *kernel, size_t len,
		 struct boot_entry *entry);
int pvh_load(const struct boot_request *req, const uint8_t *kernel, size_t len,
	     struct boot_entry *entry);
int bzimage_detect(const uint8_t *kernel, size_t len);
int pvh_detect(const uint8_t *kernel, size_t len);
/* Whether an ELF kernel carries the PVH entry note; logs why not. */
int pvh_check(const uint8_t *kernel, size_t len);

/*
 * Reads -kernel and checks that one of the loaders can start it, without a
 * VM: the command line is validated before /dev/kvm is opened.
 */
int boot_check_kernel(const char *path);

/* Copies the initrd to the highest page-aligned address in [floor, limit) and says where. */
int boot_load_initrd(const struct boot_request *req, uint64_t floor, uint64_t limit,
		     uint64_t *addr);

#endif
