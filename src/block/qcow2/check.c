/*
 * Consistency check and repair, as qemu-img check does it for qcow2: the
 * references counted (check_refs.c) compared with the stored refcounts, the
 * COPIED flags, the snapshot table, and optionally fixed where they differ.
 * Messages and their wording follow QEMU's qcow2-refcount.c.
 */
#include "block/qcow2/check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A refcount block that exists and that a repair may read and write (past the counted clusters). */
static bool refblock_present(const struct qcow2 *s, uint64_t cluster)
{
	uint64_t ti = cluster >> s->rb_bits, e = ti < s->reftable_size ? s->reftable[ti] : 0;

	return e && !(e & ~REFT_OFFSET_MASK) && !qcow2_in_cluster(s, e) &&
	       e >= s->cluster_size && e < s->file_size;
}

/*
 * A leak repaired to refcount 0 gives the cluster's space back to the file
 * system, as QEMU's repair discards it (QCOW2_DISCARD_ALWAYS).  A cluster
 * the overlap check still finds metadata on keeps its bytes.
 */
static void discard_freed(struct qcow2 *s, uint64_t cluster)
{
	uint64_t off = cluster << s->cluster_bits;
	unsigned hit;

	if (off >= s->file_size ||
	    qcow2_overlaps(s, s->overlap & ~QCOW2_OL_INACTIVE_L2, off, s->cluster_size, &hit) ||
	    hit)
		return;
	block_crash_point();
	fallocate(s->bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		  (off_t)s->cluster_size);
}

/* QEMU's compare_refcounts. */
static int compare_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			unsigned fix, bool *rebuild, uint64_t *highest, FILE *report)
{
	/* Only clusters inside the file, as QEMU looks at them (past it: clear_past_end). */
	uint64_t hole = 0, hole_len = 0;

	*highest = 0;
	for (uint64_t i = 0; i < r->used; i++) {
		uint64_t rc, ref = qcow2_refs_get(r, i);
		int ret;
		bool fixable;

		ret = qcow2_get_refcount(s, i, &rc);
		if (ret < 0) {
			say(report, "Can't get refcount for cluster %" PRIu64 ": %s\n", i,
			    strerror(-ret));
			res->check_errors++;
			continue;
		}
		if (rc || ref)
			*highest = i;
		if (rc == ref)
			continue;
		fixable = false;
		if (rc == 0)
			*rebuild = true;
		else if (rc > ref && (fix & BLOCK_FIX_LEAKS))
			fixable = true;
		else if (rc < ref && (fix & BLOCK_FIX_ERRORS))
			fixable = true;
		say(report, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
		    fixable ? "Repairing" : rc < ref ? "ERROR" : "Leaked", i, rc, ref);
		if (fixable) {
			ret = qcow2_update_refcount(s, i, (int64_t)(ref - rc));
			if (ret == 0) {
				if (rc > ref && !ref)
					discard_freed(s, i);
				if (rc > ref)
					res->leaks_fixed++;
				else
					res->corruptions_fixed++;
				/* QEMU repairs with QCOW2_DISCARD_ALWAYS: a cluster now free is discarded. */
				if (!ref && (i << s->cluster_bits) < s->file_size)
					qcow2_punch(s, &hole, &hole_len, i << s->cluster_bits,
						    s->cluster_size);
				continue;
			}
		}
		if (rc < ref)
			res->corruptions++;
		else
			res->leaks++;
	}
	qcow2_punch(s, &hole, &hole_len, 0, 0);
	return 0;
}

/*
 * check -r leaks: counts past the end of the file that nothing references
 * are cleared.  A crash between a refcount update and the write that grows
 * the file leaves them; QEMU's check does not look there, so they became
 * leaks only once the file grew over them, long after the repair.  Cleared
 * without a line or a count, so the report stays qemu-img's.
 */
