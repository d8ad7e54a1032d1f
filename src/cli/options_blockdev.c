/*
 * -blockdev: QEMU's node syntax for disks, in dotted key=value form or as JSON.
 *
 *   -blockdev driver=file,node-name=f0,filename=disk.qcow2[,aio=][,cache.direct=on]...
 *   -blockdev driver=qcow2,node-name=d0,file=f0
 *   -blockdev driver=qcow2,node-name=d0,file.driver=file,file.filename=disk.qcow2
 *   -blockdev '{"driver":"raw","node-name":"d0","file":{"driver":"file","filename":"x"}}'
 *
 * Each node becomes a drive (struct drive_config) named by its node-name, for
 * -device virtio-blk-pci,drive=NODE.  A format node takes its protocol node's
 * file and settings over, and the protocol node stops being a drive of its
 * own (as in QEMU, one node cannot serve two writers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "block/block_img.h"
#include "cli/options_internal.h"
#include "virtio/devices.h"

#define FLAT_MAX 4096	/* a network node's json: name */

static struct opts *parse_blockdev(const char *opt, const char *arg)
{
	return arg[0] == '{' ? options_json_opts(opt, arg) : parse_list(opt, arg, NULL);
}

/*
 * backing=: QEMU's null (or the deprecated "") opens the format node without
 * its backing chain, reading unallocated clusters as zeroes (libvirt passes
 * "backing":null on every top node it chains itself); a node name would be a
 * chain of -blockdev nodes, which Kestrel does not build.
 */
static int node_backing(struct opts *o, struct drive_config *d, const char *opt, const char *arg)
{
	const char *backing = opts_get(o, "backing");
	bool is_null = false;

	if (!backing)
		return 0;
	for (size_t i = 0; i < o->count; i++)
		if (!strcmp(o->items[i].key, "backing"))
			is_null = o->items[i].null;
	if (!is_null && *backing)
		return err_invalid(opt, arg, "backing= naming a node is not supported: the image's "
				   "backing chain is opened from its header (give backing=null or "
				   "leave it out)");
	d->flags |= BLOCK_NO_BACKING;
	return 0;
}

/*
 * The settings a node of either kind may carry, under prefix ("" or "file.").
 * QEMU's cache.direct is O_DIRECT, cache.no-flush ignores flushes; read-only,
 * locking, aio, discard and detect-zeroes mean what they mean for -drive.
 */
static int node_settings(struct opts *o, const char *prefix, struct drive_config *d,
			 const char *opt, const char *arg)
{
	char key[64];
	bool direct = false, no_flush = false, ro = false, lock = true;
	const char *aio, *discard, *detect, *locking;

#define KEY(name) (snprintf(key, sizeof(key), "%s%s", prefix, name), key)
	if (!opts_get_bool(o, KEY("cache.direct"), &direct) ||
	    !opts_get_bool(o, KEY("cache.no-flush"), &no_flush) ||
	    !opts_get_bool(o, KEY("read-only"), &ro) ||
	    !opts_get_bool(o, KEY("auto-read-only"), &(bool){ false }))
		return err_invalid(opt, arg, "cache.direct, cache.no-flush and read-only take on or off");
	locking = opts_get(o, KEY("locking"));
	if (locking && strcmp(locking, "auto") && !opts_get_bool(o, key, &lock))
		return err_invalid(opt, arg, "locking= must be on, off or auto");
	aio = opts_get(o, KEY("aio"));
	discard = opts_get(o, KEY("discard"));
	detect = opts_get(o, KEY("detect-zeroes"));
#undef KEY
	d->flags |= (direct ? BLOCK_NOCACHE : 0) | (no_flush ? BLOCK_NO_FLUSH : 0) |
		    (ro ? BLOCK_RDONLY : 0) | (lock ? 0 : BLOCK_NO_LOCK);
	d->readonly |= ro;
	return options_drive_io(d, discard, aio, detect, direct, "cache.direct=on", opt, arg);
}

static bool is_protocol(const char *driver)
{
	return !strcmp(driver, "file") || !strcmp(driver, "host_device");
}

