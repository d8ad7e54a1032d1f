/*
 * New images, resize, preallocation, header changes (amend, rebase).
 * A new image starts as QEMU's does: header, refcount table, one refcount
 * block and no L1 table; growing it to its size goes through the ordinary
 * allocator, so every layout the allocator can make is a layout create makes.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * QEMU's qcow2_refcount_metadata_size: the refcount blocks (returned) and
 * table clusters (*table) that count clusters data clusters and themselves.
 */
uint64_t qcow2_refcount_blocks(uint64_t clusters, uint64_t cluster_size, unsigned refcount_order,
			       uint64_t *table)
{
	uint64_t per_table_cluster = cluster_size / 8;
	uint64_t per_block = cluster_size * 8 >> refcount_order;
	uint64_t blocks = 0, n = 0, last;

	*table = 0;
	do {
		last = n;
		blocks = (clusters + *table + blocks + per_block - 1) / per_block;
		*table = (blocks + per_table_cluster - 1) / per_table_cluster;
		n = clusters + blocks + *table;
	} while (n != last);
	return blocks;
}

uint64_t qcow2_metadata_size(uint64_t size, uint32_t cluster_size, int refcount_bits,
			     bool extended_l2)
{
	uint64_t aligned = (size + cluster_size - 1) / cluster_size * cluster_size;
	uint64_t per_table = cluster_size / 8, meta = cluster_size, nl2e, nl1e;
	uint64_t l2e_size = extended_l2 ? 16 : 8, per_l2 = cluster_size / l2e_size;
	unsigned order = (unsigned)__builtin_ctz((unsigned)refcount_bits);

	nl2e = aligned / cluster_size;
	nl2e = (nl2e + per_l2 - 1) / per_l2 * per_l2;
	meta += nl2e * l2e_size;
	nl1e = nl2e * l2e_size / cluster_size;
	nl1e = (nl1e + per_table - 1) / per_table * per_table;
	meta += nl1e * 8;
	{
		uint64_t table, blocks = qcow2_refcount_blocks((meta + aligned) / cluster_size,
							       cluster_size, order, &table);
		meta += (blocks + table) * cluster_size;
	}
	return meta + aligned;
}

/*
 * Refcount width and lazy refcounts against the version, for create and
 * amend alike.  QEMU names the option as each path spells it: create goes
 * through the QAPI "version", amend through the "compat" option.
 */
static int check_refcount_opts(int version, int rbits, bool lazy, const char *use, char *err,
			       size_t errlen)
{
	if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1)))
		return block_err(err, errlen, "Refcount width must be a power of two and may not "
				 "exceed 64 bits");
	if (version < 3 && rbits != 16)
		return block_err(err, errlen, "Different refcount widths than 16 bits require "
				 "compatibility level 1.1 or above (use %s or greater)", use);
	if (version < 3 && lazy)
		return block_err(err, errlen, "Lazy refcounts only supported with compatibility "
				 "level 1.1 and above (use %s or greater)", use);
	return 0;
}

/* External data files: QEMU's qcow2_co_create checks, in its order and words. */
static int check_data_file_opts(const struct block_create_opts *o, int version, char *err,
				size_t errlen)
{
	if (o->data_file && version < 3)
		return block_err(err, errlen, "External data files are only supported with "
				 "compatibility level 1.1 and above (use version=v3 or greater)");
	if (o->data_file_raw && !o->data_file)
		return block_err(err, errlen, "data-file-raw requires data-file");
	if (o->data_file_raw && o->backing_file)
		return block_err(err, errlen, "Backing file and data-file-raw cannot be used at "
				 "the same time");
	if (o->data_file && (!*o->data_file || strlen(o->data_file) > 1023))
		return block_err(err, errlen, "Invalid data file name '%s'", o->data_file);
	return 0;
}

/* The data file, created empty where the image will look for it (next to it). */
static int create_data_file(const char *image, const char *name, char *err, size_t errlen)
{
	struct block_create_opts ro = { 0 };
	char *path = block_backing_path(image, name);
	int ret;

	if (!path)
		return block_err(err, errlen, "out of memory");
	ret = block_create(path, "raw", &ro, err, errlen);
	free(path);
	return ret;
}

