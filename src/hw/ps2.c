/* PS/2 keyboard and mouse (ps2.h), after QEMU 7.2's hw/input/ps2.c. */
#include <string.h>

#include "core/input.h"
#include "core/keycodes.h"
#include "hw/ps2.h"

#define PS2_ACK 0xfa
#define PS2_RESEND 0xfe
#define PS2_POR 0xaa		/* power-on reset: self-test passed */
#define PS2_KBD_ID 0xab		/* first ID byte; the second says translated or not */

#define PS2_MOUSE_STATUS_REMOTE 0x40
#define PS2_MOUSE_STATUS_ENABLED 0x20
#define PS2_MOUSE_STATUS_SCALE21 0x10
/*
 * The most one packet moves: the 9-bit range the protocol has.  QEMU 7.2
 * sends at most 127 a packet ("XXX: increase range to 8 bits ?"); with 127
 * here the packets would be byte for byte QEMU's.
 */
#define PS2_MOUSE_MAX_DELTA 255

/*
 * The 8042's set 2 -> set 1 translation (IBM PC/AT technical reference),
 * codes 0x00-0x84; the codes above map to themselves.  The keyboard applies
 * it itself when the controller's command byte asks (QEMU does the same),
 * and uses it backwards to turn a qnum (a set 1 code) into set 2.
 */
static const uint8_t set2_to_set1[0x85] = {
	0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f,
	0x29, 0x59, 0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f,
	0x1e, 0x11, 0x03, 0x5b, 0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39,
	0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d, 0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e,
	0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f, 0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b,
	0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61, 0x6d, 0x73, 0x28, 0x74,
	0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76, 0x55, 0x56,
	0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
	0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49,
	0x46, 0x54, 0x80, 0x81, 0x82, 0x41, 0x54,
};

static uint8_t translate(uint8_t set2)
{
	return set2 < sizeof(set2_to_set1) ? set2_to_set1[set2] : set2;
}

/* The set 2 code of a set 1 code; 0: none.  F7 (0x83) and SysRq (0x84) are the
 * codes a real keyboard sends, hence the search from the top. */
static uint8_t set1_to_set2(uint8_t set1)
{
	for (unsigned i = sizeof(set2_to_set1); i-- > 1;)
		if (set2_to_set1[i] == set1)
			return (uint8_t)i;
	return 0;
}

/* Queues ---------------------------------------------------------------- */

bool ps2_queue_empty(const struct ps2_queue *q)
{
	return !q->ev_count && !q->reply_count;
}

bool ps2_queue_pop(struct ps2_queue *q, uint8_t *byte)
{
	if (q->reply_count) {
		*byte = q->reply[q->reply_head];
		q->reply_head = (q->reply_head + 1) % PS2_REPLY_SIZE;
		q->reply_count--;
		return true;
	}
	if (!q->ev_count)
		return false;
	*byte = q->ev[q->ev_head];
	q->ev_head = (q->ev_head + 1) % PS2_QUEUE_SIZE;
	q->ev_count--;
	return true;
}

static void queue_clear(struct ps2_queue *q)
{
	memset(q, 0, sizeof(*q));
}

/* A command reply; a guest writing commands faster than it reads loses the excess. */
static void reply(struct ps2_queue *q, uint8_t b)
{
	if (q->reply_count == PS2_REPLY_SIZE)
		return;
	q->reply[(q->reply_head + q->reply_count++) % PS2_REPLY_SIZE] = b;
}

static unsigned ev_room(const struct ps2_queue *q)
{
	return PS2_QUEUE_SIZE - q->ev_count;
}

static void event(struct ps2_queue *q, uint8_t b)
{
	if (!ev_room(q))
		return;		/* a full queue drops events, as QEMU's */
	q->ev[(q->ev_head + q->ev_count++) % PS2_QUEUE_SIZE] = b;
}

/* Keyboard -------------------------------------------------------------- */

#define KBD_CMD_SET_LEDS 0xed
#define KBD_CMD_ECHO 0xee
#define KBD_CMD_SCANCODE 0xf0
#define KBD_CMD_GET_ID 0xf2
#define KBD_CMD_SET_RATE 0xf3
#define KBD_CMD_ENABLE 0xf4
#define KBD_CMD_RESET_DISABLE 0xf5
#define KBD_CMD_RESET_ENABLE 0xf6
#define KBD_CMD_SET_TYPEMATIC 0xfa
#define KBD_CMD_SET_MAKE_BREAK 0xfc
#define KBD_CMD_RESET 0xff

