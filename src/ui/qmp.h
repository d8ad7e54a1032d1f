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

/* Sends an asynchronous event (data may be NULL) if the session has negotiated. */
void qmp_session_event(struct qmp_session *s, const char *event, struct json_object *data);

#endif
