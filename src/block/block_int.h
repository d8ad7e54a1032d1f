/*
 * Inside the block layer: the driver ops table every format fills, the
 * generic struct block_dev, and file I/O helpers shared by the drivers.
 */
#ifndef KESTREL_BLOCK_BLOCK_INT_H
#define KESTREL_BLOCK_BLOCK_INT_H

#include "block/block_img.h"
#include "util/json_tree.h"

#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>

struct block_driver {
	const char *name;
	int (*open)(struct block_dev *bd, char *err, size_t errlen);
	void (*close)(struct block_dev *bd);
	int (*pread)(struct block_dev *bd, uint64_t off, void *buf, size_t len);
	int (*pwrite)(struct block_dev *bd, uint64_t off, const void *buf, size_t len);
	int (*pwrite_compressed)(struct block_dev *bd, uint64_t off, const void *buf, size_t len);
	int (*flush)(struct block_dev *bd);
	int (*write_zeroes)(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap);
	int (*status)(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags);
	int (*create)(const char *path, const struct block_create_opts *o, char *err,
		      size_t errlen);
	int (*truncate)(struct block_dev *bd, uint64_t size, bool shrink,
			enum block_prealloc prealloc, char *err, size_t errlen);
	int (*get_info)(struct block_dev *bd, struct block_info *info);
	int (*check)(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		     FILE *report);
	int (*snapshot_list)(struct block_dev *bd, struct block_snapshot **list);
	int (*snapshot_create)(struct block_dev *bd, const char *name, char *err, size_t errlen);
	int (*snapshot_apply)(struct block_dev *bd, const char *name, char *err, size_t errlen);
	int (*snapshot_delete)(struct block_dev *bd, const char *name, char *err, size_t errlen);
	int (*snapshot_load_tmp)(struct block_dev *bd, const char *name, char *err,
				 size_t errlen);
	int (*change_backing)(struct block_dev *bd, const char *file, const char *fmt,
			      char *err, size_t errlen);
	int (*amend)(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		     char *err, size_t errlen);
	int (*make_empty)(struct block_dev *bd);
	int (*bitmap_list)(struct block_dev *bd, struct block_bitmap **list);
	int (*bitmap_change)(struct block_dev *bd, const struct block_bitmap_req *req,
			     char *err, size_t errlen);
	int (*bitmap_get)(struct block_dev *bd, const char *name, struct block_bitmap_data *out,
			  char *err, size_t errlen);
	/*
	 * For I/O that bypasses the driver (io_uring): whether [off, off+len)
	 * lies contiguously in the image file, at *host.  1 pins the mapping
	 * until end_direct; 0 means the driver must do this I/O itself.
	 */
	int (*map_direct)(struct block_dev *bd, uint64_t off, uint64_t len, bool write,
			  uint64_t *host);
	void (*end_direct)(struct block_dev *bd, uint64_t host, uint64_t len, bool write,
			   int result);
	/*
	 * ImageInfoSpecific for qemu-img info: an object {"type": name, "data":
	 * {...}} with members in QAPI schema order, or NULL when the format has
	 * none.  Formats other than qcow2 (whose data info.c builds) fill it.
	 */
	struct jnode *(*info_specific)(struct block_dev *bd);
	/* The file holding the data at virtual offset off, when not bd's own (vmdk extents). */
	const char *(*data_file)(struct block_dev *bd, uint64_t off);
	/* -o lists (block_img.h block_format_opts); NULL: the format has none. */
	const struct block_opt_desc *create_opts;
	const struct block_opt_desc *amend_opts;
	/* A new image's unwritten areas do not read as zeroes (QEMU: no has_zero_init). */
	bool no_zero_init;
};

/*
 * A network protocol under the format (nbd, ...): the bytes bfile_* reach
 * instead of the image file.  Each call gets the protocol's own state.
 * Return 0 or a negative errno; reads past the end return zeroes.
 */