static int check_opts(const struct block_create_opts *o, uint32_t cs, int version, int rbits,
		      char *err, size_t errlen)
{
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return block_err(err, errlen, "Cluster size must be a power of two between 512 and "
				 "2048k");
	if (check_refcount_opts(version, rbits, o->lazy_refcounts, "version=v3", err, errlen) < 0)
		return -1;
#ifndef KESTREL_ZSTD
	/* QEMU without CONFIG_ZSTD has no 'zstd' in its enum: the same refusal. */
	if (o->compression_type == BLOCK_COMPRESS_ZSTD)
		return block_err(err, errlen, "Parameter 'compression-type' does not accept value "
				 "'zstd'");
#endif
	if (version < 3 && o->compression_type != BLOCK_COMPRESS_ZLIB)
		return block_err(err, errlen, "Non-zlib compression type is only supported with "
				 "compatibility level 1.1 and above (use version=v3 or greater)");
	/* qcow2 spec "Extended L2 Entries": v3 only, subclusters of at least 512 bytes. */
	if (o->extended_l2 && version < 3)
		return block_err(err, errlen, "Extended L2 entries are only supported with "
				 "compatibility level 1.1 and above (use version=v3 or greater)");
	if (o->extended_l2 && cs < (QCOW2_SUBCLUSTERS << QCOW2_MIN_CLUSTER_BITS))
		return block_err(err, errlen, "Extended L2 entries are only supported with cluster "
				 "sizes of at least %u bytes",
				 QCOW2_SUBCLUSTERS << QCOW2_MIN_CLUSTER_BITS);
	if (o->size % 512)
		return block_err(err, errlen, "Image size must be a multiple of 512 bytes");
	if (o->backing_file && o->prealloc != BLOCK_PREALLOC_OFF && !o->extended_l2)
		return block_err(err, errlen, "Backing file and preallocation can only be used at "
				 "the same time if extended_l2 is on");
	if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
		return block_err(err, errlen, "Backing file name too long");
	return check_data_file_opts(o, version, err, errlen);
}

/* The header of a new, empty image (qcow2 spec: "Header"); the size comes later. */
static void init_new_header(struct qcow2 *t, const struct block_create_opts *o, uint32_t cs,
			    int version, int rbits)
{
	/* Cluster 0: header; 1: refcount table; 2: the refcount block for 0..2. */
	t->h.version = (uint32_t)version;
	t->cluster_bits = (unsigned)__builtin_ctz(cs);
	t->cluster_size = cs;
	t->refcount_order = (unsigned)__builtin_ctz((unsigned)rbits);
	t->reftable_offset = cs;
	t->reftable_size = cs / 8;
	t->h.size = 0;
	if (version < 3)
		return;
	t->h.compatible_features = o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0;
	t->h.compression_type = (uint8_t)o->compression_type;
	if (o->compression_type)
		t->h.incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
	if (o->extended_l2)
		t->h.incompatible_features |= QCOW2_INCOMPAT_EXTL2;
	if (o->data_file) {
		t->h.incompatible_features |= QCOW2_INCOMPAT_DATA_FILE;
		t->data_file_name = (char *)o->data_file;
	}
	if (o->data_file_raw)
		t->h.autoclear_features |= QCOW2_AUTOCLEAR_DATA_FILE_RAW;
}

/* Writes len bytes from the start of fd, across short writes: 0 or a negative errno. */
static int write_start(int fd, const uint8_t *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Grows the new image to size and records the backing file with the ordinary
 * code, unlocked: the creator's locks (which would conflict with a second set
 * of ours) already hold everyone else off.
 */
