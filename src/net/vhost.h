/*
 * vhost-net (Linux's /dev/vhost-net, <linux/vhost.h>): the kernel moves a
 * virtio-net queue pair's frames between guest RAM and a TAP itself, so a
 * frame costs no trip through this process.  This file only speaks the
 * ioctl protocol; which rings, which memory and which descriptors to hand
 * over is the device's business (virtio/net.c).  The ioctl function can be
 * replaced, so the sequence is unit-testable on hosts without the module.
 *
 * One struct vhost_net serves one queue pair: vring index 0 receives,
 * 1 transmits (the kernel's VHOST_NET_VQ_RX / VHOST_NET_VQ_TX).
 */
#ifndef KESTREL_NET_VHOST_H
#define KESTREL_NET_VHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VHOST_NET_DEVICE "/dev/vhost-net"
#define VHOST_NET_RX 0
#define VHOST_NET_TX 1
#define VHOST_NET_MAX_REGIONS 8

/* Ring features the kernel implements for the device (the others stay the VMM's). */
#define VHOST_NET_RING_FEATURES ((1ULL << 15) /* VIRTIO_NET_F_MRG_RXBUF */ | \
				 (1ULL << 28) /* VIRTIO_F_INDIRECT_DESC */ | \
				 (1ULL << 29) /* VIRTIO_F_EVENT_IDX */ | \
				 (1ULL << 32) /* VIRTIO_F_VERSION_1 */)
/* The kernel adds and strips the virtio_net_hdr (a back end without IFF_VNET_HDR). */
#define VHOST_NET_HDR_FEATURE (1ULL << 27)	/* VHOST_NET_F_VIRTIO_NET_HDR */

typedef int (*vhost_ioctl_fn)(void *ctx, int fd, unsigned long request, void *arg);

struct vhost_net {
	int fd;			/* -1: closed */
	uint64_t features;	/* what the kernel offers (VHOST_GET_FEATURES) */
	bool running;		/* rings handed to the kernel */
	vhost_ioctl_fn ioctl;
	void *ctx;
};

/* One guest RAM region as the host maps it. */
struct vhost_region {
	uint64_t gpa;
	uint64_t size;
	void *host;
};

/* One split ring, by host address (§2.7), and where it starts. */
struct vhost_ring {
	uint16_t num;		/* queue size */
	uint16_t base;		/* next avail index to take */
	void *desc, *avail, *used;
	int kick_fd;		/* the guest's doorbell (an ioeventfd) */
	int call_fd;		/* signalled to interrupt the guest */
};

/*
 * Opens /dev/vhost-net (fd < 0) or adopts fd (vhostfd=), becomes its owner
 * and reads its features.  fn NULL: the real ioctl(2).  Returns -1 with the
 * device and errno in err.
 */
int vhost_net_open(struct vhost_net *v, int fd, vhost_ioctl_fn fn, void *ctx, char *err,
		   size_t errlen);

/* The features to VHOST_SET_FEATURES for what the driver took (backend_hdr: the TAP has one). */
uint64_t vhost_net_ack(const struct vhost_net *v, uint64_t driver_features, bool backend_hdr);

/*
 * Hands both rings and the back end's descriptor to the kernel: features,
 * memory table, then per ring NUM, BASE, ADDR, KICK, CALL, then the back end
 * on each ring.  On failure everything done is undone and err says which
 * step failed.
 */
int vhost_net_start(struct vhost_net *v, uint64_t features, const struct vhost_region *regions,
		    unsigned nr_regions, const struct vhost_ring rings[2], int backend_fd, char *err,
		    size_t errlen);

/*
 * Takes the rings back: detaches the back end from both, then reads where
 * the kernel stopped in each avail ring (base[VHOST_NET_RX/TX]).  Returns -1
 * when the kernel refused a step (the bases are then unknown).
 */
int vhost_net_stop(struct vhost_net *v, uint16_t base[2]);

void vhost_net_close(struct vhost_net *v);

#endif