struct block_proto {
	const char *name;
	const char *label;		/* in messages: "Cannot resize NBD nodes" */
	int (*pread)(void *conn, uint64_t off, void *buf, size_t len);
	int (*pwrite)(void *conn, uint64_t off, const void *buf, size_t len);
	int (*flush)(void *conn);
	int (*zero)(void *conn, uint64_t off, uint64_t len, bool may_unmap);
	/* As the driver's status, for the export's bytes; NULL: all data. */
	int (*status)(void *conn, uint64_t off, uint64_t len, uint64_t *pnum, unsigned *flags);
	int64_t (*size)(void *conn);
	/* Bytes the server stores for it (qemu-img info's disk size); NULL: unknown. */
	int64_t (*allocated)(void *conn);
	/* raw's get_info over it (QEMU passes bdrv_get_info down filters); NULL: -ENOTSUP. */
	int (*get_info)(void *conn, struct block_info *info);
	/* What QEMU's bdi.cluster_size says of the protocol (rbd: the object size); NULL: none. */
	uint32_t (*cluster_size)(void *conn);
	/* The protocol's own snapshots, which QEMU lists through raw (rbd); NULL: none. */
	int (*snapshot_list)(void *conn, struct block_snapshot **list);
	/* Take, roll back to and remove one of them: 0 or a negative errno. */
	int (*snapshot_create)(void *conn, const char *name);
	int (*snapshot_apply)(void *conn, const char *name);
	int (*snapshot_delete)(void *conn, const char *name);
	/* ImageInfoSpecific of the protocol node alone (driver=rbd); NULL: none. */
	struct jnode *(*info_specific)(void *conn);
	/* Changes the size; NULL: "Cannot resize <label> nodes". */
	int (*truncate)(void *conn, uint64_t size, char *err, size_t errlen);
	void (*close)(void *conn);
	/* QEMU's driver has bdrv_get_info (iscsi; nbd has not): info shows the dirty flag. */
	bool has_info;
	/* raw "created" on it keeps the old bytes (an iSCSI LUN; QEMU: no has_zero_init). */
	bool no_zero_init;
};

struct block_dev {
	const struct block_driver *drv;
	const struct block_proto *proto;	/* NULL: the file fd */
	void *conn;				/* the protocol's state */
	char *filename;
	int fd;
	unsigned flags;
	bool read_only;
	bool direct;			/* fd has O_DIRECT: I/O must be aligned */
	bool probed_raw;		/* writes to block 0 restricted, as QEMU does */
	pthread_mutex_t block0_lock;	/* orders checked writes to block 0 of probed_raw */
	uint64_t size;			/* virtual size */
	struct block_dev *backing;
	struct block_dev *parent;	/* the image this one backs, while it opens */
	int depth;			/* 0 for the image opened by the user */
	dev_t st_dev;			/* identity of the file, for backing loop checks */
	ino_t st_ino;
	void *opaque;			/* driver state */
	struct block_stats stats;	/* stats.c: guest I/O accounting, atomics only */
	const char *format_name;	/* shown instead of drv->name ("file", raw over null-co) */
	const char *key_secret;		/* while it opens: the key-secret= id, or NULL */
	/*
	 * The device's I/O limits (-drive iops=..., block_set_io_throttle); NULL:
	 * none.  Set by one thread (start-up, then the monitor's main loop).
	 */
	struct throttle_member *_Atomic throttle;
};

extern const struct block_driver block_raw_driver;
extern const struct block_driver block_qcow2_driver;
extern const struct block_driver block_null_driver;
extern const struct block_driver block_vhdx_driver;
extern const struct block_driver block_dmg_driver, block_cloop_driver, block_bochs_driver;
extern const struct block_driver block_qed_driver;
extern const struct block_driver block_parallels_driver;
extern const struct block_driver block_vpc_driver;
extern const struct block_driver block_vdi_driver;
extern const struct block_driver block_luks_driver;
extern const struct block_driver block_vmdk_driver;
extern const struct block_driver block_throttle_driver;

