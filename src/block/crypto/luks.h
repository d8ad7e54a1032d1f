/*
 * LUKS1 (and LUKS2 read) as a small library: header parsing and checks,
 * keyslot unlock (PBKDF2 + anti-forensic merge), header creation, and the
 * sector cipher.  Used by the luks format driver (block/luks.c) and by
 * qcow2's encrypt.format=luks.  The primitives are nettle's: no cipher or
 * hash here is hand-written.
 *
 * Reference: "LUKS On-Disk Format Specification Version 1.2.3" (Fruhwirth)
 * and QEMU 7.2's crypto/block-luks.c behaviour (read, not copied).
 */
#ifndef KESTREL_BLOCK_CRYPTO_LUKS_H
#define KESTREL_BLOCK_CRYPTO_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUKS_SECTOR		512
#define LUKS_NUM_SLOTS		8
#define LUKS_STRIPES		4000
#define LUKS_SALT_LEN		32
#define LUKS_DIGEST_LEN		20
#define LUKS_HDR_SIZE		592	/* LUKS1 spec: the phdr */
#define LUKS_MAX_KEY		64	/* aes-256-xts */
#define LUKS_SLOT_ACTIVE	0x00AC71F3u
#define LUKS_SLOT_DISABLED	0x0000DEADu
/*
 * Bounded work for hostile headers: PBKDF2 iterations above this would take
 * minutes per keyslot (cryptsetup's 2 s default gives a few million), and
 * stripes other than 4000 are refused as QEMU refuses them.
 */
#define LUKS_MAX_ITERS		(1u << 25)

enum luks_cipher_alg { LUKS_AES128, LUKS_AES192, LUKS_AES256 };
enum luks_mode { LUKS_MODE_XTS, LUKS_MODE_CBC, LUKS_MODE_ECB, LUKS_MODE_CTR };
enum luks_ivgen { LUKS_IV_PLAIN, LUKS_IV_PLAIN64, LUKS_IV_ESSIV };
enum luks_hash { LUKS_SHA1, LUKS_SHA224, LUKS_SHA256, LUKS_SHA384, LUKS_SHA512,
		 LUKS_RIPEMD160, LUKS_MD5, LUKS_HASH_NONE };

struct luks_slot {
	uint32_t active;
	uint32_t iters;
	uint8_t salt[64];		/* LUKS1: 32 bytes; LUKS2: salt_len */
	uint32_t key_offset;		/* sectors */
	uint32_t stripes;
	/* LUKS2 keyslots: area in bytes, and the KDF (pbkdf2 / argon2i / argon2id) */
	uint64_t area_offset, area_size;
	int kdf;			/* 0 pbkdf2, 1 argon2i, 2 argon2id */
	uint32_t memory, cpus;		/* argon2 */
	size_t salt_len;
	enum luks_hash af_hash, kdf_hash;
	size_t key_bytes;
};

/* A parsed header (LUKS1, or a LUKS2 header mapped onto the same fields). */
struct luks_header {
	int version;
	enum luks_cipher_alg alg;
	enum luks_mode mode;
	enum luks_ivgen ivgen;
	enum luks_hash ivhash;		/* essiv only, else LUKS_HASH_NONE */
	enum luks_hash hash;
	uint64_t payload_offset;	/* bytes */
	uint32_t key_bytes;
	uint8_t mk_digest[64];
	size_t mk_digest_len;
	uint8_t mk_salt[64];
	size_t mk_salt_len;
	uint32_t mk_iters;
	char uuid[41];
	int nslots;
	struct luks_slot slots[32];
	/* LUKS2 */
	uint64_t hdr_size;
	uint32_t sector_size;		/* encryption sector size (LUKS2 segment) */
	uint64_t payload_size;		/* 0: to the end of the device */
	uint64_t iv_offset;		/* LUKS2 iv_tweak: added to each sector number */
	char encryption[64];		/* LUKS2 segment's "aes-xts-plain64" */
};

/* The sector cipher: one key, one IV generator. */
struct luks_cipher {
	enum luks_cipher_alg alg;
	enum luks_mode mode;
	enum luks_ivgen ivgen;
	const void *meta;		/* struct nettle_cipher */
	void *enc, *dec, *twk;		/* nettle contexts */
	void *essiv;			/* essiv: the IV cipher, keyed with hash(key) */
	const void *essiv_meta;
};

/* printf into err; returns -1 for "return luks_fail(...)". */
int luks_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *luks_alg_name(enum luks_cipher_alg a);
const char *luks_mode_name(enum luks_mode m);
const char *luks_ivgen_name(enum luks_ivgen g);
const char *luks_hash_name(enum luks_hash h);
/* Names as QEMU's QAPI enums spell them; -1 when unknown. */
int luks_alg_parse(const char *s);
int luks_mode_parse(const char *s);
int luks_ivgen_parse(const char *s);
int luks_hash_parse(const char *s);
size_t luks_alg_key_len(enum luks_cipher_alg a);
size_t luks_hash_len(enum luks_hash h);

/*
 * Parses and checks a LUKS1 header (buf: LUKS_HDR_SIZE bytes) against a
 * file of file_size bytes.  0, or -1 with QEMU's message in err.
 */
int luks1_parse(const uint8_t *buf, uint64_t file_size, struct luks_header *h, char *err,
		size_t errlen);
