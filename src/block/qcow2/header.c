/*
 * The qcow2 header (qcow2 spec: "Header" and "Header extensions").  Every
 * field is checked against the others and against the file size before any
 * table is read, so a hostile image yields an error message, not a crash.
 */
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feature name table entries QEMU 7.2 writes, in its order (qcow2 spec: type, bit, name). */
static const struct {
	uint8_t type, bit;
	const char *name;
} feature_names[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};

static const char *feature_name(const struct qcow2 *s, int type, int bit)
{
	static __thread char name[47];

	for (uint32_t off = 0; off + 48 <= s->feature_table_len; off += 48) {
		const uint8_t *e = s->feature_table + off;
		if (e[0] == type && e[1] == bit) {
			memcpy(name, e + 2, 46);
			name[46] = '\0';
			return name;
		}
	}
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (feature_names[i].type == type && feature_names[i].bit == bit)
			return feature_names[i].name;
	return NULL;
}

/* As QEMU's report_unsupported_feature: known names, then the unknown rest as hex. */
void qcow2_describe_features(const struct qcow2 *s, uint64_t bits, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 64; i++) {
		const char *name;
		if (!(bits & (1ULL << i)) || !(name = feature_name(s, 0, i)))
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 used ? ", " : "", name);
		bits &= ~(1ULL << i);
	}
	if (bits && used < len)
		snprintf(buf + used, len - used, "%sUnknown incompatible feature: %" PRIx64,
			 used ? ", " : "", bits);
}

/*
 * The image's own feature name table, read ahead of the other extensions
 * so that a refusal names the features it does not know, as QEMU's
 * report_unsupported_feature does.  A damaged extension list just ends the
 * scan: the refusal is the error, not the table.
 */
static int load_feature_table(struct qcow2 *s, const uint8_t *buf, size_t len)
{
	size_t end = len < s->cluster_size ? len : s->cluster_size, off = s->h.header_length;

	if (s->h.backing_file_offset && s->h.backing_file_offset < end)
		end = (size_t)s->h.backing_file_offset;
	while (off + 8 <= end) {
		uint32_t type = ld_be32(buf + off), elen = ld_be32(buf + off + 4);

		off += 8;
		if (type == QCOW2_EXT_END || elen > end - off)
			return 0;
		if (type == QCOW2_EXT_FEATURE_TABLE) {
			free(s->feature_table);
			s->feature_table = malloc(elen ? elen : 1);
			if (!s->feature_table)
				return -ENOMEM;
			memcpy(s->feature_table, buf + off, elen);
			s->feature_table_len = elen;	/* the last one counts, as in QEMU */
		}
		off += (elen + 7) & ~7u;
	}
	return 0;
}

static int parse_extensions(struct qcow2 *s, const uint8_t *buf, size_t start, size_t end,
			    char *err, size_t errlen)
{
	size_t off = start;

	while (off + 8 <= end) {
		uint32_t type = ld_be32(buf + off), len = ld_be32(buf + off + 4);
		const uint8_t *data = buf + off + 8;

		off += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off)
			return block_err(err, errlen, "Invalid header extension length");
		/* Only meaningful with crypt_method LUKS (QEMU). */
		if (type == QCOW2_EXT_CRYPTO && s->h.crypt_method != 2)
			return block_err(err, errlen,
					 "CRYPTO header extension only expected with encrypted images");
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (len >= 16)
				return block_err(err, errlen,
						 "ERROR: ext_backing_format: len=%u too large (>=16)", len);
			free(s->backing_fmt);
			s->backing_fmt = strndup((const char *)data, len);
			if (!s->backing_fmt)
				return block_err(err, errlen, "out of memory");
			break;
		case QCOW2_EXT_DATA_FILE:
			/* Without the incompatible bit the name is kept but never used (QEMU). */
			free(s->data_file_name);
			s->data_file_name = strndup((const char *)data, len);
			if (!s->data_file_name)
				return block_err(err, errlen, "out of memory");
			break;
		case QCOW2_EXT_CRYPTO:
			/* qcow2 spec: offset and length of the LUKS header, both 64-bit. */
			if (len != 16)
				return block_err(err, errlen, "Invalid crypto header extension "
						 "length %u", len);
			s->crypt_off = ld_be64(data);
			s->crypt_len = ld_be64(data + 8);
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			free(s->feature_table);
			s->feature_table = malloc(len ? len : 1);
			if (!s->feature_table)
				return block_err(err, errlen, "out of memory");
			memcpy(s->feature_table, data, len);
			s->feature_table_len = len;
			break;
		default: {
			/* Unknown to us: kept byte for byte and written back (qcow2 spec). */
			struct qcow2_ext *e = realloc(s->exts, (s->nb_exts + 1) * sizeof(*e));
			if (!e)
				return block_err(err, errlen, "out of memory");
			s->exts = e;
			e = &s->exts[s->nb_exts];
			e->type = type;
			e->len = len;
			e->data = malloc(len ? len : 1);
			if (!e->data)
				return block_err(err, errlen, "out of memory");
			memcpy(e->data, data, len);
			s->nb_exts++;
			break;
		}
		}
		off += (len + 7) & ~7u;
	}
	return 0;
}

