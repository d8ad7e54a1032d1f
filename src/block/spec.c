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
#include "block/curl.h"
#include "block/gluster.h"
#include "block/filter.h"
#include "block/iscsi.h"
#include "block/nbd.h"
#include "block/nfs.h"
#include "block/rbd.h"
#include "block/ssh.h"
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

static int get_bool(struct opts *o, const char *key, bool *out, char *err, size_t errlen)
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

	if (get_bool(o, "read-only", &ro, err, errlen) < 0 ||
	    get_bool(o, "force-share", &share, err, errlen) < 0 ||
	    get_bool(o, "cache.direct", &direct, err, errlen) < 0)
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
		if (get_bool(o, key, &n->read_zeroes, err, errlen) < 0)
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

/*
 * An nbd node from QEMU's BlockdevOptionsNbd (server.type inet|unix,
 * server.host/port or server.path, export), as libvirt's -blockdev writes
 * it: opened through the legacy name the same address has.
 */
static const char *get_under(struct opts *o, const char *pfx, const char *key)
{
	char full[64];

	snprintf(full, sizeof(full), "%s%s", pfx, key);
	return opts_get(o, full);
}

/* A whole number of seconds (QEMU's uint32 options reconnect-delay, open-timeout). */
static int get_seconds(struct opts *o, const char *pfx, const char *key, unsigned *out,
		       char *err, size_t errlen)
{
	const char *v = get_under(o, pfx, key);
	char *end;
	unsigned long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n > UINT32_MAX)
		return block_err(err, errlen, "Parameter '%s' expects uint32_t", key);
	*out = (unsigned)n;
	return 0;
}

/* tls-creds, tls-hostname, reconnect-delay, open-timeout of QEMU's BlockdevOptionsNbd. */
static int read_nbd_opts(struct opts *o, const char *pfx, struct block_nbd_opts *n, char *err,
			 size_t errlen)
{
	n->tls_creds = get_under(o, pfx, "tls-creds");
	n->tls_hostname = get_under(o, pfx, "tls-hostname");
	if (n->tls_hostname && !block_nbd_has_tls_hostname())
		return block_err(err, errlen, "Option 'tls-hostname' of block protocol 'nbd' is not "
				 "supported by Kestrel built with this libnbd (it has no "
				 "nbd_set_tls_hostname; the certificate is checked against the "
				 "server's host name)");
	if (n->tls_hostname && !n->tls_creds)
		return block_err(err, errlen, "tls-hostname is set but tls-creds is not");
	if (get_seconds(o, pfx, "reconnect-delay", &n->reconnect_delay, err, errlen) < 0 ||
	    get_seconds(o, pfx, "open-timeout", &n->open_timeout, err, errlen) < 0)
		return -1;
	return 0;
}

static int open_nbd_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			 struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	const char *type = get_under(o, pfx, "server.type"), *host = get_under(o, pfx, "server.host");
	const char *port = get_under(o, pfx, "server.port"), *path = get_under(o, pfx, "server.path");
	const char *export = get_under(o, pfx, "export"), *filename = get_under(o, pfx, "filename");
	struct block_nbd_opts n = { 0 };
	char name[4096];

	if (read_nbd_opts(o, pfx, &n, err, errlen) < 0)
		return -1;
	/* QEMU's nbd takes a whole address as its filename too. */
	if (filename && !type && !export)
		return block_nbd_open(filename, &n, format, flags, parent, out, err, errlen);
	if (!type)
		return block_err(err, errlen, "Parameter 'server.type' is missing");
	if (!strcmp(type, "unix")) {
		if (!path)
			return block_err(err, errlen, "Parameter 'server.path' is missing");
		snprintf(name, sizeof(name), "nbd:unix:%s", path);
	} else if (!strcmp(type, "inet")) {
		if (!host)
			return block_err(err, errlen, "Parameter 'server.host' is missing");
		snprintf(name, sizeof(name), "nbd:%s:%s", host, port ? port : "10809");
	} else {
		return block_err(err, errlen, "Parameter 'server.type' does not accept value '%s'",
				 type);
	}
	if (export && strlen(name) + strlen(export) + 13 < sizeof(name))
		snprintf(name + strlen(name), sizeof(name) - strlen(name), ":exportname=%s", export);
	return block_nbd_open(name, &n, format, flags, parent, out, err, errlen);
}

