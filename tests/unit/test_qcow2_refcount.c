/*
 * Refcount math and allocation (src/block/qcow2/refcount.c) and the bounded
 * table cache (cache.c), on real images in a temporary directory.
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
#include "tmpdir.h"

static struct block_dev *make(const char *name, uint32_t cs, int rbits, uint64_t size)
{
	struct block_create_opts o = { .size = size, .cluster_size = cs, .refcount_bits = rbits };
	struct block_dev *bd;
	char path[256], err[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if (block_create(path, "qcow2", &o, err, sizeof(err)) < 0)
		fail_msg("create: %s", err);
	if (block_open(path, "qcow2", BLOCK_NO_FLUSH, &bd, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	return bd;
}

static void assert_clean(struct block_dev *bd)
{
	struct block_check_result r;

	assert_int_equal(block_check(bd, 0, &r, stderr), 0);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(r.leaks, 0);
	assert_int_equal(r.check_errors, 0);
}

static void test_entry_widths(void **state)
{
	uint8_t block[4096];

	for (unsigned order = 0; order <= 6; order++) {
		uint64_t max = order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1;
		uint64_t n = sizeof(block) * 8 >> order;
		srand(order);
		memset(block, 0, sizeof(block));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set_entry(block, order, i, (i * 2654435761u) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_int_equal(qcow2_rc_get_entry(block, order, i), (i * 2654435761u) & max);
		/* Setting one entry leaves its neighbours alone. */
		qcow2_rc_set_entry(block, order, 5, max);
		assert_int_equal(qcow2_rc_get_entry(block, order, 4), ((uint64_t)4 * 2654435761u) & max);
		assert_int_equal(qcow2_rc_get_entry(block, order, 6), ((uint64_t)6 * 2654435761u) & max);
		assert_int_equal(qcow2_rc_get_entry(block, order, 5), max);
	}
	/* QEMU's layout: sub-byte entries from the least significant bit. */
	memset(block, 0, sizeof(block));
	qcow2_rc_set_entry(block, 0, 1, 1);
	assert_int_equal(block[0], 0x02);
	qcow2_rc_set_entry(block, 1, 1, 3);
	assert_int_equal(block[0], 0x0e);
	qcow2_rc_set_entry(block, 4, 1, 0x1234);
	assert_int_equal(block[2], 0x12);
	assert_int_equal(block[3], 0x34);
}

static void test_alloc_and_free(void **state)
{
	struct block_dev *bd = make("a.qcow2", 65536, 16, 64 << 20);
	struct qcow2 *s = bd->opaque;
	uint64_t a, b, rc;

	pthread_mutex_lock(&s->lock);
	assert_int_equal(qcow2_alloc_clusters(s, 5, &a), 0);
	assert_int_equal(a % 65536, 0);
	assert_int_equal(qcow2_alloc_clusters(s, 1, &b), 0);
	assert_int_equal(b, a + 5 * 65536);
	assert_int_equal(qcow2_get_refcount(s, a >> 16, &rc), 0);
	assert_int_equal(rc, 1);
	/* Deferred frees wait for the metadata flush. */
	assert_int_equal(qcow2_free_later(s, a, 5), 0);
	assert_int_equal(qcow2_get_refcount(s, (a >> 16) + 4, &rc), 0);
	assert_int_equal(rc, 1);
	assert_int_equal(qcow2_flush_metadata(s, false), 0);
	assert_int_equal(qcow2_get_refcount(s, (a >> 16) + 4, &rc), 0);
	assert_int_equal(rc, 0);
	/* The space is found again, first fit. */
	assert_int_equal(qcow2_alloc_clusters(s, 3, &b), 0);
	assert_int_equal(b, a);
	assert_int_equal(qcow2_free_now(s, b, 3), 0);
	assert_int_equal(qcow2_free_now(s, a + 5 * 65536, 1), 0);
	/* Dropping below zero is refused, not wrapped. */
	assert_true(qcow2_update_refcount(s, (a >> 16) + 1, -1) < 0);
	pthread_mutex_unlock(&s->lock);
	assert_clean(bd);
	block_close(bd);
}

static void test_overflow_refused(void **state)
{
	struct block_dev *bd = make("o.qcow2", 4096, 2, 1 << 20);
	struct qcow2 *s = bd->opaque;
	uint64_t a;

	pthread_mutex_lock(&s->lock);
	assert_int_equal(qcow2_alloc_clusters(s, 1, &a), 0);
	assert_int_equal(qcow2_update_refcount(s, a >> 12, 2), 0);
	assert_int_equal(qcow2_update_refcount(s, a >> 12, 1), -ERANGE);
	assert_int_equal(qcow2_update_refcount(s, a >> 12, -3), 0);
	pthread_mutex_unlock(&s->lock);
	assert_clean(bd);
	block_close(bd);
}

