/*
 * The setup header patching for BIOS-mediated Linux boot (-kernel with
 * -bios): the values QEMU's x86_load_linux writes, where each piece goes,
 * and every refusal with its message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/linuxboot.h"

#define FILE_LEN (64u << 10)
#define MiB (1ULL << 20)

static uint8_t image[FILE_LEN];
static char err[256];

static uint32_t rd32(size_t off)
{
	uint32_t v;
	memcpy(&v, image + off, 4);
	return v;
}

static uint16_t rd16(size_t off)
{
	uint16_t v;
	memcpy(&v, image + off, 2);
	return v;
}

static void wr32(size_t off, uint32_t v) { memcpy(image + off, &v, 4); }
static void wr16(size_t off, uint16_t v) { memcpy(image + off, &v, 2); }

/* A bzImage header as a 6.1 kernel carries it: protocol 2.15, 27 setup sectors. */
static void make_bzimage(uint16_t version)
{
	memset(image, 0, sizeof(image));
	image[0x1f1] = 27;
	wr16(0x1fe, 0xaa55);
	memcpy(image + 0x202, "HdrS", 4);
	wr16(0x206, version);
	image[0x211] = 0x01;		/* LOADED_HIGH */
	wr32(0x22c, 0x7fffffff);	/* initrd_addr_max */
	wr16(0x236, 0);			/* xloadflags */
	wr32(0x238, 2048);		/* cmdline_size */
	wr32(0x260, 8 * MiB);		/* init_size */
}

static int prepare(const char *cmdline, uint64_t initrd, uint64_t ram,
		   struct linuxboot_plan *plan)
{
	err[0] = 0;
	return linuxboot_prepare(image, FILE_LEN, cmdline, initrd, ram, plan, err, sizeof(err));
}

static void test_header_as_qemu_patches_it(void **state)
{
	struct linuxboot_plan p;
	(void)state;

	make_bzimage(0x20f);
	assert_int_equal(prepare("console=ttyS0", 2023936, 128 * MiB, &p), 0);
	assert_int_equal(image[0x210], 0xb0);			/* type_of_loader: QEMU */
	assert_int_equal(image[0x211], 0x81);			/* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(rd16(0x224), 0xfe00);			/* heap_end_ptr */
	assert_int_equal(rd32(0x228), 0x20000);			/* cmd_line_ptr */
	/* Highest page below 128 MiB less QEMU's 0x28000 of ACPI data. */
	uint32_t want = (uint32_t)((128 * MiB - 0x28000 - 1 - 2023936) & ~4095ULL);
	assert_int_equal(rd32(0x218), want);			/* ramdisk_image */
	assert_int_equal(rd32(0x21c), 2023936);			/* ramdisk_size */
	assert_int_equal(rd16(0x1fa), 0);			/* vid_mode untouched */

	assert_int_equal(p.setup_addr, 0x10000);
	assert_int_equal(p.setup_size, 28 * 512);
	assert_int_equal(p.kernel_addr, 0x100000);
	assert_int_equal(p.kernel_size, FILE_LEN - 28 * 512);
	assert_int_equal(p.cmdline_addr, 0x20000);
	assert_int_equal(p.cmdline_size, strlen("console=ttyS0") + 1);
	assert_int_equal(p.initrd_addr, want);
	assert_int_equal(p.initrd_size, 2023936);
}

static void test_no_initrd_and_default_setup_sects(void **state)
{
	struct linuxboot_plan p;
	(void)state;

	make_bzimage(0x20f);
	image[0x1f1] = 0;	/* boot.rst: 0 means 4 */
	assert_int_equal(prepare("", 0, 64 * MiB, &p), 0);
	assert_int_equal(p.setup_size, 5 * 512);
	assert_int_equal(p.initrd_addr, 0);
	assert_int_equal(p.initrd_size, 0);
	assert_int_equal(rd32(0x218), 0);
	assert_int_equal(rd32(0x21c), 0);
	assert_int_equal(p.cmdline_size, 1);
}

