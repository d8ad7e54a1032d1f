/*
 * The VNC server (QEMU's -vnc) on the display surface (core/display.h), with
 * key and pointer events sent to core/input.h.  vnc_opts.c parses QEMU's
 * option syntax (always built, so a build without libvncserver still names
 * bad options); vnc.c is the server on libvncserver.  Without libvncserver
 * vnc_start fails with "VNC is not built in".
 */
#ifndef KESTREL_UI_VNC_H
#define KESTREL_UI_VNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct display;
struct input;
struct json_object;

enum vnc_kind { VNC_OFF, VNC_TCP, VNC_UNIX };
enum vnc_share { VNC_SHARE_ALLOW_EXCLUSIVE, VNC_SHARE_FORCE_SHARED, VNC_SHARE_IGNORE };

#define VNC_PORT_BASE 5900
#define VNC_WS_PORT_BASE 5700	/* websocket=on: 5700 + display, as QEMU */

struct vnc_options {
	enum vnc_kind kind;
	char host[256];		/* "" for every address (QEMU's 0.0.0.0) */
	int display;		/* port 5900 + display; with reverse=on the port itself */
	char path[108];		/* unix:PATH */
	bool password;		/* VNC DES authentication; no password set: nobody gets in */
	bool reverse;		/* connect out to a listening viewer */
	bool lossy;		/* tight may send JPEG */
	int websocket;		/* -1 off; else the websocket port */
	enum vnc_share share;
	int to;			/* the last display tried when 5900 + display is taken; -1: none */
	int keymap;		/* -k's layout (keymap.h); 0 en-us */
	char name[64];		/* -name: the desktop is "QEMU (name)", else "QEMU" */
};

/* Parses QEMU's -vnc argument; -1 with the reason (naming the problem) in err. */
int vnc_parse(const char *arg, struct vnc_options *o, char *err, size_t errlen);
/* Whether this build has the server (libvncserver). */
bool vnc_built_in(void);

/*
 * Events VNC_CONNECTED / VNC_INITIALIZED / VNC_DISCONNECTED with QEMU's data;
 * called on the VNC thread, data owned by the callee.
 */
typedef void (*vnc_event_fn)(void *opaque, const char *event, struct json_object *data);

struct vnc;

struct vnc *vnc_start(const struct vnc_options *o, struct display *d, struct input *in,
		      vnc_event_fn event, void *opaque, char *err, size_t errlen);
void vnc_stop(struct vnc *v);
/* The port actually listened on (after to=), -1 for none (unix, reverse). */
int vnc_port(const struct vnc *v);
/* change vnc password / set_password: NULL or "" clears it (nobody gets in). */
int vnc_set_password(struct vnc *v, const char *pw, char *err, size_t errlen);
/* QMP query-vnc's VncInfo (v NULL: {"enabled": false}). */
struct json_object *vnc_query(struct vnc *v);
/* HMP info vnc. */
void vnc_info(struct vnc *v, FILE *out);

#endif
