/*
 * VMDK (VMware Virtual Disk Format 1.1, and QEMU's block/vmdk.c as the
 * compatibility reference): a disk is a list of extents named by a text
 * descriptor, each FLAT (a plain file) or SPARSE (a "KDMV" file with a grain
 * directory and grain tables, optionally with deflate-compressed grains for
 * streamOptimized).  A monolithicSparse image embeds its descriptor.
 */
#ifndef KESTREL_BLOCK_VMDK_H
#define KESTREL_BLOCK_VMDK_H

#include "block/block_int.h"

#include <stdbool.h>
#include <stdint.h>

#define VMDK_SECTOR		512ULL
#define VMDK4_MAGIC		0x4b444d56u	/* "KDMV" read big-endian */
#define VMDK3_MAGIC		0x434f5744u	/* "COWD" */
#define VMDK4_FLAG_NL_DETECT	(1u << 0)
#define VMDK4_FLAG_RGD		(1u << 1)
#define VMDK4_FLAG_ZERO_GRAIN	(1u << 2)
#define VMDK4_FLAG_COMPRESS	(1u << 16)
#define VMDK4_FLAG_MARKER	(1u << 17)
#define VMDK4_GD_AT_END		0xffffffffffffffffULL
#define VMDK4_COMPRESS_DEFLATE	1
#define VMDK_GTE_ZEROED		1u
#define VMDK_DESC_SIZE		(20 * 512)	/* QEMU reads the CIDs from this much */
#define VMDK_DESC_MAX		((1 << 20) - 1)	/* QEMU's cap on a descriptor file */
#define VMDK_MAX_EXTENTS	1024
#define VMDK_MAX_NEST		4		/* descriptor in a sparse extent in ... */

enum vmdk_kind { VMDK_FLAT, VMDK_SPARSE };

struct vmdk_extent {
	struct block_dev *file;		/* the extent file; the image itself when shared */
	bool owned;			/* file was opened for this extent (closed with it) */
	enum vmdk_kind kind;
	char type[12];			/* descriptor type ("FLAT", "SPARSE"), "" if none */
	uint64_t start;			/* first virtual byte */
	uint64_t sectors;		/* virtual size in sectors */
	uint64_t flat_off;		/* FLAT: byte offset in the file */
	/* SPARSE */
	int version;
	bool vmdk3;
	bool compressed, has_marker, zero_grain;
	uint64_t grain;			/* grain size in bytes */
	uint32_t gt_entries;		/* entries per grain table */
	uint32_t gd_entries;
	uint64_t gd_off, rgd_off;	/* bytes; rgd_off 0: no redundant directory */
	uint32_t *gd, *rgd;		/* host order */
	uint32_t **gt;			/* cached grain tables by directory index (lazy) */
	uint64_t next;			/* byte offset where the next grain goes */
	uint64_t file_size;
	/* last decompressed grain (streamOptimized reads) */
	uint8_t *zbuf;
	uint64_t zbuf_host;		/* its host offset, 0: none */
	/* Scratch kept with the extent (its users hold the state lock): no malloc per grain. */
	uint8_t *rbuf;			/* 2 grains: a deflated grain as read */
	uint8_t *wbuf;			/* 1 grain: a grain being written */
	uint8_t *cbuf;			/* marker + deflated grain + a sector of padding */
	void *zs;			/* a z_stream kept for deflating grains */
};

struct vmdk_state {
	struct vmdk_extent *ext;
	int n;
	char create_type[64];
	uint32_t cid, parent_cid;
	uint64_t desc_off;		/* where the descriptor lies in the image file */
	uint64_t desc_len;		/* its room there (embedded) or 0: a file of its own */
	char parent_hint[4096];		/* parentFileNameHint, "" if none */
	bool cid_updated;		/* the first write since open renews the CID */
	int cid_valid;			/* -1: not checked yet */
	struct block_dev *nest[VMDK_MAX_NEST + 2];	/* sparse files whose descriptor is being read */
	int n_nest;
	pthread_mutex_t lock;
};

/* desc.c: the descriptor text and the extent files it names. */
int vmdk_desc_value(const char *desc, const char *key, char *buf, size_t len);
int vmdk_read_cids(struct block_dev *bd, struct vmdk_state *s, char *err, size_t errlen);
int vmdk_open_desc(struct block_dev *bd, struct vmdk_state *s, const char *desc, int depth,
		   char *err, size_t errlen);
int vmdk_write_cid(struct block_dev *bd, struct vmdk_state *s, uint32_t cid);

/* sparse.c: "KDMV"/"COWD" extents. */
int vmdk_open_sparse(struct block_dev *bd, struct vmdk_state *s, struct block_dev *file,
		     bool owned, const char *type, int depth, char *err, size_t errlen);
void vmdk_extent_free(struct vmdk_extent *e);
/*
 * The grain holding extent offset rel: *host its byte offset in the file
 * (0: unallocated), *zeroed for a zeroed-grain entry.  0 or a negative errno.
 */
int vmdk_grain_lookup(struct vmdk_extent *e, uint64_t rel, uint64_t *host, bool *zeroed);
int vmdk_sparse_read(struct vmdk_extent *e, uint64_t host, uint64_t in_grain, void *buf,
		     size_t len);
/* Points the grain of rel at host (both tables), writing the table entry. */
int vmdk_gte_set(struct vmdk_extent *e, uint64_t rel, uint32_t sector);

/* write.c */
int vmdk_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len);
int vmdk_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap);

/* create.c */
int vmdk_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen);
extern const struct block_opt_desc vmdk_create_opts[];

/* vmdk.c */
struct vmdk_extent *vmdk_find_extent(struct vmdk_state *s, uint64_t off);
int vmdk_read_unallocated(struct block_dev *bd, uint64_t off, void *buf, size_t len);

extern const struct block_driver block_vmdk_driver;

#endif