/* open_one of block.c: a file opened as format (NULL: probe), backing chain included. */
int block_open_file(const char *path, const char *format, unsigned flags, struct block_dev *parent,
		    struct block_dev **out, char *err, size_t errlen);
/* block_open_file with the key-secret= id an encrypted format needs (NULL: none). */
int block_open_file_key(const char *path, const char *format, unsigned flags,
			const char *key_secret, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen);
/* spec.c: opens the names block_name_is_special (block.h) picks out. */
int block_open_special(const char *name, const char *format, unsigned flags,
		       struct block_dev *parent, struct block_dev **out, char *err, size_t errlen);
/*
 * The file a create of name makes: name without its "file:" prefix, or NULL
 * with QEMU's message for protocols that cannot create images.
 */
const char *block_create_path(const char *name, char *err, size_t errlen);
/*
 * A network protocol an image can be created on (nfs, gluster, rbd): the
 * steps create_stage.c takes for it.
 */
struct block_remote_creator {
	/* Refuses what the protocol cannot take, before anything is made; NULL: none. */
	int (*check)(const char *name, const struct block_driver *drv,
		     const struct block_create_opts *o, char *err, size_t errlen);
	/* raw made by the protocol itself (rbd: librbd, its object size); NULL: staged. */
	int (*create_raw)(const char *name, const struct block_create_opts *o, char *err,
			  size_t errlen);
	/* Makes (or empties) the object, of size bytes where it needs one, and its connection. */
	int (*create)(const char *name, uint64_t size, const struct block_proto **proto,
		      void **conn, char *err, size_t errlen);
	/* After the data: the protocol's own preallocation; NULL: none. */
	int (*finish)(void *conn, uint64_t size, const struct block_create_opts *o, char *err,
		      size_t errlen);
	/* Removes what create made when a later step failed; NULL: it stays. */
	void (*remove)(const char *name);
	/* The refusal, in the protocol's words, of a format that wrote several files. */
	int (*several_files)(const char *name, const struct block_driver *drv, char *err,
			     size_t errlen);
	/*
	 * The object exists, with its own size and old bytes (an iSCSI LUN): the
	 * image must fit in it, its holes are written as zeroes, nothing is cut.
	 */
	bool fixed_size;
};
/* spec.c: the creator of the protocol name is on, else NULL. */
const struct block_remote_creator *block_remote_creator(const char *name);
/*
 * create_stage.c: the format's create run on a scratch file, then its
 * data extents copied to the object the creator makes.
 */
int block_create_staged(const char *name, const struct block_driver *drv,
			const struct block_create_opts *o, const struct block_remote_creator *c,
			char *err, size_t errlen);
/* A check for protocols without preallocation (nfs), in QEMU's words. */
int block_create_refuse_prealloc(const char *name, const struct block_driver *drv,
				 const struct block_create_opts *o, char *err, size_t errlen);
extern const struct block_remote_creator block_nfs_creator, block_gluster_creator,
	block_rbd_creator, block_iscsi_creator;
/*
 * uri.c: %XX escapes decoded in place; strict (nfs): false on a bad or
 * %00 escape, else (gluster, as QEMU) a bad one stays as it is.
 */
bool block_uri_unescape(char *s, bool strict);
/* spec.c: the network protocols this build has clients for, into names (at most max). */
size_t block_network_protocols(const char **names, size_t max);
/* null.c: a null-co/null-aio node of size bytes (QEMU's block/null.c). */
int block_null_open(const char *display, const char *format_name, uint64_t size,
		    bool read_zeroes, uint64_t latency_ns, unsigned flags, struct block_dev **out,
		    char *err, size_t errlen);

/*
 * blkdebug.c: an event (enum blkdebug_event, blkdebug.h) for the blkdebug
 * node under bd, if there is one: QEMU's BLKDBG_EVENT(bs->file, ...).
 */
void block_debug_event(const struct block_dev *bd, int ev);