static void kbd_defaults(struct ps2_kbd *k)
{
	queue_clear(&k->q);
	k->write_cmd = -1;
	k->scan_enabled = true;
	k->set = 2;
	k->leds = 0;
	k->mods = 0;
	k->need_high_bit = false;
}

void ps2_kbd_reset(struct ps2_kbd *k)
{
	kbd_defaults(k);
	k->translate = false;
}

void ps2_kbd_set_translation(struct ps2_kbd *k, bool on)
{
	k->translate = on;
}

static void kbd_command(struct ps2_kbd *k, uint8_t val)
{
	switch (val) {
	case 0x00:
		reply(&k->q, PS2_ACK);
		break;
	case 0x05:
		reply(&k->q, PS2_RESEND);
		break;
	case KBD_CMD_GET_ID:
		/* 0x83 untranslated; the controller turns it into 0x41 (QEMU sends that). */
		reply(&k->q, PS2_ACK);
		reply(&k->q, PS2_KBD_ID);
		reply(&k->q, k->translate ? 0x41 : 0x83);
		break;
	case KBD_CMD_ECHO:
		reply(&k->q, KBD_CMD_ECHO);
		break;
	case KBD_CMD_ENABLE:
		k->scan_enabled = true;
		reply(&k->q, PS2_ACK);
		break;
	case KBD_CMD_SCANCODE:
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_SET_RATE:
	case KBD_CMD_SET_MAKE_BREAK:
		k->write_cmd = val;
		reply(&k->q, PS2_ACK);
		break;
	case KBD_CMD_RESET_DISABLE:
	case KBD_CMD_RESET_ENABLE:
		kbd_defaults(k);
		k->scan_enabled = val == KBD_CMD_RESET_ENABLE;
		reply(&k->q, PS2_ACK);
		break;
	case KBD_CMD_RESET:
		kbd_defaults(k);
		reply(&k->q, PS2_ACK);
		reply(&k->q, PS2_POR);
		break;
	case KBD_CMD_SET_TYPEMATIC:
		reply(&k->q, PS2_ACK);
		break;
	default:
		reply(&k->q, PS2_RESEND);
		break;
	}
}

void ps2_kbd_write(struct ps2_kbd *k, uint8_t val)
{
	int cmd = k->write_cmd;

	/* Replies the guest never read are dropped by its next command (QEMU's cqueue). */
	k->q.reply_count = 0;
	k->write_cmd = -1;
	switch (cmd) {
	case KBD_CMD_SCANCODE:
		if (val == 0) {
			/* "which set": the reply is the set's number, translated as any byte. */
			reply(&k->q, PS2_ACK);
			reply(&k->q, k->translate ? translate((uint8_t)k->set) : (uint8_t)k->set);
		} else if (val >= 1 && val <= 3) {
			k->set = val;
			reply(&k->q, PS2_ACK);
		} else {
			reply(&k->q, PS2_RESEND);
		}
		return;
	case KBD_CMD_SET_LEDS:
		k->leds = val & 0x07;
		reply(&k->q, PS2_ACK);
		return;
	case KBD_CMD_SET_RATE:
	case KBD_CMD_SET_MAKE_BREAK:
		reply(&k->q, PS2_ACK);
		return;
	default:
		kbd_command(k, val);
	}
}

/* One byte the keyboard sends, through the controller's translation when on. */
static void kbd_put(struct ps2_kbd *k, uint8_t b)
{
	if (!k->translate) {
		event(&k->q, b);
	} else if (b == 0xf0) {
		k->need_high_bit = true;	/* set 1 marks a break in the code itself */
	} else if (k->need_high_bit) {
		event(&k->q, translate(b) | 0x80);
		k->need_high_bit = false;
	} else {
		event(&k->q, translate(b));
	}
}

static void kbd_put_all(struct ps2_kbd *k, const uint8_t *b, unsigned n)
{
	/* A key's bytes go whole or not at all: half a sequence would confuse the guest. */
	if (ev_room(&k->q) < n)
		return;
	for (unsigned i = 0; i < n; i++)
		kbd_put(k, b[i]);
}

#define QNUM_PAUSE 0xc6
#define QNUM_PRINT 0xb7
#define QNUM_SYSRQ 0x54		/* QEMU takes this qnum for Print Screen too */

#define MOD_CTRL_L 0x01
#define MOD_SHIFT_L 0x02
#define MOD_ALT_L 0x04
#define MOD_CTRL_R 0x08
#define MOD_SHIFT_R 0x10
#define MOD_ALT_R 0x20