static int clear_past_end(struct qcow2 *s, const struct refs *r)
{
	uint64_t end = s->reftable_size << s->rb_bits, rc;
	int ret;

	for (uint64_t i = r->used; i < end; i++) {
		if (!refblock_present(s, i)) {
			i |= (1ULL << s->rb_bits) - 1;	/* no block: nothing counted there */
			continue;
		}
		if (qcow2_refs_get(r, i))
			continue;
		ret = qcow2_get_refcount(s, i, &rc);
		if (ret == 0 && rc)
			ret = qcow2_update_refcount(s, i, -(int64_t)rc);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One L2 table's data clusters: COPIED exactly where the refcount is 1. */
static int check_copied_l2(struct qcow2 *s, struct block_check_result *res, unsigned fix,
			   uint64_t l2_off, uint8_t *table, FILE *report)
{
	bool repair = fix & BLOCK_FIX_ERRORS;
	unsigned dirty = 0;
	uint64_t rc;
	int ret;

	if (bfile_pread(s->bd, l2_off, table, s->cluster_size) < 0) {
		say(report, "ERROR: Could not read L2 table: %s\n", strerror(EIO));
		res->check_errors++;
		return 0;
	}
	for (uint32_t j = 0; j < s->l2_size; j++) {
		uint64_t e = ld_be64(table + qcow2_l2_pos(s, j));
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (t != QCOW2_NORMAL && t != QCOW2_ZERO_ALLOC)
			continue;
		/* An external data file's clusters count as referenced once (QEMU). */
		if (qcow2_has_data_file(s))
			rc = 1;
		/* A refcount that cannot be read was reported already (QEMU too). */
		else if (qcow2_get_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc) < 0)
			continue;
		if ((rc == 1) == !!(e & QCOW_OFLAG_COPIED))
			continue;
		res->corruptions++;
		say(report, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64
			    "\n", repair ? "Repairing" : "ERROR", e, rc);
		if (repair) {
			e = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
			st_be64(table + qcow2_l2_pos(s, j), e);
			dirty++;
		}
	}
	if (!dirty)
		return 0;
	if (qcow2_on_metadata(s, l2_off, s->cluster_size, OL_ACTIVE_L2)) {
		say(report, "ERROR: Could not write L2 table; metadata overlap check failed: %s\n",
		    strerror(EIO));
		res->check_errors++;
		return 0;
	}
	qcow2_cache_discard(&s->l2_cache, l2_off);
	ret = qcow2_file_write(s, l2_off, table, s->cluster_size);
	if (ret < 0) {
		say(report, "ERROR: Could not write L2 table: %s\n", strerror(-ret));
		res->check_errors++;
		return 0;
	}
	res->corruptions -= dirty;
	res->corruptions_fixed += dirty;
	return 0;
}

/* QEMU's check_oflag_copied: COPIED exactly where the refcount is 1, active L1 only. */
static int check_copied(struct qcow2 *s, struct block_check_result *res, unsigned fix,
			FILE *report)
{
	uint8_t *table = block_alloc_buf(s->cluster_size);
	bool repair = fix & BLOCK_FIX_ERRORS;
	int ret = 0;

	if (!table)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->l1_size && ret == 0; i++) {
		uint64_t l1e = s->l1[i], off = l1e & L1E_OFFSET_MASK, rc;

		if (!off || qcow2_get_refcount(s, off >> s->cluster_bits, &rc) < 0)
			continue;
		if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
			res->corruptions++;
			say(report, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" PRIx64
				    " refcount=%" PRIu64 "\n", repair ? "Repairing" : "ERROR", i, l1e, rc);
			if (repair && qcow2_on_metadata(s, s->l1_offset + 8ULL * i, 8, OL_ACTIVE_L1)) {
				say(report, "ERROR: Could not write L1 table entry %u; metadata overlap "
					    "check failed\n", i);
				res->check_errors++;
			} else if (repair) {
				s->l1[i] = rc == 1 ? l1e | QCOW_OFLAG_COPIED : l1e & ~QCOW_OFLAG_COPIED;
				if (qcow2_write_l1_entry(s, i) < 0) {
					res->check_errors++;
				} else {
					res->corruptions--;
					res->corruptions_fixed++;
				}
			}
		}
		ret = check_copied_l2(s, res, fix, off, table, report);
	}
	free(table);
	return ret;
}

