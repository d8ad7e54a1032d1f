#include "core/iothread.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

static void *iothread_main(void *arg)
{
	struct iothread *io = arg;
	struct epoll_event events[16];

	for (;;) {
		int n = epoll_wait(io->epoll_fd, events, 16, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("I/O thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct iothread_watch *w = events[i].data.ptr;
			uint64_t count;
			if (!w)
				return NULL;	/* the stop eventfd */
			/* Drain first: kicks that arrive while fn runs must wake us again. */
			if (read(w->fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				continue;
			w->fn(w->opaque);
		}
	}
}

int iothread_start(struct iothread *io)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int err;

	memset(io, 0, sizeof(*io));
	io->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->epoll_fd < 0 || io->stop_fd < 0 ||
	    epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, io->stop_fd, &ev) < 0) {
		log_error("I/O thread: %s", strerror(errno));
		return -1;
	}
	err = pthread_create(&io->thread, NULL, iothread_main, io);
	if (err) {
		log_error("cannot start the I/O thread: %s", strerror(err));
		return -1;
	}
	io->started = true;
	return 0;
}

void iothread_stop(struct iothread *io)
{
	uint64_t one = 1;

	if (io->started) {
		if (write(io->stop_fd, &one, sizeof(one)) < 0)
			log_debug("I/O thread stop: %s", strerror(errno));
		pthread_join(io->thread, NULL);
	}
	if (io->epoll_fd > 0)
		close(io->epoll_fd);
	if (io->stop_fd > 0)
		close(io->stop_fd);
	io->started = false;
	io->epoll_fd = io->stop_fd = -1;
}

int iothread_watch(struct iothread *io, struct iothread_watch *w)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	return epoll_ctl(io->epoll_fd, EPOLL_CTL_ADD, w->fd, &ev);
}

void iothread_unwatch(struct iothread *io, struct iothread_watch *w)
{
	epoll_ctl(io->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
}