/* The network protocols, each with whether this build has its client library. */
static const struct { const char *name; bool (*available)(void); } network_protocols[] = {
	{ "nbd", block_nbd_available }, { "ssh", block_ssh_available },
	{ "http", block_curl_available }, { "https", block_curl_available },
	{ "ftp", block_curl_available }, { "ftps", block_curl_available },
	{ "gluster", block_gluster_available },
	{ "iscsi", block_iscsi_available },
	{ "nfs", block_nfs_available },
	{ "rbd", block_rbd_available },
};
#define N_NETWORK_PROTOCOLS (sizeof(network_protocols) / sizeof(network_protocols[0]))

/*
 * A protocol on a server that this build has a client for: its name as a
 * string that outlives the options (a node's format_name), or NULL.
 */
static const char *network_driver(const char *d)
{
	for (size_t i = 0; d && i < N_NETWORK_PROTOCOLS; i++)
		if (!strcmp(d, network_protocols[i].name) && network_protocols[i].available())
			return network_protocols[i].name;
	return NULL;
}

bool block_protocol_has_driver(const char *name)
{
	return network_driver(name) != NULL;
}

size_t block_network_protocols(const char **names, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < N_NETWORK_PROTOCOLS && n < max; i++)
		if (network_protocols[i].available())
			names[n++] = network_protocols[i].name;
	return n;
}

/* QEMU's BlockdevOptionsCurlBase (url, readahead, timeout, sslverify, cookie). */
static int open_curl_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			  struct block_dev *parent, struct block_dev **out, char *err,
			  size_t errlen)
{
	const char *url = get_under(o, pfx, "url"), *v;
	struct block_curl_opts c = { .cookie = get_under(o, pfx, "cookie") };
	char key[64];
	bool verify = true;
	uint64_t n;

	if (!url)
		url = get_under(o, pfx, "filename");
	if (!url)
		return block_err(err, errlen, "curl block driver requires an 'url' option");
	if ((v = get_under(o, pfx, "readahead")) && !size_parse(v, 1, &c.readahead))
		return block_err(err, errlen, "Parameter 'readahead' expects a size");
	if ((v = get_under(o, pfx, "timeout"))) {
		if (!size_parse(v, 1, &n) || n == 0 || n > 3600)
			return block_err(err, errlen, "timeout parameter is 0 or too large");
		c.timeout = (long)n;
	}
	snprintf(key, sizeof(key), "%ssslverify", pfx);
	if (get_bool(o, key, &verify, err, errlen) < 0)
		return -1;
	c.no_sslverify = !verify;
	return block_curl_open(url, &c, format, flags, parent, out, err, errlen);
}

/* QEMU's BlockdevOptionsSsh; the node is named as QEMU's ssh_refresh_filename names it. */
static int open_ssh_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			 struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_ssh_opts s = {
		.host = get_under(o, pfx, "server.host"), .port = get_under(o, pfx, "server.port"),
		.path = get_under(o, pfx, "path"), .user = get_under(o, pfx, "user"),
	};
	const char *mode = get_under(o, pfx, "host-key-check.mode");
	char display[4096];

	if (!s.host)
		return block_err(err, errlen, "Parameter 'server.host' is missing");
	if (!s.path)
		return block_err(err, errlen, "Parameter 'path' is missing");
	if (!s.user)
		s.user = block_ssh_default_user();
	if (mode && !strcmp(mode, "none")) {
		s.check = BLOCK_SSH_CHECK_NONE;
	} else if (mode && !strcmp(mode, "hash")) {
		const char *type = get_under(o, pfx, "host-key-check.type");
		s.check = BLOCK_SSH_CHECK_HASH;
		s.hash = get_under(o, pfx, "host-key-check.hash");
		if (!type || !s.hash)
			return block_err(err, errlen, "Parameter 'host-key-check.type' and "
					 "'host-key-check.hash' are required with mode 'hash'");
		snprintf(s.hash_type, sizeof(s.hash_type), "%s", type);
	} else if (mode && strcmp(mode, "known_hosts")) {
		return block_err(err, errlen, "Parameter 'host-key-check.mode' does not accept "
				 "value '%s'", mode);
	}
	snprintf(display, sizeof(display), "ssh://%s@%s:%s%s", s.user, s.host,
		 s.port ? s.port : "22", s.path);
	return block_ssh_open(display, &s, format, flags, parent, out, err, errlen);
}

