/* Between the VNC server's files (vnc.c, vnc_net.c); not for other rooms. */
#ifndef KESTREL_UI_VNC_INT_H
#define KESTREL_UI_VNC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <rfb/rfb.h>

#include "core/display.h"
#include "ui/vnc.h"

#define VNC_TILE 64
#define VNC_TILES (DISPLAY_MAX_WIDTH / VNC_TILE)

struct vnc_rect {
	int x, y, w, h;
};

/* Per-client state (cl->clientData), listed for query-vnc under clients_lock. */
struct vnc_client {
	struct vnc *v;
	struct vnc_client *next;
	bool initialized;	/* VNC_INITIALIZED sent */
	bool websocket;
	unsigned buttons;	/* RFB button mask last seen, for wheel edges */
	char host[64], service[16];
	const char *family;
};

struct vnc {
	struct vnc_options opts;
	struct display *display;
	struct input *input;
	vnc_event_fn event;
	void *event_opaque;
	char name[80];

	rfbScreenInfoPtr screen;
	uint32_t *fb, *old_fb;	/* our copy of the surface, what libvncserver sends */
	int width, height;
	int port;		/* TCP port listened on, -1 for none */
	int listen_fd;		/* unix:PATH listener (libvncserver has none) */
	int ws_fd;		/* websocket= listener */
	bool accepting_ws;	/* new_client runs for a websocket accept */
	char host_shown[128];	/* query-vnc's host, family */
	const char *family;

	/* Written by the display listener under the display lock. */
	uint64_t dirty[VNC_TILES][VNC_TILES / 64];
	bool any_dirty, resized;
	struct vnc_rect mark[VNC_TILES * VNC_TILES];

	pthread_mutex_t clients_lock;
	struct vnc_client *clients;

	pthread_mutex_t pw_lock;
	char password[9];

	pthread_t thread;
	bool thread_started, listening;
	atomic_bool quit;
	int interval;		/* ms to the next frame */
	bool kick;		/* VNC thread only: refresh now */
};

struct json_object *vnc_clients_json(struct vnc *v);
void vnc_pixel_format(rfbScreenInfoPtr s);
void vnc_poll_clients(struct vnc *v);
int vnc_listen(struct vnc *v, char *err, size_t errlen);
int vnc_reverse(struct vnc *v, char *err, size_t errlen);
void vnc_accept_extra(struct vnc *v);
void vnc_close_listeners(struct vnc *v);
void vnc_register_ext_key(void);
void vnc_free_extensions(rfbClientPtr cl);
void vnc_describe_addr(const struct sockaddr_storage *ss, char *host, size_t hl,
		       char *serv, size_t sl, const char **family);
void vnc_emit_client(struct vnc *v, const char *event, const char *host, const char *service,
		     const char *family, bool websocket, bool full);

#endif
