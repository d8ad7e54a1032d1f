#include "chardev/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"
#include "util/loop.h"
#include "util/opts.h"
#include "util/size.h"

#define DEFAULT_TCP_HOST "127.0.0.1"

/* ---- parsing ---------------------------------------------------------- */

static bool set_path(struct chardev_spec *spec, const char *path, char *err, size_t errlen)
{
	if (!path || path[0] == '\0') {
		snprintf(err, errlen, "missing path");
		return false;
	}
	if (strlen(path) >= sizeof(spec->path)) {
		snprintf(err, errlen, "path too long (at most %zu bytes)", sizeof(spec->path) - 1);
		return false;
	}
	strcpy(spec->path, path);
	return true;
}

static bool set_host_port(struct chardev_spec *spec, const char *host, const char *port,
			  char *err, size_t errlen)
{
	uint64_t n;

	if (!port || !uint_parse(port, &n) || n > 65535) {
		snprintf(err, errlen, "a TCP port number is needed");
		return false;
	}
	if (!host || !*host)
		host = DEFAULT_TCP_HOST;
	if (strlen(host) >= sizeof(spec->host)) {
		snprintf(err, errlen, "host name too long");
		return false;
	}
	strcpy(spec->host, host);
	spec->port = (uint16_t)n;
	spec->tcp = true;
	return true;
}

/* server=, wait= (and the legacy "server", "nowait" flags); rejects anything else. */
static bool socket_flags(struct opts *o, struct chardev_spec *spec, char *err, size_t errlen)
{
	spec->server = false;
	spec->wait = true;
	if (!opts_get_bool(o, "server", &spec->server) || !opts_get_bool(o, "wait", &spec->wait)) {
		snprintf(err, errlen, "server= and wait= take on or off");
		return false;
	}
	return true;
}

static bool reject_unused(struct opts *o, char *err, size_t errlen)
{
	const char *unknown = opts_first_unused(o);

	if (unknown) {
		snprintf(err, errlen, "Invalid parameter '%s'", unknown);
		return false;
	}
	return true;
}

/*
 * fd=N: a socket passed by the caller (QEMU's SocketAddress of type fd).
 * Checked at once, as QEMU does when it parses the option: anything but a
 * socket gets its error.
 */
static bool set_fd(struct chardev_spec *spec, const char *text, char *err, size_t errlen)
{
	struct stat st;
	uint64_t n;

	if (!uint_parse(text, &n) || n > 0x7fffffff) {
		snprintf(err, errlen, "File descriptor named '%s' has not been found", text);
		return false;
	}
	if (fstat((int)n, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "File descriptor '%s' is not a socket", text);
		return false;
	}
	spec->fd = (int)n;
	return true;
}

/* "unix:PATH,..." and "tcp:HOST:PORT,...": the address, then socket flags. */
static bool parse_legacy_socket(const char *rest, bool tcp, struct chardev_spec *spec, char *err,
				size_t errlen)
{
	/* QEMU's legacy syntax: the first element is the path ("path=" may be spelled). */
	struct opts *o = opts_parse(rest, tcp ? "addr" : "path", err, errlen);
	bool ok = false;

	if (!o)
		return false;
	spec->kind = CHARDEV_SOCKET;
	const char *addr = opts_get(o, tcp ? "addr" : "path");
	if (!addr) {
		snprintf(err, errlen, "missing address");
		goto out;
	}
	if (tcp) {
		char host[64];
		const char *colon = strrchr(addr, ':');
		size_t hostlen = colon ? (size_t)(colon - addr) : 0;
		if (!colon || hostlen >= sizeof(host)) {
			snprintf(err, errlen, "expected tcp:HOST:PORT");
			goto out;
		}
		memcpy(host, addr, hostlen);
		host[hostlen] = '\0';
		if (!set_host_port(spec, host, colon + 1, err, errlen))
			goto out;
	} else if (!set_path(spec, addr, err, errlen)) {
		goto out;
	}
	ok = socket_flags(o, spec, err, errlen) && reject_unused(o, err, errlen);
out:
	opts_free(o);
	return ok;
}

