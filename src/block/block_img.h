/*
 * The block layer's additions for kestrel-img: what qemu-img's subcommands
 * need beyond block.h's VMM entry points (image creation, open options,
 * allocation status, info, check, snapshots, bitmaps, amend, measure).  The
 * drivers implement both headers; the VMM includes only block.h.
 */
#ifndef KESTREL_BLOCK_BLOCK_IMG_H
#define KESTREL_BLOCK_BLOCK_IMG_H

#include "block/block.h"

#include <stdio.h>

struct opts;
/*
 * Opens an image described by QEMU block options (qemu-img --image-opts,
 * the flattened form of a json: name): driver=raw|qcow2|file|null-co,
 * file.filename=, file.driver=, file.locking=, read-only=, force-share=,
 * cache.direct=, backing=null, null-co's size= and read-zeroes=.  Options
 * Kestrel lacks are refused by name.  block_open takes json: and protocol
 * names ("null-co://", "file:x") itself.
 */
int block_open_opts(struct opts *o, unsigned flags, struct block_dev **out, char *err,
		    size_t errlen);
/*
 * Whether name is not a plain file name: "json:{...}" or a protocol prefix
 * (QEMU's path_has_protocol: a ':' before any '/').  Such names are never
 * relative to an image's directory.
 */
bool block_name_is_special(const char *name);
/*
 * Whether what this node leaves unallocated reads as zeroes for lack of a
 * backing file (QEMU: drivers with supports_backing); null-co's content,
 * without read-zeroes=on, is unknown instead.
 */
bool block_unallocated_is_zero(const struct block_dev *bd);
/* Whether a newly created image of bd's format reads as zeroes (QEMU's bdrv_has_zero_init). */
bool block_has_zero_init(const struct block_dev *bd);
/*
 * Whether an image can be created under name, checked first as qemu-img's
 * bdrv_find_protocol does: 0, or -1 with QEMU's message ("Unknown protocol
 * 'nbd'", "Protocol driver 'null-co' does not support image creation").
 */
int block_create_name_check(const char *name, char *err, size_t errlen);

#define BLOCK_NO_BACKING	0x20	/* do not open the backing chain (info, rebase -u) */
#define BLOCK_CHECK		0x40	/* for check/repair: no dirty-bit repair, corrupt images open */
#define BLOCK_UNSAFE_PROBE	0x80	/* probing guessed raw: no warning, no block 0 restriction */
#define BLOCK_QUIET_PROBE	0x100	/* probing guessed raw: restrict block 0 but print nothing */
#define BLOCK_NO_IO		0x800	/* header only (info): encrypted images open without a key */

enum block_prealloc {
	BLOCK_PREALLOC_OFF,
	BLOCK_PREALLOC_METADATA,
	BLOCK_PREALLOC_FALLOC,
	BLOCK_PREALLOC_FULL,
};

/*
 * One -o option of a format's create or amend list (QEMU's QemuOptDesc):
 * each driver lists its own (block_int.h) in QEMU's order, which is the order
 * of qemu-img's "Formatting ..." line.
 */
enum block_opt_type { BLOCK_OPT_STR, BLOCK_OPT_BOOL, BLOCK_OPT_NUM, BLOCK_OPT_SIZE };
struct block_opt_desc {
	const char *name;
	enum block_opt_type type;
	const char *def;	/* printed on the "Formatting" line when not given */
	const char *help;
};
/*
 * The create (amend = false) or amend option list of a format whose driver
 * keeps its own (every format but raw and qcow2, whose lists are kestrel-img's
 * create_opts.c); NULL when the driver has none.
 */
const struct block_opt_desc *block_format_opts(const char *format, bool amend);
/*
 * " name" for every format and protocol driver this build has, sorted, as
 * qemu-img's "Supported formats:" line lists them.
 */
void block_print_formats(FILE *f);
/* Whether Kestrel has a driver for format that can create images. */
bool block_format_can_create(const char *format);

/*
 * A format's own option as given (-o name=value): qemu-img checked its name
 * and its size/number/bool syntax (num holds the parsed value); the driver
 * checks the string values with QEMU's messages.
 */
struct block_fmt_opt {
	const char *name;
	const char *val;
	uint64_t num;
};
#define BLOCK_FMT_OPTS_MAX	24