/*
 * The snapshot table as the lenient check-mode read left it (QEMU's
 * qcow2_check_read_snapshot_table): entries cut or dropped by a repair,
 * and version 3 entries without the 16 bytes of extra data they must have.
 */
static void check_snapshot_table(struct qcow2 *s, struct block_check_result *snap, unsigned fix,
				 FILE *report)
{
	bool repair = fix & BLOCK_FIX_ERRORS;

	/* In QEMU's order: as the entries were read, the overhanging ones last. */
	for (unsigned i = 0; i < s->nb_snaps; i++)
		if (s->snaps[i].extra_cut_from)
			say(report, "Discarding too much extra metadata in snapshot table entry %u "
				    "(%" PRIu32 " > %" PRIu32 ")\n", i, s->snaps[i].extra_cut_from,
			    s->snaps[i].extra_size);
	if (s->snap_reduced) {
		say(report, "Discarding %u overhanging snapshots (snapshot table is too big)\n",
		    s->snap_reduced);
		snap->corruptions_fixed += (int)s->snap_reduced;
	}
	snap->corruptions += (int)s->snap_extra_dropped;
	if (s->h.version < 3)
		return;
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		if (s->snaps[i].extra_size >= 16)
			continue;
		snap->corruptions++;
		say(report, "%s snapshot table entry %u is incomplete\n",
		    repair ? "Repairing" : "ERROR", i);
	}
}

/*
 * Tables the end of the file cut read as zeroes; the file extended over them
 * holds those zeroes for real, and what they reference is counted already.
 */
static int grow_file(struct qcow2 *s, struct refs *r, struct block_check_result *res)
{
	if (r->grow_to > s->file_size) {
		if (ftruncate(s->bd->fd, (off_t)r->grow_to) < 0)
			return -errno;
		s->file_size = r->grow_to;
	}
	res->corruptions -= r->cut_tables;
	res->corruptions_fixed += r->cut_tables;
	return 0;
}

/*
 * Broken persistent bitmaps: kestrel does not maintain bitmaps, so a repair
 * drops them as every kestrel writer does (qcow2 spec: a writer that does
 * not update the bitmaps clears the autoclear bit, which invalidates the
 * extension); their clusters are leaks then.  QEMU rewrites them instead.
 */
static int drop_bitmaps(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			unsigned fix, bool *rebuild, FILE *report)
{
	struct block_check_result again = { 0 };
	int ret;

	say(report, "Repairing persistent bitmaps: dropping them\n");
	s->h.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
	ret = qcow2_write_header(s);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return ret;
	res->corruptions -= r->bitmap_errors;
	res->corruptions_fixed += r->bitmap_errors;
	/* Count again without them, so that their clusters are leaks now. */
	free(r->n);
	*r = (struct refs){ 0 };
	*rebuild = false;
	return qcow2_count_refs(s, r, &again, qcow2_size_to_clusters(s, s->file_size), fix,
				rebuild, NULL);
}

/* Counts the references again and lets go of what nothing references (after a rewrite). */
static int release_leaks(struct qcow2 *s, uint64_t *highest, bool *broken)
{
	struct block_check_result again = { 0 };
	struct refs r = { 0 };
	int ret;

	*broken = false;
	ret = qcow2_count_refs(s, &r, &again, qcow2_size_to_clusters(s, s->file_size), 0, broken,
			       NULL);
	if (ret == 0)
		ret = compare_refs(s, &r, &again, BLOCK_FIX_LEAKS, broken, highest, NULL);
	free(r.n);
	return ret;
}

/*
 * The old table's clusters that nothing references now go back to the file
 * system, as QEMU's free of the old table discards them (discards of snapshot
 * tables are passed down by default); a file system without holes keeps them.
 */
