/*
 * vmm/boot/acpi.c: the tables as a guest reads them, walked from the RSDP
 * (ACPI 6.4 §5.2), plus the DSDT's \_S5 against the PM device's SLP_TYP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "hw/acpi_pm.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"

#define BASE ACPI_TABLES_ADDR
#define ROOM ACPI_TABLES_SIZE

static uint8_t buf[ROOM];
static size_t used;

static uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A table at guest address gpa: must lie inside what acpi_build wrote. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
	assert_true(gpa >= BASE);
	assert_true(gpa - BASE + 36 <= used);
	const uint8_t *t = buf + (gpa - BASE);
	uint32_t len = le32(t + 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36);
	assert_true(gpa - BASE + len <= used);
	if (acpi_sum(t, len) != 0)
		fail_msg("%.4s checksum does not sum to zero", sig);
	assert_memory_equal(t + 10, "KESTRL", 6);	/* OEM ID, as the RSDP's */
	return t;
}

static void build(unsigned cpus, unsigned maxcpus)
{
	struct acpi_config cfg = { .cpus = cpus, .maxcpus = maxcpus };

	memset(buf, 0x5a, sizeof(buf));
	used = acpi_build(buf, sizeof(buf), BASE, &cfg);
	assert_true(used > 0);
	assert_true(used <= sizeof(buf));
}

static void test_rsdp(void **state)
{
	build(1, 1);
	/* At base, where acpi_install promises the guest finds it. */
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(acpi_sum(buf, 20), 0);
	assert_int_equal(acpi_sum(buf, 36), 0);
	assert_int_equal(buf[15], 2);			/* revision: ACPI 2.0+ */
	assert_int_equal(le32(buf + 20), 36);		/* length */
	assert_memory_equal(buf + 9, "KESTRL", 6);
	table_at(le32(buf + 16), "RSDT");
	table_at(le64(buf + 24), "XSDT");
}

static void test_rsdp_checksums_are_independent(void **state)
{
	build(1, 1);
	/* Spoil the extended part: the 1.0 checksum must not notice. */
	buf[30] ^= 0x01;
	assert_int_equal(acpi_sum(buf, 20), 0);
	assert_int_not_equal(acpi_sum(buf, 36), 0);
}

static void test_sdt_entries(void **state)
{
	build(2, 4);
	const uint8_t *xsdt = table_at(le64(buf + 24), "XSDT");
	const uint8_t *rsdt = table_at(le32(buf + 16), "RSDT");
	uint32_t xlen = le32(xsdt + 4), rlen = le32(rsdt + 4);

	assert_int_equal(xlen, 36 + 2 * 8);
	assert_int_equal(rlen, 36 + 2 * 4);
	assert_int_equal(le64(xsdt + 36), le32(rsdt + 36));
	assert_int_equal(le64(xsdt + 44), le32(rsdt + 40));
	table_at(le64(xsdt + 36), "FACP");
	table_at(le64(xsdt + 44), "APIC");
}

static const uint8_t *fadt(void)
{
	const uint8_t *xsdt = table_at(le64(buf + 24), "XSDT");

	return table_at(le64(xsdt + 36), "FACP");
}

static void test_fadt(void **state)
{
	build(1, 1);
	const uint8_t *f = fadt();

	assert_int_equal(le32(f + 4), 244);
	assert_int_equal(f[8], 3);
	assert_int_equal(le32(f + 56), 0x600);		/* PM1a_EVT_BLK */
	assert_int_equal(le32(f + 64), 0x604);		/* PM1a_CNT_BLK */
	assert_int_equal(le32(f + 76), 0x608);		/* PM_TMR_BLK */
	assert_int_equal(f[88], 4);			/* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);			/* PM1_CNT_LEN */
	assert_int_equal(f[91], 4);			/* PM_TMR_LEN */
	assert_int_equal(f[46] | f[47] << 8, ACPI_PM_SCI_IRQ);
	assert_int_equal(le32(f + 48), 0);		/* SMI_CMD: already in ACPI mode */
	/* RESET_REG: system I/O port 0xcf9, value 6. */
	assert_int_equal(f[116], 1);
	assert_int_equal(le64(f + 120), 0xcf9);
	assert_int_equal(f[128], 0x06);
	assert_true(le32(f + 112) & (1u << 10));	/* RESET_REG_SUP */
	/* X_PM1a_CNT_BLK GAS agrees with the 32-bit field. */
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(le64(f + 176), 0x604);
}

