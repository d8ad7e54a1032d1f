/*
 * User-mode networking (QEMU's -netdev user) on libslirp: a private TCP/IP
 * stack inside the VMM with DHCP, DNS forwarding, TFTP and port forwards, no
 * privileges needed.  It runs on the main loop: slirp's poll interface is
 * bridged to epoll by re-reading slirp's descriptor set after every turn,
 * and its timers share one timerfd.  Frames from the guest arrive on a
 * device thread and are queued to the main loop, since slirp is not
 * thread-safe.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/opts.h"

#define MAX_FDS 256
#define MAX_TIMERS 32
#define TXQ_LEN 256		/* guest frames waiting for the main loop */
#define MAX_FWDS 16

struct user_timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms;	/* -1: not armed */
	bool used;
};

struct txq_entry {
	uint16_t len;
	uint8_t data[NET_MAX_FRAME - NET_VNET_HDR_LEN];
};

struct user {
	struct net_client nc;
	struct loop *loop;
	Slirp *slirp;
	int timer_fd, kick_fd;
	struct pollfd pfds[MAX_FDS];
	unsigned npfds;
	struct pollfd watched[MAX_FDS];	/* what the main loop watches for slirp now */
	unsigned nwatched;
	struct user_timer timers[MAX_TIMERS];
	pthread_mutex_t txq_lock;
	struct txq_entry *txq;	/* [TXQ_LEN] ring */
	unsigned txq_head, txq_count;
	bool in_cycle;
	char *tftp, *bootfile, *hostname, *domainname, *tftp_server_name;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- slirp callbacks -------------------------------------------------------- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user *u = opaque;
	struct iovec iov = { (void *)buf, len };

	/* A guest without room loses the frame; slirp's TCP retransmits. */
	net_send(&u->nc, &iov, 1);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	log_debug("user network: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct user *u = opaque;

	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		struct user_timer *t = &u->timers[i];
		if (!t->used) {
			*t = (struct user_timer){ cb, cb_opaque, -1, true };
			return t;
		}
	}
	log_error("user network: out of timers");
	return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_timer *t = timer;

	if (t)
		t->used = false;
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct user_timer *t = timer;

	if (t)
		t->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
}

/* Slirp is closing fd: forget it now, or a new socket reusing the number would be missed. */
static void cb_unregister_poll_fd(int fd, void *opaque)
{
	struct user *u = opaque;

	for (unsigned i = 0; i < u->nwatched; i++) {
		if (u->watched[i].fd != fd)
			continue;
		loop_remove(u->loop, fd);
		u->watched[i] = u->watched[--u->nwatched];
		return;
	}
}

static void cb_notify(void *opaque)
{
	struct user *u = opaque;
	uint64_t one = 1;

	if (!u->in_cycle && write(u->kick_fd, &one, sizeof(one)) < 0)
		log_debug("user network: notify: %s", strerror(errno));
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
};

/* ---- slirp's poll() model on our epoll loop ------------------------------- */

