/*
 * rbd: a disk that is a Ceph RADOS block device image, read and written
 * through librbd as QEMU's block/rbd.c does: rbd:pool[/namespace]/image
 * [@snapshot][:conf=FILE][:id=USER][:ceph_option=value...] or -blockdev
 * driver=rbd (pool, namespace, image, snapshot, conf, user, key-secret,
 * server.N.host/port, auth-client-required).  A snapshot opens read-only;
 * writes past the end grow the image first (librbd refuses them), so a
 * format over rbd grows as it would over a file.
 *
 * The filename parser is built always: the fuzz target and the unit tests
 * run it whether or not this build has librbd.
 */
#include "block/block_int.h"
#include "block/rbd.h"
#include "util/json_tree.h"
#include "util/json_write.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* QEMU's qemu_rbd_strchr: the first delim not escaped by '\'. */
static char *rbd_strchr(char *s, char delim)
{
	for (; *s; s++) {
		if (*s == delim)
			return s;
		if (*s == '\\' && s[1])
			s++;
	}
	return NULL;
}

/* The token up to delim (cut there); *rest: after it, or NULL when there is none. */
static char *next_tok(char *s, char delim, char **rest)
{
	char *end = rbd_strchr(s, delim);

	*rest = NULL;
	if (end) {
		*end = '\0';
		*rest = end + 1;
	}
	return s;
}

/* '\x' is x. */
static void unescape(char *s)
{
	char *p = s;

	for (; *s; s++, p++) {
		if (*s == '\\' && s[1])
			s++;
		*p = *s;
	}
	*p = '\0';
}

void block_rbd_opts_free(struct block_rbd_opts *o)
{
	free(o->buf);
	free(o->pairs);
	o->buf = NULL;
	o->pairs = NULL;
	o->n_pairs = 0;
}

static int add_pair(struct block_rbd_opts *o, const char *name, const char *value, char *err,
		    size_t errlen)
{
	const char **p = realloc(o->pairs, (o->n_pairs + 1) * 2 * sizeof(*p));

	if (!p)
		return block_err(err, errlen, "out of memory");
	o->pairs = p;
	p[2 * o->n_pairs] = name;
	p[2 * o->n_pairs + 1] = value;
	o->n_pairs++;
	return 0;
}

