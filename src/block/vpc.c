/*
 * vpc: Virtual PC / Hyper-V VHD images (Microsoft's "Virtual Hard Disk
 * Image Format Specification"), as QEMU 7.2's block/vpc.c reads and writes
 * them.  Every image ends with a 512-byte big-endian footer ("conectix").
 * Fixed disks are the raw disk followed by the footer.  Dynamic disks start
 * with a copy of the footer, then the dynamic header ("cxsparse") and the
 * block allocation table (BAT): one 32-bit sector number per block, whose
 * sector bitmap precedes its data; new blocks go where the footer was.
 */
#include "block/blockmap.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VHD_FOOTER_SIZE		512
#define VHD_DYN_SIZE		1024
#define VHD_FIXED		2
#define VHD_DYNAMIC		3
#define VHD_UNALLOCATED		0xffffffffu
#define VHD_TIMESTAMP_BASE	946684800	/* 2000-01-01 00:00:00 UTC */
#define VHD_CHS_MAX_C		65535ull
#define VHD_CHS_MAX_H		16
#define VHD_CHS_MAX_S		255
#define VHD_MAX_GEOMETRY	(VHD_CHS_MAX_C * VHD_CHS_MAX_H * VHD_CHS_MAX_S)
#define VHD_MAX_SECTORS		0xff000000ull	/* 2040 GiB */
#define VHD_BLOCK_SIZE		(2u << 20)	/* what QEMU creates */

/* Footer ("Hard Disk Footer Format") and dynamic header field offsets. */
enum {
	F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16, F_TIMESTAMP = 24,
	F_CREATOR_APP = 28, F_CREATOR_VER = 32, F_CREATOR_OS = 36, F_ORIG_SIZE = 40,
	F_CUR_SIZE = 48, F_CYLS = 56, F_HEADS = 58, F_SECS = 59, F_TYPE = 60, F_CHECKSUM = 64,
	F_UUID = 68,
	D_COOKIE = 0, D_DATA_OFFSET = 8, D_TABLE_OFFSET = 16, D_VERSION = 24, D_MAX_ENTRIES = 28,
	D_BLOCK_SIZE = 32, D_CHECKSUM = 36,
};

struct vpc {
	struct blockmap map;
	uint8_t footer[VHD_FOOTER_SIZE];
	bool fixed;			/* footer type: I/O goes straight to the file */
	uint32_t *bat;			/* host order */
	uint32_t entries, block_size, bitmap_size;
	uint64_t bat_offset, free_offset;	/* free_offset: next block, and the footer */
	int64_t last_bitmap;		/* the bitmap this session last marked full */
	char problem[128];		/* why the BAT is unsafe to write through, "" if fine */
};

/* The spec's checksum: one's complement of the byte sum, the field itself as zero. */
static uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t field)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < field || i >= field + 4)
			sum += buf[i];
	return ~sum;
}

/*
 * QEMU 7.2's size choice: Virtual PC and QEMU ("qemu") size the disk by its
 * CHS geometry; Hyper-V ("win "), QEMU with force_size ("qem2"), disk2vhd
 * ("d2v "), XenConverter ("CTXS") and XenServer ("tap\0") by current_size,
 * as does any image whose geometry is the maximum.
 */
static uint64_t disk_sectors(const uint8_t *f)
{
	static const char *const by_size[] = { "win ", "qem2", "d2v ", "CTXS" };
	uint64_t chs = (uint64_t)ld_be16(f + F_CYLS) * f[F_HEADS] * f[F_SECS];
	bool use_chs = memcmp(f + F_CREATOR_APP, "tap", 4) != 0;

	for (size_t i = 0; i < sizeof(by_size) / sizeof(by_size[0]); i++)
		if (!memcmp(f + F_CREATOR_APP, by_size[i], 4))
			use_chs = false;
	if (!use_chs || chs == VHD_MAX_GEOMETRY)
		return ld_be64(f + F_CUR_SIZE) / 512;
	return chs;
}

