/* The human monitor (QEMU's HMP): command lines in, QEMU-formatted text out. */
#ifndef KESTREL_UI_HMP_H
#define KESTREL_UI_HMP_H

#include <stdio.h>

#include "ui/control.h"

/*
 * Runs one command line (e.g. "info status") against ctl and writes its output,
 * lines ending "\r\n" as QEMU's monitor does, to out.  Returns 0, or -1 for an
 * unknown command or bad arguments (the message is written to out too).
 */
int hmp_run_line(const struct control *ctl, const char *line, FILE *out);

#endif
