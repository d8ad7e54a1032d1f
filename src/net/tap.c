/*
 * TAP back end (QEMU's -netdev tap): a /dev/net/tun interface in TAP mode,
 * set up by an ifup script run exactly as QEMU runs /etc/qemu-ifup (the
 * interface name as $1, start-up fails when it fails) and taken down by the
 * downscript when the VM exits.  With IFF_VNET_HDR every frame carries a
 * virtio_net_hdr, so a virtio-net guest's checksum and TSO offloads pass
 * through the host untouched.
 */
#include "net/net.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/vhost.h"
#include "util/log.h"
#include "util/opts.h"

#define DEFAULT_IFUP "/etc/kestrel-ifup"
#define DEFAULT_IFDOWN "/etc/kestrel-ifdown"
#define READS_PER_WAKE 64	/* frames per main-loop turn, so one busy TAP cannot starve the rest */

struct tap;

/* One queue of a (multiqueue) TAP: its own descriptor, read on the main loop. */
struct tap_queue {
	struct tap *t;
	unsigned index;
	int fd;
	bool reading;		/* EPOLLIN armed on fd */
	atomic_bool vhost_running;	/* the kernel reads fd: we must not */
	size_t pending;		/* bytes of a frame the peer refused, kept in buf */
	uint8_t buf[NET_MAX_FRAME];
};

struct tap {
	struct net_client nc;
	struct loop *loop;
	unsigned nq;
	struct tap_queue q[NET_MAX_QUEUES];
	int wake_fd;		/* eventfd: the peer has room again (from any thread) */
	bool has_vhost;		/* vhost=on: one vhost-net instance per queue */
	struct vhost_net vhost[NET_MAX_QUEUES];
	bool own_fd;		/* opened here, not fd= */
	char ifname[IFNAMSIZ];
	char downscript[256];	/* "" for none */
};

/*
 * Runs script with the interface name as $1 and waits for it, as QEMU's
 * launch_script does.  Returns 0 when it exited 0; otherwise err says why.
 */
static int run_script(const char *script, const char *ifname, char *err, size_t errlen)
{
	int pipefd[2], status, child_errno = 0;
	pid_t pid;
	ssize_t got;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "network script %s: pipe: %s", script, strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "network script %s: fork: %s", script, strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t all;
		char *argv[] = { (char *)script, (char *)ifname, NULL };

		/* The VMM blocks signals for its signalfd; a script should not inherit that. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* Nothing of ours leaks into the script but stdio and the error pipe. */
		if (pipefd[1] != 3) {
			dup2(pipefd[1], 3);
			fcntl(3, F_SETFD, FD_CLOEXEC);
		}
		close_range(4, ~0U, 0);
		execv(script, argv);
		child_errno = errno;
		if (write(3, &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(1);
	}
	close(pipefd[1]);
	do {
		got = read(pipefd[0], &child_errno, sizeof(child_errno));
	} while (got < 0 && errno == EINTR);
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "network script %s: waitpid: %s", script, strerror(errno));
			return -1;
		}
	}
	if (got == sizeof(child_errno)) {
		snprintf(err, errlen, "could not launch network script %s: %s", script,
			 strerror(child_errno));
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		snprintf(err, errlen, "network script %s was killed by signal %d", script,
			 WTERMSIG(status));
	else
		snprintf(err, errlen, "network script %s failed with status %d", script,
			 WEXITSTATUS(status));
	return -1;
}

static void tap_set_reading(struct tap_queue *tq, bool on)
{
	if (tq->reading == on)
		return;
	tq->reading = on;
	if (loop_modify(tq->t->loop, tq->fd, on ? EPOLLIN : 0) < 0)
		log_debug("tap %s: epoll: %s", tq->t->ifname, strerror(errno));
}

/* Hands one frame in buf to the peer; false when the peer is full (kept pending). */
static bool tap_deliver(struct tap_queue *tq, size_t len)
{
	struct tap *t = tq->t;
	size_t skip = t->nc.has_vnet_hdr && !t->nc.using_vnet_hdr ? NET_VNET_HDR_LEN : 0;
	struct iovec iov = { tq->buf + skip, len - skip };

	if (len <= skip)
		return true;	/* a runt: nothing to pass on */
	if (net_send_queue(&t->nc, tq->index, &iov, 1) == 0) {
		tq->pending = len;
		tap_set_reading(tq, false);
		return false;
	}
	tq->pending = 0;
	return true;
}

