/* Helpers of the read-only formats dmg, cloop and bochs (readonly.h). */
#include "block/readonly.h"

#include <errno.h>

int ro_open_check(const struct block_dev *bd, char *err, size_t errlen)
{
	/* QEMU: bdrv_apply_auto_read_only(bs, NULL, errp) with no auto-read-only. */
	if (!bd->read_only)
		return block_err(err, errlen, "Image is read-only");
	return 0;
}

int ro_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum, uint64_t *map,
	      unsigned *flags)
{
	(void)bd;
	*pnum = len;
	*map = off;
	*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
	return 0;
}

int ro_get_info(struct block_dev *bd, struct block_info *info)
{
	(void)bd;
	(void)info;
	return -ENOTSUP;
}

int ro_inflate(z_stream *zs, const void *in, size_t inlen, void *out, size_t outlen)
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
