/*
 * ssh: a disk that is a file on an SSH server, read and written over SFTP
 * (draft-ietf-secsh-filexfer-02) through libssh, as QEMU's block/ssh.c:
 * ssh://[user@]host[:port]/path[?host_key_check=yes|no|md5:X|sha1:X|sha256:X]
 * or -blockdev driver=ssh (server.host, server.port, path, user,
 * host-key-check.mode=none|hash|known_hosts).  The server's host key is
 * checked against ~/.ssh/known_hosts unless told otherwise, and the user
 * is authenticated by the identities in ssh-agent, as QEMU does.
 */
#include "block/block_int.h"
#include "block/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef KESTREL_SSH
#include <libssh/libssh.h>
#include <libssh/sftp.h>

/* The most one SFTP read or write asks for (OpenSSH's server limit is 256 KiB). */
#define SSH_MAX_REQUEST		(128u << 10)

struct ssh_conn {
	ssh_session session;
	sftp_session sftp;
	sftp_file file;
	pthread_mutex_t lock;		/* libssh sessions are not shared between threads */
	uint64_t size;
	char *path;
	bool can_fsync;
};

/* A libssh error as errno: SFTP's status codes where there are some. */
static int sftp_errno(struct ssh_conn *c)
{
	switch (sftp_get_error(c->sftp)) {
	case SSH_FX_NO_SUCH_FILE: return -ENOENT;
	case SSH_FX_PERMISSION_DENIED: return -EACCES;
	case SSH_FX_OP_UNSUPPORTED: return -ENOTSUP;
	default: return -EIO;
	}
}

