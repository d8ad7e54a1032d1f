/*
 * qcow2 driver internals (qcow2 spec: docs/interop/qcow2.txt in QEMU).
 *
 *   header.c    header + extensions: parse, validate against the file, write
 *   cache.c     bounded write-back caches of L2 tables and refcount blocks
 *   refcount.c  refcounts of any width, cluster allocation, deferred frees
 *   cluster.c   guest -> host mapping through L1/L2, allocation on write
 *   cluster_ext.c  the same for extended L2 entries (32 subclusters per cluster)
 *   datafile.c  external data files: data at guest offsets in another file
 *   compress.c  zlib (raw deflate) and zstd cluster compression
 *   snapshot.c  the snapshot table: list, create, apply, delete
 *   bitmap.c    persistent dirty bitmaps: directory, tables, tracking, store
 *   txn.c       changes that must look atomic: shadow refcounts, one header write
 *   overlap.c   metadata overlap checks before writes (QEMU's overlap-check)
 *   check.c     consistency check and repair (qemu-img check)
 *   create.c    new images, preallocation, resize, amend
 *   qcow2.c     the driver ops: open, read, write, flush, status, close
 *
 * Metadata update order, so that a crash at any point leaves at most leaked
 * clusters: a refcount increment reaches the disk before any L2/L1 entry
 * that points to the cluster; a decrement is deferred until the L2/L1 entry
 * that dropped the reference is on disk (qcow2_free_later).  Snapshot
 * create/delete/apply, which move refcounts across 1 <-> 2 and so the
 * COPIED flags, switch atomically instead (txn.c).
 */
#ifndef KESTREL_BLOCK_QCOW2_H
#define KESTREL_BLOCK_QCOW2_H

#include "block/block_int.h"
#include "util/bytes.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>

#define QCOW2_MAGIC		0x514649fbU
#define QCOW2_MIN_CLUSTER_BITS	9
#define QCOW2_MAX_CLUSTER_BITS	21
#define QCOW2_V2_HEADER_LEN	72
#define QCOW2_V3_HEADER_LEN	104	/* without the compression type byte */
#define QCOW2_MAX_L1_BYTES	(32u << 20)	/* QEMU's QCOW_MAX_L1_SIZE */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)	/* QEMU's QCOW_MAX_REFTABLE_SIZE */
#define QCOW2_MAX_SNAPSHOTS	65536
#define QCOW2_MAX_BITMAPS	65535	/* QEMU's QCOW2_MAX_BITMAPS */
#define QCOW2_MAX_BACKING_NAME	1023

#define QCOW2_INCOMPAT_DIRTY		(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT		(1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE	(1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION	(1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2		(1ULL << 4)
#define QCOW2_INCOMPAT_SUPPORTED \
	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_COMPRESSION | \
	 QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_EXTL2)
#define QCOW2_COMPAT_LAZY_REFCOUNTS	(1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS		(1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW	(1ULL << 1)
/* The autoclear bits this driver maintains; a writer clears the others (qcow2 spec). */
#define QCOW2_AUTOCLEAR_KNOWN		(QCOW2_AUTOCLEAR_BITMAPS | QCOW2_AUTOCLEAR_DATA_FILE_RAW)

#define QCOW2_EXT_END			0x00000000U
#define QCOW2_EXT_BACKING_FORMAT	0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE		0x6803f857U
#define QCOW2_EXT_BITMAPS		0x23852875U
#define QCOW2_EXT_CRYPTO		0x0537be77U
#define QCOW2_EXT_DATA_FILE		0x44415441U

#define L1E_OFFSET_MASK		0x00fffffffffffe00ULL
#define L2E_OFFSET_MASK		0x00fffffffffffe00ULL
#define REFT_OFFSET_MASK	0xfffffffffffffe00ULL
#define QCOW_OFLAG_COPIED	(1ULL << 63)
#define QCOW_OFLAG_COMPRESSED	(1ULL << 62)
#define QCOW_OFLAG_ZERO		(1ULL << 0)

