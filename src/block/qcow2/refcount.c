/*
 * Reference counts (qcow2 spec: "Host cluster management"): a two-level
 * table of refcount blocks whose entries are 1, 2, 4, ... 64 bits wide.
 * A cluster is free when its refcount is 0; allocation is first fit from a
 * hint.  A new refcount block is placed inside the range it describes, and
 * a full refcount table moves to the end of the file, so both describe
 * themselves and the allocator needs no special cases.
 */
#include "block/blkdebug.h"
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Entries narrower than a byte are packed from the least significant bit (QEMU's layout). */
uint64_t qcow2_rc_get_entry(const void *block, unsigned order, uint64_t i)
{
	const uint8_t *p = block;

	switch (order) {
	case 0: return (p[i / 8] >> (i % 8)) & 0x1;
	case 1: return (p[i / 4] >> (2 * (i % 4))) & 0x3;
	case 2: return (p[i / 2] >> (4 * (i % 2))) & 0xf;
	case 3: return p[i];
	case 4: return ld_be16(p + 2 * i);
	case 5: return ld_be32(p + 4 * i);
	default: return ld_be64(p + 8 * i);
	}
}

void qcow2_rc_set_entry(void *block, unsigned order, uint64_t i, uint64_t v)
{
	uint8_t *p = block;

	switch (order) {
	case 0:
		p[i / 8] = (uint8_t)((p[i / 8] & ~(0x1 << (i % 8))) | (v << (i % 8)));
		break;
	case 1:
		p[i / 4] = (uint8_t)((p[i / 4] & ~(0x3 << (2 * (i % 4)))) | (v << (2 * (i % 4))));
		break;
	case 2:
		p[i / 2] = (uint8_t)((p[i / 2] & ~(0xf << (4 * (i % 2)))) | (v << (4 * (i % 2))));
		break;
	case 3: p[i] = (uint8_t)v; break;
	case 4: st_be16(p + 2 * i, (uint16_t)v); break;
	case 5: st_be32(p + 4 * i, (uint32_t)v); break;
	default: st_be64(p + 8 * i, v); break;
	}
}

int qcow2_load_reftable(struct qcow2 *s, char *err, size_t errlen)
{
	size_t bytes = (size_t)(s->reftable_size * 8);
	uint8_t *raw = block_alloc_buf(bytes ? bytes : 1);	/* check opens a table of 0 */
	int ret;

	s->reftable = malloc(bytes ? bytes : 1);
	if (!raw || !s->reftable) {
		free(raw);
		return block_err(err, errlen, "out of memory");
	}
	ret = bfile_pread(s->bd, s->reftable_offset, raw, bytes);
	if (ret < 0) {
		free(raw);
		return block_err(err, errlen, "Could not read refcount table: %s", strerror(-ret));
	}
	for (uint64_t i = 0; i < s->reftable_size; i++)
		s->reftable[i] = ld_be64(raw + 8 * i);
	free(raw);
	return 0;
}

/* A refcount block offset from the table, checked before it is used. */
static int block_offset(struct qcow2 *s, uint64_t ti, uint64_t *off)
{
	uint64_t e = ti < s->reftable_size ? s->reftable[ti] : 0;

	*off = e & REFT_OFFSET_MASK;
	if (!*off)
		return 0;
	if (qcow2_in_cluster(s, *off))
		return qcow2_signal_corruption(s, "Refblock offset %#" PRIx64
					       " unaligned (reftable index: %#" PRIx64 ")", *off, ti);
	/* A block on the header or on the refcount table itself would be a loop. */
	if (!s->checking && (*off < s->cluster_size ||
	    (*off >= s->reftable_offset &&
	     *off < s->reftable_offset + (s->txn ? s->txn_reftable_size : s->reftable_size) * 8)))
		return qcow2_signal_corruption(s, "Refblock at %#" PRIx64 " overlaps metadata "
					       "(reftable index: %#" PRIx64 ")", *off, ti);
	return 0;
}

int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t ti = cluster >> s->rb_bits, off;
	void *block;
	int ret;

	*rc = 0;
	ret = block_offset(s, ti, &off);
	if (ret < 0 || !off)
		return ret;
	ret = qcow2_cache_get(s, &s->rc_cache, off, true, &block);
	if (ret < 0)
		return ret;
	*rc = qcow2_rc_get_entry(block, s->refcount_order,
				 cluster & ((1ULL << s->rb_bits) - 1));
	qcow2_cache_put(&s->rc_cache, block);
	return 0;
}

