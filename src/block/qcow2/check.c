/*
 * Consistency check and repair, as qemu-img check does it for qcow2: count
 * the references every metadata structure makes, compare with the stored
 * refcounts, check the COPIED flags, and optionally fix what differs.
 * Messages and their wording follow QEMU's qcow2-refcount.c.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct refs {
	uint32_t *n;
	uint64_t size;		/* capacity of n */
	uint64_t used;		/* clusters looked at: the file, or further if referenced */
	uint64_t limit;		/* refuse to count absurdly far past the file */
};

static void say(FILE *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *report, const char *fmt, ...)
{
	va_list ap;

	if (!report)
		return;
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
}

static int refs_inc(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		    uint64_t off, uint64_t size, FILE *report)
{
	uint64_t first, last;

	if (!size)
		return 0;
	first = off >> s->cluster_bits;
	last = (off + size - 1) >> s->cluster_bits;
	if (last >= r->limit) {
		say(report, "ERROR: cluster offset=%#" PRIx64 " is far past the end of the image\n",
		    off);
		res->corruptions++;
		return 0;
	}
	if (last >= r->size) {
		uint64_t nsize = last + 1 > r->size * 2 ? last + 1 : r->size * 2;
		uint32_t *n = realloc(r->n, nsize * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + r->size, 0, (nsize - r->size) * sizeof(*n));
		r->n = n;
		r->size = nsize;
	}
	if (last + 1 > r->used)
		r->used = last + 1;
	for (uint64_t c = first; c <= last; c++) {
		if ((uint64_t)r->n[c] + 1 > s->refcount_max || r->n[c] == UINT32_MAX) {
			say(report, "ERROR: overflow cluster offset=0x%" PRIx64 "\n",
			    c << s->cluster_bits);
			say(report, "Use qemu-img amend to increase the refcount entry width or "
				    "qemu-img convert to create a clean copy if the image cannot be "
				    "opened for writing\n");
			res->corruptions++;
			continue;
		}
		r->n[c]++;
	}
	return 0;
}

static uint64_t refs_get(const struct refs *r, uint64_t c)
{
	return c < r->size ? r->n[c] : 0;
}

/* QEMU's check_refcounts_l2. */
static int check_l2(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		    uint64_t l2_off, bool active, FILE *report)
{
	uint8_t *table = block_alloc_buf(s->cluster_size);
	uint64_t contig = 0, *next_contig = &contig;	/* per table, as QEMU counts */
	int ret;

	if (!table)
		return -ENOMEM;
	ret = bfile_pread(s->bd, l2_off, table, s->cluster_size);
	if (ret < 0) {
		say(report, "ERROR: I/O error in check_refcounts_l2\n");
		res->check_errors++;
		free(table);
		return 0;
	}
	for (uint32_t i = 0; i < s->l2_size && ret == 0; i++) {
		uint64_t e = be64(table + 8 * i), off;
		switch (qcow2_entry_type(s, e)) {
		case QCOW2_COMPRESSED: {
			uint64_t coff = e & s->cluster_offset_mask;
			uint64_t sectors = ((e >> s->csize_shift) & s->csize_mask) + 1;
			if (e & QCOW_OFLAG_COPIED) {
				say(report, "ERROR: coffset=0x%" PRIx64 ": Compressed cluster has "
					    "QCOW_OFLAG_COPIED flag set\n", coff);
				res->corruptions++;
			}
			ret = refs_inc(s, r, res, coff & ~511ULL, sectors * 512, report);
			if (active) {
				res->allocated_clusters++;
				res->compressed_clusters++;
				/* Compressed clusters are fragmented by nature (QEMU). */
				res->fragmented_clusters++;
			}
			break;
		}
		case QCOW2_NORMAL:
		case QCOW2_ZERO_ALLOC:
			off = e & L2E_OFFSET_MASK;
			if (active) {
				res->allocated_clusters++;
				if (*next_contig && off != *next_contig)
					res->fragmented_clusters++;
				*next_contig = off + s->cluster_size;
			}
			if (qcow2_in_cluster(s, off)) {
				/* QEMU reports it and still counts the (unaligned) range. */
				res->corruptions++;
				if (qcow2_entry_type(s, e) == QCOW2_ZERO_ALLOC)
					say(report, "ERROR offset=%" PRIx64 ": Preallocated cluster is not "
						    "properly aligned; L2 entry corrupted.\n", off);
				else
					say(report, "ERROR offset=%" PRIx64 ": Data cluster is not properly "
						    "aligned; L2 entry corrupted.\n", off);
			}
			ret = refs_inc(s, r, res, off, s->cluster_size, report);
			break;
		default:
			break;
		}
	}
	free(table);
	return ret;
}

