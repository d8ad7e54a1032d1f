/*
 * check -r: a new refcount structure built from the counted references, laid
 * out as QEMU 7.2's rebuild_refcount_structure lays it out, so that a repaired
 * image is the file qemu-img check -r makes.  The counts are one big
 * in-memory refcount block for the whole image; each refcount block and then
 * the refcount table take the first free clusters in it (old structures that
 * nothing references are free), and every allocation is counted in it too.
 * The old structure is left behind as leaks for the caller's second pass.
 *
 * amend -o refcount_bits builds its new structure here too, from the stored
 * refcounts in the new width, but only past the clusters in use and the end
 * of the file: a cluster whose stored refcount is wrongly 0 may hold data.
 */
#include "block/qcow2/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct imrt {
	uint64_t *n;		/* refcount of each cluster */
	uint64_t size;		/* clusters it describes */
	uint64_t *table;	/* the new refcount table, host order */
	uint64_t entries;	/* its entries: whole clusters of them */
	uint64_t floor;		/* the first cluster the new structure may take */
};

static int imrt_grow(struct imrt *m, uint64_t size)
{
	uint64_t *n;

	if (size <= m->size)
		return 0;
	n = realloc(m->n, size * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + m->size, 0, (size - m->size) * sizeof(*n));
	m->n = n;
	m->size = size;
	return 0;
}

/*
 * QEMU's alloc_clusters_imrt: the first run of count free clusters from
 * *first_free on (the image grows when there is none); *first_free moves to
 * the first free cluster seen.  Returns the run's first cluster.
 */
static int64_t imrt_alloc(struct imrt *m, uint64_t count, uint64_t *first_free)
{
	uint64_t c = *first_free, run = 0;
	bool first_gap = true;

	for (; c < m->size && run < count; c++) {
		if (m->n[c]) {
			run = 0;
			continue;
		}
		run++;
		if (first_gap) {
			*first_free = c;
			first_gap = false;
		}
	}
	if (run < count && imrt_grow(m, c + count - run) < 0)
		return -ENOMEM;
	c -= run;
	for (uint64_t i = 0; i < count; i++)
		m->n[c + i] = 1;
	return (int64_t)c;
}

/*
 * Whether a new refcount structure may go to clusters [first, first+n): a
 * table the count could not take in (one the image names past the end of
 * the file, say) may lie there, and writing over it would turn refcounts
 * into its entries.  Refused as QEMU's overlap check refuses that write:
 * the image is marked corrupt and the check fails ("ERROR writing ...").
 * The old refcount structure does not count: it is being replaced, and a
 * broken entry in it (unaligned, say) must not block its own repair.
 */
static int rebuild_area_ok(struct qcow2 *s, uint64_t first, uint64_t n, const char *what,
			  FILE *report)
{
	unsigned mask = s->overlap & ~(QCOW2_OL_INACTIVE_L2 | QCOW2_OL_REFCOUNT_TABLE |
				       QCOW2_OL_REFCOUNT_BLOCK), hit;
	int ret = qcow2_overlaps(s, mask, first << s->cluster_bits, n << s->cluster_bits, &hit);
	bool checking = s->checking;

	if (ret < 0 || !hit)
		return ret;
	s->checking = false;	/* signalled, not hidden as a check's own writes are */
	ret = qcow2_signal_corruption(s, "Preventing invalid write on metadata (overlaps with %s)",
				      qcow2_overlap_name(hit));
	s->checking = checking;
	say(report, "%s: ERROR writing %s: %s\n", program_invocation_short_name, what,
	    strerror(-ret));
	return ret;
}

/* One refcount block on disk: its slice of the in-memory counts. */
static int write_block(struct qcow2 *s, const struct imrt *m, uint64_t index, uint8_t *buf,
		       FILE *report)
{
	uint64_t per_block = 1ULL << s->rb_bits, first = index * per_block;
	int ret;

	memset(buf, 0, s->cluster_size);
	for (uint64_t i = 0; i < per_block && first + i < m->size; i++) {
		uint64_t v = m->n[first + i];
		qcow2_rc_set_entry(buf, s->refcount_order, i, v > s->refcount_max ? s->refcount_max : v);
	}
	ret = rebuild_area_ok(s, m->table[index] >> s->cluster_bits, 1, "refblock",
				    report);
	return ret < 0 ? ret : qcow2_file_write(s, m->table[index], buf, s->cluster_size);
}

