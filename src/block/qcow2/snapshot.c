/*
 * Internal snapshots (qcow2 spec: "Snapshots"): each is a copy of the L1
 * table plus a table entry; clusters are shared through refcounts and
 * copied on write.  Changes go in an order that leaves at most leaks:
 * refcounts up before the snapshot table names the new L1, and down only
 * after the header no longer reaches what is freed.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SNAPSHOT_EXTRA_MAX	1024	/* QEMU's QCOW_MAX_SNAPSHOT_EXTRA_DATA */
#define SNAPSHOT_TABLE_MAX	(1024ULL * QCOW2_MAX_SNAPSHOTS)	/* QCOW_MAX_SNAPSHOTS_SIZE */

void qcow2_free_snapshots(struct qcow2 *s)
{
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
		free(s->snaps[i].extra_unknown);
	}
	free(s->snaps);
	s->snaps = NULL;
	s->nb_snaps = 0;
}

/* The lengths an entry's fixed part gives for what follows it. */
struct entry_lens {
	uint32_t extra;
	uint16_t id, name;
};

/* An entry's 40 fixed bytes (qcow2 spec: "Snapshot table entry"). */
static int read_fixed(struct qcow2 *s, uint64_t off, struct qcow2_snapshot *sn,
		      struct entry_lens *n)
{
	uint8_t b[40];
	int ret = bfile_pread(s->bd, off, b, sizeof(b));

	if (ret < 0)
		return ret;
	sn->l1_table_offset = ld_be64(b);
	sn->l1_size = ld_be32(b + 8);
	n->id = ld_be16(b + 12);
	n->name = ld_be16(b + 14);
	sn->date_sec = ld_be32(b + 16);
	sn->date_nsec = ld_be32(b + 20);
	sn->vm_clock_nsec = ld_be64(b + 24);
	sn->vm_state_size = ld_be32(b + 32);
	n->extra = ld_be32(b + 36);
	return 0;
}

/*
 * The extra data: the fields QEMU knows (QCowSnapshotExtraData: vm state
 * size, disk size, icount) and the rest kept as it is, cut to QEMU's limit.
 * A v3 entry without disk size (extra < 16) opens as QEMU opens it, the disk
 * size taken from the image; check reports it, and any rewrite of the table
 * stores the full extra data.
 */
static int read_extra(struct qcow2 *s, uint64_t off, struct qcow2_snapshot *sn, uint32_t extra)
{
	uint8_t b[SNAPSHOT_EXTRA_MAX];
	int ret;

	if (extra > SNAPSHOT_EXTRA_MAX)
		extra = SNAPSHOT_EXTRA_MAX;
	ret = bfile_pread(s->bd, off, b, extra);
	if (ret < 0)
		return ret;
	sn->extra_size = extra;
	sn->disk_size = s->h.size;
	sn->icount = UINT64_MAX;
	if (extra >= 8)
		sn->vm_state_size = ld_be64(b);
	if (extra >= 16)
		sn->disk_size = ld_be64(b + 8);
	if (extra >= 24)
		sn->icount = ld_be64(b + 16);
	if (extra > 24) {
		sn->extra_unknown_len = extra - 24;
		sn->extra_unknown = malloc(sn->extra_unknown_len);
		if (!sn->extra_unknown)
			return -ENOMEM;
		memcpy(sn->extra_unknown, b + 24, sn->extra_unknown_len);
	}
	return 0;
}

static int read_names(struct qcow2 *s, uint64_t off, struct qcow2_snapshot *sn,
		      const struct entry_lens *n)
{
	int ret;

	sn->id = calloc(1, (size_t)n->id + 1);
	sn->name = calloc(1, (size_t)n->name + 1);
	if (!sn->id || !sn->name)
		return -ENOMEM;
	ret = bfile_pread(s->bd, off, sn->id, n->id);
	if (ret == 0)
		ret = bfile_pread(s->bd, off + n->id, sn->name, n->name);
	return ret;
}

