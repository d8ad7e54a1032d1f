/*
 * The vmdk block driver: opening (a sparse file with its embedded
 * descriptor, or a descriptor file naming extents), reads through the
 * extents and the parent (parentFileNameHint, checked by CID as QEMU does),
 * allocation status, info and check.  Layout and QEMU's rules in vmdk.h.
 */
#include "block/vmdk/vmdk.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct vmdk_extent *vmdk_find_extent(struct vmdk_state *s, uint64_t off)
{
	/* Extents are in disk order: a binary search. */
	int lo = 0, hi = s->n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		struct vmdk_extent *e = &s->ext[mid];
		if (off < e->start)
			hi = mid - 1;
		else if (off - e->start >= e->sectors * VMDK_SECTOR)
			lo = mid + 1;
		else
			return e;
	}
	return NULL;
}

/*
 * QEMU's vmdk_is_cid_valid: a vmdk parent whose CID no longer matches the
 * parentCID recorded here has changed since this image was made from it;
 * reads that would fall through to it fail rather than mix two states.
 */
static bool parent_valid(struct block_dev *bd, struct vmdk_state *s)
{
	struct vmdk_state *ps;

	if (s->cid_valid >= 0)
		return s->cid_valid;
	if (!bd->backing || strcmp(bd->backing->drv->name, "vmdk"))
		return true;
	ps = bd->backing->opaque;
	s->cid_valid = ps->cid == s->parent_cid;
	return s->cid_valid;
}

int vmdk_read_unallocated(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct vmdk_state *s = bd->opaque;

	if (!bd->backing) {
		memset(buf, 0, len);
		return 0;
	}
	if (!parent_valid(bd, s))
		return -EINVAL;
	return block_read_backing(bd, off, buf, len);
}

/*
 * One piece within a grain (or a flat extent).  Only the table lookup and
 * deflated grains (one shared buffer) need the lock: a grain, once in the
 * table, stays where it is, so plain data is read beside other requests.
 */
static int read_piece(struct block_dev *bd, struct vmdk_extent *e, uint64_t off, uint8_t *buf,
		      size_t n)
{
	struct vmdk_state *s = bd->opaque;
	uint64_t rel = off - e->start, host;
	bool zeroed;
	int ret;

	if (e->kind == VMDK_FLAT)
		return bfile_pread(e->file, e->flat_off + rel, buf, n);
	pthread_mutex_lock(&s->lock);
	ret = vmdk_grain_lookup(e, rel, &host, &zeroed);
	if (ret == 0 && host && e->compressed)
		ret = vmdk_sparse_read(e, host, rel % e->grain, buf, n);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0 || (host && e->compressed))
		return ret;
	if (zeroed) {
		memset(buf, 0, n);
		return 0;
	}
	if (!host)
		return vmdk_read_unallocated(bd, off, buf, n);
	return bfile_pread(e->file, host + rel % e->grain, buf, n);
}

static int vmdk_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct vmdk_state *s = bd->opaque;
	uint8_t *p = buf;
	int ret = 0;

	while (len && ret == 0) {
		struct vmdk_extent *e = vmdk_find_extent(s, off);
		uint64_t rel, n;
		if (!e)
			return -EIO;
		rel = off - e->start;
		n = e->sectors * VMDK_SECTOR - rel;
		if (e->kind == VMDK_SPARSE && e->grain - rel % e->grain < n)
			n = e->grain - rel % e->grain;
		if (n > len)
			n = len;
		ret = read_piece(bd, e, off, p, (size_t)n);
		off += n;
		p += n;
		len -= n;
	}
	return ret;
}

/* One grain's state: flags as block_status reports them. */
static int grain_state(struct vmdk_extent *e, uint64_t rel, uint64_t *map, unsigned *flags)
{
	uint64_t host;
	bool zeroed;
	int ret = vmdk_grain_lookup(e, rel, &host, &zeroed);

	if (ret < 0)
		return ret;
	*map = 0;
	if (zeroed) {
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
	} else if (!host) {
		*flags = 0;
	} else if (e->compressed) {
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_COMPRESSED;
	} else {
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
		*map = host + rel % e->grain;
	}
	return 0;
}

/*
 * Sparse extents: runs of grains in one state (and, for data, contiguous in
 * the file).  Flat extents: the extent file's own holes and data, as
 * QEMU's BDRV_BLOCK_RECURSE finds them.
 */
