/*
 * Guest to host mapping (qcow2 spec: "Cluster mapping"): L1 entries point
 * to L2 tables, L2 entries to data clusters, compressed clusters or zero
 * markers.  Writes allocate clusters (copying what the old cluster, the
 * backing file or a compressed cluster held around a partial write) and
 * copy-on-write L2 tables and clusters shared with snapshots.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * QEMU's qcow2_signal_corruption: on an image open for writing the damage
 * is fatal (marked corrupt in the header where v3 has the bit, and no more
 * writes, so nothing more is destroyed); read-only, it is reported once.
 */
int qcow2_signal_corruption(struct qcow2 *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->checking)
		return -EIO;
	if (!s->bd->read_only) {
		if (!s->broken)
			fprintf(stderr, "qcow2: Marking image as corrupt: %s; further corruption "
					"events will be suppressed\n", msg);
		s->broken = true;
		/* The header write is the only one left: it keeps QEMU from writing too. */
		qcow2_set_incompat(s, QCOW2_INCOMPAT_CORRUPT, true);
	} else if (!s->corrupt_signalled) {
		fprintf(stderr, "qcow2: Image is corrupt: %s; further non-fatal corruption "
				"events will be suppressed\n", msg);
	}
	s->corrupt_signalled = true;
	return -EIO;
}

int qcow2_file_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len)
{
	int ret;

	/* Where tables are is written here first: the overlap index must look again. */
	if (off < s->cluster_size ||
	    (off < s->l1_offset + (uint64_t)s->l1_size * 8 && s->l1_offset < off + len) ||
	    (off < s->reftable_offset + s->reftable_size * 8 && s->reftable_offset < off + len))
		s->meta_gen++;
	ret = bfile_pwrite(s->bd, off, buf, len);

	if (ret == 0) {
		if (off + len > s->data_end)
			s->data_end = off + len;
		if (off + len > s->file_size)
			s->file_size = off + len;
	}
	return ret;
}

enum qcow2_type qcow2_entry_type(const struct qcow2 *s, uint64_t l2e)
{
	if (l2e & QCOW_OFLAG_COMPRESSED)
		return QCOW2_COMPRESSED;
	/* With extended L2 entries bit 0 is reserved: the bitmap says what reads as zero. */
	if ((l2e & QCOW_OFLAG_ZERO) && s->h.version >= 3 && !s->ext_l2)
		return qcow2_has_host(s, l2e) ? QCOW2_ZERO_ALLOC : QCOW2_ZERO_PLAIN;
	if (qcow2_has_host(s, l2e))
		return QCOW2_NORMAL;
	return QCOW2_UNALLOCATED;
}

/* A zero flag on a v2 standard entry (qcow2 spec: bit 0 is reserved before v3). */
static bool v2_zero(const struct qcow2 *s, uint64_t l2e)
{
	return s->h.version < 3 && !s->ext_l2 && (l2e & QCOW_OFLAG_ZERO) &&
	       !(l2e & QCOW_OFLAG_COMPRESSED);
}

/* The L2 table of an L1 entry for reading; *table is NULL when there is none. */
static int l2_load(struct qcow2 *s, uint64_t l1_index, uint64_t **table)
{
	uint64_t off = l1_index < s->l1_size ? s->l1[l1_index] & L1E_OFFSET_MASK : 0;

	*table = NULL;
	if (!off)
		return 0;
	if (qcow2_in_cluster(s, off))
		return qcow2_signal_corruption(s, "L2 table offset %#" PRIx64 " unaligned (L1 index: %#"
					       PRIx64 ")", off, l1_index);
	if (off < s->cluster_size)
		return qcow2_signal_corruption(s, "L2 table offset %#" PRIx64 " overlaps the header "
					       "(L1 index: %#" PRIx64 ")", off, l1_index);
	return qcow2_cache_get(s, &s->l2_cache, off, true, (void **)table);
}

int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, enum qcow2_type *type,
	      uint64_t *l2e, uint64_t *pnum)
{
	return qcow2_map_for(s, off, len, false, type, l2e, pnum);
}

int qcow2_map_for(struct qcow2 *s, uint64_t off, uint64_t len, bool write,
		  enum qcow2_type *type, uint64_t *l2e, uint64_t *pnum)
{
	uint64_t l1_index = off >> (s->l2_bits + s->cluster_bits);
	uint64_t l2_index = (off >> s->cluster_bits) & (s->l2_size - 1);
	uint64_t in = qcow2_in_cluster(s, off), n, max, first, *table;
	int ret;