/* qcow2 spec "Extended L2 Entries": 32 subclusters, allocation bits low, zero bits high. */
#define QCOW2_SUBCLUSTERS		32
#define QCOW2_BM_ALLOC_ALL		0x00000000ffffffffULL
#define QCOW2_BM_ZERO_ALL		0xffffffff00000000ULL

/* What an overlap check compares a write with (QEMU's QCOW2_OL_*, same bit numbers). */
#define QCOW2_OL_MAIN_HEADER		(1u << 0)
#define QCOW2_OL_ACTIVE_L1		(1u << 1)
#define QCOW2_OL_ACTIVE_L2		(1u << 2)
#define QCOW2_OL_REFCOUNT_TABLE		(1u << 3)
#define QCOW2_OL_REFCOUNT_BLOCK		(1u << 4)
#define QCOW2_OL_SNAPSHOT_TABLE		(1u << 5)
#define QCOW2_OL_INACTIVE_L1		(1u << 6)
#define QCOW2_OL_INACTIVE_L2		(1u << 7)
#define QCOW2_OL_BITMAP_DIRECTORY	(1u << 8)
#define QCOW2_OL_CONSTANT \
	(QCOW2_OL_MAIN_HEADER | QCOW2_OL_ACTIVE_L1 | QCOW2_OL_REFCOUNT_TABLE | \
	 QCOW2_OL_SNAPSHOT_TABLE | QCOW2_OL_BITMAP_DIRECTORY)
#define QCOW2_OL_CACHED \
	(QCOW2_OL_CONSTANT | QCOW2_OL_ACTIVE_L2 | QCOW2_OL_REFCOUNT_BLOCK | QCOW2_OL_INACTIVE_L1)
#define QCOW2_OL_ALL (QCOW2_OL_CACHED | QCOW2_OL_INACTIVE_L2)

enum qcow2_type {
	QCOW2_UNALLOCATED,	/* read from the backing file, or zeroes */
	QCOW2_ZERO_PLAIN,	/* zero flag, no host cluster */
	QCOW2_ZERO_ALLOC,	/* zero flag on a preallocated host cluster */
	QCOW2_NORMAL,
	QCOW2_COMPRESSED,
};

/* Header fields in host byte order. */
struct qcow2_header {
	uint32_t magic, version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size, cluster_bits;
	uint64_t size;
	uint32_t crypt_method, l1_size;
	uint64_t l1_table_offset, refcount_table_offset;
	uint32_t refcount_table_clusters, nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features, compatible_features, autoclear_features;
	uint32_t refcount_order, header_length;
	uint8_t compression_type;
};

/* A header extension we do not interpret, written back as it was. */
struct qcow2_ext {
	uint32_t type, len;
	uint8_t *data;
};

struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint64_t icount;		/* UINT64_MAX: not recorded */
	uint32_t extra_size;		/* extra data as stored (>= 16 for v3) */
	uint8_t *extra_unknown;		/* bytes of extra data past the fields we know */
	uint32_t extra_unknown_len;
	uint32_t extra_cut_from;	/* check -r all: extra data size on disk, cut to the limit */
};

/* A persistent dirty bitmap (qcow2 spec: "Bitmap directory"), in memory. */
struct qcow2_bitmap {
	char *name;
	uint32_t flags;			/* directory entry flags as on disk */
	unsigned gbits;			/* log2(granularity) */
	uint64_t table_offset;		/* bitmap table on disk; 0: not stored yet */
	uint32_t table_size;		/* entries */
	uint8_t *bits;			/* loaded content (bit k: LSB first), or NULL */
	uint64_t nbytes;		/* bytes of content for the disk size */
	bool enabled;			/* "auto": tracks writes */
	bool inconsistent;		/* in use when loaded: no usable content */
};

struct qcow2_cache_entry {
	uint64_t offset;		/* host offset of the table; 0 = empty slot */
	uint64_t lru;
	int pins;
	bool dirty;
};

