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
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

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
	{ "raw", BLOCK_NOCACHE, BLOCK_AIO_NATIVE },
	{ "raw", 0, BLOCK_AIO_NATIVE },		/* io_submit does the I/O itself: still right */
	{ "qcow2", BLOCK_NOCACHE, BLOCK_AIO_NATIVE },
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

/*
 * A stalled request: its buffer is a page userfaultfd holds back, so a read
 * into it blocks in the kernel until the page is filled in (after a few
 * seconds at most, so that a broken engine fails instead of hanging).
 */
struct stall {
	int uffd;
	uint8_t *page;
	size_t pagesz;
	pthread_t thread;
	volatile bool release;
};

static void *stall_thread(void *arg)
{
	struct stall *st = arg;
	struct pollfd pfd = { .fd = st->uffd, .events = POLLIN };
	struct uffd_msg msg;
	uint8_t *src = malloc(st->pagesz);

	memset(src, 0x77, st->pagesz);
	for (int waited = 0; waited < 5000 && !st->release; waited += 10)
		usleep(10000);
	/* The fault, once it came: fill the page, which wakes the request. */
	if (poll(&pfd, 1, 5000) == 1 && read(st->uffd, &msg, sizeof(msg)) == sizeof(msg)) {
		struct uffdio_copy c = { .dst = (uintptr_t)st->page, .src = (uintptr_t)src,
					 .len = st->pagesz };
		ioctl(st->uffd, UFFDIO_COPY, &c);
	}
	free(src);
	return NULL;
}

static bool stall_start(struct stall *st)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;

	st->pagesz = (size_t)sysconf(_SC_PAGESIZE);
	st->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (st->uffd < 0 || ioctl(st->uffd, UFFDIO_API, &api) < 0)
		return false;
	st->page = mmap(NULL, st->pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	reg = (struct uffdio_register){ .range = { (uintptr_t)st->page, st->pagesz },
					.mode = UFFDIO_REGISTER_MODE_MISSING };
	if (st->page == MAP_FAILED || ioctl(st->uffd, UFFDIO_REGISTER, &reg) < 0)
		return false;
	st->release = false;
	return pthread_create(&st->thread, NULL, stall_thread, st) == 0;
}

static void stall_end(struct stall *st)
{
	st->release = true;
	pthread_join(st->thread, NULL);
	munmap(st->page, st->pagesz);
	close(st->uffd);
}

/*
 * The stream gives each request back when it is done: with a stalled read
 * in flight (a read: a stalled buffered write would hold the file's lock), the others submitted after it complete, are reaped and their
 * slots carry new requests, all before the stalled one lands (the batch
 * engine's barrier would hold them all behind it).  The threads engine
 * only: this host's io_uring fails a write from a userfaultfd page at once
 * (the fault does not wait for the handler), so it cannot be stalled so.
 */
static void test_stream_completion_frees_slot_at_once(void **state)
{
	static const enum block_aio_engine engines[] = { BLOCK_AIO_THREADS };

	for (size_t e = 0; e < sizeof(engines) / sizeof(engines[0]); e++) {
		const struct variant v = { "raw", 0, engines[e] };
		struct block_dev *bd = create_open(&v, 300 + (int)e);
		struct block_aio_stream *st;
		struct stall stall;
		char err[256];
		uint8_t *buf = block_alloc_buf(4096), *back = block_alloc_buf(4096);
		struct iovec slow_iov, fast_iov = { buf, 4096 };
		struct block_req slow, fast[3], *r;

		if (!stall_start(&stall))
			skip();	/* no userfaultfd here */
		slow_iov = (struct iovec){ stall.page, stall.pagesz };
		slow = (struct block_req){ .op = BLOCK_OP_READ, .offset = 0, .len = stall.pagesz,
					   .iov = &slow_iov, .niov = 1 };
		memset(buf, 0x3c, 4096);
		assert_int_equal(block_aio_stream_open(v.engine, bd, 2, &st, err, sizeof(err)), 0);
		assert_int_equal(block_aio_stream_submit(st, &slow), 0);
		for (int i = 0; i < 3; i++) {
			fast[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = (i + 1) << 16,
						      .len = 4096, .iov = &fast_iov, .niov = 1 };
			assert_int_equal(block_aio_stream_submit(st, &fast[i]), 0);
			/* Both slots are taken: a third request must wait for a completion. */
			assert_int_equal(block_aio_stream_submit(st, &fast[i]), -EBUSY);
			r = block_aio_stream_reap(st);
			assert_ptr_equal(r, &fast[i]);
			assert_int_equal(r->result, 0);
		}
		assert_false(stall.release);	/* the stalled read is still in flight */
		stall.release = true;
		assert_ptr_equal(block_aio_stream_reap(st), &slow);
		assert_int_equal(slow.result, 0);
		assert_null(block_aio_stream_reap(st));
		block_aio_stream_close(st);
		assert_int_equal(block_pread(bd, 2 << 16, back, 4096), 0);
		assert_memory_equal(back, buf, 4096);
		assert_int_equal(stall.page[0], 0);	/* the read landed: the image holds zeroes */
		stall_end(&stall);
		block_close(bd);
		free(buf);
		free(back);
	}
}

