/*
 * The floppy controller and ISA DMA without KVM, driven the way SeaBIOS's
 * floppy.c drives them: reset and its four sense-interrupt polls,
 * recalibrate, read ID, READ DATA through DMA channel 2 across the head
 * boundary, WRITE DATA, and the hostile cases (DMA outside RAM, a masked
 * channel, sectors that do not exist, a read-only image, wrong image sizes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/fdc.h"
#include "hw/i8237.h"

#define RAM (1u << 20)

struct fixture {
	struct guest_memory mem;
	struct i8237 dma;
	struct fdc fdc;
	struct block_dev *disk;
	char path[64];
	int irq_level, irq_raises;
};

static void set_irq(void *opaque, bool level)
{
	struct fixture *f = opaque;

	f->irq_raises += level && !f->irq_level;
	f->irq_level = level;
}

static const struct fdc_ops ops = { .set_irq = set_irq };

/* A 1.44 MB image whose every sector starts with its LBA (16 bits) and is filled with it. */
static struct block_dev *make_image(struct fixture *f, size_t size, unsigned flags)
{
	char err[200];
	struct block_dev *bd = NULL;
	int fd;
	uint8_t sector[512];

	strcpy(f->path, "/tmp/kestrel-fdc-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (size_t lba = 0; lba < size / 512; lba++) {
		memset(sector, (uint8_t)lba, sizeof(sector));
		sector[0] = (uint8_t)lba;
		sector[1] = (uint8_t)(lba >> 8);
		assert_int_equal(write(fd, sector, 512), 512);
	}
	close(fd);
	assert_int_equal(block_open(f->path, "raw", flags, &bd, err, sizeof(err)), 0);
	return bd;
}

static int setup_flags(void **state, unsigned flags)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct block_dev *drives[FDC_MAX_DRIVES] = { NULL };
	char err[200];

	f->mem.host = calloc(1, RAM);
	f->mem.ram_size = RAM;
	f->mem.regions[0] = (struct memory_region){ .gpa = 0, .size = RAM, .host = f->mem.host };
	f->mem.nr_regions = 1;
	i8237_init(&f->dma, &f->mem);
	f->disk = drives[0] = make_image(f, FDC_IMAGE_SIZE, flags);
	assert_int_equal(fdc_init(&f->fdc, &f->dma, &ops, f, drives, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_flags(state, 0); }
static int setup_ro(void **state) { return setup_flags(state, BLOCK_RDONLY); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	fdc_destroy(&f->fdc);
	i8237_destroy(&f->dma);
	block_close(f->disk);
	unlink(f->path);
	free(f->mem.host);
	free(f);
	return 0;
}

static void out(struct fixture *f, unsigned port, uint8_t v)
{
	if (port == FDC_DIR_PORT)
		fdc_dir_io(&f->fdc, 0, true, &v, 1);
	else if (port >= FDC_PORT && port < FDC_PORT + FDC_NR_PORTS)
		fdc_io(&f->fdc, port - FDC_PORT, true, &v, 1);
	else if (port < I8237_NR_PORTS)
		i8237_io(&f->dma, port, true, &v, 1);
	else
		i8237_page_io(&f->dma, port - I8237_PAGE_PORT, true, &v, 1);
}

static uint8_t in(struct fixture *f, unsigned port)
{
	uint8_t v = 0;

	fdc_io(&f->fdc, port - FDC_PORT, false, &v, 1);
	return v;
}

/* Sends a command, checking RQM before each byte as floppy_pio does. */
static void command(struct fixture *f, const uint8_t *bytes, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t msr = in(f, 0x3f4);
		assert_true(msr & 0x80);
		assert_false(msr & 0x40);
		out(f, 0x3f5, bytes[i]);
	}
}

static unsigned result(struct fixture *f, uint8_t *res, unsigned max)
{
	unsigned n = 0;

	while ((in(f, 0x3f4) & 0xc0) == 0xc0) {
		assert_true(n < max);
		res[n++] = in(f, 0x3f5);
	}
	assert_int_equal(in(f, 0x3f4), 0x80);	/* back to the command phase */
	return n;
}

