/*
 * qed check and create.  The check is QEMU's qed-check.c walk: every L1 and
 * L2 entry must point at a cluster-aligned offset past the header and inside
 * the file, each cluster referenced once; clusters nobody references are
 * leaks (counted, never freed: the spec has no free list).  A repair clears
 * bad entries, then the need-check bit once nothing is left broken.
 */
#include "block/qed.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct qed_walk {
	struct qed *s;
	struct block_check_result *res;
	uint8_t *used;		/* one bit per cluster of the file */
	uint64_t nclusters;
	bool fix;
};

/* Marks n clusters from off used; false if one already was (a second reference). */
static bool mark_used(struct qed_walk *w, uint64_t off, unsigned n)
{
	uint64_t c = off >> w->s->cluster_bits;
	int dup = 0;

	for (; n; n--, c++) {
		if (c >= w->nclusters)
			continue;
		if (w->used[c / 8] & (1u << (c % 8)))
			dup++;
		w->used[c / 8] |= (uint8_t)(1u << (c % 8));
	}
	w->res->corruptions += dup;
	return dup == 0;
}

/* Returns how many entries were bad (cleared in t when fixing). */
static unsigned walk_l2(struct qed_walk *w, uint64_t *t)
{
	struct qed *s = w->s;
	uint64_t last = 0;
	unsigned bad = 0;

	for (size_t i = 0; i < s->nelems; i++) {
		uint64_t off = t[i];

		if (off <= QED_CLUSTER_ZERO)
			continue;
		w->res->allocated_clusters++;
		if (last && last + s->h.cluster_size != off)
			w->res->fragmented_clusters++;
		last = off;
		if (!qed_cluster_valid(s, off)) {
			if (w->fix) {
				t[i] = 0;
				w->res->corruptions_fixed++;
			} else {
				w->res->corruptions++;
			}
			bad++;
			continue;
		}
		mark_used(w, off, 1);
	}
	return bad;
}

static int walk_one_l2(struct qed_walk *w, uint64_t off, uint64_t *t)
{
	int ret = qed_read_table(w->s, off, t);

	if (ret < 0) {
		w->res->check_errors++;
		return ret;
	}
	if (walk_l2(w, t) && w->fix) {
		ret = qed_write_entries(w->s, off, t, 0, w->s->nelems);
		if (ret < 0)
			w->res->check_errors++;
	}
	return ret;
}

static int walk_l1(struct qed_walk *w, uint64_t *t)
{
	struct qed *s = w->s;
	unsigned bad = 0;
	int ret, last_err = 0;

	mark_used(w, s->h.l1_table_offset, s->h.table_size);
	for (size_t i = 0; i < s->nelems; i++) {
		uint64_t off = s->l1[i];

		if (!off)
			continue;
		if (!qed_table_valid(s, off)) {
			if (w->fix) {
				s->l1[i] = 0;
				w->res->corruptions_fixed++;
			} else {
				w->res->corruptions++;
			}
			bad++;
			continue;
		}
		if (!mark_used(w, off, s->h.table_size))
			continue;
		if ((ret = walk_one_l2(w, off, t)) < 0)
			last_err = ret;
	}
	if (bad && w->fix) {
		ret = qed_write_entries(s, s->h.l1_table_offset, s->l1, 0, s->nelems);
		if (ret < 0) {
			w->res->check_errors++;
			last_err = ret;
		}
	}
	return last_err;
}

static void count_leaks(struct qed_walk *w)
{
	for (uint64_t c = w->s->h.header_size; c < w->nclusters; c++)
		if (!(w->used[c / 8] & (1u << (c % 8))))
			w->res->leaks++;
}

int qed_check_image(struct qed *s, bool fix, struct block_check_result *res)
{
	struct qed_walk w = { .s = s, .res = res, .fix = fix };
	uint64_t *t;
	int ret;

	w.nclusters = s->file_size >> s->cluster_bits;
	w.used = calloc(1, (size_t)(w.nclusters / 8 + 1));
	t = malloc(s->table_bytes);
	if (!w.used || !t) {
		free(w.used);
		free(t);
		return -ENOMEM;
	}
	res->total_clusters = (s->h.image_size + s->h.cluster_size - 1) >> s->cluster_bits;
	ret = walk_l1(&w, t);
	if (fix)
		qed_cache_drop(s);
	if (ret == 0) {
		count_leaks(&w);
		/* need-check goes only when nothing unfixed remains */
		if (fix && !res->corruptions && !res->check_errors)
			ret = qed_mark_clean(s);
	}
	free(w.used);
	free(t);
	return ret;
}

