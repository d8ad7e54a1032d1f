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
#include <unistd.h>

struct refs {
	uint32_t *n;
	uint64_t size;		/* capacity of n */
	uint64_t used;		/* clusters looked at: the file, or further if referenced */
	uint64_t grow_to;	/* repair: file length that holds every table whole */
	int cut_tables;		/* tables the end of the file cuts (counted as corruptions) */
	int bitmap_errors;	/* corruptions found in the persistent bitmaps */
};

/* Reserved bits of table entries (qcow2 spec: "L1 table entry", "Standard Cluster Descriptor"). */
#define L1E_RESERVED_MASK	0x7f000000000001ffULL
#define L2E_STD_RESERVED_MASK	0x3f000000000001feULL

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

/*
 * The last cluster may be partly written, so a reference up to one cluster
 * past the end of the file is fine; further is a reference to nothing, a
 * truncated image (QEMU's qcow2_inc_refcounts_imrt).
 */
static bool past_eof(const struct qcow2 *s, uint64_t off, uint64_t size)
{
	if (off > UINT64_MAX - size)
		return true;
	return off + size > s->file_size && off + size - s->file_size >= s->cluster_size;
}

/*
 * A metadata table that the end of the file cuts (within the cluster QEMU
 * tolerates, so refs_inc counts it) reads as zeroes there: a truncated
 * image, although QEMU calls it clean.  A repair extends the file over it.
 */
static void table_in_file(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			  const char *what, uint64_t off, uint64_t len, unsigned fix, FILE *report)
{
	if (!len || off + len <= s->file_size || past_eof(s, off, len))
		return;
	say(report, "%s %s at offset %#" PRIx64 " is cut by the end of the file\n",
	    fix & BLOCK_FIX_ERRORS ? "Repairing" : "ERROR", what, off);
	res->corruptions++;
	r->cut_tables++;
	if (qcow2_align(s, off + len) > r->grow_to)
		r->grow_to = qcow2_align(s, off + len);
}

