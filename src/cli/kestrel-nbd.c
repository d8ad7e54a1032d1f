/*
 * kestrel-nbd: exports an image the block layer reads over NBD (the
 * qemu-nbd role, with qemu-nbd 7.2's command line).  The protocol lives in
 * src/nbd; this file is the process: options, the image, the listening
 * socket, --fork, and one thread per client connection (the block layer is
 * thread-safe, block.h).  Options qemu-nbd has that Kestrel does not
 * implement are refused by name.
 */
#include "img/img.h"
#include "nbd/server.h"
#include "nbd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef KESTREL_VERSION
#define KESTREL_VERSION "0"
#endif

struct args {
	const char *file, *format, *socket, *port, *bind, *pid_file, *snapshot_name;
	const char *cache, *aio, *discard, *detect_zeroes, *tls_creds;
	struct nbd_export exp;
	uint64_t offset;
	long shared;
	bool persistent, fork, snapshot, image_opts, verbose;
};

/* The server's state the client threads share with the accept loop. */
struct server {
	const struct nbd_export *exp;
	bool verbose;
	pthread_mutex_t lock;
	int active;			/* connections being served */
	int wake[2];			/* a thread's end wakes the accept loop */
	struct client *clients;
};

struct client {
	struct server *srv;
	int fd;
	struct client *next;
};

static volatile sig_atomic_t stop_signal;

