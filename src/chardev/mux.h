/*
 * The -nographic console multiplexer's escape handling (QEMU's "Ctrl-a"
 * keys).  Pure state machine: the caller acts on what it returns.
 */
#ifndef KESTREL_UI_MUX_H
#define KESTREL_UI_MUX_H

#include <stdbool.h>
#include <stdint.h>

#define MUX_ESCAPE 0x01	/* Ctrl-a */

enum mux_action {
	MUX_PASS,	/* give *out to the guest */
	MUX_SWALLOW,	/* nothing to do */
	MUX_HELP,	/* Ctrl-a h */
	MUX_QUIT,	/* Ctrl-a x */
	MUX_MONITOR,	/* Ctrl-a c: switch to the monitor */
	MUX_BREAK,	/* Ctrl-a b: send a break */
	MUX_FLUSH,	/* Ctrl-a s: save disk data */
};

struct mux {
	bool escaped;
};

enum mux_action mux_input(struct mux *mux, uint8_t byte, uint8_t *out);

/* QEMU's help text for the escape keys, lines separated by "\r\n" for a raw terminal. */
extern const char mux_help_text[];

#endif