static bool reserved(const struct qcow2 *s, uint64_t cluster)
{
	/* During repair, clusters the image uses but whose refcount is wrong. */
	return cluster == 0 ||
	       (s->check_refs && cluster < s->check_refs_size && s->check_refs[cluster]);
}

static void note_alloc(struct qcow2 *s, uint64_t cluster, uint64_t n)
{
	uint64_t end = (cluster + n) << s->cluster_bits;

	if (end > s->alloc_end)
		s->alloc_end = end;
}

static int grow_reftable(struct qcow2 *s, uint64_t min_entries);
static int grow_reftable_now(struct qcow2 *s, uint64_t min_entries);

/*
 * In a transaction (txn.c) a cluster is free only when it is free in the
 * refcounts on disk too: one freed meanwhile is still in use there until
 * the header switches, and a crash before that must find it intact.
 */
static int txn_old_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t ti = cluster >> s->rb_bits, off;
	void *block;
	int ret;

	*rc = 0;
	off = ti < s->txn_reftable_size ? s->txn_reftable[ti] & REFT_OFFSET_MASK : 0;
	if (!off)
		return 0;
	ret = qcow2_cache_get(s, &s->rc_cache, off, true, &block);
	if (ret < 0)
		return ret;
	*rc = qcow2_rc_get_entry(block, s->refcount_order, cluster & ((1ULL << s->rb_bits) - 1));
	qcow2_cache_put(&s->rc_cache, block);
	return 0;
}

/* Whether the allocator must leave the cluster alone. */
static int cluster_taken(struct qcow2 *s, uint64_t cluster, bool *taken)
{
	uint64_t rc;
	int ret;

	*taken = true;
	if (reserved(s, cluster))
		return 0;
	ret = qcow2_get_refcount(s, cluster, &rc);
	if (ret == 0 && !rc && s->txn)
		ret = txn_old_refcount(s, cluster, &rc);
	if (ret == 0)
		*taken = rc != 0;
	return ret;
}

/* The first cluster with refcount 0 (no refcount block counts as 0), from the hint. */
static int find_free(struct qcow2 *s, uint64_t *cluster)
{
	bool taken;
	int ret;

	for (uint64_t c = s->free_cluster_index;; c++) {
		if (c >> (62 - s->cluster_bits))
			return -EFBIG;
		ret = cluster_taken(s, c, &taken);
		if (ret < 0)
			return ret;
		if (!taken) {
			*cluster = c;
			return 0;
		}
	}
}

/* In a transaction the table is written whole at commit (txn.c); here only in memory. */
static int set_table_entry(struct qcow2 *s, uint64_t ti, uint64_t off)
{
	uint8_t e[8];
	int ret = 0;

	if (!s->txn) {
		st_be64(e, off);
		ret = qcow2_checked_write(s, QCOW2_OL_REFCOUNT_TABLE, s->reftable_offset + ti * 8,
					  e, 8);
	}
	if (ret == 0)
		s->reftable[ti] = off;
	return ret;
}

/* A block the on-disk refcount table still points at: a transaction copies it first. */
static bool txn_block_on_disk(const struct qcow2 *s, uint64_t ti)
{
	return s->txn && ti < s->txn_reftable_size && s->txn_reftable[ti] &&
	       s->reftable[ti] == s->txn_reftable[ti];
}

/* The new block's contents: zeroes, or in a transaction a copy of the block it replaces. */
static int init_block(struct qcow2 *s, uint64_t old, void *block)
{
	void *src;
	int ret;

	if (!old)
		return 0;
	ret = qcow2_cache_get(s, &s->rc_cache, old, true, &src);
	if (ret < 0)
		return ret;
	memcpy(block, src, s->cluster_size);
	qcow2_cache_put(&s->rc_cache, src);
	return 0;
}

