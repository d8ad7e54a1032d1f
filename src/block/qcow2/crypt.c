/*
 * qcow2 encryption with LUKS (qcow2 spec: crypt_method 2, header extension
 * "Full disk encryption header pointer" 0x0537be77).  The LUKS header and
 * its keyslots live in clusters of the image; the payload fields of the
 * LUKS header are unused.  Data clusters are encrypted in 512-byte sectors
 * whose IV is the HOST offset / 512: QEMU 7.2 sets crypt_physical_offset for
 * every method but the old AES one (block/qcow2.c, qcow2_do_open), so these
 * are the sectors qcow2_data_pread/pwrite see.  Compressed clusters cannot
 * be encrypted (QEMU refuses them).
 */
#include "block/qcow2/qcow2.h"
#include "block/crypto/luks.h"
#include "block/luks_amend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CRYPT_CHUNK	(1u << 20)

struct qcow2_crypt {
	struct luks_header h;
	struct luks_cipher c;
	bool keyed;
	uint8_t key[LUKS_MAX_KEY];	/* the master key: amend writes it into keyslots */
};

/* LUKS header bytes: offsets relative to the header's start in the image. */
static int hdr_read(void *opaque, uint64_t off, void *buf, size_t len)
{
	struct qcow2 *s = opaque;

	if (off > s->crypt_len || len > s->crypt_len - off)
		return -EINVAL;
	return bfile_pread(s->bd, s->crypt_off + off, buf, len);
}

static int unlock(struct qcow2 *s, struct qcow2_crypt *c, char *err, size_t errlen)
{
	uint8_t key[LUKS_MAX_KEY];
	const char *id = s->bd->key_secret, *pw;
	size_t pwlen;
	int ret;

	if (!id)
		return block_err(err, errlen, "Parameter 'encrypt.key-secret' is required for cipher");
	pw = block_secret_lookup(id, &pwlen);
	if (!pw)
		return block_err(err, errlen, "No secret with id '%s'", id);
	if (luks_unlock(&c->h, pw, pwlen, hdr_read, s, key, err, errlen) < 0)
		return -1;
	ret = luks_cipher_init(&c->c, c->h.alg, c->h.mode, c->h.ivgen, c->h.ivhash, key, err,
			       errlen);
	memcpy(c->key, key, sizeof(key));
	memset(key, 0, sizeof(key));
	if (ret < 0)
		return -1;
	c->keyed = true;
	return 0;
}

int qcow2_crypt_open(struct qcow2 *s, char *err, size_t errlen)
{
	uint8_t buf[LUKS_HDR_SIZE];
	struct qcow2_crypt *c;
	int ret;

	if (!s->h.crypt_method)
		return 0;
	/* QEMU reads the extension before it checks the method (qcow2_do_open). */
	if (!s->crypt_len)
		return block_err(err, errlen, "qcow2 header extension 'crypto header' is missing "
				 "for a LUKS encrypted image");
	if (s->crypt_off % s->cluster_size || s->crypt_len < sizeof(buf) ||
	    s->crypt_off > s->file_size || s->crypt_len > s->file_size - s->crypt_off)
		return block_err(err, errlen, "Invalid crypto header extension: offset %#" PRIx64
				 ", length %" PRIu64, s->crypt_off, s->crypt_len);
	ret = bfile_pread(s->bd, s->crypt_off, buf, sizeof(buf));
	if (ret < 0)
		return block_err(err, errlen, "Could not read the LUKS header: %s", strerror(-ret));
	if (!memcmp(buf, "LUKS\xba\xbe\0\2", 8))
		return block_err(err, errlen, "LUKS2 headers in qcow2 images are not supported by "
				 "Kestrel");
	c = calloc(1, sizeof(*c));
	if (!c)
		return block_err(err, errlen, "out of memory");
	if (luks1_parse(buf, s->crypt_len, &c->h, err, errlen) < 0 ||
	    (!(s->bd->flags & BLOCK_NO_IO) && unlock(s, c, err, errlen) < 0)) {
		free(c);
		return -1;
	}
	s->crypt = c;
	return 0;
}

void qcow2_crypt_free(struct qcow2 *s)
{
	if (!s->crypt)
		return;
	luks_cipher_free(&s->crypt->c);
	memset(s->crypt, 0, sizeof(*s->crypt));	/* the key schedule included */
	free(s->crypt);
	s->crypt = NULL;
}

