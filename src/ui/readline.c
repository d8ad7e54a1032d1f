#include "ui/readline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTRL(c) ((c) & 0x1f)
#define ESC 0x1b
#define DEL 0x7f

void readline_init(struct readline *rl, const char *prompt,
		   void (*write)(void *opaque, const char *text, size_t len), void *opaque)
{
	memset(rl, 0, sizeof(*rl));
	rl->prompt = prompt;
	rl->write = write;
	rl->opaque = opaque;
}

void readline_free(struct readline *rl)
{
	for (unsigned i = 0; i < rl->nr_history; i++)
		free(rl->history[i]);
	rl->nr_history = 0;
}

static void out(struct readline *rl, const char *text)
{
	rl->write(rl->opaque, text, strlen(text));
}

/* Redraws the whole line and puts the cursor back: simple and always right. */
static void redraw(struct readline *rl)
{
	char seq[32];

	out(rl, "\r");
	out(rl, rl->prompt);
	rl->write(rl->opaque, rl->buf, rl->len);
	out(rl, "\033[K");
	if (rl->len > rl->pos) {
		snprintf(seq, sizeof(seq), "\033[%zuD", rl->len - rl->pos);
		out(rl, seq);
	}
}

void readline_show_prompt(struct readline *rl)
{
	out(rl, rl->prompt);
	rl->write(rl->opaque, rl->buf, rl->len);
}

static void set_text(struct readline *rl, const char *text)
{
	size_t n = strlen(text);

	if (n >= sizeof(rl->buf))
		n = sizeof(rl->buf) - 1;
	memcpy(rl->buf, text, n);
	rl->len = rl->pos = n;
	redraw(rl);
}

static void insert(struct readline *rl, char c)
{
	if (rl->len + 1 >= sizeof(rl->buf))
		return;
	memmove(rl->buf + rl->pos + 1, rl->buf + rl->pos, rl->len - rl->pos);
	rl->buf[rl->pos++] = c;
	rl->len++;
	if (rl->pos == rl->len)
		rl->write(rl->opaque, &c, 1);	/* the common case: typing at the end */
	else
		redraw(rl);
}

static void erase(struct readline *rl, size_t from, size_t to)
{
	memmove(rl->buf + from, rl->buf + to, rl->len - to);
	rl->len -= to - from;
	rl->pos = from;
	redraw(rl);
}

static void history_add(struct readline *rl, const char *line)
{
	if (!*line || (rl->nr_history && strcmp(rl->history[rl->nr_history - 1], line) == 0))
		return;
	char *copy = strdup(line);
	if (!copy)
		return;
	if (rl->nr_history == READLINE_HISTORY) {
		free(rl->history[0]);
		memmove(rl->history, rl->history + 1, (READLINE_HISTORY - 1) * sizeof(char *));
		rl->nr_history--;
	}
	rl->history[rl->nr_history++] = copy;
}

static void history_move(struct readline *rl, int step)
{
	if (step < 0 && rl->browse > 0)
		rl->browse--;
	else if (step > 0 && rl->browse < rl->nr_history)
		rl->browse++;
	else
		return;
	set_text(rl, rl->browse < rl->nr_history ? rl->history[rl->browse] : "");
}

static size_t word_start(const struct readline *rl)
{
	size_t p = rl->pos;

	while (p > 0 && rl->buf[p - 1] == ' ')
		p--;
	while (p > 0 && rl->buf[p - 1] != ' ')
		p--;
	return p;
}

/* The final byte of "ESC [ n X" / "ESC O X" sequences (VT100/xterm keys). */
static void escape_key(struct readline *rl, uint8_t key, unsigned param)
{
	switch (key) {
	case 'A': history_move(rl, -1); break;
	case 'B': history_move(rl, +1); break;
	case 'C': if (rl->pos < rl->len) { rl->pos++; out(rl, "\033[C"); } break;
	case 'D': if (rl->pos > 0) { rl->pos--; out(rl, "\033[D"); } break;
	case 'H': rl->pos = 0; redraw(rl); break;
	case 'F': rl->pos = rl->len; redraw(rl); break;
	case '~':
		if (param == 1 || param == 7) {			/* Home */
			rl->pos = 0;
			redraw(rl);
		} else if (param == 4 || param == 8) {		/* End */
			rl->pos = rl->len;
			redraw(rl);
		} else if (param == 3 && rl->pos < rl->len) {	/* Delete */
			erase(rl, rl->pos, rl->pos + 1);
		}
		break;
	default:
		break;
	}
}

bool readline_feed(struct readline *rl, uint8_t c, char *line, size_t size)
{
	if (rl->esc_state == 1) {
		rl->esc_state = (c == '[' || c == 'O') ? 2 : 0;
		rl->esc_param = 0;
		return false;
	}
	if (rl->esc_state == 2) {
		if (c >= '0' && c <= '9') {
			rl->esc_param = rl->esc_param * 10 + (unsigned)(c - '0');
			return false;
		}
		rl->esc_state = 0;
		escape_key(rl, c, rl->esc_param);
		return false;
	}
	switch (c) {
	case '\r':
	case '\n':
		out(rl, "\r\n");
		rl->buf[rl->len] = '\0';
		snprintf(line, size, "%s", rl->buf);
		history_add(rl, rl->buf);
		rl->len = rl->pos = 0;
		rl->browse = rl->nr_history;
		return true;
	case ESC:
		rl->esc_state = 1;
		break;
	case DEL:
	case CTRL('h'):
		if (rl->pos > 0)
			erase(rl, rl->pos - 1, rl->pos);
		break;
	case CTRL('d'):
		if (rl->pos < rl->len)
			erase(rl, rl->pos, rl->pos + 1);
		break;
	case CTRL('a'):
		rl->pos = 0;
		redraw(rl);
		break;
	case CTRL('e'):
		rl->pos = rl->len;
		redraw(rl);
		break;
	case CTRL('b'):
		escape_key(rl, 'D', 0);
		break;
	case CTRL('f'):
		escape_key(rl, 'C', 0);
		break;
	case CTRL('p'):
		history_move(rl, -1);
		break;
	case CTRL('n'):
		history_move(rl, +1);
		break;
	case CTRL('k'):
		rl->len = rl->pos;
		redraw(rl);
		break;
	case CTRL('u'):
		erase(rl, 0, rl->pos);
		break;
	case CTRL('w'):
		erase(rl, word_start(rl), rl->pos);
		break;
	default:
		if (c >= 0x20 && c < 0x7f)
			insert(rl, (char)c);
		break;
	}
	return false;
}
