/*
 * gluster: a disk that is a file on a GlusterFS volume, read and written
 * through libgfapi as QEMU's block/gluster.c does:
 * gluster[+tcp|+unix|+rdma]://[host[:port]]/volume/path[?socket=...] or
 * -blockdev driver=gluster (volume, path, server.N.type=inet|unix,
 * server.N.host/port or server.N.path, debug, logfile).  The servers are
 * where the volume file comes from (glusterd), tried in order; the client
 * then talks to the bricks the volume file names.
 */
#include "block/block_int.h"
#include "block/gluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef KESTREL_GLUSTER
#include <glusterfs/api/glfs.h>
#include <pthread.h>

/* QEMU's GLUSTER_MAX_TRANSFER: some libgfapi versions fail at 1 GiB. */
#define GLUSTER_MAX_TRANSFER	(512u << 20)
#define GLUSTER_DEFAULT_PORT	"24007"

struct gluster_conn {
	glfs_t *fs;
	glfs_fd_t *fd;
	pthread_mutex_t lock;		/* gluster_pad_end's fallback */
};

static int gluster_errno(void)
{
	return errno ? -errno : -EIO;
}

static int gluster_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct gluster_conn *c = conn;
	uint8_t *p = buf;

	while (len) {
		size_t n = len < GLUSTER_MAX_TRANSFER ? len : GLUSTER_MAX_TRANSFER;
		ssize_t r = glfs_pread(c->fd, p, n, (off_t)off, 0, NULL);
		if (r < 0)
			return gluster_errno();
		if (r == 0) {
			memset(p, 0, len);	/* past the end of the file: zeroes, as a file */
			return 0;
		}
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

/*
 * QEMU's gluster driver reads and writes whole 512-byte sectors and takes a
 * short read as an I/O error: a file that grows must end on a sector, or
 * qemu-img cannot read its last bytes (an image's L1 table, say).
 */
static int gluster_pad_end(struct gluster_conn *c, uint64_t end)
{
	uint64_t aligned = (end + 511) & ~511ULL;
	struct stat st;

	if (aligned == end)
		return 0;
	/* fallocate only ever grows a file: no race with a write further out. */
	if (glfs_fallocate(c->fd, 0, (off_t)end, (size_t)(aligned - end)) == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (glfs_fstat(c->fd, &st) == 0 && (uint64_t)st.st_size < end &&
	    glfs_ftruncate(c->fd, (off_t)aligned, NULL, NULL) < 0) {
		pthread_mutex_unlock(&c->lock);
		return gluster_errno();
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int gluster_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct gluster_conn *c = conn;
	const uint8_t *p = buf;
	uint64_t end = off + len;

	while (len) {
		size_t n = len < GLUSTER_MAX_TRANSFER ? len : GLUSTER_MAX_TRANSFER;
		ssize_t r = glfs_pwrite(c->fd, p, n, (off_t)off, 0, NULL, NULL);
		if (r <= 0)
			return r < 0 ? gluster_errno() : -EIO;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return gluster_pad_end(c, end);
}

/* glfs_fsync: the write-behind translator's cache too, then the brick's file. */
static int gluster_conn_flush(void *conn)
{
	struct gluster_conn *c = conn;

	return glfs_fsync(c->fd, NULL, NULL) < 0 ? gluster_errno() : 0;
}

/* The brick zeroes the range itself (posix: fallocate ZERO_RANGE); no zeroes cross the wire. */
static int gluster_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct gluster_conn *c = conn;

	(void)may_unmap;
	return glfs_zerofill(c->fd, (off_t)off, (off_t)len) < 0 ? gluster_errno() : 0;
}

/* SEEK_DATA/SEEK_HOLE on the brick's file, as QEMU's find_allocation. */
static int gluster_conn_status(void *conn, uint64_t off, uint64_t len, uint64_t *pnum,
			       unsigned *flags)
{
	struct gluster_conn *c = conn;
	off_t data, hole;

	*pnum = len;
	*flags = BLOCK_STATUS_DATA;
	data = glfs_lseek(c->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		/* ENXIO: no data from here to the end; anything else: all data, as QEMU. */
		if (errno == ENXIO)
			*flags = BLOCK_STATUS_ZERO;
		return 0;
	}
	if ((uint64_t)data > off) {
		*pnum = (uint64_t)data - off < len ? (uint64_t)data - off : len;
		*flags = BLOCK_STATUS_ZERO;
		return 0;
	}
	hole = glfs_lseek(c->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off && (uint64_t)hole - off < len)
		*pnum = (uint64_t)hole - off;
	return 0;
}

static int64_t gluster_conn_size(void *conn)
{
	struct gluster_conn *c = conn;
	struct stat st;

	if (glfs_fstat(c->fd, &st) < 0)
		return gluster_errno();
	return st.st_size;
}

/* QEMU's qemu_gluster_allocated_file_size: the brick file's blocks. */
static int64_t gluster_conn_allocated(void *conn)
{
	struct gluster_conn *c = conn;
	struct stat st;

	if (glfs_fstat(c->fd, &st) < 0)
		return gluster_errno();
	return (int64_t)st.st_blocks * 512;
}

static int gluster_conn_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	struct gluster_conn *c = conn;

	if (glfs_ftruncate(c->fd, (off_t)size, NULL, NULL) < 0)
		return block_err(err, errlen, "Failed to resize the file: %s", strerror(errno));
	return 0;
}

/*
 * glfs_fini of libgfapi 10.3 waits 10 s for frames in flight before it
 * tears anything down (measured here: glfs_init + glfs_fini alone, 10.04 s;
 * qemu-img pays it on every open).  The file is closed, so flushed, before
 * it runs: it goes on in a thread of its own, and a process that exits
 * first loses nothing but the wait.
 */
static void *gluster_fini_thread(void *fs)
{
	glfs_fini(fs);
	return NULL;
}

static void gluster_fini(glfs_t *fs)
{
	pthread_attr_t attr;
	pthread_t t;

	if (!fs)
		return;
	if (pthread_attr_init(&attr) == 0) {
		bool started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
			       pthread_create(&t, &attr, gluster_fini_thread, fs) == 0;
		pthread_attr_destroy(&attr);
		if (started)
			return;
	}
	glfs_fini(fs);
}

static void gluster_conn_close(void *conn)
{
	struct gluster_conn *c = conn;

	if (c->fd)
		glfs_close(c->fd);
	gluster_fini(c->fs);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct block_proto gluster_proto = {
	.name = "gluster",
	.label = "gluster",
	.pread = gluster_conn_pread,
	.pwrite = gluster_conn_pwrite,
	.flush = gluster_conn_flush,
	.zero = gluster_conn_zero,
	.status = gluster_conn_status,
	.size = gluster_conn_size,
	.allocated = gluster_conn_allocated,
	.truncate = gluster_conn_truncate,
	.close = gluster_conn_close,
};

/* QEMU's message for a volume that does not come up, with a hint per server. */
static int connect_failed(const struct block_gluster_opts *o, char *err, size_t errlen)
{
	size_t n;

	block_err(err, errlen, "Gluster connection for volume %s, path %s failed to connect",
		  o->volume, o->path);
	for (int i = 0; err && i < o->nservers; i++) {
		const struct block_gluster_server *s = &o->server[i];
		n = strlen(err);
		if (s->is_unix)
			snprintf(err + n, errlen - n, "\nhint: failed on socket %s", s->path);
		else
			snprintf(err + n, errlen - n, "\nhint: failed on host %s and port %s",
				 s->host, s->port ? s->port : GLUSTER_DEFAULT_PORT);
	}
	n = err ? strlen(err) : 0;
	if (err)
		snprintf(err + n, errlen - n, " Please refer to gluster logs for more info");
	return -1;
}

/* A port as QEMU's parse_uint_full: decimal digits only, at most 65535. */
static int parse_port(const char *s, int *port)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return -1;
	}
	*port = (int)v;
	return 0;
}

/* QEMU's qemu_gluster_glfs_init: the servers, the logging, then glfs_init. */
static glfs_t *gluster_connect(const struct block_gluster_opts *o, char *err, size_t errlen)
{
	glfs_t *fs;

	if (o->nservers < 1) {
		block_err(err, errlen, "Parameter 'server' is missing");
		return NULL;
	}
	fs = glfs_new(o->volume);
	if (!fs) {
		block_err(err, errlen, "Gluster: could not create a connection to volume %s: %s",
			  o->volume, strerror(errno));
		return NULL;
	}
	for (int i = 0; i < o->nservers; i++) {
		const struct block_gluster_server *s = &o->server[i];
		int port = 24007, r;
		if (!s->is_unix && s->port && parse_port(s->port, &port) < 0) {
			block_err(err, errlen, "'%s' is not a valid port number", s->port);
			glfs_fini(fs);
			return NULL;
		}
		r = s->is_unix ? glfs_set_volfile_server(fs, "unix", s->path, 0)
			       : glfs_set_volfile_server(fs, "tcp", s->host, port);
		if (r < 0) {
			connect_failed(o, err, errlen);
			glfs_fini(fs);
			return NULL;
		}
	}
	/*
	 * As QEMU: write-behind keeps the writes a failed fsync covered and
	 * sends them again, instead of dropping them (a guest that retries its
	 * flush after a brick came back must not lose acknowledged data).
	 */
	if (glfs_set_xlator_option(fs, "*-write-behind", "resync-failed-syncs-after-fsync",
				   "on") < 0) {
		block_err(err, errlen, "Unable to set xlator key/value pair");
		glfs_fini(fs);
		return NULL;
	}
	if (glfs_set_logging(fs, o->logfile, o->debug) < 0) {
		block_err(err, errlen, "Gluster: could not log to '%s': %s", o->logfile,
			  strerror(errno));
		glfs_fini(fs);
		return NULL;
	}
	if (glfs_init(fs) < 0) {
		connect_failed(o, err, errlen);
		gluster_fini(fs);
		return NULL;
	}
	return fs;
}

int block_gluster_open(const char *display, const struct block_gluster_opts *o,
		       const char *format, unsigned flags, struct block_dev *parent,
		       struct block_dev **out, char *err, size_t errlen)
{
	struct gluster_conn *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	c->fs = gluster_connect(o, err, errlen);
	if (!c->fs) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return -1;
	}
	c->fd = glfs_open(c->fs, o->path, (flags & BLOCK_RDONLY) ? O_RDONLY : O_RDWR);
	if (!c->fd) {
		/* QEMU's words, which its caller's "Could not open" then repeats. */
		block_err(err, errlen, "Could not open '%s': %s", display,
			  strerror(errno ? errno : EIO));
		gluster_conn_close(c);
		return -1;
	}
	return block_open_proto(display, &gluster_proto, c, format, flags, parent, out, err,
				errlen);
}