/*
 * throttle.c: a throttle filter node over child (which it owns from then on,
 * also on failure), a member of the existing group (QEMU's throttle driver).
 */
int block_throttle_open(const char *display, struct block_dev *child, const char *group,
			struct block_dev **out, char *err, size_t errlen);

/* printf into err (which may be NULL); returns -1 for "return block_err(...)". */
int block_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Positional I/O on an image file that handles short transfers, EINTR and,
 * for O_DIRECT descriptors, unaligned buffers, offsets and lengths.  Reads
 * past end of file return zeroes.  Return 0 or a negative errno.
 */
int bfile_pread(const struct block_dev *bd, uint64_t off, void *buf, size_t len);
int bfile_pwrite(const struct block_dev *bd, uint64_t off, const void *buf, size_t len);
int bfile_flush(const struct block_dev *bd);
/* All of buf at off of a plain descriptor (a file a driver's create makes), crash point first. */
int block_pwrite_fd(int fd, uint64_t off, const void *buf, size_t len);
int64_t bfile_size(const struct block_dev *bd);
/*
 * len zero bytes at off written through write(opaque, ...) from a zeroed
 * buffer, 1 MiB at a time: for files and layers without a cheaper way.
 */
int block_write_zero_buffer(int (*write)(void *opaque, uint64_t off, const void *buf,
					 size_t len),
			    void *opaque, uint64_t off, uint64_t len);

/*
 * Called before every write, flush, truncate and fallocate on an image file:
 * KESTREL_CRASH_AFTER_WRITES=N ends the process at the (N+1)th (crashpoint.c).
 */
#define BLOCK_CRASH_EXIT	86
void block_crash_point(void);

/*
 * The status of a format whose QEMU driver has no block status: every range
 * is data without a host offset (what qemu-img map prints for it).
 */
int block_status_all_data(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			  uint64_t *map, unsigned *flags);

/* The driver's map_direct/end_direct behind the block layer's own checks. */
int block_map_direct(struct block_dev *bd, uint64_t off, uint64_t len, bool write, uint64_t *host);
void block_end_direct(struct block_dev *bd, uint64_t host, uint64_t len, bool write, int result);

/*
 * Opens the format (NULL: probe) over an open protocol connection; the node
 * owns conn from then on, also on failure.  display names it in messages.
 */
int block_open_proto(const char *display, const struct block_proto *proto, void *conn,
		     const char *format, unsigned flags, struct block_dev *parent,
		     struct block_dev **out, char *err, size_t errlen);

/*
 * For a driver's create: the file opened, locked against every other user
 * (QEMU's locks) and only then truncated to 0.  Returns the fd or -1.
 */
int block_create_file(const char *path, char *err, size_t errlen);
/*
 * ftruncate for image files that may be block or character devices
 * (host_device): a device keeps its size, so a length it holds succeeds
 * without change and a larger one fails with EFBIG (QEMU: "Cannot grow
 * device files").  Same return convention as ftruncate.
 */
int block_ftruncate(int fd, uint64_t len);
/* The size of a block device (BLKGETSIZE64), or -1 when fd is none. */
int64_t block_device_size(int fd);
/* Zeroes a device's first sector (raw created on it): 0 or -errno. */
int block_device_zero_head(int fd);
/*
 * block_create_file, then the file protocol's create options as QEMU's
 * file-posix applies them: nocow (best effort) and the extent size hint.
 */
int block_create_file_opts(const char *path, const struct block_create_opts *o, char *err,
			   size_t errlen);

/* Opens a backing file relative to the image's directory, as QEMU resolves it. */
int block_open_backing(struct block_dev *bd, const char *file, const char *fmt,
		       char *err, size_t errlen);
/* The backing file name resolved against the directory of the image that names it. */
char *block_backing_path(const char *image, const char *backing);

/* Reads through the backing chain: zeroes where there is no backing data. */
int block_read_backing(struct block_dev *bd, uint64_t off, void *buf, size_t len);


#endif
