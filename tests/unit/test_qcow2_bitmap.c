/*
 * Persistent dirty bitmaps (src/block/qcow2/bitmap.c): the directory parser
 * against QEMU's constraints and messages, bitmap table entries, and the
 * writer through the block API (add, writes, close, reopen, read back).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/qcow2/qcow2.h"

#define CS 65536

/* One directory entry as the spec lays it out; returns the bytes used. */
static size_t entry(uint8_t *p, uint64_t table, uint32_t tsize, uint32_t flags, uint8_t type,
		    uint8_t gbits, const char *name, uint32_t extra)
{
	size_t n = strlen(name);

	memset(p, 0, (24 + extra + n + 7) & ~7u);
	st_be64(p, table);
	st_be32(p + 8, tsize);
	st_be32(p + 12, flags);
	p[16] = type;
	p[17] = gbits;
	st_be16(p + 18, (uint16_t)n);
	st_be32(p + 20, extra);
	memcpy(p + 24 + extra, name, n);
	return (24 + extra + n + 7) & ~7u;
}

static struct qcow2 *state(uint64_t disk)
{
	struct qcow2 *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->cluster_size = CS;
	s->cluster_bits = 16;
	s->h.size = disk;
	return s;
}

static int parse(struct qcow2 *s, const uint8_t *dir, size_t len, uint32_t nb, char *err,
		 struct qcow2_bitmap **bms, unsigned *n)
{
	err[0] = '\0';
	return qcow2_bitmap_dir_parse(s, dir, len, nb, bms, n, err, 256);
}

static void free_bms(struct qcow2_bitmap *bms, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(bms[i].name);
		free(bms[i].bits);
	}
	free(bms);
}

