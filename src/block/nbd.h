/* nbd.c: NBD exports as protocol nodes (libnbd; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_NBD_H
#define KESTREL_BLOCK_NBD_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether name's protocol is one of NBD's: nbd, nbd+tcp, nbd+unix, nbds... */
bool block_nbd_protocol(const char *proto);
/* QEMU's BlockdevOptionsNbd beyond the address (qapi/block-core.json). */
struct block_nbd_opts {
	const char *tls_creds;		/* id of a client tls-creds-x509/psk object */
	const char *tls_hostname;	/* the name the server's certificate must carry */
	unsigned reconnect_delay;	/* seconds requests wait for a lost server to return */
	unsigned open_timeout;		/* seconds the first connection is retried */
};
/* Opens the export name names, with format (NULL: probe) over it; o may be NULL. */
int block_nbd_open(const char *name, const struct block_nbd_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen);
/* Whether tls-hostname= can be honoured (libnbd >= 1.20 has nbd_set_tls_hostname). */
bool block_nbd_has_tls_hostname(void);
/* Whether this build has libnbd. */
bool block_nbd_available(void);

#endif
