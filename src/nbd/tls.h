/*
 * TLS for the NBD server (NBD_OPT_STARTTLS, doc/proto.md "TLS support"):
 * credentials from a tls-creds-x509/psk object (block_tls_creds), and the
 * upgrade of one connection's transport to a TLS session over it.  Built
 * on gnutls, as QEMU's crypto/tlssession.c; without gnutls at build time
 * nbd_tls_new refuses by name.
 */
#ifndef KESTREL_NBD_TLS_H
#define KESTREL_NBD_TLS_H

#include "nbd/server.h"

struct nbd_tls;

/* The server credentials of object id: 0, or -1 with QEMU's message. */
int nbd_tls_new(const char *id, struct nbd_tls **out, char *err, size_t errlen);
void nbd_tls_free(struct nbd_tls *t);
/* Whether this build has TLS (gnutls). */
bool nbd_tls_available(void);

/*
 * The server's side of the TLS handshake over raw; on success *tls is a
 * transport that reads and writes through the session (its opaque owns
 * the session: nbd_tls_end frees it).  0, or -1 with the reason.
 */
int nbd_tls_start(const struct nbd_tls *t, struct nbd_io *raw, struct nbd_io *tls, char *err,
		  size_t errlen);
void nbd_tls_end(struct nbd_io *tls);

#endif
