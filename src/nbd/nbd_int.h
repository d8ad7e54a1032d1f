/* What the NBD server's two halves share: the connection's state and its I/O. */
#ifndef KESTREL_NBD_NBD_INT_H
#define KESTREL_NBD_NBD_INT_H

#include "nbd/server.h"

#include <stdarg.h>

struct nbd_conn {
	const struct nbd_server *srv;
	const struct nbd_export *exp;	/* held from NBD_OPT_GO/EXPORT_NAME on */
	struct nbd_io *io;
	bool no_zeroes;			/* client asked for NBD_FLAG_C_NO_ZEROES */
	bool structured;		/* NBD_OPT_STRUCTURED_REPLY acknowledged */
	bool meta_alloc;		/* base:allocation selected for the export */
	bool tls_on;			/* NBD_OPT_STARTTLS done: io is tls_io */
	struct nbd_io tls_io;
	uint16_t tflags;		/* transmission flags sent to the client */
	char *err;
	size_t errlen;
};

/* Context id of base:allocation in this server's replies. */
#define NBD_META_ALLOC_ID	1

/* 0, or -1 with the reason set (the connection ends). */
int nbd_recv(struct nbd_conn *c, void *buf, size_t len);
int nbd_send(struct nbd_conn *c, const void *buf, size_t len);
int nbd_fail(struct nbd_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint16_t nbd_transmission_flags(const struct nbd_conn *c);
/* The transmission phase, after NBD_OPT_GO or NBD_OPT_EXPORT_NAME. */
int nbd_transmit(struct nbd_conn *c);

#endif