	max = s->l2_size - l2_index;	/* clusters left in this L2 table */
	if (qcow2_size_to_clusters(s, in + len) < max)
		max = qcow2_size_to_clusters(s, in + len);
	ret = l2_load(s, l1_index, &table);
	if (ret < 0)
		return ret;
	if (!table) {
		*type = QCOW2_UNALLOCATED;
		*l2e = 0;
		n = max;
		goto done;
	}
	if (s->ext_l2) {
		ret = qcow2_map_ext(s, table, off, len, write, type, l2e, pnum);
		goto out;
	}
	first = be64toh(table[l2_index]);
	*type = qcow2_entry_type(s, first);
	*l2e = first;
	/* As QEMU's qcow2_get_host_offset: v2 has no zero clusters; the flag is corruption. */
	if (v2_zero(s, first)) {
		ret = qcow2_signal_corruption(s, "Zero cluster entry found in pre-v3 image (L2 "
					      "offset: %#" PRIx64 ", L2 index: %#" PRIx64 ")",
					      (uint64_t)(s->l1[l1_index] & L1E_OFFSET_MASK), l2_index);
		goto out;
	}
	ret = qcow2_check_entry(s, first, *type, off, write);
	if (ret < 0)
		goto out;
	for (n = 1; n < max && *type != QCOW2_COMPRESSED; n++) {
		uint64_t e = be64toh(table[l2_index + n]);
		if (qcow2_entry_type(s, e) != *type || v2_zero(s, e))
			break;
		if ((*type == QCOW2_NORMAL || *type == QCOW2_ZERO_ALLOC) &&
		    (e & L2E_OFFSET_MASK) != (first & L2E_OFFSET_MASK) + (n << s->cluster_bits))
			break;
		if ((e & QCOW_OFLAG_COPIED) != (first & QCOW_OFLAG_COPIED))
			break;
	}
	if (n > 1 && (*type == QCOW2_NORMAL || *type == QCOW2_ZERO_ALLOC))
		n = qcow2_sane_run(s, first & L2E_OFFSET_MASK, *type, n);
done:
	*pnum = (n << s->cluster_bits) - in;
	if (*pnum > len)
		*pnum = len;
out:
	if (table)
		qcow2_cache_put(&s->l2_cache, table);
	return ret;
}

/* Inflates a cluster from the first csize bytes of its compressed data (none: -EIO). */
static int read_compressed_len(struct qcow2 *s, uint64_t l2e, size_t csize, uint8_t *out)
{
	uint64_t coff = l2e & s->cluster_offset_mask;
	uint8_t *in;
	int ret;

	if (!csize)
		return -EIO;
	in = malloc(csize);
	if (!in)
		return -ENOMEM;
	ret = bfile_pread(s->bd, coff, in, csize);
	if (ret == 0)
		ret = qcow2_decompress(s->h.compression_type, out, s->cluster_size, in, csize);
	free(in);
	return ret;
}

/* Every sector the descriptor counts (qcow2 spec; QEMU's qcow2_parse_compressed_l2_entry). */
int qcow2_read_compressed(struct qcow2 *s, uint64_t l2e, uint8_t *out)
{
	uint64_t coff = l2e & s->cluster_offset_mask;
	uint64_t sectors = ((l2e >> s->csize_shift) & s->csize_mask) + 1;

	return read_compressed_len(s, l2e, (size_t)(sectors * 512 - (coff & 511)), out);
}

/* Reads one compressed cluster through a one-entry cache (sequential small reads). */
static int read_compressed_part(struct qcow2 *s, uint64_t l2e, size_t csize, uint64_t in,
				void *buf, size_t len)
{
	int ret;

	if (!s->zbuf) {
		s->zbuf = malloc(s->cluster_size);
		if (!s->zbuf)
			return -ENOMEM;
	}
	if (!s->zbuf_valid || s->zbuf_offset != l2e) {
		s->zbuf_valid = false;
		ret = read_compressed_len(s, l2e, csize, s->zbuf);
		if (ret < 0)
			return ret;
		s->zbuf_offset = l2e;
		s->zbuf_valid = true;
	}
	memcpy(buf, s->zbuf + in, len);
	return 0;
}

