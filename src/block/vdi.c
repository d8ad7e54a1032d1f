/*
 * vdi: VirtualBox disk images, as QEMU 7.2's block/vdi.c reads and writes
 * them.  A 512-byte little-endian header, a block map of 32-bit entries
 * (block index -> data slot, 0xffffffff unallocated, 0xfffffffe discarded)
 * and data slots of 1 MiB from offset_data on.  Dynamic images append a slot
 * at the first write to a block; static ones map every block at creation.
 */
#include "block/blockmap.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VDI_HEADER_SIZE		512
#define VDI_SIGNATURE		0xbeda107fu
#define VDI_VERSION_1_1		0x00010001u
#define VDI_TYPE_DYNAMIC	1
#define VDI_TYPE_STATIC		2
#define VDI_BLOCK_SIZE		(1u << 20)	/* QEMU accepts no other */
#define VDI_SECTOR		512u
#define VDI_UNALLOCATED		0xffffffffu
#define VDI_DISCARDED		0xfffffffeu
#define VDI_ALLOCATED(e)	((e) < VDI_DISCARDED)
/* QEMU's limit: the map, rounded to a sector, stays below INT_MAX bytes. */
#define VDI_BLOCKS_MAX		((uint32_t)((INT_MAX + 1u - VDI_SECTOR) / 4))
#define VDI_DISK_SIZE_MAX	((uint64_t)VDI_BLOCKS_MAX * VDI_BLOCK_SIZE)
#define VDI_TEXT		"<<< QEMU VM Virtual Disk Image >>>\n"

/* Header field offsets (VirtualBox VDIHEADER1PLUS, QEMU's VdiHeader). */
enum {
	H_SIGNATURE = 0x40, H_VERSION = 0x44, H_HEADER_SIZE = 0x48, H_TYPE = 0x4c,
	H_OFFSET_BMAP = 0x154, H_OFFSET_DATA = 0x158, H_SECTOR_SIZE = 0x168,
	H_DISK_SIZE = 0x170, H_BLOCK_SIZE = 0x178, H_BLOCKS = 0x180, H_ALLOCATED = 0x184,
	H_UUID_IMAGE = 0x188, H_UUID_SNAP = 0x198, H_UUID_LINK = 0x1a8, H_UUID_PARENT = 0x1b8,
};

struct vdi {
	struct blockmap map;
	uint8_t header[VDI_HEADER_SIZE];
	uint32_t *bmap;			/* host order */
	uint32_t blocks, allocated, type;
	uint64_t offset_bmap, offset_data;
	uint8_t *slot_used;		/* one bit per data slot an entry points at */
	char problem[128];		/* the first map inconsistency, "" if none */
};

static bool uuid_is_null(const uint8_t *u)
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* vdi_open's header checks, in QEMU's order and words. */
static int check_header(const uint8_t *h, uint64_t disk_size, char *err, size_t errlen)
{
	uint32_t sig = ld_le32(h + H_SIGNATURE), ver = ld_le32(h + H_VERSION);
	uint32_t bmap = ld_le32(h + H_OFFSET_BMAP), data = ld_le32(h + H_OFFSET_DATA);
	uint32_t sector = ld_le32(h + H_SECTOR_SIZE), bsize = ld_le32(h + H_BLOCK_SIZE);
	uint32_t blocks = ld_le32(h + H_BLOCKS);

	if (sig != VDI_SIGNATURE)
		return block_err(err, errlen, "Image not in VDI format (bad signature %08" PRIx32 ")",
				 sig);
	if (ver != VDI_VERSION_1_1)
		return block_err(err, errlen, "unsupported VDI image (version %" PRIu32 ".%" PRIu32
				 ")", ver >> 16, ver & 0xffff);
	if (bmap % VDI_SECTOR)
		return block_err(err, errlen, "unsupported VDI image (unaligned block map offset "
				 "0x%" PRIx32 ")", bmap);
	if (data % VDI_SECTOR)
		return block_err(err, errlen, "unsupported VDI image (unaligned data offset 0x%"
				 PRIx32 ")", data);
	if (sector != VDI_SECTOR)
		return block_err(err, errlen, "unsupported VDI image (sector size %" PRIu32
				 " is not %u)", sector, VDI_SECTOR);
	if (bsize != VDI_BLOCK_SIZE)
		return block_err(err, errlen, "unsupported VDI image (block size %" PRIu32
				 " is not %u)", bsize, VDI_BLOCK_SIZE);
	if (disk_size > (uint64_t)blocks * bsize)
		return block_err(err, errlen, "unsupported VDI image (disk size %" PRIu64 ", image "
				 "bitmap has room for %" PRIu64 ")", disk_size, (uint64_t)blocks * bsize);
	if (!uuid_is_null(h + H_UUID_LINK))
		return block_err(err, errlen, "unsupported VDI image (non-NULL link UUID)");
	if (!uuid_is_null(h + H_UUID_PARENT))
		return block_err(err, errlen, "unsupported VDI image (non-NULL parent UUID)");
	if (blocks > VDI_BLOCKS_MAX)
		return block_err(err, errlen, "unsupported VDI image (too many blocks %u, max is %u)",
				 blocks, VDI_BLOCKS_MAX);
	return 0;
}