/*
 * Writes through the stream into a fresh qcow2 at queue depth 16: clusters
 * allocated in order (in the submitting thread) while rewrites of allocated
 * ones run on the workers or the ring; every byte reads back, and the image
 * lays its clusters out in guest order, as qemu-img does.
 */
static void test_stream_qcow2_allocations_in_order(void **state)
{
	static const enum block_aio_engine engines[] = { BLOCK_AIO_THREADS, BLOCK_AIO_IO_URING,
							 BLOCK_AIO_NATIVE };
	enum { N = 256, SZ = 16384 };	/* 4 requests per 64 KiB cluster */

	for (size_t e = 0; e < 3; e++) {
		const struct variant v = { "qcow2", BLOCK_NOCACHE, engines[e] };
		struct block_dev *bd = create_open(&v, 310 + (int)e);
		struct block_aio_stream *st;
		struct block_req reqs[16], *r;
		struct iovec iov[16];
		uint8_t *buf = block_alloc_buf(16 * SZ), *back = block_alloc_buf(SZ);
		char err[256];
		unsigned used = 0;

		assert_int_equal(block_aio_stream_open(v.engine, bd, 16, &st, err, sizeof(err)), 0);
		for (unsigned n = 0; n < N; n++) {
			unsigned i = used;

			if (used < 16) {
				used++;
			} else {
				r = block_aio_stream_reap(st);
				assert_non_null(r);
				assert_int_equal(r->result, 0);
				i = (unsigned)(r - reqs);
			}
			for (unsigned b = 0; b < SZ; b++)
				buf[i * SZ + b] = byte_at((uint64_t)n * SZ + b, 7);
			iov[i] = (struct iovec){ buf + i * SZ, SZ };
			reqs[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = (uint64_t)n * SZ,
						      .len = SZ, .iov = &iov[i], .niov = 1 };
			assert_int_equal(block_aio_stream_submit(st, &reqs[i]), 0);
		}
		while ((r = block_aio_stream_reap(st)))
			assert_int_equal(r->result, 0);
		block_aio_stream_close(st);
		for (unsigned n = 0; n < N; n++) {
			assert_int_equal(block_pread(bd, (uint64_t)n * SZ, back, SZ), 0);
			for (unsigned b = 0; b < SZ; b++)
				if (back[b] != byte_at((uint64_t)n * SZ + b, 7))
					fail_msg("engine %zu: byte %#x of request %u", e, b, n);
		}
		/* Guest clusters in order on the host: each one 64 KiB after the last. */
		uint64_t prev = 0;
		for (uint64_t g = 0; g < (uint64_t)N * SZ; g += 65536) {
			uint64_t pnum, map;
			unsigned flags;
			assert_true(block_status(bd, g, 65536, &pnum, &map, &flags) >= 0);
			assert_true(flags & BLOCK_STATUS_OFFSET);
			if (g)
				assert_int_equal(map, prev + 65536);
			prev = map;
		}
		block_close(bd);
		free(buf);
		free(back);
	}
}

