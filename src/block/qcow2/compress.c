/*
 * Compressed clusters (qcow2 spec: "Compressed Clusters Descriptor" and
 * the compression_type header field): zlib as raw deflate with a 4 KiB
 * window, or a zstd frame.  Stored data is padded to whole sectors, so the
 * decompressors stop once the cluster is full and ignore what follows.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>
#ifdef KESTREL_ZSTD
#include <zstd.h>
#endif

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

#ifdef KESTREL_ZSTD
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
#else
/* Built without libzstd (meson -Dzstd=disabled): zstd images cannot be read or written. */
static long zstd_compress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	(void)out, (void)out_len, (void)in, (void)in_len;
	return -ENOTSUP;
}

static int zstd_decompress(uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	(void)out, (void)out_len, (void)in, (void)in_len;
	return -ENOTSUP;
}
#endif

/*
 * Before deflating, a cheap test for data deflate cannot shrink (btrfs tests
 * the same way before compressing): every 4 KiB block (the deflate window
 * here) has a nearly flat byte histogram, Renyi entropy above 7.85 bits a
 * byte, and hardly a 4-byte string repeats within 4 KiB.  Random, encrypted
 * or already compressed data passes; zlib spends ~25 us/KiB on such data for
 * nothing.  Entropy bounds what Huffman coding saves and the repeats what
 * matches save, so a cluster left uncompressed here would have shrunk by
 * about 2% at most.  Clusters under 4 KiB are too small to judge this way
 * and are always deflated.
 */
#define PROBE_BLOCK	4096
#define PROBE_HASH_BITS	12

bool qcow2_incompressible(const uint8_t *in, size_t len)
{
	uint32_t hist[256], pos[1u << PROBE_HASH_BITS], val[1u << PROBE_HASH_BITS];
	size_t repeats = 0;

	if (len < PROBE_BLOCK)
		return false;
	for (size_t b = 0; b < len; b += PROBE_BLOCK) {
		size_t n = len - b < PROBE_BLOCK ? len - b : PROBE_BLOCK;
		uint64_t pairs = 0;
		memset(hist, 0, sizeof(hist));
		for (size_t i = 0; i < n; i++)
			hist[in[b + i]]++;
		/* sum c(c-1) / n(n-1) estimates the collision probability 2^-H2. */
		for (int i = 0; i < 256; i++)
			pairs += (uint64_t)hist[i] * (hist[i] ? hist[i] - 1 : 0);
		if (pairs * 231 >= (uint64_t)n * (n - 1))	/* 2^7.85 = 230.7 */
			return false;
	}
	/* 4-byte strings seen before within the window: counted without branches. */
	memset(pos, 0, sizeof(pos));
	memset(val, 0, sizeof(val));
	for (size_t i = 0; i + 4 <= len; i++) {
		uint32_t v, h;
		memcpy(&v, in + i, 4);
		h = (v * 2654435761u) >> (32 - PROBE_HASH_BITS);
		repeats += (val[h] == v) & (pos[h] != 0) & (i + 1 - pos[h] <= PROBE_BLOCK);
		pos[h] = (uint32_t)i + 1;
		val[h] = v;
	}
	return repeats <= len / 256;
}

long qcow2_compress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	if (type == BLOCK_COMPRESS_ZSTD)
		return zstd_compress(out, out_len, in, in_len);	/* zstd is quick to give up itself */
	if (qcow2_incompressible(in, in_len))
		return -ENOSPC;
	return zlib_compress(out, out_len, in, in_len);
}

int qcow2_decompress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len)
{
	if (type == BLOCK_COMPRESS_ZSTD)
		return zstd_decompress(out, out_len, in, in_len);
	return zlib_decompress(out, out_len, in, in_len);
}
