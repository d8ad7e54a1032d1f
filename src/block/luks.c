/*
 * luks: a LUKS1 encrypted volume as a disk image, as QEMU's block/crypto.c
 * presents one: the payload after the header and keyslots is the disk,
 * encrypted in 512-byte sectors whose IV is the sector number within the
 * payload.  The key comes from the secret named by key-secret=; qemu-img
 * info opens without one (BLOCK_NO_IO) and shows the header only.
 */
#include "block/block_int.h"
#include "block/crypto/luks.h"
#include "block/luks_amend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

struct luks_state {
	struct luks_header h;
	struct luks_cipher c;
	bool keyed;
	uint8_t key[LUKS_MAX_KEY];	/* the master key: amend writes it into keyslots */
};

static int read_file(void *opaque, uint64_t off, void *buf, size_t len)
{
	return bfile_pread(opaque, off, buf, len);
}

/* The secret behind key-secret=, with QEMU's messages. */
static const char *lookup_key(const char *id, size_t *len, char *err, size_t errlen)
{
	const char *pw;

	if (!id) {
		block_err(err, errlen, "Parameter 'key-secret' is required for cipher");
		return NULL;
	}
	pw = block_secret_lookup(id, len);
	if (!pw)
		block_err(err, errlen, "No secret with id '%s'", id);
	return pw;
}

static int luks_unlock_dev(struct block_dev *bd, struct luks_state *s, char *err, size_t errlen)
{
	uint8_t key[LUKS_MAX_KEY];
	size_t pwlen;
	const char *pw = lookup_key(bd->key_secret, &pwlen, err, errlen);
	int ret;

	if (!pw)
		return -1;
	if (luks_unlock(&s->h, pw, pwlen, read_file, bd, key, err, errlen) < 0)
		return -1;
	ret = luks_cipher_init(&s->c, s->h.alg, s->h.mode, s->h.ivgen, s->h.ivhash, key, err,
			       errlen);
	memcpy(s->key, key, sizeof(key));
	memset(key, 0, sizeof(key));
	if (ret < 0)
		return -1;
	s->keyed = true;
	return 0;
}

/* The header by its version field: LUKS1's phdr, or LUKS2's binary header and JSON. */
static int parse_header(struct block_dev *bd, struct luks_header *h, uint64_t fsize, char *err,
			size_t errlen)
{
	uint8_t buf[4096];
	size_t need = LUKS_HDR_SIZE;
	int ret;

	if (fsize >= 8) {
		ret = bfile_pread(bd, 0, buf, 8);
		if (ret < 0)
			return block_err(err, errlen, "Could not read the LUKS header: %s",
					 strerror(-ret));
		if (!memcmp(buf, "LUKS\xba\xbe\0\2", 8))
			need = sizeof(buf);
	}
	if (fsize < need)
		return block_err(err, errlen, "LUKS header is truncated (%" PRIu64 " of %zu bytes)",
				 fsize, need);
	ret = bfile_pread(bd, 0, buf, need);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the LUKS header: %s", strerror(-ret));
	if (need == sizeof(buf))
		return luks2_parse(buf, read_file, bd, fsize, h, err, errlen);
	return luks1_parse(buf, fsize, h, err, errlen);
}

static int luks_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct luks_state *s;
	int64_t fsize = bfile_size(bd);

	if (fsize < 0)
		return block_err(err, errlen, "Could not get the size: %s", strerror((int)-fsize));
	s = calloc(1, sizeof(*s));
	if (!s)
		return block_err(err, errlen, "out of memory");
	if (parse_header(bd, &s->h, (uint64_t)fsize, err, errlen) < 0 ||
	    (!(bd->flags & BLOCK_NO_IO) && luks_unlock_dev(bd, s, err, errlen) < 0)) {
		free(s);
		return -1;
	}
	bd->opaque = s;
	bd->size = (uint64_t)fsize - s->h.payload_offset;
	/* LUKS2: a fixed segment size (else "dynamic": to the end of the file). */
	if (s->h.payload_size && s->h.payload_size < bd->size)
		bd->size = s->h.payload_size;
	return 0;
}

