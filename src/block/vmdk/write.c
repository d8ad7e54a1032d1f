/*
 * Writes to VMDK extents.  A sparse extent gets a new grain at its end for
 * each grain first written: the grain data first, then the grain table
 * entries (primary and redundant), so a crash in between leaves an unused
 * grain, never a table entry naming garbage.  Compressed (streamOptimized)
 * extents are append-only as in QEMU: each grain is deflated behind a
 * marker at the end of the file; a grain written twice is appended again.
 */
#include "block/vmdk/vmdk.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/*
 * The whole grain of rel as it reads now (backing or zeroes where it is
 * not allocated), for a partial write into it.
 */
static int grain_base(struct block_dev *bd, struct vmdk_extent *e, uint64_t grain_start,
		      uint64_t host, bool zeroed, uint8_t *g)
{
	uint64_t vstart = e->start + grain_start, n = e->grain;

	if (vstart + n > e->start + e->sectors * VMDK_SECTOR)
		n = e->start + e->sectors * VMDK_SECTOR - vstart;
	memset(g, 0, e->grain);
	if (host)
		return vmdk_sparse_read(e, host, 0, g, (size_t)n);
	if (zeroed)
		return 0;
	return vmdk_read_unallocated(bd, vstart, g, (size_t)n);
}

/*
 * zlib's compress() at its default level, as QEMU deflates grains, but with
 * one stream kept per extent: compress() allocates ~270 KiB of state per call,
 * and handing that back to a thread's arena each time costs more than the
 * deflating.
 */
static int deflate_grain(struct vmdk_extent *e, const uint8_t *g, uint8_t *out, uLongf *len)
{
	z_stream *zs = e->zs;

	if (!zs) {
		zs = calloc(1, sizeof(*zs));
		if (!zs || deflateInit(zs, Z_DEFAULT_COMPRESSION) != Z_OK) {
			free(zs);
			return -1;
		}
		e->zs = zs;
	} else if (deflateReset(zs) != Z_OK) {
		return -1;
	}
	zs->next_in = (Bytef *)g;
	zs->avail_in = (uInt)e->grain;
	zs->next_out = out;
	zs->avail_out = (uInt)*len;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END)
		return -1;
	*len = zs->total_out;
	return 0;
}

