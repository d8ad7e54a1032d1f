/* The qcow2 driver ops: open, read, write, flush, status, info, close. */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2_CACHE_MAX_BYTES	(32u << 20)	/* QEMU's DEFAULT_L2_CACHE_MAX_SIZE on Linux */

void qcow2_free_state(struct qcow2 *s)
{
	if (!s)
		return;
	qcow2_cache_destroy(&s->l2_cache);
	qcow2_cache_destroy(&s->rc_cache);
	qcow2_free_snapshots(s);
	qcow2_bitmaps_free(s);
	for (unsigned i = 0; i < s->nb_exts; i++)
		free(s->exts[i].data);
	free(s->exts);
	free(s->feature_table);
	free(s->unknown_header);
	free(s->backing_file);
	free(s->backing_fmt);
	free(s->data_file_name);
	qcow2_data_close(s);
	free(s->l1);
	free(s->reftable);
	free(s->txn_reftable);
	free(s->pending);
	free(s->zbuf);
	qcow2_crypt_free(s);
	qcow2_meta_index_free(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int load_l1(struct qcow2 *s, char *err, size_t errlen)
{
	size_t bytes = (size_t)s->l1_size * 8;
	uint8_t *raw;
	int ret;

	s->l1 = calloc(s->l1_size ? s->l1_size : 1, sizeof(*s->l1));
	if (!s->l1)
		return block_err(err, errlen, "out of memory");
	if (!s->l1_size)
		return 0;
	raw = calloc(1, bytes);
	if (!raw)
		return block_err(err, errlen, "out of memory");
	/* Opened for check, the table may run past the end of the file: that part reads as zeroes. */
	if (s->l1_offset < s->file_size && bytes > s->file_size - s->l1_offset)
		bytes = (size_t)(s->file_size - s->l1_offset);
	ret = s->l1_offset < s->file_size ? bfile_pread(s->bd, s->l1_offset, raw, bytes) : 0;
	if (ret < 0) {
		free(raw);
		return block_err(err, errlen, "Could not read L1 table: %s", strerror(-ret));
	}
	for (uint32_t i = 0; i < s->l1_size; i++)
		s->l1[i] = ld_be64(raw + 8 * i);
	free(raw);
	return 0;
}

static int init_caches(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t cover = (uint64_t)s->cluster_size << s->l2_bits;
	uint64_t tables = (s->h.size + cover - 1) / cover;
	uint64_t max = L2_CACHE_MAX_BYTES / s->cluster_size;
	unsigned l2n, rcn;

	if (tables > max)
		tables = max;
	if (tables < 4)
		tables = 4;
	l2n = (unsigned)tables;
	rcn = l2n / 4 < 4 ? 4 : (l2n / 4 > 256 ? 256 : l2n / 4);
	if (qcow2_cache_init(&s->l2_cache, l2n, s->cluster_size, true) < 0 ||
	    qcow2_cache_init(&s->rc_cache, rcn, s->cluster_size, false) < 0)
		return block_err(err, errlen, "out of memory");
	return 0;
}

int qcow2_open_state(struct block_dev *bd, struct qcow2 **out, char *err, size_t errlen)
{
	struct qcow2 *s = calloc(1, sizeof(*s));
	int64_t file_size;

	*out = NULL;
	if (!s)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	s->bd = bd;
	s->checking = bd->flags & BLOCK_CHECK;
	s->overlap = qcow2_overlap_mask(bd->flags);
	s->meta_prealloc = -1;
	if (qcow2_read_header(s, err, errlen) < 0)
		goto fail;
	file_size = bfile_size(bd);
	if (file_size < 0) {
		block_err(err, errlen, "%s", strerror((int)-file_size));
		goto fail;
	}
	s->file_size = s->data_end = (uint64_t)file_size;
	s->free_cluster_index = 1;
	if (load_l1(s, err, errlen) < 0 || qcow2_load_reftable(s, err, errlen) < 0 ||
	    init_caches(s, err, errlen) < 0 || qcow2_read_snapshots(s, err, errlen) < 0 ||
	    qcow2_crypt_open(s, err, errlen) < 0)
		goto fail;
	s->dirty_bit_set = s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY;
	*out = s;
	return 0;
fail:
	qcow2_free_state(s);
	return -1;
}

static bool overlaps(uint64_t off, uint64_t len, uint64_t start, uint64_t size)
{
	return off < start + size && start < off + len;
}

/*
 * Before writing, the tables that writes go through must not sit on other
 * metadata (a refcount block on the refcount table is a loop): refuse to
 * open for writing, without touching the image, rather than find out later.
 */
static int validate_for_write(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t cs = s->cluster_size, rt = s->reftable_offset, rt_len = s->reftable_size * 8;
	uint64_t l1 = s->l1_offset, l1_len = (uint64_t)s->l1_size * 8;
	const char *fix = "; repair it with 'kestrel-img check -r all'";

	for (uint64_t i = 0; i < s->reftable_size; i++) {
		uint64_t off = s->reftable[i] & REFT_OFFSET_MASK;
		if (!off)
			continue;
		if (qcow2_in_cluster(s, off) || off < cs || overlaps(off, cs, rt, rt_len) ||
		    overlaps(off, cs, l1, l1_len))
			return block_err(err, errlen, "refcount block %" PRIu64 " at %#" PRIx64
					 " overlaps other metadata%s", i, off, fix);
	}
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t off = s->l1[i] & L1E_OFFSET_MASK;
		if (!off)
			continue;
		if (qcow2_in_cluster(s, off) || off < cs || overlaps(off, cs, rt, rt_len) ||
		    overlaps(off, cs, l1, l1_len))
			return block_err(err, errlen, "L2 table %u at %#" PRIx64
					 " overlaps other metadata%s", i, off, fix);
	}
	return 0;
}

static int qcow2_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct qcow2 *s;
	int ret;

	if (qcow2_open_state(bd, &s, err, errlen) < 0)
		return -1;
	bd->opaque = s;
	bd->size = s->h.size;
	if ((s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) && !bd->read_only &&
	    !s->checking) {
		block_err(err, errlen, "qcow2: Image is corrupt; cannot be opened read/write");
		goto fail;
	}
	if (!bd->read_only && !s->checking && validate_for_write(s, err, errlen) < 0)
		goto fail;
	if (!s->checking && qcow2_bitmaps_check_ext(s, err, errlen) < 0)
		goto fail;
	if (qcow2_data_open(s, err, errlen) < 0)
		goto fail;
	if (s->backing_file && block_open_backing(bd, s->backing_file, s->backing_fmt, err,
						  errlen) < 0)
		goto fail;
	if (bd->read_only)
		return 0;

	/* An unclean shutdown with lazy refcounts: rebuild them before writing (qcow2 spec). */
	if ((s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) && !s->checking) {
		struct block_check_result res = { 0 };
		ret = qcow2_check(bd, BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS, &res, NULL);
		if (ret == 0 && res.corruptions == 0)
			ret = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false);
		else if (ret == 0)
			ret = -EIO;
		if (ret < 0) {
			block_err(err, errlen, "Could not repair dirty image: %s", strerror(-ret));
			goto fail;
		}
		s->dirty_bit_set = false;
	}
	/* Persistent bitmaps: loaded, marked in use, kept up to date until close. */
	if (!s->checking && qcow2_bitmaps_open_rw(s, err, errlen) < 0)
		goto fail;
	/*
	 * Writers must clear autoclear bits they do not know (qcow2 spec), check -r
	 * too (QEMU); the bitmaps bit stays, as the bitmaps are maintained, and so
	 * does the raw-data-file bit, which this driver honours.
	 */
	if (s->h.version >= 3 && (s->h.autoclear_features & ~QCOW2_AUTOCLEAR_KNOWN)) {
		s->h.autoclear_features &= QCOW2_AUTOCLEAR_KNOWN;
		ret = qcow2_write_header(s);
		if (ret == 0)
			ret = bfile_flush(bd);
		if (ret < 0) {
			block_err(err, errlen, "Could not update qcow2 header: %s", strerror(-ret));
			goto fail;
		}
	}
	return 0;
