/*
 * qcow2 header parser and validator (src/block/qcow2/header.c): valid v2
 * and v3 headers parse; every field that is absurd alone or against the file
 * size is refused with a message, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "block/qcow2/qcow2.h"

#define CS 65536

struct hdr {
	uint8_t buf[CS];
	uint64_t file_size;
};

/* A 1 GiB v3 image as qemu-img creates it: refcount table at 1, block at 2, L1 at 3. */
static void make_v3(struct hdr *h)
{
	memset(h->buf, 0, sizeof(h->buf));
	st_be32(h->buf, QCOW2_MAGIC);
	st_be32(h->buf + 4, 3);
	st_be32(h->buf + 20, 16);
	st_be64(h->buf + 24, 1ULL << 30);
	st_be32(h->buf + 36, 2);
	st_be64(h->buf + 40, 3 * CS);
	st_be64(h->buf + 48, CS);
	st_be32(h->buf + 56, 1);
	st_be32(h->buf + 96, 4);
	st_be32(h->buf + 100, 112);
	h->file_size = 4 * CS;
}

static void make_v2(struct hdr *h)
{
	make_v3(h);
	st_be32(h->buf + 4, 2);
	memset(h->buf + 72, 0, 40);
}

static int parse(struct hdr *h, char *err, size_t errlen, struct qcow2 **out)
{
	struct qcow2 *s = calloc(1, sizeof(*s));
	int ret;

	assert_non_null(s);
	err[0] = '\0';
	ret = qcow2_parse_header(s, h->buf, sizeof(h->buf), h->file_size, err, errlen);
	if (out)
		*out = s;
	else
		qcow2_free_state(s);
	return ret;
}

