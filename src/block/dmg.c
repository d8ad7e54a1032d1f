/*
 * dmg: Apple's UDIF disk images, read-only as QEMU reads them.  UDIF
 * (Apple's "koly" trailer, as documented by the dmg2img and libdmg-hfsplus
 * projects): a 512 byte big-endian trailer at the end of the file gives the
 * data fork offset, the resource fork and the XML property list, and the
 * sector count.  Each partition is one "mish" (BLKXTable) block, in the
 * resource fork or base64 inside the plist's <data> elements: a 204 byte
 * header (first sector at 8, data offset at 0x18) then 40 byte chunks (type,
 * sector, sector count, data offset, data length).
 */
#include "block/dmg.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DMG_MISH_MAGIC	0x6d697368	/* "mish" */
#define DMG_MISH_MIN	244		/* QEMU: smaller blocks are skipped */
#define DMG_CHUNK_TABLE	204
#define DMG_CHUNK_LEN	40
#define DMG_XML_MAX	(16u << 20)	/* QEMU's cap on the plist */
#define DMG_MAX_SECTORS	(INT64_MAX / 512)

static void dmg_warn(const char *msg)
{
	fprintf(stderr, "%s: warning: %s\n", program_invocation_short_name, msg);
}

/*
 * Whether a chunk of type t is kept; QEMU's dmg_is_known_block_type, with
 * lzfse kept so that reading it fails by name.  The warnings are QEMU's
 * warn_report_once: once per image.
 */
static bool dmg_keep_type(struct dmg *s, uint32_t t)
{
	switch (t) {
	case DMG_UDZE: case DMG_UDRW: case DMG_UDIG: case DMG_UDZO: case DMG_ULFO:
		if (t == DMG_ULFO && !s->warned_lzfse++)
			dmg_warn("dmg image has lzfse compressed chunks, which Kestrel cannot read "
				 "(no lzfse library): reading them fails");
		return true;
	case DMG_UDBZ:
		if (ro_have_bzip2())
			return true;
		if (!s->warned_bzip2++)
			dmg_warn("Kestrel was built without bzip2 (libbz2), accessing bzip2 "
				 "compressed blocks will result in I/O errors");
		return false;
	case DMG_UDCM: case DMG_UDLE:
		return false;	/* comments and the last entry carry no data */
	default:
		if (!s->warned_unknown++) {
			char msg[128];
			snprintf(msg, sizeof(msg), "Image contains chunks of unknown type %x, "
				 "accessing them will result in I/O errors", t);
			dmg_warn(msg);
		}
		return false;
	}
}

static int dmg_grow(struct dmg *s, size_t more)
{
	struct dmg_chunk *c;
	size_t cap = s->cap ? s->cap : 16;

	while (cap < s->n + more)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	c = realloc(s->chunks, cap * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->chunks = c;
	s->cap = cap;
	return 0;
}

/* One chunk entry, checked against QEMU's limits and the file. */
static int dmg_chunk(struct dmg *s, const uint8_t *e, uint64_t first, uint64_t in_off,
		     struct dmg_chunk *c, char *err, size_t errlen)
{
	size_t i = s->n;

	c->type = ld_be32(e);
	c->sector = ld_be64(e + 8);
	c->count = ld_be64(e + 0x10);
	c->offset = ld_be64(e + 0x18);
	c->length = ld_be64(e + 0x20);
	if (c->sector > DMG_MAX_SECTORS - first || c->count > DMG_MAX_SECTORS - first - c->sector)
		return block_err(err, errlen, "sector range of chunk %zu is too large", i);
	c->sector += first;
	/* Zero chunks are never buffered, so only data chunks are bounded (QEMU). */
	if (c->type != DMG_UDZE && c->type != DMG_UDIG && c->count > DMG_CHUNK_SECTORS_MAX)
		return block_err(err, errlen, "sector count %llu for chunk %zu is larger than max "
				 "(%u)", (unsigned long long)c->count, i, DMG_CHUNK_SECTORS_MAX);
	if (c->length > DMG_CHUNK_BYTES_MAX)
		return block_err(err, errlen, "length %llu for chunk %zu is larger than max (%u)",
				 (unsigned long long)c->length, i, DMG_CHUNK_BYTES_MAX);
	if (c->type == DMG_UDZE || c->type == DMG_UDIG)
		return 0;
	/* Beyond QEMU, which reads zeroes there: the data must be in the file. */
	if (c->offset > s->koly - in_off || c->length > s->koly - in_off - c->offset)
		return block_err(err, errlen, "chunk %zu (%llu bytes at offset %llu) lies past the "
				 "end of the data", i, (unsigned long long)c->length,
				 (unsigned long long)(in_off + c->offset));
	c->offset += in_off;
	return 0;
}

/* QEMU's dmg_read_mish_block: a block that is no mish table is skipped. */
static int dmg_mish(struct dmg *s, const uint8_t *b, size_t len, char *err, size_t errlen)
{
	uint64_t first, in_off;
	size_t count;

	if (len < DMG_MISH_MIN || ld_be32(b) != DMG_MISH_MAGIC)
		return 0;
	first = ld_be64(b + 8);
	in_off = ld_be64(b + 0x18);
	if (in_off > s->koly - s->data_fork)
		return block_err(err, errlen, "mish block data offset %llu lies past the end of "
				 "the data", (unsigned long long)in_off);
	in_off += s->data_fork;
	count = (len - DMG_CHUNK_TABLE) / DMG_CHUNK_LEN;
	if (dmg_grow(s, count) < 0)
		return block_err(err, errlen, "out of memory for %zu chunks", s->n + count);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = b + DMG_CHUNK_TABLE + i * DMG_CHUNK_LEN;

		if (!dmg_keep_type(s, ld_be32(e)))
			continue;
		if (dmg_chunk(s, e, first, in_off, &s->chunks[s->n], err, errlen) < 0)
			return -1;
		s->n++;
	}
	return 0;
}