static int add_poll(int fd, int events, void *opaque)
{
	struct user *u = opaque;

	if (u->npfds == MAX_FDS)
		return -1;
	u->pfds[u->npfds] = (struct pollfd){ .fd = fd };
	if (events & SLIRP_POLL_IN)
		u->pfds[u->npfds].events |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		u->pfds[u->npfds].events |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		u->pfds[u->npfds].events |= POLLPRI;
	return (int)u->npfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct user *u = opaque;
	short r = idx >= 0 && (unsigned)idx < u->npfds ? u->pfds[idx].revents : 0;
	int ev = 0;

	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

static void user_cycle(struct user *u);

static void slirp_fd_ready(void *opaque, uint32_t events)
{
	user_cycle(opaque);
}

static uint32_t epoll_events(short pe)
{
	return (pe & POLLIN ? EPOLLIN : 0) | (pe & POLLOUT ? EPOLLOUT : 0) |
	       (pe & POLLPRI ? EPOLLPRI : 0);
}

/* Makes the main loop watch exactly the descriptors slirp asked for this turn. */
static void sync_watches(struct user *u)
{
	for (unsigned i = 0; i < u->nwatched; i++) {
		bool keep = false;
		for (unsigned j = 0; j < u->npfds && !keep; j++)
			keep = u->pfds[j].fd == u->watched[i].fd;
		if (!keep)
			loop_remove(u->loop, u->watched[i].fd);
	}
	unsigned n = 0;
	for (unsigned j = 0; j < u->npfds; j++) {
		int fd = u->pfds[j].fd;
		short ev = u->pfds[j].events;
		bool dup = false;
		for (unsigned k = 0; k < n && !dup; k++)
			dup = u->watched[k].fd == fd;	/* nothing of ours shares a slot, but be safe */
		if (dup)
			continue;
		int found = -1;
		for (unsigned i = 0; i < u->nwatched; i++)
			if (u->watched[i].fd == fd)
				found = (int)i;
		if (found < 0) {
			if (loop_add(u->loop, fd, epoll_events(ev), slirp_fd_ready, u) < 0)
				log_debug("user network: watch fd %d: %s", fd, strerror(errno));
		} else if (u->watched[found].events != ev) {
			loop_modify(u->loop, fd, epoll_events(ev));
		}
	}
	/* Rebuild the watched list from this turn's set (pfds may hold an fd twice). */
	n = 0;
	for (unsigned j = 0; j < u->npfds; j++) {
		bool dup = false;
		for (unsigned k = 0; k < n && !dup; k++)
			dup = u->watched[k].fd == u->pfds[j].fd;
		if (!dup)
			u->watched[n++] = (struct pollfd){ .fd = u->pfds[j].fd, .events = u->pfds[j].events };
	}
	u->nwatched = n;
}

static void arm_timer(struct user *u, uint32_t timeout_ms)
{
	int64_t now_ms = now_ns() / 1000000, next = now_ms + timeout_ms;
	struct itimerspec its = { 0 };

	for (unsigned i = 0; i < MAX_TIMERS; i++)
		if (u->timers[i].used && u->timers[i].expire_ms >= 0 && u->timers[i].expire_ms < next)
			next = u->timers[i].expire_ms;
	int64_t delta = next - now_ms;
	if (delta < 1)
		delta = 1;
	its.it_value.tv_sec = delta / 1000;
	its.it_value.tv_nsec = (delta % 1000) * 1000000;
	timerfd_settime(u->timer_fd, 0, &its, NULL);
}

static void run_timers(struct user *u)
{
	int64_t now_ms = now_ns() / 1000000;

	for (unsigned i = 0; i < MAX_TIMERS; i++) {
		struct user_timer *t = &u->timers[i];
		if (t->used && t->expire_ms >= 0 && t->expire_ms <= now_ms) {
			t->expire_ms = -1;
			t->cb(t->cb_opaque);
		}
	}
}

/* Frames the guest sent since the last turn, into slirp. */
static void drain_txq(struct user *u)
{
	for (;;) {
		pthread_mutex_lock(&u->txq_lock);
		if (!u->txq_count) {
			pthread_mutex_unlock(&u->txq_lock);
			return;
		}
		struct txq_entry *e = &u->txq[u->txq_head];
		pthread_mutex_unlock(&u->txq_lock);
		/* Only this thread consumes; the producer never touches the head entry. */
		slirp_input(u->slirp, e->data, e->len);
		pthread_mutex_lock(&u->txq_lock);
		u->txq_head = (u->txq_head + 1) % TXQ_LEN;
		u->txq_count--;
		pthread_mutex_unlock(&u->txq_lock);
	}
}

/* One turn of slirp: guest frames in, sockets polled, timers run, watches re-synced. */
static void user_cycle(struct user *u)
{
	uint32_t timeout = 1000;

	u->in_cycle = true;
	drain_txq(u);
	run_timers(u);
	u->npfds = 0;
	slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
	int n = u->npfds ? poll(u->pfds, u->npfds, 0) : 0;
	slirp_pollfds_poll(u->slirp, n < 0, get_revents, u);
	/* Slirp's wishes may have changed while it worked: ask again for the next wait. */
	timeout = 1000;
	u->npfds = 0;
	slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
	sync_watches(u);
	arm_timer(u, timeout);
	u->in_cycle = false;
}

static void on_timer(void *opaque, uint32_t events)
{
	struct user *u = opaque;
	uint64_t count;

	if (read(u->timer_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	user_cycle(u);
}

static void on_kick(void *opaque, uint32_t events)
{
	struct user *u = opaque;
	uint64_t count;

	if (read(u->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	user_cycle(u);
}

/* ---- the net_client --------------------------------------------------------- */

/* From a NIC on any thread: queued for the main loop. */
static ssize_t user_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct user *u = nc->opaque;
	size_t len = net_iov_size(iov, iovcnt);
	uint64_t one = 1;

	if (len > sizeof(u->txq[0].data))
		return -1;
	pthread_mutex_lock(&u->txq_lock);
	if (u->txq_count == TXQ_LEN) {
		pthread_mutex_unlock(&u->txq_lock);
		return -1;	/* slirp is behind: drop, as a congested link would */
	}
	struct txq_entry *e = &u->txq[(u->txq_head + u->txq_count) % TXQ_LEN];
	size_t off = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(e->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	e->len = (uint16_t)len;
	u->txq_count++;
	pthread_mutex_unlock(&u->txq_lock);
	if (write(u->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("user network: kick: %s", strerror(errno));
	return (ssize_t)len;
}

static void user_close(struct net_client *nc)
{
	struct user *u = nc->opaque;

	for (unsigned i = 0; i < u->nwatched; i++)
		loop_remove(u->loop, u->watched[i].fd);
	if (u->timer_fd >= 0) {
		loop_remove(u->loop, u->timer_fd);
		close(u->timer_fd);
	}
	if (u->kick_fd >= 0) {
		loop_remove(u->loop, u->kick_fd);
		close(u->kick_fd);
	}
	if (u->slirp)
		slirp_cleanup(u->slirp);
	pthread_mutex_destroy(&u->txq_lock);
	free(u->txq);
	free(u->tftp);
	free(u->bootfile);
	free(u->hostname);
	free(u->domainname);
	free(u->tftp_server_name);
	free(u);
}

static const struct net_client_ops user_ops = {
	.type = "user",
	.receive = user_receive,
	.close = user_close,
};

/* ---- options ------------------------------------------------------------------ */

/* net=addr[/mask]: mask as a prefix length or dotted quad (QEMU's syntax). */
static bool parse_net(const char *v, struct in_addr *net, struct in_addr *mask)
{
	char buf[64];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", v);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (!inet_aton(buf, net))
		return false;
	if (!slash) {
		mask->s_addr = htonl(0xffffff00);
	} else if (strchr(slash, '.')) {
		if (!inet_aton(slash, mask))
			return false;
	} else {
		char *end;
		long bits = strtol(slash, &end, 10);
		if (*end || bits < 1 || bits > 30)
			return false;
		mask->s_addr = htonl(0xffffffffU << (32 - bits));
	}
	net->s_addr &= mask->s_addr;
	return true;
}

/* An address inside the guest network: dotted quad, or (QEMU) a host part only. */
static bool parse_addr_in(const char *v, struct in_addr net, struct in_addr mask,
			  struct in_addr *out)
{
	if (!inet_aton(v, out))
		return false;
	if ((out->s_addr & mask.s_addr) == 0)
		out->s_addr |= net.s_addr;
	return (out->s_addr & mask.s_addr) == net.s_addr;
}

static int split_port(char *s, char **addr, int *port)
{
	char *colon = strrchr(s, ':'), *end;
	long p;

	if (!colon)
		return -1;
	*colon = '\0';
	*addr = s;
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 0 || p > 65535 || end == colon + 1)
		return -1;
	*port = (int)p;
	return 0;
}

/* hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport */
static int add_hostfwd(struct user *u, const char *spec, struct in_addr dhcp_start, char *err,
		       size_t errlen)
{
	char buf[160], *host, *guest, *haddr, *gaddr, *dash;
	struct in_addr hip = { 0 }, gip = dhcp_start;
	int hport, gport, udp = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	host = buf;
	if (!strncmp(host, "tcp:", 4)) {
		host += 4;
	} else if (!strncmp(host, "udp:", 4)) {
		host += 4;
		udp = 1;
	} else if (host[0] == ':') {
		host += 1;	/* protocol omitted: tcp */
	}
	dash = strchr(host, '-');
	if (!dash)
		goto bad;
	*dash = '\0';
	guest = dash + 1;
	if (split_port(host, &haddr, &hport) < 0 || split_port(guest, &gaddr, &gport) < 0)
		goto bad;
	if (*haddr && !inet_aton(haddr, &hip))
		goto bad;
	if (*gaddr && !inet_aton(gaddr, &gip))
		goto bad;
	if (!u)
		return 0;	/* only checking the rule */
	if (slirp_add_hostfwd(u->slirp, udp, hip, hport, gip, gport) < 0) {
		snprintf(err, errlen, "could not set up host forwarding rule '%s': %s", spec,
			 strerror(errno));
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid host forwarding rule '%s' (tcp|udp:[hostaddr]:hostport-"
		 "[guestaddr]:guestport)", spec);
	return -1;
}

/* guestfwd=tcp:server:port-cmd:command (the chardev form comes with chardev hookup). */
static int add_guestfwd(struct user *u, const char *spec, char *err, size_t errlen)
{
	char buf[256], *p = buf, *addr, *dash;
	struct in_addr ip;
	int port;

	snprintf(buf, sizeof(buf), "%s", spec);
	if (!strncmp(p, "tcp:", 4))
		p += 4;
	dash = strstr(p, "-cmd:");
	if (!dash)
		goto bad;
	*dash = '\0';
	if (split_port(p, &addr, &port) < 0 || !inet_aton(addr, &ip))
		goto bad;
	if (slirp_add_exec(u->slirp, dash + 5, &ip, port) < 0) {
		snprintf(err, errlen, "conflicting/invalid guest forwarding rule '%s'", spec);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid guest forwarding rule '%s' (tcp:server:port-cmd:command)",
		 spec);
	return -1;
}

static char *dup_opt(struct opts *o, const char *key)
{
	const char *v = opts_get(o, key);

	return v ? strdup(v) : NULL;
}

/* The guest network -netdev user describes: QEMU's defaults, then the options. */
struct user_net {
	struct in_addr net, mask, host, dhcp, dns;
	bool restrict_on, ipv4, ipv6;
};

static int user_parse(struct opts *o, struct user_net *n, struct net_open_ctx *ctx)
{
	const char *v;

	*n = (struct user_net){ .ipv4 = true, .ipv6 = true };
	inet_aton("10.0.2.0", &n->net);
	inet_aton("255.255.255.0", &n->mask);
	if ((v = opts_get(o, "net")) && !parse_net(v, &n->net, &n->mask)) {
		snprintf(ctx->err, ctx->errlen, "net=%s: invalid network (addr[/mask])", v);
		return -1;
	}
	/* QEMU's defaults: .2 the host, .3 the DNS, .15 the first DHCP lease. */
	n->host.s_addr = n->net.s_addr | htonl(2);
	n->dns.s_addr = n->net.s_addr | htonl(3);
	n->dhcp.s_addr = n->net.s_addr | htonl(15);
	if ((v = opts_get(o, "host")) && !parse_addr_in(v, n->net, n->mask, &n->host)) {
		snprintf(ctx->err, ctx->errlen, "host=%s: not an address inside net=", v);
		return -1;
	}
	if ((v = opts_get(o, "dns")) && !parse_addr_in(v, n->net, n->mask, &n->dns)) {
		snprintf(ctx->err, ctx->errlen, "dns=%s: not an address inside net=", v);
		return -1;
	}
	if ((v = opts_get(o, "dhcpstart")) && !parse_addr_in(v, n->net, n->mask, &n->dhcp)) {
		snprintf(ctx->err, ctx->errlen, "dhcpstart=%s: not an address inside net=", v);
		return -1;
	}
	if (!opts_get_bool(o, "restrict", &n->restrict_on) || !opts_get_bool(o, "ipv4", &n->ipv4) ||
	    !opts_get_bool(o, "ipv6", &n->ipv6)) {
		snprintf(ctx->err, ctx->errlen, "restrict=, ipv4= and ipv6= take on or off");
		return -1;
	}
	if (opts_get(o, "smb") || opts_get(o, "dnssearch") || opts_get(o, "ipv6-net") ||
	    opts_get(o, "ipv6-host") || opts_get(o, "ipv6-dns")) {
		snprintf(ctx->err, ctx->errlen, "smb=, dnssearch= and the ipv6-*= addresses are not "
			 "supported yet");
		return -1;
	}
	return 0;
}

/* check_only: every hostfwd= rule parsed, nothing bound; err stays empty when all is good. */
static void user_check_forwards(struct opts *o, const struct user_net *n,
				struct net_open_ctx *ctx)
{
	for (size_t i = 0; i < o->count; i++) {
		struct opt *it = &o->items[i];
		if (!strcmp(it->key, "hostfwd") &&
		    add_hostfwd(NULL, it->value, n->dhcp, ctx->err, ctx->errlen) < 0)
			return;
		it->used |= !strcmp(it->key, "hostfwd") || !strcmp(it->key, "guestfwd");
	}
	net_opts_reject_unused(o, ctx);
}

static struct user *user_new(struct opts *o, const char *id, struct net_open_ctx *ctx)
{
	struct user *u = calloc(1, sizeof(*u));

	if (!u || !(u->txq = calloc(TXQ_LEN, sizeof(*u->txq)))) {
		snprintf(ctx->err, ctx->errlen, "out of memory");
		free(u);
		return NULL;
	}
	u->timer_fd = u->kick_fd = -1;
	pthread_mutex_init(&u->txq_lock, NULL);
	u->loop = ctx->loop;
	u->nc.ops = &user_ops;
	u->nc.opaque = u;
	u->nc.user_mode = true;
	snprintf(u->nc.id, sizeof(u->nc.id), "%s", id);
	u->tftp = dup_opt(o, "tftp");
	u->bootfile = dup_opt(o, "bootfile");
	u->hostname = dup_opt(o, "hostname");
	u->domainname = dup_opt(o, "domainname");
	u->tftp_server_name = dup_opt(o, "tftp-server-name");
	return u;
}

/* The slirp instance for n, with u's strings. */
static int user_start_slirp(struct user *u, const struct user_net *n, struct net_open_ctx *ctx)
{
	SlirpConfig sc = { .version = 4, .in_enabled = true, .in6_enabled = true };

	/* net/slirp.c net_slirp_init's info_str. */
	snprintf(u->nc.info, sizeof(u->nc.info), "net=%s,restrict=%s",
		 inet_ntoa(n->net), n->restrict_on ? "on" : "off");
	sc.restricted = n->restrict_on;
	sc.in_enabled = n->ipv4;
	sc.vnetwork = n->net;
	sc.vnetmask = n->mask;
	sc.vhost = n->host;
	sc.vdhcp_start = n->dhcp;
	sc.vnameserver = n->dns;
	sc.in6_enabled = n->ipv6;
	/* QEMU's IPv6 defaults: fec0::/64, host ::2, DNS ::3. */
	inet_pton(AF_INET6, "fec0::", &sc.vprefix_addr6);
	sc.vprefix_len = 64;
	inet_pton(AF_INET6, "fec0::2", &sc.vhost6);
	inet_pton(AF_INET6, "fec0::3", &sc.vnameserver6);
	sc.vhostname = u->hostname;
	sc.tftp_path = u->tftp;
	sc.bootfile = u->bootfile;
	sc.vdomainname = u->domainname;
	sc.tftp_server_name = u->tftp_server_name;
	u->slirp = slirp_new(&sc, &callbacks, u);
	if (!u->slirp) {
		snprintf(ctx->err, ctx->errlen, "could not start the user-mode network stack");
		return -1;
	}
	return 0;
}

/* Every hostfwd= and guestfwd= counts, not just the last. */
static int user_add_forwards(struct user *u, struct opts *o, const struct user_net *n,
			     struct net_open_ctx *ctx)
{
	for (size_t i = 0; i < o->count; i++) {
		struct opt *it = &o->items[i];
		int rc = 0;
		if (!strcmp(it->key, "hostfwd"))
			rc = add_hostfwd(u, it->value, n->dhcp, ctx->err, ctx->errlen);
		else if (!strcmp(it->key, "guestfwd"))
			rc = add_guestfwd(u, it->value, ctx->err, ctx->errlen);
		else
			continue;
		it->used = true;
		if (rc < 0)
			return -1;
	}
	return net_opts_reject_unused(o, ctx);
}

static int user_watch(struct user *u, struct net_open_ctx *ctx)
{
	u->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	u->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->timer_fd < 0 || u->kick_fd < 0 ||
	    loop_add(u->loop, u->timer_fd, EPOLLIN, on_timer, u) < 0 ||
	    loop_add(u->loop, u->kick_fd, EPOLLIN, on_kick, u) < 0) {
		snprintf(ctx->err, ctx->errlen, "event loop: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct net_client *net_user_open(const char *text, const char *id, struct net_open_ctx *ctx)
{
	struct opts *o = net_opts_parse(text, ctx);
	struct user_net n;
	struct user *u = NULL;

	if (!o)
		return NULL;
	if (user_parse(o, &n, ctx) < 0)
		goto fail;
	if (ctx->check_only) {
		user_check_forwards(o, &n, ctx);
		goto fail;
	}
	u = user_new(o, id, ctx);
	if (!u || user_start_slirp(u, &n, ctx) < 0 || user_add_forwards(u, o, &n, ctx) < 0 ||
	    user_watch(u, ctx) < 0)
		goto fail;
	user_cycle(u);	/* watch the forwarded ports from the start */
	opts_free(o);
	return &u->nc;
fail:
	if (u)
		user_close(&u->nc);
	opts_free(o);
	return NULL;
}

char *net_user_connection_info(struct net_client *nc)
{
	struct user *u;

	if (!nc || nc->ops != &user_ops)
		return NULL;
	u = nc->opaque;
	return u->slirp ? slirp_connection_info(u->slirp) : NULL;
}
