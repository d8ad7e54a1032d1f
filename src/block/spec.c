/*
 * Images named by QEMU block options instead of a plain file name:
 * qemu-img's --image-opts ("driver=qcow2,file.filename=x,file.locking=off"),
 * "json:{...}" pseudo-filenames (also as backing file names stored in an
 * image) and protocol prefixes ("null-co://", "file:x", "nbd://...").
 *
 * The options are QEMU's BlockdevOptions for the drivers Kestrel has: a
 * format node (raw, qcow2, or probed) over a protocol node (file, null-co),
 * or a protocol node alone.  An option Kestrel knows but does not implement
 * is refused by name; an unknown one gets QEMU's message.  Protocols whose
 * drivers Kestrel lacks get "Unknown protocol", the message of a qemu-img
 * built without that driver.
 */
#include "block/block_int.h"
#include "block/spec_int.h"
#include "block/gluster.h"
#include "block/iscsi.h"
#include "block/filter.h"
#include "block/nbd.h"
#include "block/nfs.h"
#include "block/rbd.h"
#include "block/throttle.h"
#include "util/json_parse.h"
#include "util/opts.h"
#include "util/size.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NULL_DEFAULT_SIZE (1ULL << 30)	/* QEMU's null driver: 1 GiB */

/* Options QEMU has that Kestrel does not implement: refused by name. */
static const char *const unsupported_format_opts[] = {
	"node-name", "discard", "detect-zeroes", "auto-read-only", "cache.no-flush",
	"l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-size",
	"cache-clean-interval", "lazy-refcounts", "pass-discard-request",
	"pass-discard-snapshot", "pass-discard-other", "overlap-check", "data-file",
	"offset", "size", "encrypt", NULL,
};
static const char *const unsupported_protocol_opts[] = {
	"aio", "aio-max-batch", "pr-manager", "x-check-cache-dropped", "drop-cache",
	"discard", "detect-zeroes", "node-name", "username", "password-secret",
	"proxy-username", "proxy-password-secret", "cookie-secret", "tls-creds", "tls-hostname",
	"x-dirty-bitmap", NULL,
};

/* QEMU's path_has_protocol: a ':' before any '/'.  Copies the name to proto. */
static bool protocol_of(const char *name, char *proto, size_t len)
{
	size_t n = strcspn(name, ":/");

	if (name[n] != ':')
		return false;
	snprintf(proto, len, "%.*s", (int)n, name);
	return true;
}

bool block_name_is_special(const char *name)
{
	char proto[64];

	return protocol_of(name, proto, sizeof(proto));
}

static bool is_null_driver(const char *d)
{
	return d && (!strcmp(d, "null-co") || !strcmp(d, "null-aio"));
}

static bool is_file_driver(const char *d)
{
	return d && (!strcmp(d, "file") || !strcmp(d, "host_device") || !strcmp(d, "host_cdrom"));
}

/* The key's last component is in list (QEMU names options per node). */
static bool listed(const char *const *list, const char *key)
{
	for (; *list; list++) {
		size_t n = strlen(*list);
		if (!strncmp(key, *list, n) && (key[n] == '\0' || key[n] == '.'))
			return true;
	}
	return false;
}

/* QEMU_OPT_NUMBER's qemu_strtou64: base 0, a sign allowed (wrapping), the whole text. */
static bool parse_qemu_number(const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 0);
	return *v && end != v && !*end && errno == 0;
}

int block_spec_get_bool(struct opts *o, const char *key, bool *out, char *err, size_t errlen)
{
	const char *name = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;

	if (!opts_get_bool(o, key, out))
		return block_err(err, errlen, "Parameter '%s' expects 'on' or 'off'", name);
	return 0;
}

/* A node's open flags from its options (QEMU's bdrv_open_common and file-posix). */
struct node {
	const char *driver;		/* format, or NULL to probe */
	const char *proto;		/* protocol driver: "file", "null-co", ... */
	const char *filename;
	const char *pfx;		/* "file." when the protocol is a child, else "" */
	unsigned flags;
	uint64_t null_size;
	bool read_zeroes;
	uint64_t latency_ns;
	const char *key_secret;		/* luks: the secret's id */
};

