#include "vmm/boot/boot.h"

#include <stdlib.h>
#include <string.h>

#include "util/file.h"
#include "util/log.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/mptable.h"

#define KERNEL_MAX_SIZE (512ULL << 20)
#define INITRD_MAX_SIZE (2ULL << 30)
#define PAGE_SIZE 4096ULL

int boot_load_initrd(const struct boot_request *req, uint64_t floor, uint64_t limit,
		     uint64_t *addr)
{
	size_t len = req->initrd_len;
	uint64_t at;

	if (len > limit || (limit - len) < floor) {
		log_error("-initrd: %zu MiB does not fit in guest RAM between 0x%llx and 0x%llx; "
			  "increase -m", (len >> 20) + 1, (unsigned long long)floor,
			  (unsigned long long)limit);
		return -1;
	}
	/* As high as possible, page aligned: out of the way of the kernel's own allocations. */
	at = (limit - len) & ~(PAGE_SIZE - 1);
	if (at < floor || memory_write(req->mem, at, req->initrd, len) < 0) {
		log_error("-initrd: no room in guest RAM; increase -m");
		return -1;
	}
	*addr = at;
	return 0;
}

/* Flat 4 GiB code and data descriptors at the selectors the boot protocols name. */
static int write_boot_gdt(const struct guest_memory *mem)
{
	const uint64_t gdt[4] = {
		0,
		0,
		0x00cf9b000000ffffULL,	/* 0x10: code, execute/read, 32-bit, 4 KiB granular */
		0x00cf93000000ffffULL,	/* 0x18: data, read/write */
	};
	return memory_write(mem, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

/*
 * -numa as SRAT/SLIT sees it: vCPUs named by no node go to node 0, and
 * distances not given are 10 (local) or 20, one direction implying the
 * other (QEMU's complete_init_numa_distance).
 */
void boot_numa_describe(const struct vm_config *cfg, struct acpi_numa *numa)
{
	const struct memory_config *mc = &cfg->memory;

	memset(numa, 0, sizeof(*numa));
	numa->nr_nodes = mc->nr_nodes;
	numa->ram_size = cfg->ram_size;
	for (unsigned i = 0; i < mc->nr_nodes; i++) {
		const struct numa_node_config *node = &mc->nodes[i];
		numa->node_mem[node->nodeid] = mc->backing[node->nodeid].size;
		for (unsigned c = 0; c < VM_MAX_CPUS; c++)
			if (node->cpus[c / 8] >> (c % 8) & 1)
				numa->cpu_node[c] = (uint8_t)node->nodeid;
	}
	for (unsigned i = 0; i < mc->nr_nodes; i++) {
		for (unsigned j = 0; j < mc->nr_nodes; j++) {
			uint8_t d = mc->distance[i][j] ? mc->distance[i][j] : mc->distance[j][i];
			numa->slit |= mc->distance[i][j] != 0;
			numa->distance[i][j] = d ? d : (i == j ? 10 : 20);
		}
	}
}

int boot_check_kernel(const char *path)
{
	uint8_t *kernel;
	size_t len;
	int rc = 0;

	if (file_read_all("-kernel", path, KERNEL_MAX_SIZE, &kernel, &len) < 0)
		return -1;
	if (bzimage_detect(kernel, len))
		rc = 0;
	else if (pvh_detect(kernel, len))
		rc = pvh_check(kernel, len);
	else {
		log_error("-kernel %s: not a Linux bzImage nor an ELF kernel with a PVH entry note",
			  path);
		rc = -1;
	}
	free(kernel);
	return rc;
}

int boot_setup(const struct guest_memory *mem, const struct vm_config *cfg,
	       struct boot_entry *entry)
{
	struct acpi_numa numa;
	const char *cmdline = cfg->append ? cfg->append : "";
	struct acpi_config acpi = { .cpus = cfg->smp.cpus, .maxcpus = cfg->smp.maxcpus };
	struct boot_request req = { .mem = mem, .cmdline = cmdline };
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len, initrd_len = 0;
	int rc = -1;

	boot_numa_describe(cfg, &numa);
	acpi.numa = &numa;
	if (strlen(cmdline) >= BOOT_CMDLINE_MAX) {
		log_error("-append: command line too long (at most %d bytes)", BOOT_CMDLINE_MAX - 1);
		return -1;
	}
	if (file_read_all("-kernel", cfg->kernel, KERNEL_MAX_SIZE, &kernel, &kernel_len) < 0)
		return -1;
	/* The size limit is checked before reading: a huge file is refused, not loaded. */
	if (cfg->initrd &&
	    file_read_all("-initrd", cfg->initrd,
			  cfg->ram_size < INITRD_MAX_SIZE ? cfg->ram_size : INITRD_MAX_SIZE,
			  &initrd, &initrd_len) < 0)
		goto out;
	req.initrd = initrd;
	req.initrd_len = initrd_len;

	if (acpi_install(mem, &acpi, &req.rsdp) < 0 || mptable_install(mem, cfg->smp.cpus) < 0 ||
	    write_boot_gdt(mem) < 0 ||
	    memory_write(mem, BOOT_CMDLINE_ADDR, cmdline, strlen(cmdline) + 1) < 0) {
		log_error("guest RAM too small for the boot tables");
		goto out;
	}

	if (bzimage_detect(kernel, kernel_len))
		rc = bzimage_load(&req, kernel, kernel_len, entry);
	else if (pvh_detect(kernel, kernel_len))
		rc = pvh_load(&req, kernel, kernel_len, entry);
	else
		log_error("-kernel %s: not a Linux bzImage nor an ELF kernel with a PVH entry note",
			  cfg->kernel);
out:
	free(kernel);
	free(initrd);
	return rc;
}
