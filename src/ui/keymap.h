/*
 * X11 keysyms (what a VNC client sends, RFB 6.4.4) to qnum key numbers
 * (core/input.h) for -k layouts: the guest gets the key that carries that
 * symbol on its own keyboard of that layout, as QEMU's keymaps do.
 */
#ifndef KESTREL_UI_KEYMAP_H
#define KESTREL_UI_KEYMAP_H

#include <stdint.h>

enum keymap_layout { KEYMAP_EN_US, KEYMAP_DE, KEYMAP_FR, KEYMAP_JA, KEYMAP_COUNT };

/* -k LAYOUT: the layout's index, -1 for a layout Kestrel has no table for. */
int keymap_find(const char *name);
const char *keymap_name(int layout);
/* The key carrying keysym on layout; 0 when no key does. */
unsigned keymap_qnum(int layout, uint32_t keysym);

#endif
