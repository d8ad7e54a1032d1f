/*
 * The local SDL2 window (QEMU's -display sdl / -sdl) on the display surface
 * (core/display.h), with key and pointer events sent to core/input.h.
 * sdl_opts.c parses QEMU 7.2's option syntax and holds the scancode table
 * (always built, so a build without libsdl2 still names bad options); sdl.c
 * is the window on libsdl2.  Without libsdl2 sdl_built_in() is false and the
 * options say SDL is not built in.
 */
#ifndef KESTREL_UI_SDL_H
#define KESTREL_UI_SDL_H

#include <stdbool.h>
#include <stddef.h>

struct display;
struct input;

/* QAPI HotKeyMod: the modifiers that, pressed and released alone, toggle the grab. */
enum sdl_grab_mod {
	SDL_GRAB_LCTRL_LALT,		/* default: Ctrl+Alt */
	SDL_GRAB_LSHIFT_LCTRL_LALT,	/* -alt-grab: Ctrl+Alt+Shift */
	SDL_GRAB_RCTRL,			/* -ctrl-grab: right Ctrl */
};

struct sdl_options {
	enum sdl_grab_mod grab_mod;
	bool window_close;	/* false (-no-quit, window-close=off): closing the window does not quit */
	bool full_screen;
	char name[64];		/* -name: the title is "QEMU (name-0)", else "QEMU" */
};

/* Defaults: Ctrl+Alt, window-close=on, windowed. */
void sdl_defaults(struct sdl_options *o);
/*
 * Parses the ",key=value" options that follow "sdl" in -display sdl,...
 * (opts may be "" or start with ','), QEMU 7.2's DisplayOptions/DisplaySDL.
 * -1 with the reason (naming the option) in err.
 */
int sdl_parse(const char *opts, struct sdl_options *o, char *err, size_t errlen);
/* Whether this build has the window (libsdl2). */
bool sdl_built_in(void);
/* SDL scancode (the USB HID usage ID, HID Usage Tables 1.12 §10) -> qnum; 0: none. */
unsigned sdl_scancode_to_qnum(unsigned scancode);
/* The window title QEMU 7.2's sdl_update_caption gives. */
void sdl_title(const struct sdl_options *o, bool grabbed, char *buf, size_t len);

/* Closing the window (window-close=on): quit the VM; called on the SDL thread. */
typedef void (*sdl_quit_fn)(void *opaque);

struct sdl;

struct sdl *sdl_start(const struct sdl_options *o, struct display *d, struct input *in,
		      sdl_quit_fn quit, void *opaque, char *err, size_t errlen);
void sdl_stop(struct sdl *s);
/* The options the window runs with (s NULL: NULL). */
const struct sdl_options *sdl_options(const struct sdl *s);

#endif
