/*
 * The VMM's NBD server (app_nbd.h), QEMU's blockdev-nbd.c role: one
 * listening socket, exports of the VM's own block devices by name, the
 * protocol of src/nbd.  The monitor thread starts and stops it; an accept
 * thread and one thread per client do the serving, so a slow client never
 * holds up the event loop.
 */
#include "cli/app_nbd.h"
#include "block/block.h"
#include "nbd/server.h"
#include "nbd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_EXPORTS	16
#define MAX_CLIENTS	64

struct app_export {
	bool used;
	unsigned users;			/* sessions that chose it (NBD_OPT_GO) */
	char id[128], node[128], name[128];
	char desc[4097];		/* copied, so NBD_OPT_LIST's copy owns its text */
	struct nbd_export exp;
};

struct app_nbd {
	pthread_mutex_t lock;
	pthread_cond_t idle;		/* signalled when a session ends */
	bool running;
	int listen_fd, wake[2];
	pthread_t accept_thread;
	char sock_path[108];		/* a Unix socket of ours, removed at stop */
	struct nbd_tls *tls;
	struct nbd_server srv;
	struct app_export exports[MAX_EXPORTS];
	int clients[MAX_CLIENTS];	/* connected sockets, -1: free */
	unsigned sessions;
};

static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t errlen,
							const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const struct nbd_export *srv_get(void *opaque, const char *name)
{
	struct app_nbd *n = opaque;
	const struct nbd_export *found = NULL;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < MAX_EXPORTS && !found; i++) {
		if (n->exports[i].used && !strcmp(n->exports[i].name, name)) {
			n->exports[i].users++;
			found = &n->exports[i].exp;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return found;
}

static void srv_put(void *opaque, const struct nbd_export *exp)
{
	struct app_nbd *n = opaque;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < MAX_EXPORTS; i++)
		if (&n->exports[i].exp == exp && n->exports[i].users)
			n->exports[i].users--;
	pthread_mutex_unlock(&n->lock);
}

/* NBD_OPT_LIST: a copy of each export, so that no lock is held while the client reads. */
static int srv_list(void *opaque, int (*fn)(void *arg, const struct nbd_export *exp), void *arg)
{
	struct app_nbd *n = opaque;
	struct app_export copy;
	int ret = 0;

	for (unsigned i = 0; i < MAX_EXPORTS && ret == 0; i++) {
		pthread_mutex_lock(&n->lock);
		copy = n->exports[i];
		pthread_mutex_unlock(&n->lock);
		if (!copy.used)
			continue;
		copy.exp.name = copy.name;
		copy.exp.description = copy.desc[0] ? copy.desc : NULL;
		ret = fn(arg, &copy.exp);
	}
	return ret;
}

struct app_nbd *app_nbd_new(void)
{
	struct app_nbd *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->idle, NULL);
	n->listen_fd = n->wake[0] = n->wake[1] = -1;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		n->clients[i] = -1;
	n->srv = (struct nbd_server){ .get = srv_get, .put = srv_put, .list = srv_list,
				      .opaque = n };
	return n;
}

