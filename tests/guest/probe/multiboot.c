// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Multiboot2 entry, for boot loaders such as GRUB: entry.S records %eax,
 * and when it is the Multiboot2 magic the information structure in %ebx is
 * turned into the PVH start_info the rest of the probe reads (command line
 * and memory map; the RSDP is found by scanning, as with PVH loaders that
 * give none).  Multiboot2 Specification 2.0 §3.3 (machine state) and §3.6
 * (boot information).
 */
#include "probe.h"

#define MB2_BOOT_MAGIC 0x36d76289
#define MB2_TAG_END 0
#define MB2_TAG_CMDLINE 1
#define MB2_TAG_MMAP 6
#define MB_MAP_MAX 128

struct mb2_tag {
	uint32_t type;
	uint32_t size;		/* of the tag, header included; tags are 8-byte aligned */
};

struct mb2_mmap {
	uint64_t addr, len;
	uint32_t type, reserved;
};

uint32_t boot_magic;	/* %eax at entry, stored by entry.S */

static struct hvm_start_info mb_si;
static struct hvm_memmap_entry mb_map[MB_MAP_MAX];

static void mmap_tag(const uint8_t *tag, uint32_t size)
{
	uint32_t esize, n = 0;

	if (size < 16)
		return;
	esize = *(const uint32_t *)(tag + 8);
	if (esize < sizeof(struct mb2_mmap))
		return;
	for (uint32_t off = 16; off + esize <= size && n < MB_MAP_MAX; off += esize) {
		const struct mb2_mmap *e = (const void *)(tag + off);
		mb_map[n].addr = e->addr;
		mb_map[n].size = e->len;
		mb_map[n].type = e->type;
		n++;
	}
	mb_si.memmap_paddr = (uint64_t)(uintptr_t)mb_map;
	mb_si.memmap_entries = n;
}

const struct hvm_start_info *multiboot_adapt(const struct hvm_start_info *si)
{
	const uint8_t *info = (const void *)si;
	uint32_t total, off;

	if (boot_magic != MB2_BOOT_MAGIC || !info)
		return si;
	say("boot: multiboot2");
	mb_si.magic = HVM_START_MAGIC;
	mb_si.version = 1;
	total = *(const uint32_t *)info;
	for (off = 8; off + sizeof(struct mb2_tag) <= total;) {
		const struct mb2_tag *t = (const void *)(info + off);
		if (t->type == MB2_TAG_END || t->size < sizeof(*t) || t->size > total - off)
			break;
		if (t->type == MB2_TAG_CMDLINE)
			mb_si.cmdline_paddr = (uint64_t)(uintptr_t)(info + off + 8);
		else if (t->type == MB2_TAG_MMAP)
			mmap_tag(info + off, t->size);
		off += (t->size + 7) & ~7u;
	}
	return &mb_si;
}
