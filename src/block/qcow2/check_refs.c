/*
 * qcow2 check, first half: the references every metadata structure makes,
 * counted per cluster, and the structures themselves checked on the way
 * (QEMU's calculate_refcounts and what it calls).  Messages and their
 * wording follow QEMU's qcow2-refcount.c and qcow2-bitmap.c.
 */
#include "block/qcow2/check.h"

#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

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

/* Room in r for cluster c's count (new counts 0), doubling as it grows. */
int qcow2_refs_reserve(struct refs *r, uint64_t c)
{
	uint64_t nsize;
	uint32_t *n;

	if (c < r->size)
		return 0;
	nsize = c + 1 > r->size * 2 ? c + 1 : r->size * 2;
	n = realloc(r->n, nsize * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + r->size, 0, (nsize - r->size) * sizeof(*n));
	r->n = n;
	r->size = nsize;
	return 0;
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
	if (qcow2_refs_reserve(r, last) < 0)
		return -ENOMEM;
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
bool qcow2_on_metadata(const struct qcow2 *s, uint64_t off, uint64_t len, unsigned ign)
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
	uint64_t at = l2_off + qcow2_l2_pos(s, i);
	int ret;

	st_be64(table + qcow2_l2_pos(s, i), QCOW_OFLAG_ZERO);
	if (qcow2_on_metadata(s, at, 8, OL_ACTIVE_L2)) {
		say(report, "ERROR: Overlap check failed\n");
		res->check_errors++;
		return -EIO;
	}
	qcow2_cache_discard(&s->l2_cache, l2_off);
	ret = qcow2_file_write(s, at, table + qcow2_l2_pos(s, i), 8);
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
	uint64_t e = ld_be64(table + qcow2_l2_pos(s, i)), off = e & L2E_OFFSET_MASK;

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
		uint64_t e = ld_be64(table + qcow2_l2_pos(s, i)), off;
		uint64_t bm = s->ext_l2 ? ld_be64(table + qcow2_l2_pos(s, i) + 8) : 0;
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
			if (qcow2_has_data_file(s)) {
				say(report, "ERROR compressed cluster %u with data file, entry=0x%" PRIx64
					    "\n", i, e);
				res->corruptions++;
				break;
			}
			if (bm) {
				say(report, "ERROR compressed cluster %u with non-zero subcluster "
					    "allocation bitmap, entry=0x%" PRIx64 "\n", i, e);
				res->corruptions++;
				break;
			}
			/* QEMU's qcow2_parse_compressed_l2_entry: from coff to the last sector's end. */
			ret = refs_inc(s, r, res, coff, sectors * 512 - (coff & 511), report);
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
			if ((bm >> 32) & bm) {
				res->corruptions++;
				say(report, "ERROR offset=%" PRIx64 ": Allocated cluster has corrupted "
					    "subcluster allocation bitmap\n", off);
			}
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
			if (!qcow2_has_data_file(s))
				ret = refs_inc(s, r, res, off, s->cluster_size, report);
			break;
		case QCOW2_UNALLOCATED:
			if (bm & QCOW2_BM_ALLOC_ALL) {
				res->corruptions++;
				say(report, "ERROR: Unallocated cluster has non-zero subcluster "
					    "allocation map\n");
			}
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
		uint64_t e = ld_be64(l1 + 8 * i), off = e & L1E_OFFSET_MASK;

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

/*
 * check -r all: a refcount block past the end of the file gets the file
 * grown over it (QEMU's check_refblocks), so the rebuild that follows has
 * a place it can trust.  0, or -1 after "ERROR could not resize image".
 */
static int grow_over(struct qcow2 *s, uint64_t off, FILE *report)
{
	int err = 0;

	if (off > (uint64_t)INT64_MAX - s->cluster_size)
		err = EINVAL;
	if (!err) {
		block_crash_point();
		if (ftruncate(s->bd->fd, (off_t)(off + s->cluster_size)) < 0)
			err = errno;
	}
	if (err) {
		say(report, "ERROR could not resize image: %s\n", strerror(err));
		return -1;
	}
	s->file_size = off + s->cluster_size;
	return 0;
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
		if (c >= qcow2_size_to_clusters(s, s->file_size)) {
			say(report, "%s refcount block %" PRIu64 " is outside image\n",
			    fix & BLOCK_FIX_ERRORS ? "Repairing" : "ERROR", i);
			if (!(fix & BLOCK_FIX_ERRORS) || grow_over(s, off, report) < 0) {
				res->corruptions++;
				*rebuild = true;
				continue;
			}
			/* The block reads as zeroes now: every count in it is wrong (rebuild). */
			res->corruptions_fixed++;
		}
		ret = refs_inc(s, r, res, off, s->cluster_size, report);
		if (ret < 0)
			return ret;
		table_in_file(s, r, res, "refcount block", off, s->cluster_size, fix, report);
		if (qcow2_refs_get(r, c) != 1) {
			say(report, "ERROR refcount block %" PRIu64 " refcount=%" PRIu64 "\n", i,
			    qcow2_refs_get(r, c));
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
	uint64_t table = ld_be64(e), entries = ld_be32(e + 8), bytes;
	uint32_t flags = ld_be32(e + 12), extra = ld_be32(e + 20);
	uint8_t type = e[16], gran = e[17];
	uint16_t name = ld_be16(e + 18);

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
		table = ld_be64(dir + p);
		entries = ld_be32(dir + p + 8);
		/* A bitmap table is counted where it says, read only where it lies in the file. */
		ret = refs_inc(s, r, res, table, (uint64_t)entries * 8, report);
		t = malloc((size_t)entries * 8);
		if (ret == 0 && t && table <= s->file_size &&
		    (uint64_t)entries * 8 <= s->file_size - table &&
		    bfile_pread(s->bd, table, t, (size_t)entries * 8) == 0) {
			for (uint32_t i = 0; i < entries && ret == 0; i++) {
				uint64_t e = ld_be64(t + 8 * i), off = e & L2E_OFFSET_MASK;
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
		p += (24 + (uint64_t)ld_be16(dir + p + 18) + 7) & ~7ULL;
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

int qcow2_count_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
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
	/*
	 * A snapshot table the end of the file cuts is not reported as cut: its
	 * entries read as zeroes there, as in QEMU, and are judged by what they
	 * read (check.c: an incomplete entry makes -r all rewrite the table).
	 */
	if (ret == 0)
		ret = refs_inc(s, r, res, s->reftable_offset, s->reftable_size * 8, report);
	/* The LUKS header's clusters (qcow2 spec: full disk encryption header pointer). */
	if (ret == 0 && s->h.crypt_method && s->crypt_len)
		ret = refs_inc(s, r, res, s->crypt_off, s->crypt_len, report);
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