static void test_valid_directory(void **st)
{
	struct qcow2 *s = state(1ULL << 30);
	struct qcow2_bitmap *bms;
	uint8_t dir[256];
	unsigned n;
	size_t len;
	char err[256];

	(void)st;
	len = entry(dir, 5 * CS, 1, 2, 1, 16, "first", 0);
	len += entry(dir + len, 7 * CS, 1, 1, 1, 20, "in-use", 0);
	assert_int_equal(parse(s, dir, len, 2, err, &bms, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(bms[0].name, "first");
	assert_true(bms[0].enabled);
	assert_false(bms[0].inconsistent);
	assert_int_equal(bms[0].gbits, 16);
	assert_int_equal(bms[0].table_offset, 5 * CS);
	/* 2^30 / 2^16 bits = 2 KiB of data. */
	assert_int_equal(bms[0].nbytes, 2048);
	assert_true(bms[1].inconsistent);
	assert_false(bms[1].enabled);
	free_bms(bms, n);
	free(s);
}

static void expect(struct qcow2 *s, const uint8_t *dir, size_t len, uint32_t nb, const char *msg)
{
	struct qcow2_bitmap *bms = NULL;
	unsigned n = 0;
	char err[256];

	assert_int_equal(parse(s, dir, len, nb, err, &bms, &n), -1);
	assert_string_equal(err, msg);
}

static void test_directory_errors(void **st)
{
	struct qcow2 *s = state(1ULL << 30);
	uint8_t dir[2048];
	size_t len;

	(void)st;
	len = entry(dir, 5 * CS, 1, 2, 1, 16, "a", 0);
	expect(s, dir, len - 1, 1, "Broken bitmap directory");
	expect(s, dir, 20, 1, "Broken bitmap directory");
	expect(s, dir, len, 0, "More bitmaps found than specified in header extension");
	expect(s, dir, len, 2, "Less bitmaps found than specified in header extension");
	len = entry(dir, 5 * CS, 1, 2, 1, 16, "a", 8);
	expect(s, dir, len, 1, "Bitmap extra data is not supported");

	/* QEMU's check_dir_entry, one field at a time. */
	entry(dir, 5 * CS, 0, 2, 1, 16, "z", 0);
	expect(s, dir, 32, 1, "Bitmap 'z' doesn't satisfy the constraints");
	entry(dir, 0, 1, 2, 1, 16, "o", 0);
	expect(s, dir, 32, 1, "Bitmap 'o' doesn't satisfy the constraints");
	entry(dir, 5 * CS + 512, 1, 2, 1, 16, "u", 0);
	expect(s, dir, 32, 1, "Bitmap 'u' doesn't satisfy the constraints");
	entry(dir, 5 * CS, 1, 2, 1, 8, "g", 0);
	expect(s, dir, 32, 1, "Bitmap 'g' doesn't satisfy the constraints");
	entry(dir, 5 * CS, 1, 2, 1, 32, "G", 0);
	expect(s, dir, 32, 1, "Bitmap 'G' doesn't satisfy the constraints");
	entry(dir, 5 * CS, 1, 4, 1, 16, "f", 0);
	expect(s, dir, 32, 1, "Bitmap 'f' doesn't satisfy the constraints");
	entry(dir, 5 * CS, 1, 2, 2, 16, "t", 0);
	expect(s, dir, 32, 1, "Bitmap 't' doesn't satisfy the constraints");
	entry(dir, 5 * CS, 0x8000001, 2, 1, 16, "T", 0);
	expect(s, dir, 32, 1, "Bitmap 'T' doesn't satisfy the constraints");
	/* 1 GiB at 512-byte granularity needs 256 KiB: more than one 64 KiB cluster... */
	entry(dir, 5 * CS, 1, 2, 1, 9, "s", 0);
	expect(s, dir, 32, 1, "Bitmap 's' doesn't satisfy the constraints");
	free(s);
}

static void test_small_table_in_use(void **st)
{
	struct qcow2 *s = state(1ULL << 30);
	struct qcow2_bitmap *bms;
	uint8_t dir[64];
	unsigned n;
	char err[256];

	(void)st;
	/* ...unless the bitmap is in use: its size may be stale after a resize (QEMU). */
	entry(dir, 5 * CS, 1, 1, 1, 9, "s", 0);
	assert_int_equal(parse(s, dir, 32, 1, err, &bms, &n), 0);
	free_bms(bms, n);
	free(s);
}

static void test_table_entries(void **st)
{
	(void)st;
	assert_int_equal(qcow2_bitmap_check_entry(0, CS), 0);
	assert_int_equal(qcow2_bitmap_check_entry(1, CS), 0);		/* all ones */
	assert_int_equal(qcow2_bitmap_check_entry(3 * CS, CS), 0);
	assert_int_equal(qcow2_bitmap_check_entry(3 * CS + 1, CS), -EINVAL);
	assert_int_equal(qcow2_bitmap_check_entry(3 * CS + 512, CS), -EINVAL);
	assert_int_equal(qcow2_bitmap_check_entry(2, CS), -EINVAL);	/* reserved bit 1 */
	assert_int_equal(qcow2_bitmap_check_entry(1ULL << 56, CS), -EINVAL);
}

/* The writer: bitmaps added and marked through the block API survive a reopen. */
static void test_store_and_reload(void **st)
{
	char path[] = "/tmp/kestrel-bitmap-XXXXXX", err[512];
	struct block_create_opts o = { .size = 8 << 20 };
	struct block_bitmap_req add = { .act = BLOCK_BITMAP_ADD, .name = "b",
					.granularity = 4096, .granularity_set = true };
	struct block_bitmap_data d;
	struct block_bitmap *list;
	struct block_dev *bd;
	uint8_t buf[512];
	int fd = mkstemp(path);

	(void)st;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(block_create(path, "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(path, "qcow2", BLOCK_NO_LOCK, &bd, err, sizeof(err)), 0);
	assert_int_equal(block_bitmap_change(bd, &add, err, sizeof(err)), 0);
	add.name = "off";
	add.disabled = true;
	assert_int_equal(block_bitmap_change(bd, &add, err, sizeof(err)), 0);
	assert_int_equal(block_bitmap_change(bd, &add, err, sizeof(err)), -1);
	assert_string_equal(err, "Bitmap already exists: off");
	memset(buf, 0xab, sizeof(buf));
	assert_int_equal(block_pwrite(bd, 8192 + 100, buf, sizeof(buf)), 0);
	assert_int_equal(block_pwrite(bd, (8 << 20) - 512, buf, sizeof(buf)), 0);
	block_close(bd);

	assert_int_equal(block_open(path, "qcow2", BLOCK_RDONLY | BLOCK_NO_LOCK, &bd, err,
				    sizeof(err)), 0);
	assert_int_equal(block_bitmap_list(bd, &list), 2);
	/* New bitmaps are stored newest first, as QEMU stores them. */
	assert_string_equal(list[0].name, "off");
	assert_string_equal(list[1].name, "b");
	assert_true(list[1].autoload && !list[1].in_use && !list[0].autoload);
	free(list);
	assert_int_equal(block_bitmap_get(bd, "b", &d, err, sizeof(err)), 0);
	assert_int_equal(d.granularity, 4096);
	assert_int_equal(d.nbits, 2048);
	/* Chunk 2 (bytes 8192..12287) and the last chunk, 2047: bit 7 of byte 255. */
	assert_int_equal(d.bits[0], 0x04);
	assert_int_equal(d.bits[255], 0x80);
	for (int i = 1; i < 255; i++)
		assert_int_equal(d.bits[i], 0);
	free(d.bits);
	assert_int_equal(block_bitmap_get(bd, "off", &d, err, sizeof(err)), 0);
	assert_int_equal(d.bits[0], 0);
	free(d.bits);
	assert_int_equal(block_bitmap_get(bd, "nope", &d, err, sizeof(err)), -1);
	assert_string_equal(err, "Dirty bitmap 'nope' not found");
	block_close(bd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_directory),
		cmocka_unit_test(test_directory_errors),
		cmocka_unit_test(test_small_table_in_use),
		cmocka_unit_test(test_table_entries),
		cmocka_unit_test(test_store_and_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
