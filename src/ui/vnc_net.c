/*
 * The VNC server's sockets and what the monitor sees of them: listeners
 * (TCP with QEMU's to= port search, unix:PATH, websocket=), reverse
 * connections, the QEMU extended key event extension, events and query-vnc.
 * Every accepted socket is handed to libvncserver with rfbNewClient, so one
 * accept path serves TCP, unix and websocket listeners alike.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/input.h"
#include "ui/vnc_int.h"

static int listen_tcp(const char *host, int port, int *out_errno)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char serv[16];
	int fd = -1, one = 1;

	snprintf(serv, sizeof(serv), "%d", port);
	/* IPv4 first, as QEMU lists localhost's 127.0.0.1 before ::1. */
	hints.ai_family = AF_INET;
	if (getaddrinfo(host[0] ? host : "0.0.0.0", serv, &hints, &res) != 0)
		hints.ai_family = AF_UNSPEC;
	else
		freeaddrinfo(res);
	if (getaddrinfo(host[0] ? host : "0.0.0.0", serv, &hints, &res) != 0) {
		*out_errno = EADDRNOTAVAIL;
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		*out_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errlen, "Failed to create socket: %s", strerror(errno));
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "unix socket path '%s' is too long", path);
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);	/* QEMU unlinks a stale socket file too */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "Failed to bind socket to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int vnc_listen(struct vnc *v, char *err, size_t errlen)
{
	const struct vnc_options *o = &v->opts;
	int last = o->to >= 0 ? o->to : o->display, e = 0;

	v->port = -1;
	v->family = "unknown";
	if (o->kind == VNC_UNIX) {
		v->listen_fd = listen_unix(o->path, err, errlen);
		v->family = "unix";
		snprintf(v->host_shown, sizeof(v->host_shown), "%s", o->path);
		return v->listen_fd < 0 ? -1 : 0;
	}
	if (o->reverse)
		return 0;
	/* QEMU's to=: try 5900+display .. 5900+to, the first free one wins. */
	for (int d = o->display; d <= last && v->listen_fd < 0; d++) {
		v->listen_fd = listen_tcp(o->host, VNC_PORT_BASE + d, &e);
		if (v->listen_fd >= 0)
			v->port = VNC_PORT_BASE + d;
	}
	if (v->listen_fd < 0) {
		if (o->to >= 0)
			snprintf(err, errlen, "Failed to find an available port on %s: ports %d-%d: %s",
				 o->host[0] ? o->host : "0.0.0.0", VNC_PORT_BASE + o->display,
				 VNC_PORT_BASE + last, strerror(e));
		else
			snprintf(err, errlen, "Failed to bind socket to %s:%d: %s",
				 o->host[0] ? o->host : "0.0.0.0", VNC_PORT_BASE + o->display,
				 strerror(e));
		return -1;
	}
	{
		struct sockaddr_storage ss = { 0 };
		socklen_t len = sizeof(ss);
		char serv[16];
		if (getsockname(v->listen_fd, (struct sockaddr *)&ss, &len) == 0)
			vnc_describe_addr(&ss, v->host_shown, sizeof(v->host_shown), serv,
					  sizeof(serv), &v->family);
	}
	if (o->websocket > 0) {
		v->ws_fd = listen_tcp(o->host, o->websocket, &e);
		if (v->ws_fd < 0) {
			snprintf(err, errlen, "Failed to bind websocket to %s:%d: %s",
				 o->host[0] ? o->host : "0.0.0.0", o->websocket, strerror(e));
			return -1;
		}
	}
	return 0;
}

int vnc_reverse(struct vnc *v, char *err, size_t errlen)
{
	/* With reverse=on QEMU reads HOST:D's D as the viewer's port itself. */
	if (!rfbReverseConnection(v->screen, v->opts.host[0] ? v->opts.host : (char *)"localhost",
				  v->opts.display)) {
		snprintf(err, errlen, "Failed to connect to %s:%d: %s",
			 v->opts.host[0] ? v->opts.host : "localhost", v->opts.display,
			 strerror(errno ? errno : ECONNREFUSED));
		return -1;
	}
	return 0;
}