static void tap_readable(void *opaque, uint32_t events)
{
	struct tap_queue *tq = opaque;

	if (atomic_load(&tq->vhost_running)) {
		tap_set_reading(tq, false);
		return;
	}
	if (tq->pending && !tap_deliver(tq, tq->pending))
		return;
	for (int i = 0; i < READS_PER_WAKE; i++) {
		ssize_t n = read(tq->fd, tq->buf, sizeof(tq->buf));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("tap %s: read: %s", tq->t->ifname, strerror(errno));
			return;
		}
		if (n == 0 || !tap_deliver(tq, (size_t)n))
			return;
	}
}

/* The peer has room again: retry the kept frames on the main loop. */
static void tap_woken(void *opaque, uint32_t events)
{
	struct tap *t = opaque;
	uint64_t count;

	if (read(t->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	for (unsigned i = 0; i < t->nq; i++) {
		struct tap_queue *tq = &t->q[i];
		if (atomic_load(&tq->vhost_running)) {
			tap_set_reading(tq, false);
			continue;
		}
		if (tq->pending && !tap_deliver(tq, tq->pending))
			continue;
		tap_set_reading(tq, true);
	}
}

static void tap_wake(struct net_client *nc)
{
	struct tap *t = nc->opaque;
	uint64_t one = 1;

	if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("tap %s: wake: %s", t->ifname, strerror(errno));
}

static ssize_t tap_receive_queue(struct net_client *nc, unsigned queue, const struct iovec *iov,
				 int iovcnt)
{
	struct tap *t = nc->opaque;
	int fd = t->q[queue % t->nq].fd;
	static const uint8_t zero_hdr[NET_VNET_HDR_LEN];
	struct iovec v[64];
	int n = 0;
	ssize_t w;

	if (iovcnt > 63)
		return -1;
	/* The interface expects a header the peer does not send: a zero one means "no offload". */
	if (nc->has_vnet_hdr && !nc->using_vnet_hdr)
		v[n++] = (struct iovec){ (void *)zero_hdr, sizeof(zero_hdr) };
	memcpy(v + n, iov, sizeof(*iov) * (size_t)iovcnt);
	n += iovcnt;
	do {
		w = writev(fd, v, n);
	} while (w < 0 && errno == EINTR);
	/* A full TAP queue drops the frame, as a NIC with a full ring would. */
	return w < 0 ? -1 : (ssize_t)net_iov_size(iov, iovcnt);
}

static ssize_t tap_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	return tap_receive_queue(nc, 0, iov, iovcnt);
}

static void tap_set_offload(struct net_client *nc, bool csum, bool tso4, bool tso6, bool ecn)
{
	struct tap *t = nc->opaque;
	unsigned flags = 0;

	if (csum) {
		flags |= TUN_F_CSUM;
		/* The kernel accepts TSO only together with checksum offload. */
		flags |= (tso4 ? TUN_F_TSO4 : 0) | (tso6 ? TUN_F_TSO6 : 0);
		if (ecn && (tso4 || tso6))
			flags |= TUN_F_TSO_ECN;
	}
	/* Offloads belong to the interface: any queue's descriptor sets them. */
	if (ioctl(t->q[0].fd, TUNSETOFFLOAD, flags) < 0)
		log_warn("tap %s: TUNSETOFFLOAD 0x%x: %s", t->ifname, flags, strerror(errno));
}

static struct vhost_net *tap_vhost(struct net_client *nc, unsigned queue, int *backend_fd)
{
	struct tap *t = nc->opaque;

	if (!t->has_vhost || queue >= t->nq)
		return NULL;
	*backend_fd = t->q[queue].fd;
	return &t->vhost[queue];
}

/* Called from the device's thread; the main loop re-arms or parks the queue when woken. */
static void tap_vhost_running(struct net_client *nc, unsigned queue, bool on)
{
	struct tap *t = nc->opaque;

	if (queue >= t->nq)
		return;
	atomic_store(&t->q[queue].vhost_running, on);
	tap_wake(nc);
}

/* TUNSETQUEUE: the kernel steers flows only over attached queues. */
static void tap_enable_queue(struct net_client *nc, unsigned queue, bool on)
{
	struct tap *t = nc->opaque;
	struct ifreq ifr = { .ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };

	if (t->nq < 2 || queue >= t->nq)
		return;
	if (ioctl(t->q[queue].fd, TUNSETQUEUE, &ifr) < 0 && errno != EINVAL)
		log_warn("tap %s: TUNSETQUEUE %u %s: %s", t->ifname, queue, on ? "attach" : "detach",
			 strerror(errno));
}

static void tap_close(struct net_client *nc)
{
	struct tap *t = nc->opaque;
	char err[320];

	/* The kernel lets go of the TAP before we close it. */
	for (unsigned i = 0; i < t->nq && t->has_vhost; i++)
		vhost_net_close(&t->vhost[i]);
	for (unsigned i = 0; i < t->nq; i++)
		loop_remove(t->loop, t->q[i].fd);
	if (t->wake_fd >= 0) {
		loop_remove(t->loop, t->wake_fd);
		close(t->wake_fd);
	}
	/* QEMU runs the downscript while the interface still exists, then closes it. */
	if (t->downscript[0] && run_script(t->downscript, t->ifname, err, sizeof(err)) < 0)
		log_warn("%s", err);
	for (unsigned i = 0; i < t->nq && t->own_fd; i++)
		close(t->q[i].fd);
	free(t);
}

static const struct net_client_ops tap_ops = {
	.type = "tap",
	.receive = tap_receive,
	.receive_queue = tap_receive_queue,
	.wake = tap_wake,
	.set_offload = tap_set_offload,
	.close = tap_close,
	.vhost = tap_vhost,
	.vhost_running = tap_vhost_running,
	.enable_queue = tap_enable_queue,
};

/*
 * Opens /dev/net/tun as a TAP named like ifname ("" lets the kernel pick
 * tapN), once per queue: with IFF_MULTI_QUEUE each open attaches one more
 * queue to the same interface, and the kernel spreads flows across them.
 */
static int tap_create(struct tap *t, const char *ifname, int vnet_hdr, unsigned queues, char *err,
		      size_t errlen)
{
	struct ifreq ifr = { 0 };
	unsigned features = 0;

	t->own_fd = true;
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname[0] ? ifname : "tap%d");
	for (unsigned i = 0; i < queues; i++) {
		int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			snprintf(err, errlen, "could not open /dev/net/tun: %s", strerror(errno));
			return -1;
		}
		if (ioctl(fd, TUNGETFEATURES, &features) < 0)
			features = 0;
		if (vnet_hdr > 0 && !(features & IFF_VNET_HDR)) {
			snprintf(err, errlen, "vnet_hdr=on: this kernel's TAP has no IFF_VNET_HDR");
			close(fd);
			return -1;
		}
		if (queues > 1 && !(features & IFF_MULTI_QUEUE)) {
			snprintf(err, errlen, "queues=%u: this kernel's TAP has no IFF_MULTI_QUEUE", queues);
			close(fd);
			return -1;
		}
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
		if (vnet_hdr != 0 && (features & IFF_VNET_HDR))
			ifr.ifr_flags |= IFF_VNET_HDR;
		if (queues > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
		if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
			snprintf(err, errlen, "could not configure /dev/net/tun (%s): %s", ifr.ifr_name,
				 strerror(errno));
			close(fd);
			return -1;
		}
		snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);	/* tap%d resolved */
		t->q[t->nq++].fd = fd;
	}
	t->nc.has_vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
	t->nc.queues = queues;
	return 0;
}

