/*
 * Leaky buckets and throttle groups, QEMU 7.2's algorithm (util/throttle.c,
 * block/throttle-groups.c; docs/throttle.txt explains the buckets).
 *
 * A request charges its bytes and operations to the buckets; each bucket
 * leaks at its average rate.  A request waits while a bucket holds more than
 * its size: avg / 10 without a burst rate, max * burst_length with one (the
 * burst bucket, leaking at max, then caps the rate during the burst).
 *
 * In a group, members share the buckets.  When a request must wait, a timer
 * is armed on one member (the token) and no other timer in the group is; the
 * token passes round-robin to the next member with queued requests, so one
 * busy disk cannot starve the others.  QEMU's coroutine queues become
 * tickets here: a member's waiting requests hold tickets in arrival order,
 * and "restarting the queue" releases the oldest.
 */
#include "block/throttle.h"
#include "block/block_int.h"
#include "util/opts.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC 1000000000.0

struct throttle_member {
	struct throttle_group *g;
	_Atomic bool disabled;		/* QEMU's io_limits_disabled: requests pass */
	struct throttle_member *next;	/* the group's round-robin order */
	unsigned pending[2];		/* queued, not yet started */
	uint64_t queued[2], released[2];	/* tickets handed out and let go */
	bool armed[2];			/* this member's timer */
	uint64_t deadline[2];
};

struct throttle_group {
	char *name;
	unsigned refs;			/* members, plus one for an -object */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* a timer fired or a ticket was released */
	struct throttle_state ts;
	struct throttle_member *members;
	struct throttle_member *tokens[2];
	bool any_armed[2];
	struct throttle_group *next;
};

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct throttle_group *groups;

static int terr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int terr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- the buckets (util/throttle.c) ---- */

void throttle_config_init(struct throttle_config *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < THROTTLE_BUCKETS; i++)
		c->b[i].burst_length = 1;
}

bool throttle_config_enabled(const struct throttle_config *c)
{
	for (int i = 0; i < THROTTLE_BUCKETS; i++)
		if (c->b[i].avg)
			return true;
	return false;
}

static bool total_and_rw(const struct throttle_config *c, int total, bool max)
{
	const struct leaky_bucket *b = c->b;

	if (max)
		return b[total].max && (b[total + 1].max || b[total + 2].max);
	return b[total].avg && (b[total + 1].avg || b[total + 2].avg);
}

int throttle_config_check(const struct throttle_config *c, char *err, size_t errlen)
{
	if (total_and_rw(c, THROTTLE_BPS_TOTAL, false) || total_and_rw(c, THROTTLE_OPS_TOTAL, false) ||
	    total_and_rw(c, THROTTLE_BPS_TOTAL, true) || total_and_rw(c, THROTTLE_OPS_TOTAL, true))
		return terr(err, errlen, "bps/iops/max total values and read/write values cannot "
			    "be used at the same time");
	if (c->op_size && !c->b[THROTTLE_OPS_TOTAL].avg && !c->b[THROTTLE_OPS_READ].avg &&
	    !c->b[THROTTLE_OPS_WRITE].avg)
		return terr(err, errlen, "iops size requires an iops value to be set");
	for (int i = 0; i < THROTTLE_BUCKETS; i++) {
		const struct leaky_bucket *b = &c->b[i];
		if (b->avg > THROTTLE_VALUE_MAX || b->max > THROTTLE_VALUE_MAX)
			return terr(err, errlen, "bps/iops/max values must be within "
				    "[0, 1000000000000000]");
		if (!b->burst_length)
			return terr(err, errlen, "the burst length cannot be 0");
		if (b->burst_length > 1 && !b->max)
			return terr(err, errlen, "burst length set without burst rate");
		if (b->max && !b->avg)
			return terr(err, errlen, "bps_max/iops_max require corresponding bps/iops "
				    "values");
		if (b->max && b->max < b->avg)
			return terr(err, errlen, "bps_max/iops_max cannot be lower than bps/iops");
	}
	return 0;
}

