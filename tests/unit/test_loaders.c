/*
 * vmm/boot/pvh.c and bzimage.c: synthetic kernels loaded into fake guest
 * RAM, then the boot structures read back as the guest would find them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/boot.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "fake.h"

#define RAM_SIZE (64 * MIB)
#define PVH_ENTRY 0x1000c0
#define RSDP_ADDR 0xe0000

struct loader_fixture {
	struct guest_memory mem;
	struct boot_request req;
	struct boot_entry entry;
	/* Aligned as the malloc'd file buffer boot_setup passes: ELF headers are read in place. */
	_Alignas(16) uint8_t image[64 * 1024];
	size_t len;
};

static int setup(void **state)
{
	struct loader_fixture *f = calloc(1, sizeof(*f));

	if (!f || fake_memory_init(&f->mem, RAM_SIZE) < 0)
		return -1;
	f->req = (struct boot_request){ .mem = &f->mem, .cmdline = "console=ttyS0",
					.rsdp = RSDP_ADDR };
	memset(&f->entry, 0xee, sizeof(f->entry));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct loader_fixture *f = *state;

	fake_memory_free(&f->mem);
	free(f);
	return 0;
}

static uint8_t *guest(struct loader_fixture *f, uint64_t gpa)
{
	return f->mem.host + gpa;
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static void wr16(uint8_t *p, size_t off, uint16_t v) { memcpy(p + off, &v, 2); }
static void wr32(uint8_t *p, size_t off, uint32_t v) { memcpy(p + off, &v, 4); }

/* ---- PVH ELF ---- */

#define ELF_PH_OFF 64
#define ELF_NOTE_OFF 0x100
#define ELF_CODE_OFF 0x200
#define ELF_CODE_LEN 0x300
#define ELF_BSS_LEN 0x2000

/* A Xen PHYS32_ENTRY note (xen/include/public/elfnote.h, type 18). */
static size_t put_note(uint8_t *p, const char *name, uint32_t type, uint32_t entry)
{
	Elf64_Nhdr nh = { .n_namesz = (uint32_t)strlen(name) + 1, .n_descsz = 8, .n_type = type };
	size_t off = sizeof(nh);
	uint64_t desc = entry;

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + off, name, nh.n_namesz);
	off += (nh.n_namesz + 3) & ~3u;
	memcpy(p + off, &desc, 8);
	return off + 8;
}

/*
 * ELF64: header, PT_NOTE (an unrelated GNU note, then Xen's), PT_LOAD of
 * ELF_CODE_LEN bytes with a bss at 1 MiB.
 */
static void make_elf64(struct loader_fixture *f, bool with_pvh_note)
{
	uint8_t *img = f->image;
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
			     EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_entry = 0xffffffff81000000ULL, .e_phoff = ELF_PH_OFF,
		.e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2,
	};
	size_t note_len;

	memset(img, 0, sizeof(f->image));
	memcpy(img, &eh, sizeof(eh));
	note_len = put_note(img + ELF_NOTE_OFF, "GNU", 3, 0xdeadbeef);
	if (with_pvh_note)
		note_len += put_note(img + ELF_NOTE_OFF + note_len, "Xen", 18, PVH_ENTRY);
	Elf64_Phdr ph[2] = {
		{ .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = note_len,
		  .p_memsz = note_len, .p_align = 4 },
		{ .p_type = PT_LOAD, .p_offset = ELF_CODE_OFF, .p_paddr = 0x100000,
		  .p_vaddr = 0xffffffff81000000ULL, .p_filesz = ELF_CODE_LEN,
		  .p_memsz = ELF_CODE_LEN + ELF_BSS_LEN, .p_flags = PF_R | PF_X, .p_align = 16 },
	};
	memcpy(img + ELF_PH_OFF, ph, sizeof(ph));
	for (size_t i = 0; i < ELF_CODE_LEN; i++)
		img[ELF_CODE_OFF + i] = (uint8_t)(i * 13 + 1);
	f->len = ELF_CODE_OFF + ELF_CODE_LEN;
}

