/*
 * bochs: the "growing" redolog images of the Bochs emulator (bximage),
 * read-only as QEMU reads them.  Layout (Bochs iodev/hdimage/hdimage.h,
 * redolog_header_t), all little-endian: a 512 byte header with magic
 * "Bochs Virtual HD Image", type "Redolog", subtype "Growing", version
 * 0x00020000 (or 0x00010000, which lacks the reserved word before the disk
 * size), header size; catalog entries (u32), bitmap and extent sizes, disk
 * size.  The catalog follows the header: entry i is the index of the extent
 * holding disk extent i, or 0xffffffff.  Each stored extent is a bitmap
 * (one bit per sector, LSB first) then the sectors; a clear bit reads zero.
 */
#include "block/readonly.h"
#include "util/bytes.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BOCHS_HEADER		512
#define BOCHS_V1		0x00010000
#define BOCHS_V2		0x00020000
#define BOCHS_UNALLOCATED	0xffffffffu
#define BOCHS_MAX_CATALOG	0x100000u	/* QEMU: bximage's largest image, ~8 TB */
#define BOCHS_MAX_EXTENT	0x800000u

struct bochs {
	uint32_t *catalog;
	uint32_t catalog_size;
	uint64_t data_offset;		/* header + catalog */
	uint32_t bitmap_blocks;		/* sectors of bitmap before each extent */
	uint32_t extent_blocks;
	uint32_t extent_size;
	/*
	 * The bits of extent bitmap_of: one per sector, read from the start of
	 * the stored extent as QEMU reads them (a bitmap field smaller than the
	 * extent needs lets the bits run on into the data, as in QEMU).
	 */
	uint8_t *bitmap;
	size_t bitmap_len;
	uint64_t bitmap_of;		/* catalog_size when none */
	pthread_mutex_t lock;
};

static bool bochs_str(const uint8_t *field, const char *want)
{
	/* QEMU compares with strcmp: the field must hold want and its NUL. */
	return !memcmp(field, want, strlen(want) + 1);
}

/* The header checks of QEMU's bochs_open, with its words. */
static int bochs_header(const uint8_t *h, struct bochs *s, uint64_t *disk, uint32_t *hsize,
			char *err, size_t errlen)
{
	uint32_t version = ld_le32(h + 64);
	uint32_t bitmap;

	if (!bochs_str(h, "Bochs Virtual HD Image") || !bochs_str(h + 32, "Redolog") ||
	    !bochs_str(h + 48, "Growing") || (version != BOCHS_V1 && version != BOCHS_V2))
		return block_err(err, errlen, "Image not in Bochs format");
	*hsize = ld_le32(h + 68);
	s->catalog_size = ld_le32(h + 72);
	bitmap = ld_le32(h + 76);
	s->extent_size = ld_le32(h + 80);
	/* Version 1 has no reserved word before the disk size. */
	*disk = ld_le64(h + (version == BOCHS_V1 ? 84 : 88));
	if (s->catalog_size > BOCHS_MAX_CATALOG)
		return block_err(err, errlen, "Catalog size is too large");
	if (s->extent_size < 512)
		return block_err(err, errlen, "Extent size must be at least 512");
	if (s->extent_size & (s->extent_size - 1))
		return block_err(err, errlen, "Extent size %u is not a power of two",
				 s->extent_size);
	if (s->extent_size > BOCHS_MAX_EXTENT)
		return block_err(err, errlen, "Extent size %u is too large", s->extent_size);
	/* QEMU: 1 + (bitmap - 1) / 512, in 32 bits (bitmap 0 wraps to 1 + 0x7fffff). */
	s->bitmap_blocks = 1 + (bitmap - 1) / 512;
	s->extent_blocks = 1 + (s->extent_size - 1) / 512;
	if (s->catalog_size < (*disk / 512 + s->extent_size / 512 - 1) / (s->extent_size / 512))
		return block_err(err, errlen, "Catalog size is too small for this disk size");
	return 0;
}

/*
 * Beyond QEMU (which reads zeroes past the end of the file): the catalog and
 * every extent it names must start inside the file.
 */
static int bochs_catalog(struct block_dev *bd, struct bochs *s, uint32_t hsize, uint64_t fsize,
			 char *err, size_t errlen)
{
	uint64_t stride = 512ull * (s->extent_blocks + s->bitmap_blocks);
	int ret;

	s->data_offset = (uint64_t)hsize + 4ull * s->catalog_size;
	if (s->data_offset > fsize)
		return block_err(err, errlen, "Catalog of %u entries at offset %u extends past the "
				 "end of the file (%llu bytes)", s->catalog_size, hsize,
				 (unsigned long long)fsize);
	s->catalog = malloc(4ull * s->catalog_size + 1);
	if (!s->catalog)
		return block_err(err, errlen, "Could not allocate memory for catalog");
	ret = bfile_pread(bd, hsize, s->catalog, 4ull * s->catalog_size);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the catalog: %s", strerror(-ret));
	for (uint32_t i = 0; i < s->catalog_size; i++) {
		s->catalog[i] = ld_le32(&s->catalog[i]);
		if (s->catalog[i] != BOCHS_UNALLOCATED &&
		    s->data_offset + stride * s->catalog[i] >= fsize)
			return block_err(err, errlen, "Catalog entry %u points to extent %u, past the "
					 "end of the file", i, s->catalog[i]);
	}
	return 0;
}

