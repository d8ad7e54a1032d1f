/* virtio-net (virtio 1.2 §5.1): the device state, linked to a network back end. */
#ifndef KESTREL_VIRTIO_NET_H
#define KESTREL_VIRTIO_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/net.h"
#include "virtio/virtio.h"

#define VIRTIO_NET_MAC_TABLE 64		/* filter entries, as QEMU's MAC_TABLE_ENTRIES */
#define VIRTIO_NET_TX_BATCH 32

struct virtio_net {
	struct net_client nc;		/* this NIC's end of the link to its back end */
	struct virtio_device *vdev;	/* NULL while no VM is built */
	uint8_t mac[6];
	/* Receive filter (VIRTIO_NET_CTRL_RX / CTRL_MAC), under vdev->lock. */
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	uint8_t mac_table[VIRTIO_NET_MAC_TABLE][6];
	unsigned uni_entries, multi_entries;
	bool uni_overflow, multi_overflow;
	bool offloads_set;		/* the negotiated guest offloads reached the back end */
	bool rx_waiting;		/* a frame was refused for want of buffers */
	unsigned max_pairs;		/* queue pairs the device has (mq=on: the TAP's queues) */
	unsigned curr_pairs;		/* in use (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) */
	pthread_mutex_t tx_lock[NET_MAX_QUEUES];	/* one transmit round per pair at a time */
	struct vq_request *tx_reqs;	/* [NET_MAX_QUEUES][VIRTIO_NET_TX_BATCH] */
	uint64_t rx_frames, tx_frames, rx_dropped;
	/* vhost-net: pairs whose rings the kernel serves, and their doorbell eventfds. */
	bool vhost_pair[NET_MAX_QUEUES];
	int vhost_kick[NET_MAX_QUEUES][2];
};

/*
 * Sets up the NIC's state and its link end, with pairs queue pairs (1 to
 * NET_MAX_QUEUES; the device then has 2 * pairs + 1 queues); free with
 * virtio_net_release.
 */
int virtio_net_init(struct virtio_net *n, const char *name, const uint8_t mac[6], unsigned pairs);
/* Binds a freshly created device to the NIC (offers follow the back end's vnet header). */
void virtio_net_attach(struct virtio_net *n, struct virtio_device *vdev);
/* The VM is going away: no more frames into its RAM. */
void virtio_net_detach(struct virtio_net *n);
void virtio_net_release(struct virtio_net *n);

#endif
