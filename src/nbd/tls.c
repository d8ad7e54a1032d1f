/*
 * The NBD server's TLS (tls.h) on gnutls.  Credentials are loaded once per
 * server from the object's directory, with the file names QEMU's
 * crypto/tlscredsx509.c and tlscredspsk.c use: ca-cert.pem, ca-crl.pem
 * (optional), server-cert.pem, server-key.pem; keys.psk ("user:hexkey"
 * lines).  The session runs over the connection's own transport through
 * gnutls' push/pull functions, so any struct nbd_io can carry TLS.
 */
#include "nbd/tls.h"
#include "block/block.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef KESTREL_GNUTLS
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* QEMU's priorities (crypto/tlssession.c): PSK needs its key exchanges named. */
#define PRIORITY_X509	"NORMAL"
#define PRIORITY_PSK	"NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"

struct nbd_tls {
	enum block_tls_type type;
	bool verify_peer;
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk;
};

struct tls_session {
	gnutls_session_t s;
	struct nbd_io raw;
};

bool nbd_tls_available(void)
{
	return true;
}

static int gnutls_fail(char *err, size_t errlen, const char *what, int rc)
{
	snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rc));
	return -1;
}

static int load_x509(struct nbd_tls *t, const char *dir, char *err, size_t errlen)
{
	char ca[4096], crl[4096], cert[4096], key[4096];
	int rc;

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	snprintf(crl, sizeof(crl), "%s/ca-crl.pem", dir);
	snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/server-key.pem", dir);
	rc = gnutls_certificate_allocate_credentials(&t->x509);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot allocate credentials", rc);
	rc = gnutls_certificate_set_x509_trust_file(t->x509, ca, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot load CA certificate", rc);
	if (access(crl, R_OK) == 0) {
		rc = gnutls_certificate_set_x509_crl_file(t->x509, crl, GNUTLS_X509_FMT_PEM);
		if (rc < 0)
			return gnutls_fail(err, errlen, "Cannot load CRL", rc);
	}
	rc = gnutls_certificate_set_x509_key_file(t->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot load certificate & key", rc);
	return 0;
}

static int load_psk(struct nbd_tls *t, const char *dir, char *err, size_t errlen)
{
	char file[4096];
	int rc;

	snprintf(file, sizeof(file), "%s/keys.psk", dir);
	rc = gnutls_psk_allocate_server_credentials(&t->psk);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot allocate credentials", rc);
	rc = gnutls_psk_set_server_credentials_file(t->psk, file);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot set PSK server credentials", rc);
	return 0;
}

int nbd_tls_new(const char *id, struct nbd_tls **out, char *err, size_t errlen)
{
	const struct block_tls_creds *c = block_tls_creds_lookup(id);
	struct nbd_tls *t;
	int ret;

	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "No TLS credentials with id '%s'", id);
		return -1;
	}
	if (!c->server) {
		snprintf(err, errlen, "Expected TLS credentials for a server endpoint");
		return -1;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->type = c->type;
	t->verify_peer = c->type == BLOCK_TLS_X509 && c->verify_peer;
	ret = c->type == BLOCK_TLS_PSK ? load_psk(t, c->dir, err, errlen)
				       : load_x509(t, c->dir, err, errlen);
	if (ret < 0) {
		nbd_tls_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

void nbd_tls_free(struct nbd_tls *t)
{
	if (!t)
		return;
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	if (t->psk)
		gnutls_psk_free_server_credentials(t->psk);
	free(t);
}

static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_session *ts = p;

	return ts->raw.read(ts->raw.opaque, buf, len);
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct tls_session *ts = p;

	return ts->raw.write(ts->raw.opaque, buf, len);
}

static ssize_t tls_read(void *opaque, void *buf, size_t len)
{
	struct tls_session *ts = opaque;
	ssize_t n;

	do {
		n = gnutls_record_recv(ts->s, buf, len);
	} while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	/* A peer that closes without close_notify has still ended the session. */
	if (n == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	if (n < 0) {
		errno = ECONNRESET;
		return -1;
	}
	return n;
}

static ssize_t tls_write(void *opaque, const void *buf, size_t len)
{
	struct tls_session *ts = opaque;
	ssize_t n;

	do {
		n = gnutls_record_send(ts->s, buf, len);
	} while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	if (n < 0) {
		errno = ECONNRESET;
		return -1;
	}
	return n;
}

/* x509 with verify-peer: the client's certificate must chain to the CA (QEMU's check). */
static int check_peer(struct tls_session *ts, char *err, size_t errlen)
{
	unsigned status = 0;
	int rc = gnutls_certificate_verify_peers2(ts->s, &status);

	if (rc < 0)
		return gnutls_fail(err, errlen, "Verify failed", rc);
	if (status & GNUTLS_CERT_INVALID)
		snprintf(err, errlen, "The certificate is not trusted");
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		snprintf(err, errlen, "The certificate hasn't got a known issuer");
	if (status & GNUTLS_CERT_REVOKED)
		snprintf(err, errlen, "The certificate has been revoked");
	if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
		snprintf(err, errlen, "The certificate uses an insecure algorithm");
	if (status)
		return -1;
	if (!gnutls_certificate_get_peers(ts->s, &status)) {
		snprintf(err, errlen, "No certificate peers");
		return -1;
	}
	return 0;
}

static int session_init(const struct nbd_tls *t, struct tls_session *ts, char *err,
			size_t errlen)
{
	int rc = gnutls_init(&ts->s, GNUTLS_SERVER);

	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot initialize TLS session", rc);
	rc = gnutls_priority_set_direct(ts->s, t->type == BLOCK_TLS_PSK ? PRIORITY_PSK
									: PRIORITY_X509, NULL);
	if (rc < 0)
		return gnutls_fail(err, errlen, "Unable to set TLS session priority", rc);
	if (t->type == BLOCK_TLS_PSK) {
		rc = gnutls_credentials_set(ts->s, GNUTLS_CRD_PSK, t->psk);
	} else {
		rc = gnutls_credentials_set(ts->s, GNUTLS_CRD_CERTIFICATE, t->x509);
		if (t->verify_peer)
			gnutls_certificate_server_set_request(ts->s, GNUTLS_CERT_REQUEST);
	}
	if (rc < 0)
		return gnutls_fail(err, errlen, "Cannot set session credentials", rc);
	gnutls_transport_set_ptr(ts->s, ts);
	gnutls_transport_set_push_function(ts->s, push);
	gnutls_transport_set_pull_function(ts->s, pull);
	return 0;
}

int nbd_tls_start(const struct nbd_tls *t, struct nbd_io *raw, struct nbd_io *tls, char *err,
		  size_t errlen)
{
	struct tls_session *ts = calloc(1, sizeof(*ts));
	int rc;

	if (!ts) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ts->raw = *raw;
	if (session_init(t, ts, err, errlen) < 0)
		goto fail;
	do {
		rc = gnutls_handshake(ts->s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		gnutls_fail(err, errlen, "TLS handshake failed", rc);
		goto fail;
	}
	if (t->verify_peer && check_peer(ts, err, errlen) < 0)
		goto fail;
	tls->read = tls_read;
	tls->write = tls_write;
	tls->opaque = ts;
	return 0;
fail:
	if (ts->s)
		gnutls_deinit(ts->s);
	free(ts);
	return -1;
}

void nbd_tls_end(struct nbd_io *tls)
{
	struct tls_session *ts = tls->opaque;

	if (!ts)
		return;
	gnutls_bye(ts->s, GNUTLS_SHUT_WR);
	gnutls_deinit(ts->s);
	free(ts);
	tls->opaque = NULL;
}

#else

bool nbd_tls_available(void)
{
	return false;
}

int nbd_tls_new(const char *id, struct nbd_tls **out, char *err, size_t errlen)
{
	(void)id;
	*out = NULL;
	snprintf(err, errlen, "TLS is not built in: Kestrel was built without gnutls");
	return -1;
}

void nbd_tls_free(struct nbd_tls *t)
{
	(void)t;
}

int nbd_tls_start(const struct nbd_tls *t, struct nbd_io *raw, struct nbd_io *tls, char *err,
		  size_t errlen)
{
	(void)t;
	(void)raw;
	(void)tls;
	snprintf(err, errlen, "TLS is not built in");
	return -1;
}

void nbd_tls_end(struct nbd_io *tls)
{
	(void)tls;
}

#endif