/* Appends one deflated grain (marker: lba, size, data) and points the table at it. */
static int write_compressed(struct vmdk_extent *e, uint64_t grain_start, const uint8_t *g)
{
	uLongf bound = compressBound((uLong)e->grain), clen = bound;
	uint64_t at;
	size_t total;
	uint8_t *out;
	int ret;

	if (!e->cbuf && !(e->cbuf = malloc(12 + bound + VMDK_SECTOR)))
		return -ENOMEM;
	out = e->cbuf;
	if (deflate_grain(e, g, out + 12, &clen) < 0)
		return -EIO;
	st_le64(out, (e->start + grain_start) / VMDK_SECTOR);	/* QEMU: the disk's LBA */
	st_le32(out + 8, (uint32_t)clen);
	total = (12 + clen + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	memset(out + 12 + clen, 0, total - 12 - clen);
	if (e->next / VMDK_SECTOR >= (1ULL << 32))
		return -ENOSPC;
	at = e->next;
	ret = bfile_pwrite(e->file, at, out, total);
	if (ret < 0)
		return ret;
	/* Past the grain first: a grain table appended for it must not land on it. */
	e->next += total;
	if (e->next > e->file_size)
		e->file_size = e->next;
	e->zbuf_host = 0;
	return vmdk_gte_set(e, grain_start, (uint32_t)(at / VMDK_SECTOR));
}

/* A new uncompressed grain at the end of the extent file. */
static int write_new_grain(struct vmdk_extent *e, uint64_t grain_start, const uint8_t *g)
{
	uint64_t at = e->next;
	int ret;

	if ((e->next + e->grain) / VMDK_SECTOR >= (1ULL << 32))
		return -ENOSPC;
	ret = bfile_pwrite(e->file, at, g, e->grain);
	if (ret < 0)
		return ret;
	e->next += e->grain;
	if (e->next > e->file_size)
		e->file_size = e->next;
	return vmdk_gte_set(e, grain_start, (uint32_t)(at / VMDK_SECTOR));
}

/* Bytes [in, in+n) of one grain of a sparse extent; buf NULL writes zeroes. */
static int sparse_write(struct block_dev *bd, struct vmdk_extent *e, uint64_t rel,
			const uint8_t *buf, size_t n)
{
	uint64_t gs = rel - rel % e->grain, in = rel % e->grain, host;
	bool zeroed, whole;
	uint8_t *g;
	int ret;

	if (e->vmdk3)
		return -ENOTSUP;
	ret = vmdk_grain_lookup(e, rel, &host, &zeroed);
	if (ret < 0)
		return ret;
	whole = in == 0 && (n == e->grain || gs + n == e->sectors * VMDK_SECTOR);
	if (!buf) {
		/* Zeroes: the zeroed-grain entry for whole grains, else nothing where it reads 0. */
		if (zeroed || (!host && !bd->backing))
			return 0;
		if (whole && e->zero_grain)
			return vmdk_gte_set(e, gs, VMDK_GTE_ZEROED);
	}
	if (host && !e->compressed) {
		if (buf)
			return bfile_pwrite(e->file, host + in, buf, n);
		g = calloc(1, n);
		if (!g)
			return -ENOMEM;
		ret = bfile_pwrite(e->file, host + in, g, n);
		free(g);
		return ret;
	}
	if (buf && in == 0 && n == e->grain)	/* a whole grain: straight from the caller */
		return e->compressed ? write_compressed(e, gs, buf) : write_new_grain(e, gs, buf);
	if (!e->wbuf && !(e->wbuf = block_alloc_buf(e->grain)))
		return -ENOMEM;
	g = e->wbuf;
	ret = 0;
	if (!whole || !buf)
		ret = grain_base(bd, e, gs, host, zeroed, g);
	if (ret == 0) {
		if (buf)
			memcpy(g + in, buf, n);
		else
			memset(g + in, 0, n);
		ret = e->compressed ? write_compressed(e, gs, g) : write_new_grain(e, gs, g);
	}
	return ret;
}

static int extent_write(struct block_dev *bd, struct vmdk_extent *e, uint64_t rel,
			const uint8_t *buf, size_t n, bool may_unmap)
{
	if (e->kind == VMDK_FLAT) {
		struct block_dev *f = e->file;
		if (buf)
			return bfile_pwrite(f, e->flat_off + rel, buf, n);
		return f->drv->write_zeroes(f, e->flat_off + rel, n, may_unmap);
	}
	return sparse_write(bd, e, rel, buf, n);
}

/* QEMU renews the CID on the first write after open (vmdk_pwritev). */
static int renew_cid(struct block_dev *bd, struct vmdk_state *s)
{
	uint32_t cid;

	if (s->cid_updated)
		return 0;
	cid = (uint32_t)random() ^ ((uint32_t)random() << 16);
	s->cid_updated = true;
	return vmdk_write_cid(bd, s, cid);
}

static int do_write(struct block_dev *bd, uint64_t off, const uint8_t *buf, uint64_t len,
		    bool may_unmap)
{
	struct vmdk_state *s = bd->opaque;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	while (len && ret == 0) {
		struct vmdk_extent *e = vmdk_find_extent(s, off);
		uint64_t rel, n, end;
		if (!e) {
			ret = -EIO;
			break;
		}
		rel = off - e->start;
		end = e->sectors * VMDK_SECTOR;
		n = end - rel;
		if (e->kind == VMDK_SPARSE && e->grain - rel % e->grain < n)
			n = e->grain - rel % e->grain;
		if (n > len)
			n = len;
		ret = extent_write(bd, e, rel, buf, (size_t)n, may_unmap);
		off += n;
		len -= n;
		if (buf)
			buf += n;
	}
	if (ret == 0)
		ret = renew_cid(bd, s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int vmdk_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	return do_write(bd, off, buf, len, false);
}

int vmdk_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	return do_write(bd, off, NULL, len, may_unmap);
}