static uint8_t mod_bit(unsigned qnum)
{
	switch (qnum) {
	case 0x1d: return MOD_CTRL_L;
	case 0x2a: return MOD_SHIFT_L;
	case 0x38: return MOD_ALT_L;
	case 0x9d: return MOD_CTRL_R;
	case 0x36: return MOD_SHIFT_R;
	case 0xb8: return MOD_ALT_R;
	default: return 0;
	}
}

struct seq {
	uint8_t n, b[8];
};

/*
 * Pause and Print Screen send what a real keyboard sends for them, which
 * depends on the modifiers held (QEMU's ps2_keyboard_event): Ctrl+Pause is
 * Break, Alt+Print Screen is SysRq, Shift or Ctrl+Print Screen drop the fake
 * shift.  Index: [set 1 or 2][key][variant][down or up]; Pause has no break.
 */
enum { V_PLAIN, V_ALT_L, V_ALT_R, V_SHIFT_CTRL };
static const struct seq print_seq[2][4][2] = {
	{ /* set 1 */
		{ { 4, { 0xe0, 0x2a, 0xe0, 0x37 } }, { 4, { 0xe0, 0xb7, 0xe0, 0xaa } } },
		{ { 3, { 0xb8, 0x38, 0x54 } }, { 3, { 0xd4, 0xb8, 0x38 } } },
		{ { 5, { 0xe0, 0xb8, 0xe0, 0x38, 0x54 } }, { 5, { 0xd4, 0xe0, 0xb8, 0xe0, 0x38 } } },
		{ { 2, { 0xe0, 0x37 } }, { 2, { 0xe0, 0xb7 } } },
	},
	{ /* set 2 */
		{ { 4, { 0xe0, 0x12, 0xe0, 0x7c } }, { 6, { 0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12 } } },
		{ { 4, { 0xf0, 0x11, 0x11, 0x84 } }, { 5, { 0xf0, 0x84, 0xf0, 0x11, 0x11 } } },
		{ { 6, { 0xe0, 0xf0, 0x11, 0xe0, 0x11, 0x84 } },
		  { 7, { 0xf0, 0x84, 0xe0, 0xf0, 0x11, 0xe0, 0x11 } } },
		{ { 2, { 0xe0, 0x7c } }, { 3, { 0xe0, 0xf0, 0x7c } } },
	},
};
static const struct seq pause_seq[2][2] = {
	{ { 6, { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 } }, { 4, { 0xe0, 0x46, 0xe0, 0xc6 } } },
	{ { 8, { 0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77 } },
	  { 5, { 0xe0, 0x7e, 0xe0, 0xf0, 0x7e } } },
};

static void kbd_put_seq(struct ps2_kbd *k, const struct seq *s)
{
	kbd_put_all(k, s->b, s->n);
}

/* Pause or Print Screen in set 1 or 2; false for any other key. */
static bool kbd_special(struct ps2_kbd *k, unsigned qnum, bool down)
{
	unsigned set = k->set == 1 ? 0 : 1, v;

	if (qnum == QNUM_PAUSE) {
		if (down)
			kbd_put_seq(k, &pause_seq[set][!!(k->mods & (MOD_CTRL_L | MOD_CTRL_R))]);
		return true;
	}
	if (qnum != QNUM_PRINT && qnum != QNUM_SYSRQ)
		return false;
	if (k->mods & MOD_ALT_L)
		v = V_ALT_L;
	else if (k->mods & MOD_ALT_R)
		v = V_ALT_R;
	else if (k->mods & (MOD_SHIFT_L | MOD_CTRL_L | MOD_SHIFT_R | MOD_CTRL_R))
		v = V_SHIFT_CTRL;
	else
		v = V_PLAIN;
	kbd_put_seq(k, &print_seq[set][v][!down]);
	return true;
}

static void kbd_key_set1(struct ps2_kbd *k, unsigned qnum, bool down)
{
	uint8_t b[2];
	unsigned n = 0;

	if (qnum & 0x80)
		b[n++] = 0xe0;
	b[n++] = (uint8_t)((qnum & 0x7f) | (down ? 0 : 0x80));
	kbd_put_all(k, b, n);
}

/* Set 2, and set 3 approximated as set 2's codes without the 0xe0 prefix. */
static void kbd_key_set2(struct ps2_kbd *k, unsigned qnum, bool down)
{
	uint8_t code = set1_to_set2(qnum & 0x7f), b[3];
	unsigned n = 0;

	if (!code)
		return;		/* no such key on an AT keyboard */
	if ((qnum & 0x80) && k->set == 2)
		b[n++] = 0xe0;
	if (!down)
		b[n++] = 0xf0;
	b[n++] = code;
	kbd_put_all(k, b, n);
}

