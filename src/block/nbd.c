/*
 * nbd: a disk on an NBD server (the NBD protocol, doc/proto.md of the NBD
 * project), through libnbd, the client library of nbdkit's authors.  Names
 * are QEMU's: the URIs nbd://host[:port]/export, nbd+unix:///export?socket=
 * PATH (libnbd parses them), and the legacy nbd:HOST:PORT[:exportname=E]
 * and nbd:unix:PATH[:exportname=E].  The export is a protocol node: the
 * format (probed, or -f) reads it through bfile_*.
 *
 * TLS (tls-creds=, QEMU's tls-creds-x509/psk objects) is libnbd's; the
 * reconnection after a lost server (reconnect-delay=, open-timeout=) is
 * Kestrel's: libnbd handles are one connection each, so a dead one is
 * replaced by a new one while requests wait (QEMU's block/nbd.c does the
 * same with its own client).
 */
#include "block/block_int.h"
#include "block/nbd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool block_nbd_protocol(const char *proto)
{
	return !strcmp(proto, "nbd") || !strcmp(proto, "nbd+tcp") || !strcmp(proto, "nbd+unix");
}

#ifdef KESTREL_NBD
#include <libnbd.h>

/* NBD's default port (doc/proto.md "Connection"), QEMU's too. */
#define NBD_DEFAULT_PORT	"10809"
/* The largest request sent: servers must take 32 MiB (proto.md "Block size constraints"). */
#define NBD_MAX_REQUEST		(32u << 20)

/* Where an export is: a TCP server or a Unix socket, and the export's name. */
struct nbd_addr {
	char *buf;		/* the copy the pointers below point into */
	const char *host, *port, *socket, *export;
};

