/*
 * Asynchronous block requests: a device hands a batch of requests on one
 * image to an engine and gets them back completed.  Two engines, as QEMU's
 * aio= names them:
 *
 *   threads   a small pool of worker threads doing positional I/O
 *   io_uring  reads and writes that map straight onto the image file go to
 *             the kernel as one ring submission; the rest (qcow2 allocation,
 *             compressed clusters, backing files) run synchronously meanwhile
 *   native    Linux AIO (io_submit/io_getevents) as io_uring is used; the
 *             kernel queues the I/O only under O_DIRECT, so QEMU (and the
 *             options) require cache.direct=on with it
 */
#ifndef KESTREL_BLOCK_AIO_H
#define KESTREL_BLOCK_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct block_dev;
struct block_aio;

enum block_aio_engine {
	BLOCK_AIO_THREADS,
	BLOCK_AIO_IO_URING,
	BLOCK_AIO_NATIVE,
};

enum block_op {
	BLOCK_OP_READ,
	BLOCK_OP_WRITE,
	BLOCK_OP_FLUSH,
	BLOCK_OP_DISCARD,
	BLOCK_OP_WRITE_ZEROES,
};

struct block_req {
	enum block_op op;
	uint64_t offset;		/* bytes */
	uint64_t len;			/* READ/WRITE: the iovec's total; DISCARD/WRITE_ZEROES: range */
	const struct iovec *iov;	/* READ/WRITE data */
	unsigned niov;
	bool may_unmap;			/* WRITE_ZEROES may deallocate */
	int result;			/* out: 0 or a negative errno */
};

#define BLOCK_AIO_MAX_BATCH 64		/* requests per block_aio_run */

/*
 * An engine is not tied to one image: each batch names its own.  Returns 0,
 * or -1 with a message in err (e.g. io_uring not available).
 */
int block_aio_open(enum block_aio_engine engine, struct block_aio **out, char *err,
		   size_t errlen);
void block_aio_close(struct block_aio *aio);

/* Runs n (at most BLOCK_AIO_MAX_BATCH) requests on bd; returns when all completed. */
void block_aio_run(struct block_aio *aio, struct block_dev *bd, struct block_req *reqs,
		   unsigned n);

const char *block_aio_engine_name(enum block_aio_engine engine);

/* A request done the ordinary (synchronous) way through the block layer: 0 or -errno. */
int block_aio_run_one(struct block_dev *bd, const struct block_req *req);

/*
 * A stream of requests on one image, as QEMU's coroutines issue them: each
 * request goes in on its own and comes back as soon as it is done, so a
 * completion frees its slot for the next request at once (no batch to wait
 * for).  At most `depth` (<= BLOCK_AIO_MAX_BATCH) in flight.  Reads and
 * writes that map straight onto the file go to the workers or the ring;
 * the rest (qcow2 allocation, flush, discard) run in the submitting thread,
 * in the order submitted, so a qcow2 image is laid out as qemu-img lays it
 * out.  One thread submits and reaps.
 */
struct block_aio_stream;

int block_aio_stream_open(enum block_aio_engine engine, struct block_dev *bd, unsigned depth,
			  struct block_aio_stream **out, char *err, size_t errlen);
void block_aio_stream_close(struct block_aio_stream *st);	/* reaps what is in flight */
/* Starts req (its iov stays the caller's until reaped); -EBUSY when depth are in flight. */
int block_aio_stream_submit(struct block_aio_stream *st, struct block_req *req);
/* Waits for a request to finish and returns it (result set); NULL with none in flight. */
struct block_req *block_aio_stream_reap(struct block_aio_stream *st);

#endif
