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
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "cli/options_internal.h"
#include "virtio/devices.h"

#define FLAT_MAX 4096	/* the dotted form of a JSON -blockdev */

static int flatten(struct json_object *obj, const char *prefix, char *out, size_t *len);

/* An array's elements as "prefix.N" (QEMU's keyval: gluster's server list, say). */
static int flatten_array(struct json_object *arr, const char *prefix, char *out, size_t *len)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *el = json_object_array_get_idx(arr, i);
		char name[300];
		int n = snprintf(name, sizeof(name), "%s.%zu", prefix, i);
		if (n < 0 || (size_t)n >= sizeof(name) || !json_object_is_type(el, json_type_object) ||
		    flatten(el, name, out, len) < 0)
			return -1;
	}
	return 0;
}

/* Appends JSON object members as "prefix.key=value," with QEMU's ",," escaping. */
static int flatten(struct json_object *obj, const char *prefix, char *out, size_t *len)
{
	json_object_object_foreach(obj, key, val) {
		char name[256];
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_object_is_type(val, json_type_object)) {
			if (flatten(val, name, out, len) < 0)
				return -1;
			continue;
		}
		if (json_object_is_type(val, json_type_array)) {
			if (flatten_array(val, name, out, len) < 0)
				return -1;
			continue;
		}
		const char *v = json_object_is_type(val, json_type_boolean)
					? (json_object_get_boolean(val) ? "on" : "off")
					: json_object_get_string(val);
		if (!v || json_object_is_type(val, json_type_array))
			return -1;
		int n = snprintf(out + *len, FLAT_MAX - *len, "%s=", name);
		if (n < 0 || (size_t)n >= FLAT_MAX - *len)
			return -1;
		*len += (size_t)n;
		for (; *v; v++) {
			if (*len + 3 >= FLAT_MAX)
				return -1;
			out[(*len)++] = *v;
			if (*v == ',')
				out[(*len)++] = ',';
		}
		out[(*len)++] = ',';
		out[*len] = '\0';
	}
	return 0;
}

static struct opts *parse_blockdev(const char *opt, const char *arg)
{
	struct json_object *obj;
	struct opts *o;
	char *flat;
	size_t len = 0;

	if (arg[0] != '{')
		return parse_list(opt, arg, NULL);
	obj = json_tokener_parse(arg);
	flat = calloc(1, FLAT_MAX);
	if (!obj || !json_object_is_type(obj, json_type_object) || !flat ||
	    flatten(obj, "", flat, &len) < 0) {
		err_invalid(opt, arg, "not a JSON object of strings, numbers, booleans, objects and arrays of objects");
		o = NULL;
	} else {
		if (len)
			flat[len - 1] = '\0';	/* the last comma */
		o = parse_list(opt, flat, NULL);
	}
	json_object_put(obj);
	free(flat);
	return o;
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
		d->flags |= f->flags;
		d->readonly |= f->readonly;
		d->discard |= f->discard;
		d->aio_io_uring |= f->aio_io_uring;
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
	opts_get(o, "file.node-name");
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
		    options_key_secret(o, "key-secret", &d, opt, arg) < 0)
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