static int finish_new_image(const char *path, const struct block_create_opts *o, bool luks,
			    char *err, size_t errlen)
{
	enum block_prealloc prealloc = o->prealloc;
	struct block_dev *bd;
	char msg[512];
	int ret = 0;

	if (block_open(path, "qcow2", BLOCK_NO_BACKING | BLOCK_NO_FLUSH | BLOCK_NO_LOCK, &bd, msg,
		       sizeof(msg)) < 0)
		return block_err(err, errlen, "%s", msg);
	if (o->backing_file) {
		struct qcow2 *s = bd->opaque;
		s->backing_file = strdup(o->backing_file);
		s->backing_fmt = o->backing_fmt ? strdup(o->backing_fmt) : NULL;
		if (!s->backing_file || (o->backing_fmt && !s->backing_fmt))
			ret = block_err(err, errlen, "out of memory");
		else if (qcow2_write_header(s) < 0)
			ret = block_err(err, errlen, "Could not write qcow2 header");
	}
	/* Raw external data must read as the guest sees it: all clusters mapped (QEMU). */
	if (o->data_file_raw && prealloc == BLOCK_PREALLOC_OFF)
		prealloc = BLOCK_PREALLOC_METADATA;
	if (ret == 0 && o->size &&
	    qcow2_truncate(bd, o->size, false, prealloc, msg, sizeof(msg)) < 0)
		ret = block_err(err, errlen, "Could not resize image: %s", msg);
	/* QEMU's order: sized first, then the encryption header after the L1 table. */
	if (ret == 0 && luks)
		ret = qcow2_crypt_create(bd->opaque, o, err, errlen);
	block_close(bd);
	return ret;
}

int qcow2_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int version = o->compat ? o->compat : 3, rbits = o->refcount_bits ? o->refcount_bits : 16;
	struct qcow2 t = { 0 };
	uint8_t *buf;
	bool luks;
	int fd, ret;

	if (check_opts(o, cs, version, rbits, err, errlen) < 0 ||
	    qcow2_crypt_check_opts(o, &luks, err, errlen) < 0)
		return -1;
	buf = calloc(3, cs);
	if (!buf)
		return block_err(err, errlen, "out of memory");
	init_new_header(&t, o, cs, version, rbits);
	if (o->data_file && create_data_file(path, o->data_file, err, errlen) < 0) {
		free(buf);
		return -1;
	}
	ret = qcow2_build_header(&t, buf, cs);
	if (ret < 0) {
		free(buf);
		return block_err(err, errlen, "Header would not fit in a %u byte cluster", cs);
	}
	st_be64(buf + cs, 2ULL * cs);
	for (int i = 0; i < 3; i++)
		qcow2_rc_set_entry(buf + 2 * cs, t.refcount_order, (uint64_t)i, 1);

	/* The locks of fd keep every other user out until the image is complete. */
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0) {
		free(buf);
		return -1;
	}
	block_crash_point();
	ret = write_start(fd, buf, 3 * (size_t)cs);
	free(buf);
	if (ret < 0) {
		close(fd);
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	}
	ret = finish_new_image(path, o, luks, err, errlen);
	if (close(fd) < 0 && ret == 0)
		ret = block_err(err, errlen, "Could not create '%s': %s", path, strerror(errno));
	return ret;
}

/* Preallocation in an external data file: its clusters are the guest's own offsets. */
static int prealloc_data_file(struct qcow2 *s, uint64_t host, uint64_t len,
			      enum block_prealloc mode)
{
	int ret;

	if (mode == BLOCK_PREALLOC_FULL)
		return qcow2_data_zero(s, host, len);
	if (mode == BLOCK_PREALLOC_FALLOC && s->data) {
		block_crash_point();
		ret = posix_fallocate(s->data->fd, (off_t)host, (off_t)len);
		return -ret;
	}
	return 0;
}

/* An external data file grows with the disk, to its exact size (QEMU's qcow2_co_truncate). */
static int grow_data_file(struct qcow2 *s, uint64_t size)
{
	char msg[256];
	int64_t cur;

	if (!qcow2_has_data_file(s) || !s->data)
		return 0;
	cur = bfile_size(s->data);
	if (cur < 0)
		return (int)cur;
	if ((uint64_t)cur >= size)
		return 0;
	/* Through the raw driver: a data file grown from empty gets its first block written. */
	s->data->size = (uint64_t)cur;
	if (block_truncate(s->data, size, false, BLOCK_PREALLOC_OFF, msg, sizeof(msg)) < 0)
		return -EIO;
	return 0;
}

