/*
 * iscsi: a disk that is a LUN on an iSCSI target (RFC 7143), through
 * libiscsi as QEMU's block/iscsi.c: iscsi://[user[%password]@]host[:port]/
 * target-iqn/lun, or -blockdev driver=iscsi (transport, portal, target, lun,
 * user, password-secret, initiator-name, header-digest, timeout).  CHAP
 * authenticates the initiator where a user is given.  Reads and writes are
 * READ(16)/WRITE(16) (SBC-4 5.8, 5.40); flush is SYNCHRONIZE CACHE(16); zero
 * is WRITE SAME(16) where the target has it.
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

#ifdef KESTREL_ISCSI
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

/* How long a session may stay lost before requests fail, where no timeout= is given. */
#define ISCSI_RECONNECT_S	30

/* Tries of a command that meets UNIT ATTENTION (QEMU's iscsi_co_generic_cb retries too). */
#define ISCSI_RETRIES		5

/* QEMU's initiator name when none is given, so ACLs written for QEMU admit Kestrel. */
#define ISCSI_DEFAULT_INITIATOR	"iqn.2008-11.org.linux-kvm"

struct iscsi_conn {
	struct iscsi_context *ctx;
	pthread_mutex_t lock;		/* a libiscsi context is not shared between threads */
	int lun;
	struct block_iscsi_geom geom;
	uint8_t *bounce;		/* one block, for partial-block I/O */
	uint8_t *zero;			/* one zeroed block, for WRITE SAME */
	bool no_write_same;		/* the target refused it once: write zeroes instead */
	int64_t reconnect_ms;		/* how long a lost session may take to come back */
	struct scsi_task *pending;	/* the request wait_task runs, until it finishes */
	bool done, dead;
	int status;			/* the finished request's (task_done) */
};

/* A finished task as errno (frees it); a failure is logged with libiscsi's words. */
static int task_errno(struct iscsi_conn *c, struct scsi_task *t, int status, const char *what)
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
			status == SCSI_STATUS_TIMEOUT ? "timed out" : iscsi_get_error(c->ctx));
		ret = -EIO;
	}
	scsi_free_scsi_task(t);
	return ret;
}

