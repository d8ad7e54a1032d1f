/*
 * The LUKS sector cipher and hashes, on nettle: AES-128/192/256 in XTS, CBC,
 * ECB or CTR mode, IVs from the sector number (plain, plain64) or ESSIV (the
 * sector number encrypted with the hash of the key), PBKDF2, and the
 * anti-forensic splitter of LUKS1 spec section 2.4.
 */
#include "block/crypto/luks.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nettle/cbc.h>
#include <nettle/ctr.h>
#include <nettle/hmac.h>
#include <nettle/memxor.h>
#include <nettle/nettle-meta.h>
#include <nettle/pbkdf2.h>
#include <nettle/xts.h>

static const char *const alg_names[] = { "aes-128", "aes-192", "aes-256" };
static const char *const mode_names[] = { "xts", "cbc", "ecb", "ctr" };
static const char *const ivgen_names[] = { "plain", "plain64", "essiv" };
static const char *const hash_names[] = { "sha1", "sha224", "sha256", "sha384", "sha512",
					  "ripemd160", "md5" };

static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

const char *luks_alg_name(enum luks_cipher_alg a) { return alg_names[a]; }
const char *luks_mode_name(enum luks_mode m) { return mode_names[m]; }
const char *luks_ivgen_name(enum luks_ivgen g) { return ivgen_names[g]; }
const char *luks_hash_name(enum luks_hash h) { return h < LUKS_HASH_NONE ? hash_names[h] : ""; }
int luks_alg_parse(const char *s) { return lookup(alg_names, 3, s); }
int luks_mode_parse(const char *s) { return lookup(mode_names, 4, s); }
int luks_ivgen_parse(const char *s) { return lookup(ivgen_names, 3, s); }
int luks_hash_parse(const char *s) { return lookup(hash_names, 7, s); }

size_t luks_alg_key_len(enum luks_cipher_alg a)
{
	return a == LUKS_AES128 ? 16 : a == LUKS_AES192 ? 24 : 32;
}

static const struct nettle_hash *hash_meta(enum luks_hash h)
{
	switch (h) {
	case LUKS_SHA1: return &nettle_sha1;
	case LUKS_SHA224: return &nettle_sha224;
	case LUKS_SHA256: return &nettle_sha256;
	case LUKS_SHA384: return &nettle_sha384;
	case LUKS_SHA512: return &nettle_sha512;
	case LUKS_RIPEMD160: return &nettle_ripemd160;
	case LUKS_MD5: return &nettle_md5;
	default: return NULL;
	}
}

size_t luks_hash_len(enum luks_hash h)
{
	const struct nettle_hash *m = hash_meta(h);

	return m ? m->digest_size : 0;
}

/* A context for hash h, malloc'd: 0, -EINVAL (no such hash) or -ENOMEM. */
static int hash_ctx_new(enum luks_hash h, const struct nettle_hash **m, void **ctx)
{
	*m = hash_meta(h);
	if (!*m)
		return -EINVAL;
	*ctx = malloc((*m)->context_size);
	return *ctx ? 0 : -ENOMEM;
}

int luks_hash_buf(enum luks_hash h, const void *buf, size_t len, uint8_t *out)
{
	const struct nettle_hash *m;
	void *ctx;
	int ret = hash_ctx_new(h, &m, &ctx);

	if (ret < 0)
		return ret;
	m->init(ctx);
	m->update(ctx, len, buf);
	m->digest(ctx, m->digest_size, out);
	free(ctx);
	return 0;
}

#define PBKDF2_GENERIC(type, alg, size) do {					\
	struct hmac_##type##_ctx ctx;						\
	hmac_##type##_set_key(&ctx, pwlen, pw);					\
	PBKDF2(&ctx, hmac_##type##_update, hmac_##type##_digest, size, iters,	\
	       saltlen, salt, outlen, out);					\
} while (0)

