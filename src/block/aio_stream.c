/*
 * The request stream behind aio.h's block_aio_stream_*: a sliding window of
 * requests, each reaped as soon as it is done (QEMU's coroutines over its
 * thread pool or io_uring), instead of block_aio_run's batch that waits for
 * its slowest request.
 *
 * A read or write that maps straight onto the file (raw, an allocated
 * qcow2 cluster) is mapped here, in the submitting thread, and its I/O goes
 * to a worker (threads), the ring (io_uring) or a Linux AIO context
 * (native: submitted and reaped as the ring is, see native_reap).  Everything else runs in
 * the submitting thread in submission order: qcow2 allocation is serialised
 * by the driver's lock anyway, and doing it in order lays the image out as
 * qemu-img does (the allocating coroutine runs first there too).  Reads that
 * cannot be mapped (compressed, backing file) go to the workers: they
 * change nothing, so their order does not matter.
 */
#include "block/aio.h"
#include "block/aio_linux.h"
#include "block/block_int.h"

#include <errno.h>
#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define DIRECT_ALIGN 512	/* what O_DIRECT needs of buffers, lengths, offsets */
#define MAX_SLOTS BLOCK_AIO_MAX_BATCH

struct slot {
	struct block_req *req;
	uint64_t host;		/* mapped: where the data lives in bd->fd */
	bool mapped;		/* block_end_direct owed once done */
	struct iocb cb;		/* native */
};

/* A FIFO of slot numbers. */
struct fifo {
	unsigned v[MAX_SLOTS], head, n;
};

struct block_aio_stream {
	struct block_dev *bd;
	enum block_aio_engine engine;
	unsigned depth, busy;		/* busy: submitted, not yet reaped */
	struct slot slots[MAX_SLOTS];
	struct fifo free, done;		/* done: finished, not yet reaped (threads: under lock) */

	/* threads */
	pthread_mutex_t lock;
	pthread_cond_t work, finished;
	struct fifo todo;
	pthread_t threads[MAX_SLOTS];
	unsigned nthreads;
	bool stop;

	/* io_uring */
	struct io_uring ring;
	bool ring_ok;
	struct fifo unsent;		/* on the ring (native: prepared), not yet handed to the kernel */

	/* native */
	aio_context_t laio;
};

static void fifo_push(struct fifo *f, unsigned v)
{
	f->v[(f->head + f->n++) % MAX_SLOTS] = v;
}

static unsigned fifo_pop(struct fifo *f)
{
	unsigned v = f->v[f->head];

	f->head = (f->head + 1) % MAX_SLOTS;
	f->n--;
	return v;
}

/* ---- the I/O of one slot -------------------------------------------------- */

/* Whether O_DIRECT (if the file has it) can take req's buffers and offset as they are. */
static bool direct_ok(const struct block_dev *bd, const struct block_req *r)
{
	if (r->niov > IOV_MAX)
		return false;
	if (!bd->direct)
		return true;
	if (r->offset & (DIRECT_ALIGN - 1))
		return false;
	for (unsigned i = 0; i < r->niov; i++)
		if (((uintptr_t)r->iov[i].iov_base | r->iov[i].iov_len) & (DIRECT_ALIGN - 1))
			return false;
	return true;
}

/* Maps the slot's request onto the file if it can go there as it is. */
static bool map_slot(struct block_aio_stream *st, struct slot *s)
{
	const struct block_req *r = s->req;
	bool write = r->op == BLOCK_OP_WRITE;

	if ((r->op != BLOCK_OP_READ && !write) || !direct_ok(st->bd, r) ||
	    block_map_direct(st->bd, r->offset, r->len, write, &s->host) != 1)
		return false;
	s->mapped = true;
	/* The crash tests count writes in submission order, as the batch engines do. */
	if (write)
		block_crash_point();
	return true;
}

/*
 * The result of a mapped transfer that moved res bytes (or -errno): short
 * transfers, EAGAIN and friends are redone the ordinary way.
 */
static int settle(struct block_aio_stream *st, struct slot *s, ssize_t res)
{
	if (res >= 0 && (uint64_t)res == s->req->len)
		return 0;
	if (res < 0 && res != -EAGAIN && res != -EINTR)
		return (int)res;
	return block_aio_run_one(st->bd, s->req);
}

