/*
 * LUKS2 headers, read only: the binary header, its SHA-256 checksum, and the
 * JSON area's segment 0, pbkdf2 digest and keyslots, mapped onto the LUKS1
 * fields the rest of the library uses.  LUKS2 On-Disk Format Specification
 * (cryptsetup docs/on-disk-format-luks2.pdf), sections 2 and 3.  QEMU 7.2
 * cannot open LUKS2 at all; cryptsetup's view is the reference.
 */
#include "block/crypto/luks.h"
#include "util/bytes.h"
#include "util/json_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha2.h>

#define BIN_SIZE	4096
#define OFF_HDR_SIZE	8
#define OFF_CSUM_ALG	72
#define OFF_UUID	168
#define OFF_CSUM	448
#define MAX_HDR		(4u << 20)	/* spec: 16 KiB .. 4 MiB of metadata */


static const char *str(const struct json_value *o, const char *key)
{
	const struct json_value *v = o ? json_get(o, key) : NULL;

	return v && v->type == JSON_STRING ? v->s : NULL;
}

/* Numbers are JSON integers, or strings of decimal digits for 64-bit values. */
static bool num(const struct json_value *o, const char *key, uint64_t *out)
{
	const struct json_value *v = o ? json_get(o, key) : NULL;
	char *end;

	if (v && v->type == JSON_INT && v->i >= 0) {
		*out = (uint64_t)v->i;
		return true;
	}
	if (!v || v->type != JSON_STRING || !*v->s || *v->s == '-')
		return false;
	errno = 0;
	*out = strtoull(v->s, &end, 10);
	return !*end && !errno;
}

static bool b64(const struct json_value *o, const char *key, uint8_t *out, size_t max,
		size_t *len)
{
	const char *s = str(o, key);
	struct base64_decode_ctx ctx;
	size_t n = max;

	if (!s || BASE64_DECODE_LENGTH(strlen(s)) > max)
		return false;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, out, strlen(s), s) || !base64_decode_final(&ctx))
		return false;
	*len = n;
	return true;
}

/* "aes-xts-plain64": cipher name, then LUKS1's "<mode>-<ivgen>[:<hash>]". */
static int parse_encryption(struct luks_header *h, const char *enc, uint32_t key_bytes,
			    char *err, size_t errlen)
{
	uint8_t buf[LUKS_HDR_SIZE] = { 'L', 'U', 'K', 'S', 0xba, 0xbe, 0, 1 };
	const char *dash = enc ? strchr(enc, '-') : NULL;
	struct luks_header tmp;

	if (!dash || dash - enc >= 32 || strlen(dash + 1) >= 32)
		return luks_fail(err, errlen, "Unexpected LUKS2 encryption '%s'", enc ? enc : "");
	/* The LUKS1 parser checks names and key size: a LUKS1 header made of them. */
	memcpy(buf + 8, enc, (size_t)(dash - enc));
	memcpy(buf + 40, dash + 1, strlen(dash + 1));
	memcpy(buf + 72, "sha256", 6);
	st_be32(buf + 104, 4096);
	st_be32(buf + 108, key_bytes);
	st_be32(buf + 164, 1);
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		st_be32(buf + 208 + 48 * i + 40, 8 + 500 * (uint32_t)i);
		st_be32(buf + 208 + 48 * i + 44, LUKS_STRIPES);
	}
	if (luks1_parse(buf, UINT64_MAX, &tmp, err, errlen) < 0)
		return -1;
	h->alg = tmp.alg;
	h->mode = tmp.mode;
	h->ivgen = tmp.ivgen;
	h->ivhash = tmp.ivhash;
	return 0;
}

