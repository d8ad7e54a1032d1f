/*
 * LUKS1 headers: parsing with the checks QEMU 7.2 makes (and bounds on the
 * work a hostile header can ask for), keyslot unlock, and creation with
 * QEMU's layout.  LUKS On-Disk Format Specification 1.2.3, section 2.
 */
#include "block/crypto/luks.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t luks_magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

/* phdr field offsets (spec table 1) */
#define OFF_VERSION	6
#define OFF_CIPHER	8
#define OFF_MODE	40
#define OFF_HASH	72
#define OFF_PAYLOAD	104
#define OFF_KEYBYTES	108
#define OFF_MKDIGEST	112
#define OFF_MKSALT	132
#define OFF_MKITERS	164
#define OFF_UUID	168
#define OFF_SLOTS	208
#define SLOT_SIZE	48
#define NAME_LEN	32
#define HDR_SECTORS	(4096 / LUKS_SECTOR)	/* QEMU: keyslots start at 4 KiB */

int luks_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "<mode>-<ivgen>[:<ivhash>]", e.g. xts-plain64, cbc-essiv:sha256. */
static int parse_mode(struct luks_header *h, const char *spec, char *err, size_t errlen)
{
	char buf[NAME_LEN + 1], *iv, *ivhash;
	int v;

	snprintf(buf, sizeof(buf), "%s", spec);
	iv = strchr(buf, '-');
	if (!iv)
		return luks_fail(err, errlen, "Unexpected cipher mode string format %s", spec);
	*iv++ = '\0';
	ivhash = strchr(iv, ':');
	if (ivhash)
		*ivhash++ = '\0';
	if ((v = luks_mode_parse(buf)) < 0)
		return luks_fail(err, errlen, "Cipher mode '%s' not supported", buf);
	h->mode = (enum luks_mode)v;
	if ((v = luks_ivgen_parse(iv)) < 0)
		return luks_fail(err, errlen, "IV generator '%s' not supported", iv);
	h->ivgen = (enum luks_ivgen)v;
	h->ivhash = LUKS_HASH_NONE;
	/* dm-crypt ignores a hash given to plain/plain64, and so does QEMU. */
	if (ivhash && (v = luks_hash_parse(ivhash)) < 0)
		return luks_fail(err, errlen, "Hash algorithm '%s' not supported", ivhash);
	if (h->ivgen == LUKS_IV_ESSIV) {
		if (!ivhash)
			return luks_fail(err, errlen, "Missing IV generator hash specification");
		h->ivhash = (enum luks_hash)v;
		if (luks_hash_len(h->ivhash) != 16 && luks_hash_len(h->ivhash) != 24 &&
		    luks_hash_len(h->ivhash) != 32)
			return luks_fail(err, errlen, "No AES cipher with key size %zu available",
				    luks_hash_len(h->ivhash));
	}
	return 0;
}

/* cipher name + key size: "aes" with 16/24/32 bytes per key (XTS has two). */
static int parse_cipher(struct luks_header *h, const char *name, char *err, size_t errlen)
{
	uint32_t kb = h->mode == LUKS_MODE_XTS ? h->key_bytes / 2 : h->key_bytes;

	if (strcmp(name, "aes"))
		return luks_fail(err, errlen, "Algorithm '%s' with key size %u bytes not supported",
			    name, kb);
	if (kb == 16 && (h->mode != LUKS_MODE_XTS || h->key_bytes % 2 == 0))
		h->alg = LUKS_AES128;
	else if (kb == 24 && (h->mode != LUKS_MODE_XTS || h->key_bytes % 2 == 0))
		h->alg = LUKS_AES192;
	else if (kb == 32 && (h->mode != LUKS_MODE_XTS || h->key_bytes % 2 == 0))
		h->alg = LUKS_AES256;
	else
		return luks_fail(err, errlen, "Algorithm '%s' with key size %u bytes not supported",
			    name, kb);
	return 0;
}

static int copy_name(char *dst, const uint8_t *src, const char *what, char *err, size_t errlen)
{
	if (!memchr(src, '\0', NAME_LEN))
		return luks_fail(err, errlen, "LUKS header %s is not NUL terminated", what);
	memcpy(dst, src, NAME_LEN);
	return 0;
}

