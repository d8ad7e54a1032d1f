/* The VM's screen surface, between video devices and viewers (display.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/display.h"

int display_init(struct display *d)
{
	memset(d, 0, sizeof(*d));
	return -pthread_mutex_init(&d->lock, NULL);
}

void display_destroy(struct display *d)
{
	free(d->surface.pixels);
	d->surface.pixels = NULL;
	pthread_mutex_destroy(&d->lock);
}

void display_lock(struct display *d)
{
	pthread_mutex_lock(&d->lock);
}

void display_unlock(struct display *d)
{
	pthread_mutex_unlock(&d->lock);
}

void display_set_hw(struct display *d, const struct display_hw_ops *ops, void *hw)
{
	d->hw_ops = ops;
	d->hw = hw;
}

int display_resize(struct display *d, int w, int h)
{
	uint32_t *p;
	unsigned i;

	if (w < 1 || h < 1 || w > DISPLAY_MAX_WIDTH || h > DISPLAY_MAX_HEIGHT)
		return -1;
	if (w == d->surface.width && h == d->surface.height) {
		memset(d->surface.pixels, 0, (size_t)d->surface.stride * h);
		return 0;
	}
	p = calloc((size_t)w * h, sizeof(*p));
	if (!p)
		return -1;
	free(d->surface.pixels);
	d->surface = (struct display_surface){ w, h, w * 4, p };
	for (i = 0; i < d->nr_listeners; i++)
		d->listeners[i].ops->resize(d->listeners[i].opaque, &d->surface);
	return 0;
}

/* Clips to the surface so a listener never sees a rectangle outside it. */
void display_dirty(struct display *d, int x, int y, int w, int h)
{
	unsigned i;

	if (x < 0) {
		w += x;
		x = 0;
	}
	if (y < 0) {
		h += y;
		y = 0;
	}
	if (w > d->surface.width - x)
		w = d->surface.width - x;
	if (h > d->surface.height - y)
		h = d->surface.height - y;
	if (w <= 0 || h <= 0)
		return;
	for (i = 0; i < d->nr_listeners; i++)
		d->listeners[i].ops->update(d->listeners[i].opaque, x, y, w, h);
}

int display_add_listener(struct display *d, const struct display_listener_ops *ops, void *l)
{
	display_lock(d);
	if (d->nr_listeners == DISPLAY_MAX_LISTENERS) {
		display_unlock(d);
		return -ENOSPC;
	}
	d->listeners[d->nr_listeners++] = (struct display_listener){ ops, l };
	if (d->surface.pixels)
		ops->resize(l, &d->surface);
	display_unlock(d);
	return 0;
}

void display_remove_listener(struct display *d, void *l)
{
	unsigned i;

	display_lock(d);
	for (i = 0; i < d->nr_listeners; i++) {
		if (d->listeners[i].opaque != l)
			continue;
		d->listeners[i] = d->listeners[--d->nr_listeners];
		break;
	}
	display_unlock(d);
}

void display_refresh(struct display *d)
{
	display_lock(d);
	if (d->hw_ops && d->hw_ops->refresh)
		d->hw_ops->refresh(d->hw);
	display_unlock(d);
}