/* Creation options, as qemu-img create -o spells them; zero means "default". */
struct block_create_opts {
	uint64_t size;
	const char *backing_file;
	const char *backing_fmt;
	enum block_prealloc prealloc;
	uint32_t cluster_size;		/* qcow2: 512..2M, default 64 KiB */
	int compat;			/* qcow2: 2 (0.10) or 3 (1.1, default) */
	bool lazy_refcounts;
	int refcount_bits;		/* qcow2: 1..64, power of two, default 16 */
	int compression_type;		/* qcow2: BLOCK_COMPRESS_ZLIB or _ZSTD */
	bool extended_l2;		/* qcow2: 128-bit L2 entries with subclusters */
	const char *data_file;		/* qcow2: external data file name */
	bool data_file_raw;		/* qcow2: the data file stays a valid raw image */
	uint32_t extent_size_hint;	/* file: FS_IOC_FSSETXATTR extsize, 0 = none */
	bool extent_size_hint_given;	/* asked for: its refusal is worth a warning */
	bool nocow;			/* file: FS_NOCOW_FL (btrfs), best effort */
	/* Options of the other formats' own lists (block_format_opts), in given order. */
	struct block_fmt_opt fmt_opts[BLOCK_FMT_OPTS_MAX];
	size_t n_fmt_opts;
};
/* The option name as given to a format with its own list, or NULL. */
const struct block_fmt_opt *block_create_opt(const struct block_create_opts *o, const char *name);

#define BLOCK_COMPRESS_ZLIB	0
#define BLOCK_COMPRESS_ZSTD	1

/* Creates an image file (replacing a regular file of that name). */
int block_create(const char *path, const char *format, const struct block_create_opts *o,
		 char *err, size_t errlen);

const char *block_filename(const struct block_dev *bd);
/* The opened backing image, or NULL. */
struct block_dev *block_backing(const struct block_dev *bd);
/* Cluster size of the format (qcow2), or 0. */
uint32_t block_cluster_size(const struct block_dev *bd);

/*
 * Allocation status of [offset, offset+len) in this layer: *pnum receives how
 * many bytes from offset share the returned flags (at least 1, at most len).
 */
#define BLOCK_STATUS_DATA	0x01	/* reads come from stored data */
#define BLOCK_STATUS_ZERO	0x02	/* reads return zeroes */
#define BLOCK_STATUS_ALLOCATED	0x04	/* this layer decides the content, not the backing file */
#define BLOCK_STATUS_OFFSET	0x08	/* *map is the host offset in this layer's file */
#define BLOCK_STATUS_COMPRESSED	0x10
int block_status(struct block_dev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		 uint64_t *map, unsigned *flags);
/* The file block_status's *map of offset refers to when it is not bd's own, or NULL. */
const char *block_data_file(struct block_dev *bd, uint64_t offset);

/*
 * Copies len bytes from src to dst with copy_file_range where both ranges lie
 * contiguously in their files (raw images; qemu-img convert -C), through
 * memory otherwise.  0 or a negative errno.
 */
int block_copy_range(struct block_dev *src, uint64_t soff, struct block_dev *dst, uint64_t doff,
		     uint64_t len);

/* Writes one whole cluster (or the tail of the disk) compressed; qcow2 only. */
int block_pwrite_compressed(struct block_dev *bd, uint64_t offset, const void *buf, size_t len);

struct block_info {
	uint64_t virtual_size;
	uint64_t actual_size;		/* allocated bytes of the file (st_blocks) */
	bool actual_size_unknown;	/* a protocol node: qemu-img's "unavailable" */
	uint32_t cluster_size;		/* 0 when the format has none */
	bool dirty;
	bool encrypted;
	char backing_file[4096];	/* as stored in the image, "" if none */
	char backing_fmt[32];		/* "" if not recorded */
	/* qcow2 format-specific data; valid when qcow2_version != 0 */
	int qcow2_version;		/* 2 or 3 */
	bool lazy_refcounts;
	int refcount_bits;
	bool corrupt;
	bool extended_l2;
	bool has_data_file;		/* qcow2 incompatible bit "external data file" */
	char data_file[4096];		/* its name as stored, "" if none */
	bool data_file_raw;
	int compression_type;
	int nb_snapshots;
};
int block_get_info(struct block_dev *bd, struct block_info *info);
/*
 * qemu-img info's "format-specific" object of formats other than qcow2 (for
 * qcow2: its "encrypt" member), or NULL (none, or out of memory); free with
 * jfree.
 */
struct jnode;
struct jnode *block_info_specific(struct block_dev *bd);

struct block_snapshot {
	char id[128];
	char name[1024];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t icount;		/* UINT64_MAX when not recorded */
	uint64_t disk_size;
};
/* Returns the number of snapshots (list malloc'd, may be NULL) or a negative errno. */
int block_snapshot_list(struct block_dev *bd, struct block_snapshot **list);
int block_snapshot_create(struct block_dev *bd, const char *name, char *err, size_t errlen);
int block_snapshot_apply(struct block_dev *bd, const char *name, char *err, size_t errlen);
int block_snapshot_delete(struct block_dev *bd, const char *name, char *err, size_t errlen);

#define BLOCK_FIX_LEAKS		0x1
#define BLOCK_FIX_ERRORS	0x2
struct block_check_result {
	int corruptions, leaks, check_errors;
	int corruptions_fixed, leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
};
/*
 * Checks metadata consistency (qcow2), printing one line per problem to
 * report as qemu-img check does; fix repairs leaks and/or errors.  Returns 0,
 * -ENOTSUP for formats without checks, or another negative errno.
 */
