/*
 * virtio/virtqueue.c: split rings (virtio 1.2 §2.7) built in fake guest RAM.
 * Hostile chains must be refused with a message and without a byte read or
 * written outside guest RAM (run under -Db_sanitize=address to have the heap
 * redzones around fake RAM checked too); good chains must map exactly the
 * buffers the driver described.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "virtio/virtqueue.h"

#define RAM_SIZE (2 * MIB)
#define QSIZE 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define TABLE_GPA 0x4000	/* indirect tables */
#define DATA_GPA 0x10000

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

/* struct vring_desc (§2.7.5), as the driver lays it out. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct fx {
	struct guest_memory mem;
	struct virtqueue vq;
	struct vq_request req;
	uint16_t avail_idx;	/* the driver's copy */
	uint8_t *canary;	/* two-region layouts: the bytes of the hole and past the end */
	size_t canary_len[2];
	uint8_t *canary_at[2];
};

static uint8_t *gpa_ptr(struct fx *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = memory_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(gpa_ptr(f, table + 16 * i, 16), &d, 16);
}

static void put16(struct fx *f, uint64_t gpa, uint16_t v)
{
	memcpy(gpa_ptr(f, gpa, 2), &v, 2);
}

static uint16_t get16(struct fx *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gpa_ptr(f, gpa, 2), 2);
	return v;
}

static uint32_t get32(struct fx *f, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gpa_ptr(f, gpa, 4), 4);
	return v;
}

/* Makes head available: ring entry, then the index (§2.7.13). */
static void make_avail(struct fx *f, uint16_t head)
{
	put16(f, f->vq.avail_gpa + 4 + 2 * (f->avail_idx % f->vq.size), head);
	f->avail_idx++;
	put16(f, f->vq.avail_gpa + 2, f->avail_idx);
}

static void queue_init(struct fx *f, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	f->vq.mem = &f->mem;
	vq_reset(&f->vq);
	f->vq.size = size;
	f->vq.desc_gpa = desc;
	f->vq.avail_gpa = avail;
	f->vq.used_gpa = used;
	assert_true(vq_check_rings(&f->vq));
	f->vq.ready = true;
	f->avail_idx = 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || fake_memory_init(&f->mem, RAM_SIZE) < 0)
		return -1;
	queue_init(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	*state = f;
	return 0;
}

/*
 * Two regions with a hole, as above and below the PCI hole: [0, 256 KiB) and
 * [1 MiB, 1 MiB + 256 KiB).  Host memory keeps a canary page after each
 * region, so an access that runs past one lands on bytes we check.
 */
#define LOW_SIZE (256 * 1024)
#define HIGH_GPA (1 * MIB)
#define HIGH_SIZE (256 * 1024)
#define CANARY_LEN 4096

static int setup_hole(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *host;

	if (!f)
		return -1;
	host = calloc(1, LOW_SIZE + CANARY_LEN + HIGH_SIZE + CANARY_LEN);
	if (!host)
		return -1;
	f->mem.host = host;
	f->mem.ram_size = LOW_SIZE + HIGH_SIZE;
	f->mem.nr_regions = 2;
	f->mem.regions[0] = (struct memory_region){ .gpa = 0, .size = LOW_SIZE, .host = host };
	f->mem.regions[1] = (struct memory_region){
		.gpa = HIGH_GPA, .size = HIGH_SIZE, .host = host + LOW_SIZE + CANARY_LEN,
	};
	f->canary_at[0] = host + LOW_SIZE;
	f->canary_at[1] = host + LOW_SIZE + CANARY_LEN + HIGH_SIZE;
	f->canary_len[0] = f->canary_len[1] = CANARY_LEN;
	memset(f->canary_at[0], 0xa5, CANARY_LEN);
	memset(f->canary_at[1], 0xa5, CANARY_LEN);
	f->canary = host;
	queue_init(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	*state = f;
	return 0;
}

static void check_canaries(struct fx *f)
{
	for (unsigned c = 0; c < 2; c++)
		for (size_t i = 0; i < f->canary_len[c]; i++)
			assert_int_equal(f->canary_at[c][i], 0xa5);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->canary)
		check_canaries(f);
	free(f->mem.host);
	free(f);
	return 0;
}