static int dmg_read_at(struct block_dev *bd, uint64_t off, uint64_t len, uint8_t **out,
		       char *err, size_t errlen)
{
	int ret;

	*out = malloc(len + 1);
	if (!*out)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(bd, off, *out, len);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the dmg tables: %s", strerror(-ret));
	(*out)[len] = 0;
	return 0;
}

/*
 * The resource fork (Inside Macintosh: More Macintosh Toolbox, 1-121):
 * the offset of the resource data at 0 and its length at 8; the data is a
 * list of (be32 length, bytes) resources, of which the mish ones count.
 */
static int dmg_rsrc(struct block_dev *bd, struct dmg *s, uint64_t begin, uint64_t length,
		    char *err, size_t errlen)
{
	uint8_t *fork;
	uint64_t pos, end;
	int ret = -1;

	if (length < 16)
		return block_err(err, errlen, "resource fork of %llu bytes is truncated",
				 (unsigned long long)length);
	if (dmg_read_at(bd, begin, length, &fork, err, errlen) < 0)
		goto out;
	pos = ld_be32(fork);
	end = ld_be32(fork + 8);
	if (pos > length || end == 0 || end > length - pos) {
		block_err(err, errlen, "resource data (%llu bytes at %llu) lies outside the "
			  "resource fork", (unsigned long long)end, (unsigned long long)pos);
		goto out;
	}
	end += pos;
	while (pos < end) {
		uint64_t n = end - pos >= 4 ? ld_be32(fork + pos) : 0;

		if (n == 0 || n > end - pos - 4) {
			block_err(err, errlen, "resource at offset %llu of the resource fork has a "
				  "bad length %llu", (unsigned long long)pos, (unsigned long long)n);
			goto out;
		}
		if (dmg_mish(s, fork + pos + 4, n, err, errlen) < 0)
			goto out;
		pos += 4 + n;
	}
	ret = 0;
out:
	free(fork);
	return ret;
}

/*
 * Base64 (RFC 4648 section 4) of a plist <data> element decoded in place, as
 * glib's g_base64_decode that QEMU uses: characters outside the alphabet
 * (white space, padding) are skipped.  Returns the decoded length.
 */
static int dmg_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static size_t dmg_base64(const char *in, size_t len, uint8_t *out)
{
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v = dmg_b64_value(in[i]);

		if (v < 0)
			continue;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return n;
}

