/*
 * Sparse VMDK extents (VMware Virtual Disk Format 1.1, "Hosted Sparse
 * Extents" and "Stream-Optimized Compressed Sparse Extents"; "COWD" is the
 * older ESX sparse format): the header, the grain directory (and its
 * redundant copy), grain tables cached as they are first used, and the
 * grains themselves, deflated behind a marker in streamOptimized files.
 * Every size and offset a header gives is checked against the file before
 * anything is allocated for it.
 */
#include "block/vmdk/vmdk.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define L1_MAX	(32u * 1024 * 1024)	/* QEMU's cap on a grain directory's entries */

void vmdk_extent_free(struct vmdk_extent *e)
{
	if (e->gt) {
		for (uint32_t i = 0; i < e->gd_entries; i++)
			free(e->gt[i]);
	}
	free(e->gt);
	free(e->gd);
	free(e->rgd);
	free(e->zbuf);
	free(e->rbuf);
	free(e->wbuf);
	free(e->cbuf);
	if (e->zs)
		deflateEnd(e->zs);
	free(e->zs);
	if (e->owned)
		block_close(e->file);
	memset(e, 0, sizeof(*e));
}

static int read_dir(struct vmdk_extent *e, uint64_t off, uint32_t **out, const char *what,
		    char *err, size_t errlen)
{
	uint64_t bytes = (uint64_t)e->gd_entries * 4;
	uint32_t *t;
	int ret;

	if (off > e->file_size || bytes > e->file_size - off)
		return block_err(err, errlen, "%s at offset %" PRIu64 " (%" PRIu64 " bytes) lies past "
				 "the end of extent '%s'", what, off, bytes, e->file->filename);
	t = malloc(bytes ? bytes : 1);
	if (!t)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(e->file, off, t, bytes);
	if (ret < 0) {
		free(t);
		return block_err(err, errlen, "Could not read %s from extent '%s': %s", what,
				 e->file->filename, strerror(-ret));
	}
	for (uint32_t i = 0; i < e->gd_entries; i++)
		t[i] = ld_le32(&t[i]);
	*out = t;
	return 0;
}

/* QEMU's vmdk_add_extent checks, then the tables. */
static int add_sparse(struct vmdk_state *s, struct vmdk_extent *e, uint64_t l1_size,
		      char *err, size_t errlen)
{
	if (e->grain / VMDK_SECTOR > 0x200000)
		return block_err(err, errlen, "Invalid granularity, image may be corrupt");
	if (l1_size > L1_MAX)
		return block_err(err, errlen, "L1 size too big");
	e->gd_entries = (uint32_t)l1_size;
	e->start = s->n ? s->ext[s->n - 1].start + s->ext[s->n - 1].sectors * VMDK_SECTOR : 0;
	e->next = (e->file_size + e->grain - 1) / e->grain * e->grain;
	if (read_dir(e, e->gd_off, &e->gd, "grain directory", err, errlen) < 0)
		return -1;
	if (e->rgd_off &&
	    read_dir(e, e->rgd_off, &e->rgd, "redundant grain directory", err, errlen) < 0)
		return -1;
	e->gt = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(*e->gt));
	if (!e->gt)
		return block_err(err, errlen, "out of memory");
	return 0;
}

static int open_cowd(struct vmdk_state *s, struct vmdk_extent *e, const uint8_t *h,
		     char *err, size_t errlen)
{
	/* VMDK3Header after the magic: version, flags, disk_sectors, granularity, l1dir... */
	uint32_t gran = ld_le32(h + 16);

	e->vmdk3 = true;
	e->sectors = ld_le32(h + 12);
	e->grain = (uint64_t)gran * VMDK_SECTOR;
	e->gd_off = (uint64_t)ld_le32(h + 20) * VMDK_SECTOR;
	e->gt_entries = 4096;
	if (!gran)
		return block_err(err, errlen, "L1 entry size is invalid");
	return add_sparse(s, e, ld_le32(h + 24), err, errlen);
}

