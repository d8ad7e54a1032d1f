/*
 * iscsi: a disk that is a LUN on an iSCSI target (RFC 7143), through
 * libiscsi as QEMU's block/iscsi.c: iscsi://[user[%password]@]host[:port]/
 * target-iqn/lun, or -blockdev driver=iscsi (transport, portal, target, lun,
 * user, password-secret, initiator-name, header-digest, timeout).  CHAP
 * authenticates the initiator where a user is given.  Reads and writes are
 * READ(16)/WRITE(16) (SBC-4 5.8, 5.40); flush is SYNCHRONIZE CACHE(16); zero
 * is WRITE SAME(16) where the target has it.  Threads that find the session
 * busy log in more sessions (up to ISCSI_SESSIONS), so convert's workers read
 * in parallel as QEMU's coroutines do on its one session.
 */
#include "block/block_int.h"
#include "block/iscsi.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef KESTREL_ISCSI
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

/* How long a session may stay lost before requests fail, where no timeout= is given. */
#define ISCSI_RECONNECT_S	30

/* Tries of a command that meets UNIT ATTENTION (QEMU's iscsi_co_generic_cb retries too). */
#define ISCSI_RETRIES		5

/*
 * Sessions to the LUN at most: QEMU keeps many commands in flight on one
 * session; Kestrel's requests are synchronous per thread, so each thread
 * that finds every session busy logs in one more (RFC 7143 4.4.1: a new
 * ISID each), up to this many.
 */
#define ISCSI_SESSIONS		4

/* QEMU's initiator name when none is given, so ACLs written for QEMU admit Kestrel. */
#define ISCSI_DEFAULT_INITIATOR	"iqn.2008-11.org.linux-kvm"

struct iscsi_conn;

/* One logged-in session: a libiscsi context, used by one thread at a time. */
struct iscsi_sess {
	struct iscsi_conn *c;
	struct iscsi_context *ctx;
	pthread_mutex_t lock;
	uint8_t *bounce;		/* one block, for partial-block I/O */
	struct scsi_task *pending;	/* the request being waited for, until it finishes */
	bool done, dead, quiet;
	int status;			/* the finished request's (task_done) */
	char why[320];			/* why the session was given up */
};

struct iscsi_conn {
	struct iscsi_sess sess[ISCSI_SESSIONS];
	int nsess;			/* logged in, under pool */
	bool no_more;			/* a further login failed: stay with nsess */
	unsigned next;			/* round robin when every session is busy */
	pthread_mutex_t pool;
	pthread_rwlock_t rmw;		/* a partial-block write excludes all other I/O */
	/* What a further session logs in with. */
	char *portal, *target, *initiator, *user, *password;
	int lun, header_digest, timeout;
	uint32_t isid;
	int64_t reconnect_ms;		/* how long a lost session may take to come back */
	struct block_iscsi_geom geom;
	uint8_t *zero;			/* one zeroed block, for WRITE SAME */
	bool no_write_same;		/* the target refused it once: write zeroes instead */
};

/* A finished task as errno (frees it); a failure is logged with libiscsi's words. */
static int task_errno(struct iscsi_sess *s, struct scsi_task *t, int status, const char *what)
{
	int ret = 0;

	if (status == SCSI_STATUS_GOOD) {
		/* A target that sends less than asked is refused, never read past. */
		if (t->residual_status == SCSI_RESIDUAL_UNDERFLOW && t->residual) {
			fprintf(stderr, "iSCSI: %s: the target returned %zu bytes too few\n", what,
				t->residual);
			ret = -EIO;
		}
	} else if (status == SCSI_STATUS_CHECK_CONDITION &&
		   t->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
		ret = -EAGAIN;		/* a reset or a new login (SAM-5 5.14): the caller retries */
	} else if (status == SCSI_STATUS_CHECK_CONDITION &&
		   t->sense.key == SCSI_SENSE_DATA_PROTECTION) {
		ret = -EACCES;
	} else if (status == SCSI_STATUS_CHECK_CONDITION &&
		   t->sense.key == SCSI_SENSE_ILLEGAL_REQUEST) {
		ret = -ENOTSUP;
	} else {
		fprintf(stderr, "iSCSI: %s failed: %s\n", what,
			status == SCSI_STATUS_TIMEOUT ? "timed out" : iscsi_get_error(s->ctx));
		ret = -EIO;
	}
	scsi_free_scsi_task(t);
	return ret;
}