static void test_fadt_points_at_dsdt_and_facs(void **state)
{
	build(1, 1);
	const uint8_t *f = fadt();
	uint32_t dsdt = le32(f + 40);
	uint32_t facs = le32(f + 36);

	assert_int_equal(le64(f + 140), dsdt);		/* X_DSDT */
	/* §5.2.9: X_FIRMWARE_CTRL must be zero when FIRMWARE_CTRL is set. */
	assert_int_not_equal(facs, 0);
	assert_int_equal(le64(f + 132), 0);
	table_at(dsdt, "DSDT");
	/* FACS: no checksum, but 64-byte aligned (§5.2.10). */
	assert_int_equal(facs % 64, 0);
	assert_true(facs - BASE + 64 <= used);
	assert_memory_equal(buf + (facs - BASE), "FACS", 4);
	assert_int_equal(le32(buf + (facs - BASE) + 4), 64);
}

static void check_madt(unsigned cpus, unsigned maxcpus)
{
	build(cpus, maxcpus);
	const uint8_t *xsdt = table_at(le64(buf + 24), "XSDT");
	const uint8_t *m = table_at(le64(xsdt + 44), "APIC");
	uint32_t len = le32(m + 4);
	unsigned lapics = 0, enabled = 0, ioapics = 0, overrides = 0;

	assert_int_equal(le32(m + 36), 0xfee00000);	/* local APIC address */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;
		assert_true(e[1] >= 2);
		assert_true(off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);		/* processor UID */
			assert_int_equal(e[3], lapics);		/* APIC ID */
			if (le32(e + 4) & 1) {
				/* The enabled ones come first: they are the boot CPUs. */
				assert_int_equal(enabled, lapics);
				enabled++;
			}
			lapics++;
			break;
		case 1:
			ioapics++;
			assert_int_equal(le32(e + 4), 0xfec00000);
			break;
		case 2:
			overrides++;
			break;
		}
		off += e[1];
	}
	assert_int_equal(lapics, maxcpus);
	assert_int_equal(enabled, cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(overrides, 2);
}

static void test_madt(void **state)
{
	check_madt(1, 1);
	check_madt(2, 8);
	check_madt(4, 4);
	check_madt(255, 255);
	check_madt(1, 255);
}

/* Reads an AML integer (ACPI 6.4 §20.2.3 ComputationalData). */
static int aml_integer(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	if (p >= end)
		return -1;
	switch (p[0]) {
	case 0x00: *v = 0; return 0;			/* ZeroOp */
	case 0x01: *v = 1; return 0;			/* OneOp */
	case 0x0a:					/* BytePrefix */
		if (p + 2 > end)
			return -1;
		*v = p[1];
		return 0;
	case 0x0b:					/* WordPrefix */
		if (p + 3 > end)
			return -1;
		*v = (uint64_t)p[1] | (uint64_t)p[2] << 8;
		return 0;
	default:
		return -1;
	}
}

