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
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "util/opts.h"

#define DEFAULT_IFUP "/etc/kestrel-ifup"
#define DEFAULT_IFDOWN "/etc/kestrel-ifdown"
#define READS_PER_WAKE 64	/* frames per main-loop turn, so one busy TAP cannot starve the rest */

struct tap {
	struct net_client nc;
	struct loop *loop;
	int fd;
	int wake_fd;		/* eventfd: the peer has room again (from any thread) */
	bool own_fd;		/* opened here, not fd= */
	char ifname[IFNAMSIZ];
	char downscript[256];	/* "" for none */
	bool reading;		/* EPOLLIN armed on fd */
	size_t pending;		/* bytes of a frame the peer refused, kept in buf */
	uint8_t buf[NET_MAX_FRAME];
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

static void tap_set_reading(struct tap *t, bool on)
{
	if (t->reading == on)
		return;
	t->reading = on;
	if (loop_modify(t->loop, t->fd, on ? EPOLLIN : 0) < 0)
		log_debug("tap %s: epoll: %s", t->ifname, strerror(errno));
}

/* Hands one frame in buf to the peer; false when the peer is full (kept pending). */
static bool tap_deliver(struct tap *t, size_t len)
{
	size_t skip = t->nc.has_vnet_hdr && !t->nc.using_vnet_hdr ? NET_VNET_HDR_LEN : 0;
	struct iovec iov = { t->buf + skip, len - skip };

	if (len <= skip)
		return true;	/* a runt: nothing to pass on */
	if (net_send(&t->nc, &iov, 1) == 0) {
		t->pending = len;
		tap_set_reading(t, false);
		return false;
	}
	t->pending = 0;
	return true;
}

static void tap_readable(void *opaque, uint32_t events)
{
	struct tap *t = opaque;

	if (t->pending && !tap_deliver(t, t->pending))
		return;
	for (int i = 0; i < READS_PER_WAKE; i++) {
		ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("tap %s: read: %s", t->ifname, strerror(errno));
			return;
		}
		if (n == 0 || !tap_deliver(t, (size_t)n))
			return;
	}
}

/* The peer has room again: retry the kept frame on the main loop. */
static void tap_woken(void *opaque, uint32_t events)
{
	struct tap *t = opaque;
	uint64_t count;

	if (read(t->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	if (t->pending && !tap_deliver(t, t->pending))
		return;
	tap_set_reading(t, true);
}

static void tap_wake(struct net_client *nc)
{
	struct tap *t = nc->opaque;
	uint64_t one = 1;

	if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("tap %s: wake: %s", t->ifname, strerror(errno));
}

static ssize_t tap_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct tap *t = nc->opaque;
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
		w = writev(t->fd, v, n);
	} while (w < 0 && errno == EINTR);
	/* A full TAP queue drops the frame, as a NIC with a full ring would. */
	return w < 0 ? -1 : (ssize_t)net_iov_size(iov, iovcnt);
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
	if (ioctl(t->fd, TUNSETOFFLOAD, flags) < 0)
		log_warn("tap %s: TUNSETOFFLOAD 0x%x: %s", t->ifname, flags, strerror(errno));
}

static void tap_close(struct net_client *nc)
{
	struct tap *t = nc->opaque;
	char err[320];

	if (t->fd >= 0)
		loop_remove(t->loop, t->fd);
	if (t->wake_fd >= 0) {
		loop_remove(t->loop, t->wake_fd);
		close(t->wake_fd);
	}
	/* QEMU runs the downscript while the interface still exists, then closes it. */
	if (t->downscript[0] && run_script(t->downscript, t->ifname, err, sizeof(err)) < 0)
		log_warn("%s", err);
	if (t->fd >= 0 && t->own_fd)
		close(t->fd);
	free(t);
}

static const struct net_client_ops tap_ops = {
	.type = "tap",
	.receive = tap_receive,
	.wake = tap_wake,
	.set_offload = tap_set_offload,
	.close = tap_close,
};