/* QEMU's qemu_gluster_create_opts: size and preallocation; the file protocol's are refused. */
static int gluster_create_check(const char *name, const struct block_driver *drv,
				const struct block_create_opts *o, char *err, size_t errlen)
{
	(void)name;
	(void)drv;
	if (o->extent_size_hint_given || o->nocow)
		return block_err(err, errlen, "Invalid parameter '%s'",
				 o->nocow ? "nocow" : "extent_size_hint");
	return 0;
}

/* QEMU's qemu_gluster_co_create: O_TRUNC, owner read/write only. */
static int gluster_create(const char *name, uint64_t size, const struct block_proto **proto,
			  void **conn, char *err, size_t errlen)
{
	struct block_gluster_opts o;
	struct gluster_conn *c;
	char *storage;
	int ret = -1;

	(void)size;
	*proto = &gluster_proto;
	*conn = NULL;
	if (block_gluster_parse_uri(name, &o, &storage, err, errlen) < 0) {
		free(storage);
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(storage);
		return block_err(err, errlen, "out of memory");
	}
	pthread_mutex_init(&c->lock, NULL);
	c->fs = gluster_connect(&o, err, errlen);
	if (c->fs) {
		c->fd = glfs_creat(c->fs, o.path, O_WRONLY | O_CREAT | O_TRUNC, S_IRUSR | S_IWUSR);
		if (c->fd)
			ret = 0;
		else
			block_err(err, errlen, "Could not create '%s': %s", name, strerror(errno));
	}
	if (ret == 0)
		*conn = c;
	else if (c->fs)
		gluster_conn_close(c);
	else
		free(c);
	free(storage);
	return ret;
}