static void luks_close(struct block_dev *bd)
{
	struct luks_state *s = bd->opaque;

	if (!s)
		return;
	luks_cipher_free(&s->c);
	memset(s, 0, sizeof(*s));	/* the master key included */
	free(s);
	bd->opaque = NULL;
}

/*
 * Whole encryption sectors [sec, sec + len / ss) through the cipher, in buf.
 * LUKS1 sectors are 512 bytes; a LUKS2 segment may have larger ones, whose
 * IVs still count 512-byte units (cryptsetup activates LUKS2 without
 * dm-crypt's iv_large_sectors), plus the segment's iv_tweak.
 */
static uint64_t first_iv(const struct luks_state *s, uint64_t sec)
{
	return sec * (s->h.sector_size / LUKS_SECTOR) + s->h.iv_offset;
}

static int read_sectors(struct block_dev *bd, uint64_t sec, uint8_t *buf, size_t len)
{
	struct luks_state *s = bd->opaque;
	uint32_t ss = s->h.sector_size;
	int ret;

	if (!s->keyed)
		return -EACCES;
	ret = bfile_pread(bd, s->h.payload_offset + sec * ss, buf, len);
	if (ret < 0)
		return ret;
	return luks_cipher_crypt(&s->c, false, first_iv(s, sec), ss, buf, len);
}

static int luks_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct luks_state *s = bd->opaque;
	uint32_t ss = s->h.sector_size;
	uint8_t *out = buf, *bounce = NULL;
	int ret = 0;

	/* Aligned: decrypt in the caller's buffer, no copy. */
	if (off % ss == 0 && len % ss == 0)
		return read_sectors(bd, off / ss, out, len);
	while (len && ret == 0) {
		uint64_t start = off / ss * ss;
		size_t head = (size_t)(off - start);
		size_t n = len < CHUNK - head ? len : CHUNK - head;
		size_t span = (head + n + ss - 1) / ss * ss;
		if (!bounce && !(bounce = malloc(CHUNK)))
			return -ENOMEM;
		ret = read_sectors(bd, start / ss, bounce, span);
		if (ret == 0)
			memcpy(out, bounce + head, n);
		out += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return ret;
}

/*
 * Writes go through a bounce buffer (the caller's data stays plaintext);
 * partial sectors at either end are read, merged and rewritten.
 */
static int luks_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct luks_state *s = bd->opaque;
	uint32_t ss = s->h.sector_size;
	const uint8_t *in = buf;
	uint8_t *bounce;
	int ret = 0;

	if (!s->keyed)
		return -EACCES;
	bounce = malloc(CHUNK);
	if (!bounce)
		return -ENOMEM;
	while (len && ret == 0) {
		uint64_t start = off / ss * ss, sec = start / ss;
		size_t head = (size_t)(off - start);
		size_t n = len < CHUNK - head ? len : CHUNK - head;
		size_t span = (head + n + ss - 1) / ss * ss;
		if (head)
			ret = read_sectors(bd, sec, bounce, ss);
		if (ret == 0 && (head + n) % ss)
			ret = read_sectors(bd, sec + span / ss - 1, bounce + span - ss, ss);
		if (ret < 0)
			break;
		memcpy(bounce + head, in, n);
		luks_cipher_crypt(&s->c, true, first_iv(s, sec), ss, bounce, span);
		ret = bfile_pwrite(bd, s->h.payload_offset + start, bounce, span);
		in += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return ret;
}

/* Zeroes are ciphertext like any data (QEMU's generic write of a zero buffer). */
static int write_through(void *bd, uint64_t off, const void *buf, size_t len)
{
	return luks_pwrite(bd, off, buf, len);
}