/* fd=N: a TAP someone else opened (libvirt's way); no scripts run for it. */
static int tap_adopt(struct tap *t, const char *fdstr, int vnet_hdr, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	char *end;
	long fd = strtol(fdstr, &end, 10);

	if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
		snprintf(err, errlen, "fd=%s is not an open file descriptor", fdstr);
		return -1;
	}
	if (ioctl((int)fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_TAP)) {
		snprintf(err, errlen, "fd=%s is not a TAP device", fdstr);
		return -1;
	}
	if (vnet_hdr > 0 && !(ifr.ifr_flags & IFF_VNET_HDR)) {
		snprintf(err, errlen, "vnet_hdr=on, but fd=%s was opened without IFF_VNET_HDR", fdstr);
		return -1;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	t->q[0].fd = (int)fd;
	t->nq = 1;
	t->nc.has_vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
	fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) | O_NONBLOCK);
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/*
 * vhost=on: one /dev/vhost-net instance per queue (or the vhostfd= one),
 * opened now so that start-up fails with the reason instead of running
 * without it.  The rings are handed over when the guest's driver is ready.
 */
static int tap_open_vhost(struct tap *t, const char *vhostfd, char *err, size_t errlen)
{
	char why[256];

	for (unsigned i = 0; i < t->nq; i++) {
		int fd = -1;
		if (vhostfd) {
			char *end;
			long v = strtol(vhostfd, &end, 10);
			if (*end || v < 0 || v > 65535 || fcntl((int)v, F_GETFD) < 0) {
				snprintf(err, errlen, "vhostfd=%s is not an open file descriptor", vhostfd);
				return -1;
			}
			fd = (int)v;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		}
		if (vhost_net_open(&t->vhost[i], fd, NULL, NULL, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "vhost=on: %s%s", why,
				 access(VHOST_NET_DEVICE, F_OK) < 0 ?
				 " (load the vhost_net module, or use vhost=off)" : "");
			return -1;
		}
		/* The device is virtio 1.x only; without a TAP header the kernel must add one. */
		uint64_t need = (1ULL << 32) | (t->nc.has_vnet_hdr ? 0 : VHOST_NET_HDR_FEATURE);
		if ((t->vhost[i].features & need) != need) {
			snprintf(err, errlen, "vhost=on: this kernel's vhost-net lacks %s",
				 (t->vhost[i].features & (1ULL << 32)) ? "VHOST_NET_F_VIRTIO_NET_HDR "
				 "(use vnet_hdr=on)" : "VIRTIO_F_VERSION_1");
			return -1;
		}
	}
	t->has_vhost = true;
	return 0;
}