/* Appends s to the JSON text at out (FLAT_MAX bytes), escaped as a JSON string. */
static int json_str(char *out, size_t *len, const char *s)
{
	if (*len + 2 >= FLAT_MAX)
		return -1;
	out[(*len)++] = '"';
	for (; *s; s++) {
		int n = (unsigned char)*s < 0x20 ? snprintf(out + *len, FLAT_MAX - *len, "\\u%04x",
							   (unsigned char)*s)
			: *s == '"' || *s == '\\' ? snprintf(out + *len, FLAT_MAX - *len, "\\%c", *s)
			: snprintf(out + *len, FLAT_MAX - *len, "%c", *s);
		if (n < 0 || (size_t)n >= FLAT_MAX - *len)
			return -1;
		*len += (size_t)n;
	}
	if (*len + 2 >= FLAT_MAX)
		return -1;
	out[(*len)++] = '"';
	out[*len] = '\0';
	return 0;
}

/*
 * A protocol node on a server (nbd, ssh, gluster, ...): its options not yet
 * taken, under prefix, become a json: name whose "file" is the node, so the
 * block layer parses them as kestrel-img's --image-opts (one parser, QEMU's
 * option names) and the drive's format goes on top of it.
 */
static int json_member(char *out, size_t *len, const char *key, const char *value)
{
	if (*len + 2 >= FLAT_MAX)
		return -1;
	if (out[*len - 1] != '{')
		out[(*len)++] = ',';
	if (json_str(out, len, key) < 0 || *len + 2 >= FLAT_MAX)
		return -1;
	out[(*len)++] = ':';
	return json_str(out, len, value);
}

static char *network_node(struct opts *o, const char *prefix)
{
	size_t plen = strlen(prefix), len;
	char key[64], *out = calloc(1, FLAT_MAX);
	int ret;

	if (!out)
		return NULL;
	snprintf(key, sizeof(key), "%sdriver", prefix);
	len = (size_t)snprintf(out, FLAT_MAX, "json:{\"file\":{");
	ret = json_member(out, &len, "driver", opts_get(o, key));
	for (size_t i = 0; ret == 0 && i < o->count; i++) {
		struct opt *it = &o->items[i];
		if (it->used || strncmp(it->key, prefix, plen))
			continue;
		it->used = true;
		ret = json_member(out, &len, it->key + plen, it->value);
	}
	if (ret < 0 || len + 3 >= FLAT_MAX) {
		free(out);
		return NULL;
	}
	memcpy(out + len, "}}", 3);
	return out;
}

/* Removes drive i (a protocol node a format node took over). */
static void drop_drive(struct vm_config *cfg, unsigned i)
{
	memmove(&cfg->drives[i], &cfg->drives[i + 1],
		(cfg->nr_drives - i - 1) * sizeof(cfg->drives[0]));
	cfg->nr_drives--;
}

/* A format node's file: a protocol node by name, or one described inline (file.*). */
static int format_file(struct vm_config *cfg, struct opts *o, struct drive_config *d,
		       const char *opt, const char *arg)
{
	const char *ref = opts_get(o, "file"), *fdrv = opts_get(o, "file.driver");
	char msg[160];

	if (ref && !fdrv) {
		struct drive_config *f = find_drive(cfg, ref);
		if (!f || !f->blockdev) {
			snprintf(msg, sizeof(msg), "Cannot find device='%s' nor node-name='%s'",
				 ref, ref);
			return err_invalid(opt, arg, msg);
		}
		if (!f->protocol) {
			snprintf(msg, sizeof(msg), "node '%s' is a format node; file= needs a "
				 "file or host_device node", ref);
			return err_invalid(opt, arg, msg);
		}
		d->file = f->file;	/* ownership moves with the node */
		snprintf(d->file_node, sizeof(d->file_node), "%s", f->id);
		d->flags |= f->flags;
		d->readonly |= f->readonly;
		d->discard |= f->discard;
		d->aio_io_uring |= f->aio_io_uring;
		d->aio_native |= f->aio_native;
		if (!d->detect_zeroes)
			d->detect_zeroes = f->detect_zeroes;
		drop_drive(cfg, (unsigned)(f - cfg->drives));
		return 0;
	}
	if (fdrv && block_protocol_has_driver(fdrv)) {
		if (node_settings(o, "file.", d, opt, arg) < 0)
			return -1;
		opts_get(o, "file.node-name");
		d->file = network_node(o, "file.");
		return d->file ? 0 : err_invalid(opt, arg, "the node's options are too long");
	}
	if (!fdrv || !is_protocol(fdrv))
		return err_invalid(opt, arg, "file= must name a file node, or file.driver=file with "
				   "file.filename= describe one");
	const char *filename = opts_get(o, "file.filename");
	if (!filename || !*filename)
		return err_invalid(opt, arg, "file.filename= is needed");
	const char *fnode = opts_get(o, "file.node-name");
	if (fnode && strlen(fnode) >= sizeof(d->file_node))
		return err_invalid(opt, arg, "file.node-name= is at most 31 characters");
	snprintf(d->file_node, sizeof(d->file_node), "%s", fnode ? fnode : "");
	if (node_settings(o, "file.", d, opt, arg) < 0)
		return -1;
	d->file = strdup(filename);
	return d->file ? 0 : err_invalid(opt, arg, "out of memory");
}