/* QEMU's check_refcounts_l1. */
static int check_l1(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		    uint64_t l1_off, uint32_t l1_size, bool active, FILE *report)
{
	uint64_t bytes = (uint64_t)l1_size * 8;
	uint8_t *l1;
	int ret;

	ret = refs_inc(s, r, res, l1_off, bytes, report);
	if (ret < 0 || !l1_size)
		return ret;
	l1 = malloc((size_t)bytes);
	if (!l1)
		return -ENOMEM;
	ret = bfile_pread(s->bd, l1_off, l1, (size_t)bytes);
	if (ret < 0) {
		say(report, "ERROR: I/O error in check_refcounts_l1\n");
		res->check_errors++;
		free(l1);
		return 0;
	}
	for (uint32_t i = 0; i < l1_size && ret == 0; i++) {
		uint64_t off = be64(l1 + 8 * i) & L1E_OFFSET_MASK;
		if (!off)
			continue;
		ret = refs_inc(s, r, res, off, s->cluster_size, report);
		if (ret < 0)
			break;
		if (qcow2_in_cluster(s, off)) {
			say(report, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 "
				    "entry corrupted\n", off);
			res->corruptions++;
			continue;
		}
		ret = check_l2(s, r, res, off, active, report);
	}
	free(l1);
	return ret;
}

/* QEMU's check_refblocks: the refcount table and each block it names. */
static int check_refblocks(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			   uint64_t nb_clusters, bool *rebuild, FILE *report)
{
	int ret;

	for (uint64_t i = 0; i < s->reftable_size; i++) {
		uint64_t e = s->reftable[i], off = e & REFT_OFFSET_MASK, c = off >> s->cluster_bits;
		if (e & ~REFT_OFFSET_MASK) {
			say(report, "ERROR refcount table entry %" PRIu64 " has reserved bits set\n", i);
			res->corruptions++;
			*rebuild = true;
			continue;
		}
		if (qcow2_in_cluster(s, off)) {
			say(report, "ERROR refcount block %" PRIu64 " is not cluster aligned; refcount "
				    "table entry corrupted\n", i);
			res->corruptions++;
			*rebuild = true;
			continue;
		}
		if (!off)
			continue;
		if (c >= nb_clusters) {
			say(report, "ERROR refcount block %" PRIu64 " is outside image\n", i);
			res->corruptions++;
			*rebuild = true;
			continue;
		}
		ret = refs_inc(s, r, res, off, s->cluster_size, report);
		if (ret < 0)
			return ret;
		if (refs_get(r, c) != 1) {
			say(report, "ERROR refcount block %" PRIu64 " refcount=%" PRIu64 "\n", i,
			    refs_get(r, c));
			res->corruptions++;
			*rebuild = true;
		}
	}
	return 0;
}

/*
 * Persistent dirty bitmaps (qcow2 spec: "Bitmaps extension"): the directory,
 * each bitmap table and its data clusters are in use, but only while the
 * autoclear bit says the extension is valid (QEMU's qcow2_check_bitmaps_refcounts).
 */
static int check_bitmaps(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			 FILE *report)
{
	uint64_t dir_size, dir_off;
	uint32_t nb, seen = 0;
	uint8_t *dir;
	int ret;

	if (!qcow2_bitmap_dir(s, &dir_off, &dir_size, &nb) || qcow2_in_cluster(s, dir_off))
		return 0;
	ret = refs_inc(s, r, res, dir_off, dir_size, report);
	dir = malloc((size_t)dir_size);
	if (ret < 0 || !dir || bfile_pread(s->bd, dir_off, dir, (size_t)dir_size) < 0) {
		free(dir);
		return ret < 0 ? ret : 0;
	}
	for (uint64_t p = 0; p + 24 <= dir_size && ret == 0 && seen++ < nb;) {
		uint64_t table = be64(dir + p);
		uint32_t entries = be32(dir + p + 8), extra = be32(dir + p + 20);
		uint16_t name = be16(dir + p + 18);
		uint8_t *t;

		/* A bitmap table is read only where it lies inside the file. */
		if (!qcow2_in_cluster(s, table) && entries && entries <= (1u << 20) &&
		    table <= s->file_size && (uint64_t)entries * 8 <= s->file_size - table) {
			ret = refs_inc(s, r, res, table, (uint64_t)entries * 8, report);
			t = malloc((size_t)entries * 8);
			if (ret == 0 && t && bfile_pread(s->bd, table, t, (size_t)entries * 8) == 0) {
				for (uint32_t i = 0; i < entries && ret == 0; i++) {
					uint64_t off = be64(t + 8 * i) & L2E_OFFSET_MASK;
					if (off && !qcow2_in_cluster(s, off))
						ret = refs_inc(s, r, res, off, s->cluster_size, report);
				}
			}
			free(t);
		}
		p += (24 + (uint64_t)extra + name + 7) & ~7ULL;
	}
	free(dir);
	return ret;
}

