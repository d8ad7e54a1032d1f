/*
 * nfs: a disk that is a file on an NFS server, through libnfs, as QEMU's
 * block/nfs.c: nfs://host/path[?uid=N&gid=N&tcp-syncnt=N&readahead=N&
 * pagecache=N&debug=N] or -blockdev driver=nfs (server.type=inet,
 * server.host, path, user, group, tcp-syn-count, readahead-size,
 * page-cache-size, debug).  The directory holding the file is mounted
 * (MOUNT3, RFC 1813 §5) and the file looked up in it, so the export is
 * the file's directory, as in QEMU.  NFSv3 over TCP (RFC 1813).
 *
 * The URL and option parsing below runs without libnfs too: it is
 * Kestrel's own code reading text a user (or an image's backing file
 * name) controls, and fuzz_nfs_uri drives it.
 */
#include "block/block_int.h"
#include "block/nfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* QEMU's limits (QEMU_NFS_MAX_*): larger values are cut down with a warning. */
#define NFS_MAX_READAHEAD	(1u << 20)
#define NFS_MAX_PAGECACHE	(8388608 / 4096)	/* pages of NFS_BLKSIZE */
#define NFS_MAX_DEBUG		2

/* URL query names and -blockdev names, by enum block_nfs_opt. */
static const struct { const char *query, *opt; } nfs_names[BLOCK_NFS_NOPTS] = {
	{ "uid", "user" }, { "gid", "group" }, { "tcp-syncnt", "tcp-syn-count" },
	{ "readahead", "readahead-size" }, { "pagecache", "page-cache-size" },
	{ "debug", "debug" },
};

bool block_nfs_protocol(const char *proto)
{
	return !strcmp(proto, "nfs");
}

/* QEMU's parse_uint_full, base 0: digits only (0x.. and 0.. too), no sign or blanks. */
static bool parse_uint(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno == 0 && *end == '\0';
}

/* One name=value of the query into o (QEMU's messages). */
static int parse_param(char *p, struct block_nfs_opts *o, char *err, size_t errlen)
{
	char *eq = strchr(p, '=');
	size_t i;

	if (eq)
		*eq = '\0';
	if (!block_uri_unescape(p, true) || (eq && !block_uri_unescape(eq + 1, true)))
		return block_err(err, errlen, "could not parse query parameters");
	if (!eq)
		return block_err(err, errlen, "Value for NFS parameter expected: %s", p);
	for (i = 0; i < BLOCK_NFS_NOPTS && strcmp(p, nfs_names[i].query); i++)
		;
	if (!parse_uint(eq + 1, &o->val[i < BLOCK_NFS_NOPTS ? i : 0]))
		return block_err(err, errlen, "Illegal value for NFS parameter: %s", p);
	if (i == BLOCK_NFS_NOPTS)
		return block_err(err, errlen, "Unknown NFS parameter name: %s", p);
	o->has[i] = true;
	return 0;
}

/* The host of an RFC 3986 authority ([userinfo@]host[:port]); QEMU ignores the port. */
static int parse_authority(char *a, struct block_nfs_opts *o, char *err, size_t errlen)
{
	char *at = strrchr(a, '@'), *port = NULL;

	if (at)
		a = at + 1;
	if (*a == '[') {
		char *end = strchr(a, ']');
		if (!end || (end[1] && end[1] != ':'))
			return block_err(err, errlen, "Invalid URI specified");
		*end = '\0';
		port = end[1] ? end + 2 : NULL;
		a++;
	} else if ((port = strchr(a, ':'))) {
		*port++ = '\0';
	}
	if ((port && strspn(port, "0123456789") != strlen(port)) || !block_uri_unescape(a, true))
		return block_err(err, errlen, "Invalid URI specified");
	if (!*a)
		return block_err(err, errlen, "missing hostname in URI");
	o->host = a;
	return 0;
}