static int read_common(struct opts *o, unsigned want, struct node *n, char *err, size_t errlen)
{
	bool ro = false, share = false, direct = false;
	const char *backing;

	if (block_spec_get_bool(o, "read-only", &ro, err, errlen) < 0 ||
	    block_spec_get_bool(o, "force-share", &share, err, errlen) < 0 ||
	    block_spec_get_bool(o, "cache.direct", &direct, err, errlen) < 0)
		return -1;
	if (ro && !(want & BLOCK_RDONLY))
		return block_err(err, errlen, "Block node is read-only");
	if (share && !(want & BLOCK_RDONLY))
		return block_err(err, errlen, "force-share=on can only be used with read-only images");
	if (share)
		n->flags |= BLOCK_NO_LOCK;
	if (direct)
		n->flags |= BLOCK_NOCACHE;
	backing = opts_get(o, "backing");
	if (backing) {
		/* QEMU: null (or the deprecated "") means no backing file; a string names a node. */
		bool is_null = false;
		for (size_t i = 0; i < o->count; i++)
			if (!strcmp(o->items[i].key, "backing"))
				is_null = o->items[i].null;
		if (!is_null && *backing)
			return block_err(err, errlen, "Cannot find device='%s' nor node-name='%s'",
					 backing, backing);
		/* QEMU's warn_report: the program's name first (glibc's, as invoked). */
		if (!is_null)
			fprintf(stderr, "%s: warning: Use of \"backing\": \"\" is deprecated; "
				"use \"backing\": null instead\n", program_invocation_short_name);
		n->flags |= BLOCK_NO_BACKING;
	}
	return 0;
}

/* The protocol node's own options, under pfx ("file." or ""). */
static int read_protocol(struct opts *o, struct node *n, char *err, size_t errlen)
{
	char key[64];
	const char *v;

	snprintf(key, sizeof(key), "%sfilename", n->pfx);
	n->filename = opts_get(o, key);
	if (is_null_driver(n->proto)) {
		n->null_size = NULL_DEFAULT_SIZE;
		snprintf(key, sizeof(key), "%ssize", n->pfx);
		v = opts_get(o, key);
		if (v && !size_parse(v, 1, &n->null_size))
			return block_err(err, errlen,
					 "Parameter 'size' expects a non-negative number below 2^64\n"
					 "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
					 "and exabytes, respectively.");
		snprintf(key, sizeof(key), "%sread-zeroes", n->pfx);
		if (block_spec_get_bool(o, key, &n->read_zeroes, err, errlen) < 0)
			return -1;
		/* QEMU reads a number and refuses what is negative as an int64. */
		snprintf(key, sizeof(key), "%slatency-ns", n->pfx);
		v = opts_get(o, key);
		if (v && !parse_qemu_number(v, &n->latency_ns))
			return block_err(err, errlen, "Parameter 'latency-ns' expects a number");
		if (v && (int64_t)n->latency_ns < 0)
			return block_err(err, errlen, "latency-ns is invalid");
		if (n->filename && strcmp(n->filename, "null-co://") && strcmp(n->filename, "null-aio://"))
			return block_err(err, errlen,
					 "The only allowed filename for this driver is '%s://'", n->proto);
		return 0;
	}
	snprintf(key, sizeof(key), "%slocking", n->pfx);
	v = opts_get(o, key);
	if (v && strcmp(v, "on") && strcmp(v, "off") && strcmp(v, "auto"))
		return block_err(err, errlen, "invalid parameter value: %s", v);
	if (v && !strcmp(v, "off"))
		n->flags |= BLOCK_NO_LOCK;
	if (!n->filename)
		return block_err(err, errlen, "The '%s' block driver requires a file name", n->proto);
	return 0;
}

