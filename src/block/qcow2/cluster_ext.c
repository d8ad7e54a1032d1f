/*
 * Extended L2 entries (qcow2 spec: "Extended L2 Entries", incompatible bit
 * 4): each L2 entry is followed by a 64-bit bitmap that splits the cluster
 * into 32 subclusters; bit x says subcluster x is allocated (read from the
 * host cluster), bit 32 + x that it reads as zeroes, neither that it reads
 * from the backing file.  A write allocates the whole host cluster but marks
 * only the subclusters it covers, so a partial write copies at most two
 * subclusters from below instead of a whole cluster.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SC_MASK(first, last) \
	((uint32_t)((0xffffffffULL >> (31 - (last))) & (0xffffffffULL << (first))))

/* QEMU's qcow2_get_subcluster_type: a bitmap the spec forbids makes the whole cluster invalid. */
int qcow2_subcluster_type(const struct qcow2 *s, uint64_t l2e, uint64_t bm, unsigned sc,
			  enum qcow2_type *type)
{
	uint32_t alloc = (uint32_t)bm, zero = (uint32_t)(bm >> 32);

	if (l2e & QCOW_OFLAG_COMPRESSED) {
		*type = QCOW2_COMPRESSED;
		return 0;
	}
	if (qcow2_has_host(s, l2e)) {
		if (alloc & zero)
			return -EIO;
		*type = zero >> sc & 1 ? QCOW2_ZERO_ALLOC : alloc >> sc & 1 ? QCOW2_NORMAL
								       : QCOW2_UNALLOCATED;
		return 0;
	}
	/* No host cluster: allocation bits must be clear. */
	if (alloc)
		return -EIO;
	*type = zero >> sc & 1 ? QCOW2_ZERO_PLAIN : QCOW2_UNALLOCATED;
	return 0;
}

/* QEMU's wording, double space included; guest is any offset in the cluster. */
static int invalid_entry(struct qcow2 *s, uint64_t guest, uint64_t l2_index)
{
	uint64_t l1_index = guest >> (s->l2_bits + s->cluster_bits);
	uint64_t l2_off = l1_index < s->l1_size ? s->l1[l1_index] & L1E_OFFSET_MASK : 0;

	return qcow2_signal_corruption(s, "Invalid cluster entry found  (L2 offset: %#" PRIx64
				       ", L2 index: %#" PRIx64 ")", l2_off, l2_index);
}

/* Whether `pos` continues a run of `type` that began at `off` with entry `first`. */
static bool run_continues(const struct qcow2 *s, enum qcow2_type type, uint64_t first,
			  uint64_t off, uint64_t e, uint64_t pos)
{
	uint64_t base = off & ~(uint64_t)(s->cluster_size - 1);
	uint64_t pbase = pos & ~(uint64_t)(s->cluster_size - 1);

	if (pbase == base)
		return true;
	if ((e & QCOW_OFLAG_COPIED) != (first & QCOW_OFLAG_COPIED))
		return false;
	/* Block status reports the host offset of every subcluster with one, even unallocated. */
	if (qcow2_has_host(s, first) != qcow2_has_host(s, e))
		return false;
	if (!qcow2_has_host(s, first) || type == QCOW2_COMPRESSED)
		return true;
	return (e & L2E_OFFSET_MASK) == (first & L2E_OFFSET_MASK) + (pbase - base);
}

