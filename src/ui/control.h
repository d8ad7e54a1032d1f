/*
 * What the monitors (HMP and QMP) may see and do to the machine.  The
 * monitors know nothing of KVM or the VM object: main() fills this table
 * with functions that act on the running VM.  Everything here runs on the
 * main thread.
 */
#ifndef KESTREL_UI_CONTROL_H
#define KESTREL_UI_CONTROL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/throttle.h"

struct input;

/* QEMU's RunState names, as query-status and "info status" print them. */
enum run_state {
	RUN_STATE_RUNNING,	/* "running" */
	RUN_STATE_PAUSED,	/* "paused": stop */
	RUN_STATE_SHUTDOWN,	/* "shutdown": powered off under -no-shutdown */
	RUN_STATE_INTERNAL_ERROR,	/* "internal-error" */
	RUN_STATE_IO_ERROR,	/* "io-error": a disk's werror/rerror=stop; cont retries */
	RUN_STATE_PRELAUNCH,	/* "prelaunch": -S, before the first cont */
	RUN_STATE_DEBUG,	/* "debug": gdb holds the VM stopped */
};

const char *run_state_name(enum run_state state);

struct cpu_info {
	unsigned cpu_index;
	long thread_id;		/* host thread ID of the vCPU */
	unsigned socket_id, core_id, thread_index;
};

struct chardev_info {
	const char *label;	/* "serial0", "compat_monitor0", ... */
	const char *filename;	/* QEMU's description: "stdio", "unix:/path,server=on", ... */
	bool frontend_open;
};

/* One drive, for query-block / "info block". */
struct drive_info {
	const char *device;	/* the -drive id */
	char node_name[32];	/* a -blockdev node-name, or "#block001" for a -drive */
	char qdev[80];		/* the device it is attached to */
	/* A -blockdev format node's file node (query-named-block-nodes); "": none named. */
	char file_node[32];
	const char *file_driver;	/* "file" or "host_device" */
	uint64_t file_size;		/* the file's length (the node's virtual-size) */
	const char *file;	/* never NULL: empty drives are refused at start-up */
	const char *format;
	bool readonly;
	bool cache_direct, cache_no_flush;	/* from cache= */
	uint64_t virtual_size;
	struct block_stats stats;	/* query-blockstats / "info blockstats" */
	uint64_t now_ns;		/* CLOCK_MONOTONIC when stats were read: idle time */
	bool throttled;			/* I/O limits on: limits and group are valid */
	struct throttle_config limits;
	char group[32];
};

/*
 * One net client (QEMU's NetClientState): a NIC, a back end, a hub port; in
 * QEMU's net_clients order (back ends, then NICs, then hub ports by hub),
 * for "info network", "info usernet" and query-rx-filter.
 */
#define CONTROL_NET_MACS 64
struct net_info {
	char name[32];		/* "virtio-net-pci.0", "n0", "hub0port1" */
	const char *type;	/* QEMU's NetClientDriver: "nic", "user", "tap", "socket", "hubport" */
	char info[160];		/* QEMU's info_str: "model=e1000,macaddr=...", "net=10.0.2.0,..." */
	int peer;		/* the peer's index in the list; -1: none */
	int hub;		/* a hub port's hub id; -1 otherwise */
	/* A virtio-net NIC's receive filter (query-rx-filter); rx_filter false: none. */
	bool rx_filter;
	uint8_t mac[6];
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast, uni_overflow, multi_overflow;
	unsigned uni_entries, multi_entries;	/* mac_table: unicast first */
	uint8_t mac_table[CONTROL_NET_MACS][6];
};

/* One PCI function, for query-pci / "info pci". */
struct pci_info {
	unsigned slot;
	unsigned function;	/* 0-7 */
	uint16_t vendor, device, subsys_vendor, subsys;
	uint32_t class_code;	/* class << 16 | subclass << 8 | prog-if */
	uint8_t irq, pin;	/* pin 0: none, 1: INTA# */
	struct {
		uint64_t addr, size;
		bool io;
		bool prefetch;		/* memory BAR bit 3 (QEMU prints it) */
	} bars[6];
};

/* A -device given id=: /machine/peripheral/ID (qom-list, qom-get). */
struct peripheral_info {
	char id[32];
	const char *type;	/* its QOM type: "virtio-blk-pci", ... */
};

/* The balloon's guest statistics (qom-get guest-stats), QEMU 7.2's ten tags. */
#define CONTROL_BALLOON_STATS 10
struct balloon_stats_info {
	uint64_t stats[CONTROL_BALLOON_STATS];	/* UINT64_MAX: the guest gave none */
	int64_t last_update;			/* seconds since the epoch; 0: never */
	uint64_t polling_interval;
};

/* One block export (QMP query-block-exports, qapi/block-export.json BlockExportInfo). */
struct export_info {
	char id[128];
	char node_name[128];
	char name[128];			/* the NBD export name */
	bool writable;
};

/* nbd-server-start's address (SocketAddressLegacy): inet host/port or a unix path. */
struct nbd_listen {
	bool is_unix;
	const char *host, *port, *path;
};

struct display;
struct sdl_options;
struct vnc;

struct control {
	void *opaque;
	/* The screen (screendump) and the VNC server (NULL: none), set by the process. */
	struct display *display;
	const struct sdl_options *sdl;	/* -display sdl's window (query-display-options); NULL: none */
	struct vnc *vnc;

	/* Identity. */
	const char *(*name)(void *opaque);		/* NULL when -name was not given */
	bool (*uuid)(void *opaque, uint8_t out[16]);	/* false: all zeroes, as QEMU */

