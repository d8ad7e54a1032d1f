/*
 * QMP, QEMU's JSON machine protocol, for one client connection: greeting,
 * capabilities negotiation, command dispatch, errors and events.  Transport-free:
 * bytes come in through qmp_session_input and go out through the write callback.
 */
#ifndef KESTREL_UI_QMP_H
#define KESTREL_UI_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ui/control.h"

struct json_object;
struct qmp_session;

typedef void (*qmp_write_fn)(void *opaque, const char *data, size_t len);

/* Starts a session and writes the greeting. */
struct qmp_session *qmp_session_new(const struct control *ctl, qmp_write_fn write, void *opaque);
void qmp_session_free(struct qmp_session *s);

/* Feeds received bytes; any number of whole or partial JSON messages. */
void qmp_session_input(struct qmp_session *s, const uint8_t *buf, size_t len);

/*
 * Where getfd and add-fd take the fd a client passed with its command: take_fd
 * returns it (the session then owns it) or -1.  Without one, neither has an fd.
 */
void qmp_session_set_fd_source(struct qmp_session *s, int (*take_fd)(void *opaque),
			       void *opaque);
/* The fd getfd named name in this session (still owned by it), or -1. */
int qmp_session_fd_get(struct qmp_session *s, const char *name);
/* Closes every add-fd set (shared by all sessions, as QEMU's). */
void qmp_fdsets_reset(void);

/* Sends an asynchronous event (data may be NULL) if the session has negotiated. */
void qmp_session_event(struct qmp_session *s, const char *event, struct json_object *data);

#endif