/* What is left over after opening: QEMU's messages, or Kestrel's for known options. */
static int check_unused(struct opts *o, const struct block_dev *bd, const struct node *n,
			char *err, size_t errlen)
{
	const char *key = opts_first_unused(o);
	bool child;
	const char *name;

	if (!key)
		return 0;
	child = *n->pfx && !strncmp(key, "file.", 5);
	name = child ? key + 5 : key;
	if (child || !*n->pfx) {
		if (listed(unsupported_protocol_opts, name))
			return block_err(err, errlen, "Option '%s' of block protocol '%s' is not "
					 "supported by Kestrel", name, n->proto);
		return block_err(err, errlen, "Block protocol '%s' doesn't support the option '%s'",
				 n->proto, name);
	}
	if (listed(unsupported_format_opts, name))
		return block_err(err, errlen, "Option '%s' of block format '%s' is not supported by "
				 "Kestrel", name, block_format_name(bd));
	return block_err(err, errlen, "Block format '%s' does not support the option '%s'",
			 block_format_name(bd), name);
}

/*
 * QEMU's file-posix checks of what a file driver opened: "file" wants a
 * regular file, host_device and host_cdrom a block or character device.
 * A name that does not exist is left for the open to report.
 */
static int check_file_kind(const char *proto, const char *filename, char *err, size_t errlen)
{
	struct stat st;

	if (!proto || !filename || stat(filename, &st) < 0)
		return 0;
	if (!strcmp(proto, "file") && (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)))
		return block_err(err, errlen, "'file' driver requires '%s' to be a regular file",
				 filename);
	if (strcmp(proto, "file") && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
		return block_err(err, errlen, "'%s' driver requires '%s' to be either a character "
				 "or block device", proto, filename);
	return 0;
}

/* Opens the node n describes; the format's name for a protocol alone is its own. */
static int open_node(struct node *n, const char *display, struct block_dev *parent,
		     struct block_dev **out, char *err, size_t errlen)
{
	if (is_null_driver(n->proto)) {
		/* Only raw reads a null node: any other format finds no header in zeroes. */
		if (n->driver && strcmp(n->driver, "raw"))
			return block_err(err, errlen, "Image is not in %s format", n->driver);
		return block_null_open(display, n->driver || *n->pfx ? "raw" :
				       !strcmp(n->proto, "null-aio") ? "null-aio" : NULL,
				       n->null_size, n->read_zeroes, n->latency_ns, n->flags, out, err,
				       errlen);
	}
	if (check_file_kind(n->proto, n->filename, err, errlen) < 0)
		return -1;
	if (block_open_file_key(n->filename, n->driver ? n->driver : *n->pfx ? NULL : "raw",
				n->flags, n->key_secret, parent, out, err, errlen) < 0)
		return -1;
	if (!n->driver && !*n->pfx)
		(*out)->format_name = !strcmp(n->proto, "host_device") ? "host_device"
				      : !strcmp(n->proto, "host_cdrom") ? "host_cdrom" : "file";
	return 0;
}

static int block_open_opts_parent(struct opts *o, unsigned flags, struct block_dev *parent,
				  const char *display, struct block_dev **out, char *err,
				  size_t errlen);

/* A network protocol node, alone (format "nbd", "http"...) or under a format. */
static int open_network(struct opts *o, struct node *n, struct block_dev *parent,
			struct block_dev **out, char *err, size_t errlen)
{
	bool alone = block_network_driver(n->driver) != NULL;
	const char *proto = block_network_driver(alone ? n->driver : opts_get(o, "file.driver"));
	const char *pfx = alone ? "" : "file.";
	const char *format = alone ? "raw" : n->driver;
	int ret;

