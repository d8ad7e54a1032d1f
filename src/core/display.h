/*
 * The VM's screen: one 32-bit XRGB8888 surface that a video device (the
 * producer, hw/) renders into and that viewers (VNC, SDL, screendump: the
 * listeners, ui/) read.  QEMU's DisplaySurface/DisplayChangeListener, cut to
 * what one console needs.
 *
 * Threads: the producer's state changes on vCPU threads, but it renders only
 * inside display_refresh(), which a listener calls at its own frame rate
 * (QEMU's gui_update timer), so rendering never slows a vCPU.  The display
 * lock is held across refresh and across every listener callback; a listener
 * reads the surface only with the lock held (display_lock).
 */
#ifndef KESTREL_CORE_DISPLAY_H
#define KESTREL_CORE_DISPLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DISPLAY_MAX_WIDTH 4096
#define DISPLAY_MAX_HEIGHT 4096
#define DISPLAY_MAX_LISTENERS 4

struct display_surface {
	int width, height;
	int stride;		/* bytes per row */
	uint32_t *pixels;	/* XRGB8888, host byte order */
};

/* The video device's side. */
struct display_hw_ops {
	/* Render what changed since the last call into the surface (resize it
	 * first with display_resize when the mode changed) and report the
	 * changed rectangles with display_dirty.  Runs with the lock held. */
	void (*refresh)(void *hw);
	/* Text mode: the screen as characters (curses, QEMU's text_update);
	 * cells are (attribute << 8 | character).  NULL: not a text mode. */
	bool (*text)(void *hw, int *cols, int *rows, const uint16_t **cells);
};

/* A viewer's side; every call runs with the display lock held. */
struct display_listener_ops {
	void (*resize)(void *l, const struct display_surface *s);
	void (*update)(void *l, int x, int y, int w, int h);
};

struct display_listener {
	const struct display_listener_ops *ops;
	void *opaque;
};

struct display {
	pthread_mutex_t lock;
	struct display_surface surface;
	const struct display_hw_ops *hw_ops;	/* NULL: no video device (-vga none) */
	void *hw;
	struct display_listener listeners[DISPLAY_MAX_LISTENERS];
	unsigned nr_listeners;
};

int display_init(struct display *d);
void display_destroy(struct display *d);

void display_lock(struct display *d);
void display_unlock(struct display *d);

/* Producer (hw/); call with the lock held (inside refresh).  display_resize
 * gives a black surface of w x h (1..DISPLAY_MAX_*) and tells the listeners;
 * it returns -1 (surface unchanged) for sizes out of range or no memory. */
void display_set_hw(struct display *d, const struct display_hw_ops *ops, void *hw);
int display_resize(struct display *d, int w, int h);
void display_dirty(struct display *d, int x, int y, int w, int h);

/* Listener (ui/). */
int display_add_listener(struct display *d, const struct display_listener_ops *ops, void *l);
void display_remove_listener(struct display *d, void *l);
/* Takes the lock, lets the video device render, and calls the listeners. */
void display_refresh(struct display *d);

#endif