/* floppy_cmd's DMA programming: channel 2, single mode, write to memory (0x46). */
static void dma_setup(struct fixture *f, uint32_t addr, uint16_t bytes, uint8_t mode)
{
	uint16_t end = (uint16_t)(bytes - 1);

	out(f, 0x0a, 0x06);
	out(f, 0x0c, 0);
	out(f, 0x04, (uint8_t)addr);
	out(f, 0x04, (uint8_t)(addr >> 8));
	out(f, 0x0c, 0);
	out(f, 0x05, (uint8_t)end);
	out(f, 0x05, (uint8_t)(end >> 8));
	out(f, 0x0b, mode);
	out(f, 0x81, (uint8_t)(addr >> 16));
	out(f, 0x0a, 0x02);
}

static void test_reset_recalibrate_and_read_id(void **state)
{
	struct fixture *f = *state;
	uint8_t res[8];
	const uint8_t sense[] = { 0x08 }, recal[] = { 0x07, 0x00 }, readid[] = { 0x4a, 0x00 };

	/* Reset and leave it: one interrupt, four ready-change statuses (drives 0-3). */
	out(f, 0x3f2, 0x08);
	assert_int_equal(in(f, 0x3f4), 0);
	out(f, 0x3f2, 0x0c);
	assert_int_equal(f->irq_level, 1);
	for (unsigned d = 0; d < 4; d++) {
		command(f, sense, 1);
		assert_int_equal(result(f, res, 8), 2);
		assert_int_equal(res[0], 0xc0 | d);
	}
	assert_int_equal(f->irq_level, 0);
	/* Nothing pending now: an invalid-command status. */
	command(f, sense, 1);
	assert_int_equal(result(f, res, 8), 1);
	assert_int_equal(res[0], 0x80);

	out(f, 0x3f2, 0x1c);	/* motor A on, DMA and IRQ, drive 0 */
	command(f, recal, 2);
	assert_int_equal(f->irq_raises, 2);
	assert_int_equal(in(f, 0x3f4), 0x80);	/* no result phase */
	command(f, sense, 1);
	assert_int_equal(result(f, res, 8), 2);
	assert_int_equal(res[0], 0x20);		/* seek end, drive 0 */
	assert_int_equal(res[1], 0);

	command(f, readid, 2);
	assert_int_equal(f->irq_raises, 3);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0);
	assert_int_equal(res[6], 2);		/* 512-byte sectors */
	assert_int_equal(f->irq_level, 0);
}

/* SeaBIOS's floppy_read of 19 sectors from C0 H0 S2: on through head 1 (MT). */
static void test_read_across_the_head_boundary(void **state)
{
	struct fixture *f = *state;
	const uint8_t *ram = f->mem.host;
	uint8_t res[8];
	const uint8_t read[] = { 0xe6, 0x00, 0, 0, 2, 2, 2 + 19 - 1, 0x1b, 0xff };

	out(f, 0x3f2, 0x1c);
	dma_setup(f, 0x18000, 19 * 512, 0x46);
	command(f, read, 9);
	assert_int_equal(f->irq_level, 1);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0);
	assert_int_equal(res[1], 0);
	/* The next sector would be C0 H1 S3 (LBA 20). */
	assert_int_equal(res[3], 0);
	assert_int_equal(res[4], 1);
	assert_int_equal(res[5], 3);
	for (unsigned i = 0; i < 19; i++) {
		unsigned lba = 1 + i;
		assert_int_equal(ram[0x18000 + i * 512], lba & 0xff);
		assert_int_equal(ram[0x18000 + i * 512 + 511], lba & 0xff);
	}
	assert_int_equal(ram[0x18000 + 19 * 512], 0);	/* not one byte past the count */
	/* Terminal count: the channel masked itself and says so once. */
	uint8_t st = 0;
	i8237_io(&f->dma, 0x08, false, &st, 1);
	assert_int_equal(st & 0x04, 0x04);
	assert_int_equal(i8237_remaining(&f->dma, 2), 0);

	/* The last sector of the disk: C79 H1 S18 is LBA 2879. */
	const uint8_t last[] = { 0xe6, 0x04, 79, 1, 18, 2, 18, 0x1b, 0xff };
	dma_setup(f, 0x20000, 512, 0x46);
	command(f, last, 9);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0);
	assert_int_equal(ram[0x20000] | ram[0x20001] << 8, 2879);
}