bool chardev_spec_parse(const char *text, struct chardev_spec *spec, char *err, size_t errlen)
{
	memset(spec, 0, sizeof(*spec));
	spec->fd = -1;
	if (strncmp(text, "mon:", 4) == 0) {
		spec->mux = true;
		text += 4;
	}
	if (strcmp(text, "stdio") == 0) {
		spec->kind = CHARDEV_STDIO;
		spec->signal = !spec->mux;	/* QEMU's qemu_chr_parse_compat */
		return true;
	}
	if (spec->mux) {
		snprintf(err, errlen, "the mon: prefix is only supported with stdio");
		return false;
	}
	if (strcmp(text, "none") == 0) {
		spec->kind = CHARDEV_NONE;
		return true;
	}
	if (strcmp(text, "null") == 0) {
		spec->kind = CHARDEV_NULL;
		return true;
	}
	if (strcmp(text, "pty") == 0) {
		spec->kind = CHARDEV_PTY;
		return true;
	}
	if (strncmp(text, "file:", 5) == 0) {
		spec->kind = CHARDEV_FILE;
		return set_path(spec, text + 5, err, errlen);
	}
	if (strncmp(text, "unix:", 5) == 0)
		return parse_legacy_socket(text + 5, false, spec, err, errlen);
	if (strncmp(text, "tcp:", 4) == 0)
		return parse_legacy_socket(text + 4, true, spec, err, errlen);
	snprintf(err, errlen, "'%s' is not a supported character device (stdio, mon:stdio, "
		 "file:PATH, unix:PATH[,server][,nowait], tcp:HOST:PORT[,server][,nowait], pty, "
		 "null, none)", text);
	return false;
}

bool chardev_option_parse(const char *text, struct chardev_spec *spec, char *id, char *err,
			  size_t errlen)
{
	struct opts *o = opts_parse(text, "backend", err, errlen);
	const char *backend, *ident;
	bool ok = false, signal_on = true;

	if (!o)
		return false;
	memset(spec, 0, sizeof(*spec));
	spec->fd = -1;
	backend = opts_get(o, "backend");
	ident = opts_get(o, "id");
	if (!ident || !*ident) {
		snprintf(err, errlen, "Parameter 'id' is missing");
		goto out;
	}
	if (strlen(ident) >= CHARDEV_ID_MAX) {
		snprintf(err, errlen, "id is too long");
		goto out;
	}
	strcpy(id, ident);
	if (!opts_get_bool(o, "mux", &spec->mux) || !opts_get_bool(o, "signal", &signal_on)) {
		snprintf(err, errlen, "mux= and signal= take on or off");
		goto out;
	}
	if (!backend) {
		snprintf(err, errlen, "missing backend");
	} else if (strcmp(backend, "stdio") == 0) {
		spec->kind = CHARDEV_STDIO;
		spec->signal = signal_on;
		ok = true;
	} else if (strcmp(backend, "null") == 0) {
		spec->kind = CHARDEV_NULL;
		ok = true;
	} else if (strcmp(backend, "pty") == 0) {
		spec->kind = CHARDEV_PTY;
		ok = true;
	} else if (strcmp(backend, "file") == 0) {
		spec->kind = CHARDEV_FILE;
		ok = set_path(spec, opts_get(o, "path"), err, errlen);
	} else if (strcmp(backend, "socket") == 0) {
		const char *path = opts_get(o, "path");
		const char *host = opts_get(o, "host");
		const char *port = opts_get(o, "port");
		const char *fd = opts_get(o, "fd");
		spec->kind = CHARDEV_SOCKET;
		if ((path != NULL) + (host != NULL) + (fd != NULL) > 1)
			snprintf(err, errlen, "None or one of 'path', 'fd' or 'host' option required.");
		else if (fd)
			ok = set_fd(spec, fd, err, errlen);
		else if (path)
			ok = set_path(spec, path, err, errlen);
		else
			ok = set_host_port(spec, host, port, err, errlen);
		ok = ok && socket_flags(o, spec, err, errlen);
	} else {
		snprintf(err, errlen, "'%s' is not a valid char driver name "
			 "(stdio, socket, file, pty, null)", backend);
	}
	if (ok && spec->mux && spec->kind != CHARDEV_STDIO) {
		snprintf(err, errlen, "mux=on is only supported with stdio");
		ok = false;
	}
	ok = ok && reject_unused(o, err, errlen);
out:
	opts_free(o);
	return ok;
}