/* The footer at the start (dynamic) or, failing that, at the end (fixed). */
static int read_footer(struct block_dev *bd, struct vpc *s, bool *at_end, char *err,
		       size_t errlen)
{
	int64_t len;
	int ret = bfile_pread(bd, 0, s->footer, VHD_FOOTER_SIZE);

	if (ret < 0)
		return block_err(err, errlen, "Unable to read VHD header");
	*at_end = memcmp(s->footer, "conectix", 8) != 0;
	if (!*at_end)
		return 0;
	len = bfile_size(bd);
	if (len < 0)
		return block_err(err, errlen, "Invalid file size");
	if (len < VHD_FOOTER_SIZE)
		return block_err(err, errlen, "File too small for a VHD header");
	ret = bfile_pread(bd, (uint64_t)len - VHD_FOOTER_SIZE, s->footer, VHD_FOOTER_SIZE);
	if (ret < 0)
		return block_err(err, errlen, "Unable to read VHD footer");
	if (memcmp(s->footer, "conectix", 8))
		return block_err(err, errlen, "invalid VPC image");
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Blocks that overlap the headers, the BAT or each other: a write there
 * would overwrite metadata or another block's data, so such an image opens
 * read-only.  QEMU does not look; its reads stay the same as ours.
 */
static int scan_bat(struct vpc *s, uint64_t meta_end)
{
	uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
	uint32_t *sorted = malloc((size_t)s->entries * 4 + 4), n = 0;

	if (!sorted)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->entries; i++)
		if (s->bat[i] != VHD_UNALLOCATED)
			sorted[n++] = s->bat[i];
	qsort(sorted, n, 4, cmp_u32);
	for (uint32_t i = 0; i < n && !s->problem[0]; i++) {
		uint64_t at = (uint64_t)sorted[i] * 512;
		if (at < meta_end)
			snprintf(s->problem, sizeof(s->problem), "a block at 0x%" PRIx64 " overlaps "
				 "the headers or the BAT", at);
		else if (i + 1 < n && (uint64_t)sorted[i + 1] * 512 < at + span)
			snprintf(s->problem, sizeof(s->problem), "blocks at 0x%" PRIx64 " and 0x%"
				 PRIx64 " overlap", at, (uint64_t)sorted[i + 1] * 512);
	}
	free(sorted);
	return 0;
}

/* vpc_open's checks of the dynamic header, in QEMU's order and words. */
static int check_dyn(const uint8_t *d, uint64_t sectors, char *err, size_t errlen)
{
	uint32_t bs = ld_be32(d + D_BLOCK_SIZE), entries = ld_be32(d + D_MAX_ENTRIES);

	if (memcmp(d + D_COOKIE, "cxsparse", 8))
		return block_err(err, errlen, "Invalid header magic");
	if (bs < 512 || (bs & (bs - 1)))
		return block_err(err, errlen, "Invalid block size %" PRIu32, bs);
	if (sectors * 512 / bs > 0xffffffffu)
		return block_err(err, errlen, "Too many blocks");
	if ((uint64_t)entries * bs < sectors * 512)
		return block_err(err, errlen, "Page table too small");
	if (entries > INT32_MAX / 4)
		return block_err(err, errlen, "Max Table Entries too large (%" PRId32 ")",
				 (int32_t)entries);
	return 0;
}

static int open_dynamic(struct block_dev *bd, struct vpc *s, char *err, size_t errlen)
{
	uint8_t d[VHD_DYN_SIZE];
	uint64_t bat_end;
	int64_t flen;
	uint8_t *raw;

	if (bfile_pread(bd, ld_be64(s->footer + F_DATA_OFFSET), d, sizeof(d)) < 0)
		return block_err(err, errlen, "Error reading dynamic VHD header");
	if (check_dyn(d, bd->size / 512, err, errlen) < 0)
		return -1;
	s->block_size = ld_be32(d + D_BLOCK_SIZE);
	s->bitmap_size = ((s->block_size / (8 * 512)) + 511) & ~511u;
	s->entries = ld_be32(d + D_MAX_ENTRIES);
	s->bat_offset = ld_be64(d + D_TABLE_OFFSET);
	raw = blockmap_read_table(bd, s->bat_offset, (uint64_t)s->entries * 4,
				  "block allocation table", err, errlen);
	if (!raw)
		return -1;
	s->bat = (uint32_t *)raw;
	bat_end = (s->bat_offset + (uint64_t)s->entries * 4 + 511) & ~511ull;
	s->free_offset = bat_end;
	for (uint32_t i = 0; i < s->entries; i++) {
		uint64_t next;
		s->bat[i] = ld_be32(raw + 4 * (size_t)i);
		next = (uint64_t)s->bat[i] * 512 + s->bitmap_size + s->block_size;
		if (s->bat[i] != VHD_UNALLOCATED && next > s->free_offset)
			s->free_offset = next;
	}
	flen = bfile_size(bd);
	if (flen < 0 || s->free_offset > (uint64_t)flen)
		return block_err(err, errlen, "block-vpc: free_data_block_offset points after the "
				 "end of file. The image has been truncated.");
	if (scan_bat(s, bat_end > ld_be64(s->footer + F_DATA_OFFSET) + VHD_DYN_SIZE ? bat_end :
		     ld_be64(s->footer + F_DATA_OFFSET) + VHD_DYN_SIZE) < 0)
		return block_err(err, errlen, "Unable to allocate memory for page table");
	if (s->problem[0] && !bd->read_only)
		return block_err(err, errlen, "VHD block allocation table is corrupt (%s); it can "
				 "only be opened read-only", s->problem);
	return 0;
}