/*
 * A table of len bytes at off must be cluster aligned and lie inside the
 * file.  Opened for check, a table past the end of the file reads as zeroes
 * and check counts what that breaks, as QEMU (qcow2_validate_table) does.
 */
static bool table_ok(const struct qcow2 *s, uint64_t off, uint64_t len, uint64_t file_size)
{
	if (off & (s->cluster_size - 1))
		return false;
	if (off > INT64_MAX || len > INT64_MAX - off)
		return false;
	return s->checking || off + len <= file_size;
}

/*
 * A snapshot table whose count or offset QEMU refuses: opening refuses it;
 * opened for check it is left unread, and check reports it and stops, as
 * QEMU's qcow2_check_read_snapshot_table does.  (QEMU's -r all also drops
 * snapshots past its 65536: kestrel does not, so it gives no hint to.)
 */
static int snapshot_table_bad(struct qcow2 *s, int code, const char *why, char *err,
			      size_t errlen)
{
	if (!s->checking)
		return block_err(err, errlen, "Snapshot table %s", why);
	s->snap_errno = code;
	snprintf(s->snap_err, sizeof(s->snap_err), "snapshot table %s", why);
	return 0;
}

/* The version 2 fields (qcow2 spec: header bytes 0-71) and what they must hold. */
static int parse_v2_fields(struct qcow2 *s, const uint8_t *buf, char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;

	memset(h, 0, sizeof(*h));
	h->magic = ld_be32(buf);
	h->version = ld_be32(buf + 4);
	h->backing_file_offset = ld_be64(buf + 8);
	h->backing_file_size = ld_be32(buf + 16);
	h->cluster_bits = ld_be32(buf + 20);
	h->size = ld_be64(buf + 24);
	h->crypt_method = ld_be32(buf + 32);
	h->l1_size = ld_be32(buf + 36);
	h->l1_table_offset = ld_be64(buf + 40);
	h->refcount_table_offset = ld_be64(buf + 48);
	h->refcount_table_clusters = ld_be32(buf + 56);
	h->nb_snapshots = ld_be32(buf + 60);
	h->snapshots_offset = ld_be64(buf + 64);

	if (h->magic != QCOW2_MAGIC)
		return block_err(err, errlen, "Image is not in qcow2 format");
	if (h->version < 2 || h->version > 3)
		return block_err(err, errlen, "Unsupported qcow2 version %u", h->version);
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return block_err(err, errlen, "Unsupported cluster size: 2^%u", h->cluster_bits);
	s->cluster_bits = h->cluster_bits;
	s->cluster_size = 1u << h->cluster_bits;
	return 0;
}