/* Every mapped segment lies inside one RAM region's host memory. */
static void assert_segments_in_ram(struct fx *f)
{
	const struct iovec *sets[2] = { f->req.out, f->req.in };
	unsigned counts[2] = { f->req.nr_out, f->req.nr_in };

	for (unsigned s = 0; s < 2; s++) {
		for (unsigned i = 0; i < counts[s]; i++) {
			const uint8_t *b = sets[s][i].iov_base;
			bool inside = false;
			for (unsigned r = 0; r < f->mem.nr_regions; r++) {
				const struct memory_region *reg = &f->mem.regions[r];
				if (b >= reg->host && b - reg->host <= (ptrdiff_t)reg->size &&
				    sets[s][i].iov_len <= reg->size - (size_t)(b - reg->host))
					inside = true;
			}
			assert_true(inside);
		}
	}
}

/* vq_pop must refuse with a message that mentions needle. */
static void expect_refused(struct fx *f, const char *needle)
{
	const char *msg = NULL;

	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), -1);
	assert_non_null(msg);
	if (!strstr(msg, needle))
		fail_msg("message \"%s\" does not mention \"%s\"", msg, needle);
	assert_segments_in_ram(f);
	if (f->canary)
		check_canaries(f);
}

static void expect_popped(struct fx *f, uint16_t head)
{
	const char *msg = "unset";

	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), 1);
	assert_null(msg);
	assert_int_equal(f->req.head, head);
	assert_segments_in_ram(f);
}

/* ---- good chains -------------------------------------------------------- */

static void test_empty_and_not_ready(void **state)
{
	struct fx *f = *state;
	const char *msg = "unset";

	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), 0);
	assert_null(msg);
	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	make_avail(f, 0);
	f->vq.ready = false;
	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), 0);
	f->vq.ready = true;
	expect_popped(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), 0);
}

static void test_direct_mixed_chain(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = f->mem.regions[0].host;

	/* A virtio-blk write: header, two data buffers, status byte (out, out, out, in). */
	put_desc(f, DESC_GPA, 3, DATA_GPA, 16, F_NEXT, 7);
	put_desc(f, DESC_GPA, 7, DATA_GPA + 0x1000, 512, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA + 0x3000, 1024, F_NEXT, 2);
	put_desc(f, DESC_GPA, 2, DATA_GPA + 0x5000, 1, F_WRITE, 0);
	make_avail(f, 3);
	expect_popped(f, 3);
	assert_int_equal(f->req.nr_out, 3);
	assert_int_equal(f->req.nr_in, 1);
	assert_ptr_equal(f->req.out[0].iov_base, ram + DATA_GPA);
	assert_int_equal(f->req.out[0].iov_len, 16);
	assert_ptr_equal(f->req.out[1].iov_base, ram + DATA_GPA + 0x1000);
	assert_int_equal(f->req.out[1].iov_len, 512);
	assert_ptr_equal(f->req.out[2].iov_base, ram + DATA_GPA + 0x3000);
	assert_int_equal(f->req.out[2].iov_len, 1024);
	assert_ptr_equal(f->req.in[0].iov_base, ram + DATA_GPA + 0x5000);
	assert_int_equal(f->req.in[0].iov_len, 1);
	assert_int_equal(f->req.out_len, 16 + 512 + 1024);
	assert_int_equal(f->req.in_len, 1);
	assert_int_equal(f->vq.last_avail, 1);
}

static void test_direct_write_only_and_read_only(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 64, F_WRITE | F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA + 64, 64, F_WRITE, 0);
	put_desc(f, DESC_GPA, 5, DATA_GPA + 256, 8, 0, 0);
	make_avail(f, 0);
	make_avail(f, 5);
	expect_popped(f, 0);
	assert_int_equal(f->req.nr_out, 0);
	assert_int_equal(f->req.nr_in, 2);
	assert_int_equal(f->req.in_len, 128);
	/* The request struct is reused: counts from the last pop must not leak into this one. */
	expect_popped(f, 5);
	assert_int_equal(f->req.nr_out, 1);
	assert_int_equal(f->req.nr_in, 0);
	assert_int_equal(f->req.out_len, 8);
	assert_int_equal(f->req.in_len, 0);
}

static void test_indirect_chain(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = f->mem.regions[0].host;

	/* The chain starts at entry 0 (§2.7.5.3.2) and follows next: 0 -> 2 -> 1. */
	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_NEXT, 2);
	put_desc(f, TABLE_GPA, 2, DATA_GPA + 0x100, 4096, F_WRITE | F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, DATA_GPA + 0x2000, 1, F_WRITE, 0);
	put_desc(f, DESC_GPA, 9, TABLE_GPA, 3 * 16, F_INDIRECT, 0);
	make_avail(f, 9);
	expect_popped(f, 9);
	assert_int_equal(f->req.nr_out, 1);
	assert_int_equal(f->req.nr_in, 2);
	assert_ptr_equal(f->req.out[0].iov_base, ram + DATA_GPA);
	assert_ptr_equal(f->req.in[0].iov_base, ram + DATA_GPA + 0x100);
	assert_int_equal(f->req.in[0].iov_len, 4096);
	assert_ptr_equal(f->req.in[1].iov_base, ram + DATA_GPA + 0x2000);
	assert_int_equal(f->req.out_len, 16);
	assert_int_equal(f->req.in_len, 4097);
}