static int table_grow(struct imrt *m, uint64_t index, uint32_t cluster_size)
{
	uint64_t per_cluster = cluster_size / 8;
	uint64_t entries = (index + per_cluster) / per_cluster * per_cluster;
	uint64_t *t;

	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES)
		return -EFBIG;
	t = realloc(m->table, entries * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + m->entries, 0, (entries - m->entries) * sizeof(*t));
	m->table = t;
	m->entries = entries;
	return 0;
}

/*
 * QEMU's rebuild_refcounts_write_refblocks: every refcount block that counts
 * a cluster in [first, end) is allocated (once) and written.  Returns 1 when
 * the table had to grow, 0 when not.
 */
static int write_blocks(struct qcow2 *s, struct imrt *m, uint64_t first, uint64_t end,
			uint8_t *buf, FILE *report)
{
	uint64_t per_block = 1ULL << s->rb_bits, first_free = m->floor;
	int grown = 0, ret;

	for (uint64_t c = first; c < end && c < m->size; c++) {
		uint64_t index = c >> s->rb_bits, start = index * per_block;

		if (!m->n[c])
			continue;
		if (index >= m->entries || !m->table[index]) {
			int64_t b;
			/* Not in a block already written: its count would be lost. */
			if (first_free < start)
				first_free = start;
			b = imrt_alloc(m, 1, &first_free);
			if (b < 0)
				return (int)b;
			/* The block that counts this one must be written too. */
			if ((uint64_t)b >= end)
				end = (uint64_t)b + 1;
			if (index >= m->entries) {
				ret = table_grow(m, index, s->cluster_size);
				if (ret < 0)
					return ret;
				grown = 1;
			}
			m->table[index] = (uint64_t)b << s->cluster_bits;
		}
		ret = write_block(s, m, index, buf, report);
		if (ret < 0)
			return ret;
		c = start + per_block - 1;
	}
	return grown;
}

/* The new table in place of the old one: one header write switches over. */
static int switch_table(struct qcow2 *s, struct imrt *m, uint64_t table_cluster,
			uint64_t clusters, FILE *report)
{
	uint64_t len = m->entries * 8;
	uint8_t *buf;
	int ret = rebuild_area_ok(s, table_cluster, clusters, "reftable", report);

	if (ret < 0)
		return ret;
	buf = block_alloc_buf((size_t)(clusters << s->cluster_bits));
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, (size_t)(clusters << s->cluster_bits));
	for (uint64_t i = 0; i < m->entries; i++)
		st_be64(buf + 8 * i, m->table[i]);
	ret = qcow2_file_write(s, table_cluster << s->cluster_bits, buf, (size_t)len);
	free(buf);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret < 0)
		return ret;
	qcow2_cache_clear(&s->rc_cache);
	qcow2_set_reftable(s, m->table, m->entries, table_cluster << s->cluster_bits, clusters);
	m->table = NULL;
	if ((m->size << s->cluster_bits) > s->alloc_end)
		s->alloc_end = m->size << s->cluster_bits;
	s->free_cluster_index = 1;
	ret = qcow2_write_header(s);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	return ret;
}

int qcow2_check_rebuild(struct qcow2 *s, const struct refs *r, uint64_t floor, FILE *report)
{
	struct imrt m = { .floor = floor };
	uint8_t *buf = block_alloc_buf(s->cluster_size);
	uint64_t table = 0, clusters = 0;
	int ret;

	say(report, "Rebuilding refcount structure\n");
	ret = buf ? imrt_grow(&m, r->used ? r->used : 1) : -ENOMEM;
	for (uint64_t c = 0; ret == 0 && c < r->used; c++)
		m.n[c] = qcow2_refs_get(r, c);
	/* There was no table: the first pass always makes one (header cluster 0 is counted). */
	if (ret == 0)
		ret = write_blocks(s, &m, 0, m.size, buf, report);
	if (ret == 0)
		ret = m.entries ? 1 : -EIO;
	/* The table last, where it fits; the blocks counting it are written again. */
	while (ret > 0) {
		uint64_t first_free = m.floor;
		int64_t t;

		clusters = (m.entries * 8 + s->cluster_size - 1) >> s->cluster_bits;
		t = imrt_alloc(&m, clusters, &first_free);
		if (t < 0) {
			ret = (int)t;
			break;
		}
		table = (uint64_t)t;
		ret = write_blocks(s, &m, table, table + clusters, buf, report);
	}
	if (ret == 0)
		ret = switch_table(s, &m, table, clusters, report);
	free(buf);
	free(m.n);
	free(m.table);
	return ret;
}