int options_blockdev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_blockdev(opt, arg);
	struct drive_config d = { .blockdev = true, .iface = DRIVE_IF_NONE, .index = -1 };
	const char *driver, *node;
	char msg[160];
	int rc = -1;

	if (!o)
		return -1;
	driver = opts_get(o, "driver");
	node = opts_get(o, "node-name");
	if (!driver) {
		err_invalid(opt, arg, "Parameter 'driver' is missing");
		goto out;
	}
	if (!node || !*node) {
		err_invalid(opt, arg, "'node-name' must be specified for the root node");
		goto out;
	}
	if (strlen(node) >= sizeof(d.id) || strspn(node, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != strlen(node)) {
		err_invalid(opt, arg, "node-name= is at most 31 letters, digits, '-', '.', '_'");
		goto out;
	}
	if (find_drive(cfg, node)) {
		snprintf(msg, sizeof(msg), "Duplicate nodes with node-name='%s'", node);
		err_invalid(opt, arg, msg);
		goto out;
	}
	snprintf(d.id, sizeof(d.id), "%s", node);
	if (is_protocol(driver)) {
		const char *filename = opts_get(o, "filename");
		if (!filename || !*filename) {
			err_invalid(opt, arg, "Parameter 'filename' is missing");
			goto out;
		}
		if (node_settings(o, "", &d, opt, arg) < 0)
			goto out;
		d.protocol = true;
		strcpy(d.format, "raw");	/* a device on a file node sees the bytes */
		d.file = strdup(filename);
	} else if (!strcmp(driver, "throttle")) {
		if (options_blockdev_throttle(cfg, o, &d, opt, arg) < 0)
			goto out;
	} else if (block_protocol_has_driver(driver)) {
		if (node_settings(o, "", &d, opt, arg) < 0)
			goto out;
		d.protocol = true;
		strcpy(d.format, "raw");	/* a device on a protocol node sees the bytes */
		d.file = network_node(o, "");
		if (!d.file) {
			err_invalid(opt, arg, "the node's options are too long");
			goto out;
		}
	} else if (block_format_has_driver(driver)) {
		/* The block layer opens the data file the image names; no node may replace it. */
		if (opts_get(o, "data-file") || opts_get(o, "data-file.driver")) {
			err_invalid(opt, arg, "data-file= is not supported: a qcow2 image's external "
				    "data file is the one its header names, next to the image");
			goto out;
		}
		if (node_settings(o, "", &d, opt, arg) < 0 || format_file(cfg, o, &d, opt, arg) < 0 ||
		    options_overlap_check(o, driver, &d, opt, arg) < 0 ||
		    options_key_secret(o, "key-secret", &d, opt, arg) < 0 ||
		    node_backing(o, &d, opt, arg) < 0)
			goto out;
		strcpy(d.format, driver);
	} else {
		snprintf(msg, sizeof(msg), "Unknown driver '%s' (kestrel has file, host_device "
			 "and the image formats kestrel-img lists)", driver);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (!d.file) {
		err_invalid(opt, arg, "out of memory");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0 || cfg->nr_drives == VM_MAX_DRIVES) {
		if (cfg->nr_drives == VM_MAX_DRIVES)
			err_invalid(opt, arg, "too many drives");
		goto out;
	}
	cfg->drives[cfg->nr_drives++] = d;
	rc = 0;
out:
	if (rc < 0)
		free(d.file);	/* strdup'd, or moved from a file node: ours until added */
	opts_free(o);
	return rc;
}
