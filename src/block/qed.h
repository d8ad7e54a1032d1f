/*
 * qed driver internals shared by qed.c (open, I/O) and qed_check.c (check,
 * create): the header of QEMU's docs/interop/qed_spec.txt and the state.
 */
#ifndef KESTREL_BLOCK_QED_H
#define KESTREL_BLOCK_QED_H

#include "block/block_int.h"
#include "util/bytes.h"

#include <inttypes.h>

#define QED_MAGIC		0x00444551u	/* "QED\0" */
#define QED_HEADER_BYTES	64
#define QED_F_BACKING_FILE	0x01
#define QED_F_NEED_CHECK	0x02
#define QED_F_BACKING_RAW	0x04		/* "backing file format is raw, do not probe" */
#define QED_FEATURE_MASK	0x07
#define QED_COMPAT_MASK		0
#define QED_AUTOCLEAR_MASK	0
#define QED_MIN_CLUSTER		4096u
#define QED_MAX_CLUSTER		(64u << 20)
#define QED_MIN_TABLE		1u
#define QED_MAX_TABLE		16u
#define QED_DEFAULT_CLUSTER	65536u
#define QED_DEFAULT_TABLE	4u
#define QED_CLUSTER_ZERO	1		/* an L2 entry that reads as zeroes */
#define QED_CACHE_MAX		16

struct qed_header {
	uint32_t magic, cluster_size, table_size, header_size;
	uint64_t features, compat_features, autoclear_features;
	uint64_t l1_table_offset, image_size;
	uint32_t backing_name_offset, backing_name_size;
};

struct qed_l2 {
	uint64_t off;		/* where the table lives; 0: slot empty */
	uint64_t *t;
};

struct qed {
	struct block_dev *bd;
	pthread_mutex_t lock;
	struct qed_header h;
	uint64_t file_size;	/* cluster-aligned end: where the next allocation goes */
	size_t table_bytes;
	size_t nelems;		/* entries per table */
	unsigned cluster_bits, l1_shift;
	uint64_t *l1;
	struct qed_l2 cache[QED_CACHE_MAX];
	unsigned ncache, next_victim;
	uint8_t *zbuf;		/* one cluster of zeroes */
	char *backing_file;
	bool dirty;		/* allocations since the last flush */
};

uint64_t qed_max_image_size(uint32_t cluster_size, uint32_t table_size);
bool qed_cluster_valid(const struct qed *s, uint64_t off);
bool qed_table_valid(const struct qed *s, uint64_t off);
void qed_header_decode(struct qed_header *h, const uint8_t *p);
void qed_header_encode(const struct qed_header *h, uint8_t *p);
int qed_write_header(struct qed *s);
int qed_read_table(struct qed *s, uint64_t off, uint64_t *t);
int qed_write_entries(struct qed *s, uint64_t off, const uint64_t *t, size_t from, size_t to);
uint64_t *qed_l2_get(struct qed *s, uint64_t off, int *ret);
void qed_cache_drop(struct qed *s);
int qed_lookup(struct qed *s, uint64_t off, uint64_t *e);
int qed_mark_clean(struct qed *s);

/* qed_check.c: QEMU's qed-check walk; fix clears bad entries and need-check. */
int qed_check_image(struct qed *s, bool fix, struct block_check_result *res);
int qed_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen);

#endif