int block_nfs_parse_uri(const char *uri, struct block_nfs_opts *o, char **storage, char *err,
			size_t errlen)
{
	const char *after = uri + 6;
	char *s, *rest, *path, *query, *p, *save = NULL;
	size_t alen;

	memset(o, 0, sizeof(*o));
	*storage = NULL;
	if (strncmp(uri, "nfs://", 6))
		return block_err(err, errlen, "URI scheme must be 'nfs'");
	alen = strcspn(after, "/?#");
	/* storage: the authority, a NUL, then the rest (path, query). */
	*storage = s = malloc(strlen(after) + 2);
	if (!s)
		return block_err(err, errlen, "out of memory");
	memcpy(s, after, alen);
	s[alen] = '\0';
	rest = strcpy(s + alen + 1, after + alen);
	rest[strcspn(rest, "#")] = '\0';	/* the fragment is not the server's */
	query = strchr(rest, '?');
	if (query)
		*query++ = '\0';
	path = *rest == '/' ? rest : NULL;
	if (parse_authority(s, o, err, errlen) < 0)
		return -1;
	if (!path)
		return block_err(err, errlen, "missing file path in URI");
	if (!block_uri_unescape(path, true))
		return block_err(err, errlen, "Invalid URI specified");
	o->path = path;
	for (p = query ? strtok_r(query, "&;", &save) : NULL; p; p = strtok_r(NULL, "&;", &save))
		if (parse_param(p, o, err, errlen) < 0)
			return -1;
	return 0;
}

static const char *get_under(struct opts *opts, const char *pfx, const char *key)
{
	char full[64];

	snprintf(full, sizeof(full), "%s%s", pfx, key);
	return opts_get(opts, full);
}

/* QEMU: a filename and the options it stands for are not given together. */
static int filename_conflict(struct opts *opts, const char *pfx, char *err, size_t errlen)
{
	static const char *const keys[] = { "path", "server.host", "server.type" };
	size_t i;

	for (i = 0; i < 3; i++)
		if (get_under(opts, pfx, keys[i]))
			return block_err(err, errlen, "Option %s cannot be used with a filename",
					 keys[i]);
	for (i = 0; i < BLOCK_NFS_NOPTS; i++)
		if (get_under(opts, pfx, nfs_names[i].opt))
			return block_err(err, errlen, "Option %s cannot be used with a filename",
					 nfs_names[i].opt);
	return 0;
}

int block_nfs_read_opts(struct opts *opts, const char *pfx, struct block_nfs_opts *o,
			char **storage, char *err, size_t errlen)
{
	const char *filename = get_under(opts, pfx, "filename"), *type, *v;

	memset(o, 0, sizeof(*o));
	*storage = NULL;
	if (filename) {
		if (filename_conflict(opts, pfx, err, errlen) < 0)
			return -1;
		return block_nfs_parse_uri(filename, o, storage, err, errlen);
	}
	type = get_under(opts, pfx, "server.type");
	o->host = get_under(opts, pfx, "server.host");
	o->path = get_under(opts, pfx, "path");
	if (!type)
		return block_err(err, errlen, "Parameter 'server.type' is missing");
	if (strcmp(type, "inet"))
		return block_err(err, errlen, "Parameter 'type' does not accept value '%s'", type);
	if (!o->host)
		return block_err(err, errlen, "Parameter 'server.host' is missing");
	if (!o->path)
		return block_err(err, errlen, "Parameter 'path' is missing");
	for (size_t i = 0; i < BLOCK_NFS_NOPTS; i++) {
		v = get_under(opts, pfx, nfs_names[i].opt);
		if (!v)
			continue;
		if (!parse_uint(v, &o->val[i]))
			return block_err(err, errlen, "Parameter '%s' expects integer",
					 nfs_names[i].opt);
		o->has[i] = true;
	}
	return 0;
}

