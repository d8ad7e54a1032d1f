/*
 * Linux AIO (io_setup/io_submit/io_getevents), QEMU's aio=native: the raw
 * system calls, no libaio (the calls are five; libaio adds only their
 * wrappers).  Used by aio.c and aio_stream.c on O_DIRECT images, where the
 * kernel queues the I/O instead of doing it during io_submit.
 */
#ifndef KESTREL_BLOCK_AIO_LINUX_H
#define KESTREL_BLOCK_AIO_LINUX_H

#include <linux/aio_abi.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* A context taking nr requests at once: 0 or -errno. */
int laio_setup(unsigned nr, aio_context_t *ctx);
void laio_destroy(aio_context_t ctx);

/* A vectored read or write of fd at off; data comes back in the event. */
void laio_prep(struct iocb *cb, int fd, bool write, const struct iovec *iov, unsigned niov,
	       uint64_t off, void *data);

/* Submits n: how many the kernel took (all, unless an error stopped it), or -errno. */
int laio_submit(aio_context_t ctx, unsigned n, struct iocb **cbs);

/*
 * At least min, at most max events into ev: how many, or -errno (EINTR
 * retried).  Events already posted are taken from the context's ring in
 * user memory, without a system call (as QEMU's linux-aio does).
 */
int laio_reap(aio_context_t ctx, unsigned min, unsigned max, struct io_event *ev);

/* Whether an event is posted (a reap of one would not block). */
bool laio_ready(aio_context_t ctx);

#endif
