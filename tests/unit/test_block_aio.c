/*
 * block/aio.c: both engines (threads, io_uring) over raw and qcow2, with and
 * without O_DIRECT.  Checked: every byte of split and scattered requests
 * lands where it should and reads back; parts io_uring cannot take (qcow2
 * allocation, unaligned buffers under O_DIRECT) take the ordinary path;
 * errors reach the request they belong to and no other.
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

#include "block/aio.h"
#include "block/block_img.h"
#include "tmpdir.h"

#define DISK (8u << 20)

struct variant {
	const char *fmt;
	unsigned flags;
	enum block_aio_engine engine;
};

static const struct variant variants[] = {
	{ "raw", 0, BLOCK_AIO_THREADS },
	{ "raw", 0, BLOCK_AIO_IO_URING },
	{ "raw", BLOCK_NOCACHE, BLOCK_AIO_THREADS },
	{ "raw", BLOCK_NOCACHE, BLOCK_AIO_IO_URING },
	{ "qcow2", 0, BLOCK_AIO_THREADS },
	{ "qcow2", 0, BLOCK_AIO_IO_URING },
	{ "qcow2", BLOCK_NOCACHE, BLOCK_AIO_IO_URING },
};

static struct block_dev *create_open(const struct variant *v, int n)
{
	struct block_create_opts o = { .size = DISK };
	struct block_dev *bd;
	char path[256], err[512];

	snprintf(path, sizeof(path), "%s/img%d.%s", tmpdir, n, v->fmt);
	if (block_create(path, v->fmt, &o, err, sizeof(err)) < 0)
		fail_msg("create: %s", err);
	if (block_open(path, v->fmt, v->flags, &bd, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	return bd;
}

static struct block_aio *engine(const struct variant *v)
{
	struct block_aio *aio;
	char err[256];

	if (block_aio_open(v->engine, &aio, err, sizeof(err)) < 0)
		fail_msg("aio: %s", err);
	return aio;
}

static uint8_t byte_at(uint64_t off, int round)
{
	return (uint8_t)(off * 131 + (off >> 12) + round * 29 + 1);
}

/*
 * A batch of writes (one of 1 MiB in uneven segments; small
 * ones; one at an unaligned buffer address), then the same as reads, for
 * two rounds: the first allocates qcow2 clusters, the second overwrites.
 */
static void test_writes_land_and_read_back(void **state)
{
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		struct block_dev *bd = create_open(&variants[v], (int)v);
		struct block_aio *aio = engine(&variants[v]);
		uint8_t *buf = block_alloc_buf(4 << 20), *check = malloc(DISK);
		static const uint64_t offs[] = { 1 << 20, 0, 4096, 6 << 20 };
		static const uint64_t lens[] = { 1 << 20, 512, 64 << 10, 8192 };

		for (int round = 0; round < 2; round++) {
			struct iovec iov[8];
			struct block_req reqs[4];
			unsigned niov = 0;
			uint8_t *p = buf;

			for (int i = 0; i < 4; i++) {
				/* Request 3's buffer is unaligned: O_DIRECT must bounce it. */
				uint8_t *data = p + (i == 3 ? 1 : 0);
				for (uint64_t b = 0; b < lens[i]; b++)
					data[b] = byte_at(offs[i] + b, round);
				reqs[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = offs[i],
							      .len = lens[i], .iov = &iov[niov] };
				if (i == 0) {	/* 1 MiB as 3 uneven segments */
					iov[niov++] = (struct iovec){ data, 200 << 10 };
					iov[niov++] = (struct iovec){ data + (200 << 10), 300 << 10 };
					iov[niov++] = (struct iovec){ data + (500 << 10), 524 << 10 };
					reqs[i].niov = 3;
				} else {
					iov[niov++] = (struct iovec){ data, lens[i] };
					reqs[i].niov = 1;
				}
				p += (lens[i] + 8191) & ~8191ull;
			}
			block_aio_run(aio, bd, reqs, 4);
			for (int i = 0; i < 4; i++)
				assert_int_equal(reqs[i].result, 0);

			assert_int_equal(block_pread(bd, 0, check, DISK), 0);
			for (int i = 0; i < 4; i++)
				for (uint64_t b = 0; b < lens[i]; b++)
					if (check[offs[i] + b] != byte_at(offs[i] + b, round))
						fail_msg("%s flags %#x engine %d round %d: byte %#llx",
							 variants[v].fmt, variants[v].flags,
							 variants[v].engine, round,
							 (unsigned long long)(offs[i] + b));

			/* And back through the engine, into a cleared buffer. */
			memset(buf, 0, 4 << 20);
			for (int i = 0; i < 4; i++)
				reqs[i].op = BLOCK_OP_READ;
			block_aio_run(aio, bd, reqs, 4);
			p = buf;
			for (int i = 0; i < 4; i++) {
				uint8_t *data = p + (i == 3 ? 1 : 0);
				assert_int_equal(reqs[i].result, 0);
				assert_memory_equal(data, check + offs[i], lens[i]);
				p += (lens[i] + 8191) & ~8191ull;
			}
		}
		block_aio_close(aio);
		block_close(bd);
		free(buf);
		free(check);
	}
}