/* An error of the table's reading: the message in err, -errno returned (for check). */
static int table_err(int code, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int table_err(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * Entry i at *off, which then moves past it; *len counts the table as it
 * will be written (extra data cut to the limit).  Returns 1 where a repair
 * ends the table before the entry: past QEMU's size limit, the snapshots
 * from there on are dropped (check reports them).  Errors: -errno, with
 * QEMU's words and hint in err.
 */
static int read_entry(struct qcow2 *s, uint32_t i, uint64_t *off, uint64_t *len, bool repair,
		      char *err, size_t errlen)
{
	struct qcow2_snapshot *sn = &s->snaps[i];
	uint64_t entry = (*off + 7) & ~7ULL, end;
	struct entry_lens n;
	int ret = read_fixed(s, entry, sn, &n);

	if (ret < 0)
		goto io;
	if (n.extra > SNAPSHOT_EXTRA_MAX && !repair)
		return table_err(-EFBIG, err, errlen, "Too much extra metadata in snapshot table "
				 "entry %u\nYou can force-remove this extra metadata with %s check "
				 "-r all", i, program_invocation_short_name);
	end = entry + 40 + (uint64_t)n.extra + n.id + n.name;
	*len = ((*len + 7) & ~7ULL) + 40 + (n.extra > SNAPSHOT_EXTRA_MAX ? SNAPSHOT_EXTRA_MAX :
					    n.extra) + n.id + n.name;
	/* QEMU's QCOW_MAX_SNAPSHOTS_SIZE bounds what a hostile table makes us read. */
	if (*len > SNAPSHOT_TABLE_MAX || end - s->h.snapshots_offset > INT32_MAX) {
		if (!repair)
			return table_err(-EFBIG, err, errlen, "Snapshot table is too big\nYou can "
					 "force-remove all %u overhanging snapshots with %s check "
					 "-r all", s->h.nb_snapshots - i,
					 program_invocation_short_name);
		s->snap_reduced = s->h.nb_snapshots - i;
		return 1;
	}
	s->nb_snaps = i + 1;
	if (n.extra > SNAPSHOT_EXTRA_MAX) {
		s->snap_extra_dropped++;
		sn->extra_cut_from = n.extra;
	}
	ret = read_extra(s, entry + 40, sn, n.extra);
	if (ret == 0)
		ret = read_names(s, entry + 40 + n.extra, sn, &n);
	if (ret < 0)
		goto io;
	*off = end;
	return 0;
io:
	return table_err(ret, err, errlen, "Failed to read snapshot table: %s", strerror(-ret));
}

/*
 * The snapshot table, read as QEMU reads it: entries past the end of the
 * file read as zeroes, and what an entry names (its L1 table) is checked
 * where it is used (snapshot_l1_check) and by check, not here.  A repair
 * (check opened read-write) also cuts extra data past QEMU's limit and drops
 * snapshots past the table's size limit, counted for check.  Opened for
 * check, a table that cannot be read is no snapshot table: check reports
 * why (s->snap_errno) and stops, as QEMU's check does.
 */
int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t off = s->h.snapshots_offset, len = 0;
	bool repair = s->checking && !s->bd->read_only;
	char msg[sizeof(s->snap_err) - 40];
	int ret = 0;

	if (!s->h.nb_snapshots || s->snap_errno)
		return 0;
	s->snaps = calloc(s->h.nb_snapshots, sizeof(*s->snaps));
	if (!s->snaps)
		return block_err(err, errlen, "out of memory");
	for (uint32_t i = 0; i < s->h.nb_snapshots && ret == 0; i++)
		ret = read_entry(s, i, &off, &len, repair, msg, sizeof(msg));
	if (ret < 0 && s->checking) {
		qcow2_free_snapshots(s);
		s->snap_errno = ret;
		snprintf(s->snap_err, sizeof(s->snap_err), "failed to read the snapshot table: %s",
			 msg);
		return 0;
	}
	if (ret < 0)
		return block_err(err, errlen, "%s", msg);
	s->snap_table_size = off - s->h.snapshots_offset;
	return 0;
}

/*
 * A snapshot's L1 table before apply, delete or convert -l use it: QEMU's
 * limits and messages (qcow2_validate_table), and, beyond QEMU, inside the
 * file (QEMU reads zeroes past its end: an empty snapshot).
 */
static int snapshot_l1_check(const struct qcow2 *s, const struct qcow2_snapshot *sn, char *err,
			     size_t errlen)
{
	uint64_t bytes = (uint64_t)sn->l1_size * 8;

	if (bytes > QCOW2_MAX_L1_BYTES)
		return block_err(err, errlen, "Snapshot L1 table too large");
	if (qcow2_in_cluster(s, sn->l1_table_offset) || sn->l1_table_offset > INT64_MAX - bytes)
		return block_err(err, errlen, "Snapshot L1 table offset invalid");
	if (sn->l1_table_offset + bytes > s->file_size)
		return block_err(err, errlen, "Snapshot L1 table is past the end of the file");
	return 0;
}

/* Extra data as written: at least the fields QEMU knows (QCowSnapshotExtraData, 24 bytes). */
static uint32_t written_extra(const struct qcow2_snapshot *sn)
{
	return sn->extra_size < 24 ? 24 : sn->extra_size;
}

static size_t entry_size(const struct qcow2_snapshot *sn)
{
	size_t n = 40 + written_extra(sn) + strlen(sn->id) + strlen(sn->name);

	return (n + 7) & ~(size_t)7;
}

/* The snapshot table of s->snaps as it goes on disk (qcow2 spec: "Snapshot table"). */
static int build_snapshot_table(const struct qcow2 *s, uint8_t **out, uint64_t *size)
{
	size_t pos = 0;
	uint8_t *buf;

	*out = NULL;
	*size = 0;
	for (unsigned i = 0; i < s->nb_snaps; i++)
		*size += entry_size(&s->snaps[i]);
	if (!*size)
		return 0;
	buf = calloc(1, (size_t)*size);
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		const struct qcow2_snapshot *sn = &s->snaps[i];
		uint8_t *p = buf + pos;
		size_t id_len = strlen(sn->id), name_len = strlen(sn->name);
		st_be64(p, sn->l1_table_offset);
		st_be32(p + 8, sn->l1_size);
		st_be16(p + 12, (uint16_t)id_len);
		st_be16(p + 14, (uint16_t)name_len);
		st_be32(p + 16, sn->date_sec);
		st_be32(p + 20, sn->date_nsec);
		st_be64(p + 24, sn->vm_clock_nsec);
		st_be32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
		st_be32(p + 36, written_extra(sn));
		p += 40;
		st_be64(p, sn->vm_state_size);
		st_be64(p + 8, sn->disk_size);
		st_be64(p + 16, sn->icount);
		if (sn->extra_unknown_len)
			memcpy(p + 24, sn->extra_unknown, sn->extra_unknown_len);
		p += written_extra(sn);
		memcpy(p, sn->id, id_len);
		memcpy(p + id_len, sn->name, name_len);
		pos += entry_size(sn);
	}
	*out = buf;
	return 0;
}