/* %XX escapes of a URI component, decoded in place (RFC 3986 §2.1). */
static void uri_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1 && s[1] && s[2]) {
			*out++ = (char)v;
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* nbd[+tcp|+unix]://[host[:port]]/[export][?socket=path], as QEMU's nbd_parse_uri. */
static int parse_uri(struct nbd_addr *a, char *err, size_t errlen)
{
	char *p = a->buf, *auth, *path, *query;
	bool is_unix = !strncmp(p, "nbd+unix://", 11);

	p = strstr(p, "://") + 3;
	auth = p;
	path = strchr(p, '/');
	query = strchr(p, '?');
	if (query)
		*query++ = '\0';
	if (path) {
		*path++ = '\0';
		uri_decode(path);
		a->export = path;
	}
	if (is_unix) {
		if (*auth || !query || strncmp(query, "socket=", 7) || strchr(query, '&'))
			return block_err(err, errlen, "Invalid URI: nbd+unix needs no host and "
					 "exactly one query parameter, socket=PATH");
		uri_decode(query + 7);
		a->socket = query + 7;
		return 0;
	}
	if (query)
		return block_err(err, errlen, "Invalid URI: nbd over TCP takes no query parameters");
	if (*auth == '[') {
		char *end = strchr(auth, ']');
		if (!end)
			return block_err(err, errlen, "Invalid URI: unterminated IPv6 address");
		*end = '\0';
		a->host = auth + 1;
		if (end[1] == ':')
			a->port = end + 2;
	} else {
		char *colon = strchr(auth, ':');
		if (colon) {
			*colon = '\0';
			a->port = colon + 1;
		}
		a->host = *auth ? auth : "localhost";
	}
	return 0;
}

/* nbd:unix:PATH[:exportname=E] or nbd:HOST:PORT[:exportname=E] (QEMU's nbd_parse_filename). */
static int parse_legacy(struct nbd_addr *a, char *err, size_t errlen)
{
	char *p = a->buf + 4, *export = strstr(p, ":exportname="), *colon;

	if (export) {
		*export = '\0';
		a->export = export + strlen(":exportname=");
	}
	if (!strncmp(p, "unix:", 5)) {
		a->socket = p + 5;
		return 0;
	}
	colon = strrchr(p, ':');
	if (!colon || !colon[1])
		return block_err(err, errlen, "Invalid NBD address '%s': HOST:PORT or unix:PATH", p);
	*colon = '\0';
	a->host = p;
	a->port = colon + 1;
	return 0;
}

static int parse_name(const char *name, struct nbd_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->buf = strdup(name);
	if (!a->buf)
		return block_err(err, errlen, "out of memory");
	if (strstr(a->buf, "://") && strchr(a->buf, ':') == strstr(a->buf, "://"))
		return parse_uri(a, err, errlen);
	return parse_legacy(a, err, errlen);
}


/* Everything a (re)connection needs: the address, TLS, the export's first size. */
struct nbd_conn {
	pthread_rwlock_t lock;		/* readers: requests on h; writer: reconnection */
	struct nbd_handle *h;		/* NULL while the server is gone */
	uint64_t gen;			/* bumped by each reconnection */
	struct nbd_addr addr;
	struct block_nbd_opts opts;
	char *tls_creds, *tls_hostname;
	bool read_only;
	int64_t size;
	uint64_t max_request;
	bool can_zero, can_flush, can_status;
	double lost_at;			/* when h died (monotonic seconds), 0: alive */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* tls-creds=: the client side of QEMU's nbd_get_tls_creds, then libnbd's settings. */
static int setup_tls(struct nbd_handle *h, const struct nbd_conn *c, char *err, size_t errlen)
{
	const struct block_tls_creds *t;
	char path[4096];

	if (!c->tls_creds)
		return 0;
	t = block_tls_creds_lookup(c->tls_creds);
	if (!t)
		return block_err(err, errlen, "No TLS credentials with id '%s'", c->tls_creds);
	if (t->server)
		return block_err(err, errlen, "Expected TLS credentials for a client endpoint");
	if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) < 0)
		return block_err(err, errlen, "%s", nbd_get_error());
	if (t->type == BLOCK_TLS_PSK) {
		snprintf(path, sizeof(path), "%s/keys.psk", t->dir);
		if (nbd_set_tls_psk_file(h, path) < 0 ||
		    nbd_set_tls_username(h, t->username ? t->username : "qemu") < 0)
			return block_err(err, errlen, "%s", nbd_get_error());
		return 0;
	}
	if (nbd_set_tls_certificates(h, t->dir) < 0 ||
	    nbd_set_tls_verify_peer(h, t->verify_peer) < 0)
		return block_err(err, errlen, "%s", nbd_get_error());
#ifdef KESTREL_NBD_TLS_HOSTNAME
	if (c->tls_hostname && nbd_set_tls_hostname(h, c->tls_hostname) < 0)
		return block_err(err, errlen, "%s", nbd_get_error());
#endif
	/*
	 * Over a Unix socket there is no host name to check the certificate
	 * against, and libnbd then checks nothing at all: refused as QEMU
	 * refuses it (it wants tls-hostname=) rather than trusting any server.
	 */
	if (c->addr.socket && t->verify_peer && !c->tls_hostname)
		return block_err(err, errlen, "No hostname for certificate validation");
	return 0;
}

/*
 * The connection and handshake libnbd started, waited for until deadline
 * (0: as long as they take).  A link that drops packets keeps connect()
 * waiting for the kernel's SYN retries (about two minutes): QEMU cancels the
 * attempt when open-timeout or reconnect-delay runs out, and so does this.
 * 0, -1 (libnbd's error), or -ETIMEDOUT.
 */
static int wait_connected(struct nbd_handle *h, double deadline)
{
	while (nbd_aio_is_connecting(h)) {
		double left = deadline - now_s();
		int ret;
		if (deadline && left <= 0)
			return -ETIMEDOUT;
		ret = nbd_poll(h, deadline ? (int)(left * 1000) + 1 : -1);
		if (ret < 0)
			return -1;
	}
	if (nbd_aio_is_ready(h))
		return 0;
	if (!nbd_get_error())
		return -ETIMEDOUT;	/* cannot happen: libnbd explains a dead handle */
	return -1;
}

