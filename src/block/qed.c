/*
 * qed: QEMU Enhanced Disk (QEMU's docs/interop/qed_spec.txt).  A header in
 * cluster 0, an L1 table of table_size clusters, L2 tables of the same size
 * allocated at the end of the file as data arrives; entries are byte offsets
 * (0: unallocated, 1: reads as zeroes).  Allocating writes set the need-check
 * feature bit first and a flush clears it, so a crash leaves an image that
 * the next read-write open checks and repairs (qed_check.c's leak/corruption
 * walk, shared with qemu-img check).
 */
#include "block/qed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QED_CACHE_BYTES	(32u << 20)	/* bound on cached L2 tables */

/* The "backing file is raw" feature: QEMU stores no other format name. */
static bool fmt_is_raw(const char *fmt)
{
	return fmt && !strcmp(fmt, "raw");
}

static bool pow2_in(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

uint64_t qed_max_image_size(uint32_t cluster_size, uint32_t table_size)
{
	uint64_t entries = (uint64_t)cluster_size * table_size / 8;

	return entries * entries * cluster_size;
}

/* Spec "Image size": a multiple of 512 the two table levels can address. */
static bool image_size_valid(uint64_t size, uint32_t cluster_size, uint32_t table_size)
{
	return !(size % 512) && size <= qed_max_image_size(cluster_size, table_size);
}

bool qed_cluster_valid(const struct qed *s, uint64_t off)
{
	uint64_t header = (uint64_t)s->h.header_size * s->h.cluster_size;

	return !(off & (s->h.cluster_size - 1)) && off >= header && off < s->file_size;
}

bool qed_table_valid(const struct qed *s, uint64_t off)
{
	uint64_t end = off + (uint64_t)(s->h.table_size - 1) * s->h.cluster_size;

	/*
	 * QEMU 7.2's overflow test (end <= off) also refuses every table of
	 * table_size 1, so such images open nowhere; kept, so that both agree.
	 */
	return end > off && qed_cluster_valid(s, off) && qed_cluster_valid(s, end);
}

void qed_header_decode(struct qed_header *h, const uint8_t *p)
{
	h->magic = ld_le32(p);
	h->cluster_size = ld_le32(p + 4);
	h->table_size = ld_le32(p + 8);
	h->header_size = ld_le32(p + 12);
	h->features = ld_le64(p + 16);
	h->compat_features = ld_le64(p + 24);
	h->autoclear_features = ld_le64(p + 32);
	h->l1_table_offset = ld_le64(p + 40);
	h->image_size = ld_le64(p + 48);
	h->backing_name_offset = ld_le32(p + 56);
	h->backing_name_size = ld_le32(p + 60);
}

void qed_header_encode(const struct qed_header *h, uint8_t *p)
{
	st_le32(p, h->magic);
	st_le32(p + 4, h->cluster_size);
	st_le32(p + 8, h->table_size);
	st_le32(p + 12, h->header_size);
	st_le64(p + 16, h->features);
	st_le64(p + 24, h->compat_features);
	st_le64(p + 32, h->autoclear_features);
	st_le64(p + 40, h->l1_table_offset);
	st_le64(p + 48, h->image_size);
	st_le32(p + 56, h->backing_name_offset);
	st_le32(p + 60, h->backing_name_size);
}

/* Rewrites the 64 header bytes (the backing name after them stays). */
int qed_write_header(struct qed *s)
{
	uint8_t buf[QED_HEADER_BYTES];

	qed_header_encode(&s->h, buf);
	return bfile_pwrite(s->bd, 0, buf, sizeof(buf));
}

/* Spec "Header": every field checked as QEMU's bdrv_qed_do_open does. */
static int check_header(struct qed *s, char *err, size_t errlen)
{
	struct qed_header *h = &s->h;

	if (h->features & ~QED_FEATURE_MASK)
		return block_err(err, errlen, "Unsupported QED features: %" PRIx64,
				 h->features & ~QED_FEATURE_MASK);
	if (!pow2_in(h->cluster_size, QED_MIN_CLUSTER, QED_MAX_CLUSTER))
		return block_err(err, errlen, "QED cluster size is invalid");
	if (!pow2_in(h->table_size, QED_MIN_TABLE, QED_MAX_TABLE))
		return block_err(err, errlen, "QED table size is invalid");
	if (!image_size_valid(h->image_size, h->cluster_size, h->table_size))
		return block_err(err, errlen, "QED image size is invalid");
	if (!qed_table_valid(s, h->l1_table_offset))
		return block_err(err, errlen, "QED table offset is invalid");
	if (h->header_size > UINT32_MAX / h->cluster_size)
		return block_err(err, errlen, "QED header size is too large");
	if ((h->features & QED_F_BACKING_FILE) &&
	    (uint64_t)h->backing_name_offset + h->backing_name_size >
	    (uint64_t)h->cluster_size * h->header_size)
		return block_err(err, errlen, "QED backing filename offset is invalid");
	return 0;
}

static int read_backing_name(struct qed *s, char *err, size_t errlen)
{
	uint32_t n = s->h.backing_name_size;
	int ret;

	/* An empty name is no backing file (QEMU opens none). */
	if (!(s->h.features & QED_F_BACKING_FILE) || !n)
		return 0;
	if (n >= 1024)	/* QEMU's bs->auto_backing_file holds 1023 bytes */
		return block_err(err, errlen, "Failed to read backing filename");
	s->backing_file = calloc(1, (size_t)n + 1);
	if (!s->backing_file)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(s->bd, s->h.backing_name_offset, s->backing_file, n);
	if (ret < 0)
		return block_err(err, errlen, "Failed to read backing filename");
	return 0;
}

int qed_read_table(struct qed *s, uint64_t off, uint64_t *t)
{
	size_t n = s->nelems;
	int ret = bfile_pread(s->bd, off, t, n * 8);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		t[i] = ld_le64(&t[i]);
	return 0;
}

/* Writes entries [from, to) of the in-memory table t that lives at off. */
int qed_write_entries(struct qed *s, uint64_t off, const uint64_t *t, size_t from, size_t to)
{
	uint8_t *buf;
	int ret;

	if (to <= from)
		return 0;
	buf = malloc((to - from) * 8);
	if (!buf)
		return -ENOMEM;
	for (size_t i = from; i < to; i++)
		st_le64(buf + (i - from) * 8, t[i]);
	ret = bfile_pwrite(s->bd, off + from * 8, buf, (to - from) * 8);
	free(buf);
	return ret;
}

void qed_cache_drop(struct qed *s)
{
	for (unsigned i = 0; i < s->ncache; i++) {
		free(s->cache[i].t);
		s->cache[i].t = NULL;
		s->cache[i].off = 0;
	}
}

/* The L2 table at off, from the cache or the file; NULL with *ret set. */
uint64_t *qed_l2_get(struct qed *s, uint64_t off, int *ret)
{
	struct qed_l2 *e;

	for (unsigned i = 0; i < s->ncache; i++)
		if (s->cache[i].t && s->cache[i].off == off)
			return s->cache[i].t;
	e = &s->cache[s->next_victim];
	s->next_victim = (s->next_victim + 1) % s->ncache;
	if (!e->t && !(e->t = malloc(s->table_bytes))) {
		*ret = -ENOMEM;
		return NULL;
	}
	e->off = 0;
	*ret = qed_read_table(s, off, e->t);
	if (*ret < 0)
		return NULL;
	e->off = off;
	return e->t;
}

static int init_tables(struct qed *s, char *err, size_t errlen)
{
	int ret;

	s->nelems = s->table_bytes / 8;
	s->ncache = QED_CACHE_BYTES / s->table_bytes;
	if (s->ncache < 1)
		s->ncache = 1;
	if (s->ncache > QED_CACHE_MAX)
		s->ncache = QED_CACHE_MAX;
	s->l1 = malloc(s->table_bytes);
	s->zbuf = calloc(1, s->h.cluster_size);
	if (!s->l1 || !s->zbuf)
		return block_err(err, errlen, "out of memory");
	ret = qed_read_table(s, s->h.l1_table_offset, s->l1);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the QED L1 table: %s", strerror(-ret));
	return 0;
}

static void qed_free(struct qed *s)
{
	if (!s)
		return;
	qed_cache_drop(s);
	free(s->l1);
	free(s->zbuf);
	free(s->backing_file);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/*
 * An image left with need-check set (a crash mid-allocation) is walked and
 * repaired before anything writes to it, as QEMU does; read-only opens
 * cannot fix it and need not, since nothing they do can damage it.
 */
static int open_check(struct qed *s, char *err, size_t errlen)
{
	struct block_check_result r = { 0 };
	int ret;

	if (!(s->h.features & QED_F_NEED_CHECK) || s->bd->read_only ||
	    (s->bd->flags & BLOCK_CHECK))
		return 0;
	ret = qed_check_image(s, true, &r);
	if (ret < 0)
		return block_err(err, errlen, "Could not check the QED image: %s", strerror(-ret));
	return 0;
}

/* Unknown autoclear bits are cleared by a writer that does not maintain them (spec). */
static int clear_autoclear(struct qed *s, char *err, size_t errlen)
{
	int ret;

	if (!(s->h.autoclear_features & ~QED_AUTOCLEAR_MASK) || s->bd->read_only)
		return 0;
	s->h.autoclear_features &= QED_AUTOCLEAR_MASK;
	ret = qed_write_header(s);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return block_err(err, errlen, "Could not write the QED header: %s", strerror(-ret));
	return 0;
}

static int qed_open_state(struct qed *s, char *err, size_t errlen)
{
	uint8_t hdr[QED_HEADER_BYTES];
	int64_t fsize = bfile_size(s->bd);
	int ret;

	if (fsize < 0)
		return block_err(err, errlen, "Could not get the size: %s", strerror((int)-fsize));
	ret = bfile_pread(s->bd, 0, hdr, sizeof(hdr));
	if (ret < 0)
		return block_err(err, errlen, "Could not read the QED header: %s", strerror(-ret));
	qed_header_decode(&s->h, hdr);
	if (s->h.magic != QED_MAGIC)
		return block_err(err, errlen, "Image not in QED format");
	/* Spec: the file ends on a cluster boundary; a partial tail is not usable. */
	if (s->h.cluster_size)
		s->file_size = (uint64_t)fsize & ~(uint64_t)(s->h.cluster_size - 1);
	if (check_header(s, err, errlen) < 0)
		return -1;
	s->table_bytes = (size_t)s->h.cluster_size * s->h.table_size;
	s->cluster_bits = (unsigned)__builtin_ctz(s->h.cluster_size);
	s->l1_shift = s->cluster_bits + (unsigned)__builtin_ctzll(s->table_bytes / 8);
	if (read_backing_name(s, err, errlen) < 0 || clear_autoclear(s, err, errlen) < 0 ||
	    init_tables(s, err, errlen) < 0)
		return -1;
	return open_check(s, err, errlen);
}

static int qed_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct qed *s = calloc(1, sizeof(*s));

	if (!s)
		return block_err(err, errlen, "out of memory");
	s->bd = bd;
	pthread_mutex_init(&s->lock, NULL);
	bd->opaque = s;
	if (qed_open_state(s, err, errlen) < 0)
		goto fail;
	bd->size = s->h.image_size;
	if (s->backing_file && block_open_backing(bd, s->backing_file,
						  (s->h.features & QED_F_BACKING_RAW) ? "raw" : NULL,
						  err, errlen) < 0)
		goto fail;
	return 0;
fail:
	qed_free(s);
	bd->opaque = NULL;
	return -1;
}

/* Spec: need-check is cleared only once everything it covered is on disk. */
int qed_mark_clean(struct qed *s)
{
	int ret;

	if (!(s->h.features & QED_F_NEED_CHECK))
		return 0;
	ret = bfile_flush(s->bd);
	if (ret < 0)
		return ret;
	s->h.features &= ~QED_F_NEED_CHECK;
	ret = qed_write_header(s);
	if (ret < 0)
		return ret;
	return bfile_flush(s->bd);
}

static int qed_flush(struct block_dev *bd)
{
	struct qed *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = s->dirty ? qed_mark_clean(s) : bfile_flush(bd);
	if (ret == 0)
		s->dirty = false;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void qed_close(struct block_dev *bd)
{
	struct qed *s = bd->opaque;

	if (!s)
		return;
	if (!bd->read_only && s->dirty)
		qed_mark_clean(s);
	qed_free(s);
	bd->opaque = NULL;
}

/*
 * The L2 entry for guest offset off: *e gets 0 (unallocated), 1 (zero) or a
 * data offset checked against the file; the L2 table itself may be absent.
 */
int qed_lookup(struct qed *s, uint64_t off, uint64_t *e)
{
	uint64_t l1e = s->l1[off >> s->l1_shift], *t;
	int ret;

	*e = 0;
	if (!l1e)
		return 0;
	if (!qed_table_valid(s, l1e))
		return -EIO;
	t = qed_l2_get(s, l1e, &ret);
	if (!t)
		return ret;
	*e = t[(off >> s->cluster_bits) & (s->nelems - 1)];
	if (*e > QED_CLUSTER_ZERO && !qed_cluster_valid(s, *e))
		return -EIO;
	return 0;
}

static int qed_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct qed *s = bd->opaque;
	uint8_t *p = buf;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	while (len && ret == 0) {
		uint64_t in = off & (s->h.cluster_size - 1), e;
		size_t n = s->h.cluster_size - in < len ? (size_t)(s->h.cluster_size - in) : len;

		ret = qed_lookup(s, off, &e);
		if (ret == 0 && e == 0)
			ret = block_read_backing(bd, off, p, n);
		else if (ret == 0 && e == QED_CLUSTER_ZERO)
			memset(p, 0, n);
		else if (ret == 0)
			ret = bfile_pread(bd, e + in, p, n);
		off += n;
		p += n;
		len -= n;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Spec "need check": set (and on disk) before the first allocation. */
static int mark_dirty(struct qed *s)
{
	s->dirty = true;
	if (s->h.features & QED_F_NEED_CHECK)
		return 0;
	s->h.features |= QED_F_NEED_CHECK;
	return qed_write_header(s);
}

/* n clusters at the end of the file (the spec's allocation: append only). */
static uint64_t alloc_clusters(struct qed *s, uint64_t n)
{
	uint64_t off = s->file_size;

	s->file_size += n * s->h.cluster_size;
	return off;
}

/* A zeroed table for L1 slot i, in a cache slot; placed by link_l2 once its data is written. */
static uint64_t *new_l2(struct qed *s)
{
	struct qed_l2 *c = &s->cache[s->next_victim];

	s->next_victim = (s->next_victim + 1) % s->ncache;
	if (!c->t && !(c->t = malloc(s->table_bytes)))
		return NULL;
	c->off = 0;
	memset(c->t, 0, s->table_bytes);
	return c->t;
}

/*
 * A new L2 table goes after the data clusters it points at, then into L1:
 * QEMU's order (qed_aio_write_alloc), so both lay files out alike, and a
 * crash in between leaves only leaks.
 */
static int link_l2(struct qed *s, uint64_t i, uint64_t *t)
{
	uint64_t off = alloc_clusters(s, s->h.table_size);
	int ret = qed_write_entries(s, off, t, 0, s->nelems);

	if (ret < 0)
		return ret;
	s->l1[i] = off;
	ret = qed_write_entries(s, s->h.l1_table_offset, s->l1, i, i + 1);
	if (ret < 0) {
		s->l1[i] = 0;
		return ret;
	}
	for (unsigned k = 0; k < s->ncache; k++)
		if (s->cache[k].t == t)
			s->cache[k].off = off;
	return 0;
}

/*
 * A cluster's content for a write that does not cover it: the backing
 * file's data (or zeroes) around the new bytes, written in one piece.
 */
static int fill_cluster(struct qed *s, uint64_t start, uint8_t *cl)
{
	uint64_t cs = s->h.cluster_size;
	size_t n = start + cs > s->h.image_size ? (size_t)(s->h.image_size - start) : (size_t)cs;

	memset(cl + n, 0, cs - n);
	if (!s->bd->backing) {
		memset(cl, 0, n);
		return 0;
	}
	return block_read_backing(s->bd, start, cl, n);
}

/* One guest cluster's write; the L2 entry it changes is *e. */
static int write_cluster(struct qed *s, uint64_t off, const uint8_t *p, size_t n, uint64_t *e)
{
	uint64_t cs = s->h.cluster_size, in = off & (cs - 1), host;
	uint8_t *cl;
	int ret;

	if (*e > QED_CLUSTER_ZERO)
		return bfile_pwrite(s->bd, *e + in, p, n);
	host = alloc_clusters(s, 1);
	if (n == cs) {
		ret = bfile_pwrite(s->bd, host, p, n);
	} else {
		cl = block_alloc_buf(cs);
		if (!cl)
			return -ENOMEM;
		ret = *e == QED_CLUSTER_ZERO ? (memset(cl, 0, cs), 0) : fill_cluster(s, off - in, cl);
		memcpy(cl + in, p, n);
		if (ret == 0)
			ret = bfile_pwrite(s->bd, host, cl, cs);
		free(cl);
	}
	if (ret == 0)
		*e = host;
	return ret;
}

/* The part of a write that falls in one L2 table; returns bytes done or -errno. */
static int64_t write_in_table(struct qed *s, uint64_t off, const uint8_t *p, size_t len)
{
	uint64_t i1 = off >> s->l1_shift, cs = s->h.cluster_size, *t = NULL;
	size_t lo = SIZE_MAX, hi = 0, done = 0;
	bool fresh = !s->l1[i1];
	int ret = 0;

	if (fresh)
		t = new_l2(s);
	else if (qed_table_valid(s, s->l1[i1]))
		t = qed_l2_get(s, s->l1[i1], &ret);
	else
		return -EIO;
	if (!t)
		return ret < 0 ? ret : -ENOMEM;
	while (done < len && ((off + done) >> s->l1_shift) == i1) {
		uint64_t o = off + done, in = o & (cs - 1);
		size_t idx = (size_t)((o >> s->cluster_bits) & (s->nelems - 1));
		size_t n = cs - in < len - done ? (size_t)(cs - in) : len - done;
		uint64_t old = t[idx];

		if (old > QED_CLUSTER_ZERO && !qed_cluster_valid(s, old))
			return -EIO;
		ret = write_cluster(s, o, p + done, n, &t[idx]);
		if (ret < 0)
			break;
		if (t[idx] != old) {
			lo = idx < lo ? idx : lo;
			hi = idx + 1 > hi ? idx + 1 : hi;
		}
		done += n;
	}
	/* Data first, then the L2 entries that point at it (spec: ordering). */
	if (fresh && lo < hi) {
		int wret = link_l2(s, i1, t);
		if (wret < 0)
			return wret;
	} else if (lo < hi) {
		int wret = qed_write_entries(s, s->l1[i1], t, lo, hi);
		if (wret < 0)
			return wret;
	}
	return ret < 0 ? ret : (int64_t)done;
}

static int qed_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct qed *s = bd->opaque;
	const uint8_t *p = buf;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = mark_dirty(s);
	while (len && ret == 0) {
		int64_t n = write_in_table(s, off, p, len);
		if (n < 0) {
			ret = (int)n;
			break;
		}
		off += (uint64_t)n;
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Zeroes: nothing to do where the cluster already reads as zeroes. */
static int qed_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct qed *s = bd->opaque;
	uint64_t cs = s->h.cluster_size;
	int ret = 0;

	(void)may_unmap;
	while (len && ret == 0) {
		uint64_t in = off & (cs - 1), e;
		size_t n = cs - in < len ? (size_t)(cs - in) : (size_t)len;

		pthread_mutex_lock(&s->lock);
		ret = qed_lookup(s, off, &e);
		pthread_mutex_unlock(&s->lock);
		if (ret == 0 && e != QED_CLUSTER_ZERO && (e != 0 || bd->backing))
			ret = qed_pwrite(bd, off, s->zbuf, n);
		off += n;
		len -= n;
	}
	return ret;
}

/* Runs of clusters in one state: unallocated, zero, or contiguous data. */
static int qed_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags)
{
	struct qed *s = bd->opaque;
	uint64_t cs = s->h.cluster_size, first, e, done = 0;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = qed_lookup(s, off, &first);
	while (ret == 0 && done < len) {
		uint64_t o = off + done, in = o & (cs - 1);
		uint64_t n = cs - in < len - done ? cs - in : len - done;

		/* No L2 table: its whole range is unallocated, in one step. */
		if (!first && !s->l1[o >> s->l1_shift]) {
			uint64_t span = (((o >> s->l1_shift) + 1) << s->l1_shift) - o;
			done += span < len - done ? span : len - done;
			continue;
		}
		ret = qed_lookup(s, o, &e);
		if (ret < 0)
			break;
		if (first > QED_CLUSTER_ZERO ? e != first + ((o - in) - (off & ~(cs - 1)))
					     : e != first)
			break;
		done += n;
	}
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	*pnum = done;
	if (first == 0) {
		*flags = 0;
	} else if (first == QED_CLUSTER_ZERO) {
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_ALLOCATED;
	} else {
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		*map = first + (off & (cs - 1));
	}
	return 0;
}

static int qed_get_info(struct block_dev *bd, struct block_info *info)
{
	struct qed *s = bd->opaque;

	/* bdrv_qed_get_info reports no dirty flag: need-check stays out of info. */
	info->cluster_size = s->h.cluster_size;
	if (s->backing_file)
		snprintf(info->backing_file, sizeof(info->backing_file), "%s", s->backing_file);
	if (s->h.features & QED_F_BACKING_RAW)
		snprintf(info->backing_fmt, sizeof(info->backing_fmt), "raw");
	return 0;
}

static int qed_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		     FILE *report)
{
	struct qed *s = bd->opaque;
	int ret;

	(void)report;	/* QEMU's qed check names no cluster */
	pthread_mutex_lock(&s->lock);
	ret = qed_check_image(s, fix != 0, res);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* qemu-img resize: grow only, the header's image_size (bdrv_qed_co_truncate). */
static int qed_truncate(struct block_dev *bd, uint64_t size, bool shrink,
			enum block_prealloc prealloc, char *err, size_t errlen)
{
	struct qed *s = bd->opaque;
	uint64_t old = s->h.image_size;
	int ret;

	(void)shrink;
	if (prealloc != BLOCK_PREALLOC_OFF)
		return block_err(err, errlen, "Unsupported preallocation mode '%s'",
				 prealloc == BLOCK_PREALLOC_FULL ? "full" :
				 prealloc == BLOCK_PREALLOC_FALLOC ? "falloc" : "metadata");
	if (!image_size_valid(size, s->h.cluster_size, s->h.table_size))
		return block_err(err, errlen, "Invalid image size specified");
	if (size < old)
		return block_err(err, errlen, "Shrinking images is currently not supported");
	pthread_mutex_lock(&s->lock);
	s->h.image_size = size;
	ret = qed_write_header(s);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret < 0)
		s->h.image_size = old;
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return block_err(err, errlen, "Could not write the QED header: %s", strerror(-ret));
	bd->size = size;
	return 0;
}

/*
 * rebase -u: the whole header rewritten with the new name right after it
 * (bdrv_qed_change_backing_file); it must fit the header clusters.
 */
static int qed_change_backing(struct block_dev *bd, const char *file, const char *fmt,
			      char *err, size_t errlen)
{
	struct qed *s = bd->opaque;
	struct qed_header h = s->h;
	size_t n = file ? strlen(file) : 0;
	uint8_t *buf;
	char *copy = NULL;
	int ret;

	if (file && (h.compat_features & ~QED_COMPAT_MASK))
		return block_err(err, errlen, "Could not change the backing file: %s",
				 strerror(ENOTSUP));
	if (QED_HEADER_BYTES + n > (uint64_t)h.header_size * h.cluster_size)
		return block_err(err, errlen, "Could not change the backing file: %s",
				 strerror(ENOSPC));
	h.features &= ~(QED_F_BACKING_FILE | QED_F_BACKING_RAW);
	if (file)
		h.features |= QED_F_BACKING_FILE | (fmt_is_raw(fmt) ? QED_F_BACKING_RAW : 0);
	h.backing_name_offset = file ? QED_HEADER_BYTES : 0;
	h.backing_name_size = (uint32_t)n;
	buf = malloc(QED_HEADER_BYTES + n);
	if (!buf || (file && !(copy = strdup(file)))) {
		free(buf);
		return block_err(err, errlen, "out of memory");
	}
	qed_header_encode(&h, buf);
	memcpy(buf + QED_HEADER_BYTES, file ? file : "", n);
	pthread_mutex_lock(&s->lock);
	ret = bfile_pwrite(bd, 0, buf, QED_HEADER_BYTES + n);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret == 0) {
		s->h = h;
		free(s->backing_file);
		s->backing_file = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	free(buf);
	free(copy);
	if (ret < 0)
		return block_err(err, errlen, "Could not change the backing file: %s",
				 strerror(-ret));
	return 0;
}

/*
 * qemu-img commit leaves a qed top as it was: QEMU's qed has no
 * bdrv_make_empty and commit ignores the -ENOTSUP (the block layer's
 * fallback would write zeroes over the whole disk instead).
 */
static int qed_make_empty(struct block_dev *bd)
{
	(void)bd;
	return 0;
}

/* QEMU's qed_create_opts order, which is the "Formatting" line's. */
static const struct block_opt_desc qed_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "backing_file", BLOCK_OPT_STR, NULL, "File name of a base image" },
	{ "backing_fmt", BLOCK_OPT_STR, NULL, "Image format of the base image" },
	{ "cluster_size", BLOCK_OPT_SIZE, "65536", "Cluster size (in bytes)" },
	{ "table_size", BLOCK_OPT_SIZE, NULL, "L1/L2 table size (in clusters)" },
	{ NULL, 0, NULL, NULL },
};

const struct block_driver block_qed_driver = {
	.name = "qed",
	.open = qed_open,
	.close = qed_close,
	.pread = qed_pread,
	.pwrite = qed_pwrite,
	.flush = qed_flush,
	.write_zeroes = qed_write_zeroes,
	.status = qed_status,
	.create = qed_create,
	.truncate = qed_truncate,
	.get_info = qed_get_info,
	.check = qed_check,
	.change_backing = qed_change_backing,
	.make_empty = qed_make_empty,
	.create_opts = qed_create_opts,
};