static int vmdk_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		       uint64_t *map, unsigned *flags)
{
	struct vmdk_state *s = bd->opaque;
	struct vmdk_extent *e;
	uint64_t rel, left, n, m2;
	unsigned f2;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	e = vmdk_find_extent(s, off);
	if (!e) {
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	rel = off - e->start;
	left = e->sectors * VMDK_SECTOR - rel;
	if (left > len)
		left = len;
	if (e->kind == VMDK_FLAT) {
		struct block_dev *f = e->file;
		ret = f->drv->status(f, e->flat_off + rel, left, pnum, map, flags);
		*flags |= BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
		pthread_mutex_unlock(&s->lock);
		return ret;
	}
	ret = grain_state(e, rel, map, flags);
	n = e->grain - rel % e->grain;
	while (ret == 0 && n < left) {
		ret = grain_state(e, rel + n, &m2, &f2);
		if (ret < 0 || f2 != *flags || ((*flags & BLOCK_STATUS_OFFSET) && m2 != *map + n))
			break;
		n += e->grain;
	}
	pthread_mutex_unlock(&s->lock);
	if (ret < 0 && n == e->grain - rel % e->grain)
		return ret;
	*pnum = n < left ? n : left;
	return 0;
}

static int vmdk_flush(struct block_dev *bd)
{
	struct vmdk_state *s = bd->opaque;
	int ret = bfile_flush(bd);

	for (int i = 0; i < s->n && ret == 0; i++)
		if (s->ext[i].owned)
			ret = bfile_flush(s->ext[i].file);
	return ret;
}

static void vmdk_close(struct block_dev *bd)
{
	struct vmdk_state *s = bd->opaque;

	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		vmdk_extent_free(&s->ext[i]);
	pthread_mutex_destroy(&s->lock);
	free(s->ext);
	free(s);
	bd->opaque = NULL;
}

/* vmdk_open's first step: the file is a sparse extent or a descriptor. */
static int open_top(struct block_dev *bd, struct vmdk_state *s, char *err, size_t errlen)
{
	int64_t size = bfile_size(bd);
	size_t n;
	char *buf;
	int ret;

	if (size < 0)
		return block_err(err, errlen, "Could not access file: %s", strerror((int)-size));
	if (size < 4)
		return block_err(err, errlen, "File is too small, not a valid image");
	n = size < VMDK_DESC_MAX ? (size_t)size : VMDK_DESC_MAX;
	buf = calloc(1, n + 1);
	if (!buf)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(bd, 0, buf, n);
	if (ret < 0) {
		free(buf);
		return block_err(err, errlen, "Could not read from file: %s", strerror(-ret));
	}
	if (ld_be32(buf) == VMDK4_MAGIC || ld_be32(buf) == VMDK3_MAGIC) {
		/* QEMU names only a KDMV file's type; a COWD file's stays empty. */
		if (ld_be32(buf) == VMDK4_MAGIC)
			snprintf(s->create_type, sizeof(s->create_type), "monolithicSparse");
		ret = vmdk_open_sparse(bd, s, bd, false, "", 0, err, errlen);
		s->desc_off = 0x200;
		if (ret == 0 && ld_be32(buf) == VMDK4_MAGIC) {
			/* The embedded descriptor's room (desc_size sectors), for CID updates. */
			uint64_t ds = ld_le64(buf + 36);
			s->desc_len = ds && ds <= 20 ? ds * VMDK_SECTOR : VMDK_DESC_SIZE;
		}
	} else {
		s->desc_off = 0;
		ret = vmdk_open_desc(bd, s, buf, 0, err, errlen);
	}
	free(buf);
	return ret;
}

static int vmdk_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct vmdk_state *s = calloc(1, sizeof(*s));
	struct vmdk_extent *last;

	if (!s)
		return block_err(err, errlen, "out of memory");
	s->ext = calloc(VMDK_MAX_EXTENTS, sizeof(*s->ext));
	if (!s->ext) {
		free(s);
		return block_err(err, errlen, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	s->cid_valid = -1;
	bd->opaque = s;
	if (open_top(bd, s, err, errlen) < 0 || vmdk_read_cids(bd, s, err, errlen) < 0)
		goto fail;
	if (!s->n) {
		block_err(err, errlen, "invalid VMDK image descriptor: no usable extent");
		goto fail;
	}
	last = &s->ext[s->n - 1];
	bd->size = last->start + last->sectors * VMDK_SECTOR;
	if (s->parent_hint[0] && block_open_backing(bd, s->parent_hint, "vmdk", err, errlen) < 0)
		goto fail;
	return 0;
fail:
	vmdk_close(bd);
	return -1;
}

/* QEMU's vmdk_co_get_info: a cluster size only when every extent agrees. */
static int vmdk_get_info(struct block_dev *bd, struct block_info *info)
{
	struct vmdk_state *s = bd->opaque;
	struct vmdk_extent *a = &s->ext[0];
	struct stat st;
	bool same = true;

	info->virtual_size = bd->size;
	for (int i = 1; i < s->n; i++) {
		struct vmdk_extent *b = &s->ext[i];
		if ((a->kind == VMDK_FLAT) != (b->kind == VMDK_FLAT) ||
		    a->compressed != b->compressed || (a->kind != VMDK_FLAT && a->grain != b->grain))
			same = false;
	}
	info->cluster_size = same && a->kind == VMDK_SPARSE ? (uint32_t)a->grain : 0;
	/* The descriptor and every extent file of its own (vmdk_get_allocated_file_size). */
	info->actual_size = fstat(bd->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
	for (int i = 0; i < s->n; i++)
		if (s->ext[i].owned && fstat(s->ext[i].file->fd, &st) == 0)
			info->actual_size += (uint64_t)st.st_blocks * 512;
	if (s->parent_hint[0]) {
		snprintf(info->backing_file, sizeof(info->backing_file), "%s", s->parent_hint);
		snprintf(info->backing_fmt, sizeof(info->backing_fmt), "vmdk");
	}
	/* Extents of different kinds: QEMU's get_info fails, so info shows no dirty flag. */
	return same ? 0 : -ENOTSUP;
}

/* ImageInfoSpecificVmdk (qapi/block-core.json), members in schema order. */
static struct jnode *vmdk_info_specific(struct block_dev *bd)
{
	struct vmdk_state *s = bd->opaque;
	struct jnode *o = jobj(), *d = jobj(), *list = jarr();

	jset_str(o, "type", "vmdk");
	jset_int(d, "cid", s->cid);
	jset_int(d, "parent-cid", s->parent_cid);
	jset_str(d, "create-type", s->create_type);
	for (int i = 0; i < s->n; i++) {
		struct vmdk_extent *e = &s->ext[i];
		struct jnode *x = jobj();
		if (e->compressed)
			jset_bool(x, "compressed", true);
		jset_int(x, "virtual-size", (int64_t)(e->sectors * VMDK_SECTOR));
		jset_str(x, "filename", e->file->filename);
		if (e->kind == VMDK_SPARSE)
			jset_int(x, "cluster-size", (int64_t)e->grain);
		jset_str(x, "format", e->type);
		jadd(list, x);
	}
	jset(d, "extents", list);
	jset(o, "data", d);
	return o;
}

/*
 * One sparse extent of QEMU's vmdk_co_check: every allocated grain must
 * start inside its extent file.  Grain tables are walked once per distinct
 * offset (a bitmap over the file's sectors), so a hostile directory that
 * names one table many times costs no more than the file's size.
 */
static int check_extent(struct vmdk_extent *e, struct block_check_result *res)
{
	uint64_t cover = e->grain * e->gt_entries, nbits = e->file_size / VMDK_SECTOR + 1;
	uint8_t *seen = calloc(1, nbits / 8 + 1);
	int ret = 0;

	if (!seen)
		return -ENOMEM;
	for (uint32_t l1 = 0; l1 < e->gd_entries && ret == 0; l1++) {
		uint64_t g = e->gd[l1];
		if (!g)
			continue;
		if (g < nbits && (seen[g / 8] & (1u << (g % 8))))
			continue;
		if (g < nbits)
			seen[g / 8] |= (uint8_t)(1u << (g % 8));
		for (uint32_t l2 = 0; l2 < e->gt_entries; l2++) {
			uint64_t rel = l1 * cover + (uint64_t)l2 * e->grain, host;
			uint64_t sector = (e->start + rel) / VMDK_SECTOR;
			bool zeroed;
			if (rel >= e->sectors * VMDK_SECTOR)
				break;
			if (vmdk_grain_lookup(e, rel, &host, &zeroed) < 0) {
				fprintf(stderr, "ERROR: could not get cluster_offset for sector %"
					PRIu64 "\n", sector);
				ret = -EIO;
				break;
			}
			if (host && host >= e->file_size) {
				fprintf(stderr, "ERROR: cluster offset for sector %" PRIu64
					" points after EOF\n", sector);
				ret = -EINVAL;
				break;
			}
		}
	}
	free(seen);
	if (ret < 0)
		res->corruptions++;
	return ret == -EIO ? 0 : ret;
}

/* QEMU's vmdk_co_check; there is no repair ("does not support checks" for -r). */
static int vmdk_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		      FILE *report)
{
	struct vmdk_state *s = bd->opaque;
	int ret = 0;

	(void)report;
	if (fix)
		return -ENOTSUP;
	for (int i = 0; i < s->n && ret == 0 && !res->corruptions; i++)
		if (s->ext[i].kind == VMDK_SPARSE)
			ret = check_extent(&s->ext[i], res);
	return ret;
}

/* map's File column: the extent file, as QEMU's block status names it. */
static const char *vmdk_data_file(struct block_dev *bd, uint64_t off)
{
	struct vmdk_extent *e = vmdk_find_extent(bd->opaque, off);

	return e ? e->file->filename : NULL;
}

const struct block_driver block_vmdk_driver = {
	.data_file = vmdk_data_file,
	.name = "vmdk",
	.open = vmdk_open,
	.close = vmdk_close,
	.pread = vmdk_pread,
	.pwrite = vmdk_pwrite,
	.flush = vmdk_flush,
	.write_zeroes = vmdk_write_zeroes,
	.status = vmdk_status,
	.create = vmdk_create,
	.get_info = vmdk_get_info,
	.check = vmdk_check,
	.info_specific = vmdk_info_specific,
	.create_opts = vmdk_create_opts,
};