static int64_t vpc_lookup(struct block_dev *bd, uint64_t block)
{
	struct vpc *s = bd->opaque;

	if (block >= s->entries || s->bat[block] == VHD_UNALLOCATED)
		return 0;
	return (int64_t)((uint64_t)s->bat[block] * 512 + s->bitmap_size);
}

/* The block's sector bitmap says every sector is present (QEMU: get_image_offset). */
static int mark_present(struct vpc *s, uint64_t bitmap)
{
	uint8_t *ones;
	int ret;

	if (s->last_bitmap == (int64_t)bitmap)
		return 0;
	ones = malloc(s->bitmap_size);
	if (!ones)
		return -ENOMEM;
	memset(ones, 0xff, s->bitmap_size);
	ret = bfile_pwrite(s->map.bd, bitmap, ones, s->bitmap_size);
	free(ones);
	if (ret == 0)
		s->last_bitmap = (int64_t)bitmap;
	return ret;
}

static int vpc_before_write(struct block_dev *bd, uint64_t block, int64_t host)
{
	struct vpc *s = bd->opaque;

	return mark_present(s, (uint64_t)host - s->bitmap_size);
}

/*
 * alloc_block: the new block takes the old footer's place.  Its bitmap and
 * data are written first, then the footer after it, then the BAT entry:
 * a crash before the entry leaves the image as it was, plus a footer copy.
 */
static int vpc_alloc(struct block_dev *bd, uint64_t block, uint64_t in, const void *buf,
		     size_t len)
{
	struct vpc *s = bd->opaque;
	uint64_t at = s->free_offset, data = at + s->bitmap_size;
	int64_t flen = bfile_size(bd);
	uint8_t entry[4];
	int ret;

	if (block >= s->entries || at / 512 >= VHD_UNALLOCATED)
		return -ENOSPC;
	/* Whatever lay past the footer must not show through as data. */
	if (flen > (int64_t)data) {
		uint64_t end = (uint64_t)flen < data + s->block_size ? (uint64_t)flen :
			       data + s->block_size;
		void *zero = calloc(1, (size_t)(end - data));
		if (!zero)
			return -ENOMEM;
		ret = bfile_pwrite(bd, data, zero, (size_t)(end - data));
		free(zero);
		if (ret < 0)
			return ret;
	}
	s->last_bitmap = -1;
	ret = mark_present(s, at);
	if (ret == 0)
		ret = bfile_pwrite(bd, data + in, buf, len);
	if (ret == 0)
		ret = bfile_pwrite(bd, data + s->block_size, s->footer, VHD_FOOTER_SIZE);
	if (ret < 0)
		return ret;
	st_be32(entry, (uint32_t)(at / 512));
	ret = bfile_pwrite(bd, s->bat_offset + 4 * block, entry, 4);
	if (ret < 0)
		return ret;
	s->bat[block] = (uint32_t)(at / 512);
	s->free_offset = data + s->block_size;
	return 0;
}

static void vpc_close(struct block_dev *bd)
{
	struct vpc *s = bd->opaque;

	if (!s)
		return;
	blockmap_destroy(&s->map);
	free(s->bat);
	free(s);
	bd->opaque = NULL;
}

