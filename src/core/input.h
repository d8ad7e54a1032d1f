/*
 * Input routing: viewers (VNC, SDL) and the monitor (sendkey, send-key,
 * input-send-event) send key and pointer events here; input devices (the
 * PS/2 keyboard and mouse in the i8042, USB HID) register as handlers.  As in
 * QEMU's ui/input.c, keys go to the keyboard handler registered last, and
 * pointer events to the absolute handler registered last (a tablet) or, with
 * none, to the relative one (a mouse), as deltas from the last position.
 *
 * Keys are QEMU's "qnum" numbers, which is also what the RFB QEMU extended
 * key event carries: the XT (scancode set 1) make code, with 0xe0-prefixed
 * keys as 0x80 | code (right Ctrl = 0x9d).  Handlers run on the caller's
 * thread and lock their own device.
 */
#ifndef KESTREL_CORE_INPUT_H
#define KESTREL_CORE_INPUT_H

#include <pthread.h>
#include <stdbool.h>

#define INPUT_MAX_HANDLERS 8
#define INPUT_ABS_MAX 0x7fff	/* absolute axes run 0..INPUT_ABS_MAX (QEMU's INPUT_EVENT_ABS_MAX) */

enum input_kind {
	INPUT_KEYBOARD = 1 << 0,
	INPUT_MOUSE_REL = 1 << 1,
	INPUT_MOUSE_ABS = 1 << 2,
};

/* Button bits, QEMU's InputButton order. */
enum input_button {
	INPUT_BTN_LEFT = 1 << 0,
	INPUT_BTN_MIDDLE = 1 << 1,
	INPUT_BTN_RIGHT = 1 << 2,
	INPUT_BTN_WHEEL_UP = 1 << 3,
	INPUT_BTN_WHEEL_DOWN = 1 << 4,
	INPUT_BTN_SIDE = 1 << 5,
	INPUT_BTN_EXTRA = 1 << 6,
};

struct input_handler_ops {
	void (*key)(void *dev, unsigned qnum, bool down);
	/* dz: wheel steps, negative = up; buttons: enum input_button bits held. */
	void (*rel)(void *dev, int dx, int dy, int dz, unsigned buttons);
	void (*abs)(void *dev, int x, int y, int dz, unsigned buttons);
};

struct input_handler {
	const char *name;	/* QEMU's device name, for info mice / query-mice */
	unsigned kinds;		/* enum input_kind */
	const struct input_handler_ops *ops;
	void *dev;
	int index;		/* query-mice "index": registration order */
};

struct input {
	pthread_mutex_t lock;
	struct input_handler handlers[INPUT_MAX_HANDLERS];
	unsigned nr;
	int next_index;
	int last_x, last_y;	/* last absolute position, for relative handlers */
	bool have_last;
	unsigned buttons;	/* held, for senders that send changes (the monitors) */
};

int input_init(struct input *in);
void input_destroy(struct input *in);

int input_register(struct input *in, const char *name, unsigned kinds,
		   const struct input_handler_ops *ops, void *dev);
void input_unregister(struct input *in, void *dev);

/* Senders.  input_pointer takes a position on a w x h screen. */
void input_key(struct input *in, unsigned qnum, bool down);
void input_pointer(struct input *in, int x, int y, int w, int h, int dz, unsigned buttons);
void input_pointer_rel(struct input *in, int dx, int dy, int dz, unsigned buttons);

/* One pointer handler for info mice / query-mice (QEMU's MouseInfo). */
struct input_mouse_info {
	const char *name;
	int index;
	bool current, absolute;
};
/* The pointer handlers, the current one first, then by registration; how many. */
unsigned input_mice(struct input *in, struct input_mouse_info *out, unsigned max);

/* The handler that pointer events reach now (NULL: none), for info mice. */
const struct input_handler *input_current_mouse(struct input *in);

#endif