struct qcow2_cache {
	unsigned n;
	size_t table_size;
	struct qcow2_cache_entry *e;
	uint8_t *mem;
	uint64_t clock;
	unsigned hint;
	bool is_l2;
};

struct qcow2_free {
	uint64_t offset;		/* host offset of the first cluster */
	uint64_t clusters;
	bool keep;			/* freed, but the space is not punched */
};

/*
 * Where the L2 tables and refcount blocks are, sorted, so that an overlap
 * check is two binary searches instead of a walk of the L1 and refcount
 * tables.  Only a filter: a hit is confirmed against the tables themselves.
 */
struct qcow2_meta_index {
	uint64_t *l2, *rb;		/* host offsets, ascending */
	size_t nl2, nrb;
	uint64_t gen;			/* qcow2.meta_gen it was built for */
	const uint64_t *l1_seen, *rt_seen;	/* and the tables, as they were */
	uint64_t l1_size_seen, rt_size_seen;
	bool valid;
};

struct qcow2 {
	pthread_mutex_t lock;
	struct block_dev *bd;
	struct qcow2_header h;

	uint32_t cluster_size;
	unsigned cluster_bits;
	unsigned l2_bits;		/* log2(entries per L2 table) */
	uint32_t l2_size;
	unsigned refcount_order;
	uint64_t refcount_max;
	unsigned rb_bits;		/* log2(entries per refcount block) */
	unsigned csize_shift;		/* compressed descriptor layout */
	uint64_t csize_mask, cluster_offset_mask;

	uint64_t *l1;			/* host order, l1_size entries */
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t *reftable;		/* host order */
	uint64_t reftable_size;		/* entries */
	uint64_t reftable_offset;

	struct qcow2_cache l2_cache, rc_cache;

	unsigned ext_l2;		/* 1: 128-bit L2 entries with subclusters (qcow2 spec) */
	unsigned sc_bits;		/* log2(subcluster size) */
	char *data_file_name;		/* "External data file name" extension, as stored */
	struct block_dev *data;		/* the external data file, opened raw; NULL: none */

	char *backing_file, *backing_fmt;
	struct qcow2_ext *exts;		/* unknown extensions, in file order */
	unsigned nb_exts;
	uint8_t *unknown_header;	/* v3 header fields past the ones we know, kept */
	uint32_t unknown_header_len;
	uint8_t *feature_table;		/* raw feature name table, for messages */
	uint32_t feature_table_len;

	struct qcow2_snapshot *snaps;
	unsigned nb_snaps;
	uint64_t snap_table_size;	/* bytes of the snapshot table on disk */
	unsigned snap_extra_dropped;	/* check: entries whose extra data was cut (repair) */
	unsigned snap_reduced;		/* check: snapshots dropped past the size limit (repair) */
	int snap_errno;			/* check: the table could not be read (-errno), ... */
	char snap_err[256];		/* ... and why: check reports it and stops */

	uint64_t free_cluster_index;	/* no free cluster below this */
	uint64_t free_byte_offset;	/* where the next compressed cluster may go */
	uint64_t data_end;		/* bytes past this were never written: zeroes */
	uint64_t alloc_end;		/* end of the highest cluster allocated */
	uint64_t file_size;		/* length of the file as we left it */

	struct qcow2_free *pending;	/* refcount decrements waiting for L2/L1 on disk */
	size_t nb_pending, cap_pending;
	unsigned inflight;		/* data I/O running without the lock: frees wait */

	/*
	 * A transaction (txn.c): refcount blocks are copied before they change,
	 * and one header write switches to the copies.
	 */
	bool txn;
	uint64_t *txn_reftable;		/* the refcount table on disk when it began */
	uint64_t txn_reftable_size;