/* A bad request fails alone; flush, discard and write-zeroes go through. */
static void test_errors_stay_with_their_request(void **state)
{
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		struct block_dev *bd = create_open(&variants[v], 100 + (int)v);
		struct block_aio *aio = engine(&variants[v]);
		uint8_t *buf = block_alloc_buf(8192), *back = block_alloc_buf(8192);
		struct iovec good = { buf, 8192 }, past = { buf, 4096 };
		struct block_req reqs[5] = {
			{ .op = BLOCK_OP_WRITE, .offset = 8192, .len = 8192, .iov = &good, .niov = 1 },
			{ .op = BLOCK_OP_WRITE, .offset = DISK - 512, .len = 4096, .iov = &past, .niov = 1 },
			{ .op = BLOCK_OP_FLUSH },
			{ .op = BLOCK_OP_WRITE_ZEROES, .offset = 1 << 20, .len = 1 << 20 },
			{ .op = BLOCK_OP_DISCARD, .offset = DISK, .len = 4096 },
		};

		memset(buf, 0x5a, 8192);
		block_aio_run(aio, bd, reqs, 5);
		assert_int_equal(reqs[0].result, 0);
		assert_int_equal(reqs[1].result, -EINVAL);
		assert_int_equal(reqs[2].result, 0);
		assert_int_equal(reqs[3].result, 0);
		assert_int_equal(reqs[4].result, -EINVAL);
		assert_int_equal(block_pread(bd, 8192, back, 8192), 0);
		assert_memory_equal(back, buf, 8192);

		/* An iovec shorter than the request says is refused, not overrun. */
		struct block_req short_iov = { .op = BLOCK_OP_READ, .offset = 0, .len = 8192,
					       .iov = &past, .niov = 1 };
		block_aio_run(aio, bd, &short_iov, 1);
		assert_int_equal(short_iov.result, -EINVAL);
		block_aio_close(aio);
		block_close(bd);
		free(buf);
		free(back);
	}
}

static void test_readonly_image_refuses_writes(void **state)
{
	const struct variant v = { "raw", 0, BLOCK_AIO_IO_URING };
	struct block_dev *bd = create_open(&v, 200);
	struct block_aio *aio = engine(&v);
	char path[256], err[256];
	uint8_t buf[4096] = { 1 };
	struct iovec iov = { buf, sizeof(buf) };
	struct block_req w = { .op = BLOCK_OP_WRITE, .len = sizeof(buf), .iov = &iov, .niov = 1 };

	snprintf(path, sizeof(path), "%s", block_filename(bd));
	block_close(bd);
	assert_int_equal(block_open(path, "raw", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	block_aio_run(aio, bd, &w, 1);
	assert_int_equal(w.result, -EROFS);
	block_aio_close(aio);
	block_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_land_and_read_back),
		cmocka_unit_test(test_errors_stay_with_their_request),
		cmocka_unit_test(test_readonly_image_refuses_writes),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