/* -o values (or -b/-F) as qemu-img gives them. */
static uint64_t opt_num(const struct block_create_opts *o, const char *name, uint64_t def)
{
	const struct block_fmt_opt *v = block_create_opt(o, name);

	return v ? v->num : def;
}

static const char *opt_str(const struct block_create_opts *o, const char *name, const char *given)
{
	const struct block_fmt_opt *v = block_create_opt(o, name);

	return given ? given : v ? v->val : NULL;
}

static bool pow2_between(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* bdrv_qed_co_create's checks and messages. */
static int create_check(struct qed_header *h, char *err, size_t errlen)
{
	if (!pow2_between(h->cluster_size, QED_MIN_CLUSTER, QED_MAX_CLUSTER))
		return block_err(err, errlen, "QED cluster size must be within range [%u, %u] and "
				 "power of 2", QED_MIN_CLUSTER, QED_MAX_CLUSTER);
	if (!pow2_between(h->table_size, QED_MIN_TABLE, QED_MAX_TABLE))
		return block_err(err, errlen, "QED table size must be within range [%u, %u] and "
				 "power of 2", QED_MIN_TABLE, QED_MAX_TABLE);
	if (h->image_size > qed_max_image_size(h->cluster_size, h->table_size))
		return block_err(err, errlen, "QED image size must be a non-zero multiple of "
				 "cluster size and less than %" PRIu64 " bytes",
				 qed_max_image_size(h->cluster_size, h->table_size));
	return 0;
}

/* Header (and backing name) in cluster 0, an empty L1 table right after it. */
static int create_write(int fd, const struct qed_header *h, const char *backing)
{
	size_t l1 = (size_t)h->cluster_size * h->table_size;
	size_t n = backing ? strlen(backing) : 0;
	uint8_t hdr[QED_HEADER_BYTES];

	qed_header_encode(h, hdr);
	block_crash_point();
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return -EIO;
	if (n && pwrite(fd, backing, n, QED_HEADER_BYTES) != (ssize_t)n)
		return -EIO;
	/* QEMU writes the zeroed L1 table: allocated zeroes keep "disk size" equal. */
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)h->l1_table_offset, (off_t)l1) == 0)
		return 0;
	return block_ftruncate(fd, h->l1_table_offset + l1) < 0 ? -errno : 0;
}

int qed_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen)
{
	const char *backing = opt_str(o, "backing_file", o->backing_file);
	const char *bfmt = opt_str(o, "backing_fmt", o->backing_fmt);
	uint64_t cs = opt_num(o, "cluster_size", QED_DEFAULT_CLUSTER);
	uint64_t ts = opt_num(o, "table_size", QED_DEFAULT_TABLE);
	struct qed_header h = { .magic = QED_MAGIC, .header_size = 1 };
	int fd, ret;

	h.cluster_size = cs > UINT32_MAX ? 3 : (uint32_t)cs;
	h.table_size = ts > UINT32_MAX ? 3 : (uint32_t)ts;
	h.image_size = (o->size + 511) & ~(uint64_t)511;
	h.l1_table_offset = h.cluster_size;
	if (create_check(&h, err, errlen) < 0)
		return -1;
	if (backing && strlen(backing) > h.cluster_size - QED_HEADER_BYTES)
		return block_err(err, errlen, "Backing file name too long for the QED header");
	if (backing) {
		h.features = QED_F_BACKING_FILE | (bfmt && !strcmp(bfmt, "raw") ? QED_F_BACKING_RAW : 0);
		h.backing_name_offset = QED_HEADER_BYTES;
		h.backing_name_size = (uint32_t)strlen(backing);
	}
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	ret = create_write(fd, &h, backing);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}