static void bochs_close(struct block_dev *bd)
{
	struct bochs *s = bd->opaque;

	if (s->bitmap)
		pthread_mutex_destroy(&s->lock);
	free(s->catalog);
	free(s->bitmap);
	free(s);
}

static int bochs_parse(struct block_dev *bd, uint64_t fsize, char *err, size_t errlen)
{
	struct bochs *s = bd->opaque;
	uint8_t h[BOCHS_HEADER];
	uint64_t disk = 0;
	uint32_t hsize = 0;
	int ret;

	if (fsize < BOCHS_HEADER)
		return block_err(err, errlen, "Bochs header is truncated: the file has %llu bytes",
				 (unsigned long long)fsize);
	ret = bfile_pread(bd, 0, h, sizeof(h));
	if (ret < 0)
		return block_err(err, errlen, "Could not read the header: %s", strerror(-ret));
	if (bochs_header(h, s, &disk, &hsize, err, errlen) < 0 ||
	    bochs_catalog(bd, s, hsize, fsize, err, errlen) < 0)
		return -1;
	s->bitmap_len = (s->extent_size / 512 + 7) / 8;
	s->bitmap = malloc(s->bitmap_len);
	if (!s->bitmap)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&s->lock, NULL);	/* destroyed by close once bitmap is set */
	s->bitmap_of = s->catalog_size;
	bd->size = disk / 512 * 512;
	return 0;
}

static int bochs_open(struct block_dev *bd, char *err, size_t errlen)
{
	return ro_open(bd, sizeof(struct bochs), bochs_parse, err, errlen);
}

/* The bitmap of catalog entry unit, read once for a run of reads in it. */
static int bochs_load_bitmap(struct block_dev *bd, struct bochs *s, uint64_t unit,
			     uint64_t base)
{
	int ret;

	if (s->bitmap_of == unit)
		return 0;
	s->bitmap_of = s->catalog_size;
	ret = bfile_pread(bd, base, s->bitmap, s->bitmap_len);
	if (ret == 0)
		s->bitmap_of = unit;
	return ret;
}

static bool bochs_bit(const uint8_t *bitmap, size_t sector)
{
	return bitmap[sector / 8] >> (sector % 8) & 1;
}

/*
 * Stored sectors and zeroes of bytes [skip, skip+n) of extent unit into dst,
 * one pread per run of sectors whose bits agree.
 */
static int bochs_fill_locked(struct block_dev *bd, struct bochs *s, uint64_t unit, uint8_t *dst,
			     size_t skip, size_t n)
{
	uint64_t base = s->data_offset +
		512ull * s->catalog[unit] * (s->extent_blocks + s->bitmap_blocks);
	uint64_t data = base + 512ull * s->bitmap_blocks;
	int ret = bochs_load_bitmap(bd, s, unit, base);

	while (ret == 0 && n) {
		size_t sector = skip / 512, run = 1, len;
		bool set = bochs_bit(s->bitmap, sector);

		while ((sector + run) * 512 < skip + n && bochs_bit(s->bitmap, sector + run) == set)
			run++;
		len = (sector + run) * 512 - skip;
		if (len > n)
			len = n;
		if (set)
			ret = bfile_pread(bd, data + skip, dst, len);
		else
			memset(dst, 0, len);
		dst += len;
		skip += len;
		n -= len;
	}
	return ret;
}

static int bochs_fill(struct block_dev *bd, uint64_t unit, uint8_t *dst, size_t skip, size_t n)
{
	struct bochs *s = bd->opaque;
	int ret;

	if (unit >= s->catalog_size)
		return -EIO;
	if (s->catalog[unit] == BOCHS_UNALLOCATED) {
		memset(dst, 0, n);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	ret = bochs_fill_locked(bd, s, unit, dst, skip, n);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int bochs_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct bochs *s = bd->opaque;

	return ro_read_units(bd, off, buf, len, s->extent_size, bochs_fill);
}

const struct block_driver block_bochs_driver = {
	.name = "bochs",
	.open = bochs_open,
	.close = bochs_close,
	.pread = bochs_pread,
	.status = block_status_all_data,
	.get_info = ro_get_info,
};