static int parse_segment(struct luks_header *h, const struct json_value *root, uint64_t hdr_size,
			 char *err, size_t errlen)
{
	const struct json_value *segs = json_get(root, "segments");
	const struct json_value *seg = segs && segs->type == JSON_OBJECT ? json_get(segs, "0") : NULL;
	const char *size = str(seg, "size");
	uint64_t sector = 512, tweak = 0;

	if (!seg || !str(seg, "type") || strcmp(str(seg, "type"), "crypt"))
		return luks_fail(err, errlen, "LUKS2 header has no crypt segment 0");
	if (!num(seg, "offset", &h->payload_offset) || (json_get(seg, "sector_size") &&
	    !num(seg, "sector_size", &sector)) || (json_get(seg, "iv_tweak") &&
	    !num(seg, "iv_tweak", &tweak)) || !size)
		return luks_fail(err, errlen, "LUKS2 segment 0 is malformed");
	if (sector != 512 && sector != 1024 && sector != 2048 && sector != 4096)
		return luks_fail(err, errlen, "LUKS2 segment sector size %" PRIu64 " is invalid", sector);
	if (h->payload_offset < hdr_size * 2 || h->payload_offset % sector)
		return luks_fail(err, errlen, "LUKS2 segment offset %" PRIu64 " overlaps the header "
			    "or is not sector aligned", h->payload_offset);
	if (strcmp(size, "dynamic") && !num(seg, "size", &h->payload_size))
		return luks_fail(err, errlen, "LUKS2 segment 0 is malformed");
	if (json_get(seg, "integrity"))
		return luks_fail(err, errlen, "LUKS2 segments with integrity are not supported");
	h->sector_size = (uint32_t)sector;
	h->iv_offset = tweak;
	return 0;
}

static int parse_digest(struct luks_header *h, const struct json_value *root, char *err,
			size_t errlen)
{
	const struct json_value *ds = json_get(root, "digests");
	const struct json_value *d = ds && ds->type == JSON_OBJECT && ds->count ? ds->items[0] : NULL;
	uint64_t iters;
	int hash;

	if (!d || d->type != JSON_OBJECT || !str(d, "type") || strcmp(str(d, "type"), "pbkdf2"))
		return luks_fail(err, errlen, "LUKS2 header has no pbkdf2 digest");
	hash = luks_hash_parse(str(d, "hash"));
	if (hash < 0 || !num(d, "iterations", &iters) || !iters || iters > UINT32_MAX ||
	    !b64(d, "salt", h->mk_salt, sizeof(h->mk_salt), &h->mk_salt_len) ||
	    !b64(d, "digest", h->mk_digest, sizeof(h->mk_digest), &h->mk_digest_len) ||
	    !h->mk_digest_len || h->mk_digest_len > luks_hash_len((enum luks_hash)hash))
		return luks_fail(err, errlen, "LUKS2 digest 0 is malformed");
	h->hash = (enum luks_hash)hash;
	h->mk_iters = (uint32_t)iters;
	return 0;
}

static int parse_kdf(struct luks_slot *s, const struct json_value *kdf, int i, char *err,
		     size_t errlen)
{
	const char *type = str(kdf, "type");
	uint64_t v;
	int hash;

	if (type && !strcmp(type, "pbkdf2")) {
		hash = luks_hash_parse(str(kdf, "hash"));
		if (hash < 0 || !num(kdf, "iterations", &v) || !v || v > UINT32_MAX)
			return luks_fail(err, errlen, "LUKS2 keyslot %d kdf is malformed", i);
		s->kdf_hash = (enum luks_hash)hash;
		s->iters = (uint32_t)v;
	} else if (type && (!strcmp(type, "argon2i") || !strcmp(type, "argon2id"))) {
		s->kdf = !strcmp(type, "argon2i") ? 1 : 2;
		if (!num(kdf, "time", &v) || !v || v > UINT32_MAX)
			return luks_fail(err, errlen, "LUKS2 keyslot %d kdf is malformed", i);
		s->iters = (uint32_t)v;
		if (!num(kdf, "memory", &v) || v > UINT32_MAX)
			return luks_fail(err, errlen, "LUKS2 keyslot %d kdf is malformed", i);
		s->memory = (uint32_t)v;
		if (!num(kdf, "cpus", &v) || !v || v > 64)
			return luks_fail(err, errlen, "LUKS2 keyslot %d kdf is malformed", i);
		s->cpus = (uint32_t)v;
	} else {
		return luks_fail(err, errlen, "LUKS2 keyslot %d kdf '%s' is not supported", i,
			    type ? type : "");
	}
	if (!b64(kdf, "salt", s->salt, sizeof(s->salt), &s->salt_len))
		return luks_fail(err, errlen, "LUKS2 keyslot %d kdf is malformed", i);
	return 0;
}