enum {
	OPT_TLS_CREDS = 256, OPT_TLS_AUTHZ, OPT_FORK, OPT_PID_FILE,
	OPT_CACHE, OPT_AIO, OPT_DISCARD, OPT_DETECT_ZEROES, OPT_SELINUX, OPT_TLS_HOSTNAME,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "bind", required_argument, NULL, 'b' },
	{ "port", required_argument, NULL, 'p' },
	{ "socket", required_argument, NULL, 'k' },
	{ "offset", required_argument, NULL, 'o' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "allocation-depth", no_argument, NULL, 'A' },
	{ "bitmap", required_argument, NULL, 'B' },
	{ "connect", required_argument, NULL, 'c' },
	{ "disconnect", no_argument, NULL, 'd' },
	{ "list", no_argument, NULL, 'L' },
	{ "snapshot", no_argument, NULL, 's' },
	{ "load-snapshot", required_argument, NULL, 'l' },
	{ "nocache", no_argument, NULL, 'n' },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "aio", required_argument, NULL, OPT_AIO },
	{ "discard", required_argument, NULL, OPT_DISCARD },
	{ "detect-zeroes", required_argument, NULL, OPT_DETECT_ZEROES },
	{ "shared", required_argument, NULL, 'e' },
	{ "format", required_argument, NULL, 'f' },
	{ "persistent", no_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "object", required_argument, NULL, IMG_OPT_OBJECT },
	{ "export-name", required_argument, NULL, 'x' },
	{ "description", required_argument, NULL, 'D' },
	{ "tls-creds", required_argument, NULL, OPT_TLS_CREDS },
	{ "tls-authz", required_argument, NULL, OPT_TLS_AUTHZ },
	{ "tls-hostname", required_argument, NULL, OPT_TLS_HOSTNAME },
	{ "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
	{ "trace", required_argument, NULL, 'T' },
	{ "fork", no_argument, NULL, OPT_FORK },
	{ "pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "selinux-label", required_argument, NULL, OPT_SELINUX },
	{ NULL, 0, NULL, 0 },
};

static void usage(void)
{
	printf("Usage: %s [OPTIONS] FILE\n"
	       "Kestrel Network Block Device server (qemu-nbd's command line)\n\n"
	       "  -h, --help                display this help and exit\n"
	       "  -V, --version             output version information and exit\n\n"
	       "Connection properties:\n"
	       "  -p, --port=PORT           port to listen on (default `10809')\n"
	       "  -b, --bind=IFACE          interface to bind to (default `0.0.0.0')\n"
	       "  -k, --socket=PATH         path to the unix socket\n"
	       "  -e, --shared=NUM          device can be shared by NUM clients (default '1')\n"
	       "  -t, --persistent          don't exit on the last connection\n"
	       "  -v, --verbose             report each client connection on stderr\n"
	       "  -x, --export-name=NAME    expose export by name (default is empty string)\n"
	       "  -D, --description=TEXT    export a human-readable description\n\n"
	       "Exposing part of the image:\n"
	       "  -o, --offset=OFFSET       offset into the image\n\n"
	       "General purpose options:\n"
	       "  --object type,id=ID,...   define an object such as 'secret', 'tls-creds-x509'\n"
	       "                            or 'tls-creds-psk'\n"
	       "  --tls-creds=ID            use id of an earlier --object to provide TLS\n"
	       "  --fork                    fork off the server process and exit the parent\n"
	       "                            once the server is running\n"
	       "  --pid-file=PATH           store the server's process ID in the given file\n\n"
	       "Block device options:\n"
	       "  -f, --format=FORMAT       set image format (raw, qcow2, ...)\n"
	       "  -r, --read-only           export read-only\n"
	       "  -s, --snapshot            write to a temporary overlay; FILE stays untouched\n"
	       "  -l, --load-snapshot=SNAPSHOT_PARAM\n"
	       "                            export an internal snapshot read-only:\n"
	       "                            'snapshot.id=[ID]', 'snapshot.name=[NAME]' or\n"
	       "                            '[ID_OR_NAME]'\n"
	       "  -n, --nocache             disable host cache\n"
	       "      --cache=MODE          none, writeback (default), writethrough,\n"
	       "                            directsync, unsafe\n"
	       "      --aio=MODE            threads (the only mode)\n"
	       "      --discard=MODE        ignore (default), unmap\n"
	       "      --detect-zeroes=MODE  off (default), on, unmap\n"
	       "      --image-opts          treat FILE as a full set of image options\n\n"
	       "Not implemented (refused by name): -A, -B, -L, -c, -d, -T, --tls-authz,\n"
	       "--tls-hostname, --selinux-label.\n", IMG_NAME);
}

static int refuse(const char *opt, const char *why)
{
	img_error("%s is not supported: %s", opt, why);
	return 1;
}

/* qemu-nbd's options Kestrel lacks: 1 (refused), or 0 when c is not one of them. */
static int refused_option(int c)
{
	switch (c) {
	case 'A': return refuse("--allocation-depth", "no qemu:allocation-depth context");
	case 'B': return refuse("--bitmap", "dirty bitmaps are not exported over NBD");
	case 'L': return refuse("--list", "kestrel-nbd is a server; use nbdinfo --list");
	case 'c': return refuse("--connect", "kernel NBD devices (/dev/nbdX) are not driven "
				 "by kestrel-nbd; use nbd-client or qemu-nbd -c");
	case 'd': return refuse("--disconnect", "kernel NBD devices are not driven by kestrel-nbd");
	case 'T': return refuse("--trace", "Kestrel has no trace events");
	case OPT_TLS_AUTHZ: return refuse("--tls-authz", "no authz objects (every client "
					  "whose certificate the CA signed is served)");
	case OPT_TLS_HOSTNAME: return refuse("--tls-hostname", "it is for --list/--connect, "
					     "which kestrel-nbd does not have");
	case OPT_SELINUX: return refuse("--selinux-label", "SELinux labels are not implemented");
	default: return 0;
	}
}

static int parse_modes(struct args *a)
{
	if (a->aio && strcmp(a->aio, "threads")) {
		if (!strcmp(a->aio, "native") || !strcmp(a->aio, "io_uring"))
			return refuse("--aio", "only --aio=threads is implemented");
		img_error("invalid aio mode '%s'", a->aio);
		return 1;
	}
	if (a->discard) {
		if (!strcmp(a->discard, "unmap") || !strcmp(a->discard, "on")) {
			a->exp.discard_unmap = true;
		} else if (strcmp(a->discard, "ignore") && strcmp(a->discard, "off")) {
			img_error("Invalid discard mode `%s'", a->discard);
			return 1;
		}
	}
	if (a->detect_zeroes) {
		if (!strcmp(a->detect_zeroes, "on")) {
			a->exp.detect_zeroes = NBD_DZ_ON;
		} else if (!strcmp(a->detect_zeroes, "unmap")) {
			a->exp.detect_zeroes = NBD_DZ_UNMAP;
		} else if (strcmp(a->detect_zeroes, "off")) {
			img_error("Parameter 'detect-zeroes' does not accept value '%s'",
				  a->detect_zeroes);
			return 1;
		}
		if (a->exp.detect_zeroes == NBD_DZ_UNMAP && !a->exp.discard_unmap) {
			img_error("setting detect-zeroes to unmap is not allowed without setting "
				  "discard operation to unmap");
			return 1;
		}
	}
	return 0;
}

static int parse_number(const char *name, const char *text, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(text, &end, 0);
	if (errno || end == text || *end || *out < 0 || *out > 1000000) {
		img_error("Invalid %s '%s'", name, text);
		return 1;
	}
	return 0;
}

static int parse_option(struct args *a, int c, char **argv)
{
	int r = refused_option(c);

	if (r)
		return r;
	switch (c) {
	case 'h': usage(); return 0;
	case 'V': printf("%s " KESTREL_VERSION "\n", IMG_NAME); return 0;
	case 'b': a->bind = optarg; break;
	case 'p': a->port = optarg; break;
	case 'k': a->socket = optarg; break;
	case 'o':
		if (!img_parse_size(optarg, &a->offset)) {
			img_error("Invalid offset '%s'", optarg);
			return 1;
		}
		break;
	case 'r': a->exp.readonly = true; break;
	case 's': a->snapshot = true; break;
	case 'l': a->snapshot_name = img_snapshot_arg(optarg); a->exp.readonly = true; break;
	case 'n': a->cache = "none"; break;
	case OPT_CACHE: a->cache = optarg; break;
	case OPT_AIO: a->aio = optarg; break;
	case OPT_DISCARD: a->discard = optarg; break;
	case OPT_DETECT_ZEROES: a->detect_zeroes = optarg; break;
	case 'e':
		if (parse_number("shared device number", optarg, &a->shared))
			return 1;
		break;
	case 'f': a->format = optarg; break;
	case 't': a->persistent = true; break;
	case 'v': a->verbose = true; break;
	case 'x':
		if (strlen(optarg) > 4096) {
			img_error("export name '%s' too long", optarg);
			return 1;
		}
		a->exp.name = optarg;
		break;
	case 'D':
		if (strlen(optarg) > 4096) {
			img_error("export description '%s' too long", optarg);
			return 1;
		}
		a->exp.description = optarg;
		break;
	case OPT_FORK: a->fork = true; break;
	case OPT_TLS_CREDS: a->tls_creds = optarg; break;
	case OPT_PID_FILE: a->pid_file = optarg; break;
	case IMG_OPT_OBJECT: {
		int ret = img_object_add(optarg);
		/* 1: its help was printed (exit 0); -1: an error (exit 1). */
		return ret ? ret < 0 : IMG_CONTINUE;
	}
	case IMG_OPT_IMAGE_OPTS: a->image_opts = true; break;
	default: return img_bad_option(c, argv);
	}
	return IMG_CONTINUE;
}

static int parse_args(struct args *a, int argc, char **argv)
{
	int c, r;

	a->exp.name = "";
	a->shared = 1;
	while ((c = getopt_long(argc, argv, ":hVb:p:k:o:rAB:c:dLsl:ne:f:tvx:D:T:", long_opts,
				NULL)) != -1) {
		r = parse_option(a, c, argv);
		if (r != IMG_CONTINUE)
			return r;
	}
	if (optind != argc - 1)
		return img_usage_error("Expected exactly one image file argument");
	a->file = argv[optind];
	if (a->socket && (a->port || a->bind)) {
		img_error("--socket cannot be used with --port or --bind");
		return 1;
	}
	if (a->snapshot && a->snapshot_name) {
		img_error("-s and -l cannot be used together");
		return 1;
	}
	if (a->snapshot && a->image_opts)
		return refuse("--snapshot with --image-opts", "name the file instead");
	a->exp.multi_conn = a->shared != 1;
	return parse_modes(a) ? 1 : IMG_CONTINUE;
}

static int open_image(struct args *a)
{
	unsigned flags = a->exp.readonly ? BLOCK_RDONLY : 0, cache = 0;
	char err[4096];
	struct block_dev *bd;

	if (a->cache && !img_cache_flags(a->cache, &cache)) {
		img_error("Invalid cache mode '%s'", a->cache);
		return -1;
	}
	flags |= cache;
	if (a->snapshot) {
		if (block_open_snapshot_overlay(a->file, a->format, flags, &bd, err,
						sizeof(err)) < 0) {
			img_error("Failed to blk_new_open '%s': %s", a->file, err);
			return -1;
		}
	} else {
		bd = img_open_image(a->file, a->format, flags, a->image_opts);
		if (!bd)
			return -1;
	}
	if (a->snapshot_name &&
	    block_snapshot_load_tmp(bd, a->snapshot_name, err, sizeof(err)) < 0) {
		img_error("Failed to load snapshot '%s': %s", a->snapshot_name, err);
		block_close(bd);
		return -1;
	}
	if (a->offset > block_length(bd)) {
		img_error("Offset (%" PRIu64 ") has to be smaller than the image size (%" PRIu64 ")",
			  a->offset, block_length(bd));
		block_close(bd);
		return -1;
	}
	a->exp.bd = bd;
	a->exp.offset = a->offset;
	a->exp.size = block_length(bd) - a->offset;
	a->exp.readonly |= block_is_readonly(bd);
	return 0;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		img_error("UNIX socket path '%s' is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	/* A stale socket of an earlier server is replaced, as QEMU's socket listener does. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		img_error("Failed to bind socket to %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int listen_tcp(const char *host, const char *port)
{
	char err[512];
	int fd = nbd_listen_tcp(host, port, err, sizeof(err));

	if (fd < 0)
		img_error("%s", err);
	return fd;
}

static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
		img_error("Failed to write PID file '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void *client_thread(void *opaque)
{
	struct client *cl = opaque;
	struct server *srv = cl->srv;
	struct nbd_io io;
	char err[512];
	int ret;

	nbd_io_fd(&io, &cl->fd);
	ret = nbd_serve(srv->exp, &io, err, sizeof(err));
	if (srv->verbose)
		img_error("client disconnected%s%s", ret < 0 ? ": " : "", ret < 0 ? err : "");
	pthread_mutex_lock(&srv->lock);
	for (struct client **p = &srv->clients; *p; p = &(*p)->next) {
		if (*p == cl) {
			*p = cl->next;
			break;
		}
	}
	srv->active--;
	close(cl->fd);
	pthread_mutex_unlock(&srv->lock);
	free(cl);
	/* A full pipe already holds a wake-up. */
	(void)!write(srv->wake[1], "x", 1);
	return NULL;
}

static int start_client(struct server *srv, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	pthread_attr_t attr;
	pthread_t th;
	int e;

	if (!cl) {
		close(fd);
		return -1;
	}
	cl->srv = srv;
	cl->fd = fd;
	pthread_mutex_lock(&srv->lock);
	cl->next = srv->clients;
	srv->clients = cl;
	srv->active++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	e = pthread_create(&th, &attr, client_thread, cl);
	pthread_attr_destroy(&attr);
	if (e) {
		img_error("cannot start a client thread: %s", strerror(e));
		pthread_mutex_lock(&srv->lock);
		srv->clients = cl->next;
		srv->active--;
		pthread_mutex_unlock(&srv->lock);
		close(fd);
		free(cl);
		return -1;
	}
	if (srv->verbose)
		img_error("client connected");
	return 0;
}

static int active_clients(struct server *srv)
{
	int n;

	pthread_mutex_lock(&srv->lock);
	n = srv->active;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/*
 * Accepts clients until a signal, or (without -t) until the last client of
 * at least one has gone, as qemu-nbd.  At most -e N at a time (0: no limit);
 * further clients wait in the listen backlog.
 */
static void serve(struct server *srv, int lfd, const struct args *a, const sigset_t *waitmask)
{
	bool served = false;
	char buf[64];

	while (!stop_signal) {
		struct pollfd p[2] = { { .fd = srv->wake[0], .events = POLLIN },
				       { .fd = lfd, .events = POLLIN } };
		int n = active_clients(srv);

		if (!a->persistent && served && n == 0)
			break;
		if (ppoll(p, a->shared == 0 || n < a->shared ? 2 : 1, NULL, waitmask) < 0)
			continue;
		if (p[0].revents)
			(void)!read(srv->wake[0], buf, sizeof(buf));
		if (p[1].revents & POLLIN) {
			int fd = nbd_accept(lfd);
			if (fd >= 0 && start_client(srv, fd) == 0)
				served = true;
		}
	}
	/* Ends the connections still open, and waits for their threads. */
	pthread_mutex_lock(&srv->lock);
	for (struct client *cl = srv->clients; cl; cl = cl->next)
		shutdown(cl->fd, SHUT_RDWR);
	pthread_mutex_unlock(&srv->lock);
	while (active_clients(srv) > 0) {
		struct pollfd p = { .fd = srv->wake[0], .events = POLLIN };
		poll(&p, 1, 100);
		(void)!read(srv->wake[0], buf, sizeof(buf));
	}
}

/* --fork: the parent returns once the child serves; -1 in the child on failure. */
static int daemonize(const struct args *a, int *ready_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		img_error("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		img_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		/* The image and socket belong to the child now: no cleanup here. */
		_exit(read(p[0], &c, 1) == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static void detach_stdio(bool keep_stderr, int ready_fd)
{
	int null = open("/dev/null", O_RDWR);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (!keep_stderr)
			dup2(null, 2);
		close(null);
	}
	(void)!write(ready_fd, "1", 1);
	close(ready_fd);
}

static int run_server(struct args *a)
{
	struct server srv = { .exp = &a->exp, .verbose = a->verbose };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, waitmask;
	int lfd, ready_fd = -1, ret = 0;

	lfd = a->socket ? listen_unix(a->socket)
			: listen_tcp(a->bind ? a->bind : "0.0.0.0", a->port ? a->port : "10809");
	if (lfd < 0)
		return 1;
	if (pipe2(srv.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		img_error("pipe: %s", strerror(errno));
		close(lfd);
		return 1;
	}
	/* Signals reach the accept loop only inside ppoll, never a client thread. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&srv.lock, NULL);
	if (a->fork && daemonize(a, &ready_fd) < 0)
		ret = 1;
	if (!ret && a->pid_file && write_pid_file(a->pid_file) < 0)
		ret = 1;
	if (ready_fd >= 0) {
		if (ret)
			close(ready_fd);
		else
			detach_stdio(a->verbose, ready_fd);
	}
	if (!ret)
		serve(&srv, lfd, a, &waitmask);
	close(lfd);
	if (a->socket)
		unlink(a->socket);
	return ret;
}

static struct nbd_tls *tls;

/* --tls-creds: the object is looked up once every --object is parsed (qemu-nbd's order). */
static int open_tls(struct args *a)
{
	char err[512];

	if (nbd_tls_new(a->tls_creds, &tls, err, sizeof(err)) < 0) {
		img_error("Failed to get TLS creds: %s", err);
		return -1;
	}
	a->exp.tls = tls;
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	const char *slash = strrchr(argv[0], '/');
	int ret;

	img_prog = slash && slash[1] ? slash + 1 : argv[0];
	ret = parse_args(&a, argc, argv);
	if (ret != IMG_CONTINUE)
		return ret;
	if (a.tls_creds && open_tls(&a) < 0)
		return 1;
	if (open_image(&a) < 0) {
		nbd_tls_free(tls);
		return 1;
	}
	ret = run_server(&a);
	block_close(a.exp.bd);
	nbd_tls_free(tls);
	return ret;
}