	bool rc_dirty_unsynced;		/* refcount writes not yet followed by a sync */
	bool dirty_bit_set;		/* lazy refcounts: header says dirty */
	bool corrupt_signalled;
	bool broken;			/* corruption found while writable: no more writes */
	unsigned overlap;		/* QCOW2_OL_* checked before writes */
	uint64_t meta_gen;		/* bumped by each write to the header, L1 or refcount table */
	struct qcow2_meta_index meta_idx;
	bool checking;			/* opened for check: trust nothing */
	uint8_t *check_refs;		/* repair: clusters the allocator must not take */
	uint64_t check_refs_size;

	/*
	 * Persistent dirty bitmaps (bitmap.c).  bms_rw: loaded for writing,
	 * marked in use on disk, kept up to date and stored at close.
	 */
	struct qcow2_bitmap *bms;
	unsigned nb_bms;
	bool bms_loaded, bms_rw;
	struct qcow2_free *bm_drop;	/* old bitmap tables to free once stored */
	size_t nb_bm_drop;

	int meta_prealloc;		/* -1 unknown; QEMU's metadata_preallocation */
	/* LUKS encryption (crypt.c): the header extension, and the unlocked cipher. */
	uint64_t crypt_off, crypt_len;
	struct qcow2_crypt *crypt;

	uint64_t zbuf_offset;		/* last decompressed cluster (host descriptor) */
	uint8_t *zbuf;
	bool zbuf_valid;
};

static inline uint64_t qcow2_align(const struct qcow2 *s, uint64_t v)
{
	return (v + s->cluster_size - 1) & ~(uint64_t)(s->cluster_size - 1);
}
static inline uint64_t qcow2_in_cluster(const struct qcow2 *s, uint64_t v)
{
	return v & (s->cluster_size - 1);
}
static inline uint64_t qcow2_size_to_clusters(const struct qcow2 *s, uint64_t v)
{
	return (v + s->cluster_size - 1) >> s->cluster_bits;
}

/* header.c */
int qcow2_read_header(struct qcow2 *s, char *err, size_t errlen);
int qcow2_parse_header(struct qcow2 *s, const uint8_t *buf, size_t len, uint64_t file_size,
		       char *err, size_t errlen);
int qcow2_write_header(struct qcow2 *s);
int qcow2_set_incompat(struct qcow2 *s, uint64_t bit, bool on);
void qcow2_describe_features(const struct qcow2 *s, uint64_t bits, char *buf, size_t len);
/*
 * Where the persistent bitmaps' directory is and how many entries it has,
 * while their extension is valid (autoclear bit set), within QEMU's limits
 * and inside the file: false when there is none to read.
 */
bool qcow2_bitmap_dir(const struct qcow2 *s, uint64_t *off, uint64_t *size, uint32_t *nb);
/* Serialises a header for s into buf (one cluster); returns its length or -ENOSPC. */
int qcow2_build_header(const struct qcow2 *s, uint8_t *buf, size_t len);

/* cache.c */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, size_t table_size, bool is_l2);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Returns a pinned table; read=false gives a zeroed table without reading. */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t offset, bool read,
		    void **table);
void qcow2_cache_put(struct qcow2_cache *c, void *table);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, void *table);
int qcow2_cache_flush(struct qcow2 *s, struct qcow2_cache *c);
/* Forgets a table whose cluster was freed or rewritten behind the cache. */
void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset);
void qcow2_cache_clear(struct qcow2_cache *c);

/* refcount.c */
uint64_t qcow2_rc_get_entry(const void *block, unsigned order, uint64_t i);
void qcow2_rc_set_entry(void *block, unsigned order, uint64_t i, uint64_t v);
int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
int qcow2_update_refcount(struct qcow2 *s, uint64_t cluster, int64_t delta);
int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *offset);
int qcow2_alloc_clusters_at(struct qcow2 *s, uint64_t offset, uint64_t n);
int qcow2_alloc_bytes(struct qcow2 *s, uint64_t size, uint64_t *offset);
int qcow2_free_later(struct qcow2 *s, uint64_t offset, uint64_t clusters);
int qcow2_free_later_keep(struct qcow2 *s, uint64_t offset, uint64_t clusters);
int qcow2_free_now(struct qcow2 *s, uint64_t offset, uint64_t clusters);
int qcow2_free_compressed_later(struct qcow2 *s, uint64_t l2e);
int qcow2_apply_pending_frees(struct qcow2 *s);
/*
 * Adds [off, off+n) to a run of freed space (start, len), punching the run
 * out of the file when the new range does not extend it (n 0: the last).
 */