/* Opens /dev/net/tun as a TAP named like ifname ("" lets the kernel pick tapN). */
static int tap_create(struct tap *t, const char *ifname, int vnet_hdr, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	unsigned features = 0;
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
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (vnet_hdr != 0 && (features & IFF_VNET_HDR))
		ifr.ifr_flags |= IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname[0] ? ifname : "tap%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		snprintf(err, errlen, "could not configure /dev/net/tun (%s): %s", ifr.ifr_name,
			 strerror(errno));
		close(fd);
		return -1;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	t->fd = fd;
	t->own_fd = true;
	t->nc.has_vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
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
	t->fd = (int)fd;
	t->nc.has_vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
	fcntl(t->fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

static bool script_wanted(const char *v)
{
	return v && *v && strcmp(v, "no") != 0;
}

struct net_client *net_tap_open(const char *text, const char *id, struct net_open_ctx *ctx)
{
	char perr[160];
	struct opts *o = opts_parse(text, NULL, perr, sizeof(perr));
	struct tap *t = NULL;
	const char *ifname, *fdstr, *script, *downscript, *vhost, *queues;
	bool vhost_on = false, vhostforce = false, vnet = true;
	int vnet_hdr = -1;	/* -1: if the kernel can */
	int sz = NET_VNET_HDR_LEN;

	if (!o) {
		snprintf(ctx->err, ctx->errlen, "%s", perr);
		return NULL;
	}
	opts_get(o, "id");
	opts_get(o, "name");
	opts_get(o, "vlan");
	opts_get(o, "sndbuf");		/* QEMU's send buffer limit; writes here never queue */
	ifname = opts_get(o, "ifname");
	fdstr = opts_get(o, "fd");
	script = opts_get(o, "script");
	downscript = opts_get(o, "downscript");
	vhost = opts_get(o, "vhost");
	queues = opts_get(o, "queues");
	if (opts_get(o, "vnet_hdr")) {
		if (!opts_get_bool(o, "vnet_hdr", &vnet))
			goto bad_bool;
		vnet_hdr = vnet;
	}
	if (!opts_get_bool(o, "vhost", &vhost_on) || !opts_get_bool(o, "vhostforce", &vhostforce))
		goto bad_bool;
	if (opts_get(o, "vhostfd") || opts_get(o, "vhostfds"))
		vhost_on = true;
	if (opts_get(o, "fds") || opts_get(o, "helper") || opts_get(o, "br")) {
		snprintf(ctx->err, ctx->errlen, "fds=, helper= and br= are not supported; use fd= or "
			 "ifname= with script=");
		goto fail;
	}
	const char *unused = opts_first_unused(o);
	if (unused) {
		snprintf(ctx->err, ctx->errlen, "Invalid parameter '%s'", unused);
		goto fail;
	}
	(void)vhost;
	if (queues && strcmp(queues, "1") != 0) {
		snprintf(ctx->err, ctx->errlen, "queues=%s: multiqueue TAP is not supported yet "
			 "(queues=1)", queues);
		goto fail;
	}
	if (vhost_on || vhostforce) {
		/* Say exactly why, rather than silently falling back to userspace. */
		if (access("/dev/vhost-net", F_OK) < 0)
			snprintf(ctx->err, ctx->errlen, "vhost=on: /dev/vhost-net: %s (load the vhost_net "
				 "module, or use vhost=off)", strerror(errno));
		else
			snprintf(ctx->err, ctx->errlen, "vhost=on: /dev/vhost-net is present, but "
				 "kestrel does not drive vhost-net yet; use vhost=off");
		goto fail;
	}
	if (ifname && strlen(ifname) >= IFNAMSIZ) {
		snprintf(ctx->err, ctx->errlen, "ifname=%s is longer than %d characters", ifname,
			 IFNAMSIZ - 1);
		goto fail;
	}
	if (fdstr && (ifname || script_wanted(script) || script_wanted(downscript))) {
		snprintf(ctx->err, ctx->errlen, "ifname=, script= and downscript= are invalid with fd=");
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(ctx->err, ctx->errlen, "out of memory");
		goto fail;
	}
	t->fd = t->wake_fd = -1;
	t->loop = ctx->loop;
	t->nc.ops = &tap_ops;
	t->nc.opaque = t;
	snprintf(t->nc.id, sizeof(t->nc.id), "%s", id);
	if (fdstr ? tap_adopt(t, fdstr, vnet_hdr, ctx->err, ctx->errlen) :
		    tap_create(t, ifname ? ifname : "", vnet_hdr, ctx->err, ctx->errlen))
		goto fail;
	if (t->nc.has_vnet_hdr && ioctl(t->fd, TUNSETVNETHDRSZ, &sz) < 0) {
		snprintf(ctx->err, ctx->errlen, "%s: TUNSETVNETHDRSZ: %s", t->ifname, strerror(errno));
		goto fail;
	}
	if (!fdstr) {
		if (!script)
			script = DEFAULT_IFUP;
		if (!downscript)
			downscript = DEFAULT_IFDOWN;
		if (script_wanted(script) && run_script(script, t->ifname, ctx->err, ctx->errlen) < 0)
			goto fail;
		if (script_wanted(downscript))
			snprintf(t->downscript, sizeof(t->downscript), "%s", downscript);
	}
	t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->wake_fd < 0 || loop_add(t->loop, t->fd, EPOLLIN, tap_readable, t) < 0 ||
	    loop_add(t->loop, t->wake_fd, EPOLLIN, tap_woken, t) < 0) {
		snprintf(ctx->err, ctx->errlen, "%s: event loop: %s", t->ifname, strerror(errno));
		loop_remove(t->loop, t->fd);
		t->downscript[0] = '\0';
		goto fail;
	}
	t->reading = true;
	log_debug("tap %s: open, vnet header %s", t->ifname, t->nc.has_vnet_hdr ? "on" : "off");
	opts_free(o);
	return &t->nc;

bad_bool:
	snprintf(ctx->err, ctx->errlen, "vnet_hdr=, vhost= and vhostforce= take on or off");
fail:
	if (t) {
		if (t->own_fd && t->fd >= 0)
			close(t->fd);
		if (t->wake_fd >= 0)
			close(t->wake_fd);
		free(t);
	}
	opts_free(o);
	return NULL;
}