/* streamOptimized files written by VMware keep the real header in a footer. */
static int read_footer(struct vmdk_extent *e, uint8_t *h, char *err, size_t errlen)
{
	uint8_t f[1536];
	int ret;

	if (e->file_size < sizeof(f))
		return block_err(err, errlen, "Invalid footer");
	ret = bfile_pread(e->file, (e->file_size & ~511ULL) - sizeof(f), f, sizeof(f));
	if (ret < 0)
		return block_err(err, errlen, "Failed to read footer: %s", strerror(-ret));
	if (ld_be32(f + 512) != VMDK4_MAGIC || ld_le32(f + 8) != 0 || ld_le32(f + 12) != 3 ||
	    ld_le64(f + 1024) != 0 || ld_le32(f + 1032) != 0 || ld_le32(f + 1036) != 0)
		return block_err(err, errlen, "Invalid footer");
	memcpy(h, f + 512, 512);
	return 0;
}

static int open_kdmv(struct block_dev *bd, struct vmdk_state *s, struct vmdk_extent *e,
		     uint8_t *h, int depth, char *err, size_t errlen)
{
	uint64_t cap = ld_le64(h + 12), gran = ld_le64(h + 20), desc = ld_le64(h + 28);
	uint64_t l1_entry, gd_off;
	uint32_t version, flags, gtes;

	if (cap == 0 && desc) {
		/* A descriptor in a sparse file: its extents are the disk (QEMU does the same). */
		size_t n = e->file_size < VMDK_DESC_MAX ? (size_t)e->file_size : VMDK_DESC_MAX;
		char *text = calloc(1, n + 1);
		int ret;
		if (!text)
			return block_err(err, errlen, "out of memory");
		if (desc > (UINT64_MAX >> 10) ||
		    bfile_pread(e->file, desc * VMDK_SECTOR, text, n) < 0) {
			free(text);
			return block_err(err, errlen, "Could not read from file");
		}
		if (s->n_nest >= VMDK_MAX_NEST + 2) {
			free(text);
			return block_err(err, errlen, "VMDK descriptors nested too deep");
		}
		s->nest[s->n_nest++] = e->file;
		ret = vmdk_open_desc(bd, s, text, depth + 1, err, errlen);
		s->n_nest--;
		free(text);
		return ret < 0 ? -1 : 1;
	}
	if (ld_le64(h + 56) == VMDK4_GD_AT_END && read_footer(e, h, err, errlen) < 0)
		return -1;
	version = ld_le32(h + 4);
	flags = ld_le32(h + 8);
	cap = ld_le64(h + 12);
	gran = ld_le64(h + 20);
	gtes = ld_le32(h + 44);
	e->compressed = ld_le16(h + 77) == VMDK4_COMPRESS_DEFLATE;
	if (version > 3)
		return block_err(err, errlen, "Unsupported VMDK version %" PRIu32, version);
	if (version == 3 && !bd->read_only && !e->compressed)
		return block_err(err, errlen, "VMDK version 3 must be read only");
	if (gtes > 512)
		return block_err(err, errlen, "L2 table size too big");
	l1_entry = (uint64_t)gtes * gran;
	if (l1_entry == 0 || gran > 0x200000)
		return block_err(err, errlen, l1_entry ? "Invalid granularity, image may be corrupt"
				 : "L1 entry size is invalid");
	if (cap > (1ULL << 54))
		return block_err(err, errlen, "Invalid capacity %" PRIu64 " sectors, image may be "
				 "corrupt", cap);
	if (e->file_size / VMDK_SECTOR < ld_le64(h + 64))
		return block_err(err, errlen, "File truncated, expecting at least %" PRId64 " bytes",
				 (int64_t)(ld_le64(h + 64) * VMDK_SECTOR));
	gd_off = ld_le64(h + 56);
	if (gd_off > (UINT64_MAX >> 10) || ld_le64(h + 48) > (UINT64_MAX >> 10))
		return block_err(err, errlen, "Invalid grain directory offset");
	e->version = (int)version;
	e->sectors = cap;
	e->grain = gran * VMDK_SECTOR;
	e->gt_entries = gtes;
	e->gd_off = gd_off * VMDK_SECTOR;
	if (flags & VMDK4_FLAG_RGD)
		e->rgd_off = ld_le64(h + 48) * VMDK_SECTOR;
	e->has_marker = flags & VMDK4_FLAG_MARKER;
	e->zero_grain = flags & VMDK4_FLAG_ZERO_GRAIN;
	if (e->compressed) {
		snprintf(s->create_type, sizeof(s->create_type), "streamOptimized");
		e->zbuf = malloc(e->grain);
		if (!e->zbuf)
			return block_err(err, errlen, "out of memory");
	}
	return add_sparse(s, e, (cap + l1_entry - 1) / l1_entry, err, errlen);
}

