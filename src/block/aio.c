/*
 * The three request engines behind aio.h.  The threads engine hands a
 * batch's requests to workers; the io_uring and native (Linux AIO) engines
 * submit those that map straight onto the file in one system call and run
 * the others themselves while the kernel works, then reap the completions
 * in the calling thread (no thread hop).  Either way block_aio_run returns
 * when all are done.  Requests go whole: splitting
 * a 1 MiB request into parallel parts was measured slower (bench/blk).
 */
#include "block/aio.h"
#include "block/aio_linux.h"
#include "block/block_int.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Requests in flight: QEMU's pool allows 64; 16 already keeps the host disk busy at qd32. */
#define AIO_WORKERS 16
#define AIO_MAX_ITEMS BLOCK_AIO_MAX_BATCH
#define AIO_RING_ENTRIES AIO_MAX_ITEMS
#define AIO_IOV_PER_ITEM 64		/* io_uring: a piece with more segments runs synchronously */
#define DIRECT_ALIGN 512		/* what O_DIRECT needs of buffers, lengths, offsets */

/* One piece of a request: bytes [skip, skip + len) of its data. */
struct aio_item {
	struct block_req *req;
	uint64_t skip, len;
	int result;
	uint64_t host;			/* io_uring: where the piece lives in the file */
	struct iovec *iov;		/* io_uring: the piece's segments */
	unsigned niov;
};

struct block_aio {
	struct block_dev *bd;		/* the image of the batch running */
	enum block_aio_engine engine;
	struct aio_item items[AIO_MAX_ITEMS];
	unsigned nitems;

	/* threads */
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	pthread_t threads[AIO_WORKERS];
	unsigned nthreads;
	unsigned published, next, finished;	/* items the workers may take, under lock */
	bool stop;

	/* io_uring */
	struct io_uring ring;
	bool ring_ok;
	struct iovec *iov_pool;		/* AIO_IOV_PER_ITEM for each item (native too) */

	/* native */
	aio_context_t laio;
};

const char *block_aio_engine_name(enum block_aio_engine engine)
{
	return engine == BLOCK_AIO_IO_URING ? "io_uring"
	       : engine == BLOCK_AIO_NATIVE ? "native" : "threads";
}

/* ---- the synchronous path, shared by both engines -------------------------- */

/* Walks a request's segments from a byte offset on. */
struct iov_cursor {
	const struct iovec *iov;
	unsigned n, i;
	uint64_t skip;		/* bytes into iov[i] */
};

/* The next piece, at most len bytes: its length (0 at the end) and address in *p. */
static size_t cursor_next(struct iov_cursor *c, uint64_t len, uint8_t **p)
{
	while (c->i < c->n && c->skip >= c->iov[c->i].iov_len)
		c->skip -= c->iov[c->i++].iov_len;
	if (c->i == c->n || !len)
		return 0;
	size_t chunk = c->iov[c->i].iov_len - (size_t)c->skip;
	if (chunk > len)
		chunk = (size_t)len;
	*p = (uint8_t *)c->iov[c->i].iov_base + c->skip;
	c->skip += chunk;
	return chunk;
}

/* Reads or writes bytes [skip, skip+len) of r's data through the block layer. */
static int transfer(struct block_dev *bd, const struct block_req *r, uint64_t skip, uint64_t len)
{
	struct iov_cursor c = { .iov = r->iov, .n = r->niov, .skip = skip };
	uint64_t pos = r->offset + skip;
	size_t chunk;
	uint8_t *p;

	while ((chunk = cursor_next(&c, len, &p))) {
		int ret = r->op == BLOCK_OP_WRITE ? block_pwrite(bd, pos, p, chunk)
						  : block_pread(bd, pos, p, chunk);
		if (ret < 0)
			return ret;
		pos += chunk;
		len -= chunk;
	}
	return len ? -EINVAL : 0;	/* the iovec was shorter than said */
}