static int luks_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	return block_write_zero_buffer(write_through, bd, off, len);
}

static int luks_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}


static int luks_get_info(struct block_dev *bd, struct block_info *info)
{
	info->encrypted = true;
	return 0;
}

static int write_fd(void *opaque, uint64_t off, const void *buf, size_t len)
{
	return block_pwrite_fd(*(int *)opaque, off, buf, len);
}

/* preallocation=falloc|full of the file under the payload (QEMU passes it to file-posix). */
static int create_prealloc(int fd, uint64_t from, uint64_t to, enum block_prealloc prealloc)
{
	static const uint8_t zero[65536];
	int ret = 0;

	if (prealloc == BLOCK_PREALLOC_FALLOC && to > from)
		return -posix_fallocate(fd, (off_t)from, (off_t)(to - from));
	while (prealloc == BLOCK_PREALLOC_FULL && from < to && ret == 0) {
		size_t n = to - from < sizeof(zero) ? (size_t)(to - from) : sizeof(zero);
		ret = write_fd(&fd, from, zero, n);
		from += n;
	}
	return ret;
}

static int luks_truncate(struct block_dev *bd, uint64_t size, bool shrink,
			 enum block_prealloc prealloc, char *err, size_t errlen)
{
	struct luks_state *s = bd->opaque;
	uint64_t end = s->h.payload_offset + size;
	int ret = 0;