void qcow2_punch(struct qcow2 *s, uint64_t *start, uint64_t *len, uint64_t off, uint64_t n);
int qcow2_rc_flush(struct qcow2 *s, bool sync);
int qcow2_flush_metadata(struct qcow2 *s, bool sync);
int qcow2_load_reftable(struct qcow2 *s, char *err, size_t errlen);
/* Drops refcount blocks that count nothing any more (after a shrink). */
int qcow2_shrink_reftable(struct qcow2 *s);
/* The refcount table in memory (taken over, or the one s holds) and in s->h, on disk at offset. */
void qcow2_set_reftable(struct qcow2 *s, uint64_t *table, uint64_t entries, uint64_t offset,
			uint64_t clusters);
/*
 * Writes table (entries, whole clusters) at cluster start, points the header
 * at it, then frees the old table's clusters.  table is s's from then on, or
 * freed here when the switch fails.
 */
int qcow2_switch_reftable(struct qcow2 *s, uint64_t *table, uint64_t entries, uint64_t start);

/*
 * One L2 entry of a table in the cache (big endian): with extended L2
 * entries each is 128 bits, the subcluster bitmap in the second word.
 */
static inline uint64_t qcow2_l2_get(const struct qcow2 *s, const uint64_t *t, uint64_t i)
{
	return be64toh(t[i << s->ext_l2]);
}
static inline void qcow2_l2_set(const struct qcow2 *s, uint64_t *t, uint64_t i, uint64_t e)
{
	t[i << s->ext_l2] = htobe64(e);
}
static inline uint64_t qcow2_l2_bitmap(const struct qcow2 *s, const uint64_t *t, uint64_t i)
{
	return s->ext_l2 ? be64toh(t[(i << 1) + 1]) : 0;
}
static inline void qcow2_l2_set_bitmap(const struct qcow2 *s, uint64_t *t, uint64_t i,
				       uint64_t bm)
{
	if (s->ext_l2)
		t[(i << 1) + 1] = htobe64(bm);
}
/* Data clusters live in an external data file: no refcounts, host offset = guest offset. */
static inline bool qcow2_has_data_file(const struct qcow2 *s)
{
	return s->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
}

/*
 * Whether an L2 entry names a host cluster.  Offset 0 is a valid one in an
 * external data file, where every cluster has refcount 1: COPIED tells
 * (qcow2 spec, QEMU's qcow2_get_cluster_type).
 */
static inline bool qcow2_has_host(const struct qcow2 *s, uint64_t l2e)
{
	return (l2e & L2E_OFFSET_MASK) || (qcow2_has_data_file(s) && (l2e & QCOW_OFLAG_COPIED));
}

/* crypt.c: LUKS encryption of data clusters (crypt_method 2) */
int qcow2_crypt_open(struct qcow2 *s, char *err, size_t errlen);
void qcow2_crypt_free(struct qcow2 *s);
int qcow2_crypt_read(struct qcow2 *s, uint64_t host, void *buf, size_t len);
int qcow2_crypt_write(struct qcow2 *s, uint64_t host, const void *buf, size_t len);
struct jnode *qcow2_crypt_info(struct qcow2 *s);
bool qcow2_crypt_amending(const struct block_create_opts *o);
int qcow2_crypt_amend(struct qcow2 *s, const struct block_create_opts *o, char *err,
		      size_t errlen);
int qcow2_crypt_check_opts(const struct block_create_opts *o, bool *luks, char *err,
			   size_t errlen);