static int calculate_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			  uint64_t nb_clusters, bool *rebuild, FILE *report)
{
	int ret;

	r->size = nb_clusters ? nb_clusters : 1;
	r->used = nb_clusters;
	r->limit = nb_clusters + (1ULL << 20);	/* references far past the file are reported, not counted */
	r->n = calloc(r->size, sizeof(*r->n));
	if (!r->n)
		return -ENOMEM;
	ret = refs_inc(s, r, res, 0, s->cluster_size, report);
	if (ret == 0)
		ret = check_l1(s, r, res, s->l1_offset, s->l1_size, true, report);
	for (unsigned i = 0; i < s->nb_snaps && ret == 0; i++)
		ret = check_l1(s, r, res, s->snaps[i].l1_table_offset, s->snaps[i].l1_size, false,
			       report);
	if (ret == 0)
		ret = refs_inc(s, r, res, s->h.snapshots_offset, s->snap_table_size, report);
	if (ret == 0)
		ret = refs_inc(s, r, res, s->reftable_offset, s->reftable_size * 8, report);
	if (ret == 0)
		ret = check_bitmaps(s, r, res, report);
	if (ret == 0)
		ret = check_refblocks(s, r, res, nb_clusters, rebuild, report);
	return ret;
}

static bool refblock_present(const struct qcow2 *s, uint64_t cluster)
{
	uint64_t ti = cluster >> s->rb_bits;

	return ti < s->reftable_size && (s->reftable[ti] & REFT_OFFSET_MASK);
}

/* QEMU's compare_refcounts. */
static int compare_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			unsigned fix, bool *rebuild, uint64_t *highest, FILE *report)
{
	/*
	 * Only clusters inside the file (or referenced), as QEMU looks at them;
	 * a repair also clears counts past the end of the file, which a crash
	 * can leave behind and which would turn into leaks once the file grows.
	 */
	uint64_t n = r->used;

	if (fix & BLOCK_FIX_LEAKS)
		n = s->reftable_size << s->rb_bits;

	*highest = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t rc, ref = refs_get(r, i);
		int ret;
		bool fixable;

		if (i >= r->used && !refblock_present(s, i)) {
			/* Nothing counted there and no block: skip the whole block. */
			i |= (1ULL << s->rb_bits) - 1;
			continue;
		}
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
				if (rc > ref)
					res->leaks_fixed++;
				else
					res->corruptions_fixed++;
				continue;
			}
		}
		if (rc < ref)
			res->corruptions++;
		else
			res->leaks++;
	}
	return 0;
}

