#include "ui/monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/hmp.h"
#include "ui/qmp.h"

#define HMP_PROMPT "(qemu) "	/* QEMU's, which expect-style scripts wait for */

static void write_out(void *opaque, const char *text, size_t len)
{
	struct monitor *mon = opaque;

	chardev_write(mon->cd, (const uint8_t *)text, len);
}

void monitor_init(struct monitor *mon, struct chardev *cd, const struct control *ctl, bool qmp)
{
	memset(mon, 0, sizeof(*mon));
	mon->cd = cd;
	mon->ctl = ctl;
	mon->qmp = qmp;
	readline_init(&mon->rl, HMP_PROMPT, write_out, mon);
}

void monitor_destroy(struct monitor *mon)
{
	if (mon->session)
		qmp_session_free(mon->session);
	mon->session = NULL;
	readline_free(&mon->rl);
}

void monitor_focus(struct monitor *mon)
{
	if (!mon->greeted) {
		chardev_write_str(mon->cd, "Kestrel " KESTREL_VERSION
				  " monitor - type 'help' for more information\r\n");
		mon->greeted = true;
	}
	readline_show_prompt(&mon->rl);
}

/* getfd/add-fd: the fd the client passed on the monitor's socket. */
static int take_msgfd(void *opaque)
{
	struct monitor *mon = opaque;

	return chardev_take_msgfd(mon->cd);
}

void monitor_opened(void *opaque)
{
	struct monitor *mon = opaque;

	if (mon->qmp) {
		if (mon->session)
			qmp_session_free(mon->session);
		mon->session = qmp_session_new(mon->ctl, write_out, mon);
		if (mon->session)
			qmp_session_set_fd_source(mon->session, take_msgfd, mon);
		return;
	}
	mon->greeted = false;	/* every new client gets the banner */
	monitor_focus(mon);
}

void monitor_closed(void *opaque)
{
	struct monitor *mon = opaque;

	if (mon->session)
		qmp_session_free(mon->session);
	mon->session = NULL;
}

static void hmp_line(struct monitor *mon, const char *line)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out) {
		chardev_write_str(mon->cd, "out of memory\r\n");
		return;
	}
	hmp_run_line(mon->ctl, line, out);
	fclose(out);
	chardev_write(mon->cd, (const uint8_t *)text, len);
	free(text);
}

void monitor_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct monitor *mon = opaque;
	char line[READLINE_MAX];

	if (mon->qmp) {
		if (mon->session)
			qmp_session_input(mon->session, buf, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (!readline_feed(&mon->rl, buf[i], line, sizeof(line)))
			continue;
		hmp_line(mon, line);
		readline_show_prompt(&mon->rl);
	}
}

struct chardev_frontend monitor_frontend(struct monitor *mon)
{
	return (struct chardev_frontend){
		.input = monitor_input,
		.opened = monitor_opened,
		.closed = monitor_closed,
		.opaque = mon,
	};
}

void monitor_event(struct monitor *mon, const char *event, struct json_object *data)
{
	if (mon->qmp && mon->session)
		qmp_session_event(mon->session, event, data);
}