static Elf64_Phdr *phdr(struct loader_fixture *f, unsigned i)
{
	return (Elf64_Phdr *)(f->image + ELF_PH_OFF) + i;
}

static int load_pvh(struct loader_fixture *f)
{
	assert_true(pvh_detect(f->image, f->len));
	return pvh_load(&f->req, f->image, f->len, &f->entry);
}

static void test_pvh_loads_segments(void **state)
{
	struct loader_fixture *f = *state;

	make_elf64(f, true);
	memset(guest(f, 0x100000), 0xaa, ELF_CODE_LEN + ELF_BSS_LEN + 16);
	assert_int_equal(load_pvh(f), 0);
	assert_int_equal(f->entry.entry, PVH_ENTRY);
	assert_int_equal(f->entry.ebx, BOOT_INFO_ADDR);
	assert_int_equal(f->entry.esi, 0);
	assert_memory_equal(guest(f, 0x100000), f->image + ELF_CODE_OFF, ELF_CODE_LEN);
	/* The bss is zeroed, and not a byte beyond it is touched. */
	for (size_t i = 0; i < ELF_BSS_LEN; i++)
		assert_int_equal(guest(f, 0x100000 + ELF_CODE_LEN)[i], 0);
	assert_int_equal(guest(f, 0x100000 + ELF_CODE_LEN + ELF_BSS_LEN)[0], 0xaa);
}

static void test_pvh_start_info(void **state)
{
	struct loader_fixture *f = *state;
	struct e820_entry e820[E820_MAX_ENTRIES];
	size_t n = e820_build(&f->mem, e820);

	make_elf64(f, true);
	assert_int_equal(load_pvh(f), 0);
	const uint8_t *si = guest(f, BOOT_INFO_ADDR);
	assert_int_equal(rd32(si, 0), 0x336ec578);	/* XEN_HVM_START_MAGIC_VALUE */
	assert_int_equal(rd32(si, 4), 1);		/* version with memmap */
	assert_int_equal(rd32(si, 12), 0);		/* nr_modules */
	assert_int_equal(rd64(si, 24), BOOT_CMDLINE_ADDR);
	assert_int_equal(rd64(si, 32), RSDP_ADDR);
	assert_int_equal(rd64(si, 40), BOOT_MEMMAP_ADDR);
	assert_int_equal(rd32(si, 48), n);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *m = guest(f, BOOT_MEMMAP_ADDR + 24 * i);
		assert_int_equal(rd64(m, 0), e820[i].addr);
		assert_int_equal(rd64(m, 8), e820[i].size);
		assert_int_equal(rd32(m, 16), e820[i].type);
	}
}

static void test_pvh_initrd(void **state)
{
	struct loader_fixture *f = *state;
	static uint8_t initrd[10000];

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5c);
	f->req.initrd = initrd;
	f->req.initrd_len = sizeof(initrd);
	make_elf64(f, true);
	assert_int_equal(load_pvh(f), 0);

	const uint8_t *si = guest(f, BOOT_INFO_ADDR);
	assert_int_equal(rd32(si, 12), 1);
	assert_int_equal(rd64(si, 16), BOOT_MODLIST_ADDR);
	const uint8_t *mod = guest(f, BOOT_MODLIST_ADDR);
	uint64_t addr = rd64(mod, 0);
	assert_int_equal(rd64(mod, 8), sizeof(initrd));
	/* Page aligned, above the kernel's bss, inside low RAM. */
	assert_int_equal(addr % 4096, 0);
	assert_true(addr >= 0x100000 + ELF_CODE_LEN + ELF_BSS_LEN);
	assert_true(addr + sizeof(initrd) <= RAM_SIZE);
	assert_memory_equal(guest(f, addr), initrd, sizeof(initrd));
}

static void test_pvh_initrd_too_big(void **state)
{
	struct loader_fixture *f = *state;

	f->req.initrd = f->mem.host;	/* contents do not matter */
	f->req.initrd_len = RAM_SIZE - MIB;
	make_elf64(f, true);
	assert_int_equal(load_pvh(f), -1);
}