static void test_write_data(void **state)
{
	struct fixture *f = *state;
	uint8_t res[8], back[512];
	const uint8_t write[] = { 0xc5, 0x04, 2, 1, 5, 2, 5, 0x1b, 0xff };

	memset(f->mem.host + 0x30000, 0x5a, 512);
	out(f, 0x3f2, 0x1c);
	dma_setup(f, 0x30000, 512, 0x4a);
	command(f, write, 9);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0);
	assert_int_equal(block_pread(f->disk, 94 * 512, back, 512), 0);	/* C2 H1 S5 */
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(back[i], 0x5a);
}

static void test_hostile_transfers(void **state)
{
	struct fixture *f = *state;
	uint8_t res[8];
	const uint8_t read[] = { 0xe6, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff };
	const uint8_t bad_sector[] = { 0xe6, 0x00, 0, 0, 19, 2, 19, 0x1b, 0xff };
	const uint8_t bad_cyl[] = { 0xe6, 0x00, 80, 0, 1, 2, 18, 0x1b, 0xff };
	const uint8_t bad_size[] = { 0xe6, 0x00, 0, 0, 1, 3, 18, 0x1b, 0xff };
	const uint8_t drive_b[] = { 0xe6, 0x01, 0, 0, 1, 2, 18, 0x1b, 0xff };

	out(f, 0x3f2, 0x1c);
	/* Page 0xff: 16 MiB - 64 KiB, far outside this guest's 1 MiB. */
	dma_setup(f, 0xff0000, 512, 0x46);
	command(f, read, 9);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0x40);	/* abnormal termination */
	assert_int_equal(res[1], 0x10);		/* overrun: nobody took the data */

	/* The channel masked: no transfer, an error, not a hang. */
	out(f, 0x0a, 0x06);
	command(f, read, 9);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0x40);

	/* Sectors the medium does not have, a sector size other than 512, no drive B:. */
	const uint8_t *bad[] = { bad_sector, bad_cyl, bad_size, drive_b };
	for (unsigned i = 0; i < 4; i++) {
		dma_setup(f, 0x10000, 512, 0x46);
		command(f, bad[i], 9);
		assert_int_equal(result(f, res, 8), 7);
		assert_int_equal(res[0] & 0xc0, 0x40);
		assert_int_equal(res[1], 0x04);	/* no data */
	}

	/* Unknown commands: a one-byte invalid status. */
	const uint8_t unknown[] = { 0x1f };
	command(f, unknown, 1);
	assert_int_equal(result(f, res, 8), 1);
	assert_int_equal(res[0], 0x80);
	const uint8_t version[] = { 0x10 };
	command(f, version, 1);
	assert_int_equal(result(f, res, 8), 1);
	assert_int_equal(res[0], 0x90);
}

static void test_read_only_image_refuses_writes(void **state)
{
	struct fixture *f = *state;
	uint8_t res[8];
	const uint8_t write[] = { 0xc5, 0x00, 0, 0, 1, 2, 1, 0x1b, 0xff };
	const uint8_t status[] = { 0x04, 0x00 };

	out(f, 0x3f2, 0x1c);
	command(f, status, 2);
	assert_int_equal(result(f, res, 8), 1);
	assert_int_equal(res[0] & 0x40, 0x40);	/* ST3 write protected */
	dma_setup(f, 0x10000, 512, 0x4a);
	command(f, write, 9);
	assert_int_equal(result(f, res, 8), 7);
	assert_int_equal(res[0] & 0xc0, 0x40);
	assert_int_equal(res[1], 0x02);		/* not writable */
}

static void test_only_144mb_images(void **state)
{
	struct fixture f = { 0 };
	struct i8237 dma;
	struct fdc fdc;
	struct block_dev *drives[FDC_MAX_DRIVES] = { NULL };
	char err[200];
	(void)state;

	i8237_init(&dma, &f.mem);
	drives[1] = make_image(&f, 720 * 1024, 0);
	assert_int_equal(fdc_init(&fdc, &dma, &ops, &f, drives, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "floppy B: the image has 737280 bytes"));
	block_close(drives[1]);
	unlink(f.path);
	i8237_destroy(&dma);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_recalibrate_and_read_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_across_the_head_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_transfers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_image_refuses_writes, setup_ro,
						teardown),
		cmocka_unit_test(test_only_144mb_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