static bool script_wanted(const char *v)
{
	return v && *v && strcmp(v, "no") != 0;
}

/* What -netdev tap's options ask for, checked before anything is opened. */
struct tap_args {
	const char *ifname, *fdstr, *script, *downscript, *vhostfd;
	bool vhost_on;
	int vnet_hdr;		/* -1: if the kernel can */
	unsigned nq;
};

/* vnet_hdr=, vhost=, vhostforce=, vhostfd=: -1 with the reason in ctx->err. */
static int tap_parse_vhost(struct opts *o, struct tap_args *a, struct net_open_ctx *ctx)
{
	bool vhostforce = false, vnet = true;

	if (opts_get(o, "vnet_hdr")) {
		if (!opts_get_bool(o, "vnet_hdr", &vnet))
			goto bad_bool;
		a->vnet_hdr = vnet;
	}
	if (!opts_get_bool(o, "vhost", &a->vhost_on) || !opts_get_bool(o, "vhostforce", &vhostforce))
		goto bad_bool;
	a->vhostfd = opts_get(o, "vhostfd");
	/* QEMU's rule: vhost= decides when given, else vhostfd= or vhostforce=on ask for it. */
	if (!opts_get(o, "vhost"))
		a->vhost_on = a->vhostfd || vhostforce;
	if (a->vhostfd && !a->vhost_on) {
		snprintf(ctx->err, ctx->errlen, "vhostfd= is not valid without vhost");
		return -1;
	}
	return 0;
bad_bool:
	snprintf(ctx->err, ctx->errlen, "vnet_hdr=, vhost= and vhostforce= take on or off");
	return -1;
}

/* How the options combine: -1 with the reason in ctx->err. */
static int tap_check_args(const struct tap_args *a, const char *queues, struct net_open_ctx *ctx)
{
	if (queues && a->nq == 0) {
		snprintf(ctx->err, ctx->errlen, "queues=%s: 1 to %d", queues, NET_MAX_QUEUES);
		return -1;
	}
	if (a->fdstr && a->nq > 1) {
		snprintf(ctx->err, ctx->errlen, "queues= above 1 needs kestrel to open the TAP "
			 "(fds= is not supported)");
		return -1;
	}
	if (a->vhostfd && a->nq > 1) {
		snprintf(ctx->err, ctx->errlen, "vhostfd= serves one queue; use queues=1 or let "
			 "kestrel open /dev/vhost-net");
		return -1;
	}
	if (a->ifname && strlen(a->ifname) >= IFNAMSIZ) {
		snprintf(ctx->err, ctx->errlen, "ifname=%s is longer than %d characters", a->ifname,
			 IFNAMSIZ - 1);
		return -1;
	}
	if (a->fdstr && (a->ifname || script_wanted(a->script) || script_wanted(a->downscript))) {
		snprintf(ctx->err, ctx->errlen, "ifname=, script= and downscript= are invalid with fd=");
		return -1;
	}
	return 0;
}

