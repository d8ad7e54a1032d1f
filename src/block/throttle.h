/*
 * I/O throttling as QEMU 7.2 does it (util/throttle.c, block/throttle-groups.c):
 * six leaky buckets (bytes and operations; total, read, write), each with an
 * average rate, an optional burst rate and burst length, and iops-size to
 * count a large request as several operations.  Limits belong to a group;
 * the disks (members) of a group share its buckets and take turns in
 * round-robin order when they must wait, as QEMU's throttle groups do.
 *
 * The scheduling steps (throttle_sched_*) take the time as an argument, so
 * the unit tests run them on a fake clock; throttle_member_intercept is the
 * blocking form the block layer uses: the request's thread (an I/O thread
 * or an aio worker, never a vCPU for virtio-blk) waits until its turn.
 */
#ifndef KESTREL_BLOCK_THROTTLE_H
#define KESTREL_BLOCK_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum throttle_bucket_type {
	THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE,
	THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE,
	THROTTLE_BUCKETS,
};

/* QEMU's THROTTLE_VALUE_MAX: the largest rate (bytes or operations per second). */
#define THROTTLE_VALUE_MAX 1000000000000000ULL

struct leaky_bucket {
	uint64_t avg;		/* units per second; 0: no limit */
	uint64_t max;		/* burst rate; 0: avg / 10 of slack only */
	double level;		/* units in the bucket */
	double burst_level;	/* units in the burst bucket (burst_length > 1) */
	unsigned burst_length;	/* seconds the burst rate may last; at least 1 */
};

struct throttle_config {
	struct leaky_bucket b[THROTTLE_BUCKETS];
	uint64_t op_size;	/* iops-size: bytes per operation; 0: each request one */
};

void throttle_config_init(struct throttle_config *c);
/* Any average limit set. */
bool throttle_config_enabled(const struct throttle_config *c);
/* QEMU's throttle_is_valid: 0, or -1 with QEMU's message. */
int throttle_config_check(const struct throttle_config *c, char *err, size_t errlen);
/*
 * Sets the limit QEMU's ThrottleLimits names name ("iops-total",
 * "bps-read-max", "iops-write-max-length", "iops-size"...): 1 set, 0 not
 * such a name, -1 with a message (label names it: "x-bps-total-max-length").
 */
int throttle_config_set(struct throttle_config *c, const char *name, uint64_t value,
			const char *label, char *err, size_t errlen);
/* The ThrottleLimits member names, NULL-terminated, in QAPI order. */
extern const char *const throttle_limit_names[];
/* The value of a limits name (as throttle_config_set), or false for an unknown one. */
bool throttle_config_get(const struct throttle_config *c, const char *name, uint64_t *out);

/*
 * One option of -object throttle-group: x-NAME (QEMU's throttle_group_set:
 * no negative values) or limits.NAME (throttle_limits_to_config: the value
 * taken as unsigned, so a negative one fails the range check).  1 set, 0
 * not a limit, -1 with QEMU's message.
 */
int throttle_object_limit(struct throttle_config *c, const char *key, const char *value,
			  char *err, size_t errlen);
/*
 * c from every option of o not yet used that is a limit (each marked used):
 * the whole -object throttle-group; -1 with QEMU's message.
 */
struct opts;
int throttle_object_limits(struct throttle_config *c, struct opts *o, char *err, size_t errlen);

/* A group's buckets. */
struct throttle_state {
	struct throttle_config cfg;
	uint64_t previous_leak;		/* ns */
};

/* Takes c with empty buckets (QEMU's throttle_config). */
void throttle_state_config(struct throttle_state *ts, const struct throttle_config *c,
			   uint64_t now);
/* Leaks the buckets to now; the ns a request in this direction must wait (0: none). */
uint64_t throttle_state_wait(struct throttle_state *ts, bool write, uint64_t now);
/* Charges a request that goes (QEMU's throttle_account). */
void throttle_state_account(struct throttle_state *ts, bool write, uint64_t bytes);

struct throttle_group;
struct throttle_member;

/*
 * The process's groups by name (QEMU's throttle_group_incref): made by
 * -object throttle-group (throttle_group_new, with limits checked) or by a
 * -drive's limits (throttle_member_join makes an anonymous one).
 */
int throttle_group_new(const char *name, const struct throttle_config *c, char *err,
		       size_t errlen);
bool throttle_group_exists(const char *name);
/* Checks and sets a group's limits, emptying its buckets; waiting requests re-check. */
int throttle_group_set_config(const char *name, const struct throttle_config *c, char *err,
			      size_t errlen);
bool throttle_group_get_config(const char *name, struct throttle_config *c);

/*
 * A member of group name.  With c, the group is made if it does not exist
 * and takes c as its limits (a -drive's options, as QEMU's blk_set_io_limits);
 * without, the group must exist ("Throttle group '%s' does not exist").
 */
int throttle_member_join(const char *name, const struct throttle_config *c,
			 struct throttle_member **out, char *err, size_t errlen);
void throttle_member_leave(struct throttle_member *m);
const char *throttle_member_group(const struct throttle_member *m);
/* Waits until the request may go, then charges it. */
void throttle_member_intercept(struct throttle_member *m, bool write, uint64_t bytes);

/*
 * The steps of throttle_member_intercept on an explicit clock; the caller
 * holds no lock (the steps take the group's).  enter: true if the request
 * goes now (then call start), else it is queued with *ticket; released:
 * whether the queued ticket may go now (then start with queued = true);
 * fire: runs the timers due at now, returns the next deadline (0: none).
 */
bool throttle_sched_enter(struct throttle_member *m, bool write, uint64_t now,
			  uint64_t *ticket);
bool throttle_sched_released(struct throttle_member *m, bool write, uint64_t ticket);
void throttle_sched_start(struct throttle_member *m, bool write, uint64_t bytes, bool queued,
			  uint64_t now);
uint64_t throttle_sched_fire(struct throttle_member *m, uint64_t now);

/* Forgets every group (tests; all members must have left). */
void throttle_groups_reset(void);

#endif
