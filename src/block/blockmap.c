/*
 * Block-table formats (blockmap.h): the loops vpc and vdi share.  Every
 * request is cut at block boundaries; each piece is read from or written to
 * where the driver's lookup puts its block, or allocated by the driver.
 */
#include "block/blockmap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void blockmap_init(struct blockmap *m, struct block_dev *bd, uint64_t block_size)
{
	m->bd = bd;
	m->block_size = block_size;
	pthread_mutex_init(&m->lock, NULL);
}

void blockmap_destroy(struct blockmap *m)
{
	pthread_mutex_destroy(&m->lock);
}

void *blockmap_read_table(struct block_dev *bd, uint64_t off, uint64_t len, const char *what,
			  char *err, size_t errlen)
{
	int64_t fsize = bfile_size(bd);
	void *t;
	int ret;

	if (fsize < 0 || off > (uint64_t)fsize || len > (uint64_t)fsize - off) {
		block_err(err, errlen, "%s (offset 0x%" PRIx64 ", %" PRIu64 " bytes) lies past the "
			  "end of the file", what, off, len);
		return NULL;
	}
	t = malloc(len ? (size_t)len : 1);
	if (!t) {
		block_err(err, errlen, "Could not allocate the %s", what);
		return NULL;
	}
	ret = bfile_pread(bd, off, t, (size_t)len);
	if (ret < 0) {
		block_err(err, errlen, "Could not read the %s: %s", what, strerror(-ret));
		free(t);
		return NULL;
	}
	return t;
}

/* The piece of [off, off + len) inside off's block. */
static size_t piece(const struct blockmap *m, uint64_t off, uint64_t len)
{
	uint64_t left = m->block_size - off % m->block_size;

	return (size_t)(len < left ? len : left);
}

static int64_t lookup(struct blockmap *m, uint64_t block)
{
	int64_t host;

	pthread_mutex_lock(&m->lock);
	host = m->lookup(m->bd, block);
	pthread_mutex_unlock(&m->lock);
	return host;
}

int blockmap_pread(struct blockmap *m, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		size_t n = piece(m, off, len);
		int64_t host = lookup(m, off / m->block_size);
		int ret = 0;

		if (host < 0)
			return (int)host;
		if (host == 0)
			memset(p, 0, n);
		else
			ret = bfile_pread(m->bd, (uint64_t)host + off % m->block_size, p, n);
		if (ret < 0)
			return ret;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * One piece inside one block: allocation (under the lock) or a plain write.
 * buf NULL writes zeroes: an unallocated block reads as zeroes already, an
 * allocated one gets them from the file (a hole where it can have one).
 */
static int write_piece(struct blockmap *m, uint64_t off, const void *buf, size_t n)
{
	uint64_t block = off / m->block_size, in = off % m->block_size;
	int64_t host;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	host = m->lookup(m->bd, block);
	if (host == 0 && buf)
		ret = m->alloc(m->bd, block, in, buf, n);
	else if (host > 0 && m->before_write)
		ret = m->before_write(m->bd, block, host);
	pthread_mutex_unlock(&m->lock);
	if (host < 0)
		return (int)host;
	if (host == 0 || ret < 0)
		return ret;
	if (!buf)
		return block_raw_driver.write_zeroes(m->bd, (uint64_t)host + in, n, true);
	return bfile_pwrite(m->bd, (uint64_t)host + in, buf, n);
}

/* buf NULL: zeroes. */
static int write_pieces(struct blockmap *m, uint64_t off, const uint8_t *buf, uint64_t len)
{
	while (len) {
		size_t n = piece(m, off, len);
		int ret = write_piece(m, off, buf, n);

		if (ret < 0)
			return ret;
		off += n;
		if (buf)
			buf += n;
		len -= n;
	}
	return 0;
}

int blockmap_pwrite(struct blockmap *m, uint64_t off, const void *buf, size_t len)
{
	return write_pieces(m, off, buf, len);
}

int blockmap_write_zeroes(struct blockmap *m, uint64_t off, uint64_t len)
{
	return write_pieces(m, off, NULL, len);
}

/*
 * QEMU's BDRV_BLOCK_RECURSE: the file's own status at the data's place (a
 * hole there reads as zeroes), from the raw driver that reads the same fd.
 */
static void recurse_file(struct blockmap *m, uint64_t host, uint64_t *pnum, unsigned *flags)
{
	uint64_t fnum, fmap;
	unsigned fflags;

	if (block_raw_driver.status(m->bd, host, *pnum, &fnum, &fmap, &fflags) < 0)
		return;
	*pnum = fnum;
	*flags |= fflags & BLOCK_STATUS_ZERO;
}

int blockmap_status(struct blockmap *m, uint64_t off, uint64_t len, uint64_t *pnum,
		    uint64_t *map, unsigned *flags)
{
	uint64_t done = 0;
	int64_t host = lookup(m, off / m->block_size);

	if (host < 0)
		return (int)host;
	if (host) {
		*pnum = piece(m, off, len);
		*map = (uint64_t)host + off % m->block_size;
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
		if (m->recurse)
			recurse_file(m, *map, pnum, flags);
		return 0;
	}
	while (done < len && host == 0) {
		done += piece(m, off + done, len - done);
		if (done < len)
			host = lookup(m, (off + done) / m->block_size);
	}
	if (host < 0)
		return (int)host;
	*pnum = done;
	*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
	return 0;
}

void blockmap_uuid(uint8_t uuid[16])
{
	/* Without entropy a clock-seeded value still tells images apart. */
	if (getrandom(uuid, 16, 0) != 16) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)uuid;
		for (int i = 0; i < 16; i++)
			uuid[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40;	/* RFC 4122 4.4: version 4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;	/* variant 10 */
}