static void accept_one(struct vnc *v, int lfd, bool ws)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), one = 1;

	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	v->accepting_ws = ws;
	/* On failure rfbNewClient closes fd itself. */
	rfbNewClient(v->screen, fd);
	v->accepting_ws = false;
}

void vnc_accept_extra(struct vnc *v)
{
	struct pollfd p[2] = { { v->listen_fd, POLLIN, 0 }, { v->ws_fd, POLLIN, 0 } };

	if (poll(p, 2, 0) <= 0)
		return;
	if (p[0].revents & POLLIN)
		accept_one(v, v->listen_fd, false);
	if (p[1].revents & POLLIN)
		accept_one(v, v->ws_fd, true);
}

void vnc_close_listeners(struct vnc *v)
{
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->ws_fd >= 0)
		close(v->ws_fd);
	if (v->opts.kind == VNC_UNIX && v->listen_fd >= 0)
		unlink(v->opts.path);
	v->listen_fd = v->ws_fd = -1;
}

void vnc_describe_addr(const struct sockaddr_storage *ss, char *host, size_t hl,
		       char *serv, size_t sl, const char **family)
{
	if (ss->ss_family == AF_UNIX) {
		*family = "unix";
		snprintf(host, hl, "%s", ((const struct sockaddr_un *)ss)->sun_path);
		snprintf(serv, sl, "%s", "");
		return;
	}
	*family = ss->ss_family == AF_INET ? "ipv4" : ss->ss_family == AF_INET6 ? "ipv6" : "unknown";
	if (getnameinfo((const struct sockaddr *)ss, sizeof(*ss), host, (socklen_t)hl, serv,
			(socklen_t)sl, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(host, hl, "%s", "");
		snprintf(serv, sl, "%s", "");
	}
}

/* --- QEMU extended key event (QEMU's rfbproto addition, pseudo-encoding -258) */

#define QEMU_EXT_KEY_ENCODING (-258)
#define QEMU_CLIENT_MSG 255

/*
 * The client announced it can send raw key numbers: acknowledge with a
 * FramebufferUpdate holding one rectangle of that encoding (as QEMU's
 * vnc_qemu_ext_key_event ack), after which it sends message 255/0.
 */
static rfbBool ext_key_enable(rfbClientPtr cl, void **data, int enc)
{
	rfbFramebufferUpdateMsg fu = { .type = rfbFramebufferUpdate, .nRects = Swap16IfLE(1) };
	rfbFramebufferUpdateRectHeader rh = { .encoding = Swap32IfLE((uint32_t)enc) };

	if (enc != QEMU_EXT_KEY_ENCODING)
		return FALSE;
	rfbWriteExact(cl, (char *)&fu, sz_rfbFramebufferUpdateMsg);
	rfbWriteExact(cl, (char *)&rh, sz_rfbFramebufferUpdateRectHeader);
	return TRUE;
}

static rfbBool ext_key_message(rfbClientPtr cl, void *data, const rfbClientToServerMsg *msg)
{
	struct vnc *v = cl->screen->screenData;
	uint8_t m[11];	/* after the type: subtype, down (u16), keysym, keycode (u32 BE) */
	unsigned qnum;

	if (msg->type != QEMU_CLIENT_MSG)
		return FALSE;
	if (rfbReadExact(cl, (char *)m, sizeof(m)) <= 0) {
		rfbCloseClient(cl);
		return TRUE;
	}
	if (m[0] != 0) {
		/* Only the key event (subtype 0) is ours; anything else ends the client. */
		rfbCloseClient(cl);
		return TRUE;
	}
	qnum = (unsigned)m[7] << 24 | (unsigned)m[8] << 16 | (unsigned)m[9] << 8 | m[10];
	if (qnum > 0 && qnum < 0x100)
		input_key(v->input, qnum, (m[1] << 8 | m[2]) != 0);
	return TRUE;
}

static rfbBool ext_key_new_client(rfbClientPtr cl, void **data)
{
	return TRUE;
}

static int ext_key_encodings[] = { QEMU_EXT_KEY_ENCODING, 0 };
static rfbProtocolExtension ext_key = {
	.newClient = ext_key_new_client,
	.pseudoEncodings = ext_key_encodings,
	.enablePseudoEncoding = ext_key_enable,
	.handleMessage = ext_key_message,
};

/*
 * libvncserver 0.9.14 never frees a client's rfbExtensionData (LeakSanitizer,
 * fuzz_vnc): 24 bytes per connection.  Its client-gone hook does.
 */
void vnc_free_extensions(rfbClientPtr cl)
{
	rfbExtensionData *e = cl->extensions, *next;

	for (; e; e = next) {
		next = e->next;
		free(e);
	}
	cl->extensions = NULL;
}

void vnc_register_ext_key(void)
{
	static bool done;

	if (!done)
		rfbRegisterProtocolExtension(&ext_key);
	done = true;
}

/* --- events and queries --------------------------------------------------- */

static const char *auth_name(const struct vnc *v)
{
	return v->opts.password ? "vnc" : "none";
}

static struct json_object *basic_info(const char *host, const char *service, const char *family,
				      bool websocket)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "host", json_object_new_string(host));
	json_object_object_add(o, "service", json_object_new_string(service));
	json_object_object_add(o, "family", json_object_new_string(family));
	json_object_object_add(o, "websocket", json_object_new_boolean(websocket));
	return o;
}