int qcow2_read(struct qcow2 *s, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;
	int ret;

	while (len) {
		enum qcow2_type type;
		uint64_t l2e, n, in = qcow2_in_cluster(s, off);
		size_t csize = 0;

		pthread_mutex_lock(&s->lock);
		ret = qcow2_map(s, off, len, &type, &l2e, &n);
		if (ret == 0 && type == QCOW2_COMPRESSED)
			ret = qcow2_compressed_readable(s, l2e, &csize);
		/* Part of a compressed cluster: through the one-cluster cache, under the lock. */
		if (ret == 0 && type == QCOW2_COMPRESSED && (in || n != s->cluster_size))
			ret = read_compressed_part(s, l2e, csize, in, p, (size_t)n);
		if (ret == 0)
			s->inflight++;	/* the clusters read must not be freed and reused meanwhile */
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			return ret;
		switch (type) {
		case QCOW2_UNALLOCATED:
			ret = block_read_backing(s->bd, off, p, (size_t)n);
			break;
		case QCOW2_ZERO_PLAIN:
		case QCOW2_ZERO_ALLOC:
			memset(p, 0, (size_t)n);
			break;
		case QCOW2_NORMAL:
			ret = qcow2_data_pread(s, (l2e & L2E_OFFSET_MASK) + in, p, (size_t)n);
			break;
		case QCOW2_COMPRESSED:
			/* A whole cluster decompresses straight into the buffer, in parallel. */
			if (!in && n == s->cluster_size)
				ret = read_compressed_len(s, l2e, csize, p);
			break;
		}
		pthread_mutex_lock(&s->lock);
		s->inflight--;
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int qcow2_write_l1_entry(struct qcow2 *s, uint32_t index)
{
	uint8_t e[8];

	st_be64(e, s->l1[index]);
	return qcow2_checked_write(s, QCOW2_OL_ACTIVE_L1, s->l1_offset + (uint64_t)index * 8, e,
				   sizeof(e));
}

/*
 * The L2 table of l1_index for writing: allocated when missing, copied when
 * shared with a snapshot (L1 entry without COPIED).  The new table reaches
 * the disk before the L1 entry that points at it.
 */
static int l2_get_writable(struct qcow2 *s, uint64_t l1_index, uint64_t **table)
{
	uint64_t old = s->l1[l1_index] & L1E_OFFSET_MASK, new;
	uint64_t *old_table = NULL;
	int ret;

	if (old && (s->l1[l1_index] & QCOW_OFLAG_COPIED))
		return l2_load(s, l1_index, table);
	if (old) {
		ret = l2_load(s, l1_index, &old_table);
		if (ret < 0)
			return ret;
	}
	ret = qcow2_alloc_clusters(s, 1, &new);
	if (ret < 0)
		goto out;
	ret = qcow2_cache_get(s, &s->l2_cache, new, false, (void **)table);
	if (ret < 0)
		goto out;
	if (old_table)
		memcpy(*table, old_table, s->cluster_size);
	ret = qcow2_rc_flush(s, true);
	if (ret == 0)
		ret = qcow2_checked_write(s, 0, new, *table, s->cluster_size);
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH) && !s->dirty_bit_set)
		ret = bfile_flush(s->bd);
	if (ret < 0) {
		qcow2_cache_put(&s->l2_cache, *table);
		qcow2_cache_discard(&s->l2_cache, new);
		*table = NULL;
		goto out;
	}
	s->l1[l1_index] = new | QCOW_OFLAG_COPIED;
	ret = qcow2_write_l1_entry(s, (uint32_t)l1_index);
	if (ret == 0 && old)
		ret = qcow2_free_later(s, old, 1);
	if (ret < 0) {
		qcow2_cache_put(&s->l2_cache, *table);
		*table = NULL;
	}
out:
	if (old_table)
		qcow2_cache_put(&s->l2_cache, old_table);
	return ret;
}

/* What a cluster held before a write replaces it: for the bytes the write leaves alone. */
static int cow_read(struct qcow2 *s, uint64_t guest, uint64_t l2e, uint8_t *buf)
{
	switch (qcow2_entry_type(s, l2e)) {
	case QCOW2_UNALLOCATED:
		/*
		 * "backing": null (BLOCK_NO_BACKING): the node has no backing, so
		 * the rest of the cluster is zeroes, as QEMU writes it.  A backing
		 * file that should be open and is not cannot be copied up.
		 */
		if (s->backing_file && !s->bd->backing && !(s->bd->flags & BLOCK_NO_BACKING))
			return -EINVAL;
		return block_read_backing(s->bd, guest, buf, s->cluster_size);
	case QCOW2_ZERO_PLAIN:
	case QCOW2_ZERO_ALLOC:
		memset(buf, 0, s->cluster_size);
		return 0;
	case QCOW2_NORMAL:
		return qcow2_data_pread(s, l2e & L2E_OFFSET_MASK, buf, s->cluster_size);
	case QCOW2_COMPRESSED:
		return qcow2_read_compressed(s, l2e, buf);
	}
	return -EIO;
}

static bool reads_as_zero(struct qcow2 *s, uint64_t guest, uint64_t l2e)
{
	enum qcow2_type t = qcow2_entry_type(s, l2e);

	if (t == QCOW2_ZERO_PLAIN || t == QCOW2_ZERO_ALLOC)
		return true;
	if (t != QCOW2_UNALLOCATED)
		return false;
	if (!s->backing_file)
		return true;
	return s->bd->backing && guest >= s->bd->backing->size;
}

int qcow2_release_entry(struct qcow2 *s, uint64_t l2e)
{
	switch (qcow2_entry_type(s, l2e)) {
	case QCOW2_NORMAL:
	case QCOW2_ZERO_ALLOC:
		/* qcow2 spec: clusters of an external data file are not refcounted. */
		if (qcow2_has_data_file(s))
			return 0;
		return qcow2_free_later(s, l2e & L2E_OFFSET_MASK, 1);
	case QCOW2_COMPRESSED:
		return qcow2_free_compressed_later(s, l2e);
	default:
		return 0;
	}
}