static void task_done(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	struct iscsi_sess *s = priv;

	(void)ctx;
	(void)data;
	s->done = true;
	s->status = status;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The session is gone for good: every later request on it fails at once. */
static int sess_lost(struct iscsi_sess *s, const char *why)
{
	if (!s->dead && !s->quiet)
		fprintf(stderr, "iSCSI: lost the connection to the target: %s\n", why);
	if (!s->dead)
		snprintf(s->why, sizeof(s->why), "%s", why);
	s->dead = true;
	return -ENOTCONN;
}

/*
 * Runs libiscsi until the request started with task_done finishes.  libiscsi
 * logs in again by itself when the connection drops (RFC 7143 6.2); a
 * session that stays down past reconnect_ms fails the request instead of
 * hanging, and so does any wait past limit_ms (0: none).
 */
static int service(struct iscsi_sess *s, int64_t limit_ms)
{
	int64_t down = 0, start = now_ms(), lost_ms = s->c->reconnect_ms;

	while (!s->done) {
		struct pollfd pfd = { .fd = iscsi_get_fd(s->ctx),
				      .events = (short)iscsi_which_events(s->ctx) };
		char why[300];
		int n;

		if (iscsi_is_logged_in(s->ctx)) {
			down = 0;
		} else if (!down) {
			down = now_ms();
		} else if (now_ms() - down > lost_ms) {
			snprintf(why, sizeof(why), "not logged in again within %d s",
				 (int)(lost_ms / 1000));
			return sess_lost(s, why);
		}
		if (limit_ms && now_ms() - start > limit_ms)
			return sess_lost(s, "no answer");
		/* No events: libiscsi waits out a reconnect back-off (its header: >= 100 ms). */
		n = poll(&pfd, 1, pfd.events ? 1000 : 100);
		if (n < 0 && errno != EINTR)
			return sess_lost(s, strerror(errno));
		if (iscsi_service(s->ctx, n > 0 ? pfd.revents : 0) < 0) {
			/* libiscsi's sync calls word it so, hence QEMU's messages. */
			snprintf(why, sizeof(why), "iscsi_service failed with : %s",
				 iscsi_get_error(s->ctx));
			return sess_lost(s, why);
		}
	}
	s->done = false;
	return 0;
}

/* Waits for t; the task stays the caller's, or close's where the session is lost. */
static int run_task(struct iscsi_sess *s, struct scsi_task *t, int64_t limit_ms,
		    const char *what)
{
	int ret;

	if (!t) {
		fprintf(stderr, "iSCSI: %s failed: %s\n", what, iscsi_get_error(s->ctx));
		return -EIO;
	}
	s->pending = t;
	ret = service(s, limit_ms);
	if (ret == 0)
		s->pending = NULL;
	return ret;
}

/* run_task, then the task's status as errno (the task freed). */
static int wait_task(struct iscsi_sess *s, struct scsi_task *t, const char *what)
{
	int ret = run_task(s, t, 0, what);

	return ret < 0 ? ret : task_errno(s, t, s->status, what);
}

/* A command of the open (INQUIRY, READ CAPACITY): its unmarshalled data, or NULL. */
static void *run_query(struct iscsi_sess *s, struct scsi_task *t, struct scsi_task **out,
		       const char *what)
{
	void *data;

	*out = NULL;
	if (run_task(s, t, s->c->reconnect_ms, what) < 0)
		return NULL;
	if (s->status != SCSI_STATUS_GOOD || !(data = scsi_datain_unmarshall(t))) {
		scsi_free_scsi_task(t);
		return NULL;
	}
	*out = t;
	return data;
}

/* Still UNIT ATTENTION after ISCSI_RETRIES tries: the target keeps resetting. */
static int unit_attention(const char *what)
{
	fprintf(stderr, "iSCSI: %s failed: UNIT ATTENTION %d times in a row\n", what,
		ISCSI_RETRIES);
	return -EIO;
}

/* n whole blocks at lba on session ctx: READ(16) or WRITE(16) straight into or from buf. */
static int lun_io(void *ctx, bool write, uint64_t lba, void *buf, uint32_t n)
{
	struct iscsi_sess *s = ctx;
	struct iscsi_conn *c = s->c;
	uint32_t bytes = n * c->geom.block_size;
	struct scsi_iovec iov = { .iov_base = buf, .iov_len = bytes };
	int ret = -EAGAIN;

	for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++) {
		struct scsi_task *t;
		if (s->dead)
			return -ENOTCONN;
		if (write)
			t = iscsi_write16_iov_task(s->ctx, c->lun, lba, NULL, bytes,
						   (int)c->geom.block_size, 0, 0, 0, 0, 0,
						   task_done, s, &iov, 1);
		else
			t = iscsi_read16_iov_task(s->ctx, c->lun, lba, bytes,
						  (int)c->geom.block_size, 0, 0, 0, 0, 0,
						  task_done, s, &iov, 1);
		ret = wait_task(s, t, write ? "WRITE16" : "READ16");
	}
	return ret == -EAGAIN ? unit_attention(write ? "WRITE16" : "READ16") : ret;
}

