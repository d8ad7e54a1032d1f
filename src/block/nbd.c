/*
 * nbd: a disk on an NBD server (the NBD protocol, doc/proto.md of the NBD
 * project), through libnbd, the client library of nbdkit's authors.  Names
 * are QEMU's: the URIs nbd://host[:port]/export, nbd+unix:///export?socket=
 * PATH (libnbd parses them), and the legacy nbd:HOST:PORT[:exportname=E]
 * and nbd:unix:PATH[:exportname=E].  The export is a protocol node: the
 * format (probed, or -f) reads it through bfile_*.
 */
#include "block/block_int.h"
#include "block/nbd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct nbd_conn {
	struct nbd_handle *h;
	int64_t size;
	uint64_t max_request;
	bool can_zero, can_flush, can_status;
};

static int nbd_errno(void)
{
	int e = nbd_get_errno();

	return e ? -e : -EIO;
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
	while (len) {
		size_t n = len < c->max_request ? len : c->max_request;
		if (nbd_pread(c->h, p, n, off, 0) < 0)
			return nbd_errno();
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int nbd_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct nbd_conn *c = conn;
	const uint8_t *p = buf;

	/* An export has a fixed size: no write may grow it (QEMU: "Cannot grow NBD nodes"). */
	if (off > (uint64_t)c->size || len > (uint64_t)c->size - off)
		return -ENOSPC;
	while (len) {
		size_t n = len < c->max_request ? len : c->max_request;
		if (nbd_pwrite(c->h, p, n, off, 0) < 0)
			return nbd_errno();
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int nbd_conn_flush(void *conn)
{
	struct nbd_conn *c = conn;

	if (!c->can_flush)
		return 0;	/* the server says it has no cache to flush */
	return nbd_flush(c->h, 0) < 0 ? nbd_errno() : 0;
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
		if (nbd_zero(c->h, n, off, may_unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE) < 0)
			return nbd_errno();
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

	*pnum = len;
	*flags = BLOCK_STATUS_DATA;
	if (!c->can_status || off >= (uint64_t)c->size)
		return 0;
	if (n > (uint64_t)c->size - off)
		n = (uint64_t)c->size - off;
	if (nbd_block_status(c->h, n, off,
			     (nbd_extent_callback){ .callback = first_extent, .user_data = &w },
			     LIBNBD_CMD_FLAG_REQ_ONE) < 0)
		return nbd_errno();
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

static void nbd_conn_close(void *conn)
{
	struct nbd_conn *c = conn;

	nbd_shutdown(c->h, 0);
	nbd_close(c->h);
	free(c);
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

/* Connects h to the address; QEMU's message on failure. */
static int connect_addr(struct nbd_handle *h, const struct nbd_addr *a, char *err, size_t errlen)
{
	char where[512];
	int ret;

	if (nbd_set_export_name(h, a->export ? a->export : "") < 0)
		return block_err(err, errlen, "%s", nbd_get_error());
	if (a->socket) {
		snprintf(where, sizeof(where), "%s", a->socket);
		ret = nbd_connect_unix(h, a->socket);
	} else {
		snprintf(where, sizeof(where), "%s:%s", a->host,
			 a->port && *a->port ? a->port : NBD_DEFAULT_PORT);
		ret = nbd_connect_tcp(h, a->host, a->port && *a->port ? a->port : NBD_DEFAULT_PORT);
	}
	if (ret == 0)
		return 0;
	/* libnbd says "handshake: ..." when the server answered but refused the export. */
	if (nbd_get_error() && strstr(nbd_get_error(), "handshake: server has no export"))
		return block_err(err, errlen, "Requested export not available\nserver reported: "
				 "export '%s' not present", a->export ? a->export : "");
	if (nbd_get_error() && strstr(nbd_get_error(), "handshake"))
		return block_err(err, errlen, "Failed to negotiate with '%s': %s", where,
				 nbd_get_error());
	return block_err(err, errlen, "Failed to connect to '%s': %s", where,
			 strerror(nbd_get_errno() ? nbd_get_errno() : EIO));
}

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

static int nbd_conn_open(const char *name, bool read_only, struct nbd_conn **out,
			 char **display, char *err, size_t errlen)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	struct nbd_addr a;
	int64_t max;
	int ret;

	if (!c || !(c->h = nbd_create())) {
		free(c);
		return block_err(err, errlen, "out of memory");
	}
	/* Ask for allocation status (map, sparse convert) where the server has it. */
	if (nbd_add_meta_context(c->h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) {
		block_err(err, errlen, "%s", nbd_get_error());
		goto fail;
	}
	ret = parse_name(name, &a, err, errlen);
	if (ret == 0)
		ret = connect_addr(c->h, &a, err, errlen);
	if (ret == 0 && !(*display = canonical_name(&a)))
		ret = block_err(err, errlen, "out of memory");
	free(a.buf);
	if (ret < 0)
		goto fail;
	c->size = nbd_get_size(c->h);
	if (c->size < 0) {
		block_err(err, errlen, "Could not get the export size: %s", nbd_get_error());
		goto fail;
	}
	if (!read_only && nbd_is_read_only(c->h) == 1) {
		block_err(err, errlen, "The NBD export is read-only: open it read-only (-U/readonly=on)");
		goto fail;
	}
	max = nbd_get_block_size(c->h, LIBNBD_SIZE_MAXIMUM);
	c->max_request = max > 0 && (uint64_t)max < NBD_MAX_REQUEST ? (uint64_t)max : NBD_MAX_REQUEST;
	c->can_zero = nbd_can_zero(c->h) == 1;
	c->can_flush = nbd_can_flush(c->h) == 1;
	c->can_status = nbd_can_meta_context(c->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	*out = c;
	return 0;
fail:
	free(*display);
	*display = NULL;
	nbd_close(c->h);
	free(c);
	return -1;
}

int block_nbd_open(const char *name, const char *format, unsigned flags, struct block_dev *parent,
		   struct block_dev **out, char *err, size_t errlen)
{
	struct nbd_conn *c = NULL;
	char *display = NULL;
	int ret;

	if (nbd_conn_open(name, flags & BLOCK_RDONLY, &c, &display, err, errlen) < 0)
		return -1;
	ret = block_open_proto(display, &nbd_proto, c, format, flags, parent, out, err, errlen);
	free(display);
	return ret;
}

bool block_nbd_available(void)
{
	return true;
}

#else

int block_nbd_open(const char *name, const char *format, unsigned flags, struct block_dev *parent,
		   struct block_dev **out, char *err, size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'nbd'");
}

bool block_nbd_available(void)
{
	return false;
}

#endif