/*
 * Clusters [off, off + bytes) touch, for freeing a table that need not be
 * aligned.  Those past the end of the file hold nothing to free: a damaged
 * table there reads as zeroes (as in QEMU) and has no refcount.
 */
static int free_range(struct qcow2 *s, uint64_t off, uint64_t bytes)
{
	uint64_t first = off >> s->cluster_bits, last;

	if (!off || !bytes || off >= s->file_size)
		return 0;
	if (bytes > s->file_size - off)
		bytes = s->file_size - off;
	last = (off + bytes - 1) >> s->cluster_bits;
	return qcow2_free_now(s, first << s->cluster_bits, last - first + 1);
}

/* In a transaction: the table of s->snaps in new clusters, the old one freed. */
static int txn_snapshot_table(struct qcow2 *s, uint64_t *off, uint64_t *size)
{
	uint8_t *buf;
	int ret = free_range(s, s->h.snapshots_offset, s->snap_table_size);

	*off = 0;
	if (ret < 0)
		return ret;
	ret = build_snapshot_table(s, &buf, size);
	if (ret == 0 && *size)
		ret = qcow2_alloc_clusters(s, qcow2_size_to_clusters(s, *size), off);
	if (ret == 0 && *size)
		ret = qcow2_file_write(s, *off, buf, (size_t)*size);
	free(buf);
	return ret;
}

/*
 * check -r all: the table again, with what the repair changed in the entries,
 * in new clusters; the header then points at it.  The old table is left leaked:
 * a repair cannot trust that it lies on clusters of its own.
 */
/*
 * amend compat=0.10 -> 1.1: entries without the disk size (v3 needs it) get
 * the full extra data, as QEMU's qcow2_upgrade rewrites them; the old table
 * is freed once the header points at the new one.
 */
