/*
 * Metadata overlap checks, as QEMU's overlap-check option defines them
 * (qapi/block-core.json "Qcow2OverlapChecks"): before a write lands in the
 * file, its clusters are compared with every metadata structure the chosen
 * mode covers.  A hit means the image's tables point where they must not
 * (a hostile or damaged image, or a bug): the write is refused with EIO and
 * the image is marked corrupt (qcow2 spec: incompatible feature bit 1), so
 * neither Kestrel nor QEMU opens it for writing again before a repair.
 *
 *   none      no checks
 *   constant  header, active L1, refcount table, snapshot table, bitmap
 *             directory: fixed places, no table walk
 *   cached    constant + active L2 tables, refcount blocks, snapshot L1
 *             tables: walks the tables held in memory (QEMU's default)
 *   all       cached + snapshot L2 tables, read from the file every time
 *
 * Like QEMU, the write is rounded out to whole clusters and each structure
 * is compared as its clusters (L2 tables, refcount blocks) or its bytes.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* QEMU's metadata_ol_names, indexed by bit number. */
static const char *const ol_names[] = {
	"qcow2_header", "active L1 table", "active L2 table", "refcount table",
	"refcount block", "snapshot table", "inactive L1 table", "inactive L2 table",
	"bitmap directory",
};

unsigned qcow2_overlap_mask(unsigned block_flags)
{
	switch (block_flags & BLOCK_OL_MASK) {
	case BLOCK_OL_NONE:
		return 0;
	case BLOCK_OL_CONSTANT:
		return QCOW2_OL_CONSTANT;
	case BLOCK_OL_ALL:
		return QCOW2_OL_ALL;
	default:
		return QCOW2_OL_CACHED;
	}
}

const char *qcow2_overlap_name(unsigned hit)
{
	for (unsigned i = 0; i < sizeof(ol_names) / sizeof(ol_names[0]); i++)
		if (hit & (1u << i))
			return ol_names[i];
	return "metadata";
}

static bool overlaps(uint64_t off, uint64_t len, uint64_t start, uint64_t size)
{
	return size && off < start + size && start < off + len;
}