/* QEMU's apply_chap: a user needs a password, given plainly or as a secret. */
static int chap_password(const struct block_iscsi_opts *o, const char **password, char *err,
			 size_t errlen)
{
	*password = o->password;
	if (!o->user)
		return 0;
	if (o->password_secret && o->password)
		return block_err(err, errlen, "'password' and 'password-secret' properties are "
				 "mutually exclusive");
	if (o->password_secret) {
		*password = block_secret_lookup(o->password_secret, NULL);
		if (!*password)
			return block_err(err, errlen, "No secret with id '%s'", o->password_secret);
	} else if (!*password) {
		return block_err(err, errlen, "CHAP username specified but no password was given");
	}
	return 0;
}

/* A context for session s, set up as QEMU's iscsi_open sets its one up. */
static int sess_setup(struct iscsi_conn *c, struct iscsi_sess *s, char *err, size_t errlen)
{
	s->c = c;
	s->ctx = iscsi_create_context(c->initiator);
	if (!s->ctx)
		return block_err(err, errlen, "iSCSI: Failed to create iSCSI context.");
	if (iscsi_set_isid_random(s->ctx, c->isid, (uint32_t)(s - c->sess)))
		return block_err(err, errlen, "iSCSI: Failed to set the session's ISID.");
	if (iscsi_set_targetname(s->ctx, c->target))
		return block_err(err, errlen, "iSCSI: Failed to set target name.");
	if (c->user && iscsi_set_initiator_username_pwd(s->ctx, c->user, c->password))
		return block_err(err, errlen, "Failed to set initiator username and password");
	if (iscsi_set_session_type(s->ctx, ISCSI_SESSION_NORMAL))
		return block_err(err, errlen, "iSCSI: Failed to set session type to normal.");
	iscsi_set_header_digest(s->ctx, (enum iscsi_header_digest)c->header_digest);
	if (c->timeout)
		iscsi_set_timeout(s->ctx, c->timeout);
	return 0;
}

/* Logs out (RFC 7143 11.14) and frees s, never waiting long on a target that is gone. */
static void sess_close(struct iscsi_sess *s)
{
	if (s->ctx) {
		bool up = !s->dead && iscsi_is_logged_in(s->ctx);
		s->dead = s->quiet = true;	/* a target gone by now is no error of the data */
		if (up && iscsi_logout_async(s->ctx, task_done, s) == 0)
			service(s, 2000);
		iscsi_destroy_context(s->ctx);
	}
	/* A request abandoned with its session: libiscsi cancelled it, the task is ours. */
	if (s->pending)
		scsi_free_scsi_task(s->pending);
	free(s->bounce);
	s->ctx = NULL;
	s->pending = NULL;
	s->bounce = NULL;
}

/* One more session, logged in while the others work: bounded like any request. */
static int sess_login(struct iscsi_conn *c, struct iscsi_sess *s)
{
	char err[256];

	s->dead = s->done = false;
	s->quiet = true;
	if (sess_setup(c, s, err, sizeof(err)) < 0)
		return -1;
	s->bounce = malloc(c->geom.block_size);
	if (!s->bounce || iscsi_full_connect_async(s->ctx, c->portal, c->lun, task_done, s) ||
	    service(s, c->reconnect_ms) < 0 || s->status != SCSI_STATUS_GOOD)
		return -1;
	s->quiet = false;
	return 0;
}

/* A session for this thread: a free one, a new one, or (all busy, no more) the next. */
static struct iscsi_sess *sess_get(struct iscsi_conn *c)
{
	struct iscsi_sess *s;
	int n;