static void test_indirect_write_flag_on_outer_ignored(void **state)
{
	struct fx *f = *state;

	/* §2.7.5.3.2: the device ignores WRITE on the descriptor naming the table. */
	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16, F_INDIRECT | F_WRITE, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_int_equal(f->req.nr_out, 1);
	assert_int_equal(f->req.nr_in, 0);
}

static void test_chain_as_long_as_queue(void **state)
{
	struct fx *f = *state;

	/* QSIZE descriptors, each once: the longest legal direct chain. */
	for (unsigned i = 0; i < QSIZE; i++)
		put_desc(f, DESC_GPA, i, DATA_GPA + 16 * i, 16,
			 i + 1 < QSIZE ? F_NEXT : 0, (uint16_t)(i + 1));
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_int_equal(f->req.nr_out, QSIZE);
	assert_int_equal(f->req.out_len, 16 * QSIZE);
}

static void test_indirect_as_long_as_table(void **state)
{
	struct fx *f = *state;
	const unsigned n = VQ_MAX_SEGS;

	/* VQ_MAX_SEGS entries, all writable: exactly the per-request limit. */
	for (unsigned i = 0; i < n; i++)
		put_desc(f, TABLE_GPA, i, DATA_GPA + 8 * i, 8, F_WRITE | (i + 1 < n ? F_NEXT : 0),
			 (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_int_equal(f->req.nr_in, n);
	assert_int_equal(f->req.in_len, 8 * n);
}

static void test_buffers_at_ram_edges(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = f->mem.regions[0].host;

	put_desc(f, DESC_GPA, 0, 0, 1, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, RAM_SIZE - 4096, 4096, F_WRITE, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_ptr_equal(f->req.out[0].iov_base, ram);
	assert_ptr_equal(f->req.in[0].iov_base, ram + RAM_SIZE - 4096);
}

static void test_many_requests_and_avail_wrap(void **state)
{
	struct fx *f = *state;

	/* Start just before the 16-bit index wraps; the ring slot is idx % size. */
	f->vq.last_avail = 65530;
	f->avail_idx = 65530;
	for (unsigned i = 0; i < QSIZE; i++) {
		put_desc(f, DESC_GPA, i, DATA_GPA + 64 * i, 64, 0, 0);
		make_avail(f, (uint16_t)(QSIZE - 1 - i));
	}
	/* Exactly QSIZE outstanding is allowed. */
	for (unsigned i = 0; i < QSIZE; i++) {
		expect_popped(f, (uint16_t)(QSIZE - 1 - i));
		assert_int_equal(f->req.nr_out, 1);
	}
	assert_int_equal(f->vq.last_avail, (uint16_t)(65530 + QSIZE));
	const char *msg;
	assert_int_equal(vq_pop(&f->vq, &f->req, &msg), 0);
}

static void test_region_above_hole(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, LOW_SIZE - 64, 64, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, HIGH_GPA, 128, F_NEXT, 2);
	put_desc(f, DESC_GPA, 2, HIGH_GPA + HIGH_SIZE - 32, 32, F_WRITE, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_ptr_equal(f->req.out[0].iov_base, f->mem.regions[0].host + LOW_SIZE - 64);
	assert_ptr_equal(f->req.out[1].iov_base, f->mem.regions[1].host);
	assert_ptr_equal(f->req.in[0].iov_base, f->mem.regions[1].host + HIGH_SIZE - 32);
}

/* ---- hostile chains ----------------------------------------------------- */

static void test_addr_beyond_ram(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, RAM_SIZE, 1, 0, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_addr_runs_past_ram_end(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, RAM_SIZE - 4096, 4097, F_WRITE, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_addr_len_wraps(void **state)
{
	struct fx *f = *state;

	/* addr + len overflows to a small address inside RAM. */
	put_desc(f, DESC_GPA, 0, UINT64_MAX - 15, 0x1000, 0, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_addr_len_max(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, 0x100, UINT32_MAX, F_WRITE, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_addr_in_hole(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, LOW_SIZE, 16, 0, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_buffer_crosses_hole(void **state)
{
	struct fx *f = *state;

	/* Host memory right after region 0 is the canary, not guest RAM. */
	put_desc(f, DESC_GPA, 0, LOW_SIZE - 8, 16, F_WRITE, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_buffer_spans_both_regions(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, LOW_SIZE - 8, (uint32_t)(HIGH_GPA - LOW_SIZE + 16), 0, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_buffer_past_high_end(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, HIGH_GPA + HIGH_SIZE - 8, 16, F_WRITE, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_chain_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA, 16, F_NEXT, 0);
	make_avail(f, 0);
	expect_refused(f, "loop");
}

static void test_chain_self_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 4, DATA_GPA, 16, F_WRITE | F_NEXT, 4);
	make_avail(f, 4);
	expect_refused(f, "loop");
}

static void test_chain_longer_than_queue(void **state)
{
	struct fx *f = *state;

	/* Every descriptor, then back to the first: QSIZE + 1 links. */
	for (unsigned i = 0; i < QSIZE; i++)
		put_desc(f, DESC_GPA, i, DATA_GPA, 1, F_NEXT, (uint16_t)((i + 1) % QSIZE));
	make_avail(f, 0);
	expect_refused(f, "loop");
}

static void test_zero_length_loop(void **state)
{
	struct fx *f = *state;

	/* Empty buffers map nothing, but the walk must still end. */
	put_desc(f, DESC_GPA, 0, 0, 0, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, 0, 0, F_NEXT, 0);
	make_avail(f, 0);
	expect_refused(f, "loop");
}

static void test_next_beyond_queue(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, QSIZE);
	make_avail(f, 0);
	expect_refused(f, "descriptor table");
}

static void test_next_far_beyond_queue(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, 0xffff);
	make_avail(f, 0);
	expect_refused(f, "descriptor table");
}

static void test_head_beyond_queue(void **state)
{
	struct fx *f = *state;

	make_avail(f, QSIZE);
	expect_refused(f, "beyond the queue");
}

static void test_avail_idx_jumps(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, 0, 0);
	put16(f, AVAIL_GPA + 2, QSIZE + 1);
	expect_refused(f, "available index");
}

static void test_avail_idx_goes_backwards(void **state)
{
	struct fx *f = *state;

	f->vq.last_avail = 100;
	put16(f, AVAIL_GPA + 2, 99);	/* 65535 entries "available" */
	expect_refused(f, "available index");
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA + 16, 16, F_WRITE | F_NEXT, 2);
	put_desc(f, DESC_GPA, 2, DATA_GPA + 32, 16, 0, 0);
	make_avail(f, 0);
	expect_refused(f, "readable buffer after a writable");
}

static void test_readable_after_writable_indirect(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_WRITE | F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, DATA_GPA + 16, 16, 0, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "readable buffer after a writable");
}

static void test_request_over_limit(void **state)
{
	struct fx *f = *state;
	const unsigned n = VQ_MAX_REQUEST / RAM_SIZE + 1;

	/* All of RAM, n times over (n < VQ_MAX_SEGS): more than VQ_MAX_REQUEST in total. */
	assert_true(n < VQ_MAX_SEGS);
	for (unsigned i = 0; i < n; i++)
		put_desc(f, TABLE_GPA, i, 0, RAM_SIZE, i + 1 < n ? F_NEXT : 0, (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "larger than the device accepts");
}

static void test_too_many_segments(void **state)
{
	struct fx *f = *state;
	const unsigned n = VQ_MAX_SEGS + 1;

	for (unsigned i = 0; i < n; i++)
		put_desc(f, TABLE_GPA, i, DATA_GPA + i, 1, i + 1 < n ? F_NEXT : 0, (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "too many buffers");
}

static void test_too_many_writable_segments(void **state)
{
	struct fx *f = *state;
	const unsigned n = VQ_MAX_SEGS + 1;

	for (unsigned i = 0; i < n; i++)
		put_desc(f, TABLE_GPA, i, DATA_GPA + i, 1, F_WRITE | (i + 1 < n ? F_NEXT : 0),
			 (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16 * n, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "too many buffers");
}

static void test_indirect_table_outside_ram(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "indirect table outside guest RAM");
}

static void test_indirect_table_in_hole(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, LOW_SIZE - 16, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "indirect table outside guest RAM");
}

static void test_indirect_len_not_multiple(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 24, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "malformed indirect");
}

static void test_indirect_len_zero(void **state)
{
	struct fx *f = *state;

	put_desc(f, DESC_GPA, 0, TABLE_GPA, 0, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "malformed indirect");
}

static void test_indirect_huge(void **state)
{
	struct fx *f = *state;

	/* A table of 65536 entries (1 MiB): more than any queue may hold. */
	put_desc(f, DESC_GPA, 0, 0, 16 * 65536, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "malformed indirect");
}

static void test_indirect_nested(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA + 0x100, 0, DATA_GPA, 16, 0, 0);
	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "nested indirect");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA, 16, F_WRITE, 0);
	make_avail(f, 0);
	expect_refused(f, "malformed indirect");
}

static void test_indirect_inside_chain(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_WRITE, 0);
	put_desc(f, DESC_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, TABLE_GPA, 16, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "indirect descriptor inside a chain");
}