/*
 * One pass over the map, marking the data slots in use in seen: an entry
 * out of range or on a slot already seen is reported (QEMU's check words;
 * for a duplicate QEMU prints the slot twice, having remembered the slot,
 * not the first block) and the first one kept in s->problem.  Returns the
 * in-range entries, duplicates included, as QEMU counts them.
 */
static uint32_t walk_map(struct vdi *s, uint8_t *seen, FILE *report, int *bad)
{
	uint32_t count = 0;

	for (uint32_t b = 0; b < s->blocks; b++) {
		uint32_t e = s->bmap[b];
		char msg[96] = "";
		if (!VDI_ALLOCATED(e))
			continue;
		if (e >= s->blocks) {
			snprintf(msg, sizeof(msg), "block index %" PRIu32 " too large, is %" PRIu32, b,
				 e);
		} else {
			count++;
			if ((seen[e / 8] >> (e % 8)) & 1)
				snprintf(msg, sizeof(msg), "block index %" PRIu32 " also used by %"
					 PRIu32, e, e);
			seen[e / 8] |= (uint8_t)(1u << (e % 8));
		}
		if (!msg[0])
			continue;
		(*bad)++;
		if (report)
			fprintf(report, "ERROR: %s\n", msg);
		if (!s->problem[0])
			snprintf(s->problem, sizeof(s->problem), "block %" PRIu32 " points at data "
				 "block %" PRIu32 "%s", b, e, e >= s->blocks ? ", past the last" :
				 ", as another block does");
	}
	return count;
}

/*
 * Which data slots the map uses.  An entry out of range or sharing its slot
 * means a write would overwrite another block's data: such an image opens
 * read-only (check reports it).
 */
static int scan_map(struct vdi *s)
{
	int bad = 0;

	s->slot_used = calloc((size_t)s->blocks / 8 + 1, 1);
	if (!s->slot_used)
		return -ENOMEM;
	walk_map(s, s->slot_used, NULL, &bad);
	return 0;
}

static int64_t vdi_lookup(struct block_dev *bd, uint64_t block)
{
	struct vdi *s = bd->opaque;
	uint32_t e = s->bmap[block];

	if (!VDI_ALLOCATED(e))
		return 0;
	return (int64_t)(s->offset_data + (uint64_t)e * VDI_BLOCK_SIZE);
}

/* The slot QEMU would take (blocks_allocated), or the first free one if that is in use. */
static int64_t free_slot(struct vdi *s)
{
	uint32_t e = s->allocated;

	if (e < s->blocks && !((s->slot_used[e / 8] >> (e % 8)) & 1))
		return e;
	for (e = 0; e < s->blocks; e++)
		if (!((s->slot_used[e / 8] >> (e % 8)) & 1))
			return e;
	return -ENOSPC;
}

/* The map sector holding block's entry, as stored. */
static int write_map_sector(struct vdi *s, uint64_t block)
{
	uint64_t first = block / (VDI_SECTOR / 4) * (VDI_SECTOR / 4);
	uint8_t sec[VDI_SECTOR];
	size_t n = 0;

	for (uint64_t b = first; b < s->blocks && n < VDI_SECTOR; b++, n += 4)
		st_le32(sec + n, s->bmap[b]);
	return bfile_pwrite(s->map.bd, s->offset_bmap + first * 4, sec, n);
}

/*
 * vdi_co_pwritev's allocation: the whole slot written (zeroes around the
 * data), then the header's blocks_allocated, then the map entry, so a crash
 * leaves at worst an unreferenced slot.
 */