	if (size < bd->size && !shrink)
		return block_err(err, errlen, "Use the --shrink option to perform a shrink operation.");
	ret = create_prealloc(bd->fd, s->h.payload_offset + bd->size, end, prealloc);
	block_crash_point();
	if (ret == 0 && ftruncate(bd->fd, (off_t)end) < 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not resize file: %s", strerror(-ret));
	bd->size = size;
	return 0;
}

/* A -o value of the luks list: QEMU's QAPI enum message, or a refusal by name. */
static int enum_opt(const struct block_create_opts *o, const char *name, int (*parse)(const char *),
		    const char *const *qemu_names, int def, int *out, char *err, size_t errlen)
{
	const struct block_fmt_opt *f = block_create_opt(o, name);

	*out = def;
	if (!f)
		return 0;
	*out = parse(f->val);
	if (*out >= 0)
		return 0;
	for (; *qemu_names; qemu_names++)
		if (!strcmp(*qemu_names, f->val))
			return block_err(err, errlen, "Option %s=%s is not supported by Kestrel "
					 "(it has AES ciphers only)", name, f->val);
	return block_err(err, errlen, "Parameter '%s' does not accept value '%s'", name, f->val);
}

/* QEMU 7.2's QCryptoCipherAlgorithm, QCryptoCipherMode and QCryptoHashAlgorithm names. */
static const char *const qemu_algs[] = {
	"des", "3des", "cast5-128", "serpent-128", "serpent-192", "serpent-256",
	"twofish-128", "twofish-192", "twofish-256", "sm4", NULL };
static const char *const qemu_none[] = { NULL };

int block_luks_create_params(const struct block_create_opts *o, struct luks_create_params *p,
			     char *err, size_t errlen)
{
	const struct block_fmt_opt *it = block_create_opt(o, "iter-time");
	int alg, mode, ivgen, ivhash, hash;

	if (enum_opt(o, "cipher-alg", luks_alg_parse, qemu_algs, LUKS_AES256, &alg, err,
		     errlen) < 0 ||
	    enum_opt(o, "cipher-mode", luks_mode_parse, qemu_none, LUKS_MODE_XTS, &mode, err,
		     errlen) < 0 ||
	    enum_opt(o, "ivgen-alg", luks_ivgen_parse, qemu_none, LUKS_IV_PLAIN64, &ivgen, err,
		     errlen) < 0 ||
	    enum_opt(o, "ivgen-hash-alg", luks_hash_parse, qemu_none, LUKS_SHA256, &ivhash, err,
		     errlen) < 0 ||
	    enum_opt(o, "hash-alg", luks_hash_parse, qemu_none, LUKS_SHA256, &hash, err,
		     errlen) < 0)
		return -1;
	p->alg = (enum luks_cipher_alg)alg;
	p->mode = (enum luks_mode)mode;
	p->ivgen = (enum luks_ivgen)ivgen;
	p->ivhash = (enum luks_hash)ivhash;
	p->hash = (enum luks_hash)hash;
	p->iter_time = it ? it->num : 2000;
	return 0;
}

static int luks_create_image(const char *path, const struct block_create_opts *o, char *err,
		       size_t errlen)
{
	const struct block_fmt_opt *ks = block_create_opt(o, "key-secret");
	struct luks_create_params p;
	struct luks_header h;
	uint8_t key[LUKS_MAX_KEY];
	const char *pw;
	size_t pwlen;
	uint64_t end;
	int fd, ret;

	if (block_luks_create_params(o, &p, err, errlen) < 0)
		return -1;
	pw = lookup_key(ks ? ks->val : NULL, &pwlen, err, errlen);
	if (!pw)
		return -1;
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	/*
	 * The file's length is the payload's end (the disk size reads from it),
	 * sized and preallocated from offset 0 before the header is written, as
	 * QEMU's luks init function truncates the empty file.
	 */
	end = luks_create_payload_offset(&p) + o->size;
	ret = create_prealloc(fd, 0, end, o->prealloc);
	if (ret == 0 && block_ftruncate(fd, end) < 0)
		ret = -errno;
	if (ret < 0)
		block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	if (ret == 0)
		ret = luks_create(&p, pw, pwlen, write_fd, &fd, &h, key, err, errlen);
	memset(key, 0, sizeof(key));
	if (close(fd) < 0 && ret == 0)
		ret = block_err(err, errlen, "Could not create '%s': %s", path, strerror(errno));
	return ret < 0 ? -1 : 0;
}

/* QEMU's block_crypto_measure: it checks the secret too, though nothing is encrypted. */
int block_luks_measure(const struct block_create_opts *o, uint64_t size, uint64_t *required,
		       char *err, size_t errlen)
{
	const struct block_fmt_opt *ks = block_create_opt(o, "key-secret");
	struct luks_create_params p;
	size_t pwlen;

	if (block_luks_create_params(o, &p, err, errlen) < 0 ||
	    !lookup_key(ks ? ks->val : NULL, &pwlen, err, errlen))
		return -1;
	*required = luks_create_payload_offset(&p) + size;
	return 0;
}

/*
 * qemu-img info's QCryptoBlockInfoLUKS, in the order qemu-img 7.2 prints it
 * (its QDict's order, not the schema's).  with_format: qcow2's "encrypt"
 * member (QCryptoBlockInfoQCow), whose union tag "format" comes first.
 */
struct jnode *block_luks_info_data(const struct luks_header *h, bool with_format)
{
	struct jnode *data = jobj(), *slots = jarr();

	if (with_format)
		jset_str(data, "format", "luks");
	jset_str(data, "ivgen-alg", luks_ivgen_name(h->ivgen));
	jset_str(data, "hash-alg", luks_hash_name(h->hash));
	jset_str(data, "cipher-alg", luks_alg_name(h->alg));
	jset_str(data, "uuid", h->uuid);
	if (h->ivgen == LUKS_IV_ESSIV)
		jset_str(data, "ivgen-hash-alg", luks_hash_name(h->ivhash));
	jset_str(data, "cipher-mode", luks_mode_name(h->mode));
	for (int i = 0; i < h->nslots; i++) {
		const struct luks_slot *ks = &h->slots[i];
		struct jnode *sl = jobj();
		bool active = ks->active == LUKS_SLOT_ACTIVE;
		jset_bool(sl, "active", active);
		if (active)
			jset_int(sl, "iters", ks->iters);
		jset_int(sl, "key-offset", (int64_t)ks->key_offset * LUKS_SECTOR);
		if (active)
			jset_int(sl, "stripes", ks->stripes);
		jadd(slots, sl);
	}
	jset(data, "slots", slots);
	jset_int(data, "payload-offset", (int64_t)h->payload_offset);
	jset_int(data, "master-key-iters", h->mk_iters);
	return data;
}

static struct jnode *luks_info_specific(struct block_dev *bd)
{
	struct luks_state *s = bd->opaque;
	struct jnode *root = jobj();

