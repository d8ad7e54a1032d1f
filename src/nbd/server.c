/*
 * NBD server: the fixed newstyle handshake and option haggling (NBD
 * protocol, doc/proto.md "Handshake phase").  Every length the client sends
 * is checked before it is used: option data is read into a bounded buffer
 * (NBD_MAX_OPTION), strings inside it are bounded by the option's own
 * length and NBD_MAX_STRING.  What cannot be answered in protocol ends the
 * connection with the reason, never the process.
 */
#include "nbd/nbd_int.h"
#include "nbd/proto.h"
#include "nbd/tls.h"
#include "block/block.h"
#include "util/bytes.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t fd_read(void *opaque, void *buf, size_t len)
{
	return read(*(int *)opaque, buf, len);
}

static ssize_t fd_write(void *opaque, const void *buf, size_t len)
{
	return write(*(int *)opaque, buf, len);
}

void nbd_io_fd(struct nbd_io *io, int *fd)
{
	io->read = fd_read;
	io->write = fd_write;
	io->opaque = fd;
}

int nbd_fail(struct nbd_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int nbd_recv(struct nbd_conn *c, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = c->io->read(c->io->opaque, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return nbd_fail(c, "read from client: %s", strerror(errno));
		if (n == 0)
			return nbd_fail(c, "client closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_send(struct nbd_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = c->io->write(c->io->opaque, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return nbd_fail(c, "write to client: %s", n < 0 ? strerror(errno) : "closed");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static uint16_t export_flags(const struct nbd_conn *c, const struct nbd_export *exp)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_CACHE;

	/* As qemu-nbd 7.2: a read-only export offers no trim or zeroing. */
	if (exp->readonly)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	if (exp->multi_conn)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	return f;
}

uint16_t nbd_transmission_flags(const struct nbd_conn *c)
{
	return export_flags(c, c->exp);
}

/* One option reply header and its data (proto.md, "Option reply"). */
static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
		     uint32_t len)
{
	uint8_t h[20];

	st_be64(h, NBD_REP_MAGIC);
	st_be32(h + 8, opt);
	st_be32(h + 12, type);
	st_be32(h + 16, len);
	if (nbd_send(c, h, sizeof(h)) < 0)
		return -1;
	return len ? nbd_send(c, data, len) : 0;
}

/* An error reply with a message for the client's log, as qemu-nbd sends. */
static int opt_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

/* Option data being parsed: a cursor bounded by the option's length. */
struct optbuf {
	const uint8_t *p;
	uint32_t left;
};

static bool take(struct optbuf *b, void *out, uint32_t n)
{
	if (b->left < n)
		return false;
	memcpy(out, b->p, n);
	b->p += n;
	b->left -= n;
	return true;
}

/* A length-prefixed string (32-bit length): NUL-terminated into out[NBD_MAX_STRING + 1]. */
static bool take_string(struct optbuf *b, char *out)
{
	uint8_t l[4];
	uint32_t n;

	if (!take(b, l, 4))
		return false;
	n = ld_be32(l);
	if (n > NBD_MAX_STRING || !take(b, out, n))
		return false;
	out[n] = 0;
	return memchr(out, 0, n) == NULL;
}

static const struct nbd_export *get_export(struct nbd_conn *c, const char *name)
{
	return c->srv->get(c->srv->opaque, name);
}

static void put_export(struct nbd_conn *c, const struct nbd_export *exp)
{
	if (exp)
		c->srv->put(c->srv->opaque, exp);
}

static bool export_exists(struct nbd_conn *c, const char *name)
{
	const struct nbd_export *exp = get_export(c, name);

	put_export(c, exp);
	return exp != NULL;
}

static int send_info(struct nbd_conn *c, uint32_t opt, uint16_t type, const void *data,
		     uint32_t len)
{
	uint8_t buf[2 + NBD_MAX_STRING];

	/* Names come bounded from the client, descriptions from the command line. */
	if (len > NBD_MAX_STRING)
		len = NBD_MAX_STRING;
	st_be16(buf, type);
	memcpy(buf + 2, data, len);
	return opt_reply(c, opt, NBD_REP_INFO, buf, 2 + len);
}

static int send_info_export(struct nbd_conn *c, uint32_t opt, const struct nbd_export *exp)
{
	uint8_t d[10];

	st_be64(d, exp->size);
	st_be16(d + 8, export_flags(c, exp));
	return send_info(c, opt, NBD_INFO_EXPORT, d, sizeof(d));
}

/* Block sizes as qemu-nbd on a file: any alignment, 4 KiB preferred, 32 MiB at most. */
static int send_info_block_size(struct nbd_conn *c, uint32_t opt)
{
	uint8_t d[12];

	st_be32(d, 1);
	st_be32(d + 4, 4096);
	st_be32(d + 8, NBD_MAX_REQUEST);
	return send_info(c, opt, NBD_INFO_BLOCK_SIZE, d, sizeof(d));
}

/*
 * NBD_OPT_INFO and NBD_OPT_GO: name, then a list of information requests.
 * Returns 1 when GO succeeded (transmission starts), 0 to go on haggling.
 */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, struct optbuf *b)
{
	char name[NBD_MAX_STRING + 1];
	bool want_name = false, want_desc = false, want_bs = false;
	uint8_t n2[2];
	uint16_t nreq;
	const struct nbd_export *exp;
	const char *desc;
	int ret = -1;

	if (!take_string(b, name) || !take(b, n2, 2))
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed option data");
	nreq = ld_be16(n2);
	if (b->left != 2u * nreq)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "request list length mismatch");
	for (uint16_t i = 0; i < nreq; i++) {
		take(b, n2, 2);
		want_name |= ld_be16(n2) == NBD_INFO_NAME;
		want_desc |= ld_be16(n2) == NBD_INFO_DESCRIPTION;
		want_bs |= ld_be16(n2) == NBD_INFO_BLOCK_SIZE;
	}
	exp = get_export(c, name);
	if (!exp)
		return opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "export not found");
	desc = exp->description;
	if (want_name && send_info(c, opt, NBD_INFO_NAME, name, (uint32_t)strlen(name)) < 0)
		goto out;
	if (want_desc && desc &&
	    send_info(c, opt, NBD_INFO_DESCRIPTION, desc, (uint32_t)strlen(desc)) < 0)
		goto out;
	/* As qemu: always for INFO, for GO only when the client can honour it. */
	if ((opt == NBD_OPT_INFO || want_bs) && send_info_block_size(c, opt) < 0)
		goto out;
	if (send_info_export(c, opt, exp) < 0 || opt_reply(c, opt, NBD_REP_ACK, NULL, 0) < 0)
		goto out;
	if (opt == NBD_OPT_GO) {
		c->exp = exp;		/* held until the session ends */
		return 1;
	}
	ret = 0;