/*
 * Writes [in, in+len) of guest cluster `guest` (cluster aligned) at host
 * cluster `host`, filling the rest from what the cluster held before.
 */
static int write_cluster_part(struct qcow2 *s, uint64_t guest, uint64_t l2e, uint64_t host,
			      uint64_t in, const uint8_t *data, size_t len)
{
	uint8_t *bounce;
	int ret;

	if (in == 0 && len == s->cluster_size)
		return qcow2_data_pwrite(s, host, data, len);
	/*
	 * Fresh space past anything ever written is zero already.  QEMU's
	 * handle_alloc_space still writes the cluster's zero parts as zeroes
	 * (fallocate), so the whole cluster is allocated in the file as in
	 * qemu-img's images; then only the data goes out.  Without fallocate,
	 * the whole cluster is written below, as QEMU's COW fallback does.
	 */
	/* Encrypted, zeroes must be ciphertext too: the whole cluster is written below. */
	if (!qcow2_has_data_file(s) && !s->crypt && host >= s->data_end &&
	    reads_as_zero(s, guest, l2e)) {
		block_crash_point();
		if (fallocate(s->bd->fd, 0, (off_t)host, (off_t)s->cluster_size) == 0)
			return qcow2_data_pwrite(s, host + in, data, len);
	}
	/* In an external data file the cluster may hold old bytes: zeroed, not just allocated. */
	if (qcow2_has_data_file(s) && !s->crypt && reads_as_zero(s, guest, l2e) &&
	    qcow2_data_zero_fast(s, host, s->cluster_size) == 0)
		return qcow2_data_pwrite(s, host + in, data, len);
	bounce = block_alloc_buf(s->cluster_size);
	if (!bounce)
		return -ENOMEM;
	ret = cow_read(s, guest, l2e, bounce);
	if (ret == 0) {
		memcpy(bounce + in, data, len);
		ret = qcow2_data_pwrite(s, host, bounce, s->cluster_size);
	}
	free(bounce);
	return ret;
}

static bool in_place(const struct qcow2 *s, uint64_t l2e)
{
	enum qcow2_type t = qcow2_entry_type(s, l2e);

	return (t == QCOW2_NORMAL || t == QCOW2_ZERO_ALLOC) && (l2e & QCOW_OFLAG_COPIED);
}

static int mark_dirty(struct qcow2 *s)
{
	int ret;

	/* Lazy refcounts: the dirty bit says the refcounts may be behind (qcow2 spec). */
	if (s->dirty_bit_set || !(s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS))
		return 0;
	ret = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, true);
	if (ret == 0)
		s->dirty_bit_set = true;
	return ret;
}

/* One write within one L2 table, shared by write_in_table's steps. */
struct table_write {
	struct qcow2 *s;
	uint64_t *table;		/* big-endian entries */
	uint64_t l2_index;		/* the entry of the write's first cluster */
	uint64_t off, in;		/* guest offset, and its offset in that cluster */
	const uint8_t *buf;
	size_t len;
};

/* The write's data for its cluster i. */
static const uint8_t *tw_src(const struct table_write *w, uint64_t i)
{
	return w->buf + (i ? (i << w->s->cluster_bits) - w->in : 0);
}

/* n bytes from cluster i's data on, at most what the write has left. */
static size_t tw_clip(const struct table_write *w, uint64_t i, size_t n)
{
	size_t left = w->len - (size_t)(tw_src(w, i) - w->buf);

	return n > left ? left : n;
}

/* Cluster i, a preallocated zero cluster: its old bytes are not zeroes. */
static int write_zero_alloc(struct table_write *w, uint64_t i, uint64_t host)
{
	struct qcow2 *s = w->s;
	uint64_t first_off = i ? 0 : w->in;
	const uint8_t *src = tw_src(w, i);
	size_t n = tw_clip(w, i, (size_t)(s->cluster_size - first_off));
	int ret;

	if (first_off || n != s->cluster_size) {
		uint8_t *z = block_alloc_buf(s->cluster_size);
		if (!z)
			return -ENOMEM;
		memset(z, 0, s->cluster_size);
		memcpy(z + first_off, src, n);
		ret = qcow2_data_pwrite(s, host, z, s->cluster_size);
		free(z);
	} else {
		ret = qcow2_data_pwrite(s, host, src, n);
	}
	if (ret < 0)
		return ret;
	w->table[w->l2_index + i] = htobe64(host | QCOW_OFLAG_COPIED);
	return 0;
}