/* Snapshot L2 tables: read each snapshot's L1 table from the file (mode "all"). */
static int inactive_l2(struct qcow2 *s, uint64_t off, uint64_t len, bool *hit)
{
	*hit = false;
	for (unsigned i = 0; i < s->nb_snaps && !*hit; i++) {
		uint64_t bytes = (uint64_t)s->snaps[i].l1_size * 8;
		uint8_t *l1;
		int ret;

		/* Opening does not check snapshot L1 tables (QEMU does not): no huge read here. */
		if (!bytes || bytes > QCOW2_MAX_L1_BYTES)
			continue;
		l1 = malloc((size_t)bytes);
		if (!l1)
			return -ENOMEM;
		ret = bfile_pread(s->bd, s->snaps[i].l1_table_offset, l1, (size_t)bytes);
		for (uint64_t j = 0; ret == 0 && j < bytes / 8 && !*hit; j++) {
			uint64_t l2 = ld_be64(l1 + 8 * j) & L1E_OFFSET_MASK;
			*hit = l2 && overlaps(off, len, l2, s->cluster_size);
		}
		free(l1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void qcow2_meta_index_free(struct qcow2 *s)
{
	free(s->meta_idx.l2);
	free(s->meta_idx.rb);
	memset(&s->meta_idx, 0, sizeof(s->meta_idx));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The non-zero offsets of a table under mask, sorted; NULL only when out of memory. */
static uint64_t *sorted_offsets(const uint64_t *table, uint64_t n, uint64_t mask, size_t *count)
{
	uint64_t *v = malloc((n ? n : 1) * sizeof(*v));

	*count = 0;
	if (!v)
		return NULL;
	for (uint64_t i = 0; i < n; i++)
		if (table[i] & mask)
			v[(*count)++] = table[i] & mask;
	qsort(v, *count, sizeof(*v), cmp_u64);
	return v;
}

/* The index, rebuilt when a table was written or replaced since; false: walk instead. */
static bool index_fresh(struct qcow2 *s)
{
	struct qcow2_meta_index *x = &s->meta_idx;

	if (x->valid && x->gen == s->meta_gen && x->l1_seen == s->l1 &&
	    x->l1_size_seen == s->l1_size && x->rt_seen == s->reftable &&
	    x->rt_size_seen == s->reftable_size)
		return true;
	qcow2_meta_index_free(s);
	x->l2 = sorted_offsets(s->l1, s->l1_size, L1E_OFFSET_MASK, &x->nl2);
	x->rb = sorted_offsets(s->reftable, s->reftable_size, REFT_OFFSET_MASK, &x->nrb);
	if (!x->l2 || !x->rb) {
		qcow2_meta_index_free(s);
		return false;
	}
	x->gen = s->meta_gen;
	x->l1_seen = s->l1;
	x->l1_size_seen = s->l1_size;
	x->rt_seen = s->reftable;
	x->rt_size_seen = s->reftable_size;
	x->valid = true;
	return true;
}

/* Whether a cluster-sized table at one of the sorted offsets v overlaps [off, off+len). */
static bool any_in(const uint64_t *v, size_t n, uint64_t cs, uint64_t off, uint64_t len)
{
	uint64_t from = off >= cs ? off - cs + 1 : 0;	/* a table at t covers [t, t+cs) */
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] < off + len;
}

/* The tables a mode walks in memory: active L2 tables, refcount blocks, snapshot L1s. */
static unsigned walk_hits(struct qcow2 *s, unsigned checks, uint64_t off, uint64_t len)
{
	unsigned hit = 0;

	if (checks & QCOW2_OL_ACTIVE_L2) {
		for (uint32_t i = 0; i < s->l1_size; i++) {
			uint64_t l2 = s->l1[i] & L1E_OFFSET_MASK;
			if (l2 && overlaps(off, len, l2, s->cluster_size)) {
				hit |= QCOW2_OL_ACTIVE_L2;
				break;
			}
		}
	}
	if (checks & QCOW2_OL_REFCOUNT_BLOCK) {
		for (uint64_t i = 0; i < s->reftable_size; i++) {
			uint64_t rb = s->reftable[i] & REFT_OFFSET_MASK;
			if (rb && overlaps(off, len, rb, s->cluster_size)) {
				hit |= QCOW2_OL_REFCOUNT_BLOCK;
				break;
			}
		}
	}
	if (checks & QCOW2_OL_INACTIVE_L1) {
		for (unsigned i = 0; i < s->nb_snaps; i++) {
			if (overlaps(off, len, s->snaps[i].l1_table_offset,
				     (uint64_t)s->snaps[i].l1_size * 8)) {
				hit |= QCOW2_OL_INACTIVE_L1;
				break;
			}
		}
	}
	return hit;
}

/*
 * walk_hits through the index: the L2 and refcount block checks become
 * binary searches, and what the index finds is confirmed by the walk, so a
 * stale index can never call a healthy image corrupt.
 */
static unsigned cached_hits(struct qcow2 *s, unsigned checks, uint64_t off, uint64_t len)
{
	unsigned tables = checks & (QCOW2_OL_ACTIVE_L2 | QCOW2_OL_REFCOUNT_BLOCK), maybe = 0;
	struct qcow2_meta_index *x = &s->meta_idx;

	if (!tables || !index_fresh(s))
		return walk_hits(s, checks, off, len);
	if ((tables & QCOW2_OL_ACTIVE_L2) && any_in(x->l2, x->nl2, s->cluster_size, off, len))
		maybe |= QCOW2_OL_ACTIVE_L2;
	if ((tables & QCOW2_OL_REFCOUNT_BLOCK) && any_in(x->rb, x->nrb, s->cluster_size, off, len))
		maybe |= QCOW2_OL_REFCOUNT_BLOCK;
	return walk_hits(s, (checks & ~tables) | maybe, off, len);
}

int qcow2_overlaps(struct qcow2 *s, unsigned checks, uint64_t off, uint64_t len,
		   unsigned *hit)
{
	uint64_t boff, bsize, start, end;
	uint32_t nb;
	bool l2hit;
	int ret;

	*hit = 0;
	if (!checks || !len)
		return 0;
	start = off & ~(uint64_t)(s->cluster_size - 1);
	end = qcow2_align(s, off + len);
	if (end < start)	/* wrapped: nothing sane lives up there */
		end = UINT64_MAX & ~(uint64_t)(s->cluster_size - 1);
	off = start;
	len = end - start;
	if ((checks & QCOW2_OL_MAIN_HEADER) && off < s->cluster_size)
		*hit |= QCOW2_OL_MAIN_HEADER;
	if ((checks & QCOW2_OL_ACTIVE_L1) && overlaps(off, len, s->l1_offset, (uint64_t)s->l1_size * 8))
		*hit |= QCOW2_OL_ACTIVE_L1;
	if ((checks & QCOW2_OL_REFCOUNT_TABLE) &&
	    overlaps(off, len, s->reftable_offset, s->reftable_size * 8))
		*hit |= QCOW2_OL_REFCOUNT_TABLE;
	if ((checks & QCOW2_OL_SNAPSHOT_TABLE) && s->nb_snaps &&
	    overlaps(off, len, s->h.snapshots_offset, s->snap_table_size))
		*hit |= QCOW2_OL_SNAPSHOT_TABLE;
	if ((checks & QCOW2_OL_BITMAP_DIRECTORY) && qcow2_bitmap_dir(s, &boff, &bsize, &nb) &&
	    overlaps(off, len, boff, bsize))
		*hit |= QCOW2_OL_BITMAP_DIRECTORY;
	*hit |= cached_hits(s, checks, off, len);
	if (checks & QCOW2_OL_INACTIVE_L2) {
		ret = inactive_l2(s, off, len, &l2hit);
		if (ret < 0)
			return ret;
		if (l2hit)
			*hit |= QCOW2_OL_INACTIVE_L2;
	}
	return 0;
}

/*
 * Whether host offset off lies inside the file.  The size we know may be
 * behind when another process writes the image (a reader with -U), so a
 * miss asks the file once more before the caller calls it corruption.
 */
bool qcow2_in_file(struct qcow2 *s, uint64_t off)
{
	int64_t size;

	if (off < s->file_size)
		return true;
	size = bfile_size(s->bd);
	if (size > 0 && (uint64_t)size > s->file_size)
		s->file_size = (uint64_t)size;
	return off < s->file_size;
}

/* Whether two entries of the active L1 table name the L2 table at off. */
static bool l2_named_twice(struct qcow2 *s, uint64_t off)
{
	struct qcow2_meta_index *x = &s->meta_idx;
	unsigned n = 0;

	if (!index_fresh(s)) {
		for (uint32_t i = 0; i < s->l1_size && n < 2; i++)
			n += (s->l1[i] & L1E_OFFSET_MASK) == off;
		return n > 1;
	}
	for (size_t lo = 0, hi = x->nl2; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->l2[mid] < off) {
			lo = mid + 1;
		} else if (x->l2[mid] > off) {
			hi = mid;
		} else {
			return (mid > 0 && x->l2[mid - 1] == off) ||
			       (mid + 1 < x->nl2 && x->l2[mid + 1] == off);
		}
	}
	return false;
}

int qcow2_check_l2_table(struct qcow2 *s, uint64_t off)
{
	/* The table is an active L2 table; a snapshot's L2 tables are read only in "all". */
	unsigned checks = s->overlap & ~(QCOW2_OL_ACTIVE_L2 | QCOW2_OL_INACTIVE_L2), hit;
	int ret;

	if (s->checking)
		return 0;
	/* Zeroes past the end are no table: the guest would read its data as gone. */
	if (!qcow2_in_file(s, off))
		return qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " is past the end of the "
					       "file", off);
	/* qcow2 spec: an L1 table names each L2 table once; twice, two ranges alias. */
	if ((s->overlap & QCOW2_OL_ACTIVE_L2) && l2_named_twice(s, off))
		return qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " is named by two L1 "
					       "entries", off);
	ret = qcow2_overlaps(s, checks, off, s->cluster_size, &hit);
	if (ret == 0 && hit)
		ret = qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " overlaps with %s", off,
					      qcow2_overlap_name(hit));
	return ret;
}