/* Connects h to the address by deadline (0: none); QEMU's message on failure. */
static int connect_addr(struct nbd_handle *h, const struct nbd_addr *a, double deadline,
			char *err, size_t errlen)
{
	char where[512];
	const char *msg;
	int ret;

	if (nbd_set_export_name(h, a->export ? a->export : "") < 0)
		return block_err(err, errlen, "%s", nbd_get_error());
	if (a->socket) {
		snprintf(where, sizeof(where), "%s", a->socket);
		ret = nbd_aio_connect_unix(h, a->socket);
	} else {
		snprintf(where, sizeof(where), "%s:%s", a->host,
			 a->port && *a->port ? a->port : NBD_DEFAULT_PORT);
		ret = nbd_aio_connect_tcp(h, a->host,
					  a->port && *a->port ? a->port : NBD_DEFAULT_PORT);
	}
	if (ret == 0)
		ret = wait_connected(h, deadline);
	if (ret == 0)
		return 0;
	if (ret == -ETIMEDOUT)
		return block_err(err, errlen, "Connection attempt cancelled by timeout");
	msg = nbd_get_error() ? nbd_get_error() : "";
	/* libnbd says "handshake: ..." when the server answered but refused the export. */
	if (strstr(msg, "handshake: server has no export"))
		return block_err(err, errlen, "Requested export not available\nserver reported: "
				 "export '%s' not present", a->export ? a->export : "");
	/* A server that wants TLS, or TLS that failed (gnutls' words): libnbd's reason. */
	if (strstr(msg, "requires TLS"))
		return block_err(err, errlen, "Failed to negotiate with '%s': %s\nDid you forget a "
				 "valid tls-creds?", where, msg);
	if (strstr(msg, "certificate verification"))
		return block_err(err, errlen, "Failed to negotiate with '%s': %s\nThe server's "
				 "certificate is not signed by the CA of tls-creds, or does not name "
				 "the server", where, msg);
	if (strstr(msg, "handshake") || strstr(msg, "TLS") || strstr(msg, "gnutls") ||
	    strstr(msg, "tls"))
		return block_err(err, errlen, "Failed to negotiate with '%s': %s", where, msg);
	return block_err(err, errlen, "Failed to connect to '%s': %s", where,
			 strerror(nbd_get_errno() ? nbd_get_errno() : EIO));
}

/* A new connected handle by deadline (0: none): metadata context, TLS, then the handshake. */
static struct nbd_handle *new_handle(const struct nbd_conn *c, double deadline, char *err,
				     size_t errlen)
{
	struct nbd_handle *h = nbd_create();

	if (!h) {
		block_err(err, errlen, "out of memory");
		return NULL;
	}
	/* Ask for allocation status (map, sparse convert) where the server has it. */
	if (nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) {
		block_err(err, errlen, "%s", nbd_get_error());
		goto fail;
	}
	if (setup_tls(h, c, err, errlen) < 0 ||
	    connect_addr(h, &c->addr, deadline, err, errlen) < 0)
		goto fail;
	return h;
fail:
	nbd_close(h);
	return NULL;
}

/*
 * A handle that answers, retried until deadline (open-timeout,
 * reconnect-delay); no attempt outlasts it.  A deadline already past (no
 * open-timeout) makes one attempt, as long as it takes, as QEMU's.
 */
static struct nbd_handle *connect_retry(const struct nbd_conn *c, double deadline, char *err,
					size_t errlen)
{
	double wait = 0.1;
	bool bounded = deadline > now_s();

	for (;;) {
		struct nbd_handle *h = new_handle(c, bounded ? deadline : 0, err, errlen);
		double left = deadline - now_s();
		if (h || left <= 0)
			return h;
		/* QEMU backs off to 16 s; Kestrel to 1 s, so a return is seen soon. */
		sleep_s(wait < left ? wait : left);
		wait = wait * 2 < 1 ? wait * 2 : 1;
	}
}

