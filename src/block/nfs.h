/* nfs.c: disks that are files on NFS servers (libnfs; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_NFS_H
#define KESTREL_BLOCK_NFS_H

#include "block/block.h"
#include "util/opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct block_proto;

/* QEMU's numeric BlockdevOptionsNfs members, in the order of block_nfs_opt_names. */
enum block_nfs_opt {
	BLOCK_NFS_USER, BLOCK_NFS_GROUP, BLOCK_NFS_TCP_SYNCNT, BLOCK_NFS_READAHEAD,
	BLOCK_NFS_PAGECACHE, BLOCK_NFS_DEBUG, BLOCK_NFS_NOPTS
};

/* QEMU's BlockdevOptionsNfs; the strings are the caller's (or the parser's storage). */
struct block_nfs_opts {
	const char *host, *path;
	bool has[BLOCK_NFS_NOPTS];
	uint64_t val[BLOCK_NFS_NOPTS];
};

bool block_nfs_protocol(const char *proto);
/*
 * nfs://host/path[?uid=&gid=&tcp-syncnt=&readahead=&pagecache=&debug=] into o,
 * as QEMU's nfs_parse_uri; *storage holds the strings, to free after use.
 */
int block_nfs_parse_uri(const char *uri, struct block_nfs_opts *o, char **storage, char *err,
			size_t errlen);
/*
 * -blockdev driver=nfs (server.type/host, path, user, group, tcp-syn-count,
 * readahead-size, page-cache-size, debug) under pfx ("" or "file."), or its
 * filename= URL; *storage as above.
 */
int block_nfs_read_opts(struct opts *opts, const char *pfx, struct block_nfs_opts *o,
			char **storage, char *err, size_t errlen);
/* The name QEMU's nfs_refresh_filename gives the node, into buf. */
void block_nfs_display(const struct block_nfs_opts *o, char *buf, size_t len);
/* Opens the file, with format (NULL: probe) over it. */
int block_nfs_open(const struct block_nfs_opts *o, const char *format, unsigned flags,
		   struct block_dev *parent, struct block_dev **out, char *err, size_t errlen);
/*
 * Creates (or empties) the file the URL names, mode 0600 as QEMU does, and
 * hands back its connection for the creator to fill (create_stage.c).
 */
int block_nfs_create(const char *uri, const struct block_proto **proto, void **conn, char *err,
		     size_t errlen);
bool block_nfs_available(void);

#endif