/* A fixed disk whose data would run into its footer cannot be written safely. */
static int check_fixed(struct block_dev *bd, char *err, size_t errlen)
{
	int64_t flen = bfile_size(bd);

	if (bd->read_only || (flen >= VHD_FOOTER_SIZE &&
			      bd->size <= (uint64_t)flen - VHD_FOOTER_SIZE))
		return 0;
	return block_err(err, errlen, "fixed VHD is shorter than its disk size (%" PRIu64
			 " bytes); it can only be opened read-only", bd->size);
}

static int vpc_open_state(struct block_dev *bd, struct vpc *s, char *err, size_t errlen)
{
	uint32_t sum;
	bool at_end;

	if (read_footer(bd, s, &at_end, err, errlen) < 0)
		return -1;
	sum = vhd_checksum(s->footer, VHD_FOOTER_SIZE, F_CHECKSUM);
	if (sum != ld_be32(s->footer + F_CHECKSUM))
		return block_err(err, errlen, "Incorrect header checksum");
	bd->size = disk_sectors(s->footer) * 512;
	/* QEMU 7.2 fails with EFBIG and no message: bdrv_open names the file twice. */
	if (bd->size / 512 > VHD_MAX_SECTORS)
		return block_err(err, errlen, "Could not open '%s': File too large", bd->filename);
	s->fixed = ld_be32(s->footer + F_TYPE) == VHD_FIXED;
	/* QEMU takes the footer's place, not its type, for the layout. */
	if (at_end && !s->fixed)
		return block_err(err, errlen, "invalid VPC image (footer at the end of the file "
				 "but disk type %" PRIu32 ")", ld_be32(s->footer + F_TYPE));
	if (at_end)
		return check_fixed(bd, err, errlen);
	/* QEMU then reads the disk from offset 0, where its own footer and header are. */
	if (s->fixed && !bd->read_only)
		return block_err(err, errlen, "fixed VHD with its footer at the start of the file; "
				 "it can only be opened read-only");
	return open_dynamic(bd, s, err, errlen);
}

static int vpc_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct vpc *s = calloc(1, sizeof(*s));

	if (!s)
		return block_err(err, errlen, "out of memory");
	bd->opaque = s;
	s->last_bitmap = -1;
	blockmap_init(&s->map, bd, VHD_BLOCK_SIZE);
	if (vpc_open_state(bd, s, err, errlen) < 0) {
		vpc_close(bd);
		return -1;
	}
	if (!s->fixed)
		s->map.block_size = s->block_size;
	s->map.lookup = vpc_lookup;
	s->map.alloc = vpc_alloc;
	s->map.before_write = vpc_before_write;
	return 0;
}

static int vpc_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct vpc *s = bd->opaque;

	if (s->fixed)
		return bfile_pread(bd, off, buf, len);
	return blockmap_pread(&s->map, off, buf, len);
}

static int vpc_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct vpc *s = bd->opaque;

	if (s->fixed)
		return bfile_pwrite(bd, off, buf, len);
	return blockmap_pwrite(&s->map, off, buf, len);
}

static int vpc_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct vpc *s = bd->opaque;

	if (s->fixed)
		return block_raw_driver.write_zeroes(bd, off, len, false);
	return blockmap_write_zeroes(&s->map, off, len);
}

/* vpc_co_block_status: a fixed disk is its file (BDRV_BLOCK_RECURSE), at the same offsets. */
static int vpc_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags)
{
	struct vpc *s = bd->opaque;
	uint64_t fmap;
	unsigned fflags;
	int ret;

	if (!s->fixed)
		return blockmap_status(&s->map, off, len, pnum, map, flags);
	ret = block_raw_driver.status(bd, off, len, pnum, &fmap, &fflags);
	if (ret < 0)
		return ret;
	*map = off;
	*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET |
		 (fflags & BLOCK_STATUS_ZERO);
	return 0;
}

static int vpc_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}

static int vpc_get_info(struct block_dev *bd, struct block_info *info)
{
	struct vpc *s = bd->opaque;

	if (!s->fixed)
		info->cluster_size = s->block_size;
	return 0;
}

/*
 * The VHD spec's CHS algorithm (appendix "CHS Calculation"), with QEMU's
 * extension past the ATA limit of 127 GiB: 16 heads of 255 sectors per
 * track.  May round the size down.
 */