out:
	put_export(c, exp);
	return ret;
}

struct list_ctx {
	struct nbd_conn *c;
	uint32_t opt;
};

static int list_one(void *arg, const struct nbd_export *exp)
{
	struct list_ctx *l = arg;
	uint8_t buf[4 + 2 * NBD_MAX_STRING];
	uint32_t nl = (uint32_t)strlen(exp->name);
	uint32_t dl = exp->description ? (uint32_t)strlen(exp->description) : 0;

	if (nl > NBD_MAX_STRING)
		nl = NBD_MAX_STRING;
	if (dl > NBD_MAX_STRING)
		dl = NBD_MAX_STRING;
	st_be32(buf, nl);
	memcpy(buf + 4, exp->name, nl);
	if (dl)
		memcpy(buf + 4 + nl, exp->description, dl);
	return opt_reply(l->c, l->opt, NBD_REP_SERVER, buf, 4 + nl + dl);
}

static int opt_list(struct nbd_conn *c, uint32_t opt, struct optbuf *b)
{
	struct list_ctx l = { c, opt };

	if (b->left)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
	if (c->srv->list(c->srv->opaque, list_one, &l) < 0)
		return -1;
	return opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static int send_meta_alloc(struct nbd_conn *c, uint32_t opt)
{
	static const char name[] = "base:allocation";
	uint8_t buf[4 + sizeof(name)];

	st_be32(buf, NBD_META_ALLOC_ID);
	memcpy(buf + 4, name, sizeof(name) - 1);
	return opt_reply(c, opt, NBD_REP_META_CONTEXT, buf, 4 + sizeof(name) - 1);
}

/*
 * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: export name, then
 * queries.  Only "base:allocation" exists; LIST answers it for no query or
 * the "base:" namespace, unknown namespaces are ignored (proto.md).
 */
static int opt_meta(struct nbd_conn *c, uint32_t opt, struct optbuf *b)
{
	char name[NBD_MAX_STRING + 1], q[NBD_MAX_STRING + 1];
	uint8_t n4[4];
	uint32_t nq;
	bool found = false;

	if (opt == NBD_OPT_SET_META_CONTEXT && !c->structured)
		return opt_error(c, opt, NBD_REP_ERR_INVALID,
				 "structured replies must be negotiated first");
	if (!take_string(b, name) || !take(b, n4, 4))
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed option data");
	nq = ld_be32(n4);
	for (uint32_t i = 0; i < nq; i++) {
		if (!take_string(b, q))
			return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed query");
		if (!strcmp(q, "base:allocation") || (opt == NBD_OPT_LIST_META_CONTEXT &&
						      !strcmp(q, "base:")))
			found = true;
	}
	if (b->left)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "trailing option data");
	if (!export_exists(c, name))
		return opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "export not found");
	if (opt == NBD_OPT_LIST_META_CONTEXT && nq == 0)
		found = true;
	if (opt == NBD_OPT_SET_META_CONTEXT)
		c->meta_alloc = found;
	if (found && send_meta_alloc(c, opt) < 0)
		return -1;
	return opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME: no reply on a wrong name, only the end of the connection. */