int qcow2_snapshot_table_upgrade(struct qcow2 *s)
{
	uint64_t old = s->h.snapshots_offset, old_size = s->snap_table_size;
	bool short_entry = false;
	int ret;

	for (unsigned i = 0; i < s->nb_snaps; i++)
		if (s->snaps[i].extra_size < 16)
			short_entry = true;
	if (!short_entry)
		return 0;
	ret = qcow2_snapshot_table_rewrite(s);
	for (unsigned i = 0; ret == 0 && i < s->nb_snaps; i++)
		s->snaps[i].extra_size = written_extra(&s->snaps[i]);
	if (ret == 0)
		ret = free_range(s, old, old_size);
	return ret;
}

int qcow2_snapshot_table_rewrite(struct qcow2 *s)
{
	uint64_t off = 0, size;
	uint8_t *buf, field[12];
	int ret = build_snapshot_table(s, &buf, &size);

	if (ret == 0 && size)
		ret = qcow2_alloc_clusters(s, qcow2_size_to_clusters(s, size), &off);
	if (ret == 0)
		ret = qcow2_flush_metadata(s, true);
	if (ret == 0 && size)
		ret = qcow2_file_write(s, off, buf, (size_t)size);
	free(buf);
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return ret;
	st_be32(field, s->nb_snaps);
	st_be64(field + 4, off);
	ret = qcow2_file_write(s, 60, field, sizeof(field));
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return ret;
	s->h.nb_snapshots = s->nb_snaps;
	s->h.snapshots_offset = off;
	s->snap_table_size = size;
	return 0;
}

static int read_l1(struct qcow2 *s, uint64_t off, uint32_t size, uint64_t **l1)
{
	uint8_t *raw;
	int ret;

	*l1 = calloc(size ? size : 1, sizeof(**l1));
	raw = malloc(size ? (size_t)size * 8 : 1);
	if (!*l1 || !raw) {
		free(raw);
		free(*l1);
		return -ENOMEM;
	}
	ret = bfile_pread(s->bd, off, raw, (size_t)size * 8);
	for (uint32_t i = 0; i < size; i++)
		(*l1)[i] = ld_be64(raw + 8 * i);
	free(raw);
	if (ret < 0)
		free(*l1);
	return ret;
}

/* One reference more or less for every L2 table and data cluster an L1 table reaches. */
static int update_l1_tree(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, int delta)
{
	int ret = 0;

	for (uint32_t i = 0; i < l1_size && ret == 0; i++) {
		uint64_t off = l1[i] & L1E_OFFSET_MASK, *table;
		if (!off)
			continue;
		if (qcow2_in_cluster(s, off))
			return qcow2_signal_corruption(s, "L2 table offset %#" PRIx64 " unaligned", off);
		ret = qcow2_cache_get(s, &s->l2_cache, off, true, (void **)&table);
		if (ret < 0)
			return ret;
		for (uint32_t j = 0; j < s->l2_size && ret == 0; j++) {
			uint64_t e = qcow2_l2_get(s, table, j);
			switch (qcow2_entry_type(s, e)) {
			case QCOW2_NORMAL:
			case QCOW2_ZERO_ALLOC:
				ret = qcow2_update_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits,
							    delta);
				break;
			case QCOW2_COMPRESSED: {
				uint64_t coff = e & s->cluster_offset_mask;
				uint64_t sectors = ((e >> s->csize_shift) & s->csize_mask) + 1;
				uint64_t start = coff & ~511ULL;
				uint64_t last = (start + sectors * 512 - 1) >> s->cluster_bits;
				for (uint64_t c = start >> s->cluster_bits; c <= last && ret == 0; c++)
					ret = qcow2_update_refcount(s, c, delta);
				break;
			}
			default:
				break;
			}
		}
		qcow2_cache_put(&s->l2_cache, table);
		if (ret == 0)
			ret = qcow2_update_refcount(s, off >> s->cluster_bits, delta);
	}
	return ret;
}

/*
 * L2 table `off` with COPIED set exactly where the refcount (already the
 * new one) is 1, into buf; *changed when that differs from the table.
 */
static int l2_with_flags(struct qcow2 *s, uint64_t off, uint8_t *buf, bool *changed)
{
	uint64_t *table;
	int ret = qcow2_cache_get(s, &s->l2_cache, off, true, (void **)&table);

	*changed = false;
	if (ret < 0)
		return ret;
	memcpy(buf, table, s->cluster_size);
	qcow2_cache_put(&s->l2_cache, table);
	for (uint32_t j = 0; j < s->l2_size; j++) {
		uint64_t e = qcow2_l2_get(s, (const uint64_t *)buf, j), ne, rc;
		enum qcow2_type t = qcow2_entry_type(s, e);
		if (t != QCOW2_NORMAL && t != QCOW2_ZERO_ALLOC)
			continue;
		ret = qcow2_get_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		ne = rc == 1 ? e | QCOW_OFLAG_COPIED : e & ~QCOW_OFLAG_COPIED;
		if (ne != e) {
			qcow2_l2_set(s, (uint64_t *)buf, j, ne);
			*changed = true;
		}
	}
	return 0;
}

