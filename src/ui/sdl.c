/*
 * The local window on SDL2 (QEMU's ui/sdl2.c, one console).
 *
 * Threads: SDL's video subsystem is used from one thread only, this file's
 * own, which creates the window, runs the event loop and the frame timer
 * (QEMU's GUI refresh, 30 ms) that calls display_refresh.  The display
 * listener callbacks run with the display lock held on whichever thread
 * refreshes (this one, or the monitor's for a screendump) and only record
 * what changed; this thread uploads the changed rectangle into the texture
 * under the lock and presents without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "core/display.h"
#include "core/input.h"
#include "ui/sdl.h"

#define REFRESH_MS 30	/* QEMU's GUI_REFRESH_INTERVAL_DEFAULT */

struct sdl {
	struct sdl_options o;
	struct display *d;
	struct input *in;
	sdl_quit_fn quit;
	void *opaque;
	pthread_t thread;
	atomic_bool stop;

	/* Start-up handshake: the thread reports whether SDL came up. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;		/* 0 starting, 1 running, -1 failed */
	char err[256];

	/* Written by the listener callbacks, with the display lock held. */
	bool resized;
	int dx0, dy0, dx1, dy1;	/* dirty box; dx1 <= dx0: clean */

	/* The SDL thread's own. */
	SDL_Window *win;
	SDL_Renderer *ren;
	SDL_Texture *tex;
	int width, height;	/* the texture's size */
	bool grab, absolute;
	bool hotkey_held, hotkey_used;
	unsigned buttons;
};

bool sdl_built_in(void)
{
	return true;
}

static void listener_resize(void *opaque, const struct display_surface *s)
{
	struct sdl *v = opaque;

	v->resized = true;
	v->dx0 = 0;
	v->dy0 = 0;
	v->dx1 = s->width;
	v->dy1 = s->height;
}

static void listener_update(void *opaque, int x, int y, int w, int h)
{
	struct sdl *v = opaque;

	if (v->dx1 <= v->dx0) {
		v->dx0 = x;
		v->dy0 = y;
		v->dx1 = x + w;
		v->dy1 = y + h;
		return;
	}
	v->dx0 = x < v->dx0 ? x : v->dx0;
	v->dy0 = y < v->dy0 ? y : v->dy0;
	v->dx1 = x + w > v->dx1 ? x + w : v->dx1;
	v->dy1 = y + h > v->dy1 ? y + h : v->dy1;
}

static const struct display_listener_ops listener_ops = {
	.resize = listener_resize,
	.update = listener_update,
};

static void update_title(struct sdl *v)
{
	char t[160];

	sdl_title(&v->o, v->grab, t, sizeof(t));
	SDL_SetWindowTitle(v->win, t);
}

/* With the display lock held: a texture of the surface's size. */
static int take_resize(struct sdl *v, const struct display_surface *s)
{
	if (v->tex)
		SDL_DestroyTexture(v->tex);
	/* SDL_PIXELFORMAT_RGB888 is XRGB8888 in host order, the surface's format. */
	v->tex = SDL_CreateTexture(v->ren, SDL_PIXELFORMAT_RGB888, SDL_TEXTUREACCESS_STREAMING,
				   s->width, s->height);
	if (!v->tex)
		return -1;
	v->width = s->width;
	v->height = s->height;
	if (!v->o.full_screen)
		SDL_SetWindowSize(v->win, s->width, s->height);
	return 0;
}

/* Renders, takes the changed rectangle into the texture; true when it changed. */
static bool frame(struct sdl *v)
{
	const struct display_surface *s = &v->d->surface;
	bool changed = false;

	display_refresh(v->d);
	display_lock(v->d);
	if (s->pixels && (v->resized || !v->tex)) {
		v->resized = false;
		if (take_resize(v, s) < 0) {
			display_unlock(v->d);
			return false;
		}
		v->dx0 = v->dy0 = 0;
		v->dx1 = s->width;
		v->dy1 = s->height;
	}
	if (v->tex && v->dx1 > v->dx0 && v->dy1 > v->dy0) {
		SDL_Rect r = { v->dx0, v->dy0, v->dx1 - v->dx0, v->dy1 - v->dy0 };
		const char *p = (const char *)s->pixels + (size_t)r.y * s->stride + r.x * 4;

		if (r.x + r.w <= s->width && r.y + r.h <= s->height)
			SDL_UpdateTexture(v->tex, &r, p, s->stride);
		v->dx1 = v->dx0;
		changed = true;
	}
	display_unlock(v->d);
	return changed;
}