static int discard_old_table(struct qcow2 *s, uint64_t off, uint64_t size)
{
	uint64_t end = off + size < s->file_size ? off + size : s->file_size, rc;
	int ret = 0;

	for (uint64_t c = off >> s->cluster_bits; size && (c << s->cluster_bits) < end; c++) {
		ret = qcow2_get_refcount(s, c, &rc);
		if (ret < 0)
			break;
		if (!rc)
			(void)fallocate(s->bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)(c << s->cluster_bits), (off_t)s->cluster_size);
	}
	return ret;
}

/* QEMU's qcow2_check_fix_snapshot_table: the table written anew with complete entries. */
static int fix_snapshot_table(struct qcow2 *s, struct block_check_result *snap, unsigned fix,
			      uint64_t *highest, FILE *report)
{
	uint64_t old = s->h.snapshots_offset, old_size = s->snap_table_size;
	bool broken;
	int ret;

	if (!(fix & BLOCK_FIX_ERRORS) || !(snap->corruptions || s->snap_reduced))
		return 0;
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		if (s->h.version >= 3 && s->snaps[i].extra_size < 16)
			s->snaps[i].extra_size = 16;	/* vm state size and disk size */
		s->snaps[i].extra_cut_from = 0;
	}
	ret = qcow2_snapshot_table_rewrite(s);
	if (ret == 0)
		ret = release_leaks(s, highest, &broken);
	if (ret == 0)
		ret = discard_old_table(s, old, old_size);
	/* What the old table covered has one reference less now: COPIED follows. */
	if (ret == 0)
		ret = check_copied(s, &(struct block_check_result){ 0 }, fix, NULL);
	if (ret < 0) {
		say(report, "ERROR failed to update snapshot table: %s\n", strerror(-ret));
		snap->check_errors++;
		return ret;
	}
	s->snap_reduced = s->snap_extra_dropped = 0;
	snap->corruptions_fixed += snap->corruptions;
	snap->corruptions = 0;
	return 0;
}

/* The refcount structure rebuilt from the counted references (QEMU's qcow2_check_refcounts). */
static int rebuild_and_recount(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			       uint64_t *highest, FILE *report)
{
	struct block_check_result again = { 0 };
	int before = res->corruptions, leaks = res->leaks;
	bool broken = false;
	int ret;

	ret = qcow2_check_rebuild(s, r, 0, report);
	if (ret < 0)
		return ret;
	free(s->check_refs);
	s->check_refs = NULL;
	s->check_refs_size = 0;
	/*
	 * The old structure is leaked now: count again, let those go, and keep
	 * as corruptions what a new refcount structure cannot fix (entries that
	 * point past the end of the file, reserved bits...).
	 */
	free(r->n);
	*r = (struct refs){ 0 };
	ret = qcow2_count_refs(s, r, &again, qcow2_size_to_clusters(s, s->file_size), 0, &broken,
			       report);
	/* QEMU prints these repairs of the old structure's clusters too. */
	if (ret == 0)
		ret = compare_refs(s, r, &again, BLOCK_FIX_LEAKS, &broken, highest, report);
	if (ret < 0)
		return ret;
	if (broken) {
		say(report, "ERROR rebuilt refcount structure is still broken\n");
		again.corruptions++;
	}
	res->corruptions = again.corruptions;
	if (before > again.corruptions)
		res->corruptions_fixed += before - again.corruptions;
	/* The first comparison only counted the leaks: the new structure has none of them. */
	res->leaks_fixed += leaks;
	res->leaks = 0;
	return 0;
}

