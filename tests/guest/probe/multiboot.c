// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Multiboot (v1) entry, for boot loaders such as GRUB: entry.S records
 * %eax, and when it is the Multiboot magic the information structure in
 * %ebx is turned into the PVH start_info the rest of the probe reads
 * (command line and memory map; the RSDP is found by scanning, as PVH
 * loaders that give none).  Multiboot Specification 0.6.96 §3.3.
 */
#include "probe.h"

#define MB_BOOT_MAGIC 0x2badb002
#define MB_MAP_MAX 128
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4];
	uint32_t mmap_length, mmap_addr;
};

struct mb_mmap {
	uint32_t size;		/* of the rest of the entry */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

uint32_t boot_magic;	/* %eax at entry, stored by entry.S */

static struct hvm_start_info mb_si;
static struct hvm_memmap_entry mb_map[MB_MAP_MAX];

const struct hvm_start_info *multiboot_adapt(const struct hvm_start_info *si)
{
	const struct mb_info *mb = (const void *)si;
	uint32_t n = 0, off = 0;

	if (boot_magic != MB_BOOT_MAGIC || !mb)
		return si;
	say("boot: multiboot");
	mb_si.magic = HVM_START_MAGIC;
	mb_si.version = 1;
	if (mb->flags & MB_INFO_CMDLINE)
		mb_si.cmdline_paddr = mb->cmdline;
	while ((mb->flags & MB_INFO_MMAP) && n < MB_MAP_MAX &&
	       off + sizeof(struct mb_mmap) <= mb->mmap_length) {
		const struct mb_mmap *e = (const void *)(uintptr_t)(mb->mmap_addr + off);
		mb_map[n].addr = e->addr;
		mb_map[n].size = e->len;
		mb_map[n].type = e->type;
		n++;
		off += e->size + 4;
	}
	mb_si.memmap_paddr = (uint64_t)(uintptr_t)mb_map;
	mb_si.memmap_entries = n;
	return &mb_si;
}