static void present(struct sdl *v)
{
	SDL_RenderClear(v->ren);
	if (v->tex)
		SDL_RenderCopy(v->ren, v->tex, NULL, NULL);
	SDL_RenderPresent(v->ren);
}

static void grab_start(struct sdl *v)
{
	SDL_SetWindowGrab(v->win, SDL_TRUE);
	/* Relative pointer: the host cursor is hidden and motion is unbounded. */
	if (!v->absolute)
		SDL_SetRelativeMouseMode(SDL_TRUE);
	v->grab = true;
	update_title(v);
}

static void grab_end(struct sdl *v)
{
	SDL_SetWindowGrab(v->win, SDL_FALSE);
	SDL_SetRelativeMouseMode(SDL_FALSE);
	v->grab = false;
	update_title(v);
}

static bool pointer_absolute(struct sdl *v)
{
	const struct input_handler *h = input_current_mouse(v->in);

	return !h || (h->kinds & INPUT_MOUSE_ABS);
}

/* The modifiers of the grab hot key (QEMU's gui_grab_code), all held. */
static bool hotkey_mods(const struct sdl *v, SDL_Keymod m)
{
	switch (v->o.grab_mod) {
	case SDL_GRAB_LSHIFT_LCTRL_LALT:
		return (m & (KMOD_LSHIFT | KMOD_LCTRL | KMOD_LALT)) ==
		       (KMOD_LSHIFT | KMOD_LCTRL | KMOD_LALT);
	case SDL_GRAB_RCTRL:
		return (m & KMOD_RCTRL) == KMOD_RCTRL;
	default:
		return (m & (KMOD_LCTRL | KMOD_LALT)) == (KMOD_LCTRL | KMOD_LALT);
	}
}

static bool is_hotkey_mod(const struct sdl *v, SDL_Scancode sc)
{
	switch (v->o.grab_mod) {
	case SDL_GRAB_LSHIFT_LCTRL_LALT:
		return sc == SDL_SCANCODE_LSHIFT || sc == SDL_SCANCODE_LCTRL ||
		       sc == SDL_SCANCODE_LALT;
	case SDL_GRAB_RCTRL:
		return sc == SDL_SCANCODE_RCTRL;
	default:
		return sc == SDL_SCANCODE_LCTRL || sc == SDL_SCANCODE_LALT;
	}
}

/*
 * QEMU's hot key: the grab modifiers pressed together and released with no
 * other key in between toggle the grab.  Every key still reaches the guest.
 */
static void key_event(struct sdl *v, const SDL_KeyboardEvent *k)
{
	bool down = k->type == SDL_KEYDOWN;
	unsigned q = sdl_scancode_to_qnum(k->keysym.scancode);

	if (down) {
		if (hotkey_mods(v, SDL_GetModState()) && !v->hotkey_held) {
			v->hotkey_held = true;
			v->hotkey_used = false;
		} else if (v->hotkey_held && !is_hotkey_mod(v, k->keysym.scancode)) {
			v->hotkey_used = true;
		}
	} else if (v->hotkey_held && is_hotkey_mod(v, k->keysym.scancode)) {
		v->hotkey_held = false;
		if (!v->hotkey_used) {
			if (v->grab)
				grab_end(v);
			else
				grab_start(v);
		}
	}
	if (q)
		input_key(v->in, q, down);
}

static unsigned sdl_buttons(Uint32 state)
{
	unsigned b = 0;

	if (state & SDL_BUTTON(SDL_BUTTON_LEFT))
		b |= INPUT_BTN_LEFT;
	if (state & SDL_BUTTON(SDL_BUTTON_MIDDLE))
		b |= INPUT_BTN_MIDDLE;
	if (state & SDL_BUTTON(SDL_BUTTON_RIGHT))
		b |= INPUT_BTN_RIGHT;
	if (state & SDL_BUTTON(SDL_BUTTON_X1))
		b |= INPUT_BTN_SIDE;
	if (state & SDL_BUTTON(SDL_BUTTON_X2))
		b |= INPUT_BTN_EXTRA;
	return b;
}

