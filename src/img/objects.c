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
#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
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
	return img_secret_lookup(id, NULL) != NULL;
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

int img_object_add(const char *text)
{
	char err[256];
	struct opts *o;
	const char *type, *id;
	int ret = -1;

	if (!strcmp(text, "help") || !strcmp(text, "?")) {
		printf("List of user creatable objects:\n  secret\n");
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
	/*
	 * A throttle group only matters to a throttle filter node, and Kestrel's
	 * block layer has none: refused by name rather than accepted and ignored.
	 */
	if (!strcmp(type, "throttle-group")) {
		img_error("Object type 'throttle-group' is not supported by Kestrel "
			  "(no throttle filter driver)");
		goto out;
	}
	if (strcmp(type, "secret")) {
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
	ret = add_secret(o, id);
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