static void test_indirect_after_empty_descriptor(void **state)
{
	struct fx *f = *state;

	/* An empty first buffer still makes the indirect one the second in the chain. */
	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_WRITE, 0);
	put_desc(f, DESC_GPA, 0, DATA_GPA, 0, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, TABLE_GPA, 16, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "indirect descriptor inside a chain");
}

static void test_indirect_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, DATA_GPA, 16, F_NEXT, 2);
	put_desc(f, TABLE_GPA, 2, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 48, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "loop");
}

static void test_indirect_next_off_table(void **state)
{
	struct fx *f = *state;

	/* Entry 2 exists in RAM right after the table but is not part of it. */
	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_NEXT, 2);
	put_desc(f, TABLE_GPA, 1, DATA_GPA, 16, 0, 0);
	put_desc(f, TABLE_GPA, 2, DATA_GPA, 16, 0, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "runs off its table");
}

static void test_indirect_entry_outside_ram(void **state)
{
	struct fx *f = *state;

	put_desc(f, TABLE_GPA, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, TABLE_GPA, 1, UINT64_MAX - 7, 16, F_WRITE, 0);
	put_desc(f, DESC_GPA, 0, TABLE_GPA, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_refused(f, "outside guest RAM");
}

static void test_indirect_table_at_ram_end(void **state)
{
	struct fx *f = *state;
	uint64_t table = RAM_SIZE - 32;

	/* The last two descriptors of RAM are a legal table: only its own bytes are read. */
	put_desc(f, table, 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(f, table, 1, DATA_GPA + 16, 1, F_WRITE, 0);
	put_desc(f, DESC_GPA, 0, table, 32, F_INDIRECT, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	assert_int_equal(f->req.nr_out, 1);
	assert_int_equal(f->req.nr_in, 1);
}

/* ---- ring placement ------------------------------------------------------ */

static void test_check_rings(void **state)
{
	struct fx *f = *state;
	struct virtqueue *vq = &f->vq;

	vq->size = 256;
	vq->desc_gpa = RAM_SIZE - 16 * 256;
	vq->avail_gpa = RAM_SIZE - 16 * 256 - (6 + 2 * 256);
	vq->used_gpa = 0;
	assert_true(vq_check_rings(vq));
	vq->desc_gpa += 1;	/* one byte past RAM */
	assert_false(vq_check_rings(vq));
	vq->desc_gpa = 0;
	vq->avail_gpa = RAM_SIZE - (6 + 2 * 256) + 1;
	assert_false(vq_check_rings(vq));
	vq->avail_gpa = 0x10000;
	vq->used_gpa = RAM_SIZE - (6 + 8 * 256) + 2;
	assert_false(vq_check_rings(vq));
	vq->used_gpa = UINT64_MAX - 100;
	assert_false(vq_check_rings(vq));
	vq->used_gpa = 0x20000;
	assert_true(vq_check_rings(vq));

	vq->size = 0;
	assert_false(vq_check_rings(vq));
	vq->size = 48;	/* not a power of two */
	assert_false(vq_check_rings(vq));
	vq->size = 2048;	/* beyond VQ_MAX_SIZE */
	assert_false(vq_check_rings(vq));
	vq->size = 1024;
	assert_true(vq_check_rings(vq));
}

static void test_check_rings_hole(void **state)
{
	struct fx *f = *state;
	struct virtqueue *vq = &f->vq;

	vq->desc_gpa = LOW_SIZE - 128;	/* 256 bytes: half in the hole */
	assert_false(vq_check_rings(vq));
	vq->desc_gpa = HIGH_GPA;
	vq->avail_gpa = HIGH_GPA + HIGH_SIZE - 38;	/* exactly 6 + 2 * 16 */
	vq->used_gpa = LOW_SIZE - 134;			/* exactly 6 + 8 * 16 */
	assert_true(vq_check_rings(vq));
	vq->avail_gpa++;
	assert_false(vq_check_rings(vq));
}

static void test_reset(void **state)
{
	struct fx *f = *state;
	const struct guest_memory *mem = f->vq.mem;

	f->vq.last_avail = 7;
	f->vq.used_idx = 3;
	f->vq.event_idx = true;
	f->vq.msix_vector = 2;
	vq_reset(&f->vq);
	assert_ptr_equal(f->vq.mem, mem);
	assert_false(f->vq.ready);
	assert_false(f->vq.event_idx);
	assert_int_equal(f->vq.size, 0);
	assert_int_equal(f->vq.last_avail, 0);
	assert_int_equal(f->vq.used_idx, 0);
	assert_int_equal(f->vq.desc_gpa, 0);
	assert_int_equal(f->vq.msix_vector, 0xffff);
}

/* ---- used ring and notification suppression ------------------------------- */

static void test_push_updates_used_ring(void **state)
{
	struct fx *f = *state;

	vq_push(&f->vq, 5, 512);
	assert_int_equal(get16(f, USED_GPA + 2), 1);
	assert_int_equal(get32(f, USED_GPA + 4), 5);
	assert_int_equal(get32(f, USED_GPA + 8), 512);
	vq_push(&f->vq, 2, 0);
	assert_int_equal(get16(f, USED_GPA + 2), 2);
	assert_int_equal(get32(f, USED_GPA + 12), 2);
	assert_int_equal(get32(f, USED_GPA + 16), 0);
	assert_int_equal(f->vq.used_idx, 2);
}

static void test_push_wraps(void **state)
{
	struct fx *f = *state;

	/* Slot = used idx % size, and the 16-bit index wraps (§2.7.8). */
	f->vq.used_idx = 65535;
	vq_push(&f->vq, 9, 77);
	assert_int_equal(get16(f, USED_GPA + 2), 0);
	assert_int_equal(get32(f, USED_GPA + 4 + 8 * (65535 % QSIZE)), 9);
	assert_int_equal(get32(f, USED_GPA + 8 + 8 * (65535 % QSIZE)), 77);
	vq_push(&f->vq, 10, 78);
	assert_int_equal(get16(f, USED_GPA + 2), 1);
	assert_int_equal(get32(f, USED_GPA + 4), 10);
}

static void test_push_at_ram_end(void **state)
{
	struct fx *f = *state;
	uint64_t used = RAM_SIZE - (6 + 8 * QSIZE);

	f->vq.used_gpa = used;
	assert_true(vq_check_rings(&f->vq));
	for (unsigned i = 0; i < 2 * QSIZE; i++)
		vq_push(&f->vq, (uint16_t)i, i);
	assert_int_equal(get16(f, used + 2), 2 * QSIZE);
	assert_int_equal(get32(f, used + 4 + 8 * (QSIZE - 1)), 2 * QSIZE - 1);
}

/* A batch lands as the same entries one push at a time would write, across the ring's wrap. */
static void test_push_many_publishes_once_and_wraps(void **state)
{
	struct fx *f = *state;
	uint16_t heads[QSIZE];
	uint32_t lens[QSIZE];

	for (unsigned i = 0; i < QSIZE; i++) {
		heads[i] = (uint16_t)(QSIZE - 1 - i);
		lens[i] = 100 + i;
	}
	for (unsigned i = 0; i < QSIZE - 3; i++)
		vq_push(&f->vq, 0, 0);
	vq_push_many(&f->vq, heads, lens, 6);	/* entries QSIZE-3 .. QSIZE+2: wraps after 3 */
	assert_int_equal(get16(f, USED_GPA + 2), QSIZE + 3);
	for (unsigned i = 0; i < 6; i++) {
		unsigned slot = (QSIZE - 3 + i) % QSIZE;
		assert_int_equal(get32(f, USED_GPA + 4 + 8 * slot), heads[i]);
		assert_int_equal(get32(f, USED_GPA + 8 + 8 * slot), lens[i]);
	}
	vq_push_many(&f->vq, heads, NULL, 2);	/* no lengths: 0 written */
	assert_int_equal(get16(f, USED_GPA + 2), QSIZE + 5);
	assert_int_equal(get32(f, USED_GPA + 4 + 8 * 3), heads[0]);
	assert_int_equal(get32(f, USED_GPA + 8 + 8 * 4), 0);
	vq_push_many(&f->vq, heads, lens, 0);	/* nothing: the index stays */
	assert_int_equal(get16(f, USED_GPA + 2), QSIZE + 5);
}

static void test_pop_then_push_roundtrip(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = f->mem.regions[0].host;

	memcpy(ram + DATA_GPA, "ping", 4);
	put_desc(f, DESC_GPA, 0, DATA_GPA, 4, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, DATA_GPA + 16, 4, F_WRITE, 0);
	make_avail(f, 0);
	expect_popped(f, 0);
	char in[4];
	assert_int_equal(iov_to_buf(f->req.out, f->req.nr_out, 0, in, 4), 4);
	assert_memory_equal(in, "ping", 4);
	assert_int_equal(iov_from_buf(f->req.in, f->req.nr_in, 0, "pong", 4), 4);
	vq_push(&f->vq, f->req.head, 4);
	assert_memory_equal(ram + DATA_GPA + 16, "pong", 4);
	assert_int_equal(get16(f, USED_GPA + 2), 1);
	assert_int_equal(get32(f, USED_GPA + 4), 0);
	assert_int_equal(get32(f, USED_GPA + 8), 4);
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;

	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_interrupt(&f->vq));
	put16(f, AVAIL_GPA, 1);	/* VRING_AVAIL_F_NO_INTERRUPT */
	vq_push(&f->vq, 0, 0);
	assert_false(vq_should_interrupt(&f->vq));
	put16(f, AVAIL_GPA, 0);
	assert_true(vq_should_interrupt(&f->vq));
}

static void set_used_event(struct fx *f, uint16_t v)
{
	put16(f, f->vq.avail_gpa + 4 + 2 * f->vq.size, v);
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;

	f->vq.event_idx = true;
	/* With EVENT_IDX the flags field is not what decides (§2.7.10). */
	put16(f, AVAIL_GPA, 1);
	set_used_event(f, 0);
	vq_push(&f->vq, 0, 0);	/* used idx 1: entry 0 used, event 0 passed */
	assert_true(vq_should_interrupt(&f->vq));

	/* The driver wants to hear once entry 4 is used: after used idx reaches 5. */
	set_used_event(f, 4);
	for (unsigned i = 2; i <= 4; i++) {
		vq_push(&f->vq, 0, 0);
		assert_false(vq_should_interrupt(&f->vq));
	}
	vq_push(&f->vq, 0, 0);	/* used idx 5 */
	assert_true(vq_should_interrupt(&f->vq));
	vq_push(&f->vq, 0, 0);	/* 6: event 4 lies behind the last signal */
	assert_false(vq_should_interrupt(&f->vq));

	/* Several pushes per check: any event inside (old, new] fires. */
	set_used_event(f, 7);
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0);	/* 9 */
	assert_true(vq_should_interrupt(&f->vq));
	set_used_event(f, 20);
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0);
	assert_false(vq_should_interrupt(&f->vq));
}