/*
 * The L2 table that `nrefs` entries of the new L1 table(s) use in place of
 * *off: the same table when its flags already fit the new refcounts, else
 * a corrected copy in a new cluster (the old table loses those references).
 * Rewriting the table in place instead would change what the old header
 * reaches before the switch.
 */
static int settle_l2(struct qcow2 *s, uint64_t *off, int nrefs)
{
	uint8_t *buf;
	uint64_t copy;
	bool changed;
	int ret;

	if (qcow2_in_cluster(s, *off))
		return qcow2_signal_corruption(s, "L2 table offset %#" PRIx64 " unaligned", *off);
	buf = block_alloc_buf(s->cluster_size);
	if (!buf)
		return -ENOMEM;
	ret = l2_with_flags(s, *off, buf, &changed);
	if (ret == 0 && changed) {
		ret = qcow2_alloc_clusters(s, 1, &copy);
		if (ret == 0)
			ret = qcow2_file_write(s, copy, buf, s->cluster_size);
		if (ret == 0 && nrefs > 1)
			ret = qcow2_update_refcount(s, copy >> s->cluster_bits, nrefs - 1);
		if (ret == 0)
			ret = qcow2_update_refcount(s, *off >> s->cluster_bits, -nrefs);
		if (ret == 0)
			*off = copy;
	}
	free(buf);
	return ret;
}

/*
 * The new active L1 (size entries) over the tables of src (n entries),
 * after the refcounts of every tree are final: tables settled, and each
 * entry COPIED exactly where its table's refcount is 1.
 */
static int settle_l1(struct qcow2 *s, const uint64_t *src, uint32_t n, uint32_t size, int nrefs,
		     uint64_t **out)
{
	uint64_t *l1 = calloc(size ? size : 1, sizeof(*l1)), rc;
	int ret = 0;

	if (!l1)
		return -ENOMEM;
	for (uint32_t i = 0; i < size && i < n && ret == 0; i++) {
		uint64_t off = src[i] & L1E_OFFSET_MASK;
		if (!off)
			continue;
		ret = settle_l2(s, &off, nrefs);
		if (ret == 0)
			ret = qcow2_get_refcount(s, off >> s->cluster_bits, &rc);
		if (ret == 0)
			l1[i] = off | (rc == 1 ? QCOW_OFLAG_COPIED : 0);
	}
	if (ret < 0) {
		free(l1);
		return ret;
	}
	*out = l1;
	return 0;
}

/* An L1 table in new clusters, zero-padded to whole clusters; offset 0 for none. */
static int txn_write_l1(struct qcow2 *s, const uint64_t *l1, uint32_t size, uint64_t *off)
{
	uint64_t bytes = qcow2_align(s, (uint64_t)size * 8);
	uint8_t *raw;
	int ret;

	*off = 0;
	if (!size)
		return 0;
	raw = block_alloc_buf((size_t)bytes);
	if (!raw)
		return -ENOMEM;
	memset(raw, 0, (size_t)bytes);
	for (uint32_t i = 0; i < size; i++)
		st_be64(raw + 8 * i, l1[i]);
	ret = qcow2_alloc_clusters(s, bytes >> s->cluster_bits, off);
	if (ret == 0)
		ret = qcow2_file_write(s, *off, raw, (size_t)bytes);
	free(raw);
	return ret;
}

/* The new active L1 in new clusters; the old one's clusters are freed. */
static int txn_active_l1(struct qcow2 *s, const uint64_t *l1, uint32_t size, uint64_t *off)
{
	int ret;

	if (!size) {
		*off = s->l1_offset;
		return 0;
	}
	ret = txn_write_l1(s, l1, size, off);
	if (ret == 0 && s->l1_size)
		ret = free_range(s, s->l1_offset, (uint64_t)s->l1_size * 8);
	return ret;
}

