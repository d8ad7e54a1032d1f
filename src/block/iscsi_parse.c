/*
 * The parts of the iSCSI driver that need no libiscsi, so that every build
 * (and the fuzz target) has them: the iscsi:// URL and -blockdev options as
 * QEMU's block/iscsi.c reads them, the LUN geometry a target reports, and
 * byte I/O over whole-block SCSI commands.
 */
#include "block/block_int.h"
#include "block/iscsi.h"
#include "util/opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libiscsi's LUN encoding: one-level flat addressing, 14 bits (SAM-5 4.7.7). */
#define ISCSI_MAX_LUN		16383
/* The most one READ/WRITE moves, whatever the target allows. */
#define ISCSI_MAX_XFER		(4u << 20)

bool block_iscsi_protocol(const char *proto)
{
	return !strcmp(proto, "iscsi");
}

/* A LUN or timeout: decimal digits only, at most max. */
static bool parse_uint(const char *s, long max, int *out)
{
	long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > max)
			return false;
	}
	*out = (int)v;
	return true;
}

/* libiscsi's iscsi_parse_full_url: "user%password@" is optional, the rest is not. */
int block_iscsi_parse_uri(const char *uri, struct block_iscsi_opts *o, char **storage, char *err,
			  size_t errlen)
{
	char *p, *slash, *at, *lun;

	memset(o, 0, sizeof(*o));
	o->header_digest = BLOCK_ISCSI_DIGEST_DEFAULT;
	*storage = NULL;
	if (strncmp(uri, "iscsi://", 8))
		return block_err(err, errlen, "Failed to parse URL : %s", uri);
	/* QEMU takes only the address from the URL; libiscsi's ?header_digest= etc. it drops. */
	if (strchr(uri, '?'))
		return block_err(err, errlen, "Failed to parse URL : %s: query parameters are not "
				 "supported by Kestrel (use the driver's options)", uri);
	*storage = p = strdup(uri + 8);
	if (!p)
		return block_err(err, errlen, "out of memory");
	slash = strchr(p, '/');
	if (!slash)
		return block_err(err, errlen, "Failed to parse URL : %s", uri);
	*slash = '\0';
	at = strrchr(p, '@');
	if (at) {
		char *pct = strchr(p, '%');
		*at = '\0';
		if (pct && pct < at) {
			*pct = '\0';
			o->password = pct + 1;
		} else {
			/* libiscsi: a user without "%password" takes it from the environment. */
			o->password = getenv("LIBISCSI_CHAP_PASSWORD");
		}
		/* ...and without any password the user is dropped (no CHAP), as QEMU shows. */
		o->user = o->password ? p : NULL;
		p = at + 1;
	}
	o->portal = p;
	o->target = slash + 1;
	lun = strchr(o->target, '/');
	if (!*o->portal || !lun || lun == o->target)
		return block_err(err, errlen, "Failed to parse URL : %s", uri);
	*lun++ = '\0';
	if (!parse_uint(lun, ISCSI_MAX_LUN, &o->lun))
		return block_err(err, errlen, "Failed to parse URL : %s", uri);
	return 0;
}

static const char *get_under(struct opts *opts, const char *pfx, const char *key)
{
	char full[64];

	snprintf(full, sizeof(full), "%s%s", pfx, key);
	return opts_get(opts, full);
}