fail:
	if (bd->backing) {
		block_close(bd->backing);
		bd->backing = NULL;
	}
	qcow2_free_state(s);
	bd->opaque = NULL;
	return -1;
}

static void qcow2_close(struct block_dev *bd)
{
	struct qcow2 *s = bd->opaque;

	if (!s)
		return;
	if (!bd->read_only) {
		int ret;
		pthread_mutex_lock(&s->lock);
		/* A bitmap not stored stays marked in use on disk: inconsistent, never stale. */
		if (qcow2_bitmaps_store(s) < 0)
			fprintf(stderr, "%s: Failed to store persistent bitmaps\n",
				block_filename(bd));
		pthread_mutex_unlock(&s->lock);
		ret = qcow2_flush_metadata(s, true);
		/* Lazy refcounts: all is on disk now, so the image is clean again. */
		if (ret == 0 && s->dirty_bit_set && !s->checking) {
			if (qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false) == 0)
				s->dirty_bit_set = false;
		}
	}
	qcow2_free_state(s);
	bd->opaque = NULL;
}

static int qcow2_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	return qcow2_read(bd->opaque, off, buf, len);
}

/*
 * Data in clusters this image alone owns (COPIED) can be read or written
 * without any metadata change: that I/O runs without the lock, so I/O
 * threads and io_uring overlap.  inflight keeps the clusters from being
 * freed and reused meanwhile.
 */