/* What the header will name after the switch, and what it named before. */
struct snap_switch {
	struct qcow2_header h;		/* s->h before, restored when the switch fails */
	uint64_t *l1;			/* the new active L1 table, in host order */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t size;			/* the virtual disk size */
	uint64_t table_offset;		/* the snapshot table */
	uint64_t table_size;
};

/*
 * Ends the transaction (ret < 0: the steps before failed): on success the
 * header switches to sw's L1 table, size and snapshot table (of s->snaps),
 * and the in-memory state follows.
 */
static int snap_commit(struct qcow2 *s, struct snap_switch *sw, int ret)
{
	if (ret < 0) {
		qcow2_txn_abort(s);
		return ret;
	}
	s->h.size = sw->size;
	s->h.l1_size = sw->l1_size;
	s->h.l1_table_offset = sw->l1_offset;
	s->h.nb_snapshots = s->nb_snaps;
	s->h.snapshots_offset = sw->table_offset;
	ret = qcow2_txn_commit(s);
	if (ret < 0) {
		s->h = sw->h;
		return ret;
	}
	free(s->l1);
	s->l1 = sw->l1;
	sw->l1 = NULL;
	s->l1_size = sw->l1_size;
	s->l1_offset = sw->l1_offset;
	s->snap_table_size = sw->table_size;
	s->bd->size = s->h.size;
	s->zbuf_valid = false;
	return 0;
}

static int find_snapshot(const struct qcow2 *s, const char *name)
{
	for (unsigned i = 0; i < s->nb_snaps; i++)
		if (!strcmp(s->snaps[i].id, name))
			return (int)i;
	for (unsigned i = 0; i < s->nb_snaps; i++)
		if (!strcmp(s->snaps[i].name, name))
			return (int)i;
	return -1;
}

int qcow2_snapshot_list(struct block_dev *bd, struct block_snapshot **list)
{
	struct qcow2 *s = bd->opaque;

	*list = NULL;
	if (!s->nb_snaps)
		return 0;
	*list = calloc(s->nb_snaps, sizeof(**list));
	if (!*list)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nb_snaps; i++) {
		struct block_snapshot *o = &(*list)[i];
		const struct qcow2_snapshot *sn = &s->snaps[i];
		snprintf(o->id, sizeof(o->id), "%s", sn->id);
		snprintf(o->name, sizeof(o->name), "%s", sn->name);
		o->vm_state_size = sn->vm_state_size;
		o->date_sec = sn->date_sec;
		o->date_nsec = sn->date_nsec;
		o->vm_clock_nsec = sn->vm_clock_nsec;
		o->icount = sn->icount;
		o->disk_size = sn->disk_size;
	}
	return (int)s->nb_snaps;
}

/*
 * The snapshot's tree is the active one, shared: every table and data
 * cluster gains a reference, and both the new active L1 and the snapshot's
 * L1 point at the same tables, with COPIED cleared (copies where it was set).
 */
static int create_trees(struct qcow2 *s, struct qcow2_snapshot *sn, struct snap_switch *sw)
{
	int ret = update_l1_tree(s, s->l1, s->l1_size, 1);

	sw->l1_size = s->l1_size;
	if (ret == 0)
		ret = settle_l1(s, s->l1, s->l1_size, s->l1_size, 2, &sw->l1);
	if (ret == 0)
		ret = txn_write_l1(s, sw->l1, s->l1_size, &sn->l1_table_offset);
	if (ret == 0)
		ret = txn_active_l1(s, sw->l1, s->l1_size, &sw->l1_offset);
	return ret;
}

static int new_snapshot(struct qcow2 *s, const char *name, struct qcow2_snapshot *sn)
{
	unsigned long max_id = 0;
	struct timespec ts;
	char id[32];

	for (unsigned i = 0; i < s->nb_snaps; i++) {
		unsigned long v = strtoul(s->snaps[i].id, NULL, 10);
		if (v > max_id)
			max_id = v;
	}
	snprintf(id, sizeof(id), "%lu", max_id + 1);
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(sn, 0, sizeof(*sn));
	sn->id = strdup(id);
	sn->name = strdup(name);
	if (!sn->id || !sn->name)
		return -ENOMEM;
	sn->l1_size = s->l1_size;
	sn->date_sec = (uint32_t)ts.tv_sec;
	sn->date_nsec = (uint32_t)(ts.tv_nsec / 1000 * 1000);	/* qemu-img keeps microseconds */
	sn->disk_size = s->h.size;
	sn->icount = 0;
	sn->extra_size = 24;
	return 0;
}