/* A window position on the guest's screen (the window may be scaled: full screen). */
static void send_abs(struct sdl *v, int x, int y, int dz)
{
	int ww, wh;

	SDL_GetWindowSize(v->win, &ww, &wh);
	if (ww <= 0 || wh <= 0)
		return;
	input_pointer(v->in, x, y, ww, wh, dz, v->buttons);
}

static void motion_event(struct sdl *v, const SDL_MouseMotionEvent *m)
{
	v->buttons = sdl_buttons(m->state);
	if (v->absolute)
		send_abs(v, m->x, m->y, 0);
	else if (v->grab)
		input_pointer_rel(v->in, m->xrel, m->yrel, 0, v->buttons);
}

/* QEMU: a left click on a window that is not grabbed grabs it. */
static void button_event(struct sdl *v, const SDL_MouseButtonEvent *b)
{
	bool down = b->type == SDL_MOUSEBUTTONDOWN;

	if (!v->grab && !v->absolute) {
		if (!down && b->button == SDL_BUTTON_LEFT)
			grab_start(v);
		return;	/* the grabbing click is the host's, not the guest's */
	}
	v->buttons = sdl_buttons(SDL_GetMouseState(NULL, NULL));
	if (down)
		v->buttons |= sdl_buttons(SDL_BUTTON(b->button));
	else
		v->buttons &= ~sdl_buttons(SDL_BUTTON(b->button));
	if (v->absolute)
		send_abs(v, b->x, b->y, 0);
	else
		input_pointer_rel(v->in, 0, 0, 0, v->buttons);
	if (!v->grab && !down && b->button == SDL_BUTTON_LEFT)
		grab_start(v);
}

static void wheel_event(struct sdl *v, const SDL_MouseWheelEvent *w)
{
	int x, y, dz = w->y > 0 ? -1 : w->y < 0 ? 1 : 0;	/* dz < 0: up */

	if (!dz)
		return;
	if (v->absolute) {
		SDL_GetMouseState(&x, &y);
		send_abs(v, x, y, dz);
	} else if (v->grab) {
		input_pointer_rel(v->in, 0, 0, dz, v->buttons);
	}
}

static void window_event(struct sdl *v, const SDL_WindowEvent *w)
{
	switch (w->event) {
	case SDL_WINDOWEVENT_CLOSE:
		/* QEMU: window-close=off (-no-quit) keeps the VM running. */
		if (v->o.window_close && v->quit)
			v->quit(v->opaque);
		break;
	case SDL_WINDOWEVENT_FOCUS_LOST:
		v->hotkey_held = false;
		break;
	default:
		break;
	}
	present(v);
}

static void handle(struct sdl *v, const SDL_Event *e)
{
	v->absolute = pointer_absolute(v);
	switch (e->type) {
	case SDL_KEYDOWN:
	case SDL_KEYUP:
		key_event(v, &e->key);
		break;
	case SDL_MOUSEMOTION:
		motion_event(v, &e->motion);
		break;
	case SDL_MOUSEBUTTONDOWN:
	case SDL_MOUSEBUTTONUP:
		button_event(v, &e->button);
		break;
	case SDL_MOUSEWHEEL:
		wheel_event(v, &e->wheel);
		break;
	case SDL_WINDOWEVENT:
		window_event(v, &e->window);
		break;
	default:
		break;	/* SDL_QUIT comes with the window's CLOSE, handled there */
	}
}

