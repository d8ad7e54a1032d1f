/*
 * Firmware-boot devices without KVM: fw_cfg (I/O and DMA), the ACPI table
 * loader script run the way SeaBIOS runs it, CMOS boot-order bytes, and the
 * IDE controller: ATA PIO, ATAPI, and DMA descriptors that point outside RAM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/fw_cfg.h"
#include "hw/ide.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/table_loader.h"
#include "vmm/firmware.h"

#define RAM (4u << 20)

static void ram_init(struct guest_memory *mem)
{
	memset(mem, 0, sizeof(*mem));
	mem->host = calloc(1, RAM);
	assert_non_null(mem->host);
	mem->ram_size = RAM;
	mem->regions[0] = (struct memory_region){ .gpa = 0, .size = RAM, .host = mem->host };
	mem->nr_regions = 1;
}

static void out16(struct fw_cfg *fw, uint16_t key)
{
	fw_cfg_io(fw, 0, true, (uint8_t *)&key, 2);
}

static void read_data(struct fw_cfg *fw, void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fw_cfg_io(fw, 1, false, (uint8_t *)buf + i, 1);
}

/* Returns the selector of a named file from the directory, or 0. */
static uint16_t find_file(struct fw_cfg *fw, const char *name, uint32_t *size)
{
	uint32_t count;

	out16(fw, FW_CFG_FILE_DIR);
	read_data(fw, &count, 4);
	count = __builtin_bswap32(count);
	for (uint32_t i = 0; i < count; i++) {
		struct { uint32_t size; uint16_t select, reserved; char name[56]; } f;
		read_data(fw, &f, sizeof(f));
		if (strcmp(f.name, name) == 0) {
			*size = __builtin_bswap32(f.size);
			return __builtin_bswap16(f.select);
		}
	}
	return 0;
}

static void dma(struct fw_cfg *fw, uint64_t desc)
{
	uint32_t hi = 0, lo = __builtin_bswap32((uint32_t)desc);
	fw_cfg_dma_io(fw, 0, true, (uint8_t *)&hi, 4);
	fw_cfg_dma_io(fw, 4, true, (uint8_t *)&lo, 4);
}