static void test_pvh_needs_note(void **state)
{
	struct loader_fixture *f = *state;

	make_elf64(f, false);
	assert_int_equal(load_pvh(f), -1);

	/* A note named "Xen" of another type is not the entry point. */
	make_elf64(f, false);
	size_t len = phdr(f, 0)->p_filesz;
	len += put_note(f->image + ELF_NOTE_OFF + len, "Xen", 17, PVH_ENTRY);
	phdr(f, 0)->p_filesz = len;
	assert_int_equal(load_pvh(f), -1);
}

static void test_pvh_corrupt_headers(void **state)
{
	struct loader_fixture *f = *state;

	make_elf64(f, true);
	((Elf64_Ehdr *)f->image)->e_phoff = f->len;		/* headers past the end */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	((Elf64_Ehdr *)f->image)->e_phoff = UINT64_MAX - 8;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	((Elf64_Ehdr *)f->image)->e_phnum = 0xffff;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	((Elf64_Ehdr *)f->image)->e_phentsize = 32;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	f->len = ELF_PH_OFF + sizeof(Elf64_Phdr);	/* truncated inside the headers */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	f->len = sizeof(Elf64_Ehdr) - 1;		/* an ELF32-sized header only */
	assert_int_equal(load_pvh(f), -1);
}

static void test_pvh_corrupt_segments(void **state)
{
	struct loader_fixture *f = *state;

	make_elf64(f, true);
	phdr(f, 0)->p_offset = f->len + 1;			/* note outside the file */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 0)->p_filesz = UINT64_MAX;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 1)->p_filesz = ELF_CODE_LEN + 1;		/* code runs past the file */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 1)->p_memsz = ELF_CODE_LEN - 1;		/* filesz > memsz */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 1)->p_paddr = 0x7000;			/* over the boot structures */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 1)->p_paddr = RAM_SIZE - 0x100;		/* runs off the end of RAM */
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	phdr(f, 1)->p_paddr = UINT64_MAX - 0x100;		/* wraps */
	assert_int_equal(load_pvh(f), -1);

	/* A truncated note: its size says more than the segment holds. */
	make_elf64(f, true);
	phdr(f, 0)->p_filesz -= 4;
	assert_int_equal(load_pvh(f), -1);
}

static void test_pvh_wrong_elf(void **state)
{
	struct loader_fixture *f = *state;

	make_elf64(f, true);
	f->image[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	f->image[EI_CLASS] = 3;
	assert_int_equal(load_pvh(f), -1);

	make_elf64(f, true);
	((Elf64_Ehdr *)f->image)->e_machine = EM_AARCH64;
	assert_int_equal(load_pvh(f), -1);

	memset(f->image, 0, 64);
	f->len = 64;
	assert_false(pvh_detect(f->image, f->len));
	memcpy(f->image, ELFMAG, SELFMAG);
	assert_false(pvh_detect(f->image, 51));
}

/* The 32-bit ELF path: same note, Elf32 headers. */
static void test_pvh_elf32(void **state)
{
	struct loader_fixture *f = *state;
	uint8_t *img = f->image;
	Elf32_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS32, ELFDATA2LSB,
			     EV_CURRENT },
		.e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
		.e_phoff = 52, .e_ehsize = sizeof(Elf32_Ehdr),
		.e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 2,
	};

	memset(img, 0, sizeof(f->image));
	memcpy(img, &eh, sizeof(eh));
	size_t note_len = put_note(img + ELF_NOTE_OFF, "Xen", 18, 0x200040);
	Elf32_Phdr ph[2] = {
		{ .p_type = PT_LOAD, .p_offset = ELF_CODE_OFF, .p_paddr = 0x200000,
		  .p_filesz = 16, .p_memsz = 32 },
		{ .p_type = PT_NOTE, .p_offset = ELF_NOTE_OFF, .p_filesz = note_len },
	};
	memcpy(img + 52, ph, sizeof(ph));
	memcpy(img + ELF_CODE_OFF, "0123456789abcdef", 16);
	f->len = ELF_CODE_OFF + 16;
	assert_int_equal(load_pvh(f), 0);
	assert_int_equal(f->entry.entry, 0x200040);
	assert_memory_equal(guest(f, 0x200000), "0123456789abcdef", 16);

	((Elf32_Ehdr *)img)->e_phentsize = sizeof(Elf64_Phdr);
	assert_int_equal(load_pvh(f), -1);
}