int qcow2_map_ext(struct qcow2 *s, const uint64_t *table, uint64_t off, uint64_t len,
		  bool write, enum qcow2_type *type, uint64_t *l2e, uint64_t *pnum)
{
	uint64_t cmask = s->cluster_size - 1, scs = 1ULL << s->sc_bits;
	uint64_t l2_index = (off >> s->cluster_bits) & (s->l2_size - 1);
	uint64_t table_end = (off & ~cmask) + ((uint64_t)(s->l2_size - l2_index) << s->cluster_bits);
	uint64_t end = off + len < table_end ? off + len : table_end, pos;
	uint64_t first = qcow2_l2_get(s, table, l2_index);
	unsigned sc = (unsigned)(qcow2_in_cluster(s, off) >> s->sc_bits);
	int ret;

	if (qcow2_subcluster_type(s, first, qcow2_l2_bitmap(s, table, l2_index), sc, type) < 0)
		return invalid_entry(s, off, l2_index);
	*l2e = first;
	ret = qcow2_check_entry(s, first, *type, off, write);
	if (ret < 0)
		return ret;
	pos = (off & ~(scs - 1)) + scs;
	if (*type == QCOW2_COMPRESSED) {
		pos = (off & ~cmask) + s->cluster_size;
	} else {
		while (pos < end) {
			uint64_t i = (pos >> s->cluster_bits) & (s->l2_size - 1);
			uint64_t e = qcow2_l2_get(s, table, i);
			enum qcow2_type t;

			if (qcow2_subcluster_type(s, e, qcow2_l2_bitmap(s, table, i),
						  (unsigned)(qcow2_in_cluster(s, pos) >> s->sc_bits),
						  &t) < 0 || t != *type ||
			    !run_continues(s, *type, first, off, e, pos))
				break;
			/* A new host cluster joins the run: it must pass the same checks. */
			if (!qcow2_in_cluster(s, pos) && (t == QCOW2_NORMAL || t == QCOW2_ZERO_ALLOC) &&
			    qcow2_sane_run(s, (e & L2E_OFFSET_MASK) - s->cluster_size, t, 2) != 2)
				break;
			pos += scs;
		}
	}
	*pnum = (pos < end ? pos : end) - off;
	return 0;
}

/* What subcluster sc of the cluster at guest offset `guest` read before a write. */
static int old_subcluster(struct qcow2 *s, uint64_t guest, uint64_t e, uint64_t bm, unsigned sc,
			  uint8_t *buf)
{
	size_t scs = (size_t)1 << s->sc_bits;
	enum qcow2_type t;

	if (qcow2_subcluster_type(s, e, bm, sc, &t) < 0)
		return -EIO;
	switch (t) {
	case QCOW2_NORMAL:
		return qcow2_data_pread(s, (e & L2E_OFFSET_MASK) + sc * scs, buf, scs);
	case QCOW2_UNALLOCATED:
		/*
		 * "backing": null (BLOCK_NO_BACKING): the node has no backing, so
		 * the rest of the cluster is zeroes, as QEMU writes it.  A backing
		 * file that should be open and is not cannot be copied up.
		 */
		if (s->backing_file && !s->bd->backing && !(s->bd->flags & BLOCK_NO_BACKING))
			return -EINVAL;
		return block_read_backing(s->bd, guest + sc * scs, buf, scs);
	default:
		memset(buf, 0, scs);
		return 0;
	}
}

/*
 * Fills subclusters [lo, hi] of buf (which starts at subcluster lo) with
 * what they read before, except those the write [in, in+n) covers whole.
 */
static int fill_old(struct qcow2 *s, uint64_t guest, uint64_t e, uint64_t bm, unsigned lo,
		    unsigned hi, uint64_t in, uint64_t n, uint8_t *buf)
{
	uint64_t scs = 1ULL << s->sc_bits;
	uint8_t *whole = NULL;
	int ret = 0;

	if (e & QCOW_OFLAG_COMPRESSED) {
		whole = malloc(s->cluster_size);
		if (!whole)
			return -ENOMEM;
		ret = qcow2_read_compressed(s, e, whole);
		if (ret == 0)
			memcpy(buf, whole + lo * scs, (hi - lo + 1) * scs);
		free(whole);
		return ret;
	}
	for (unsigned sc = lo; sc <= hi && ret == 0; sc++) {
		uint64_t a = sc * scs;
		if (a >= in && a + scs <= in + n)
			continue;
		ret = old_subcluster(s, guest, e, bm, sc, buf + (sc - lo) * scs);
	}
	return ret;
}