static void task_done(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	struct iscsi_conn *c = priv;

	(void)ctx;
	(void)data;
	c->done = true;
	c->status = status;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The session is gone for good: every later request fails at once. */
static int conn_lost(struct iscsi_conn *c, const char *why)
{
	if (!c->dead)
		fprintf(stderr, "iSCSI: lost the connection to the target: %s\n", why);
	c->dead = true;
	return -ENOTCONN;
}

/*
 * Runs libiscsi until the request started with task_done finishes.  libiscsi
 * logs in again by itself when the connection drops (RFC 7143 6.2); a
 * session that stays down past reconnect_ms fails the request instead of
 * hanging, and so does any wait past limit_ms (0: none).
 */
static int service(struct iscsi_conn *c, int64_t limit_ms)
{
	int64_t down = 0, start = now_ms();

	while (!c->done) {
		struct pollfd pfd = { .fd = iscsi_get_fd(c->ctx),
				      .events = (short)iscsi_which_events(c->ctx) };
		int n;

		if (iscsi_is_logged_in(c->ctx)) {
			down = 0;
		} else if (!down) {
			down = now_ms();
		} else if (now_ms() - down > c->reconnect_ms) {
			char why[96];
			snprintf(why, sizeof(why), "not logged in again within %d s",
				 (int)(c->reconnect_ms / 1000));
			return conn_lost(c, why);
		}
		if (limit_ms && now_ms() - start > limit_ms)
			return conn_lost(c, "no answer");
		/* No events: libiscsi waits out a reconnect back-off (its header: >= 100 ms). */
		n = poll(&pfd, 1, pfd.events ? 1000 : 100);
		if (n < 0 && errno != EINTR)
			return conn_lost(c, strerror(errno));
		if (iscsi_service(c->ctx, n > 0 ? pfd.revents : 0) < 0)
			return conn_lost(c, iscsi_get_error(c->ctx));
	}
	c->done = false;
	return 0;
}

/* Waits for t; the task stays the caller's, abandoned to close where the session is lost. */
static int run_task(struct iscsi_conn *c, struct scsi_task *t, int64_t limit_ms,
		    const char *what)
{
	int ret;

	if (!t) {
		fprintf(stderr, "iSCSI: %s failed: %s\n", what, iscsi_get_error(c->ctx));
		return -EIO;
	}
	c->pending = t;
	ret = service(c, limit_ms);
	if (ret == 0)
		c->pending = NULL;
	return ret;
}

/* run_task, then the task's status as errno (the task freed). */
static int wait_task(struct iscsi_conn *c, struct scsi_task *t, const char *what)
{
	int ret = run_task(c, t, 0, what);

	return ret < 0 ? ret : task_errno(c, t, c->status, what);
}

/* A command of the open (INQUIRY, READ CAPACITY): its unmarshalled data, or NULL. */
static void *run_query(struct iscsi_conn *c, struct scsi_task *t, struct scsi_task **out,
		       const char *what)
{
	void *data;

	*out = NULL;
	if (run_task(c, t, c->reconnect_ms, what) < 0)
		return NULL;
	if (c->status != SCSI_STATUS_GOOD || !(data = scsi_datain_unmarshall(t))) {
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

/* n whole blocks at lba: READ(16) or WRITE(16) straight into or from buf. */
static int lun_io(void *ctx, bool write, uint64_t lba, void *buf, uint32_t n)
{
	struct iscsi_conn *c = ctx;
	uint32_t bytes = n * c->geom.block_size;
	struct scsi_iovec iov = { .iov_base = buf, .iov_len = bytes };
	int ret = -EAGAIN;

	for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++) {
		struct scsi_task *t;
		if (c->dead)
			return -ENOTCONN;
		if (write)
			t = iscsi_write16_iov_task(c->ctx, c->lun, lba, NULL, bytes,
						   (int)c->geom.block_size, 0, 0, 0, 0, 0,
						   task_done, c, &iov, 1);
		else
			t = iscsi_read16_iov_task(c->ctx, c->lun, lba, bytes,
						  (int)c->geom.block_size, 0, 0, 0, 0, 0,
						  task_done, c, &iov, 1);
		ret = wait_task(c, t, write ? "WRITE16" : "READ16");
	}
	return ret == -EAGAIN ? unit_attention(write ? "WRITE16" : "READ16") : ret;
}

static int iscsi_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct iscsi_conn *c = conn;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = block_iscsi_rw(&c->geom, lun_io, c, false, off, buf, len, c->bounce);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int iscsi_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct iscsi_conn *c = conn;
	int ret;

	/* block_iscsi_rw writes from buf, never into it: the cast keeps one walker. */
	pthread_mutex_lock(&c->lock);
	ret = block_iscsi_rw(&c->geom, lun_io, c, true, off, (void *)buf, len, c->bounce);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int iscsi_conn_flush(void *conn)
{
	struct iscsi_conn *c = conn;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = -EAGAIN;
	for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++)
		ret = c->dead ? -ENOTCONN :
		      wait_task(c, iscsi_synchronizecache16_task(c->ctx, c->lun, 0, 0, 0, 0,
								 task_done, c),
				"SYNCHRONIZE CACHE16");
	pthread_mutex_unlock(&c->lock);
	if (ret == -EAGAIN)
		ret = unit_attention("SYNCHRONIZE CACHE16");
	return ret;
}

/* Zeroes written as data, a megabyte at a time, for what WRITE SAME cannot do. */
static int write_zeroes(struct iscsi_conn *c, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[1u << 20];
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		ret = block_iscsi_rw(&c->geom, lun_io, c, true, off, (void *)zeroes, n, c->bounce);
		off += n;
		len -= n;
	}
	return ret;
}

/* Whole blocks by WRITE SAME(16) of one zero block (SBC-4 5.50), 32 MiB per command. */
static int write_same_zero(struct iscsi_conn *c, uint64_t lba, uint64_t blocks)
{
	uint32_t most = (32u << 20) / c->geom.block_size;
	int ret = 0;

	while (blocks && ret == 0) {
		uint32_t n = blocks > most ? most : (uint32_t)blocks;
		ret = -EAGAIN;
		for (int tries = 0; ret == -EAGAIN && tries < ISCSI_RETRIES; tries++)
			ret = c->dead ? -ENOTCONN :
			      wait_task(c, iscsi_writesame16_task(c->ctx, c->lun, lba, c->zero,
								  c->geom.block_size, n, 0, 0, 0,
								  0, task_done, c), "WRITE SAME16");
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
	int ret;

	(void)may_unmap;
	if (off > c->geom.blocks * bs || len > c->geom.blocks * bs - off)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->no_write_same || a >= b) {
		ret = write_zeroes(c, off, len);
	} else {
		ret = write_zeroes(c, off, a - off);
		if (ret == 0) {
			ret = write_same_zero(c, a / bs, (b - a) / bs);
			if (ret == -ENOTSUP) {
				c->no_write_same = true;
				ret = write_zeroes(c, a, b - a);
			}
		}
		if (ret == 0)
			ret = write_zeroes(c, b, end - b);
	}
	pthread_mutex_unlock(&c->lock);
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

	if (c->ctx) {
		/* A polite logout (RFC 7143 11.14), but never a wait on a target that is gone. */
		bool up = !c->dead && iscsi_is_logged_in(c->ctx);
		c->dead = true;		/* quiet: a target gone by now is no error of the data */
		if (up && iscsi_logout_async(c->ctx, task_done, c) == 0)
			service(c, 2000);
		iscsi_destroy_context(c->ctx);
	}
	/* A request abandoned with its session: libiscsi cancelled it, the task is ours. */
	if (c->pending)
		scsi_free_scsi_task(c->pending);
	pthread_mutex_destroy(&c->lock);
	free(c->bounce);
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
};

