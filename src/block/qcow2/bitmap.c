/*
 * Persistent dirty bitmaps (qcow2 spec: "Bitmaps extension", "Bitmap
 * directory", "Bitmap table", "Bitmap data"), kept as QEMU keeps them:
 *
 * - Opened for writing, every bitmap is loaded and the consistent ones are
 *   marked "in use" on disk (autoclear bit 0 off, directory rewritten in
 *   place, bit back on), so a crash leaves them flagged inconsistent rather
 *   than silently stale.  Writes mark the enabled ("auto") ones in memory.
 * - At close each consistent bitmap gets new data clusters, a new table and
 *   a new directory; one header write switches to them (refcounts synced
 *   first), and only then are the old clusters freed.  A crash at any point
 *   leaves at most leaked clusters.
 * - Opened read-only, the directory and a bitmap's data are read on demand.
 *
 * Limits and messages follow QEMU's block/qcow2-bitmap.c.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BME_MAX_TABLE_SIZE	0x8000000u
#define BME_MAX_PHYS_SIZE	0x20000000u
#define BME_MIN_GRAN_BITS	9
#define BME_MAX_GRAN_BITS	31
#define BME_MAX_NAME		1023
#define BME_MAX_DIR_SIZE	(1024u * QCOW2_MAX_BITMAPS)
#define BME_FLAG_IN_USE		(1u << 0)
#define BME_FLAG_AUTO		(1u << 1)
#define BME_RESERVED_FLAGS	0xfffffffcu
#define BME_ENTRY_RESERVED	0xff000000000001feULL
#define BME_ENTRY_OFFSET	0x00fffffffffffe00ULL
#define BME_ENTRY_ALL_ONES	1ULL
#define BME_TYPE_DIRTY		1
#define BME_HINT		"\nTry block-dirty-bitmap-remove to delete this bitmap from disk"

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

static uint64_t entry_size(size_t name_len)
{
	return (24 + name_len + 7) & ~7ULL;
}

/* Bytes of bitmap data for a disk of size bytes (QEMU's get_bitmap_bytes_needed). */
static uint64_t data_bytes(uint64_t size, unsigned gbits)
{
	return div_up(div_up(size, 1ULL << gbits), 8);
}

/* Bitmap table entries for that data: QEMU serialises in 8-byte words. */
static uint64_t table_entries(const struct qcow2 *s, uint64_t nbytes)
{
	return div_up((nbytes + 7) & ~7ULL, s->cluster_size);
}

int qcow2_bitmap_check_entry(uint64_t entry, uint32_t cluster_size)
{
	uint64_t off = entry & BME_ENTRY_OFFSET;

	if (entry & BME_ENTRY_RESERVED)
		return -EINVAL;
	/* With an offset, bit 0 ("all ones") is reserved. */
	if (off && ((entry & BME_ENTRY_ALL_ONES) || off % cluster_size))
		return -EINVAL;
	return 0;
}

/* QEMU's check_dir_entry. */
static bool entry_ok(const struct qcow2 *s, uint64_t toff, uint32_t tsize, uint32_t flags,
		     uint8_t type, unsigned gbits, unsigned name_len)
{
	uint64_t phys = (uint64_t)tsize * s->cluster_size;

	if (!tsize || !toff || toff % s->cluster_size || tsize > BME_MAX_TABLE_SIZE ||
	    gbits > BME_MAX_GRAN_BITS || gbits < BME_MIN_GRAN_BITS ||
	    (flags & BME_RESERVED_FLAGS) || name_len > BME_MAX_NAME || type != BME_TYPE_DIRTY)
		return false;
	if (phys > BME_MAX_PHYS_SIZE)
		return false;
	/* A consistent bitmap must cover the whole disk. */
	return (flags & BME_FLAG_IN_USE) || s->h.size <= ((phys * 8) << gbits);
}

static void free_list(struct qcow2_bitmap *bms, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(bms[i].name);
		free(bms[i].bits);
	}
	free(bms);
}