/* QAPI's ThrottleLimits order: iops first, then bps, then iops-size. */
const char *const throttle_limit_names[] = {
	"iops-total", "iops-total-max", "iops-total-max-length",
	"iops-read", "iops-read-max", "iops-read-max-length",
	"iops-write", "iops-write-max", "iops-write-max-length",
	"bps-total", "bps-total-max", "bps-total-max-length",
	"bps-read", "bps-read-max", "bps-read-max-length",
	"bps-write", "bps-write-max", "bps-write-max-length",
	"iops-size", NULL,
};

/* The bucket and field (0 avg, 1 max, 2 length) a limits name means; -1: iops-size. */
static int limit_index(const char *name, int *field)
{
	static const int bucket_of[] = { THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE,
					 THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE };

	for (int i = 0; throttle_limit_names[i]; i++) {
		if (strcmp(name, throttle_limit_names[i]))
			continue;
		if (i == 18)
			return -1;
		*field = i % 3;
		return bucket_of[i / 3];
	}
	return -2;
}

int throttle_config_set(struct throttle_config *c, const char *name, uint64_t value,
			const char *label, char *err, size_t errlen)
{
	int field, i = limit_index(name, &field);

	if (i == -2)
		return 0;
	if (i == -1) {
		c->op_size = value;
		return 1;
	}
	if (field == 0)
		c->b[i].avg = value;
	else if (field == 1)
		c->b[i].max = value;
	else if (value > 0xffffffffULL)
		return terr(err, errlen, "%s value must be in the range [0, 4294967295]", label);
	else
		c->b[i].burst_length = (unsigned)value;
	return 1;
}

bool throttle_config_get(const struct throttle_config *c, const char *name, uint64_t *out)
{
	int field, i = limit_index(name, &field);

	if (i == -2)
		return false;
	*out = i == -1 ? c->op_size : field == 0 ? c->b[i].avg : field == 1 ? c->b[i].max
	       : c->b[i].burst_length;
	return true;
}

/* An integer as QEMU's visitors read one (qemu_strtoi64, base 0, no suffix). */
static bool parse_int64(const char *v, int64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoll(v, &end, 0);
	return *v && !*end && !errno;
}

int throttle_object_limit(struct throttle_config *c, const char *key, const char *value,
			  char *err, size_t errlen)
{
	bool x = !strncmp(key, "x-", 2);
	const char *name = x ? key + 2 : !strncmp(key, "limits.", 7) ? key + 7 : NULL;
	size_t n = name ? strlen(name) : 0;
	bool length = n > 11 && !strcmp(name + n - 11, "-max-length");
	uint64_t old;
	int64_t v;

	if (!name || !throttle_config_get(c, name, &old))
		return 0;
	if (!parse_int64(value, &v))
		return terr(err, errlen, "Parameter '%s' expects integer", key);
	if (x && v < 0)
		return terr(err, errlen, "Property values cannot be negative");
	/* QEMU 7.2's wording for the x- properties, missing space included. */
	if (x && length && v > 0xffffffffLL)
		return terr(err, errlen, "%s value must be in therange [0, 4294967295]", key);
	if (length && v < 0)
		v = (int64_t)(uint32_t)v;
	return throttle_config_set(c, name, (uint64_t)v, name, err, errlen) < 0 ? -1 : 1;
}

int throttle_object_limits(struct throttle_config *c, struct opts *o, char *err, size_t errlen)
{
	throttle_config_init(c);
	for (size_t i = 0; i < o->count; i++) {
		int r;
		if (o->items[i].used)
			continue;
		r = throttle_object_limit(c, o->items[i].key, o->items[i].value, err, errlen);
		if (r < 0)
			return -1;
		o->items[i].used = r > 0;
	}
	return 0;
}