static void test_event_idx_wraps(void **state)
{
	struct fx *f = *state;

	f->vq.event_idx = true;
	f->vq.used_idx = 65533;
	vq_push(&f->vq, 0, 0);	/* 65534 */
	assert_true(vq_should_interrupt(&f->vq));	/* first check always signals */
	set_used_event(f, 65535);
	vq_push(&f->vq, 0, 0);	/* 65535 */
	assert_false(vq_should_interrupt(&f->vq));
	vq_push(&f->vq, 0, 0);	/* 0: entry 65535 used */
	assert_true(vq_should_interrupt(&f->vq));
	set_used_event(f, 1);
	vq_push(&f->vq, 0, 0);	/* 1 */
	assert_false(vq_should_interrupt(&f->vq));
	vq_push(&f->vq, 0, 0);	/* 2 */
	assert_true(vq_should_interrupt(&f->vq));
}

static void test_event_idx_ring_at_ram_end(void **state)
{
	struct fx *f = *state;
	uint64_t avail = RAM_SIZE - (6 + 2 * QSIZE);

	/* used_event is the last two bytes of the avail ring, here the last of RAM. */
	f->vq.avail_gpa = avail;
	assert_true(vq_check_rings(&f->vq));
	f->vq.event_idx = true;
	put16(f, RAM_SIZE - 2, 0);
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_interrupt(&f->vq));
	put16(f, RAM_SIZE - 2, 3);
	vq_push(&f->vq, 0, 0);
	assert_false(vq_should_interrupt(&f->vq));
}