int qcow2_crypt_create(struct qcow2 *s, const struct block_create_opts *o, char *err,
		       size_t errlen);

/* cluster.c */
enum qcow2_type qcow2_entry_type(const struct qcow2 *s, uint64_t l2e);
int qcow2_map(struct qcow2 *s, uint64_t off, uint64_t len, enum qcow2_type *type,
	      uint64_t *l2e, uint64_t *pnum);
/* qcow2_map for a write in place: a damaged entry is reported as a refused write. */
int qcow2_map_for(struct qcow2 *s, uint64_t off, uint64_t len, bool write,
		  enum qcow2_type *type, uint64_t *l2e, uint64_t *pnum);
int qcow2_read(struct qcow2 *s, uint64_t off, void *buf, size_t len);
int qcow2_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len);
/* len zero bytes written to the image file at off (qcow2_file_write). */
int qcow2_file_write_zeroes(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_write_compressed(struct qcow2 *s, uint64_t off, const void *cdata, size_t clen);
int qcow2_zero(struct qcow2 *s, uint64_t off, uint64_t len, bool may_unmap);
int qcow2_write_l1_entry(struct qcow2 *s, uint32_t index);
int qcow2_grow_l1(struct qcow2 *s, uint64_t min_size);
int qcow2_file_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len);
int qcow2_signal_corruption(struct qcow2 *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int qcow2_read_compressed(struct qcow2 *s, uint64_t l2e, uint8_t *out);
/* Drops the reference an L2 entry held, once the new entry is on disk. */
int qcow2_release_entry(struct qcow2 *s, uint64_t l2e);
int qcow2_write_l2_range(struct qcow2 *s, uint64_t l1_index, uint64_t l2_index, uint64_t n,
			 uint64_t host);
int qcow2_drop_beyond(struct qcow2 *s, uint64_t size);
int qcow2_trim_file(struct qcow2 *s);

/* datafile.c: external data files (qcow2 spec: incompatible bit 2, "External data file name") */
int qcow2_data_open(struct qcow2 *s, char *err, size_t errlen);
void qcow2_data_close(struct qcow2 *s);
int qcow2_data_pread(struct qcow2 *s, uint64_t host, void *buf, size_t len);
/* The same without the encryption (the ciphertext as stored). */
int qcow2_data_pread_raw(struct qcow2 *s, uint64_t host, void *buf, size_t len);
int qcow2_data_pwrite_raw(struct qcow2 *s, uint64_t host, const void *buf, size_t len);
/* A data write: to the data file, or checked against metadata in the image file. */
int qcow2_data_pwrite(struct qcow2 *s, uint64_t host, const void *buf, size_t len);
/* Host clusters for guest clusters from guest on: the same offsets in a data file. */
int qcow2_data_alloc(struct qcow2 *s, uint64_t guest, uint64_t n, uint64_t *host);
char *qcow2_data_path(const struct qcow2 *s);
/* Raw external data: zeroes written to the data file itself. */
int qcow2_data_zero(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_data_zero_fast(struct qcow2 *s, uint64_t off, uint64_t len);

/* cluster_ext.c: extended L2 entries (qcow2 spec: "Extended L2 Entries") */
/*
 * The type of the subcluster that holds in-cluster offset `in` of a cluster
 * with entry l2e and bitmap bm; -EIO for a combination the spec forbids.
 */
int qcow2_subcluster_type(const struct qcow2 *s, uint64_t l2e, uint64_t bm, unsigned sc,
			  enum qcow2_type *type);
int qcow2_map_ext(struct qcow2 *s, const uint64_t *table, uint64_t off, uint64_t len,
		  bool write, enum qcow2_type *type, uint64_t *l2e, uint64_t *pnum);
int qcow2_write_in_table_ext(struct qcow2 *s, uint64_t *table, uint64_t off,
			     const uint8_t *buf, size_t len);
/* Zeroes [off, off+len) inside one cluster at subcluster granularity; -ENOTSUP: cannot. */
int qcow2_zero_subclusters(struct qcow2 *s, uint64_t *table, uint64_t off, uint64_t len);
/* The new entry and bitmap of a whole cluster made to read as zeroes (qcow2_zero). */
void qcow2_zero_entry_ext(const struct qcow2 *s, uint64_t e, uint64_t ne, uint64_t *nl2e,
			  uint64_t *nbm);

/* overlap.c */
/* The QCOW2_OL_* checks of a BLOCK_OL_* open mode (cached by default). */
unsigned qcow2_overlap_mask(unsigned block_flags);
/* Which checks [off, off+len), rounded out to clusters, fails: *hit gets QCOW2_OL_* bits. */
int qcow2_overlaps(struct qcow2 *s, unsigned checks, uint64_t off, uint64_t len, unsigned *hit);
void qcow2_meta_index_free(struct qcow2 *s);
/* QEMU's name of the first structure in hit ("refcount block"). */
const char *qcow2_overlap_name(unsigned hit);
/* Refuses (-EIO, image marked corrupt) a write that would land on metadata outside ign. */
int qcow2_pre_write_check(struct qcow2 *s, unsigned ign, uint64_t off, uint64_t len);
/* qcow2_file_write after qcow2_pre_write_check: every data and table write goes this way. */
int qcow2_checked_write(struct qcow2 *s, unsigned ign, uint64_t off, const void *buf,
			size_t len);
/* Whether host offset off lies inside the file (asking the file again on a miss). */
bool qcow2_in_file(struct qcow2 *s, uint64_t off);
/* Before an L2 table is read into the cache: in the file and on no other metadata. */
int qcow2_check_l2_table(struct qcow2 *s, uint64_t off);
/* After an L2 table is read for a writer: no entry past the end of the file. */
int qcow2_check_l2_entries(struct qcow2 *s, uint64_t off, const uint64_t *table);
/*
 * Before an L2 entry is followed (read, written in place, or dropped by a
 * write): aligned, off the header, a data cluster inside the file, and on
 * no metadata the overlap-check mode covers.  Corruption is -EIO.
 */
int qcow2_check_entry(struct qcow2 *s, uint64_t l2e, enum qcow2_type type, uint64_t guest,
		      bool write);
/* How many of the n clusters of a host-contiguous run from host pass those checks. */
uint64_t qcow2_sane_run(struct qcow2 *s, uint64_t host, enum qcow2_type type, uint64_t n);
/* The bytes of a compressed cluster's data a read may use: up to the first on metadata. */
int qcow2_compressed_readable(struct qcow2 *s, uint64_t l2e, size_t *csize);

/* compress.c */
/* Returns the compressed length, or -ENOSPC when it would not be smaller than out_len. */
/* True for data deflate would not shrink (by more than ~2%): stored uncompressed unasked. */
bool qcow2_incompressible(const uint8_t *in, size_t len);
long qcow2_compress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len);
int qcow2_decompress(int type, uint8_t *out, size_t out_len, const uint8_t *in, size_t in_len);

/* snapshot.c */
int qcow2_read_snapshots(struct qcow2 *s, char *err, size_t errlen);
void qcow2_free_snapshots(struct qcow2 *s);
int qcow2_snapshot_list(struct block_dev *bd, struct block_snapshot **list);
int qcow2_snapshot_create(struct block_dev *bd, const char *name, char *err, size_t errlen);
int qcow2_snapshot_apply(struct block_dev *bd, const char *name, char *err, size_t errlen);
int qcow2_snapshot_delete(struct block_dev *bd, const char *name, char *err, size_t errlen);
int qcow2_snapshot_table_upgrade(struct qcow2 *s);
int qcow2_snapshot_load_tmp(struct block_dev *bd, const char *name, char *err, size_t errlen);

/* bitmap.c */
/* At open (not for check): QEMU's checks of the bitmaps extension and directory. */
int qcow2_bitmaps_check_ext(struct qcow2 *s, char *err, size_t errlen);
/* After a read/write open: loads the bitmaps, marks them in use on disk. */
int qcow2_bitmaps_open_rw(struct qcow2 *s, char *err, size_t errlen);
/* Marks [off, off+len) dirty in every enabled bitmap; s->lock held. */
void qcow2_bitmaps_mark(struct qcow2 *s, uint64_t off, uint64_t len);
/* Writes the bitmaps back (at close) and clears their in-use flags. */
int qcow2_bitmaps_store(struct qcow2 *s);
/* Before a resize: refused while a bitmap is inconsistent; else the bitmaps follow. */
int qcow2_bitmaps_resize(struct qcow2 *s, uint64_t size, char *err, size_t errlen);
void qcow2_bitmaps_free(struct qcow2 *s);
int qcow2_bitmap_change(struct block_dev *bd, const struct block_bitmap_req *req,
			char *err, size_t errlen);
int qcow2_bitmap_get(struct block_dev *bd, const char *name, struct block_bitmap_data *out,
		     char *err, size_t errlen);
/* Serialised directory entry parsing, shared with the unit tests. */
int qcow2_bitmap_dir_parse(const struct qcow2 *s, const uint8_t *dir, uint64_t size,
			   uint32_t nb, struct qcow2_bitmap **out, unsigned *count,
			   char *err, size_t errlen);
/* QEMU's check_table_entry: 0 when a bitmap table entry is valid. */
int qcow2_bitmap_check_entry(uint64_t entry, uint32_t cluster_size);

/* txn.c */
int qcow2_txn_begin(struct qcow2 *s);
int qcow2_txn_grow_reftable(struct qcow2 *s, uint64_t min_entries);
/*
 * Writes the new refcount structure, then switches the header to it and to
 * s->h's size, l1_size, l1_table_offset, nb_snapshots and snapshots_offset
 * in one write.  On failure the image on disk is as before the transaction
 * (the caller restores its own fields of s); qcow2_txn_abort has run.
 */
int qcow2_txn_commit(struct qcow2 *s);
void qcow2_txn_abort(struct qcow2 *s);
int qcow2_snapshot_table_rewrite(struct qcow2 *s);

/* check.c */
int qcow2_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		FILE *report);
/* amend -o refcount_bits: the stored refcounts copied into a structure of the new width. */
int qcow2_change_refcount_order(struct qcow2 *s, unsigned order, char *err, size_t errlen);