static int tap_parse(struct opts *o, struct tap_args *a, struct net_open_ctx *ctx)
{
	const char *queues;

	*a = (struct tap_args){ .vnet_hdr = -1, .nq = 1 };
	opts_get(o, "sndbuf");		/* QEMU's send buffer limit; writes here never queue */
	a->ifname = opts_get(o, "ifname");
	a->fdstr = opts_get(o, "fd");
	a->script = opts_get(o, "script");
	a->downscript = opts_get(o, "downscript");
	queues = opts_get(o, "queues");
	if (tap_parse_vhost(o, a, ctx) < 0)
		return -1;
	if (opts_get(o, "fds") || opts_get(o, "helper") || opts_get(o, "br") ||
	    opts_get(o, "vhostfds")) {
		snprintf(ctx->err, ctx->errlen, "fds=, vhostfds=, helper= and br= are not supported; "
			 "use fd= (and vhostfd=) or ifname= with script=");
		return -1;
	}
	if (net_opts_reject_unused(o, ctx) < 0)
		return -1;
	if (queues) {
		char *end;
		long v = strtol(queues, &end, 10);
		a->nq = *end || v < 1 || v > NET_MAX_QUEUES ? 0 : (unsigned)v;
	}
	return tap_check_args(a, queues, ctx);
}

static struct tap *tap_new(const char *id, struct net_open_ctx *ctx)
{
	struct tap *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(ctx->err, ctx->errlen, "out of memory");
		return NULL;
	}
	t->wake_fd = -1;
	t->loop = ctx->loop;
	for (unsigned i = 0; i < NET_MAX_QUEUES; i++) {
		t->q[i] = (struct tap_queue){ .t = t, .index = i, .fd = -1 };
		t->vhost[i].fd = -1;
	}
	t->nc.ops = &tap_ops;
	t->nc.opaque = t;
	snprintf(t->nc.id, sizeof(t->nc.id), "%s", id);
	return t;
}

/* The TAP's queues (created or adopted), their header size and vhost. */
static int tap_open_queues(struct tap *t, const struct tap_args *a, struct net_open_ctx *ctx)
{
	int sz = NET_VNET_HDR_LEN;

	if (a->fdstr ? tap_adopt(t, a->fdstr, a->vnet_hdr, ctx->err, ctx->errlen) :
		       tap_create(t, a->ifname ? a->ifname : "", a->vnet_hdr, a->nq, ctx->err,
				  ctx->errlen))
		return -1;
	for (unsigned i = 0; i < t->nq; i++) {
		if (t->nc.has_vnet_hdr && ioctl(t->q[i].fd, TUNSETVNETHDRSZ, &sz) < 0) {
			snprintf(ctx->err, ctx->errlen, "%s: TUNSETVNETHDRSZ: %s", t->ifname,
				 strerror(errno));
			return -1;
		}
	}
	/* Before the ifup script: a VM that cannot start leaves no configured interface behind. */
	if (a->vhost_on && tap_open_vhost(t, a->vhostfd, ctx->err, ctx->errlen) < 0)
		return -1;
	return 0;
}

/* The ifup script now, the downscript for close; QEMU's info_str either way. */
static int tap_scripts(struct tap *t, const struct tap_args *a, struct net_open_ctx *ctx)
{
	const char *script = a->script, *downscript = a->downscript;

	if (a->fdstr) {
		snprintf(t->nc.info, sizeof(t->nc.info), "fd=%s", a->fdstr);
		return 0;
	}
	if (!script)
		script = DEFAULT_IFUP;
	if (!downscript)
		downscript = DEFAULT_IFDOWN;
	if (script_wanted(script) && run_script(script, t->ifname, ctx->err, ctx->errlen) < 0)
		return -1;
	if (script_wanted(downscript))
		snprintf(t->downscript, sizeof(t->downscript), "%s", downscript);
	/* net/tap.c net_init_tap_one's info_str. */
	snprintf(t->nc.info, sizeof(t->nc.info), "ifname=%s,script=%s,downscript=%s",
		 t->ifname, script, downscript);
	return 0;
}

/* Every queue and the wake eventfd on the main loop. */
static int tap_watch(struct tap *t, struct net_open_ctx *ctx)
{
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	bool watched = t->wake_fd >= 0 && loop_add(t->loop, t->wake_fd, EPOLLIN, tap_woken, t) == 0;
	for (unsigned i = 0; i < t->nq && watched; i++) {
		watched = loop_add(t->loop, t->q[i].fd, EPOLLIN, tap_readable, &t->q[i]) == 0;
		t->q[i].reading = true;
	}
	if (watched)
		return 0;
	snprintf(ctx->err, ctx->errlen, "%s: event loop: %s", t->ifname, strerror(errno));
	for (unsigned i = 0; i < t->nq; i++)
		loop_remove(t->loop, t->q[i].fd);
	loop_remove(t->loop, t->wake_fd);
	t->downscript[0] = '\0';
	return -1;
}