	jset_str(root, "type", "luks");
	jset(root, "data", block_luks_info_data(&s->h, false));
	return root;
}

static int write_dev(void *opaque, uint64_t off, const void *buf, size_t len)
{
	return bfile_pwrite(opaque, off, buf, len);
}

static int flush_dev(void *opaque)
{
	return bfile_flush(opaque);
}

/* qemu-img amend -f luks (QEMU's qcrypto_block_luks_amend_options): keyslot management. */
static int luks_amend(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		      char *err, size_t errlen)
{
	struct luks_state *s = bd->opaque;
	struct luks_keyslots v = { &s->h, s->key, read_file, write_dev, flush_dev, bd };

	(void)set;
	return luks_amend_keyslots(&v, o, err, errlen);
}

/* qemu-img amend -f luks -o help (QEMU 7.2's block_crypto_amend_opts_luks). */
static const struct block_opt_desc luks_amend_opts[] = {
	{ "state", BLOCK_OPT_STR, NULL, "Select new state of affected keyslots (active/inactive)" },
	{ "keyslot", BLOCK_OPT_NUM, NULL, "Select a single keyslot to modify explicitly" },
	{ "old-secret", BLOCK_OPT_STR, NULL, "Select all keyslots that match this password" },
	{ "new-secret", BLOCK_OPT_STR, NULL,
	  "New secret to set in the matching keyslots. Empty string to erase" },
	{ "iter-time", BLOCK_OPT_NUM, NULL, "Time to spend in PBKDF in milliseconds" },
	{ NULL, 0, NULL, NULL },
};

/* qemu-img create -f luks -o help (QEMU 7.2's block_crypto_create_opts_luks). */
static const struct block_opt_desc luks_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "key-secret", BLOCK_OPT_STR, NULL,
	  "ID of the secret that provides the keyslot passphrase" },
	{ "cipher-alg", BLOCK_OPT_STR, NULL, "Name of encryption cipher algorithm" },
	{ "cipher-mode", BLOCK_OPT_STR, NULL, "Name of encryption cipher mode" },
	{ "ivgen-alg", BLOCK_OPT_STR, NULL, "Name of IV generator algorithm" },
	{ "ivgen-hash-alg", BLOCK_OPT_STR, NULL, "Name of IV generator hash algorithm" },
	{ "hash-alg", BLOCK_OPT_STR, NULL, "Name of encryption hash algorithm" },
	{ "iter-time", BLOCK_OPT_NUM, NULL, "Time to spend in PBKDF in milliseconds" },
	{ NULL, 0, NULL, NULL },
};

const struct block_driver block_luks_driver = {
	.name = "luks",
	.open = luks_open,
	.close = luks_close,
	.pread = luks_pread,
	.pwrite = luks_pwrite,
	.flush = luks_flush,
	.write_zeroes = luks_write_zeroes,
	.status = block_status_all_data,	/* QEMU's luks has no block status */
	.create = luks_create_image,
	.truncate = luks_truncate,
	.get_info = luks_get_info,
	.info_specific = luks_info_specific,
	.create_opts = luks_create_opts,
	.amend = luks_amend,
	.amend_opts = luks_amend_opts,
	.no_zero_init = true,	/* unwritten ciphertext decrypts to noise */
};
