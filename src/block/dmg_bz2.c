/*
 * bzip2 chunks of dmg images (UDBZ), through libbz2 where the build found it:
 * QEMU's optional dmg-bz2 module.  Without it, bzip2 chunks are refused.
 */
#include "block/dmg.h"

#include <errno.h>
#include <limits.h>

#ifdef KESTREL_BZIP2
#include <bzlib.h>

bool dmg_have_bzip2(void)
{
	return true;
}

int dmg_bunzip2(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	unsigned int got = (unsigned int)outlen;

	if (inlen > UINT_MAX || outlen > UINT_MAX)
		return -EIO;
	/* The output buffer bounds the work: a longer stream is BZ_OUTBUFF_FULL. */
	if (BZ2_bzBuffToBuffDecompress((char *)out, &got, (char *)in, (unsigned int)inlen,
				       0, 0) != BZ_OK || got != outlen)
		return -EIO;
	return 0;
}
#else
bool dmg_have_bzip2(void)
{
	return false;
}

int dmg_bunzip2(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	(void)in; (void)inlen; (void)out; (void)outlen;
	return -ENOTSUP;
}
#endif