static int opt_export_name(struct nbd_conn *c, struct optbuf *b)
{
	uint8_t reply[10 + 124] = { 0 };
	char name[NBD_MAX_STRING + 1];

	if (b->left > NBD_MAX_STRING)
		return nbd_fail(c, "export name too long");
	memcpy(name, b->p, b->left);
	name[b->left] = 0;
	if (strlen(name) != b->left || !(c->exp = get_export(c, name)))
		return nbd_fail(c, "client asked for unknown export '%s'", name);
	st_be64(reply, c->exp->size);
	st_be16(reply + 8, nbd_transmission_flags(c));
	if (nbd_send(c, reply, c->no_zeroes ? 10 : sizeof(reply)) < 0)
		return -1;
	return 1;
}

/*
 * NBD_OPT_STARTTLS (proto.md "TLS support"): acknowledged in clear, then
 * the TLS handshake; everything after it goes through the session.
 */
static int opt_starttls(struct nbd_conn *c, uint32_t opt, struct optbuf *b)
{
	if (!c->srv->tls)
		return opt_error(c, opt, NBD_REP_ERR_POLICY, "TLS not configured");
	if (c->tls_on)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "TLS already enabled");
	if (b->left)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "option takes no data");
	if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0) < 0)
		return -1;
	if (nbd_tls_start(c->srv->tls, c->io, &c->tls_io, c->err, c->errlen) < 0)
		return -1;
	c->tls_on = true;
	c->io = &c->tls_io;
	return 0;
}

/* One option: 1 when transmission starts, 0 to go on, -1 to end. */
static int handle_option(struct nbd_conn *c, uint32_t opt, struct optbuf *b)
{
	/* With TLS configured, only STARTTLS and ABORT come before it (as qemu-nbd). */
	if (c->srv->tls && !c->tls_on && opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
		char msg[64];
		if (opt == NBD_OPT_EXPORT_NAME)
			return nbd_fail(c, "client asked for an export before TLS");
		snprintf(msg, sizeof(msg), "Option 0x%x not permitted before TLS", opt);
		return opt_error(c, opt, NBD_REP_ERR_TLS_REQD, msg);
	}
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(c, b);
	case NBD_OPT_ABORT:
		/* proto.md: the server SHOULD acknowledge, then close. */
		opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
		return 2;
	case NBD_OPT_LIST:
		return opt_list(c, opt, b);
	case NBD_OPT_STARTTLS:
		return opt_starttls(c, opt, b);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(c, opt, b);
	case NBD_OPT_STRUCTURED_REPLY:
		if (b->left)
			return opt_error(c, opt, NBD_REP_ERR_INVALID, "option takes no data");
		if (c->structured)
			return opt_error(c, opt, NBD_REP_ERR_INVALID,
					 "structured reply already negotiated");
		c->structured = true;
		return opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return opt_meta(c, opt, b);
	default:
		return opt_error(c, opt, NBD_REP_ERR_UNSUP, "unsupported option");
	}
}

