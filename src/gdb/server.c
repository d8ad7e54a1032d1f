/* The GDB stub's socket and thread; see server.h. */
#include "gdb/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gdb/packet.h"
#include "gdb/stub.h"

struct gdb_server {
	const struct gdb_target_ops *ops;
	void *opaque;
	int listen_fd;
	int client;
	int notify[2];		/* stop reports from the target's threads */
	int quit[2];		/* gdb_server_close wakes the thread */
	pthread_t thread;
	bool started;
	_Atomic bool holds;
	bool running;		/* the target runs after a resume */
	char unix_path[108];
	char address[160];
	int port;
	struct gdb_rx rx;
	struct gdb_stub stub;
	char last[2 * GDB_PACKET_MAX + 8];	/* the last frame sent, for '-' */
	int last_len;
};

static int set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int listen_tcp(struct gdb_server *srv, const char *spec, char *err, size_t errlen)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;
	size_t hlen;
	int one = 1, fd, rc;

	if (!colon || (size_t)(colon - spec) >= sizeof(host) || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return set_err(err, errlen, "gdbstub: '%s' is not tcp:[HOST]:PORT", spec);
	hlen = (size_t)(colon - spec);
	memcpy(host, spec, hlen);
	host[hlen] = 0;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = 0;
	}
	/* No host: loopback, so a debugger is never offered to the network by default. */
	rc = getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &ai);
	if (rc != 0)
		return set_err(err, errlen, "gdbstub: cannot resolve '%s'", spec);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
		snprintf(err, errlen, "gdbstub: cannot listen on tcp:%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char num[64] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, num, sizeof(num));
			srv->port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, num, sizeof(num));
			srv->port = ntohs(in6->sin6_port);
		}
	}
	snprintf(srv->address, sizeof(srv->address), "tcp:%s:%d", num, srv->port);
	srv->listen_fd = fd;
	return 0;
}

