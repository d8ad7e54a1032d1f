/*
 * The network protocols' side of spec.c: their nodes from QEMU's block
 * options (nbd, http(s)/ftp(s), ssh, gluster, iscsi, nfs, rbd) and from
 * their URLs and legacy names, each through its driver's own options.
 */
#include "block/block_int.h"
#include "block/spec_int.h"
#include "block/curl.h"
#include "block/gluster.h"
#include "block/iscsi.h"
#include "block/nbd.h"
#include "block/nfs.h"
#include "block/rbd.h"
#include "block/ssh.h"
#include "util/opts.h"
#include "util/size.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
const char *block_network_driver(const char *d)
{
	for (size_t i = 0; d && i < N_NETWORK_PROTOCOLS; i++)
		if (!strcmp(d, network_protocols[i].name) && network_protocols[i].available())
			return network_protocols[i].name;
	return NULL;
}

bool block_protocol_has_driver(const char *name)
{
	return block_network_driver(name) != NULL;
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
	if (block_spec_get_bool(o, key, &verify, err, errlen) < 0)
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

int block_open_net_opts(const char *proto, struct opts *o, const char *pfx, const char *format,
			unsigned flags, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen)
{
	if (!strcmp(proto, "nbd"))
		return open_nbd_opts(o, pfx, format, flags, parent, out, err, errlen);
	if (!strcmp(proto, "ssh"))
		return open_ssh_opts(o, pfx, format, flags, parent, out, err, errlen);
	if (!strcmp(proto, "gluster"))
		return open_gluster_opts(o, pfx, format, flags, parent, out, err, errlen);
	if (!strcmp(proto, "iscsi"))
		return open_iscsi_opts(o, pfx, format, flags, parent, out, err, errlen);
	if (!strcmp(proto, "nfs"))
		return open_nfs_opts(o, pfx, format, flags, parent, out, err, errlen);
	if (!strcmp(proto, "rbd"))
		return open_rbd_opts(o, pfx, format, flags, parent, out, err, errlen);
	return open_curl_opts(o, pfx, format, flags, parent, out, err, errlen);
}

int block_open_net_uri(const char *name, const char *proto, const char *format, unsigned flags,
		       struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
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