static void test_fw_cfg_io_and_dma(void **state)
{
	struct guest_memory mem;
	struct fw_cfg fw;
	char sig[5] = { 0 };
	uint32_t id, size;
	uint8_t dmasig[8];
	uint16_t key;

	ram_init(&mem);
	assert_int_equal(fw_cfg_init(&fw, &mem), 0);
	out16(&fw, FW_CFG_SIGNATURE);
	read_data(&fw, sig, 4);
	assert_string_equal(sig, "QEMU");
	out16(&fw, FW_CFG_ID);
	read_data(&fw, &id, 4);
	assert_int_equal(id, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	fw_cfg_dma_io(&fw, 0, false, dmasig, 8);
	assert_memory_equal(dmasig, "QEMU CFG", 8);

	assert_int_equal(fw_cfg_add_file(&fw, "etc/hello", "hello, firmware", 16), 0);
	key = find_file(&fw, "etc/hello", &size);
	assert_int_equal(key, FW_CFG_FILE_FIRST);
	assert_int_equal(size, 16);

	/* DMA: select + read 16 bytes to 0x2000; descriptor at 0x1000 (big-endian). */
	uint32_t *d = (uint32_t *)(mem.host + 0x1000);
	d[0] = __builtin_bswap32((uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
	d[1] = __builtin_bswap32(16);
	*(uint64_t *)(d + 2) = __builtin_bswap64(0x2000);
	dma(&fw, 0x1000);
	assert_int_equal(d[0], 0);
	assert_string_equal((char *)mem.host + 0x2000, "hello, firmware");

	/* A destination outside RAM is refused with the error bit, nothing written. */
	d[0] = __builtin_bswap32((uint32_t)key << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ);
	*(uint64_t *)(d + 2) = __builtin_bswap64(0xfff00000ULL);
	dma(&fw, 0x1000);
	assert_int_equal(__builtin_bswap32(d[0]), FW_CFG_DMA_CTL_ERROR);
	/* A descriptor outside RAM is ignored. */
	dma(&fw, 0xfffff000ULL);
	/* Unknown keys read as zeros. */
	out16(&fw, 0x1234);
	read_data(&fw, &id, 4);
	assert_int_equal(id, 0);
	fw_cfg_destroy(&fw);
	free(mem.host);
}

/* Reads a whole fw_cfg file by name. */
static uint8_t *load_file(struct fw_cfg *fw, const char *name, uint32_t *size)
{
	uint16_t key = find_file(fw, name, size);
	uint8_t *buf;

	assert_int_not_equal(key, 0);
	buf = malloc(*size);
	out16(fw, key);
	read_data(fw, buf, *size);
	return buf;
}

/* SeaBIOS src/fw/romfile_loader.c, in miniature: blobs placed at fixed addresses. */
static void test_table_loader_as_seabios_runs_it(void **state)
{
	struct guest_memory mem;
	struct fw_cfg fw;
	struct acpi_config cfg = { .cpus = 2, .maxcpus = 4 };
	uint32_t script_len, tables_len, rsdp_len;
	uint8_t *script, *tables, *rsdp;
	uint64_t tables_at = 0x100000, rsdp_at = 0xf0000;

	ram_init(&mem);
	assert_int_equal(fw_cfg_init(&fw, &mem), 0);
	assert_int_equal(table_loader_install(&fw, &cfg), 0);
	script = load_file(&fw, "etc/table-loader", &script_len);
	tables = load_file(&fw, "etc/acpi/tables", &tables_len);
	rsdp = load_file(&fw, "etc/acpi/rsdp", &rsdp_len);
	memcpy(mem.host + tables_at, tables, tables_len);
	memcpy(mem.host + rsdp_at, rsdp, rsdp_len);
	assert_int_equal(script_len % 128, 0);

	for (uint32_t off = 0; off < script_len; off += 128) {
		const uint8_t *e = script + off;
		uint32_t cmd;
		memcpy(&cmd, e, 4);
		if (cmd == 1) {
			assert_true(!strcmp((char *)e + 4, "etc/acpi/rsdp") ||
				    !strcmp((char *)e + 4, "etc/acpi/tables"));
		} else if (cmd == 2) {
			const char *dest = (char *)e + 4, *src = (char *)e + 60;
			uint32_t at;
			uint8_t size = e[120];
			uint64_t v = 0;
			memcpy(&at, e + 116, 4);
			assert_string_equal(src, "etc/acpi/tables");
			uint8_t *base = mem.host + (strcmp(dest, "etc/acpi/rsdp") ? tables_at : rsdp_at);
			memcpy(&v, base + at, size);
			v += tables_at;
			memcpy(base + at, &v, size);
		} else if (cmd == 3) {
			const char *file = (char *)e + 4;
			uint32_t at, start, len;
			memcpy(&at, e + 60, 4);
			memcpy(&start, e + 64, 4);
			memcpy(&len, e + 68, 4);
			uint8_t *base = mem.host + (strcmp(file, "etc/acpi/rsdp") ? tables_at : rsdp_at);
			base[at] = (uint8_t)(base[at] - acpi_sum(base + start, len));
		} else {
			fail_msg("unknown loader command %u", cmd);
		}
	}
	/* Now a guest finds valid tables through the relocated pointers. */
	uint8_t *r = mem.host + rsdp_at;
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(acpi_sum(r, 20), 0);
	assert_int_equal(acpi_sum(r, 36), 0);
	uint64_t xsdt;
	memcpy(&xsdt, r + 24, 8);
	assert_true(xsdt > tables_at && xsdt < tables_at + tables_len);
	uint8_t *x = mem.host + xsdt;
	uint32_t xlen;
	memcpy(&xlen, x + 4, 4);
	assert_memory_equal(x, "XSDT", 4);
	assert_int_equal(acpi_sum(x, xlen), 0);
	uint64_t fadt;
	memcpy(&fadt, x + 36, 8);
	uint8_t *f = mem.host + fadt;
	assert_memory_equal(f, "FACP", 4);
	assert_int_equal(acpi_sum(f, 244), 0);
	uint32_t dsdt;
	memcpy(&dsdt, f + 40, 4);
	assert_memory_equal(mem.host + dsdt, "DSDT", 4);
	free(script);
	free(tables);
	free(rsdp);
	fw_cfg_destroy(&fw);
	free(mem.host);
}

static void test_cmos_boot_order(void **state)
{
	uint8_t f2, f1;

	assert_int_equal(firmware_cmos_boot_order("cad", &f2, &f1), 0);
	assert_int_equal(f2, 0x12);
	assert_int_equal(f1, 0x31);
	assert_int_equal(firmware_cmos_boot_order("dc", &f2, &f1), 0);
	assert_int_equal(f2, 0x23);
	assert_int_equal(f1, 0x01);
	assert_int_equal(firmware_cmos_boot_order("n", &f2, &f1), 0);
	assert_int_equal(f2, 0x04);
	assert_int_equal(firmware_cmos_boot_order("x", &f2, &f1), -1);
	assert_int_equal(firmware_cmos_boot_order("cdan", &f2, &f1), -1);
}

/* --- IDE --- */

struct irq_log {
	int raised;
};

static void log_irq(void *opaque, unsigned line, bool level)
{
	struct irq_log *l = opaque;
	if (level)
		l->raised++;
}

static const struct ide_ops ops = { .set_irq = log_irq };

static struct block_dev *temp_disk(size_t bytes, uint8_t pattern)
{
	char path[] = "/tmp/kestrel-ide-XXXXXX", err[200];
	int fd = mkstemp(path);
	uint8_t *buf = malloc(bytes);
	struct block_dev *bd = NULL;

	assert_true(fd >= 0);
	for (size_t i = 0; i < bytes; i++)
		buf[i] = (uint8_t)(pattern + i / 512);
	assert_int_equal(write(fd, buf, bytes), (ssize_t)bytes);
	close(fd);
	free(buf);
	assert_int_equal(block_open(path, "raw", 0, &bd, err, sizeof(err)), 0);
	unlink(path);
	return bd;
}

static void outb_(struct ide_channel *ch, unsigned reg, uint8_t v)
{
	ide_cmd_io(ch, reg, true, &v, 1);
}

static uint8_t inb_(struct ide_channel *ch, unsigned reg)
{
	uint8_t v;
	ide_cmd_io(ch, reg, false, &v, 1);
	return v;
}

struct ide_fixture {
	struct guest_memory mem;
	struct ide ide;
	struct irq_log irqs;
	struct block_dev *disk, *cd;
};

static int ide_setup(void **state)
{
	struct ide_fixture *f = calloc(1, sizeof(*f));
	struct block_dev *drives[4] = { NULL };
	bool cdrom[4] = { false, false, true, false };

	ram_init(&f->mem);
	f->disk = drives[0] = temp_disk(64 * 512, 0x10);
	f->cd = drives[2] = temp_disk(8 * 2048, 0x80);
	assert_int_equal(ide_init(&f->ide, &f->mem, &ops, &f->irqs, drives, cdrom), 0);
	*state = f;
	return 0;
}

static int ide_teardown(void **state)
{
	struct ide_fixture *f = *state;
	ide_destroy(&f->ide);
	block_close(f->disk);
	block_close(f->cd);
	free(f->mem.host);
	free(f);
	return 0;
}

static void ata_lba28(struct ide_channel *ch, uint32_t lba, uint8_t count, uint8_t cmd)
{
	outb_(ch, 6, 0xe0 | ((lba >> 24) & 0x0f));
	outb_(ch, 2, count);
	outb_(ch, 3, (uint8_t)lba);
	outb_(ch, 4, (uint8_t)(lba >> 8));
	outb_(ch, 5, (uint8_t)(lba >> 16));
	outb_(ch, 7, cmd);
}

static void test_ide_signature_and_pio_read(void **state)
{
	struct ide_fixture *f = *state;
	struct ide_channel *ch = &f->ide.ch[0];
	uint16_t w;

	/* Reset: an ATA signature on the disk, the ATAPI one on the CD. */
	assert_int_equal(inb_(ch, 4), 0);
	assert_int_equal(inb_(&f->ide.ch[1], 4), 0x14);
	assert_int_equal(inb_(&f->ide.ch[1], 5), 0xeb);

	ata_lba28(ch, 3, 2, 0x20);	/* READ SECTORS 3-4 */
	assert_true(inb_(ch, 7) & 0x08);
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < 256; i++) {
			ide_cmd_io(ch, 0, false, (uint8_t *)&w, 2);
			assert_int_equal(w & 0xff, 0x10 + 3 + s);
		}
	}
	assert_int_equal(inb_(ch, 7) & 0x89, 0);	/* not busy, no DRQ, no error */

	/* Past the end of the disk: IDNF, no data. */
	ata_lba28(ch, 63, 2, 0x20);
	assert_true(inb_(ch, 7) & 0x01);
	assert_int_equal(inb_(ch, 1), 0x10);
}

static void bm_write(struct ide *ide, unsigned reg, const void *v, unsigned size)
{
	ide_bm_io(ide, reg, true, (uint8_t *)v, size);
}

static uint8_t bm_status(struct ide *ide)
{
	uint8_t v;
	ide_bm_io(ide, 2, false, &v, 1);
	return v;
}

static void dma_read(struct ide_fixture *f, uint32_t prd_table)
{
	struct ide_channel *ch = &f->ide.ch[0];
	uint8_t clear = 0x06, start = 0x09;

	bm_write(&f->ide, 2, &clear, 1);
	bm_write(&f->ide, 4, &prd_table, 4);
	ata_lba28(ch, 0, 4, 0xc8);	/* READ DMA, 4 sectors */
	bm_write(&f->ide, 0, &start, 1);
}

static void test_ide_dma_prd_checks(void **state)
{
	struct ide_fixture *f = *state;
	struct ide_channel *ch = &f->ide.ch[0];
	uint32_t *prd = (uint32_t *)(f->mem.host + 0x1000);

	/* A good table: two regions, EOT on the second. */
	prd[0] = 0x10000;
	prd[1] = 1024;
	prd[2] = 0x20000;
	prd[3] = 1024 | 0x80000000u;
	dma_read(f, 0x1000);
	assert_int_equal(bm_status(&f->ide) & 0x07, 0x04);	/* interrupt, no error, idle */
	assert_int_equal(inb_(ch, 7) & 0x01, 0);
	assert_int_equal(f->mem.host[0x10000], 0x10);
	assert_int_equal(f->mem.host[0x20000 + 512], 0x13);

	/* A region outside guest RAM: refused, reported, nothing written anywhere. */
	prd[0] = 0xfff00000u;
	prd[1] = 2048 | 0x80000000u;
	dma_read(f, 0x1000);
	assert_int_equal(bm_status(&f->ide) & 0x06, 0x06);
	assert_true(inb_(ch, 7) & 0x01);

	/* A region that starts in RAM and runs past its end. */
	prd[0] = RAM - 512;
	prd[1] = 2048 | 0x80000000u;
	dma_read(f, 0x1000);
	assert_true(bm_status(&f->ide) & 0x02);

	/* The PRD table itself outside RAM, and a table too short for the transfer. */
	dma_read(f, 0xfffff000u);
	assert_true(bm_status(&f->ide) & 0x02);
	prd[0] = 0x10000;
	prd[1] = 512 | 0x80000000u;
	dma_read(f, 0x1000);
	assert_true(bm_status(&f->ide) & 0x02);
	/* The controller still works afterwards. */
	prd[1] = 2048 | 0x80000000u;
	dma_read(f, 0x1000);
	assert_int_equal(bm_status(&f->ide) & 0x07, 0x04);
}

/* A guest selecting the empty slave mid-command: the transfer stays on the master. */
static void test_ide_select_during_command_is_ignored(void **state)
{
	struct ide_fixture *f = *state;
	struct ide_channel *ch = &f->ide.ch[0];
	uint32_t *prd = (uint32_t *)(f->mem.host + 0x1000);
	uint8_t clear = 0x06, start = 0x09, sector[512];
	uint16_t w = 0xabcd;

	prd[0] = 0x10000;
	prd[1] = 2048 | 0x80000000u;
	bm_write(&f->ide, 2, &clear, 1);
	bm_write(&f->ide, 4, &(uint32_t){ 0x1000 }, 4);
	ata_lba28(ch, 8, 4, 0xc8);	/* READ DMA on the master */
	outb_(ch, 6, 0xf0);		/* the slave, which has no disk */
	bm_write(&f->ide, 0, &start, 1);
	assert_int_equal(bm_status(&f->ide) & 0x07, 0x04);
	assert_int_equal(f->mem.host[0x10000], 0x10 + 8);
	assert_int_equal(inb_(ch, 6) & 0x10, 0);

	/* The same with PIO: WRITE SECTORS, a select, then the data. */
	ata_lba28(ch, 5, 1, 0x30);
	outb_(ch, 6, 0xf0);
	for (int i = 0; i < 256; i++)
		ide_cmd_io(ch, 0, true, (uint8_t *)&w, 2);
	assert_int_equal(inb_(ch, 7) & 0x89, 0);
	assert_int_equal(block_pread(f->disk, 5 * 512, sector, sizeof(sector)), 0);
	assert_int_equal(sector[0], 0xcd);

	/* Idle again, the select takes effect. */
	outb_(ch, 6, 0xf0);
	assert_int_equal(inb_(ch, 6) & 0x10, 0x10);
}

static void packet(struct ide_channel *ch, const uint8_t cdb[12], uint16_t bcl)
{
	outb_(ch, 6, 0xa0);
	outb_(ch, 1, 0);
	outb_(ch, 4, (uint8_t)bcl);
	outb_(ch, 5, (uint8_t)(bcl >> 8));
	outb_(ch, 7, 0xa0);
	for (int i = 0; i < 12; i += 2)
		ide_cmd_io(ch, 0, true, (uint8_t *)cdb + i, 2);
}

static void read_bytes(struct ide_channel *ch, uint8_t *out, unsigned n)
{
	for (unsigned i = 0; i < n; i += 2)
		ide_cmd_io(ch, 0, false, out + i, 2);
}

static void test_atapi_capacity_read_and_eject(void **state)
{
	struct ide_fixture *f = *state;
	struct ide_channel *ch = &f->ide.ch[1];
	uint8_t cap[12] = { 0x25 }, rd[12] = { 0x28, 0, 0, 0, 0, 2, 0, 0, 1 };
	uint8_t eject[12] = { 0x1b, 0, 0, 0, 0x02 }, load[12] = { 0x1b, 0, 0, 0, 0x03 };
	uint8_t tur[12] = { 0 }, sense[12] = { 0x03, 0, 0, 0, 18 }, buf[2048];

	packet(ch, cap, 8);
	read_bytes(ch, buf, 8);
	assert_int_equal(buf[3], 7);		/* last block */
	assert_int_equal(buf[6], 0x08);		/* 2048-byte blocks */

	packet(ch, rd, 2048);			/* READ(10) block 2 */
	read_bytes(ch, buf, 2048);
	assert_int_equal(buf[0], 0x80 + 8);	/* 512-byte pattern steps: block 2 = sector 8 */
	assert_int_equal(inb_(ch, 2) & 3, 3);	/* status phase */

	packet(ch, eject, 0);
	packet(ch, tur, 0);
	assert_true(inb_(ch, 7) & 0x01);
	packet(ch, sense, 18);
	read_bytes(ch, buf, 18);
	assert_int_equal(buf[2], 0x02);		/* NOT READY */
	assert_int_equal(buf[12], 0x3a);	/* medium not present */

	packet(ch, load, 0);
	packet(ch, tur, 0);			/* first: UNIT ATTENTION, medium changed */
	assert_true(inb_(ch, 7) & 0x01);
	assert_int_equal(inb_(ch, 1) >> 4, 0x06);
	packet(ch, tur, 0);
	assert_int_equal(inb_(ch, 7) & 0x01, 0);

	/* GET EVENT STATUS NOTIFICATION, polled: a disc is present (byte 5 bit 1). */
	uint8_t gesn[12] = { 0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8 }, lock[12] = { 0x1e, 0, 0, 0, 1 };
	packet(ch, gesn, 8);
	read_bytes(ch, buf, 8);
	assert_int_equal(buf[1], 6);
	assert_int_equal(buf[5], 0x02);
	gesn[1] = 0;				/* asynchronous: not supported */
	packet(ch, gesn, 8);
	assert_true(inb_(ch, 7) & 0x01);
	assert_int_equal(inb_(ch, 1) >> 4, 0x05);	/* ILLEGAL REQUEST */
	/* A locked tray does not open. */
	packet(ch, lock, 0);
	packet(ch, eject, 0);
	assert_true(inb_(ch, 7) & 0x01);
	packet(ch, sense, 18);
	read_bytes(ch, buf, 18);
	assert_int_equal(buf[12], 0x53);	/* medium removal prevented */
	packet(ch, tur, 0);
	assert_int_equal(inb_(ch, 7) & 0x01, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fw_cfg_io_and_dma),
		cmocka_unit_test(test_table_loader_as_seabios_runs_it),
		cmocka_unit_test(test_cmos_boot_order),
		cmocka_unit_test_setup_teardown(test_ide_signature_and_pio_read, ide_setup,
						ide_teardown),
		cmocka_unit_test_setup_teardown(test_ide_dma_prd_checks, ide_setup, ide_teardown),
		cmocka_unit_test_setup_teardown(test_ide_select_during_command_is_ignored,
						ide_setup, ide_teardown),
		cmocka_unit_test_setup_teardown(test_atapi_capacity_read_and_eject, ide_setup,
						ide_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
