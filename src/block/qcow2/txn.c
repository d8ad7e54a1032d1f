/*
 * Changes that must look atomic to a crash: internal snapshot create,
 * delete and apply.
 *
 * Why ordering alone cannot do it: qcow2 spec ("QCOW_OFLAG_COPIED") wants
 * COPIED set on an active L1/L2 entry exactly when the refcount of what it
 * points to is 1, and both checkers (qemu-img check, ours) call any
 * difference corruption.  A snapshot moves refcounts across 1 <-> 2 while
 * the flags live in other clusters (L1, L2 tables), so any order of
 * in-place writes has a window in which they disagree.
 *
 * So the change is shadow-paged: every refcount block it modifies is copied
 * to a free cluster first (ensure_block in refcount.c), new L1/L2 tables and
 * a new snapshot table go to free clusters, a new refcount table is
 * written, everything is synced, and then one write of header bytes 24..71
 * (size, l1_size, l1_table_offset, refcount_table_offset/clusters,
 * nb_snapshots, snapshots_offset: one sector, so atomic) switches from the
 * old structures to the new.  A crash before that write leaves the old
 * image with nothing referenced added (not even a leak); after it, the new
 * one, whose refcounts already count the old structures as free.
 *
 * A cluster is handed out during a transaction only if it is free in both
 * the old and the new refcounts (cluster_taken in refcount.c), so nothing
 * the old header still reaches is overwritten.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int qcow2_txn_begin(struct qcow2 *s)
{
	int ret;

	if (s->txn)
		return -EBUSY;
	/* Dirty tables and deferred frees go to disk under the old structure first. */
	ret = qcow2_flush_metadata(s, true);
	if (ret < 0)
		return ret;
	if (s->nb_pending)
		return -EBUSY;	/* data I/O in flight holds frees back: not now */
	s->txn_reftable = malloc(s->reftable_size ? s->reftable_size * 8 : 8);
	if (!s->txn_reftable)
		return -ENOMEM;
	memcpy(s->txn_reftable, s->reftable, s->reftable_size * 8);
	s->txn_reftable_size = s->reftable_size;
	s->txn = true;
	return 0;
}

int qcow2_txn_grow_reftable(struct qcow2 *s, uint64_t min_entries)
{
	uint64_t per_cluster = s->cluster_size / 8, entries, *t;

	if (min_entries <= s->reftable_size)
		return 0;
	entries = (min_entries + per_cluster - 1) / per_cluster * per_cluster;
	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES)
		return -EFBIG;
	t = realloc(s->reftable, entries * 8);
	if (!t)
		return -ENOMEM;
	memset(t + s->reftable_size, 0, (entries - s->reftable_size) * 8);
	s->reftable = t;
	s->reftable_size = entries;
	return 0;
}

/*
 * The end of a transaction, on the new refcount table (commit) or back on
 * the old one (abort).  Cached refcount blocks and L2 tables may be copies
 * of the side that was dropped, and the allocation hints may point into it.
 */
static void txn_end(struct qcow2 *s, bool commit)
{
	if (commit) {
		free(s->txn_reftable);
	} else {
		free(s->reftable);
		s->reftable = s->txn_reftable;
		s->reftable_size = s->txn_reftable_size;
	}
	s->txn_reftable = NULL;
	s->txn = false;
	qcow2_cache_clear(&s->rc_cache);
	qcow2_cache_clear(&s->l2_cache);
	s->free_cluster_index = 1;
	s->free_byte_offset = 0;
}

void qcow2_txn_abort(struct qcow2 *s)
{
	if (!s->txn)
		return;
	/* Nothing the old header reaches was written: forget the copies. */
	txn_end(s, false);
}

/* Room for the new refcount table, counted in the table it describes. */
static int place_reftable(struct qcow2 *s, uint64_t *off, uint64_t *clusters)
{
	int ret;

	for (;;) {
		uint64_t n = qcow2_size_to_clusters(s, s->reftable_size * 8);
		ret = qcow2_alloc_clusters(s, n, off);
		if (ret < 0)
			return ret;
		/* Allocating may have added a block past the table's end: then a bigger one. */
		if (qcow2_size_to_clusters(s, s->reftable_size * 8) <= n) {
			*clusters = n;
			return qcow2_txn_grow_reftable(s, n * (s->cluster_size / 8));
		}
		ret = qcow2_free_now(s, *off, n);
		if (ret < 0)
			return ret;
	}
}

static int write_reftable(struct qcow2 *s, uint64_t off, uint64_t clusters)
{
	size_t bytes = (size_t)(clusters << s->cluster_bits);
	uint8_t *raw = block_alloc_buf(bytes);
	int ret;

	if (!raw)
		return -ENOMEM;
	memset(raw, 0, bytes);
	for (uint64_t i = 0; i < s->reftable_size; i++)
		st_be64(raw + 8 * i, s->reftable[i]);
	ret = qcow2_file_write(s, off, raw, bytes);
	free(raw);
	return ret;
}

static int sync_file(struct qcow2 *s)
{
	return (s->bd->flags & BLOCK_NO_FLUSH) ? 0 : bfile_flush(s->bd);
}

/* Header bytes 24..71 in one write: the switch (qcow2 spec: "Header"). */
static int switch_header(struct qcow2 *s, uint64_t rt_off, uint64_t rt_clusters)
{
	uint8_t f[48];

	st_be64(f, s->h.size);
	st_be32(f + 8, s->h.crypt_method);
	st_be32(f + 12, s->h.l1_size);
	st_be64(f + 16, s->h.l1_table_offset);
	st_be64(f + 24, rt_off);
	st_be32(f + 32, (uint32_t)rt_clusters);
	st_be32(f + 36, s->h.nb_snapshots);
	st_be64(f + 40, s->h.snapshots_offset);
	return qcow2_file_write(s, 24, f, sizeof(f));
}

int qcow2_txn_commit(struct qcow2 *s)
{
	uint64_t old_off = s->reftable_offset;
	uint64_t old_clusters = qcow2_size_to_clusters(s, s->txn_reftable_size * 8);
	uint64_t off = 0, clusters = 0;
	int ret;

	/* The old table is not part of the new structure. */
	ret = qcow2_free_now(s, old_off, old_clusters);
	if (ret == 0)
		ret = place_reftable(s, &off, &clusters);
	if (ret == 0)
		ret = qcow2_rc_flush(s, false);
	if (ret == 0)
		ret = write_reftable(s, off, clusters);
	/* Everything the new header will reach is on disk before it does. */
	if (ret == 0)
		ret = sync_file(s);
	if (ret == 0)
		ret = switch_header(s, off, clusters);
	if (ret < 0) {
		qcow2_txn_abort(s);
		return ret;
	}
	qcow2_set_reftable(s, s->reftable, s->reftable_size, off, clusters);
	/* Cached copies of the old blocks describe nothing now. */
	txn_end(s, true);
	s->rc_dirty_unsynced = false;
	return sync_file(s);
}