/* QEMU's IscsiHeaderDigest names, in libiscsi's enum order. */
static int digest_of(const char *v)
{
	static const char *const names[] = { "none", "none-crc32c", "crc32c-none", "crc32c" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

/*
 * The options QEMU's iscsi_open reads (its runtime_opts), with its messages.
 * A URL is parsed only as a plain image name, never as a "filename" option
 * (QEMU 7.2's iscsi has no bdrv_parse_filename for option lists either).
 */
int block_iscsi_read_opts(struct opts *opts, const char *pfx, struct block_iscsi_opts *o,
			  char *err, size_t errlen)
{
	const char *transport = get_under(opts, pfx, "transport");
	const char *v;

	memset(o, 0, sizeof(*o));
	o->header_digest = BLOCK_ISCSI_DIGEST_DEFAULT;
	o->portal = get_under(opts, pfx, "portal");
	o->target = get_under(opts, pfx, "target");
	if (!transport || !o->portal || !o->target || !*o->portal || !*o->target)
		return block_err(err, errlen, "Need all of transport, portal and target options");
	if (!strcmp(transport, "iser"))
		return block_err(err, errlen, "Transport 'iser' is not supported by Kestrel");
	if (strcmp(transport, "tcp"))
		return block_err(err, errlen, "Unknown transport: %s", transport);
	if ((v = get_under(opts, pfx, "lun")) && !parse_uint(v, ISCSI_MAX_LUN, &o->lun))
		return block_err(err, errlen, "Parameter 'lun' expects a number from 0 to %d",
				 ISCSI_MAX_LUN);
	if ((v = get_under(opts, pfx, "timeout")) && !parse_uint(v, 1 << 30, &o->timeout))
		return block_err(err, errlen, "Parameter 'timeout' expects a number");
	if ((v = get_under(opts, pfx, "header-digest")) && (o->header_digest = digest_of(v)) < 0)
		return block_err(err, errlen, "Invalid header-digest setting : %s", v);
	o->user = get_under(opts, pfx, "user");
	o->password = get_under(opts, pfx, "password");
	o->password_secret = get_under(opts, pfx, "password-secret");
	o->initiator_name = get_under(opts, pfx, "initiator-name");
	if (o->initiator_name && !*o->initiator_name)
		return block_err(err, errlen, "Parameter 'initiator-name' must not be empty");
	return 0;
}

/* s as a JSON string body into buf at *n (QEMU's qstring quoting). */
static void json_str(char *buf, size_t len, size_t *n, const char *s)
{
	for (; *s && *n + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			*n += (size_t)snprintf(buf + *n, len - *n, "\\%c", c);
		else if (c < 0x20)
			*n += (size_t)snprintf(buf + *n, len - *n, "\\u%04x", c);
		else
			buf[(*n)++] = (char)c;
	}
	buf[*n] = '\0';
}

static void json_member(char *buf, size_t len, size_t *n, const char *key, const char *value)
{
	if (*n + strlen(key) + 8 >= len)
		return;
	*n += (size_t)snprintf(buf + *n, len - *n, "%s\"%s\": \"",
			       buf[*n - 1] == '{' ? "" : ", ", key);
	json_str(buf, len, n, value);
	if (*n + 2 < len) {
		buf[(*n)++] = '"';
		buf[*n] = '\0';
	}
}

/*
 * QEMU's bdrv_refresh_filename for an iSCSI node: its options as JSON, in
 * the order its QDict's buckets keep them (timeout it leaves out).  The
 * password stays out of Kestrel's (QEMU prints it), so that image names in
 * logs and `info` output hold no secret.
 */
int block_iscsi_display(const struct block_iscsi_opts *o, const char *format, char *buf,
			size_t len)
{
	static const char *const digests[] = { "none", "none-crc32c", "crc32c-none", "crc32c" };
	const char *strs[] = { o->portal, o->target, o->user, o->password_secret,
			       o->initiator_name, format };
	char lun[16];
	size_t n = 256;

	/* Every byte may quote to six ("\\u0001"): a name that may not fit is not made. */
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		n += strs[i] ? 6 * strlen(strs[i]) : 0;
	if (n > len)
		return -1;
	snprintf(lun, sizeof(lun), "%d", o->lun);
	if (o->alone)
		n = (size_t)snprintf(buf, len, "json:{");
	else
		n = (size_t)snprintf(buf, len, "json:{\"driver\": \"%s\", \"file\": {", format);
	if (n >= len)
		return -1;
	if (o->password_secret)
		json_member(buf, len, &n, "password-secret", o->password_secret);
	json_member(buf, len, &n, "lun", lun);
	json_member(buf, len, &n, "portal", o->portal);
	if (o->header_digest != BLOCK_ISCSI_DIGEST_DEFAULT && o->header_digest >= 0 &&
	    o->header_digest < 4)
		json_member(buf, len, &n, "header-digest", digests[o->header_digest]);
	if (o->initiator_name)
		json_member(buf, len, &n, "initiator-name", o->initiator_name);
	json_member(buf, len, &n, "driver", "iscsi");
	json_member(buf, len, &n, "transport", "tcp");
	if (o->user)
		json_member(buf, len, &n, "user", o->user);
	json_member(buf, len, &n, "target", o->target);
	if (n + 3 >= len)
		return -1;
	memcpy(buf + n, o->alone ? "}" : "}}", o->alone ? 2 : 3);
	return 0;
}

/* SBC-4 5.16 (READ CAPACITY 16) and 6.6.4 (Block Limits VPD), as QEMU checks them. */
int block_iscsi_geometry(uint32_t block_size, uint64_t returned_lba, uint32_t max_xfer_blocks,
			 struct block_iscsi_geom *g, char *err, size_t errlen)
{
	uint64_t cap;

	if (block_size < 512 || block_size % 512 || block_size > (1u << 16))
		return block_err(err, errlen, "iSCSI: the target returned an invalid block size "
				 "of %u.", block_size);
	if (returned_lba >= (uint64_t)INT64_MAX / block_size)
		return block_err(err, errlen, "iSCSI: the target returned a capacity too large "
				 "(last LBA %llu)", (unsigned long long)returned_lba);
	g->block_size = block_size;
	g->blocks = returned_lba + 1;
	cap = ISCSI_MAX_XFER - ISCSI_MAX_XFER % block_size;
	if (max_xfer_blocks && (uint64_t)max_xfer_blocks * block_size < cap)
		cap = (uint64_t)max_xfer_blocks * block_size;
	g->max_xfer = (uint32_t)cap;
	return 0;
}

/* The partial block at off: read it, patch it (for a write), write it back. */
static int rw_partial(const struct block_iscsi_geom *g, block_iscsi_io_fn io, void *ctx,
		      bool write, uint64_t off, uint8_t *p, size_t n, uint8_t *bounce)
{
	uint64_t lba = off / g->block_size;
	size_t in = (size_t)(off % g->block_size);
	int ret = io(ctx, false, lba, bounce, 1);

	if (ret < 0)
		return ret;
	if (!write) {
		memcpy(p, bounce + in, n);
		return 0;
	}
	memcpy(bounce + in, p, n);
	return io(ctx, true, lba, bounce, 1);
}

int block_iscsi_rw(const struct block_iscsi_geom *g, block_iscsi_io_fn io, void *ctx, bool write,
		   uint64_t off, void *buf, size_t len, uint8_t *bounce)
{
	uint64_t size = g->blocks * g->block_size;
	uint8_t *p = buf;
	int ret = 0;

	/* The format layer keeps inside the LUN; past it is an error, not a wrap. */
	if (off > size || len > size - off)
		return -EINVAL;
	while (len && ret == 0) {
		size_t in = (size_t)(off % g->block_size), n;
		if (in || len < g->block_size) {
			n = g->block_size - in < len ? g->block_size - in : len;
			ret = rw_partial(g, io, ctx, write, off, p, n, bounce);
		} else {
			n = len - len % g->block_size;
			if (n > g->max_xfer)
				n = g->max_xfer;
			ret = io(ctx, write, off / g->block_size, p, (uint32_t)(n / g->block_size));
		}
		off += n;
		p += n;
		len -= n;
	}
	return ret;
}
