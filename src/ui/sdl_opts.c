/*
 * -display sdl's options as QEMU 7.2 parses them (qapi/ui.json DisplayOptions
 * and DisplaySDL, through keyval), the window title, and the SDL scancode ->
 * qnum table.  Built with or without libsdl2.
 */
#include <stdio.h>
#include <string.h>

#include "ui/sdl.h"

void sdl_defaults(struct sdl_options *o)
{
	memset(o, 0, sizeof(*o));
	o->grab_mod = SDL_GRAB_LCTRL_LALT;
	o->window_close = true;
}

/* keyval's boolean words (util/qemu-option.c parse_option_bool). */
static int parse_bool(const char *key, const char *val, bool *out, char *err, size_t errlen)
{
	if (!strcmp(val, "on") || !strcmp(val, "yes") || !strcmp(val, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(val, "off") || !strcmp(val, "no") || !strcmp(val, "false")) {
		*out = false;
		return 0;
	}
	snprintf(err, errlen, "Parameter '%s' expects 'on' or 'off'", key);
	return -1;
}

/* QAPI HotKeyMod's names. */
static int parse_grab_mod(const char *val, struct sdl_options *o, char *err, size_t errlen)
{
	if (!strcmp(val, "lctrl-lalt"))
		o->grab_mod = SDL_GRAB_LCTRL_LALT;
	else if (!strcmp(val, "lshift-lctrl-lalt"))
		o->grab_mod = SDL_GRAB_LSHIFT_LCTRL_LALT;
	else if (!strcmp(val, "rctrl"))
		o->grab_mod = SDL_GRAB_RCTRL;
	else {
		snprintf(err, errlen, "Parameter 'grab-mod' does not accept value '%s'", val);
		return -1;
	}
	return 0;
}

static int parse_one(const char *key, const char *val, struct sdl_options *o, char *err,
		     size_t errlen)
{
	if (!strcmp(key, "grab-mod"))
		return parse_grab_mod(val, o, err, errlen);
	if (!strcmp(key, "window-close"))
		return parse_bool(key, val, &o->window_close, err, errlen);
	if (!strcmp(key, "full-screen"))
		return parse_bool(key, val, &o->full_screen, err, errlen);
	if (!strcmp(key, "show-cursor") || !strcmp(key, "gl")) {
		/* QEMU's own keys that this window does not do: refused, not ignored. */
		snprintf(err, errlen, "Parameter '%s' is not supported by Kestrel's SDL display", key);
		return -1;
	}
	snprintf(err, errlen, "Parameter '%s' is unexpected", key);
	return -1;
}

int sdl_parse(const char *opts, struct sdl_options *o, char *err, size_t errlen)
{
	char buf[256], *p, *next;

	if (strlen(opts) >= sizeof(buf)) {
		snprintf(err, errlen, "options too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", opts);
	for (p = buf; p && *p; p = next) {
		char *eq;

		if (*p == ',')
			p++;
		next = strchr(p, ',');
		if (next)
			*next = '\0';
		if (!*p) {
			snprintf(err, errlen, "Parameter '' is unexpected");
			return -1;
		}
		eq = strchr(p, '=');
		if (!eq) {
			snprintf(err, errlen, "Expected '=' after parameter '%s'", p);
			return -1;
		}
		*eq = '\0';
		if (parse_one(p, eq + 1, o, err, errlen) < 0)
			return -1;
		if (next)
			*next = ',';
	}
	return 0;
}

/* QEMU 7.2 ui/sdl2.c sdl_update_caption (one console, index 0). */
void sdl_title(const struct sdl_options *o, bool grabbed, char *buf, size_t len)
{
	static const char *const status[] = {
		[SDL_GRAB_LCTRL_LALT] = " - Press Ctrl-Alt-G to exit grab",
		[SDL_GRAB_LSHIFT_LCTRL_LALT] = " - Press Ctrl-Alt-Shift-G to exit grab",
		[SDL_GRAB_RCTRL] = " - Press Right-Ctrl-G to exit grab",
	};
	const char *st = grabbed ? status[o->grab_mod] : "";

	if (o->name[0])
		snprintf(buf, len, "QEMU (%s-0)%s", o->name, st);
	else
		snprintf(buf, len, "QEMU%s", st);
}

/*
 * SDL2's scancodes are USB HID keyboard usage IDs (HID Usage Tables 1.12,
 * §10 "Keyboard/Keypad Page"); each maps to the key's XT set-1 make code,
 * 0x80 | code for the 0xe0-prefixed ones (core/input.h).
 */
static const unsigned char hid_to_qnum[256] = {
	/* 0x04 a..z */
	[0x04] = 0x1e, [0x05] = 0x30, [0x06] = 0x2e, [0x07] = 0x20, [0x08] = 0x12,
	[0x09] = 0x21, [0x0a] = 0x22, [0x0b] = 0x23, [0x0c] = 0x17, [0x0d] = 0x24,
	[0x0e] = 0x25, [0x0f] = 0x26, [0x10] = 0x32, [0x11] = 0x31, [0x12] = 0x18,
	[0x13] = 0x19, [0x14] = 0x10, [0x15] = 0x13, [0x16] = 0x1f, [0x17] = 0x14,
	[0x18] = 0x16, [0x19] = 0x2f, [0x1a] = 0x11, [0x1b] = 0x2d, [0x1c] = 0x15,
	[0x1d] = 0x2c,
	/* 0x1e 1..9, 0 */
	[0x1e] = 0x02, [0x1f] = 0x03, [0x20] = 0x04, [0x21] = 0x05, [0x22] = 0x06,
	[0x23] = 0x07, [0x24] = 0x08, [0x25] = 0x09, [0x26] = 0x0a, [0x27] = 0x0b,
	/* Return Escape Backspace Tab Space - = [ ] \ (Non-US #) ; ' ` , . / CapsLock */
	[0x28] = 0x1c, [0x29] = 0x01, [0x2a] = 0x0e, [0x2b] = 0x0f, [0x2c] = 0x39,
	[0x2d] = 0x0c, [0x2e] = 0x0d, [0x2f] = 0x1a, [0x30] = 0x1b, [0x31] = 0x2b,
	[0x32] = 0x2b, [0x33] = 0x27, [0x34] = 0x28, [0x35] = 0x29, [0x36] = 0x33,
	[0x37] = 0x34, [0x38] = 0x35, [0x39] = 0x3a,
	/* F1..F12 */
	[0x3a] = 0x3b, [0x3b] = 0x3c, [0x3c] = 0x3d, [0x3d] = 0x3e, [0x3e] = 0x3f,
	[0x3f] = 0x40, [0x40] = 0x41, [0x41] = 0x42, [0x42] = 0x43, [0x43] = 0x44,
	[0x44] = 0x57, [0x45] = 0x58,
	/* PrintScreen ScrollLock Pause Insert Home PageUp Delete End PageDown
	 * Right Left Down Up */
	[0x46] = 0xb7, [0x47] = 0x46, [0x48] = 0xc6, [0x49] = 0xd2, [0x4a] = 0xc7,
	[0x4b] = 0xc9, [0x4c] = 0xd3, [0x4d] = 0xcf, [0x4e] = 0xd1, [0x4f] = 0xcd,
	[0x50] = 0xcb, [0x51] = 0xd0, [0x52] = 0xc8,
	/* NumLock, keypad / * - + Enter 1..9 0 . */
	[0x53] = 0x45, [0x54] = 0xb5, [0x55] = 0x37, [0x56] = 0x4a, [0x57] = 0x4e,
	[0x58] = 0x9c, [0x59] = 0x4f, [0x5a] = 0x50, [0x5b] = 0x51, [0x5c] = 0x4b,
	[0x5d] = 0x4c, [0x5e] = 0x4d, [0x5f] = 0x47, [0x60] = 0x48, [0x61] = 0x49,
	[0x62] = 0x52, [0x63] = 0x53,
	/* Non-US \ (102nd key), Application (Menu), Power, keypad = */
	[0x64] = 0x56, [0x65] = 0xdd, [0x66] = 0xde, [0x67] = 0x59,
	/* F13..F15 */
	[0x68] = 0x5d, [0x69] = 0x5e, [0x6a] = 0x5f,
	/* Mute VolumeUp VolumeDown */
	[0x7f] = 0xa0, [0x80] = 0xb0, [0x81] = 0xae,
	/* International1 (Ro), 2 (Katakana/Hiragana), 3 (Yen), 4 (Henkan), 5 (Muhenkan) */
	[0x87] = 0x73, [0x88] = 0x70, [0x89] = 0x7d, [0x8a] = 0x79, [0x8b] = 0x7b,
	/* LCtrl LShift LAlt LGUI RCtrl RShift RAlt RGUI */
	[0xe0] = 0x1d, [0xe1] = 0x2a, [0xe2] = 0x38, [0xe3] = 0xdb, [0xe4] = 0x9d,
	[0xe5] = 0x36, [0xe6] = 0xb8, [0xe7] = 0xdc,
};

unsigned sdl_scancode_to_qnum(unsigned scancode)
{
	return scancode < sizeof(hid_to_qnum) ? hid_to_qnum[scancode] : 0;
}
