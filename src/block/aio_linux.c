/*
 * Linux AIO through its system calls (see aio_linux.h for why not libaio).
 * io_submit may take fewer entries than asked (EAGAIN when the context is
 * full); the rest are submitted again, so a caller sees either all taken or
 * an error for those not taken.
 */
#include "block/aio_linux.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int laio_setup(unsigned nr, aio_context_t *ctx)
{
	*ctx = 0;
	return syscall(SYS_io_setup, nr, ctx) < 0 ? -errno : 0;
}

void laio_destroy(aio_context_t ctx)
{
	if (ctx)
		syscall(SYS_io_destroy, ctx);
}

void laio_prep(struct iocb *cb, int fd, bool write, const struct iovec *iov, unsigned niov,
	       uint64_t off, void *data)
{
	memset(cb, 0, sizeof(*cb));
	cb->aio_lio_opcode = write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV;
	cb->aio_fildes = (uint32_t)fd;
	cb->aio_buf = (uint64_t)(uintptr_t)iov;
	cb->aio_nbytes = niov;
	cb->aio_offset = (int64_t)off;
	cb->aio_data = (uint64_t)(uintptr_t)data;
}

int laio_submit(aio_context_t ctx, unsigned n, struct iocb **cbs)
{
	unsigned done = 0;

	while (done < n) {
		long ret = syscall(SYS_io_submit, ctx, (long)(n - done), cbs + done);
		if (ret > 0) {
			done += (unsigned)ret;
			continue;
		}
		if (ret < 0 && errno == EINTR)
			continue;
		/* EAGAIN with nothing in flight of ours would spin: give up then. */
		if (ret < 0 && errno == EAGAIN && done)
			return (int)done;
		return done ? (int)done : ret < 0 ? -errno : -EAGAIN;
	}
	return (int)done;
}

/*
 * The kernel's completion ring, mapped at the context's address (fs/aio.c,
 * struct aio_ring): the kernel advances tail, we advance head.  A ring
 * whose magic or features we do not know is left to io_getevents.
 */
struct aio_ring {
	unsigned id, nr, head, tail;
	unsigned magic, compat_features, incompat_features, header_length;
	struct io_event events[];
};

#define AIO_RING_MAGIC 0xa10a10a1

static struct aio_ring *user_ring(aio_context_t ctx)
{
	struct aio_ring *r = (struct aio_ring *)(uintptr_t)ctx;

	return r && r->magic == AIO_RING_MAGIC && r->incompat_features == 0 ? r : NULL;
}

bool laio_ready(aio_context_t ctx)
{
	struct aio_ring *r = user_ring(ctx);

	return r && r->head != __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
}

/* Events already posted, up to max: how many were taken. */
static unsigned peek(aio_context_t ctx, unsigned max, struct io_event *ev)
{
	struct aio_ring *r = user_ring(ctx);
	unsigned n = 0, head, tail;

	if (!r)
		return 0;
	head = r->head;
	tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	while (n < max && head != tail) {
		ev[n++] = r->events[head];
		head = (head + 1) % r->nr;
	}
	__atomic_store_n(&r->head, head, __ATOMIC_RELEASE);
	return n;
}

int laio_reap(aio_context_t ctx, unsigned min, unsigned max, struct io_event *ev)
{
	unsigned n = peek(ctx, max, ev);
	long ret;

	if (n >= min)
		return (int)n;
	do
		ret = syscall(SYS_io_getevents, ctx, (long)(min - n), (long)(max - n), ev + n,
			      NULL);
	while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return n ? (int)n : -errno;
	return (int)(n + (unsigned)ret);
}