int qcow2_crypt_read(struct qcow2 *s, uint64_t host, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t start = host & ~(uint64_t)(LUKS_SECTOR - 1);
	size_t head = (size_t)(host - start), span;
	uint8_t *bounce;
	int ret;

	if (!s->crypt->keyed)
		return -EACCES;
	if (!head && len % LUKS_SECTOR == 0) {
		ret = qcow2_data_pread_raw(s, host, p, len);
		return ret < 0 ? ret : luks_cipher_crypt(&s->crypt->c, false, host / LUKS_SECTOR,
							 LUKS_SECTOR, p, len);
	}
	/* Part of a sector: the whole sectors decrypted in a bounce buffer. */
	span = (head + len + LUKS_SECTOR - 1) & ~(size_t)(LUKS_SECTOR - 1);
	bounce = malloc(span);
	if (!bounce)
		return -ENOMEM;
	ret = qcow2_data_pread_raw(s, start, bounce, span);
	if (ret == 0)
		ret = luks_cipher_crypt(&s->crypt->c, false, start / LUKS_SECTOR, LUKS_SECTOR,
					bounce, span);
	if (ret == 0)
		memcpy(p, bounce + head, len);
	free(bounce);
	return ret;
}

/*
 * The caller's plaintext stays as it is: each chunk is copied, encrypted and
 * written.  Partial sectors at either end are read, decrypted and merged
 * first (qcow2 data writes are sector aligned but for in-place overwrites).
 */
int qcow2_crypt_write(struct qcow2 *s, uint64_t host, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	uint8_t *bounce;
	int ret = 0;

	if (!s->crypt->keyed)
		return -EACCES;
	bounce = malloc(CRYPT_CHUNK);
	if (!bounce)
		return -ENOMEM;
	while (len && ret == 0) {
		uint64_t start = host & ~(uint64_t)(LUKS_SECTOR - 1);
		size_t head = (size_t)(host - start);
		size_t n = len < CRYPT_CHUNK - head ? len : CRYPT_CHUNK - head;
		size_t span = (head + n + LUKS_SECTOR - 1) & ~(size_t)(LUKS_SECTOR - 1);

		if (head)
			ret = qcow2_crypt_read(s, start, bounce, LUKS_SECTOR);
		if (ret == 0 && (head + n) % LUKS_SECTOR)
			ret = qcow2_crypt_read(s, start + span - LUKS_SECTOR,
					       bounce + span - LUKS_SECTOR, LUKS_SECTOR);
		if (ret < 0)
			break;
		memcpy(bounce + head, in, n);
		ret = luks_cipher_crypt(&s->crypt->c, true, start / LUKS_SECTOR, LUKS_SECTOR,
					bounce, span);
		if (ret == 0)
			ret = qcow2_data_pwrite_raw(s, start, bounce, span);
		in += n;
		host += n;
		len -= n;
	}
	free(bounce);
	return ret;
}

/* qemu-img info's "encrypt" member (QEMU's QCryptoBlockInfoQCow with format luks). */
struct jnode *qcow2_crypt_info(struct qcow2 *s)
{
	if (!s->crypt)
		return NULL;
	return block_luks_info_data(&s->crypt->h, true);
}

/*
 * encrypt.* of a qcow2 create (the prefix already dropped), checked before
 * any file exists, with qemu-img 7.2's messages.  *luks: whether to encrypt.
 */
int qcow2_crypt_check_opts(const struct block_create_opts *o, bool *luks, char *err,
			   size_t errlen)
{
	static const char *const names[] = { "format", "key-secret", "cipher-alg", "cipher-mode",
		"ivgen-alg", "ivgen-hash-alg", "hash-alg", "iter-time", NULL };
	const struct block_fmt_opt *fmt = block_create_opt(o, "format");
	const struct block_fmt_opt *ks = block_create_opt(o, "key-secret");
	struct luks_create_params p;
	bool any = false;
	size_t len;

	*luks = false;
	for (int i = 0; names[i]; i++)
		any |= block_create_opt(o, names[i]) != NULL;
	if (!any)
		return 0;
	if (!fmt)
		return block_err(err, errlen, "Parameter 'encrypt.format' is missing");
	if (!strcmp(fmt->val, "aes"))
		return block_err(err, errlen, "Option encrypt.format=aes is not supported by "
				 "Kestrel: it writes no images with the old AES encryption (use "
				 "encrypt.format=luks)");
	if (strcmp(fmt->val, "luks"))
		return block_err(err, errlen, "Parameter 'format' does not accept value '%s'",
				 fmt->val);
	if (!ks)
		return block_err(err, errlen, "Parameter 'encrypt.key-secret' is required for "
				 "cipher");
	if (block_luks_create_params(o, &p, err, errlen) < 0)
		return -1;
	if (!block_secret_lookup(ks->val, &len))
		return block_err(err, errlen, "No secret with id '%s'", ks->val);
	*luks = true;
	return 0;
}