/*
 * QEMU's BlockdevOptionsGluster: volume, path, server.N (inet host/port or
 * unix path, tried in order), debug, logfile; or the URL as filename.
 */
static const char *const gluster_unsupported_inet[] = {
	"numeric", "to", "ipv4", "ipv6", "keep-alive", "mptcp", NULL,
};

static int gluster_server_opts(struct opts *o, const char *pfx, struct block_gluster_opts *g,
			       char *err, size_t errlen)
{
	char key[96];

	for (int i = 0; ; i++) {
		struct block_gluster_server *s = &g->server[i < BLOCK_GLUSTER_MAX_SERVERS ? i : 0];
		const char *type;
		snprintf(key, sizeof(key), "%sserver.%d.type", pfx, i);
		type = opts_get(o, key);
		if (!type)
			return 0;
		if (i >= BLOCK_GLUSTER_MAX_SERVERS)
			return block_err(err, errlen, "Option 'server.%d' of block protocol 'gluster' "
					 "is not supported by Kestrel (at most %d servers)", i,
					 BLOCK_GLUSTER_MAX_SERVERS);
		for (const char *const *u = gluster_unsupported_inet; *u; u++) {
			snprintf(key, sizeof(key), "%sserver.%d.%s", pfx, i, *u);
			if (opts_get(o, key))
				return block_err(err, errlen, "Option 'server.%d.%s' of block protocol "
						 "'gluster' is not supported by Kestrel", i, *u);
		}
		memset(s, 0, sizeof(*s));
		if (!strcmp(type, "unix")) {
			s->is_unix = true;
			snprintf(key, sizeof(key), "%sserver.%d.path", pfx, i);
			s->path = opts_get(o, key);
			if (!s->path)
				return block_err(err, errlen, "Parameter 'server.%d.path' is missing", i);
		} else if (!strcmp(type, "inet")) {
			snprintf(key, sizeof(key), "%sserver.%d.host", pfx, i);
			s->host = opts_get(o, key);
			snprintf(key, sizeof(key), "%sserver.%d.port", pfx, i);
			s->port = opts_get(o, key);
			if (!s->host)
				return block_err(err, errlen, "Parameter 'server.%d.host' is missing", i);
			if (!s->port)
				return block_err(err, errlen, "Parameter 'server.%d.port' is missing", i);
		} else {
			return block_err(err, errlen, "Parameter 'server.%d.type' does not accept value "
					 "'%s'", i, type);
		}
		g->nservers = i + 1;
	}
}