/* A slot's whole I/O, in the calling thread. */
static int slot_io(struct block_aio_stream *st, struct slot *s)
{
	const struct block_req *r = s->req;
	ssize_t n;

	if (!s->mapped)
		return block_aio_run_one(st->bd, r);
	do
		n = r->op == BLOCK_OP_WRITE
		    ? pwritev(st->bd->fd, r->iov, (int)r->niov, (off_t)s->host)
		    : preadv(st->bd->fd, r->iov, (int)r->niov, (off_t)s->host);
	while (n < 0 && errno == EINTR);
	return settle(st, s, n < 0 ? -errno : n);
}

/* Records a slot's result and gives its mapping back. */
static void finish(struct block_aio_stream *st, struct slot *s, int result)
{
	s->req->result = result;
	if (s->mapped)
		block_end_direct(st->bd, s->host, s->req->len, s->req->op == BLOCK_OP_WRITE,
				 result);
	s->mapped = false;
}

/* ---- threads ------------------------------------------------------------ */

static void *worker(void *arg)
{
	struct block_aio_stream *st = arg;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		while (!st->stop && !st->todo.n)
			pthread_cond_wait(&st->work, &st->lock);
		if (st->stop)
			break;
		unsigned i = fifo_pop(&st->todo);
		pthread_mutex_unlock(&st->lock);
		finish(st, &st->slots[i], slot_io(st, &st->slots[i]));	/* unlocked */
		pthread_mutex_lock(&st->lock);
		fifo_push(&st->done, i);
		pthread_cond_signal(&st->finished);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static int threads_start(struct block_aio_stream *st, char *err, size_t errlen)
{
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->work, NULL);
	pthread_cond_init(&st->finished, NULL);
	/*
	 * Four workers per CPU, at most one per request in flight: measured on a
	 * 2-CPU host with O_DIRECT at depth 32 (bench/img/bench_cmd.py), 8
	 * workers beat 16 and 32 (one each, as QEMU's pool grows to its 64),
	 * whose wake-ups and lock hand-offs cost more than the extra overlap.
	 */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want = ncpu < 1 ? 4 : (unsigned)(ncpu > 16 ? 64 : 4 * ncpu);

	if (want > st->depth)
		want = st->depth;
	for (; st->nthreads < want; st->nthreads++) {
		int e = pthread_create(&st->threads[st->nthreads], NULL, worker, st);
		if (e && !st->nthreads)
			return block_err(err, errlen, "cannot start I/O threads: %s", strerror(e));
		if (e)
			break;	/* fewer workers still work */
	}
	return 0;
}

static void threads_stop(struct block_aio_stream *st)
{
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_broadcast(&st->work);
	pthread_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < st->nthreads; i++)
		pthread_join(st->threads[i], NULL);
	pthread_cond_destroy(&st->work);
	pthread_cond_destroy(&st->finished);
	pthread_mutex_destroy(&st->lock);
}

static void threads_submit(struct block_aio_stream *st, unsigned i)
{
	struct slot *s = &st->slots[i];
	bool to_worker = map_slot(st, s) || s->req->op == BLOCK_OP_READ;

	if (!to_worker)	/* in order, here: see the top of the file */
		finish(st, s, block_aio_run_one(st->bd, s->req));
	pthread_mutex_lock(&st->lock);
	if (to_worker) {
		fifo_push(&st->todo, i);
		pthread_cond_signal(&st->work);
	} else {
		fifo_push(&st->done, i);
	}
	pthread_mutex_unlock(&st->lock);
}

static unsigned threads_reap(struct block_aio_stream *st)
{
	unsigned i;

	pthread_mutex_lock(&st->lock);
	while (!st->done.n)
		pthread_cond_wait(&st->finished, &st->lock);
	i = fifo_pop(&st->done);
	pthread_mutex_unlock(&st->lock);
	return i;
}

/* ---- io_uring ----------------------------------------------------------- */

static int ring_start(struct block_aio_stream *st, char *err, size_t errlen)
{
	/* COOP_TASKRUN: completions are reaped when we enter the kernel anyway. */
	int ret = io_uring_queue_init(MAX_SLOTS, &st->ring, IORING_SETUP_COOP_TASKRUN);

	if (ret == -EINVAL)
		ret = io_uring_queue_init(MAX_SLOTS, &st->ring, 0);
	if (ret < 0)
		return block_err(err, errlen, "aio=io_uring: cannot set up io_uring: %s",
				 strerror(-ret));
	st->ring_ok = true;
	return 0;
}

