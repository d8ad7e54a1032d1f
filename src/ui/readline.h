/*
 * Line editing for the human monitor, with the keys QEMU's monitor (and bash)
 * users expect: arrows, Home/End, Ctrl-A/E/B/F/K/U/W, backspace, delete, and a
 * history under up/down.  Output (echo, redraws) goes through a callback.
 */
#ifndef KESTREL_UI_READLINE_H
#define KESTREL_UI_READLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define READLINE_MAX 1024
#define READLINE_HISTORY 64

struct readline {
	char buf[READLINE_MAX];
	size_t len, pos;
	char *history[READLINE_HISTORY];	/* oldest first */
	unsigned nr_history;
	unsigned browse;	/* history index while browsing; nr_history when not */
	int esc_state;		/* 0 normal, 1 after ESC, 2 inside "ESC [" or "ESC O" */
	unsigned esc_param;
	const char *prompt;
	void (*write)(void *opaque, const char *text, size_t len);
	void *opaque;
};

void readline_init(struct readline *rl, const char *prompt,
		   void (*write)(void *opaque, const char *text, size_t len), void *opaque);
void readline_free(struct readline *rl);

/* Prints the prompt and the line being edited. */
void readline_show_prompt(struct readline *rl);

/*
 * Feeds one byte.  Returns true when Enter completed a line, copied to line
 * (NUL-terminated, at most size - 1 bytes) and added to the history.
 */
bool readline_feed(struct readline *rl, uint8_t byte, char *line, size_t size);

#endif
