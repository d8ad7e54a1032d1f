/*
 * Socket back end (QEMU's -netdev socket,listen=|connect=): two VMMs joined
 * by a TCP stream, each frame preceded by its length as a 32-bit big-endian
 * number (QEMU's framing, so kestrel and QEMU can talk to each other).  No
 * privileges needed.  mcast= and udp= are datagram links (dgram.c).
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/opts.h"

struct sock {
	struct net_client nc;
	struct loop *loop;
	int listen_fd;
	int fd;				/* the connection, -1 while none */
	pthread_mutex_t send_lock;	/* frames from several threads must not interleave */
	uint8_t buf[4 + NET_MAX_FRAME];
	size_t have;			/* bytes of the current frame read so far */
};

static void sock_drop_conn(struct sock *s)
{
	if (s->fd < 0)
		return;
	loop_remove(s->loop, s->fd);
	pthread_mutex_lock(&s->send_lock);
	close(s->fd);
	s->fd = -1;
	pthread_mutex_unlock(&s->send_lock);
	s->have = 0;
}

static void sock_readable(void *opaque, uint32_t events)
{
	struct sock *s = opaque;
	ssize_t n = recv(s->fd, s->buf + s->have, sizeof(s->buf) - s->have, MSG_DONTWAIT);

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		log_info("netdev %s: connection closed", s->nc.id);
		sock_drop_conn(s);
		return;
	}
	s->have += (size_t)n;
	while (s->have >= 4) {
		uint32_t len;
		memcpy(&len, s->buf, 4);
		len = ntohl(len);
		if (len > NET_MAX_FRAME) {
			log_warn("netdev %s: peer sent a %u-byte frame; closing", s->nc.id, len);
			sock_drop_conn(s);
			return;
		}
		if (s->have < 4 + (size_t)len)
			return;
		struct iovec iov = { s->buf + 4, len };
		net_send(&s->nc, &iov, 1);	/* a full guest ring drops it, as a wire would */
		memmove(s->buf, s->buf + 4 + len, s->have - 4 - len);
		s->have -= 4 + len;
	}
}

static void sock_accept(void *opaque, uint32_t events)
{
	struct sock *s = opaque;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->fd >= 0) {
		close(fd);	/* one peer at a time, as QEMU */
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->fd = fd;
	s->have = 0;
	if (loop_add(s->loop, fd, EPOLLIN, sock_readable, s) < 0)
		sock_drop_conn(s);
}

static ssize_t sock_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct sock *s = nc->opaque;
	size_t len = net_iov_size(iov, iovcnt);
	uint32_t be = htonl((uint32_t)len);
	struct iovec v[65];
	struct msghdr msg = { .msg_iov = v };
	ssize_t rc = -1;

	if (iovcnt > 64)
		return -1;
	v[0] = (struct iovec){ &be, 4 };
	memcpy(v + 1, iov, sizeof(*iov) * (size_t)iovcnt);
	msg.msg_iovlen = (size_t)iovcnt + 1;
	pthread_mutex_lock(&s->send_lock);
	if (s->fd >= 0) {
		/* Blocking: a partial frame would break the stream's framing. */
		size_t left = len + 4;
		while (left) {
			ssize_t w = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				break;
			left -= (size_t)w;
			while (w > 0 && msg.msg_iovlen) {
				if ((size_t)w >= msg.msg_iov[0].iov_len) {
					w -= (ssize_t)msg.msg_iov[0].iov_len;
					msg.msg_iov++;
					msg.msg_iovlen--;
				} else {
					msg.msg_iov[0].iov_base = (uint8_t *)msg.msg_iov[0].iov_base + w;
					msg.msg_iov[0].iov_len -= (size_t)w;
					w = 0;
				}
			}
		}
		rc = left ? -1 : (ssize_t)len;
	}
	pthread_mutex_unlock(&s->send_lock);
	return rc;
}