static int run_sync(struct block_dev *bd, const struct aio_item *it)
{
	const struct block_req *r = it->req;

	switch (r->op) {
	case BLOCK_OP_READ:
	case BLOCK_OP_WRITE:
		return transfer(bd, r, it->skip, it->len);
	case BLOCK_OP_FLUSH:
		return block_flush(bd);
	case BLOCK_OP_DISCARD:
		return block_discard(bd, r->offset, r->len);
	case BLOCK_OP_WRITE_ZEROES:
		return block_write_zeroes(bd, r->offset, r->len, r->may_unmap);
	}
	return -EINVAL;
}

int block_aio_run_one(struct block_dev *bd, const struct block_req *req)
{
	struct aio_item it = { .req = (struct block_req *)req, .len = req->len };

	return run_sync(bd, &it);
}

static void make_items(struct block_aio *aio, struct block_req *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		reqs[i].result = 0;
		aio->items[i] = (struct aio_item){ .req = &reqs[i], .len = reqs[i].len };
	}
	aio->nitems = n;
}

/* Each request's result from its item. */
static void gather_results(struct block_aio *aio)
{
	for (unsigned i = 0; i < aio->nitems; i++)
		if (aio->items[i].result < 0 && aio->items[i].req->result == 0)
			aio->items[i].req->result = aio->items[i].result;
}

/* ---- threads ------------------------------------------------------------ */

static void *worker(void *arg)
{
	struct block_aio *aio = arg;

	pthread_mutex_lock(&aio->lock);
	while (!aio->stop) {
		if (aio->next >= aio->published) {
			pthread_cond_wait(&aio->work, &aio->lock);
			continue;
		}
		struct aio_item *it = &aio->items[aio->next++];
		pthread_mutex_unlock(&aio->lock);
		int result = run_sync(aio->bd, it);	/* the I/O, unlocked */
		pthread_mutex_lock(&aio->lock);
		it->result = result;
		if (++aio->finished == aio->published)
			pthread_cond_signal(&aio->done);
	}
	pthread_mutex_unlock(&aio->lock);
	return NULL;
}

static int threads_open(struct block_aio *aio, char *err, size_t errlen)
{
	pthread_mutex_init(&aio->lock, NULL);
	pthread_cond_init(&aio->work, NULL);
	pthread_cond_init(&aio->done, NULL);
	for (; aio->nthreads < AIO_WORKERS; aio->nthreads++) {
		int e = pthread_create(&aio->threads[aio->nthreads], NULL, worker, aio);
		if (e && !aio->nthreads)
			return block_err(err, errlen, "cannot start I/O threads: %s", strerror(e));
		if (e)
			break;	/* fewer workers still work */
	}
	return 0;
}

static void threads_close(struct block_aio *aio)
{
	pthread_mutex_lock(&aio->lock);
	aio->stop = true;
	pthread_cond_broadcast(&aio->work);
	pthread_mutex_unlock(&aio->lock);
	for (unsigned i = 0; i < aio->nthreads; i++)
		pthread_join(aio->threads[i], NULL);
	pthread_cond_destroy(&aio->work);
	pthread_cond_destroy(&aio->done);
	pthread_mutex_destroy(&aio->lock);
}

static void threads_run(struct block_aio *aio)
{
	/*
	 * One request: doing it here saves two thread hand-offs, which at queue
	 * depth 1 cost more than the I/O (the caller waits for it either way).
	 */
	if (aio->nitems == 1) {
		aio->items[0].result = run_sync(aio->bd, &aio->items[0]);
		return;
	}
	pthread_mutex_lock(&aio->lock);
	aio->published = aio->nitems;
	aio->next = aio->finished = 0;
	/* As many workers as there are requests, not the whole pool. */
	for (unsigned i = 0; i < aio->nitems && i < aio->nthreads; i++)
		pthread_cond_signal(&aio->work);
	while (aio->finished < aio->published)
		pthread_cond_wait(&aio->done, &aio->lock);
	aio->published = aio->next = 0;	/* nothing for a worker that wakes late */
	pthread_mutex_unlock(&aio->lock);
}

/* ---- io_uring ----------------------------------------------------------- */

/*
 * COOP_TASKRUN: completions are reaped when we enter the kernel anyway,
 * with no interrupting task work (the batch waits for them all).  Older
 * kernels refuse the flag; they get a plain ring.
 */