/* ---- bzImage ---- */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP_LEN ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PM_LEN 0x1000
#define BZ_INIT_SIZE 0x200000

static void make_bzimage(struct loader_fixture *f)
{
	uint8_t *img = f->image;

	memset(img, 0, sizeof(f->image));
	img[0x1f1] = BZ_SETUP_SECTS;
	wr16(img, 0x1fe, 0xaa55);
	img[0x200] = 0xeb;			/* jmp over the header */
	img[0x201] = 0x66;			/* header ends at 0x268 */
	memcpy(img + 0x202, "HdrS", 4);
	wr16(img, 0x206, 0x020f);
	img[0x211] = 0x01;			/* LOADED_HIGH */
	wr32(img, 0x214, 0x100000);		/* code32_start */
	wr32(img, 0x22c, 0x37ffffff);		/* initrd_addr_max */
	wr32(img, 0x238, 2048);			/* cmdline_size */
	wr32(img, 0x260, BZ_INIT_SIZE);		/* init_size */
	for (size_t i = 0; i < BZ_PM_LEN; i++)
		img[BZ_SETUP_LEN + i] = (uint8_t)(i * 31 + 7);
	f->len = BZ_SETUP_LEN + BZ_PM_LEN;
}

static int load_bz(struct loader_fixture *f)
{
	assert_true(bzimage_detect(f->image, f->len));
	return bzimage_load(&f->req, f->image, f->len, &f->entry);
}

static void test_bzimage_loads(void **state)
{
	struct loader_fixture *f = *state;
	struct e820_entry e820[E820_MAX_ENTRIES];
	size_t n = e820_build(&f->mem, e820);

	make_bzimage(f);
	memset(guest(f, BOOT_INFO_ADDR), 0xcc, 0x1000);
	assert_int_equal(load_bz(f), 0);
	assert_int_equal(f->entry.entry, 0x100000);
	assert_int_equal(f->entry.esi, BOOT_INFO_ADDR);
	assert_int_equal(f->entry.ebx, 0);
	assert_memory_equal(guest(f, KERNEL_LOAD_ADDR), f->image + BZ_SETUP_LEN, BZ_PM_LEN);

	const uint8_t *bp = guest(f, BOOT_INFO_ADDR);
	assert_int_equal(bp[0], 0);				/* zeroed first */
	assert_int_equal(bp[0x1f1], BZ_SETUP_SECTS);		/* header copied */
	assert_memory_equal(bp + 0x202, "HdrS", 4);
	assert_int_equal(bp[0x210], 0xff);			/* type_of_loader */
	assert_int_equal(bp[0x211] & 0x81, 0x81);		/* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(rd32(bp, 0x228), BOOT_CMDLINE_ADDR);	/* cmd_line_ptr */
	assert_int_equal(rd32(bp, 0x218), 0);			/* no ramdisk */
	assert_int_equal(rd32(bp, 0x21c), 0);
	assert_int_equal(rd64(bp, 0x70), RSDP_ADDR);		/* acpi_rsdp_addr */
	assert_int_equal(bp[0x1e8], n);				/* e820_entries */
	assert_memory_equal(bp + 0x2d0, e820, n * sizeof(e820[0]));
	assert_int_equal(bp[0x2d0 + n * 20], 0);
}

static void test_bzimage_initrd(void **state)
{
	struct loader_fixture *f = *state;
	static uint8_t initrd[12345];

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 3);
	f->req.initrd = initrd;
	f->req.initrd_len = sizeof(initrd);
	make_bzimage(f);
	assert_int_equal(load_bz(f), 0);

	const uint8_t *bp = guest(f, BOOT_INFO_ADDR);
	uint32_t addr = rd32(bp, 0x218);
	assert_int_equal(rd32(bp, 0x21c), sizeof(initrd));
	assert_int_equal(addr % 4096, 0);
	/* Clear of the kernel's decompression space, and below the end of RAM. */
	assert_true(addr >= KERNEL_LOAD_ADDR + BZ_INIT_SIZE);
	assert_true(addr + sizeof(initrd) <= RAM_SIZE);
	assert_memory_equal(guest(f, addr), initrd, sizeof(initrd));
}

