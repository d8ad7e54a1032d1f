/*
 * Guest I/O accounting per image (QEMU 7.2 block/accounting.c, without its
 * timed averages and histograms): plain atomic counters the device models
 * bump once per request, read by query-blockstats and "info blockstats".
 */
#include "block/block_int.h"

#include <string.h>
#include <time.h>

#define ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)

uint64_t block_acct_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void block_acct_done(struct block_dev *bd, enum block_acct_type type, uint64_t offset,
		     uint64_t bytes, uint64_t ns, bool failed)
{
	struct block_stats *s = &bd->stats;
	uint64_t end = offset + bytes, high;

	if (type >= BLOCK_ACCT_NR)
		return;
	if (failed) {
		ADD(s->failed_ops[type], 1);
	} else {
		ADD(s->bytes[type], bytes);
		ADD(s->ops[type], 1);
		ADD(s->total_time_ns[type], ns);
	}
	/* bdrv_co_pwritev: the highest offset a write reached, on success. */
	high = __atomic_load_n(&s->wr_highest_offset, __ATOMIC_RELAXED);
	while (!failed && type == BLOCK_ACCT_WRITE && end > high &&
	       !__atomic_compare_exchange_n(&s->wr_highest_offset, &high, end, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	__atomic_store_n(&s->last_access_ns, block_acct_now(), __ATOMIC_RELAXED);
}

void block_acct_invalid(struct block_dev *bd, enum block_acct_type type)
{
	if (type >= BLOCK_ACCT_NR)
		return;
	ADD(bd->stats.invalid_ops[type], 1);
	__atomic_store_n(&bd->stats.last_access_ns, block_acct_now(), __ATOMIC_RELAXED);
}

void block_get_stats(struct block_dev *bd, struct block_stats *out)
{
	const uint64_t *src = (const uint64_t *)&bd->stats;
	uint64_t *dst = (uint64_t *)out;

	/* Field by field: each counter is consistent, as QEMU's are under its lock. */
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
