#include "ui/console.h"

#include <string.h>

void console_init(struct console *con, struct chardev *cd, void (*quit)(void *), void *opaque)
{
	memset(con, 0, sizeof(*con));
	con->cd = cd;
	con->use_mux = cd->spec.mux;
	con->quit = quit;
	con->opaque = opaque;
}

void console_set_serial(struct console *con, struct serial *serial)
{
	con->serial = serial;
}

void console_set_monitor(struct console *con, struct monitor *mon)
{
	con->monitor = mon;
}

bool console_flush(struct console *con)
{
	size_t taken;

	if (!con->npending || !con->serial)
		return con->npending > 0;
	taken = serial_receive(con->serial, con->pending, con->npending);
	memmove(con->pending, con->pending + taken, con->npending - taken);
	con->npending -= taken;
	return con->npending > 0;
}

static void console_deliver(struct console *con, uint8_t byte)
{
	if (con->monitor_focus) {
		monitor_input(con->monitor, &byte, 1);
		return;
	}
	/* Beyond 4 KiB of unread type-ahead the guest is not listening: drop, as a UART would. */
	if (con->npending < sizeof(con->pending))
		con->pending[con->npending++] = byte;
}

static void console_switch(struct console *con)
{
	if (!con->monitor) {
		chardev_write_str(con->cd, "\r\nkestrel: no monitor on this terminal\r\n");
		return;
	}
	con->monitor_focus = !con->monitor_focus;
	if (con->monitor_focus)
		monitor_focus(con->monitor);
	else
		chardev_write_str(con->cd, "\r\n");
}

static void console_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *con = opaque;

	for (size_t i = 0; i < len; i++) {
		uint8_t out = buf[i];
		enum mux_action action = con->use_mux ? mux_input(&con->mux, buf[i], &out) : MUX_PASS;

		switch (action) {
		case MUX_PASS:
			console_deliver(con, out);
			break;
		case MUX_SWALLOW:
			break;
		case MUX_HELP:
			chardev_write_str(con->cd, mux_help_text);
			break;
		case MUX_QUIT:
			chardev_write_str(con->cd, "kestrel: terminating on Ctrl-a x\r\n");
			con->quit(con->opaque);
			return;
		case MUX_MONITOR:
			console_switch(con);
			break;
		case MUX_FLUSH:
			chardev_write_str(con->cd, "\r\nkestrel: no disks to flush\r\n");
			break;
		case MUX_BREAK:
			if (con->serial)
				serial_break(con->serial);
			break;
		}
	}
	console_flush(con);
}

struct chardev_frontend console_frontend(struct console *con)
{
	return (struct chardev_frontend){ .input = console_input, .opaque = con };
}
