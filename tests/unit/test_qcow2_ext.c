/*
 * Extended L2 entries and external data files in the qcow2 driver
 * (src/block/qcow2/cluster_ext.c, header.c, datafile.c): the header
 * fields they change, 128-bit L2 entry decoding per subcluster (qcow2
 * spec "Extended L2 Entries"), the bitmaps zeroing writes, and offset 0
 * as a data cluster of an external data file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "block/qcow2/qcow2.h"

#define MIB (1ULL << 20)

/* A v3 header with cs-byte clusters and the given incompatible bits, parsed. */
static int parse(uint32_t cs, uint64_t incompat, const char *data_file, struct qcow2 **out,
		 char *err, size_t errlen)
{
	uint8_t *buf = calloc(1, cs);
	struct qcow2 *s = calloc(1, sizeof(*s));
	uint32_t off = 112;
	int ret;

	assert_non_null(buf);
	assert_non_null(s);
	st_be32(buf, QCOW2_MAGIC);
	st_be32(buf + 4, 3);
	st_be32(buf + 20, (uint32_t)__builtin_ctz(cs));
	st_be64(buf + 24, 1ULL << 30);
	st_be32(buf + 36, 64);		/* enough for 1 GiB at any cluster size here */
	st_be64(buf + 40, 3ULL * cs);
	st_be64(buf + 48, cs);
	st_be32(buf + 56, 1);
	st_be64(buf + 72, incompat);
	st_be32(buf + 96, 4);
	st_be32(buf + 100, 112);
	if (data_file) {
		st_be32(buf + off, QCOW2_EXT_DATA_FILE);
		st_be32(buf + off + 4, (uint32_t)strlen(data_file));
		memcpy(buf + off + 8, data_file, strlen(data_file));
	}
	err[0] = '\0';
	ret = qcow2_parse_header(s, buf, cs, 8ULL * cs, err, errlen);
	free(buf);
	*out = s;
	return ret;
}

