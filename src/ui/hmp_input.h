/* HMP input commands (hmp_input.c): sendkey, mouse_move, mouse_button, info mice. */
#ifndef KESTREL_UI_HMP_INPUT_H
#define KESTREL_UI_HMP_INPUT_H

#include <stddef.h>
#include <stdio.h>

#include "ui/control.h"

#define HMP_SENDKEY_MAX 64

/*
 * Parses sendkey's KEYS ("ctrl-alt-delete", "0x1e", "<"): qnums out, how
 * many in *n; -1 with the offending name (QEMU's "invalid parameter: %s")
 * in bad.
 */
int hmp_parse_keys(const char *keys, unsigned *qnums, unsigned max, unsigned *n, char *bad,
		   size_t badlen);

int hmp_sendkey(const struct control *ctl, int argc, char **argv, FILE *out);
int hmp_mouse_move(const struct control *ctl, int argc, char **argv, FILE *out);
int hmp_mouse_button(const struct control *ctl, int argc, char **argv, FILE *out);
int hmp_info_mice(const struct control *ctl, FILE *out);

#endif