/* ---- iovec copies --------------------------------------------------------- */

static void test_iov_copies_with_skip(void **state)
{
	uint8_t a[3], b[5], c[1], d[7];
	struct iovec iov[4] = { { a, 3 }, { b, 5 }, { c, 0 }, { d, 7 } };
	uint8_t src[15], out[15];

	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0x10 + i);
	assert_int_equal(iov_from_buf(iov, 4, 0, src, 15), 15);
	assert_memory_equal(a, src, 3);
	assert_memory_equal(b, src + 3, 5);
	assert_memory_equal(d, src + 8, 7);

	/* Skip 4: from b[1] on, across the empty segment, into d. */
	memset(out, 0, sizeof(out));
	assert_int_equal(iov_to_buf(iov, 4, 4, out, 6), 6);
	assert_memory_equal(out, src + 4, 6);

	/* Skip exactly a segment boundary. */
	assert_int_equal(iov_to_buf(iov, 4, 8, out, 15), 7);
	assert_memory_equal(out, src + 8, 7);

	/* Asking for more than there is returns what there is. */
	assert_int_equal(iov_to_buf(iov, 4, 13, out, 15), 2);
	assert_memory_equal(out, src + 13, 2);
	assert_int_equal(iov_to_buf(iov, 4, 15, out, 15), 0);
	assert_int_equal(iov_to_buf(iov, 4, 1000, out, 15), 0);
	assert_int_equal(iov_to_buf(iov, 0, 0, out, 15), 0);

	/* Writes with skip change only the bytes named. */
	assert_int_equal(iov_from_buf(iov, 4, 2, "XYZ", 3), 3);
	assert_int_equal(a[1], src[1]);
	assert_int_equal(a[2], 'X');
	assert_int_equal(b[0], 'Y');
	assert_int_equal(b[1], 'Z');
	assert_int_equal(b[2], src[5]);
	assert_int_equal(iov_from_buf(iov, 4, 14, "PQ", 2), 1);
	assert_int_equal(d[6], 'P');
	assert_int_equal(iov_from_buf(iov, 4, 15, "PQ", 2), 0);
	assert_int_equal(iov_from_buf(iov, 4, 3, "", 0), 0);
	assert_int_equal(b[0], 'Y');
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define H(fn) cmocka_unit_test_setup_teardown(fn, setup_hole, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty_and_not_ready),
		T(test_direct_mixed_chain),
		T(test_direct_write_only_and_read_only),
		T(test_indirect_chain),
		T(test_indirect_write_flag_on_outer_ignored),
		T(test_chain_as_long_as_queue),
		T(test_indirect_as_long_as_table),
		T(test_buffers_at_ram_edges),
		T(test_many_requests_and_avail_wrap),
		H(test_region_above_hole),
		T(test_addr_beyond_ram),
		T(test_addr_runs_past_ram_end),
		T(test_addr_len_wraps),
		T(test_addr_len_max),
		H(test_addr_in_hole),
		H(test_buffer_crosses_hole),
		H(test_buffer_spans_both_regions),
		H(test_buffer_past_high_end),
		T(test_chain_loop),
		T(test_chain_self_loop),
		T(test_chain_longer_than_queue),
		T(test_zero_length_loop),
		T(test_next_beyond_queue),
		T(test_next_far_beyond_queue),
		T(test_head_beyond_queue),
		T(test_avail_idx_jumps),
		T(test_avail_idx_goes_backwards),
		T(test_readable_after_writable),
		T(test_readable_after_writable_indirect),
		T(test_request_over_limit),
		T(test_too_many_segments),
		T(test_too_many_writable_segments),
		T(test_indirect_table_outside_ram),
		H(test_indirect_table_in_hole),
		T(test_indirect_len_not_multiple),
		T(test_indirect_len_zero),
		T(test_indirect_huge),
		T(test_indirect_nested),
		T(test_indirect_with_next),
		T(test_indirect_inside_chain),
		T(test_indirect_after_empty_descriptor),
		T(test_indirect_loop),
		T(test_indirect_next_off_table),
		T(test_indirect_entry_outside_ram),
		T(test_indirect_table_at_ram_end),
		T(test_check_rings),
		H(test_check_rings_hole),
		T(test_reset),
		T(test_push_updates_used_ring),
		T(test_push_wraps),
		T(test_push_at_ram_end),
		T(test_pop_then_push_roundtrip),
		T(test_no_interrupt_flag),
		T(test_event_idx),
		T(test_event_idx_wraps),
		T(test_event_idx_ring_at_ram_end),
		T(test_push_many_publishes_once_and_wraps),
		cmocka_unit_test(test_iov_copies_with_skip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
