/*
 * preallocation=falloc|full laid out as QEMU 7.2's qcow2_co_truncate lays
 * it out, so a preallocated image has qemu-img's map and file size:
 * a new refcount table right after the last used cluster
 * (qcow2_refcount_area, sized exactly for the grown file), every new data
 * cluster in one run after it, fallocated or written with zeroes, and then
 * the L2 entries, whose tables take the first free clusters (the old
 * refcount table's place first).  New refcount blocks, where the grown file
 * needs them, go before the new table, as qcow2_refcount_area puts them.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* qcow2_get_last_cluster: the file's end as its refcounts see it, in clusters. */
static int used_clusters(struct qcow2 *s, uint64_t *out)
{
	uint64_t end = s->file_size > s->alloc_end ? s->file_size : s->alloc_end, rc = 0;
	uint64_t c = (end + s->cluster_size - 1) >> s->cluster_bits;
	int ret;

	for (; c > 0; c--) {
		ret = qcow2_get_refcount(s, c - 1, &rc);
		if (ret < 0)
			return ret;
		if (rc)
			break;
	}
	*out = c;
	return 0;
}

/*
 * Refcount 1 for the clusters [start, end) of the new area: in the new
 * refcount blocks (buffered at blocks, placed from start) or, for clusters
 * an existing block covers, through the cache.
 */
static int count_area(struct qcow2 *s, const uint64_t *table, uint8_t *blocks, uint64_t start,
		      uint64_t nb, uint64_t end)
{
	for (uint64_t c = start; c < end; c++) {
		uint64_t b = table[c >> s->rb_bits] >> s->cluster_bits;
		int ret;
		if (b >= start && b < start + nb) {
			qcow2_rc_set_entry(blocks + ((b - start) << s->cluster_bits), s->refcount_order,
					   c & ((1ULL << s->rb_bits) - 1), 1);
			continue;
		}
		ret = qcow2_update_refcount(s, c, 1);
		if (ret < 0)
			return ret;
	}
	if ((end << s->cluster_bits) > s->alloc_end)
		s->alloc_end = end << s->cluster_bits;
	return 0;
}

/*
 * qcow2_refcount_area: the refcount blocks the area [start, start + extra)
 * still lacks, placed at start, then a new table sized exactly for them.
 * *end: the first cluster after the table; 0 when a block in use would fall
 * out of the smaller table (the caller then falls back).
 */
static int refcount_area(struct qcow2 *s, uint64_t start, uint64_t extra, uint64_t *end)
{
	uint64_t per_table = s->cluster_size / 8, table_clusters;
	uint64_t total = qcow2_refcount_blocks(start + extra, s->cluster_size, s->refcount_order,
					       &table_clusters);
	uint64_t entries = (total + per_table - 1) / per_table * per_table, *table, nb = 0, j = 0;
	uint8_t *blocks = NULL;
	int ret = -ENOMEM;

	*end = 0;
	for (uint64_t i = entries; i < s->reftable_size; i++)
		if (s->reftable[i])
			return 0;
	for (uint64_t i = start >> s->rb_bits; i < total; i++)
		if (i >= s->reftable_size || !s->reftable[i])
			nb++;
	table = calloc(entries, sizeof(*table));
	if (nb)
		blocks = block_alloc_buf((size_t)(nb << s->cluster_bits));
	if (!table || (nb && !blocks))
		goto fail;
	if (nb)
		memset(blocks, 0, (size_t)(nb << s->cluster_bits));
	memcpy(table, s->reftable,
	       (entries < s->reftable_size ? entries : s->reftable_size) * sizeof(*table));
	for (uint64_t i = start >> s->rb_bits; i < total; i++)
		if (!table[i])
			table[i] = (start + j++) << s->cluster_bits;
	ret = count_area(s, table, blocks, start, nb, start + nb + entries / per_table);
	if (ret == 0 && nb)
		ret = qcow2_checked_write(s, 0, start << s->cluster_bits, blocks,
					  (size_t)(nb << s->cluster_bits));
	if (ret == 0) {
		ret = qcow2_switch_reftable(s, table, entries, start + nb);
		table = NULL;	/* the switch's now, freed there on failure */
	}
	if (ret < 0)
		goto fail;
	free(blocks);
	*end = start + nb + entries / per_table;
	return 0;
fail:
	free(table);
	free(blocks);
	return ret;
}

/* The data run: fallocated, or zeroes written (full), as file-posix grows a file. */
static int fill_data(struct qcow2 *s, uint64_t off, uint64_t len, enum block_prealloc mode)
{
	int ret = 0;

	block_crash_point();
	if (mode == BLOCK_PREALLOC_FALLOC) {
		ret = -posix_fallocate(s->bd->fd, (off_t)off, (off_t)len);
	} else {
		ret = qcow2_file_write_zeroes(s, off, len);
	}
	if (ret == 0 && off + len > s->file_size)
		s->file_size = off + len;
	return ret;
}

int qcow2_prealloc_like_qemu(struct qcow2 *s, uint64_t old_len, uint64_t new_len,
			     enum block_prealloc mode)
{
	uint64_t used, nb_data, nb_l2, start, guest, host;
	int ret;

	if (s->txn || old_len % s->cluster_size || new_len <= old_len)
		return 1;
	ret = used_clusters(s, &used);
	if (ret < 0)
		return ret;
	nb_data = qcow2_size_to_clusters(s, new_len) - (old_len >> s->cluster_bits);
	nb_l2 = (nb_data + s->l2_size - 1) / s->l2_size + 1;
	ret = refcount_area(s, used, nb_data + nb_l2, &start);
	if (ret < 0)
		return ret;
	if (!start)
		return 1;
	ret = qcow2_alloc_clusters_at(s, start << s->cluster_bits, nb_data);
	if (ret == 0)
		ret = fill_data(s, start << s->cluster_bits, nb_data << s->cluster_bits, mode);
	guest = old_len >> s->cluster_bits;
	host = start << s->cluster_bits;
	while (ret == 0 && nb_data) {
		uint64_t l2_index = guest & (s->l2_size - 1), n = s->l2_size - l2_index;
		if (n > nb_data)
			n = nb_data;
		ret = qcow2_write_l2_range(s, guest >> s->l2_bits, l2_index, n, host);
		guest += n;
		host += n << s->cluster_bits;
		nb_data -= n;
	}
	return ret;
}