/* The keyslot checks: stripes, areas inside [header, payload), no overlaps. */
static int check_slots(const struct luks_header *h, char *err, size_t errlen)
{
	uint64_t len = ((uint64_t)h->key_bytes * LUKS_STRIPES + LUKS_SECTOR - 1) / LUKS_SECTOR;

	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		const struct luks_slot *s = &h->slots[i];
		if (s->stripes != LUKS_STRIPES)
			return luks_fail(err, errlen, "Keyslot %d is corrupted (stripes %d != %d)", i,
				    (int)s->stripes, LUKS_STRIPES);
		if (s->key_offset < HDR_SECTORS)
			return luks_fail(err, errlen, "Keyslot %d is overlapping with the LUKS header",
				    i);
		if (s->key_offset + len > h->payload_offset / LUKS_SECTOR)
			return luks_fail(err, errlen,
				    "Keyslot %d is overlapping with the encrypted payload", i);
		if (s->active == LUKS_SLOT_ACTIVE && !s->iters)
			return luks_fail(err, errlen, "Keyslot %d iteration count is zero", i);
		for (int j = 0; j < i; j++) {
			uint64_t a = h->slots[j].key_offset;
			if (s->key_offset < a + len && a < s->key_offset + len)
				return luks_fail(err, errlen,
					    "Keyslots %d and %d are overlapping in the header", j,
					    i);
		}
	}
	return 0;
}

/* The keyslot fields (spec table 2), LUKS1's hash for both KDF and AF. */
static void read_slots(const uint8_t *buf, struct luks_header *h)
{
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		const uint8_t *s = buf + OFF_SLOTS + i * SLOT_SIZE;
		struct luks_slot *ks = &h->slots[i];
		ks->active = ld_be32(s);
		ks->iters = ld_be32(s + 4);
		memcpy(ks->salt, s + 8, LUKS_SALT_LEN);
		ks->salt_len = LUKS_SALT_LEN;
		ks->key_offset = ld_be32(s + 40);
		ks->stripes = ld_be32(s + 44);
		ks->key_bytes = h->key_bytes;
	}
}

/* QEMU's order: the layout checks (qcrypto_block_luks_check_header), then the names. */
int luks1_parse(const uint8_t *buf, uint64_t file_size, struct luks_header *h, char *err,
		size_t errlen)
{
	char cipher[NAME_LEN], mode[NAME_LEN], hash[NAME_LEN];
	int v;

	memset(h, 0, sizeof(*h));
	if (memcmp(buf, luks_magic, sizeof(luks_magic)))
		return luks_fail(err, errlen, "Volume is not in LUKS format");
	h->version = ld_be16(buf + OFF_VERSION);
	if (h->version != 1)
		return luks_fail(err, errlen, "LUKS version %d is not supported", h->version);
	if (copy_name(cipher, buf + OFF_CIPHER, "cipher name", err, errlen) < 0 ||
	    copy_name(mode, buf + OFF_MODE, "cipher mode", err, errlen) < 0 ||
	    copy_name(hash, buf + OFF_HASH, "hash spec", err, errlen) < 0)
		return -1;
	h->key_bytes = ld_be32(buf + OFF_KEYBYTES);
	h->payload_offset = (uint64_t)ld_be32(buf + OFF_PAYLOAD) * LUKS_SECTOR;
	if (h->payload_offset < HDR_SECTORS * LUKS_SECTOR)
		return luks_fail(err, errlen, "LUKS payload is overlapping with the header");
	h->mk_iters = ld_be32(buf + OFF_MKITERS);
	if (!h->mk_iters)
		return luks_fail(err, errlen, "LUKS key iteration count is zero");
	read_slots(buf, h);
	if (check_slots(h, err, errlen) < 0)
		return -1;
	if (parse_mode(h, mode, err, errlen) < 0 || parse_cipher(h, cipher, err, errlen) < 0)
		return -1;
	if ((v = luks_hash_parse(hash)) < 0)
		return luks_fail(err, errlen, "Hash algorithm '%s' not supported", hash);
	h->hash = (enum luks_hash)v;
	for (int i = 0; i < LUKS_NUM_SLOTS; i++)
		h->slots[i].af_hash = h->slots[i].kdf_hash = h->hash;
	/* Kestrel's own: QEMU would read zeroes past the end of the file. */
	if (h->payload_offset > file_size)
		return luks_fail(err, errlen, "LUKS payload offset %" PRIu64 " is past the end of the "
			    "file (%" PRIu64 " bytes)", h->payload_offset, file_size);
	memcpy(h->mk_digest, buf + OFF_MKDIGEST, LUKS_DIGEST_LEN);
	h->mk_digest_len = LUKS_DIGEST_LEN;
	memcpy(h->mk_salt, buf + OFF_MKSALT, LUKS_SALT_LEN);
	h->mk_salt_len = LUKS_SALT_LEN;
	memcpy(h->uuid, buf + OFF_UUID, 40);
	h->uuid[40] = '\0';
	h->nslots = LUKS_NUM_SLOTS;
	h->sector_size = LUKS_SECTOR;
	return 0;
}