static int vdi_alloc(struct block_dev *bd, uint64_t block, uint64_t in, const void *buf,
		     size_t len)
{
	struct vdi *s = bd->opaque;
	int64_t slot = free_slot(s);
	uint8_t *data;
	int ret;

	if (slot < 0)
		return (int)slot;
	if (len == VDI_BLOCK_SIZE) {
		ret = bfile_pwrite(bd, s->offset_data + (uint64_t)slot * VDI_BLOCK_SIZE, buf, len);
	} else {
		data = calloc(1, VDI_BLOCK_SIZE);
		if (!data)
			return -ENOMEM;
		memcpy(data + in, buf, len);
		ret = bfile_pwrite(bd, s->offset_data + (uint64_t)slot * VDI_BLOCK_SIZE, data,
				   VDI_BLOCK_SIZE);
		free(data);
	}
	if (ret < 0)
		return ret;
	st_le32(s->header + H_ALLOCATED, s->allocated + 1);
	ret = bfile_pwrite(bd, 0, s->header, VDI_HEADER_SIZE);
	if (ret < 0)
		return ret;
	s->allocated++;
	s->bmap[block] = (uint32_t)slot;
	s->slot_used[slot / 8] |= (uint8_t)(1u << (slot % 8));
	return write_map_sector(s, block);
}

static void vdi_close(struct block_dev *bd)
{
	struct vdi *s = bd->opaque;

	if (!s)
		return;
	blockmap_destroy(&s->map);
	free(s->bmap);
	free(s->slot_used);
	free(s);
	bd->opaque = NULL;
}

static int load_map(struct block_dev *bd, struct vdi *s, char *err, size_t errlen)
{
	uint8_t *raw = blockmap_read_table(bd, s->offset_bmap, (uint64_t)s->blocks * 4,
					   "VDI block map", err, errlen);

	if (!raw)
		return -1;
	s->bmap = (uint32_t *)raw;
	for (uint32_t b = 0; b < s->blocks; b++)
		s->bmap[b] = ld_le32(raw + 4 * (size_t)b);
	if (scan_map(s) < 0)
		return block_err(err, errlen, "Could not allocate the VDI block map");
	if (s->problem[0] && !bd->read_only)
		return block_err(err, errlen, "VDI block map is corrupt (%s); it can only be opened "
				 "read-only", s->problem);
	return 0;
}

static int vdi_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct vdi *s = calloc(1, sizeof(*s));
	uint64_t disk_size;
	int ret;

	if (!s)
		return block_err(err, errlen, "out of memory");
	bd->opaque = s;
	blockmap_init(&s->map, bd, VDI_BLOCK_SIZE);
	ret = bfile_pread(bd, 0, s->header, VDI_HEADER_SIZE);
	if (ret < 0) {
		vdi_close(bd);
		return block_err(err, errlen, "Could not read the VDI header: %s", strerror(-ret));
	}
	disk_size = ld_le64(s->header + H_DISK_SIZE);
	if (disk_size > VDI_DISK_SIZE_MAX) {
		vdi_close(bd);
		return block_err(err, errlen, "Unsupported VDI image size (size is 0x%" PRIx64
				 ", max supported is 0x%" PRIx64 ")", disk_size, VDI_DISK_SIZE_MAX);
	}
	/* VBoxManage convertfromraw writes odd sizes; QEMU rounds them up to a sector. */
	disk_size = (disk_size + VDI_SECTOR - 1) / VDI_SECTOR * VDI_SECTOR;
	if (check_header(s->header, disk_size, err, errlen) < 0) {
		vdi_close(bd);
		return -1;
	}
	s->blocks = ld_le32(s->header + H_BLOCKS);
	s->allocated = ld_le32(s->header + H_ALLOCATED);
	s->type = ld_le32(s->header + H_TYPE);
	s->offset_bmap = ld_le32(s->header + H_OFFSET_BMAP);
	s->offset_data = ld_le32(s->header + H_OFFSET_DATA);
	if (load_map(bd, s, err, errlen) < 0) {
		vdi_close(bd);
		return -1;
	}
	s->map.lookup = vdi_lookup;
	s->map.alloc = vdi_alloc;
	/* vdi_co_block_status: a static image's slots may be holes in the file. */
	s->map.recurse = s->type == VDI_TYPE_STATIC;
	bd->size = disk_size;
	return 0;
}

static int vdi_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	return blockmap_pread(&((struct vdi *)bd->opaque)->map, off, buf, len);
}

static int vdi_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	return blockmap_pwrite(&((struct vdi *)bd->opaque)->map, off, buf, len);
}

static int vdi_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	return blockmap_write_zeroes(&((struct vdi *)bd->opaque)->map, off, len);
}

static int vdi_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags)
{
	return blockmap_status(&((struct vdi *)bd->opaque)->map, off, len, pnum, map, flags);
}

static int vdi_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}

static int vdi_get_info(struct block_dev *bd, struct block_info *info)
{
	info->cluster_size = VDI_BLOCK_SIZE;
	return 0;
}