void block_nfs_display(const struct block_nfs_opts *o, char *buf, size_t len)
{
	unsigned long long uid = o->has[BLOCK_NFS_USER] ? o->val[BLOCK_NFS_USER] : 0;
	unsigned long long gid = o->has[BLOCK_NFS_GROUP] ? o->val[BLOCK_NFS_GROUP] : 0;

	/* nfs_refresh_filename: uid and gid only, and only those not 0. */
	if (uid && gid)
		snprintf(buf, len, "nfs://%s%s?uid=%llu&gid=%llu", o->host, o->path, uid, gid);
	else if (uid)
		snprintf(buf, len, "nfs://%s%s?uid=%llu", o->host, o->path, uid);
	else if (gid)
		snprintf(buf, len, "nfs://%s%s?gid=%llu", o->host, o->path, gid);
	else
		snprintf(buf, len, "nfs://%s%s", o->host, o->path);
}

#ifdef KESTREL_NFS
#include <nfsc/libnfs.h>

/*
 * A libnfs context serves one thread at a time (its sync calls run its own
 * event loop), so a disk keeps up to NFS_MAX_LINKS contexts, each with its
 * own TCP connection, opened as concurrent requests first need them: the
 * guest's queued requests then reach the server together, as QEMU's
 * asynchronous requests do.  With libnfs's caches (readahead, pagecache),
 * which are per context and would go stale across contexts, one link only.
 */
#define NFS_MAX_LINKS	8

struct nfs_link {
	struct nfs_context *ctx;
	struct nfsfh *fh;
	pthread_mutex_t lock;		/* held for each call on ctx */
	bool dirty;			/* written since its last COMMIT */
};

struct nfs_conn {
	struct nfs_link link[NFS_MAX_LINKS];
	unsigned nlinks;		/* opened, read atomically; grows under open_lock */
	unsigned max_links;
	unsigned next;			/* round robin when all are busy */
	pthread_mutex_t open_lock;	/* opening a link; size */
	uint64_t size;
	uint64_t readmax, writemax;	/* the server's FSINFO rtmax/wtmax */
	struct block_nfs_opts opts;	/* to open more links: host and path are copies */
	unsigned flags;
};

static int link_open(struct nfs_conn *c, struct nfs_link *l, bool create, char *err,
		     size_t errlen);

/* A link no other thread is using, locked; a new one while fewer than max are open. */
static struct nfs_link *link_get(struct nfs_conn *c)
{
	unsigned n = __atomic_load_n(&c->nlinks, __ATOMIC_ACQUIRE), i;
	struct nfs_link *l;

	for (i = 0; i < n; i++)
		if (pthread_mutex_trylock(&c->link[i].lock) == 0)
			return &c->link[i];
	pthread_mutex_lock(&c->open_lock);
	n = c->nlinks;
	if (n < c->max_links) {
		l = &c->link[n];
		pthread_mutex_lock(&l->lock);
		if (link_open(c, l, false, NULL, 0) == 0) {
			__atomic_store_n(&c->nlinks, n + 1, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&c->open_lock);
			return l;
		}
		pthread_mutex_unlock(&l->lock);
		c->max_links = n;	/* the server takes no more: share the open ones */
	}
	i = c->next++ % n;
	pthread_mutex_unlock(&c->open_lock);
	pthread_mutex_lock(&c->link[i].lock);
	return &c->link[i];
}

static void size_grow(struct nfs_conn *c, uint64_t end)
{
	pthread_mutex_lock(&c->open_lock);
	if (end > c->size)
		c->size = end;
	pthread_mutex_unlock(&c->open_lock);
}