void throttle_state_config(struct throttle_state *ts, const struct throttle_config *c,
			   uint64_t now)
{
	ts->cfg = *c;
	for (int i = 0; i < THROTTLE_BUCKETS; i++)
		ts->cfg.b[i].level = ts->cfg.b[i].burst_level = 0;
	ts->previous_leak = now;
}

static void leak_bucket(struct leaky_bucket *b, uint64_t delta)
{
	double leak = (double)b->avg * (double)delta / NS_PER_SEC;

	b->level = b->level > leak ? b->level - leak : 0;
	/* A burst of more than a second also keeps its rate: the burst bucket leaks at max. */
	if (b->burst_length > 1) {
		leak = (double)b->max * (double)delta / NS_PER_SEC;
		b->burst_level = b->burst_level > leak ? b->burst_level - leak : 0;
	}
}

/* QEMU's throttle_compute_wait: ns until the bucket is back under its size. */
static uint64_t bucket_wait(const struct leaky_bucket *b)
{
	double size, burst_size, extra;

	if (!b->avg)
		return 0;
	if (!b->max) {
		/* No burst rate: still let short bursts through, or every other request waits. */
		size = (double)b->avg / 10;
		burst_size = 0;
	} else {
		size = (double)b->max * b->burst_length;
		burst_size = (double)b->max / 10;
	}
	extra = b->level - size;
	if (extra > 0)
		return (uint64_t)(extra * NS_PER_SEC / (double)b->avg);
	if (b->burst_length > 1) {
		extra = b->burst_level - burst_size;
		if (extra > 0)
			return (uint64_t)(extra * NS_PER_SEC / (double)b->max);
	}
	return 0;
}

uint64_t throttle_state_wait(struct throttle_state *ts, bool write, uint64_t now)
{
	static const int check[2][4] = {
		{ THROTTLE_BPS_TOTAL, THROTTLE_OPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_OPS_READ },
		{ THROTTLE_BPS_TOTAL, THROTTLE_OPS_TOTAL, THROTTLE_BPS_WRITE, THROTTLE_OPS_WRITE },
	};
	uint64_t wait = 0;

	if (now > ts->previous_leak) {
		for (int i = 0; i < THROTTLE_BUCKETS; i++)
			leak_bucket(&ts->cfg.b[i], now - ts->previous_leak);
		ts->previous_leak = now;
	}
	for (int i = 0; i < 4; i++) {
		uint64_t w = bucket_wait(&ts->cfg.b[check[write][i]]);
		if (w > wait)
			wait = w;
	}
	return wait;
}

void throttle_state_account(struct throttle_state *ts, bool write, uint64_t bytes)
{
	struct leaky_bucket *b = ts->cfg.b;
	int rw_bps = write ? THROTTLE_BPS_WRITE : THROTTLE_BPS_READ;
	int rw_ops = write ? THROTTLE_OPS_WRITE : THROTTLE_OPS_READ;
	double units = 1.0;
	const int size_b[2] = { THROTTLE_BPS_TOTAL, rw_bps }, unit_b[2] = { THROTTLE_OPS_TOTAL, rw_ops };

	/* iops-size: a request larger than it counts as several operations. */
	if (ts->cfg.op_size && bytes > ts->cfg.op_size)
		units = (double)bytes / (double)ts->cfg.op_size;
	for (int i = 0; i < 2; i++) {
		b[size_b[i]].level += (double)bytes;
		if (b[size_b[i]].burst_length > 1)
			b[size_b[i]].burst_level += (double)bytes;
		b[unit_b[i]].level += units;
		if (b[unit_b[i]].burst_length > 1)
			b[unit_b[i]].burst_level += units;
	}
}

/* ---- groups (block/throttle-groups.c) ---- */

static struct throttle_group *group_find(const char *name)
{
	for (struct throttle_group *g = groups; g; g = g->next)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A new group with limits c; groups_lock held. */
static struct throttle_group *group_add(const char *name, const struct throttle_config *c)
{
	struct throttle_group *g = calloc(1, sizeof(*g));