/* The XML plist: every <data> element is base64 of one (possible) mish block. */
static int dmg_xml(struct block_dev *bd, struct dmg *s, uint64_t begin, uint64_t length,
		   char *err, size_t errlen)
{
	uint8_t *xml;
	char *p, *end;
	int ret = -1;

	if (length > DMG_XML_MAX)
		return block_err(err, errlen, "XML property list of %llu bytes is larger than "
				 "max (%u)", (unsigned long long)length, DMG_XML_MAX);
	if (dmg_read_at(bd, begin, length, &xml, err, errlen) < 0)
		goto out;
	/* Text after a NUL byte is not seen, as by QEMU's strstr. */
	for (p = (char *)xml; (p = strstr(p, "<data>")); p = end + 1) {
		size_t len;

		p += 6;
		end = strstr(p, "</data>");
		if (!end) {
			block_err(err, errlen, "XML property list has <data> without </data>");
			goto out;
		}
		len = dmg_base64(p, (size_t)(end - p), (uint8_t *)p);
		if (dmg_mish(s, (uint8_t *)p, len, err, errlen) < 0)
			goto out;
	}
	ret = 0;
out:
	free(xml);
	return ret;
}

/*
 * The "koly" magic: QEMU looks for it in the last 515 bytes, since the file
 * may not end on a sector boundary.  The whole 512 byte trailer must follow.
 */
static int dmg_koly(struct block_dev *bd, uint64_t fsize, uint8_t *t, uint64_t *koly,
		    char *err, size_t errlen)
{
	uint8_t buf[515];
	uint64_t start = fsize > 511 + 512 ? fsize - 511 - 512 : 0;
	size_t len = fsize - start < sizeof(buf) ? (size_t)(fsize - start) : sizeof(buf);
	int ret;

	if (fsize < 512)
		return block_err(err, errlen, "dmg file must be at least 512 bytes long");
	ret = bfile_pread(bd, start, buf, len);
	if (ret < 0)
		return block_err(err, errlen, "Failed while reading UDIF trailer: %s",
				 strerror(-ret));
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(buf + i, "koly", 4))
			continue;
		*koly = start + i;
		if (fsize - *koly < 512)
			return block_err(err, errlen, "UDIF trailer at offset %llu is truncated",
					 (unsigned long long)*koly);
		ret = bfile_pread(bd, *koly, t, 512);
		if (ret < 0)
			return block_err(err, errlen, "Failed while reading UDIF trailer: %s",
					 strerror(-ret));
		return 0;
	}
	return block_err(err, errlen, "Could not locate UDIF trailer in dmg file");
}

/* A fork the trailer names must lie between its own start and the trailer. */
static int dmg_fork(const uint8_t *t, unsigned at, uint64_t koly, const char *what,
		    uint64_t *off, uint64_t *len, char *err, size_t errlen)
{
	*off = ld_be64(t + at);
	*len = ld_be64(t + at + 8);
	if (*len && (*off >= koly || *len > koly - *off))
		return block_err(err, errlen, "%s (%llu bytes at offset %llu) lies past the UDIF "
				 "trailer", what, (unsigned long long)*len,
				 (unsigned long long)*off);
	return 0;
}

static int dmg_chunk_cmp(const void *a, const void *b)
{
	const struct dmg_chunk *x = a, *y = b;

	return x->sector < y->sector ? -1 : x->sector > y->sector;
}

/* The trailer's forks, the chunk table, and buffers for the largest chunk. */
static int dmg_tables(struct block_dev *bd, struct dmg *s, const uint8_t *t, char *err,
		      size_t errlen)
{
	uint64_t rsrc, rsrc_len, xml, xml_len, sectors;

	s->data_fork = ld_be64(t + 0x18);
	if (s->data_fork > s->koly)
		return block_err(err, errlen, "data fork offset %llu lies past the UDIF trailer",
				 (unsigned long long)s->data_fork);
	if (dmg_fork(t, 0x28, s->koly, "resource fork", &rsrc, &rsrc_len, err, errlen) < 0 ||
	    dmg_fork(t, 0xd8, s->koly, "XML property list", &xml, &xml_len, err, errlen) < 0)
		return -1;
	sectors = ld_be64(t + 0x1ec);
	if (sectors > DMG_MAX_SECTORS)
		return block_err(err, errlen, "sector count %llu is too large",
				 (unsigned long long)sectors);
	bd->size = sectors * 512;
	/* QEMU prefers the resource fork when there is one. */
	if (rsrc_len) {
		if (dmg_rsrc(bd, s, rsrc, rsrc_len, err, errlen) < 0)
			return -1;
	} else if (xml_len) {
		if (dmg_xml(bd, s, xml, xml_len, err, errlen) < 0)
			return -1;
	} else {
		return block_err(err, errlen, "UDIF trailer names no resource fork and no XML "
				 "property list");
	}
	/* Sorted, so that lookups find a chunk wherever its table put it. */
	if (s->n)
		qsort(s->chunks, s->n, sizeof(*s->chunks), dmg_chunk_cmp);
	for (size_t i = 0; i < s->n; i++) {
		const struct dmg_chunk *c = &s->chunks[i];

		if (c->type == DMG_UDZO || c->type == DMG_UDBZ || c->type == DMG_ULFO) {
			if (c->length > s->cache.in_len)
				s->cache.in_len = (size_t)c->length;
			if (c->count * 512 > s->cache.out_len)
				s->cache.out_len = (size_t)c->count * 512;
		}
	}
	return 0;
}