static void test_header_extended_l2(void **state)
{
	struct qcow2 *s;
	char err[256];

	(void)state;
	assert_int_equal(parse(65536, QCOW2_INCOMPAT_EXTL2, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s->ext_l2, 1);
	/* 16-byte entries: half as many per table; 32 subclusters of 2 KiB. */
	assert_int_equal(s->l2_size, 65536 / 16);
	assert_int_equal(s->l2_bits, 12);
	assert_int_equal(s->sc_bits, 11);
	qcow2_free_state(s);
	assert_int_equal(parse(65536, 0, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s->ext_l2, 0);
	assert_int_equal(s->l2_size, 65536 / 8);
	assert_int_equal(s->sc_bits, 16);
	qcow2_free_state(s);
	/* 8 KiB clusters would have 256-byte subclusters: QEMU refuses them. */
	assert_int_equal(parse(8192, QCOW2_INCOMPAT_EXTL2, NULL, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Unsupported subcluster size: 256"));
	qcow2_free_state(s);
	assert_int_equal(parse(16384, QCOW2_INCOMPAT_EXTL2, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s->sc_bits, 9);
	qcow2_free_state(s);
}

static void test_header_data_file(void **state)
{
	struct qcow2 *s;
	char err[256];
	uint8_t *buf = calloc(1, 65536);
	int len;

	(void)state;
	assert_int_equal(parse(65536, QCOW2_INCOMPAT_DATA_FILE, "disk.data", &s, err, sizeof(err)),
			 0);
	assert_true(qcow2_has_data_file(s));
	assert_string_equal(s->data_file_name, "disk.data");
	/* Written back right after the header, before the feature table, as QEMU orders it. */
	s->l1_size = s->h.l1_size;
	len = qcow2_build_header(s, buf, 65536);
	assert_true(len > 0);
	assert_int_equal(ld_be32(buf + 112), QCOW2_EXT_DATA_FILE);
	assert_int_equal(ld_be32(buf + 116), 9);
	assert_memory_equal(buf + 120, "disk.data", 9);
	assert_int_equal(ld_be32(buf + 136), QCOW2_EXT_FEATURE_TABLE);	/* 9 bytes padded to 16 */
	/* Without the incompatible bit the name is not written (QEMU). */
	s->h.incompatible_features = 0;
	len = qcow2_build_header(s, buf, 65536);
	assert_int_equal(ld_be32(buf + 112), QCOW2_EXT_FEATURE_TABLE);
	qcow2_free_state(s);
	free(buf);
}

static struct qcow2 *ext_state(bool data_file)
{
	static struct qcow2 s;

	memset(&s, 0, sizeof(s));
	s.h.version = 3;
	s.ext_l2 = 1;
	s.h.incompatible_features = QCOW2_INCOMPAT_EXTL2 |
				    (data_file ? QCOW2_INCOMPAT_DATA_FILE : 0);
	return &s;
}

static enum qcow2_type sc_type(struct qcow2 *s, uint64_t e, uint64_t bm, unsigned sc)
{
	enum qcow2_type t;

	assert_int_equal(qcow2_subcluster_type(s, e, bm, sc, &t), 0);
	return t;
}

static void test_subcluster_types(void **state)
{
	struct qcow2 *s = ext_state(false);
	uint64_t host = 5 * 65536 | QCOW_OFLAG_COPIED;
	uint64_t bm = (1ULL << 0) | (1ULL << 3) | (1ULL << (32 + 1)) | (1ULL << (32 + 31));
	enum qcow2_type t;

	(void)state;
	/* Allocated cluster: alloc bit -> data, zero bit -> zero, neither -> from below. */
	assert_int_equal(sc_type(s, host, bm, 0), QCOW2_NORMAL);
	assert_int_equal(sc_type(s, host, bm, 1), QCOW2_ZERO_ALLOC);
	assert_int_equal(sc_type(s, host, bm, 2), QCOW2_UNALLOCATED);
	assert_int_equal(sc_type(s, host, bm, 3), QCOW2_NORMAL);
	assert_int_equal(sc_type(s, host, bm, 31), QCOW2_ZERO_ALLOC);
	/* No host cluster: zero bits only; any allocation bit is invalid. */
	assert_int_equal(sc_type(s, 0, 1ULL << (32 + 7), 7), QCOW2_ZERO_PLAIN);
	assert_int_equal(sc_type(s, 0, 1ULL << (32 + 7), 6), QCOW2_UNALLOCATED);
	assert_int_equal(qcow2_subcluster_type(s, 0, 1ULL << 4, 0, &t), -EIO);
	/* A subcluster both allocated and zero makes the whole cluster invalid. */
	assert_int_equal(qcow2_subcluster_type(s, host, (1ULL << 9) | (1ULL << 41), 0, &t), -EIO);
	/* Compressed: the bitmap is not consulted for the type. */
	assert_int_equal(sc_type(s, QCOW_OFLAG_COMPRESSED | 12345, 0, 17), QCOW2_COMPRESSED);
	/* Bit 0 of the entry is reserved with extended L2 entries: not a zero flag. */
	assert_int_equal(qcow2_entry_type(s, host | QCOW_OFLAG_ZERO), QCOW2_NORMAL);
	assert_int_equal(qcow2_entry_type(s, QCOW_OFLAG_ZERO), QCOW2_UNALLOCATED);
}

static void test_data_file_offset_zero(void **state)
{
	struct qcow2 *s = ext_state(true);

	(void)state;
	/* Offset 0 of a data file is a cluster when COPIED says so (QEMU). */
	assert_true(qcow2_has_host(s, QCOW_OFLAG_COPIED));
	assert_false(qcow2_has_host(s, 0));
	assert_int_equal(sc_type(s, QCOW_OFLAG_COPIED, 1, 0), QCOW2_NORMAL);
	assert_int_equal(sc_type(s, QCOW_OFLAG_COPIED, 1, 1), QCOW2_UNALLOCATED);
	s = ext_state(false);
	assert_false(qcow2_has_host(s, QCOW_OFLAG_COPIED));
	s->ext_l2 = 0;
	s->h.incompatible_features = QCOW2_INCOMPAT_DATA_FILE;
	assert_int_equal(qcow2_entry_type(s, QCOW_OFLAG_COPIED), QCOW2_NORMAL);
	assert_int_equal(qcow2_entry_type(s, QCOW_OFLAG_COPIED | QCOW_OFLAG_ZERO),
			 QCOW2_ZERO_ALLOC);
	assert_int_equal(qcow2_entry_type(s, QCOW_OFLAG_ZERO), QCOW2_ZERO_PLAIN);
}

static void test_table_accessors(void **state)
{
	struct qcow2 *s = ext_state(false);
	uint64_t table[8] = { 0 };

	(void)state;
	qcow2_l2_set(s, table, 2, 0x70000 | QCOW_OFLAG_COPIED);
	qcow2_l2_set_bitmap(s, table, 2, 0xff);
	/* Entry i at word 2i, its bitmap at 2i + 1, big endian. */
	assert_int_equal(ld_be64(&table[4]), 0x70000 | QCOW_OFLAG_COPIED);
	assert_int_equal(ld_be64(&table[5]), 0xff);
	assert_int_equal(qcow2_l2_get(s, table, 2), 0x70000 | QCOW_OFLAG_COPIED);
	assert_int_equal(qcow2_l2_bitmap(s, table, 2), 0xff);
	s->ext_l2 = 0;
	qcow2_l2_set(s, table, 1, 0x90000);
	qcow2_l2_set_bitmap(s, table, 1, 0xff);	/* no bitmap in standard entries */
	assert_int_equal(ld_be64(&table[1]), 0x90000);
	assert_int_equal(ld_be64(&table[2]), 0);
	assert_int_equal(qcow2_l2_bitmap(s, table, 1), 0);
}

static void test_zero_entries(void **state)
{
	struct qcow2 *s = ext_state(false);
	uint64_t e, bm;

	(void)state;
	/* A zero cluster keeping its host cluster: every subcluster reads zero. */
	qcow2_zero_entry_ext(s, 0x50000, 0x50000 | QCOW_OFLAG_COPIED | QCOW_OFLAG_ZERO, &e, &bm);
	assert_int_equal(e, 0x50000 | QCOW_OFLAG_COPIED);
	assert_int_equal(bm, QCOW2_BM_ZERO_ALL);
	qcow2_zero_entry_ext(s, 0x50000, QCOW_OFLAG_ZERO, &e, &bm);
	assert_int_equal(e, 0);
	assert_int_equal(bm, QCOW2_BM_ZERO_ALL);
	/* Unmapped without a backing file: plainly unallocated. */
	qcow2_zero_entry_ext(s, 0x50000, 0, &e, &bm);
	assert_int_equal(e, 0);
	assert_int_equal(bm, 0);
}

static void test_metadata_size(void **state)
{
	(void)state;
	/* qemu-img 7.2 measure -o extended_l2=on: fully allocated 10 GiB, 64 KiB clusters. */
	assert_int_equal(qcow2_metadata_size(10240 * MIB, 65536, 16, true), 10740629504ULL);
	assert_int_equal(qcow2_metadata_size(10240 * MIB, 65536, 16, false), 10739318784ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_extended_l2),
		cmocka_unit_test(test_header_data_file),
		cmocka_unit_test(test_subcluster_types),
		cmocka_unit_test(test_data_file_offset_zero),
		cmocka_unit_test(test_table_accessors),
		cmocka_unit_test(test_zero_entries),
		cmocka_unit_test(test_metadata_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