int block_check(struct block_dev *bd, unsigned fix, struct block_check_result *res, FILE *report);

/* Changes the virtual size; shrinking needs shrink = true. */
int block_truncate(struct block_dev *bd, uint64_t size, bool shrink, enum block_prealloc prealloc,
		   char *err, size_t errlen);
/* Rewrites the backing file name and format in the header (NULL file: none). */
int block_change_backing(struct block_dev *bd, const char *file, const char *fmt,
			 char *err, size_t errlen);
/* Changes qcow2 header options; set marks which fields of o to apply (BLOCK_AMEND_*). */
#define BLOCK_AMEND_COMPAT		0x01
#define BLOCK_AMEND_LAZY_REFCOUNTS	0x02
#define BLOCK_AMEND_REFCOUNT_BITS	0x04
#define BLOCK_AMEND_SIZE		0x08
#define BLOCK_AMEND_BACKING_FILE	0x10
#define BLOCK_AMEND_BACKING_FMT		0x20
#define BLOCK_AMEND_DATA_FILE		0x1000
#define BLOCK_AMEND_DATA_FILE_RAW	0x2000
#define BLOCK_AMEND_EXTENDED_L2		0x4000	/* given at all: amend refuses it */
int block_amend(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		char *err, size_t errlen);
/*
 * Reads from an internal snapshot instead of the current state, until close
 * (qemu-img convert -l).  The image must be open read-only.
 */
int block_snapshot_load_tmp(struct block_dev *bd, const char *name, char *err, size_t errlen);
/*
 * Persistent dirty bitmaps (qcow2 spec: "Bitmaps extension").  An image open
 * for writing keeps them in memory, marks every write in the enabled ones
 * and stores them at close, as QEMU does; on disk they are marked in use
 * meanwhile, so a crash leaves them inconsistent, never wrong.
 */
struct block_bitmap {
	char name[1024];
	uint64_t granularity;
	bool in_use, autoload;
};
/* Returns how many (list malloc'd, may be NULL) or a negative errno. */
int block_bitmap_list(struct block_dev *bd, struct block_bitmap **list);

/* One qemu-img bitmap action (QEMU's block-dirty-bitmap-* QMP commands). */
enum block_bitmap_act {
	BLOCK_BITMAP_ADD, BLOCK_BITMAP_REMOVE, BLOCK_BITMAP_CLEAR, BLOCK_BITMAP_ENABLE,
	BLOCK_BITMAP_DISABLE, BLOCK_BITMAP_MERGE,
};
struct block_bitmap_req {
	enum block_bitmap_act act;
	const char *name;
	uint32_t granularity;		/* add, with granularity_set; else the default */
	bool granularity_set;
	bool disabled;			/* add: created disabled (convert --bitmaps) */
	struct block_dev *src;		/* merge: the image holding src_name (may be bd) */
	const char *src_name;
};
/* Returns 0, or -1 with QEMU's message in err. */
int block_bitmap_change(struct block_dev *bd, const struct block_bitmap_req *req,
			char *err, size_t errlen);

/* A bitmap's content: bit k (LSB first in byte k / 8) covers [k * gran, (k + 1) * gran). */
struct block_bitmap_data {
	uint64_t disk_size;
	uint64_t granularity;
	uint64_t nbits;
	uint8_t *bits;			/* malloc'd */
	bool enabled;
};
/* The content of bitmap name; -1 with QEMU's message when missing or inconsistent. */
int block_bitmap_get(struct block_dev *bd, const char *name, struct block_bitmap_data *out,
		     char *err, size_t errlen);
/* Drops all data of this layer (qemu-img commit empties the top image). */
int block_make_empty(struct block_dev *bd);

/* qemu-img measure -O luks: the LUKS header and keyslots the -o options give, plus size. */
int block_luks_measure(const struct block_create_opts *o, uint64_t size, uint64_t *required,
		       char *err, size_t errlen);

/*
 * qemu-img measure -O qcow2 -o encrypt.format=luks: the bytes of the clusters
 * the LUKS header takes (0 for any other encrypt.format, as in QEMU 7.2).
 */
int block_qcow2_crypt_measure(const struct block_create_opts *o, uint32_t cluster_size,
			      uint64_t *bytes, char *err, size_t errlen);

/* A buffer aligned for O_DIRECT (4 KiB); free with free(). */
void *block_alloc_buf(size_t len);

/* Bytes of metadata qcow2 needs for a virtual size (qemu-img measure). */
uint64_t block_qcow2_metadata_size(uint64_t size, uint32_t cluster_size, int refcount_bits,
				   bool v2, bool extended_l2);

#endif