static int nfs_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct nfs_conn *c = conn;
	struct nfs_link *l = link_get(c);
	uint8_t *p = buf;
	int ret = 0;

	while (len) {
		size_t want = len < c->readmax ? len : (size_t)c->readmax;
		int n = nfs_pread(l->ctx, l->fh, off, want, p);
		if (n < 0) {
			ret = n;
			break;
		}
		if (n == 0) {
			memset(p, 0, len);	/* past the end of the file: zeroes, as a file */
			break;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

static int nfs_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct nfs_conn *c = conn;
	struct nfs_link *l = link_get(c);
	const uint8_t *p = buf;
	int ret = 0;

	l->dirty = true;
	while (len) {
		size_t want = len < c->writemax ? len : (size_t)c->writemax;
		int n = nfs_pwrite(l->ctx, l->fh, off, want, p);
		if (n <= 0) {
			ret = n < 0 ? n : -EIO;
			break;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&l->lock);
	size_grow(c, off);
	return ret;
}

/* COMMIT (RFC 1813 §3.3.21) on every link that wrote: its unstable writes made stable. */
static int nfs_conn_flush(void *conn)
{
	struct nfs_conn *c = conn;
	unsigned n = __atomic_load_n(&c->nlinks, __ATOMIC_ACQUIRE);
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		struct nfs_link *l = &c->link[i];
		int r = 0;
		pthread_mutex_lock(&l->lock);
		if (l->dirty) {
			r = nfs_fsync(l->ctx, l->fh);
			l->dirty = r < 0;
		}
		pthread_mutex_unlock(&l->lock);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

static int nfs_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	(void)may_unmap;
	/* NFSv3 has no way to write zeroes but sending them. */
	return block_write_zero_buffer(nfs_conn_pwrite, conn, off, len);
}

/* SETATTR of the size (RFC 1813 §3.3.2): grows or shrinks, as QEMU's nfs driver. */
static int nfs_conn_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	struct nfs_conn *c = conn;
	struct nfs_link *l = link_get(c);
	int ret = nfs_ftruncate(l->ctx, l->fh, size);

	pthread_mutex_unlock(&l->lock);
	if (ret < 0)
		return block_err(err, errlen, "Failed to truncate file: %s", strerror(-ret));
	pthread_mutex_lock(&c->open_lock);
	c->size = size;
	pthread_mutex_unlock(&c->open_lock);
	return 0;
}

static int64_t nfs_conn_size(void *conn)
{
	struct nfs_conn *c = conn;
	uint64_t size;

	pthread_mutex_lock(&c->open_lock);
	size = c->size;
	pthread_mutex_unlock(&c->open_lock);
	return (int64_t)size;
}

/* What the server stores (st_blocks), as QEMU's nfs_get_allocated_file_size. */
static int64_t nfs_conn_allocated(void *conn)
{
	struct nfs_link *l = link_get(conn);
	struct nfs_stat_64 st;
	int ret = nfs_fstat64(l->ctx, l->fh, &st);

	pthread_mutex_unlock(&l->lock);
	return ret < 0 ? ret : (int64_t)st.nfs_blocks * 512;
}

static void link_close(struct nfs_link *l)
{
	if (l->fh)
		nfs_close(l->ctx, l->fh);
	if (l->ctx)
		nfs_destroy_context(l->ctx);
	l->fh = NULL;
	l->ctx = NULL;
}

static void nfs_conn_close(void *conn)
{
	struct nfs_conn *c = conn;

	for (unsigned i = 0; i < NFS_MAX_LINKS; i++) {
		link_close(&c->link[i]);
		pthread_mutex_destroy(&c->link[i].lock);
	}
	pthread_mutex_destroy(&c->open_lock);
	free((char *)c->opts.host);
	free((char *)c->opts.path);
	free(c);
}

static const struct block_proto nfs_proto = {
	.name = "nfs",
	.label = "NFS",
	.pread = nfs_conn_pread,
	.pwrite = nfs_conn_pwrite,
	.flush = nfs_conn_flush,
	.zero = nfs_conn_zero,
	.truncate = nfs_conn_truncate,
	.size = nfs_conn_size,
	.allocated = nfs_conn_allocated,
	.close = nfs_conn_close,
};

/* QEMU's warn_report: the program's name first. */
static void nfs_warn(const char *what, unsigned long long v, const char *unit)
{
	fprintf(stderr, "%s: warning: %s %llu%s\n", program_invocation_short_name, what, v, unit);
}

/* The caches are libnfs's own; O_DIRECT asks for none (QEMU refuses both together). */
static int set_caches(struct nfs_context *ctx, const struct block_nfs_opts *o, unsigned flags,
		      bool quiet, char *err, size_t errlen)
{
	uint64_t v;

	if (o->has[BLOCK_NFS_READAHEAD]) {
		if (flags & BLOCK_NOCACHE)
			return block_err(err, errlen, "Cannot enable NFS readahead if "
					 "cache.direct = on");
		v = o->val[BLOCK_NFS_READAHEAD];
		if (v > NFS_MAX_READAHEAD) {
			if (!quiet)
				nfs_warn("Truncating NFS readahead size to", NFS_MAX_READAHEAD, "");
			v = NFS_MAX_READAHEAD;
		}
		nfs_set_readahead(ctx, (uint32_t)v);
		nfs_set_pagecache_ttl(ctx, 0);
	}
	if (o->has[BLOCK_NFS_PAGECACHE]) {
		if (flags & BLOCK_NOCACHE)
			return block_err(err, errlen, "Cannot enable NFS pagecache if "
					 "cache.direct = on");
		v = o->val[BLOCK_NFS_PAGECACHE];
		if (v > NFS_MAX_PAGECACHE) {
			if (!quiet)
				nfs_warn("Truncating NFS pagecache size to", NFS_MAX_PAGECACHE,
					 " pages");
			v = NFS_MAX_PAGECACHE;
		}
		nfs_set_pagecache(ctx, (uint32_t)v);
		nfs_set_pagecache_ttl(ctx, 0);
	}
	return 0;
}

/* quiet: a further link of an open disk, whose warnings the first one gave. */
static int set_options(struct nfs_context *ctx, const struct block_nfs_opts *o, unsigned flags,
		       bool quiet, char *err, size_t errlen)
{
	uint64_t v;

	if (o->has[BLOCK_NFS_USER])
		nfs_set_uid(ctx, (int)o->val[BLOCK_NFS_USER]);
	if (o->has[BLOCK_NFS_GROUP])
		nfs_set_gid(ctx, (int)o->val[BLOCK_NFS_GROUP]);
	if (o->has[BLOCK_NFS_TCP_SYNCNT])
		nfs_set_tcp_syncnt(ctx, (int)o->val[BLOCK_NFS_TCP_SYNCNT]);
	if (o->has[BLOCK_NFS_DEBUG]) {
		v = o->val[BLOCK_NFS_DEBUG];
		if (v > NFS_MAX_DEBUG) {
			/* QEMU: so that a debug level cannot flood the logs. */
			if (!quiet)
				nfs_warn("Limiting NFS debug level to", NFS_MAX_DEBUG, "");
			v = NFS_MAX_DEBUG;
		}
		nfs_set_debug(ctx, (int)v);
	}
	return set_caches(ctx, o, flags, quiet, err, errlen);
}

/*
 * Mounts the file's directory and opens (or, create: creates and empties)
 * the file in it: QEMU's nfs_client_open, with its messages.
 */
static int link_open(struct nfs_conn *c, struct nfs_link *l, bool create, char *err,
		     size_t errlen)
{
	const struct block_nfs_opts *o = &c->opts;
	const char *slash = strrchr(o->path, '/');
	char *dir;
	int ret;

	if (!slash)
		return block_err(err, errlen, "Invalid URL specified");
	l->ctx = nfs_init_context();
	if (!l->ctx)
		return block_err(err, errlen, "Failed to init NFS context");
	if (set_options(l->ctx, o, c->flags, l != c->link, err, errlen) < 0)
		goto fail;
	dir = strndup(o->path, (size_t)(slash - o->path));
	if (!dir) {
		block_err(err, errlen, "out of memory");
		goto fail;
	}
	ret = nfs_mount(l->ctx, o->host, dir);
	free(dir);
	if (ret < 0) {
		block_err(err, errlen, "Failed to mount nfs share: %s", nfs_get_error(l->ctx));
		goto fail;
	}
	if (create)
		ret = nfs_create(l->ctx, slash, O_TRUNC, 0600, &l->fh);
	else
		ret = nfs_open(l->ctx, slash, (c->flags & BLOCK_RDONLY) ? O_RDONLY : O_RDWR,
			       &l->fh);
	if (ret < 0) {
		block_err(err, errlen, create ? "Failed to create file: %s" :
			  "Failed to open file : %s", nfs_get_error(l->ctx));
		goto fail;
	}
	return 0;
fail:
	link_close(l);
	return -1;
}

static struct nfs_conn *nfs_conn_new(const struct block_nfs_opts *o, unsigned flags, bool create,
				     char *err, size_t errlen)
{
	struct nfs_conn *c = calloc(1, sizeof(*c));
	struct nfs_stat_64 st;
	bool cached = o->has[BLOCK_NFS_READAHEAD] || o->has[BLOCK_NFS_PAGECACHE];

	if (!c) {
		block_err(err, errlen, "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < NFS_MAX_LINKS; i++)
		pthread_mutex_init(&c->link[i].lock, NULL);
	pthread_mutex_init(&c->open_lock, NULL);
	c->opts = *o;
	c->opts.host = strdup(o->host);
	c->opts.path = strdup(o->path);
	c->flags = flags;
	c->max_links = cached ? 1 : NFS_MAX_LINKS;
	if (!c->opts.host || !c->opts.path) {
		block_err(err, errlen, "out of memory");
	} else if (link_open(c, &c->link[0], create, err, errlen) == 0) {
		c->nlinks = 1;
		if (nfs_fstat64(c->link[0].ctx, c->link[0].fh, &st) == 0) {
			c->size = st.nfs_size;
			c->readmax = nfs_get_readmax(c->link[0].ctx);
			c->writemax = nfs_get_writemax(c->link[0].ctx);
			if (!c->readmax || !c->writemax)
				c->readmax = c->writemax = 32 << 10;
			return c;
		}
		block_err(err, errlen, "Failed to fstat file: %s",
			  nfs_get_error(c->link[0].ctx));
	}
	nfs_conn_close(c);
	return NULL;
}

int block_nfs_open(const struct block_nfs_opts *o, const char *format, unsigned flags,
		   struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct nfs_conn *c;
	char display[4096];

	*out = NULL;
	c = nfs_conn_new(o, flags, false, err, errlen);
	if (!c)
		return -1;
	block_nfs_display(o, display, sizeof(display));
	return block_open_proto(display, &nfs_proto, c, format, flags, parent, out, err, errlen);
}

int block_nfs_create(const char *uri, const struct block_proto **proto, void **conn, char *err,
		     size_t errlen)
{
	struct block_nfs_opts o;
	char *storage;
	int ret = block_nfs_parse_uri(uri, &o, &storage, err, errlen);

	*conn = NULL;
	if (ret == 0) {
		*conn = nfs_conn_new(&o, 0, true, err, errlen);
		ret = *conn ? 0 : -1;
	}
	free(storage);
	*proto = &nfs_proto;
	return ret;
}

static int nfs_create_object(const char *name, uint64_t size, const struct block_proto **proto,
			     void **conn, char *err, size_t errlen)
{
	(void)size;
	return block_nfs_create(name, proto, conn, err, errlen);
}

/* Files beside the image (vmdk extents) are not on the server: say so. */
static int nfs_several_files(const char *name, const struct block_driver *drv, char *err,
			     size_t errlen)
{
	(void)drv;
	return block_err(err, errlen, "Kestrel creates only single-file images on %.*s "
			 "protocols: the format asked for a second file", (int)strcspn(name, ":"),
			 name);
}

const struct block_remote_creator block_nfs_creator = {
	.check = block_create_refuse_prealloc,
	.create = nfs_create_object,
	.several_files = nfs_several_files,
};

bool block_nfs_available(void)
{
	return true;
}

#else

int block_nfs_open(const struct block_nfs_opts *o, const char *format, unsigned flags,
		   struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'nfs'");
}

int block_nfs_create(const char *uri, const struct block_proto **proto, void **conn, char *err,
		     size_t errlen)
{
	*proto = NULL;
	*conn = NULL;
	return block_err(err, errlen, "Unknown protocol 'nfs'");
}

/* block_remote_creator hands it out only where nfs is built in. */
const struct block_remote_creator block_nfs_creator;

bool block_nfs_available(void)
{
	return false;
}

#endif