static int refs_inc(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		    uint64_t off, uint64_t size, FILE *report)
{
	uint64_t first, last;

	if (!size)
		return 0;
	if (past_eof(s, off, size)) {
		say(report, "ERROR: counting reference for region exceeding the end of the file by "
			    "one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "\n", off, size);
		res->corruptions++;
		return 0;
	}
	first = off >> s->cluster_bits;
	last = (off + size - 1) >> s->cluster_bits;
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

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/*
 * Before a repair writes into an L2 table or the L1 table: the clusters must
 * not hold other metadata, or the repair itself would corrupt it.  QEMU's
 * default overlap check ("cached": header, active L1, refcount table and
 * blocks, snapshot table, inactive L1 tables, bitmap directory); the
 * structure being written is left out (QEMU's ign).
 */
enum { OL_ACTIVE_L1 = 1, OL_ACTIVE_L2 = 2 };

static bool on_metadata(const struct qcow2 *s, uint64_t off, uint64_t len, unsigned ign)
{
	uint64_t dir_off, dir_size;
	uint32_t nb;

	off &= ~(uint64_t)(s->cluster_size - 1);
	len = qcow2_align(s, len);
	if (off < s->cluster_size)
		return true;
	if (!(ign & OL_ACTIVE_L1) && ranges_overlap(off, len, s->l1_offset, (uint64_t)s->l1_size * 8))
		return true;
	if (ranges_overlap(off, len, s->reftable_offset, s->reftable_size * 8) ||
	    ranges_overlap(off, len, s->h.snapshots_offset, s->snap_table_size))
		return true;
	for (uint64_t i = 0; i < s->reftable_size; i++)
		if (ranges_overlap(off, len, s->reftable[i] & REFT_OFFSET_MASK, s->cluster_size))
			return true;
	/* Snapshot L1 tables check rejects (unaligned, too large) are no tables to protect. */
	for (unsigned i = 0; i < s->nb_snaps; i++)
		if (!qcow2_in_cluster(s, s->snaps[i].l1_table_offset) &&
		    s->snaps[i].l1_size <= QCOW2_MAX_L1_BYTES / 8 &&
		    ranges_overlap(off, len, s->snaps[i].l1_table_offset,
				   (uint64_t)s->snaps[i].l1_size * 8))
			return true;
	return qcow2_bitmap_dir(s, &dir_off, &dir_size, &nb) &&
	       ranges_overlap(off, len, dir_off, dir_size);
}

/*
 * QEMU's fix_l2_entry_by_zero: a preallocated zero cluster at an unaligned
 * offset becomes a plain zero cluster; the guest reads zeroes either way.
 */
static int zero_l2_entry(struct qcow2 *s, struct block_check_result *res, uint64_t l2_off,
			 uint8_t *table, uint32_t i, FILE *report)
{
	uint64_t at = l2_off + 8ULL * i;
	int ret;

	put_be64(table + 8 * i, QCOW_OFLAG_ZERO);
	if (on_metadata(s, at, 8, OL_ACTIVE_L2)) {
		say(report, "ERROR: Overlap check failed\n");
		res->check_errors++;
		return -EIO;
	}
	qcow2_cache_discard(&s->l2_cache, l2_off);
	ret = qcow2_file_write(s, at, table + 8 * i, 8);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0) {
		say(report, "ERROR: Failed to overwrite L2 table entry: %s\n", strerror(-ret));
		res->check_errors++;
		return ret;
	}
	res->corruptions--;
	res->corruptions_fixed++;
	return 0;
}

/* A data (or preallocated) cluster descriptor; returns 1 when it was repaired away. */
static bool check_l2_std(struct qcow2 *s, struct block_check_result *res, uint64_t l2_off,
			 uint8_t *table, uint32_t i, unsigned fix, FILE *report)
{
	uint64_t e = be64(table + 8 * i), off = e & L2E_OFFSET_MASK;

	if (!qcow2_in_cluster(s, off))
		return false;
	res->corruptions++;
	if (qcow2_entry_type(s, e) != QCOW2_ZERO_ALLOC) {
		say(report, "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; L2 "
			    "entry corrupted.\n", off);
		return false;
	}
	say(report, "%s offset=%" PRIx64 ": Preallocated cluster is not properly aligned; L2 entry "
		    "corrupted.\n", fix & BLOCK_FIX_ERRORS ? "Repairing" : "ERROR", off);
	if (!(fix & BLOCK_FIX_ERRORS))
		return false;
	return zero_l2_entry(s, res, l2_off, table, i, report) == 0;
}

/* QEMU's check_refcounts_l2. */
static int check_l2(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		    uint64_t l2_off, bool active, unsigned fix, FILE *report)
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
		enum qcow2_type type = qcow2_entry_type(s, e);

		if (type != QCOW2_COMPRESSED && (e & L2E_STD_RESERVED_MASK)) {
			say(report, "ERROR found l2 entry with reserved bits set: %" PRIx64 "\n", e);
			res->corruptions++;
		}
		switch (type) {
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
			/* Repaired into a zero cluster, it references nothing now. */
			if (check_l2_std(s, res, l2_off, table, i, fix, report))
				break;
			if (active) {
				res->allocated_clusters++;
				if (*next_contig && off != *next_contig)
					res->fragmented_clusters++;
				*next_contig = off + s->cluster_size;
			}
			/* QEMU reports it and still counts the (unaligned) range. */
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
		    uint64_t l1_off, uint32_t l1_size, bool active, unsigned fix, FILE *report)
{
	uint64_t bytes = (uint64_t)l1_size * 8;
	uint8_t *l1;
	int ret;

	if (!l1_size)
		return 0;
	ret = refs_inc(s, r, res, l1_off, bytes, report);
	if (ret < 0)
		return ret;
	table_in_file(s, r, res, "L1 table", l1_off, bytes, fix, report);
	/* Zeroed pages, and only the part inside the file read: the rest reads as zeroes. */
	l1 = calloc(1, (size_t)bytes);
	if (!l1)
		return -ENOMEM;
	if (l1_off < s->file_size)
		ret = bfile_pread(s->bd, l1_off, l1, (size_t)(bytes < s->file_size - l1_off ?
							       bytes : s->file_size - l1_off));
	if (ret < 0) {
		say(report, "ERROR: I/O error in check_refcounts_l1\n");
		res->check_errors++;
		free(l1);
		return 0;
	}
	for (uint32_t i = 0; i < l1_size && ret == 0; i++) {
		uint64_t e = be64(l1 + 8 * i), off = e & L1E_OFFSET_MASK;

		if (!e)
			continue;
		if (e & L1E_RESERVED_MASK) {
			say(report, "ERROR found L1 entry with reserved bits set: %" PRIx64 "\n", e);
			res->corruptions++;
		}
		ret = refs_inc(s, r, res, off, s->cluster_size, report);
		if (ret < 0)
			break;
		table_in_file(s, r, res, "L2 table", off, s->cluster_size, fix, report);
		if (qcow2_in_cluster(s, off)) {
			say(report, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 "
				    "entry corrupted\n", off);
			res->corruptions++;
		}
		/* Even an unaligned table is read and its entries counted, as QEMU does. */
		ret = check_l2(s, r, res, off, active, fix, report);
	}
	free(l1);
	return ret;
}

/* QEMU's check_refblocks: the refcount table and each block it names. */
static int check_refblocks(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			   uint64_t nb_clusters, unsigned fix, bool *rebuild, FILE *report)
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
		table_in_file(s, r, res, "refcount block", off, s->cluster_size, fix, report);
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
 * One bitmap directory entry against QEMU's constraints (qcow2 spec:
 * "Bitmap directory"; QEMU's check_dir_entry): NULL when valid, else why.
 */
static const char *bad_bitmap_entry(const struct qcow2 *s, const uint8_t *e, uint64_t room)
{
	uint64_t table = be64(e), entries = be32(e + 8), bytes;
	uint32_t flags = be32(e + 12), extra = be32(e + 20);
	uint8_t type = e[16], gran = e[17];
	uint16_t name = be16(e + 18);

	if (((24 + (uint64_t)name + extra + 7) & ~7ULL) > room)
		return "entry runs past the directory";
	if (extra)
		return "extra data is not supported";
	if (!entries || !table || qcow2_in_cluster(s, table) || entries > 0x8000000 ||
	    gran > 31 || gran < 9 || (flags & 0xfffffffc) || name > 1023 || type != 1)
		return "entry does not satisfy the constraints";
	bytes = entries * s->cluster_size;
	if (bytes > 0x20000000)
		return "bitmap table too large";
	/* A valid bitmap (not in use) must cover the whole disk. */
	if (!(flags & 1) && s->h.size > ((bytes * 8) << gran))
		return "bitmap table too small for the disk";
	return NULL;
}

/*
 * Persistent dirty bitmaps (qcow2 spec: "Bitmaps extension"): the directory,
 * each bitmap table and its data clusters are in use, but only while the
 * autoclear bit says the extension is valid (QEMU's qcow2_check_bitmaps_refcounts).
 */
static int check_bitmaps(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			 FILE *report)
{
	uint64_t dir_size, dir_off, p;
	uint32_t nb, seen = 0;
	const char *why = NULL;
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
	for (p = 0; ret == 0 && p < dir_size && !why; seen++) {
		uint64_t table;
		uint32_t entries;
		uint8_t *t;

		if (dir_size - p < 24 || seen == nb) {
			why = seen == nb ? "more bitmaps than the extension says" : "broken directory";
			break;
		}
		why = bad_bitmap_entry(s, dir + p, dir_size - p);
		if (why)
			break;
		table = be64(dir + p);
		entries = be32(dir + p + 8);
		/* A bitmap table is counted where it says, read only where it lies in the file. */
		ret = refs_inc(s, r, res, table, (uint64_t)entries * 8, report);
		t = malloc((size_t)entries * 8);
		if (ret == 0 && t && table <= s->file_size &&
		    (uint64_t)entries * 8 <= s->file_size - table &&
		    bfile_pread(s->bd, table, t, (size_t)entries * 8) == 0) {
			for (uint32_t i = 0; i < entries && ret == 0; i++) {
				uint64_t e = be64(t + 8 * i), off = e & L2E_OFFSET_MASK;
				/* QEMU's check_table_entry: reserved bits, alignment, "all ones". */
				if ((e & ~(L2E_OFFSET_MASK | 1)) || qcow2_in_cluster(s, off) ||
				    (off && (e & 1))) {
					say(report, "ERROR bitmap table entry %u is invalid: %" PRIx64 "\n",
					    i, e);
					res->corruptions++;
					continue;
				}
				if (off)
					ret = refs_inc(s, r, res, off, s->cluster_size, report);
			}
		}
		free(t);
		p += (24 + (uint64_t)be16(dir + p + 18) + 7) & ~7ULL;
	}
	if (!why && ret == 0 && seen < nb)
		why = "fewer bitmaps than the extension says";
	if (why) {
		say(report, "ERROR bitmap directory at %#" PRIx64 ": %s\n", dir_off, why);
		res->corruptions++;
	}
	free(dir);
	return ret;
}

/* The snapshots' L1 tables, where their table entries are sane (QEMU's calculate_refcounts). */
static int check_snapshot_l1s(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			      unsigned fix, FILE *report)
{
	int ret = 0;

	for (unsigned i = 0; i < s->nb_snaps && ret == 0; i++) {
		const struct qcow2_snapshot *sn = &s->snaps[i];

		if (qcow2_in_cluster(s, sn->l1_table_offset)) {
			say(report, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not "
				    "cluster aligned; snapshot table entry corrupted\n", sn->id, sn->name,
			    sn->l1_table_offset);
			res->corruptions++;
			continue;
		}
		if (sn->l1_size > QCOW2_MAX_L1_BYTES / 8) {
			say(report, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too "
				    "large; snapshot table entry corrupted\n", sn->id, sn->name,
			    sn->l1_size);
			res->corruptions++;
			continue;
		}
		ret = check_l1(s, r, res, sn->l1_table_offset, sn->l1_size, false, fix, report);
	}
	return ret;
}

static int calculate_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
			  uint64_t nb_clusters, unsigned fix, bool *rebuild, FILE *report)
{
	int ret;

	r->size = nb_clusters ? nb_clusters : 1;
	r->used = nb_clusters;
	r->n = calloc(r->size, sizeof(*r->n));
	if (!r->n)
		return -ENOMEM;
	ret = refs_inc(s, r, res, 0, s->cluster_size, report);
	if (ret == 0)
		ret = check_l1(s, r, res, s->l1_offset, s->l1_size, true, fix, report);
	if (ret == 0)
		ret = check_snapshot_l1s(s, r, res, fix, report);
	if (ret == 0)
		ret = refs_inc(s, r, res, s->h.snapshots_offset, s->snap_table_size, report);
	table_in_file(s, r, res, "snapshot table", s->h.snapshots_offset, s->snap_table_size, fix,
		      report);
	if (ret == 0)
		ret = refs_inc(s, r, res, s->reftable_offset, s->reftable_size * 8, report);
	table_in_file(s, r, res, "refcount table", s->reftable_offset, s->reftable_size * 8, fix,
		      report);
	if (ret == 0) {
		int before = res->corruptions;
		ret = check_bitmaps(s, r, res, report);
		r->bitmap_errors = res->corruptions - before;
	}
	if (ret == 0)
		ret = check_refblocks(s, r, res, nb_clusters, fix, rebuild, report);
	return ret;
}

