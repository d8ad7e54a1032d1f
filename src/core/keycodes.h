/*
 * QEMU's key names (qapi/ui.json QKeyCode, as HMP sendkey and QMP send-key
 * take them) and their "qnum" numbers (core/input.h: the XT scancode, 0xe0
 * keys as 0x80 | code), QEMU 7.2's qcode_to_qnum map.
 */
#ifndef KESTREL_CORE_KEYCODES_H
#define KESTREL_CORE_KEYCODES_H

#include <stddef.h>

/* The qnum of a QKeyCode name; -1: no such name.  len: the name's length. */
int keycodes_qnum(const char *name, size_t len);
/* Whether name is a QKeyCode value ("unmapped" is one, with qnum 0). */
int keycodes_is_qcode(const char *name, size_t len);
/* The QKeyCode name of a qnum (the first in QKeyCode order); NULL: none. */
const char *keycodes_name(unsigned qnum);

#endif
