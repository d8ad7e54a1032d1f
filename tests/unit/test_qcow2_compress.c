/*
 * Cluster compression (src/block/qcow2/compress.c): round trips for zlib and
 * zstd, incompressible data refused (and the probe that skips deflate for it), sector padding after the stream
 * ignored, corrupt streams an error rather than garbage.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "block/qcow2/qcow2.h"

static void fill(uint8_t *p, size_t n, unsigned seed, bool compressible)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = compressible ? (uint8_t)("kestrel qcow2 "[i % 14] + (x % 3 == 0)) : (uint8_t)x;
	}
}

static void round_trip(int type, size_t cs)
{
	uint8_t *in = malloc(cs), *out = malloc(cs), *back = malloc(cs + 1024);
	long n;

	fill(in, cs, (unsigned)cs, true);
	n = qcow2_compress(type, out, cs - 1, in, cs);
	assert_true(n > 0 && (size_t)n < cs);
	/* Stored data is read back in whole sectors: garbage after the stream. */
	memcpy(back, out, (size_t)n);
	memset(back + n, 0xa5, 1024);
	memset(out, 0, cs);
	assert_int_equal(qcow2_decompress(type, out, cs, back, (size_t)n + 1024 - (n % 512)), 0);
	assert_memory_equal(out, in, cs);
	free(in);
	free(out);
	free(back);
}

static void test_zlib_round_trip(void **state)
{
	for (size_t cs = 512; cs <= (2u << 20); cs <<= 1)
		round_trip(BLOCK_COMPRESS_ZLIB, cs);
}

static void test_zstd_round_trip(void **state)
{
	for (size_t cs = 512; cs <= (2u << 20); cs <<= 1)
		round_trip(BLOCK_COMPRESS_ZSTD, cs);
}

static void test_incompressible(void **state)
{
	uint8_t in[65536], out[65536];

	fill(in, sizeof(in), 7, false);
	assert_int_equal(qcow2_compress(BLOCK_COMPRESS_ZLIB, out, sizeof(out) - 1, in, sizeof(in)),
			 -ENOSPC);
	assert_int_equal(qcow2_compress(BLOCK_COMPRESS_ZSTD, out, sizeof(out) - 1, in, sizeof(in)),
			 -ENOSPC);
}

/* QEMU's format: raw deflate with a 4 KiB window, so plain zlib tools read it too. */
static void test_zlib_is_raw_deflate(void **state)
{
	uint8_t in[65536], out[65536], back[65536];
	z_stream z = { 0 };
	long n;

	fill(in, sizeof(in), 3, true);
	n = qcow2_compress(BLOCK_COMPRESS_ZLIB, out, sizeof(out) - 1, in, sizeof(in));
	assert_true(n > 0);
	assert_int_equal(inflateInit2(&z, -12), Z_OK);
	z.next_in = out;
	z.avail_in = (uInt)n;
	z.next_out = back;
	z.avail_out = sizeof(back);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	inflateEnd(&z);
	assert_memory_equal(back, in, sizeof(in));
}

/* Raw deflate as QEMU does it, without the incompressibility probe: the reference. */
static size_t deflated_size(const uint8_t *in, size_t len)
{
	size_t cap = len + len / 8 + 1024;
	uint8_t *out = malloc(cap);
	z_stream z = { 0 };
	size_t n;

	assert_non_null(out);
	assert_int_equal(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
				      Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	n = cap - z.avail_out;
	deflateEnd(&z);
	free(out);
	return n;
}

/*
 * The probe that skips deflate: random data is skipped; data deflate does
 * shrink (repeats, a skewed histogram, one compressible block) is not; and
 * whatever the probe skips, deflate would have shrunk by under 2.5%.
 */
static void test_incompressible_probe(void **state)
{
	size_t len = 65536;
	uint8_t *in = malloc(len);
	uint32_t x = 12345;

	assert_non_null(in);
	fill(in, len, 11, false);
	assert_true(qcow2_incompressible(in, len));
	assert_true(deflated_size(in, len) >= len);
	/* 2 KiB of random bytes over and over: matches within the window. */
	for (size_t i = 2048; i < len; i++)
		in[i] = in[i % 2048];
	assert_false(qcow2_incompressible(in, len));
	assert_true(deflated_size(in, len) < len / 2);
	/* 7-bit random bytes: Huffman coding saves an eighth. */
	fill(in, len, 12, false);
	for (size_t i = 0; i < len; i++)
		in[i] &= 0x7f;
	assert_false(qcow2_incompressible(in, len));
	assert_true(deflated_size(in, len) < len * 15 / 16);
	/* Random but for one 4 KiB block of text. */
	fill(in, len, 13, false);
	fill(in + 20480, 4096, 13, true);
	assert_false(qcow2_incompressible(in, len));
	/* Flatter and flatter histograms: where the probe skips, deflate gains < 2.5%. */
	for (unsigned m = 160; m <= 256; m += 4) {
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			in[i] = (uint8_t)(x % m);
		}
		if (qcow2_incompressible(in, len))
			assert_true(deflated_size(in, len) > len * 975 / 1000);
		if (m == 256)
			assert_true(qcow2_incompressible(in, len));
	}
	/* Clusters too small to judge are always deflated. */
	fill(in, 512, 14, false);
	assert_false(qcow2_incompressible(in, 512));
	free(in);
}

static void test_corrupt_streams(void **state)
{
	uint8_t in[4096], out[4096], junk[4096];
	long n;

	fill(junk, sizeof(junk), 99, false);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZLIB, out, sizeof(out), junk, 4096), -EIO);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZSTD, out, sizeof(out), junk, 4096), -EIO);
	/* A stream that ends before the cluster is full is an error too. */
	fill(in, sizeof(in), 5, true);
	n = qcow2_compress(BLOCK_COMPRESS_ZLIB, junk, sizeof(junk), in, 2048);
	assert_true(n > 0);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZLIB, out, sizeof(out), junk, (size_t)n),
			 -EIO);
	n = qcow2_compress(BLOCK_COMPRESS_ZSTD, junk, sizeof(junk), in, 2048);
	assert_true(n > 0);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZSTD, out, sizeof(out), junk, (size_t)n),
			 -EIO);
	/* Truncated input. */
	n = qcow2_compress(BLOCK_COMPRESS_ZSTD, junk, sizeof(junk), in, sizeof(in));
	assert_true(n > 8);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZSTD, out, sizeof(out), junk,
					  (size_t)n / 2), -EIO);
	assert_int_equal(qcow2_decompress(BLOCK_COMPRESS_ZLIB, out, sizeof(out), junk, 0), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zlib_round_trip),
		cmocka_unit_test(test_zstd_round_trip),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_zlib_is_raw_deflate),
		cmocka_unit_test(test_incompressible_probe),
		cmocka_unit_test(test_corrupt_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