/*
 * Whole sectors, as QEMU's gluster writes (gluster_pad_end); then
 * preallocation=falloc: the scratch file's unwritten extents read as
 * holes, so the whole file is allocated here.
 */
static int gluster_create_finish(void *conn, uint64_t size, const struct block_create_opts *o,
				 char *err, size_t errlen)
{
	struct gluster_conn *c = conn;
	uint64_t padded = (size + 511) & ~511ULL;

	if (padded != size && glfs_ftruncate(c->fd, (off_t)padded, NULL, NULL) < 0)
		return block_err(err, errlen, "Could not resize the new image: %s",
				 strerror(errno));
	if (o->prealloc == BLOCK_PREALLOC_FALLOC && size &&
	    glfs_fallocate(c->fd, 0, 0, (size_t)size) < 0)
		return block_err(err, errlen, "Could not preallocate the new image: %s",
				 strerror(errno));
	if (glfs_fsync(c->fd, NULL, NULL) < 0)
		return block_err(err, errlen, "Could not flush the new image: %s", strerror(errno));
	return 0;
}

/* A format's create in the scratch directory made more than one file. */
static int gluster_several_files(const char *name, const struct block_driver *drv, char *err,
				 size_t errlen)
{
	(void)name;
	return block_err(err, errlen, "Image format '%s' with more than one file is not "
			 "supported by Kestrel on gluster volumes", drv->name);
}

