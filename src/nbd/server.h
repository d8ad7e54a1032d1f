/*
 * The NBD server side (kestrel-nbd, the qemu-nbd role): one export of an
 * opened block device, served to one client per call over any byte
 * transport.  The protocol is the NBD project's doc/proto.md: fixed newstyle
 * handshake only, structured replies, the "base:allocation" metadata
 * context.  Nothing here prints; a connection's end is carried up with its
 * reason in the caller's buffer.
 */
#ifndef KESTREL_NBD_SERVER_H
#define KESTREL_NBD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct block_dev;
struct nbd_tls;

enum nbd_detect_zeroes { NBD_DZ_OFF, NBD_DZ_ON, NBD_DZ_UNMAP };

/* One export; read by every connection's thread, never changed while serving. */
struct nbd_export {
	const char *name;		/* "" by default (qemu-nbd -x) */
	const char *description;	/* NULL: none (-D) */
	struct block_dev *bd;
	uint64_t offset;		/* where the export starts in the image (-o) */
	uint64_t size;			/* export length */
	bool readonly;
	bool discard_unmap;		/* --discard=unmap: TRIM deallocates */
	enum nbd_detect_zeroes detect_zeroes;
	bool multi_conn;		/* NBD_FLAG_CAN_MULTI_CONN (-e N with N != 1) */
	const struct nbd_tls *tls;	/* --tls-creds: TLS required first; NULL: none */
};

/*
 * The byte transport of one connection: a socket, or memory for the fuzz
 * target.  read returns the bytes read (0 at the end) or -1; write returns
 * the bytes written or -1.
 */
struct nbd_io {
	ssize_t (*read)(void *opaque, void *buf, size_t len);
	ssize_t (*write)(void *opaque, const void *buf, size_t len);
	void *opaque;
};

/* A transport over a connected socket. */
void nbd_io_fd(struct nbd_io *io, int *fd);

/*
 * What one server offers (the VMM's nbd-server-add exports several): get
 * finds an export by name and holds it until put (from NBD_OPT_GO to the
 * session's end), list calls fn on each (NBD_OPT_LIST) until fn returns
 * non-zero, tls (NULL: none) makes TLS required first.
 */
struct nbd_server {
	const struct nbd_tls *tls;
	const struct nbd_export *(*get)(void *opaque, const char *name);
	void (*put)(void *opaque, const struct nbd_export *exp);
	int (*list)(void *opaque, int (*fn)(void *arg, const struct nbd_export *exp), void *arg);
	void *opaque;
};

/* nbd_serve for a server of any number of exports. */
int nbd_serve_server(const struct nbd_server *srv, struct nbd_io *io, char *err,
		     size_t errlen);

/*
 * Serves one client from the handshake to its disconnect.  Returns 0 when
 * the client ended the session (NBD_OPT_ABORT, NBD_CMD_DISC), or -1 with
 * the reason in err (a protocol violation, a closed connection, an I/O
 * error on the transport).  Errors of single requests are answered to the
 * client and do not end the session.
 */
/*
 * A listening TCP socket on host:port (the first address that binds,
 * SO_REUSEADDR, close-on-exec), or -1 with qemu-nbd's message in err.
 */
int nbd_listen_tcp(const char *host, const char *port, char *err, size_t errlen);
/*
 * Accepts a client on a listening socket (close-on-exec).  On TCP it turns
 * Nagle off, as qemu-nbd does: a reply's header and data go out in separate
 * writes, and with Nagle the client's next request waits for the delayed ACK
 * (~40 ms per read measured with bench/storage).  -1 with errno on failure.
 */
int nbd_accept(int listen_fd);

int nbd_serve(const struct nbd_export *exp, struct nbd_io *io, char *err, size_t errlen);

#endif