/*
 * Keys QEMU's keyboard has no AT scancode for (its qcode_to_atset tables):
 * menu, again, props, undo, front, copy, open, paste, find, cut, lf, help,
 * lang1, lang2.  It drops them, and so does this one.
 */
static bool no_at_code(unsigned qnum)
{
	static const uint8_t none[] = { 0x9e, 0x85, 0x86, 0x87, 0x8c, 0xf8, 0x64, 0x65, 0xc1,
					0xbc, 0x5b, 0xf5, 0x72, 0x71 };

	return memchr(none, (int)qnum, sizeof(none)) != NULL;
}

void ps2_kbd_key(struct ps2_kbd *k, unsigned qnum, bool down)
{
	uint8_t mod = mod_bit(qnum);

	/* A qnum reaches a key as in QEMU, through its QKeyCode: none, nothing. */
	if (!k->scan_enabled || qnum == 0 || qnum > 0xff || !keycodes_name(qnum) ||
	    no_at_code(qnum))
		return;
	k->mods = down ? k->mods | mod : k->mods & ~mod;
	if (k->set != 3 && kbd_special(k, qnum, down))
		return;
	if (k->set == 1)
		kbd_key_set1(k, qnum, down);
	else
		kbd_key_set2(k, qnum, down);
}

/* Mouse ----------------------------------------------------------------- */

#define AUX_SET_SCALE11 0xe6
#define AUX_SET_SCALE21 0xe7
#define AUX_SET_RES 0xe8
#define AUX_GET_SCALE 0xe9
#define AUX_SET_STREAM 0xea
#define AUX_POLL 0xeb
#define AUX_RESET_WRAP 0xec
#define AUX_SET_WRAP 0xee
#define AUX_SET_REMOTE 0xf0
#define AUX_GET_TYPE 0xf2
#define AUX_SET_SAMPLE 0xf3
#define AUX_ENABLE_DEV 0xf4
#define AUX_DISABLE_DEV 0xf5
#define AUX_SET_DEFAULT 0xf6
#define AUX_RESET 0xff

static void mouse_defaults(struct ps2_mouse *m)
{
	m->sample_rate = 100;
	m->resolution = 2;
	m->status = 0;
}

void ps2_mouse_reset(struct ps2_mouse *m)
{
	memset(m, 0, sizeof(*m));
	m->write_cmd = -1;
	mouse_defaults(m);
}

static int clamp(int v, int lim)
{
	return v > lim ? lim : v < -lim ? -lim : v;
}

/*
 * One movement packet: byte 0 holds the buttons, bit 3 (always 1) and the
 * X/Y sign bits (4, 5); bytes 1 and 2 the low 8 bits of the 9-bit deltas,
 * which this packet carries up to +-PS2_MOUSE_MAX_DELTA of, leaving the rest
 * for the next (so the overflow bits 6 and 7 are never needed).  The IntelliMouse adds the
 * wheel as a byte, the Explorer as 4 bits with buttons 4 and 5.  PS/2 Y runs
 * up, the screen's down.  False when the queue has no room for it.
 */
static bool mouse_send_packet(struct ps2_mouse *m)
{
	unsigned need = m->type ? 4 : 3;
	int dx = clamp(m->dx, PS2_MOUSE_MAX_DELTA), dy = clamp(m->dy, PS2_MOUSE_MAX_DELTA), dz;

	if (ev_room(&m->q) < need)
		return false;
	event(&m->q, (uint8_t)(0x08 | (dx < 0) << 4 | (dy < 0) << 5 | (m->buttons & 0x07)));
	event(&m->q, (uint8_t)dx);
	event(&m->q, (uint8_t)dy);
	dz = m->dz;	/* a plain PS/2 mouse has no wheel: its motion is dropped */
	if (m->type == 3) {
		dz = clamp(m->dz, 127);
		event(&m->q, (uint8_t)dz);
	} else if (m->type == 4) {
		dz = clamp(m->dz, 7);
		event(&m->q, (uint8_t)((dz & 0x0f) | (m->buttons & 0x18) << 1));
	}
	m->dx -= dx;
	m->dy -= dy;
	m->dz -= dz;
	return true;
}

static void mouse_sample_rate(struct ps2_mouse *m, uint8_t val)
{
	m->sample_rate = val;
	/* The knocks: 200,100,80 makes an IntelliMouse, 200,200,80 an Explorer. */
	switch (m->detect) {
	case 0:
		m->detect = val == 200 ? 1 : 0;
		break;
	case 1:
		m->detect = val == 100 ? 2 : val == 200 ? 3 : 0;
		break;
	case 2:
		if (val == 80)
			m->type = 3;
		m->detect = 0;
		break;
	case 3:
		if (val == 80)
			m->type = 4;
		m->detect = 0;
		break;
	}
}