static void dmg_close(struct block_dev *bd)
{
	struct dmg *s = bd->opaque;

	ro_cache_fini(&s->cache);
	free(s->chunks);
	free(s);
}

static int dmg_parse(struct block_dev *bd, uint64_t fsize, char *err, size_t errlen)
{
	struct dmg *s = bd->opaque;
	uint8_t trailer[512];

	if (ro_cache_init(&s->cache) < 0)
		return block_err(err, errlen, "Could not initialise zlib");
	if (dmg_koly(bd, fsize, trailer, &s->koly, err, errlen) < 0)
		return -1;
	return dmg_tables(bd, s, trailer, err, errlen);
}

static int dmg_open(struct block_dev *bd, char *err, size_t errlen)
{
	return ro_open(bd, sizeof(struct dmg), dmg_parse, err, errlen);
}

/* The chunk holding sector, or s->n (QEMU's search_chunk). */
static size_t dmg_find(const struct dmg *s, uint64_t sector)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dmg_chunk *c = &s->chunks[mid];

		if (c->sector > sector)
			hi = mid;
		else if (sector - c->sector < c->count)
			return mid;
		else
			lo = mid + 1;
	}
	return s->n;
}

/* Bytes [skip, skip+n) of chunk i's disk range into dst. */
static int dmg_fill(struct block_dev *bd, struct dmg *s, size_t i, uint8_t *dst, uint64_t skip,
		    size_t n)
{
	const struct dmg_chunk *c = &s->chunks[i];
	struct ro_unit u;

	switch (c->type) {
	case DMG_UDZE:
	case DMG_UDIG:
		memset(dst, 0, n);
		return 0;
	case DMG_UDRW:
		/* Stored as is: sectors beyond the stored length read as zeroes. */
		if (skip >= c->length) {
			memset(dst, 0, n);
			return 0;
		}
		if (c->length - skip < n) {
			memset(dst + (c->length - skip), 0, n - (size_t)(c->length - skip));
			n = (size_t)(c->length - skip);
		}
		return bfile_pread(bd, c->offset + skip, dst, n);
	case DMG_ULFO:
		return -ENOTSUP;	/* no lzfse library: refused by name, as the open warned */
	default:
		u.index = i;
		u.off = c->offset;
		u.len = (size_t)c->length;
		u.out = (size_t)c->count * 512;
		u.codec = c->type == DMG_UDZO ? RO_ZLIB : RO_BZIP2;
		return ro_cache_read(bd, &s->cache, &u, dst, (size_t)skip, n);
	}
}

static int dmg_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct dmg *s = bd->opaque;
	uint8_t *dst = buf;

	while (len) {
		size_t i = dmg_find(s, off / 512), n;
		uint64_t skip, left;
		int ret;

		/* A sector no chunk describes: QEMU's read fails there too. */
		if (i == s->n)
			return -EIO;
		skip = off - s->chunks[i].sector * 512;
		left = s->chunks[i].count * 512 - skip;
		n = left < len ? (size_t)left : len;
		ret = dmg_fill(bd, s, i, dst, skip, n);
		if (ret < 0)
			return ret;
		off += n;
		dst += n;
		len -= n;
	}
	return 0;
}

const struct block_driver block_dmg_driver = {
	.name = "dmg",
	.open = dmg_open,
	.close = dmg_close,
	.pread = dmg_pread,
	.status = block_status_all_data,
	.get_info = ro_get_info,
};