int vmdk_open_sparse(struct block_dev *bd, struct vmdk_state *s, struct block_dev *file,
		     bool owned, const char *type, int depth, char *err, size_t errlen)
{
	struct vmdk_extent *e = &s->ext[s->n];
	uint8_t h[512];
	int64_t size = bfile_size(file);
	int ret;

	memset(e, 0, sizeof(*e));
	e->file = file;
	e->owned = owned;
	e->kind = VMDK_SPARSE;
	snprintf(e->type, sizeof(e->type), "%s", type);
	if (size < 0) {
		ret = block_err(err, errlen, "Could not access file: %s", strerror((int)-size));
		goto fail;
	}
	e->file_size = (uint64_t)size;
	if (size < 4) {
		ret = block_err(err, errlen, "File is too small, not a valid image");
		goto fail;
	}
	memset(h, 0, sizeof(h));
	ret = bfile_pread(file, 0, h, sizeof(h));
	if (ret < 0) {
		ret = block_err(err, errlen, "Could not read header from file '%s': %s",
				file->filename, strerror(-ret));
		goto fail;
	}
	if (ld_be32(h) == VMDK3_MAGIC) {
		ret = open_cowd(s, e, h, err, errlen);
	} else if (ld_be32(h) == VMDK4_MAGIC) {
		ret = open_kdmv(bd, s, e, h, depth, err, errlen);
		if (ret == 1) {
			/* Its own extents were added; the file stays open in none of them. */
			e->owned = false;
			if (owned)
				block_close(file);
			return 0;
		}
	} else {
		ret = block_err(err, errlen, "Image not in VMDK format");
	}
	if (ret < 0)
		goto fail;
	s->n++;
	return 0;
fail:
	vmdk_extent_free(e);
	return -1;
}

/* The grain table of directory entry l1, read once (it must lie in the file). */
static int load_gt(struct vmdk_extent *e, uint32_t l1, uint32_t **gt)
{
	uint64_t off = (uint64_t)e->gd[l1] * VMDK_SECTOR, bytes = (uint64_t)e->gt_entries * 4;
	uint32_t *t;
	int ret;

	if (e->gt[l1]) {
		*gt = e->gt[l1];
		return 0;
	}
	if (off > e->file_size || bytes > e->file_size - off)
		return -EIO;	/* a grain table past the end of the file */
	t = malloc(bytes ? bytes : 4);
	if (!t)
		return -ENOMEM;
	ret = bfile_pread(e->file, off, t, bytes);
	if (ret < 0) {
		free(t);
		return ret;
	}
	for (uint32_t i = 0; i < e->gt_entries; i++)
		t[i] = ld_le32(&t[i]);
	e->gt[l1] = t;
	*gt = t;
	return 0;
}

int vmdk_grain_lookup(struct vmdk_extent *e, uint64_t rel, uint64_t *host, bool *zeroed)
{
	uint64_t g = rel / e->grain;
	uint64_t l1 = g / e->gt_entries;
	uint32_t *gt, v;
	int ret;

	*host = 0;
	*zeroed = false;
	if (l1 >= e->gd_entries)
		return -EIO;
	if (!e->gd[l1])
		return 0;
	ret = load_gt(e, (uint32_t)l1, &gt);
	if (ret < 0)
		return ret;
	v = gt[g % e->gt_entries];
	if (e->zero_grain && v == VMDK_GTE_ZEROED)
		*zeroed = true;
	else
		*host = (uint64_t)v * VMDK_SECTOR;
	return 0;
}