/* QEMU's check_oflag_copied: COPIED exactly where the refcount is 1, active L1 only. */
static int check_copied(struct qcow2 *s, struct block_check_result *res, unsigned fix,
			FILE *report)
{
	uint8_t *table = block_alloc_buf(s->cluster_size);
	int ret = 0;

	if (!table)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l1e = s->l1[i], off = l1e & L1E_OFFSET_MASK, rc;
		bool dirty = false;

		if (!off || qcow2_in_cluster(s, off))
			continue;
		ret = qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
		if (ret < 0) {
			res->check_errors++;
			ret = 0;
			continue;
		}
		if ((rc == 1) != !!(l1e & QCOW_OFLAG_COPIED)) {
			bool repair = fix & BLOCK_FIX_ERRORS;
			say(report, "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%" PRIx64
				    " refcount=%" PRIu64 "\n", repair ? "Repairing" : "ERROR", i, l1e, rc);
			if (repair) {
				s->l1[i] = off | (rc == 1 ? QCOW_OFLAG_COPIED : 0);
				ret = qcow2_write_l1_entry(s, i);
				if (ret < 0) {
					res->check_errors++;
					ret = 0;
				} else {
					res->corruptions_fixed++;
				}
			} else {
				res->corruptions++;
			}
		}
		if (bfile_pread(s->bd, off, table, s->cluster_size) < 0) {
			say(report, "ERROR: Could not read L2 table: %s\n", strerror(EIO));
			res->check_errors++;
			continue;
		}
		for (uint32_t j = 0; j < s->l2_size; j++) {
			uint64_t e = be64(table + 8 * j);
			enum qcow2_type t = qcow2_entry_type(s, e);
			if (t != QCOW2_NORMAL && t != QCOW2_ZERO_ALLOC)
				continue;
			if (qcow2_in_cluster(s, e & L2E_OFFSET_MASK))
				continue;
			ret = qcow2_get_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc);
			if (ret < 0) {
				res->check_errors++;
				ret = 0;
				continue;
			}
			if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
				bool repair = fix & BLOCK_FIX_ERRORS;
				say(report, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
					    " refcount=%" PRIu64 "\n", repair ? "Repairing" : "ERROR", e, rc);
				if (repair) {
					e = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
					put_be64(table + 8 * j, e);
					dirty = true;
					res->corruptions_fixed++;
				} else {
					res->corruptions++;
				}
			}
		}
		if (dirty) {
			qcow2_cache_discard(&s->l2_cache, off);
			ret = qcow2_file_write(s, off, table, s->cluster_size);
			if (ret < 0) {
				res->check_errors++;
				ret = 0;
			}
		}
	}
	free(table);
	return ret;
}

/*
 * A new refcount table and blocks after everything the image references,
 * filled from the counted references (QEMU's rebuild_refcount_structure).
 */
static int rebuild(struct qcow2 *s, struct refs *r, FILE *report)
{
	uint64_t per_cluster = s->cluster_size / 8, per_block = 1ULL << s->rb_bits;
	uint64_t start = r->size, nblocks = 0, tcl = 0, end, entries;
	uint64_t fsize = qcow2_size_to_clusters(s, s->file_size);
	uint8_t *blocks = NULL, *table = NULL;
	int ret;

	if (fsize > start)
		start = fsize;
	/* The new area holds the table then the blocks; it must describe itself. */
	for (;;) {
		end = start + tcl + nblocks;
		uint64_t need_blocks = (end + per_block - 1) / per_block;
		uint64_t need_tcl = (need_blocks + per_cluster - 1) / per_cluster;
		if (need_blocks == nblocks && need_tcl == tcl)
			break;
		nblocks = need_blocks;
		tcl = need_tcl;
	}
	entries = tcl * per_cluster;
	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES)
		return -EFBIG;
	blocks = block_alloc_buf((size_t)(nblocks * s->cluster_size));
	table = block_alloc_buf((size_t)(tcl * s->cluster_size));
	if (!blocks || !table) {
		ret = -ENOMEM;
		goto out;
	}
	memset(blocks, 0, (size_t)(nblocks * s->cluster_size));
	memset(table, 0, (size_t)(tcl * s->cluster_size));
	for (uint64_t c = 0; c < end; c++) {
		uint64_t v = c >= start ? 1 : refs_get(r, c);
		if (v > s->refcount_max)
			v = s->refcount_max;
		qcow2_rc_set_entry(blocks + (c / per_block) * s->cluster_size, s->refcount_order,
				   c % per_block, v);
	}
	for (uint64_t b = 0; b < nblocks; b++)
		put_be64(table + 8 * b, (start + tcl + b) << s->cluster_bits);
	say(report, "Rebuilding refcount structure\n");
	ret = qcow2_file_write(s, (start + tcl) << s->cluster_bits, blocks,
			       (size_t)(nblocks * s->cluster_size));
	if (ret == 0)
		ret = qcow2_file_write(s, start << s->cluster_bits, table,
				       (size_t)(tcl * s->cluster_size));
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0)
		goto out;
	{
		uint64_t *nt = calloc(entries, sizeof(*nt));
		if (!nt) {
			ret = -ENOMEM;
			goto out;
		}
		for (uint64_t b = 0; b < nblocks; b++)
			nt[b] = (start + tcl + b) << s->cluster_bits;
		qcow2_cache_clear(&s->rc_cache);
		free(s->reftable);
		s->reftable = nt;
	}
	s->reftable_size = entries;
	s->reftable_offset = start << s->cluster_bits;
	s->h.refcount_table_offset = s->reftable_offset;
	s->h.refcount_table_clusters = (uint32_t)tcl;
	s->alloc_end = end << s->cluster_bits;
	s->free_cluster_index = 1;
	/* One write of the header switches to the new structure (and its width). */
	ret = qcow2_write_header(s);
	if (ret == 0)
		ret = bfile_flush(s->bd);
