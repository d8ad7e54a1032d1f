/*
 * The host terminal under -nographic: raw mode while the VM runs, restored on
 * every way out (normal exit, exit(), fatal signals).
 */
#ifndef KESTREL_UI_TERM_H
#define KESTREL_UI_TERM_H

#include <stdbool.h>

/*
 * Puts fd (a terminal) into raw mode, keeping ISIG (Ctrl-C raises SIGINT)
 * when signals; a no-op returning 0 when fd is not a tty.
 */
int term_raw_enter(int fd, bool signals);

/* Restores the saved settings; async-signal-safe, safe to call more than once. */
void term_restore(void);

#endif