/* Serialises h as a LUKS1 header into buf (LUKS_HDR_SIZE bytes). */
void luks1_format(const struct luks_header *h, uint8_t *buf);

/* Reads the bytes of the header area: returns 0 or a negative errno. */
typedef int (*luks_read_fn)(void *opaque, uint64_t off, void *buf, size_t len);
typedef int (*luks_write_fn)(void *opaque, uint64_t off, const void *buf, size_t len);

/*
 * LUKS2 (luks2.c): bin is the 4096-byte binary header at offset 0; the JSON
 * area is read through rd.  0, or -1 with the problem in err.
 */
int luks2_parse(const uint8_t *bin, luks_read_fn rd, void *opaque, uint64_t file_size,
		struct luks_header *h, char *err, size_t errlen);
/* argon2i/argon2id (argon2.c, libargon2 where built with it): 0 or -1 with err. */
int luks_argon2(const struct luks_slot *s, const void *pw, size_t pwlen, uint8_t *out,
		size_t outlen, char *err, size_t errlen);

/*
 * Tries the password on every active keyslot; the master key (h->key_bytes)
 * goes to key.  0, or -1 with "Invalid password, cannot unlock any keyslot"
 * (or the read/format problem) in err.
 */
int luks_unlock(const struct luks_header *h, const void *pw, size_t pwlen, luks_read_fn rd,
		void *opaque, uint8_t *key, char *err, size_t errlen);

/* Whether pw opens keyslot s (its master key to key): 1, 0, or -1 with err. */
int luks_slot_check(const struct luks_header *h, const struct luks_slot *s, const void *pw,
		    size_t pwlen, luks_read_fn rd, void *opaque, uint8_t *key, char *err,
		    size_t errlen);
/*
 * LUKS1 keyslot i made to hold key under pw (its material written through
 * wr, h updated but not written), or erased (material overwritten with
 * random bytes first, slot disabled in h).  0, or -1 with err.
 */
int luks_slot_set(struct luks_header *h, int i, const void *pw, size_t pwlen,
		  const uint8_t *key, uint64_t iter_time, luks_write_fn wr, void *opaque, char *err,
		  size_t errlen);
int luks_slot_erase(struct luks_header *h, int i, luks_write_fn wr, void *opaque, char *err,
		    size_t errlen);

/* What a create chooses (qemu-img's -o values, parsed). */
struct luks_create_params {
	enum luks_cipher_alg alg;
	enum luks_mode mode;
	enum luks_ivgen ivgen;
	enum luks_hash ivhash;
	enum luks_hash hash;
	uint64_t iter_time;		/* ms */
};
/*
 * Formats a new LUKS1 header and keyslot 0 for pw: writes header and key
 * material through wr, returns the master key in key and the header in h.
 */
int luks_create(const struct luks_create_params *p, const void *pw, size_t pwlen,
		luks_write_fn wr, void *opaque, struct luks_header *h, uint8_t *key, char *err,
		size_t errlen);
/* The payload offset (bytes) a create with these parameters gives. */
uint64_t luks_create_payload_offset(const struct luks_create_params *p);

int luks_cipher_init(struct luks_cipher *c, enum luks_cipher_alg alg, enum luks_mode mode,
		     enum luks_ivgen ivgen, enum luks_hash ivhash, const uint8_t *key,
		     char *err, size_t errlen);
void luks_cipher_free(struct luks_cipher *c);
/*
 * En/decrypts len bytes (a multiple of sector_size) in place; the first
 * sector's IV number is sector, counted in 512-byte units (each sector of
 * sector_size bytes advances it by sector_size / 512).
 */
int luks_cipher_crypt(struct luks_cipher *c, bool encrypt, uint64_t sector, size_t sector_size,
		      uint8_t *buf, size_t len);

/* nettle wrappers */
int luks_pbkdf2(enum luks_hash h, const void *pw, size_t pwlen, const uint8_t *salt,
		size_t saltlen, uint32_t iters, uint8_t *out, size_t outlen);
int luks_hash_buf(enum luks_hash h, const void *buf, size_t len, uint8_t *out);
/* PBKDF2 iterations per second of this host for hash h (a short measurement). */
uint64_t luks_pbkdf2_rate(enum luks_hash h);
/* Random bytes (getrandom). 0 or -1. */
int luks_random(void *buf, size_t len);

/* Anti-forensic split/merge (LUKS1 spec section 2.4). */
int luks_af_merge(enum luks_hash h, const uint8_t *src, size_t blocksize, size_t stripes,
		  uint8_t *dst);
int luks_af_split(enum luks_hash h, const uint8_t *src, size_t blocksize, size_t stripes,
		  uint8_t *dst);

/*
 * qemu-img info's luks data for header h (block/luks.c), as a JSON object;
 * with_format adds qcow2's "format": "luks" tag.
 */
struct jnode;
struct jnode *block_luks_info_data(const struct luks_header *h, bool with_format);
/*
 * The luks create options of o (cipher-alg= ... iter-time=, QEMU's names,
 * defaults and messages) as parameters: 0, or -1 with err (block/luks.c).
 */
struct block_create_opts;
int block_luks_create_params(const struct block_create_opts *o, struct luks_create_params *p,
			     char *err, size_t errlen);

#endif
