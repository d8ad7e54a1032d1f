/* core/display.c and core/input.c: surface life cycle, clipping, and routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/display.h"
#include "core/input.h"

struct viewer {
	int resizes, w, h;
	int updates, ux, uy, uw, uh;
};

static void v_resize(void *l, const struct display_surface *s)
{
	struct viewer *v = l;

	v->resizes++;
	v->w = s->width;
	v->h = s->height;
}

static void v_update(void *l, int x, int y, int w, int h)
{
	struct viewer *v = l;

	v->updates++;
	v->ux = x;
	v->uy = y;
	v->uw = w;
	v->uh = h;
}

static const struct display_listener_ops viewer_ops = { v_resize, v_update };

static void hw_refresh(void *hw)
{
	struct display *d = hw;

	if (d->surface.width != 640)
		assert_int_equal(display_resize(d, 640, 480), 0);
	d->surface.pixels[0] = 0xffffff;
	display_dirty(d, -10, 470, 30, 100);	/* clipped to 0,470 20x10 */
}

static const struct display_hw_ops hw_ops = { .refresh = hw_refresh };

static void test_display_refresh_resize_clip(void **state)
{
	struct display d;
	struct viewer v = { 0 };

	(void)state;
	assert_int_equal(display_init(&d), 0);
	assert_int_equal(display_add_listener(&d, &viewer_ops, &v), 0);
	assert_int_equal(v.resizes, 0);		/* no surface yet */
	display_refresh(&d);			/* no video device: nothing */
	assert_int_equal(v.updates, 0);
	display_set_hw(&d, &hw_ops, &d);
	display_refresh(&d);
	assert_int_equal(v.resizes, 1);
	assert_int_equal(v.w, 640);
	assert_int_equal(v.h, 480);
	assert_int_equal(d.surface.stride, 640 * 4);
	assert_int_equal(v.updates, 1);
	assert_int_equal(v.ux, 0);
	assert_int_equal(v.uy, 470);
	assert_int_equal(v.uw, 20);
	assert_int_equal(v.uh, 10);
	display_refresh(&d);			/* same size: no resize */
	assert_int_equal(v.resizes, 1);

	display_lock(&d);
	assert_int_equal(display_resize(&d, 0, 10), -1);
	assert_int_equal(display_resize(&d, DISPLAY_MAX_WIDTH + 1, 10), -1);
	assert_int_equal(d.surface.width, 640);
	display_dirty(&d, 700, 0, 10, 10);	/* wholly outside: dropped */
	display_unlock(&d);
	assert_int_equal(v.updates, 2);

	display_remove_listener(&d, &v);
	display_refresh(&d);
	assert_int_equal(v.updates, 2);
	display_destroy(&d);
}

struct dev {
	int keys, last_key, last_down;
	int rels, dx, dy;
	int abss, ax, ay;
	unsigned buttons;
};

static void d_key(void *p, unsigned qnum, bool down)
{
	struct dev *d = p;

	d->keys++;
	d->last_key = qnum;
	d->last_down = down;
}

static void d_rel(void *p, int dx, int dy, int dz, unsigned buttons)
{
	struct dev *d = p;

	(void)dz;
	d->rels++;
	d->dx = dx;
	d->dy = dy;
	d->buttons = buttons;
}

static void d_abs(void *p, int x, int y, int dz, unsigned buttons)
{
	struct dev *d = p;

	(void)dz;
	d->abss++;
	d->ax = x;
	d->ay = y;
	d->buttons = buttons;
}

static const struct input_handler_ops dev_ops = { d_key, d_rel, d_abs };

static void test_input_routing(void **state)
{
	struct input in;
	struct dev ps2 = { 0 }, tablet = { 0 }, kbd2 = { 0 };

	(void)state;
	assert_int_equal(input_init(&in), 0);
	input_key(&in, 0x1e, true);		/* no handler: dropped */
	assert_null(input_current_mouse(&in));
	assert_int_equal(input_register(&in, "QEMU PS/2 Mouse", INPUT_KEYBOARD | INPUT_MOUSE_REL,
					&dev_ops, &ps2), 0);
	input_key(&in, 0x9d, true);
	assert_int_equal(ps2.last_key, 0x9d);
	assert_int_equal(ps2.last_down, 1);

	/* Relative: deltas from the last absolute position, 0 the first time. */
	input_pointer(&in, 100, 50, 640, 480, 0, INPUT_BTN_LEFT);
	assert_int_equal(ps2.rels, 1);
	assert_int_equal(ps2.dx, 0);
	input_pointer(&in, 110, 45, 640, 480, 0, 0);
	assert_int_equal(ps2.dx, 10);
	assert_int_equal(ps2.dy, -5);

	/* A tablet takes pointer events, scaled to 0..0x7fff; keys stay with PS/2. */
	assert_int_equal(input_register(&in, "QEMU HID Tablet", INPUT_MOUSE_ABS, &dev_ops,
					&tablet), 0);
	assert_string_equal(input_current_mouse(&in)->name, "QEMU HID Tablet");
	input_pointer(&in, 639, 0, 640, 480, 0, INPUT_BTN_RIGHT);
	assert_int_equal(tablet.abss, 1);
	assert_int_equal(tablet.ax, INPUT_ABS_MAX);
	assert_int_equal(tablet.ay, 0);
	assert_int_equal(tablet.buttons, INPUT_BTN_RIGHT);
	assert_int_equal(ps2.rels, 2);
	input_key(&in, 0x1e, false);
	assert_int_equal(ps2.keys, 2);

	/* The keyboard registered last wins; unplugging gives keys back. */
	assert_int_equal(input_register(&in, "QEMU HID Keyboard", INPUT_KEYBOARD, &dev_ops,
					&kbd2), 0);
	input_key(&in, 0x1c, true);
	assert_int_equal(kbd2.keys, 1);
	assert_int_equal(ps2.keys, 2);
	input_unregister(&in, &kbd2);
	input_unregister(&in, &tablet);
	input_key(&in, 0x1c, true);
	assert_int_equal(ps2.keys, 3);
	assert_string_equal(input_current_mouse(&in)->name, "QEMU PS/2 Mouse");
	input_destroy(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_display_refresh_resize_clip),
		cmocka_unit_test(test_input_routing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
