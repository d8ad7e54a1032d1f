/*
 * The blkdebug protocol node (QEMU's block/blkdebug.c): the format above
 * reads and writes its image through it, and the rules of blkdebug_rules.c
 * decide which requests fail.  Opened as "blkdebug:CONFIG:IMAGE" or from
 * options (driver=blkdebug, config=, image.*, inject-error.N.*,
 * set-state.N.*).  QEMU's limit options (align, max-transfer, ...) are
 * refused by name: Kestrel has no generic request splitting for them to
 * test.
 */
#include "block/blkdebug.h"
#include "block/block_int.h"
#include "block/filter.h"
#include "util/opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct blkdebug_conn {
	struct blkdebug *rules;
	struct block_dev *image;
};

static const struct block_proto blkdebug_proto;

void block_debug_event(const struct block_dev *bd, int ev)
{
	/* QEMU's bdrv_debug_event: the first blkdebug node down the file chain. */
	if (bd && bd->proto == &blkdebug_proto)
		blkdebug_event(((struct blkdebug_conn *)bd->conn)->rules, (enum blkdebug_event)ev);
}

static int bd_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct blkdebug_conn *c = conn;
	int ret = blkdebug_check(c->rules, off, len, BLKDBG_IO_READ);

	return ret < 0 ? ret : block_child_pread(c->image, off, buf, len);
}

static int bd_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct blkdebug_conn *c = conn;
	int ret;

	/* bdrv_aligned_pwritev raises these around the node's own write. */
	blkdebug_event(c->rules, BLKDBG_PWRITEV);
	ret = blkdebug_check(c->rules, off, len, BLKDBG_IO_WRITE);
	if (ret == 0)
		ret = block_child_pwrite(c->image, off, buf, len);
	blkdebug_event(c->rules, BLKDBG_PWRITEV_DONE);
	return ret;
}

static int bd_flush(void *conn)
{
	struct blkdebug_conn *c = conn;
	int ret;

	/* QEMU's bdrv_co_flush raises flush_to_disk just before the flush reaches here. */
	blkdebug_event(c->rules, BLKDBG_FLUSH_TO_DISK);
	ret = blkdebug_check(c->rules, 0, 0, BLKDBG_IO_FLUSH);
	return ret < 0 ? ret : block_flush(c->image);
}

static int bd_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct blkdebug_conn *c = conn;
	int ret;

	blkdebug_event(c->rules, BLKDBG_PWRITEV_ZERO);
	ret = blkdebug_check(c->rules, off, len, BLKDBG_IO_WRITE_ZEROES);
	return ret < 0 ? ret : block_child_write_zeroes(c->image, off, len, may_unmap);
}

static int bd_status(void *conn, uint64_t off, uint64_t len, uint64_t *pnum, unsigned *flags)
{
	struct blkdebug_conn *c = conn;
	int ret = blkdebug_check(c->rules, off, len, BLKDBG_IO_BLOCK_STATUS);

	return ret < 0 ? ret : block_child_status(c->image, off, len, pnum, flags);
}

static int64_t bd_size(void *conn)
{
	return (int64_t)block_length(((struct blkdebug_conn *)conn)->image);
}

static int bd_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	return block_child_truncate(((struct blkdebug_conn *)conn)->image, size, err, errlen);
}

/* A filter: QEMU's bdrv_get_info asks the image (a file answers, so info shows a dirty flag). */
static int bd_get_info(void *conn, struct block_info *info)
{
	struct block_info child;

	(void)info;
	return block_get_info(((struct blkdebug_conn *)conn)->image, &child);
}

static void bd_close(void *conn)
{
	struct blkdebug_conn *c = conn;

	block_close(c->image);
	blkdebug_free(c->rules);
	free(c);
}

static const struct block_proto blkdebug_proto = {
	.name = "blkdebug", .label = "blkdebug",
	.pread = bd_pread, .pwrite = bd_pwrite, .flush = bd_flush, .zero = bd_zero,
	.status = bd_status, .size = bd_size, .truncate = bd_truncate, .get_info = bd_get_info,
	.close = bd_close,
};