/* Writes [in, in+n) of the cluster at guest offset `guest`, L2 entry l2_index of table. */
static int write_cluster_ext(struct qcow2 *s, uint64_t *table, uint64_t l2_index, uint64_t guest,
			     uint64_t in, const uint8_t *src, size_t n)
{
	uint64_t e = qcow2_l2_get(s, table, l2_index), bm = qcow2_l2_bitmap(s, table, l2_index);
	uint64_t scs = 1ULL << s->sc_bits, host, alloc, zero;
	unsigned first = (unsigned)(in >> s->sc_bits), last = (unsigned)((in + n - 1) >> s->sc_bits);
	enum qcow2_type ct = qcow2_entry_type(s, e), t;
	uint32_t w = SC_MASK(first, last);
	bool moved = !(ct == QCOW2_NORMAL && (e & QCOW_OFLAG_COPIED));
	unsigned lo, hi;
	uint8_t *buf;
	int ret;

	if (qcow2_subcluster_type(s, e, bm, first, &t) < 0)
		return invalid_entry(s, guest, l2_index);
	ret = qcow2_check_entry(s, e, ct, guest, true);
	if (ret < 0)
		return ret;
	if (moved) {
		ret = qcow2_data_alloc(s, guest, 1, &host);
		if (ret < 0)
			return ret;
		/* A cluster shared with a snapshot: what it holds moves along; compressed: all. */
		if (ct == QCOW2_COMPRESSED)
			w = 0xffffffffu;
		else if (ct == QCOW2_NORMAL)
			w |= (uint32_t)bm;
	} else {
		host = e & L2E_OFFSET_MASK;
	}
	lo = (unsigned)__builtin_ctz(w);
	hi = 31u - (unsigned)__builtin_clz(w);
	buf = block_alloc_buf((size_t)((hi - lo + 1) * scs));
	if (!buf)
		return -ENOMEM;
	ret = fill_old(s, guest, e, bm, lo, hi, in, n, buf);
	if (ret == 0) {
		memcpy(buf + in - lo * scs, src, n);
		ret = qcow2_data_pwrite(s, host + lo * scs, buf, (size_t)((hi - lo + 1) * scs));
	}
	free(buf);
	if (ret < 0)
		return ret;
	if (ct == QCOW2_COMPRESSED) {
		alloc = 0xffffffffu;
		zero = 0;
	} else {
		alloc = (uint32_t)bm | w;
		zero = (uint32_t)(bm >> 32) & ~w;
	}
	qcow2_l2_set(s, table, l2_index, host | QCOW_OFLAG_COPIED);
	qcow2_l2_set_bitmap(s, table, l2_index, alloc | zero << 32);
	return moved ? qcow2_release_entry(s, e) : 0;
}

int qcow2_write_in_table_ext(struct qcow2 *s, uint64_t *table, uint64_t off, const uint8_t *buf,
			     size_t len)
{
	int ret = 0;

	while (len && ret == 0) {
		uint64_t in = qcow2_in_cluster(s, off);
		uint64_t l2_index = (off >> s->cluster_bits) & (s->l2_size - 1);
		size_t n = s->cluster_size - in < len ? (size_t)(s->cluster_size - in) : len;

		ret = write_cluster_ext(s, table, l2_index, off - in, in, buf, n);
		off += n;
		buf += n;
		len -= n;
	}
	return ret;
}

/*
 * QEMU's zero_l2_subclusters: subclusters [off, off+len) of one cluster,
 * aligned to subclusters, read as zeroes from now on without a write to
 * the data.  A compressed cluster cannot be split: -ENOTSUP.
 */
int qcow2_zero_subclusters(struct qcow2 *s, uint64_t *table, uint64_t off, uint64_t len)
{
	uint64_t l2_index = (off >> s->cluster_bits) & (s->l2_size - 1);
	uint64_t e = qcow2_l2_get(s, table, l2_index), bm = qcow2_l2_bitmap(s, table, l2_index);
	unsigned first = (unsigned)(qcow2_in_cluster(s, off) >> s->sc_bits);
	unsigned last = (unsigned)((qcow2_in_cluster(s, off) + len - 1) >> s->sc_bits);
	uint32_t w = SC_MASK(first, last);
	enum qcow2_type t;

	if (e & QCOW_OFLAG_COMPRESSED)
		return -ENOTSUP;
	if (qcow2_subcluster_type(s, e, bm, first, &t) < 0)
		return invalid_entry(s, off, l2_index);
	bm = ((uint32_t)bm & ~w) | (((bm >> 32) | w) << 32);
	qcow2_l2_set_bitmap(s, table, l2_index, bm);
	return 0;
}

void qcow2_zero_entry_ext(const struct qcow2 *s, uint64_t e, uint64_t ne, uint64_t *nl2e,
			  uint64_t *nbm)
{
	(void)s;
	(void)e;
	/* The zero flag of a standard entry becomes "all subclusters zero" (QEMU). */
	*nl2e = ne & ~QCOW_OFLAG_ZERO;
	*nbm = (ne & QCOW_OFLAG_ZERO) ? QCOW2_BM_ZERO_ALL : 0;
}
