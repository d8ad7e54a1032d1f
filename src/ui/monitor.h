/*
 * A monitor on a character device: the human monitor (line editing, then
 * hmp_run_line) or QMP (one qmp_session per connected client).
 */
#ifndef KESTREL_UI_MONITOR_H
#define KESTREL_UI_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "chardev/chardev.h"
#include "ui/control.h"
#include "ui/readline.h"

struct json_object;
struct qmp_session;

struct monitor {
	struct chardev *cd;
	const struct control *ctl;
	bool qmp;
	bool greeted;		/* HMP: the banner was shown */
	struct readline rl;
	struct qmp_session *session;	/* QMP: the connected client's session */
};

void monitor_init(struct monitor *mon, struct chardev *cd, const struct control *ctl, bool qmp);
void monitor_destroy(struct monitor *mon);

/* The chardev_frontend callbacks, for a monitor that owns its chardev. */
struct chardev_frontend monitor_frontend(struct monitor *mon);

void monitor_opened(void *opaque);
void monitor_closed(void *opaque);
void monitor_input(void *opaque, const uint8_t *buf, size_t len);

/* HMP on a shared (muxed) terminal: shows the banner once, then the prompt. */
void monitor_focus(struct monitor *mon);

/* Sends a QMP event to a connected, negotiated client (no-op for HMP). */
void monitor_event(struct monitor *mon, const char *event, struct json_object *data);

#endif
