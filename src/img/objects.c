/*
 * What every kestrel-img command shares for naming images as qemu-img does:
 * --object (user-creatable objects; Kestrel has secrets) and --image-opts
 * (the image as QEMU block options instead of a file name).
 *
 * Secrets are kept for the commands that take key-secret= references; a
 * reference to an id that no --object defined is refused as QEMU refuses it.
 * The block layer holds them (block_secret_add): the luks driver looks its
 * key-secret up there.
 */
#include "img/img.h"
#include "block/throttle.h"
#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
	if (!isalpha((unsigned char)*id))
		return false;
	for (; *id; id++)
		if (!isalnum((unsigned char)*id) && !strchr("-._", *id))
			return false;
	return true;
}

/* glib's g_base64_decode: characters outside the alphabet are skipped. */
static size_t base64_decode(const char *in, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;

	for (; *in && *in != '='; in++) {
		const char *p = strchr(alphabet, *in);
		if (!p || !*in)
			continue;
		acc = (acc << 6) | (unsigned)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xFF);
		}
	}
	return n;
}

/* The block layer keeps them: key-secret= options of images name them there. */
const char *img_secret_lookup(const char *id, size_t *len)
{
	return block_secret_lookup(id, len);
}

static bool id_taken(const char *id)
{
	return img_secret_lookup(id, NULL) != NULL || throttle_group_exists(id) ||
	       block_tls_creds_lookup(id) != NULL;
}

/* The secret's bytes from data= or file=, decoded per format=. */
static int secret_value(struct opts *o, char **out, size_t *len)
{
	const char *data = opts_get(o, "data"), *file = opts_get(o, "file");
	const char *format = opts_get(o, "format");
	char *raw = NULL;

	if (format && strcmp(format, "raw") && strcmp(format, "base64")) {
		img_error("Parameter 'format' does not accept value '%s'", format);
		return -1;
	}
	if (data && file) {
		img_error("'file' and 'data' are mutually exclusive");
		return -1;
	}
	if (!data && !file) {
		img_error("Either 'file' or 'data' must be provided");
		return -1;
	}
	if (file) {
		FILE *f = fopen(file, "rb");
		size_t cap = 0, n = 0;
		if (!f) {
			img_error("Unable to read %s: Failed to open file \u201c%s\u201d: %s", file, file,
				  strerror(errno));
			return -1;
		}
		for (;;) {
			if (n == cap) {
				char *r = realloc(raw, cap ? cap * 2 : 256);
				if (!r)
					break;
				raw = r;
				cap = cap ? cap * 2 : 256;
			}
			size_t got = fread(raw + n, 1, cap - n, f);
			n += got;
			if (got == 0)
				break;
		}
		fclose(f);
		if (!raw || n == cap) {
			free(raw);
			img_error("Unable to read %s: out of memory", file);
			return -1;
		}
		raw[n] = '\0';
		*len = n;
	} else {
		raw = strdup(data);
		if (!raw) {
			img_error("out of memory");
			return -1;
		}
		*len = strlen(raw);
	}
	if (format && !strcmp(format, "base64"))
		*len = base64_decode(raw, raw);
	*out = raw;
	return 0;
}

static int add_secret(struct opts *o, const char *id)
{
	char *data;
	size_t len;

	/* keyid= / iv= decrypt the secret with another one: not implemented. */
	if (opts_get(o, "keyid") || opts_get(o, "iv")) {
		img_error("Option '%s' of object 'secret' is not supported by Kestrel",
			  opts_get(o, "keyid") ? "keyid" : "iv");
		return -1;
	}
	if (secret_value(o, &data, &len) < 0)
		return -1;
	if (opts_first_unused(o)) {
		img_error("Parameter '%s' is unexpected", opts_first_unused(o));
		free(data);
		return -1;
	}
	if (block_secret_add(id, data, len) < 0) {
		img_error("Too many objects");
		free(data);
		return -1;
	}
	free(data);
	return 0;
}

