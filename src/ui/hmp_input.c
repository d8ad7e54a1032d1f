/* HMP input commands (hmp_input.h), with QEMU 7.2's messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/input.h"
#include "core/keycodes.h"
#include "ui/hmp_input.h"

/* QEMU's monitor ends lines "\r\n". */
__attribute__((format(printf, 2, 3)))
static void put(FILE *out, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (const char *p = buf; *p; p++) {
		if (*p == '\n')
			fputc('\r', out);
		fputc(*p, out);
	}
}

/* An argument error as QEMU's HMP argument parser words it. */
static int usage(FILE *out, const char *cmd, const char *msg)
{
	put(out, "%s\nTry \"help %s\" for more information\n", msg, cmd);
	return -1;
}

int hmp_parse_keys(const char *keys, unsigned *qnums, unsigned max, unsigned *n, char *bad,
		   size_t badlen)
{
	*n = 0;
	for (;;) {
		const char *sep = strchr(keys, '-');
		size_t len = sep ? (size_t)(sep - keys) : strlen(keys);
		const char *name = keys;
		int qnum;

		if (len == 1 && keys[0] == '<') {	/* the old interface's "<" */
			name = "less";
			len = 4;
		}
		if (!strncmp(name, "0x", 2)) {
			char *end;
			unsigned long v;

			v = strtoul(name, &end, 0);
			/* As QEMU: a number reaches the guest through its key; none, nothing. */
			qnum = end == name + len ? (v <= 0xff && keycodes_name((unsigned)v) ?
						    (int)v : 0) : -1;
		} else {
			qnum = keycodes_qnum(name, len);
		}
		if (qnum < 0 || *n == max) {
			snprintf(bad, badlen, "%.*s", (int)len, name);
			return -1;
		}
		qnums[(*n)++] = (unsigned)qnum;
		if (!sep)
			return 0;
		keys = sep + 1;
	}
}

static bool running(const struct control *ctl)
{
	return !ctl->run_state || ctl->run_state(ctl->opaque) == RUN_STATE_RUNNING;
}

/* HMP's 'i' argument: an integer expression, here a plain number; 0 or -1 (reported). */
static int parse_int(FILE *out, const char *cmd, const char *arg, long long *v)
{
	char msg[64], *end;

	if (!(arg[0] >= '0' && arg[0] <= '9') && arg[0] != '-') {
		snprintf(msg, sizeof(msg), "invalid char '%c' in expression", arg[0]);
		return usage(out, cmd, msg);
	}
	errno = 0;
	*v = strtoll(arg, &end, 0);
	if (*end) {
		snprintf(msg, sizeof(msg), "invalid char '%c' in expression", *end);
		return usage(out, cmd, msg);
	}
	return 0;
}

int hmp_sendkey(const struct control *ctl, int argc, char **argv, FILE *out)
{
	unsigned qnums[HMP_SENDKEY_MAX], n, hold_ms = 10;	/* QEMU's keyboard delay */
	char bad[64], msg[96];
	long long hold;

	if (argc < 2)
		return usage(out, "sendkey", "sendkey: string expected");
	if (argc > 3)
		return usage(out, "sendkey", "sendkey: extraneous characters at the end of line");
	if (argc == 3) {
		if (parse_int(out, "sendkey", argv[2], &hold) < 0)
			return -1;
		if (hold < 0 || hold > 0xffffffffLL || errno) {
			snprintf(msg, sizeof(msg), "'sendkey' has failed: integer is for 32-bit values");
			return usage(out, "sendkey", msg);
		}
		hold_ms = (unsigned)hold;
	}
	if (hmp_parse_keys(argv[1], qnums, HMP_SENDKEY_MAX, &n, bad, sizeof(bad)) < 0) {
		put(out, "invalid parameter: %s\n", bad);
		return -1;
	}
	/* QEMU drops input while the VM is stopped; so do we. */
	if (!ctl->input || !running(ctl))
		return 0;
	if (ctl->send_keys) {
		ctl->send_keys(ctl->opaque, qnums, n, hold_ms);
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		input_key(ctl->input, qnums[i], true);
	for (unsigned i = n; i-- > 0;)
		input_key(ctl->input, qnums[i], false);
	return 0;
}

static unsigned held_buttons(struct input *in)
{
	unsigned b;

	pthread_mutex_lock(&in->lock);
	b = in->buttons;
	pthread_mutex_unlock(&in->lock);
	return b;
}

/* mouse_move DX DY [DZ]: numbers as strtol reads them (QEMU: no error for junk, it is 0). */
int hmp_mouse_move(const struct control *ctl, int argc, char **argv, FILE *out)
{
	int dx, dy, dz = 0;

	if (argc < 3)
		return usage(out, "mouse_move", "mouse_move: string expected");
	if (argc > 4)
		return usage(out, "mouse_move", "mouse_move: extraneous characters at the end of line");
	dx = (int)strtol(argv[1], NULL, 0);
	dy = (int)strtol(argv[2], NULL, 0);
	/* A DZ is one wheel click whatever its size: positive up (QEMU's wheel-up). */
	if (argc == 4) {
		long z = strtol(argv[3], NULL, 0);
		dz = z > 0 ? -1 : z < 0 ? 1 : 0;
	}
	if (!ctl->input || !running(ctl))
		return 0;
	input_pointer_rel(ctl->input, dx, dy, dz, held_buttons(ctl->input));
	/* QEMU releases the wheel "button" in a second event: a second, still packet. */
	if (dz)
		input_pointer_rel(ctl->input, 0, 0, 0, held_buttons(ctl->input));
	return 0;
}

/*
 * mouse_button STATE: QEMU's help says 1=L 2=M 4=R, but its code maps bit 1
 * to the right button and bit 2 to the middle one (MOUSE_EVENT_RBUTTON is
 * 2); Kestrel does what QEMU does.
 */
int hmp_mouse_button(const struct control *ctl, int argc, char **argv, FILE *out)
{
	long long state;
	unsigned b;

	if (argc < 2)
		return usage(out, "mouse_button", "unexpected end of expression");
	if (argc > 2)
		return usage(out, "mouse_button",
			     "mouse_button: extraneous characters at the end of line");
	if (parse_int(out, "mouse_button", argv[1], &state) < 0)
		return -1;
	b = ((state & 1) ? INPUT_BTN_LEFT : 0) | ((state & 2) ? INPUT_BTN_RIGHT : 0) |
	    ((state & 4) ? INPUT_BTN_MIDDLE : 0);
	if (!ctl->input || !running(ctl))
		return 0;
	pthread_mutex_lock(&ctl->input->lock);
	bool same = ctl->input->buttons == b;
	ctl->input->buttons = b;
	pthread_mutex_unlock(&ctl->input->lock);
	if (!same)
		input_pointer_rel(ctl->input, 0, 0, 0, b);
	return 0;
}

int hmp_info_mice(const struct control *ctl, FILE *out)
{
	struct input_mouse_info mice[INPUT_MAX_HANDLERS];
	unsigned n = ctl->input ? input_mice(ctl->input, mice, INPUT_MAX_HANDLERS) : 0;

	if (!n)
		put(out, "No mouse devices connected\n");
	for (unsigned i = 0; i < n; i++)
		put(out, "%c Mouse #%d: %s%s\n", mice[i].current ? '*' : ' ', mice[i].index,
		    mice[i].name, mice[i].absolute ? " (absolute)" : "");
	return 0;
}