/* A TAP that failed half-way: what it opened, no downscript. */
static void tap_discard(struct tap *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nq; i++)
		vhost_net_close(&t->vhost[i]);
	for (unsigned i = 0; i < t->nq && t->own_fd; i++)
		close(t->q[i].fd);
	if (t->wake_fd >= 0)
		close(t->wake_fd);
	free(t);
}

struct net_client *net_tap_open(const char *text, const char *id, struct net_open_ctx *ctx)
{
	struct opts *o = net_opts_parse(text, ctx);
	struct tap_args a;
	struct tap *t = NULL;

	if (!o)
		return NULL;
	/* With check_only, valid options stop here with err empty. */
	if (tap_parse(o, &a, ctx) < 0 || ctx->check_only)
		goto fail;
	t = tap_new(id, ctx);
	if (!t || tap_open_queues(t, &a, ctx) < 0 || tap_scripts(t, &a, ctx) < 0 ||
	    tap_watch(t, ctx) < 0)
		goto fail;
	log_debug("tap %s: open, %u queue(s), vnet header %s", t->ifname, t->nq,
		  t->nc.has_vnet_hdr ? "on" : "off");
	opts_free(o);
	return &t->nc;
fail:
	tap_discard(t);
	opts_free(o);
	return NULL;
}

/*
 * -netdev bridge,br=BR: the role of qemu-bridge-helper, done in-process: a
 * TAP (the kernel names it) attached to bridge BR (SIOCBRADDIF) and brought
 * up, no scripts.  QEMU's helper exists so an unprivileged QEMU can do this
 * through a setuid program and an ACL (/etc/qemu/bridge.conf); kestrel needs
 * CAP_NET_ADMIN itself and says so when it lacks it.  Closing the TAP at exit
 * takes it off the bridge.
 */
/* The interface's index (0: none); <net/if.h>'s if_nametoindex clashes with <linux/if.h>. */
static int ifindex(int s, const char *name)
{
	struct ifreq ifr = { 0 };

	if (strlen(name) >= IFNAMSIZ)
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	return ioctl(s, SIOCGIFINDEX, &ifr) < 0 ? 0 : ifr.ifr_ifindex;
}

static int bridge_attach(const char *tap, const char *br, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (s < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
	ifr.ifr_ifindex = ifindex(s, tap);
	if (!ifr.ifr_ifindex || ioctl(s, SIOCBRADDIF, &ifr) < 0) {
		snprintf(err, errlen, "br=%s: cannot add %s to the bridge: %s%s", br, tap,
			 strerror(errno), errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		snprintf(err, errlen, "%s: SIOCGIFFLAGS: %s", tap, strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		snprintf(err, errlen, "%s: cannot bring it up: %s", tap, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(s);
	return rc;
}

struct net_client *net_bridge_open(const char *text, const char *id, struct net_open_ctx *ctx)
{
	char tap_args[64];
	struct opts *o = net_opts_parse(text, ctx);
	struct net_client *nc = NULL;
	const char *br, *vnet;

	if (!o)
		return NULL;
	br = opts_get(o, "br");
	vnet = opts_get(o, "vnet_hdr");
	if (opts_get(o, "helper")) {
		snprintf(ctx->err, ctx->errlen, "helper= is not used: kestrel attaches the TAP to the "
			 "bridge itself (it needs CAP_NET_ADMIN)");
		goto out;
	}
	if (net_opts_reject_unused(o, ctx) < 0)
		goto out;
	if (!br)
		br = "br0";	/* QEMU's default bridge */
	if (ctx->check_only)
		goto out;	/* valid: err stays empty; the bridge is looked up when opening */
	int s = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool exists = s >= 0 && ifindex(s, br) > 0;
	if (s >= 0)
		close(s);
	if (!exists) {
		snprintf(ctx->err, ctx->errlen, "br=%s: no such bridge", br);
		goto out;
	}
	snprintf(tap_args, sizeof(tap_args), "script=no,downscript=no%s%s", vnet ? ",vnet_hdr=" : "",
		 vnet ? vnet : "");
	nc = net_tap_open(tap_args, id, ctx);
	if (nc && bridge_attach(((struct tap *)nc->opaque)->ifname, br, ctx->err, ctx->errlen) < 0) {
		net_client_close(nc);
		nc = NULL;
	}
out:
	opts_free(o);
	return nc;
}
