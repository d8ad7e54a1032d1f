#include "util/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct watch {
	int fd;
	loop_fn fn;
	void *opaque;
	bool dead;
	struct watch *next;
};

/*
 * The list is only changed and freed by the main thread, but loop_modify may
 * come from any thread (a vCPU queueing serial output arms EPOLLOUT), so
 * lookups and changes of the list hold the lock; callbacks run without it.
 */
struct loop {
	int epoll_fd;
	pthread_mutex_t lock;
	struct watch *watches;
};

struct loop *loop_create(void)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		free(loop);
		return NULL;
	}
	pthread_mutex_init(&loop->lock, NULL);
	return loop;
}

static void loop_reap(struct loop *loop)
{
	struct watch **pp;

	pthread_mutex_lock(&loop->lock);
	pp = &loop->watches;
	while (*pp) {
		struct watch *w = *pp;
		if (w->dead) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&loop->lock);
}

void loop_destroy(struct loop *loop)
{
	if (!loop)
		return;
	pthread_mutex_lock(&loop->lock);
	for (struct watch *w = loop->watches; w; w = w->next)
		w->dead = true;
	pthread_mutex_unlock(&loop->lock);
	loop_reap(loop);
	close(loop->epoll_fd);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

static struct watch *loop_find(struct loop *loop, int fd)
{
	for (struct watch *w = loop->watches; w; w = w->next)
		if (w->fd == fd && !w->dead)
			return w;
	return NULL;
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_fn fn, void *opaque)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events };

	if (!w)
		return -1;
	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	ev.data.ptr = w;
	pthread_mutex_lock(&loop->lock);
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pthread_mutex_unlock(&loop->lock);
		free(w);
		return -1;
	}
	w->next = loop->watches;
	loop->watches = w;
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

int loop_modify(struct loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct watch *w;
	int rc = -1;

	pthread_mutex_lock(&loop->lock);
	w = loop_find(loop, fd);
	if (w) {
		ev.data.ptr = w;
		rc = epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
	} else {
		errno = ENOENT;
	}
	pthread_mutex_unlock(&loop->lock);
	return rc;
}

void loop_remove(struct loop *loop, int fd)
{
	struct watch *w;

	pthread_mutex_lock(&loop->lock);
	w = loop_find(loop, fd);
	if (w) {
		epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		/* Freed after the current dispatch: its event may still be in flight. */
		w->dead = true;
	}
	pthread_mutex_unlock(&loop->lock);
}

int loop_run_once(struct loop *loop, int timeout_ms)
{
	struct epoll_event events[16];
	int n = epoll_wait(loop->epoll_fd, events, 16, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		struct watch *w = events[i].data.ptr;
		if (!w->dead)
			w->fn(w->opaque, events[i].events);
	}
	loop_reap(loop);
	return n;
}