static int listen_unix(struct gdb_server *srv, const char *spec, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strcspn(spec, ",");
	const char *opt = spec + n;
	int fd;

	while (*opt == ',') {
		size_t l = strcspn(opt + 1, ",");
		/* QEMU's socket chardev flags; a gdb socket is always a server that does not wait. */
		if (!(l == 6 && strncmp(opt + 1, "server", 6) == 0) &&
		    !(l == 8 && strncmp(opt + 1, "wait=off", 8) == 0) &&
		    !(l == 6 && strncmp(opt + 1, "nowait", 6) == 0) &&
		    !(l == 9 && strncmp(opt + 1, "server=on", 9) == 0))
			return set_err(err, errlen, "gdbstub: unsupported option in 'unix:%s'", spec);
		opt += 1 + l;
	}
	if (n == 0 || n >= sizeof(sa.sun_path))
		return set_err(err, errlen, "gdbstub: bad socket path in 'unix:%s'", spec);
	memcpy(sa.sun_path, spec, n);
	memcpy(srv->unix_path, spec, n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		snprintf(err, errlen, "gdbstub: cannot listen on unix:%s: %s", srv->unix_path,
			 strerror(errno));
		srv->unix_path[0] = 0;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(srv->address, sizeof(srv->address), "unix:%s", srv->unix_path);
	srv->listen_fd = fd;
	return 0;
}

struct gdb_server *gdb_server_open(const char *spec, const struct gdb_target_ops *ops,
				   void *opaque, char *err, size_t errlen)
{
	struct gdb_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv) {
		set_err(err, errlen, "gdbstub: %s", "out of memory");
		return NULL;
	}
	srv->ops = ops;
	srv->opaque = opaque;
	srv->client = -1;
	srv->listen_fd = -1;
	srv->notify[0] = srv->notify[1] = srv->quit[0] = srv->quit[1] = -1;
	if (strncmp(spec, "tcp:", 4) == 0)
		rc = listen_tcp(srv, spec + 4, err, errlen);
	else if (strncmp(spec, "unix:", 5) == 0)
		rc = listen_unix(srv, spec + 5, err, errlen);
	else
		rc = set_err(err, errlen,
			     "gdbstub: '%s' is not a supported device (tcp:[HOST]:PORT or unix:PATH,server)",
			     spec);
	if (rc == 0 && (pipe2(srv->notify, O_CLOEXEC | O_NONBLOCK) < 0 ||
			pipe2(srv->quit, O_CLOEXEC | O_NONBLOCK) < 0))
		rc = set_err(err, errlen, "gdbstub: %s", strerror(errno));
	if (rc < 0) {
		gdb_server_close(srv);
		return NULL;
	}
	gdb_stub_init(&srv->stub, ops, opaque);
	return srv;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_packet(struct gdb_server *srv, const char *payload, size_t len)
{
	int n = gdb_frame(payload, len, srv->last, sizeof(srv->last));

	if (n < 0)
		return -1;
	srv->last_len = n;
	return send_all(srv->client, srv->last, (size_t)n);
}

/* qRcmd output goes first, as "O" console packets (RSP "qRcmd,command"). */
static int send_console(struct gdb_server *srv)
{
	const size_t chunk = (GDB_PACKET_MAX - 2) / 2;
	char pkt[GDB_PACKET_MAX];

	for (size_t o = 0; o < srv->stub.console_len; o += chunk) {
		size_t n = srv->stub.console_len - o < chunk ? srv->stub.console_len - o : chunk;
		pkt[0] = 'O';
		gdb_hex_encode(srv->stub.console + o, n, pkt + 1);
		if (send_packet(srv, pkt, 1 + 2 * n) < 0)
			return -1;
	}
	return 0;
}

static void report_stop(struct gdb_server *srv, const struct gdb_stop *st)
{
	srv->running = false;
	gdb_stub_stopped(&srv->stub, st);
	atomic_store(&srv->holds, st->reason != GDB_STOP_POWEROFF && st->reason != GDB_STOP_KILLED);
	(void)send_packet(srv, srv->stub.reply, srv->stub.reply_len);
}

static bool take_stop(struct gdb_server *srv, struct gdb_stop *st)
{
	return read(srv->notify[0], st, sizeof(*st)) == (ssize_t)sizeof(*st);
}

/* Ctrl-C: stop every vCPU; a stop they reported meanwhile wins over SIGINT. */
static void interrupt(struct gdb_server *srv)
{
	struct gdb_stop st = { .reason = GDB_STOP_INTERRUPT, .cpu = srv->stub.gcpu };

	if (!srv->running)
		return;
	if (srv->ops->stop(srv->opaque) < 0)
		return;
	if (!take_stop(srv, &st))
		st = (struct gdb_stop){ .reason = GDB_STOP_INTERRUPT, .cpu = srv->stub.gcpu };
	report_stop(srv, &st);
}

/* Returns false when the session ends. */
static bool on_packet(struct gdb_server *srv)
{
	enum gdb_action act;

	if (!srv->stub.noack && send_all(srv->client, "+", 1) < 0)
		return false;
	if (srv->running) {
		/* All-stop gdb sends nothing but 0x03 while the target runs. */
		return send_packet(srv, "E10", 3) == 0;
	}
	act = gdb_stub_handle(&srv->stub, (const char *)srv->rx.buf, srv->rx.len);
	if (srv->stub.noack_pending) {
		srv->stub.noack_pending = false;
		srv->stub.noack = true;
	}
	switch (act) {
	case GDB_ACT_REPLY:
		return send_console(srv) == 0 &&
		       send_packet(srv, srv->stub.reply, srv->stub.reply_len) == 0;
	case GDB_ACT_RESUME:
		srv->running = true;
		atomic_store(&srv->holds, false);
		return true;
	case GDB_ACT_DETACH:
		(void)send_packet(srv, srv->stub.reply, srv->stub.reply_len);
		return false;
	case GDB_ACT_KILL:
		gdb_stub_reset(&srv->stub);
		srv->ops->detach(srv->opaque, true);
		srv->client = -1 - srv->client;	/* closed by the caller; no detach again */
		return false;
	}
	return false;
}

static bool on_input(struct gdb_server *srv)
{
	uint8_t buf[4096];
	ssize_t n = recv(srv->client, buf, sizeof(buf), 0);

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		switch (gdb_rx_feed(&srv->rx, buf[i])) {
		case GDB_RX_PACKET:
			if (!on_packet(srv))
				return false;
			break;
		case GDB_RX_BAD_CSUM:
			/* Without acks there is no retransmission to ask for: dropped. */
			if (!srv->stub.noack && send_all(srv->client, "-", 1) < 0)
				return false;
			break;
		case GDB_RX_TOO_LONG:
			if ((!srv->stub.noack && send_all(srv->client, "+", 1) < 0) ||
			    send_packet(srv, "E16", 3) < 0)
				return false;
			break;
		case GDB_RX_NACK:
			if (srv->last_len && send_all(srv->client, srv->last, (size_t)srv->last_len) < 0)
				return false;
			break;
		case GDB_RX_INTERRUPT:
			interrupt(srv);
			break;
		case GDB_RX_ACK:
		case GDB_RX_NONE:
			break;
		}
	}
	return true;
}