out:
	free(blocks);
	free(table);
	return ret;
}

static int check_locked(struct qcow2 *s, unsigned fix, struct block_check_result *res,
			FILE *report)
{
	uint64_t nb_clusters = qcow2_size_to_clusters(s, s->file_size), highest;
	struct refs r = { 0 };
	bool rebuild_needed = false;
	int ret;

	if (!s->bd->read_only) {
		ret = qcow2_flush_metadata(s, false);
		if (ret < 0)
			return ret;
	}
	s->checking = true;
	res->total_clusters = qcow2_size_to_clusters(s, s->h.size);
	ret = calculate_refs(s, &r, res, nb_clusters, &rebuild_needed, report);
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

	ret = compare_refs(s, &r, res, fix, &rebuild_needed, &highest, report);
	if (ret < 0)
		goto out;
	if (rebuild_needed && (fix & BLOCK_FIX_ERRORS)) {
		/* Clusters in use but counted 0, or broken blocks: a new structure from the counts. */
		struct block_check_result again = { 0 };
		ret = rebuild(s, &r, report);
		if (ret < 0)
			goto out;
		res->corruptions_fixed += res->corruptions;
		res->corruptions = 0;
		res->leaks = 0;
		/* The old structure is leaked now: count again and let those go. */
		free(r.n);
		r.n = NULL;
		rebuild_needed = false;
		nb_clusters = qcow2_size_to_clusters(s, s->file_size);
		free(s->check_refs);
		s->check_refs = NULL;
		ret = calculate_refs(s, &r, &again, nb_clusters, &rebuild_needed, NULL);
		if (ret == 0)
			ret = compare_refs(s, &r, &again, BLOCK_FIX_LEAKS, &rebuild_needed, &highest,
					   NULL);
		if (ret < 0)
			goto out;
		if (rebuild_needed) {
			say(report, "ERROR rebuilt refcount structure is still broken\n");
			res->corruptions++;
		}
	}
	ret = check_copied(s, res, fix, report);
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
int qcow2_change_refcount_order(struct qcow2 *s, unsigned order)
{
	struct block_check_result res = { 0 };
	unsigned old = s->refcount_order;
	struct refs r = { 0 };
	bool rebuild_needed = false;
	uint64_t highest;
	int ret;

	ret = qcow2_flush_metadata(s, true);
	if (ret < 0)
		return ret;
	s->checking = true;
	ret = calculate_refs(s, &r, &res, qcow2_size_to_clusters(s, s->file_size), &rebuild_needed,
			     NULL);
	if (ret == 0 && (res.corruptions || rebuild_needed))
		ret = -EIO;	/* repair first: qemu-img check -r all */
	if (ret == 0) {
		uint64_t max = order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1;
		for (uint64_t i = 0; i < r.size; i++)
			if (r.n[i] > max)
				ret = -ERANGE;
	}
	if (ret == 0) {
		set_order(s, order);
		ret = rebuild(s, &r, NULL);
		if (ret < 0)
			set_order(s, old);
	}
	if (ret == 0) {
		/* The old structure is unreferenced now: count again and free it. */
		free(r.n);
		r.n = NULL;
		memset(&res, 0, sizeof(res));
		ret = calculate_refs(s, &r, &res, qcow2_size_to_clusters(s, s->file_size),
				     &rebuild_needed, NULL);
		if (ret == 0)
			ret = compare_refs(s, &r, &res, BLOCK_FIX_LEAKS, &rebuild_needed, &highest,
					   NULL);
		if (ret == 0)
			ret = qcow2_flush_metadata(s, true);
		if (ret == 0)
			ret = qcow2_trim_file(s);
	}
	free(r.n);
	s->checking = s->bd->flags & BLOCK_CHECK;
	return ret;
}
