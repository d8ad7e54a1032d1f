/*
 * The process's screen (core/display.h), input routing (core/input.h) and
 * the VNC server of -vnc / -display vnc= / the default display.  VNC events
 * are raised on the VNC thread; QMP sessions live on the main loop, so they
 * travel through a queue and an eventfd (as the balloon's change does).
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cli/app.h"
#include "ui/keymap.h"
#include "ui/sdl.h"
#include "ui/vnc.h"
#include "util/log.h"

#define APP_EVENTS_MAX 256	/* beyond this, events are dropped (a client storm) */

struct app_event {
	char name[32];
	struct json_object *data;
};

struct app_events {
	pthread_mutex_t lock;
	int fd;
	struct app_event q[APP_EVENTS_MAX];
	unsigned n;
};

static void on_vnc_event(void *opaque, const char *event, struct json_object *data)
{
	struct app_events *ev = opaque;
	uint64_t one = 1;

	pthread_mutex_lock(&ev->lock);
	if (ev->n < APP_EVENTS_MAX) {
		snprintf(ev->q[ev->n].name, sizeof(ev->q[ev->n].name), "%s", event);
		ev->q[ev->n++].data = data;
		data = NULL;
	}
	pthread_mutex_unlock(&ev->lock);
	json_object_put(data);
	if (write(ev->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("vnc event wake: %s", strerror(errno));
}

static void drain_events(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	struct app_events *ev = app->vnc_events;
	struct app_event q[APP_EVENTS_MAX];
	uint64_t v;
	unsigned n;

	if (read(ev->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&ev->lock);
	n = ev->n;
	memcpy(q, ev->q, n * sizeof(q[0]));
	ev->n = 0;
	pthread_mutex_unlock(&ev->lock);
	for (unsigned i = 0; i < n; i++)
		app_emit(app, q[i].name, q[i].data);
}

int app_display_init(struct app *app)
{
	/* The input routing is app_input.c's (app_input_init runs first). */
	if (display_init(&app->display) != 0) {
		log_error("cannot set up the display");
		return -1;
	}
	app->display_ready = true;
	app->backends.display = &app->display;
	app->control.display = &app->display;
	return 0;
}

/* The SDL thread: the window was closed (window-close=on).  QEMU quits as a
 * QMP quit does, with SHUTDOWN's reason host-ui; app_quit runs on the loop. */
static void on_sdl_close(void *opaque)
{
	struct app *app = opaque;
	uint64_t one = 1;

	if (write(app->sdl_quit_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("sdl quit wake: %s", strerror(errno));
}

static void drain_sdl_quit(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	uint64_t v;

	if (read(app->sdl_quit_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	app_quit(app, "host-ui");
}

static int start_sdl(struct app *app)
{
	const struct vm_config *cfg = &app->cfg;
	struct sdl_options o;
	char err[256];

	sdl_defaults(&o);
	if (sdl_parse(cfg->sdl_opts ? cfg->sdl_opts : "", &o, err, sizeof(err)) < 0) {
		log_error("-display sdl%s: %s", cfg->sdl_opts, err);
		return -1;
	}
	if (cfg->sdl_grab)
		o.grab_mod = cfg->sdl_grab == 1 ? SDL_GRAB_LSHIFT_LCTRL_LALT : SDL_GRAB_RCTRL;
	if (cfg->no_quit)
		o.window_close = false;
	if (cfg->full_screen)
		o.full_screen = true;
	if (cfg->name && cfg->name[0])
		snprintf(o.name, sizeof(o.name), "%s", cfg->name);
	app->sdl_quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (app->sdl_quit_fd < 0) {
		log_error("cannot set up the SDL window: %s", strerror(errno));
		return -1;
	}
	app->sdl_quit_open = true;
	if (loop_add(app->loop, app->sdl_quit_fd, EPOLLIN, drain_sdl_quit, app) < 0) {
		log_error("cannot set up the SDL window: %s", strerror(errno));
		return -1;
	}
	app->sdl = sdl_start(&o, &app->display, &app->input, on_sdl_close, app, err, sizeof(err));
	if (!app->sdl) {
		log_error("-display sdl: %s", err);
		return -1;
	}
	app->control.sdl = sdl_options(app->sdl);
	return 0;
}

int app_display_start(struct app *app)
{
	const struct vm_config *cfg = &app->cfg;
	struct app_events *ev;
	struct vnc_options o;
	char err[256];

	if (cfg->display == DISPLAY_SDL && start_sdl(app) < 0)
		return -1;
	if (!cfg->vnc || vnc_parse(cfg->vnc, &o, err, sizeof(err)) < 0 || o.kind == VNC_OFF)
		return 0;
	if (!vnc_built_in()) {
		if (cfg->vnc_default)
			return 0;	/* a QEMU without VNC has no default VNC display either */
		log_error("-vnc %s: VNC is not built in (Kestrel was built without libvncserver)",
			  cfg->vnc);
		return -1;
	}
	o.keymap = cfg->keyboard_layout ? keymap_find(cfg->keyboard_layout) : KEYMAP_EN_US;
	if (cfg->name && cfg->name[0])
		snprintf(o.name, sizeof(o.name), "%s", cfg->name);
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -1;
	pthread_mutex_init(&ev->lock, NULL);
	ev->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	app->vnc_events = ev;
	if (ev->fd < 0 || loop_add(app->loop, ev->fd, EPOLLIN, drain_events, app) < 0) {
		log_error("cannot set up VNC events: %s", strerror(errno));
		return -1;
	}
	app->vnc = vnc_start(&o, &app->display, &app->input, on_vnc_event, ev, err, sizeof(err));
	if (!app->vnc) {
		log_error("-vnc %s: %s", cfg->vnc, err);
		return -1;
	}
	app->control.vnc = app->vnc;
	if (cfg->vnc_default)
		fprintf(stderr, "VNC server running on %s:%d\n",
			o.host[0] && strcmp(o.host, "localhost") ? o.host : "127.0.0.1",
			vnc_port(app->vnc));
	return 0;
}

void app_display_close(struct app *app)
{
	app->control.sdl = NULL;
	sdl_stop(app->sdl);
	app->sdl = NULL;
	if (app->sdl_quit_open) {
		if (app->loop)
			loop_remove(app->loop, app->sdl_quit_fd);
		close(app->sdl_quit_fd);
		app->sdl_quit_open = false;
	}
	app->control.vnc = NULL;
	vnc_stop(app->vnc);
	app->vnc = NULL;
	if (app->vnc_events) {
		for (unsigned i = 0; i < app->vnc_events->n; i++)
			json_object_put(app->vnc_events->q[i].data);
		if (app->vnc_events->fd >= 0)
			close(app->vnc_events->fd);
		pthread_mutex_destroy(&app->vnc_events->lock);
		free(app->vnc_events);
		app->vnc_events = NULL;
	}
	/* The surface itself goes last (app_close): the video card detaches from it
	 * when the VM is destroyed, after this. */
}
