/*
 * Deterministic crash injection for the crash tests and `make crash-campaign`.
 *
 * KESTREL_CRASH_AFTER_WRITES=N lets N writes, flushes, truncations and
 * fallocations on image files through, then ends the process with
 * _exit(BLOCK_CRASH_EXIT) in place of the next one: what a kill -9 between
 * two system calls leaves, at a point the test picks.  Running a command
 * with N = 0, 1, 2, ... until it exits normally crashes it at every point.
 * KESTREL_CRASH_AFTER_WRITES=count instead prints "crash points: N" to
 * stderr when the process exits.  Unset, each point costs one branch.
 */
#include "block/block_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long crash_limit = -2;	/* -2: environment not read yet; -1: off */
static long crash_seen;
static int crash_once;

static void crash_report(void)
{
	fprintf(stderr, "crash points: %ld\n", __atomic_load_n(&crash_seen, __ATOMIC_SEQ_CST));
}

static long crash_init(void)
{
	const char *v = getenv("KESTREL_CRASH_AFTER_WRITES");
	char *end;
	long n;

	if (!v || !*v)
		return -1;
	if (!strcmp(v, "count")) {
		atexit(crash_report);
		return -1;
	}
	n = strtol(v, &end, 10);
	return (*end || n < 0) ? -1 : n;
}

void block_crash_point(void)
{
	long limit;

	/* Threads (convert -m) may get here together: one reads the environment. */
	if (!__atomic_exchange_n(&crash_once, 1, __ATOMIC_SEQ_CST))
		__atomic_store_n(&crash_limit, crash_init(), __ATOMIC_SEQ_CST);
	while ((limit = __atomic_load_n(&crash_limit, __ATOMIC_SEQ_CST)) == -2)
		;
	if (__atomic_fetch_add(&crash_seen, 1, __ATOMIC_SEQ_CST) >= limit && limit >= 0)
		_exit(BLOCK_CRASH_EXIT);
}
