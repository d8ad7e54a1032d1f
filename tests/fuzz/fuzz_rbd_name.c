/*
 * rbd: pseudo-filenames (src/block/rbd.c): QEMU's qemu_rbd_parse_filename
 * as Kestrel reimplements it, then the json: node name built from the
 * parts.  Names come from users, libvirt XML and backing file names stored
 * in images, so any bytes may arrive.  Aborts on a broken invariant: a
 * failure without a message, a success without pool, image or namespace,
 * a part that does not lie in the parser's buffer, a pair without its
 * value, or a node name that is not printable ASCII JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/rbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* s lies inside o's buffer (or is a constant the parser sets, "" for no namespace). */
static void inside(const struct block_rbd_opts *o, const char *s, size_t buflen)
{
	if (!s)
		return;
	if (s < o->buf || s > o->buf + buflen) {
		if (strcmp(s, ""))
			abort();
	}
}

static void check_name(const char *name)
{
	if (!name)
		return;		/* out of memory only */
	if (strncmp(name, "json:{", 6) || name[strlen(name) - 1] != '}')
		abort();
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *text = malloc(len + 5), err[256] = "";
	struct block_rbd_opts o;
	const char *kv[2 * BLOCK_RBD_NAME_MAX];
	size_t n = 0, buflen;
	uint8_t flags;

	if (!text)
		return 0;
	/* The first byte picks: bit 0, "rbd:" in front of the rest; bit 1, a format around. */
	if (!len) {
		free(text);
		return 0;
	}
	flags = data[0];
	data++, len--;
	if (flags & 1)
		memcpy(text, "rbd:", 4);
	memcpy(text + (flags & 1 ? 4 : 0), data, len);
	text[len + (flags & 1 ? 4 : 0)] = '\0';
	if (block_rbd_parse_filename(text, &o, err, sizeof(err)) < 0) {
		if (!err[0])
			abort();
		block_rbd_opts_free(&o);
		free(text);
		return 0;
	}
	if (!o.pool || !o.image || !o.nspace || !o.buf)
		abort();
	buflen = strlen(text) - 4;
	inside(&o, o.pool, buflen);
	inside(&o, o.image, buflen);
	inside(&o, o.nspace, buflen);
	inside(&o, o.snapshot, buflen);
	inside(&o, o.conf, buflen);
	inside(&o, o.user, buflen);
	for (size_t i = 0; i < o.n_pairs; i++) {
		if (!o.pairs[2 * i] || !o.pairs[2 * i + 1])
			abort();
		inside(&o, o.pairs[2 * i], buflen);
		inside(&o, o.pairs[2 * i + 1], buflen);
	}
	kv[n * 2] = "pool", kv[n++ * 2 + 1] = o.pool;
	kv[n * 2] = "image", kv[n++ * 2 + 1] = o.image;
	kv[n * 2] = "namespace", kv[n++ * 2 + 1] = o.nspace;
	if (o.snapshot)
		kv[n * 2] = "snapshot", kv[n++ * 2 + 1] = o.snapshot;
	if (o.conf)
		kv[n * 2] = "conf", kv[n++ * 2 + 1] = o.conf;
	for (size_t i = 0; i < o.n_pairs && n < BLOCK_RBD_NAME_MAX; i++)
		kv[n * 2] = o.pairs[2 * i], kv[n++ * 2 + 1] = o.pairs[2 * i + 1];
	{
		char *name = block_rbd_json_name(flags & 2 ? "qcow2" : NULL, kv, n);
		check_name(name);
		free(name);
	}
	block_rbd_opts_free(&o);
	free(text);
	return 0;
}