/* initrd_addr_max wins below the top of RAM; XLF_CAN_BE_LOADED_ABOVE_4G lifts it. */
static void test_initrd_limits(void **state)
{
	struct linuxboot_plan p;
	(void)state;

	make_bzimage(0x20f);
	assert_int_equal(prepare("", 16 * MiB, 3072 * MiB, &p), 0);
	assert_int_equal(p.initrd_addr, (0x7fffffffu - 16 * MiB) & ~4095u);

	make_bzimage(0x20f);
	wr16(0x236, 0x02);
	assert_int_equal(prepare("", 16 * MiB, 3072 * MiB, &p), 0);
	assert_int_equal(p.initrd_addr,
			 (uint32_t)((3072 * MiB - 0x28000 - 1 - 16 * MiB) & ~4095ULL));

	/* Before 2.03 the field is absent and the limit is 0x37ffffff. */
	make_bzimage(0x202);
	wr32(0x22c, 0);
	assert_int_equal(prepare("", 1 * MiB, 3072 * MiB, &p), 0);
	assert_int_equal(p.initrd_addr, 0x38000000u - 1 * MiB - 4096);
}

static void test_vga_argument(void **state)
{
	struct linuxboot_plan p;
	(void)state;

	make_bzimage(0x20f);
	assert_int_equal(prepare("quiet vga=ext", 0, 64 * MiB, &p), 0);
	assert_int_equal(rd16(0x1fa), 0xfffe);
	make_bzimage(0x20f);
	assert_int_equal(prepare("vga=0x317 quiet", 0, 64 * MiB, &p), 0);
	assert_int_equal(rd16(0x1fa), 0x317);
	make_bzimage(0x20f);
	assert_int_equal(prepare("vga=normal", 0, 64 * MiB, &p), 0);
	assert_int_equal(rd16(0x1fa), 0xffff);
	make_bzimage(0x20f);
	assert_int_equal(prepare("xvga=7", 0, 64 * MiB, &p), 0);
	assert_int_equal(rd16(0x1fa), 0);
	make_bzimage(0x20f);
	assert_int_equal(prepare("vga=12x", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "invalid 'vga=' kernel parameter"));
}

static void test_refusals(void **state)
{
	struct linuxboot_plan p;
	(void)state;

	/* A PVH ELF or anything else without "HdrS". */
	make_bzimage(0x20f);
	memcpy(image + 0x202, "\x7f" "ELF", 4);
	assert_int_equal(prepare("", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "not a Linux bzImage"));

	make_bzimage(0x201);
	assert_int_equal(prepare("", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "boot protocol 2.01 is too old"));

	make_bzimage(0x20f);
	image[0x211] = 0;	/* a zImage */
	assert_int_equal(prepare("", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "zImage"));

	make_bzimage(0x20f);
	image[0x1f1] = 200;	/* setup larger than the file */
	assert_int_equal(prepare("", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "invalid kernel header"));

	make_bzimage(0x20f);
	assert_int_equal(prepare("", 0, 8 * MiB, &p), -1);
	assert_non_null(strstr(err, "increase -m"));

	make_bzimage(0x20f);
	wr32(0x238, 8);
	assert_int_equal(prepare("console=ttyS0", 0, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "at most 8"));

	/* As QEMU: an initrd as large as the allowed range is refused with both numbers. */
	make_bzimage(0x20f);
	assert_int_equal(prepare("", 64 * MiB, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "initrd is too large (max: 66945023, need 67108864)"));

	/* Below the limit but into the decompressing kernel. */
	make_bzimage(0x20f);
	assert_int_equal(prepare("", 60 * MiB, 64 * MiB, &p), -1);
	assert_non_null(strstr(err, "above the kernel"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_as_qemu_patches_it),
		cmocka_unit_test(test_no_initrd_and_default_setup_sects),
		cmocka_unit_test(test_initrd_limits),
		cmocka_unit_test(test_vga_argument),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