/* vdi_co_check: the map, and blocks_allocated.  QEMU repairs nothing (-r: ENOTSUP). */
static int vdi_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		     FILE *report)
{
	struct vdi *s = bd->opaque;
	uint8_t *seen;
	uint32_t count;

	if (fix)
		return -ENOTSUP;
	seen = calloc((size_t)s->blocks / 8 + 1, 1);
	if (!seen) {
		res->check_errors++;
		return -ENOMEM;
	}
	count = walk_map(s, seen, report, &res->corruptions);
	free(seen);
	if (count != s->allocated) {
		if (report)
			fprintf(report, "ERROR: allocated blocks mismatch, is %" PRIu32 ", should be %"
				PRIu32 "\n", count, s->allocated);
		res->corruptions++;
	}
	return 0;
}

/* The header vdi_co_do_create writes. */
static void make_header(uint8_t *h, uint64_t size, uint32_t blocks, uint32_t map_bytes,
			bool is_static)
{
	memset(h, 0, VDI_HEADER_SIZE);
	memcpy(h, VDI_TEXT, sizeof(VDI_TEXT) - 1);
	st_le32(h + H_SIGNATURE, VDI_SIGNATURE);
	st_le32(h + H_VERSION, VDI_VERSION_1_1);
	st_le32(h + H_HEADER_SIZE, 0x180);
	st_le32(h + H_TYPE, is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
	st_le32(h + H_OFFSET_BMAP, VDI_HEADER_SIZE);
	st_le32(h + H_OFFSET_DATA, VDI_HEADER_SIZE + map_bytes);
	st_le32(h + H_SECTOR_SIZE, VDI_SECTOR);
	st_le64(h + H_DISK_SIZE, size);
	st_le32(h + H_BLOCK_SIZE, VDI_BLOCK_SIZE);
	st_le32(h + H_BLOCKS, blocks);
	st_le32(h + H_ALLOCATED, is_static ? blocks : 0);
	blockmap_uuid(h + H_UUID_IMAGE);
	blockmap_uuid(h + H_UUID_SNAP);
}

static int write_new(int fd, uint64_t size, bool is_static)
{
	uint32_t blocks = (uint32_t)((size + VDI_BLOCK_SIZE - 1) / VDI_BLOCK_SIZE);
	uint32_t map_bytes = (blocks * 4 + VDI_SECTOR - 1) / VDI_SECTOR * VDI_SECTOR;
	size_t total = VDI_HEADER_SIZE + map_bytes;
	uint8_t *buf = malloc(total);
	ssize_t w;

	if (!buf)
		return -ENOMEM;
	make_header(buf, size, blocks, map_bytes, is_static);
	memset(buf + VDI_HEADER_SIZE, 0, map_bytes);
	for (uint32_t b = 0; b < blocks; b++)
		st_le32(buf + VDI_HEADER_SIZE + 4 * (size_t)b, is_static ? b : VDI_UNALLOCATED);
	block_crash_point();
	w = pwrite(fd, buf, total, 0);
	free(buf);
	if (w != (ssize_t)total)
		return w < 0 ? -errno : -EIO;
	if (is_static && block_ftruncate(fd, total + (uint64_t)blocks * VDI_BLOCK_SIZE) < 0)
		return -errno;
	return 0;
}

static int vdi_create(const char *path, const struct block_create_opts *o, char *err,
		      size_t errlen)
{
	const struct block_fmt_opt *st = block_create_opt(o, "static");
	uint64_t size = (o->size + VDI_SECTOR - 1) / VDI_SECTOR * VDI_SECTOR;
	int fd, ret;

	if (o->backing_file)
		return block_err(err, errlen, "Backing file not supported for file format 'vdi'");
	if (size > VDI_DISK_SIZE_MAX || size < o->size)
		return block_err(err, errlen, "Unsupported VDI image size (size is 0x%" PRIx64
				 ", max supported is 0x%" PRIx64 ")", size, VDI_DISK_SIZE_MAX);
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	ret = write_new(fd, size, st && st->num);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}

/* vdi_create_opts of QEMU 7.2 (CONFIG_VDI_STATIC_IMAGE builds). */
static const struct block_opt_desc vdi_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "static", BLOCK_OPT_BOOL, "off", "VDI static (pre-allocated) image" },
	{ NULL, 0, NULL, NULL },
};

const struct block_driver block_vdi_driver = {
	.name = "vdi",
	.open = vdi_open,
	.close = vdi_close,
	.pread = vdi_pread,
	.pwrite = vdi_pwrite,
	.flush = vdi_flush,
	.write_zeroes = vdi_write_zeroes,
	.status = vdi_status,
	.create = vdi_create,
	.get_info = vdi_get_info,
	.check = vdi_check,
	.create_opts = vdi_create_opts,
};