/* Small clusters and wide refcounts: blocks and the table itself must grow. */
static void test_growth(void **state)
{
	static const struct { uint32_t cs; int rbits; } cases[] = {
		{ 512, 64 }, { 512, 1 }, { 1024, 16 }, { 4096, 64 },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char name[32];
		struct block_dev *bd;
		struct qcow2 *s;
		uint64_t old_table, off, first = UINT64_MAX, end = 0, inside, zero = 0, rc;

		snprintf(name, sizeof(name), "g%zu.qcow2", k);
		bd = make(name, cases[k].cs, cases[k].rbits, 1 << 20);
		s = bd->opaque;
		old_table = s->reftable_offset;
		pthread_mutex_lock(&s->lock);
		for (int i = 0; i < 3000; i++) {
			assert_int_equal(qcow2_alloc_clusters(s, 1 + (uint64_t)(i % 3), &off), 0);
			if (off < first)
				first = off;
			if (off + ((1 + (uint64_t)(i % 3)) << s->cluster_bits) > end)
				end = off + ((1 + (uint64_t)(i % 3)) << s->cluster_bits);
		}
		assert_int_equal(qcow2_flush_metadata(s, true), 0);
		pthread_mutex_unlock(&s->lock);
		if (cases[k].cs == 512 && cases[k].rbits == 64)
			assert_true(s->reftable_offset != old_table);
		/* Everything allocated is leaked on purpose; nothing else may be wrong. */
		{
			struct block_check_result r;
			assert_int_equal(block_check(bd, 0, &r, NULL), 0);
			assert_int_equal(r.corruptions, 0);
			assert_int_equal(r.check_errors, 0);
			/* Never-written clusters past the end of the file are not looked at... */
			assert_true(r.leaks > 0 && r.leaks <= 6000);
			inside = r.leaks;
			/*
			 * ...a repair counts those it reports and clears the rest
			 * quietly: all 6000 are free afterwards (metadata stays).
			 */
			assert_int_equal(block_check(bd, BLOCK_FIX_LEAKS, &r, NULL), 0);
			assert_int_equal(r.leaks_fixed, inside);
			for (uint64_t c = first >> s->cluster_bits; c < end >> s->cluster_bits; c++) {
				assert_int_equal(qcow2_get_refcount(s, c, &rc), 0);
				zero += rc == 0;
			}
			assert_int_equal(zero, 6000);
		}
		assert_clean(bd);
		block_close(bd);
	}
}

/* Compressed data packs into shared clusters, one reference per user. */
static void test_alloc_bytes(void **state)
{
	struct block_dev *bd = make("b.qcow2", 4096, 16, 1 << 20);
	struct qcow2 *s = bd->opaque;
	uint64_t a, b, c, rc;

	pthread_mutex_lock(&s->lock);
	assert_int_equal(qcow2_alloc_bytes(s, 1000, &a), 0);
	assert_int_equal(qcow2_alloc_bytes(s, 1000, &b), 0);
	assert_int_equal(b, a + 1000);
	assert_int_equal(qcow2_get_refcount(s, a >> 12, &rc), 0);
	assert_int_equal(rc, 2);
	/* Spilling into the next cluster takes it and counts both. */
	assert_int_equal(qcow2_alloc_bytes(s, 3000, &c), 0);
	assert_int_equal(c, a + 2000);
	assert_int_equal(qcow2_get_refcount(s, a >> 12, &rc), 0);
	assert_int_equal(rc, 3);
	assert_int_equal(qcow2_get_refcount(s, (a >> 12) + 1, &rc), 0);
	assert_int_equal(rc, 1);
	pthread_mutex_unlock(&s->lock);
	block_close(bd);
}