static void session(struct gdb_server *srv)
{
	struct gdb_stop st;
	struct pollfd p[3];
	int one = 1;

	(void)setsockopt(srv->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	gdb_rx_init(&srv->rx);
	srv->last_len = 0;
	/* A debugger that attaches finds the VM stopped, as QEMU's gdbstub does. */
	if (srv->ops->stop(srv->opaque) < 0)
		return;
	while (take_stop(srv, &st))
		;
	srv->running = false;
	srv->stub.last = (struct gdb_stop){ .reason = GDB_STOP_TRAP, .cpu = 0 };
	atomic_store(&srv->holds, true);
	for (;;) {
		p[0] = (struct pollfd){ .fd = srv->client, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = srv->notify[0], .events = POLLIN };
		p[2] = (struct pollfd){ .fd = srv->quit[0], .events = POLLIN };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* A stop first: a power-off's W00 comes just before the VMM closes the stub. */
		if (p[1].revents && take_stop(srv, &st) && srv->running)
			report_stop(srv, &st);
		if (p[2].revents)
			break;
		if (p[0].revents && !on_input(srv))
			break;
	}
	if (srv->client >= 0) {
		/* D, a lost connection or close: breakpoints out, and the VM runs on. */
		gdb_stub_reset(&srv->stub);
		srv->ops->detach(srv->opaque, false);
	} else {
		srv->client = -1 - srv->client;
	}
	atomic_store(&srv->holds, false);
	srv->running = false;
}

static void *server_thread(void *arg)
{
	struct gdb_server *srv = arg;
	struct pollfd p[2];

	for (;;) {
		p[0] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = srv->quit[0], .events = POLLIN };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		srv->client = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (srv->client < 0)
			continue;
		session(srv);
		close(srv->client);
		srv->client = -1;
		gdb_stub_free(&srv->stub);
		gdb_stub_init(&srv->stub, srv->ops, srv->opaque);
	}
}

int gdb_server_start(struct gdb_server *srv)
{
	int rc = pthread_create(&srv->thread, NULL, server_thread, srv);

	if (rc != 0)
		return -rc;
	srv->started = true;
	return 0;
}

void gdb_server_close(struct gdb_server *srv)
{
	if (!srv)
		return;
	if (srv->started) {
		(void)write(srv->quit[1], "q", 1);
		pthread_join(srv->thread, NULL);
	}
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->unix_path[0])
		unlink(srv->unix_path);
	for (int i = 0; i < 2; i++) {
		if (srv->notify[i] >= 0)
			close(srv->notify[i]);
		if (srv->quit[i] >= 0)
			close(srv->quit[i]);
	}
	gdb_stub_free(&srv->stub);
	free(srv);
}

void gdb_server_notify_stop(struct gdb_server *srv, const struct gdb_stop *st)
{
	/* One small write is atomic on a pipe (PIPE_BUF); a full pipe drops a duplicate report. */
	(void)!write(srv->notify[1], st, sizeof(*st));
}

bool gdb_server_holds_vm(const struct gdb_server *srv)
{
	return srv && atomic_load(&srv->holds);
}

const char *gdb_server_address(const struct gdb_server *srv)
{
	return srv->address;
}

int gdb_server_port(const struct gdb_server *srv)
{
	return srv->port;
}

bool gdb_server_has_sw_bp(const struct gdb_server *srv, uint64_t addr)
{
	for (size_t i = 0; i < srv->stub.nr_bps; i++)
		if (srv->stub.bps[i].addr == addr)
			return true;
	return false;
}
