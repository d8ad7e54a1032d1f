/*
 * The quorum node (QEMU's block/quorum.c, 7.2): children.N each hold the
 * same disk.  Reads go to every child and the data at least vote-threshold
 * of them agree on wins; with rewrite-corrupted=on the children that read
 * other data get the winner written back.  read-pattern=fifo reads the
 * first child that answers instead.  Writes, zero writes and flushes go to
 * every child and succeed when vote-threshold of them do.  blkverify=on
 * (two children, threshold 2) reports the first differing byte; QEMU then
 * exits the process, Kestrel fails the request with EIO (no exit in the
 * library).
 */
#include "block/filter.h"
#include "block/quorum.h"
#include "util/opts.h"
#include "util/size.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUORUM_MAX_CHILDREN 32

struct quorum {
	/* A rewrite must not undo a write that came between its vote and itself: one at a time. */
	pthread_mutex_t lock;
	struct block_dev *child[QUORUM_MAX_CHILDREN];
	int n;
	int threshold;
	bool rewrite;
	bool blkverify;
	bool fifo;
};

/*
 * QEMU's quorum_count_vote/quorum_get_vote_winner: versions are pushed on
 * the front of a list and the first with the most votes wins, so among
 * equals the version seen last wins.
 */
static int winner_of(const int *version_of, const int *votes, int n)
{
	int best = -1, max = 0;

	for (int i = n - 1; i >= 0; i--) {
		if (version_of[i] != i)
			continue;	/* not the first child of its version */
		if (votes[i] > max) {
			max = votes[i];
			best = i;
		}
	}
	return best;
}

int quorum_vote_error(const int *rets, int n)
{
	int version_of[QUORUM_MAX_CHILDREN], votes[QUORUM_MAX_CHILDREN] = { 0 }, w;

	for (int i = 0; i < n; i++) {
		version_of[i] = -1;
		if (!rets[i])
			continue;
		version_of[i] = i;
		for (int j = 0; j < i; j++)
			if (rets[j] == rets[i]) {
				version_of[i] = version_of[j];
				break;
			}
		votes[version_of[i]]++;
	}
	w = winner_of(version_of, votes, n);
	return w < 0 ? 0 : rets[w];
}

int quorum_vote(const uint8_t *const *bufs, const int *rets, int n, size_t len, int threshold,
		int *winner, unsigned char *bad)
{
	int version_of[QUORUM_MAX_CHILDREN], votes[QUORUM_MAX_CHILDREN] = { 0 }, ok = 0, w;

	if (n > QUORUM_MAX_CHILDREN)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		bad[i] = 0;
		ok += rets[i] == 0;
	}
	if (ok < threshold)
		return quorum_vote_error(rets, n);
	for (int i = 0; i < n; i++) {
		version_of[i] = -1;
		if (rets[i])
			continue;
		version_of[i] = i;
		for (int j = 0; j < i; j++)
			if (version_of[j] == j && !memcmp(bufs[i], bufs[j], len)) {
				version_of[i] = j;
				break;
			}
		votes[version_of[i]]++;
	}
	w = winner_of(version_of, votes, n);
	if (votes[w] < threshold)
		return -EIO;
	for (int i = 0; i < n; i++)
		bad[i] = !rets[i] && version_of[i] != w;
	*winner = w;
	return 0;
}

static int read_fifo(struct quorum *q, uint64_t off, void *buf, size_t len)
{
	int ret = -EIO;

	for (int i = 0; i < q->n; i++) {
		ret = block_child_pread(q->child[i], off, buf, len);
		if (ret == 0)
			return 0;
	}
	return ret;
}

/* blkverify: the two children must agree byte for byte (QEMU's quorum_err message). */
static int blkverify(const uint8_t *a, const uint8_t *b, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (a[i] != b[i]) {
			fprintf(stderr, "quorum: offset=%" PRIu64 " bytes=%zu contents mismatch at "
				"offset %" PRIu64 "\n", off, len, off + i);
			return -EIO;
		}
	}
	return 0;
}