/* QEMU's apply_chap: a user needs a password, given plainly or as a secret. */
static int apply_chap(struct iscsi_conn *c, const struct block_iscsi_opts *o, char *err,
		      size_t errlen)
{
	const char *password = o->password;

	if (!o->user)
		return 0;
	if (o->password_secret && o->password)
		return block_err(err, errlen, "'password' and 'password-secret' properties are "
				 "mutually exclusive");
	if (o->password_secret) {
		password = block_secret_lookup(o->password_secret, NULL);
		if (!password)
			return block_err(err, errlen, "No secret with id '%s'", o->password_secret);
	} else if (!password) {
		return block_err(err, errlen, "CHAP username specified but no password was given");
	}
	if (iscsi_set_initiator_username_pwd(c->ctx, o->user, password))
		return block_err(err, errlen, "Failed to set initiator username and password");
	return 0;
}

/* The target's Block Limits (VPD page B0h) maximum transfer, 0 where it gives none. */
static uint32_t max_xfer_blocks(struct iscsi_conn *c)
{
	struct scsi_task *t;
	struct scsi_inquiry_block_limits *bl =
		run_query(c, iscsi_inquiry_task(c->ctx, c->lun, 1,
						SCSI_INQUIRY_PAGECODE_BLOCK_LIMITS, 64, task_done, c),
			  &t, "INQUIRY");
	uint32_t n = bl ? bl->max_xfer_len : 0;

	if (t)
		scsi_free_scsi_task(t);
	return n;
}

/* QEMU's iscsi_open after the login: a disk LUN, its capacity and limits. */
static int read_lun(struct iscsi_conn *c, char *err, size_t errlen)
{
	struct scsi_task *t;
	struct scsi_inquiry_standard *inq =
		run_query(c, iscsi_inquiry_task(c->ctx, c->lun, 0, 0, 36, task_done, c), &t,
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
	rc16 = run_query(c, iscsi_readcapacity16_task(c->ctx, c->lun, task_done, c), &t,
			 "READ CAPACITY16");
	if (!rc16)
		return block_err(err, errlen, "iSCSI: failed to send readcapacity10/16 command");
	ret = block_iscsi_geometry(rc16->block_length, rc16->returned_lba, 0, &c->geom, err,
				   errlen);
	scsi_free_scsi_task(t);
	if (ret < 0)
		return -1;
	if (block_iscsi_geometry(c->geom.block_size, c->geom.blocks - 1, max_xfer_blocks(c),
				 &c->geom, err, errlen) < 0)
		return -1;
	c->bounce = malloc(c->geom.block_size);
	c->zero = calloc(1, c->geom.block_size);
	if (!c->bounce || !c->zero)
		return block_err(err, errlen, "out of memory");
	return 0;
}

static int connect_lun(struct iscsi_conn *c, const struct block_iscsi_opts *o, char *err,
		       size_t errlen)
{
	c->lun = o->lun;
	c->reconnect_ms = 1000 * (int64_t)(o->timeout ? o->timeout : ISCSI_RECONNECT_S);
	c->ctx = iscsi_create_context(o->initiator_name ? o->initiator_name :
				      ISCSI_DEFAULT_INITIATOR);
	if (!c->ctx)
		return block_err(err, errlen, "iSCSI: Failed to create iSCSI context.");
	if (iscsi_set_targetname(c->ctx, o->target))
		return block_err(err, errlen, "iSCSI: Failed to set target name.");
	if (apply_chap(c, o, err, errlen) < 0)
		return -1;
	if (iscsi_set_session_type(c->ctx, ISCSI_SESSION_NORMAL))
		return block_err(err, errlen, "iSCSI: Failed to set session type to normal.");
	iscsi_set_header_digest(c->ctx, (enum iscsi_header_digest)o->header_digest);
	if (o->timeout)
		iscsi_set_timeout(c->ctx, o->timeout);
	if (iscsi_full_connect_sync(c->ctx, o->portal, o->lun))
		return block_err(err, errlen, "iSCSI: Failed to connect to LUN : %s",
				 iscsi_get_error(c->ctx));
	return read_lun(c, err, errlen);
}

int block_iscsi_open(const struct block_iscsi_opts *o, const char *format, unsigned flags,
		     struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct iscsi_conn *c = calloc(1, sizeof(*c));
	char display[4096];
	const char *fmt;

	*out = NULL;
	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	if (connect_lun(c, o, err, errlen) < 0) {
		iscsi_conn_close(c);
		return -1;
	}
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

bool block_iscsi_available(void)
{
	return false;
}

#endif