/* A run from cluster i of writable clusters contiguous on the host; *next: the cluster after it. */
static int write_in_place(struct table_write *w, uint64_t i, uint64_t count, uint64_t *next)
{
	struct qcow2 *s = w->s;
	uint64_t host = be64toh(w->table[w->l2_index + i]) & L2E_OFFSET_MASK, j;
	uint64_t first_off = i ? 0 : w->in;

	for (j = i + 1; j < count; j++) {
		uint64_t f = be64toh(w->table[w->l2_index + j]);
		if (!in_place(s, f) || qcow2_entry_type(s, f) != QCOW2_NORMAL ||
		    (f & L2E_OFFSET_MASK) != host + ((j - i) << s->cluster_bits) ||
		    (!qcow2_has_data_file(s) && !qcow2_in_file(s, f & L2E_OFFSET_MASK)))
			break;
	}
	*next = j;
	return qcow2_data_pwrite(s, host + first_off, tw_src(w, i),
				 tw_clip(w, i, (size_t)(((j - i) << s->cluster_bits) - first_off)));
}

/*
 * The run from cluster i of clusters that need new space, up to the next
 * one writable in place: *end.  What each old entry points at is dropped
 * once it is replaced, so it must be data.
 */
static int new_space_run(struct table_write *w, uint64_t i, uint64_t count, uint64_t *end)
{
	struct qcow2 *s = w->s;
	uint64_t guest = ((w->off >> s->cluster_bits) + i) << s->cluster_bits, j;
	int ret;

	for (j = i + 1; j < count; j++) {
		uint64_t f = be64toh(w->table[w->l2_index + j]);
		if (in_place(s, f))
			break;
		ret = qcow2_check_entry(s, f, qcow2_entry_type(s, f),
					guest + ((j - i) << s->cluster_bits), true);
		if (ret < 0)
			return ret;
	}
	*end = j;
	return 0;
}

/* Points entry k at host and drops what it pointed at before. */
static int replace_entry(struct table_write *w, uint64_t k, uint64_t host)
{
	uint64_t old = be64toh(w->table[w->l2_index + k]);

	w->table[w->l2_index + k] = htobe64(host | QCOW_OFLAG_COPIED);
	return qcow2_release_entry(w->s, old);
}