int qcow2_bitmap_dir_parse(const struct qcow2 *s, const uint8_t *dir, uint64_t size,
			   uint32_t nb, struct qcow2_bitmap **out, unsigned *count,
			   char *err, size_t errlen)
{
	struct qcow2_bitmap *bms = calloc(nb ? nb : 1, sizeof(*bms));
	unsigned n = 0;
	uint64_t p = 0;

	if (!bms)
		return block_err(err, errlen, "Failed to allocate space for bitmap directory");
	while (p < size) {
		const uint8_t *e = dir + p;
		uint32_t extra, flags, tsize;
		uint16_t name_len;
		struct qcow2_bitmap *b;

		if (size - p < 24)
			goto broken;
		if (n == nb) {
			block_err(err, errlen, "More bitmaps found than specified in header extension");
			goto fail;
		}
		tsize = ld_be32(e + 8);
		flags = ld_be32(e + 12);
		name_len = ld_be16(e + 18);
		extra = ld_be32(e + 20);
		if (entry_size((size_t)name_len + extra) > size - p)
			goto broken;
		if (extra) {
			block_err(err, errlen, "Bitmap extra data is not supported");
			goto fail;
		}
		if (!entry_ok(s, ld_be64(e), tsize, flags, e[16], e[17], name_len)) {
			block_err(err, errlen, "Bitmap '%.*s' doesn't satisfy the constraints",
				  (int)name_len, (const char *)e + 24);
			goto fail;
		}
		b = &bms[n++];
		b->name = strndup((const char *)e + 24, name_len);
		if (!b->name) {
			block_err(err, errlen, "out of memory");
			goto fail;
		}
		b->table_offset = ld_be64(e);
		b->table_size = tsize;
		b->flags = flags;
		b->gbits = e[17];
		b->enabled = flags & BME_FLAG_AUTO;
		b->inconsistent = flags & BME_FLAG_IN_USE;
		b->nbytes = data_bytes(s->h.size, b->gbits);
		p += entry_size(name_len);
	}
	if (n != nb) {
		block_err(err, errlen, "Less bitmaps found than specified in header extension");
		goto fail;
	}
	*out = bms;
	*count = n;
	return 0;
broken:
	block_err(err, errlen, "Broken bitmap directory");
fail:
	free_list(bms, n);
	return -1;
}

static const struct qcow2_ext *bitmaps_ext(const struct qcow2 *s);

