/* The main thread's event loop: epoll over file descriptors plus one optional timeout. */
#ifndef KESTREL_UTIL_LOOP_H
#define KESTREL_UTIL_LOOP_H

#include <stdint.h>

struct loop;

/* events is the epoll event mask that fired (EPOLLIN, EPOLLHUP, ...). */
typedef void (*loop_fn)(void *opaque, uint32_t events);

struct loop *loop_create(void);
void loop_destroy(struct loop *loop);

/* Watches fd for events; returns -1 with errno set on failure. */
int loop_add(struct loop *loop, int fd, uint32_t events, loop_fn fn, void *opaque);
/* loop_modify alone may be called from any thread; everything else from the loop's. */
int loop_modify(struct loop *loop, int fd, uint32_t events);
void loop_remove(struct loop *loop, int fd);

/*
 * Waits up to timeout_ms (-1: forever) and dispatches what is ready.  Returns
 * the number of callbacks run, or -1 on an epoll error other than EINTR.
 */
int loop_run_once(struct loop *loop, int timeout_ms);

#endif