	if (!g || !(g->name = strdup(name))) {
		free(g);
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	/* Deadlines are CLOCK_MONOTONIC: the waits must be too. */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &attr);
	pthread_condattr_destroy(&attr);
	throttle_state_config(&g->ts, c, now_ns());
	g->next = groups;
	groups = g;
	return g;
}

/* Drops a reference; groups_lock held. */
static void group_unref(struct throttle_group *g)
{
	struct throttle_group **p;

	if (--g->refs)
		return;
	for (p = &groups; *p != g; p = &(*p)->next)
		;
	*p = g->next;
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g->name);
	free(g);
}

int throttle_group_new(const char *name, const struct throttle_config *c, char *err,
		       size_t errlen)
{
	int ret = 0;

	if (throttle_config_check(c, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&groups_lock);
	if (group_find(name)) {
		ret = terr(err, errlen, "A group with this name already exists");
	} else {
		struct throttle_group *g = group_add(name, c);
		if (g)
			g->refs = 1;
		else
			ret = terr(err, errlen, "out of memory");
	}
	pthread_mutex_unlock(&groups_lock);
	return ret;
}

bool throttle_group_exists(const char *name)
{
	bool found;

	pthread_mutex_lock(&groups_lock);
	found = group_find(name) != NULL;
	pthread_mutex_unlock(&groups_lock);
	return found;
}

/* Every armed timer fires at once (QEMU's throttle_group_restart_tgm); g->lock held. */
static void fire_all(struct throttle_group *g)
{
	for (struct throttle_member *m = g->members; m; m = m->next)
		for (int w = 0; w < 2; w++)
			if (m->armed[w])
				m->deadline[w] = 0;
	pthread_cond_broadcast(&g->cond);
}

/* g's limits now c (checked); g->lock held. */
static void group_config(struct throttle_group *g, const struct throttle_config *c)
{
	throttle_state_config(&g->ts, c, now_ns());
	fire_all(g);
}

int throttle_group_set_config(const char *name, const struct throttle_config *c, char *err,
			      size_t errlen)
{
	struct throttle_group *g;

	if (throttle_config_check(c, err, errlen) < 0)
		return -1;
	pthread_mutex_lock(&groups_lock);
	g = group_find(name);
	if (g) {
		pthread_mutex_lock(&g->lock);
		group_config(g, c);
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_unlock(&groups_lock);
	return g ? 0 : terr(err, errlen, "Throttle group '%s' does not exist", name);
}

bool throttle_group_get_config(const char *name, struct throttle_config *c)
{
	struct throttle_group *g;

	pthread_mutex_lock(&groups_lock);
	g = group_find(name);
	if (g) {
		pthread_mutex_lock(&g->lock);
		*c = g->ts.cfg;
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_unlock(&groups_lock);
	return g != NULL;
}

int throttle_member_join(const char *name, const struct throttle_config *c,
			 struct throttle_member **out, char *err, size_t errlen)
{
	struct throttle_member *m = calloc(1, sizeof(*m)), **tail;
	struct throttle_group *g;

	if (!m)
		return terr(err, errlen, "out of memory");
	if (c && throttle_config_check(c, err, errlen) < 0) {
		free(m);
		return -1;
	}
	pthread_mutex_lock(&groups_lock);
	g = group_find(name);
	if (!g && c)
		g = group_add(name, c);
	if (!g) {
		pthread_mutex_unlock(&groups_lock);
		free(m);
		if (c)
			return terr(err, errlen, "out of memory");
		return terr(err, errlen, "Throttle group '%s' does not exist", name);
	}
	g->refs++;
	pthread_mutex_lock(&g->lock);
	if (c)
		group_config(g, c);
	m->g = g;
	for (tail = &g->members; *tail; tail = &(*tail)->next)
		;
	*tail = m;
	for (int w = 0; w < 2; w++)
		if (!g->tokens[w])
			g->tokens[w] = m;
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_unlock(&groups_lock);
	*out = m;
	return 0;
}

/* The member after m, wrapping round (QEMU's throttle_group_next_tgm). */
static struct throttle_member *next_member(struct throttle_member *m)
{
	return m->next ? m->next : m->g->members;
}

void throttle_member_leave(struct throttle_member *m)
{
	struct throttle_group *g;
	struct throttle_member **p;

	if (!m)
		return;
	g = m->g;
	pthread_mutex_lock(&groups_lock);
	pthread_mutex_lock(&g->lock);
	for (int w = 0; w < 2; w++) {
		if (m->armed[w])
			g->any_armed[w] = false;
		if (g->tokens[w] == m)
			g->tokens[w] = m->next ? m->next : g->members != m ? g->members : NULL;
	}
	for (p = &g->members; *p != m; p = &(*p)->next)
		;
	*p = m->next;
	pthread_mutex_unlock(&g->lock);
	group_unref(g);
	pthread_mutex_unlock(&groups_lock);
	free(m);
}

const char *throttle_member_group(const struct throttle_member *m)
{
	return m->g->name;
}

/* QEMU's next_throttle_token: the next member after the token with queued requests. */
static struct throttle_member *next_token(struct throttle_member *m, int w)
{
	struct throttle_member *start = m->g->tokens[w], *token;

	if (!start)
		return m;
	token = next_member(start);
	while (token != start && !token->pending[w])
		token = next_member(token);
	/* Nobody queued: the caller's own request is the one to look at. */
	if (token == start && !token->pending[w])
		token = m;
	return token;
}

/* Arms m's timer if a request must wait (QEMU's throttle_group_schedule_timer). */
static bool schedule_timer(struct throttle_member *m, int w, uint64_t now)
{
	struct throttle_group *g = m->g;
	uint64_t wait;

	if (g->any_armed[w])
		return true;
	wait = throttle_state_wait(&g->ts, w, now);
	if (!wait)
		return false;
	m->armed[w] = true;
	m->deadline[w] = now + wait;
	g->tokens[w] = m;
	g->any_armed[w] = true;
	/* Waiters sleeping without a deadline must learn of this one. */
	pthread_cond_broadcast(&g->cond);
	return true;
}

/* Lets m's oldest queued request go, if it has one not yet let go. */
static bool restart_queue(struct throttle_member *m, int w)
{
	if (m->released[w] == m->queued[w])
		return false;
	m->released[w]++;
	pthread_cond_broadcast(&m->g->cond);
	return true;
}

/* QEMU's schedule_next_request: after a request went, who goes next and when. */
static void schedule_next(struct throttle_member *m, int w, uint64_t now)
{
	struct throttle_group *g = m->g;
	struct throttle_member *token = next_token(m, w);

	if (!token->pending[w])
		return;
	if (schedule_timer(token, w, now))
		return;
	/* No wait: the current member's queue goes first, else the token's timer fires now. */
	if (restart_queue(m, w)) {
		token = m;
	} else {
		token->armed[w] = true;
		token->deadline[w] = now;
		g->any_armed[w] = true;
		pthread_cond_broadcast(&g->cond);
	}
	g->tokens[w] = token;
}

bool throttle_sched_enter(struct throttle_member *m, bool write, uint64_t now, uint64_t *ticket)
{
	struct throttle_group *g = m->g;
	int w = write;
	bool go;

	pthread_mutex_lock(&g->lock);
	go = !schedule_timer(next_token(m, w), w, now) && !m->pending[w];
	if (!go) {
		m->pending[w]++;
		*ticket = m->queued[w]++;
	}
	pthread_mutex_unlock(&g->lock);
	return go;
}

bool throttle_sched_released(struct throttle_member *m, bool write, uint64_t ticket)
{
	bool go;

	pthread_mutex_lock(&m->g->lock);
	go = ticket < m->released[write];
	pthread_mutex_unlock(&m->g->lock);
	return go;
}

void throttle_sched_start(struct throttle_member *m, bool write, uint64_t bytes, bool queued,
			  uint64_t now)
{
	struct throttle_group *g = m->g;

	pthread_mutex_lock(&g->lock);
	if (queued)
		m->pending[write]--;
	throttle_state_account(&g->ts, write, bytes);
	schedule_next(m, write, now);
	pthread_mutex_unlock(&g->lock);
}

/* Timers due at now fire (QEMU's timer_cb); returns the next deadline.  g->lock held. */
static uint64_t fire_due(struct throttle_group *g, uint64_t now)
{
	uint64_t next = 0;

	for (struct throttle_member *m = g->members; m; m = m->next) {
		for (int w = 0; w < 2; w++) {
			if (!m->armed[w])
				continue;
			if (m->deadline[w] > now) {
				if (!next || m->deadline[w] < next)
					next = m->deadline[w];
				continue;
			}
			m->armed[w] = false;
			g->any_armed[w] = false;
			if (!restart_queue(m, w))
				schedule_next(m, w, now);
			/* schedule_next may have armed a timer again: look once more. */
			if (m->armed[w] && (!next || m->deadline[w] < next))
				next = m->deadline[w];
		}
	}
	return next;
}

uint64_t throttle_sched_fire(struct throttle_member *m, uint64_t now)
{
	uint64_t next;

	pthread_mutex_lock(&m->g->lock);
	next = fire_due(m->g, now);
	pthread_mutex_unlock(&m->g->lock);
	return next;
}

void throttle_member_intercept(struct throttle_member *m, bool write, uint64_t bytes)
{
	struct throttle_group *g = m->g;
	uint64_t ticket, next;

	if (m->disabled)
		return;
	if (throttle_sched_enter(m, write, now_ns(), &ticket)) {
		throttle_sched_start(m, write, bytes, false, now_ns());
		return;
	}
	/* Every waiter runs the group's due timers: there is no timer thread. */
	pthread_mutex_lock(&g->lock);
	for (;;) {
		next = fire_due(g, now_ns());
		if (ticket < m->released[write] || m->disabled)
			break;
		if (!next) {
			pthread_cond_wait(&g->cond, &g->lock);
		} else {
			struct timespec ts = { .tv_sec = (time_t)(next / 1000000000ULL),
					       .tv_nsec = (long)(next % 1000000000ULL) };
			pthread_cond_timedwait(&g->cond, &g->lock, &ts);
		}
	}
	pthread_mutex_unlock(&g->lock);
	throttle_sched_start(m, write, bytes, true, now_ns());
}

/* A disabled member's requests pass; those waiting go at once. */
static void member_disable(struct throttle_member *m, bool off)
{
	pthread_mutex_lock(&m->g->lock);
	m->disabled = off;
	pthread_cond_broadcast(&m->g->cond);
	pthread_mutex_unlock(&m->g->lock);
}

/* ---- a device's limits (QEMU's blk_io_limits_*) ---- */

int block_io_limits(struct block_dev *bd, const char *group, const struct throttle_config *c,
		    char *err, size_t errlen)
{
	struct throttle_member *m;
	int ret = 0;

	if (throttle_config_check(c, err, errlen) < 0)
		return -1;
	m = bd->throttle;
	if (!throttle_config_enabled(c)) {
		if (m)
			member_disable(m, true);
	} else if (!m) {
		ret = throttle_member_join(group, c, &m, err, errlen);
		if (ret == 0)
			bd->throttle = m;
	} else if (strcmp(group, m->g->name)) {
		/* The member stays in use by requests on their way: it cannot move. */
		ret = terr(err, errlen, "The disk is in throttle group '%s': Kestrel cannot move "
			   "it to another group while it runs", m->g->name);
	} else {
		ret = throttle_group_set_config(group, c, err, errlen);
		if (ret == 0)
			member_disable(m, false);
	}
	return ret;
}

bool block_io_limits_get(struct block_dev *bd, struct throttle_config *c, const char **group)
{
	struct throttle_member *m = bd->throttle;

	if (!m || m->disabled)
		return false;
	*group = m->g->name;
	return throttle_group_get_config(m->g->name, c);
}

void block_io_throttle(struct block_dev *bd, bool write, uint64_t bytes)
{
	struct throttle_member *m = bd->throttle;

	if (m)
		throttle_member_intercept(m, write, bytes);
}

void throttle_groups_reset(void)
{
	pthread_mutex_lock(&groups_lock);
	while (groups) {
		struct throttle_group *g = groups;
		groups = g->next;
		pthread_cond_destroy(&g->cond);
		pthread_mutex_destroy(&g->lock);
		free(g->name);
		free(g);
	}
	pthread_mutex_unlock(&groups_lock);
}

/* ---- the throttle filter node (block/throttle.c) ---- */

struct throttle_node {
	struct block_dev *child;
	struct throttle_member *m;
};

static int filter_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct throttle_node *t = bd->opaque;

	throttle_member_intercept(t->m, false, len);
	return block_pread(t->child, off, buf, len);
}

static int filter_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct throttle_node *t = bd->opaque;

	throttle_member_intercept(t->m, true, len);
	return block_pwrite(t->child, off, buf, len);
}

/* QEMU's throttle_co_pwrite_zeroes and pdiscard: charged as writes of their length. */
static int filter_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct throttle_node *t = bd->opaque;

	throttle_member_intercept(t->m, true, len);
	return block_write_zeroes(t->child, off, len, may_unmap);
}