	if (!alone && n->driver && !block_format_has_driver(n->driver))
		return block_err(err, errlen, "Unknown driver '%s'", n->driver);
	ret = block_open_net_opts(proto, o, pfx, format, n->flags, parent, out, err, errlen);
	if (ret < 0)
		return -1;
	if (alone)
		(*out)->format_name = proto;
	n->proto = proto;
	n->pfx = pfx;
	if (check_unused(o, *out, n, err, errlen) < 0) {
		block_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/*
 * QEMU's throttle filter: driver=throttle,throttle-group=G over the node
 * file.* describes.  The child opens first, as QEMU's throttle_open does, so
 * a missing file is named before a missing group.
 */
static int open_throttle(struct opts *o, bool has_file, struct node *n,
			 struct block_dev *parent, struct block_dev **out, char *err,
			 size_t errlen)
{
	const char *group = opts_get(o, "throttle-group");
	struct opts *sub;
	struct block_dev *child;
	int ret = 0;

	if (!has_file)
		return block_err(err, errlen, "A block device must be specified for \"file\"");
	sub = calloc(1, sizeof(*sub));
	for (size_t i = 0; sub && i < o->count && ret == 0; i++) {
		if (strncmp(o->items[i].key, "file.", 5))
			continue;
		o->items[i].used = true;
		if (!opts_add(sub, o->items[i].key + 5, o->items[i].value))
			ret = -1;
		else
			sub->items[sub->count - 1].null = o->items[i].null;
	}
	/* A child named by its file name alone is a file (QEMU's bdrv_fill_options). */
	if (sub && ret == 0 && !opts_get(sub, "driver") && opts_get(sub, "filename") &&
	    !opts_add(sub, "driver", "file"))
		ret = -1;
	if (!sub || ret < 0) {
		opts_free(sub);
		return block_err(err, errlen, "out of memory");
	}
	ret = block_open_opts_parent(sub, n->flags, parent, NULL, &child, err, errlen);
	opts_free(sub);
	if (ret < 0)
		return -1;
	if (!group) {
		block_close(child);
		return block_err(err, errlen, "Please specify a throttle group");
	}
	if (block_throttle_open(block_filename(child), child, group, out, err, errlen) < 0)
		return -1;
	n->pfx = "file.";
	if (check_unused(o, *out, n, err, errlen) < 0) {
		block_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* The filter drivers (filter.h): nodes over other nodes. */
static bool is_filter_driver(const char *d)
{
	return d && (!strcmp(d, "blkdebug") || !strcmp(d, "quorum") || !strcmp(d, "copy-on-read"));
}

/* A filter node, alone (its format shown as the filter's name) or under a format. */
static int open_filter(struct opts *o, struct node *n, struct block_dev *parent,
		       struct block_dev **out, char *err, size_t errlen)
{
	bool alone = is_filter_driver(n->driver);
	const char *pfx = alone ? "" : "file.";

	if (!alone && n->driver && !block_format_has_driver(n->driver))
		return block_err(err, errlen, "Unknown driver '%s'", n->driver);
	n->proto = alone ? n->driver : opts_get(o, "file.driver");
	n->pfx = pfx;
	if ((!strcmp(n->proto, "blkdebug") ? block_blkdebug_open_opts :
	     !strcmp(n->proto, "quorum") ? block_quorum_open_opts : block_cor_open_opts)
	    (o, pfx, alone ? "raw" : n->driver, alone, n->flags, parent, out, err, errlen) < 0)
		return -1;
	/* quorum and copy-on-read have no protocol name in QEMU: leftovers get the format's message. */
	if (alone && strcmp(n->proto, "blkdebug"))
		n->pfx = "file.";
	if (check_unused(o, *out, n, err, errlen) < 0) {
		block_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int block_open_opts_child(struct opts *o, const char *pfx, unsigned flags,
			  struct block_dev **out, char *err, size_t errlen)
{
	struct opts *sub = calloc(1, sizeof(*sub));
	size_t n = strlen(pfx);
	bool driver = false, filename = false;
	int ret = 0;

	*out = NULL;
	for (size_t i = 0; sub && i < o->count && ret == 0; i++) {
		const char *k = o->items[i].key;
		if (strncmp(k, pfx, n))
			continue;
		o->items[i].used = true;
		driver |= !strcmp(k + n, "driver");
		filename |= !strcmp(k + n, "filename");
		if (!opts_add(sub, k + n, o->items[i].value))
			ret = -1;
		else
			sub->items[sub->count - 1].null = o->items[i].null;
	}
	/* A child named by its file name alone is a file (QEMU probes the protocol). */
	if (sub && ret == 0 && filename && !driver && !opts_add(sub, "driver", "file"))
		ret = -1;
	if (!sub || ret < 0) {
		opts_free(sub);
		return block_err(err, errlen, "out of memory");
	}
	ret = block_open_opts_parent(sub, flags, NULL, NULL, out, err, errlen);
	opts_free(sub);
	return ret;
}

static int block_open_opts_parent(struct opts *o, unsigned flags, struct block_dev *parent,
				  const char *display, struct block_dev **out, char *err,
				  size_t errlen)
{
	struct node n = { .flags = flags, .pfx = "file." };
	const char *file, *ks, *eks, *bad;
	bool has_file = false;

	*out = NULL;
	n.driver = opts_get(o, "driver");
	file = opts_get(o, "file");
	for (size_t i = 0; i < o->count; i++)
		has_file |= !strncmp(o->items[i].key, "file.", 5);
	if (file)
		return block_err(err, errlen, "Cannot find device='%s' nor node-name='%s'", file,
				 file);
	if (!n.driver && !has_file)
		return block_err(err, errlen, "Must specify either driver or file");
	if (read_common(o, flags, &n, err, errlen) < 0)
		return -1;
	if (n.driver && !strcmp(n.driver, "throttle"))
		return open_throttle(o, has_file, &n, parent, out, err, errlen);
	if (block_network_driver(n.driver) || block_network_driver(opts_get(o, "file.driver")))
		return open_network(o, &n, parent, out, err, errlen);
	if (is_filter_driver(n.driver) || is_filter_driver(opts_get(o, "file.driver")))
		return open_filter(o, &n, parent, out, err, errlen);
	if (is_file_driver(n.driver) || is_null_driver(n.driver)) {
		/* A protocol node alone: its options are the top level's. */
		n.proto = n.driver;
		n.driver = NULL;
		n.pfx = "";
	} else if (n.driver && !block_format_has_driver(n.driver)) {
		return block_err(err, errlen, "Unknown driver '%s'", n.driver);
	} else if (!has_file) {
		return block_err(err, errlen, "A block device must be specified for \"file\"");
	} else {
		n.proto = opts_get(o, "file.driver");
		if (!n.proto)
			n.proto = "file";
		if (!is_file_driver(n.proto) && !is_null_driver(n.proto))
			return block_err(err, errlen, "Unknown driver '%s'", n.proto);
	}
	if (read_protocol(o, &n, err, errlen) < 0)
		return -1;
	/* luks takes key-secret=, qcow2 encrypt.key-secret= (QEMU's option names). */
	ks = opts_get(o, "key-secret");
	eks = opts_get(o, "encrypt.key-secret");
	n.key_secret = ks ? ks : eks;
	if (open_node(&n, display ? display : n.filename ? n.filename : "null-co://", parent, out,
		      err, errlen) < 0)
		return -1;
	/* Only an encrypted format takes a key (probed or named). */
	bad = (ks && (*out)->drv != &block_luks_driver) ? "key-secret" :
	      (eks && (*out)->drv != &block_qcow2_driver) ? "encrypt.key-secret" : NULL;
	if (bad)
		block_err(err, errlen, "Block format '%s' does not support the option '%s'",
			  block_format_name(*out), bad);
	if (bad ||
	    check_unused(o, *out, &n, err, errlen) < 0) {
		block_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int block_open_opts(struct opts *o, unsigned flags, struct block_dev **out, char *err,
		    size_t errlen)
{
	return block_open_opts_parent(o, flags, NULL, NULL, out, err, errlen);
}

/* json:{...}: QEMU's parse_json_filename, then the options as above. */
static int open_json(const char *name, const char *format, unsigned flags,
		     struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	const char *text = name + 5;
	struct json_value *v;
	struct opts *o;
	char msg[512];
	int ret;

	v = json_parse(text, strlen(text), msg, sizeof(msg));
	if (!v)
		return block_err(err, errlen, "Could not parse the JSON options: %s", msg);
	if (v->type != JSON_OBJECT) {
		json_free(v);
		return block_err(err, errlen, "Invalid JSON object given");
	}
	o = calloc(1, sizeof(*o));
	ret = o ? json_flatten(v, o) : -1;
	json_free(v);
	/* -f wins over the JSON's own driver, as in qemu-img. */
	if (ret == 0 && format && !opts_add(o, "driver", format))
		ret = -1;
	if (ret < 0) {
		opts_free(o);
		return block_err(err, errlen, "out of memory");
	}
	ret = block_open_opts_parent(o, flags, parent, NULL, out, err, errlen);
	opts_free(o);
	return ret;
}

int block_open_special(const char *name, const char *format, unsigned flags,
		       struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	char proto[64];

	*out = NULL;
	if (!strncmp(name, "json:", 5))
		return open_json(name, format, flags, parent, out, err, errlen);
	if (!protocol_of(name, proto, sizeof(proto)))
		return block_open_file(name, format, flags, parent, out, err, errlen);
	if (is_file_driver(proto)) {
		if (check_file_kind(proto, name + strlen(proto) + 1, err, errlen) < 0)
			return -1;
		return block_open_file(name + strlen(proto) + 1, format, flags, parent, out, err,
				       errlen);
	}
	if (is_null_driver(proto)) {
		struct node n = { .driver = format, .proto = proto, .pfx = "file.",
				  .flags = flags, .null_size = NULL_DEFAULT_SIZE };
		if (strcmp(name + strlen(proto), "://"))
			return block_err(err, errlen,
					 "The only allowed filename for this driver is '%s://'", proto);
		return open_node(&n, name, parent, out, err, errlen);
	}
	if (!strcmp(proto, "blkdebug"))
		return block_blkdebug_open_name(name, format, flags, parent, out, err, errlen);
	return block_open_net_uri(name, proto, format, flags, parent, out, err, errlen);
}

const char *block_create_path(const char *name, char *err, size_t errlen)
{
	char proto[64];

	if (!protocol_of(name, proto, sizeof(proto)))
		return name;
	if (is_file_driver(proto))
		return name + strlen(proto) + 1;
	if (block_remote_creator(name))
		return name;	/* block_create makes it on the server (create_stage.c) */
	if (is_null_driver(proto) || is_filter_driver(proto))
		block_err(err, errlen, "Protocol driver '%s' does not support image creation", proto);
	else if (block_network_driver(proto) || (block_nbd_protocol(proto) && block_nbd_available()))
		/* QEMU creates on some of them; Kestrel writes an existing one with convert -n. */
		block_err(err, errlen, "Protocol driver '%s' does not support image creation in "
			  "Kestrel: write an existing one with convert -n",
			  block_nbd_protocol(proto) ? "nbd" : proto);
	else
		block_err(err, errlen, "Unknown protocol '%s'", proto);
	return NULL;
}

int block_create_name_check(const char *name, char *err, size_t errlen)
{
	return block_create_path(name, err, errlen) ? 0 : -1;
}

const struct block_remote_creator *block_remote_creator(const char *name)
{
	char proto[64];

	if (!protocol_of(name, proto, sizeof(proto)))
		return NULL;
	if (block_nfs_protocol(proto) && block_nfs_available())
		return &block_nfs_creator;
	if (block_gluster_protocol(proto) && block_gluster_available())
		return &block_gluster_creator;
	if (block_rbd_protocol(proto) && block_rbd_available())
		return &block_rbd_creator;
	if (block_iscsi_protocol(proto) && block_iscsi_available())
		return &block_iscsi_creator;
	return NULL;
}
