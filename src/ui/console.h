/*
 * The console: a character back end feeding the guest's serial port, through
 * the Ctrl-a multiplexer when the back end is a muxed stdio.
 */
#ifndef KESTREL_UI_CONSOLE_H
#define KESTREL_UI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw/serial.h"
#include "ui/chardev.h"
#include "ui/mux.h"

struct console {
	struct chardev *cd;
	struct mux mux;
	bool use_mux;
	struct serial *serial;		/* NULL while the VM is being rebuilt */
	void (*quit)(void *opaque);	/* Ctrl-a x */
	void *opaque;
	uint8_t pending[SERIAL_RX_QUEUE];	/* typed ahead of what the UART could take */
	size_t npending;
};

void console_init(struct console *con, struct chardev *cd, void (*quit)(void *), void *opaque);
void console_set_serial(struct console *con, struct serial *serial);

/* chardev_input_fn: bytes from the host side. */
void console_input(void *opaque, const uint8_t *buf, size_t len);

/* Retries delivering typed-ahead input; returns true while some is still waiting. */
bool console_flush(struct console *con);

#endif