/* The version 3 fields (bytes 72-103), the compression type byte and any newer ones. */
static int parse_v3_fields(struct qcow2 *s, const uint8_t *buf, size_t len, uint64_t file_size,
			   char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
		return 0;
	}
	if (len < QCOW2_V3_HEADER_LEN || file_size < QCOW2_V3_HEADER_LEN)
		return block_err(err, errlen, "Image is truncated: header incomplete");
	h->incompatible_features = ld_be64(buf + 72);
	h->compatible_features = ld_be64(buf + 80);
	h->autoclear_features = ld_be64(buf + 88);
	h->refcount_order = ld_be32(buf + 96);
	h->header_length = ld_be32(buf + 100);
	if (h->header_length < QCOW2_V3_HEADER_LEN)
		return block_err(err, errlen, "qcow2 header too short");
	if (h->header_length > s->cluster_size)
		return block_err(err, errlen, "qcow2 header exceeds cluster size");
	if (h->header_length > file_size)
		return block_err(err, errlen, "Image is truncated: header incomplete");
	if (h->header_length > QCOW2_V3_HEADER_LEN)
		h->compression_type = buf[104];
	/* Fields a newer writer added: written back as they are, as QEMU does. */
	if (h->header_length > 112) {
		s->unknown_header_len = (h->header_length - 112 + 7) & ~7u;
		s->unknown_header = calloc(1, s->unknown_header_len);
		if (!s->unknown_header)
			return block_err(err, errlen, "out of memory");
		memcpy(s->unknown_header, buf + 112, h->header_length - 112);
	}
	return 0;
}