static void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *secs)
{
	uint32_t ch;

	if (sectors > VHD_MAX_GEOMETRY)
		sectors = VHD_MAX_GEOMETRY;
	if (sectors >= 65535ull * 16 * 63) {
		*secs = 255;
		*heads = 16;
		ch = (uint32_t)(sectors / *secs);
	} else {
		*secs = 17;
		ch = (uint32_t)(sectors / *secs);
		*heads = (uint8_t)((ch + 1023) / 1024);
		if (*heads < 4)
			*heads = 4;
		if (ch >= *heads * 1024u || *heads > 16) {
			*secs = 31;
			*heads = 16;
			ch = (uint32_t)(sectors / *secs);
		}
		if (ch >= *heads * 1024u) {
			*secs = 63;
			*heads = 16;
			ch = (uint32_t)(sectors / *secs);
		}
	}
	*cyls = (uint16_t)(ch / *heads);
}

/*
 * calculate_rounded_image_size: without force_size the disk grows to the
 * first geometry that holds it (so convert never truncates); a geometry at
 * the maximum means the footer's size counts instead.
 */
static int rounded_size(uint64_t size, bool force, uint16_t *c, uint8_t *h, uint8_t *sec,
			uint64_t *out, char *err, size_t errlen)
{
	uint64_t want = size / 512 < VHD_MAX_GEOMETRY ? size / 512 : VHD_MAX_GEOMETRY;

	*c = 0;
	*h = 0;
	*sec = 0;
	if (force) {
		*c = VHD_CHS_MAX_C;
		*h = VHD_CHS_MAX_H;
		*sec = VHD_CHS_MAX_S;
	}
	for (uint64_t i = 0; !force && want > (uint64_t)*c * *h * *sec; i++)
		vhd_geometry(want + i, c, h, sec);
	if ((uint64_t)*c * *h * *sec != VHD_MAX_GEOMETRY) {
		*out = (uint64_t)*c * *h * *sec * 512;
		return 0;
	}
	if (size / 512 > VHD_MAX_SECTORS)
		return block_err(err, errlen, "The image size is too large for file format 'vpc'");
	*out = size / 512 * 512;
	return 0;
}

static void make_footer(uint8_t *f, uint64_t size, bool fixed, bool force, uint16_t c,
			uint8_t h, uint8_t sec)
{
	memset(f, 0, VHD_FOOTER_SIZE);
	memcpy(f + F_COOKIE, "conectix", 8);
	st_be32(f + F_FEATURES, 2);
	st_be32(f + F_VERSION, 0x00010000);
	st_be64(f + F_DATA_OFFSET, fixed ? UINT64_MAX : VHD_FOOTER_SIZE);
	st_be32(f + F_TIMESTAMP, (uint32_t)(time(NULL) - VHD_TIMESTAMP_BASE));
	memcpy(f + F_CREATOR_APP, force ? "qem2" : "qemu", 4);
	st_be16(f + F_CREATOR_VER, 5);	/* Virtual PC 2007: 5.3 */
	st_be16(f + F_CREATOR_VER + 2, 3);
	memcpy(f + F_CREATOR_OS, "Wi2k", 4);
	st_be64(f + F_ORIG_SIZE, size);
	st_be64(f + F_CUR_SIZE, size);
	st_be16(f + F_CYLS, c);
	f[F_HEADS] = h;
	f[F_SECS] = sec;
	st_be32(f + F_TYPE, fixed ? VHD_FIXED : VHD_DYNAMIC);
	blockmap_uuid(f + F_UUID);
	st_be32(f + F_CHECKSUM, vhd_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM));
}

/* create_dynamic_disk: footer, dynamic header, an empty BAT, the footer again. */
static int write_dynamic(int fd, const uint8_t *footer, uint64_t size)
{
	uint64_t entries = (size / 512 + VHD_BLOCK_SIZE / 512 - 1) / (VHD_BLOCK_SIZE / 512);
	size_t bat = (size_t)((entries * 4 + 511) & ~511ull);
	size_t total = 3 * 512 + bat + VHD_FOOTER_SIZE;
	uint8_t *buf = calloc(1, total), *d;
	ssize_t w;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, footer, VHD_FOOTER_SIZE);
	d = buf + VHD_FOOTER_SIZE;
	memcpy(d + D_COOKIE, "cxsparse", 8);
	/* All 64 bits set: Microsoft's tools expect it, though the spec says 0xFFFFFFFF. */
	st_be64(d + D_DATA_OFFSET, UINT64_MAX);
	st_be64(d + D_TABLE_OFFSET, 3 * 512);
	st_be32(d + D_VERSION, 0x00010000);
	st_be32(d + D_MAX_ENTRIES, (uint32_t)entries);
	st_be32(d + D_BLOCK_SIZE, VHD_BLOCK_SIZE);
	st_be32(d + D_CHECKSUM, vhd_checksum(d, VHD_DYN_SIZE, D_CHECKSUM));
	memset(buf + 3 * 512, 0xff, bat);
	memcpy(buf + 3 * 512 + bat, footer, VHD_FOOTER_SIZE);
	block_crash_point();
	w = pwrite(fd, buf, total, 0);
	free(buf);
	if (w != (ssize_t)total)
		return w < 0 ? -errno : -EIO;
	return 0;
}