static int ring_init(struct io_uring *ring)
{
	int ret = io_uring_queue_init(AIO_RING_ENTRIES, ring, IORING_SETUP_COOP_TASKRUN);

	return ret == -EINVAL ? io_uring_queue_init(AIO_RING_ENTRIES, ring, 0) : ret;
}

static int uring_open(struct block_aio *aio, char *err, size_t errlen)
{
	int ret = ring_init(&aio->ring);

	if (ret < 0)
		return block_err(err, errlen, "aio=io_uring: cannot set up io_uring: %s",
				 strerror(-ret));
	aio->ring_ok = true;
	aio->iov_pool = calloc(AIO_MAX_ITEMS, AIO_IOV_PER_ITEM * sizeof(struct iovec));
	if (!aio->iov_pool) {
		io_uring_queue_exit(&aio->ring);
		return block_err(err, errlen, "out of memory");
	}
	return 0;
}

/*
 * The segments of an item, into its slot of the iovec pool.  False when the
 * piece needs more slots than there are, or O_DIRECT cannot take its
 * buffers as they are (the synchronous path bounces them).
 */
static bool slice_iov(struct block_aio *aio, struct aio_item *it)
{
	const struct block_req *r = it->req;
	struct iov_cursor c = { .iov = r->iov, .n = r->niov, .skip = it->skip };
	uint64_t len = it->len;
	size_t chunk;
	uint8_t *p;

	it->iov = &aio->iov_pool[(size_t)(it - aio->items) * AIO_IOV_PER_ITEM];
	it->niov = 0;
	while ((chunk = cursor_next(&c, len, &p))) {
		if (it->niov == AIO_IOV_PER_ITEM ||
		    (aio->bd->direct && (((uintptr_t)p | chunk) & (DIRECT_ALIGN - 1))))
			return false;
		it->iov[it->niov++] = (struct iovec){ p, chunk };
		len -= chunk;
	}
	return len == 0;
}

/* Whether the item can go to the kernel as it is: mapped onto the file (end_direct owed). */
static bool map_item(struct block_aio *aio, struct aio_item *it)
{
	const struct block_req *r = it->req;
	bool write = r->op == BLOCK_OP_WRITE;

	return !((r->op != BLOCK_OP_READ && !write) ||
		 (aio->bd->direct && ((r->offset + it->skip) & (DIRECT_ALIGN - 1))) ||
		 !slice_iov(aio, it) ||
		 !block_map_direct(aio->bd, r->offset + it->skip, it->len, write, &it->host));
}

/* Queues the item on the ring if it can go there: 1 queued, 0 not. */
static int uring_queue(struct block_aio *aio, struct aio_item *it)
{
	const struct block_req *r = it->req;
	bool write = r->op == BLOCK_OP_WRITE;
	struct io_uring_sqe *sqe;

	if (!map_item(aio, it))
		return 0;
	sqe = io_uring_get_sqe(&aio->ring);
	if (!sqe) {	/* cannot happen: the ring has an entry for every item */
		block_end_direct(aio->bd, it->host, it->len, write, -EAGAIN);
		return 0;
	}
	if (write)
		block_crash_point();
	if (write)
		io_uring_prep_writev(sqe, aio->bd->fd, it->iov, it->niov, it->host);
	else
		io_uring_prep_readv(sqe, aio->bd->fd, it->iov, it->niov, it->host);
	io_uring_sqe_set_data(sqe, it);
	return 1;
}

/*
 * Hands the queued entries to the kernel (and waits for wait_nr
 * completions).  On a hard failure the ring is
 * rebuilt, so that entries it never took cannot run later on stale buffers.
 */
static int submit_all(struct block_aio *aio, unsigned wait_nr)
{
	int ret;

	do
		ret = io_uring_submit_and_wait(&aio->ring, wait_nr);
	while (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY);
	if (ret >= 0)
		return 0;
	io_uring_queue_exit(&aio->ring);
	/* Without a new ring every later request runs synchronously. */
	aio->ring_ok = ring_init(&aio->ring) == 0;
	return ret;
}