static int qcow2_map_direct(struct block_dev *bd, uint64_t off, uint64_t len, bool write,
			    uint64_t *host)
{
	struct qcow2 *s = bd->opaque;
	enum qcow2_type type;
	uint64_t l2e, n;
	int ok;

	/*
	 * qcow2_map checks the clusters against the metadata in memory; snapshot
	 * L2 tables ("all") and a broken image leave writes to qcow2_write.
	 */
	if (write && (s->broken || (s->overlap & QCOW2_OL_INACTIVE_L2)))
		return 0;
	/* The data is in another file than the one the caller does I/O on, or encrypted. */
	if (qcow2_has_data_file(s) || s->crypt)
		return 0;
	pthread_mutex_lock(&s->lock);
	ok = qcow2_map_for(s, off, len, write, &type, &l2e, &n) == 0 && n >= len && type == QCOW2_NORMAL &&
	     (l2e & L2E_OFFSET_MASK) >= s->cluster_size && (!write || (l2e & QCOW_OFLAG_COPIED));
	if (ok) {
		*host = (l2e & L2E_OFFSET_MASK) + qcow2_in_cluster(s, off);
		s->inflight++;
		if (write)
			qcow2_bitmaps_mark(s, off, len);
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void qcow2_end_direct(struct block_dev *bd, uint64_t host, uint64_t len, bool write,
			     int result)
{
	struct qcow2 *s = bd->opaque;

	pthread_mutex_lock(&s->lock);
	s->inflight--;
	if (write && result == 0 && host + len > s->data_end)
		s->data_end = host + len;
	if (write && result == 0 && host + len > s->file_size)
		s->file_size = host + len;
	pthread_mutex_unlock(&s->lock);
}

/* Everything but a plain overwrite (allocation, copy on write) runs under the lock. */
static int qcow2_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct qcow2 *s = bd->opaque;
	uint64_t host;
	int ret;

	if (qcow2_map_direct(bd, off, len, true, &host)) {
		ret = bfile_pwrite(bd, host, buf, len);
		qcow2_end_direct(bd, host, len, true, ret);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	qcow2_bitmaps_mark(s, off, len);
	ret = qcow2_write(s, off, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_pwrite_compressed(struct block_dev *bd, uint64_t off, const void *buf,
				   size_t len)
{
	struct qcow2 *s = bd->opaque;
	uint8_t *in = NULL, *out;
	long clen;
	int ret;

	/*
	 * qcow2 spec: no compressed clusters with an external data file,
	 * incompressible or not; nor encrypted ones (QEMU refuses them).
	 */
	if (qcow2_has_data_file(s) || s->crypt)
		return -ENOTSUP;
	if (qcow2_in_cluster(s, off) || (len != s->cluster_size && off + len != bd->size) ||
	    len > s->cluster_size)
		return -EINVAL;
	if (len < s->cluster_size) {
		/* The last cluster of the disk: pad it, as QEMU does. */
		in = calloc(1, s->cluster_size);
		if (!in)
			return -ENOMEM;
		memcpy(in, buf, len);
		buf = in;
	}
	out = malloc(s->cluster_size);
	if (!out) {
		free(in);
		return -ENOMEM;
	}
	/* Compression runs outside the lock, so several threads can compress at once. */
	clen = qcow2_compress(s->h.compression_type, out, s->cluster_size - 1, buf,
			      s->cluster_size);
	pthread_mutex_lock(&s->lock);
	qcow2_bitmaps_mark(s, off, len);
	if (clen == -ENOSPC)
		ret = qcow2_write(s, off, buf, len);
	else if (clen < 0)
		ret = (int)clen;
	else
		ret = qcow2_write_compressed(s, off, out, (size_t)clen);
	pthread_mutex_unlock(&s->lock);
	free(out);
	free(in);
	return ret;
}

static int qcow2_flush(struct block_dev *bd)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = qcow2_flush_metadata(s, true);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	qcow2_bitmaps_mark(s, off, len);
	ret = qcow2_zero(s, off, len, may_unmap);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * QEMU's qcow2_detect_metadata_preallocation: many more clusters in use
 * than the file system stores means preallocated clusters still holding
 * holes, so block status asks the file which parts are holes.
 */
static bool detect_meta_prealloc(struct qcow2 *s)
{
	struct stat st;
	uint64_t real, threshold, count = 0, end, rc;

	if (fstat(s->bd->fd, &st) < 0)
		return false;
	real = (uint64_t)st.st_blocks * 512 / s->cluster_size;
	threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
	end = qcow2_size_to_clusters(s, (uint64_t)st.st_size);
	for (uint64_t i = 0; i < end && count < threshold; i++) {
		if (qcow2_get_refcount(s, i, &rc) < 0)
			return false;
		count += rc != 0;
	}
	return count >= threshold;
}

/* With detected preallocation: holes in the file read as zeroes, as QEMU reports them. */
static void file_holes(struct qcow2 *s, uint64_t host, uint64_t *pnum, unsigned *flags)
{
	off_t data = lseek(s->bd->fd, (off_t)host, SEEK_DATA), hole;

	if (data < 0) {
		if (errno == ENXIO)
			*flags |= BLOCK_STATUS_ZERO;	/* past the last data: zeroes to the end */
		return;
	}
	if ((uint64_t)data > host) {
		*flags |= BLOCK_STATUS_ZERO;
		if ((uint64_t)data - host < *pnum)
			*pnum = (uint64_t)data - host;
		return;
	}
	hole = lseek(s->bd->fd, (off_t)host, SEEK_HOLE);
	if (hole > 0 && (uint64_t)hole > host && (uint64_t)hole - host < *pnum)
		*pnum = (uint64_t)hole - host;
}

static int qcow2_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			uint64_t *map, unsigned *flags)
{
	struct qcow2 *s = bd->opaque;
	enum qcow2_type type;
	uint64_t l2e;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = qcow2_map(s, off, len, &type, &l2e, pnum);
	if (ret == 0 && type == QCOW2_NORMAL && s->meta_prealloc < 0 && !s->crypt)
		s->meta_prealloc = detect_meta_prealloc(s);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	switch (type) {
	case QCOW2_UNALLOCATED:
		*flags = 0;
		/* A subcluster of an allocated cluster that reads from below: QEMU gives its offset. */
		if (s->ext_l2 && qcow2_has_host(s, l2e)) {
			*flags = BLOCK_STATUS_OFFSET;
			*map = (l2e & L2E_OFFSET_MASK) + qcow2_in_cluster(s, off);
		}
		break;
	case QCOW2_ZERO_PLAIN:
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
		break;
	case QCOW2_ZERO_ALLOC:
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
		*map = (l2e & L2E_OFFSET_MASK) + qcow2_in_cluster(s, off);
		break;
	case QCOW2_NORMAL:
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
		*map = (l2e & L2E_OFFSET_MASK) + qcow2_in_cluster(s, off);
		if (s->meta_prealloc > 0)
			file_holes(s, *map, pnum, flags);
		/* QEMU's qcow2_co_block_status: no host offset of ciphertext. */
		if (s->crypt)
			*flags &= ~BLOCK_STATUS_OFFSET;
		break;
	case QCOW2_COMPRESSED:
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_COMPRESSED;
		break;
	}
	return 0;
}

static int qcow2_get_info(struct block_dev *bd, struct block_info *info)
{
	struct qcow2 *s = bd->opaque;

	info->cluster_size = s->cluster_size;
	info->dirty = s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY;
	info->qcow2_version = (int)s->h.version;
	info->lazy_refcounts = s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
	info->refcount_bits = 1 << s->refcount_order;
	info->corrupt = s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT;
	info->extended_l2 = s->ext_l2;
	info->has_data_file = qcow2_has_data_file(s);
	if (qcow2_has_data_file(s) && s->data_file_name)
		snprintf(info->data_file, sizeof(info->data_file), "%s", s->data_file_name);
	info->data_file_raw = s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
	info->compression_type = s->h.compression_type;
	info->nb_snapshots = (int)s->nb_snaps;
	info->encrypted = s->h.crypt_method != 0;
	if (s->backing_file)
		snprintf(info->backing_file, sizeof(info->backing_file), "%s", s->backing_file);
	if (s->backing_fmt)
		snprintf(info->backing_fmt, sizeof(info->backing_fmt), "%s", s->backing_fmt);
	return 0;
}

/* The bitmap directory (qcow2 spec: "Bitmap directory"), while the extension is valid. */
static int qcow2_bitmap_list(struct block_dev *bd, struct block_bitmap **list)
{
	struct qcow2 *s = bd->opaque;
	uint64_t size, off;
	uint32_t nb, cap = 0;
	uint8_t *dir;
	int n = 0;

	*list = NULL;
	if (!qcow2_bitmap_dir(s, &off, &size, &nb))
		return 0;
	dir = malloc((size_t)size);
	if (!dir)
		return -ENOMEM;
	if (bfile_pread(bd, off, dir, (size_t)size) < 0) {
		free(dir);
		return -EIO;
	}
	for (uint64_t p = 0; p + 24 <= size && (uint32_t)n < nb;) {
		uint32_t flags = ld_be32(dir + p + 12), extra = ld_be32(dir + p + 20);
		uint16_t name = ld_be16(dir + p + 18);
		uint8_t gbits = dir[p + 17];
		struct block_bitmap *b;

		/* An entry without a name ends the directory, as it is invalid for QEMU too. */
		if (p + 24 + extra + name > size || gbits > 63 || !name)
			break;
		if ((uint32_t)n == cap) {
			struct block_bitmap *l;
			cap = cap ? cap * 2 : 8;
			l = realloc(*list, (size_t)cap * sizeof(*l));
			if (!l)
				break;
			*list = l;
		}
		b = &(*list)[n++];
		memset(b, 0, sizeof(*b));
		snprintf(b->name, sizeof(b->name), "%.*s", (int)name, (char *)dir + p + 24 + extra);
		b->granularity = 1ULL << gbits;
		b->in_use = flags & 1;
		b->autoload = flags & 2;
		p += (24 + (uint64_t)extra + name + 7) & ~7ULL;
	}
	free(dir);
	return n;
}

/* qcow2's format-specific "encrypt" member (info.c puts it in qcow2's data). */
static struct jnode *qcow2_info_specific(struct block_dev *bd)
{
	return qcow2_crypt_info(bd->opaque);
}

uint64_t block_qcow2_metadata_size(uint64_t size, uint32_t cluster_size, int refcount_bits,
				   bool v2, bool extended_l2)
{
	return qcow2_metadata_size(size, cluster_size, refcount_bits, extended_l2);
}

const struct block_driver block_qcow2_driver = {
	.name = "qcow2",
	.open = qcow2_open,
	.close = qcow2_close,
	.pread = qcow2_pread,
	.pwrite = qcow2_pwrite,
	.pwrite_compressed = qcow2_pwrite_compressed,
	.flush = qcow2_flush,
	.write_zeroes = qcow2_write_zeroes,
	.status = qcow2_status,
	.create = qcow2_create,
	.truncate = qcow2_truncate,
	.get_info = qcow2_get_info,
	.info_specific = qcow2_info_specific,
	.check = qcow2_check,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.snapshot_load_tmp = qcow2_snapshot_load_tmp,
	.change_backing = qcow2_change_backing,
	.amend = qcow2_amend,
	.make_empty = qcow2_make_empty,
	.bitmap_list = qcow2_bitmap_list,
	.bitmap_change = qcow2_bitmap_change,
	.bitmap_get = qcow2_bitmap_get,
	.map_direct = qcow2_map_direct,
	.end_direct = qcow2_end_direct,
};
