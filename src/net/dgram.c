/*
 * Datagram socket back ends (QEMU's -netdev socket,mcast= and ,udp=): one
 * Ethernet frame per UDP datagram, no framing, so kestrel and QEMU share a
 * segment.  mcast= joins a multicast group with loopback on, so every VM on
 * the host that joins it sees the others (and, as in QEMU, its own frames);
 * udp= is a point-to-point link to one peer.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/opts.h"

struct dgram {
	struct net_client nc;
	struct loop *loop;
	int fd;
	struct sockaddr_in dest;	/* the group, or the udp= peer */
	uint8_t buf[NET_MAX_FRAME];
};

static void dgram_readable(void *opaque, uint32_t events)
{
	struct dgram *d = opaque;

	for (;;) {
		ssize_t n = recv(d->fd, d->buf, sizeof(d->buf), MSG_DONTWAIT);
		if (n < 0)
			return;	/* EAGAIN: drained */
		struct iovec iov = { d->buf, (size_t)n };
		net_send(&d->nc, &iov, 1);	/* a full guest ring drops it, as a wire would */
	}
}

static ssize_t dgram_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct dgram *d = nc->opaque;
	struct msghdr msg = { .msg_name = &d->dest, .msg_namelen = sizeof(d->dest),
			      .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n = sendmsg(d->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

	return n < 0 ? -1 : n;	/* a full socket buffer drops the frame, as a wire would */
}

static void dgram_close(struct net_client *nc)
{
	struct dgram *d = nc->opaque;

	if (d->fd >= 0) {
		loop_remove(d->loop, d->fd);
		close(d->fd);
	}
	free(d);
}

static const struct net_client_ops dgram_ops = {
	.type = "socket",
	.receive = dgram_receive,
	.close = dgram_close,
};

/* "a.b.c.d:port" (the address may be empty: any) into sin. */
static int parse_addr(const char *spec, struct sockaddr_in *sin, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "'%s' is not address:port", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = strtol(colon + 1, &end, 10);
	*sin = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (*end || port <= 0 || port > 65535 ||
	    (host[0] && inet_pton(AF_INET, host, &sin->sin_addr) != 1)) {
		snprintf(err, errlen, "'%s' is not an IPv4 address:port", spec);
		return -1;
	}
	return 0;
}

/* What mcast=/udp= and localaddr= name, parsed before any socket exists. */
struct dgram_addrs {
	struct sockaddr_in dest;	/* the group, or the udp= peer */
	struct sockaddr_in bind_at;
	struct ip_mreq mreq;		/* mcast: the group and the local interface */
	bool has_iface;			/* mcast: localaddr= picks the interface */
};

/* mcast=group:port[,localaddr=a.b.c.d] */
static int parse_mcast(const char *group, const char *local, struct dgram_addrs *a, char *err,
		       size_t errlen)
{
	a->mreq.imr_interface.s_addr = htonl(INADDR_ANY);
	if (parse_addr(group, &a->dest, err, errlen) < 0)
		return -1;
	if (!IN_MULTICAST(ntohl(a->dest.sin_addr.s_addr))) {
		snprintf(err, errlen, "mcast=%s: not a multicast address (224.0.0.0/4)", group);
		return -1;
	}
	if (local && inet_pton(AF_INET, local, &a->mreq.imr_interface) != 1) {
		snprintf(err, errlen, "localaddr=%s is not an IPv4 address", local);
		return -1;
	}
	a->has_iface = local != NULL;
	a->mreq.imr_multiaddr = a->dest.sin_addr;
	a->bind_at = a->dest;	/* the group's port, on the group address: only its datagrams */
	return 0;
}

/* udp=peer:port,localaddr=a.b.c.d:port */
static int parse_udp(const char *peer, const char *local, struct dgram_addrs *a, char *err,
		     size_t errlen)
{
	if (!local) {
		snprintf(err, errlen, "udp= needs localaddr=address:port");
		return -1;
	}
	return parse_addr(peer, &a->dest, err, errlen) < 0 ||
	       parse_addr(local, &a->bind_at, err, errlen) < 0 ? -1 : 0;
}

/* mcast=: bound to the group's port, member of the group. */
static int open_mcast(struct dgram *d, const struct dgram_addrs *a, const char *group, char *err,
		      size_t errlen)
{
	int one = 1, ttl = 1;

	if (setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(d->fd, (const struct sockaddr *)&a->bind_at, sizeof(a->bind_at)) < 0 ||
	    setsockopt(d->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &a->mreq, sizeof(a->mreq)) < 0 ||
	    setsockopt(d->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) < 0 ||
	    setsockopt(d->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) < 0 ||
	    (a->has_iface && setsockopt(d->fd, IPPROTO_IP, IP_MULTICAST_IF,
					&a->mreq.imr_interface, sizeof(a->mreq.imr_interface)) < 0)) {
		snprintf(err, errlen, "mcast=%s: %s", group, strerror(errno));
		return -1;
	}
	return 0;
}

/* udp=: a datagram link to one peer, from localaddr=. */
static int open_udp(struct dgram *d, const struct dgram_addrs *a, const char *local, char *err,
		    size_t errlen)
{
	int one = 1;

	if (setsockopt(d->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(d->fd, (const struct sockaddr *)&a->bind_at, sizeof(a->bind_at)) < 0) {
		snprintf(err, errlen, "localaddr=%s: %s", local, strerror(errno));
		return -1;
	}
	return 0;
}

/* For failures before the socket is on the loop. */
static struct net_client *open_failed(struct dgram *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d);
	return NULL;
}

struct net_client *net_dgram_open(struct opts *o, const char *id, struct net_open_ctx *ctx)
{
	const char *mcast = opts_get(o, "mcast"), *udp = opts_get(o, "udp");
	const char *local = opts_get(o, "localaddr");
	struct dgram_addrs a = { 0 };
	struct dgram *d;

	if (net_opts_reject_unused(o, ctx) < 0)
		return NULL;
	if (!mcast == !udp) {
		snprintf(ctx->err, ctx->errlen, "exactly one of mcast= and udp= is needed");
		return NULL;
	}
	if ((mcast ? parse_mcast(mcast, local, &a, ctx->err, ctx->errlen)
		   : parse_udp(udp, local, &a, ctx->err, ctx->errlen)) < 0)
		return NULL;
	if (ctx->check_only)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(ctx->err, ctx->errlen, "out of memory");
		return NULL;
	}
	d->loop = ctx->loop;
	d->nc.ops = &dgram_ops;
	d->nc.opaque = d;
	snprintf(d->nc.id, sizeof(d->nc.id), "%s", id);
	d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->fd < 0) {
		snprintf(ctx->err, ctx->errlen, "socket: %s", strerror(errno));
		return open_failed(d);
	}
	d->dest = a.dest;
	if ((mcast ? open_mcast(d, &a, mcast, ctx->err, ctx->errlen)
		   : open_udp(d, &a, local, ctx->err, ctx->errlen)) < 0)
		return open_failed(d);
	if (loop_add(d->loop, d->fd, EPOLLIN, dgram_readable, d) < 0) {
		snprintf(ctx->err, ctx->errlen, "event loop: %s", strerror(errno));
		return open_failed(d);
	}
	return &d->nc;
}
