/*
 * Shared by the two halves of qcow2 check: check_refs.c counts the references
 * every structure makes (checking the structures on the way), check.c
 * compares them with the stored refcounts and repairs.
 */
#ifndef KESTREL_BLOCK_QCOW2_CHECK_H
#define KESTREL_BLOCK_QCOW2_CHECK_H

#include "block/qcow2/qcow2.h"

#include <stdarg.h>
#include <stdio.h>

/* Reserved bits of table entries (qcow2 spec: "L1 table entry", "Standard Cluster Descriptor"). */
#define L1E_RESERVED_MASK	0x7f000000000001ffULL
#define L2E_STD_RESERVED_MASK	0x3f000000000001feULL

/* Entry i of an L2 table read as bytes: 16 bytes apart with extended L2 entries. */
static inline size_t qcow2_l2_pos(const struct qcow2 *s, uint32_t i)
{
	return (size_t)i << (3 + s->ext_l2);
}

struct refs {
	uint32_t *n;
	uint64_t size;		/* capacity of n */
	uint64_t used;		/* clusters looked at: the file, or further if referenced */
	uint64_t grow_to;	/* repair: file length that holds every table whole */
	int cut_tables;		/* tables the end of the file cuts (counted as corruptions) */
	int bitmap_errors;	/* corruptions found in the persistent bitmaps */
};

/* Room in r for cluster c's count (check_refs.c); 0 or -ENOMEM. */
int qcow2_refs_reserve(struct refs *r, uint64_t c);

static inline uint64_t qcow2_refs_get(const struct refs *r, uint64_t c)
{
	return c < r->size ? r->n[c] : 0;
}

/* One line of the check report; a NULL report is a quiet check. */
static inline void say(FILE *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void say(FILE *report, const char *fmt, ...)
{
	va_list ap;

	if (!report)
		return;
	va_start(ap, fmt);
	vfprintf(report, fmt, ap);
	va_end(ap);
}

/*
 * Counts into r the references of every structure the image has, checking
 * each on the way (res counts what is wrong, report says it); with
 * BLOCK_FIX_ERRORS in fix, repairs what can be repaired in place.  *rebuild
 * says the refcount structure itself is broken.
 */
int qcow2_count_refs(struct qcow2 *s, struct refs *r, struct block_check_result *res,
		     uint64_t nb_clusters, unsigned fix, bool *rebuild, FILE *report);

/*
 * A new refcount structure from the counts in r, in QEMU's layout, in free
 * clusters from floor on (check -r: 0; amend: past everything in use), and
 * switched to with one header write (check_rebuild.c).  The old one is left
 * as leaks.
 */
int qcow2_check_rebuild(struct qcow2 *s, const struct refs *r, uint64_t floor, FILE *report);

/*
 * Whether [off, off+len) lies on metadata that a repair's write must spare
 * (QEMU's default overlap check), leaving out the structure being written.
 */
enum { OL_ACTIVE_L1 = 1, OL_ACTIVE_L2 = 2 };
bool qcow2_on_metadata(const struct qcow2 *s, uint64_t off, uint64_t len, unsigned ign);

#endif
