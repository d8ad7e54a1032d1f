/* Links between net clients, and the hub that -net vlan=N builds. */
#include "net/net.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/opts.h"

ssize_t net_send(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct net_client *peer = nc->peer;

	if (!peer || !peer->ops->receive)
		return -1;
	return peer->ops->receive(peer, iov, iovcnt);
}

ssize_t net_send_queue(struct net_client *nc, unsigned queue, const struct iovec *iov, int iovcnt)
{
	struct net_client *peer = nc->peer;

	if (peer && peer->ops->receive_queue)
		return peer->ops->receive_queue(peer, queue, iov, iovcnt);
	return net_send(nc, iov, iovcnt);
}

void net_wake_peer(struct net_client *nc)
{
	struct net_client *peer = nc->peer;

	if (peer && peer->ops->wake)
		peer->ops->wake(peer);
}

void net_connect(struct net_client *a, struct net_client *b)
{
	a->peer = b;
	b->peer = a;
}

void net_client_close(struct net_client *nc)
{
	if (!nc)
		return;
	if (nc->peer)
		nc->peer->peer = NULL;
	if (nc->ops->close)
		nc->ops->close(nc);
}

size_t net_iov_size(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* ---- hub ------------------------------------------------------------------ */

#define HUB_MAX_PORTS 8

struct net_hub {
	int vlan;
	unsigned nports;
	struct net_client ports[HUB_MAX_PORTS];
};

/*
 * A frame from the client behind one port goes out of every other port, as
 * QEMU's hub does; a port whose client is busy just misses it (a hub, like
 * the Ethernet it stands for, does not queue).
 */
static ssize_t hub_receive(struct net_client *port, const struct iovec *iov, int iovcnt)
{
	struct net_hub *hub = port->opaque;
	size_t len = net_iov_size(iov, iovcnt);

	for (unsigned i = 0; i < hub->nports; i++)
		if (&hub->ports[i] != port)
			net_send(&hub->ports[i], iov, iovcnt);
	return (ssize_t)len;
}

static const struct net_client_ops hub_port_ops = {
	.type = "hub",
	.receive = hub_receive,
};

struct net_hub *net_hub_new(int vlan)
{
	struct net_hub *hub = calloc(1, sizeof(*hub));

	if (hub)
		hub->vlan = vlan;
	return hub;
}

struct net_client *net_hub_port(struct net_hub *hub)
{
	struct net_client *port;

	if (hub->nports == HUB_MAX_PORTS)
		return NULL;
	port = &hub->ports[hub->nports];
	memset(port, 0, sizeof(*port));
	port->ops = &hub_port_ops;
	port->opaque = hub;
	snprintf(port->id, sizeof(port->id), "hub%dport%u", hub->vlan, hub->nports);
	hub->nports++;
	return port;
}

int net_hub_vlan(const struct net_hub *hub)
{
	return hub->vlan;
}

unsigned net_hub_nports(const struct net_hub *hub)
{
	return hub->nports;
}

struct net_client *net_hub_get_port(struct net_hub *hub, unsigned i)
{
	return i < hub->nports ? &hub->ports[i] : NULL;
}

void net_hub_free(struct net_hub *hub)
{
	free(hub);
}

struct opts *net_opts_parse(const char *text, struct net_open_ctx *ctx)
{
	char perr[160];
	struct opts *o = opts_parse(text, NULL, perr, sizeof(perr));

	if (!o) {
		snprintf(ctx->err, ctx->errlen, "%s", perr);
		return NULL;
	}
	opts_get(o, "id");
	opts_get(o, "name");
	opts_get(o, "vlan");
	return o;
}

int net_opts_reject_unused(const struct opts *o, struct net_open_ctx *ctx)
{
	const char *unused = opts_first_unused(o);

	if (!unused)
		return 0;
	snprintf(ctx->err, ctx->errlen, "Invalid parameter '%s'", unused);
	return -1;
}