/* Whether a refcount of the clusters [off, off+len) is outside [min, max]. */
static int refcount_outside(struct qcow2 *s, uint64_t off, uint64_t len, uint64_t min,
			    uint64_t max, bool *bad)
{
	*bad = false;
	for (uint64_t c = off >> s->cluster_bits; c <= (off + len - 1) >> s->cluster_bits; c++) {
		uint64_t rc;
		int ret = qcow2_get_refcount(s, c, &rc);
		if (ret < 0)
			return ret;
		if (rc < min || rc > max) {
			*bad = true;
			return 0;
		}
	}
	return 0;
}

/*
 * A COPIED data cluster that another entry of the table also uses (a second
 * data entry, or compressed data packed into it): each would write over,
 * or free, what the other holds.  Compressed clusters may share host
 * clusters among themselves; a COPIED one shares with nothing.
 */
static int copied_shared(struct qcow2 *s, const uint64_t *table, bool *bad)
{
	uint64_t *v = malloc((size_t)s->l2_size * 3 * sizeof(*v));
	size_t n = 0;

	*bad = false;
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->l2_size; i++) {
		uint64_t e = qcow2_l2_get(s, table, i), off, len;
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (t == QCOW2_NORMAL || t == QCOW2_ZERO_ALLOC) {
			/* Bit 0 marks the one that claims the cluster alone. */
			v[n++] = ((e & L2E_OFFSET_MASK) >> s->cluster_bits) << 1 |
				 (t == QCOW2_NORMAL && (e & QCOW_OFLAG_COPIED) ? 1 : 0);
		} else if (t == QCOW2_COMPRESSED) {
			off = (e & s->cluster_offset_mask) & ~511ULL;
			len = (((e >> s->csize_shift) & s->csize_mask) + 1) * 512;
			/* At most 2 clusters of sectors (qcow2 spec), so 3 clusters touched. */
			for (uint64_t c = off >> s->cluster_bits;
			     c <= (off + len - 1) >> s->cluster_bits; c++)
				v[n++] = c << 1;
		}
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < n && !*bad; i++)
		*bad = (v[i] >> 1) == (v[i - 1] >> 1) && ((v[i] | v[i - 1]) & 1);
	free(v);
	return 0;
}

