/*
 * The VNC server on libvncserver (RFB 3.8, RFC 6143).
 *
 * Threads: one thread of its own runs the server (rfbProcessEvents, i.e.
 * libvncserver's single-threaded mode) and the frame timer, so libvncserver's
 * state is touched by that thread only.  The display listener callbacks run
 * on whichever thread refreshes the display (this one, or the monitor's for a
 * screendump) and only record what changed, under the display lock; the VNC
 * thread copies the changed tiles into its own framebuffer under the lock and
 * sends without it, so a slow client never holds the display (or a vCPU).
 */
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rfb/rfb.h>

#include "core/display.h"
#include "core/input.h"
#include "ui/keymap.h"
#include "ui/vnc.h"
#include "ui/vnc_int.h"

bool vnc_built_in(void)
{
	return true;
}

/* QEMU ui/vnc.h: VNC_REFRESH_INTERVAL_BASE/INC/MAX. */
#define REFRESH_BASE_MS 30
#define REFRESH_INC_MS 50
#define REFRESH_MAX_MS 3000
/* A client that takes no bytes for this long is dropped (libvncserver's rfbMaxClientWait). */
#define CLIENT_WAIT_MS 2000

static void dirty_tile(struct vnc *v, int x, int y, int w, int h)
{
	for (int ty = y / VNC_TILE; ty <= (y + h - 1) / VNC_TILE && ty < VNC_TILES; ty++)
		for (int tx = x / VNC_TILE; tx <= (x + w - 1) / VNC_TILE && tx < VNC_TILES; tx++)
			v->dirty[ty][tx / 64] |= 1ull << (tx % 64);
	v->any_dirty = true;
}

static void listener_resize(void *opaque, const struct display_surface *s)
{
	struct vnc *v = opaque;

	v->resized = true;
	dirty_tile(v, 0, 0, s->width, s->height);
}

static void listener_update(void *opaque, int x, int y, int w, int h)
{
	dirty_tile(opaque, x, y, w, h);
}

static const struct display_listener_ops listener_ops = {
	.resize = listener_resize,
	.update = listener_update,
};

/* With the display lock held: a new framebuffer of the surface's size. */
static int take_resize(struct vnc *v, const struct display_surface *s)
{
	uint32_t *fb = calloc((size_t)s->width * s->height, 4);

	if (!fb)
		return -1;
	v->old_fb = v->fb;
	v->fb = fb;
	v->width = s->width;
	v->height = s->height;
	v->resized = false;
	return 0;
}

/* With the display lock held: copies the dirty tiles that really changed. */
static void copy_tiles(struct vnc *v, const struct display_surface *s, int *nr)
{
	for (int ty = 0; ty * VNC_TILE < v->height; ty++) {
		for (int tx = 0; tx * VNC_TILE < v->width; tx++) {
			int x = tx * VNC_TILE, y = ty * VNC_TILE;
			int w = v->width - x < VNC_TILE ? v->width - x : VNC_TILE;
			int h = v->height - y < VNC_TILE ? v->height - y : VNC_TILE;
			bool changed = false;

			if (!(v->dirty[ty][tx / 64] & (1ull << (tx % 64))))
				continue;
			for (int r = 0; r < h; r++) {
				uint32_t *dst = v->fb + (size_t)(y + r) * v->width + x;
				const uint32_t *src = (const uint32_t *)((const char *)s->pixels +
					(size_t)(y + r) * s->stride) + x;
				if (memcmp(dst, src, (size_t)w * 4)) {
					memcpy(dst, src, (size_t)w * 4);
					changed = true;
				}
			}
			if (changed) {
				v->mark[nr[0]++] = (struct vnc_rect){ x, y, w, h };
			}
		}
	}
	memset(v->dirty, 0, sizeof(v->dirty));
	v->any_dirty = false;
}

static void vnc_retranslate(struct vnc *v);

/*
 * One frame: let the video device render, take what changed.  Returns
 * whether anything changed (QEMU's has_dirty, which drives the interval).
 */