/* QEMU's read_config: the file's rules ("Could not read blkdebug config file: ..."). */
static int read_config_file(struct blkdebug *s, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	int ret;

	if (!f)
		return block_err(err, errlen, "Could not read blkdebug config file: %s",
				 strerror(errno));
	do {
		if (len == cap) {
			char *t = cap < (1u << 24) ? realloc(text, cap = cap ? 2 * cap : 4096) : NULL;
			if (!t) {
				free(text);
				fclose(f);
				return block_err(err, errlen, "Could not read blkdebug config file: %s",
						 cap >= (1u << 24) ? "File too large" : strerror(ENOMEM));
			}
			text = t;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
	} while (n);
	ret = ferror(f) ? block_err(err, errlen, "Could not read blkdebug config file: %s",
				    strerror(EIO))
			: blkdebug_parse_config(s, text, len, err, errlen);
	free(text);
	fclose(f);
	return ret;
}

/* The inline rules: group.N.key for N = 0, 1, ... (QEMU's qemu_config_parse_qdict). */
static int add_inline_rules(struct blkdebug *s, struct opts *o, const char *pfx,
			    const char *group, char *err, size_t errlen)
{
	char head[128];

	for (unsigned idx = 0;; idx++) {
		const char *keys[16], *vals[16];
		size_t n = 0, hl;

		snprintf(head, sizeof(head), "%s%s.%u.", pfx, group, idx);
		hl = strlen(head);
		for (size_t i = 0; i < o->count; i++) {
			if (strncmp(o->items[i].key, head, hl))
				continue;
			if (n == 16)
				return block_err(err, errlen, "Too many options in %s.%u", group, idx);
			o->items[i].used = true;
			keys[n] = o->items[i].key + hl;
			vals[n++] = o->items[i].value;
		}
		if (!n)
			return 0;
		if (blkdebug_add_rule(s, group, keys, vals, n, err, errlen) < 0)
			return -1;
	}
}

static const char *const unsupported_opts[] = {
	"align", "max-transfer", "opt-write-zero", "max-write-zero", "opt-discard",
	"max-discard", "take-child-perms", "unshare-child-perms", NULL,
};

/* The rules and the image from the options under pfx. */
static int open_conn(struct opts *o, const char *pfx, const char *config, const char *image,
		     unsigned flags, struct blkdebug_conn **out, char *err, size_t errlen)
{
	struct blkdebug_conn *c = calloc(1, sizeof(*c));
	char key[128];
	int ret = -1;

	*out = NULL;
	if (!c || !(c->rules = blkdebug_new())) {
		free(c);
		return block_err(err, errlen, "out of memory");
	}
	for (const char *const *u = unsupported_opts; o && *u; u++) {
		snprintf(key, sizeof(key), "%s%s", pfx, *u);
		if (opts_get(o, key)) {
			block_err(err, errlen, "Option '%s' of block protocol 'blkdebug' is not "
				  "supported by Kestrel", *u);
			goto out;
		}
	}
	if (config && read_config_file(c->rules, config, err, errlen) < 0)
		goto out;
	if (o && (add_inline_rules(c->rules, o, pfx, "inject-error", err, errlen) < 0 ||
		  add_inline_rules(c->rules, o, pfx, "set-state", err, errlen) < 0))
		goto out;
	snprintf(key, sizeof(key), "%simage.", pfx);
	if (image)
		ret = block_open_special(image, "raw", flags, NULL, &c->image, err, errlen);
	else if (o && block_opts_have(o, key))
		ret = block_open_opts_child(o, key, flags, &c->image, err, errlen);
	else
		ret = block_err(err, errlen, "A block device must be specified for \"image\"");
	if (ret < 0)
		goto out;
	/* QEMU's blkdebug_open ends with this event: rules for "none" act at once. */
	blkdebug_event(c->rules, BLKDBG_NONE);
	*out = c;
	return 0;
out:
	bd_close(c);
	return -1;
}

int block_blkdebug_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			     unsigned flags, struct block_dev *parent, struct block_dev **out,
			     char *err, size_t errlen)
{
	char key[128], display[4096];
	const char *config, *image;
	struct blkdebug_conn *c;

	snprintf(key, sizeof(key), "%sconfig", pfx);
	config = opts_get(o, key);
	snprintf(key, sizeof(key), "%sx-image", pfx);
	image = opts_get(o, key);
	snprintf(key, sizeof(key), "%simage", pfx);
	if (opts_get(o, key))
		return block_err(err, errlen, "Cannot find device='%s' nor node-name='%s'",
				 opts_get(o, key), opts_get(o, key));
	if (open_conn(o, pfx, config, image, flags, &c, err, errlen) < 0)
		return -1;
	snprintf(display, sizeof(display), "blkdebug:%s:%s", config ? config : "",
		 block_filename(c->image));
	if (block_open_proto(display, &blkdebug_proto, c, format, flags, parent, out, err,
			     errlen) < 0)
		return -1;
	if (alone)
		(*out)->format_name = "blkdebug";
	return 0;
}

/* "blkdebug:CONFIG:IMAGE" (QEMU's blkdebug_parse_filename); CONFIG may be empty. */
int block_blkdebug_open_name(const char *name, const char *format, unsigned flags,
			     struct block_dev *parent, struct block_dev **out, char *err,
			     size_t errlen)
{
	const char *rest = name + strlen("blkdebug:"), *colon = strchr(rest, ':');
	struct blkdebug_conn *c;
	char *config;
	int ret;

	*out = NULL;
	if (!colon)
		return block_err(err, errlen, "blkdebug requires both config file and image path");
	config = colon > rest ? strndup(rest, (size_t)(colon - rest)) : NULL;
	if (colon > rest && !config)
		return block_err(err, errlen, "out of memory");
	ret = open_conn(NULL, "", config, colon + 1, flags, &c, err, errlen);
	free(config);
	if (ret < 0)
		return -1;
	return block_open_proto(name, &blkdebug_proto, c, format, flags, parent, out, err,
				errlen);
}
