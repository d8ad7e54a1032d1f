/*
 * The helpers of the read-only formats (src/block/readonly.c): a compressed
 * unit unpacks to exactly its declared size or fails (a "bomb" that runs
 * longer, a stream that ends early, garbage), both straight into the
 * caller's buffer and through the cache; reads split at unit boundaries; a
 * writable open is refused before the driver reads anything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include "block/readonly.h"

#define UNIT 4096

/* A block_dev over a memfd holding data: what bfile_pread needs. */
static struct block_dev *memdev(const void *data, size_t len)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));

	assert_non_null(bd);
	bd->fd = memfd_create("ro-test", 0);
	assert_true(bd->fd >= 0);
	assert_int_equal(write(bd->fd, data, len), (ssize_t)len);
	bd->read_only = true;
	return bd;
}

static void memdev_free(struct block_dev *bd)
{
	close(bd->fd);
	free(bd);
}

/* zlib of n bytes of pattern c; *len is the stream's length. */
static uint8_t *deflated(size_t n, int c, size_t *len)
{
	uint8_t *raw = malloc(n);
	uLongf out = compressBound(n);
	uint8_t *z = malloc(out);

	assert_non_null(raw);
	assert_non_null(z);
	memset(raw, c, n);
	assert_int_equal(compress2(z, &out, raw, n, 9), Z_OK);
	free(raw);
	*len = out;
	return z;
}

/* Reads unit 0 (stream of len bytes at 0, declared UNIT) whole and in part. */
static void read_both_ways(struct block_dev *bd, size_t len, int want)
{
	struct ro_unit u = { .index = 0, .off = 0, .len = len, .out = UNIT, .codec = RO_ZLIB };
	struct ro_cache c;
	uint8_t buf[UNIT];

	assert_int_equal(ro_cache_init(&c), 0);
	c.in_len = len;
	c.out_len = UNIT;
	assert_int_equal(ro_cache_read(bd, &c, &u, buf, 0, UNIT), want);
	if (want == 0)
		assert_int_equal(buf[UNIT - 1], 0x5a);
	assert_int_equal(ro_cache_read(bd, &c, &u, buf, 100, 50), want);
	if (want == 0)
		assert_int_equal(buf[0], 0x5a);
	ro_cache_fini(&c);
}

static void test_exact_size_reads(void **state)
{
	size_t len;
	uint8_t *z = deflated(UNIT, 0x5a, &len);
	struct block_dev *bd = memdev(z, len);

	read_both_ways(bd, len, 0);
	memdev_free(bd);
	free(z);
}

static void test_bomb_fails(void **state)
{
	size_t len;
	uint8_t *z = deflated(64 * UNIT, 0x5a, &len);	/* 64 times what it declares */
	struct block_dev *bd = memdev(z, len);

	read_both_ways(bd, len, -EIO);
	memdev_free(bd);
	free(z);
}

static void test_short_stream_fails(void **state)
{
	size_t len;
	uint8_t *z = deflated(UNIT / 2, 0x5a, &len);
	struct block_dev *bd = memdev(z, len);

	read_both_ways(bd, len, -EIO);
	memdev_free(bd);
	free(z);
}

static void test_garbage_fails(void **state)
{
	uint8_t junk[300];
	struct block_dev *bd;

	memset(junk, 0xa5, sizeof(junk));
	bd = memdev(junk, sizeof(junk));
	read_both_ways(bd, sizeof(junk), -EIO);
	memdev_free(bd);
}

static uint64_t seen[8][3];
static int nseen;

static int record(struct block_dev *bd, uint64_t unit, uint8_t *dst, size_t skip, size_t n)
{
	seen[nseen][0] = unit;
	seen[nseen][1] = skip;
	seen[nseen][2] = n;
	nseen++;
	memset(dst, (int)unit, n);
	return 0;
}

static void test_reads_split_at_units(void **state)
{
	uint8_t buf[2500];

	nseen = 0;
	assert_int_equal(ro_read_units(NULL, 1000, buf, sizeof(buf), 1024, record), 0);
	assert_int_equal(nseen, 4);
	assert_int_equal(seen[0][0], 0);
	assert_int_equal(seen[0][1], 1000);
	assert_int_equal(seen[0][2], 24);
	assert_int_equal(seen[1][0], 1);
	assert_int_equal(seen[1][2], 1024);
	assert_int_equal(seen[3][0], 3);
	assert_int_equal(seen[3][1], 0);
	assert_int_equal(seen[3][2], 2500 - 24 - 2048);
	assert_int_equal(buf[24], 1);
}

static int never(struct block_dev *bd, uint64_t fsize, char *err, size_t errlen)
{
	fail();
	return -1;
}

static void test_writable_open_refused(void **state)
{
	struct block_dev *bd = memdev("x", 1);
	char err[128];

	bd->read_only = false;
	assert_int_equal(ro_open(bd, 16, never, err, sizeof(err)), -1);
	assert_string_equal(err, "Image is read-only");
	assert_null(bd->opaque);
	memdev_free(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_size_reads),
		cmocka_unit_test(test_bomb_fails),
		cmocka_unit_test(test_short_stream_fails),
		cmocka_unit_test(test_garbage_fails),
		cmocka_unit_test(test_reads_split_at_units),
		cmocka_unit_test(test_writable_open_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