static int open_gluster_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			     struct block_dev *parent, struct block_dev **out, char *err,
			     size_t errlen)
{
	const char *filename = get_under(o, pfx, "filename"), *v;
	struct block_gluster_opts g = { .debug = BLOCK_GLUSTER_DEBUG_DEFAULT, .logfile = "-" };
	char *storage = NULL, display[4096];
	int ret;

	if (filename && block_gluster_parse_uri(filename, &g, &storage, err, errlen) < 0) {
		free(storage);
		return -1;
	}
	if (!filename) {
		g.volume = get_under(o, pfx, "volume");
		g.path = get_under(o, pfx, "path");
		if (gluster_server_opts(o, pfx, &g, err, errlen) < 0)
			return -1;
		if (!g.volume || !g.path || !g.nservers)
			return block_err(err, errlen, "Parameter '%s' is missing\nUsage: -drive "
					 "driver=qcow2,file.driver=gluster,file.volume=testvol,"
					 "file.path=/path/a.qcow2[,file.debug=9][,file.logfile="
					 "/path/filename.log],file.server.0.type=inet,file.server.0."
					 "host=1.2.3.4,file.server.0.port=24007,file.server.1.transport"
					 "=unix,file.server.1.path=/var/run/glusterd.socket ...",
					 !g.volume ? "volume" : !g.path ? "path" : "server");
	}
	/* QEMU clamps debug to 0..9. */
	if ((v = get_under(o, pfx, "debug"))) {
		char *end;
		long d = strtol(v, &end, 10);
		if (!*v || *end)
			return free(storage), block_err(err, errlen, "Parameter 'debug' expects a "
							"number");
		g.debug = d < 0 ? 0 : d > BLOCK_GLUSTER_DEBUG_MAX ? BLOCK_GLUSTER_DEBUG_MAX : (int)d;
	}
	if ((v = get_under(o, pfx, "logfile")))
		g.logfile = v;
	if (filename)
		snprintf(display, sizeof(display), "%s", filename);
	else if (g.server[0].is_unix)
		snprintf(display, sizeof(display), "gluster+unix:///%s/%s?socket=%s", g.volume,
			 g.path, g.server[0].path);
	else
		snprintf(display, sizeof(display), "gluster://%s:%s/%s/%s", g.server[0].host,
			 g.server[0].port, g.volume, g.path);
	ret = block_gluster_open(display, &g, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

static int open_gluster_uri(const char *name, const char *format, unsigned flags,
			    struct block_dev *parent, struct block_dev **out, char *err,
			    size_t errlen)
{
	struct block_gluster_opts g;
	char *storage;
	int ret = block_gluster_parse_uri(name, &g, &storage, err, errlen);

	if (ret == 0)
		ret = block_gluster_open(name, &g, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

/* QEMU's BlockdevOptionsNfs, or its filename= URL (nfs.c reads both). */
static int open_nfs_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			 struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_nfs_opts n;
	char *storage;
	int ret = block_nfs_read_opts(o, pfx, &n, &storage, err, errlen);

	if (ret == 0)
		ret = block_nfs_open(&n, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

static int open_nfs_uri(const char *name, const char *format, unsigned flags,
			struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_nfs_opts n;
	char *storage;
	int ret = block_nfs_parse_uri(name, &n, &storage, err, errlen);

	if (ret == 0)
		ret = block_nfs_open(&n, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

static int open_ssh_uri(const char *name, const char *format, unsigned flags,
			struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_ssh_opts s;
	char *storage;
	int ret = block_ssh_parse_uri(name, &s, &storage, err, errlen);

	if (ret == 0)
		ret = block_ssh_open(name, &s, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

/* QEMU's BlockdevOptionsIscsi (block_iscsi_read_opts); the node names itself as QEMU does. */
static int open_iscsi_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			   struct block_dev *parent, struct block_dev **out, char *err,
			   size_t errlen)
{
	struct block_iscsi_opts s;

	if (block_iscsi_read_opts(o, pfx, &s, err, errlen) < 0)
		return -1;
	s.alone = !*pfx;
	return block_iscsi_open(&s, format, flags, parent, out, err, errlen);
}

static int open_iscsi_uri(const char *name, const char *format, unsigned flags,
			  struct block_dev *parent, struct block_dev **out, char *err,
			  size_t errlen)
{
	struct block_iscsi_opts s;
	char *storage;
	int ret = block_iscsi_parse_uri(name, &s, &storage, err, errlen);

	if (ret == 0)
		ret = block_iscsi_open(&s, format, flags, parent, out, err, errlen);
	free(storage);
	return ret;
}

/* QEMU's server list (InetSocketAddressBase): "host:port;..." for rados' mon_host. */
static int rbd_mon_host(struct opts *o, const char *pfx, char *out, size_t len, char *err,
			size_t errlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < 64; i++) {
		char key[64];
		const char *host, *port;
		int n;
		snprintf(key, sizeof(key), "server.%d.host", i);
		host = get_under(o, pfx, key);
		snprintf(key, sizeof(key), "server.%d.port", i);
		port = get_under(o, pfx, key);
		if (!host && !port)
			break;
		if (!host || !port)
			return block_err(err, errlen, "Parameter 'server.%d.%s' is missing", i,
					 host ? "port" : "host");
		/* An IPv6 address goes in brackets, as QEMU's qemu_rbd_mon_host writes it. */
		n = snprintf(out + used, len - used, strchr(host, ':') ? "%s[%s]:%s" : "%s%s:%s",
			     used ? ";" : "", host, port);
		if (n < 0 || (size_t)n >= len - used)
			return block_err(err, errlen, "Parameter 'server' is too long");
		used += (size_t)n;
	}
	return 0;
}

/* QEMU's RbdAuthMode list: auth-client-required.N = cephx|none, joined with ';'. */
static int rbd_auth_modes(struct opts *o, const char *pfx, char *out, size_t len, char *err,
			  size_t errlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < 8; i++) {
		char key[64];
		const char *v;
		snprintf(key, sizeof(key), "auth-client-required.%d", i);
		v = get_under(o, pfx, key);
		if (!v)
			break;
		if (strcmp(v, "cephx") && strcmp(v, "none"))
			return block_err(err, errlen, "Parameter 'auth-client-required[%d]' does "
					 "not accept value '%s'", i, v);
		if (used + strlen(v) + 2 > len)
			return block_err(err, errlen, "Parameter 'auth-client-required' is too long");
		used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ";" : "", v);
	}
	return 0;
}

/* One name/value into kv (BLOCK_RBD_NAME_MAX pairs) when the value is there. */
static void kv_add(const char **kv, size_t *n, const char *key, const char *value)
{
	if (value && *n < BLOCK_RBD_NAME_MAX) {
		kv[2 * *n] = key;
		kv[2 * *n + 1] = value;
		(*n)++;
	}
}

/*
 * The node renamed as QEMU names it: json: of its options, the format's
 * around them unless the rbd node is alone.  o: the -blockdev options (for
 * the server list), or NULL for a pseudo-filename, whose parse always sets
 * a namespace.
 */
static char *rbd_name(const char *format, const struct block_rbd_opts *r, struct opts *o,
		      const char *pfx)
{
	const char *kv[2 * BLOCK_RBD_NAME_MAX];
	char keys[16][32];
	size_t n = 0;

	kv_add(kv, &n, "pool", r->pool);
	kv_add(kv, &n, "image", r->image);
	kv_add(kv, &n, "conf", r->conf);
	kv_add(kv, &n, "snapshot", r->snapshot);
	kv_add(kv, &n, "driver", "rbd");
	kv_add(kv, &n, "namespace", r->nspace);
	kv_add(kv, &n, "user", r->user);
	for (int i = 0; o && i < 16; i++) {
		char full[64];
		snprintf(keys[i], sizeof(keys[0]), "server.%d.%s", i / 2, i % 2 ? "port" : "host");
		snprintf(full, sizeof(full), "%sserver.%d.%s", pfx, i / 2, i % 2 ? "port" : "host");
		kv_add(kv, &n, keys[i], opts_get(o, full));
	}
	return block_rbd_json_name(format, kv, n);
}

/*
 * Opens the node named by its options (as in the probe's warning), then
 * renames it with its format around them unless it is alone.
 */
static int rbd_open_named(const struct block_rbd_opts *r, struct opts *o, const char *pfx,
			  bool alone, const char *format, unsigned flags, struct block_dev *parent,
			  struct block_dev **out, char *err, size_t errlen)
{
	char *name = rbd_name(NULL, r, o, pfx);

	if (!name)
		return block_err(err, errlen, "out of memory");
	if (block_rbd_open(name, r, format, flags, parent, out, err, errlen) == 0 && !alone) {
		free(name);
		name = rbd_name(block_format_name(*out), r, o, pfx);
		if (name) {
			free((*out)->filename);
			(*out)->filename = name;
			return 0;
		}
	}
	free(name);
	return *out ? 0 : -1;
}

/*
 * QEMU's BlockdevOptionsRbd, or a legacy "filename" as qemu_rbd_open falls
 * back to; the node is named by its rbd: pseudo-filename.
 */
static int open_rbd_opts(struct opts *o, const char *pfx, const char *format, unsigned flags,
			 struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_rbd_opts r = { 0 };
	const char *filename = get_under(o, pfx, "filename");
	char mon[1024], auth[64], key[64];
	int ret;

	snprintf(key, sizeof(key), "%sencrypt", pfx);
	for (size_t i = 0; i < o->count; i++)
		if (!strncmp(o->items[i].key, key, strlen(key)))
			return block_err(err, errlen, "Option 'encrypt' of block protocol 'rbd' is "
					 "not supported by Kestrel");
	if (rbd_mon_host(o, pfx, mon, sizeof(mon), err, errlen) < 0 ||
	    rbd_auth_modes(o, pfx, auth, sizeof(auth), err, errlen) < 0)
		return -1;
	if (filename && block_rbd_parse_filename(filename, &r, err, errlen) < 0) {
		block_rbd_opts_free(&r);
		return -1;
	}
	if (!filename) {
		r.pool = get_under(o, pfx, "pool");
		r.image = get_under(o, pfx, "image");
		r.nspace = get_under(o, pfx, "namespace");
		r.snapshot = get_under(o, pfx, "snapshot");
		r.conf = get_under(o, pfx, "conf");
		r.user = get_under(o, pfx, "user");
		if (!r.pool)
			return block_err(err, errlen, "Parameter 'pool' is missing");
		if (!r.image)
			return block_err(err, errlen, "Parameter 'image' is missing");
	}
	r.key_secret = get_under(o, pfx, "key-secret");
	r.mon_host = *mon ? mon : NULL;
	r.auth_client_required = *auth ? auth : NULL;
	ret = rbd_open_named(&r, filename ? NULL : o, pfx, !*pfx, format, flags, parent, out, err,
			     errlen);
	block_rbd_opts_free(&r);
	return ret;
}

static int open_rbd_name(const char *name, const char *format, unsigned flags,
			 struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	struct block_rbd_opts r;
	int ret = block_rbd_parse_filename(name, &r, err, errlen);

	if (ret == 0)
		ret = rbd_open_named(&r, NULL, "", false, format, flags, parent, out, err, errlen);
	block_rbd_opts_free(&r);
	return ret;
}

/* A network protocol node, alone (format "nbd", "http"...) or under a format. */
static int open_network(struct opts *o, struct node *n, struct block_dev *parent,
			struct block_dev **out, char *err, size_t errlen)
{
	bool alone = network_driver(n->driver) != NULL;
	const char *proto = network_driver(alone ? n->driver : opts_get(o, "file.driver"));
	const char *pfx = alone ? "" : "file.";
	const char *format = alone ? "raw" : n->driver;
	int ret;

	if (!alone && n->driver && !block_format_has_driver(n->driver))
		return block_err(err, errlen, "Unknown driver '%s'", n->driver);
	if (!strcmp(proto, "nbd"))
		ret = open_nbd_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else if (!strcmp(proto, "ssh"))
		ret = open_ssh_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else if (!strcmp(proto, "gluster"))
		ret = open_gluster_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else if (!strcmp(proto, "iscsi"))
		ret = open_iscsi_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else if (!strcmp(proto, "nfs"))
		ret = open_nfs_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else if (!strcmp(proto, "rbd"))
		ret = open_rbd_opts(o, pfx, format, n->flags, parent, out, err, errlen);
	else
		ret = open_curl_opts(o, pfx, format, n->flags, parent, out, err, errlen);
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
	if (network_driver(n.driver) || network_driver(opts_get(o, "file.driver")))
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
	if (block_nbd_protocol(proto) && block_nbd_available())
		return block_nbd_open(name, NULL, format, flags, parent, out, err, errlen);
	if (block_ssh_protocol(proto) && block_ssh_available())
		return open_ssh_uri(name, format, flags, parent, out, err, errlen);
	if (block_gluster_protocol(proto) && block_gluster_available())
		return open_gluster_uri(name, format, flags, parent, out, err, errlen);
	if (block_iscsi_protocol(proto) && block_iscsi_available())
		return open_iscsi_uri(name, format, flags, parent, out, err, errlen);
	if (block_nfs_protocol(proto) && block_nfs_available())
		return open_nfs_uri(name, format, flags, parent, out, err, errlen);
	if (block_rbd_protocol(proto) && block_rbd_available())
		return open_rbd_name(name, format, flags, parent, out, err, errlen);
	if (block_curl_protocol(proto) && block_curl_available()) {
		struct block_curl_opts c = { 0 };
		return block_curl_open(name, &c, format, flags, parent, out, err, errlen);
	}
	return block_err(err, errlen, "Unknown protocol '%s'", proto);
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
	else if (network_driver(proto) || (block_nbd_protocol(proto) && block_nbd_available()))
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
	return NULL;
}