/* Option haggling until GO/EXPORT_NAME (1), ABORT (2) or an error (-1). */
static int haggle(struct nbd_conn *c)
{
	uint8_t h[16];
	uint8_t *data = malloc(NBD_MAX_OPTION);
	int ret;

	if (!data)
		return nbd_fail(c, "out of memory");
	for (;;) {
		uint32_t opt, len;
		struct optbuf b;

		ret = nbd_recv(c, h, sizeof(h));
		if (ret < 0)
			break;
		if (ld_be64(h) != NBD_OPTS_MAGIC) {
			ret = nbd_fail(c, "bad option magic");
			break;
		}
		opt = ld_be32(h + 8);
		len = ld_be32(h + 12);
		if (len > NBD_MAX_OPTION) {
			opt_error(c, opt, NBD_REP_ERR_TOO_BIG, "option data too long");
			ret = nbd_fail(c, "option %u with %u bytes of data: too long", opt, len);
			break;
		}
		ret = nbd_recv(c, data, len);
		if (ret < 0)
			break;
		b.p = data;
		b.left = len;
		ret = handle_option(c, opt, &b);
		if (ret != 0)
			break;
	}
	free(data);
	return ret;
}

/* nbd_serve's server: the one export, by its name. */
static const struct nbd_export *one_get(void *opaque, const char *name)
{
	const struct nbd_export *exp = opaque;

	return strcmp(name, exp->name) ? NULL : exp;
}

static void one_put(void *opaque, const struct nbd_export *exp)
{
	(void)opaque;
	(void)exp;
}

static int one_list(void *opaque, int (*fn)(void *arg, const struct nbd_export *exp), void *arg)
{
	return fn(arg, opaque);
}

int nbd_serve(const struct nbd_export *exp, struct nbd_io *io, char *err, size_t errlen)
{
	struct nbd_server srv = { .tls = exp->tls, .get = one_get, .put = one_put,
				  .list = one_list, .opaque = (void *)exp };

	return nbd_serve_server(&srv, io, err, errlen);
}

int nbd_serve_server(const struct nbd_server *srv, struct nbd_io *io, char *err,
		     size_t errlen)
{
	struct nbd_conn c = { .srv = srv, .io = io, .err = err, .errlen = errlen };
	uint8_t hello[18], cf[4];
	uint32_t flags;
	int ret;

	err[0] = 0;
	st_be64(hello, NBD_INIT_MAGIC);
	st_be64(hello + 8, NBD_OPTS_MAGIC);
	st_be16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (nbd_send(&c, hello, sizeof(hello)) < 0 || nbd_recv(&c, cf, 4) < 0)
		return -1;
	flags = ld_be32(cf);
	/* proto.md: unknown client flags end the session; only fixed newstyle is served. */
	if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return nbd_fail(&c, "unknown client flags 0x%x", flags);
	if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE))
		return nbd_fail(&c, "client does not speak fixed newstyle");
	c.no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
	ret = haggle(&c);
	if (ret == 1)
		ret = nbd_transmit(&c);
	if (c.tls_on)
		nbd_tls_end(&c.tls_io);
	put_export(&c, c.exp);
	return ret == 2 ? 0 : ret;
}

int nbd_listen_tcp(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	int fd = -1, one = 1, e;

	e = getaddrinfo(host, port, &hints, &res);
	if (e) {
		snprintf(err, errlen, "address resolution failed for %s:%s: %s", host, port,
			 gai_strerror(e));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	if (fd < 0)
		snprintf(err, errlen, "Failed to bind socket to %s:%s: %s", host, port,
			 strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int nbd_accept(int listen_fd)
{
	int one = 1, fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	if (fd < 0)
		return -1;
	/* Unix sockets have no Nagle: only inet ones get the option. */
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
	    (sa.ss_family == AF_INET || sa.ss_family == AF_INET6))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}