static int q_pread_locked(struct quorum *q, uint64_t off, void *buf, size_t len)
{
	uint8_t *bufs[QUORUM_MAX_CHILDREN] = { 0 };
	int rets[QUORUM_MAX_CHILDREN], winner = 0, ret = 0;
	unsigned char bad[QUORUM_MAX_CHILDREN];

	if (q->fifo)
		return read_fifo(q, off, buf, len);
	for (int i = 0; i < q->n && ret == 0; i++)
		if (!(bufs[i] = malloc(len ? len : 1)))
			ret = -ENOMEM;
	for (int i = 0; i < q->n && ret == 0; i++)
		rets[i] = block_child_pread(q->child[i], off, bufs[i], len);
	if (ret == 0 && q->blkverify && !rets[0] && !rets[1])
		ret = blkverify(bufs[0], bufs[1], off, len);
	if (ret == 0)
		ret = quorum_vote((const uint8_t *const *)bufs, rets, q->n, len, q->threshold,
				  &winner, bad);
	if (ret == 0) {
		memcpy(buf, bufs[winner], len);
		/* rewrite-corrupted: the children outvoted get the winner; failures stay theirs. */
		for (int i = 0; i < q->n && q->rewrite; i++)
			if (bad[i])
				(void)block_child_pwrite(q->child[i], off, buf, len);
	}
	for (int i = 0; i < q->n; i++)
		free(bufs[i]);
	return ret;
}

static int q_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct quorum *q = conn;
	int ret;

	pthread_mutex_lock(&q->lock);
	ret = q_pread_locked(q, off, buf, len);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* A write-like request on every child: success when threshold of them succeed. */
static int all_children(struct quorum *q, int (*fn)(struct block_dev *, void *), void *arg)
{
	int rets[QUORUM_MAX_CHILDREN], ok = 0;

	pthread_mutex_lock(&q->lock);
	for (int i = 0; i < q->n; i++) {
		rets[i] = fn(q->child[i], arg);
		ok += rets[i] == 0;
	}
	pthread_mutex_unlock(&q->lock);
	return ok >= q->threshold ? 0 : quorum_vote_error(rets, q->n);
}

struct req { uint64_t off, len; const void *buf; bool may_unmap; };

static int do_write(struct block_dev *c, void *a)
{
	const struct req *r = a;
	return block_child_pwrite(c, r->off, r->buf, (size_t)r->len);
}

static int do_zero(struct block_dev *c, void *a)
{
	const struct req *r = a;
	return block_child_write_zeroes(c, r->off, r->len, r->may_unmap);
}

static int do_flush(struct block_dev *c, void *a)
{
	(void)a;
	return block_flush(c);
}

static int q_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct req r = { .off = off, .len = len, .buf = buf };
	return all_children(conn, do_write, &r);
}

static int q_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct req r = { .off = off, .len = len, .may_unmap = may_unmap };
	return all_children(conn, do_zero, &r);
}

static int q_flush(void *conn)
{
	return all_children(conn, do_flush, NULL);
}

static int64_t q_size(void *conn)
{
	struct quorum *q = conn;
	return (int64_t)block_length(q->child[0]);
}