static int check_locked(struct qcow2 *s, unsigned fix, struct block_check_result *res,
			FILE *report)
{
	uint64_t nb_clusters = qcow2_size_to_clusters(s, s->file_size), highest;
	struct block_check_result snap = { 0 }, pre;
	struct refs r = { 0 };
	bool rebuild_needed = false;
	int ret;

	if (!s->bd->read_only) {
		ret = qcow2_flush_metadata(s, false);
		if (ret < 0)
			return ret;
	}
	/* QEMU's check stops where it cannot read the snapshot table. */
	if (s->snap_errno) {
		say(report, "%s: ERROR %s\n", program_invocation_short_name, s->snap_err);
		res->check_errors++;
		return s->snap_errno;
	}
	s->checking = true;
	res->total_clusters = qcow2_size_to_clusters(s, s->h.size);
	check_snapshot_table(s, &snap, fix, report);
	ret = qcow2_count_refs(s, &r, res, nb_clusters, fix, &rebuild_needed, report);
	if (ret == 0 && r.cut_tables && (fix & BLOCK_FIX_ERRORS))
		ret = grow_file(s, &r, res);
	if (ret == 0 && r.bitmap_errors && (fix & BLOCK_FIX_ERRORS))
		ret = drop_bitmaps(s, &r, res, fix, &rebuild_needed, report);
	if (ret < 0)
		goto out;
	/* Repairs must not hand out clusters the image uses but forgot to count. */
	s->check_refs = calloc(r.size ? r.size : 1, 1);
	if (!s->check_refs) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < r.size; i++)
		s->check_refs[i] = r.n[i] != 0;
	s->check_refs_size = r.size;

	/*
	 * As QEMU's qcow2_check_refcounts: a first comparison only reports
	 * ("Leaked"/"ERROR" lines); the repair is a second one ("Repairing").
	 */
	pre = *res;
	ret = compare_refs(s, &r, res, 0, &rebuild_needed, &highest, report);
	if (ret < 0)
		goto out;
	/* Clusters in use but counted 0, or broken blocks: a new structure from the counts. */
	if (rebuild_needed && (fix & BLOCK_FIX_ERRORS)) {
		ret = rebuild_and_recount(s, &r, res, &highest, report);
		if (ret < 0)
			goto out;
	} else if (fix && rebuild_needed) {
		say(report, "ERROR need to rebuild refcount structures\n");
		res->check_errors++;
		ret = -EIO;
		goto out;
	} else if (fix && (res->leaks || res->corruptions)) {
		*res = pre;
		ret = compare_refs(s, &r, res, fix, &rebuild_needed, &highest, report);
		if (ret < 0)
			goto out;
	}
	if ((fix & BLOCK_FIX_LEAKS) && !rebuild_needed) {
		ret = clear_past_end(s, &r);
		if (ret < 0)
			goto out;
	}
	ret = check_copied(s, res, fix, report);
	if (ret == 0)
		ret = fix_snapshot_table(s, &snap, fix, &highest, report);
	res->corruptions += snap.corruptions;
	res->corruptions_fixed += snap.corruptions_fixed;
	res->check_errors += snap.check_errors;
	if (ret < 0)
		goto out;
	res->image_end_offset = (highest + 1) << s->cluster_bits;
	if (!s->bd->read_only) {
		ret = qcow2_flush_metadata(s, true);
		if (ret < 0)
			goto out;
	}
	/* Fixed and consistent: the image is clean (QEMU: mark clean and consistent). */
	if (fix && !s->bd->read_only && res->check_errors == 0 && res->corruptions == 0) {
		ret = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT, false);
		if (ret == 0)
			s->dirty_bit_set = false;
	}
out:
	free(r.n);
	free(s->check_refs);
	s->check_refs = NULL;
	s->check_refs_size = 0;
	s->checking = s->bd->flags & BLOCK_CHECK;
	return ret;
}

int qcow2_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		FILE *report)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	/* The counters only ever grow from here: every caller starts at zero (QEMU too). */
	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&s->lock);
	ret = check_locked(s, fix, res, report);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static void set_order(struct qcow2 *s, unsigned order)
{
	s->refcount_order = order;
	s->refcount_max = order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1;
	s->rb_bits = s->cluster_bits + 3 - order;
}

/* amend refcount_bits=N: a new refcount structure of the new width (QEMU rewrites it too). */
static int refs_set(struct refs *r, uint64_t c, uint64_t v)
{
	if (qcow2_refs_reserve(r, c) < 0)
		return -ENOMEM;
	r->n[c] = (uint32_t)v;
	if (c + 1 > r->used)
		r->used = c + 1;
	return 0;
}

/*
 * The refcounts as stored, cluster by cluster, into r (QEMU's
 * qcow2_change_refcount_order copies them, it does not recount): leaks stay
 * leaks and damage elsewhere is no reason to refuse.  The first one the new
 * width cannot hold is refused with QEMU's message.
 */