void luks1_format(const struct luks_header *h, uint8_t *buf)
{
	char mode[NAME_LEN];

	memset(buf, 0, LUKS_HDR_SIZE);
	memcpy(buf, luks_magic, sizeof(luks_magic));
	st_be16(buf + OFF_VERSION, 1);
	strcpy((char *)buf + OFF_CIPHER, "aes");
	if (h->ivgen == LUKS_IV_ESSIV)
		snprintf(mode, sizeof(mode), "%s-%s:%s", luks_mode_name(h->mode),
			 luks_ivgen_name(h->ivgen), luks_hash_name(h->ivhash));
	else
		snprintf(mode, sizeof(mode), "%s-%s", luks_mode_name(h->mode),
			 luks_ivgen_name(h->ivgen));
	memcpy(buf + OFF_MODE, mode, strlen(mode));
	memcpy(buf + OFF_HASH, luks_hash_name(h->hash), strlen(luks_hash_name(h->hash)));
	st_be32(buf + OFF_PAYLOAD, (uint32_t)(h->payload_offset / LUKS_SECTOR));
	st_be32(buf + OFF_KEYBYTES, h->key_bytes);
	memcpy(buf + OFF_MKDIGEST, h->mk_digest, LUKS_DIGEST_LEN);
	memcpy(buf + OFF_MKSALT, h->mk_salt, LUKS_SALT_LEN);
	st_be32(buf + OFF_MKITERS, h->mk_iters);
	memcpy(buf + OFF_UUID, h->uuid, strlen(h->uuid));
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		uint8_t *s = buf + OFF_SLOTS + i * SLOT_SIZE;
		const struct luks_slot *ks = &h->slots[i];
		st_be32(s, ks->active);
		st_be32(s + 4, ks->iters);
		memcpy(s + 8, ks->salt, LUKS_SALT_LEN);
		st_be32(s + 40, ks->key_offset);
		st_be32(s + 44, ks->stripes);
	}
}

/*
 * One keyslot (spec 2.4 "Recovering a master key"): PBKDF2 of the password,
 * decrypt the key material with it, AF-merge, and compare the digest.
 * 1: unlocked, 0: not this slot, -1: error.
 */
int luks_slot_check(const struct luks_header *h, const struct luks_slot *s, const void *pw,
		    size_t pwlen, luks_read_fn rd, void *opaque, uint8_t *key, char *err,
		    size_t errlen)
{
	size_t kb = s->key_bytes, matlen = kb * s->stripes;
	size_t padded = (matlen + LUKS_SECTOR - 1) / LUKS_SECTOR * LUKS_SECTOR;
	uint8_t slotkey[LUKS_MAX_KEY], digest[64];
	struct luks_cipher c;
	uint8_t *mat;
	int ret = -1;

	mat = malloc(padded);
	if (!mat)
		return luks_fail(err, errlen, "out of memory");
	if (rd(opaque, h->version == 2 ? s->area_offset : (uint64_t)s->key_offset * LUKS_SECTOR,
	       mat, padded) < 0) {
		luks_fail(err, errlen, "Could not read the keyslot material");
		goto out;
	}
	if (s->kdf && luks_argon2(s, pw, pwlen, slotkey, kb, err, errlen) < 0)
		goto out;
	if ((!s->kdf && luks_pbkdf2(s->kdf_hash, pw, pwlen, s->salt, s->salt_len, s->iters,
				    slotkey, kb) < 0) ||
	    luks_cipher_init(&c, h->alg, h->mode, h->ivgen, h->ivhash, slotkey, err, errlen) < 0)
		goto out;
	luks_cipher_crypt(&c, false, 0, LUKS_SECTOR, mat, padded);
	luks_cipher_free(&c);
	if (luks_af_merge(s->af_hash, mat, kb, s->stripes, key) < 0 ||
	    luks_pbkdf2(h->hash, key, kb, h->mk_salt, h->mk_salt_len, h->mk_iters, digest,
			h->mk_digest_len) < 0) {
		luks_fail(err, errlen, "out of memory");
		goto out;
	}
	ret = memcmp(digest, h->mk_digest, h->mk_digest_len) == 0;
out:
	memset(slotkey, 0, sizeof(slotkey));
	free(mat);
	return ret;
}