	pthread_mutex_lock(&c->pool);
	n = c->nsess;
	pthread_mutex_unlock(&c->pool);
	for (int i = 0; i < n; i++)
		if (pthread_mutex_trylock(&c->sess[i].lock) == 0)
			return &c->sess[i];
	pthread_mutex_lock(&c->pool);
	if (c->nsess < ISCSI_SESSIONS && !c->no_more) {
		s = &c->sess[c->nsess];
		pthread_mutex_lock(&s->lock);	/* not yet in the pool: nobody waits on it */
		if (sess_login(c, s) == 0) {
			c->nsess++;
			pthread_mutex_unlock(&c->pool);
			return s;
		}
		sess_close(s);
		c->no_more = true;
		pthread_mutex_unlock(&s->lock);
	}
	s = &c->sess[c->next++ % (unsigned)c->nsess];
	pthread_mutex_unlock(&c->pool);
	pthread_mutex_lock(&s->lock);
	return s;
}

/* Byte I/O: whole blocks shared between sessions, partial blocks written alone. */
static int conn_rw(struct iscsi_conn *c, bool write, uint64_t off, void *buf, size_t len)
{
	bool partial = off % c->geom.block_size || len % c->geom.block_size;
	struct iscsi_sess *s;
	int ret;

	if (partial && write)
		pthread_rwlock_wrlock(&c->rmw);
	else
		pthread_rwlock_rdlock(&c->rmw);
	s = sess_get(c);
	ret = block_iscsi_rw(&c->geom, lun_io, s, write, off, buf, len, s->bounce);
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&c->rmw);
	return ret;
}

static int iscsi_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	return conn_rw(conn, false, off, buf, len);
}

static int iscsi_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	/* block_iscsi_rw writes from buf, never into it: the cast keeps one walker. */
	return conn_rw(conn, true, off, (void *)buf, len);
}

/* SYNCHRONIZE CACHE(16) of the whole LUN: its cache is the LUN's, whichever session asks. */
static int iscsi_conn_flush(void *conn)
{
	struct iscsi_conn *c = conn;
	struct iscsi_sess *s = sess_get(c);
	int ret = -EAGAIN;

	for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++)
		ret = s->dead ? -ENOTCONN :
		      wait_task(s, iscsi_synchronizecache16_task(s->ctx, c->lun, 0, 0, 0, 0,
								 task_done, s),
				"SYNCHRONIZE CACHE16");
	pthread_mutex_unlock(&s->lock);
	return ret == -EAGAIN ? unit_attention("SYNCHRONIZE CACHE16") : ret;
}

/* Zeroes written as data, a megabyte at a time, for what WRITE SAME cannot do. */
static int write_zeroes(struct iscsi_sess *s, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[1u << 20];
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		ret = block_iscsi_rw(&s->c->geom, lun_io, s, true, off, (void *)zeroes, n,
				     s->bounce);
		off += n;
		len -= n;
	}
	return ret;
}

/* Whole blocks by WRITE SAME(16) of one zero block (SBC-4 5.50), 32 MiB per command. */
static int write_same_zero(struct iscsi_sess *s, uint64_t lba, uint64_t blocks)
{
	struct iscsi_conn *c = s->c;
	uint32_t most = (32u << 20) / c->geom.block_size;
	int ret = 0;

	while (blocks && ret == 0) {
		uint32_t n = blocks > most ? most : (uint32_t)blocks;
		ret = -EAGAIN;
		for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++)
			ret = s->dead ? -ENOTCONN :
			      wait_task(s, iscsi_writesame16_task(s->ctx, c->lun, lba, c->zero,
								  c->geom.block_size, n, 0, 0, 0,
								  0, task_done, s), "WRITE SAME16");
		if (ret == -EAGAIN)
			ret = unit_attention("WRITE SAME16");
		lba += n;
		blocks -= n;
	}
	return ret;
}

/*
 * Zeroes must read back as zeroes, so no UNMAP (that needs LBPRZ and QEMU's
 * discard rules): WRITE SAME of zeroes over the whole blocks, data around them.
 */