/*
 * A table just read for a writer.  Entries whose clusters the refcounts do
 * not account for (past the end of the file, refcount 0, COPIED without
 * refcount 1, a cluster claimed twice) would soon have the allocator hand
 * a cluster still in use to another guest cluster, or a write in place
 * change a snapshot's data: the two would alias and an acknowledged write
 * be lost.  Caught here, before a write through this table can do either
 * (qcow2 spec: "refcount ... exactly one" for COPIED; qemu-img check
 * reports each as an error).
 */
int qcow2_check_l2_entries(struct qcow2 *s, uint64_t off, const uint64_t *table)
{
	bool bad;
	int ret;

	/* An external data file's clusters are not refcounted (qcow2 spec). */
	if (s->checking || s->bd->read_only || !s->overlap || qcow2_has_data_file(s))
		return 0;
	for (uint32_t i = 0; i < s->l2_size; i++) {
		uint64_t e = qcow2_l2_get(s, table, i), host, len = 1, max = UINT64_MAX;
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (t == QCOW2_COMPRESSED) {
			host = (e & s->cluster_offset_mask) & ~511ULL;
			len = (((e >> s->csize_shift) & s->csize_mask) + 1) * 512;
		} else if (t == QCOW2_NORMAL || t == QCOW2_ZERO_ALLOC) {
			host = e & L2E_OFFSET_MASK;
			if (e & QCOW_OFLAG_COPIED)
				max = 1;
		} else {
			continue;
		}
		if (!qcow2_in_file(s, host))
			return qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " entry %u points "
						       "past the end of the file (%#" PRIx64 ")",
						       off, i, host);
		ret = refcount_outside(s, host, len, 1, max, &bad);
		if (ret < 0)
			return ret;
		if (bad)
			return qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " entry %u: the "
						       "refcount of %#" PRIx64 " does not match "
						       "(%s)", off, i, host,
						       max == 1 ? "COPIED needs exactly 1"
								: "it is 0");
	}
	ret = copied_shared(s, table, &bad);
	if (ret == 0 && bad)
		ret = qcow2_signal_corruption(s, "L2 table at %#" PRIx64 " shares a COPIED cluster "
					      "with another entry", off);
	return ret;
}

/* The host bytes an entry makes the guest see (and a rewrite would drop). */
static void entry_range(const struct qcow2 *s, uint64_t l2e, enum qcow2_type type,
			uint64_t *off, uint64_t *len)
{
	if (type == QCOW2_COMPRESSED) {
		/* qcow2 spec: the sector count includes the one the data starts in. */
		*off = (l2e & s->cluster_offset_mask) & ~511ULL;
		*len = (((l2e >> s->csize_shift) & s->csize_mask) + 1) * 512;
	} else {
		*off = l2e & L2E_OFFSET_MASK;
		*len = s->cluster_size;
	}
}

/*
 * What is checked before an entry is followed: alignment, the header and,
 * per the overlap-check mode, every other metadata structure.  A data
 * cluster on metadata would show the guest metadata and take its writes.
 */