/*
 * Hands the entries not yet sent to the kernel, and waits for wait_nr
 * completions.  On a hard failure the ring is not entered again (so what
 * it never took cannot run later on buffers given back): those requests
 * fail with the error, and later ones run the ordinary way.
 */
static void ring_send(struct block_aio_stream *st, unsigned wait_nr)
{
	int ret;

	do
		ret = io_uring_submit_and_wait(&st->ring, wait_nr);
	while (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY);
	if (ret >= 0) {
		st->unsent.n = 0;
		return;
	}
	st->ring_ok = false;
	while (st->unsent.n) {
		unsigned i = fifo_pop(&st->unsent);
		finish(st, &st->slots[i], ret);
		fifo_push(&st->done, i);
	}
}

static void ring_submit(struct block_aio_stream *st, unsigned i)
{
	struct slot *s = &st->slots[i];
	const struct block_req *r = s->req;
	struct io_uring_sqe *sqe = NULL;

	if (st->ring_ok && map_slot(st, s))
		sqe = io_uring_get_sqe(&st->ring);	/* there is one: the ring has a slot each */
	if (sqe) {
		if (r->op == BLOCK_OP_WRITE)
			io_uring_prep_writev(sqe, st->bd->fd, r->iov, r->niov, s->host);
		else
			io_uring_prep_readv(sqe, st->bd->fd, r->iov, r->niov, s->host);
		io_uring_sqe_set_data(sqe, s);
		fifo_push(&st->unsent, i);	/* sent with the next reap: one system call for many */
		return;
	}
	/* The kernel works on what is queued while this one runs here. */
	if (st->unsent.n)
		ring_send(st, 0);
	finish(st, s, slot_io(st, s));
	fifo_push(&st->done, i);
}

