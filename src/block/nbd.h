/* nbd.c: NBD exports as protocol nodes (libnbd; absent: "Unknown protocol"). */
#ifndef KESTREL_BLOCK_NBD_H
#define KESTREL_BLOCK_NBD_H

#include "block/block.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether name's protocol is one of NBD's: nbd, nbd+tcp, nbd+unix, nbds... */
bool block_nbd_protocol(const char *proto);
/* Opens the export name names, with format (NULL: probe) over it. */
int block_nbd_open(const char *name, const char *format, unsigned flags, struct block_dev *parent,
		   struct block_dev **out, char *err, size_t errlen);
/* Whether this build has libnbd. */
bool block_nbd_available(void);

#endif