static int check_overlap(struct qcow2 *s, uint64_t l2e, enum qcow2_type type, uint64_t guest,
			 bool write)
{
	uint64_t off, len;
	unsigned hit;
	int ret;

	if (s->checking || !s->overlap)
		return 0;
	entry_range(s, l2e, type, &off, &len);
	/*
	 * A read inflates no more than the stream needs: here only the sector
	 * the stream starts in must be clear; qcow2_compressed_readable bounds
	 * the rest.  Dropping the entry (write) frees every sector it counts.
	 */
	if (type == QCOW2_COMPRESSED && !write)
		len = 512;
	/* Snapshot L2 tables cost a read of every snapshot L1: the write itself checks them. */
	ret = qcow2_overlaps(s, s->overlap & ~QCOW2_OL_INACTIVE_L2, off, len, &hit);
	if (ret < 0 || !hit)
		return ret;
	if (write)
		return qcow2_signal_corruption(s, "Preventing invalid write on metadata (overlaps "
					       "with %s)", qcow2_overlap_name(hit));
	return qcow2_signal_corruption(s, "Preventing invalid read of metadata: data for guest "
				       "offset %#" PRIx64 " at host offset %#" PRIx64 " overlaps "
				       "with %s", guest, off, qcow2_overlap_name(hit));
}

/*
 * The bytes of compressed data a read may inflate: the descriptor's sectors
 * up to the first on metadata.  A sector count larger than the stream needs
 * is harmless, as the decompressor stops once the cluster is full (QEMU's
 * qcow2_decompress too, so qemu-img reads such images); a stream that
 * really runs on into a table fails to inflate instead of turning the
 * table's bytes into guest data.  Called with the lock held.
 */
int qcow2_compressed_readable(struct qcow2 *s, uint64_t l2e, size_t *csize)
{
	uint64_t off, len, end, c, coff = l2e & s->cluster_offset_mask;
	unsigned mask = s->overlap & ~QCOW2_OL_INACTIVE_L2, hit;
	int ret;

	entry_range(s, l2e, QCOW2_COMPRESSED, &off, &len);
	end = off + len;
	*csize = (size_t)(end - coff);
	if (s->checking || !s->overlap || qcow2_has_data_file(s))
		return 0;
	ret = qcow2_overlaps(s, mask, off, len, &hit);
	if (ret < 0 || !hit)
		return ret;
	/* At most a few clusters (the count field holds two clusters' worth of sectors). */
	for (c = off; c < end; c = (c | (s->cluster_size - 1)) + 1) {
		uint64_t next = (c | (s->cluster_size - 1)) + 1;
		ret = qcow2_overlaps(s, mask, c, (next < end ? next : end) - c, &hit);
		if (ret < 0)
			return ret;
		if (hit)
			break;
	}
	*csize = c > coff ? (size_t)(c - coff) : 0;
	return 0;
}

/*
 * qcow2 spec, external data file: a data cluster's offset is its guest
 * offset, and there are no compressed clusters (QEMU's wording).
 */
static int check_data_file_entry(struct qcow2 *s, uint64_t l2e, enum qcow2_type type,
				 uint64_t guest)
{
	uint64_t host = l2e & L2E_OFFSET_MASK;

	if (type == QCOW2_COMPRESSED)
		return qcow2_signal_corruption(s, "Compressed cluster entry found in image with "
					       "external data file (guest offset: %#" PRIx64 ")",
					       guest);
	if (type != QCOW2_NORMAL && type != QCOW2_ZERO_ALLOC)
		return 0;
	if (host != (guest & ~(uint64_t)(s->cluster_size - 1)))
		return qcow2_signal_corruption(s, "External data file host cluster offset %#" PRIx64
					       " does not match guest cluster offset: %#" PRIx64
					       ", or the cluster is compressed", host,
					       guest & ~(uint64_t)(s->cluster_size - 1));
	return 0;
}

/*
 * A host cluster offset inside a cluster, in QEMU's words: a lookup
 * (qcow2_get_host_offset: reads, block status) names the L2 table and
 * index, a write that keeps the cluster (handle_copied) the guest offset.
 */