static unsigned ring_reap(struct block_aio_stream *st)
{
	struct io_uring_cqe *cqe;
	struct slot *s;
	int ret, res;

	/*
	 * A completion already posted is taken without a system call; new
	 * entries wait for the next one then, up to a quarter of the window
	 * (one io_uring_enter for several requests, the window kept full).
	 */
	if (st->unsent.n && !st->done.n &&
	    (st->unsent.n >= (st->depth + 3) / 4 || io_uring_peek_cqe(&st->ring, &cqe) != 0))
		ring_send(st, 1);
	if (st->done.n)
		return fifo_pop(&st->done);
	do
		ret = io_uring_wait_cqe(&st->ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		return MAX_SLOTS;	/* the ring is broken: the caller fails what is left */
	s = io_uring_cqe_get_data(cqe);
	res = cqe->res;
	io_uring_cqe_seen(&st->ring, cqe);
	finish(st, s, settle(st, s, res));
	return (unsigned)(s - st->slots);
}

/* ---- native (Linux AIO) ---------------------------------------------------- */

static int native_start(struct block_aio_stream *st, char *err, size_t errlen)
{
	int ret;

	/* file-posix: without O_DIRECT io_submit does the I/O itself, so QEMU refuses it. */
	if (!st->bd->direct)
		return block_err(err, errlen, "aio=native was specified, but it requires "
				 "cache.direct=on, which was not specified.");
	ret = laio_setup(MAX_SLOTS, &st->laio);
	if (ret < 0)
		return block_err(err, errlen, "aio=native: cannot set up Linux AIO: %s",
				 strerror(-ret));
	return 0;
}

/*
 * One io_submit for the prepared entries.  Those the kernel does not take
 * (its context full, or an error) run here, still mapped, in order.
 */
static void native_send(struct block_aio_stream *st)
{
	struct iocb *cbs[MAX_SLOTS];
	unsigned idx[MAX_SLOTS], n = 0;
	int took;

	while (st->unsent.n) {
		idx[n] = fifo_pop(&st->unsent);
		cbs[n] = &st->slots[idx[n]].cb;
		n++;
	}
	took = laio_submit(st->laio, n, cbs);
	for (unsigned j = took < 0 ? 0 : (unsigned)took; j < n; j++) {
		struct slot *s = &st->slots[idx[j]];
		finish(st, s, slot_io(st, s));
		fifo_push(&st->done, idx[j]);
	}
}

static void native_submit(struct block_aio_stream *st, unsigned i)
{
	struct slot *s = &st->slots[i];
	const struct block_req *r = s->req;

	if (map_slot(st, s)) {
		laio_prep(&s->cb, st->bd->fd, r->op == BLOCK_OP_WRITE, r->iov, r->niov, s->host, s);
		fifo_push(&st->unsent, i);	/* sent with the next reap: one system call for many */
		return;
	}
	/* The kernel works on what is prepared while this one runs here. */
	if (st->unsent.n)
		native_send(st);
	finish(st, s, slot_io(st, s));
	fifo_push(&st->done, i);
}

/*
 * As ring_reap: a completion already posted is taken from the context's
 * ring in user memory (no system call); prepared entries wait for the next
 * io_submit, up to a quarter of the window.
 */
static unsigned native_reap(struct block_aio_stream *st)
{
	struct io_event ev;
	struct slot *s;

	if (st->unsent.n && !st->done.n &&
	    (st->unsent.n >= (st->depth + 3) / 4 || !laio_ready(st->laio)))
		native_send(st);
	if (st->done.n)
		return fifo_pop(&st->done);
	if (laio_reap(st->laio, 1, 1, &ev) != 1)
		return MAX_SLOTS;	/* the context is broken: the caller fails what is left */
	s = (struct slot *)(uintptr_t)ev.data;
	finish(st, s, settle(st, s, (ssize_t)ev.res));
	return (unsigned)(s - st->slots);
}

/* ---- the interface --------------------------------------------------------- */

int block_aio_stream_open(enum block_aio_engine engine, struct block_dev *bd, unsigned depth,
			  struct block_aio_stream **out, char *err, size_t errlen)
{
	struct block_aio_stream *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return block_err(err, errlen, "out of memory");
	st->bd = bd;
	st->engine = engine;
	st->depth = depth < 1 ? 1 : depth > MAX_SLOTS ? MAX_SLOTS : depth;
	for (unsigned i = 0; i < st->depth; i++)
		fifo_push(&st->free, i);
	ret = engine == BLOCK_AIO_IO_URING ? ring_start(st, err, errlen)
	      : engine == BLOCK_AIO_NATIVE ? native_start(st, err, errlen)
					   : threads_start(st, err, errlen);
	if (ret < 0) {
		free(st);
		return -1;
	}
	*out = st;
	return 0;
}

int block_aio_stream_submit(struct block_aio_stream *st, struct block_req *req)
{
	unsigned i;

	if (!st->free.n)
		return -EBUSY;
	i = fifo_pop(&st->free);
	st->busy++;
	st->slots[i] = (struct slot){ .req = req };
	req->result = 0;
	/* The device's I/O limits, once per request (QEMU's BlockBackend throttle). */
	if (req->op == BLOCK_OP_READ || req->op == BLOCK_OP_WRITE ||
	    req->op == BLOCK_OP_WRITE_ZEROES)
		block_io_throttle(st->bd, req->op != BLOCK_OP_READ, req->len);
	if (st->engine == BLOCK_AIO_IO_URING)
		ring_submit(st, i);
	else if (st->engine == BLOCK_AIO_NATIVE)
		native_submit(st, i);
	else
		threads_submit(st, i);
	return 0;
}

struct block_req *block_aio_stream_reap(struct block_aio_stream *st)
{
	unsigned i;

	if (!st->busy)
		return NULL;
	i = st->engine == BLOCK_AIO_IO_URING ? ring_reap(st)
	    : st->engine == BLOCK_AIO_NATIVE ? native_reap(st) : threads_reap(st);
	if (i == MAX_SLOTS) {
		/* A broken ring gives nothing back: fail one of those it holds. */
		for (i = 0; i < st->depth; i++)
			if (st->slots[i].req && st->slots[i].mapped)
				break;
		if (i == st->depth)
			return NULL;
		finish(st, &st->slots[i], -EIO);
	}
	struct block_req *req = st->slots[i].req;
	st->slots[i].req = NULL;
	fifo_push(&st->free, i);
	st->busy--;
	return req;
}

void block_aio_stream_close(struct block_aio_stream *st)
{
	if (!st)
		return;
	while (block_aio_stream_reap(st))
		;
	if (st->engine == BLOCK_AIO_IO_URING)
		io_uring_queue_exit(&st->ring);
	else if (st->engine == BLOCK_AIO_NATIVE)
		laio_destroy(st->laio);
	else
		threads_stop(st);
	free(st);
}