static void test_cache_lru_and_pins(void **state)
{
	struct block_dev *bd = make("c.qcow2", 4096, 16, 1 << 20);
	struct qcow2 *s = bd->opaque;
	struct qcow2_cache c;
	void *t[5];
	uint64_t base;
	uint8_t buf[4096];

	pthread_mutex_lock(&s->lock);
	assert_int_equal(qcow2_alloc_clusters(s, 5, &base), 0);
	assert_int_equal(qcow2_cache_init(&c, 3, 4096, false), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(qcow2_cache_get(s, &c, base + i * 4096, false, &t[i]), 0);
		memset(t[i], 'a' + i, 4096);
		qcow2_cache_mark_dirty(&c, t[i]);
	}
	/* All three pinned: a fourth table has no room, and says so. */
	assert_int_equal(qcow2_cache_get(s, &c, base + 3 * 4096, true, &t[3]), -ENOMEM);
	qcow2_cache_put(&c, t[1]);
	qcow2_cache_put(&c, t[0]);
	/* The least recently used unpinned one (t[0]) is written back and reused. */
	assert_int_equal(qcow2_cache_get(s, &c, base + 3 * 4096, true, &t[3]), 0);
	assert_ptr_equal(t[3], t[0]);
	assert_int_equal(bfile_pread(bd, base, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(buf[4095], 'a');
	/* t[1] is still cached: a hit returns the same memory, dirty data intact. */
	assert_int_equal(qcow2_cache_get(s, &c, base + 4096, true, &t[4]), 0);
	assert_ptr_equal(t[4], t[1]);
	assert_int_equal(((uint8_t *)t[4])[7], 'b');
	qcow2_cache_put(&c, t[4]);
	qcow2_cache_put(&c, t[2]);
	qcow2_cache_put(&c, t[3]);
	assert_int_equal(qcow2_cache_flush(s, &c), 0);
	assert_int_equal(bfile_pread(bd, base + 2 * 4096, buf, sizeof(buf)), 0);
	assert_int_equal(buf[100], 'c');
	qcow2_cache_destroy(&c);
	assert_int_equal(qcow2_free_now(s, base, 5), 0);
	pthread_mutex_unlock(&s->lock);
	assert_clean(bd);
	block_close(bd);
}

/* An L2 cache far smaller than the disk: evictions under heavy writes stay correct. */
static void test_l2_cache_eviction(void **state)
{
	struct block_dev *bd = make("l.qcow2", 512, 16, 8 << 20);
	struct qcow2 *s = bd->opaque;
	uint8_t *buf = malloc(8 << 20), *got = malloc(8 << 20);

	assert_non_null(buf);
	assert_non_null(got);
	qcow2_cache_destroy(&s->l2_cache);
	assert_int_equal(qcow2_cache_init(&s->l2_cache, 4, 512, true), 0);
	for (size_t i = 0; i < (8 << 20); i++)
		buf[i] = (uint8_t)(i * 31 + (i >> 12));
	/* Stride through the disk so every write needs another L2 table. */
	for (uint64_t off = 0; off < (8 << 20); off += 32768 * 7 % (8 << 20) + 512) {
		assert_int_equal(block_pwrite(bd, off, buf + off, 512), 0);
	}
	for (uint64_t off = 0; off < (8 << 20); off += 65536)
		assert_int_equal(block_pwrite(bd, off, buf + off, 65536), 0);
	assert_int_equal(block_flush(bd), 0);
	assert_int_equal(block_pread(bd, 0, got, 8 << 20), 0);
	assert_memory_equal(got, buf, 8 << 20);
	assert_clean(bd);
	free(buf);
	free(got);
	block_close(bd);
}

/*
 * Leaves garbage where the next call's locals will live: what a long-running
 * VMM's stack holds when it reopens an image (issue #16, defect 3).
 */
static void __attribute__((noinline)) dirty_stack(uint8_t fill)
{
	volatile uint8_t junk[256 << 10];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = fill;
}

/*
 * A lazy_refcounts image whose VM died (dirty bit set, refcounts behind the
 * tables) is repaired when opened for writing, whatever the stack held: the
 * repair's result must not be read before the check has set it.
 */
static void test_dirty_lazy_open(void **state)
{
	struct block_create_opts o = { .size = 4 << 20, .cluster_size = 65536,
				       .lazy_refcounts = true };
	static const uint8_t fills[] = { 0xff, 0x01, 0x5a, 0x80, 0x00, 0x7f };
	char path[256], err[256];
	uint8_t buf[4096];
	struct block_dev *bd;

	snprintf(path, sizeof(path), "%s/lazy.qcow2", tmpdir);
	memset(buf, 0xab, sizeof(buf));
	for (size_t k = 0; k < sizeof(fills); k++) {
		enum qcow2_type type;
		struct qcow2 *s;
		uint64_t l2e, n;

		assert_int_equal(block_create(path, "qcow2", &o, err, sizeof(err)), 0);
		assert_int_equal(block_open(path, "qcow2", 0, &bd, err, sizeof(err)), 0);
		assert_int_equal(block_pwrite(bd, 65536 * k, buf, sizeof(buf)), 0);
		assert_int_equal(block_flush(bd), 0);
		s = bd->opaque;
		/*
		 * What a kill leaves: the dirty bit on disk, refcounts that are right
		 * (what qemu-img check calls clean), one too high or one missing.
		 */
		pthread_mutex_lock(&s->lock);
		assert_int_equal(qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, true), 0);
		assert_int_equal(qcow2_map(s, 65536 * k, 4096, &type, &l2e, &n), 0);
		assert_int_equal(type, QCOW2_NORMAL);
		if (k % 3)
			assert_int_equal(qcow2_update_refcount(s, (l2e & L2E_OFFSET_MASK) >> 16,
							       k % 3 == 1 ? 1 : -1), 0);
		assert_int_equal(qcow2_flush_metadata(s, true), 0);
		s->dirty_bit_set = false;	/* close must not clean up behind the test */
		pthread_mutex_unlock(&s->lock);
		block_close(bd);

		dirty_stack(fills[k]);
		if (block_open(path, "qcow2", 0, &bd, err, sizeof(err)) < 0)
			fail_msg("stack filled with %#x: %s", fills[k], err);
		assert_int_equal(block_pread(bd, 65536 * k, buf, sizeof(buf)), 0);
		assert_int_equal(buf[0], 0xab);
		assert_false(((struct qcow2 *)bd->opaque)->h.incompatible_features &
			     QCOW2_INCOMPAT_DIRTY);
		assert_clean(bd);
		block_close(bd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_widths),
		cmocka_unit_test(test_alloc_and_free),
		cmocka_unit_test(test_overflow_refused),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_alloc_bytes),
		cmocka_unit_test(test_cache_lru_and_pins),
		cmocka_unit_test(test_l2_cache_eviction),
		cmocka_unit_test(test_dirty_lazy_open),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