static bool frame(struct vnc *v)
{
	int nr = 0;
	bool resized = false;

	display_refresh(v->display);
	display_lock(v->display);
	if (v->resized && v->display->surface.pixels &&
	    take_resize(v, &v->display->surface) == 0)
		resized = true;
	if (v->any_dirty && v->display->surface.pixels &&
	    v->display->surface.width == v->width && v->display->surface.height == v->height)
		copy_tiles(v, &v->display->surface, &nr);
	display_unlock(v->display);
	if (resized) {
		/* DesktopSize goes to the clients that asked for it (rfbNewFramebuffer). */
		rfbNewFramebuffer(v->screen, (char *)v->fb, v->width, v->height, 8, 3, 4);
		vnc_pixel_format(v->screen);
		vnc_retranslate(v);
		free(v->old_fb);
		v->old_fb = NULL;
		rfbMarkRectAsModified(v->screen, 0, 0, v->width, v->height);
	}
	for (int i = 0; i < nr; i++)
		rfbMarkRectAsModified(v->screen, v->mark[i].x, v->mark[i].y,
				      v->mark[i].x + v->mark[i].w, v->mark[i].y + v->mark[i].h);
	return resized || nr > 0;
}

/* XRGB8888 in host (little-endian) order: blue is the low byte. */
void vnc_pixel_format(rfbScreenInfoPtr s)
{
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
}

/* rfbNewFramebuffer set libvncserver's default format: translate again from ours. */
static void vnc_retranslate(struct vnc *v)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(v->screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it)))
		v->screen->setTranslateFunction(cl);
	rfbReleaseClientIterator(it);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool has_clients(struct vnc *v)
{
	return v->screen->clientHead != NULL;
}

static void *vnc_thread(void *opaque)
{
	struct vnc *v = opaque;
	long next = 0;

	while (!atomic_load(&v->quit)) {
		long t = now_ms();

		if (v->kick) {
			/* A new client: show it the screen as it is now, not 3 s old. */
			v->kick = false;
			next = t;
			v->interval = REFRESH_BASE_MS;
		}
		if (t >= next) {
			bool changed = frame(v);
			if (!has_clients(v))
				v->interval = REFRESH_MAX_MS;
			else if (changed)
				v->interval = REFRESH_BASE_MS;
			else if (v->interval < REFRESH_MAX_MS)
				v->interval += REFRESH_INC_MS;
			next = t + v->interval;
		}
		vnc_accept_extra(v);
		/* Waits for client input at most until the next frame (or 10 ms for quit). */
		t = next - now_ms();
		rfbProcessEvents(v->screen, (t < 0 ? 0 : t > 10 ? 10 : t) * 1000);
		vnc_poll_clients(v);
	}
	return NULL;
}

/* --- clients ---------------------------------------------------------- */

static void client_addr(struct vnc_client *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* An unnamed unix peer fills in only the family: its path stays "". */
	memset(&ss, 0, sizeof(ss));
	c->family = "unknown";
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	vnc_describe_addr(&ss, c->host, sizeof(c->host), c->service, sizeof(c->service),
			  &c->family);
}

static void client_gone(rfbClientPtr cl)
{
	struct vnc_client *c = cl->clientData, **pp;
	struct vnc *v;

	vnc_free_extensions(cl);
	if (!c)
		return;
	v = c->v;
	pthread_mutex_lock(&v->clients_lock);
	for (pp = &v->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&v->clients_lock);
	vnc_emit_client(v, "VNC_DISCONNECTED", c->host, c->service, c->family,
			c->websocket, c->initialized);
	free(c);
	cl->clientData = NULL;
}

static enum rfbNewClientAction new_client(rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;
	struct vnc_client *c = calloc(1, sizeof(*c));

	if (!c)
		return RFB_CLIENT_REFUSE;
	c->v = v;
	c->websocket = cl->wsctx != NULL || v->accepting_ws;
	client_addr(c, cl->sock);
	cl->clientData = c;
	cl->clientGoneHook = client_gone;
	pthread_mutex_lock(&v->clients_lock);
	c->next = v->clients;
	v->clients = c;
	pthread_mutex_unlock(&v->clients_lock);
	vnc_emit_client(v, "VNC_CONNECTED", c->host, c->service, c->family, c->websocket,
			false);
	v->kick = true;
	return RFB_CLIENT_ACCEPT;
}

