/* Input routing from viewers and the monitor to input devices (input.h). */
#include <errno.h>
#include <string.h>

#include "core/input.h"

int input_init(struct input *in)
{
	memset(in, 0, sizeof(*in));
	in->next_index = 1;	/* QEMU's handler ids start at 1 */
	return -pthread_mutex_init(&in->lock, NULL);
}

void input_destroy(struct input *in)
{
	pthread_mutex_destroy(&in->lock);
}

int input_register(struct input *in, const char *name, unsigned kinds,
		   const struct input_handler_ops *ops, void *dev)
{
	pthread_mutex_lock(&in->lock);
	if (in->nr == INPUT_MAX_HANDLERS) {
		pthread_mutex_unlock(&in->lock);
		return -ENOSPC;
	}
	in->handlers[in->nr++] = (struct input_handler){ name, kinds, ops, dev, in->next_index++ };
	pthread_mutex_unlock(&in->lock);
	return 0;
}

/* Keeps registration order: "registered last wins" depends on it. */
void input_unregister(struct input *in, void *dev)
{
	unsigned i;

	pthread_mutex_lock(&in->lock);
	for (i = 0; i < in->nr; i++) {
		if (in->handlers[i].dev != dev)
			continue;
		memmove(&in->handlers[i], &in->handlers[i + 1],
			(in->nr - i - 1) * sizeof(in->handlers[0]));
		in->nr--;
		i--;
	}
	/*
	 * Ids after the last handler left are free again, so a VM rebuilt by a
	 * reset registers its devices under the same ids (QEMU never re-registers).
	 */
	in->next_index = 1;
	for (i = 0; i < in->nr; i++)
		if (in->handlers[i].index >= in->next_index)
			in->next_index = in->handlers[i].index + 1;
	pthread_mutex_unlock(&in->lock);
}

static const struct input_handler *find_last(const struct input *in, unsigned kind)
{
	unsigned i;

	for (i = in->nr; i-- > 0;)
		if (in->handlers[i].kinds & kind)
			return &in->handlers[i];
	return NULL;
}

static const struct input_handler *current_mouse(const struct input *in)
{
	const struct input_handler *h = find_last(in, INPUT_MOUSE_ABS);

	return h ? h : find_last(in, INPUT_MOUSE_REL);
}

const struct input_handler *input_current_mouse(struct input *in)
{
	const struct input_handler *h;

	pthread_mutex_lock(&in->lock);
	h = current_mouse(in);
	pthread_mutex_unlock(&in->lock);
	return h;
}

void input_key(struct input *in, unsigned qnum, bool down)
{
	const struct input_handler *h;

	pthread_mutex_lock(&in->lock);
	h = find_last(in, INPUT_KEYBOARD);
	if (h)
		h->ops->key(h->dev, qnum, down);
	pthread_mutex_unlock(&in->lock);
}

static int scale(int v, int size)
{
	if (size <= 1 || v <= 0)
		return 0;
	if (v >= size - 1)
		return INPUT_ABS_MAX;
	return (int)((long long)v * INPUT_ABS_MAX / (size - 1));
}

void input_pointer(struct input *in, int x, int y, int w, int h, int dz, unsigned buttons)
{
	const struct input_handler *m;

	pthread_mutex_lock(&in->lock);
	m = current_mouse(in);
	if (m && (m->kinds & INPUT_MOUSE_ABS)) {
		m->ops->abs(m->dev, scale(x, w), scale(y, h), dz, buttons);
	} else if (m) {
		int dx = in->have_last ? x - in->last_x : 0;
		int dy = in->have_last ? y - in->last_y : 0;

		m->ops->rel(m->dev, dx, dy, dz, buttons);
	}
	in->last_x = x;
	in->last_y = y;
	in->have_last = true;
	pthread_mutex_unlock(&in->lock);
}

void input_pointer_rel(struct input *in, int dx, int dy, int dz, unsigned buttons)
{
	const struct input_handler *m;

	pthread_mutex_lock(&in->lock);
	m = find_last(in, INPUT_MOUSE_REL);
	if (m)
		m->ops->rel(m->dev, dx, dy, dz, buttons);
	pthread_mutex_unlock(&in->lock);
}

unsigned input_mice(struct input *in, struct input_mouse_info *out, unsigned max)
{
	const struct input_handler *cur;
	unsigned n = 0;

	pthread_mutex_lock(&in->lock);
	cur = current_mouse(in);
	if (cur && n < max)
		out[n++] = (struct input_mouse_info){ cur->name, cur->index, true,
						      cur->kinds & INPUT_MOUSE_ABS };
	for (unsigned i = 0; i < in->nr && n < max; i++) {
		const struct input_handler *h = &in->handlers[i];

		if (h == cur || !(h->kinds & (INPUT_MOUSE_REL | INPUT_MOUSE_ABS)))
			continue;
		out[n++] = (struct input_mouse_info){ h->name, h->index, false,
						      h->kinds & INPUT_MOUSE_ABS };
	}
	pthread_mutex_unlock(&in->lock);
	return n;
}