static void mouse_command(struct ps2_mouse *m, uint8_t val)
{
	switch (val) {
	case AUX_SET_SCALE11:
		m->status &= ~PS2_MOUSE_STATUS_SCALE21;
		break;
	case AUX_SET_SCALE21:
		m->status |= PS2_MOUSE_STATUS_SCALE21;
		break;
	case AUX_SET_STREAM:
		m->status &= ~PS2_MOUSE_STATUS_REMOTE;
		break;
	case AUX_SET_WRAP:
		m->wrap = true;
		break;
	case AUX_SET_REMOTE:
		m->status |= PS2_MOUSE_STATUS_REMOTE;
		break;
	case AUX_GET_TYPE:
		reply(&m->q, PS2_ACK);
		reply(&m->q, m->type);
		return;
	case AUX_SET_RES:
	case AUX_SET_SAMPLE:
		m->write_cmd = val;
		break;
	case AUX_GET_SCALE:
		reply(&m->q, PS2_ACK);
		reply(&m->q, m->status | (m->buttons & 0x07));
		reply(&m->q, m->resolution);
		reply(&m->q, m->sample_rate);
		return;
	case AUX_POLL:
		reply(&m->q, PS2_ACK);
		mouse_send_packet(m);
		return;
	case AUX_ENABLE_DEV:
		m->status |= PS2_MOUSE_STATUS_ENABLED;
		break;
	case AUX_DISABLE_DEV:
		m->status &= ~PS2_MOUSE_STATUS_ENABLED;
		break;
	case AUX_SET_DEFAULT:
		mouse_defaults(m);
		break;
	case AUX_RESET:
		queue_clear(&m->q);
		mouse_defaults(m);
		m->type = 0;
		m->wrap = false;
		m->dx = m->dy = m->dz = 0;
		reply(&m->q, PS2_ACK);
		reply(&m->q, PS2_POR);
		reply(&m->q, m->type);
		return;
	default:
		reply(&m->q, PS2_RESEND);
		return;
	}
	reply(&m->q, PS2_ACK);
}

void ps2_mouse_write(struct ps2_mouse *m, uint8_t val)
{
	int cmd = m->write_cmd;

	m->write_cmd = -1;
	if (cmd == AUX_SET_SAMPLE) {
		mouse_sample_rate(m, val);
		reply(&m->q, PS2_ACK);
		return;
	}
	if (cmd == AUX_SET_RES) {
		m->resolution = val;
		reply(&m->q, PS2_ACK);
		return;
	}
	if (m->wrap) {
		/* Wrap (echo) mode: every byte comes back but these two. */
		if (val == AUX_RESET_WRAP) {
			m->wrap = false;
			reply(&m->q, PS2_ACK);
			return;
		}
		if (val != AUX_RESET) {
			reply(&m->q, val);
			return;
		}
	}
	mouse_command(m, val);
}

static uint8_t ps2_buttons(unsigned b)
{
	return (uint8_t)(((b & INPUT_BTN_LEFT) ? 0x01 : 0) | ((b & INPUT_BTN_RIGHT) ? 0x02 : 0) |
			 ((b & INPUT_BTN_MIDDLE) ? 0x04 : 0) | ((b & INPUT_BTN_SIDE) ? 0x08 : 0) |
			 ((b & INPUT_BTN_EXTRA) ? 0x10 : 0));
}

/* Deltas past what fits in int are clamped: a hostile sender cannot overflow them. */
static int add_clamped(int acc, int d)
{
	long long v = (long long)acc + d;

	return v > 1 << 24 ? 1 << 24 : v < -(1 << 24) ? -(1 << 24) : (int)v;
}

void ps2_mouse_event(struct ps2_mouse *m, int dx, int dy, int dz, unsigned buttons)
{
	uint8_t b = ps2_buttons(buttons);

	if (!(m->status & PS2_MOUSE_STATUS_ENABLED))
		return;		/* a disabled mouse reports nothing (QEMU) */
	m->dx = add_clamped(m->dx, dx);
	m->dy = add_clamped(m->dy, -dy);
	m->dz = add_clamped(m->dz, dz);
	m->buttons = b;
	if (m->status & PS2_MOUSE_STATUS_REMOTE)
		return;		/* remote mode: the guest polls (0xeb) */
	/*
	 * Stream mode: as many packets as the motion needs, while the queue has
	 * room; at least one per event, even a still one (QEMU's sync does that).
	 */
	while (mouse_send_packet(m))
		if (!m->dx && !m->dy && !m->dz)
			break;
}