/* One request, on whatever handle is current. */
enum req_type { REQ_READ, REQ_WRITE, REQ_FLUSH, REQ_ZERO, REQ_STATUS };
struct req {
	enum req_type type;
	void *buf;
	uint64_t off, len;
	uint32_t flags;
	nbd_extent_callback cb;
};

static int issue(struct nbd_handle *h, const struct req *r)
{
	switch (r->type) {
	case REQ_READ: return nbd_pread(h, r->buf, r->len, r->off, 0);
	case REQ_WRITE: return nbd_pwrite(h, r->buf, r->len, r->off, 0);
	case REQ_FLUSH: return nbd_flush(h, 0);
	case REQ_ZERO: return nbd_zero(h, r->len, r->off, r->flags);
	case REQ_STATUS: return nbd_block_status(h, r->len, r->off, r->cb, r->flags);
	}
	return -1;
}

/*
 * After the connection of generation gen died: a new one, if the server
 * comes back within reconnect-delay of the loss (QEMU's
 * nbd_reconnect_attempt).  0 when requests may be retried.
 */
static int reconnect(struct nbd_conn *c, uint64_t gen)
{
	char err[512];
	struct nbd_handle *h;
	int ret = 0;

	pthread_rwlock_wrlock(&c->lock);
	if (c->gen != gen)
		goto out;		/* another request reconnected meanwhile */
	if (c->h) {
		nbd_close(c->h);
		c->h = NULL;
		c->lost_at = now_s();
	}
	h = connect_retry(c, c->lost_at + c->opts.reconnect_delay, err, sizeof(err));
	if (h && nbd_get_size(h) != c->size) {
		nbd_close(h);
		h = NULL;
	}
	if (!h) {
		ret = -ENOTCONN;
		goto out;
	}
	c->h = h;
	c->gen++;
	c->lost_at = 0;
out:
	pthread_rwlock_unlock(&c->lock);
	return ret;
}

/* A request, sent again on a new connection when the server went away. */
static int run_req(struct nbd_conn *c, const struct req *r)
{
	for (;;) {
		uint64_t gen;
		bool dead;
		int ret, e;

		pthread_rwlock_rdlock(&c->lock);
		gen = c->gen;
		ret = c->h ? issue(c->h, r) : -1;
		e = c->h ? nbd_get_errno() : ENOTCONN;
		dead = ret < 0 && (!c->h || nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h));
		pthread_rwlock_unlock(&c->lock);
		if (ret >= 0)
			return 0;
		if (!dead || !c->opts.reconnect_delay)
			return e ? -e : -EIO;
		if (reconnect(c, gen) < 0)
			return -ENOTCONN;
	}
}

/* A read or write as requests of at most the server's max_request bytes each. */
static int run_chunks(struct nbd_conn *c, enum req_type type, uint8_t *p, uint64_t off, size_t len)
{
	while (len) {
		size_t n = len < c->max_request ? len : c->max_request;
		struct req r = { .type = type, .buf = p, .off = off, .len = n };
		int ret = run_req(c, &r);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int nbd_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct nbd_conn *c = conn;
	uint8_t *p = buf;

	/* As a file: what lies past the end reads as zeroes. */
	if (off >= (uint64_t)c->size) {
		memset(buf, 0, len);
		return 0;
	}
	if (len > (uint64_t)c->size - off) {
		memset(p + ((uint64_t)c->size - off), 0, len - ((uint64_t)c->size - off));
		len = (size_t)((uint64_t)c->size - off);
	}
	return run_chunks(c, REQ_READ, p, off, len);
}

static int nbd_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct nbd_conn *c = conn;
	const uint8_t *p = buf;

	/* An export has a fixed size: no write may grow it (QEMU: "Cannot grow NBD nodes"). */
	if (off > (uint64_t)c->size || len > (uint64_t)c->size - off)
		return -ENOSPC;
	return run_chunks(c, REQ_WRITE, (uint8_t *)p, off, len);
}