/* VNC_INITIALIZED once a client has passed authentication and ClientInit. */
void vnc_poll_clients(struct vnc *v)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(v->screen);
	rfbClientPtr cl;

	while ((cl = rfbClientIteratorNext(it))) {
		struct vnc_client *c = cl->clientData;
		if (c && !c->initialized && cl->state == RFB_NORMAL) {
			c->initialized = true;
			vnc_emit_client(v, "VNC_INITIALIZED", c->host, c->service, c->family,
					c->websocket, true);
		}
		/* lossy=off: never JPEG, whatever quality level the client asked for. */
		if (!v->opts.lossy) {
			cl->tightQualityLevel = -1;
			cl->turboQualityLevel = -1;
		}
	}
	rfbReleaseClientIterator(it);
}

/* lossy=off must hold for the very update that follows SetEncodings too. */
static void display_hook(rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;

	if (!v->opts.lossy) {
		cl->tightQualityLevel = -1;
		cl->turboQualityLevel = -1;
	}
}

static void key_event(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;
	unsigned q = keymap_qnum(v->opts.keymap, keysym);

	if (q)
		input_key(v->input, q, down);
}

static void pointer_event(int mask, int x, int y, rfbClientPtr cl)
{
	struct vnc *v = cl->screen->screenData;
	struct vnc_client *c = cl->clientData;
	unsigned pressed = c ? (unsigned)mask & ~c->buttons : 0;
	int dz = 0;

	/* RFB 7.5.5: buttons 4 and 5 are the wheel, a press is one step. */
	if (pressed & 8)
		dz--;
	if (pressed & 16)
		dz++;
	if (c)
		c->buttons = (unsigned)mask;
	input_pointer(v->input, x, y, v->width, v->height, dz,
		      (unsigned)mask & (INPUT_BTN_LEFT | INPUT_BTN_MIDDLE | INPUT_BTN_RIGHT |
					INPUT_BTN_WHEEL_UP | INPUT_BTN_WHEEL_DOWN));
	rfbDefaultPtrAddEvent(mask, x, y, cl);
}

/* --- authentication ----------------------------------------------------- */

/*
 * VNC authentication (RFB 7.2.2): the client encrypts our 16-byte challenge
 * with DES keyed by the password; no password set lets nobody in, as QEMU.
 */
static rfbBool check_password(rfbClientPtr cl, const char *response, int len)
{
	struct vnc *v = cl->screen->screenData;
	unsigned char expect[CHALLENGESIZE];
	bool ok;

	if (len != CHALLENGESIZE)
		return FALSE;
	pthread_mutex_lock(&v->pw_lock);
	ok = v->password[0] != '\0';
	if (ok) {
		memcpy(expect, cl->authChallenge, CHALLENGESIZE);
		rfbEncryptBytes(expect, v->password);
	}
	pthread_mutex_unlock(&v->pw_lock);
	return ok && memcmp(expect, response, CHALLENGESIZE) == 0;
}

int vnc_set_password(struct vnc *v, const char *pw, char *err, size_t errlen)
{
	if (!v) {
		snprintf(err, errlen, "Could not set password");
		return -1;
	}
	if (!v->opts.password) {
		/* QEMU 7.2 vnc_display_password: a display without password auth refuses. */
		snprintf(err, errlen, "Could not set password");
		return -1;
	}
	pthread_mutex_lock(&v->pw_lock);
	memset(v->password, 0, sizeof(v->password));
	/* VNC passwords are at most 8 characters; DES takes the first 8 (RFB 7.2.2). */
	if (pw)
		strncpy(v->password, pw, 8);
	pthread_mutex_unlock(&v->pw_lock);
	return 0;
}

/* --- start and stop ------------------------------------------------------ */