static void test_bzimage_initrd_addr_max(void **state)
{
	struct loader_fixture *f = *state;
	static uint8_t initrd[4096];

	f->req.initrd = initrd;
	f->req.initrd_len = sizeof(initrd);
	make_bzimage(f);
	wr32(f->image, 0x22c, 0x00ffffff);		/* the kernel can reach 16 MiB */
	assert_int_equal(load_bz(f), 0);
	uint32_t addr = rd32(guest(f, BOOT_INFO_ADDR), 0x218);
	assert_true(addr + sizeof(initrd) <= 0x1000000);
	assert_int_equal(addr, 0x1000000 - 4096);

	/* No room at all between the kernel and initrd_addr_max. */
	make_bzimage(f);
	wr32(f->image, 0x22c, KERNEL_LOAD_ADDR + BZ_INIT_SIZE + 100);
	assert_int_equal(load_bz(f), -1);
}

static void test_bzimage_cmdline_limit(void **state)
{
	struct loader_fixture *f = *state;
	static char line[2048];

	make_bzimage(f);
	memset(line, 'x', sizeof(line) - 1);
	f->req.cmdline = line;				/* 2047 bytes + NUL: fits exactly */
	assert_int_equal(load_bz(f), 0);

	line[sizeof(line) - 1] = '\0';
	wr32(f->image, 0x238, 2047);
	assert_int_equal(load_bz(f), -1);

	wr32(f->image, 0x238, 0);
	f->req.cmdline = "";
	assert_int_equal(load_bz(f), -1);
}

static void test_bzimage_old_protocol(void **state)
{
	struct loader_fixture *f = *state;

	make_bzimage(f);
	wr16(f->image, 0x206, 0x0205);
	assert_int_equal(load_bz(f), -1);
	wr16(f->image, 0x206, 0x0206);
	assert_int_equal(load_bz(f), 0);
}

static void test_bzimage_rejects(void **state)
{
	struct loader_fixture *f = *state;

	make_bzimage(f);
	f->image[0x211] = 0;				/* zImage, loaded low */
	assert_int_equal(load_bz(f), -1);

	make_bzimage(f);
	f->len = BZ_SETUP_LEN;				/* no protected-mode code */
	assert_int_equal(load_bz(f), -1);

	make_bzimage(f);
	f->image[0x1f1] = 200;				/* setup larger than the file */
	assert_int_equal(load_bz(f), -1);

	make_bzimage(f);
	wr32(f->image, 0x260, RAM_SIZE);		/* init_size beyond RAM */
	assert_int_equal(load_bz(f), -1);

	make_bzimage(f);
	f->image[0x1f1] = 0;				/* 0 means 4, as boot.rst says */
	assert_int_equal(load_bz(f), 0);
}

static void test_bzimage_detect(void **state)
{
	struct loader_fixture *f = *state;

	make_bzimage(f);
	assert_true(bzimage_detect(f->image, f->len));
	assert_false(bzimage_detect(f->image, 0x264));
	make_bzimage(f);
	f->image[0x1fe] = 0;
	assert_false(bzimage_detect(f->image, f->len));
	make_bzimage(f);
	f->image[0x205] = 'Z';
	assert_false(bzimage_detect(f->image, f->len));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pvh_loads_segments),
		T(test_pvh_start_info),
		T(test_pvh_initrd),
		T(test_pvh_initrd_too_big),
		T(test_pvh_needs_note),
		T(test_pvh_corrupt_headers),
		T(test_pvh_corrupt_segments),
		T(test_pvh_wrong_elf),
		T(test_pvh_elf32),
		T(test_bzimage_loads),
		T(test_bzimage_initrd),
		T(test_bzimage_initrd_addr_max),
		T(test_bzimage_cmdline_limit),
		T(test_bzimage_old_protocol),
		T(test_bzimage_rejects),
		T(test_bzimage_detect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