/* create.c */
int qcow2_create(const char *path, const struct block_create_opts *o, char *err,
		 size_t errlen);
int qcow2_truncate(struct block_dev *bd, uint64_t size, bool shrink,
		   enum block_prealloc prealloc, char *err, size_t errlen);
int qcow2_amend(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		char *err, size_t errlen);
int qcow2_change_backing(struct block_dev *bd, const char *file, const char *fmt,
			 char *err, size_t errlen);
int qcow2_make_empty(struct block_dev *bd);
int qcow2_preallocate(struct qcow2 *s, uint64_t from, uint64_t to, enum block_prealloc mode);
/*
 * prealloc.c: falloc/full growth in QEMU's layout (qcow2_co_truncate).
 * Returns 1 where that layout does not apply (new refcount blocks needed,
 * an old size inside a cluster, a transaction open): use qcow2_preallocate.
 */
int qcow2_prealloc_like_qemu(struct qcow2 *s, uint64_t old_len, uint64_t new_len,
			     enum block_prealloc mode);

/* qcow2.c */
int qcow2_open_state(struct block_dev *bd, struct qcow2 **out, char *err, size_t errlen);
void qcow2_free_state(struct qcow2 *s);
uint64_t qcow2_refcount_blocks(uint64_t clusters, uint64_t cluster_size, unsigned refcount_order,
			       uint64_t *table);
uint64_t qcow2_metadata_size(uint64_t size, uint32_t cluster_size, int refcount_bits,
			     bool extended_l2);

#endif