/* A refcount block that exists and that a repair may read and write (past the counted clusters). */
static bool refblock_present(const struct qcow2 *s, uint64_t cluster)
{
	uint64_t ti = cluster >> s->rb_bits, e = ti < s->reftable_size ? s->reftable[ti] : 0;

	return e && !(e & ~REFT_OFFSET_MASK) && !qcow2_in_cluster(s, e) &&
	       e >= s->cluster_size && e < s->file_size;
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

	if ((fix & BLOCK_FIX_LEAKS) && (s->reftable_size << s->rb_bits) > n)
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
		if (ret < 0 && i < r->used) {
			say(report, "Can't get refcount for cluster %" PRIu64 ": %s\n", i,
			    strerror(-ret));
			res->check_errors++;
		}
		if (ret < 0)
			continue;
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
		uint64_t e = be64(table + 8 * j);
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (t != QCOW2_NORMAL && t != QCOW2_ZERO_ALLOC)
			continue;
		/* A refcount that cannot be read was reported already (QEMU too). */
		if (qcow2_get_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc) < 0)
			continue;
		if ((rc == 1) == !!(e & QCOW_OFLAG_COPIED))
			continue;
		res->corruptions++;
		say(report, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64
			    "\n", repair ? "Repairing" : "ERROR", e, rc);
		if (repair) {
			e = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
			put_be64(table + 8 * j, e);
			dirty++;
		}
	}
	if (!dirty)
		return 0;
	if (on_metadata(s, l2_off, s->cluster_size, OL_ACTIVE_L2)) {
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
			if (repair && on_metadata(s, s->l1_offset + 8ULL * i, 8, OL_ACTIVE_L1)) {
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

/*
 * The snapshot table as the lenient check-mode read left it (QEMU's
 * qcow2_check_read_snapshot_table): entries cut or dropped by a repair,
 * and version 3 entries without the 16 bytes of extra data they must have.
 */
static void check_snapshot_table(struct qcow2 *s, struct block_check_result *snap, unsigned fix,
				 FILE *report)
{
	bool repair = fix & BLOCK_FIX_ERRORS;

	if (s->snap_reduced) {
		say(report, "Discarding %u overhanging snapshots (snapshot table is too big)\n",
		    s->snap_reduced);
		snap->corruptions_fixed += (int)s->snap_reduced;
	}
	if (s->snap_extra_dropped)
		say(report, "Discarding too much extra metadata in %u snapshot table entries\n",
		    s->snap_extra_dropped);
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
	return calculate_refs(s, r, &again, qcow2_size_to_clusters(s, s->file_size), fix, rebuild,
			      NULL);
}

/* Counts the references again and lets go of what nothing references (after a rewrite). */
static int release_leaks(struct qcow2 *s, uint64_t *highest, bool *broken)
{
	struct block_check_result again = { 0 };
	struct refs r = { 0 };
	int ret;

	*broken = false;
	ret = calculate_refs(s, &r, &again, qcow2_size_to_clusters(s, s->file_size), 0, broken,
			     NULL);
	if (ret == 0)
		ret = compare_refs(s, &r, &again, BLOCK_FIX_LEAKS, broken, highest, NULL);
	free(r.n);
	return ret;
}

/* QEMU's qcow2_check_fix_snapshot_table: the table written anew with complete entries. */
static int fix_snapshot_table(struct qcow2 *s, struct block_check_result *snap, unsigned fix,
			      uint64_t *highest, FILE *report)
{
	bool broken;
	int ret;

	if (!(fix & BLOCK_FIX_ERRORS) || !(snap->corruptions || s->snap_reduced))
		return 0;
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		if (s->h.version >= 3 && s->snaps[i].extra_size < 16)
			s->snaps[i].extra_size = 16;	/* vm state size and disk size */
	}
	ret = qcow2_snapshot_table_rewrite(s);
	if (ret == 0)
		ret = release_leaks(s, highest, &broken);
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
	int before = res->corruptions;
	bool broken = false;
	int ret;

	ret = rebuild(s, r, report);
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
	ret = calculate_refs(s, r, &again, qcow2_size_to_clusters(s, s->file_size), 0, &broken,
			     NULL);
	if (ret == 0)
		ret = compare_refs(s, r, &again, BLOCK_FIX_LEAKS, &broken, highest, NULL);
	if (ret < 0)
		return ret;
	if (broken) {
		say(report, "ERROR rebuilt refcount structure is still broken\n");
		again.corruptions++;
	}
	res->corruptions = again.corruptions;
	if (before > again.corruptions)
		res->corruptions_fixed += before - again.corruptions;
	res->leaks = 0;
	return 0;
}

static int check_locked(struct qcow2 *s, unsigned fix, struct block_check_result *res,
			FILE *report)
{
	uint64_t nb_clusters = qcow2_size_to_clusters(s, s->file_size), highest;
	struct block_check_result snap = { 0 };
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
	check_snapshot_table(s, &snap, fix, report);
	ret = calculate_refs(s, &r, res, nb_clusters, fix, &rebuild_needed, report);
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

	ret = compare_refs(s, &r, res, fix, &rebuild_needed, &highest, report);
	if (ret < 0)
		goto out;
	/* Clusters in use but counted 0, or broken blocks: a new structure from the counts. */
	if (rebuild_needed && (fix & BLOCK_FIX_ERRORS)) {
		ret = rebuild_and_recount(s, &r, res, &highest, report);
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
	ret = calculate_refs(s, &r, &res, qcow2_size_to_clusters(s, s->file_size), 0, &rebuild_needed,
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
		ret = calculate_refs(s, &r, &res, qcow2_size_to_clusters(s, s->file_size), 0,
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