static int iscsi_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct iscsi_conn *c = conn;
	uint64_t bs = c->geom.block_size, end = off + len;
	uint64_t a = (off + bs - 1) / bs * bs, b = end / bs * bs;
	struct iscsi_sess *s;
	int ret;

	(void)may_unmap;
	if (off > c->geom.blocks * bs || len > c->geom.blocks * bs - off)
		return -EINVAL;
	if (off % bs || len % bs)
		pthread_rwlock_wrlock(&c->rmw);
	else
		pthread_rwlock_rdlock(&c->rmw);
	s = sess_get(c);
	if (__atomic_load_n(&c->no_write_same, __ATOMIC_RELAXED) || a >= b) {
		ret = write_zeroes(s, off, len);
	} else {
		ret = write_zeroes(s, off, a - off);
		if (ret == 0) {
			ret = write_same_zero(s, a / bs, (b - a) / bs);
			if (ret == -ENOTSUP) {
				__atomic_store_n(&c->no_write_same, true, __ATOMIC_RELAXED);
				ret = write_zeroes(s, a, b - a);
			}
		}
		if (ret == 0)
			ret = write_zeroes(s, b, end - b);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&c->rmw);
	return ret;
}

static int64_t iscsi_conn_size(void *conn)
{
	struct iscsi_conn *c = conn;

	return (int64_t)(c->geom.blocks * c->geom.block_size);
}

/* A LUN's size is the target's: QEMU's iscsi_co_truncate changes nothing either. */
static int iscsi_conn_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	struct iscsi_conn *c = conn;

	if (size != c->geom.blocks * c->geom.block_size)
		return block_err(err, errlen, "Cannot resize iSCSI devices");
	return 0;
}

static void iscsi_conn_close(void *conn)
{
	struct iscsi_conn *c = conn;

	for (int i = 0; i < ISCSI_SESSIONS; i++) {
		sess_close(&c->sess[i]);
		pthread_mutex_destroy(&c->sess[i].lock);
	}
	pthread_mutex_destroy(&c->pool);
	pthread_rwlock_destroy(&c->rmw);
	free(c->portal);
	free(c->target);
	free(c->initiator);
	free(c->user);
	free(c->password);
	free(c->zero);
	free(c);
}

static const struct block_proto iscsi_proto = {
	.name = "iscsi",
	.label = "iSCSI",
	.pread = iscsi_conn_pread,
	.pwrite = iscsi_conn_pwrite,
	.flush = iscsi_conn_flush,
	.zero = iscsi_conn_zero,
	.truncate = iscsi_conn_truncate,
	.size = iscsi_conn_size,
	.close = iscsi_conn_close,
	.has_info = true,
	.no_zero_init = true,
};

/* The target's Block Limits (VPD page B0h) maximum transfer, 0 where it gives none. */
static uint32_t max_xfer_blocks(struct iscsi_sess *s)
{
	struct scsi_task *t;
	struct scsi_inquiry_block_limits *bl =
		run_query(s, iscsi_inquiry_task(s->ctx, s->c->lun, 1,
						SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS, 64, task_done, s),
			  &t, "INQUIRY");
	uint32_t n = bl ? bl->max_xfer_len : 0;

	if (t)
		scsi_free_scsi_task(t);
	return n;
}

/* QEMU's iscsi_open after the login: a disk LUN, its capacity and limits. */
static int read_lun(struct iscsi_sess *s, char *err, size_t errlen)
{
	struct iscsi_conn *c = s->c;
	struct scsi_task *t;
	struct scsi_inquiry_standard *inq =
		run_query(s, iscsi_inquiry_task(s->ctx, c->lun, 0, 0, 36, task_done, s), &t,
			  "INQUIRY");
	struct scsi_readcapacity16 *rc16;
	int type, ret;

	if (!inq)
		return block_err(err, errlen, "iSCSI: failed to send inquiry command");
	type = inq->device_type;
	scsi_free_scsi_task(t);
	if (type != SCSI_INQUIRY_PERIPHERAL_DEVICE_TYPE_DIRECT_ACCESS)
		return block_err(err, errlen, "iSCSI: LUN %d is not a disk (SCSI peripheral "
				 "device type %d)", c->lun, type);
	rc16 = run_query(s, iscsi_readcapacity16_task(s->ctx, c->lun, task_done, s), &t,
			 "READ CAPACITY16");
	if (!rc16)
		return block_err(err, errlen, "iSCSI: failed to send readcapacity10/16 command");
	ret = block_iscsi_geometry(rc16->block_length, rc16->returned_lba, 0, &c->geom, err,
				   errlen);
	scsi_free_scsi_task(t);
	if (ret < 0)
		return -1;
	if (block_iscsi_geometry(c->geom.block_size, c->geom.blocks - 1, max_xfer_blocks(s),
				 &c->geom, err, errlen) < 0)
		return -1;
	s->bounce = malloc(c->geom.block_size);
	c->zero = calloc(1, c->geom.block_size);
	if (!s->bounce || !c->zero)
		return block_err(err, errlen, "out of memory");
	return 0;
}