static int do_create(struct qcow2 *s, const char *name, char *err, size_t errlen)
{
	struct snap_switch sw = { .h = s->h, .size = s->h.size };
	struct qcow2_snapshot sn = { 0 }, *snaps;
	bool listed = false;
	int ret;

	if (strlen(name) > 65535)
		return block_err(err, errlen, "Snapshot name too long");
	/* qcow2 spec: internal snapshots are not supported with an external data file. */
	if (qcow2_has_data_file(s))
		return block_err(err, errlen, "Could not create snapshot '%s': -95 (Operation "
				 "not supported)", name);
	if (s->nb_snaps >= QCOW2_MAX_SNAPSHOTS)
		return block_err(err, errlen, "Too many snapshots");
	ret = new_snapshot(s, name, &sn);
	if (ret == 0) {
		snaps = realloc(s->snaps, (s->nb_snaps + 1) * sizeof(*snaps));
		if (!snaps)
			ret = -ENOMEM;
		else
			s->snaps = snaps;
	}
	if (ret == 0)
		ret = qcow2_txn_begin(s);
	if (ret < 0)
		goto fail;
	ret = create_trees(s, &sn, &sw);
	if (ret == 0) {
		s->snaps[s->nb_snaps++] = sn;
		listed = true;
		ret = txn_snapshot_table(s, &sw.table_offset, &sw.table_size);
	}
	ret = snap_commit(s, &sw, ret);
	if (ret == 0)
		return 0;
	if (listed)
		s->nb_snaps--;
fail:
	free(sw.l1);
	free(sn.id);
	free(sn.name);
	/* qemu-img's img_snapshot prints the errno and its text. */
	return block_err(err, errlen, "Could not create snapshot '%s': %d (%s)", name, ret,
			 strerror(-ret));
}

