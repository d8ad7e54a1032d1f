/*
 * The probing table (src/block/probe.c), one case per magic and the near
 * misses around it.  Each expectation is what qemu-img 7.2's bdrv_probe_all
 * picks for the same first sector (checked by hand with `qemu-img info`;
 * tests/system/test_img_probe.py compares the two programs on files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "block/probe.h"

struct probe_case {
	const char *what;
	const char *bytes;
	size_t len;		/* bytes of the literal, NULs included */
	const char *filename;
	const char *format;
};

#define CASE(what, lit, file, fmt) { what, lit, sizeof(lit) - 1, file, fmt }

static const char bochs[] =
	"Bochs Virtual HD Image\0\0\0\0\0\0\0\0\0\0"	/* magic[32] */
	"Redolog\0\0\0\0\0\0\0\0\0"			/* type[16] */
	"Growing\0\0\0\0\0\0\0\0\0";			/* subtype[16] */

static const struct probe_case cases[] = {
	CASE("qcow2 v3", "QFI\xfb\0\0\0\3", NULL, "qcow2"),
	CASE("qcow2 v2", "QFI\xfb\0\0\0\2", NULL, "qcow2"),
	CASE("qcow2 v9: still qcow2, its driver refuses the version", "QFI\xfb\0\0\0\x09", NULL,
	     "qcow2"),
	CASE("qcow v1", "QFI\xfb\0\0\0\1", NULL, "qcow"),
	CASE("QFI magic, version 0", "QFI\xfb\0\0\0\0", NULL, "raw"),
	CASE("qed", "QED\0", NULL, "qed"),
	CASE("QED without its NUL", "QEDX", NULL, "raw"),
	CASE("vmdk4 sparse", "KDMV", NULL, "vmdk"),
	CASE("vmdk3 sparse", "COWD", NULL, "vmdk"),
	CASE("vmdk descriptor naming a host file",
	     "# Disk DescriptorFile\nversion=1\nRW 8 FLAT \"/etc/hostname\" 0\n", NULL, "vmdk"),
	CASE("vmdk descriptor, CR LF and a line of spaces", "# x\r\n  \r\nversion=2\r\n", NULL,
	     "vmdk"),
	CASE("vmdk version line alone", "version=3\n", NULL, "vmdk"),
	CASE("vmdk descriptor without a version line",
	     "# Disk DescriptorFile\nRW 8 FLAT \"/etc/hostname\" 0\n", NULL, "raw"),
	CASE("vmdk: an empty line before version", "\nversion=1\n", NULL, "raw"),
	CASE("vmdk: version 4", "version=4\n", NULL, "raw"),
	CASE("vmdk: version line without its newline", "version=1", NULL, "raw"),
	CASE("vmdk: version line ending in CR only", "version=1\r", NULL, "raw"),
	CASE("vdi", "<<< Oracle VM VirtualBox Disk Image >>>\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	     "\0\0\0\0\0\0\0\0\0\x7f\x10\xda\xbe", NULL, "vdi"),
	CASE("vhdx", "vhdxfile", NULL, "vhdx"),
	CASE("vhdx, one letter off", "vhdxfilE", NULL, "raw"),
	CASE("vpc", "conectix", NULL, "vpc"),
	CASE("parallels", "WithoutFreeSpace\2\0\0\0", NULL, "parallels"),
	CASE("parallels ext", "WithouFreSpacExt\2\0\0\0", NULL, "parallels"),
	CASE("parallels version 3", "WithoutFreeSpace\3\0\0\0", NULL, "raw"),
	CASE("luks1", "LUKS\xba\xbe\0\1", NULL, "luks"),
	CASE("luks2: QEMU 7.2 does not probe it", "LUKS\xba\xbe\0\2", NULL, "raw"),
	CASE("cloop", "#!/bin/sh\n#V2.0 Format\n"
	     "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n", NULL, "cloop"),
	CASE("cloop magic cut short", "#!/bin/sh\n#V2.0 Format\n", NULL, "raw"),
	CASE("dmg goes by the file name", "", "disk.dmg", "dmg"),
	CASE("dmg: the suffix is case sensitive", "", "disk.DMG", "raw"),
	CASE("dmg: a name that is only the suffix", "", ".dmg", "raw"),
	CASE("nothing", "", NULL, "raw"),
	CASE("an MBR", "\xeb\x63\x90\x10\x8e\xd0\xbc\0", NULL, "raw"),
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct probe_case *c = &cases[i];
		const char *got = block_probe_format((const uint8_t *)c->bytes, c->len, c->filename);

		if (strcmp(got, c->format))
			fail_msg("%s: probed as %s, expected %s", c->what, got, c->format);
	}
}

static void test_bochs_versions(void **state)
{
	uint8_t buf[BLOCK_PROBE_SIZE] = { 0 };

	memcpy(buf, bochs, sizeof(bochs) - 1);
	buf[66] = 2;		/* HEADER_VERSION 0x00020000, little-endian at 64 */
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "bochs");
	buf[66] = 1;		/* HEADER_V1 */
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "bochs");
	buf[66] = 3;
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "raw");
	buf[66] = 2;
	buf[48 + 6] = 'x';	/* subtype "Growinx" */
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "raw");
}

/* Only the first 512 bytes count, and a magic elsewhere is data. */
static void test_only_block_0(void **state)
{
	uint8_t buf[4096] = { 0 };

	memcpy(buf + 512, "vhdxfile", 8);
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "raw");
	memcpy(buf + 1, "QFI\xfb\0\0\0\3", 8);
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "raw");
	/* A descriptor's version line past byte 512 is not seen either. */
	memset(buf, '#', 511);
	buf[511] = '\n';
	memcpy(buf + 512, "version=1\n", 10);
	assert_string_equal(block_probe_format(buf, sizeof(buf), NULL), "raw");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bochs_versions),
		cmocka_unit_test(test_only_block_0),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
