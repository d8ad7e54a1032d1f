/*
 * The console: a character back end feeding the guest's serial port and, on a
 * multiplexed terminal (-nographic, mon:stdio), the human monitor too, with
 * QEMU's Ctrl-a keys to switch between them.
 */
#ifndef KESTREL_UI_CONSOLE_H
#define KESTREL_UI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/serial.h"
#include "chardev/chardev.h"
#include "ui/monitor.h"
#include "chardev/mux.h"

struct console {
	struct chardev *cd;
	struct mux mux;
	bool use_mux;
	struct serial *serial;		/* NULL while the VM is being rebuilt */
	struct monitor *monitor;	/* the muxed human monitor, if any */
	bool monitor_focus;		/* input goes to the monitor, not the guest */
	void (*quit)(void *opaque);	/* Ctrl-a x */
	void *opaque;
	uint8_t pending[SERIAL_RX_QUEUE];	/* typed ahead of what the UART could take */
	size_t npending;
};

void console_init(struct console *con, struct chardev *cd, void (*quit)(void *), void *opaque);
void console_set_serial(struct console *con, struct serial *serial);
void console_set_monitor(struct console *con, struct monitor *mon);

/* The chardev frontend to attach to con->cd. */
struct chardev_frontend console_frontend(struct console *con);

/* Retries delivering typed-ahead input; returns true while some is still waiting. */
bool console_flush(struct console *con);

#endif
