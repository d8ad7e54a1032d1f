/*
 * Network back ends and the links between them (QEMU's NetClientState, cut
 * down).  A net_client is one end of a point-to-point link: a NIC, a TAP, a
 * user-mode stack, a socket, or one port of a hub.  A frame sent by a client
 * is handed to its peer's receive().  Back ends know nothing of the device
 * that uses them.
 *
 * Threads: back ends read their file descriptors on the main loop and call
 * the peer's receive() there; a NIC transmits from whichever thread serves
 * its queue, so a back end's receive() must be safe to call from any thread
 * (a TAP's is a writev; user mode hands frames over to the main loop).
 */
#ifndef KESTREL_NET_NET_H
#define KESTREL_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/loop.h"

#define NET_ID_MAX 32
#define NET_MAX_QUEUES 3	/* multiqueue channels: virtio-net pairs fit in 8 virtqueues */
#define NET_MAX_CLIENTS 16
#define NET_VNET_HDR_LEN 12	/* struct virtio_net_hdr_v1, virtio 1.2 §5.1.6 */
#define NET_MAX_FRAME (65536 + NET_VNET_HDR_LEN)

/* virtio 1.2 §5.1.6: the header that travels in front of frames when both ends agree. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

struct net_client;
struct vhost_net;

struct net_client_ops {
	const char *type;	/* "tap", "user", "socket", "hub", "nic" */
	/*
	 * A frame for this client from its peer, with a virtio_net_hdr in front
	 * when both ends use one (net_use_vnet_hdr).  Returns the bytes taken,
	 * 0 when the client cannot take frames now (the sender keeps the frame
	 * and waits for net_client_wake), or -1 when the frame was dropped.
	 */
	ssize_t (*receive)(struct net_client *nc, const struct iovec *iov, int iovcnt);
	/*
	 * Optional, for multiqueue clients: the same, for the sender's channel
	 * queue (a TAP queue, a virtio-net queue pair); receive() is channel 0.
	 */
	ssize_t (*receive_queue)(struct net_client *nc, unsigned queue, const struct iovec *iov,
				 int iovcnt);
	/* The peer that refused a frame can take frames again. */
	void (*wake)(struct net_client *nc);
	/* Guest offloads (TUNSETOFFLOAD); only for clients with a vnet header. */
	void (*set_offload)(struct net_client *nc, bool csum, bool tso4, bool tso6, bool ecn);
	void (*close)(struct net_client *nc);
	/*
	 * Optional, for back ends that vhost-net can serve (a TAP with vhost=on):
	 * channel queue's vhost instance and the descriptor the kernel moves its
	 * frames on; NULL when there is none.
	 */
	struct vhost_net *(*vhost)(struct net_client *nc, unsigned queue, int *backend_fd);
	/* The kernel serves channel queue now (on) or no longer: stop or resume reading it. */
	void (*vhost_running)(struct net_client *nc, unsigned queue, bool on);
	/* Multiqueue with vhost: attach or detach channel queue from the interface. */
	void (*enable_queue)(struct net_client *nc, unsigned queue, bool on);
};

struct net_client {
	const struct net_client_ops *ops;
	char id[NET_ID_MAX];		/* netdev id or -net name */
	struct net_client *peer;
	bool has_vnet_hdr;		/* can carry a virtio_net_hdr */
	bool using_vnet_hdr;		/* both ends agreed to (set by the NIC) */
	bool user_mode;			/* frames stay inside this process (slirp) */
	unsigned queues;		/* parallel channels (multiqueue TAP); 0 or 1: one */
	void *opaque;			/* the back end's state */
	char info[128];			/* QEMU's info_str, for "info network": "net=10.0.2.0,..." */
};

/* Options shared by every back end's open function. */
struct net_open_ctx {
	struct loop *loop;		/* the main loop, where back ends read */
	const char *vm_name;		/* for messages and script environments */
	char *err;
	size_t errlen;
	/*
	 * Only validate the options: the back end returns NULL with err left
	 * empty once they are good, before it opens, creates or runs anything.
	 */
	bool check_only;
};

/* Frames to the peer; see net_client_ops.receive.  No peer: dropped (-1). */
ssize_t net_send(struct net_client *nc, const struct iovec *iov, int iovcnt);
/* The same on channel queue, for peers that have several (else channel 0). */
ssize_t net_send_queue(struct net_client *nc, unsigned queue, const struct iovec *iov, int iovcnt);
/* Tells nc's peer that nc can take frames again. */
void net_wake_peer(struct net_client *nc);
void net_connect(struct net_client *a, struct net_client *b);
void net_client_close(struct net_client *nc);
/* Total bytes in an iovec. */
size_t net_iov_size(const struct iovec *iov, int iovcnt);

/* Back ends: each parses its own QEMU option list (without the type word). */
struct net_client *net_tap_open(const char *opts, const char *id, struct net_open_ctx *ctx);
struct net_client *net_user_open(const char *opts, const char *id, struct net_open_ctx *ctx);
struct net_client *net_socket_open(const char *opts, const char *id, struct net_open_ctx *ctx);
/*
 * A back end's option list with the keys of the -net/-netdev wrapper (id,
 * name, vlan) taken; NULL with the syntax error in ctx->err.
 */
struct opts;
struct opts *net_opts_parse(const char *text, struct net_open_ctx *ctx);
/* 0, or -1 with "Invalid parameter 'KEY'" in ctx->err for a key no one asked for. */
int net_opts_reject_unused(const struct opts *o, struct net_open_ctx *ctx);
/* mcast= / udp= (dgram.c), from the option list net_socket_open parsed. */
struct net_client *net_dgram_open(struct opts *o, const char *id, struct net_open_ctx *ctx);
/* -netdev bridge,br=: a TAP put on a bridge in-process (qemu-bridge-helper's job). */
struct net_client *net_bridge_open(const char *opts, const char *id, struct net_open_ctx *ctx);

/*
 * libslirp's connection table (slirp_connection_info, as "info usernet"
 * prints it) of a user-mode client; malloc'd, NULL for any other client.
 */
char *net_user_connection_info(struct net_client *nc);

/* A hub (-net vlan=N): frames from one port go to every other port. */
struct net_hub;
struct net_hub *net_hub_new(int vlan);
/* A new port of the hub, to be connected to a NIC or a back end; NULL when full. */
struct net_client *net_hub_port(struct net_hub *hub);
int net_hub_vlan(const struct net_hub *hub);
/* Its ports, in creation order ("hub0port0", ...), for "info network". */
unsigned net_hub_nports(const struct net_hub *hub);
struct net_client *net_hub_get_port(struct net_hub *hub, unsigned i);
void net_hub_free(struct net_hub *hub);

/* MAC addresses (mac.c). */
bool net_mac_parse(const char *s, uint8_t mac[6]);
void net_mac_format(const uint8_t mac[6], char buf[18]);
/* Stable locally administered 52:54:00:xx:xx:xx from the VM's identity and NIC index. */
void net_mac_derive(const char *name, const uint8_t *uuid, unsigned index, uint8_t mac[6]);
/*
 * Claims mac for this process (an OFD lock on a file under dir); -1 with a
 * message naming the holder when another live process has it.  The claim
 * lasts while *fd stays open.
 */
int net_mac_claim(const char *dir, const uint8_t mac[6], const char *vm_name, int *fd,
		  char *err, size_t errlen);

#define NET_MAC_LOCK_DIR "/run/kestrel/mac"

#endif