static void uring_run(struct block_aio *aio)
{
	bool queued[AIO_MAX_ITEMS];
	unsigned pending = 0;

	for (unsigned i = 0; i < aio->nitems; i++) {
		queued[i] = aio->ring_ok && uring_queue(aio, &aio->items[i]) == 1;
		pending += queued[i];
	}
	/* With nothing to do here meanwhile, one system call submits and waits. */
	if (pending && submit_all(aio, pending == aio->nitems ? pending : 0) < 0) {
		/* The ring took nothing: do every request here instead. */
		for (unsigned i = 0; i < aio->nitems; i++) {
			struct aio_item *it = &aio->items[i];
			if (queued[i])
				block_end_direct(aio->bd, it->host, it->len,
						 it->req->op == BLOCK_OP_WRITE, -EIO);
			queued[i] = false;
		}
		pending = 0;
	}
	/* What the ring cannot do runs here while the kernel works. */
	for (unsigned i = 0; i < aio->nitems; i++)
		if (!queued[i])
			aio->items[i].result = run_sync(aio->bd, &aio->items[i]);
	while (pending) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&aio->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			/* The ring is broken: no completion will come; fail what is left. */
			for (unsigned i = 0; i < aio->nitems; i++)
				if (queued[i] && aio->items[i].result == 0)
					aio->items[i].result = ret;
			break;
		}
		struct aio_item *it = io_uring_cqe_get_data(cqe);
		bool write = it->req->op == BLOCK_OP_WRITE;
		int res = cqe->res;
		io_uring_cqe_seen(&aio->ring, cqe);
		pending--;
		/* Short transfers, EAGAIN and friends: redo the request the ordinary way. */
		it->result = (uint64_t)res == it->len ? 0 : res < 0 && res != -EAGAIN && res != -EINTR
			     ? res : run_sync(aio->bd, it);
		block_end_direct(aio->bd, it->host, it->len, write, it->result);
	}
}

/* ---- native (Linux AIO) ---------------------------------------------------- */

static int native_open(struct block_aio *aio, char *err, size_t errlen)
{
	int ret = laio_setup(AIO_MAX_ITEMS, &aio->laio);

	if (ret < 0)
		return block_err(err, errlen, "aio=native: cannot set up Linux AIO: %s",
				 strerror(-ret));
	aio->iov_pool = calloc(AIO_MAX_ITEMS, AIO_IOV_PER_ITEM * sizeof(struct iovec));
	if (!aio->iov_pool) {
		laio_destroy(aio->laio);
		return block_err(err, errlen, "out of memory");
	}
	return 0;
}

/* A mapped item's result from res bytes moved (or -errno), as the ring settles it. */
static int native_settle(struct block_aio *aio, struct aio_item *it, int64_t res)
{
	if (res >= 0 && (uint64_t)res == it->len)
		return 0;
	if (res < 0 && res != -EAGAIN && res != -EINTR)
		return (int)res;
	return run_sync(aio->bd, it);	/* short transfer: the ordinary way */
}

/* A mapped item io_submit did not take, here with positional I/O. */
static int native_direct(struct block_aio *aio, struct aio_item *it)
{
	bool write = it->req->op == BLOCK_OP_WRITE;
	ssize_t n;

	do
		n = write ? pwritev(aio->bd->fd, it->iov, (int)it->niov, (off_t)it->host)
			  : preadv(aio->bd->fd, it->iov, (int)it->niov, (off_t)it->host);
	while (n < 0 && errno == EINTR);
	return native_settle(aio, it, n < 0 ? -errno : n);
}

static void native_done(struct block_aio *aio, struct aio_item *it, int result)
{
	it->result = result;
	block_end_direct(aio->bd, it->host, it->len, it->req->op == BLOCK_OP_WRITE, result);
}

/*
 * One io_submit for every item that maps onto the file (the kick's batch);
 * the others run here meanwhile; then io_getevents reaps, in this thread.
 */