void chardev_spec_describe(const struct chardev_spec *spec, char *buf, size_t len)
{
	const char *server = spec->server ? ",server=on" : "";

	switch (spec->kind) {
	case CHARDEV_NONE:
	case CHARDEV_NULL:
		snprintf(buf, len, "null");
		break;
	case CHARDEV_STDIO:
		snprintf(buf, len, "stdio");
		break;
	case CHARDEV_FILE:
		snprintf(buf, len, "file:%s", spec->path);
		break;
	case CHARDEV_PTY:
		snprintf(buf, len, "pty");
		break;
	case CHARDEV_SOCKET:
		if (spec->fd >= 0)
			snprintf(buf, len, "fd:%d%s", spec->fd, server);
		else if (spec->tcp)
			snprintf(buf, len, "tcp:%s:%u%s", spec->host, spec->port, server);
		else
			snprintf(buf, len, "unix:%s%s", spec->path, server);
		break;
	}
}

/* ---- opening ---------------------------------------------------------- */

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int open_pty(struct chardev *cd)
{
	struct termios tio;
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0) {
		log_error("%s: cannot allocate a pseudo-terminal: %s", cd->label, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* The guest's bytes must arrive unchanged: no echo, no line discipline. */
	if (tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		tcsetattr(fd, TCSAFLUSH, &tio);
	}
	/*
	 * Holding the slave open ourselves keeps the master from reporting hang-up
	 * (and epoll from spinning) until a user opens the terminal.
	 */
	cd->hold_fd = open(ptsname(fd), O_RDWR | O_NOCTTY | O_CLOEXEC);
	set_nonblock(fd);
	cd->in_fd = cd->out_fd = fd;
	snprintf(cd->description, sizeof(cd->description), "pty:%s", ptsname(fd));
	/* QEMU's wording, which scripts parse to find the terminal. */
	fprintf(stderr, "char device redirected to %s (label %s)\n", ptsname(fd), cd->label);
	return 0;
}

/* Builds the socket address; for TCP resolves host (numeric or by name). */
static int socket_address(const struct chardev_spec *spec, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (!spec->tcp) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, spec->path);
		*len = sizeof(*un);
		return 0;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof(port), "%u", spec->port);
	int rc = getaddrinfo(spec->host, port, &hints, &res);
	if (rc != 0) {
		log_error("tcp:%s:%u: %s", spec->host, spec->port, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* server=on,wait=on: the first client before start-up goes on. */
static int wait_for_client(struct chardev *cd, const char *what)
{
	int client;

	fprintf(stderr, "kestrel: waiting for connection on: %s\n", what);
	client = accept4(cd->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (client < 0) {
		log_error("%s: accept: %s", what, strerror(errno));
		return -1;
	}
	set_nonblock(client);
	cd->in_fd = cd->out_fd = client;
	cd->connected = true;
	return 0;
}

/*
 * fd=N: the caller's socket.  server=on: it listens (libvirt binds and
 * listens before it starts us; a bound socket that does not yet is made
 * to); server=off: it is the connection.
 */
static int adopt_socket(struct chardev *cd, const char *what)
{
	int fd = cd->spec.fd, listening = 0;
	socklen_t optlen = sizeof(listening);

	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("%s: %s", what, strerror(errno));
		return -1;
	}
	if (!cd->spec.server) {
		set_nonblock(fd);
		cd->in_fd = cd->out_fd = fd;
		cd->connected = true;
		return 0;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) < 0 ||
	    (!listening && listen(fd, 8) < 0)) {
		log_error("%s: cannot listen: %s", what, strerror(errno));
		return -1;
	}
	cd->listen_fd = fd;
	return 0;
}

static int open_socket(struct chardev *cd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char what[160];
	int one = 1, fd;

	chardev_spec_describe(&cd->spec, what, sizeof(what));
	if (cd->spec.fd >= 0) {
		if (adopt_socket(cd, what) < 0)
			return -1;
		return cd->listen_fd >= 0 && cd->spec.wait ? wait_for_client(cd, what) : 0;
	}
	if (socket_address(&cd->spec, &ss, &len) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("%s: socket: %s", what, strerror(errno));
		return -1;
	}
	if (!cd->spec.server) {
		if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
			log_error("%s: cannot connect: %s", what, strerror(errno));
			close(fd);
			return -1;
		}
		set_nonblock(fd);
		cd->in_fd = cd->out_fd = fd;
		cd->connected = true;
		return 0;
	}
	if (cd->spec.tcp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Only the owner may talk to the guest's console or monitor: mode 0600. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&ss, len);
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		log_error("%s: cannot listen: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	cd->listen_fd = fd;
	return cd->spec.wait ? wait_for_client(cd, what) : 0;
}

int chardev_open(struct chardev *cd, const char *label, const struct chardev_spec *spec)
{
	memset(cd, 0, sizeof(*cd));
	cd->spec = *spec;
	snprintf(cd->label, sizeof(cd->label), "%s", label);
	cd->in_fd = cd->out_fd = cd->listen_fd = cd->hold_fd = -1;
	cd->connected = spec->kind != CHARDEV_SOCKET;
	chardev_spec_describe(spec, cd->description, sizeof(cd->description));
	pthread_mutex_init(&cd->lock, NULL);

	switch (spec->kind) {
	case CHARDEV_NONE:
	case CHARDEV_NULL:
		return 0;
	case CHARDEV_STDIO:
		cd->in_fd = STDIN_FILENO;
		cd->out_fd = STDOUT_FILENO;
		return 0;
	case CHARDEV_FILE:
		cd->out_fd = open(spec->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (cd->out_fd < 0) {
			log_error("%s: file:%s: %s", cd->label, spec->path, strerror(errno));
			return -1;
		}
		return 0;
	case CHARDEV_PTY:
		return open_pty(cd);
	case CHARDEV_SOCKET:
		return open_socket(cd);
	}
	return -1;
}

/* ---- running ---------------------------------------------------------- */

static void chardev_ready(void *opaque, uint32_t events);
static void chardev_accept(void *opaque, uint32_t events);

/* Sockets and ptys are ours and non-blocking: their output is queued. */
static bool chardev_queues(const struct chardev *cd)
{
	return cd->spec.kind == CHARDEV_SOCKET || cd->spec.kind == CHARDEV_PTY;
}

static bool on_loop_thread(const struct chardev *cd)
{
	return cd->loop && pthread_equal(pthread_self(), cd->loop_thread);
}

/* What in_fd's watch should wait for now; cd->lock held. */
static uint32_t wanted_events(const struct chardev *cd)
{
	return (cd->throttled ? 0 : EPOLLIN) | (cd->outq_len ? EPOLLOUT : 0);
}

/* Re-arms in_fd's watch when the queue or the throttle changed; cd->lock held. */
static void rearm(struct chardev *cd)
{
	uint32_t want = wanted_events(cd);

	if (!cd->loop || cd->in_fd < 0 || !cd->armed || want == cd->armed)
		return;
	if (loop_modify(cd->loop, cd->in_fd, want) == 0)
		cd->armed = want;
}

/* Drops what is queued either way; cd->lock held. */
static void queue_clear(struct chardev *cd)
{
	free(cd->outq);
	cd->outq = NULL;
	cd->outq_head = cd->outq_len = cd->outq_cap = 0;
	cd->throttled = cd->overflow = false;
	cd->inq_head = cd->inq_len = 0;
}

/* Appends to the queue, growing it up to CHARDEV_OUT_MAX; false when over it. */
static bool queue_add(struct chardev *cd, const uint8_t *buf, size_t len)
{
	size_t need = cd->outq_len + len;

	if (len > CHARDEV_OUT_MAX - cd->outq_len)
		return false;
	if (cd->outq_head + need > cd->outq_cap && cd->outq_head) {
		memmove(cd->outq, cd->outq + cd->outq_head, cd->outq_len);
		cd->outq_head = 0;
	}
	if (need > cd->outq_cap) {
		size_t cap = cd->outq_cap ? cd->outq_cap : 4096;
		uint8_t *q;
		while (cap < need)
			cap *= 2;
		q = realloc(cd->outq, cap);
		if (!q)
			return false;
		cd->outq = q;
		cd->outq_cap = cap;
	}
	memcpy(cd->outq + cd->outq_head + cd->outq_len, buf, len);
	cd->outq_len += len;
	return true;
}

/*
 * Sends what the peer takes without blocking; returns -1 when the peer is
 * gone (the caller disconnects), else 0.  cd->lock held.
 */
static int queue_flush(struct chardev *cd)
{
	while (cd->outq_len > 0 && cd->out_fd >= 0) {
		ssize_t n = write(cd->out_fd, cd->outq + cd->outq_head, cd->outq_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		cd->outq_head += (size_t)n;
		cd->outq_len -= (size_t)n;
	}
	cd->outq_head = 0;
	cd->throttled = cd->overflow = false;
	if (cd->outq_cap > CHARDEV_OUT_HIGH) {	/* a burst is over: give the memory back */
		free(cd->outq);
		cd->outq = NULL;
		cd->outq_cap = 0;
	}
	return 0;
}

/*
 * One client at a time, as QEMU: while one is connected the listening socket
 * is not watched, so the next client waits in the backlog until this one leaves.
 */
static void chardev_listen(struct chardev *cd, bool on)
{
	if (cd->listen_fd < 0)
		return;
	if (on)
		loop_add(cd->loop, cd->listen_fd, EPOLLIN, chardev_accept, cd);
	else
		loop_remove(cd->loop, cd->listen_fd);
}

/* A socket client went away: forget it and, as a server, wait for the next one. */
static void drop_msgfds(struct chardev *cd)
{
	for (unsigned i = 0; i < cd->nr_msgfds; i++)
		close(cd->msgfds[i]);
	cd->nr_msgfds = 0;
}

static void chardev_disconnect(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	if (cd->in_fd >= 0) {
		loop_remove(cd->loop, cd->in_fd);
		close(cd->in_fd);
	}
	cd->in_fd = cd->out_fd = -1;
	cd->connected = false;
	cd->armed = 0;
	queue_clear(cd);
	pthread_mutex_unlock(&cd->lock);
	drop_msgfds(cd);
	if (cd->fe.closed)
		cd->fe.closed(cd->fe.opaque);
	chardev_listen(cd, true);
}

/* Watches a newly usable in_fd for input (and output, if some is queued already). */
static int watch_input(struct chardev *cd)
{
	uint32_t want;

	pthread_mutex_lock(&cd->lock);
	want = chardev_queues(cd) ? wanted_events(cd) : EPOLLIN;
	if (!want)
		want = EPOLLIN;
	if (loop_add(cd->loop, cd->in_fd, want, chardev_ready, cd) < 0) {
		pthread_mutex_unlock(&cd->lock);
		return -1;
	}
	cd->armed = chardev_queues(cd) ? want : 0;	/* only queued kinds are re-armed */
	pthread_mutex_unlock(&cd->lock);
	return 0;
}

static void chardev_accept(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	int client = accept4(cd->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (client < 0)
		return;
	chardev_listen(cd, false);
	pthread_mutex_lock(&cd->lock);
	cd->in_fd = cd->out_fd = client;
	cd->connected = true;
	pthread_mutex_unlock(&cd->lock);
	if (watch_input(cd) < 0) {
		chardev_disconnect(cd);
		return;
	}
	if (cd->fe.opened)
		cd->fe.opened(cd->fe.opaque);
}

/*
 * The next piece of held input: up to a line end (LF, or the CR a terminal's
 * Enter sends), at most CHARDEV_IN_PIECE bytes.
 */
static size_t input_piece(const struct chardev *cd)
{
	const uint8_t *p = cd->inq + cd->inq_head;
	size_t n = cd->inq_len < CHARDEV_IN_PIECE ? cd->inq_len : CHARDEV_IN_PIECE;

	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n' || p[i] == '\r')
			return i + 1;
	return n;
}

static bool is_throttled(struct chardev *cd)
{
	bool t;

	pthread_mutex_lock(&cd->lock);
	t = cd->throttled;
	pthread_mutex_unlock(&cd->lock);
	return t;
}

/*
 * Hands held input to the frontend a line at a time, so a client that sends
 * many commands in one write is throttled between them, not after all of them.
 */
static void deliver_input(struct chardev *cd)
{
	uint8_t piece[CHARDEV_IN_PIECE];

	while (cd->inq_len > 0 && cd->in_fd >= 0 && !is_throttled(cd)) {
		size_t n = input_piece(cd);
		memcpy(piece, cd->inq + cd->inq_head, n);
		cd->inq_head += n;
		cd->inq_len -= n;
		if (cd->fe.input)
			cd->fe.input(cd->fe.opaque, piece, n);
	}
	if (!cd->inq_len)
		cd->inq_head = 0;
}

/* EPOLLOUT: send what is queued; once it is all out, input flows again. */
static void chardev_writable(struct chardev *cd)
{
	int rc;

	pthread_mutex_lock(&cd->lock);
	rc = queue_flush(cd);
	if (rc < 0 && cd->spec.kind != CHARDEV_SOCKET)
		queue_clear(cd);	/* a pty nobody can read: nothing to wait for */
	rearm(cd);
	pthread_mutex_unlock(&cd->lock);
	if (rc < 0 && cd->spec.kind == CHARDEV_SOCKET) {
		chardev_disconnect(cd);
		return;
	}
	deliver_input(cd);
}

int chardev_take_msgfd(struct chardev *cd)
{
	int fd;

	if (!cd->nr_msgfds)
		return -1;
	fd = cd->msgfds[0];
	cd->msgfds[0] = -1;
	for (unsigned i = 1; i < cd->nr_msgfds; i++)
		close(cd->msgfds[i]);
	cd->nr_msgfds = 0;
	return fd;
}

/*
 * A socket's read also takes the fds its peer passed (QMP getfd/add-fd);
 * they replace the last read's unclaimed ones, as QEMU's tcp_chr_recv does.
 */
static ssize_t read_input(struct chardev *cd)
{
	union {
		char buf[CMSG_SPACE(CHARDEV_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { cd->inq, sizeof(cd->inq) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	if (cd->spec.kind != CHARDEV_SOCKET)
		return read(cd->in_fd, cd->inq, sizeof(cd->inq));
	n = recvmsg(cd->in_fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		drop_msgfds(cd);
		for (size_t i = 0; i < nfds && i < CHARDEV_MAX_FDS; i++)
			memcpy(&cd->msgfds[cd->nr_msgfds++], CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
	}
	return n;
}

static void chardev_ready(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	ssize_t n;

	if (chardev_queues(cd) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
	    chardev_queued(cd)) {
		chardev_writable(cd);
		return;
	}
	if (cd->inq_len || is_throttled(cd))
		return;		/* the queue's draining hands it on */
	n = read_input(cd);
	if (n > 0) {
		cd->inq_head = 0;
		cd->inq_len = (size_t)n;
		deliver_input(cd);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (cd->spec.kind == CHARDEV_SOCKET) {
		chardev_disconnect(cd);
		return;
	}
	/* End of input (stdin from /dev/null): keep the guest running, as QEMU does. */
	loop_remove(cd->loop, cd->in_fd);
	cd->armed = 0;
}

int chardev_attach(struct chardev *cd, struct loop *loop, const struct chardev_frontend *fe)
{
	cd->loop = loop;
	cd->loop_thread = pthread_self();
	cd->fe = *fe;
	if (cd->listen_fd >= 0 && !cd->connected &&
	    loop_add(loop, cd->listen_fd, EPOLLIN, chardev_accept, cd) < 0)
		return -1;
	if (cd->in_fd >= 0 && watch_input(cd) < 0) {
		/* epoll refuses regular files; such stdin has no input to wait for. */
		if (errno != EPERM)
			return -1;
	}
	if (cd->connected && cd->spec.kind != CHARDEV_NONE && cd->fe.opened)
		cd->fe.opened(cd->fe.opaque);
	return 0;
}

/* stdio and files: written through, as before a terminal or a disk. */
static void write_through(struct chardev *cd, const uint8_t *buf, size_t len)
{
	while (len > 0 && cd->out_fd >= 0) {
		ssize_t n = write(cd->out_fd, buf, len);
		if (n < 0) {
			struct pollfd p = { .fd = cd->out_fd, .events = POLLOUT };
			if (errno == EINTR)
				continue;
			/*
			 * A terminal someone else made non-blocking gets up to a
			 * second to catch up; a stuck one loses bytes rather than
			 * stalling a vCPU for ever.
			 */
			if (errno == EAGAIN && poll(&p, 1, 1000) > 0)
				continue;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Sockets and ptys: what the peer does not take at once waits in the queue. */
static bool write_queued(struct chardev *cd, const uint8_t *buf, size_t len)
{
	while (len > 0 && cd->outq_len == 0) {
		ssize_t n = write(cd->out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return true;	/* the peer is gone; its hang-up reaches the loop */
		if (n < 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	if (len > 0 && !queue_add(cd, buf, len)) {
		cd->out_dropped += len;
		if (cd->spec.kind == CHARDEV_SOCKET)
			cd->overflow = true;
	}
	if (cd->outq_len > CHARDEV_OUT_HIGH)
		cd->throttled = true;
	rearm(cd);
	return !cd->overflow;
}

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	bool drop = false;

	pthread_mutex_lock(&cd->lock);
	if (cd->out_fd >= 0 && !chardev_queues(cd))
		write_through(cd, buf, len);
	else if (cd->out_fd >= 0 && !write_queued(cd, buf, len))
		drop = on_loop_thread(cd);
	pthread_mutex_unlock(&cd->lock);
	if (drop) {
		log_warn("%s: the client reads nothing of %u KiB of output: disconnecting it",
			 cd->label, CHARDEV_OUT_MAX >> 10);
		chardev_disconnect(cd);
	}
}

void chardev_write_str(struct chardev *cd, const char *text)
{
	chardev_write(cd, (const uint8_t *)text, strlen(text));
}

size_t chardev_queued(struct chardev *cd)
{
	size_t n;

	pthread_mutex_lock(&cd->lock);
	n = cd->outq_len;
	pthread_mutex_unlock(&cd->lock);
	return n;
}

void chardev_close(struct chardev *cd)
{
	if (cd->in_fd > STDERR_FILENO)
		close(cd->in_fd);
	if (cd->out_fd > STDERR_FILENO && cd->out_fd != cd->in_fd)
		close(cd->out_fd);
	if (cd->listen_fd >= 0) {
		close(cd->listen_fd);
		if (!cd->spec.tcp && cd->spec.fd < 0)
			unlink(cd->spec.path);
	}
	if (cd->hold_fd >= 0)
		close(cd->hold_fd);
	cd->in_fd = cd->out_fd = cd->listen_fd = cd->hold_fd = -1;
	queue_clear(cd);
	drop_msgfds(cd);
	pthread_mutex_destroy(&cd->lock);
}