/* Clusters [i, j) into the new space at host, the first and last merged with their old content. */
static int write_new_run(struct table_write *w, uint64_t i, uint64_t j, uint64_t host)
{
	struct qcow2 *s = w->s;
	int ret;

	for (uint64_t k = i; k < j; k++) {
		uint64_t old = be64toh(w->table[w->l2_index + k]);
		uint64_t g = ((w->off >> s->cluster_bits) + k) << s->cluster_bits;
		uint64_t h = host + ((k - i) << s->cluster_bits);
		uint64_t c_in = k ? 0 : w->in;
		const uint8_t *c_src = tw_src(w, k);
		size_t c_len = tw_clip(w, k, (size_t)(s->cluster_size - c_in));

		/* Whole clusters in the middle go out in one write below. */
		if (c_in == 0 && c_len == s->cluster_size) {
			uint64_t m = k + 1;
			while (m < j && ((m + 1) << s->cluster_bits) - w->in <= w->len)
				m++;
			ret = qcow2_data_pwrite(s, h, c_src, (size_t)((m - k) << s->cluster_bits));
			if (ret < 0)
				return ret;
			for (; k < m; k++) {
				ret = replace_entry(w, k, host + ((k - i) << s->cluster_bits));
				if (ret < 0)
					return ret;
			}
			k--;
			continue;
		}
		ret = write_cluster_part(s, g, old, h, c_in, c_src, c_len);
		if (ret == 0)
			ret = replace_entry(w, k, h);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Writes within one L2 table: clusters [l2_index, l2_index + count) of the table. */
static int write_in_table(struct qcow2 *s, uint64_t *table, uint64_t off, const uint8_t *buf,
			  size_t len)
{
	struct table_write w = {
		.s = s, .table = table, .l2_index = (off >> s->cluster_bits) & (s->l2_size - 1),
		.off = off, .in = qcow2_in_cluster(s, off), .buf = buf, .len = len,
	};
	uint64_t count = qcow2_size_to_clusters(s, w.in + len), i = 0, j, host;
	int ret;

	while (i < count) {
		uint64_t e = be64toh(table[w.l2_index + i]);
		uint64_t guest = ((off >> s->cluster_bits) + i) << s->cluster_bits;

		ret = qcow2_check_entry(s, e, qcow2_entry_type(s, e), guest, true);
		if (ret < 0)
			return ret;
		if (in_place(s, e) && qcow2_entry_type(s, e) == QCOW2_ZERO_ALLOC) {
			ret = write_zero_alloc(&w, i, e & L2E_OFFSET_MASK);
			j = i + 1;
		} else if (in_place(s, e)) {
			ret = write_in_place(&w, i, count, &j);
		} else {
			/* A run of clusters that need new space: allocated contiguously. */
			ret = new_space_run(&w, i, count, &j);
			if (ret == 0)
				ret = qcow2_data_alloc(s, guest, j - i, &host);
			if (ret == 0)
				ret = write_new_run(&w, i, j, host);
		}
		if (ret < 0)
			return ret;
		i = j;
	}
	return 0;
}

int qcow2_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int ret = s->broken ? -EIO : mark_dirty(s);

	while (ret == 0 && len) {
		uint64_t l1_index = off >> (s->l2_bits + s->cluster_bits);
		uint64_t table_end = (l1_index + 1) << (s->l2_bits + s->cluster_bits);
		size_t n = table_end - off < len ? (size_t)(table_end - off) : len;
		uint64_t *table;

		if (l1_index >= s->l1_size)
			return -EINVAL;
		ret = l2_get_writable(s, l1_index, &table);
		if (ret < 0)
			return ret;
		ret = s->ext_l2 ? qcow2_write_in_table_ext(s, table, off, p, n)
				: write_in_table(s, table, off, p, n);
		qcow2_cache_mark_dirty(&s->l2_cache, table);
		qcow2_cache_put(&s->l2_cache, table);
		p += n;
		off += n;
		len -= n;
	}
	return ret;
}

int qcow2_write_compressed(struct qcow2 *s, uint64_t off, const void *cdata, size_t clen)
{
	uint64_t l1_index = off >> (s->l2_bits + s->cluster_bits);
	uint64_t l2_index = (off >> s->cluster_bits) & (s->l2_size - 1);
	uint64_t *table, host, old, sectors;
	int ret = s->broken ? -EIO : mark_dirty(s);

	if (ret < 0)
		return ret;
	/* qcow2 spec: an image with an external data file has no compressed clusters. */
	if (qcow2_has_data_file(s))
		return -ENOTSUP;
	ret = l2_get_writable(s, l1_index, &table);
	if (ret < 0)
		return ret;
	old = qcow2_l2_get(s, table, l2_index);
	/* What the old entry points at loses a reference: it must not be metadata. */
	ret = qcow2_check_entry(s, old, qcow2_entry_type(s, old), off, true);
	if (ret == 0)
		ret = qcow2_alloc_bytes(s, clen, &host);
	if (ret == 0)
		ret = qcow2_checked_write(s, 0, host, cdata, clen);
	if (ret == 0) {
		/* qcow2 spec: the size field counts 512-byte sectors beyond the first. */
		sectors = ((host + clen - 1) >> 9) - (host >> 9);
		qcow2_l2_set(s, table, l2_index, QCOW_OFLAG_COMPRESSED | (sectors << s->csize_shift) | host);
		qcow2_l2_set_bitmap(s, table, l2_index, 0);
		qcow2_cache_mark_dirty(&s->l2_cache, table);
		ret = qcow2_release_entry(s, old);
	}
	qcow2_cache_put(&s->l2_cache, table);
	return ret;
}

/* Zeroes whole clusters [first, first+count) within one L2 table. */
static int zero_in_table(struct qcow2 *s, uint64_t l1_index, uint64_t first, uint64_t count,
			 bool may_unmap)
{
	uint64_t *table, l2_index = first & (s->l2_size - 1);
	/* The header decides, even when the backing file was not opened. */
	bool v3 = s->h.version >= 3, backing = s->backing_file != NULL;
	int ret;

	/*
	 * Nothing mapped and nothing below: it reads as zeroes already.  v3 still
	 * records zero clusters, as QEMU's zero_in_l2_slice does whether or not
	 * it may unmap: qemu-img convert -n and commit show them present, and
	 * they stay zero under a backing file added later.  v2 has no zero flag.
	 */
	if (!(s->l1[l1_index] & L1E_OFFSET_MASK) && !backing && !v3)
		return 0;
	ret = l2_get_writable(s, l1_index, &table);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < count && ret == 0; i++) {
		uint64_t e = qcow2_l2_get(s, table, l2_index + i), ne;
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (!v3) {
			ne = 0;	/* v2 has no zero flag; with a backing file we wrote bytes */
		} else if (!may_unmap && in_place(s, e)) {
			ne = (e & L2E_OFFSET_MASK) | QCOW_OFLAG_COPIED | QCOW_OFLAG_ZERO;
		} else {
			ne = QCOW_OFLAG_ZERO;
		}
		if (s->ext_l2) {
			uint64_t nbm;
			qcow2_zero_entry_ext(s, e, ne, &ne, &nbm);
			if (ne == e && nbm == qcow2_l2_bitmap(s, table, l2_index + i))
				continue;
			qcow2_l2_set_bitmap(s, table, l2_index + i, nbm);
		} else if (ne == e || (t == QCOW2_UNALLOCATED && ne == 0)) {
			continue;
		}
		qcow2_l2_set(s, table, l2_index + i, ne);
		if ((ne & L2E_OFFSET_MASK) != (e & L2E_OFFSET_MASK) || t == QCOW2_COMPRESSED)
			ret = qcow2_release_entry(s, e);
	}
	qcow2_cache_mark_dirty(&s->l2_cache, table);
	qcow2_cache_put(&s->l2_cache, table);
	return ret;
}

/* qcow2_write and qcow2_file_write for block_write_zero_buffer. */
static int guest_write(void *s, uint64_t off, const void *buf, size_t len)
{
	return qcow2_write(s, off, buf, len);
}

