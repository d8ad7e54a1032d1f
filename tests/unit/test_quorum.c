/*
 * quorum's vote (src/block/quorum.c) as QEMU 7.2 counts it: majority wins,
 * the minority is marked for rewriting, no quorum is EIO, too many failed
 * reads give the most common error, ties go to the version seen last.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "block/quorum.h"

static const uint8_t A[4] = "aaaa", B[4] = "bbbb", C[4] = "cccc";

static void test_majority_and_rewrite(void **state)
{
	const uint8_t *bufs[] = { A, B, A };
	int rets[] = { 0, 0, 0 }, w = -1;
	unsigned char bad[3];

	(void)state;
	assert_int_equal(quorum_vote(bufs, rets, 3, 4, 2, &w, bad), 0);
	assert_memory_equal(bufs[w], A, 4);
	assert_int_equal(bad[0], 0);
	assert_int_equal(bad[1], 1);
	assert_int_equal(bad[2], 0);
}

static void test_no_quorum(void **state)
{
	const uint8_t *bufs[] = { A, B, C };
	int rets[] = { 0, 0, 0 }, w = -1;
	unsigned char bad[3];

	(void)state;
	assert_int_equal(quorum_vote(bufs, rets, 3, 4, 2, &w, bad), -EIO);
	/* Threshold 1: one vote each, the version first seen last (child 2) wins. */
	assert_int_equal(quorum_vote(bufs, rets, 3, 4, 1, &w, bad), 0);
	assert_int_equal(w, 2);
	assert_int_equal(bad[0] + bad[1], 2);
}

static void test_failed_reads(void **state)
{
	const uint8_t *bufs[] = { A, A, A };
	int rets[] = { -EIO, 0, -ENOSPC }, w = -1;
	unsigned char bad[3];

	(void)state;
	/* One success for threshold 2: the errors vote, one each, the last one wins. */
	assert_int_equal(quorum_vote(bufs, rets, 3, 4, 2, &w, bad), -ENOSPC);
	/* Threshold 1: the successful read stands; failed children are not rewritten. */
	assert_int_equal(quorum_vote(bufs, rets, 3, 4, 1, &w, bad), 0);
	assert_int_equal(w, 1);
	assert_int_equal(bad[0] + bad[2], 0);
	int errs[] = { -EIO, -ENOSPC, -EIO };
	assert_int_equal(quorum_vote_error(errs, 3), -EIO);
	int none[] = { 0, 0 };
	assert_int_equal(quorum_vote_error(none, 2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_majority_and_rewrite),
		cmocka_unit_test(test_no_quorum),
		cmocka_unit_test(test_failed_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
