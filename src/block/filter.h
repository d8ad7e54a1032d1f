/*
 * Filter nodes over other nodes (QEMU's blkdebug, quorum, copy-on-read):
 * each is a protocol (block_proto) whose connection holds its child nodes,
 * with raw, or the format the user names, on top.  What they share: I/O on
 * a child node as a protocol sees it, and opening children from options.
 */
#ifndef KESTREL_BLOCK_FILTER_H
#define KESTREL_BLOCK_FILTER_H

#include "block/block_int.h"

struct opts;

/*
 * The child's bytes as a protocol reads them: past its end reads return
 * zeroes, and writes past the end of a file node grow it (a format above,
 * such as qcow2, appends clusters).  Return 0 or a negative errno.
 */
int block_child_pread(struct block_dev *child, uint64_t off, void *buf, size_t len);
int block_child_pwrite(struct block_dev *child, uint64_t off, const void *buf, size_t len);
int block_child_write_zeroes(struct block_dev *child, uint64_t off, uint64_t len,
			     bool may_unmap);
/* The block_proto status of the child: BLOCK_STATUS_DATA or _ZERO in *flags. */
int block_child_status(struct block_dev *child, uint64_t off, uint64_t len, uint64_t *pnum,
		       unsigned *flags);
int block_child_truncate(struct block_dev *child, uint64_t size, char *err, size_t errlen);

/* Whether any option key starts with pfx. */
bool block_opts_have(const struct opts *o, const char *pfx);
/*
 * spec.c: the node the options under pfx ("image.", "children.0.") describe,
 * those options marked used; a child with a filename and no driver is a file.
 */
int block_open_opts_child(struct opts *o, const char *pfx, unsigned flags,
			  struct block_dev **out, char *err, size_t errlen);

/*
 * blkdebug.c: a blkdebug node from the options under pfx, with format on
 * top (NULL: probe); alone: the user's node is the blkdebug node itself.
 */
int block_blkdebug_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			     unsigned flags, struct block_dev *parent, struct block_dev **out,
			     char *err, size_t errlen);
/* blkdebug.c: "blkdebug:CONFIG:IMAGE". */
int block_blkdebug_open_name(const char *name, const char *format, unsigned flags,
			     struct block_dev *parent, struct block_dev **out, char *err,
			     size_t errlen);

/* quorum.c: a quorum node from the options under pfx, as block_blkdebug_open_opts. */
int block_quorum_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			   unsigned flags, struct block_dev *parent, struct block_dev **out,
			   char *err, size_t errlen);

/* cor.c: a copy-on-read node from the options under pfx, as block_blkdebug_open_opts. */
int block_cor_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			unsigned flags, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen);

#endif