/* A deflated grain behind its marker (lba, size), kept until another is read. */
static int read_compressed(struct vmdk_extent *e, uint64_t host)
{
	size_t cap = (size_t)e->grain * 2, n;
	uint8_t *in;
	uLongf out = (uLongf)e->grain;
	uint32_t dlen;
	const uint8_t *data;
	int ret;

	if (e->zbuf_host == host)
		return 0;
	if (host >= e->file_size)
		return -EIO;
	n = e->file_size - host < cap ? (size_t)(e->file_size - host) : cap;
	if (!e->rbuf && !(e->rbuf = malloc(cap)))
		return -ENOMEM;
	in = e->rbuf;
	memset(in + n, 0, cap - n);
	ret = bfile_pread(e->file, host, in, n);
	if (ret < 0)
		goto out;
	data = in;
	dlen = (uint32_t)e->grain;
	if (e->has_marker) {
		data = in + 12;
		dlen = ld_le32(in + 8);
	}
	ret = -EIO;
	if (!dlen || dlen > cap - (size_t)(data - in))
		goto out;
	memset(e->zbuf, 0, e->grain);
	if (uncompress(e->zbuf, &out, data, dlen) != Z_OK)
		goto out;
	e->zbuf_host = host;
	ret = 0;
out:
	return ret;
}

int vmdk_sparse_read(struct vmdk_extent *e, uint64_t host, uint64_t in_grain, void *buf,
		     size_t len)
{
	int ret;

	if (!e->compressed)
		return bfile_pread(e->file, host + in_grain, buf, len);
	ret = read_compressed(e, host);
	if (ret < 0)
		return ret;
	memcpy(buf, e->zbuf + in_grain, len);
	return 0;
}

/*
 * A grain directory entry without a table (VMware may leave them so): a
 * zeroed table is appended, and the redundant directory gets its own copy,
 * before either directory names it.
 */
static int new_gt(struct vmdk_extent *e, uint32_t l1)
{
	uint64_t bytes = ((uint64_t)e->gt_entries * 4 + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	uint64_t at = (e->next + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
	int copies = e->rgd ? 2 : 1, ret;
	uint8_t *zero = calloc(1, bytes), le[4];

	if (!zero)
		return -ENOMEM;
	if ((at + copies * bytes) / VMDK_SECTOR >= (1ULL << 32)) {
		free(zero);
		return -ENOSPC;
	}
	ret = bfile_pwrite(e->file, at, zero, bytes);
	if (ret == 0 && copies == 2)
		ret = bfile_pwrite(e->file, at + bytes, zero, bytes);
	free(zero);
	if (ret == 0 && copies == 2) {
		st_le32(le, (uint32_t)((at + bytes) / VMDK_SECTOR));
		ret = bfile_pwrite(e->file, e->rgd_off + (uint64_t)l1 * 4, le, 4);
	}
	if (ret == 0) {
		st_le32(le, (uint32_t)(at / VMDK_SECTOR));
		ret = bfile_pwrite(e->file, e->gd_off + (uint64_t)l1 * 4, le, 4);
	}
	if (ret < 0)
		return ret;
	e->gd[l1] = (uint32_t)(at / VMDK_SECTOR);
	if (copies == 2)
		e->rgd[l1] = (uint32_t)((at + bytes) / VMDK_SECTOR);
	e->next = at + copies * bytes;
	if (e->next > e->file_size)
		e->file_size = e->next;
	return 0;
}

int vmdk_gte_set(struct vmdk_extent *e, uint64_t rel, uint32_t sector)
{
	uint64_t g = rel / e->grain, l1 = g / e->gt_entries;
	uint32_t l2 = (uint32_t)(g % e->gt_entries), *gt;
	uint8_t le[4];
	int ret;

	if (l1 >= e->gd_entries)
		return -EIO;
	if (!e->gd[l1] && (ret = new_gt(e, (uint32_t)l1)) < 0)
		return ret;
	ret = load_gt(e, (uint32_t)l1, &gt);
	if (ret < 0)
		return ret;
	st_le32(le, sector);
	ret = bfile_pwrite(e->file, (uint64_t)e->gd[l1] * VMDK_SECTOR + l2 * 4, le, 4);
	if (ret == 0 && e->rgd && e->rgd[l1])
		ret = bfile_pwrite(e->file, (uint64_t)e->rgd[l1] * VMDK_SECTOR + l2 * 4, le, 4);
	if (ret == 0)
		gt[l2] = sector;
	return ret;
}
