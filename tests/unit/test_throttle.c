/*
 * I/O throttling (src/block/throttle.c): QEMU 7.2's leaky buckets and
 * throttle groups.  The scheduling steps run on a fake clock, so the rates,
 * bursts and the round-robin order are checked exactly and fast; two tests
 * run the blocking form on real threads (bounded to well under a second).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/throttle.h"

#define SEC 1000000000ULL
#define MIB (1024 * 1024)

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void set(struct throttle_config *c, const char *name, uint64_t v)
{
	char err[160];

	assert_int_equal(throttle_config_set(c, name, v, name, err, sizeof(err)), 1);
}

/* A member of a new group named name with one limit (name2 = v2 too, when given). */
static struct throttle_member *member(const char *group, const char *name, uint64_t v,
				      const char *name2, uint64_t v2)
{
	struct throttle_config c;
	struct throttle_member *m;
	char err[160];

	throttle_config_init(&c);
	set(&c, name, v);
	if (name2)
		set(&c, name2, v2);
	assert_int_equal(throttle_member_join(group, &c, &m, err, sizeof(err)), 0);
	return m;
}

/*
 * One request at a time on the fake clock from t: returns when it started.
 * While it waits, the clock jumps to each timer's deadline.
 */
static uint64_t one(struct throttle_member *m, bool write, uint64_t bytes, uint64_t t)
{
	uint64_t ticket;

	if (throttle_sched_enter(m, write, t, &ticket)) {
		throttle_sched_start(m, write, bytes, false, t);
		return t;
	}
	for (int i = 0; i < 1000; i++) {
		uint64_t next = throttle_sched_fire(m, t);
		if (throttle_sched_released(m, write, ticket)) {
			throttle_sched_start(m, write, bytes, true, t);
			return t;
		}
		assert_true(next > 0);	/* a queued request always has a timer to wait for */
		t = next;
	}
	fail_msg("request never released");
	return 0;
}

/* Starts of n sequential requests, in seconds after t0. */
static double run(struct throttle_member *m, bool write, uint64_t bytes, unsigned n, uint64_t t0,
		  double *at)
{
	uint64_t t = t0;

	for (unsigned i = 0; i < n; i++) {
		t = one(m, write, bytes, t);
		if (at)
			at[i] = (double)(t - t0) / SEC;
	}
	return (double)(t - t0) / SEC;
}