/* The extension's directory, while its bit says it is valid and within QEMU's limits. */
static bool ext_fields(const struct qcow2 *s, uint64_t *off, uint64_t *size, uint32_t *nb)
{
	const struct qcow2_ext *e = bitmaps_ext(s);

	if (!e || e->len != 24 || !(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return false;
	*nb = ld_be32(e->data);
	*size = ld_be64(e->data + 8);
	*off = ld_be64(e->data + 16);
	return *nb && *nb <= QCOW2_MAX_BITMAPS && *size && *size <= BME_MAX_DIR_SIZE &&
	       *off <= INT64_MAX && !qcow2_in_cluster(s, *off);
}

/* Reads the directory the header points to into s->bms (QEMU's bitmap_list_load). */
static int load_dir(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t off, size;
	uint32_t nb;
	uint8_t *dir;
	int ret;

	if (s->bms_loaded)
		return 0;
	if (!ext_fields(s, &off, &size, &nb)) {
		s->bms_loaded = true;
		return 0;
	}
	/* Past the end of the file it reads as zeroes, as QEMU reads it (and refuses it). */
	dir = calloc(1, (size_t)size);
	if (!dir)
		return block_err(err, errlen, "Failed to allocate space for bitmap directory");
	ret = off >= s->file_size ? 0 :
	      bfile_pread(s->bd, off, dir, (size_t)(size < s->file_size - off ? size
								  : s->file_size - off));
	if (ret < 0) {
		free(dir);
		return block_err(err, errlen, "Failed to read bitmap directory: %s", strerror(-ret));
	}
	ret = qcow2_bitmap_dir_parse(s, dir, size, nb, &s->bms, &s->nb_bms, err, errlen);
	free(dir);
	if (ret == 0)
		s->bms_loaded = true;
	return ret;
}

static int read_table(struct qcow2 *s, uint64_t off, uint32_t n, uint64_t **out)
{
	uint64_t *t = malloc((size_t)n * 8);
	int ret;

	if (!t)
		return -ENOMEM;
	ret = bfile_pread(s->bd, off, t, (size_t)n * 8);
	for (uint32_t i = 0; ret == 0 && i < n; i++) {
		t[i] = be64toh(t[i]);
		ret = qcow2_bitmap_check_entry(t[i], s->cluster_size);
	}
	if (ret < 0) {
		free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* Clears the bits of the last byte past the end of a disk of size bytes. */
static void mask_tail(struct qcow2_bitmap *b, uint64_t size)
{
	uint64_t nbits = div_up(size, 1ULL << b->gbits);

	if (nbits % 8 && b->nbytes)
		b->bits[b->nbytes - 1] &= (uint8_t)((1u << (nbits % 8)) - 1);
}

/* QEMU's load_bitmap_data: the table must fit the disk exactly. */
static int load_data(struct qcow2 *s, struct qcow2_bitmap *b, char *err, size_t errlen)
{
	uint64_t *table;
	uint8_t *buf;
	int ret;

	if (b->bits || b->inconsistent)
		return 0;
	ret = read_table(s, b->table_offset, b->table_size, &table);
	if (ret < 0)
		return block_err(err, errlen, "Could not read bitmap_table table from image for "
				 "bitmap '%s': %s", b->name, strerror(-ret));
	b->bits = calloc(1, (size_t)((b->nbytes + 7) & ~7ULL) + 8);
	buf = malloc(s->cluster_size);
	ret = b->bits && buf ? 0 : -ENOMEM;
	if (ret == 0 && table_entries(s, b->nbytes) != b->table_size)
		ret = -EINVAL;
	for (uint32_t i = 0; ret == 0 && i < b->table_size; i++) {
		uint64_t at = (uint64_t)i * s->cluster_size, off = table[i] & BME_ENTRY_OFFSET;
		size_t n;

		if (at >= b->nbytes)
			break;
		n = b->nbytes - at < s->cluster_size ? (size_t)(b->nbytes - at) : s->cluster_size;
		if (off) {
			ret = bfile_pread(s->bd, off, buf, s->cluster_size);
			if (ret == 0)
				memcpy(b->bits + at, buf, n);
		} else if (table[i] & BME_ENTRY_ALL_ONES) {
			memset(b->bits + at, 0xff, n);
		}
	}
	free(buf);
	free(table);
	if (ret < 0) {
		free(b->bits);
		b->bits = NULL;
		return block_err(err, errlen, "Could not read bitmap '%s' from image: %s", b->name,
				 strerror(-ret));
	}
	mask_tail(b, s->h.size);
	return 0;
}

/*
 * The directory as stored: entries in list order, flags and tables as
 * given; bitmaps not stored yet (no table) are left out.
 */
static int build_dir(struct qcow2 *s, uint8_t **out, uint64_t *size, uint32_t *nb)
{
	uint64_t len = 0, p = 0;
	uint8_t *dir;

	*nb = 0;
	for (unsigned i = 0; i < s->nb_bms; i++) {
		if (!s->bms[i].table_offset)
			continue;
		len += entry_size(strlen(s->bms[i].name));
		(*nb)++;
	}
	if (!len || len > BME_MAX_DIR_SIZE)
		return -EINVAL;
	dir = calloc(1, (size_t)qcow2_align(s, len));
	if (!dir)
		return -ENOMEM;
	for (unsigned i = 0; i < s->nb_bms; i++) {
		const struct qcow2_bitmap *b = &s->bms[i];
		size_t name_len = strlen(b->name);
		if (!b->table_offset)
			continue;
		st_be64(dir + p, b->table_offset);
		st_be32(dir + p + 8, b->table_size);
		st_be32(dir + p + 12, b->flags);
		dir[p + 16] = BME_TYPE_DIRTY;
		dir[p + 17] = (uint8_t)b->gbits;
		st_be16(dir + p + 18, (uint16_t)name_len);
		memcpy(dir + p + 24, b->name, name_len);
		p += entry_size(name_len);
	}
	*out = dir;
	*size = len;
	return 0;
}

/* The bitmaps header extension (qcow2 spec: 24 bytes), first of the extensions we keep. */
static int set_ext(struct qcow2 *s, uint32_t nb, uint64_t size, uint64_t off)
{
	struct qcow2_ext *e = NULL;
	unsigned i;

	for (i = 0; i < s->nb_exts && !e; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS)
			e = &s->exts[i];
	if (!nb) {
		if (e) {
			free(e->data);
			memmove(e, e + 1, (s->nb_exts - (size_t)(e - s->exts) - 1) * sizeof(*e));
			s->nb_exts--;
		}
		return 0;
	}
	if (!e) {
		e = realloc(s->exts, (s->nb_exts + 1) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		s->exts = e;
		memmove(e + 1, e, s->nb_exts * sizeof(*e));
		s->nb_exts++;
		e->type = QCOW2_EXT_BITMAPS;
		e->len = 0;
		e->data = NULL;
	}
	if (e->len != 24) {
		uint8_t *d = calloc(1, 24);
		if (!d)
			return -ENOMEM;
		free(e->data);
		e->data = d;
		e->len = 24;
	}
	st_be32(e->data, nb);
	st_be32(e->data + 4, 0);
	st_be64(e->data + 8, size);
	st_be64(e->data + 16, off);
	return 0;
}

static int header_sync(struct qcow2 *s)
{
	int ret = qcow2_write_header(s);

	return ret ? ret : bfile_flush(s->bd);
}

/*
 * QEMU's update_ext_header_and_dir_in_place: with the extension marked
 * inconsistent meanwhile, the directory (same size, new flags) is rewritten
 * where it is.
 */
static int dir_in_place(struct qcow2 *s)
{
	uint64_t off, size, len;
	uint32_t nb, n;
	uint8_t *dir;
	int ret;

	if (!qcow2_bitmap_dir(s, &off, &size, &nb))
		return -EINVAL;
	ret = build_dir(s, &dir, &len, &n);
	if (ret < 0)
		return ret;
	if (len != size) {
		free(dir);
		return -EINVAL;
	}
	s->h.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
	ret = header_sync(s);
	if (ret == 0)
		ret = qcow2_checked_write(s, QCOW2_OL_BITMAP_DIRECTORY, off, dir, (size_t)len);
	if (ret == 0)
		ret = bfile_flush(s->bd);
	free(dir);
	if (ret < 0)
		return ret;
	s->h.autoclear_features |= QCOW2_AUTOCLEAR_BITMAPS;
	return header_sync(s);
}

static const struct qcow2_ext *bitmaps_ext(const struct qcow2 *s)
{
	for (unsigned i = 0; i < s->nb_exts; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS)
			return &s->exts[i];
	return NULL;
}

int qcow2_bitmaps_check_ext(struct qcow2 *s, char *err, size_t errlen)
{
	const struct qcow2_ext *e = bitmaps_ext(s);
	uint32_t nb;
	uint64_t size;

	if (!e)
		return 0;
	if (e->len != 24)
		return block_err(err, errlen, "bitmaps_ext: Invalid extension length");
	if (!(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
		/* QEMU's words, and like QEMU no newline after the second line. */
		if (s->h.version < 3)
			fprintf(stderr, "%s: warning: This qcow2 v2 image contains bitmaps, but they "
				"may have been modified by a program without persistent bitmap "
				"support; so now they must all be considered inconsistent\n",
				program_invocation_short_name);
		else
			fprintf(stderr, "%s: warning: a program lacking bitmap support modified "
				"this file, so all bitmaps are now considered inconsistent\n",
				program_invocation_short_name);
		fprintf(stderr, "Some clusters may be leaked, run '%s check -r' on the image file "
			"to fix.", program_invocation_short_name);
		return 0;
	}
	nb = ld_be32(e->data);
	size = ld_be64(e->data + 8);
	if (ld_be32(e->data + 4))
		return block_err(err, errlen, "bitmaps_ext: Reserved field is not zero");
	if (nb > QCOW2_MAX_BITMAPS)
		return block_err(err, errlen, "bitmaps_ext: Image has %" PRIu32 " bitmaps, exceeding "
				 "the QEMU supported maximum of %d", nb, QCOW2_MAX_BITMAPS);
	if (!nb)
		return block_err(err, errlen, "found bitmaps extension with zero bitmaps");
	if (qcow2_in_cluster(s, ld_be64(e->data + 16)))
		return block_err(err, errlen, "bitmaps_ext: invalid bitmap directory offset");
	if (size > BME_MAX_DIR_SIZE)
		return block_err(err, errlen, "bitmaps_ext: bitmap directory size (%" PRIu64 ") "
				 "exceeds the maximum supported size (%u)", size, BME_MAX_DIR_SIZE);
	/* QEMU loads the directory on every open: a broken one fails it. */
	return load_dir(s, err, errlen);
}

/* Every cluster of [off, off + len) lies in the file with a reference count. */
static bool counted(struct qcow2 *s, uint64_t off, uint64_t len)
{
	for (uint64_t c = off >> s->cluster_bits; len && c <= (off + len - 1) >> s->cluster_bits;
	     c++) {
		uint64_t rc;
		if ((c << s->cluster_bits) >= s->file_size || qcow2_get_refcount(s, c, &rc) < 0 ||
		    !rc)
			return false;
	}
	return true;
}

/*
 * A writer replaces and frees the bitmaps' clusters: one whose refcount says
 * free could be handed out again meanwhile and then be freed under its new
 * user.  Such an image is refused for writing until check -r repairs it.
 */
static int verify_refs(struct qcow2 *s, char *err, size_t errlen)
{
	uint64_t off, size;
	uint32_t nb;
	const char *bad = NULL;

	if (qcow2_bitmap_dir(s, &off, &size, &nb) && !counted(s, off, size))
		return block_err(err, errlen, "The bitmap directory has no reference count; repair "
				 "the image with '%s check -r all'", program_invocation_short_name);
	for (unsigned i = 0; !bad && i < s->nb_bms; i++) {
		struct qcow2_bitmap *b = &s->bms[i];
		uint64_t *t;

		if (!counted(s, b->table_offset, (uint64_t)b->table_size * 8)) {
			bad = b->name;
			break;
		}
		/* An unreadable table is never freed (a leak): nothing to fear from it. */
		if (read_table(s, b->table_offset, b->table_size, &t) < 0)
			continue;
		for (uint32_t j = 0; !bad && j < b->table_size; j++)
			if ((t[j] & BME_ENTRY_OFFSET) &&
			    !counted(s, t[j] & BME_ENTRY_OFFSET, s->cluster_size))
				bad = b->name;
		free(t);
	}
	if (!bad)
		return 0;
	return block_err(err, errlen, "Clusters of bitmap '%s' have no reference count; repair "
			 "the image with '%s check -r all'", bad, program_invocation_short_name);
}

int qcow2_bitmaps_open_rw(struct qcow2 *s, char *err, size_t errlen)
{
	bool update = false;
	int ret;

	if (s->h.version < 3)
		return 0;
	/* Extension data without the bit is stale (qcow2 spec): it goes with the next header. */
	if (!(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		set_ext(s, 0, 0, 0);
	if (load_dir(s, err, errlen) < 0 || verify_refs(s, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < s->nb_bms; i++) {
		struct qcow2_bitmap *b = &s->bms[i];
		if (b->inconsistent)
			continue;
		if (load_data(s, b, err, errlen) < 0)
			return -1;
		b->flags |= BME_FLAG_IN_USE;
		update = true;
	}
	if (update) {
		uint64_t doff, dsize;
		uint32_t nb;
		unsigned hit = 0;
		/*
		 * Marking in use rewrites the directory in place: where it lies on
		 * other metadata, refuse the open before anything is written, rather
		 * than let the overlap check mark the image corrupt on the way.
		 */
		if (qcow2_bitmap_dir(s, &doff, &dsize, &nb) &&
		    qcow2_overlaps(s, s->overlap & ~QCOW2_OL_BITMAP_DIRECTORY, doff, dsize, &hit) == 0 &&
		    hit)
			return block_err(err, errlen, "Can't update bitmap directory: it overlaps the %s",
					 qcow2_overlap_name(hit));
		ret = dir_in_place(s);
		if (ret < 0)
			return block_err(err, errlen, "Can't update bitmap directory: %s",
					 strerror(-ret));
	}
	s->bms_rw = true;
	return 0;
}

void qcow2_bitmaps_mark(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (!s->bms_rw || !len)
		return;
	for (unsigned i = 0; i < s->nb_bms; i++) {
		struct qcow2_bitmap *b = &s->bms[i];
		uint64_t first = off >> b->gbits, last = (off + len - 1) >> b->gbits;

		if (!b->bits || !b->enabled)
			continue;
		if (last >= b->nbytes * 8)
			last = b->nbytes * 8 - 1;
		for (uint64_t k = first; k <= last;) {
			if (k % 8 == 0 && last - k >= 7) {
				uint64_t bytes = (last - k + 1) / 8;
				memset(b->bits + k / 8, 0xff, (size_t)bytes);
				k += bytes * 8;
			} else {
				b->bits[k / 8] |= (uint8_t)(1u << (k % 8));
				k++;
			}
		}
	}
}

static int drop_later(struct qcow2 *s, uint64_t offset, uint32_t entries)
{
	struct qcow2_free *d;

	if (!offset)
		return 0;
	d = realloc(s->bm_drop, (s->nb_bm_drop + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	s->bm_drop = d;
	d[s->nb_bm_drop].offset = offset;
	d[s->nb_bm_drop].clusters = entries;
	s->nb_bm_drop++;
	return 0;
}

/* A table and its data clusters lose their reference; a damaged table is leaked instead. */
static int free_table(struct qcow2 *s, uint64_t offset, uint32_t entries)
{
	uint64_t *t;
	int ret = read_table(s, offset, entries, &t);

	if (ret < 0)
		return 0;
	for (uint32_t i = 0; i < entries && ret == 0; i++)
		if (t[i] & BME_ENTRY_OFFSET)
			ret = qcow2_free_later(s, t[i] & BME_ENTRY_OFFSET, 1);
	free(t);
	if (ret == 0)
		ret = qcow2_free_later_keep(s, offset,
					    qcow2_size_to_clusters(s, (uint64_t)entries * 8));
	return ret;
}

/* QEMU's store_bitmap: data clusters for the non-zero parts, then the table. */
static int store_one(struct qcow2 *s, struct qcow2_bitmap *b, uint64_t *toff, uint32_t *tsize)
{
	uint64_t n = table_entries(s, b->nbytes), tclusters, off;
	uint64_t *t;
	uint8_t *buf;
	int ret = 0;

	if (!n || n > BME_MAX_TABLE_SIZE || n * s->cluster_size > BME_MAX_PHYS_SIZE)
		return -EFBIG;
	tclusters = qcow2_size_to_clusters(s, n * 8);
	t = calloc(tclusters, s->cluster_size);
	buf = malloc(s->cluster_size);
	if (!t || !buf) {
		free(t);
		free(buf);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < n && ret == 0; i++) {
		uint64_t at = i * s->cluster_size;
		size_t len = b->nbytes - at < s->cluster_size ? (size_t)(b->nbytes - at)
							      : s->cluster_size;
		if (block_buffer_is_zero(b->bits + at, len))
			continue;
		memset(buf, 0, s->cluster_size);
		memcpy(buf, b->bits + at, len);
		ret = qcow2_alloc_clusters(s, 1, &off);
		if (ret == 0)
			ret = qcow2_checked_write(s, 0, off, buf, s->cluster_size);
		if (ret == 0)
			t[i] = off;
	}
	free(buf);
	if (ret == 0)
		ret = qcow2_alloc_clusters(s, tclusters, &off);
	if (ret == 0) {
		for (uint64_t i = 0; i < n; i++)
			t[i] = htobe64(t[i]);
		/* Only the entries, as QEMU writes them: the rest stays a hole in the file. */
		ret = qcow2_checked_write(s, 0, off, t, (size_t)(n * 8));
		if (ret == 0) {
			*toff = off;
			*tsize = (uint32_t)n;
		} else {
			qcow2_free_now(s, off, tclusters);
		}
		for (uint64_t i = 0; i < n; i++)
			t[i] = be64toh(t[i]);
	}
	if (ret < 0)
		for (uint64_t i = 0; i < n; i++)
			if (t[i])
				qcow2_free_now(s, t[i], 1);
	free(t);
	return ret;
}

/* Writes the new directory and switches the header to it; then frees the old clusters. */
static int switch_dir(struct qcow2 *s)
{
	uint64_t old_off = 0, old_size = 0, off = 0, size = 0;
	uint32_t old_nb, nb = 0;
	uint8_t *dir = NULL;
	bool had = qcow2_bitmap_dir(s, &old_off, &old_size, &old_nb);
	int ret = 0;

	for (unsigned i = 0; i < s->nb_bms; i++)
		nb += s->bms[i].table_offset != 0;
	if (nb) {
		ret = build_dir(s, &dir, &size, &nb);
		if (ret == 0)
			ret = qcow2_alloc_clusters(s, qcow2_size_to_clusters(s, size), &off);
		if (ret == 0)
			ret = qcow2_checked_write(s, 0, off, dir, (size_t)size);
		free(dir);
		if (ret < 0)
			return ret;
	}
	/* The new clusters' refcounts and contents are on disk before the header names them. */
	ret = qcow2_flush_metadata(s, true);
	if (ret == 0)
		ret = set_ext(s, nb, size, off);
	if (ret < 0)
		return ret;
	if (nb)
		s->h.autoclear_features |= QCOW2_AUTOCLEAR_BITMAPS;
	else
		s->h.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
	ret = header_sync(s);
	if (ret < 0)
		return ret;
	if (had)
		ret = qcow2_free_later_keep(s, old_off, qcow2_size_to_clusters(s, old_size));
	for (size_t i = 0; i < s->nb_bm_drop && ret == 0; i++)
		ret = free_table(s, s->bm_drop[i].offset, (uint32_t)s->bm_drop[i].clusters);
	s->nb_bm_drop = 0;
	return ret ? ret : qcow2_flush_metadata(s, true);
}

int qcow2_bitmaps_store(struct qcow2 *s)
{
	int ret = 0;

	if (!s->bms_rw || s->broken || (!s->nb_bms && !s->nb_bm_drop))
		return 0;
	for (unsigned i = 0; i < s->nb_bms && ret == 0; i++) {
		struct qcow2_bitmap *b = &s->bms[i];
		uint64_t toff = 0;
		uint32_t tsize = 0;

		if (b->inconsistent)
			continue;
		ret = store_one(s, b, &toff, &tsize);
		if (ret == 0)
			ret = drop_later(s, b->table_offset, b->table_size);
		if (ret == 0) {
			b->table_offset = toff;
			b->table_size = tsize;
			b->flags = b->enabled ? BME_FLAG_AUTO : 0;
		}
	}
	if (ret == 0)
		ret = switch_dir(s);
	s->bms_rw = false;
	return ret;
}

int qcow2_bitmaps_resize(struct qcow2 *s, uint64_t size, char *err, size_t errlen)
{
	for (unsigned i = 0; s->bms_rw && i < s->nb_bms; i++)
		if (s->bms[i].inconsistent)
			return block_err(err, errlen, "Bitmap '%s' is inconsistent and cannot be used"
					 BME_HINT, s->bms[i].name);
	for (unsigned i = 0; s->bms_rw && i < s->nb_bms; i++) {
		struct qcow2_bitmap *b = &s->bms[i];
		uint64_t n = data_bytes(size, b->gbits);
		uint8_t *bits = realloc(b->bits, (size_t)((n + 7) & ~7ULL) + 8);

		if (!bits)
			return block_err(err, errlen, "out of memory");
		if (n > b->nbytes)
			memset(bits + b->nbytes, 0, (size_t)(n - b->nbytes));
		b->bits = bits;
		b->nbytes = n;
		mask_tail(b, size);
	}
	return 0;
}

void qcow2_bitmaps_free(struct qcow2 *s)
{
	free_list(s->bms, s->nb_bms);
	s->bms = NULL;
	s->nb_bms = 0;
	free(s->bm_drop);
	s->bm_drop = NULL;
	s->nb_bm_drop = 0;
}

static struct qcow2_bitmap *find(struct qcow2 *s, const char *name)
{
	for (unsigned i = 0; i < s->nb_bms; i++)
		if (!strcmp(s->bms[i].name, name))
			return &s->bms[i];
	return NULL;
}

/* QEMU's bdrv_get_default_bitmap_granularity: the cluster size, at least 4 KiB. */
static unsigned default_gbits(const struct qcow2 *s)
{
	return s->cluster_bits < 12 ? 12 : s->cluster_bits;
}

/* QEMU's qcow2_co_can_store_new_dirty_bitmap and check_constraints_on_bitmap. */
static int add(struct qcow2 *s, const struct block_bitmap_req *r, char *err, size_t errlen)
{
	unsigned gbits = r->granularity_set ? (unsigned)__builtin_ctz(r->granularity)
					    : default_gbits(s);
	const char *why = NULL;
	uint64_t dir = 0, n = data_bytes(s->h.size, gbits);
	struct qcow2_bitmap *b;
	unsigned at = 0;
	uint8_t *bits;
	char *name;

	if (find(s, r->name))
		return block_err(err, errlen, "Bitmap already exists: %s", r->name);
	for (unsigned i = 0; i < s->nb_bms; i++)
		dir += entry_size(strlen(s->bms[i].name));
	dir += entry_size(strlen(r->name));
	if (s->h.version < 3)
		why = "Cannot store dirty bitmaps in qcow2 v2 files";
	else if (gbits > BME_MAX_GRAN_BITS)
		why = "Granularity exceeds maximum (2147483648 bytes)";
	else if (n > BME_MAX_PHYS_SIZE || n > (uint64_t)BME_MAX_TABLE_SIZE * s->cluster_size)
		why = "Too much space will be occupied by the bitmap. Use larger granularity";
	else if (strlen(r->name) > BME_MAX_NAME)
		why = "Name length exceeds maximum (1023 characters)";
	else if (s->nb_bms + 1 > QCOW2_MAX_BITMAPS)
		why = "Maximum number of persistent bitmaps is already reached";
	else if (dir > BME_MAX_DIR_SIZE)
		why = "Not enough space in the bitmap directory";
	if (why)
		return block_err(err, errlen, "Can't make bitmap '%s' persistent in '#block0': %s",
				 r->name, why);
	if (!s->bms_rw)
		return block_err(err, errlen, "Bitmap '%s' is readonly and cannot be modified",
				 r->name);
	b = realloc(s->bms, (s->nb_bms + 1) * sizeof(*b));
	if (!b)
		return block_err(err, errlen, "out of memory");
	s->bms = b;
	/*
	 * QEMU stores the bitmaps it loaded in directory order, then the new
	 * ones newest first: a new one goes before the other new ones.
	 */
	while (at < s->nb_bms && s->bms[at].table_offset)
		at++;
	name = strdup(r->name);
	bits = calloc(1, (size_t)((n + 7) & ~7ULL) + 8);
	if (!name || !bits) {
		free(name);
		free(bits);
		return block_err(err, errlen, "out of memory");
	}
	memmove(&s->bms[at + 1], &s->bms[at], (s->nb_bms - at) * sizeof(*b));
	b = &s->bms[at];
	memset(b, 0, sizeof(*b));
	b->name = name;
	b->bits = bits;
	b->gbits = gbits;
	b->nbytes = n;
	b->enabled = !r->disabled;
	s->nb_bms++;
	return 0;
}

/*
 * QEMU's qcow2_co_remove_persistent_dirty_bitmap: a stored bitmap leaves
 * the directory at once (a new directory, the others as on disk), and its
 * clusters are freed; the rest is stored at close as usual.
 */
static int remove_bm(struct qcow2 *s, struct qcow2_bitmap *b, char *err, size_t errlen)
{
	bool stored = b->table_offset;
	int ret;

	if (drop_later(s, b->table_offset, b->table_size) < 0)
		return block_err(err, errlen, "out of memory");
	free(b->name);
	free(b->bits);
	memmove(b, b + 1, (s->nb_bms - (size_t)(b - s->bms) - 1) * sizeof(*b));
	s->nb_bms--;
	ret = stored ? switch_dir(s) : 0;
	if (ret < 0)
		return block_err(err, errlen, "Failed to update bitmap extension: %s",
				 strerror(-ret));
	return 0;
}

/* QEMU's bdrv_dirty_bitmap_check: what a change may not touch. */
static int usable(struct qcow2 *s, const struct qcow2_bitmap *b, bool modify, char *err,
		  size_t errlen)
{
	if (modify && !s->bms_rw)
		return block_err(err, errlen, "Bitmap '%s' is readonly and cannot be modified",
				 b->name);
	if (b->inconsistent)
		return block_err(err, errlen, "Bitmap '%s' is inconsistent and cannot be used"
				 BME_HINT, b->name);
	return 0;
}

/* QEMU's bdrv_merge_dirty_bitmap: any granularities, equal disk sizes. */
static int merge(struct qcow2 *s, struct qcow2_bitmap *dst, const struct block_bitmap_req *r,
		 char *err, size_t errlen)
{
	struct block_bitmap_data src;
	uint64_t g;
	int ret;

	/* The source is read without our lock: it may be this very image. */
	pthread_mutex_unlock(&s->lock);
	ret = block_bitmap_get(r->src, r->src_name, &src, err, errlen);
	pthread_mutex_lock(&s->lock);
	if (ret < 0)
		return -1;
	dst = find(s, r->name);
	ret = !dst ? block_err(err, errlen, "Dirty bitmap '%s' not found", r->name) : 0;
	if (ret == 0 && src.disk_size != s->h.size)
		ret = block_err(err, errlen, "Bitmaps are of different sizes (destination size is %"
				PRIu64 ", source size is %" PRIu64 ") and can't be merged",
				s->h.size, src.disk_size);
	if (ret == 0)
		ret = usable(s, dst, true, err, errlen);
	g = src.granularity;
	for (uint64_t k = 0; ret == 0 && k < src.nbits; k++) {
		uint64_t first, last;
		if (!(src.bits[k / 8] & (1u << (k % 8))))
			continue;
		first = (k * g) >> dst->gbits;
		last = ((k + 1) * g - 1) >> dst->gbits;
		for (uint64_t j = first; j <= last && j < dst->nbytes * 8; j++)
			dst->bits[j / 8] |= (uint8_t)(1u << (j % 8));
	}
	free(src.bits);
	return ret;
}

int qcow2_bitmap_change(struct block_dev *bd, const struct block_bitmap_req *r, char *err,
			size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	struct qcow2_bitmap *b;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (load_dir(s, err, errlen) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	b = find(s, r->name);
	if (r->act == BLOCK_BITMAP_ADD) {
		ret = add(s, r, err, errlen);
	} else if (!b) {
		ret = block_err(err, errlen, "Dirty bitmap '%s' not found", r->name);
	} else if (r->act == BLOCK_BITMAP_REMOVE) {
		ret = !s->bms_rw ? usable(s, b, true, err, errlen) : remove_bm(s, b, err, errlen);
	} else if (r->act == BLOCK_BITMAP_MERGE) {
		ret = merge(s, b, r, err, errlen);
	} else {
		ret = usable(s, b, r->act == BLOCK_BITMAP_CLEAR, err, errlen);
		if (ret == 0 && r->act == BLOCK_BITMAP_CLEAR)
			memset(b->bits, 0, (size_t)b->nbytes);
		else if (ret == 0)
			b->enabled = r->act == BLOCK_BITMAP_ENABLE;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_bitmap_get(struct block_dev *bd, const char *name, struct block_bitmap_data *out,
		     char *err, size_t errlen)
{
	struct qcow2 *s = bd->opaque;
	struct qcow2_bitmap *b;
	int ret = -1;

	pthread_mutex_lock(&s->lock);
	if (load_dir(s, err, errlen) < 0)
		goto out;
	b = find(s, name);
	if (!b) {
		block_err(err, errlen, "Dirty bitmap '%s' not found", name);
		goto out;
	}
	if (usable(s, b, false, err, errlen) < 0 || load_data(s, b, err, errlen) < 0)
		goto out;
	out->bits = malloc((size_t)b->nbytes + 1);
	if (!out->bits) {
		block_err(err, errlen, "out of memory");
		goto out;
	}
	memcpy(out->bits, b->bits, (size_t)b->nbytes);
	out->disk_size = s->h.size;
	out->granularity = 1ULL << b->gbits;
	out->nbits = div_up(s->h.size, out->granularity);
	out->enabled = b->enabled;
	ret = 0;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