/* Reads [off, off+len) one request at a time; past the end of the file: zeroes, as a file. */
static int read_sync(struct ssh_conn *c, uint64_t off, uint8_t *p, size_t len)
{
	if (sftp_seek64(c->file, off) < 0)
		return sftp_errno(c);
	while (len) {
		ssize_t n = sftp_read(c->file, p, len < SSH_MAX_REQUEST ? len : SSH_MAX_REQUEST);
		if (n < 0)
			return sftp_errno(c);
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Up to SSH_READ_DEPTH reads of SSH_READ_CHUNK in flight, as OpenSSH's sftp
 * client pipelines them: one request per round trip left a large read
 * waiting on the link's latency and the channel window (bench/storage: ssh
 * "from" at 0.19x of qemu-img).  Every request sent is collected, even after
 * an error, so that no answer is left for a later read to take.  A short
 * answer (allowed by the SFTP draft, section 6.4) is completed synchronously.
 */
#define SSH_READ_CHUNK		(64u << 10)
#define SSH_READ_DEPTH		32

static int read_batch(struct ssh_conn *c, uint64_t off, uint8_t *p, size_t len, size_t *done)
{
	int ids[SSH_READ_DEPTH], got[SSH_READ_DEPTH], n = 0, ret = 0;
	size_t queued = 0;

	if (sftp_seek64(c->file, off) < 0)
		return sftp_errno(c);
	while (n < SSH_READ_DEPTH && queued < len) {
		size_t l = len - queued < SSH_READ_CHUNK ? len - queued : SSH_READ_CHUNK;
		ids[n] = sftp_async_read_begin(c->file, (uint32_t)l);
		if (ids[n] < 0) {
			ret = sftp_errno(c);
			break;
		}
		queued += l;
		n++;
	}
	for (int i = 0; i < n; i++) {
		size_t at = (size_t)i * SSH_READ_CHUNK;
		size_t l = len - at < SSH_READ_CHUNK ? len - at : SSH_READ_CHUNK;
		got[i] = sftp_async_read(c->file, p + at, (uint32_t)l, (uint32_t)ids[i]);
		if (got[i] < 0 && ret == 0)
			ret = sftp_errno(c);
	}
	for (int i = 0; ret == 0 && i < n; i++) {
		size_t at = (size_t)i * SSH_READ_CHUNK;
		size_t l = len - at < SSH_READ_CHUNK ? len - at : SSH_READ_CHUNK;
		if ((size_t)got[i] < l)
			ret = read_sync(c, off + at + (size_t)got[i], p + at + got[i],
					l - (size_t)got[i]);
	}
	*done = queued;
	return ret;
}

static int ssh_conn_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct ssh_conn *c = conn;
	uint8_t *p = buf;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (ret == 0 && len) {
		size_t done = 0;
		ret = read_batch(c, off, p, len, &done);
		off += done;
		p += done;
		len -= done;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int ssh_conn_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct ssh_conn *c = conn;
	const uint8_t *p = buf;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (sftp_seek64(c->file, off) < 0)
		ret = sftp_errno(c);
	while (ret == 0 && len) {
		ssize_t n = sftp_write(c->file, p, len < SSH_MAX_REQUEST ? len : SSH_MAX_REQUEST);
		if (n <= 0) {
			ret = n < 0 ? sftp_errno(c) : -EIO;
		} else {
			p += n;
			len -= (size_t)n;
			off += (uint64_t)n;
		}
	}
	if (ret == 0 && off > c->size)
		c->size = off;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* fsync@openssh.com where the server has it; otherwise QEMU warns and goes on. */
static int ssh_conn_flush(void *conn)
{
	struct ssh_conn *c = conn;
	static bool warned;
	int ret = 0;

	if (!c->can_fsync) {
		if (!warned)
			fprintf(stderr, "warning: ssh server does not support fsync: flush ignored\n");
		warned = true;
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	if (sftp_fsync(c->file) < 0)
		ret = sftp_errno(c);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int ssh_conn_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	(void)may_unmap;
	/* SFTP has no way to write zeroes but sending them. */
	return block_write_zero_buffer(ssh_conn_pwrite, conn, off, len);
}

/* Grows the file (QEMU's ssh driver cannot shrink one). */
static int ssh_conn_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	struct ssh_conn *c = conn;
	struct sftp_attributes_struct attr = { .flags = SSH_FILEXFER_ATTR_SIZE, .size = size };
	int ret = 0;

	if (size < c->size)
		return block_err(err, errlen, "ssh driver does not support shrinking files");
	pthread_mutex_lock(&c->lock);
	if (sftp_setstat(c->sftp, c->path, &attr) < 0)
		ret = block_err(err, errlen, "Failed to resize the file: %s",
				ssh_get_error(c->session));
	else
		c->size = size;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int64_t ssh_conn_size(void *conn)
{
	return (int64_t)((struct ssh_conn *)conn)->size;
}

static void ssh_conn_close(void *conn)
{
	struct ssh_conn *c = conn;

	if (c->file)
		sftp_close(c->file);
	if (c->sftp)
		sftp_free(c->sftp);
	if (c->session) {
		ssh_disconnect(c->session);
		ssh_free(c->session);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}

static const struct block_proto ssh_proto = {
	.name = "ssh",
	.label = "SSH",
	.pread = ssh_conn_pread,
	.pwrite = ssh_conn_pwrite,
	.flush = ssh_conn_flush,
	.zero = ssh_conn_zero,
	.truncate = ssh_conn_truncate,
	.size = ssh_conn_size,
	.close = ssh_conn_close,
};

/* given (hex, colons allowed, any case) names the same bytes as hash. */
static bool fingerprint_matches(const unsigned char *hash, size_t len, const char *given)
{
	size_t i = 0;

	for (; *given && i < len; given++) {
		char hex[3];
		if (*given == ':')
			continue;
		if (!given[1])
			return false;
		snprintf(hex, sizeof(hex), "%02x", hash[i++]);
		if (strncasecmp(given, hex, 2))
			return false;
		given++;
	}
	return i == len && !*given;
}

static int check_hash(struct ssh_conn *c, const struct block_ssh_opts *o, char *err,
		      size_t errlen)
{
	static const struct { const char *name; enum ssh_publickey_hash_type type; } types[] = {
		{ "md5", SSH_PUBLICKEY_HASH_MD5 }, { "sha1", SSH_PUBLICKEY_HASH_SHA1 },
		{ "sha256", SSH_PUBLICKEY_HASH_SHA256 },
	};
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t i, len = 0;
	int ret = -1;

	for (i = 0; i < 3 && strcmp(types[i].name, o->hash_type); i++)
		;
	if (i == 3)
		return block_err(err, errlen, "unknown host_key_check hash type (%s)", o->hash_type);
	if (ssh_get_server_publickey(c->session, &key) < 0 ||
	    ssh_get_publickey_hash(key, types[i].type, &hash, &len) < 0) {
		block_err(err, errlen, "failed to read remote host key: %s",
			  ssh_get_error(c->session));
	} else if (!fingerprint_matches(hash, len, o->hash)) {
		char hex[2 * 64 + 1] = "";
		for (size_t k = 0; k < len && k < 64; k++)
			snprintf(hex + 2 * k, 3, "%02x", hash[k]);
		block_err(err, errlen, "remote host %s key fingerprint '%s:%s' does not match "
			  "host_key_check '%s:%s'", ssh_key_type_to_char(ssh_key_type(key)),
			  o->hash_type, hex, o->hash_type, o->hash);
	} else {
		ret = 0;
	}
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return ret;
}

/* QEMU's check_host_key: known_hosts unless host_key_check says otherwise. */
static int check_host_key(struct ssh_conn *c, const struct block_ssh_opts *o, char *err,
			  size_t errlen)
{
	if (o->check == BLOCK_SSH_CHECK_NONE)
		return 0;
	if (o->check == BLOCK_SSH_CHECK_HASH)
		return check_hash(c, o, err, errlen);
	switch (ssh_session_is_known_server(c->session)) {
	case SSH_KNOWN_HOSTS_OK:
		return 0;
	case SSH_KNOWN_HOSTS_CHANGED:
		return block_err(err, errlen, "host key does not match the one in known_hosts");
	case SSH_KNOWN_HOSTS_OTHER:
		return block_err(err, errlen, "host key for server was not found but another type "
				 "of key exists");
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		return block_err(err, errlen, "no host key was found in known_hosts");
	default:
		return block_err(err, errlen, "failed to read known_hosts: %s",
				 ssh_get_error(c->session));
	}
}

static int ssh_connect_to(struct ssh_conn *c, const struct block_ssh_opts *o, char *err,
			  size_t errlen)
{
	unsigned port = o->port ? (unsigned)atoi(o->port) : 22;
	long timeout = 30;

	c->session = ssh_new();
	if (!c->session)
		return block_err(err, errlen, "out of memory");
	if (ssh_options_set(c->session, SSH_OPTIONS_HOST, o->host) < 0 ||
	    ssh_options_set(c->session, SSH_OPTIONS_PORT, &port) < 0 ||
	    ssh_options_set(c->session, SSH_OPTIONS_USER, o->user) < 0 ||
	    ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout) < 0)
		return block_err(err, errlen, "%s", ssh_get_error(c->session));
	if (ssh_connect(c->session) != SSH_OK)
		return block_err(err, errlen, "Failed to connect to '%s:%u': %s", o->host, port,
				 strstr(ssh_get_error(c->session), "Connection refused")
				 ? "Connection refused" : ssh_get_error(c->session));
	if (check_host_key(c, o, err, errlen) < 0)
		return -1;
	if (ssh_userauth_agent(c->session, NULL) != SSH_AUTH_SUCCESS)
		return block_err(err, errlen, "failed to authenticate using publickey "
				 "authentication and the identities held by your ssh-agent");
	c->sftp = sftp_new(c->session);
	if (!c->sftp || sftp_init(c->sftp) < 0)
		return block_err(err, errlen, "failed to initialize sftp handle: %s",
				 ssh_get_error(c->session));
	c->can_fsync = sftp_extension_supported(c->sftp, "fsync@openssh.com", "1");
	return 0;
}

static int ssh_open_file(struct ssh_conn *c, const struct block_ssh_opts *o, bool read_only,
			 char *err, size_t errlen)
{
	sftp_attributes attr;

	c->path = strdup(o->path);
	if (!c->path)
		return block_err(err, errlen, "out of memory");
	c->file = sftp_open(c->sftp, o->path, read_only ? O_RDONLY : O_RDWR, 0);
	if (!c->file)
		return block_err(err, errlen, "failed to open remote file '%s': %s (libssh error "
				 "code: %d, sftp error code: %d)", o->path,
				 ssh_get_error(c->session), ssh_get_error_code(c->session),
				 sftp_get_error(c->sftp));
	attr = sftp_fstat(c->file);
	if (!attr)
		return block_err(err, errlen, "failed to read file attributes of '%s'", o->path);
	c->size = attr->size;
	sftp_attributes_free(attr);
	return 0;
}

int block_ssh_open(const char *display, const struct block_ssh_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	struct ssh_conn *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	if (ssh_connect_to(c, o, err, errlen) < 0 ||
	    ssh_open_file(c, o, flags & BLOCK_RDONLY, err, errlen) < 0) {
		ssh_conn_close(c);
		return -1;
	}
	return block_open_proto(display, &ssh_proto, c, format, flags, parent, out, err, errlen);
}

bool block_ssh_available(void)
{
	return true;
}

#else

int block_ssh_open(const char *display, const struct block_ssh_opts *o, const char *format,
		   unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	return block_err(err, errlen, "Unknown protocol 'ssh'");
}

bool block_ssh_available(void)
{
	return false;
}

#endif

/* The user QEMU picks when none is named: the process's own. */
static const char *default_user(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw ? pw->pw_name : "root";
}

int block_ssh_parse_uri(const char *uri, struct block_ssh_opts *o, char **storage, char *err,
			size_t errlen)
{
	const char *rest = uri + strlen("ssh://"), *slash = strchr(rest, '/');
	char *p, *path, *query, *at, *colon;
	size_t alen;

	memset(o, 0, sizeof(*o));
	*storage = NULL;
	if (!slash)
		return block_err(err, errlen, "Invalid URI: no path");
	/* storage: the authority, a NUL, then the path with its '/'. */
	alen = (size_t)(slash - rest);
	*storage = p = malloc(strlen(rest) + 2);
	if (!p)
		return block_err(err, errlen, "out of memory");
	memcpy(p, rest, alen);
	p[alen] = '\0';
	path = strcpy(p + alen + 1, slash);
	query = strchr(path, '?');
	if (query) {
		*query++ = '\0';
		if (strncmp(query, "host_key_check=", 15) || strchr(query, '&'))
			return block_err(err, errlen, "Invalid URI: the only query parameter is "
					 "host_key_check");
		if (block_ssh_check_setting(query + 15, o, err, errlen) < 0)
			return -1;
	}
	o->path = path;
	at = strchr(p, '@');
	if (at) {
		*at = '\0';
		o->user = p;
		p = at + 1;
	}
	colon = strrchr(p, ':');
	if (colon) {
		*colon = '\0';
		o->port = colon + 1;
	}
	o->host = p;
	if (!*o->host)
		return block_err(err, errlen, "Invalid URI: no host");
	if (!o->user)
		o->user = default_user();
	return 0;
}

int block_ssh_check_setting(const char *v, struct block_ssh_opts *o, char *err, size_t errlen)
{
	const char *colon = strchr(v, ':');

	if (!strcmp(v, "no")) {
		o->check = BLOCK_SSH_CHECK_NONE;
	} else if (!strcmp(v, "yes")) {
		o->check = BLOCK_SSH_CHECK_KNOWN_HOSTS;
	} else if (colon && (!strncmp(v, "md5:", 4) || !strncmp(v, "sha1:", 5) ||
			     !strncmp(v, "sha256:", 7))) {
		o->check = BLOCK_SSH_CHECK_HASH;
		snprintf(o->hash_type, sizeof(o->hash_type), "%.*s", (int)(colon - v), v);
		o->hash = colon + 1;
	} else {
		return block_err(err, errlen, "unknown host_key_check setting (%s)", v);
	}
	return 0;
}

const char *block_ssh_default_user(void)
{
	return default_user();
}

bool block_ssh_protocol(const char *proto)
{
	return !strcmp(proto, "ssh");
}
