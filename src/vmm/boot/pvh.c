/*
 * PVH direct boot (Xen's HVM start protocol, as QEMU and Linux use it): an ELF
 * whose note XEN_ELFNOTE_PHYS32_ENTRY names a 32-bit entry point, started with
 * %ebx pointing at struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
 */
#include <elf.h>
#include <string.h>

#include "util/log.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define HVM_START_VERSION 1	/* version 1 adds the memory map */

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* What we need of a program header, from either ELF class. */
struct segment {
	uint32_t type;
	uint64_t offset, filesz, memsz, paddr;
};

struct elf_image {
	const uint8_t *data;
	size_t len;
	bool is64;
	uint64_t phoff;
	unsigned phnum, phentsize;
};

int pvh_detect(const uint8_t *kernel, size_t len)
{
	return len >= sizeof(Elf32_Ehdr) && memcmp(kernel, ELFMAG, SELFMAG) == 0;
}

static int elf_open(struct elf_image *img, const uint8_t *data, size_t len)
{
	img->data = data;
	img->len = len;
	img->is64 = data[EI_CLASS] == ELFCLASS64;
	if ((!img->is64 && data[EI_CLASS] != ELFCLASS32) || data[EI_DATA] != ELFDATA2LSB) {
		log_error("-kernel: not a little-endian 32- or 64-bit ELF file");
		return -1;
	}
	/* Copied out: the file's bytes carry no alignment guarantee. */
	if (img->is64) {
		Elf64_Ehdr eh;
		if (len < sizeof(eh))
			goto bad_headers;
		memcpy(&eh, data, sizeof(eh));
		if (eh.e_machine != EM_X86_64)
			goto bad_machine;
		img->phoff = eh.e_phoff;
		img->phnum = eh.e_phnum;
		img->phentsize = eh.e_phentsize;
		if (img->phentsize != sizeof(Elf64_Phdr))
			goto bad_headers;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, data, sizeof(eh));
		if (eh.e_machine != EM_386 && eh.e_machine != EM_X86_64)
			goto bad_machine;
		img->phoff = eh.e_phoff;
		img->phnum = eh.e_phnum;
		img->phentsize = eh.e_phentsize;
		if (img->phentsize != sizeof(Elf32_Phdr))
			goto bad_headers;
	}
	if (img->phoff > len || (uint64_t)img->phnum * img->phentsize > len - img->phoff)
		goto bad_headers;
	return 0;
bad_machine:
	log_error("-kernel: ELF file is not for x86");
	return -1;
bad_headers:
	log_error("-kernel: corrupt ELF program headers");
	return -1;
}

/* Returns the i-th program header; -1 if it points outside the file. */
static int elf_segment(const struct elf_image *img, unsigned i, struct segment *s)
{
	const uint8_t *ph = img->data + img->phoff + (size_t)i * img->phentsize;

	if (img->is64) {
		Elf64_Phdr p;
		memcpy(&p, ph, sizeof(p));
		*s = (struct segment){ p.p_type, p.p_offset, p.p_filesz, p.p_memsz, p.p_paddr };
	} else {
		Elf32_Phdr p;
		memcpy(&p, ph, sizeof(p));
		*s = (struct segment){ p.p_type, p.p_offset, p.p_filesz, p.p_memsz, p.p_paddr };
	}
	if (s->offset > img->len || s->filesz > img->len - s->offset) {
		log_error("-kernel: ELF segment %u lies outside the file", i);
		return -1;
	}
	return 0;
}

/* Searches a PT_NOTE segment for Xen's PHYS32_ENTRY note. */
static bool find_pvh_entry(const uint8_t *notes, uint64_t len, uint32_t *entry)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf32_Nhdr)) {
		Elf32_Nhdr nh;
		memcpy(&nh, notes + off, sizeof(nh));
		uint64_t name_off = off + sizeof(nh);
		uint64_t desc_off = name_off + ((nh.n_namesz + 3ULL) & ~3ULL);
		uint64_t next = desc_off + ((nh.n_descsz + 3ULL) & ~3ULL);
		if (next > len)
			return false;
		if (nh.n_namesz == 4 && memcmp(notes + name_off, "Xen", 4) == 0 &&
		    nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_descsz >= 4) {
			memcpy(entry, notes + desc_off, 4);
			return true;
		}
		off = next;
	}
	return false;
}

