/* Helpers of the read-only formats dmg, cloop and bochs (readonly.h). */
#include "block/readonly.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef KESTREL_BZIP2
#include <bzlib.h>
#endif

int ro_open(struct block_dev *bd, size_t state_size, ro_parse_fn parse, char *err,
	    size_t errlen)
{
	int64_t fsize;

	if (!bd->read_only)
		return block_err(err, errlen, "Image is read-only");
	fsize = bfile_size(bd);
	if (fsize < 0)
		return block_err(err, errlen, "Could not get the file size: %s",
				 strerror((int)-fsize));
	bd->opaque = calloc(1, state_size);
	if (!bd->opaque)
		return block_err(err, errlen, "out of memory");
	if (parse(bd, (uint64_t)fsize, err, errlen) == 0)
		return 0;
	bd->drv->close(bd);
	bd->opaque = NULL;
	return -1;
}

int ro_get_info(struct block_dev *bd, struct block_info *info)
{
	(void)bd;
	(void)info;
	return -ENOTSUP;
}

int ro_cache_init(struct ro_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->unit = UINT64_MAX;
	if (inflateInit(&c->zs) != Z_OK)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->ready = true;
	return 0;
}

void ro_cache_fini(struct ro_cache *c)
{
	if (c->ready) {
		inflateEnd(&c->zs);
		pthread_mutex_destroy(&c->lock);
	}
	free(c->in);
	free(c->out);
}

static int ro_inflate(z_stream *zs, const void *in, size_t inlen, void *out, size_t outlen)
{
	int ret;

	if (inlen > UINT_MAX || outlen > UINT_MAX || inflateReset(zs) != Z_OK)
		return -EIO;
	zs->next_in = (Bytef *)in;
	zs->avail_in = (uInt)inlen;
	zs->next_out = out;
	zs->avail_out = (uInt)outlen;
	ret = inflate(zs, Z_FINISH);
	if (ret != Z_STREAM_END || zs->total_out != outlen)
		return -EIO;
	return 0;
}

#ifdef KESTREL_BZIP2
bool ro_have_bzip2(void)
{
	return true;
}

static int ro_bunzip2(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	unsigned int got = (unsigned int)outlen;

	if (inlen > UINT_MAX || outlen > UINT_MAX)
		return -EIO;
	/* A stream longer than out is BZ_OUTBUFF_FULL: out bounds the work. */
	if (BZ2_bzBuffToBuffDecompress((char *)out, &got, (char *)in, (unsigned int)inlen,
				       0, 0) != BZ_OK || got != outlen)
		return -EIO;
	return 0;
}
#else
bool ro_have_bzip2(void)
{
	return false;
}

static int ro_bunzip2(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	(void)in; (void)inlen; (void)out; (void)outlen;
	return -ENOTSUP;	/* never reached: drivers drop bzip2 units without it */
}
#endif

static int ro_unpack(z_stream *zs, const struct ro_unit *u, const uint8_t *in, uint8_t *out)
{
	if (u->codec == RO_ZLIB)
		return ro_inflate(zs, in, u->len, out, u->out);
	return ro_bunzip2(in, u->len, out, u->out);
}

/* Unit u into c->out, unless it is there already.  Called with c->lock held. */
static int ro_cache_load(struct block_dev *bd, struct ro_cache *c, const struct ro_unit *u)
{
	int ret;

	if (c->unit == u->index)
		return 0;
	if ((!c->in && !(c->in = malloc(c->in_len + 1))) ||
	    (!c->out && !(c->out = malloc(c->out_len + 1))))
		return -ENOMEM;
	c->unit = UINT64_MAX;
	ret = bfile_pread(bd, u->off, c->in, u->len);
	if (ret == 0)
		ret = ro_unpack(&c->zs, u, c->in, c->out);
	if (ret == 0)
		c->unit = u->index;
	return ret;
}

/*
 * A whole unit straight into dst, with a stream of its own and no lock:
 * convert's threads, which read whole units, unpack them side by side.
 */
static int ro_unit_direct(struct block_dev *bd, const struct ro_unit *u, uint8_t *dst)
{
	z_stream zs = { 0 };
	uint8_t *in = malloc(u->len + 1);
	int ret;

	if (!in)
		return -ENOMEM;
	ret = bfile_pread(bd, u->off, in, u->len);
	if (ret == 0 && inflateInit(&zs) != Z_OK)
		ret = -ENOMEM;
	if (ret == 0) {
		ret = ro_unpack(&zs, u, in, dst);
		inflateEnd(&zs);
	}
	free(in);
	return ret;
}

int ro_cache_read(struct block_dev *bd, struct ro_cache *c, const struct ro_unit *u,
		  uint8_t *dst, size_t skip, size_t n)
{
	int ret;

	if (skip == 0 && n == u->out)
		return ro_unit_direct(bd, u, dst);
	pthread_mutex_lock(&c->lock);
	ret = ro_cache_load(bd, c, u);
	if (ret == 0)
		memcpy(dst, c->out + skip, n);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int ro_read_units(struct block_dev *bd, uint64_t off, uint8_t *buf, size_t len,
		  uint64_t unit_len, ro_fill_fn fill)
{
	while (len) {
		uint64_t unit = off / unit_len;
		size_t skip = (size_t)(off % unit_len);
		size_t n = unit_len - skip < len ? (size_t)(unit_len - skip) : len;
		int ret = fill(bd, unit, buf, skip, n);

		if (ret < 0)
			return ret;
		off += n;
		buf += n;
		len -= n;
	}
	return 0;
}
