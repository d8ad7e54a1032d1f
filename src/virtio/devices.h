/* The virtio device models (one file each) and what they need to be created. */
#ifndef KESTREL_VIRTIO_DEVICES_H
#define KESTREL_VIRTIO_DEVICES_H

#include "block/aio.h"
#include "block/block.h"
#include "chardev/chardev.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "core/iothread.h"

extern const struct virtio_device_ops virtio_rng_ops;
extern const struct virtio_device_ops virtio_blk_ops;
extern const struct virtio_device_ops virtio_console_ops;
extern const struct virtio_device_ops virtio_net_ops;
extern const struct virtio_device_ops virtio_balloon_ops;

/*
 * Each device plugs itself in at a transport slot (returns -1 after logging
 * why) and lets go through its ops' unplug.
 */
int virtio_rng_plug(const struct virtio_plug *at);

#define VIRTIO_BLK_BATCH BLOCK_AIO_MAX_BATCH	/* requests taken from a queue per round */

/* detect-zeroes=: how a write of only zeroes is turned into a cheaper request. */
enum blk_detect_zeroes {
	BLK_DETECT_ZEROES_OFF,
	BLK_DETECT_ZEROES_ON,		/* written as a zero range */
	BLK_DETECT_ZEROES_UNMAP,	/* ... that may deallocate (needs discard=unmap) */
};

struct blk_round;	/* one batch of requests in flight (blk.c) */

/* virtio-blk: the device state behind virtio_blk_ops. */
/*
 * A failed request under werror=/rerror= (QEMU's blk_error_action): the VMM
 * reports it (BLOCK_IO_ERROR) with the action taken, and for BLOCK_ERR_STOP
 * stops the VM and returns once it runs again: true to retry the request,
 * false to fail it (the VM is being reset or going away).  Called from the
 * I/O thread, which holds the queue meanwhile.
 */
struct blk_error_hook {
	bool (*fn)(void *opaque, const char *drive, bool is_read, int errnum,
		   enum block_error_action action);
	void *opaque;
};

struct virtio_blk {
	struct block_dev *disk;
	const char *drive;		/* the drive's id (BLOCK_IO_ERROR's device) */
	enum block_error_action werror, rerror;
	struct blk_error_hook on_error;
	char serial[21];	/* VIRTIO_BLK_ID_BYTES, NUL-terminated here */
	bool readonly;
	bool discard;
	enum blk_detect_zeroes detect_zeroes;
	enum block_aio_engine engine;	/* aio= */
	uint64_t reads, writes, flushes;	/* updated atomically */
	pthread_mutex_t notify_lock;	/* one round at a time: the I/O thread or a vCPU */
	struct block_aio *aio;		/* opened by virtio_blk_start or the first kick */
	struct blk_round *round;
	uint64_t poll_ns;		/* adaptive busy-poll window after a round (blk.c) */
	uint64_t idle_since_ns;		/* when the last round went to sleep, 0 if it did not */
};

/* What -drive and -device say of one virtio-blk disk. */
struct virtio_blk_conf {
	const char *drive;		/* the drive's id, for messages */
	struct block_dev *disk;		/* NULL: none (no drive of that id) */
	const char *serial;
	bool discard;
	enum blk_detect_zeroes detect_zeroes;
	enum block_aio_engine engine;
	enum block_error_action werror, rerror;	/* werror=, rerror= */
	struct blk_error_hook on_error;
};

/*
 * Sets blk up for conf, opens its request engine (start-up fails if aio=
 * cannot be had) and plugs it in, read-only disks offering VIRTIO_BLK_F_RO.
 */
int virtio_blk_plug(struct virtio_blk *blk, const struct virtio_blk_conf *conf,
		    const struct virtio_plug *at);

/*
 * Opens the request engine (aio=) so that start-up can fail with its reason
 * (io_uring unavailable, no threads); 0, or -1 with a message in err.
 */
int virtio_blk_start(struct virtio_blk *blk, char *err, size_t errlen);
/* Stops the request engine and frees the batch buffers. */
void virtio_blk_release(struct virtio_blk *blk);
/*
 * The next busy-poll window after the queue sat idle for idle_ns with a
 * window of poll_ns, as QEMU adapts its polling: a driver back within the
 * longest window (32 us) earns a longer one (4 us, doubling), one that was
 * not gets half, down to none.
 */