/*
 * Makes sure refcount block ti exists (and, in a transaction, is a copy the
 * on-disk header does not reach yet).  Returns 1 when it had to allocate
 * (so a caller scanning for free space starts over), as QEMU's
 * alloc_refcount_block returns -EAGAIN.  Like QEMU, the new block takes the
 * first free cluster: if that lies in the range the block describes, the
 * block counts itself; otherwise its refcount goes into another block first.
 */
static int ensure_block(struct qcow2 *s, uint64_t ti)
{
	bool allocated = false;
	uint64_t c, off, old;
	void *block;
	int ret;

	for (;;) {
		if (ti >= s->reftable_size) {
			ret = grow_reftable(s, ti + 1);
			if (ret < 0)
				return ret;
			allocated = true;
			continue;
		}
		ret = block_offset(s, ti, &off);
		if (ret < 0)
			return ret;
		if (off && !txn_block_on_disk(s, ti))
			return allocated;
		old = off;
		/* QEMU's alloc_refcount_block: a new refcount block is needed. */
		block_debug_event(s->bd, BLKDBG_REFBLOCK_ALLOC);
		ret = find_free(s, &c);
		if (ret < 0)
			return ret;
		off = c << s->cluster_bits;
		if ((c >> s->rb_bits) != ti) {
			/* Counted elsewhere: that block must exist, then c is taken there. */
			ret = ensure_block(s, c >> s->rb_bits);
			if (ret < 0)
				return ret;
			if (ret > 0) {
				allocated = true;
				continue;	/* c may be taken now: pick again */
			}
			ret = qcow2_update_refcount(s, c, 1);
			if (ret == 0)
				ret = qcow2_rc_flush(s, true);
			if (ret < 0)
				return ret;
		}
		ret = qcow2_cache_get(s, &s->rc_cache, off, false, &block);
		if (ret < 0)
			return ret;
		ret = init_block(s, old, block);
		if (ret == 0 && (c >> s->rb_bits) == ti)
			qcow2_rc_set_entry(block, s->refcount_order, c & ((1ULL << s->rb_bits) - 1), 1);
		/* The block must be on disk before the table entry that points at it. */
		if (ret == 0)
			ret = qcow2_checked_write(s, 0, off, block, s->cluster_size);
		qcow2_cache_put(&s->rc_cache, block);
		if (ret < 0) {
			qcow2_cache_discard(&s->rc_cache, off);
			return ret;
		}
		if (!(s->bd->flags & BLOCK_NO_FLUSH) && !s->dirty_bit_set && !s->txn) {
			ret = bfile_flush(s->bd);
			if (ret < 0)
				return ret;
		}
		ret = set_table_entry(s, ti, off);
		if (ret < 0)
			return ret;
		s->rc_dirty_unsynced = true;
		note_alloc(s, c, 1);
		/* The copied block is no longer in the new refcount structure. */
		if (old)
			ret = qcow2_update_refcount(s, old >> s->cluster_bits, -1);
		return ret < 0 ? ret : 1;
	}
}

int qcow2_update_refcount(struct qcow2 *s, uint64_t cluster, int64_t delta)
{
	uint64_t ti = cluster >> s->rb_bits, off, rc, i;
	void *block;
	int ret;

	ret = ensure_block(s, ti);
	if (ret < 0)
		return ret;
	ret = block_offset(s, ti, &off);
	if (ret < 0)
		return ret;
	ret = qcow2_cache_get(s, &s->rc_cache, off, true, &block);
	if (ret < 0)
		return ret;
	i = cluster & ((1ULL << s->rb_bits) - 1);
	rc = qcow2_rc_get_entry(block, s->refcount_order, i);
	if ((delta < 0 && rc < (uint64_t)-delta) ||
	    (delta > 0 && s->refcount_max - rc < (uint64_t)delta)) {
		qcow2_cache_put(&s->rc_cache, block);
		if (delta > 0)
			return -ERANGE;
		return qcow2_signal_corruption(s, "Preventing invalid write on metadata: refcount"
					       " of cluster %#" PRIx64 " would drop below 0",
					       cluster);
	}
	rc += (uint64_t)delta;
	qcow2_rc_set_entry(block, s->refcount_order, i, rc);
	qcow2_cache_mark_dirty(&s->rc_cache, block);
	qcow2_cache_put(&s->rc_cache, block);
	if (rc == 0) {
		/* A freed table must not be written back over whatever takes its place. */
		qcow2_cache_discard(&s->l2_cache, cluster << s->cluster_bits);
		qcow2_cache_discard(&s->rc_cache, cluster << s->cluster_bits);
		if (cluster < s->free_cluster_index)
			s->free_cluster_index = cluster;
		/* Compressed data must not be packed into a cluster someone else may take now. */
		if ((s->free_byte_offset >> s->cluster_bits) == cluster)
			s->free_byte_offset = 0;
		s->zbuf_valid = false;
	} else if (delta > 0) {
		note_alloc(s, cluster, 1);
	}
	return 0;
}