/*
 * qcow2_measure adds the LUKS header's clusters when encrypt.format is luks,
 * checking the options as create does; other values (aes, or one it does
 * not know) it measures as a plain image.
 */
int block_qcow2_crypt_measure(const struct block_create_opts *o, uint32_t cluster_size,
			      uint64_t *bytes, char *err, size_t errlen)
{
	const struct block_fmt_opt *fmt = block_create_opt(o, "format");
	struct luks_create_params p;
	bool luks;

	*bytes = 0;
	if (!fmt || strcmp(fmt->val, "luks"))
		return 0;
	if (qcow2_crypt_check_opts(o, &luks, err, errlen) < 0 ||
	    block_luks_create_params(o, &p, err, errlen) < 0)
		return -1;
	*bytes = (luks_create_payload_offset(&p) + cluster_size - 1) / cluster_size * cluster_size;
	return 0;
}

static int hdr_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
	struct qcow2 *s = opaque;

	if (off > s->crypt_len || len > s->crypt_len - off)
		return -EINVAL;
	return bfile_pwrite(s->bd, s->crypt_off + off, buf, len);
}

static int hdr_flush(void *opaque)
{
	struct qcow2 *s = opaque;

	return bfile_flush(s->bd);
}

/* Whether an amend has encrypt.* options (their prefix dropped): keyslot changes. */
bool qcow2_crypt_amending(const struct block_create_opts *o)
{
	static const char *const names[] = { "state", "keyslot", "old-secret", "new-secret",
		"iter-time", NULL };

	for (int i = 0; names[i]; i++)
		if (block_create_opt(o, names[i]))
			return true;
	return false;
}

/* qcow2_amend_options' encrypt.* part: the keyslots of the LUKS header in the image. */
int qcow2_crypt_amend(struct qcow2 *s, const struct block_create_opts *o, char *err,
		      size_t errlen)
{
	struct luks_keyslots v;

	if (!s->crypt)
		return block_err(err, errlen, "Can't amend encryption options - encryption not "
				 "present");
	if (!s->crypt->keyed)
		return block_err(err, errlen, "Parameter 'encrypt.key-secret' is required for "
				 "cipher");
	v = (struct luks_keyslots){ &s->crypt->h, s->crypt->key, hdr_read, hdr_write, hdr_flush,
				    s };
	return luks_amend_keyslots(&v, o, err, errlen);
}

/*
 * Sets up LUKS on a new, sized image as QEMU's qcow2_set_up_encryption does:
 * clusters for the LUKS header and keyslots (its payload offset gives their
 * length), zero filled, the header written into them, then the qcow2 header
 * with crypt_method 2 and the pointer extension.  Until that last write the
 * image is a plain one whose extra clusters are referenced, not leaked.
 */
int qcow2_crypt_create(struct qcow2 *s, const struct block_create_opts *o, char *err,
		       size_t errlen)
{
	const struct block_fmt_opt *ks = block_create_opt(o, "key-secret");
	struct luks_create_params p;
	struct luks_header h;
	uint8_t key[LUKS_MAX_KEY], *zero;
	uint64_t len, n, off;
	const char *pw;
	size_t pwlen;
	int ret;

	if (block_luks_create_params(o, &p, err, errlen) < 0)
		return -1;
	pw = ks ? block_secret_lookup(ks->val, &pwlen) : NULL;
	if (!pw)
		return block_err(err, errlen, "Parameter 'encrypt.key-secret' is required for "
				 "cipher");
	len = luks_create_payload_offset(&p);
	n = qcow2_size_to_clusters(s, len);
	ret = qcow2_alloc_clusters(s, n, &off);
	if (ret == 0)
		ret = qcow2_rc_flush(s, true);
	zero = ret == 0 ? calloc(1, s->cluster_size) : NULL;
	if (ret == 0 && !zero)
		ret = -ENOMEM;
	for (uint64_t i = 0; ret == 0 && i < n; i++)
		ret = bfile_pwrite(s->bd, off + (i << s->cluster_bits), zero, s->cluster_size);
	free(zero);
	if (ret < 0)
		return block_err(err, errlen, "Could not allocate the LUKS header: %s",
				 strerror(-ret));
	s->crypt_off = off;
	s->crypt_len = len;
	ret = luks_create(&p, pw, pwlen, hdr_write, s, &h, key, err, errlen);
	memset(key, 0, sizeof(key));
	if (ret < 0)
		return -1;
	s->h.crypt_method = 2;
	ret = bfile_flush(s->bd);
	if (ret == 0)
		ret = qcow2_write_header(s);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return block_err(err, errlen, "Could not write qcow2 header: %s", strerror(-ret));
	return 0;
}