static int stored_refs(struct qcow2 *s, struct refs *r, uint64_t max, unsigned bits,
		       char *err, size_t errlen)
{
	uint64_t per_block = 1ULL << s->rb_bits;

	for (uint64_t ti = 0; ti < s->reftable_size; ti++) {
		uint64_t off = s->reftable[ti] & REFT_OFFSET_MASK;
		void *block;
		int ret;

		if (!off)
			continue;
		ret = qcow2_cache_get(s, &s->rc_cache, off, true, &block);
		if (ret < 0)
			return block_err(err, errlen, "Failed to load refblock: %s", strerror(-ret));
		for (uint64_t i = 0; i < per_block && ret == 0; i++) {
			uint64_t c = ti * per_block + i;
			uint64_t v = qcow2_rc_get_entry(block, s->refcount_order, i);
			if (!v)
				continue;
			if (v > max)
				ret = block_err(err, errlen, "Cannot decrease refcount entry width to %u "
						"bits: Cluster at offset %#" PRIx64 " has a refcount "
						"of %" PRIu64, bits, c << s->cluster_bits, v);
			else
				ret = refs_set(r, c, v);
		}
		qcow2_cache_put(&s->rc_cache, block);
		if (ret < 0)
			return ret == -1 ? -1 : block_err(err, errlen, "%s", strerror(-ret));
	}
	return 0;
}

/* The old structure's clusters, counted in the new one until they are freed. */
static int free_old_structure(struct qcow2 *s, const uint64_t *blocks, uint64_t nblocks,
			      uint64_t table, uint64_t table_clusters)
{
	int ret = 0;

	for (uint64_t i = 0; i < nblocks && ret == 0; i++)
		if (blocks[i])
			ret = qcow2_update_refcount(s, blocks[i] >> s->cluster_bits, -1);
	for (uint64_t i = 0; i < table_clusters && ret == 0; i++)
		ret = qcow2_update_refcount(s, (table >> s->cluster_bits) + i, -1);
	return ret;
}

int qcow2_change_refcount_order(struct qcow2 *s, unsigned order, char *err, size_t errlen)
{
	uint64_t max = order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1;
	uint64_t old_table = s->reftable_offset, old_clusters = s->h.refcount_table_clusters;
	uint64_t nblocks = s->reftable_size, *blocks = NULL, floor;
	unsigned old = s->refcount_order;
	struct refs r = { 0 };
	int ret;

	ret = qcow2_flush_metadata(s, true);
	if (ret < 0)
		return block_err(err, errlen, "%s", strerror(-ret));
	if (max > UINT32_MAX)
		max = UINT32_MAX;	/* what struct refs holds: wider counts are refused */
	ret = stored_refs(s, &r, max, 1u << order, err, errlen);
	if (ret == 0) {
		blocks = malloc((nblocks ? nblocks : 1) * sizeof(*blocks));
		if (!blocks)
			ret = block_err(err, errlen, "%s", strerror(ENOMEM));
	}
	if (ret < 0) {
		free(r.n);
		return -1;
	}
	for (uint64_t i = 0; i < nblocks; i++)
		blocks[i] = s->reftable[i] & REFT_OFFSET_MASK;
	/* The new structure goes past the clusters in use and the end of the file. */
	floor = qcow2_size_to_clusters(s, s->file_size);
	if (floor < r.used)
		floor = r.used;
	set_order(s, order);
	ret = qcow2_check_rebuild(s, &r, floor, NULL);
	if (ret < 0)
		set_order(s, old);
	if (ret == 0)
		ret = free_old_structure(s, blocks, nblocks, old_table, old_clusters);
	if (ret == 0)
		ret = qcow2_flush_metadata(s, true);
	if (ret == 0)
		ret = qcow2_trim_file(s);
	free(blocks);
	free(r.n);
	if (ret < 0)
		return block_err(err, errlen, "%s", strerror(-ret));
	return 0;
}