/* One keyslot: its area must lie between the headers and the payload. */
static int parse_slot(struct luks_header *h, const struct json_value *ks, int i, char *err,
		      size_t errlen)
{
	struct luks_slot *s = &h->slots[i];
	const struct json_value *af = json_get(ks, "af"), *area = json_get(ks, "area");
	uint64_t key_size, stripes, akey;
	int hash;

	if (!str(ks, "type") || strcmp(str(ks, "type"), "luks2") || !num(ks, "key_size", &key_size)
	    || key_size != h->key_bytes || !str(af, "type") || strcmp(str(af, "type"), "luks1") ||
	    !num(af, "stripes", &stripes) || (hash = luks_hash_parse(str(af, "hash"))) < 0 ||
	    !str(area, "type") || strcmp(str(area, "type"), "raw") ||
	    !num(area, "offset", &s->area_offset) || !num(area, "size", &s->area_size) ||
	    !num(area, "key_size", &akey) || akey != key_size)
		return luks_fail(err, errlen, "LUKS2 keyslot %d is malformed", i);
	if (stripes != LUKS_STRIPES)
		return luks_fail(err, errlen, "Keyslot %d is corrupted (stripes %" PRIu64 " != %d)", i,
			    stripes, LUKS_STRIPES);
	if (!str(area, "encryption") || strcmp(str(area, "encryption"), h->encryption))
		return luks_fail(err, errlen, "LUKS2 keyslot %d encryption '%s' differs from the "
			    "segment's, which Kestrel does not support", i,
			    str(area, "encryption") ? str(area, "encryption") : "");
	if (s->area_size < key_size * LUKS_STRIPES || s->area_offset < h->hdr_size * 2 ||
	    s->area_offset + s->area_size > h->payload_offset)
		return luks_fail(err, errlen, "LUKS2 keyslot %d area is outside the keyslots area", i);
	s->active = LUKS_SLOT_ACTIVE;
	s->stripes = LUKS_STRIPES;
	s->af_hash = (enum luks_hash)hash;
	s->key_bytes = key_size;
	s->key_offset = (uint32_t)(s->area_offset / LUKS_SECTOR);
	return parse_kdf(s, json_get(ks, "kdf"), i, err, errlen);
}

static int parse_slots(struct luks_header *h, const struct json_value *root, char *err,
		       size_t errlen)
{
	const struct json_value *slots = json_get(root, "keyslots");
	uint64_t key_bytes = 0;

	if (!slots || slots->type != JSON_OBJECT || !slots->count)
		return luks_fail(err, errlen, "LUKS2 header has no keyslots");
	/* The volume key size: every luks2 keyslot holds the same key. */
	if (slots->items[0]->type != JSON_OBJECT || !num(slots->items[0], "key_size", &key_bytes) ||
	    key_bytes > LUKS_MAX_KEY)
		return luks_fail(err, errlen, "LUKS2 keyslot key size is invalid");
	h->key_bytes = (uint32_t)key_bytes;
	if (parse_encryption(h, h->encryption, h->key_bytes, err, errlen) < 0)
		return -1;
	for (size_t k = 0; k < slots->count; k++) {
		char *end;
		unsigned long i = strtoul(slots->keys[k], &end, 10);
		if (*end || i >= 32 || slots->items[k]->type != JSON_OBJECT)
			return luks_fail(err, errlen, "LUKS2 keyslot '%s' is invalid", slots->keys[k]);
		if (parse_slot(h, slots->items[k], (int)i, err, errlen) < 0)
			return -1;
		if ((int)i >= h->nslots)
			h->nslots = (int)i + 1;
	}
	return 0;
}