static void check_msg(struct throttle_config *c, const char *want)
{
	char err[160] = "";

	assert_int_equal(throttle_config_check(c, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

/* Each of QEMU's throttle_is_valid messages, for the case that gives it. */
static void test_validation(void **state)
{
	struct throttle_config c;
	char err[160];

	(void)state;
	throttle_config_init(&c);
	assert_int_equal(throttle_config_check(&c, err, sizeof(err)), 0);
	assert_false(throttle_config_enabled(&c));
	set(&c, "bps-total", 100);
	set(&c, "bps-read", 10);
	check_msg(&c, "bps/iops/max total values and read/write values cannot be used at the same time");
	throttle_config_init(&c);
	set(&c, "iops-total-max", 100);
	set(&c, "iops-write-max", 100);
	check_msg(&c, "bps/iops/max total values and read/write values cannot be used at the same time");
	throttle_config_init(&c);
	set(&c, "iops-size", 4096);
	check_msg(&c, "iops size requires an iops value to be set");
	throttle_config_init(&c);
	set(&c, "bps-write", THROTTLE_VALUE_MAX + 1);
	check_msg(&c, "bps/iops/max values must be within [0, 1000000000000000]");
	throttle_config_init(&c);
	set(&c, "bps-write", THROTTLE_VALUE_MAX);
	assert_int_equal(throttle_config_check(&c, err, sizeof(err)), 0);
	set(&c, "bps-write-max-length", 0);
	check_msg(&c, "the burst length cannot be 0");
	set(&c, "bps-write-max-length", 5);
	check_msg(&c, "burst length set without burst rate");
	throttle_config_init(&c);
	set(&c, "iops-read-max", 10);
	check_msg(&c, "bps_max/iops_max require corresponding bps/iops values");
	set(&c, "iops-read", 20);
	check_msg(&c, "bps_max/iops_max cannot be lower than bps/iops");
	set(&c, "iops-read-max", 20);
	assert_int_equal(throttle_config_check(&c, err, sizeof(err)), 0);
	assert_true(throttle_config_enabled(&c));
	/* A burst length is an unsigned int in QEMU. */
	assert_int_equal(throttle_config_set(&c, "iops-read-max-length", 1ULL << 32, "x-len", err,
					     sizeof(err)), -1);
	assert_string_equal(err, "x-len value must be in the range [0, 4294967295]");
	assert_int_equal(throttle_config_set(&c, "iops", 1, "iops", err, sizeof(err)), 0);
	/* A group's limits are checked too, and a group name is taken once. */
	assert_int_equal(throttle_group_new("v", &c, err, sizeof(err)), 0);
	assert_int_equal(throttle_group_new("v", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "A group with this name already exists");
	set(&c, "iops-read-max", 1);
	assert_int_equal(throttle_group_set_config("v", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "bps_max/iops_max cannot be lower than bps/iops");
	assert_int_equal(throttle_member_join("nope", NULL, &(struct throttle_member *){ 0 }, err,
					      sizeof(err)), -1);
	assert_string_equal(err, "Throttle group 'nope' does not exist");
	throttle_groups_reset();
}

/* iops: a tenth of a second's worth goes at once, then one each 1/avg s. */
static void test_iops_rate(void **state)
{
	struct throttle_member *m = member("r", "iops-total", 100, NULL, 0);
	double at[200];

	(void)state;
	run(m, false, 4096, 200, real_ns(), at);
	assert_true(at[10] == 0.0);
	assert_true(at[11] > 0.0);
	/* Request k waits until the bucket holds no more than 10: (k - 10) / 100 s. */
	assert_float_equal(at[199], 1.89, 0.001);
	assert_float_equal(at[110] - at[60], 0.5, 0.001);
	throttle_member_leave(m);
}

/* bps: 2 MiB at 1 MiB/s in 64 KiB requests take about 2 s. */
static void test_bps_rate(void **state)
{
	struct throttle_member *m = member("b", "bps-total", MIB, NULL, 0);
	double last;

	(void)state;
	last = run(m, true, 65536, 32, real_ns(), NULL);
	/* The last one goes once 31 * 64 KiB less the 0.1 s slack have leaked. */
	assert_float_equal(last, (31.0 * 65536 - MIB / 10.0) / MIB, 0.001);
	throttle_member_leave(m);
	/* Unthrottled: no waiting at all. */
	m = member("b0", "bps-total", 0, NULL, 0);
	assert_true(run(m, true, 65536, 32, real_ns(), NULL) == 0.0);
	throttle_member_leave(m);
}

/* A burst: max per second for burst_length seconds, then avg. */
static void test_burst(void **state)
{
	struct throttle_config c;
	struct throttle_member *m;
	char err[160];
	double at[600];
	unsigned in_first = 0, late = 0;

	(void)state;
	throttle_config_init(&c);
	set(&c, "iops-total", 10);
	set(&c, "iops-total-max", 100);
	set(&c, "iops-total-max-length", 2);
	assert_int_equal(throttle_member_join("burst", &c, &m, err, sizeof(err)), 0);
	run(m, false, 512, 600, real_ns(), at);
	for (unsigned i = 0; i < 600; i++) {
		in_first += at[i] < 1.0;
		late += at[i] >= 10.0 && at[i] < 20.0;
	}
	/* The burst rate (100/s plus its 0.1 s slack) in the first second... */
	assert_in_range(in_first, 100, 111);
	/* ...and the average once the burst (about 200 operations) is spent. */
	assert_in_range(late, 99, 101);
	throttle_member_leave(m);
}

/* iops-size: a 64 KiB request counts as 16 operations of 4 KiB. */
static void test_iops_size(void **state)
{
	struct throttle_member *m = member("sz", "iops-total", 100, "iops-size", 4096);
	struct throttle_member *m2 = member("sz2", "iops-total", 100, NULL, 0);

	(void)state;
	assert_float_equal(run(m, false, 65536, 21, real_ns(), NULL), (20 * 16 - 10) / 100.0, 0.001);
	/* Without it, 21 requests are 21 operations: 0.1 s of slack covers ten. */
	assert_float_equal(run(m2, false, 65536, 21, real_ns(), NULL), 0.10, 0.001);
	/* A request smaller than iops-size is still one operation. */
	throttle_member_leave(m);
	m = member("sz3", "iops-total", 100, "iops-size", 4096);
	assert_float_equal(run(m, false, 512, 21, real_ns(), NULL), 0.10, 0.001);
	throttle_member_leave(m);
	throttle_member_leave(m2);
}

/* bps-read limits reads only; writes of the same group pass. */
static void test_directions(void **state)
{
	struct throttle_member *m = member("dir", "bps-read", MIB, NULL, 0);
	uint64_t t0 = real_ns();

	(void)state;
	assert_true(run(m, true, 65536, 64, t0, NULL) == 0.0);
	assert_true(run(m, false, 65536, 64, t0, NULL) > 3.0);
	throttle_member_leave(m);
}

struct sim_req {
	struct throttle_member *m;
	uint64_t ticket;
	bool queued, started;
};

/*
 * Two members of one group queue six requests each at once (A's first);
 * QEMU's round robin lets them go in turns: A, B, A, B...
 */
static void test_round_robin(void **state)
{
	struct throttle_member *a = member("rr", "iops-total", 10, NULL, 0), *b;
	struct sim_req r[12];
	char order[13] = "";
	unsigned done = 0;
	uint64_t t;
	char err[160];

	(void)state;
	assert_int_equal(throttle_member_join("rr", NULL, &b, err, sizeof(err)), 0);
	t = real_ns();
	for (unsigned i = 0; i < 12; i++) {
		r[i] = (struct sim_req){ .m = i < 6 ? a : b };
		r[i].queued = !throttle_sched_enter(r[i].m, false, t, &r[i].ticket);
		if (!r[i].queued) {
			throttle_sched_start(r[i].m, false, 4096, false, t);
			r[i].started = true;
			order[done++] = r[i].m == a ? 'A' : 'B';
		}
	}
	for (int guard = 0; done < 12 && guard < 1000; guard++) {
		bool progress = false;
		for (unsigned i = 0; i < 12; i++) {
			if (r[i].started || !throttle_sched_released(r[i].m, false, r[i].ticket))
				continue;
			throttle_sched_start(r[i].m, false, 4096, true, t);
			r[i].started = progress = true;
			order[done++] = r[i].m == a ? 'A' : 'B';
		}
		uint64_t next = throttle_sched_fire(a, t);
		if (!progress && next)
			t = next;
	}
	/* The bucket's slack lets A's first two go at once; then turns. */
	assert_string_equal(order, "AAABABABABBB");
	throttle_member_leave(a);
	throttle_member_leave(b);
}

struct worker {
	struct throttle_member *m;
	unsigned n;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (unsigned i = 0; i < w->n; i++)
		throttle_member_intercept(w->m, i & 1, 4096);
	return NULL;
}

/* The blocking form on real threads: 4 threads of 2 members share 50 iops. */
static void test_threads(void **state)
{
	struct throttle_member *a = member("thr", "iops-total", 50, NULL, 0), *b;
	struct worker w[4];
	pthread_t th[4];
	char err[160];
	uint64_t t0;
	double s;

	(void)state;
	assert_int_equal(throttle_member_join("thr", NULL, &b, err, sizeof(err)), 0);
	t0 = real_ns();
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .m = i < 2 ? a : b, .n = 5 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	s = (double)(real_ns() - t0) / SEC;
	/* 20 operations, 6 within the slack: 14 / 50 = 0.28 s. */
	assert_true(s > 0.25 && s < 0.6);
	throttle_member_leave(a);
	throttle_member_leave(b);
}

/* New limits reach requests already waiting (block_set_io_throttle on a busy disk). */
static void test_reconfigure(void **state)
{
	struct throttle_member *m = member("re", "iops-total", 1, NULL, 0);
	struct throttle_config c;
	struct worker w = { .m = m, .n = 6 };
	pthread_t th;
	char err[160];
	uint64_t t0 = real_ns();

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, worker_run, &w), 0);
	usleep(100000);
	throttle_config_init(&c);	/* no limits: QEMU's block_set_io_throttle with zeroes */
	assert_int_equal(throttle_group_set_config("re", &c, err, sizeof(err)), 0);
	pthread_join(th, NULL);
	/* At 1 iops the six would take about 5 s. */
	assert_true(real_ns() - t0 < SEC / 2);
	assert_true(throttle_group_get_config("re", &c));
	assert_false(throttle_config_enabled(&c));
	throttle_member_leave(m);
	assert_false(throttle_group_exists("re"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_iops_rate),
		cmocka_unit_test(test_bps_rate),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_iops_size),
		cmocka_unit_test(test_directions),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_reconfigure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