/* -object throttle-group,id=G,x-iops-total=N,limits.bps-read=N,...: a group's limits. */
static int add_throttle_group(struct opts *o, const char *id)
{
	struct throttle_config c;
	char err[160];

	if (throttle_object_limits(&c, o, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return -1;
	}
	if (opts_first_unused(o)) {
		img_error("Parameter '%s' is unexpected", opts_first_unused(o));
		return -1;
	}
	if (throttle_group_new(id, &c, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return -1;
	}
	return 0;
}

/* QEMU's qcrypto_tls_creds_get_path: a file of the credentials' directory, checked now. */
static int tls_file(const char *dir, const char *file, bool required)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (access(path, R_OK) == 0 || (!required && errno == ENOENT))
		return 0;
	img_error("Unable to access credentials %s: %s", path, strerror(errno));
	return -1;
}

/* The files each kind of credentials needs (QEMU's crypto/tlscredsx509.c, tlscredspsk.c). */
static int tls_files(const struct block_tls_creds *c)
{
	if (c->type == BLOCK_TLS_PSK)
		return tls_file(c->dir, "keys.psk", true);
	if (tls_file(c->dir, "ca-cert.pem", true) < 0 || tls_file(c->dir, "ca-crl.pem", false) < 0)
		return -1;
	if (c->server)
		return tls_file(c->dir, "server-cert.pem", true) < 0 ||
		       tls_file(c->dir, "server-key.pem", true) < 0 ? -1 : 0;
	return tls_file(c->dir, "client-cert.pem", false) < 0 ||
	       tls_file(c->dir, "client-key.pem", false) < 0 ? -1 : 0;
}

/* -object tls-creds-x509|tls-creds-psk,id=,dir=,endpoint=client|server,... (qapi/qom.json). */
static int add_tls_creds(struct opts *o, const char *type, const char *id)
{
	struct block_tls_creds c = { .id = id, .verify_peer = true };
	const char *endpoint = opts_get(o, "endpoint");
	static const char *const refused[] = { "priority", "sanity-check", "passwordid",
					       "loaded", NULL };

	c.type = !strcmp(type, "tls-creds-psk") ? BLOCK_TLS_PSK : BLOCK_TLS_X509;
	for (size_t i = 0; refused[i]; i++) {
		if (opts_get(o, refused[i])) {
			img_error("Option '%s' of object '%s' is not supported by Kestrel",
				  refused[i], type);
			return -1;
		}
	}
	if (endpoint && strcmp(endpoint, "client") && strcmp(endpoint, "server")) {
		img_error("Parameter 'endpoint' does not accept value '%s'", endpoint);
		return -1;
	}
	c.server = endpoint && !strcmp(endpoint, "server");
	c.dir = opts_get(o, "dir");
	if (c.type == BLOCK_TLS_X509 && !opts_get_bool(o, "verify-peer", &c.verify_peer)) {
		img_error("Parameter 'verify-peer' expects 'on' or 'off'");
		return -1;
	}
	if (c.type == BLOCK_TLS_PSK)
		c.username = opts_get(o, "username");
	if (c.username && c.server) {
		img_error("username should not be set when endpoint=server");
		return -1;
	}
	if (opts_first_unused(o)) {
		img_error("Property '%s.%s' not found", type, opts_first_unused(o));
		return -1;
	}
	if (!c.dir) {
		img_error("Missing 'dir' property value");
		return -1;
	}
	if (tls_files(&c) < 0)
		return -1;
	if (block_tls_creds_add(&c) < 0) {
		img_error("Too many objects");
		return -1;
	}
	return 0;
}

int img_object_add(const char *text)
{
	char err[256];
	struct opts *o;
	const char *type, *id;
	int ret = -1;

	if (!strcmp(text, "help") || !strcmp(text, "?")) {
		printf("List of user creatable objects:\n  secret\n  throttle-group\n  tls-creds-psk\n  tls-creds-x509\n");
		return 1;
	}
	o = opts_parse(text, "qom-type", err, sizeof(err));
	if (!o) {
		img_error("%s", err);
		return -1;
	}
	type = opts_get(o, "qom-type");
	if (type && !strcmp(type, "secret") && opts_get(o, "help")) {
		printf("secret options:\n  data=<string>\n  file=<string>\n"
		       "  format=<QCryptoSecretFormat>\n");
		ret = 1;
		goto out;
	}
	if (!type || !*type) {
		img_error("Parameter 'qom-type' is missing");
		goto out;
	}
	if (!strcmp(type, "throttle-group") && opts_get(o, "help")) {
		printf("throttle-group options:\n  limits=<ThrottleLimits>\n");
		for (int i = 0; throttle_limit_names[i]; i++)
			printf("  x-%s=<int>\n", throttle_limit_names[i]);
		ret = 1;
		goto out;
	}
	if (strcmp(type, "secret") && strcmp(type, "throttle-group") &&
	    strcmp(type, "tls-creds-x509") && strcmp(type, "tls-creds-psk")) {
		img_error("Parameter 'qom-type' does not accept value '%s'", type);
		goto out;
	}
	id = opts_get(o, "id");
	if (!id) {
		img_error("Parameter 'id' is missing");
		goto out;
	}
	if (!id_wellformed(id)) {
		img_error("Parameter 'id' expects an identifier\n"
			  "Identifiers consist of letters, digits, '-', '.', '_', starting with a "
			  "letter.");
		goto out;
	}
	if (id_taken(id)) {
		img_error("attempt to add duplicate property '%s' to object (type 'container')", id);
		goto out;
	}
	if (!strcmp(type, "secret"))
		ret = add_secret(o, id);
	else if (!strcmp(type, "throttle-group"))
		ret = add_throttle_group(o, id);
	else
		ret = add_tls_creds(o, type, id);
out:
	opts_free(o);
	return ret;
}

/* Whether key's node (top level, or "file.") is an iscsi node: read without marking it used. */
static bool iscsi_key(const struct opts *o, const char *key)
{
	const char *want = strncmp(key, "file.", 5) ? "driver" : "file.driver";

	for (size_t i = 0; i < o->count; i++)
		if (!strcmp(o->items[i].key, want) && !strcmp(o->items[i].value, "iscsi"))
			return true;
	return false;
}

/* key-secret=ID references (QEMU's qcrypto_secret_lookup) must name a secret. */
static int check_secret_refs(struct opts *o)
{
	for (size_t i = 0; i < o->count; i++) {
		const char *key = strrchr(o->items[i].key, '.');
		key = key ? key + 1 : o->items[i].key;
		if (strcmp(key, "key-secret") && strcmp(key, "password-secret"))
			continue;
		/* The luks node's own key-secret (qcow2's encrypt.key-secret): the driver names it
		 * as it opens, inside qemu-img's "Could not open" message. */
		if (!strcmp(o->items[i].key, "key-secret") ||
		    !strcmp(o->items[i].key, "encrypt.key-secret"))
			continue;
		/* So does iscsi's password-secret (QEMU's apply_chap, after the URL is read). */
		if (!strcmp(key, "password-secret") && iscsi_key(o, o->items[i].key))
			continue;
		if (!img_secret_lookup(o->items[i].value, NULL)) {
			img_error("No secret with id '%s'", o->items[i].value);
			return -1;
		}
	}
	return 0;
}

/* qemu-img's img_open with image_opts: the "source" option list, implied key "file". */
static struct block_dev *open_image_opts(const char *text, unsigned flags)
{
	struct block_dev *bd = NULL;
	struct opts *o;
	const char *share;
	char err[4096];

	o = opts_parse(text, "file", err, sizeof(err));
	if (!o) {
		img_error("%s", err);
		return NULL;
	}
	share = opts_get(o, "force-share");
	if ((flags & BLOCK_NO_LOCK) && share && strcmp(share, "on")) {
		img_error("--force-share/-U conflicts with image options");
		goto out;
	}
	if (check_secret_refs(o) < 0)
		goto out;
	if (block_open_opts(o, flags, &bd, err, sizeof(err)) < 0) {
		img_error("Could not open '%s': %s", text, err);
		bd = NULL;
	}
out:
	opts_free(o);
	return bd;
}

struct block_dev *img_open_image(const char *name, const char *fmt, unsigned flags,
				 bool image_opts)
{
	if (!image_opts)
		return img_open(name, fmt, flags);
	if (fmt) {
		img_error("--image-opts and --format are mutually exclusive");
		return NULL;
	}
	return open_image_opts(name, flags);
}