/* First fit: n contiguous free clusters, all with existing refcount blocks. */
int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *offset)
{
	uint64_t start, c;
	bool taken;
	int ret;

	block_debug_event(s->bd, BLKDBG_CLUSTER_ALLOC);
	if (!n)
		return -EINVAL;
restart:
	start = s->free_cluster_index;
	for (c = start; c - start < n; c++) {
		if (c >> (62 - s->cluster_bits))
			return -EFBIG;
		ret = ensure_block(s, c >> s->rb_bits);
		if (ret < 0)
			return ret;
		if (ret > 0)
			goto restart;
		ret = cluster_taken(s, c, &taken);
		if (ret < 0)
			return ret;
		if (taken) {
			if (start == s->free_cluster_index && c == start)
				s->free_cluster_index = c + 1;
			start = c + 1;
		}
	}
	for (c = start; c < start + n; c++) {
		ret = qcow2_update_refcount(s, c, 1);
		if (ret < 0)
			return ret;
	}
	if (start == s->free_cluster_index)
		s->free_cluster_index = start + n;
	*offset = start << s->cluster_bits;

	return 0;
}

/* Takes clusters at a given place (preallocation, growing a compressed run). */
int qcow2_alloc_clusters_at(struct qcow2 *s, uint64_t offset, uint64_t n)
{
	uint64_t first = offset >> s->cluster_bits;
	bool taken;
	int ret;

	for (uint64_t c = first; c < first + n; c++) {
		ret = ensure_block(s, c >> s->rb_bits);
		if (ret < 0)
			return ret;
		ret = cluster_taken(s, c, &taken);
		if (ret < 0)
			return ret;
		if (taken)
			return -EAGAIN;
	}
	for (uint64_t c = first; c < first + n; c++) {
		ret = qcow2_update_refcount(s, c, 1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Space for one compressed cluster: packed after the previous one, sharing
 * host clusters; every host cluster a compressed cluster touches counts one
 * reference for it (qcow2 spec: "Compressed Clusters Descriptor").
 */
int qcow2_alloc_bytes(struct qcow2 *s, uint64_t size, uint64_t *offset)
{
	uint64_t off = s->free_byte_offset, rc, cluster;
	int ret;

	if (off && qcow2_in_cluster(s, off)) {
		cluster = off >> s->cluster_bits;
		ret = qcow2_get_refcount(s, cluster, &rc);
		if (ret < 0)
			return ret;
		if (rc == 0 || rc >= s->refcount_max) {
			off = 0;	/* freed meanwhile, or no more references fit */
		} else if (qcow2_in_cluster(s, off) + size > s->cluster_size) {
			/* Spills into the next cluster, which must be free to continue there. */
			ret = qcow2_alloc_clusters_at(s, (cluster + 1) << s->cluster_bits, 1);
			if (ret == -EAGAIN)
				off = 0;
			else if (ret < 0)
				return ret;
		}
		if (off) {
			ret = qcow2_update_refcount(s, cluster, 1);
			if (ret < 0)
				return ret;
			*offset = off;
			s->free_byte_offset = off + size;
			return 0;
		}
	}
	ret = qcow2_alloc_clusters(s, 1, &off);
	if (ret < 0)
		return ret;
	*offset = off;
	s->free_byte_offset = off + size;
	return 0;
}

static int free_later(struct qcow2 *s, uint64_t offset, uint64_t clusters, bool keep)
{
	if (!clusters)
		return 0;
	if (s->nb_pending && s->pending[s->nb_pending - 1].keep == keep &&
	    s->pending[s->nb_pending - 1].offset +
			    (s->pending[s->nb_pending - 1].clusters << s->cluster_bits) == offset) {
		s->pending[s->nb_pending - 1].clusters += clusters;
		return 0;
	}
	if (s->nb_pending == s->cap_pending) {
		size_t cap = s->cap_pending ? s->cap_pending * 2 : 64;
		struct qcow2_free *p = realloc(s->pending, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->pending = p;
		s->cap_pending = cap;
	}
	s->pending[s->nb_pending].offset = offset;
	s->pending[s->nb_pending].clusters = clusters;
	s->pending[s->nb_pending].keep = keep;
	s->nb_pending++;
	/* Keep the list short: writing the L2 tables out lets the frees go through. */
	if (s->nb_pending >= 4096 && !s->inflight)
		return qcow2_flush_metadata(s, false);
	return 0;
}

int qcow2_free_later(struct qcow2 *s, uint64_t offset, uint64_t clusters)
{
	return free_later(s, offset, clusters, false);
}

/*
 * Frees that QEMU makes with QCOW2_DISCARD_OTHER (not passed down by
 * default): the space stays allocated in the file, as qemu-img leaves it.
 */
int qcow2_free_later_keep(struct qcow2 *s, uint64_t offset, uint64_t clusters)
{
	return free_later(s, offset, clusters, true);
}

/* The clusters a compressed cluster's data touches. */
int qcow2_free_compressed_later(struct qcow2 *s, uint64_t l2e)
{
	uint64_t off = l2e & s->cluster_offset_mask;
	uint64_t sectors = ((l2e >> s->csize_shift) & s->csize_mask) + 1;
	uint64_t start = off & ~511ULL, end = start + sectors * 512;
	uint64_t first = start >> s->cluster_bits, last = (end - 1) >> s->cluster_bits;

	for (uint64_t c = first; c <= last; c++) {
		int ret = qcow2_free_later(s, c << s->cluster_bits, 1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int qcow2_free_now(struct qcow2 *s, uint64_t offset, uint64_t clusters)
{
	uint64_t first = offset >> s->cluster_bits;
	int ret;

	for (uint64_t c = first; c < first + clusters; c++) {
		ret = qcow2_update_refcount(s, c, -1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Whether dropping the last reference to cluster c would free metadata: a
 * damaged entry (a compressed descriptor spanning too many sectors, a data
 * entry on a table) must not hand a table out for reuse or punch it away.
 * One check covers a whole pending run; only a hit looks cluster by cluster.
 */
static int frees_metadata(struct qcow2 *s, uint64_t c, bool *bad)
{
	unsigned hit;
	uint64_t rc;
	int ret;

	*bad = false;
	ret = qcow2_get_refcount(s, c, &rc);
	if (ret < 0 || rc != 1)
		return ret;
	ret = qcow2_overlaps(s, s->overlap & ~QCOW2_OL_INACTIVE_L2, c << s->cluster_bits,
			     s->cluster_size, &hit);
	if (ret == 0 && hit) {
		*bad = true;
		ret = qcow2_signal_corruption(s, "Preventing invalid free of metadata: cluster %#"
					      PRIx64 " is a %s", c << s->cluster_bits,
					      qcow2_overlap_name(hit));
	}
	return ret;
}

static bool run_touches_metadata(struct qcow2 *s, const struct qcow2_free *f)
{
	unsigned hit;

	if (s->checking || !s->overlap)
		return false;
	return qcow2_overlaps(s, s->overlap & ~QCOW2_OL_INACTIVE_L2, f->offset,
			      f->clusters << s->cluster_bits, &hit) < 0 || hit;
}

/* Gives freed space back to the file system, as QEMU's discard does: one call per run. */
static void punch(struct qcow2 *s, uint64_t *start, uint64_t *len, uint64_t off, uint64_t n)
{
	if (*len && (!n || *start + *len != off)) {
		block_crash_point();
		fallocate(s->bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)*start,
			  (off_t)*len);
		*len = 0;
	}
	if (!n)
		return;
	if (!*len)
		*start = off;
	*len += n;
}

void qcow2_punch(struct qcow2 *s, uint64_t *start, uint64_t *len, uint64_t off, uint64_t n)
{
	punch(s, start, len, off, n);
}

int qcow2_apply_pending_frees(struct qcow2 *s)
{
	uint64_t hole = 0, hole_len = 0;
	int ret = 0, err = 0;

	for (size_t i = 0; i < s->nb_pending && ret == 0; i++) {
		struct qcow2_free *f = &s->pending[i];
		uint64_t first = f->offset >> s->cluster_bits;
		bool check = run_touches_metadata(s, f);
		for (uint64_t c = first; c < first + f->clusters && ret == 0; c++) {
			uint64_t rc;
			bool bad = false;
			if (check) {
				/* The cluster keeps its reference (a leak); the others go on. */
				int r = frees_metadata(s, c, &bad);
				if (r < 0 && !err)
					err = r;
				if (bad || r < 0)
					continue;
			}
			ret = qcow2_update_refcount(s, c, -1);
			if (ret == 0)
				ret = qcow2_get_refcount(s, c, &rc);
			if (ret == 0 && rc == 0 && !f->keep && (c << s->cluster_bits) < s->file_size)
				punch(s, &hole, &hole_len, c << s->cluster_bits, s->cluster_size);
		}
	}
	punch(s, &hole, &hole_len, 0, 0);
	s->nb_pending = 0;
	return ret ? ret : err;
}

int qcow2_rc_flush(struct qcow2 *s, bool sync)
{
	int ret = qcow2_cache_flush(s, &s->rc_cache);

	if (ret == 0 && sync && s->rc_dirty_unsynced && !s->dirty_bit_set &&
	    !(s->bd->flags & BLOCK_NO_FLUSH)) {
		ret = bfile_flush(s->bd);
		if (ret == 0)
			s->rc_dirty_unsynced = false;
	}
	return ret;
}

/*
 * Refcount increments, then L2 tables, then (once those are on disk) the
 * deferred decrements.  With sync the whole state is on stable storage after.
 */
int qcow2_flush_metadata(struct qcow2 *s, bool sync)
{
	int ret;

	ret = qcow2_rc_flush(s, true);
	if (ret == 0)
		ret = qcow2_cache_flush(s, &s->l2_cache);
	/*
	 * Data I/O that runs outside the lock may still use a cluster being
	 * freed: its reuse must wait until no such request is left.
	 */
	if (ret == 0 && s->nb_pending && !s->inflight && !s->txn) {
		if (!(s->bd->flags & BLOCK_NO_FLUSH) && !s->dirty_bit_set)
			ret = bfile_flush(s->bd);
		if (ret == 0)
			ret = qcow2_apply_pending_frees(s);
		if (ret == 0)
			ret = qcow2_rc_flush(s, false);
	}
	if (ret == 0 && sync && !(s->bd->flags & BLOCK_NO_FLUSH)) {
		ret = bfile_flush(s->bd);
		if (ret == 0)
			s->rc_dirty_unsynced = false;
	}
	return ret;
}

/* A transaction writes its table whole at commit: until then it grows in memory. */
static int grow_reftable(struct qcow2 *s, uint64_t min_entries)
{
	if (s->txn)
		return qcow2_txn_grow_reftable(s, min_entries);
	return grow_reftable_now(s, min_entries);
}

/*
 * The refcount table in memory (taken over) and in s->h, once it is on disk
 * at offset.  table may be the one s already holds (a transaction's commit
 * only moves it).
 */
void qcow2_set_reftable(struct qcow2 *s, uint64_t *table, uint64_t entries, uint64_t offset,
			uint64_t clusters)
{
	if (table != s->reftable)
		free(s->reftable);
	s->reftable = table;
	s->reftable_size = entries;
	s->reftable_offset = offset;
	s->h.refcount_table_offset = offset;
	s->h.refcount_table_clusters = (uint32_t)clusters;
}

/*
 * The new table is written and synced before the header points at it, and
 * the header before the old table is freed, so a crash at any point leaves
 * one valid table (qcow2 spec: refcount table offset and clusters are
 * adjacent header fields, switched by one write).
 */
int qcow2_switch_reftable(struct qcow2 *s, uint64_t *table, uint64_t entries, uint64_t start)
{
	uint64_t tcl = entries * 8 >> s->cluster_bits, old_off = s->reftable_offset;
	uint64_t old_clusters = qcow2_size_to_clusters(s, s->reftable_size * 8);
	uint8_t *raw = block_alloc_buf((size_t)(tcl << s->cluster_bits)), field[12];
	int ret = -ENOMEM;

	if (!raw)
		goto fail;
	for (uint64_t i = 0; i < entries; i++)
		st_be64(raw + 8 * i, table[i]);
	ret = qcow2_rc_flush(s, false);
	if (ret == 0)
		ret = qcow2_checked_write(s, 0, start << s->cluster_bits, raw,
					  (size_t)(tcl << s->cluster_bits));
	free(raw);
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret < 0)
		goto fail;
	st_be64(field, start << s->cluster_bits);
	st_be32(field + 8, (uint32_t)tcl);
	ret = qcow2_file_write(s, 48, field, sizeof(field));
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret < 0)
		goto fail;
	qcow2_set_reftable(s, table, entries, start << s->cluster_bits, tcl);
	return qcow2_free_now(s, old_off, old_clusters);
fail:
	free(table);
	return ret;
}

/* A grown refcount table's place: tcl clusters from start, then nb new blocks, up to end. */
struct reftable_area {
	uint64_t start, entries, tcl, nb, end;
};

/*
 * Sizes the new table at the end of the file and the refcount blocks its
 * own area needs: each depends on the other, so both grow until they agree.
 */
static int plan_reftable(struct qcow2 *s, uint64_t min_entries, struct reftable_area *a)
{
	uint64_t per_cluster = s->cluster_size / 8, ti;
	uint64_t end = s->alloc_end > s->file_size ? s->alloc_end : s->file_size;

	if (end < s->data_end)
		end = s->data_end;
	a->start = qcow2_align(s, end) >> s->cluster_bits;
	a->entries = s->reftable_size * 2 > min_entries ? s->reftable_size * 2 : min_entries;
	for (;;) {
		a->entries = (a->entries + per_cluster - 1) / per_cluster * per_cluster;
		if (a->entries * 8 > QCOW2_MAX_REFTABLE_BYTES)
			return -EFBIG;
		a->tcl = a->entries / per_cluster;
		a->nb = 0;
		for (;;) {
			uint64_t need = 0;
			a->end = a->start + a->tcl + a->nb;
			for (ti = a->start >> s->rb_bits; ti <= (a->end - 1) >> s->rb_bits; ti++)
				if (ti >= s->reftable_size || !s->reftable[ti])
					need++;
			if (need == a->nb)
				break;
			a->nb = need;
		}
		ti = (a->end - 1) >> s->rb_bits;
		if (ti < a->entries)
			return 0;
		a->entries = ti + 1;
	}
}

/*
 * Places the new blocks in table and gives every cluster of the area
 * refcount 1: in the new blocks (buffered at blocks) or in existing ones.
 */
static int count_new_area(struct qcow2 *s, uint64_t *table, uint8_t *blocks,
			  const struct reftable_area *a)
{
	uint64_t j = 0;
	int ret;

	for (uint64_t ti = a->start >> s->rb_bits; ti <= (a->end - 1) >> s->rb_bits; ti++)
		if (!table[ti])
			table[ti] = (a->start + a->tcl + j++) << s->cluster_bits;
	for (uint64_t c = a->start; c < a->end; c++) {
		uint64_t bti = c >> s->rb_bits;
		uint64_t boff = table[bti];
		uint64_t bidx = (boff >> s->cluster_bits);
		if (bidx >= a->start + a->tcl && bidx < a->end) {
			uint8_t *b = blocks + (bidx - a->start - a->tcl) * s->cluster_size;
			qcow2_rc_set_entry(b, s->refcount_order, c & ((1ULL << s->rb_bits) - 1), 1);
		} else {
			ret = qcow2_update_refcount(s, c, 1);
			if (ret < 0)
				return ret;
		}
	}
	note_alloc(s, a->start, a->end - a->start);
	return 0;
}

/*
 * A new, larger refcount table at the end of the file, with the refcount
 * blocks that describe its own clusters placed right after it.
 */
static int grow_reftable_now(struct qcow2 *s, uint64_t min_entries)
{
	struct reftable_area a;
	uint64_t *table = NULL;
	uint8_t *blocks = NULL;
	size_t blocks_len;
	int ret;

	ret = plan_reftable(s, min_entries, &a);
	if (ret < 0)
		return ret;
	blocks_len = (size_t)((a.nb ? a.nb : 1) * s->cluster_size);
	table = calloc(a.entries, sizeof(*table));
	blocks = block_alloc_buf(blocks_len);
	ret = -ENOMEM;
	if (!table || !blocks)
		goto out;
	memcpy(table, s->reftable, s->reftable_size * sizeof(*table));
	memset(blocks, 0, blocks_len);
	ret = count_new_area(s, table, blocks, &a);
	if (ret == 0 && a.nb)
		ret = qcow2_checked_write(s, 0, (a.start + a.tcl) << s->cluster_bits, blocks,
					  (size_t)(a.nb * s->cluster_size));
	if (ret == 0) {
		ret = qcow2_switch_reftable(s, table, a.entries, a.start);
		table = NULL;
	}
out:
	free(table);
	free(blocks);
	return ret;
}

/* Whether refcount block ti counts nothing but, maybe, itself (QEMU's qcow2_shrink_reftable). */
static int block_unused(struct qcow2 *s, uint64_t ti, uint64_t off, bool *unused)
{
	uint64_t self = off >> s->cluster_bits, n = 1ULL << s->rb_bits;
	void *block;
	int ret;

	ret = qcow2_cache_get(s, &s->rc_cache, off, true, &block);
	if (ret < 0)
		return ret;
	*unused = true;
	for (uint64_t i = 0; i < n && *unused; i++)
		if (qcow2_rc_get_entry(block, s->refcount_order, i) &&
		    !((self >> s->rb_bits) == ti && i == (self & (n - 1))))
			*unused = false;
	qcow2_cache_put(&s->rc_cache, block);
	return 0;
}

/*
 * After a shrink: refcount blocks that count no cluster any more leave the
 * table, and their clusters are freed, as QEMU's qcow2_shrink_reftable does,
 * so that the file can be cut after the last cluster in use.  The table is
 * on disk without them before their clusters' refcounts drop.
 */
int qcow2_shrink_reftable(struct qcow2 *s)
{
	uint64_t *freed = calloc(s->reftable_size ? s->reftable_size : 1, sizeof(*freed));
	uint64_t nfreed = 0;
	int ret;

	if (!freed)
		return -ENOMEM;
	ret = qcow2_rc_flush(s, false);
	for (uint64_t ti = 0; ti < s->reftable_size && ret == 0; ti++) {
		uint64_t off;
		bool unused;

		ret = block_offset(s, ti, &off);
		if (ret < 0 || !off)
			continue;
		ret = block_unused(s, ti, off, &unused);
		if (ret < 0 || !unused)
			continue;
		ret = set_table_entry(s, ti, 0);
		qcow2_cache_discard(&s->rc_cache, off);
		freed[nfreed++] = off;
	}
	if (ret == 0 && nfreed)
		ret = qcow2_rc_flush(s, true);
	if (ret == 0 && nfreed && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	for (uint64_t i = 0; i < nfreed && ret == 0; i++) {
		uint64_t c = freed[i] >> s->cluster_bits;

		/* A block that counted itself took its refcount with it. */
		if (s->reftable[c >> s->rb_bits] & REFT_OFFSET_MASK)
			ret = qcow2_update_refcount(s, c, -1);
		else if (c < s->free_cluster_index)
			s->free_cluster_index = c;
	}
	free(freed);
	return ret;
}
