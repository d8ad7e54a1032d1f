/*
 * What the display harnesses (vnc_harness.c, sdl_harness.c) share: a
 * synthetic video device drawing a pattern the tests compute too, a
 * line-at-a-time stdout both threads may print to, and the input handlers
 * that print the keys and absolute pointer events they receive.
 */
#ifndef KESTREL_TESTS_FAKE_DISPLAY_H
#define KESTREL_TESTS_FAKE_DISPLAY_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/display.h"

struct fake_vga {
	struct display *d;
	int width, height, seed;
	bool redraw;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* The pattern test_vnc.py and test_sdl.py compute: every pixel differs from its neighbours. */
static uint32_t pattern(int x, int y, int seed)
{
	uint32_t r = (uint32_t)(x * 7 + seed) & 0xff;
	uint32_t g = (uint32_t)(y * 3 + seed * 5) & 0xff;
	uint32_t b = (uint32_t)((x ^ y) + seed) & 0xff;

	return r << 16 | g << 8 | b;
}

static void fake_refresh(void *opaque)
{
	struct fake_vga *f = opaque;
	struct display_surface *s = &f->d->surface;

	if (!f->redraw)
		return;
	if ((s->width != f->width || s->height != f->height) &&
	    display_resize(f->d, f->width, f->height) < 0)
		return;
	for (int y = 0; y < s->height; y++) {
		uint32_t *row = (uint32_t *)((char *)s->pixels + (size_t)y * s->stride);
		for (int x = 0; x < s->width; x++)
			row[x] = pattern(x, y, f->seed);
	}
	display_dirty(f->d, 0, 0, s->width, s->height);
	f->redraw = false;
}

static const struct display_hw_ops fake_ops = { .refresh = fake_refresh };

static void on_key(void *dev, unsigned qnum, bool down)
{
	say("KEY 0x%02x %d", qnum, down);
}

static void on_abs(void *dev, int x, int y, int dz, unsigned buttons)
{
	say("POINTER %d %d %d %u", x, y, dz, buttons);
}

#endif
