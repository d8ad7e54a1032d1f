/*
 * An I/O thread: waits on eventfds (virtqueue kicks that KVM signals through
 * KVM_IOEVENTFD) and runs their handlers, so a guest's request costs no exit
 * to userspace and a slow disk never stalls a vCPU.  Watches may be added and
 * removed from any thread (epoll_ctl is thread-safe).
 */
#ifndef KESTREL_VMM_IOTHREAD_H
#define KESTREL_VMM_IOTHREAD_H

#include <pthread.h>
#include <stdbool.h>

struct iothread_watch {
	int fd;
	void (*fn)(void *opaque);
	void *opaque;
};

struct iothread {
	int epoll_fd;
	int stop_fd;		/* eventfd that ends the thread */
	pthread_t thread;
	bool started;
};

int iothread_start(struct iothread *io);
void iothread_stop(struct iothread *io);

/* w must stay valid until unwatched; w->fn runs on the I/O thread. */
int iothread_watch(struct iothread *io, struct iothread_watch *w);
void iothread_unwatch(struct iothread *io, struct iothread_watch *w);

#endif