const struct block_remote_creator block_gluster_creator = {
	.check = gluster_create_check,
	.create = gluster_create,
	.finish = gluster_create_finish,
	.several_files = gluster_several_files,
};

bool block_gluster_available(void)
{
	return true;
}

#else

int block_gluster_open(const char *display, const struct block_gluster_opts *o,
		       const char *format, unsigned flags, struct block_dev *parent,
		       struct block_dev **out, char *err, size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'gluster'");
}

/* block_remote_creator hands it out only where gluster is built in. */
const struct block_remote_creator block_gluster_creator;

bool block_gluster_available(void)
{
	return false;
}

#endif

bool block_gluster_protocol(const char *proto)
{
	return !strcmp(proto, "gluster") || !strcmp(proto, "gluster+tcp") ||
	       !strcmp(proto, "gluster+unix") || !strcmp(proto, "gluster+rdma");
}

bool block_gluster_name(const char *name)
{
	size_t n = strcspn(name, ":/");
	char proto[16];

	if (name[n] != ':' || n >= sizeof(proto))
		return false;
	snprintf(proto, sizeof(proto), "%.*s", (int)n, name);
	return block_gluster_protocol(proto);
}

/* QEMU's parse_volume_options: "/volume/path", each part non-empty. */
static int split_volume(char *path, struct block_gluster_opts *o)
{
	char *vol = path + strspn(path, "/"), *end = vol + strcspn(vol, "/");

	if (*end == '\0')
		return -1;
	*end++ = '\0';
	end += strspn(end, "/");
	if (*end == '\0')
		return -1;
	o->volume = vol;
	o->path = end;
	return 0;
}