static int nbd_conn_flush(void *conn)
{
	struct nbd_conn *c = conn;
	struct req r = { .type = REQ_FLUSH };

	if (!c->can_flush)
		return 0;	/* the server says it has no cache to flush */
	return run_req(c, &r);
}

static int nbd_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct nbd_conn *c = conn;
	uint8_t *zero;
	int ret = 0;

	if (off > (uint64_t)c->size || len > (uint64_t)c->size - off)
		return -ENOSPC;
	while (c->can_zero && len) {
		uint64_t n = len < c->max_request ? len : c->max_request;
		struct req r = { .type = REQ_ZERO, .off = off, .len = n,
				 .flags = may_unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE };
		ret = run_req(c, &r);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	if (!len)
		return 0;
	/* NBD_CMD_WRITE_ZEROES is optional: send the zeroes. */
	zero = calloc(1, c->max_request);
	if (!zero)
		return -ENOMEM;
	while (len && ret == 0) {
		size_t n = len < c->max_request ? (size_t)len : c->max_request;
		ret = nbd_conn_pwrite(conn, off, zero, n);
		off += n;
		len -= n;
	}
	free(zero);
	return ret;
}

struct extent_walk {
	uint64_t len;
	unsigned flags;
	bool done;
};

/* The first extent of base:allocation (proto.md "base:allocation metadata context"). */
static int first_extent(void *opaque, const char *context, uint64_t offset, uint32_t *entries,
			size_t nr, int *error)
{
	struct extent_walk *w = opaque;

	if (w->done || strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) || nr < 2)
		return 0;
	w->done = true;
	w->len = entries[0];
	w->flags = (entries[1] & LIBNBD_STATE_HOLE ? 0 : BLOCK_STATUS_DATA) |
		   (entries[1] & LIBNBD_STATE_ZERO ? BLOCK_STATUS_ZERO : 0);
	return 0;
}

static int nbd_conn_status(void *conn, uint64_t off, uint64_t len, uint64_t *pnum,
			   unsigned *flags)
{
	struct nbd_conn *c = conn;
	struct extent_walk w = { 0 };
	uint64_t n = len < c->max_request ? len : c->max_request;
	struct req r = { .type = REQ_STATUS, .off = off, .flags = LIBNBD_CMD_FLAG_REQ_ONE,
			 .cb = { .callback = first_extent, .user_data = &w } };
	int ret;

	*pnum = len;
	*flags = BLOCK_STATUS_DATA;
	if (!c->can_status || off >= (uint64_t)c->size)
		return 0;
	if (n > (uint64_t)c->size - off)
		n = (uint64_t)c->size - off;
	r.len = n;
	ret = run_req(c, &r);
	if (ret < 0)
		return ret;
	/* A server may answer with nothing useful: then all is data, as QEMU assumes. */
	if (w.done && w.len) {
		*pnum = w.len < len ? w.len : len;
		*flags = w.flags;
	}
	return 0;
}

static int64_t nbd_conn_size(void *conn)
{
	return ((struct nbd_conn *)conn)->size;
}

static void conn_free(struct nbd_conn *c)
{
	if (c->h) {
		nbd_shutdown(c->h, 0);
		nbd_close(c->h);
	}
	pthread_rwlock_destroy(&c->lock);
	free(c->addr.buf);
	free(c->tls_creds);
	free(c->tls_hostname);
	free(c);
}

static void nbd_conn_close(void *conn)
{
	conn_free(conn);
}

static const struct block_proto nbd_proto = {
	.name = "nbd",
	.label = "NBD",
	.pread = nbd_conn_pread,
	.pwrite = nbd_conn_pwrite,
	.flush = nbd_conn_flush,
	.zero = nbd_conn_zero,
	.status = nbd_conn_status,
	.size = nbd_conn_size,
	.close = nbd_conn_close,
};