/* Spec 2.1: SHA-256 over the binary header (checksum zeroed) and the JSON area. */
static bool checksum_ok(const uint8_t *bin, const uint8_t *json, size_t jlen)
{
	struct sha256_ctx ctx;
	uint8_t copy[BIN_SIZE], digest[SHA256_DIGEST_SIZE];

	memcpy(copy, bin, BIN_SIZE);
	memset(copy + OFF_CSUM, 0, 64);
	sha256_init(&ctx);
	sha256_update(&ctx, BIN_SIZE, copy);
	sha256_update(&ctx, jlen, json);
	sha256_digest(&ctx, sizeof(digest), digest);
	return !memcmp(digest, bin + OFF_CSUM, sizeof(digest));
}

static int read_json(const uint8_t *bin, luks_read_fn rd, void *opaque, uint64_t hdr_size,
		     struct json_value **out, char *err, size_t errlen)
{
	size_t jlen = (size_t)hdr_size - BIN_SIZE;
	char msg[256];
	uint8_t *json = malloc(jlen);

	if (!json)
		return luks_fail(err, errlen, "out of memory");
	if (rd(opaque, BIN_SIZE, json, jlen) < 0) {
		free(json);
		return luks_fail(err, errlen, "Could not read the LUKS2 JSON area");
	}
	if (strncmp((const char *)bin + OFF_CSUM_ALG, "sha256", 32) || !checksum_ok(bin, json, jlen)) {
		free(json);
		return luks_fail(err, errlen, "LUKS2 header checksum does not match");
	}
	if (!memchr(json, '\0', jlen)) {
		free(json);
		return luks_fail(err, errlen, "LUKS2 JSON area is not NUL terminated");
	}
	*out = json_parse((const char *)json, strlen((const char *)json), msg, sizeof(msg));
	free(json);
	if (!*out || (*out)->type != JSON_OBJECT) {
		json_free(*out);
		return luks_fail(err, errlen, "LUKS2 JSON area is invalid: %s", *out ? "not an object" : msg);
	}
	return 0;
}

int luks2_parse(const uint8_t *bin, luks_read_fn rd, void *opaque, uint64_t file_size,
		struct luks_header *h, char *err, size_t errlen)
{
	struct json_value *root;
	int ret;

	memset(h, 0, sizeof(*h));
	h->version = 2;
	h->hdr_size = ld_be64(bin + OFF_HDR_SIZE);
	if (h->hdr_size < 16384 || h->hdr_size > MAX_HDR || h->hdr_size % 4096 ||
	    h->hdr_size * 2 > file_size)
		return luks_fail(err, errlen, "LUKS2 header size %" PRIu64 " is invalid", h->hdr_size);
	memcpy(h->uuid, bin + OFF_UUID, 40);
	h->uuid[40] = '\0';
	if (read_json(bin, rd, opaque, h->hdr_size, &root, err, errlen) < 0)
		return -1;
	snprintf(h->encryption, sizeof(h->encryption), "%s",
		 str(json_get(json_get(root, "segments"), "0"), "encryption") ?: "");
	ret = parse_segment(h, root, h->hdr_size, err, errlen);
	if (ret == 0 && h->payload_offset > file_size)
		ret = luks_fail(err, errlen, "LUKS payload offset %" PRIu64 " is past the end of the "
			   "file (%" PRIu64 " bytes)", h->payload_offset, file_size);
	if (ret == 0)
		ret = parse_digest(h, root, err, errlen);
	if (ret == 0)
		ret = parse_slots(h, root, err, errlen);
	json_free(root);
	return ret;
}