/* The authority: [user@]host[:port], host possibly "[v6]"; -1 where it is no URI. */
static int split_authority(char *auth, struct block_gluster_server *s)
{
	char *at = strrchr(auth, '@'), *colon;

	if (at)
		auth = at + 1;		/* QEMU's parser takes a user name and ignores it */
	if (*auth == '[') {
		char *close = strchr(auth, ']');
		if (!close || (close[1] && close[1] != ':'))
			return -1;
		*close = '\0';
		s->host = auth + 1;
		colon = close[1] ? close + 1 : NULL;
	} else {
		colon = strchr(auth, ':');
		if (colon)
			*colon = '\0';
		s->host = auth;
	}
	if (colon) {
		*colon++ = '\0';
		if (strspn(colon, "0123456789") != strlen(colon) || strlen(colon) > 5)
			return -1;
		s->port = *colon && strtol(colon, NULL, 10) > 0 ? colon : NULL;
	}
	return 0;
}

/* The query: none for tcp, exactly socket=PATH for unix (QEMU's query_params_parse). */
static int read_query(char *query, bool is_unix, struct block_gluster_server *s)
{
	size_t n = query && *query ? 1 : 0;

	for (char *p = query; p && *p; p++)
		n += *p == '&' || *p == ';';
	if (n > 1 || (is_unix && n == 0) || (!is_unix && n))
		return -1;
	if (!is_unix)
		return 0;
	if (strncmp(query, "socket=", 7))
		return -1;
	block_uri_unescape(query + 7, false);
	s->path = query + 7;
	return 0;
}

int block_gluster_parse_uri(const char *uri, struct block_gluster_opts *o, char **storage,
			    char *err, size_t errlen)
{
	const char *sep = strstr(uri, "://"), *rest, *slash;
	char scheme[16], *p, *auth, *path, *query;
	struct block_gluster_server *s = &o->server[0];
	bool is_unix = false;

	memset(o, 0, sizeof(*o));
	o->debug = BLOCK_GLUSTER_DEBUG_DEFAULT;
	o->logfile = "-";
	o->nservers = 1;
	*storage = NULL;
	if (!sep || (size_t)(sep - uri) >= sizeof(scheme))
		goto invalid;
	snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - uri), uri);
	if (!block_gluster_protocol(scheme))
		goto invalid;
	is_unix = !strcmp(scheme, "gluster+unix");
	if (!strcmp(scheme, "gluster+rdma"))
		fprintf(stderr, "%s: warning: rdma feature is not supported, falling back to tcp\n",
			program_invocation_short_name);
	/* storage: the authority, a NUL, then the path with its '/' and the query. */
	rest = sep + 3;
	slash = rest + strcspn(rest, "/?#");
	*storage = p = malloc(strlen(rest) + 2);
	if (!p)
		return block_err(err, errlen, "out of memory");
	memcpy(p, rest, (size_t)(slash - rest));
	p[slash - rest] = '\0';
	auth = p;
	path = strcpy(p + (slash - rest) + 1, slash);
	path[strcspn(path, "#")] = '\0';		/* a fragment means nothing here */
	query = strchr(path, '?');
	if (query)
		*query++ = '\0';
	if (*path != '/')
		goto invalid;
	block_uri_unescape(path, false);
	if (split_volume(path, o) < 0 || read_query(query, is_unix, s) < 0)
		goto invalid;
	s->is_unix = is_unix;
	if (is_unix) {
		if (*auth)
			goto invalid;	/* unix: no host, no port */
		return 0;
	}
	if (split_authority(auth, s) < 0)
		goto invalid;
	block_uri_unescape((char *)s->host, false);
	if (!*s->host)
		s->host = "localhost";
	return 0;
invalid:
	return block_err(err, errlen, "invalid URI %s\nUsage: file=gluster[+transport]://"
			 "[host[:port]]volume/path[?socket=...][,file.debug=N]"
			 "[,file.logfile=/path/filename.log]", uri);
}