/*
 * create_fixed_disk: the disk, then the footer.  Growing the empty file
 * writes its first 4 KiB as QEMU's file-posix does (allocate_first_block),
 * so disk size and map read the same.
 */
static int write_fixed(int fd, const uint8_t *footer, uint64_t size)
{
	static const uint8_t zero[4096];
	size_t first = size + VHD_FOOTER_SIZE < sizeof(zero) ? (size_t)size + VHD_FOOTER_SIZE :
		       sizeof(zero);
	ssize_t w;

	block_crash_point();
	if (ftruncate(fd, (off_t)(size + VHD_FOOTER_SIZE)) < 0)
		return -errno;
	if (pwrite(fd, zero, first, 0) != (ssize_t)first)
		return -EIO;
	w = pwrite(fd, footer, VHD_FOOTER_SIZE, (off_t)size);
	if (w != VHD_FOOTER_SIZE)
		return w < 0 ? -errno : -EIO;
	return 0;
}

/* The subformat and force_size options as vpc_co_create_opts reads them. */
static int create_opts(const struct block_create_opts *o, bool *fixed, bool *force, char *err,
		       size_t errlen)
{
	const struct block_fmt_opt *sub = block_create_opt(o, "subformat");
	const struct block_fmt_opt *fs = block_create_opt(o, "force_size");

	*fixed = sub && !strcmp(sub->val, "fixed");
	*force = fs && fs->num;
	if (sub && !*fixed && strcmp(sub->val, "dynamic"))
		return block_err(err, errlen, "Parameter 'subformat' does not accept value '%s'",
				 sub->val);
	if (o->backing_file)
		return block_err(err, errlen, "Backing file not supported for file format 'vpc'");
	return 0;
}

static int vpc_create(const char *path, const struct block_create_opts *o, char *err,
		      size_t errlen)
{
	uint8_t footer[VHD_FOOTER_SIZE], h, sec;
	uint64_t size;
	uint16_t c;
	bool fixed, force;
	int fd, ret;

	if (create_opts(o, &fixed, &force, err, errlen) < 0)
		return -1;
	/* Sizes round up to a sector silently, then (without force_size) to a geometry. */
	size = (o->size + 511) / 512 * 512;
	if (size < o->size)
		return block_err(err, errlen, "The image size is too large for file format 'vpc'");
	if (rounded_size(size, force, &c, &h, &sec, &size, err, errlen) < 0)
		return -1;
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	make_footer(footer, size, fixed, force, c, h, sec);
	ret = fixed ? write_fixed(fd, footer, size) : write_dynamic(fd, footer, size);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Unable to create or write VHD header: %s",
				 strerror(-ret));
	return 0;
}

/* vpc_create_opts of QEMU 7.2, in its order. */
static const struct block_opt_desc vpc_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "subformat", BLOCK_OPT_STR, NULL,
	  "Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} " },
	{ "force_size", BLOCK_OPT_BOOL, NULL,
	  "Force disk size calculation to use the actual size specified, rather than using the "
	  "nearest CHS-based calculation" },
	{ NULL, 0, NULL, NULL },
};

const struct block_driver block_vpc_driver = {
	.name = "vpc",
	.open = vpc_open,
	.close = vpc_close,
	.pread = vpc_pread,
	.pwrite = vpc_pwrite,
	.flush = vpc_flush,
	.write_zeroes = vpc_write_zeroes,
	.status = vpc_status,
	.create = vpc_create,
	.get_info = vpc_get_info,
	.create_opts = vpc_create_opts,
};