static void native_run(struct block_aio *aio)
{
	struct iocb cbs[AIO_MAX_ITEMS], *cbp[AIO_MAX_ITEMS];
	struct io_event ev[AIO_MAX_ITEMS];
	bool queued[AIO_MAX_ITEMS];
	unsigned n = 0;
	int took = 0;

	for (unsigned i = 0; i < aio->nitems; i++) {
		struct aio_item *it = &aio->items[i];
		bool write = it->req->op == BLOCK_OP_WRITE;

		queued[i] = map_item(aio, it);
		if (!queued[i])
			continue;
		if (write)
			block_crash_point();
		laio_prep(&cbs[n], aio->bd->fd, write, it->iov, it->niov, it->host, it);
		cbp[n] = &cbs[n];
		n++;
	}
	if (n)
		took = laio_submit(aio->laio, n, cbp);
	if (took < 0)
		took = 0;
	/* What the kernel did not take runs here, still mapped. */
	for (unsigned j = (unsigned)took; j < n; j++) {
		struct aio_item *it = (struct aio_item *)(uintptr_t)cbs[j].aio_data;
		native_done(aio, it, native_direct(aio, it));
	}
	for (unsigned i = 0; i < aio->nitems; i++)
		if (!queued[i])
			aio->items[i].result = run_sync(aio->bd, &aio->items[i]);
	for (unsigned left = (unsigned)took; left;) {
		int got = laio_reap(aio->laio, 1, left, ev);
		if (got < 0) {
			/* The context is broken: no completion will come; fail what is left. */
			for (unsigned j = 0; j < (unsigned)took; j++) {
				struct aio_item *it = (struct aio_item *)(uintptr_t)cbs[j].aio_data;
				if (queued[it - aio->items])
					native_done(aio, it, got);
			}
			break;
		}
		for (int k = 0; k < got; k++) {
			struct aio_item *it = (struct aio_item *)(uintptr_t)ev[k].data;
			queued[it - aio->items] = false;	/* reaped */
			native_done(aio, it, native_settle(aio, it, ev[k].res));
		}
		left -= (unsigned)got;
	}
}

/* ---- the interface --------------------------------------------------------- */

int block_aio_open(enum block_aio_engine engine, struct block_aio **out, char *err,
		   size_t errlen)
{
	struct block_aio *aio = calloc(1, sizeof(*aio));
	int ret;

	if (!aio)
		return block_err(err, errlen, "out of memory");
	aio->engine = engine;
	ret = engine == BLOCK_AIO_IO_URING ? uring_open(aio, err, errlen)
	      : engine == BLOCK_AIO_NATIVE ? native_open(aio, err, errlen)
					   : threads_open(aio, err, errlen);
	if (ret < 0) {
		free(aio);
		return -1;
	}
	*out = aio;
	return 0;
}

void block_aio_close(struct block_aio *aio)
{
	if (!aio)
		return;
	if (aio->engine == BLOCK_AIO_IO_URING) {
		if (aio->ring_ok)
			io_uring_queue_exit(&aio->ring);
		free(aio->iov_pool);
	} else if (aio->engine == BLOCK_AIO_NATIVE) {
		laio_destroy(aio->laio);
		free(aio->iov_pool);
	} else {
		threads_close(aio);
	}
	free(aio);
}

void block_aio_run(struct block_aio *aio, struct block_dev *bd, struct block_req *reqs,
		   unsigned n)
{
	if (n > BLOCK_AIO_MAX_BATCH)
		n = BLOCK_AIO_MAX_BATCH;	/* the caller's contract; never overrun items */
	/* The device's I/O limits, once per guest request (QEMU's BlockBackend throttle). */
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].op == BLOCK_OP_READ || reqs[i].op == BLOCK_OP_WRITE ||
		    reqs[i].op == BLOCK_OP_WRITE_ZEROES)
			block_io_throttle(bd, reqs[i].op != BLOCK_OP_READ, reqs[i].len);
	aio->bd = bd;	/* the workers read it only while this batch runs */
	make_items(aio, reqs, n);
	if (aio->engine == BLOCK_AIO_IO_URING)
		uring_run(aio);
	else if (aio->engine == BLOCK_AIO_NATIVE)
		native_run(aio);
	else
		threads_run(aio);
	gather_results(aio);
}