static void sock_close(struct net_client *nc)
{
	struct sock *s = nc->opaque;

	sock_drop_conn(s);
	if (s->listen_fd >= 0) {
		loop_remove(s->loop, s->listen_fd);
		close(s->listen_fd);
	}
	pthread_mutex_destroy(&s->send_lock);
	free(s);
}

static const struct net_client_ops sock_ops = {
	.type = "socket",
	.receive = sock_receive,
	.close = sock_close,
};

/* "host:port" (host may be empty: any address for listen=, localhost for connect=). */
static int resolve(const char *spec, bool passive, struct addrinfo **res, char *err, size_t errlen)
{
	char buf[128], *colon;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	int rc;

	snprintf(buf, sizeof(buf), "%s", spec);
	colon = strrchr(buf, ':');
	if (!colon) {
		snprintf(err, errlen, "'%s' is not host:port", spec);
		return -1;
	}
	*colon = '\0';
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(buf[0] ? buf : passive ? NULL : "127.0.0.1", colon + 1, &hints, res);
	if (rc) {
		snprintf(err, errlen, "'%s': %s", spec, gai_strerror(rc));
		return -1;
	}
	return 0;
}

struct net_client *net_socket_open(const char *text, const char *id, struct net_open_ctx *ctx)
{
	struct opts *o = net_opts_parse(text, ctx);
	struct addrinfo *ai = NULL;
	struct sock *s = NULL;
	const char *listen_at, *connect_to;
	int one = 1;

	if (!o)
		return NULL;
	listen_at = opts_get(o, "listen");
	connect_to = opts_get(o, "connect");
	if (opts_get(o, "mcast") || opts_get(o, "udp")) {
		struct net_client *nc = NULL;
		if (listen_at || connect_to)
			snprintf(ctx->err, ctx->errlen, "mcast= and udp= do not go with listen= "
				 "or connect=");
		else
			nc = net_dgram_open(o, id, ctx);
		opts_free(o);
		return nc;
	}
	if (opts_get(o, "fd")) {
		snprintf(ctx->err, ctx->errlen, "fd= is not supported; use listen=, connect=, "
			 "mcast= or udp=");
		goto fail;
	}
	if (net_opts_reject_unused(o, ctx) < 0)
		goto fail;
	if (!listen_at == !connect_to) {
		snprintf(ctx->err, ctx->errlen, "exactly one of listen= and connect= is needed");
		goto fail;
	}
	if (ctx->check_only)
		goto fail;	/* valid: err stays empty */
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(ctx->err, ctx->errlen, "out of memory");
		goto fail;
	}
	s->fd = s->listen_fd = -1;
	s->loop = ctx->loop;
	pthread_mutex_init(&s->send_lock, NULL);
	s->nc.ops = &sock_ops;
	s->nc.opaque = s;
	snprintf(s->nc.id, sizeof(s->nc.id), "%s", id);
	if (resolve(listen_at ? listen_at : connect_to, listen_at != NULL, &ai, ctx->err,
		    ctx->errlen) < 0)
		goto fail;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(ctx->err, ctx->errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (listen_at) {
		s->listen_fd = fd;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0 ||
		    loop_add(s->loop, fd, EPOLLIN, sock_accept, s) < 0) {
			snprintf(ctx->err, ctx->errlen, "listen=%s: %s", listen_at, strerror(errno));
			goto fail;
		}
	} else {
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			snprintf(ctx->err, ctx->errlen, "connect=%s: %s", connect_to, strerror(errno));
			close(fd);
			goto fail;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s->fd = fd;
		if (loop_add(s->loop, fd, EPOLLIN, sock_readable, s) < 0) {
			snprintf(ctx->err, ctx->errlen, "event loop: %s", strerror(errno));
			goto fail;
		}
	}
	freeaddrinfo(ai);
	opts_free(o);
	return &s->nc;
fail:
	if (ai)
		freeaddrinfo(ai);
	if (s)
		sock_close(&s->nc);
	opts_free(o);
	return NULL;
}