/* Host clusters for every unallocated guest cluster in [from, to), contiguous per L2 table. */
int qcow2_preallocate(struct qcow2 *s, uint64_t from, uint64_t to, enum block_prealloc mode)
{
	uint64_t first = qcow2_size_to_clusters(s, from), end = qcow2_size_to_clusters(s, to);
	int ret = 0;

	while (first < end && ret == 0) {
		uint64_t l1_index = first >> s->l2_bits, l2_index = first & (s->l2_size - 1);
		uint64_t n = s->l2_size - l2_index, host;

		if (n > end - first)
			n = end - first;
		/*
		 * The L2 table first, then its data clusters after it, as QEMU's
		 * cluster allocation does: the same host offsets as qemu-img's layout.
		 */
		ret = qcow2_write_l2_range(s, l1_index, l2_index, 0, 0);
		if (ret == 0)
			ret = qcow2_data_alloc(s, first << s->cluster_bits, n, &host);
		if (ret < 0)
			break;
		if (qcow2_has_data_file(s)) {
			ret = prealloc_data_file(s, host, n << s->cluster_bits, mode);
		/* Reused space may hold old bytes; fresh space past the end is zero already. */
		} else if (mode == BLOCK_PREALLOC_FULL || host < s->data_end) {
			ret = qcow2_file_write_zeroes(s, host, n << s->cluster_bits);
		} else if (mode == BLOCK_PREALLOC_FALLOC) {
			block_crash_point();
			ret = posix_fallocate(s->bd->fd, (off_t)host, (off_t)(n << s->cluster_bits));
			ret = -ret;
			if (ret == 0 && host + (n << s->cluster_bits) > s->file_size)
				s->file_size = host + (n << s->cluster_bits);
		} else if (host + (n << s->cluster_bits) > s->file_size) {
			/*
			 * Metadata only: the clusters are still holes, but inside the file,
			 * as QEMU grows it (a cluster past the end is corruption to check).
			 */
			if (ftruncate(s->bd->fd, (off_t)(host + (n << s->cluster_bits))) < 0)
				ret = -errno;
			else
				s->file_size = host + (n << s->cluster_bits);
		}
		if (ret < 0)
			break;
		ret = qcow2_write_l2_range(s, l1_index, l2_index, n, host);
		first += n;
	}
	return ret;
}

