#include "ui/chardev.h"

#include <errno.h>
#include <fcntl.h>
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

static bool set_path(struct chardev_spec *spec, const char *path, char *err, size_t errlen)
{
	if (path[0] == '\0') {
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

/* "unix:PATH[,server=on|off][,wait=on|off]" and the legacy "server,nowait" flags. */
static bool parse_unix(const char *rest, struct chardev_spec *spec, char *err, size_t errlen)
{
	struct opts *o = opts_parse(rest, "path", err, errlen);
	const char *path, *unknown;
	bool ok = false;

	if (!o)
		return false;
	spec->server = false;
	spec->wait = true;
	path = opts_get(o, "path");
	if (!path || !set_path(spec, path, err, errlen))
		goto out;
	if (!opts_get_bool(o, "server", &spec->server) || !opts_get_bool(o, "wait", &spec->wait)) {
		snprintf(err, errlen, "server= and wait= take on or off");
		goto out;
	}
	unknown = opts_first_unused(o);
	if (unknown) {
		snprintf(err, errlen, "Invalid parameter '%s'", unknown);
		goto out;
	}
	ok = true;
out:
	opts_free(o);
	return ok;
}

bool chardev_spec_parse(const char *text, struct chardev_spec *spec, char *err, size_t errlen)
{
	memset(spec, 0, sizeof(*spec));
	if (strncmp(text, "mon:", 4) == 0) {
		spec->mux = true;
		text += 4;
	}
	if (strcmp(text, "stdio") == 0) {
		spec->kind = CHARDEV_STDIO;
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
	if (strncmp(text, "unix:", 5) == 0) {
		spec->kind = CHARDEV_UNIX;
		return parse_unix(text + 5, spec, err, errlen);
	}
	snprintf(err, errlen, "'%s' is not a supported character device "
		 "(stdio, mon:stdio, file:PATH, unix:PATH[,server][,nowait], pty, null, none)", text);
	return false;
}

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
		log_error("-serial pty: cannot allocate a pseudo-terminal: %s", strerror(errno));
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
	/* QEMU's wording, which scripts parse to find the terminal. */
	fprintf(stderr, "char device redirected to %s (label serial0)\n", ptsname(fd));
	return 0;
}

static int open_unix(struct chardev *cd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_error("-serial unix:%s: socket: %s", cd->spec.path, strerror(errno));
		return -1;
	}
	strcpy(addr.sun_path, cd->spec.path);
	if (!cd->spec.server) {
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			log_error("-serial unix:%s: cannot connect: %s", cd->spec.path, strerror(errno));
			close(fd);
			return -1;
		}
		set_nonblock(fd);
		cd->in_fd = cd->out_fd = fd;
		return 0;
	}
	/* Only the owner may talk to the guest's console. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (rc < 0 || listen(fd, 1) < 0) {
		log_error("-serial unix:%s: cannot listen: %s", cd->spec.path, strerror(errno));
		close(fd);
		return -1;
	}
	cd->listen_fd = fd;
	if (cd->spec.wait) {
		fprintf(stderr, "kestrel: waiting for connection on: unix:%s,server=on\n", cd->spec.path);
		int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (client < 0) {
			log_error("-serial unix:%s: accept: %s", cd->spec.path, strerror(errno));
			return -1;
		}
		set_nonblock(client);
		cd->in_fd = cd->out_fd = client;
	}
	return 0;
}

int chardev_open(struct chardev *cd, const struct chardev_spec *spec)
{
	memset(cd, 0, sizeof(*cd));
	cd->spec = *spec;
	cd->in_fd = cd->out_fd = cd->listen_fd = cd->hold_fd = -1;
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
			log_error("-serial file:%s: %s", spec->path, strerror(errno));
			return -1;
		}
		return 0;
	case CHARDEV_PTY:
		return open_pty(cd);
	case CHARDEV_UNIX:
		return open_unix(cd);
	}
	return -1;
}

static void chardev_readable(void *opaque, uint32_t events);

/* A socket client went away: forget it and, as a server, wait for the next one. */
static void chardev_disconnect(struct chardev *cd)
{
	pthread_mutex_lock(&cd->lock);
	if (cd->in_fd >= 0) {
		loop_remove(cd->loop, cd->in_fd);
		close(cd->in_fd);
	}
	cd->in_fd = cd->out_fd = -1;
	pthread_mutex_unlock(&cd->lock);
}

static void chardev_accept(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	int client = accept4(cd->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (client < 0)
		return;
	if (cd->in_fd >= 0) {
		close(client);	/* one client at a time, as QEMU */
		return;
	}
	pthread_mutex_lock(&cd->lock);
	cd->in_fd = cd->out_fd = client;
	pthread_mutex_unlock(&cd->lock);
	if (loop_add(cd->loop, client, EPOLLIN, chardev_readable, cd) < 0)
		chardev_disconnect(cd);
}

static void chardev_readable(void *opaque, uint32_t events)
{
	struct chardev *cd = opaque;
	uint8_t buf[1024];
	ssize_t n = read(cd->in_fd, buf, sizeof(buf));

	if (n > 0) {
		cd->input(cd->opaque, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (cd->spec.kind == CHARDEV_UNIX) {
		chardev_disconnect(cd);
		return;
	}
	/* End of input (stdin from /dev/null): keep the guest running, as QEMU does. */
	loop_remove(cd->loop, cd->in_fd);
}

int chardev_attach(struct chardev *cd, struct loop *loop, chardev_input_fn fn, void *opaque)
{
	cd->loop = loop;
	cd->input = fn;
	cd->opaque = opaque;
	if (cd->listen_fd >= 0 && loop_add(loop, cd->listen_fd, EPOLLIN, chardev_accept, cd) < 0)
		return -1;
	if (cd->in_fd >= 0 && loop_add(loop, cd->in_fd, EPOLLIN, chardev_readable, cd) < 0) {
		/* epoll refuses regular files; such stdin has no input to wait for. */
		if (errno != EPERM)
			return -1;
	}
	return 0;
}

void chardev_write(struct chardev *cd, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&cd->lock);
	while (len > 0 && cd->out_fd >= 0) {
		ssize_t n = write(cd->out_fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* A slow or absent reader on a pty/socket loses bytes, never stalls the vCPU. */
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&cd->lock);
}

void chardev_close(struct chardev *cd)
{
	if (cd->in_fd > STDERR_FILENO)
		close(cd->in_fd);
	if (cd->out_fd > STDERR_FILENO && cd->out_fd != cd->in_fd)
		close(cd->out_fd);
	if (cd->listen_fd >= 0) {
		close(cd->listen_fd);
		unlink(cd->spec.path);
	}
	if (cd->hold_fd >= 0)
		close(cd->hold_fd);
	cd->in_fd = cd->out_fd = cd->listen_fd = cd->hold_fd = -1;
	pthread_mutex_destroy(&cd->lock);
}