static void test_dsdt_s5_matches_pm_device(void **state)
{
	build(1, 1);
	const uint8_t *f = fadt();
	const uint8_t *dsdt = table_at(le32(f + 40), "DSDT");
	const uint8_t *end = dsdt + le32(dsdt + 4);
	const uint8_t *p = NULL;

	for (const uint8_t *q = dsdt + 36; q + 4 <= end; q++) {
		if (memcmp(q, "_S5_", 4) == 0) {
			p = q + 4;
			break;
		}
	}
	if (!p)
		fail_msg("the DSDT has no \\_S5 object");
	assert_true(p < end);
	assert_int_equal(p[0], 0x12);			/* PackageOp */
	p++;
	/* PkgLength: bits 7-6 of the lead byte count the bytes that follow. */
	unsigned follow = p[0] >> 6;
	p += 1 + follow;
	assert_true(p < end);
	assert_true(p[0] >= 1);				/* NumElements */
	p++;

	uint64_t slp_typ = UINT64_MAX;
	assert_int_equal(aml_integer(p, end, &slp_typ), 0);
	assert_int_equal(slp_typ, ACPI_PM_S5_SLP_TYP);
}

/*
 * -global PIIX4_PM.disable_s3=1 and disable_s4=1 (libvirt's default) are
 * accepted because the guest already sees no S3 or S4: no \_S3/\_S4 object.
 */
static void test_dsdt_offers_no_s3_s4(void **state)
{
	build(1, 1);
	const uint8_t *f = fadt();
	const uint8_t *dsdt = table_at(le32(f + 40), "DSDT");
	const uint8_t *end = dsdt + le32(dsdt + 4);

	for (const uint8_t *q = dsdt + 36; q + 4 <= end; q++) {
		assert_memory_not_equal(q, "_S3_", 4);
		assert_memory_not_equal(q, "_S4_", 4);
	}
}

static void test_too_small(void **state)
{
	struct acpi_config cfg = { .cpus = 1, .maxcpus = 1 };
	static uint8_t small[4096];

	build(1, 1);
	size_t need = used;
	/* Every room short of what is needed fails cleanly; exactly enough works. */
	for (size_t room = 0; room < need; room += 7)
		assert_int_equal(acpi_build(small, room < sizeof(small) ? room : sizeof(small),
					    BASE, &cfg), 0);
	assert_int_equal(acpi_build(buf, need - 1, BASE, &cfg), 0);
	assert_int_equal(acpi_build(buf, need, BASE, &cfg), need);
}

static void test_base_is_honoured(void **state)
{
	struct acpi_config cfg = { .cpus = 1, .maxcpus = 2 };
	static uint8_t other[ROOM];

	build(1, 2);
	memset(other, 0x5a, sizeof(other));
	assert_int_equal(acpi_build(other, sizeof(other), 0x80000, &cfg), used);
	/* Same layout, addresses shifted by the base difference. */
	assert_int_equal(le64(other + 24), le64(buf + 24) - BASE + 0x80000);
	assert_int_equal(le32(other + 16), le32(buf + 16) - BASE + 0x80000);
}

static void test_install(void **state)
{
	struct guest_memory mem;
	struct acpi_config cfg = { .cpus = 1, .maxcpus = 1 };
	uint64_t rsdp = 0;

	memory_layout(&mem, 16 << 20);
	mem.host = calloc(1, 16 << 20);
	assert_non_null(mem.host);
	mem.regions[0].host = mem.host;
	assert_int_equal(acpi_install(&mem, &cfg, &rsdp), 0);
	assert_int_equal(rsdp, ACPI_TABLES_ADDR);
	assert_memory_equal(mem.host + ACPI_TABLES_ADDR, "RSD PTR ", 8);
	free(mem.host);

	/* RAM that ends below the BIOS area cannot hold them. */
	memory_layout(&mem, 0x80000);
	mem.host = calloc(1, 0x80000);
	mem.regions[0].host = mem.host;
	assert_int_equal(acpi_install(&mem, &cfg, &rsdp), -1);
	free(mem.host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp),
		cmocka_unit_test(test_rsdp_checksums_are_independent),
		cmocka_unit_test(test_sdt_entries),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_fadt_points_at_dsdt_and_facs),
		cmocka_unit_test(test_madt),
		cmocka_unit_test(test_dsdt_s5_matches_pm_device),
		cmocka_unit_test(test_dsdt_offers_no_s3_s4),
		cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_base_is_honoured),
		cmocka_unit_test(test_install),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