static struct json_object *server_info(const struct vnc *v)
{
	char serv[16];
	struct json_object *o;

	snprintf(serv, sizeof(serv), "%d", v->port);
	o = basic_info(v->host_shown, v->port >= 0 ? serv : "", v->family, false);
	json_object_object_add(o, "auth", json_object_new_string(auth_name(v)));
	return o;
}

void vnc_emit_client(struct vnc *v, const char *event, const char *host, const char *service,
		     const char *family, bool websocket, bool full)
{
	struct json_object *data;

	if (!v->event)
		return;
	data = json_object_new_object();
	json_object_object_add(data, "server", server_info(v));
	json_object_object_add(data, "client", basic_info(host, service, family, websocket));
	v->event(v->event_opaque, event, data);
}

int vnc_port(const struct vnc *v)
{
	return v ? v->port : -1;
}

struct json_object *vnc_query(struct vnc *v)
{
	struct json_object *o = json_object_new_object(), *clients;
	char serv[16];

	json_object_object_add(o, "enabled", json_object_new_boolean(v != NULL));
	if (!v)
		return o;
	snprintf(serv, sizeof(serv), "%d", v->port);
	json_object_object_add(o, "auth", json_object_new_string(auth_name(v)));
	json_object_object_add(o, "family", json_object_new_string(v->family));
	clients = vnc_clients_json(v);
	json_object_object_add(o, "clients", clients);
	json_object_object_add(o, "service", json_object_new_string(v->port >= 0 ? serv : ""));
	json_object_object_add(o, "host", json_object_new_string(v->host_shown));
	return o;
}

void vnc_info(struct vnc *v, FILE *out)
{
	struct json_object *cl;

	if (!v) {
		fprintf(out, "default:\n  not started\n");
		return;
	}
	fprintf(out, "default:\n");
	if (v->opts.kind == VNC_UNIX)
		fprintf(out, "  Server: %s (unix)\n", v->host_shown);
	else if (v->port >= 0)
		fprintf(out, "  Server: %s:%d (%s)\n", v->host_shown, v->port, v->family);
	fprintf(out, "    Auth: %s (Sub: none)\n", auth_name(v));
	cl = vnc_clients_json(v);
	for (size_t i = 0; i < json_object_array_length(cl); i++) {
		struct json_object *c = json_object_array_get_idx(cl, i), *h, *s, *f;
		json_object_object_get_ex(c, "host", &h);
		json_object_object_get_ex(c, "service", &s);
		json_object_object_get_ex(c, "family", &f);
		fprintf(out, "  Client: %s:%s (%s)\n    x509_dname: none\n    sasl_username: none\n",
			json_object_get_string(h), json_object_get_string(s),
			json_object_get_string(f));
	}
	json_object_put(cl);
}