/* Feature bits, compression type, refcount width and encryption we can open. */
static int check_features(struct qcow2 *s, const uint8_t *buf, size_t len, char *err,
			  size_t errlen)
{
	struct qcow2_header *h = &s->h;

	if (h->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED) {
		char names[512];
		if (load_feature_table(s, buf, len) < 0)
			return block_err(err, errlen, "out of memory");
		qcow2_describe_features(s, h->incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED,
					names, sizeof(names));
		return block_err(err, errlen, "Unsupported qcow2 feature(s): %s", names);
	}
	if (h->compression_type > 1)
		return block_err(err, errlen, "Unknown compression type %u", h->compression_type);
	if (h->compression_type && !(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return block_err(err, errlen,
				 "compression_type field is non-zero but the compression type bit is not set");
	if (!h->compression_type && (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return block_err(err, errlen,
				 "compression type bit is set but compression_type is zlib");
	/* Raw external data needs the external data file (QEMU). */
	if ((h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return block_err(err, errlen, "data-file-raw requires a data file");
	if (h->refcount_order > 6)
		return block_err(err, errlen,
				 "Reference count entry width too large; may not exceed 64 bits");
	if (h->crypt_method > 2)
		return block_err(err, errlen, "Unsupported encryption method: %u", h->crypt_method);
	/* QEMU 7.2 opens the old AES method in qemu-img only, and creates none: refused. */
	if (h->crypt_method == 1)
		return block_err(err, errlen, "AES encrypted qcow2 images (crypt_method 1, the "
				 "old method) are not supported by Kestrel");
	return 0;
}

/* The sizes and masks every lookup uses, derived once from cluster_bits and refcount_order. */
static int set_geometry(struct qcow2 *s, char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;

	/* qcow2 spec "Extended L2 Entries": 128-bit entries, 32 subclusters of >= 512 bytes. */
	s->ext_l2 = (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) ? 1 : 0;
	if (s->ext_l2 && s->cluster_bits - 5 < QCOW2_MIN_CLUSTER_BITS)
		return block_err(err, errlen, "Unsupported subcluster size: %u",
				 s->cluster_size / QCOW2_SUBCLUSTERS);
	s->sc_bits = s->cluster_bits - (s->ext_l2 ? 5 : 0);
	s->l2_bits = s->cluster_bits - 3 - s->ext_l2;
	s->l2_size = 1u << s->l2_bits;
	s->refcount_order = h->refcount_order;
	s->refcount_max = h->refcount_order == 6 ? UINT64_MAX
						 : (1ULL << (1u << h->refcount_order)) - 1;
	s->rb_bits = s->cluster_bits + 3 - h->refcount_order;
	s->csize_shift = 62 - (s->cluster_bits - 8);
	s->csize_mask = (1ULL << (s->cluster_bits - 8)) - 1;
	s->cluster_offset_mask = (1ULL << s->csize_shift) - 1;
	return 0;
}

/* The L1, refcount and snapshot tables: sizes within limits, aligned, inside the file. */
static int check_tables(struct qcow2 *s, uint64_t file_size, char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;
	uint64_t l2_cover, l1_needed;

	/* Virtual size and L1 table (qcow2 spec: "the L1 table must cover the size"). */
	if (h->size > INT64_MAX)
		return block_err(err, errlen, "Image is too big: virtual size %" PRIu64, h->size);
	l2_cover = (uint64_t)s->cluster_size << s->l2_bits;
	l1_needed = (h->size + l2_cover - 1) / l2_cover;
	if (l1_needed > QCOW2_MAX_L1_BYTES / 8)
		return block_err(err, errlen, "Image is too big: virtual size %" PRIu64, h->size);
	if (h->l1_size > QCOW2_MAX_L1_BYTES / 8)
		return block_err(err, errlen, "Active L1 table too large");
	if (h->l1_size < l1_needed)
		return block_err(err, errlen, "L1 table is too small");
	if (h->l1_size && !table_ok(s, h->l1_table_offset, (uint64_t)h->l1_size * 8, file_size)) {
		if (h->l1_table_offset & (s->cluster_size - 1))
			return block_err(err, errlen, "Invalid L1 table offset");
		return block_err(err, errlen, "L1 table is past the end of the file");
	}

	/* Without one every refcount reads 0: check reports that and -r all rebuilds it. */
	if (!h->refcount_table_clusters && !s->checking)
		return block_err(err, errlen, "Image does not contain a reference count table");
	if ((uint64_t)h->refcount_table_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES)
		return block_err(err, errlen, "Reference count table too large");
	if (!table_ok(s, h->refcount_table_offset,
		      (uint64_t)h->refcount_table_clusters * s->cluster_size, file_size)) {
		if (h->refcount_table_offset & (s->cluster_size - 1))
			return block_err(err, errlen, "Invalid reference count table offset");
		return block_err(err, errlen, "Reference count table is past the end of the file");
	}

	/*
	 * Snapshot entries past the end of the file read as zeroes, as in QEMU
	 * (qcow2_validate_table checks only the count and the offset): check
	 * judges what they read, and -r all rewrites the table.
	 */
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		if (snapshot_table_bad(s, -EFBIG, "too large", err, errlen) < 0)
			return -1;
	} else if (h->nb_snapshots && !table_ok(s, h->snapshots_offset,
						(uint64_t)h->nb_snapshots * 40, UINT64_MAX)) {
		if (snapshot_table_bad(s, -EINVAL, "offset invalid", err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* The backing file name (qcow2 spec: at most 1023 bytes) and the extensions before it. */
static int parse_cluster0_tail(struct qcow2 *s, const uint8_t *buf, size_t len,
			       uint64_t file_size, char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;
	size_t ext_end;

	/* Extensions sit between the header and the backing file name, inside cluster 0. */
	ext_end = len < s->cluster_size ? len : s->cluster_size;
	if (h->backing_file_offset) {
		if (h->backing_file_offset > s->cluster_size || h->backing_file_size > 1023 ||
		    h->backing_file_offset + h->backing_file_size > s->cluster_size)
			return block_err(err, errlen, "Backing file name too long");
		if (h->backing_file_offset + h->backing_file_size > len ||
		    h->backing_file_offset + h->backing_file_size > file_size)
			return block_err(err, errlen, "Image is truncated: backing file name missing");
		if (h->backing_file_offset < ext_end)
			ext_end = (size_t)h->backing_file_offset;
	}
	if (h->header_length < ext_end &&
	    parse_extensions(s, buf, h->header_length, ext_end, err, errlen) < 0)
		return -1;
	if (h->backing_file_offset && h->backing_file_size) {
		s->backing_file = strndup((const char *)buf + h->backing_file_offset,
					  h->backing_file_size);
		if (!s->backing_file)
			return block_err(err, errlen, "out of memory");
	}
	if (s->backing_fmt && !s->backing_file) {
		free(s->backing_fmt);
		s->backing_fmt = NULL;
	}
	return 0;
}

int qcow2_parse_header(struct qcow2 *s, const uint8_t *buf, size_t len, uint64_t file_size,
		       char *err, size_t errlen)
{
	struct qcow2_header *h = &s->h;

	if (len < QCOW2_V2_HEADER_LEN || file_size < QCOW2_V2_HEADER_LEN)
		return block_err(err, errlen, "Image is truncated: header incomplete");
	if (parse_v2_fields(s, buf, err, errlen) < 0 ||
	    parse_v3_fields(s, buf, len, file_size, err, errlen) < 0 ||
	    check_features(s, buf, len, err, errlen) < 0 ||
	    set_geometry(s, err, errlen) < 0 ||
	    check_tables(s, file_size, err, errlen) < 0 ||
	    parse_cluster0_tail(s, buf, len, file_size, err, errlen) < 0)
		return -1;
	s->l1_size = h->l1_size;
	s->l1_offset = h->l1_table_offset;
	s->reftable_offset = h->refcount_table_offset;
	s->reftable_size = (uint64_t)h->refcount_table_clusters * s->cluster_size / 8;
	return 0;
}

int qcow2_read_header(struct qcow2 *s, char *err, size_t errlen)
{
	int64_t file_size = bfile_size(s->bd);
	uint8_t first[QCOW2_V3_HEADER_LEN + 8], *buf;
	size_t len;
	int ret;

	if (file_size < 0)
		return block_err(err, errlen, "%s", strerror((int)-file_size));
	ret = bfile_pread(s->bd, 0, first, sizeof(first));
	if (ret < 0)
		return block_err(err, errlen, "Could not read qcow2 header: %s", strerror(-ret));
	if (ld_be32(first) != QCOW2_MAGIC)
		return block_err(err, errlen, "Image is not in qcow2 format");
	{
		uint32_t bits = ld_be32(first + 20);
		if (bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS)
			return block_err(err, errlen, "Unsupported cluster size: 2^%u", bits);
		len = (size_t)1 << bits;
	}
	if ((uint64_t)file_size < len)
		len = (size_t)file_size;
	if (len < sizeof(first))
		len = sizeof(first);
	buf = malloc(len);
	if (!buf)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(s->bd, 0, buf, len);
	if (ret < 0) {
		free(buf);
		return block_err(err, errlen, "Could not read qcow2 header: %s", strerror(-ret));
	}
	ret = qcow2_parse_header(s, buf, len, (uint64_t)file_size, err, errlen);
	free(buf);
	return ret;
}

static size_t put_ext(uint8_t *buf, size_t off, size_t end, uint32_t type, const void *data,
		      uint32_t len)
{
	size_t padded = (len + 7) & ~7u;

	if (off + 8 + padded > end)
		return 0;
	st_be32(buf + off, type);
	st_be32(buf + off + 4, len);
	memset(buf + off + 8, 0, padded);
	memcpy(buf + off + 8, data, len);
	return off + 8 + padded;
}

bool qcow2_bitmap_dir(const struct qcow2 *s, uint64_t *off, uint64_t *size, uint32_t *nb)
{
	const struct qcow2_ext *ext = NULL;

	if (!(s->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return false;
	for (unsigned i = 0; i < s->nb_exts; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS && s->exts[i].len >= 24)
			ext = &s->exts[i];
	if (!ext)
		return false;
	*nb = ld_be32(ext->data);
	*size = ld_be64(ext->data + 8);
	*off = ld_be64(ext->data + 16);
	/* QEMU's limits; and the directory must be in the file, not zeroes past its end. */
	return *nb && *nb <= QCOW2_MAX_BITMAPS && *size &&
	       *size <= (uint64_t)QCOW2_MAX_BITMAPS * 1024 && *off <= s->file_size &&
	       *size <= s->file_size - *off;
}

int qcow2_build_header(const struct qcow2 *s, uint8_t *buf, size_t len)
{
	const struct qcow2_header *h = &s->h;
	size_t off, backing_len = s->backing_file ? strlen(s->backing_file) : 0;
	bool v3 = h->version >= 3;

	memset(buf, 0, len);
	st_be32(buf, QCOW2_MAGIC);
	st_be32(buf + 4, h->version);
	st_be32(buf + 20, s->cluster_bits);
	st_be64(buf + 24, h->size);
	st_be32(buf + 32, h->crypt_method);
	st_be32(buf + 36, s->l1_size);
	st_be64(buf + 40, s->l1_offset);
	st_be64(buf + 48, s->reftable_offset);
	st_be32(buf + 56, (uint32_t)(s->reftable_size * 8 / s->cluster_size));
	st_be32(buf + 60, s->nb_snaps);
	st_be64(buf + 64, s->nb_snaps ? h->snapshots_offset : 0);
	if (v3) {
		st_be64(buf + 72, h->incompatible_features);
		st_be64(buf + 80, h->compatible_features);
		st_be64(buf + 88, h->autoclear_features);
		st_be32(buf + 96, s->refcount_order);
		st_be32(buf + 100, 112 + s->unknown_header_len);
		buf[104] = h->compression_type;
		off = 112;
		if (s->unknown_header_len) {
			if (off + s->unknown_header_len > len)
				return -ENOSPC;
			memcpy(buf + off, s->unknown_header, s->unknown_header_len);
			off += s->unknown_header_len;
		}
	} else {
		off = QCOW2_V2_HEADER_LEN;
	}

	/*
	 * Extensions in QEMU's order: backing format, data file, full disk
	 * encryption header pointer, feature table, the rest, end.
	 */
	if (s->backing_fmt && s->backing_file) {
		off = put_ext(buf, off, len, QCOW2_EXT_BACKING_FORMAT, s->backing_fmt,
			      (uint32_t)strlen(s->backing_fmt));
		if (!off)
			return -ENOSPC;
	}
	/* QEMU writes the name only while the image uses an external data file. */
	if (s->data_file_name && qcow2_has_data_file(s)) {
		off = put_ext(buf, off, len, QCOW2_EXT_DATA_FILE, s->data_file_name,
			      (uint32_t)strlen(s->data_file_name));
		if (!off)
			return -ENOSPC;
	}
	if (s->h.crypt_method && s->crypt_len) {
		uint8_t ext[16];
		st_be64(ext, s->crypt_off);
		st_be64(ext + 8, s->crypt_len);
		off = put_ext(buf, off, len, QCOW2_EXT_CRYPTO, ext, sizeof(ext));
		if (!off)
			return -ENOSPC;
	}
	/* QEMU 7.2 writes the feature name table only with clusters above 4 KiB. */
	if (v3 && s->cluster_size > 4096) {
		uint8_t table[sizeof(feature_names) / sizeof(feature_names[0])][48];
		memset(table, 0, sizeof(table));
		for (size_t i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++) {
			table[i][0] = feature_names[i].type;
			table[i][1] = feature_names[i].bit;
			memcpy(&table[i][2], feature_names[i].name, strlen(feature_names[i].name));
		}
		off = put_ext(buf, off, len, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
		if (!off)
			return -ENOSPC;
	}
	for (unsigned i = 0; i < s->nb_exts; i++) {
		off = put_ext(buf, off, len, s->exts[i].type, s->exts[i].data, s->exts[i].len);
		if (!off)
			return -ENOSPC;
	}
	if (off + 8 > len)
		return -ENOSPC;
	st_be64(buf + off, 0);
	off += 8;
	if (backing_len) {
		if (off + backing_len > len || backing_len > QCOW2_MAX_BACKING_NAME)
			return -ENOSPC;
		memcpy(buf + off, s->backing_file, backing_len);
		st_be64(buf + 8, off);
		st_be32(buf + 16, (uint32_t)backing_len);
		off += backing_len;
	}
	return (int)off;
}

int qcow2_write_header(struct qcow2 *s)
{
	uint8_t *buf = block_alloc_buf(s->cluster_size);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = qcow2_build_header(s, buf, s->cluster_size);
	if (ret >= 0) {
		/* The whole first cluster: stale extension bytes must not survive. */
		ret = qcow2_file_write(s, 0, buf, s->cluster_size);
	}
	if (ret >= 0) {
		s->h.header_length = s->h.version >= 3 ? 112 + s->unknown_header_len
						       : QCOW2_V2_HEADER_LEN;
		if (s->backing_file) {
			s->h.backing_file_offset = ld_be64(buf + 8);
			s->h.backing_file_size = ld_be32(buf + 16);
		} else {
			s->h.backing_file_offset = 0;
			s->h.backing_file_size = 0;
		}
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

/* Flips one incompatible feature bit with a single 8-byte write, then syncs. */
int qcow2_set_incompat(struct qcow2 *s, uint64_t bit, bool on)
{
	uint8_t field[8];
	uint64_t v = on ? s->h.incompatible_features | bit : s->h.incompatible_features & ~bit;
	int ret;

	if (s->h.version < 3)
		return 0;
	if (v == s->h.incompatible_features)
		return 0;
	st_be64(field, v);
	ret = bfile_pwrite(s->bd, 72, field, sizeof(field));
	if (ret == 0)
		ret = bfile_flush(s->bd);
	if (ret == 0)
		s->h.incompatible_features = v;
	return ret;
}