static int file_write(void *s, uint64_t off, const void *buf, size_t len)
{
	return qcow2_file_write(s, off, buf, len);
}

static int write_zero_bytes(struct qcow2 *s, uint64_t off, uint64_t len)
{
	return block_write_zero_buffer(guest_write, s, off, len);
}

int qcow2_file_write_zeroes(struct qcow2 *s, uint64_t off, uint64_t len)
{
	return block_write_zero_buffer(file_write, s, off, len);
}

/*
 * Part of one cluster: with extended L2 entries the whole subclusters in it
 * only get their zero bits (QEMU's zero_l2_subclusters); bytes around them,
 * and compressed clusters, are written.
 */
static int zero_in_cluster(struct qcow2 *s, uint64_t off, uint64_t len)
{
	uint64_t scs = 1ULL << s->sc_bits, a = (off + scs - 1) & ~(scs - 1);
	uint64_t b = (off + len) & ~(scs - 1), *table;
	int ret;

	if (!s->ext_l2 || a >= b)
		return write_zero_bytes(s, off, len);
	if (a > off && (ret = write_zero_bytes(s, off, a - off)) < 0)
		return ret;
	ret = l2_get_writable(s, a >> (s->l2_bits + s->cluster_bits), &table);
	if (ret < 0)
		return ret;
	ret = qcow2_zero_subclusters(s, table, a, b - a);
	qcow2_cache_mark_dirty(&s->l2_cache, table);
	qcow2_cache_put(&s->l2_cache, table);
	if (ret == -ENOTSUP)
		ret = write_zero_bytes(s, a, b - a);
	if (ret == 0 && off + len > b)
		ret = write_zero_bytes(s, b, off + len - b);
	return ret;
}

static int zero_part(struct qcow2 *s, uint64_t off, uint64_t len)
{
	int ret = 0;

	while (len && ret == 0) {
		uint64_t n = s->cluster_size - qcow2_in_cluster(s, off);
		if (n > len)
			n = len;
		ret = zero_in_cluster(s, off, n);
		off += n;
		len -= n;
	}
	return ret;
}

int qcow2_zero(struct qcow2 *s, uint64_t off, uint64_t len, bool may_unmap)
{
	uint64_t head, tail, first, end, l2_span = (uint64_t)s->l2_size;
	int ret = s->broken ? -EIO : mark_dirty(s);

	if (ret < 0)
		return ret;
	/* Raw external data: the data file itself must read as zeroes too (qcow2 spec). */
	if (s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) {
		ret = qcow2_data_zero(s, off, len);
		if (ret < 0)
			return ret;
	}
	/*
	 * v2 has no zero flag: with a backing file, or where the caller needs
	 * the zeroes to stay when one is added (no unmap), they are written.
	 */
	if (s->h.version < 3 && (s->backing_file || !may_unmap))
		return write_zero_bytes(s, off, len);
	head = qcow2_align(s, off);
	end = off + len;
	/* The last cluster may stick out past the disk: the disk's end counts as aligned. */
	tail = end == s->bd->size ? end : end & ~(uint64_t)(s->cluster_size - 1);
	if (head >= tail)
		return zero_part(s, off, len);
	if (head > off) {
		ret = zero_part(s, off, head - off);
		if (ret < 0)
			return ret;
	}
	first = head >> s->cluster_bits;
	end = qcow2_size_to_clusters(s, tail);
	while (first < end && ret == 0) {
		uint64_t l1_index = first >> s->l2_bits;
		uint64_t n = ((l1_index + 1) * l2_span) - first;
		if (n > end - first)
			n = end - first;
		ret = zero_in_table(s, l1_index, first, n, may_unmap);
		first += n;
	}
	if (ret == 0 && tail < off + len)
		ret = zero_part(s, tail, off + len - tail);
	return ret;
}

/* A bigger L1 table (resize): written in full before the header points at it. */
int qcow2_grow_l1(struct qcow2 *s, uint64_t min_size)
{
	uint64_t new_size = min_size, new_off, bytes, *l1;
	uint8_t *raw, field[12];
	int ret;

	if (min_size <= s->l1_size)
		return 0;
	if (min_size > QCOW2_MAX_L1_BYTES / 8)
		return -EFBIG;
	bytes = qcow2_align(s, new_size * 8);
	raw = block_alloc_buf((size_t)bytes);
	l1 = calloc(new_size, sizeof(*l1));
	if (!raw || !l1) {
		free(raw);
		free(l1);
		return -ENOMEM;
	}
	memcpy(l1, s->l1, s->l1_size * sizeof(*l1));
	memset(raw, 0, (size_t)bytes);
	for (uint64_t i = 0; i < new_size; i++)
		st_be64(raw + 8 * i, l1[i]);
	ret = qcow2_alloc_clusters(s, bytes >> s->cluster_bits, &new_off);
	if (ret == 0)
		ret = qcow2_rc_flush(s, true);
	if (ret == 0)
		/* Only the entries, as QEMU writes them: a new image ends right after its L1 table. */
		ret = qcow2_checked_write(s, 0, new_off, raw, (size_t)(new_size * 8));
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret == 0) {
		st_be32(field, (uint32_t)new_size);
		st_be64(field + 4, new_off);
		ret = qcow2_file_write(s, 36, field, sizeof(field));
	}
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	if (ret == 0) {
		uint64_t old_off = s->l1_offset, old_bytes = qcow2_align(s, (uint64_t)s->l1_size * 8);
		free(s->l1);
		s->l1 = l1;
		l1 = NULL;
		s->l1_size = (uint32_t)new_size;
		s->l1_offset = new_off;
		s->h.l1_size = s->l1_size;
		s->h.l1_table_offset = new_off;
		if (old_off && old_bytes)
			ret = qcow2_free_now(s, old_off, old_bytes >> s->cluster_bits);
	}
	free(l1);
	free(raw);
	return ret;
}