/* Flushes and block status pass through unthrottled, as in QEMU. */
static int filter_flush(struct block_dev *bd)
{
	return block_flush(((struct throttle_node *)bd->opaque)->child);
}

static int filter_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			 uint64_t *map, unsigned *flags)
{
	return block_status(((struct throttle_node *)bd->opaque)->child, off, len, pnum, map,
			    flags);
}

/* The disk usage is the child's; the rest of its info is not the filter's. */
static int filter_get_info(struct block_dev *bd, struct block_info *info)
{
	struct block_info c;
	int ret = block_get_info(((struct throttle_node *)bd->opaque)->child, &c);

	if (ret < 0)
		return ret;
	info->actual_size = c.actual_size;
	info->actual_size_unknown = c.actual_size_unknown;
	return 0;
}

static void filter_close(struct block_dev *bd)
{
	struct throttle_node *t = bd->opaque;

	if (!t)
		return;
	throttle_member_leave(t->m);
	block_close(t->child);
	free(t);
	bd->opaque = NULL;
}

const struct block_driver block_throttle_driver = {
	.name = "throttle",
	.close = filter_close,
	.pread = filter_pread,
	.pwrite = filter_pwrite,
	.flush = filter_flush,
	.write_zeroes = filter_write_zeroes,
	.status = filter_status,
	.get_info = filter_get_info,
};

int block_throttle_open(const char *display, struct block_dev *child, const char *group,
			struct block_dev **out, char *err, size_t errlen)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));
	struct throttle_node *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!bd || !t || !(bd->filename = strdup(display))) {
		free(bd);
		free(t);
		block_close(child);
		return block_err(err, errlen, "out of memory");
	}
	if (throttle_member_join(group, NULL, &t->m, err, errlen) < 0) {
		free(bd->filename);
		free(bd);
		free(t);
		block_close(child);
		return -1;
	}
	/* The fields block_close and block_free expect of any node (as null.c). */
	bd->fd = -1;
	pthread_mutex_init(&bd->block0_lock, NULL);
	bd->drv = &block_throttle_driver;
	bd->flags = child->flags;
	bd->read_only = child->read_only;
	bd->size = child->size;
	t->child = child;
	bd->opaque = t;
	*out = bd;
	return 0;
}