int luks_pbkdf2(enum luks_hash h, const void *pw, size_t pwlen, const uint8_t *salt,
		size_t saltlen, uint32_t iters, uint8_t *out, size_t outlen)
{
	if (!iters)
		return -EINVAL;
	switch (h) {
	case LUKS_SHA1: pbkdf2_hmac_sha1(pwlen, pw, iters, saltlen, salt, outlen, out); break;
	case LUKS_SHA256: pbkdf2_hmac_sha256(pwlen, pw, iters, saltlen, salt, outlen, out); break;
	case LUKS_SHA384: pbkdf2_hmac_sha384(pwlen, pw, iters, saltlen, salt, outlen, out); break;
	case LUKS_SHA512: pbkdf2_hmac_sha512(pwlen, pw, iters, saltlen, salt, outlen, out); break;
	case LUKS_SHA224: PBKDF2_GENERIC(sha224, sha224, SHA224_DIGEST_SIZE); break;
	case LUKS_RIPEMD160: PBKDF2_GENERIC(ripemd160, ripemd160, RIPEMD160_DIGEST_SIZE); break;
	case LUKS_MD5: PBKDF2_GENERIC(md5, md5, MD5_DIGEST_SIZE); break;
	default: return -EINVAL;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * QEMU's qcrypto_pbkdf2_count_iters measures for 500 ms; 50 ms of thread
 * CPU time gives the same rate within a few percent and keeps creation fast.
 */
uint64_t luks_pbkdf2_rate(enum luks_hash h)
{
	static const uint8_t salt[LUKS_SALT_LEN];
	uint8_t out[LUKS_DIGEST_LEN];
	uint64_t iters = 1024, start, ns;

	for (;;) {
		start = now_ns();
		luks_pbkdf2(h, "kestrel", 7, salt, sizeof(salt), (uint32_t)iters, out, sizeof(out));
		ns = now_ns() - start;
		if (ns >= 50000000ull || iters >= (1ull << 30))
			break;
		iters *= ns < 5000000ull ? 8 : 2;
	}
	return ns ? iters * 1000000000ull / ns : iters;
}

int luks_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* LUKS1 spec 2.4: H(i || block_i) over digest-sized blocks of the buffer. */
static int af_diffuse(enum luks_hash h, uint8_t *buf, size_t len)
{
	const struct nettle_hash *m;
	uint8_t digest[64], idx[4];
	void *ctx;
	int ret = hash_ctx_new(h, &m, &ctx);

	if (ret < 0)
		return ret;
	for (size_t i = 0, off = 0; off < len; i++, off += m->digest_size) {
		size_t n = len - off < m->digest_size ? len - off : m->digest_size;
		st_be32(idx, (uint32_t)i);
		m->init(ctx);
		m->update(ctx, 4, idx);
		m->update(ctx, n, buf + off);
		m->digest(ctx, m->digest_size, digest);
		memcpy(buf + off, digest, n);
	}
	free(ctx);
	return 0;
}

int luks_af_merge(enum luks_hash h, const uint8_t *src, size_t blocksize, size_t stripes,
		  uint8_t *dst)
{
	int ret = 0;

	memset(dst, 0, blocksize);
	for (size_t i = 0; i + 1 < stripes && ret == 0; i++) {
		memxor(dst, src + i * blocksize, blocksize);
		ret = af_diffuse(h, dst, blocksize);
	}
	if (ret == 0)
		memxor(dst, src + (stripes - 1) * blocksize, blocksize);
	return ret;
}

int luks_af_split(enum luks_hash h, const uint8_t *src, size_t blocksize, size_t stripes,
		  uint8_t *dst)
{
	uint8_t d[LUKS_MAX_KEY];
	int ret;

	if (blocksize > sizeof(d) || luks_random(dst, blocksize * (stripes - 1)) < 0)
		return -EIO;
	memset(d, 0, blocksize);
	for (size_t i = 0; i + 1 < stripes; i++) {
		memxor(d, dst + i * blocksize, blocksize);
		ret = af_diffuse(h, d, blocksize);
		if (ret < 0)
			return ret;
	}
	memxor3(dst + (stripes - 1) * blocksize, d, src, blocksize);
	return 0;
}

static const struct nettle_cipher *aes_meta(size_t keylen)
{
	return keylen == 16 ? &nettle_aes128 : keylen == 24 ? &nettle_aes192 :
	       keylen == 32 ? &nettle_aes256 : NULL;
}

static void *keyed(const struct nettle_cipher *m, const uint8_t *key, bool enc)
{
	void *ctx = malloc(m->context_size);

	if (ctx)
		(enc ? m->set_encrypt_key : m->set_decrypt_key)(ctx, key);
	return ctx;
}

void luks_cipher_free(struct luks_cipher *c)
{
	free(c->enc);
	free(c->dec);
	free(c->twk);
	free(c->essiv);
	memset(c, 0, sizeof(*c));
}

/* ESSIV's IV cipher is AES with the digest's length as key (QEMU: no other). */
static int essiv_init(struct luks_cipher *c, enum luks_hash ivhash, const uint8_t *key,
		      size_t keylen, char *err, size_t errlen)
{
	uint8_t digest[64];
	size_t dlen = luks_hash_len(ivhash);
	const struct nettle_cipher *m = aes_meta(dlen);

	if (!m) {
		snprintf(err, errlen, "No AES cipher with key size %zu available", dlen);
		return -1;
	}
	if (luks_hash_buf(ivhash, key, keylen, digest) < 0)
		return -1;
	c->essiv_meta = m;
	c->essiv = keyed(m, digest, true);
	memset(digest, 0, sizeof(digest));
	return c->essiv ? 0 : -1;
}

int luks_cipher_init(struct luks_cipher *c, enum luks_cipher_alg alg, enum luks_mode mode,
		     enum luks_ivgen ivgen, enum luks_hash ivhash, const uint8_t *key,
		     char *err, size_t errlen)
{
	size_t klen = luks_alg_key_len(alg);
	const struct nettle_cipher *m = aes_meta(klen);

	memset(c, 0, sizeof(*c));
	c->alg = alg;
	c->mode = mode;
	c->ivgen = ivgen;
	c->meta = m;
	c->enc = keyed(m, key, true);
	c->dec = keyed(m, key, false);
	if (mode == LUKS_MODE_XTS)
		c->twk = keyed(m, key + klen, true);
	if (!c->enc || !c->dec || (mode == LUKS_MODE_XTS && !c->twk)) {
		luks_cipher_free(c);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (ivgen == LUKS_IV_ESSIV &&
	    essiv_init(c, ivhash, key, mode == LUKS_MODE_XTS ? 2 * klen : klen, err, errlen) < 0) {
		luks_cipher_free(c);
		return -1;
	}
	return 0;
}

/* The IV of one sector: its number, little endian, 32 or 64 bits, or ESSIV's. */
static void make_iv(const struct luks_cipher *c, uint64_t sector, uint8_t iv[16])
{
	memset(iv, 0, 16);
	if (c->ivgen == LUKS_IV_PLAIN)
		st_le32(iv, (uint32_t)sector);
	else
		st_le64(iv, sector);
	if (c->ivgen == LUKS_IV_ESSIV) {
		const struct nettle_cipher *em = c->essiv_meta;
		em->encrypt(c->essiv, 16, iv, iv);
	}
}

int luks_cipher_crypt(struct luks_cipher *c, bool encrypt, uint64_t sector, size_t sector_size,
		      uint8_t *buf, size_t len)
{
	const struct nettle_cipher *m = c->meta;
	uint8_t iv[16];

	if (len % sector_size)
		return -EINVAL;
	/* dm-crypt without iv_large_sectors: IVs count 512-byte units, whatever the sector. */
	for (size_t off = 0; off < len; off += sector_size, sector += sector_size / LUKS_SECTOR) {
		uint8_t *p = buf + off;
		make_iv(c, sector, iv);
		switch (c->mode) {
		case LUKS_MODE_XTS:
			if (encrypt)
				xts_encrypt_message(c->enc, c->twk, m->encrypt, iv, sector_size, p, p);
			else
				xts_decrypt_message(c->dec, c->twk, m->decrypt, m->encrypt, iv,
						    sector_size, p, p);
			break;
		case LUKS_MODE_CBC:
			if (encrypt)
				cbc_encrypt(c->enc, m->encrypt, 16, iv, sector_size, p, p);
			else
				cbc_decrypt(c->dec, m->decrypt, 16, iv, sector_size, p, p);
			break;
		case LUKS_MODE_CTR:
			/* The IV is the initial counter block, big-endian increments (dm-crypt). */
			ctr_crypt(c->enc, m->encrypt, 16, iv, sector_size, p, p);
			break;
		case LUKS_MODE_ECB:
			(encrypt ? m->encrypt : m->decrypt)(encrypt ? c->enc : c->dec, sector_size,
							    p, p);
			break;
		}
	}
	return 0;
}