/*
 * Bounded work: QEMU runs whatever PBKDF2 count a header asks for (2^32 - 1
 * is hours); Kestrel refuses counts past LUKS_MAX_ITERS before any work.
 */
static int check_iters(const struct luks_header *h, char *err, size_t errlen)
{
	if (h->mk_iters > LUKS_MAX_ITERS)
		return luks_fail(err, errlen, "LUKS master key iteration count %u is larger than "
			    "Kestrel's limit %u", h->mk_iters, LUKS_MAX_ITERS);
	for (int i = 0; i < h->nslots; i++)
		if (h->slots[i].active == LUKS_SLOT_ACTIVE && h->slots[i].iters > LUKS_MAX_ITERS)
			return luks_fail(err, errlen, "Keyslot %d iteration count %u is larger than "
				    "Kestrel's limit %u", i, h->slots[i].iters, LUKS_MAX_ITERS);
	return 0;
}

int luks_unlock(const struct luks_header *h, const void *pw, size_t pwlen, luks_read_fn rd,
		void *opaque, uint8_t *key, char *err, size_t errlen)
{
	if (check_iters(h, err, errlen) < 0)
		return -1;
	for (int i = 0; i < h->nslots; i++) {
		int r;
		if (h->slots[i].active != LUKS_SLOT_ACTIVE)
			continue;
		r = luks_slot_check(h, &h->slots[i], pw, pwlen, rd, opaque, key, err, errlen);
		if (r != 0)
			return r > 0 ? 0 : -1;
	}
	memset(key, 0, h->key_bytes);
	return luks_fail(err, errlen, "Invalid password, cannot unlock any keyslot");
}

/* QEMU's layout: each keyslot's material rounded up to whole 4 KiB. */
static uint64_t slot_sectors(size_t key_bytes)
{
	uint64_t s = (key_bytes * LUKS_STRIPES + LUKS_SECTOR - 1) / LUKS_SECTOR;

	return (s + HDR_SECTORS - 1) / HDR_SECTORS * HDR_SECTORS;
}

static size_t create_key_bytes(const struct luks_create_params *p)
{
	return luks_alg_key_len(p->alg) * (p->mode == LUKS_MODE_XTS ? 2 : 1);
}

uint64_t luks_create_payload_offset(const struct luks_create_params *p)
{
	return (HDR_SECTORS + LUKS_NUM_SLOTS * slot_sectors(create_key_bytes(p))) * LUKS_SECTOR;
}