/* ":name=value" pairs: conf and id are QEMU's own, the rest go to rados_conf_set. */
static int parse_pairs(struct block_rbd_opts *o, char *p, char *err, size_t errlen)
{
	while (p) {
		char *name = next_tok(p, '=', &p), *value;

		if (!p)
			return block_err(err, errlen, "conf option %s has no value", name);
		unescape(name);
		value = next_tok(p, ':', &p);
		unescape(value);
		if (!strcmp(name, "conf"))
			o->conf = value;
		else if (!strcmp(name, "id"))
			o->user = value;
		else if (add_pair(o, name, value, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int block_rbd_parse_filename(const char *name, struct block_rbd_opts *o, char *err,
			     size_t errlen)
{
	char *p, *image;

	memset(o, 0, sizeof(*o));
	if (strncmp(name, "rbd:", 4))
		return block_err(err, errlen, "File name must start with 'rbd:'");
	o->buf = strdup(name + 4);
	if (!o->buf)
		return block_err(err, errlen, "out of memory");
	o->pool = next_tok(o->buf, '/', &p);
	if (!p)
		return block_err(err, errlen, "Pool name is required");
	unescape(o->buf);
	/* An '@' anywhere after the pool starts the snapshot name, as in QEMU. */
	if (rbd_strchr(p, '@')) {
		image = next_tok(p, '@', &p);
		o->snapshot = next_tok(p, ':', &p);
		unescape((char *)o->snapshot);
	} else {
		image = next_tok(p, ':', &p);
	}
	o->nspace = "";
	if (rbd_strchr(image, '/')) {
		char *ns = next_tok(image, '/', &image);
		unescape(ns);
		o->nspace = ns;
	}
	unescape(image);
	o->image = image;
	return parse_pairs(o, p, err, errlen);
}

/* One object's members, string values, in QDict order: {"k": "v", ...}. */
static void write_object(struct json_buf *b, const char *const *kv, size_t n)
{
	struct json_member m[BLOCK_RBD_NAME_MAX];

	if (n > BLOCK_RBD_NAME_MAX)
		n = BLOCK_RBD_NAME_MAX;
	for (size_t i = 0; i < n; i++)
		m[i] = (struct json_member){ .key = kv[2 * i], .val = kv[2 * i + 1] };
	json_qdict_sort(m, n);
	json_buf_str(b, "{");
	for (size_t i = 0; i < n; i++) {
		json_buf_str(b, i ? ", " : "");
		json_write_string(b, m[i].key, strlen(m[i].key));
		json_buf_str(b, ": ");
		json_write_string(b, m[i].val, strlen(m[i].val));
	}
	json_buf_str(b, "}");
}

char *block_rbd_json_name(const char *format, const char *const *kv, size_t n)
{
	struct json_buf b = { 0 };

	json_buf_str(&b, "json:");
	if (format) {
		/* QDict order puts "driver" before "file". */
		json_buf_str(&b, "{\"driver\": ");
		json_write_string(&b, format, strlen(format));
		json_buf_str(&b, ", \"file\": ");
	}
	write_object(&b, kv, n);
	if (format)
		json_buf_str(&b, "}");
	json_buf_add(&b, "", 1);
	if (b.failed) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

bool block_rbd_protocol(const char *proto)
{
	return !strcmp(proto, "rbd");
}

#ifdef KESTREL_RBD
#include <dlfcn.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

/*
 * librados and librbd are loaded when the first rbd node opens, as QEMU
 * loads its block-rbd module on demand: linked in, their C++ start-up ran in
 * every kestrel-img process, rbd or not (an empty main linked against them
 * takes 0.1 s, 1.4 s under ASan, against 0.01 s without).  The calls below
 * go through these pointers; the headers still give their types.
 */
#define RADOS_FUNCS(X) \
	X(rados_conf_read_file) \
	X(rados_conf_set) \
	X(rados_connect) \
	X(rados_create) \
	X(rados_ioctx_create) \
	X(rados_ioctx_destroy) \
	X(rados_ioctx_set_namespace) \
	X(rados_shutdown)
#define LIBRBD_FUNCS(X) \
	X(rbd_close) \
	X(rbd_create) \
	X(rbd_diff_iterate2) \
	X(rbd_flush) \
	X(rbd_get_features) \
	X(rbd_get_flags) \
	X(rbd_get_parent) \
	X(rbd_get_size) \
	X(rbd_linked_image_spec_cleanup) \
	X(rbd_namespace_exists) \
	X(rbd_open) \
	X(rbd_open_read_only) \
	X(rbd_read) \
	X(rbd_remove) \
	X(rbd_resize) \
	X(rbd_snap_create) \
	X(rbd_snap_list) \
	X(rbd_snap_list_end) \
	X(rbd_snap_remove) \
	X(rbd_snap_rollback) \
	X(rbd_snap_spec_cleanup) \
	X(rbd_stat) \
	X(rbd_write) \
	X(rbd_write_zeroes)

static struct {
#define X(f) __typeof__(f) *p_##f;
	RADOS_FUNCS(X)
	LIBRBD_FUNCS(X)
#undef X
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static char lib_error[256];

static void *lib_open(const char *name)
{
	void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);

	if (!h && !*lib_error)
		snprintf(lib_error, sizeof(lib_error), "%s", dlerror());
	return h;
}

static void lib_load(void)
{
	void *rados = lib_open("librados.so.2"), *rbd = rados ? lib_open("librbd.so.1") : NULL;

	if (!rbd)
		return;
#define X(f) \
	if (!*lib_error && !(lib.p_##f = (__typeof__(lib.p_##f))dlsym(LIB_HANDLE, #f))) \
		snprintf(lib_error, sizeof(lib_error), "%s", dlerror());
#define LIB_HANDLE rados
	RADOS_FUNCS(X)
#undef LIB_HANDLE
#define LIB_HANDLE rbd
	LIBRBD_FUNCS(X)
#undef LIB_HANDLE
#undef X
}

/* 0, or -1 with the loader's message (the libraries gone since the build). */
static int lib_ready(char *err, size_t errlen)
{
	pthread_once(&lib_once, lib_load);
	if (*lib_error)
		return block_err(err, errlen, "Could not load librbd: %s", lib_error);
	return 0;
}

#define rados_conf_read_file (*lib.p_rados_conf_read_file)
#define rados_conf_set (*lib.p_rados_conf_set)
#define rados_connect (*lib.p_rados_connect)
#define rados_create (*lib.p_rados_create)
#define rados_ioctx_create (*lib.p_rados_ioctx_create)
#define rados_ioctx_destroy (*lib.p_rados_ioctx_destroy)
#define rados_ioctx_set_namespace (*lib.p_rados_ioctx_set_namespace)
#define rados_shutdown (*lib.p_rados_shutdown)
#define rbd_close (*lib.p_rbd_close)
#define rbd_create (*lib.p_rbd_create)
#define rbd_diff_iterate2 (*lib.p_rbd_diff_iterate2)
#define rbd_flush (*lib.p_rbd_flush)
#define rbd_get_features (*lib.p_rbd_get_features)
#define rbd_get_flags (*lib.p_rbd_get_flags)
#define rbd_get_parent (*lib.p_rbd_get_parent)
#define rbd_get_size (*lib.p_rbd_get_size)
#define rbd_linked_image_spec_cleanup (*lib.p_rbd_linked_image_spec_cleanup)
#define rbd_namespace_exists (*lib.p_rbd_namespace_exists)
#define rbd_open (*lib.p_rbd_open)
#define rbd_open_read_only (*lib.p_rbd_open_read_only)
#define rbd_read (*lib.p_rbd_read)
#define rbd_remove (*lib.p_rbd_remove)
#define rbd_resize (*lib.p_rbd_resize)
#define rbd_snap_create (*lib.p_rbd_snap_create)
#define rbd_snap_list (*lib.p_rbd_snap_list)
#define rbd_snap_list_end (*lib.p_rbd_snap_list_end)
#define rbd_snap_remove (*lib.p_rbd_snap_remove)
#define rbd_snap_rollback (*lib.p_rbd_snap_rollback)
#define rbd_snap_spec_cleanup (*lib.p_rbd_snap_spec_cleanup)
#define rbd_stat (*lib.p_rbd_stat)
#define rbd_write (*lib.p_rbd_write)
#define rbd_write_zeroes (*lib.p_rbd_write_zeroes)

/* The most one librbd call moves (its requests are split into objects anyway). */
#define RBD_MAX_REQUEST		(64u << 20)

struct rbd_conn {
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t image;
	pthread_mutex_t lock;		/* orders growing the image */
	uint64_t size;
	uint64_t obj_size;
	bool have_cluster, have_io;
};

/* RFC 4648 base64: QEMU hands rados the key as qcrypto_secret_lookup_as_base64 makes it. */
static char *base64(const unsigned char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		*p++ = tab[v >> 18 & 63];
		*p++ = tab[v >> 12 & 63];
		*p++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
		*p++ = i + 2 < len ? tab[v & 63] : '=';
	}
	*p = '\0';
	return out;
}

/* QEMU's qemu_rbd_set_auth: the cephx key from a secret, the auth methods. */
static int set_auth(rados_t cluster, const struct block_rbd_opts *o, char *err, size_t errlen)
{
	int r;

	if (o->key_secret) {
		size_t len;
		const char *data = block_secret_lookup(o->key_secret, &len);
		char *key;
		if (!data)
			return block_err(err, errlen, "No secret with id '%s'", o->key_secret);
		key = base64((const unsigned char *)data, len);
		if (!key)
			return block_err(err, errlen, "out of memory");
		r = rados_conf_set(cluster, "key", key);
		free(key);
		if (r < 0)
			return block_err(err, errlen, "Could not set 'key': %s", strerror(-r));
	}
	if (o->auth_client_required) {
		r = rados_conf_set(cluster, "auth_client_required", o->auth_client_required);
		if (r < 0)
			return block_err(err, errlen, "Could not set 'auth_client_required': %s",
					 strerror(-r));
	}
	return 0;
}

/* The configuration before connecting, in QEMU's qemu_rbd_connect order. */
static int configure(rados_t cluster, const struct block_rbd_opts *o, bool cache, char *err,
		     size_t errlen)
{
	int r = rados_conf_read_file(cluster, o->conf);

	/* Without conf=, the default places are tried and their absence is no error. */
	if (o->conf && r < 0)
		return block_err(err, errlen, "error reading conf file %s: %s", o->conf,
				 strerror(-r));
	for (size_t i = 0; i < o->n_pairs; i++) {
		r = rados_conf_set(cluster, o->pairs[2 * i], o->pairs[2 * i + 1]);
		if (r < 0)
			return block_err(err, errlen, "invalid conf option %s: %s", o->pairs[2 * i],
					 strerror(-r));
	}
	if (o->mon_host && (r = rados_conf_set(cluster, "mon_host", o->mon_host)) < 0)
		return block_err(err, errlen, "invalid mon host %s: %s", o->mon_host, strerror(-r));
	if (set_auth(cluster, o, err, errlen) < 0)
		return -1;
	/* librbd's own cache, as QEMU sets it: on unless cache.direct (an unknown option is no error). */
	rados_conf_set(cluster, "rbd_cache", cache ? "true" : "false");
	return 0;
}

/* QEMU's qemu_rbd_connect: the cluster and the pool's I/O context in the namespace. */
static int rbd_connect(struct rbd_conn *c, const struct block_rbd_opts *o, bool cache,
		       char *err, size_t errlen)
{
	int r;

	if (lib_ready(err, errlen) < 0)
		return -1;
	r = rados_create(&c->cluster, o->user);

	if (r < 0)
		return block_err(err, errlen, "error initializing: %s", strerror(-r));
	c->have_cluster = true;
	if (configure(c->cluster, o, cache, err, errlen) < 0)
		return -1;
	r = rados_connect(c->cluster);
	if (r < 0)
		return block_err(err, errlen, "error connecting: %s", strerror(-r));
	r = rados_ioctx_create(c->cluster, o->pool, &c->io);
	if (r < 0)
		return block_err(err, errlen, "error opening pool %s: %s", o->pool, strerror(-r));
	c->have_io = true;
	if (o->nspace && *o->nspace) {
		bool exists = false;
		r = rbd_namespace_exists(c->io, o->nspace, &exists);
		if (r < 0)
			return block_err(err, errlen, "error checking namespace: %s", strerror(-r));
		if (!exists)
			return block_err(err, errlen, "namespace '%s' does not exist", o->nspace);
	}
	rados_ioctx_set_namespace(c->io, o->nspace);
	return 0;
}

static void rbd_conn_close(void *conn)
{
	struct rbd_conn *c = conn;

	if (c->image)
		rbd_close(c->image);
	if (c->have_io)
		rados_ioctx_destroy(c->io);
	if (c->have_cluster)
		rados_shutdown(c->cluster);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int rbd_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct rbd_conn *c = conn;
	uint64_t size = __atomic_load_n(&c->size, __ATOMIC_RELAXED);
	uint8_t *p = buf;

	/* Past the end: zeroes, as past a file's end (librbd refuses such reads). */
	if (off >= size || len > size - off) {
		size_t in = off >= size ? 0 : (size_t)(size - off);
		memset(p + in, 0, len - in);
		len = in;
	}
	while (len) {
		size_t n = len < RBD_MAX_REQUEST ? len : RBD_MAX_REQUEST;
		ssize_t r = rbd_read(c->image, off, n, (char *)p);
		if (r < 0)
			return (int)r;
		/* Short at the end of the image: the rest reads as zeroes, as past a file's end. */
		if ((size_t)r < n) {
			memset(p + r, 0, len - (size_t)r);
			return 0;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* librbd refuses I/O past the end: grow first, as QEMU's qemu_rbd_start_co does. */
static int grow_for(struct rbd_conn *c, uint64_t end)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (end > c->size) {
		r = rbd_resize(c->image, end);
		if (r == 0)
			__atomic_store_n(&c->size, end, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int rbd_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct rbd_conn *c = conn;
	const uint8_t *p = buf;
	int r = grow_for(c, off + len);

	while (r == 0 && len) {
		size_t n = len < RBD_MAX_REQUEST ? len : RBD_MAX_REQUEST;
		ssize_t w = rbd_write(c->image, off, n, (const char *)p);
		if (w < 0)
			return (int)w;
		if ((size_t)w != n)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return r;
}

static int rbd_conn_flush(void *conn)
{
	return rbd_flush(((struct rbd_conn *)conn)->image);
}

/* Without may_unmap the zeroes stay allocated (RBD_WRITE_ZEROES_FLAG_THICK_PROVISION). */
static int rbd_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct rbd_conn *c = conn;
	int flags = may_unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;
	int r = grow_for(c, off + len);

	while (r == 0 && len) {
		size_t n = len < RBD_MAX_REQUEST ? (size_t)len : RBD_MAX_REQUEST;
		ssize_t w = rbd_write_zeroes(c->image, off, n, flags, 0);
		if (w < 0)
			return (int)w;
		off += n;
		len -= n;
	}
	return r;
}

struct diff_walk {
	uint64_t off, len;	/* the range found so far */
	bool exists;
};

/* Stops the walk: a value no librbd error has (QEMU's QEMU_RBD_EXIT_DIFF_ITERATE2). */
#define DIFF_STOP	(-9000)

/* QEMU's qemu_rbd_diff_iterate_cb: the first run of allocated or unallocated objects. */
static int diff_cb(uint64_t off, size_t len, int exists, void *opaque)
{
	struct diff_walk *w = opaque;

	if (!exists)
		return 0;
	if (!w->exists && off > w->off) {
		w->len = off - w->off;		/* a hole up to this first data */
		return DIFF_STOP;
	}
	if (w->exists && off > w->off + w->len)
		return DIFF_STOP;		/* data, then a hole */
	w->len += len;
	w->exists = true;
	return 0;
}

/* Whether the object map's fast-diff answers for this image (QEMU's conditions). */
static bool can_diff(struct rbd_conn *c)
{
	uint64_t features, flags;
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t snap;

	if (rbd_get_features(c->image, &features) < 0 || !(features & RBD_FEATURE_FAST_DIFF))
		return false;
	if (rbd_get_flags(c->image, &flags) < 0 || (flags & RBD_FLAG_FAST_DIFF_INVALID))
		return false;
#if LIBRBD_VERSION_CODE < LIBRBD_VERSION(1, 17, 0)
	/*
	 * Before librbd 1.17 diffs from unaligned offsets were wrong
	 * (tracker.ceph.com/issues/53784); the object-aligned walk that avoids
	 * it holds only for default striping and images without a parent.
	 */
	if (features & RBD_FEATURE_STRIPINGV2)
		return false;
	if (rbd_get_parent(c->image, &parent, &snap) != -ENOENT) {
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&snap);
		return false;
	}
#endif
	return true;
}

/* Unallocated objects read as zeroes: map and sparse convert skip them. */
static int rbd_conn_status(void *conn, uint64_t off, uint64_t len, uint64_t *pnum,
			   unsigned *flags)
{
	struct rbd_conn *c = conn;
	struct diff_walk w;
	uint64_t head;
	int r;

	*pnum = len;
	*flags = BLOCK_STATUS_DATA;
	if (off >= c->size || !can_diff(c))
		return 0;
	if (len > c->size - off)
		len = c->size - off;
	head = off % c->obj_size;
	w = (struct diff_walk){ .off = off - head };
	r = rbd_diff_iterate2(c->image, NULL, w.off, len + head, true, true, diff_cb, &w);
	if (r < 0 && r != DIFF_STOP)
		return 0;	/* no answer: all data, as QEMU assumes */
	if (!w.exists) {
		if (r == 0)
			w.len = len + head;	/* no callback at all: all unallocated */
		*flags = BLOCK_STATUS_ZERO;
	}
	if (w.len <= head)
		return 0;
	*pnum = w.len - head < len ? w.len - head : len;
	return 0;
}

static int64_t rbd_conn_size(void *conn)
{
	struct rbd_conn *c = conn;
	uint64_t size;
	int r;

	pthread_mutex_lock(&c->lock);
	r = rbd_get_size(c->image, &size);
	if (r == 0)
		__atomic_store_n(&c->size, size, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	return r < 0 ? r : (int64_t)size;
}

static int rbd_conn_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	struct rbd_conn *c = conn;
	int r;

	pthread_mutex_lock(&c->lock);
	r = rbd_resize(c->image, size);
	if (r == 0)
		__atomic_store_n(&c->size, size, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return block_err(err, errlen, "Failed to resize file: %s", strerror(-r));
	return 0;
}

static uint32_t rbd_conn_cluster_size(void *conn)
{
	uint64_t n = ((struct rbd_conn *)conn)->obj_size;

	return n > UINT32_MAX ? 0 : (uint32_t)n;
}

/* QEMU's qemu_rbd_snap_list: id and name are the snapshot's name, its size the VM state's. */
static int rbd_conn_snapshot_list(void *conn, struct block_snapshot **list)
{
	struct rbd_conn *c = conn;
	rbd_snap_info_t *snaps = NULL;
	int max = 16, n, ret;

	*list = NULL;
	do {
		rbd_snap_info_t *p = realloc(snaps, (size_t)max * sizeof(*snaps));
		if (!p) {
			free(snaps);
			return -ENOMEM;
		}
		snaps = p;
		n = rbd_snap_list(c->image, snaps, &max);
	} while (n == -ERANGE);
	if (n <= 0) {
		free(snaps);
		return n;
	}
	ret = n;
	*list = calloc((size_t)n, sizeof(**list));
	if (!*list)
		ret = -ENOMEM;
	for (int i = 0; *list && i < n; i++) {
		snprintf((*list)[i].id, sizeof((*list)[i].id), "%s", snaps[i].name);
		snprintf((*list)[i].name, sizeof((*list)[i].name), "%s", snaps[i].name);
		(*list)[i].vm_state_size = snaps[i].size;
	}
	rbd_snap_list_end(snaps);
	free(snaps);
	return ret;
}

/*
 * QEMU's ImageInfoSpecificRbd: encryption-format only for an image that
 * librbd encrypts, which Kestrel does not open; so no member at all.
 */
static struct jnode *rbd_conn_info_specific(void *conn)
{
	struct jnode *spec = jobj();

	(void)conn;
	jset_str(spec, "type", "rbd");
	jset(spec, "data", jobj());
	return spec;
}

/* QEMU's qemu_rbd_snap_create/rollback/remove: rbd snapshots are named, nothing else. */
static int rbd_conn_snap_create(void *conn, const char *name)
{
	int r = *name ? rbd_snap_create(((struct rbd_conn *)conn)->image, name) : -EINVAL;

	/* QEMU's error_report before qemu-img's own line. */
	if (r < 0)
		fprintf(stderr, "%s: failed to create snap: %s\n", program_invocation_short_name,
			strerror(-r));
	return r;
}

static int rbd_conn_snap_apply(void *conn, const char *name)
{
	return rbd_snap_rollback(((struct rbd_conn *)conn)->image, name);
}

static int rbd_conn_snap_delete(void *conn, const char *name)
{
	return rbd_snap_remove(((struct rbd_conn *)conn)->image, name);
}

static const struct block_proto rbd_proto = {
	.snapshot_create = rbd_conn_snap_create,
	.snapshot_apply = rbd_conn_snap_apply,
	.snapshot_delete = rbd_conn_snap_delete,
	.info_specific = rbd_conn_info_specific,
	.snapshot_list = rbd_conn_snapshot_list,
	.cluster_size = rbd_conn_cluster_size,
	.name = "rbd",
	.label = "RBD",
	.pread = rbd_conn_pread,
	.pwrite = rbd_conn_pwrite,
	.flush = rbd_conn_flush,
	.zero = rbd_conn_zero,
	.status = rbd_conn_status,
	.size = rbd_conn_size,
	.truncate = rbd_conn_truncate,
	.close = rbd_conn_close,
};

static struct rbd_conn *conn_new(void)
{
	struct rbd_conn *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

static int open_image(struct rbd_conn *c, const struct block_rbd_opts *o, unsigned flags,
		      char *err, size_t errlen)
{
	rbd_image_info_t info;
	int r;

	if (rbd_connect(c, o, !(flags & BLOCK_NOCACHE), err, errlen) < 0)
		return -1;
	/* Read-only users take no watch or lock on the header (librbd's read-only open). */
	r = flags & BLOCK_RDONLY ? rbd_open_read_only(c->io, o->image, &c->image, o->snapshot)
				 : rbd_open(c->io, o->image, &c->image, o->snapshot);
	if (r < 0) {
		c->image = NULL;
		return block_err(err, errlen, "error reading header from %s: %s", o->image,
				 strerror(-r));
	}
	r = rbd_stat(c->image, &info, sizeof(info));
	if (r < 0)
		return block_err(err, errlen, "error getting image info from %s: %s", o->image,
				 strerror(-r));
	c->size = info.size;
	c->obj_size = info.obj_size ? info.obj_size : 1;
	/* A snapshot is read-only data: QEMU's bdrv_apply_auto_read_only refusal. */
	if (o->snapshot && !(flags & BLOCK_RDONLY))
		return block_err(err, errlen, "rbd snapshots are read-only");
	return 0;
}

int block_rbd_open(const char *display, const struct block_rbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	struct rbd_conn *c = conn_new();

	*out = NULL;
	if (!c)
		return block_err(err, errlen, "out of memory");
	if (open_image(c, o, flags, err, errlen) < 0) {
		rbd_conn_close(c);
		return -1;
	}
	return block_open_proto(display, &rbd_proto, c, format, flags, parent, out, err, errlen);
}

int block_rbd_create(const struct block_rbd_opts *o, uint64_t size, uint64_t obj_size,
		     char *err, size_t errlen)
{
	struct rbd_conn *c;
	int order = 0, r;

	/* QEMU's qemu_rbd_do_create checks, in its words. */
	if (obj_size && (obj_size & (obj_size - 1)))
		return block_err(err, errlen, "obj size needs to be power of 2");
	if (obj_size && obj_size < 4096)
		return block_err(err, errlen, "obj size too small");
	if (obj_size)
		order = __builtin_ctzll(obj_size);
	c = conn_new();
	if (!c)
		return block_err(err, errlen, "out of memory");
	r = rbd_connect(c, o, false, err, errlen);
	if (r == 0) {
		r = rbd_create(c->io, o->image, size, &order);
		if (r < 0)
			block_err(err, errlen, "error rbd create: %s", strerror(-r));
	}
	rbd_conn_close(c);
	return r < 0 ? -1 : 0;
}

/* The name parsed (as QEMU's create, first), and the file protocol's option refused. */
static int rbd_create_check(const char *name, const struct block_driver *drv,
			    const struct block_create_opts *co, char *err, size_t errlen)
{
	struct block_rbd_opts o;
	int ret = block_rbd_parse_filename(name, &o, err, errlen);

	(void)drv;
	if (ret == 0 && co->data_file)
		ret = block_err(err, errlen, "Option 'data_file' is not supported by Kestrel on "
				"rbd images");
	block_rbd_opts_free(&o);
	return ret;
}

/* raw is the image itself (cluster_size: its object size). */
static int rbd_create_raw(const char *name, const struct block_create_opts *co, char *err,
			  size_t errlen)
{
	struct block_rbd_opts o;
	int ret = block_rbd_parse_filename(name, &o, err, errlen);

	if (ret == 0)
		ret = block_rbd_create(&o, co->size, co->cluster_size, err, errlen);
	block_rbd_opts_free(&o);
	return ret;
}

/*
 * Another format: a new image of the size its bytes take (made by the
 * format's own create, so exactly what it makes anywhere), which they are
 * then written into, as QEMU's formats write their new header through the
 * protocol they created.
 */
static int rbd_create_object(const char *name, uint64_t size, const struct block_proto **proto,
			     void **conn, char *err, size_t errlen)
{
	struct block_rbd_opts o;
	struct rbd_conn *c = NULL;
	int ret = block_rbd_parse_filename(name, &o, err, errlen);

	*proto = &rbd_proto;
	*conn = NULL;
	if (ret == 0 && block_rbd_create(&o, size, 0, err, errlen) == 0) {
		c = conn_new();
		if (!c)
			ret = block_err(err, errlen, "out of memory");
		else
			ret = open_image(c, &o, 0, err, errlen);
		if (ret < 0) {
			if (c)
				rbd_conn_close(c);
			block_rbd_remove(&o, NULL, 0);	/* nothing half-made stays behind */
		}
	} else {
		ret = -1;
	}
	if (ret == 0)
		*conn = c;
	block_rbd_opts_free(&o);
	return ret;
}

static void rbd_create_remove(const char *name)
{
	struct block_rbd_opts o;

	if (block_rbd_parse_filename(name, &o, NULL, 0) == 0)
		block_rbd_remove(&o, NULL, 0);
	block_rbd_opts_free(&o);
}

/* vmdk's split or flat kinds: one rbd image cannot hold them. */
static int rbd_several_files(const char *name, const struct block_driver *drv, char *err,
			     size_t errlen)
{
	(void)name;
	return block_err(err, errlen, "Image format '%s' with more than one file is not "
			 "supported by Kestrel on rbd images", drv->name);
}

const struct block_remote_creator block_rbd_creator = {
	.check = rbd_create_check,
	.create_raw = rbd_create_raw,
	.create = rbd_create_object,
	.remove = rbd_create_remove,
	.several_files = rbd_several_files,
};

int block_rbd_remove(const struct block_rbd_opts *o, char *err, size_t errlen)
{
	struct rbd_conn *c = conn_new();
	int r;

	if (!c)
		return block_err(err, errlen, "out of memory");
	r = rbd_connect(c, o, false, err, errlen);
	if (r == 0 && (r = rbd_remove(c->io, o->image)) < 0)
		block_err(err, errlen, "error removing %s: %s", o->image, strerror(-r));
	rbd_conn_close(c);
	return r < 0 ? -1 : 0;
}

bool block_rbd_available(void)
{
	return true;
}

#else

int block_rbd_open(const char *display, const struct block_rbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'rbd'");
}

int block_rbd_create(const struct block_rbd_opts *o, uint64_t size, uint64_t obj_size,
		     char *err, size_t errlen)
{
	return block_err(err, errlen, "Unknown protocol 'rbd'");
}

int block_rbd_remove(const struct block_rbd_opts *o, char *err, size_t errlen)
{
	return block_err(err, errlen, "Unknown protocol 'rbd'");
}

/* block_remote_creator hands it out only where rbd is built in. */
const struct block_remote_creator block_rbd_creator;

bool block_rbd_available(void)
{
	return false;
}

#endif