/* Points unallocated entries [l2_index, +n) at host clusters from `host` on (preallocation). */
int qcow2_write_l2_range(struct qcow2 *s, uint64_t l1_index, uint64_t l2_index, uint64_t n,
			 uint64_t host)
{
	uint64_t *table;
	int ret = l2_get_writable(s, l1_index, &table);

	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t e = qcow2_l2_get(s, table, l2_index + i), h = host + (i << s->cluster_bits);
		enum qcow2_type t = qcow2_entry_type(s, e);
		if (t != QCOW2_UNALLOCATED && t != QCOW2_ZERO_PLAIN) {
			/* Already has space: the cluster set aside for it goes back. */
			if (!qcow2_has_data_file(s))
				ret = qcow2_free_now(s, h, 1);
			continue;
		}
		/*
		 * Extended L2: the bitmap stays as it was, so preallocated subclusters
		 * still read from below (QEMU leaves it for preallocation too).
		 */
		qcow2_l2_set(s, table, l2_index + i, h | QCOW_OFLAG_COPIED);
	}
	qcow2_cache_mark_dirty(&s->l2_cache, table);
	qcow2_cache_put(&s->l2_cache, table);
	return ret;
}

/* Unmaps every guest cluster from the one containing `size` rounded up (shrink, make_empty). */
int qcow2_drop_beyond(struct qcow2 *s, uint64_t size)
{
	uint64_t first = qcow2_size_to_clusters(s, size);
	int ret = 0;

	for (uint64_t i = first >> s->l2_bits; i < s->l1_size && ret == 0; i++) {
		uint64_t off = s->l1[i] & L1E_OFFSET_MASK, start = 0, *table;
		bool whole;

		if (!off)
			continue;
		if ((i << s->l2_bits) < first)
			start = first - (i << s->l2_bits);
		whole = start == 0;
		if (whole) {
			/* The whole table goes: its entries lose this L1's reference too. */
			ret = qcow2_cache_get(s, &s->l2_cache, off, true, (void **)&table);
			if (ret < 0)
				break;
			for (uint32_t j = 0; j < s->l2_size && ret == 0; j++)
				ret = qcow2_release_entry(s, qcow2_l2_get(s, table, j));
			qcow2_cache_put(&s->l2_cache, table);
			if (ret < 0)
				break;
			s->l1[i] = 0;
			ret = qcow2_write_l1_entry(s, (uint32_t)i);
			if (ret == 0)
				ret = qcow2_free_later(s, off, 1);
			continue;
		}
		ret = l2_get_writable(s, i, &table);
		if (ret < 0)
			break;
		for (uint64_t j = start; j < s->l2_size && ret == 0; j++) {
			uint64_t e = qcow2_l2_get(s, table, j);
			if (!e && !qcow2_l2_bitmap(s, table, j))
				continue;
			qcow2_l2_set(s, table, j, 0);
			qcow2_l2_set_bitmap(s, table, j, 0);
			ret = qcow2_release_entry(s, e);
		}
		qcow2_cache_mark_dirty(&s->l2_cache, table);
		qcow2_cache_put(&s->l2_cache, table);
	}
	return ret;
}

/* Cuts the file after the last cluster in use (after a shrink). */
int qcow2_trim_file(struct qcow2 *s)
{
	uint64_t last = 0, rc;
	int ret;

	for (uint64_t c = qcow2_size_to_clusters(s, s->file_size); c > 0; c--) {
		ret = qcow2_get_refcount(s, c - 1, &rc);
		if (ret < 0)
			return ret;
		if (rc) {
			last = c;
			break;
		}
	}
	if (last && (last << s->cluster_bits) < s->file_size) {
		block_crash_point();
		if (ftruncate(s->bd->fd, (off_t)(last << s->cluster_bits)) < 0)
			return -errno;
		s->file_size = last << s->cluster_bits;
		if (s->data_end > s->file_size)
			s->data_end = s->file_size;
		if (s->alloc_end > s->file_size)
			s->alloc_end = s->file_size;
	}
	return 0;
}