	/* State. */
	enum run_state (*run_state)(void *opaque);
	unsigned (*cpu_count)(void *opaque);
	bool (*cpu_info)(void *opaque, unsigned index, struct cpu_info *out);
	/*
	 * Introspection (ui/qmp_introspect.c).  machine: the -machine type's
	 * canonical name ("none" for the QMP-only machine); NULL: pc-i440fx-7.2.
	 * kvm_enabled: whether the KVM accelerator is in use; NULL: it is, as for
	 * every machine that runs a guest.  cpu_type: the vCPUs' QOM type
	 * ("host-x86_64-cpu"); NULL: host-x86_64-cpu, Kestrel's default.
	 */
	const char *(*machine)(void *opaque);
	bool (*kvm_enabled)(void *opaque);
	const char *(*cpu_type)(void *opaque);
	/* Drives and PCI functions; each returns how many there are (may exceed max). */
	unsigned (*blocks)(void *opaque, struct drive_info *out, unsigned max);
	unsigned (*pci_devices)(void *opaque, struct pci_info *out, unsigned max);
	/* The devices with an id= (-device order, the balloon last); how many (may exceed max). */
	unsigned (*peripherals)(void *opaque, struct peripheral_info *out, unsigned max);
	/* Net clients, as struct net_info says; returns how many there are (may exceed max). */
	unsigned (*net_clients)(void *opaque, struct net_info *out, unsigned max);
	/* libslirp's connection table of user-mode client name (malloc'd), NULL if none. */
	char *(*usernet)(void *opaque, const char *name);
	/* Character devices, in creation order; returns how many there are. */
	unsigned (*chardevs)(void *opaque, struct chardev_info *out, unsigned max);
	/* Writes QEMU "info registers" text for one vCPU; false if it cannot. */
	bool (*dump_registers)(void *opaque, unsigned index, FILE *out);
	/* "info mtree" / "info qtree" text; false for a topic it does not know. */
	bool (*describe)(void *opaque, const char *topic, FILE *out);
	/* Reads guest-physical memory (HMP xp); -1 when the range is not RAM. */
	int (*read_memory)(void *opaque, uint64_t gpa, void *buf, size_t len);

	/* Actions; each returns 0, or -1 with a message in err. */
	int (*stop)(void *opaque, char *err, size_t errlen);
	int (*cont)(void *opaque, char *err, size_t errlen);
	int (*system_reset)(void *opaque, char *err, size_t errlen);
	int (*system_powerdown)(void *opaque, char *err, size_t errlen);
	/*
	 * QMP block_set_io_throttle: new limits for drive device (checked here:
	 * QEMU's messages), in group (NULL: its group now, or the drive's id);
	 * limits without any rate take the drive out of throttling.
	 */
	int (*set_io_throttle)(void *opaque, const char *device, const char *group,
			       const struct throttle_config *limits, char *err, size_t errlen);
	void (*quit)(void *opaque);
	/* HMP gdbserver [DEV|none] (NULL DEV: tcp::1234); 0 or -1, QEMU's message in msg. */
	int (*gdbserver)(void *opaque, const char *dev, char *msg, size_t msglen);

	/*
	 * The balloon (NULL members or -1 with err when there is none: "No
	 * balloon device has been activated").  Sizes in bytes, as QMP has them.
	 */
	int (*balloon)(void *opaque, uint64_t target, char *err, size_t errlen);
	int (*query_balloon)(void *opaque, uint64_t *actual, char *err, size_t errlen);
	/* Whether path (a QOM path) names the balloon; then its statistics. */
	bool (*balloon_stats)(void *opaque, const char *path, struct balloon_stats_info *out);
	bool (*balloon_set_interval)(void *opaque, const char *path, uint64_t seconds);

	/*
	 * The NBD server of the VM's disks (QMP nbd-server-*, block-export-*):
	 * exports name a drive (its id or node name), never a second open of
	 * its file.  0, or -1 with QEMU's message in err.
	 */
	int (*nbd_server_start)(void *opaque, const struct nbd_listen *addr, const char *tls_creds,
				char *err, size_t errlen);
	int (*nbd_server_stop)(void *opaque, char *err, size_t errlen);
	/* id NULL: the export's name is its id (nbd-server-add); name NULL: the node's. */
	int (*export_add)(void *opaque, const char *id, const char *node, const char *name,
			  const char *description, bool writable, char *err, size_t errlen);
	int (*export_del)(void *opaque, const char *id, char *err, size_t errlen);
	unsigned (*exports)(void *opaque, struct export_info *out, unsigned max);
	/*
	 * Input routing (HMP sendkey/mouse_*, info mice; QMP send-key,
	 * input-send-event, query-mice); NULL: none.  send_keys presses qnums in
	 * order and releases them in reverse hold_ms later; NULL: at once.
	 */
	struct input *input;
	void (*send_keys)(void *opaque, const unsigned *qnums, unsigned n, unsigned hold_ms);
};

/*
 * Whether the machine has a net client called name (a NIC only, when
 * nic_only): set_link and device_del say "not found" only when it has not,
 * and refuse by name what they cannot do to one it has.  -1: out of memory.
 */
#define CONTROL_NET_MAX 64
static inline int control_has_net_client(const struct control *ctl, const char *name,
					 bool nic_only)
{
	struct net_info *nc;
	unsigned n;
	int found = 0;

	if (!ctl->net_clients)
		return 0;
	nc = calloc(CONTROL_NET_MAX, sizeof(*nc));
	if (!nc)
		return -1;
	n = ctl->net_clients(ctl->opaque, nc, CONTROL_NET_MAX);
	for (unsigned i = 0; i < n && i < CONTROL_NET_MAX && !found; i++)
		found = !strcmp(nc[i].name, name) && (!nic_only || !strcmp(nc[i].type, "nic"));
	free(nc);
	return found;
}

#endif
