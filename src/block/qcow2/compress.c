/*
 * Compressed clusters (qcow2 spec: "Compressed Clusters Descriptor" and
 * the compression_type header field): zlib as raw deflate with a 4 KiB
 * window, or a zstd frame.  Stored data is padded to whole sectors, so the
 * decompressors stop once the cluster is full and ignore what follows.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <zlib.h>
#include <zstd.h>

static long zlib_compress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	z_stream z = { 0 };
	long ret;

	/* QEMU's parameters: window bits -12 (raw deflate, 4 KiB), memLevel 9. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	ret = deflate(&z, Z_FINISH);
	if (ret == Z_STREAM_END)
		ret = (long)(out_len - z.avail_out);
	else
		ret = -ENOSPC;	/* did not fit: store the cluster uncompressed */
	deflateEnd(&z);
	return ret;
}

static int zlib_decompress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	z_stream z = { 0 };
	int ret;

	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	ret = inflate(&z, Z_FINISH);
	/* Z_BUF_ERROR with a full output: the padding after the stream was not needed. */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0)
		ret = 0;
	else
		ret = -EIO;
	inflateEnd(&z);
	return ret;
}

static long zstd_compress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	ZSTD_inBuffer input = { in, in_len, 0 };
	ZSTD_outBuffer output = { out, out_len, 0 };
	size_t r;

	if (!cctx)
		return -ENOMEM;
	/* One ZSTD_e_end call, as QEMU's qcow2_zstd_compress does. */
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_CLEVEL_DEFAULT);
	if (!ZSTD_isError(r))
		r = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_end);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(r) || r != 0)
		return -ENOSPC;
	return (long)output.pos;
}

static int zstd_decompress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer input = { in, in_len, 0 };
	ZSTD_outBuffer output = { out, out_len, 0 };
	int ret = 0;

	if (!dctx)
		return -ENOMEM;
	while (output.pos < output.size) {
		size_t in_last = input.pos, out_last = output.pos;
		size_t r = ZSTD_decompressStream(dctx, &output, &input);
		if (ZSTD_isError(r)) {
			ret = -EIO;
			break;
		}
		/* A frame ended short of a full cluster, or no progress: corrupt data. */
		if ((r == 0 && output.pos < output.size) ||
		    (input.pos == in_last && output.pos == out_last)) {
			ret = -EIO;
			break;
		}
	}
	ZSTD_freeDCtx(dctx);
	return ret;
}

long qcow2_compress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	if (type == BLOCK_COMPRESS_ZSTD)
		return zstd_compress(out, out_len, in, in_len);
	return zlib_compress(out, out_len, in, in_len);
}

int qcow2_decompress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	if (type == BLOCK_COMPRESS_ZSTD)
		return zstd_decompress(out, out_len, in, in_len);
	return zlib_decompress(out, out_len, in, in_len);
}