static int listen_unix(struct app_nbd *n, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(err, errlen, "UNIX socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "Failed to bind socket to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(n->sock_path, sizeof(n->sock_path), "%s", path);
	return fd;
}

struct client {
	struct app_nbd *n;
	int slot;
};

static void *client_thread(void *opaque)
{
	struct client *cl = opaque;
	struct app_nbd *n = cl->n;
	int fd = n->clients[cl->slot];
	struct nbd_io io;
	char err[512];

	nbd_io_fd(&io, &fd);
	(void)nbd_serve_server(&n->srv, &io, err, sizeof(err));
	pthread_mutex_lock(&n->lock);
	close(fd);
	n->clients[cl->slot] = -1;
	n->sessions--;
	pthread_cond_broadcast(&n->idle);
	pthread_mutex_unlock(&n->lock);
	free(cl);
	return NULL;
}

static void start_client(struct app_nbd *n, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	pthread_attr_t attr;
	pthread_t th;
	int slot = -1;

	pthread_mutex_lock(&n->lock);
	for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
		if (n->clients[i] < 0)
			slot = i;
	if (!cl || slot < 0) {
		pthread_mutex_unlock(&n->lock);
		free(cl);
		close(fd);		/* too many clients: this one is turned away */
		return;
	}
	n->clients[slot] = fd;
	n->sessions++;
	pthread_mutex_unlock(&n->lock);
	cl->n = n;
	cl->slot = slot;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, client_thread, cl) != 0) {
		pthread_mutex_lock(&n->lock);
		n->clients[slot] = -1;
		n->sessions--;
		pthread_mutex_unlock(&n->lock);
		close(fd);
		free(cl);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_thread(void *opaque)
{
	struct app_nbd *n = opaque;

	for (;;) {
		struct pollfd p[2] = { { .fd = n->wake[0], .events = POLLIN },
				       { .fd = n->listen_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;		/* app_nbd_stop */
		if (p[1].revents & POLLIN) {
			int fd = nbd_accept(n->listen_fd);
			if (fd >= 0)
				start_client(n, fd);
		}
	}
	return NULL;
}

static void close_listener(struct app_nbd *n)
{
	if (n->listen_fd >= 0)
		close(n->listen_fd);
	for (int i = 0; i < 2; i++)
		if (n->wake[i] >= 0)
			close(n->wake[i]);
	n->listen_fd = n->wake[0] = n->wake[1] = -1;
	if (n->sock_path[0])
		unlink(n->sock_path);
	n->sock_path[0] = '\0';
	nbd_tls_free(n->tls);
	n->tls = NULL;
	n->srv.tls = NULL;
}

int app_nbd_start(struct app_nbd *n, const struct nbd_listen *addr, const char *tls_creds,
		  char *err, size_t errlen)
{
	if (n->running)
		return fail(err, errlen, "%s", "NBD server already running");
	if (tls_creds && nbd_tls_new(tls_creds, &n->tls, err, errlen) < 0)
		return -1;
	n->srv.tls = n->tls;
	n->listen_fd = addr->is_unix ? listen_unix(n, addr->path, err, errlen)
				     : nbd_listen_tcp(addr->host, addr->port ? addr->port : "10809",
						  err, errlen);
	if (n->listen_fd < 0 || pipe2(n->wake, O_CLOEXEC) < 0) {
		if (n->listen_fd >= 0)
			snprintf(err, errlen, "pipe: %s", strerror(errno));
		close_listener(n);
		return -1;
	}
	if (pthread_create(&n->accept_thread, NULL, accept_thread, n) != 0) {
		snprintf(err, errlen, "cannot start the NBD server's thread");
		close_listener(n);
		return -1;
	}
	n->running = true;
	return 0;
}

int app_nbd_stop(struct app_nbd *n, char *err, size_t errlen)
{
	if (!n->running)
		return fail(err, errlen, "%s", "NBD server not running");
	(void)!write(n->wake[1], "x", 1);
	pthread_join(n->accept_thread, NULL);
	pthread_mutex_lock(&n->lock);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (n->clients[i] >= 0)
			shutdown(n->clients[i], SHUT_RDWR);
	while (n->sessions)
		pthread_cond_wait(&n->idle, &n->lock);
	/* As QEMU's nbd_server_stop: the server's exports go with it. */
	for (int i = 0; i < MAX_EXPORTS; i++)
		n->exports[i].used = false;
	pthread_mutex_unlock(&n->lock);
	close_listener(n);
	n->running = false;
	return 0;
}

void app_nbd_free(struct app_nbd *n)
{
	char err[128];

	if (!n)
		return;
	if (n->running)
		app_nbd_stop(n, err, sizeof(err));
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->idle);
	free(n);
}

static struct app_export *find_export(struct app_nbd *n, const char *id, const char *name)
{
	for (unsigned i = 0; i < MAX_EXPORTS; i++) {
		struct app_export *e = &n->exports[i];
		if (e->used && ((id && !strcmp(e->id, id)) || (name && !strcmp(e->name, name))))
			return e;
	}
	return NULL;
}

int app_nbd_add(struct app_nbd *n, const char *id, const char *node, const char *name,
		const char *description, struct block_dev *bd, bool writable, char *err,
		size_t errlen)
{
	struct app_export *e = NULL;

	if (!n->running)
		return fail(err, errlen, "%s", "NBD server not running");
	if (!name)
		name = node;
	if (!id)
		id = name;
	if (strlen(id) >= sizeof(e->id) || strlen(name) >= sizeof(e->name) ||
	    strlen(node) >= sizeof(e->node) || (description && strlen(description) > 4096))
		return fail(err, errlen, "export name '%s' too long", name);
	if (writable && block_is_readonly(bd))
		return fail(err, errlen, "Cannot export a read-only node '%s' writable", node);
	pthread_mutex_lock(&n->lock);
	if (find_export(n, id, NULL)) {
		pthread_mutex_unlock(&n->lock);
		return fail(err, errlen, "Block export id '%s' is already in use", id);
	}
	if (find_export(n, NULL, name)) {
		pthread_mutex_unlock(&n->lock);
		return fail(err, errlen, "NBD server already has export named '%s'", name);
	}
	for (unsigned i = 0; i < MAX_EXPORTS && !e; i++)
		if (!n->exports[i].used)
			e = &n->exports[i];
	if (!e) {
		pthread_mutex_unlock(&n->lock);
		return fail(err, errlen, "%s", "Too many block exports");
	}
	memset(e, 0, sizeof(*e));
	strcpy(e->id, id);
	strcpy(e->node, node);
	strcpy(e->name, name);
	snprintf(e->desc, sizeof(e->desc), "%s", description ? description : "");
	e->exp = (struct nbd_export){ .name = e->name, .description = description ? e->desc : NULL,
				      .bd = bd, .size = block_length(bd), .readonly = !writable,
				      .multi_conn = !writable };
	e->used = true;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/* QEMU's mode=safe: an export a client still uses stays. */
int app_nbd_remove(struct app_nbd *n, const char *id, char *err, size_t errlen)
{
	struct app_export *e;

	pthread_mutex_lock(&n->lock);
	e = find_export(n, id, NULL);
	if (!e) {
		pthread_mutex_unlock(&n->lock);
		return fail(err, errlen, "Export '%s' is not found", id);
	}
	if (e->users) {
		pthread_mutex_unlock(&n->lock);
		return fail(err, errlen, "export '%s' still in use", id);
	}
	e->used = false;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

unsigned app_nbd_exports(struct app_nbd *n, struct export_info *out, unsigned max)
{
	unsigned count = 0;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < MAX_EXPORTS; i++) {
		const struct app_export *e = &n->exports[i];
		if (!e->used)
			continue;
		if (count < max) {
			memset(&out[count], 0, sizeof(out[count]));
			snprintf(out[count].id, sizeof(out[count].id), "%s", e->id);
			snprintf(out[count].node_name, sizeof(out[count].node_name), "%s", e->node);
			snprintf(out[count].name, sizeof(out[count].name), "%s", e->name);
			out[count].writable = !e->exp.readonly;
		}
		count++;
	}
	pthread_mutex_unlock(&n->lock);
	return count;
}