static int write_start_info(const struct boot_request *req, uint64_t kernel_end)
{
	const struct guest_memory *mem = req->mem;
	struct hvm_start_info info = {
		.magic = HVM_START_MAGIC,
		.version = HVM_START_VERSION,
		.cmdline_paddr = BOOT_CMDLINE_ADDR,
		.rsdp_paddr = req->rsdp,
		.memmap_paddr = BOOT_MEMMAP_ADDR,
	};
	struct e820_entry e820[E820_MAX_ENTRIES];
	size_t n = e820_build(mem, e820);

	for (size_t i = 0; i < n; i++) {
		struct hvm_memmap_entry m = { e820[i].addr, e820[i].size, e820[i].type, 0 };
		if (memory_write(mem, BOOT_MEMMAP_ADDR + i * sizeof(m), &m, sizeof(m)) < 0)
			return -1;
	}
	info.memmap_entries = (uint32_t)n;

	if (req->initrd_len) {
		struct hvm_modlist_entry mod = { .size = req->initrd_len };
		if (boot_load_initrd(req, kernel_end, mem->regions[0].size, &mod.paddr) < 0)
			return -1;
		if (memory_write(mem, BOOT_MODLIST_ADDR, &mod, sizeof(mod)) < 0)
			return -1;
		info.nr_modules = 1;
		info.modlist_paddr = BOOT_MODLIST_ADDR;
	}
	return memory_write(mem, BOOT_INFO_ADDR, &info, sizeof(info));
}

/* The entry note first: without it this is not a kernel we can start. */
static int open_pvh(struct elf_image *img, const uint8_t *kernel, size_t len, uint32_t *entry)
{
	struct segment s;

	if (elf_open(img, kernel, len) < 0)
		return -1;
	for (unsigned i = 0; i < img->phnum; i++) {
		if (elf_segment(img, i, &s) < 0)
			return -1;
		if (s.type == PT_NOTE && find_pvh_entry(kernel + s.offset, s.filesz, entry))
			return 0;
	}
	log_error("-kernel: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
		  "build Linux with CONFIG_PVH=y or pass a bzImage");
	return -1;
}

int pvh_check(const uint8_t *kernel, size_t len)
{
	struct elf_image img;
	uint32_t entry;

	return open_pvh(&img, kernel, len, &entry);
}

int pvh_load(const struct boot_request *req, const uint8_t *kernel, size_t len,
	     struct boot_entry *entry)
{
	struct elf_image img;
	struct segment s;
	uint64_t kernel_end = 0;
	uint32_t pvh_entry = 0;

	if (open_pvh(&img, kernel, len, &pvh_entry) < 0)
		return -1;
	for (unsigned i = 0; i < img.phnum; i++) {
		if (elf_segment(&img, i, &s) < 0)
			return -1;
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		uint8_t *dst = memory_ptr(req->mem, s.paddr, s.memsz);
		if (s.filesz > s.memsz || !dst || s.paddr < BIOS_AREA_END) {
			log_error("-kernel: ELF segment %u at 0x%llx (+0x%llx) is outside guest RAM "
				  "above 1 MiB; increase -m?", i, (unsigned long long)s.paddr,
				  (unsigned long long)s.memsz);
			return -1;
		}
		memcpy(dst, kernel + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
		if (s.paddr + s.memsz > kernel_end)
			kernel_end = s.paddr + s.memsz;
	}
	if (write_start_info(req, kernel_end) < 0)
		return -1;
	entry->entry = pvh_entry;
	entry->ebx = BOOT_INFO_ADDR;
	entry->esi = 0;
	return 0;
}