/* What further sessions log in with, kept: the caller's strings do not outlive the open. */
static int keep_login(struct iscsi_conn *c, const struct block_iscsi_opts *o,
		      const char *password)
{
	c->lun = o->lun;
	c->header_digest = o->header_digest;
	c->timeout = o->timeout;
	c->reconnect_ms = 1000 * (int64_t)(o->timeout ? o->timeout : ISCSI_RECONNECT_S);
	/* The ISID's random part (RFC 7143 10.12.5): one per open, the qualifier per session. */
	c->isid = ((uint32_t)getpid() * 2654435761u ^ (uint32_t)now_ms() ^
		   (uint32_t)(uintptr_t)c) & 0x3fffff;
	c->portal = strdup(o->portal);
	c->target = strdup(o->target);
	c->initiator = strdup(o->initiator_name ? o->initiator_name : ISCSI_DEFAULT_INITIATOR);
	c->user = o->user ? strdup(o->user) : NULL;
	c->password = o->user ? strdup(password) : NULL;
	return c->portal && c->target && c->initiator && (!o->user || (c->user && c->password))
	       ? 0 : -1;
}

/* The first session, logged in as QEMU does (its messages), and the LUN read. */
static int connect_lun(struct iscsi_conn *c, const struct block_iscsi_opts *o, char *err,
		       size_t errlen)
{
	struct iscsi_sess *s = &c->sess[0];
	const char *password;

	if (chap_password(o, &password, err, errlen) < 0)
		return -1;
	if (keep_login(c, o, password) < 0)
		return block_err(err, errlen, "out of memory");
	if (sess_setup(c, s, err, errlen) < 0)
		return -1;
	if (iscsi_full_connect_sync(s->ctx, c->portal, c->lun))
		return block_err(err, errlen, "iSCSI: Failed to connect to LUN : %s",
				 iscsi_get_error(s->ctx));
	if (read_lun(s, err, errlen) < 0)
		return -1;
	c->nsess = 1;
	return 0;
}

int block_iscsi_connect(const struct block_iscsi_opts *o, const struct block_proto **proto,
			void **conn, char *err, size_t errlen)
{
	struct iscsi_conn *c = calloc(1, sizeof(*c));

	*proto = NULL;
	*conn = NULL;
	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&c->pool, NULL);
	pthread_rwlock_init(&c->rmw, NULL);
	for (int i = 0; i < ISCSI_SESSIONS; i++)
		pthread_mutex_init(&c->sess[i].lock, NULL);
	if (connect_lun(c, o, err, errlen) < 0) {
		iscsi_conn_close(c);
		return -1;
	}
	*proto = &iscsi_proto;
	*conn = c;
	return 0;
}

int block_iscsi_open(const struct block_iscsi_opts *o, const char *format, unsigned flags,
		     struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	const struct block_proto *proto;
	char display[4096];
	const char *fmt;
	void *c;

	*out = NULL;
	if (block_iscsi_connect(o, &proto, &c, err, errlen) < 0)
		return -1;
	if (block_iscsi_display(o, format ? format : "raw", display, sizeof(display)) < 0)
		snprintf(display, sizeof(display), "iscsi://%s/%s/%d", o->portal, o->target, o->lun);
	if (block_open_proto(display, &iscsi_proto, c, format, flags, parent, out, err,
			     errlen) < 0)
		return -1;
	/* The probed format names the node, as QEMU's refreshed filename does. */
	fmt = block_format_name(*out);
	if (!format && fmt && block_iscsi_display(o, fmt, display, sizeof(display)) == 0) {
		char *name = strdup(display);
		if (name) {
			free((*out)->filename);
			(*out)->filename = name;
		}
	}
	return 0;
}

bool block_iscsi_available(void)
{
	return true;
}

#else

int block_iscsi_open(const struct block_iscsi_opts *o, const char *format, unsigned flags,
		     struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'iscsi'");
}

int block_iscsi_connect(const struct block_iscsi_opts *o, const struct block_proto **proto,
			void **conn, char *err, size_t errlen)
{
	*proto = NULL;
	*conn = NULL;
	return block_err(err, errlen, "Unknown protocol 'iscsi'");
}

bool block_iscsi_available(void)
{
	return false;
}

#endif