/*
 * The native engine's stream: without O_DIRECT it refuses with QEMU's
 * message; with it, a window of reads and writes each comes back once with
 * its own result: a read into a page the kernel cannot write fails with the
 * kernel's EFAULT (carried from its io_event), one past the end with
 * EINVAL, and the others land and read back.
 */
static void test_stream_native(void **state)
{
	const struct variant buffered = { "raw", 0, BLOCK_AIO_NATIVE };
	const struct variant direct = { "raw", BLOCK_NOCACHE, BLOCK_AIO_NATIVE };
	struct block_dev *bd = create_open(&buffered, 320);
	struct block_aio_stream *st;
	char err[256];
	enum { N = 8, SZ = 4096 };

	assert_int_equal(block_aio_stream_open(BLOCK_AIO_NATIVE, bd, 4, &st, err, sizeof(err)), -1);
	assert_string_equal(err, "aio=native was specified, but it requires cache.direct=on, "
			    "which was not specified.");
	block_close(bd);

	bd = create_open(&direct, 321);
	uint8_t *buf = block_alloc_buf(N * SZ), *back = block_alloc_buf(N * SZ);
	uint8_t *guard = mmap(NULL, SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct block_req reqs[N + 2], *r;
	struct iovec iov[N + 2];
	unsigned seen[N + 2] = { 0 };

	assert_true(guard != MAP_FAILED);
	for (unsigned b = 0; b < N * SZ; b++)
		buf[b] = byte_at(b, 9);
	assert_int_equal(block_aio_stream_open(BLOCK_AIO_NATIVE, bd, N, &st, err, sizeof(err)), 0);
	for (unsigned i = 0; i < N; i++) {
		iov[i] = (struct iovec){ buf + i * SZ, SZ };
		reqs[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = (uint64_t)i * SZ * 3,
					      .len = SZ, .iov = &iov[i], .niov = 1 };
		assert_int_equal(block_aio_stream_submit(st, &reqs[i]), 0);
	}
	assert_int_equal(block_aio_stream_submit(st, &reqs[0]), -EBUSY);
	while ((r = block_aio_stream_reap(st))) {
		assert_int_equal(r->result, 0);
		seen[r - reqs]++;
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	/* Reads back through the engine, with a faulting one and one past the end. */
	memset(back, 0, N * SZ);
	for (unsigned i = 0; i < N; i++) {
		iov[i] = (struct iovec){ back + i * SZ, SZ };
		reqs[i].op = BLOCK_OP_READ;
	}
	iov[N] = (struct iovec){ guard, SZ };
	reqs[N] = (struct block_req){ .op = BLOCK_OP_READ, .offset = 0, .len = SZ,
				      .iov = &iov[N], .niov = 1 };
	iov[N + 1] = (struct iovec){ back, SZ };
	reqs[N + 1] = (struct block_req){ .op = BLOCK_OP_READ, .offset = DISK - 512, .len = SZ,
					  .iov = &iov[N + 1], .niov = 1 };
	memset(seen, 0, sizeof(seen));
	for (unsigned i = 0; i < N + 2; i++) {
		if (i >= N) {
			r = block_aio_stream_reap(st);
			assert_non_null(r);
			seen[r - reqs]++;
			if (r - reqs < N)
				assert_int_equal(r->result, 0);
		}
		assert_int_equal(block_aio_stream_submit(st, &reqs[i]), 0);
	}
	while ((r = block_aio_stream_reap(st)))
		seen[r - reqs]++;
	for (unsigned i = 0; i < N + 2; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(reqs[N].result, -EFAULT);
	assert_int_equal(reqs[N + 1].result, -EINVAL);
	for (unsigned i = 0; i < N; i++)
		assert_memory_equal(back + i * SZ, buf + i * SZ, SZ);
	block_aio_stream_close(st);
	munmap(guard, SZ);
	block_close(bd);
	free(buf);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_land_and_read_back),
		cmocka_unit_test(test_errors_stay_with_their_request),
		cmocka_unit_test(test_readonly_image_refuses_writes),
		cmocka_unit_test(test_stream_completion_frees_slot_at_once),
		cmocka_unit_test(test_stream_qcow2_allocations_in_order),
		cmocka_unit_test(test_stream_native),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