int qcow2_truncate(struct block_dev *bd, uint64_t size, bool shrink,
		   enum block_prealloc prealloc, char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	uint64_t cover = (uint64_t)s->cluster_size << s->l2_bits, old = s->h.size;
	uint8_t field[8];
	bool zero_new;
	int ret;

	if (size % 512)
		return block_err(err, errlen, "The new size must be a multiple of 512");
	if (s->nb_snaps && s->h.version < 3)
		return block_err(err, errlen, "Can't resize a v2 image which has internal snapshots");
	if (size < old && prealloc != BLOCK_PREALLOC_OFF)
		return block_err(err, errlen, "Preallocation can't be used for shrinking an image");
	if ((size + cover - 1) / cover > QCOW2_MAX_L1_BYTES / 8)
		return block_err(err, errlen, "Image is too big");
	/*
	 * Growing over a longer backing file: the new area must read as zeroes,
	 * not as the backing file's data there (QEMU's BDRV_REQ_ZERO_WRITE
	 * truncate).  v2 has no zero flag, so QEMU refuses when whole clusters
	 * would have to be zeroed.
	 */
	zero_new = size > old && bd->backing && block_length(bd->backing) > old;
	if (zero_new && s->h.version < 3 && qcow2_align(s, old) < size)
		return block_err(err, errlen, "Failed to zero out new clusters: %s",
				 strerror(ENOTSUP));
	pthread_mutex_lock(&s->lock);
	/* The bitmaps follow the new size in memory (QEMU's qcow2_truncate_bitmaps_check). */
	if (qcow2_bitmaps_resize(s, size, err, errlen) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	if (size < old) {
		ret = qcow2_drop_beyond(s, size);
		if (ret == 0)
			ret = qcow2_flush_metadata(s, true);
		if (ret == 0)
			ret = qcow2_shrink_reftable(s);
	} else {
		ret = qcow2_grow_l1(s, (size + cover - 1) / cover);
		if (ret == 0)
			ret = grow_data_file(s, size);
	}
	if (ret == 0) {
		st_be64(field, size);
		ret = qcow2_file_write(s, 24, field, sizeof(field));
	}
	if (ret == 0) {
		s->h.size = size;
		bd->size = size;
		if (size > old && (prealloc == BLOCK_PREALLOC_FALLOC ||
				   prealloc == BLOCK_PREALLOC_FULL))
			ret = qcow2_prealloc_like_qemu(s, old, size, prealloc);
		else
			ret = 1;
		if (ret == 1 && size > old && prealloc != BLOCK_PREALLOC_OFF)
			ret = qcow2_preallocate(s, old, size, prealloc);
		else if (ret == 1)
			ret = 0;
		if (ret == 0 && zero_new)
			ret = qcow2_zero(s, old, size - old, false);
	}
	if (ret == 0)
		ret = qcow2_flush_metadata(s, true);
	if (ret == 0 && size < old)
		ret = qcow2_trim_file(s);
	if (ret < 0 && s->h.size == old)
		qcow2_bitmaps_resize(s, old, NULL, 0);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return block_err(err, errlen, "%s", strerror(-ret));
	return 0;
}

int qcow2_change_backing(struct block_dev *bd, const char *file, const char *fmt,
			 char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	char *nf = NULL, *nfmt = NULL, *of, *ofmt;
	int ret;

	if (file && *file && strlen(file) > QCOW2_MAX_BACKING_NAME)
		return block_err(err, errlen, "Backing file name too long");
	/* qcow2 spec: raw external data conflicts with backing files (QEMU: -EINVAL). */
	if (file && *file && (s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW))
		return block_err(err, errlen, "%s", strerror(EINVAL));
	if (file && *file && !(nf = strdup(file)))
		return block_err(err, errlen, "out of memory");
	if (nf && fmt && *fmt && !(nfmt = strdup(fmt))) {
		free(nf);
		return block_err(err, errlen, "out of memory");
	}
	pthread_mutex_lock(&s->lock);
	/*
	 * What was written for the new backing file (rebase's copies) must be
	 * on disk before the header names it: else a crash leaves the image
	 * over the new backing file without the data that makes up the difference.
	 */
	ret = qcow2_flush_metadata(s, true);
	if (ret < 0) {
		pthread_mutex_unlock(&s->lock);
		free(nf);
		free(nfmt);
		return block_err(err, errlen, "Could not update the backing file: %s",
				 strerror(-ret));
	}
	of = s->backing_file;
	ofmt = s->backing_fmt;
	s->backing_file = nf;
	s->backing_fmt = nfmt;
	ret = qcow2_write_header(s);
	if (ret == 0 && !(bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(bd);
	if (ret < 0) {
		s->backing_file = of;
		s->backing_fmt = ofmt;
		free(nf);
		free(nfmt);
	} else {
		free(of);
		free(ofmt);
	}
	pthread_mutex_unlock(&s->lock);
	if (ret == -ENOSPC)
		return block_err(err, errlen, "Backing file name does not fit in the header cluster");
	if (ret < 0)
		return block_err(err, errlen, "Could not update the backing file: %s",
				 strerror(-ret));
	return 0;
}

/*
 * QEMU's make_completely_empty (block/qcow2.c) leaves a v3 image without
 * snapshots, bitmaps, encryption or data file as header, refcount table,
 * one refcount block and the L1 table in clusters 0, 1, 2 and 3 on, all
 * written in full, and cuts the file after them.  When the image already
 * has that layout the same end state is reached by cutting the file after
 * the last cluster in use and rewriting those metadata clusters whole.
 */
static bool standard_layout(const struct qcow2 *s)
{
	uint64_t cs = s->cluster_size;
	uint64_t l1c = qcow2_size_to_clusters(s, (uint64_t)s->l1_size * 8);

	return s->h.version >= 3 && !s->nb_snaps && !s->nb_bms && !s->h.crypt_method &&
	       !qcow2_has_data_file(s) && 3 + l1c <= (1ULL << s->rb_bits) &&
	       s->reftable_offset == cs && s->h.refcount_table_clusters == 1 &&
	       s->reftable_size >= 1 && s->reftable[0] == 2 * cs && s->l1_offset == 3 * cs;
}

static int rewrite_whole_clusters(struct qcow2 *s, uint64_t first, uint64_t end)
{
	uint8_t *buf = malloc(s->cluster_size);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t c = first; c < end && ret == 0; c++) {
		uint64_t off = c << s->cluster_bits;
		ret = bfile_pread(s->bd, off, buf, s->cluster_size);
		if (ret == 0)
			ret = bfile_pwrite(s->bd, off, buf, s->cluster_size);
	}
	free(buf);
	return ret;
}

int qcow2_make_empty(struct block_dev *bd)
{
	struct qcow2 *s = bd->opaque;
	bool standard;
	int ret;

	pthread_mutex_lock(&s->lock);
	standard = standard_layout(s);
	ret = qcow2_drop_beyond(s, 0);
	if (ret == 0)
		ret = qcow2_flush_metadata(s, true);
	if (ret == 0 && standard)
		ret = qcow2_trim_file(s);
	if (ret == 0 && standard && s->file_size ==
	    (3 + qcow2_size_to_clusters(s, (uint64_t)s->l1_size * 8)) << s->cluster_bits)
		ret = rewrite_whole_clusters(s, 1, s->file_size >> s->cluster_bits);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * v3 -> v2 (qcow2 spec: the zero flag is new in version 3), one L2 entry:
 * the entry it becomes.  As QEMU's qcow2_expand_zero_clusters: without a
 * backing file a zero cluster without host space becomes unallocated,
 * which reads as zeroes as well; the others get a host cluster of written
 * zeroes, referenced as often as the L2 table that names it (l2_rc).
 */
static int expand_entry(struct qcow2 *s, uint64_t e, uint64_t l2_rc, bool active,
			const uint8_t *zero, uint64_t *ne)
{
	enum qcow2_type t = qcow2_entry_type(s, e);
	uint64_t host = e & L2E_OFFSET_MASK;
	int ret = 0;

	if (t == QCOW2_ZERO_PLAIN && !s->backing_file) {
		*ne = 0;
		return 0;
	}
	/* COPIED on an active entry: nothing else references the cluster, zeroed in place. */
	if (t == QCOW2_ZERO_ALLOC && active && (e & QCOW_OFLAG_COPIED)) {
		*ne = host | QCOW_OFLAG_COPIED;
		return qcow2_data_pwrite(s, host, zero, s->cluster_size);
	}
	/*
	 * A shared preallocated cluster may hold another tree's data (QEMU 7.2
	 * zeroes it there all the same): this entry gets a cluster of its own.
	 */
	ret = qcow2_alloc_clusters(s, 1, &host);
	if (ret == 0 && l2_rc > 1)
		ret = qcow2_update_refcount(s, host >> s->cluster_bits, (int64_t)l2_rc - 1);
	if (ret == 0)
		ret = qcow2_data_pwrite(s, host, zero, s->cluster_size);
	if (ret < 0)
		return ret;
	*ne = host | (active && l2_rc == 1 ? QCOW_OFLAG_COPIED : 0);
	/* The old cluster loses this table's references once the new entry is on disk. */
	for (uint64_t i = 0; t == QCOW2_ZERO_ALLOC && i < l2_rc && ret == 0; i++)
		ret = qcow2_free_later(s, e & L2E_OFFSET_MASK, 1);
	return ret;
}

/* The zero clusters of one L2 table, rewritten in place (its sharers see the same bytes). */
static int expand_l2(struct qcow2 *s, uint64_t l2, uint64_t l1_index, bool active,
		     const uint8_t *zero)
{
	uint64_t *table, l2_rc;
	bool dirty = false;
	int ret;

	if (qcow2_in_cluster(s, l2) || l2 < s->cluster_size)
		return qcow2_signal_corruption(s, "L2 table offset %#" PRIx64 " unaligned (L1 "
					       "index: %#" PRIx64 ")", l2, l1_index);
	ret = qcow2_get_refcount(s, l2 >> s->cluster_bits, &l2_rc);
	if (ret < 0)
		return ret;
	ret = qcow2_cache_get(s, &s->l2_cache, l2, true, (void **)&table);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < s->l2_size && ret == 0; j++) {
		uint64_t e = qcow2_l2_get(s, table, j), ne;
		enum qcow2_type t = qcow2_entry_type(s, e);

		if (t != QCOW2_ZERO_PLAIN && t != QCOW2_ZERO_ALLOC)
			continue;
		ret = expand_entry(s, e, l2_rc, active, zero, &ne);
		if (ret == 0) {
			qcow2_l2_set(s, table, j, ne);
			dirty = true;
		}
	}
	if (dirty)
		qcow2_cache_mark_dirty(&s->l2_cache, table);
	qcow2_cache_put(&s->l2_cache, table);
	return ret;
}

static int expand_l1(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size, bool active,
		     const uint8_t *zero)
{
	int ret = 0;

	for (uint32_t i = 0; i < l1_size && ret == 0; i++)
		if (l1[i] & L1E_OFFSET_MASK)
			ret = expand_l2(s, l1[i] & L1E_OFFSET_MASK, i, active, zero);
	return ret;
}

/* A snapshot's L1 table, host order (validated when the snapshot table was read). */
static int expand_snapshot(struct qcow2 *s, const struct qcow2_snapshot *sn, const uint8_t *zero)
{
	size_t bytes = (size_t)sn->l1_size * 8;
	uint64_t *l1 = malloc(bytes ? bytes : 1);
	int ret;

	if (!l1)
		return -ENOMEM;
	ret = bfile_pread(s->bd, sn->l1_table_offset, l1, bytes);
	for (uint32_t i = 0; ret == 0 && i < sn->l1_size; i++)
		l1[i] = be64toh(l1[i]);
	if (ret == 0)
		ret = expand_l1(s, l1, sn->l1_size, false, zero);
	free(l1);
	return ret;
}

/*
 * Every tree: the active one and the snapshots' (a zero flag left in a v2
 * snapshot is corruption the moment the snapshot is applied).
 */
static int expand_zero_clusters(struct qcow2 *s)
{
	uint8_t *zero = block_alloc_buf(s->cluster_size);
	int ret;

	if (!zero)
		return -ENOMEM;
	memset(zero, 0, s->cluster_size);
	ret = expand_l1(s, s->l1, s->l1_size, true, zero);
	for (uint32_t i = 0; ret == 0 && i < s->nb_snaps; i++)
		ret = expand_snapshot(s, &s->snaps[i], zero);
	free(zero);
	return ret;
}

/* QEMU's qcow2_amend_options and qcow2_downgrade on external data files and extended L2. */
static int check_amend_data_file(struct qcow2 *s, const struct block_create_opts *o,
				 unsigned set, int version, char *err, size_t errlen)
{
	if ((set & BLOCK_AMEND_DATA_FILE) && o->data_file && !qcow2_has_data_file(s))
		return block_err(err, errlen, "data-file can only be set for images that use an "
				 "external data file");
	if ((set & BLOCK_AMEND_DATA_FILE_RAW) && o->data_file_raw &&
	    !(s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW))
		return block_err(err, errlen, "data-file-raw cannot be set on existing images");
	if (version >= 3 || s->h.version < 3)
		return 0;
	if (qcow2_has_data_file(s))
		return block_err(err, errlen, "Cannot downgrade an image with a data file");
	if (s->h.incompatible_features & QCOW2_INCOMPAT_EXTL2)
		return block_err(err, errlen, "Cannot downgrade an image with incompatible features "
				 "%#llx set", (unsigned long long)QCOW2_INCOMPAT_EXTL2);
	return 0;
}

/* A new data file name, or raw external data switched off: one header write. */
static int amend_data_file(struct qcow2 *s, const struct block_create_opts *o, unsigned set)
{
	bool changed = false;
	int ret;

	if ((set & BLOCK_AMEND_DATA_FILE) && o->data_file && qcow2_has_data_file(s) &&
	    (!s->data_file_name || strcmp(s->data_file_name, o->data_file))) {
		char *name = strdup(o->data_file);
		if (!name)
			return -ENOMEM;
		free(s->data_file_name);
		s->data_file_name = name;
		changed = true;
	}
	if ((set & BLOCK_AMEND_DATA_FILE_RAW) && !o->data_file_raw &&
	    (s->h.autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW)) {
		s->h.autoclear_features &= ~QCOW2_AUTOCLEAR_DATA_FILE_RAW;
		changed = true;
	}
	if (!changed)
		return 0;
	ret = qcow2_write_header(s);
	if (ret == 0 && !(s->bd->flags & BLOCK_NO_FLUSH))
		ret = bfile_flush(s->bd);
	return ret;
}

int qcow2_amend(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	int version = (set & BLOCK_AMEND_COMPAT) ? o->compat : (int)s->h.version;
	bool lazy = (set & BLOCK_AMEND_LAZY_REFCOUNTS) ? o->lazy_refcounts :
		    !!(s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
	int rbits = (set & BLOCK_AMEND_REFCOUNT_BITS) ? o->refcount_bits : 1 << s->refcount_order;
	int ret = 0;
	char msg[256];

	if (check_refcount_opts(version, rbits, lazy, "compat=1.1", err, errlen) < 0)
		return -1;
	/* QEMU changes the keyslots before anything else (qcow2_amend_options). */
	if (qcow2_crypt_amending(o) && qcow2_crypt_amend(s, o, err, errlen) < 0)
		return -1;
	if (check_amend_data_file(s, o, set, version, err, errlen) < 0)
		return -1;
	if (version < 3 && s->h.compression_type)
		return block_err(err, errlen, "Cannot downgrade an image with a non-zlib "
				 "compression type");
	if ((set & BLOCK_AMEND_SIZE) && o->size != s->h.size &&
	    qcow2_truncate(bd, o->size, true, BLOCK_PREALLOC_OFF, msg, sizeof(msg)) < 0)
		return block_err(err, errlen, "%s", msg);
	if ((set & (BLOCK_AMEND_BACKING_FILE | BLOCK_AMEND_BACKING_FMT))) {
		const char *file = (set & BLOCK_AMEND_BACKING_FILE) ? o->backing_file : s->backing_file;
		const char *fmt = (set & BLOCK_AMEND_BACKING_FMT) ? o->backing_fmt : s->backing_fmt;
		char *f = file ? strdup(file) : NULL, *ff = fmt ? strdup(fmt) : NULL;
		ret = qcow2_change_backing(bd, f, ff, err, errlen);
		free(f);
		free(ff);
		if (ret < 0)
			return -1;
	}

	pthread_mutex_lock(&s->lock);
	if (rbits != 1 << s->refcount_order &&
	    qcow2_change_refcount_order(s, (unsigned)__builtin_ctz((unsigned)rbits), err,
					errlen) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	if (ret == 0 && version < 3 && s->h.version >= 3) {
		/* Lazy refcounts off first: a v2 image cannot carry the dirty bit. */
		ret = qcow2_flush_metadata(s, true);
		if (ret == 0)
			ret = expand_zero_clusters(s);
		if (ret == 0)
			ret = qcow2_flush_metadata(s, true);
		if (ret == 0 && s->dirty_bit_set)
			ret = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false);
		s->dirty_bit_set = false;
		/* v2 snapshot entries need no extra data; QEMU keeps what is there. */
	}
	if (ret == 0) {
		uint64_t compat = lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0;
		if (!lazy && s->dirty_bit_set) {
			ret = qcow2_flush_metadata(s, true);
			if (ret == 0)
				ret = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false);
			s->dirty_bit_set = false;
		}
		if (ret == 0 && version >= 3 && s->h.version < 3)
			ret = qcow2_snapshot_table_upgrade(s);
		if (ret == 0 && (version != (int)s->h.version || compat != s->h.compatible_features)) {
			s->h.version = (uint32_t)version;
			s->h.compatible_features = version >= 3 ? compat : 0;
			if (version < 3) {
				s->h.incompatible_features = 0;
				s->h.autoclear_features = 0;
				free(s->unknown_header);
				s->unknown_header = NULL;
				s->unknown_header_len = 0;
			}
			ret = qcow2_write_header(s);
			if (ret == 0)
				ret = bfile_flush(bd);
		}
	}
	if (ret == 0)
		ret = amend_data_file(s, o, set);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return block_err(err, errlen, "%s", strerror(-ret));
	return 0;
}