int qcow2_snapshot_create(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = do_create(s, name, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * The snapshot's tree becomes the active one: it gains a reference, the
 * old active tree loses one, and the new active L1 (as large as either,
 * like QEMU's goto) gets fresh flags.
 */
static int apply_trees(struct qcow2 *s, const struct qcow2_snapshot *sn, struct snap_switch *sw)
{
	uint64_t cover = (uint64_t)s->cluster_size << s->l2_bits, *snap_l1 = NULL;
	uint64_t need = (sn->disk_size + cover - 1) / cover;
	int ret = read_l1(s, sn->l1_table_offset, sn->l1_size, &snap_l1);

	if (ret < 0)
		return ret;
	sw->l1_size = s->l1_size > sn->l1_size ? s->l1_size : sn->l1_size;
	if (need > QCOW2_MAX_L1_BYTES / 8)
		ret = -EFBIG;
	else if (need > sw->l1_size)
		sw->l1_size = (uint32_t)need;
	if (ret == 0)
		ret = update_l1_tree(s, snap_l1, sn->l1_size, 1);
	if (ret == 0)
		ret = update_l1_tree(s, s->l1, s->l1_size, -1);
	if (ret == 0)
		ret = settle_l1(s, snap_l1, sn->l1_size, sw->l1_size, 1, &sw->l1);
	if (ret == 0)
		ret = txn_active_l1(s, sw->l1, sw->l1_size, &sw->l1_offset);
	free(snap_l1);
	return ret;
}

static int do_apply(struct qcow2 *s, const char *name, char *err, size_t errlen)
{
	struct snap_switch sw = { .h = s->h, .size = s->h.size };
	int i = find_snapshot(s, name), ret;
	char msg[128];

	if (i < 0)
		return block_err(err, errlen, "Could not apply snapshot '%s': %s", name,
				 "Failed to load snapshot: No such file or directory");
	if (snapshot_l1_check(s, &s->snaps[i], msg, sizeof(msg)) < 0)
		return block_err(err, errlen, "Could not apply snapshot '%s': %s", name, msg);
	ret = qcow2_txn_begin(s);
	if (ret == 0) {
		ret = apply_trees(s, &s->snaps[i], &sw);
		sw.size = s->snaps[i].disk_size;
		sw.table_offset = s->h.snapshots_offset;
		sw.table_size = s->snap_table_size;
		ret = snap_commit(s, &sw, ret);
	}
	free(sw.l1);
	if (ret < 0)
		return block_err(err, errlen, "Could not apply snapshot '%s': %s", name,
				 strerror(-ret));
	return 0;
}

int qcow2_snapshot_apply(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = do_apply(s, name, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * The snapshot's tree loses its reference and its L1 table goes; the
 * active L1 is rewritten (in new clusters) only where flags change.
 */
static int delete_trees(struct qcow2 *s, const struct qcow2_snapshot *sn, struct snap_switch *sw)
{
	uint64_t *snap_l1;
	int ret = read_l1(s, sn->l1_table_offset, sn->l1_size, &snap_l1);

	if (ret < 0)
		return ret;
	ret = update_l1_tree(s, snap_l1, sn->l1_size, -1);
	free(snap_l1);
	if (ret == 0)
		ret = free_range(s, sn->l1_table_offset, (uint64_t)sn->l1_size * 8);
	sw->l1_size = s->l1_size;
	sw->l1_offset = s->l1_offset;
	if (ret == 0)
		ret = settle_l1(s, s->l1, s->l1_size, s->l1_size, 1, &sw->l1);
	if (ret == 0 && memcmp(sw->l1, s->l1, (size_t)s->l1_size * 8))
		ret = txn_active_l1(s, sw->l1, s->l1_size, &sw->l1_offset);
	return ret;
}

static int do_delete(struct qcow2 *s, const char *name, char *err, size_t errlen)
{
	struct snap_switch sw = { .h = s->h, .size = s->h.size };
	int i = find_snapshot(s, name), ret;
	char msg[128];
	struct qcow2_snapshot sn;

	if (i < 0)
		return block_err(err, errlen, "Could not delete snapshot '%s': %s", name,
				 "snapshot not found");
	if (snapshot_l1_check(s, &s->snaps[i], msg, sizeof(msg)) < 0)
		return block_err(err, errlen, "Could not delete snapshot '%s': %s", name, msg);
	sn = s->snaps[i];
	ret = qcow2_txn_begin(s);
	if (ret == 0) {
		ret = delete_trees(s, &sn, &sw);
		memmove(&s->snaps[i], &s->snaps[i + 1],
			(s->nb_snaps - (unsigned)i - 1) * sizeof(sn));
		s->nb_snaps--;
		if (ret == 0)
			ret = txn_snapshot_table(s, &sw.table_offset, &sw.table_size);
		ret = snap_commit(s, &sw, ret);
		if (ret < 0) {
			memmove(&s->snaps[i + 1], &s->snaps[i],
				(s->nb_snaps - (unsigned)i) * sizeof(sn));
			s->snaps[i] = sn;
			s->nb_snaps++;
		}
	}
	free(sw.l1);
	if (ret < 0)
		return block_err(err, errlen, "Could not delete snapshot '%s': %s", name,
				 strerror(-ret));
	free(sn.id);
	free(sn.name);
	free(sn.extra_unknown);
	return 0;
}

int qcow2_snapshot_delete(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = do_delete(s, name, err, errlen);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Read-only: the snapshot's L1 table stands in for the active one (qemu-img convert -l). */
int qcow2_snapshot_load_tmp(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	uint64_t *l1;
	int i, ret;

	pthread_mutex_lock(&s->lock);
	i = find_snapshot(s, name);
	if (i < 0) {
		pthread_mutex_unlock(&s->lock);
		/* QEMU's words, without the name (qemu-img convert/measure -l). */
		return block_err(err, errlen, "Can't find snapshot");
	}
	if (snapshot_l1_check(s, &s->snaps[i], err, errlen) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	ret = read_l1(s, s->snaps[i].l1_table_offset, s->snaps[i].l1_size, &l1);
	if (ret == 0) {
		uint64_t cover = (uint64_t)s->cluster_size << s->l2_bits;
		if (((s->snaps[i].disk_size + cover - 1) / cover) > s->snaps[i].l1_size) {
			free(l1);
			ret = -EINVAL;
		}
	}
	if (ret == 0) {
		free(s->l1);
		s->l1 = l1;
		s->l1_size = s->snaps[i].l1_size;
		s->l1_offset = s->snaps[i].l1_table_offset;
		s->h.size = s->snaps[i].disk_size;
		bd->size = s->h.size;
		qcow2_cache_clear(&s->l2_cache);
		s->zbuf_valid = false;
	}
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return block_err(err, errlen, "Failed to load snapshot '%s': %s", name, strerror(-ret));
	return 0;
}