/* QEMU's nbd_refresh_filename: the name info and map print, whatever the user wrote. */
static char *canonical_name(const struct nbd_addr *a)
{
	const char *export = a->export ? a->export : "";
	char *name = NULL;
	int n;

	if (a->socket)
		n = asprintf(&name, "nbd+unix://%s%s?socket=%s", *export ? "/" : "", export,
			     a->socket);
	else
		n = asprintf(&name, "nbd://%s:%s%s%s", a->host,
			     a->port && *a->port ? a->port : NBD_DEFAULT_PORT, *export ? "/" : "",
			     export);
	return n < 0 ? NULL : name;
}

static char *dup_or_null(const char *s, bool *fail)
{
	char *d = s ? strdup(s) : NULL;

	*fail |= s && !d;
	return d;
}

/* What the handle learnt in the handshake, checked against what the open wants. */
static int read_export(struct nbd_conn *c, char *err, size_t errlen)
{
	int64_t max;

	c->size = nbd_get_size(c->h);
	/* libnbd hands a size past INT64_MAX back as a negative number, without an error. */
	if (c->size < 0)
		return block_err(err, errlen, "Could not get the export size: %s",
				 nbd_get_error() ? nbd_get_error()
						 : "the server announced more than 2^63 - 1 bytes");
	if (!c->read_only && nbd_is_read_only(c->h) == 1)
		return block_err(err, errlen,
				 "The NBD export is read-only: open it read-only (-U/readonly=on)");
	max = nbd_get_block_size(c->h, LIBNBD_SIZE_MAXIMUM);
	c->max_request = max > 0 && (uint64_t)max < NBD_MAX_REQUEST ? (uint64_t)max : NBD_MAX_REQUEST;
	c->can_zero = nbd_can_zero(c->h) == 1;
	c->can_flush = nbd_can_flush(c->h) == 1;
	c->can_status = nbd_can_meta_context(c->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	return 0;
}

static int nbd_conn_open(const char *name, const struct block_nbd_opts *o, bool read_only,
			 struct nbd_conn **out, char **display, char *err, size_t errlen)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	bool fail = false;

	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_rwlock_init(&c->lock, NULL);
	if (o)
		c->opts = *o;
	c->tls_creds = dup_or_null(c->opts.tls_creds, &fail);
	c->tls_hostname = dup_or_null(c->opts.tls_hostname, &fail);
	c->read_only = read_only;
	if (fail) {
		block_err(err, errlen, "out of memory");
		goto fail;
	}
	if (parse_name(name, &c->addr, err, errlen) < 0)
		goto fail;
	c->h = connect_retry(c, now_s() + c->opts.open_timeout, err, errlen);
	if (!c->h)
		goto fail;
	if (!(*display = canonical_name(&c->addr))) {
		block_err(err, errlen, "out of memory");
		goto fail;
	}
	if (read_export(c, err, errlen) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	free(*display);
	*display = NULL;
	conn_free(c);
	return -1;
}

int block_nbd_open(const char *name, const struct block_nbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	struct nbd_conn *c = NULL;
	char *display = NULL;
	int ret;

	if (nbd_conn_open(name, o, flags & BLOCK_RDONLY, &c, &display, err, errlen) < 0)
		return -1;
	ret = block_open_proto(display, &nbd_proto, c, format, flags, parent, out, err, errlen);
	free(display);
	return ret;
}

bool block_nbd_available(void)
{
	return true;
}

bool block_nbd_has_tls_hostname(void)
{
#ifdef KESTREL_NBD_TLS_HOSTNAME
	return true;
#else
	return false;
#endif
}

#else

int block_nbd_open(const char *name, const struct block_nbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'nbd'");
}

bool block_nbd_available(void)
{
	return false;
}

bool block_nbd_has_tls_hostname(void)
{
	return false;
}

#endif