static void make_uuid(char *out)
{
	uint8_t u[16];

	luks_random(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 41, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/* QEMU's iteration counts: the host's rate scaled to iter-time, at least 1000. */
static int scaled_iters(enum luks_hash hash, uint64_t iter_time, bool master, uint32_t *out,
			char *err, size_t errlen)
{
	uint64_t rate = luks_pbkdf2_rate(hash), it;

	if (rate > UINT64_MAX / (iter_time ? iter_time : 1))
		return luks_fail(err, errlen, "PBKDF iterations %" PRIu64 " too large to scale", rate);
	it = rate * iter_time / 1000;
	if (master)
		it /= 8;	/* cryptsetup's choice, kept by QEMU */
	if (it > UINT32_MAX)
		return luks_fail(err, errlen, "PBKDF iterations %" PRIu64 " larger than %u", it,
			    UINT32_MAX);
	*out = it < 1000 ? 1000 : (uint32_t)it;
	return 0;
}

int luks_slot_set(struct luks_header *h, int i, const void *pw, size_t pwlen,
		  const uint8_t *key, uint64_t iter_time, luks_write_fn wr, void *opaque, char *err,
		  size_t errlen)
{
	struct luks_slot *s = &h->slots[i];
	size_t kb = h->key_bytes, len = slot_sectors(kb) * LUKS_SECTOR;
	uint8_t slotkey[LUKS_MAX_KEY];
	struct luks_cipher c;
	uint8_t *mat = calloc(1, len);
	int ret = -1;

	*err = '\0';
	if (!mat)
		return luks_fail(err, errlen, "out of memory");
	if (luks_random(s->salt, LUKS_SALT_LEN) < 0 ||
	    scaled_iters(h->hash, iter_time, false, &s->iters, err, errlen) < 0 ||
	    luks_pbkdf2(h->hash, pw, pwlen, s->salt, LUKS_SALT_LEN, s->iters, slotkey, kb) < 0 ||
	    luks_af_split(h->hash, key, kb, LUKS_STRIPES, mat) < 0) {
		if (!*err)
			luks_fail(err, errlen, "Could not create the keyslot");
		goto out;
	}
	if (luks_cipher_init(&c, h->alg, h->mode, h->ivgen, h->ivhash, slotkey, err, errlen) < 0)
		goto out;
	luks_cipher_crypt(&c, true, 0, LUKS_SECTOR, mat, len);
	luks_cipher_free(&c);
	if (wr(opaque, (uint64_t)s->key_offset * LUKS_SECTOR, mat, len) < 0) {
		luks_fail(err, errlen, "Could not write the keyslot material");
		goto out;
	}
	s->salt_len = LUKS_SALT_LEN;
	s->active = LUKS_SLOT_ACTIVE;
	ret = 0;
out:
	memset(slotkey, 0, sizeof(slotkey));
	free(mat);
	return ret;
}

int luks_slot_erase(struct luks_header *h, int i, luks_write_fn wr, void *opaque, char *err,
		    size_t errlen)
{
	struct luks_slot *s = &h->slots[i];
	size_t len = slot_sectors(h->key_bytes) * LUKS_SECTOR;
	uint8_t *junk = malloc(len);
	int ret;

	if (!junk || luks_random(junk, len) < 0) {
		free(junk);
		return luks_fail(err, errlen, "Could not get random bytes");
	}
	ret = wr(opaque, (uint64_t)s->key_offset * LUKS_SECTOR, junk, len);
	free(junk);
	if (ret < 0)
		return luks_fail(err, errlen, "Could not erase the keyslot material");
	s->active = LUKS_SLOT_DISABLED;
	s->iters = 0;
	memset(s->salt, 0, sizeof(s->salt));
	return 0;
}

int luks_create(const struct luks_create_params *p, const void *pw, size_t pwlen,
		luks_write_fn wr, void *opaque, struct luks_header *h, uint8_t *key, char *err,
		size_t errlen)
{
	uint8_t buf[LUKS_HDR_SIZE];
	struct luks_cipher test;

	*err = '\0';
	memset(h, 0, sizeof(*h));
	h->version = 1;
	h->alg = p->alg;
	h->mode = p->mode;
	h->ivgen = p->ivgen;
	h->ivhash = p->ivgen == LUKS_IV_ESSIV ? p->ivhash : LUKS_HASH_NONE;
	h->hash = p->hash;
	h->key_bytes = (uint32_t)create_key_bytes(p);
	h->payload_offset = luks_create_payload_offset(p);
	h->sector_size = LUKS_SECTOR;
	h->mk_digest_len = LUKS_DIGEST_LEN;
	h->mk_salt_len = LUKS_SALT_LEN;
	h->nslots = LUKS_NUM_SLOTS;
	make_uuid(h->uuid);
	if (luks_random(key, h->key_bytes) < 0 || luks_random(h->mk_salt, LUKS_SALT_LEN) < 0)
		return luks_fail(err, errlen, "Could not get random bytes");
	/* The ESSIV key size check (and any other refusal) before any work. */
	if (luks_cipher_init(&test, h->alg, h->mode, h->ivgen, h->ivhash, key, err, errlen) < 0)
		return -1;
	luks_cipher_free(&test);
	if (scaled_iters(h->hash, p->iter_time, true, &h->mk_iters, err, errlen) < 0 ||
	    luks_pbkdf2(h->hash, key, h->key_bytes, h->mk_salt, LUKS_SALT_LEN, h->mk_iters,
			h->mk_digest, LUKS_DIGEST_LEN) < 0)
		return -1;
	for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
		h->slots[i].active = LUKS_SLOT_DISABLED;
		h->slots[i].stripes = LUKS_STRIPES;
		h->slots[i].key_offset = (uint32_t)(HDR_SECTORS + i * slot_sectors(h->key_bytes));
	}
	if (luks_slot_set(h, 0, pw, pwlen, key, p->iter_time, wr, opaque, err, errlen) < 0)
		return -1;
	luks1_format(h, buf);
	if (wr(opaque, 0, buf, sizeof(buf)) < 0)
		return luks_fail(err, errlen, "Could not write the LUKS header");
	return 0;
}
