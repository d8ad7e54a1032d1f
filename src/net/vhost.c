/*
 * The vhost-net ioctl sequence (Documentation/virtio in the kernel tree;
 * drivers/vhost/net.c and vhost.c are the other side).  Nothing here knows
 * about virtio devices or KVM: the caller passes host addresses of rings and
 * RAM, eventfds and the TAP's descriptor.
 */
#include "net/vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int real_ioctl(void *ctx, int fd, unsigned long request, void *arg)
{
	(void)ctx;
	return ioctl(fd, request, arg);
}

static int call(struct vhost_net *v, unsigned long request, void *arg)
{
	int rc;

	do {
		rc = v->ioctl(v->ctx, v->fd, request, arg);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

int vhost_net_open(struct vhost_net *v, int fd, vhost_ioctl_fn fn, void *ctx, char *err,
		   size_t errlen)
{
	bool opened = fd < 0;

	*v = (struct vhost_net){ .fd = -1, .ioctl = fn ? fn : real_ioctl, .ctx = ctx };
	if (opened) {
		fd = open(VHOST_NET_DEVICE, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "%s: %s", VHOST_NET_DEVICE, strerror(errno));
			return -1;
		}
	}
	v->fd = fd;
	/* The kernel's worker then maps guest RAM through this process's mm. */
	if (call(v, VHOST_SET_OWNER, NULL) < 0) {
		snprintf(err, errlen, "%s: VHOST_SET_OWNER: %s", VHOST_NET_DEVICE, strerror(errno));
		goto fail;
	}
	if (call(v, VHOST_GET_FEATURES, &v->features) < 0) {
		snprintf(err, errlen, "%s: VHOST_GET_FEATURES: %s", VHOST_NET_DEVICE, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (opened)
		close(fd);
	v->fd = -1;
	return -1;
}

uint64_t vhost_net_ack(const struct vhost_net *v, uint64_t driver_features, bool backend_hdr)
{
	uint64_t f = driver_features & v->features & VHOST_NET_RING_FEATURES;

	/*
	 * With the header on the TAP (TUNSETVNETHDRSZ) the kernel passes it
	 * through; otherwise it must add and strip it itself.
	 */
	return backend_hdr ? f : f | VHOST_NET_HDR_FEATURE;
}

static int set_backend(struct vhost_net *v, unsigned index, int fd)
{
	struct vhost_vring_file f = { .index = index, .fd = fd };

	return call(v, VHOST_NET_SET_BACKEND, &f);
}

static void unbind_ring(struct vhost_net *v, unsigned index)
{
	struct vhost_vring_file f = { .index = index, .fd = VHOST_FILE_UNBIND };

	/* Drops the kernel's references to our eventfds; nothing to report if it cannot. */
	call(v, VHOST_SET_VRING_KICK, &f);
	call(v, VHOST_SET_VRING_CALL, &f);
}

static int setup_ring(struct vhost_net *v, unsigned index, const struct vhost_ring *r,
		      const char **step)
{
	struct vhost_vring_state num = { .index = index, .num = r->num };
	struct vhost_vring_state base = { .index = index, .num = r->base };
	struct vhost_vring_addr addr = {
		.index = index,
		.desc_user_addr = (uint64_t)(uintptr_t)r->desc,
		.avail_user_addr = (uint64_t)(uintptr_t)r->avail,
		.used_user_addr = (uint64_t)(uintptr_t)r->used,
	};
	struct vhost_vring_file kick = { .index = index, .fd = r->kick_fd };
	struct vhost_vring_file callfd = { .index = index, .fd = r->call_fd };

	if ((*step = "VHOST_SET_VRING_NUM", call(v, VHOST_SET_VRING_NUM, &num) < 0) ||
	    (*step = "VHOST_SET_VRING_BASE", call(v, VHOST_SET_VRING_BASE, &base) < 0) ||
	    (*step = "VHOST_SET_VRING_ADDR", call(v, VHOST_SET_VRING_ADDR, &addr) < 0) ||
	    (*step = "VHOST_SET_VRING_KICK", call(v, VHOST_SET_VRING_KICK, &kick) < 0) ||
	    (*step = "VHOST_SET_VRING_CALL", call(v, VHOST_SET_VRING_CALL, &callfd) < 0))
		return -1;
	return 0;
}

int vhost_net_start(struct vhost_net *v, uint64_t features, const struct vhost_region *regions,
		    unsigned nr_regions, const struct vhost_ring rings[2], int backend_fd, char *err,
		    size_t errlen)
{
	struct {
		struct vhost_memory hdr;
		struct vhost_memory_region r[VHOST_NET_MAX_REGIONS];
	} mem = { 0 };
	const char *step = "VHOST_SET_FEATURES";
	unsigned rings_done = 0, touched = 0, backends = 0;

	if (v->fd < 0 || v->running || nr_regions == 0 || nr_regions > VHOST_NET_MAX_REGIONS) {
		snprintf(err, errlen, "vhost-net: not open, already running or bad memory layout");
		return -1;
	}
	if (call(v, VHOST_SET_FEATURES, &features) < 0)
		goto fail;
	mem.hdr.nregions = nr_regions;
	for (unsigned i = 0; i < nr_regions; i++)
		mem.r[i] = (struct vhost_memory_region){
			.guest_phys_addr = regions[i].gpa,
			.memory_size = regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)regions[i].host,
		};
	step = "VHOST_SET_MEM_TABLE";
	if (call(v, VHOST_SET_MEM_TABLE, &mem) < 0)
		goto fail;
	for (; rings_done < 2; rings_done++) {
		touched = rings_done + 1;	/* a ring that fails half way may hold an eventfd */
		if (setup_ring(v, rings_done, &rings[rings_done], &step) < 0)
			goto fail;
	}
	/* Last: from here the kernel moves frames. */
	step = "VHOST_NET_SET_BACKEND";
	for (; backends < 2; backends++)
		if (set_backend(v, backends, backend_fd) < 0)
			goto fail;
	v->running = true;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s: %s", VHOST_NET_DEVICE, step, strerror(errno));
	while (backends > 0)
		set_backend(v, --backends, VHOST_FILE_UNBIND);
	for (unsigned i = 0; i < touched; i++)
		unbind_ring(v, i);
	return -1;
}

int vhost_net_stop(struct vhost_net *v, uint16_t base[2])
{
	int rc = 0;

	if (!v->running)
		return 0;
	/* Detach the TAP first, so neither ring moves while we read where they are. */
	for (unsigned i = 0; i < 2; i++)
		if (set_backend(v, i, VHOST_FILE_UNBIND) < 0)
			rc = -1;
	for (unsigned i = 0; i < 2; i++) {
		struct vhost_vring_state s = { .index = i };
		if (call(v, VHOST_GET_VRING_BASE, &s) < 0)
			rc = -1;
		base[i] = (uint16_t)s.num;
	}
	for (unsigned i = 0; i < 2; i++)
		unbind_ring(v, i);
	v->running = false;
	return rc;
}

void vhost_net_close(struct vhost_net *v)
{
	uint16_t base[2];

	if (v->fd < 0)
		return;
	vhost_net_stop(v, base);
	close(v->fd);
	v->fd = -1;
}
