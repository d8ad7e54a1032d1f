/*
 * The two PS/2 devices behind the i8042 (QEMU's hw/input/ps2.c): a keyboard
 * (scancode sets 1, 2 and 3, the 0xfx command set) and a mouse (stream and
 * remote mode, IntelliMouse and Explorer wheels).  Each keeps its own byte
 * queue; the controller (hw/i8042.c) takes bytes from it into its output
 * buffer and holds the lock for both, so nothing here locks.
 */
#ifndef KESTREL_HW_PS2_H
#define KESTREL_HW_PS2_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The PS/2 protocol's 16 bytes of input events, plus room for command
 * replies (QEMU's PS2_QUEUE_SIZE and PS2_QUEUE_HEADROOM): a reply is taken
 * ahead of pending events, and events past 16 are dropped, as a real
 * device that is not read does.
 */
#define PS2_QUEUE_SIZE 16
#define PS2_REPLY_SIZE 8

struct ps2_queue {
	uint8_t ev[PS2_QUEUE_SIZE];
	unsigned ev_head, ev_count;
	uint8_t reply[PS2_REPLY_SIZE];
	unsigned reply_head, reply_count;
};

bool ps2_queue_empty(const struct ps2_queue *q);
/* The next byte (a reply before events); false when empty. */
bool ps2_queue_pop(struct ps2_queue *q, uint8_t *byte);

struct ps2_kbd {
	struct ps2_queue q;
	int write_cmd;		/* the command whose argument byte comes next; -1: none */
	bool scan_enabled;
	bool translate;		/* the controller's command byte bit 6: set 2 -> set 1 */
	bool need_high_bit;	/* translating: an 0xf0 break prefix was swallowed */
	unsigned set;		/* scancode set 1, 2 or 3 */
	uint8_t leds;
	uint8_t mods;		/* Ctrl/Shift/Alt held: Print Screen and Pause depend on them */
};

struct ps2_mouse {
	struct ps2_queue q;
	int write_cmd;
	uint8_t status;		/* PS2_MOUSE_STATUS_* */
	uint8_t resolution, sample_rate;
	bool wrap;
	uint8_t type;		/* 0: PS/2, 3: IntelliMouse, 4: IntelliMouse Explorer */
	uint8_t detect;		/* the sample-rate knock seen so far */
	int dx, dy, dz;		/* motion not yet sent */
	uint8_t buttons;	/* PS/2 order: left, right, middle, side, extra */
};

void ps2_kbd_reset(struct ps2_kbd *k);
void ps2_kbd_write(struct ps2_kbd *k, uint8_t val);
void ps2_kbd_set_translation(struct ps2_kbd *k, bool on);
/* A key (core/input.h's qnum) pressed or released; nothing while scanning is off. */
void ps2_kbd_key(struct ps2_kbd *k, unsigned qnum, bool down);

void ps2_mouse_reset(struct ps2_mouse *m);
void ps2_mouse_write(struct ps2_mouse *m, uint8_t val);
/* Motion in screen terms (dy > 0: down, dz < 0: wheel up); buttons: enum input_button. */
void ps2_mouse_event(struct ps2_mouse *m, int dx, int dy, int dz, unsigned buttons);

#endif