uint64_t virtio_blk_poll_window(uint64_t poll_ns, uint64_t idle_ns);

/* virtio-console (single port): bytes in from the chardev, out to it. */
struct virtio_console {
	struct chardev *cd;
	struct virtio_device *vdev;	/* set once plugged */
	uint8_t pending[4096];		/* host input the guest has no buffer for yet */
	size_t npending;
};

/* Host input for the console (the chardev frontend). */
void virtio_console_input(void *opaque, const uint8_t *buf, size_t len);
int virtio_console_plug(struct virtio_console *con, const struct virtio_plug *at);

/* virtio-net: plugs the NIC's device in and attaches it (virtio_net_attach). */
int virtio_net_plug(struct virtio_net *n, const struct virtio_plug *at);

/* virtio-balloon feature bits (virtio 1.2 §5.5.3). */
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING 5
#define BALLOON_NR_STATS 10	/* the tags QEMU 7.2 knows: swap-in .. hugetlb-failures */
#define BALLOON_PARTIAL_MAX (2ULL << 20)	/* huge pages up to 2 MiB are freed piecemeal */

/*
 * virtio-balloon: what the host asked for and what the guest gave.  It lives
 * as long as the process (a reset rebuilds the VM, not the host's target),
 * like the virtconsole's state; everything below "vdev" is guarded by
 * vdev->lock while a device is plugged, by the main thread otherwise.
 */
struct virtio_balloon {
	bool deflate_on_oom;		/* deflate-on-oom=on: offer the feature */
	bool free_page_reporting;	/* free-page-reporting=on: a reporting queue */
	char id[32];			/* -device id=, for qom-get paths */
	int change_fd;			/* eventfd: "actual" moved; the main loop emits BALLOON_CHANGE */
	struct virtio_device *vdev;	/* set once plugged, NULL between VMs */
	const struct guest_memory *mem;
	uint32_t num_pages;		/* the host's target, in 4 KiB pages */
	uint32_t actual;		/* pages the guest says it holds */
	/* Statistics (§5.5.6.3): the guest's buffer is kept until the next poll. */
	uint64_t stats[BALLOON_NR_STATS];
	int64_t stats_last_update;	/* time(NULL) of the last report, 0: none */
	uint64_t polling_interval;	/* guest-stats-polling-interval, seconds (0: off) */
	bool stats_held;
	uint16_t stats_head;
	int timer_fd;			/* polls the stats; watched by the VM's I/O thread */
	struct iothread_watch timer_watch;
	bool timer_watched;
	struct iothread *io;		/* the VM's I/O thread while attached, or NULL */
	uint64_t inflated, deflated, reported;	/* pages, for debugging and tests */
	/*
	 * A huge host page the guest is ballooning 4 KiB at a time (QEMU's
	 * PartiallyBalloonedPage): freed once all its PFNs are in.
	 */
	uint64_t partial_base;		/* its guest address; 0 with partial_size 0: none */
	uint64_t partial_size;
	uint64_t partial_bits[BALLOON_PARTIAL_MAX / 4096 / 64];
};

/* Creates the eventfd and timer; returns -1 with errno on failure. */
int virtio_balloon_init(struct virtio_balloon *b);
/* Called once the device is plugged (io may be NULL: no statistics polling). */
int virtio_balloon_attach(struct virtio_balloon *b, struct virtio_device *vdev,
			  const struct guest_memory *mem, struct iothread *io);
void virtio_balloon_detach(struct virtio_balloon *b, struct iothread *io);
/* Plugs the balloon in with its queues (free-page-reporting= adds the fourth). */
int virtio_balloon_plug(struct virtio_balloon *b, const struct virtio_plug *at);
/* The host's target (main thread): notifies the guest through a config change. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t ram_size, uint64_t target);
uint32_t virtio_balloon_actual(struct virtio_balloon *b);
void virtio_balloon_set_interval(struct virtio_balloon *b, uint64_t seconds);
/* Copies the last statistics (UINT64_MAX where the guest gave none). */
void virtio_balloon_stats(struct virtio_balloon *b, uint64_t out[BALLOON_NR_STATS],
			  int64_t *last_update, uint64_t *interval);

#endif