static void refused(struct hdr *h, const char *needle)
{
	char err[512];

	assert_int_equal(parse(h, err, sizeof(err), NULL), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_valid_v3(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[256];

	make_v3(&h);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_int_equal(s->cluster_size, CS);
	assert_int_equal(s->l2_size, CS / 8);
	assert_int_equal(s->refcount_max, 0xffff);
	assert_int_equal(s->rb_bits, 15);
	assert_int_equal(s->l1_size, 2);
	assert_int_equal(s->reftable_size, CS / 8);
	/* Compressed descriptors: 62 - (cluster_bits - 8) offset bits. */
	assert_int_equal(s->csize_shift, 54);
	assert_int_equal(s->csize_mask, 0xff);
	qcow2_free_state(s);
}

static void test_valid_v2(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[256];

	make_v2(&h);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_int_equal(s->h.version, 2);
	assert_int_equal(s->refcount_order, 4);
	assert_int_equal(s->h.header_length, 72);
	qcow2_free_state(s);
}

static void test_extensions(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[256];
	uint8_t *p;

	make_v3(&h);
	p = h.buf + 112;
	st_be32(p, QCOW2_EXT_BACKING_FORMAT);
	st_be32(p + 4, 5);
	memcpy(p + 8, "qcow2", 5);
	p += 16;
	st_be32(p, 0x12345678);		/* unknown: kept for rewriting */
	st_be32(p + 4, 3);
	memcpy(p + 8, "abc", 3);
	p += 16;
	st_be32(p, QCOW2_EXT_END);
	st_be64(h.buf + 8, 1024);
	st_be32(h.buf + 16, 8);
	memcpy(h.buf + 1024, "base.img", 8);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_string_equal(s->backing_file, "base.img");
	assert_string_equal(s->backing_fmt, "qcow2");
	assert_int_equal(s->nb_exts, 1);
	assert_int_equal(s->exts[0].type, 0x12345678);
	assert_memory_equal(s->exts[0].data, "abc", 3);

	/* The rebuilt header keeps the unknown extension and the backing file. */
	{
		uint8_t out[CS];
		struct qcow2 *t = calloc(1, sizeof(*t));
		int len = qcow2_build_header(s, out, sizeof(out));
		assert_true(len > 0);
		assert_int_equal(qcow2_parse_header(t, out, sizeof(out), h.file_size, err,
						    sizeof(err)), 0);
		assert_string_equal(t->backing_file, "base.img");
		assert_string_equal(t->backing_fmt, "qcow2");
		assert_int_equal(t->nb_exts, 1);
		assert_int_equal(t->exts[0].type, 0x12345678);
		assert_non_null(t->feature_table);	/* 64 KiB clusters: names written */
		qcow2_free_state(t);
	}
	qcow2_free_state(s);
}

static void test_extension_overflow(void **state)
{
	struct hdr h;

	make_v3(&h);
	st_be32(h.buf + 112, 0x1234);
	st_be32(h.buf + 116, 0xfffffff0);
	refused(&h, "extension length");
	make_v3(&h);
	st_be32(h.buf + 112, QCOW2_EXT_BACKING_FORMAT);
	st_be32(h.buf + 116, 40);
	refused(&h, "too large");
}

static void test_bad_basics(void **state)
{
	struct hdr h;

	make_v3(&h);
	st_be32(h.buf, 0x12345678);
	refused(&h, "not in qcow2 format");
	make_v3(&h);
	st_be32(h.buf + 4, 4);
	refused(&h, "Unsupported qcow2 version 4");
	make_v3(&h);
	st_be32(h.buf + 20, 8);
	refused(&h, "cluster size");
	make_v3(&h);
	st_be32(h.buf + 20, 22);
	refused(&h, "cluster size");
	make_v3(&h);
	h.file_size = 50;
	refused(&h, "truncated");
	make_v3(&h);
	st_be32(h.buf + 100, 100);
	refused(&h, "too short");
	make_v3(&h);
	st_be32(h.buf + 100, CS + 8);
	refused(&h, "exceeds cluster size");
}

static void test_features(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[512];

	make_v3(&h);
	st_be64(h.buf + 72, 1ULL << 63);
	refused(&h, "Unknown incompatible feature: 8000000000000000");
	/* Extended L2 entries and external data files are supported: only the rest is named. */
	make_v3(&h);
	st_be64(h.buf + 72, QCOW2_INCOMPAT_EXTL2 | (1ULL << 40));
	refused(&h, "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000000");
	/* Raw external data without the external data file (QEMU refuses it too). */
	make_v3(&h);
	st_be64(h.buf + 88, QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	refused(&h, "data-file-raw requires a data file");
	/* Known bits and unknown compatible/autoclear bits are fine. */
	make_v3(&h);
	st_be64(h.buf + 72, QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT);
	st_be64(h.buf + 80, ~0ULL);
	st_be64(h.buf + 88, ~QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	qcow2_free_state(s);
}

/* A feature name table extension after the 112-byte header: the last one counts (QEMU). */
static void put_feature_table(uint8_t *p, int type, int bit, const char *name)
{
	st_be32(p, QCOW2_EXT_FEATURE_TABLE);
	st_be32(p + 4, 48);
	p[8] = (uint8_t)type;
	p[9] = (uint8_t)bit;
	memcpy(p + 10, name, strlen(name));
}

static void test_feature_names_from_image(void **state)
{
	struct hdr h;

	(void)state;
	make_v3(&h);
	st_be64(h.buf + 72, (1ULL << 9) | (1ULL << 12));
	put_feature_table(h.buf + 112, 0, 12, "overwritten by the next table");
	put_feature_table(h.buf + 112 + 56, 0, 9, "my shiny feature");
	refused(&h, "Unsupported qcow2 feature(s): my shiny feature, Unknown incompatible "
		    "feature: 1000");
	/* A broken extension list ends the scan: the refusal still comes, unnamed. */
	make_v3(&h);
	st_be64(h.buf + 72, 1ULL << 9);
	st_be32(h.buf + 112, QCOW2_EXT_FEATURE_TABLE);
	st_be32(h.buf + 116, 0xffffff00u);
	refused(&h, "Unsupported qcow2 feature(s): Unknown incompatible feature: 200");
}

static void test_compression_type(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[256];

	make_v3(&h);
	h.buf[104] = 1;
	refused(&h, "compression type bit is not set");
	st_be64(h.buf + 72, QCOW2_INCOMPAT_COMPRESSION);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_int_equal(s->h.compression_type, 1);
	qcow2_free_state(s);
	h.buf[104] = 0;
	refused(&h, "compression type bit is set");
	h.buf[104] = 7;
	refused(&h, "Unknown compression type 7");
	/* With header_length 104 there is no compression byte at all. */
	make_v3(&h);
	st_be32(h.buf + 100, 104);
	h.buf[104] = 1;
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_int_equal(s->h.compression_type, 0);
	qcow2_free_state(s);
}

static void test_tables_against_file(void **state)
{
	struct hdr h;

	make_v3(&h);
	st_be64(h.buf + 40, 1ULL << 50);
	refused(&h, "L1 table is past the end of the file");
	make_v3(&h);
	st_be64(h.buf + 40, 3 * CS + 8);
	refused(&h, "Invalid L1 table offset");
	make_v3(&h);
	st_be32(h.buf + 36, 1);
	refused(&h, "L1 table is too small");
	make_v3(&h);
	st_be32(h.buf + 36, 0xffffffff);
	refused(&h, "too large");
	make_v3(&h);
	st_be64(h.buf + 24, 1ULL << 63);
	refused(&h, "too big");
	make_v3(&h);
	st_be64(h.buf + 24, 1ULL << 62);
	refused(&h, "too big");
	make_v3(&h);
	st_be64(h.buf + 48, 1ULL << 45);
	refused(&h, "past the end of the file");
	make_v3(&h);
	st_be64(h.buf + 48, CS + 512);
	refused(&h, "Invalid reference count table offset");
	make_v3(&h);
	st_be32(h.buf + 56, 0);
	refused(&h, "does not contain a reference count table");
	make_v3(&h);
	st_be32(h.buf + 56, 0x80000000);
	refused(&h, "Reference count table too large");
	make_v3(&h);
	st_be32(h.buf + 96, 7);
	refused(&h, "may not exceed 64 bits");
	make_v3(&h);
	st_be32(h.buf + 60, 100000);
	refused(&h, "Snapshot table too large");
	make_v3(&h);
	st_be32(h.buf + 60, 2);
	st_be64(h.buf + 64, 4 * CS + 8);
	refused(&h, "Snapshot table offset invalid");
	make_v3(&h);
	st_be32(h.buf + 60, 65536);
	st_be64(h.buf + 64, (uint64_t)INT64_MAX & ~(uint64_t)(CS - 1));
	refused(&h, "Snapshot table offset invalid");
	make_v3(&h);
	st_be64(h.buf + 8, 512);
	st_be32(h.buf + 16, 2000);
	refused(&h, "Backing file name too long");
	make_v3(&h);
	st_be32(h.buf + 32, 1);
	refused(&h, "ncrypted");
}

/* A snapshot table past the end of the file opens as in QEMU: its entries read as zeroes. */
static void test_snapshot_table_past_eof(void **state)
{
	struct hdr h;
	struct qcow2 *s;
	char err[256];

	make_v3(&h);
	st_be32(h.buf + 60, 2);
	st_be64(h.buf + 64, 1ULL << 40);
	assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
	assert_int_equal(s->h.nb_snapshots, 2);
	qcow2_free_state(s);
}

static void test_all_cluster_sizes(void **state)
{
	for (unsigned bits = 9; bits <= 21; bits++) {
		struct hdr h;
		struct qcow2 *s;
		char err[256];
		uint64_t cs = 1ULL << bits;

		make_v3(&h);
		st_be32(h.buf + 20, bits);
		st_be64(h.buf + 24, 1ULL << 30);
		st_be64(h.buf + 40, 3 * cs);
		st_be64(h.buf + 48, cs);
		/* 1 GiB needs 2^30 / (cs * cs/8) L1 entries, at least 1. */
		uint64_t need = ((1ULL << 30) + cs * (cs / 8) - 1) / (cs * (cs / 8));
		st_be32(h.buf + 36, (uint32_t)need);
		h.file_size = 3 * cs + need * 8;
		assert_int_equal(parse(&h, err, sizeof(err), &s), 0);
		assert_int_equal(s->cluster_size, cs);
		qcow2_free_state(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_v3),
		cmocka_unit_test(test_valid_v2),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_extension_overflow),
		cmocka_unit_test(test_bad_basics),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_feature_names_from_image),
		cmocka_unit_test(test_compression_type),
		cmocka_unit_test(test_tables_against_file),
		cmocka_unit_test(test_snapshot_table_past_eof),
		cmocka_unit_test(test_all_cluster_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