static void q_close(void *conn)
{
	struct quorum *q = conn;

	for (int i = 0; i < q->n; i++)
		block_close(q->child[i]);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static const struct block_proto quorum_proto = {
	.name = "quorum", .label = "quorum",
	.pread = q_pread, .pwrite = q_pwrite, .flush = q_flush, .zero = q_zero,
	.size = q_size, .close = q_close,
};

static const char *get(struct opts *o, const char *pfx, const char *key)
{
	char full[128];

	snprintf(full, sizeof(full), "%s%s", pfx, key);
	return opts_get(o, full);
}

static int get_flag(struct opts *o, const char *pfx, const char *key, bool *out, char *err,
		    size_t errlen)
{
	char full[128];

	snprintf(full, sizeof(full), "%s%s", pfx, key);
	if (!opts_get_bool(o, full, out))
		return block_err(err, errlen, "Parameter '%s' expects 'on' or 'off'", key);
	return 0;
}

/* QEMU's quorum_open checks, in its order, before any child opens. */
static int read_options(struct quorum *q, struct opts *o, const char *pfx, unsigned flags,
			char *err, size_t errlen)
{
	const char *v = get(o, pfx, "vote-threshold"), *pattern = get(o, pfx, "read-pattern");
	char key[128];
	uint64_t t = 0;

	for (q->n = 0;; q->n++) {
		snprintf(key, sizeof(key), "%schildren.%d", pfx, q->n);
		if (!opts_get(o, key) && !block_opts_have(o, strcat(key, ".")))
			break;
	}
	if (q->n < 1)
		return block_err(err, errlen, "Number of provided children must be 1 or more");
	if (q->n > QUORUM_MAX_CHILDREN)
		return block_err(err, errlen, "Kestrel's quorum takes at most %d children",
				 QUORUM_MAX_CHILDREN);
	if (v && !uint_parse(v, &t))
		return block_err(err, errlen, "Parameter 'vote-threshold' expects a number");
	if (t < 1 || t > INT32_MAX)
		return block_err(err, errlen, "Parameter 'vote-threshold' expects a value >= 1");
	if (t > (uint64_t)q->n)
		return block_err(err, errlen, "threshold may not exceed children count");
	q->threshold = (int)t;
	if (pattern && strcmp(pattern, "quorum") && strcmp(pattern, "fifo"))
		return block_err(err, errlen, "Please set read-pattern as fifo or quorum");
	q->fifo = pattern && !strcmp(pattern, "fifo");
	/* QEMU takes blkverify and rewrite-corrupted with fifo too, and ignores them. */
	if (q->fifo) {
		(void)get(o, pfx, "blkverify");
		(void)get(o, pfx, "rewrite-corrupted");
		return 0;
	}
	if (get_flag(o, pfx, "blkverify", &q->blkverify, err, errlen) < 0 ||
	    get_flag(o, pfx, "rewrite-corrupted", &q->rewrite, err, errlen) < 0)
		return -1;
	if (q->blkverify && (q->n != 2 || q->threshold != 2))
		return block_err(err, errlen, "blkverify=on can only be set if there are exactly "
				 "two files and vote-threshold is 2");
	if (q->rewrite && q->blkverify)
		return block_err(err, errlen, "rewrite-corrupted=on cannot be used with "
				 "blkverify=on");
	/* Repairs are writes: QEMU refuses them on a read-only open (convert's source). */
	if (q->rewrite && (flags & BLOCK_RDONLY))
		return block_err(err, errlen, "Block node is read-only");
	return 0;
}

/* Opens children 0..n-1; q->n counts those open, for q_close on failure. */
static int open_children(struct quorum *q, int n, struct opts *o, const char *pfx,
			 unsigned flags, char *err, size_t errlen)
{
	char key[128];
	const char *ref;

	for (q->n = 0; q->n < n;) {
		snprintf(key, sizeof(key), "%schildren.%d", pfx, q->n);
		if ((ref = opts_get(o, key)))
			return block_err(err, errlen, "Cannot find device='%s' nor node-name='%s'",
					 ref, ref);
		strcat(key, ".");
		if (block_open_opts_child(o, key, flags, &q->child[q->n], err, errlen) < 0)
			return -1;
		q->n++;
		/* QEMU's quorum_getlength: children of different sizes are an I/O error. */
		if (block_length(q->child[q->n - 1]) != block_length(q->child[0]))
			return block_err(err, errlen, "Could not refresh total sector count: %s",
					 strerror(EIO));
	}
	return 0;
}

int block_quorum_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			   unsigned flags, struct block_dev *parent, struct block_dev **out,
			   char *err, size_t errlen)
{
	struct quorum *q = calloc(1, sizeof(*q));
	int n;

	*out = NULL;
	if (!q)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&q->lock, NULL);
	if (read_options(q, o, pfx, flags, err, errlen) < 0) {
		pthread_mutex_destroy(&q->lock);
		free(q);
		return -1;
	}
	n = q->n;
	if (open_children(q, n, o, pfx, flags, err, errlen) < 0) {
		q_close(q);
		return -1;
	}
	if (block_open_proto("quorum", &quorum_proto, q, format, flags, parent, out, err,
			     errlen) < 0)
		return -1;
	if (alone)
		(*out)->format_name = "quorum";
	return 0;
}
