/* rbd.c: Ceph RBD images as protocol nodes (librbd/librados; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_RBD_H
#define KESTREL_BLOCK_RBD_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * QEMU's BlockdevOptionsRbd, plus the ceph options a pseudo-filename may
 * carry (":key=value" pairs other than conf and id, set in their order).
 * The strings point into buf (the parser's) or are the caller's.
 */
struct block_rbd_opts {
	const char *pool, *nspace, *image, *snapshot;
	const char *conf, *user;
	const char *key_secret;			/* id of a secret holding the cephx key */
	const char *auth_client_required;	/* "cephx;none": rados' list syntax */
	const char *mon_host;			/* from server.N.host/port */
	const char **pairs;			/* name, value, name, value... */
	size_t n_pairs;				/* number of names */
	char *buf;				/* what the parser allocated */
};

bool block_rbd_protocol(const char *proto);
/*
 * The name QEMU gives an rbd node (bdrv_refresh_filename): json: of its
 * options kv (n name/value pairs, at most BLOCK_RBD_NAME_MAX), under
 * {"driver": format, "file": ...} when format is not NULL.  Free it.
 */
#define BLOCK_RBD_NAME_MAX	32
char *block_rbd_json_name(const char *format, const char *const *kv, size_t n);
/*
 * QEMU's qemu_rbd_parse_filename: rbd:pool[/namespace]/image[@snapshot]
 * [:opt=value[:opt=value...]], '\' escaping the next character.  Free with
 * block_rbd_opts_free, also after a failure.
 */
int block_rbd_parse_filename(const char *name, struct block_rbd_opts *o, char *err,
			     size_t errlen);
void block_rbd_opts_free(struct block_rbd_opts *o);
/* Opens the image, with format (NULL: probe) over it; display names the node. */
int block_rbd_open(const char *display, const struct block_rbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen);
/* rbd_create of a size-byte image (object size obj_size, 0: librbd's default). */
int block_rbd_create(const struct block_rbd_opts *o, uint64_t size, uint64_t obj_size,
		     char *err, size_t errlen);
/* Removes an image (a failed create leaves nothing behind). */
int block_rbd_remove(const struct block_rbd_opts *o, char *err, size_t errlen);
bool block_rbd_available(void);

#endif