static int unaligned(struct qcow2 *s, uint64_t l2e, enum qcow2_type type, uint64_t guest,
		     bool write)
{
	uint64_t host = l2e & L2E_OFFSET_MASK;
	uint64_t l1_index = guest >> (s->l2_bits + s->cluster_bits);
	uint64_t l2_index = (guest >> s->cluster_bits) & (s->l2_size - 1);
	uint64_t l2_off = l1_index < s->l1_size ? s->l1[l1_index] & L1E_OFFSET_MASK : 0;

	if (write)
		return qcow2_signal_corruption(s, "%s cluster offset %#" PRIx64 " unaligned (guest "
					       "offset: %#" PRIx64 ")", type == QCOW2_ZERO_ALLOC ?
					       "Preallocated zero" : "Data", host, guest);
	return qcow2_signal_corruption(s, "Cluster allocation offset %#" PRIx64 " unaligned (L2 "
				       "offset: %#" PRIx64 ", L2 index: %#" PRIx64 ")", host, l2_off,
				       l2_index);
}

int qcow2_check_entry(struct qcow2 *s, uint64_t l2e, enum qcow2_type type, uint64_t guest,
		      bool write)
{
	uint64_t host = l2e & L2E_OFFSET_MASK;

	if (qcow2_has_data_file(s))
		return check_data_file_entry(s, l2e, type, guest);
	if (type == QCOW2_COMPRESSED) {
		/*
		 * A write would drop it, taking references the descriptor never
		 * held.  A lookup goes on as QEMU's: block status reports it, a
		 * read of it fails (its bytes are not there to decompress).
		 */
		if (write && !s->checking && !qcow2_in_file(s, l2e & s->cluster_offset_mask))
			return qcow2_signal_corruption(s, "Compressed cluster at %#" PRIx64 " is past "
						       "the end of the file (guest offset: %#" PRIx64
						       ")", l2e & s->cluster_offset_mask, guest);
		return check_overlap(s, l2e, type, guest, write);
	}
	if (type != QCOW2_NORMAL && type != QCOW2_ZERO_ALLOC)
		return 0;
	if (qcow2_in_cluster(s, host))
		return unaligned(s, l2e, type, guest, write);
	if (host < s->cluster_size)
		return qcow2_signal_corruption(s, "Data cluster at %#" PRIx64 " overlaps the header "
					       "(guest offset: %#" PRIx64 ")", host, guest);
	/* qcow2 spec: a data cluster lies in the file (qemu-img check: past the end is an error). */
	if (type == QCOW2_NORMAL && !s->checking && !qcow2_in_file(s, host))
		return qcow2_signal_corruption(s, "Data cluster at %#" PRIx64 " is past the end of "
					       "the file (guest offset: %#" PRIx64 ")", host, guest);
	return check_overlap(s, l2e, type, guest, write);
}

/* Whether host clusters [host, host+len) may hold data: in the file, on no metadata. */
static bool data_ok(struct qcow2 *s, enum qcow2_type type, uint64_t host, uint64_t len)
{
	unsigned hit;

	if (s->checking || qcow2_has_data_file(s))
		return true;
	if (type == QCOW2_NORMAL && !qcow2_in_file(s, host + len - s->cluster_size))
		return false;
	return qcow2_overlaps(s, s->overlap & ~QCOW2_OL_INACTIVE_L2, host, len, &hit) == 0 && !hit;
}

/*
 * Clusters 1..n-1 of a host-contiguous run whose first cluster passed
 * check_entry, checked as one range: where one is bad the run ends before
 * it, and the request that starts there reports it.
 */
uint64_t qcow2_sane_run(struct qcow2 *s, uint64_t host, enum qcow2_type type, uint64_t n)
{
	uint64_t cs = s->cluster_size;

	if (data_ok(s, type, host + cs, (n - 1) * cs))
		return n;
	for (uint64_t k = 1; k < n; k++)
		if (!data_ok(s, type, host + k * cs, cs))
			return k;
	return n;
}

int qcow2_pre_write_check(struct qcow2 *s, unsigned ign, uint64_t off, uint64_t len)
{
	unsigned hit;
	int ret;

	/* A check or repair rebuilds the very tables compared here: it runs unchecked. */
	if (s->checking)
		return 0;
	ret = qcow2_overlaps(s, s->overlap & ~ign, off, len, &hit);
	if (ret < 0)
		return ret;
	if (hit)
		return qcow2_signal_corruption(s, "Preventing invalid write on metadata (overlaps "
					       "with %s)", qcow2_overlap_name(hit));
	return 0;
}

int qcow2_checked_write(struct qcow2 *s, unsigned ign, uint64_t off, const void *buf,
			size_t len)
{
	int ret = qcow2_pre_write_check(s, ign, off, len);

	if (ret == 0)
		ret = qcow2_file_write(s, off, buf, len);
	return ret;
}