static int setup_screen(struct vnc *v, char *err, size_t errlen)
{
	int argc = 0;
	rfbScreenInfoPtr s;

	v->width = 640;
	v->height = 480;
	v->fb = calloc((size_t)v->width * v->height, 4);
	if (!v->fb) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s = rfbGetScreen(&argc, NULL, v->width, v->height, 8, 3, 4);
	if (!s) {
		snprintf(err, errlen, "libvncserver could not create a screen");
		return -1;
	}
	v->screen = s;
	vnc_pixel_format(s);
	s->frameBuffer = (char *)v->fb;
	/* No pointer drawn into the picture: the guest draws its own (QEMU's default). */
	s->cursor = NULL;
	s->screenData = v;
	s->desktopName = v->name;
	s->newClientHook = new_client;
	s->displayHook = display_hook;
	s->kbdAddEvent = key_event;
	s->ptrAddEvent = pointer_event;
	s->setXCutText = NULL;
	s->alwaysShared = v->opts.share == VNC_SHARE_IGNORE;
	s->neverShared = FALSE;
	s->dontDisconnect = FALSE;
	s->deferUpdateTime = 0;
	s->port = 0;
	s->ipv6port = 0;
	s->autoPort = FALSE;
	s->httpPort = -1;
	s->httpDir = NULL;
	s->listenSock = RFB_INVALID_SOCKET;
	s->listen6Sock = RFB_INVALID_SOCKET;
	if (v->opts.password) {
		s->authPasswdData = v;	/* non-NULL: libvncserver offers VNC auth */
		s->passwordCheck = check_password;
	}
	return 0;
}

struct vnc *vnc_start(const struct vnc_options *o, struct display *d, struct input *in,
		      vnc_event_fn event, void *opaque, char *err, size_t errlen)
{
	struct vnc *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	v->opts = *o;
	v->display = d;
	v->input = in;
	v->event = event;
	v->event_opaque = opaque;
	v->listen_fd = v->ws_fd = -1;
	v->interval = REFRESH_BASE_MS;
	/* QEMU 7.2 vnc_display_open's desktop name. */
	if (o->name[0])
		snprintf(v->name, sizeof(v->name), "QEMU (%s)", o->name);
	else
		snprintf(v->name, sizeof(v->name), "QEMU");
	pthread_mutex_init(&v->pw_lock, NULL);
	pthread_mutex_init(&v->clients_lock, NULL);
	rfbLogEnable(getenv("KESTREL_VNC_DEBUG") != NULL);
	rfbMaxClientWait = CLIENT_WAIT_MS;
	vnc_register_ext_key();
	if (setup_screen(v, err, errlen) < 0 || vnc_listen(v, err, errlen) < 0)
		goto fail;
	rfbInitServer(v->screen);
	if (v->opts.reverse && vnc_reverse(v, err, errlen) < 0)
		goto fail;
	if (display_add_listener(d, &listener_ops, v) < 0) {
		snprintf(err, errlen, "too many display listeners");
		goto fail;
	}
	v->listening = true;
	if (pthread_create(&v->thread, NULL, vnc_thread, v) != 0) {
		display_remove_listener(d, v);
		snprintf(err, errlen, "cannot start the VNC thread");
		goto fail;
	}
	v->thread_started = true;
	return v;
fail:
	vnc_stop(v);
	return NULL;
}

struct json_object *vnc_clients_json(struct vnc *v)
{
	struct json_object *a = json_object_new_array();

	pthread_mutex_lock(&v->clients_lock);
	for (struct vnc_client *c = v->clients; c; c = c->next) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "family", json_object_new_string(c->family));
		json_object_object_add(o, "service", json_object_new_string(c->service));
		json_object_object_add(o, "host", json_object_new_string(c->host));
		json_object_object_add(o, "websocket", json_object_new_boolean(c->websocket));
		json_object_array_add(a, o);
	}
	pthread_mutex_unlock(&v->clients_lock);
	return a;
}

void vnc_stop(struct vnc *v)
{
	if (!v)
		return;
	if (v->thread_started) {
		atomic_store(&v->quit, true);
		pthread_join(v->thread, NULL);
	}
	if (v->listening)
		display_remove_listener(v->display, v);
	if (v->screen) {
		rfbShutdownServer(v->screen, TRUE);
		rfbScreenCleanup(v->screen);
	}
	vnc_close_listeners(v);
	pthread_mutex_destroy(&v->pw_lock);
	pthread_mutex_destroy(&v->clients_lock);
	free(v->fb);
	free(v->old_fb);
	free(v);
}