static void report(struct sdl *v, int state, const char *what)
{
	pthread_mutex_lock(&v->lock);
	if (what)
		snprintf(v->err, sizeof(v->err), "%s(%s)", what, SDL_GetError());
	v->state = state;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

/*
 * Full screen covers the whole first display from the start: SDL asks the
 * window manager for _NET_WM_STATE_FULLSCREEN, and on an X server without one
 * (a kiosk, Xvfb) nobody would grant it.
 */
static int place_full_screen(int *x, int *y, int *w, int *h)
{
	SDL_Rect r;

	if (SDL_GetDisplayBounds(0, &r) != 0)
		return -1;
	*x = r.x;
	*y = r.y;
	*w = r.w;
	*h = r.h;
	return 0;
}

static int open_window(struct sdl *v)
{
	Uint32 flags = v->o.full_screen ? SDL_WINDOW_FULLSCREEN_DESKTOP : SDL_WINDOW_RESIZABLE;
	int x = SDL_WINDOWPOS_UNDEFINED, y = SDL_WINDOWPOS_UNDEFINED, w, h;

	/* Kestrel takes SIGINT/SIGTERM through its signalfd, not SDL. */
	SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
	/* QEMU keeps the host's screen saver (and compositor) as they are. */
	SDL_SetHint(SDL_HINT_VIDEO_ALLOW_SCREENSAVER, "1");
	SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR, "0");
	if (SDL_Init(SDL_INIT_VIDEO) != 0) {
		report(v, -1, "Could not initialize SDL");
		return -1;
	}
	display_refresh(v->d);	/* the video card's mode now: the window starts at its size */
	display_lock(v->d);
	w = v->d->surface.width > 0 ? v->d->surface.width : 640;
	h = v->d->surface.height > 0 ? v->d->surface.height : 480;
	display_unlock(v->d);
	if (v->o.full_screen && place_full_screen(&x, &y, &w, &h) == 0)
		flags |= SDL_WINDOW_BORDERLESS;
	v->win = SDL_CreateWindow("", x, y, w, h, flags);
	if (!v->win) {
		report(v, -1, "Could not create the SDL window");
		return -1;
	}
	v->ren = SDL_CreateRenderer(v->win, -1, 0);
	if (!v->ren)
		v->ren = SDL_CreateRenderer(v->win, -1, SDL_RENDERER_SOFTWARE);
	if (!v->ren) {
		report(v, -1, "Could not create the SDL renderer");
		return -1;
	}
	update_title(v);
	return 0;
}

static void *sdl_thread(void *opaque)
{
	struct sdl *v = opaque;
	Uint32 next;
	SDL_Event e;

	if (open_window(v) < 0)
		goto out;
	report(v, 1, NULL);
	next = SDL_GetTicks();
	while (!atomic_load(&v->stop)) {
		Sint32 left = (Sint32)(next - SDL_GetTicks());

		if (left <= 0) {
			if (frame(v))
				present(v);
			next = SDL_GetTicks() + REFRESH_MS;
			continue;
		}
		if (SDL_WaitEventTimeout(&e, left)) {
			handle(v, &e);
			while (SDL_PollEvent(&e))
				handle(v, &e);
		}
	}
out:
	if (v->tex)
		SDL_DestroyTexture(v->tex);
	if (v->ren)
		SDL_DestroyRenderer(v->ren);
	if (v->win)
		SDL_DestroyWindow(v->win);
	SDL_Quit();
	return NULL;
}

struct sdl *sdl_start(const struct sdl_options *o, struct display *d, struct input *in,
		      sdl_quit_fn quit, void *opaque, char *err, size_t errlen)
{
	struct sdl *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->o = *o;
	v->d = d;
	v->in = in;
	v->quit = quit;
	v->opaque = opaque;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (display_add_listener(d, &listener_ops, v) < 0) {
		snprintf(err, errlen, "too many display listeners");
		goto fail;
	}
	if (pthread_create(&v->thread, NULL, sdl_thread, v) != 0) {
		snprintf(err, errlen, "cannot start the SDL thread: %s", strerror(errno));
		display_remove_listener(d, v);
		goto fail;
	}
	pthread_mutex_lock(&v->lock);
	while (v->state == 0)
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
	if (v->state < 0) {
		snprintf(err, errlen, "%s", v->err);
		pthread_join(v->thread, NULL);
		display_remove_listener(d, v);
		goto fail;
	}
	return v;
fail:
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return NULL;
}

void sdl_stop(struct sdl *v)
{
	SDL_Event e = { .type = SDL_USEREVENT };

	if (!v)
		return;
	atomic_store(&v->stop, true);
	SDL_PushEvent(&e);	/* wakes SDL_WaitEventTimeout; thread-safe in SDL2 */
	pthread_join(v->thread, NULL);
	display_remove_listener(v->d, v);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

const struct sdl_options *sdl_options(const struct sdl *v)
{
	return v ? &v->o : NULL;
}
