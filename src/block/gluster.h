/* gluster.c: disks that are files on GlusterFS volumes (libgfapi; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_GLUSTER_H
#define KESTREL_BLOCK_GLUSTER_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>

#define BLOCK_GLUSTER_MAX_SERVERS	8
#define BLOCK_GLUSTER_DEBUG_DEFAULT	4	/* QEMU's: libgfapi's GF_LOG_ERROR */
#define BLOCK_GLUSTER_DEBUG_MAX		9

/* One volfile server of QEMU's SocketAddress: inet (host, port) or unix (path). */
struct block_gluster_server {
	bool is_unix;
	const char *host, *port;	/* inet; port NULL: 24007 */
	const char *path;		/* unix: glusterd's socket */
};

/* QEMU's BlockdevOptionsGluster; the strings are the caller's. */
struct block_gluster_opts {
	const char *volume, *path;
	struct block_gluster_server server[BLOCK_GLUSTER_MAX_SERVERS];
	int nservers;
	int debug;			/* libgfapi log level 0..9 */
	const char *logfile;		/* "-": stderr */
};

/* gluster, gluster+tcp, gluster+unix, gluster+rdma. */
bool block_gluster_protocol(const char *proto);
/*
 * gluster[+tcp|+unix|+rdma]://[host[:port]]/volume/path[?socket=...] into o
 * as QEMU's qemu_gluster_parse_uri; *storage to free after use.  rdma is
 * taken as tcp with QEMU's warning on stderr.
 */
int block_gluster_parse_uri(const char *uri, struct block_gluster_opts *o, char **storage,
			    char *err, size_t errlen);
/* Opens the file, with format (NULL: probe) over it; display names the node. */
int block_gluster_open(const char *display, const struct block_gluster_opts *o,
		       const char *format, unsigned flags, struct block_dev *parent,
		       struct block_dev **out, char *err, size_t errlen);
/* Whether name is a gluster URL ("gluster...:" as QEMU's protocol prefix). */
bool block_gluster_name(const char *name);
bool block_gluster_available(void);

#endif
