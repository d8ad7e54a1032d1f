/*
 * VHDX driver: open (headers, log replay, regions, metadata, BAT), payload
 * reads and writes through the Block Allocation Table (spec §2.5), info and
 * check.  Differencing images (a parent locator, PARTIALLY_PRESENT blocks)
 * are refused by name, as QEMU 7.2 refuses them.
 */
#include "block/vhdx/vhdx.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* §2.5: one sector bitmap entry follows every chunk_ratio payload entries. */
static uint64_t bat_index(const struct vhdx_state *s, uint64_t block)
{
	return block + block / s->chunk_ratio;
}

static uint64_t payload_blocks(const struct vhdx_state *s)
{
	return (s->disk_size + s->block_size - 1) / s->block_size;
}

static bool reads_zero(uint64_t entry)
{
	switch (entry & VHDX_BAT_STATE_MASK) {
	case PAYLOAD_BLOCK_NOT_PRESENT:
	case PAYLOAD_BLOCK_UNDEFINED:
	case PAYLOAD_BLOCK_ZERO:
	case PAYLOAD_BLOCK_UNMAPPED:
	case PAYLOAD_BLOCK_UNMAPPED_V095:
		return true;
	}
	return false;
}

/*
 * Each FULLY_PRESENT block lies inside the file and outside the log, BAT
 * and metadata regions.  With errcnt NULL the first problem fails (open);
 * otherwise each is counted and reported (check), as QEMU's
 * vhdx_check_bat_entries.
 */
static int check_bat(struct block_dev *bd, struct vhdx_state *s, int *errcnt, FILE *report,
		     char *err, size_t errlen)
{
	int64_t fsize = bfile_size(bd);
	uint64_t nblocks = payload_blocks(s);
	char msg[256];
	int ret = 0;

	if (fsize < 0)
		return block_err(err, errlen, "Could not determine the VHDX image file size");
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t i = bat_index(s, b), e = s->bat[i];
		uint64_t off = e & VHDX_BAT_OFFSET_MASK, blen = s->block_size;
		if ((e & VHDX_BAT_STATE_MASK) != PAYLOAD_BLOCK_FULLY_PRESENT)
			continue;
		if (s->disk_size - b * s->block_size < blen)
			blen = s->disk_size - b * s->block_size;
		msg[0] = 0;
		if (off >= (uint64_t)fsize)
			snprintf(msg, sizeof(msg), "VHDX BAT entry %llu start offset %llu points after "
				 "end of file (%lld). Image has probably been truncated.",
				 (unsigned long long)i, (unsigned long long)off, (long long)fsize);
		else if (off + blen > (uint64_t)fsize)
			snprintf(msg, sizeof(msg), "VHDX BAT entry %llu end offset %llu points after "
				 "end of file (%lld). Image has probably been truncated.",
				 (unsigned long long)i, (unsigned long long)(off + blen - 1),
				 (long long)fsize);
		else if (off < VHDX_HEADER_SECTION_END || vhdx_region_overlaps(s, off, s->block_size))
			snprintf(msg, sizeof(msg), "VHDX BAT entry %llu (offset %llu) overlaps the "
				 "image's metadata", (unsigned long long)i, (unsigned long long)off);
		if (!msg[0])
			continue;
		ret = -1;
		if (!errcnt)
			return block_err(err, errlen, "%s", msg);
		(*errcnt)++;
		if (report)
			fprintf(report, "%s\n", msg);
	}
	return ret;
}

static int load_bat(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen)
{
	uint64_t nblocks = payload_blocks(s);
	uint8_t *raw;
	int ret;

	s->bat_entries = nblocks ? bat_index(s, nblocks - 1) + 1 : 0;
	if (s->bat_entries > s->bat_length / 8)
		return block_err(err, errlen, "VHDX BAT region (%llu bytes) is too small for the "
				 "%llu entries a %llu byte disk needs",
				 (unsigned long long)s->bat_length,
				 (unsigned long long)s->bat_entries,
				 (unsigned long long)s->disk_size);
	/* bat_length was checked against the file size: the file justifies this. */
	s->bat = calloc(s->bat_entries ? s->bat_entries : 1, 8);
	raw = malloc(s->bat_entries ? s->bat_entries * 8 : 1);
	if (!s->bat || !raw) {
		free(raw);
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	}
	ret = bfile_pread(bd, s->bat_offset, raw, s->bat_entries * 8);
	if (ret < 0) {
		free(raw);
		return block_err(err, errlen, "Could not read the VHDX BAT: %s", strerror(-ret));
	}
	for (uint64_t i = 0; i < s->bat_entries; i++)
		s->bat[i] = ld_le64(raw + i * 8);
	free(raw);
	return 0;
}

static void vhdx_close(struct block_dev *bd)
{
	struct vhdx_state *s = bd->opaque;

	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->bat);
	free(s);
	bd->opaque = NULL;
}

static int vhdx_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct vhdx_state *s = calloc(1, sizeof(*s));
	uint8_t sig[8];
	int ret;

	if (!s)
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	pthread_mutex_init(&s->lock, NULL);
	bd->opaque = s;
	ret = bfile_pread(bd, 0, sig, sizeof(sig));
	if (ret < 0 || memcmp(sig, "vhdxfile", 8)) {
		block_err(err, errlen, "Image is not in VHDX format (no 'vhdxfile' signature)");
		goto fail;
	}
	/* §2.2.2: a fresh FileWriteGuid for the first header update of this open. */
	vhdx_guid_generate(s->session_guid);
	if (vhdx_read_headers(bd, s, err, errlen) < 0 || vhdx_log_open(bd, s, err, errlen) < 0 ||
	    vhdx_read_regions(bd, s, err, errlen) < 0 || vhdx_read_metadata(bd, s, err, errlen) < 0 ||
	    load_bat(bd, s, err, errlen) < 0)
		goto fail;
	if (!(bd->flags & BLOCK_CHECK) && check_bat(bd, s, NULL, NULL, err, errlen) < 0)
		goto fail;
	bd->size = s->disk_size;
	return 0;
fail:
	vhdx_close(bd);
	return -1;
}

static int vhdx_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct vhdx_state *s = bd->opaque;
	uint8_t *p = buf;

	while (len) {
		uint64_t b = off / s->block_size, boff = off % s->block_size, e;
		size_t n = s->block_size - boff < len ? (size_t)(s->block_size - boff) : len;
		int ret = 0;

		pthread_mutex_lock(&s->lock);
		e = s->bat[bat_index(s, b)];
		pthread_mutex_unlock(&s->lock);
		if (reads_zero(e))
			memset(p, 0, n);
		else if ((e & VHDX_BAT_STATE_MASK) == PAYLOAD_BLOCK_FULLY_PRESENT)
			ret = bfile_pread(bd, (e & VHDX_BAT_OFFSET_MASK) + boff, p, n);
		else
			ret = -EIO;	/* PARTIALLY_PRESENT needs a parent; 4 is undefined */
		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * A new payload block at the end of the file, 1 MiB aligned (§2.5.1: the
 * BAT holds offsets in MiB); the file grows over it so it reads as zeroes.
 */
static int alloc_block(struct block_dev *bd, struct vhdx_state *s, uint64_t *out)
{
	int64_t fsize = bfile_size(bd);
	uint64_t at;

	if (fsize < 0)
		return (int)fsize;
	at = ((uint64_t)fsize + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB;
	if (at + s->block_size > (1ull << 63) - 1)
		return -EFBIG;
	block_crash_point();
	if (ftruncate(bd->fd, (off_t)(at + s->block_size)) < 0)
		return -errno;
	*out = at;
	return 0;
}

/* Data first, then the BAT entry through the log: a crash never points at garbage. */
static int write_new_block(struct block_dev *bd, struct vhdx_state *s, uint64_t i,
			   uint64_t boff, const uint8_t *p, size_t n)
{
	uint64_t at = 0, old = s->bat[i];
	uint8_t le[8];
	int ret = alloc_block(bd, s, &at);

	if (ret == 0 && p)
		ret = bfile_pwrite(bd, at + boff, p, n);
	if (ret < 0)
		return ret;
	s->bat[i] = at | PAYLOAD_BLOCK_FULLY_PRESENT;
	st_le64(le, s->bat[i]);
	ret = vhdx_log_write_and_flush(bd, s, le, 8, s->bat_offset + i * 8);
	if (ret < 0)
		s->bat[i] = old;
	return ret;
}

static int vhdx_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct vhdx_state *s = bd->opaque;
	const uint8_t *p = buf;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = vhdx_user_visible_write(bd, s);
	pthread_mutex_unlock(&s->lock);
	while (ret == 0 && len) {
		uint64_t b = off / s->block_size, boff = off % s->block_size, i = bat_index(s, b), e;
		size_t n = s->block_size - boff < len ? (size_t)(s->block_size - boff) : len;
		bool present;

		/* Allocation takes the lock; a present block never moves, so its data needs none. */
		pthread_mutex_lock(&s->lock);
		e = s->bat[i];
		present = (e & VHDX_BAT_STATE_MASK) == PAYLOAD_BLOCK_FULLY_PRESENT;
		if (!present)
			ret = reads_zero(e) ? write_new_block(bd, s, i, boff, p, n) : -EIO;
		pthread_mutex_unlock(&s->lock);
		if (present)
			ret = bfile_pwrite(bd, (e & VHDX_BAT_OFFSET_MASK) + boff, p, n);
		p += n;
		off += n;
		len -= n;
	}
	return ret;
}

/* Blocks that read as zeroes stay as they are; allocated ones get zeroes written. */
static int vhdx_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct vhdx_state *s = bd->opaque;
	uint8_t *zero = NULL;
	int ret = 0;

	while (ret == 0 && len) {
		uint64_t b = off / s->block_size, boff = off % s->block_size, e;
		uint64_t n = s->block_size - boff < len ? s->block_size - boff : len;

		pthread_mutex_lock(&s->lock);
		e = s->bat[bat_index(s, b)];
		pthread_mutex_unlock(&s->lock);
		if (!reads_zero(e)) {
			for (uint64_t done = 0; ret == 0 && done < n; done += VHDX_MiB) {
				size_t k = n - done < VHDX_MiB ? (size_t)(n - done) : VHDX_MiB;
				if (!zero)
					zero = calloc(1, VHDX_MiB);
				ret = zero ? vhdx_pwrite(bd, off + done, zero, k) : -ENOMEM;
			}
		}
		off += n;
		len -= n;
	}
	free(zero);
	return ret;
}

static int vhdx_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}


static int vhdx_get_info(struct block_dev *bd, struct block_info *info)
{
	struct vhdx_state *s = bd->opaque;

	info->cluster_size = s->block_size;
	return 0;
}

/* QEMU's vhdx_co_check: a log replayed by this open counts as a fixed corruption. */
static int vhdx_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		      FILE *report)
{
	struct vhdx_state *s = bd->opaque;
	char err[8];

	if (s->log_replayed)
		res->corruptions_fixed++;
	check_bat(bd, s, &res->corruptions, report, err, sizeof(err));
	return 0;
}

const struct block_driver block_vhdx_driver = {
	.name = "vhdx",
	.open = vhdx_open,
	.close = vhdx_close,
	.pread = vhdx_pread,
	.pwrite = vhdx_pwrite,
	.flush = vhdx_flush,
	.write_zeroes = vhdx_write_zeroes,
	.status = block_status_all_data,	/* QEMU 7.2's vhdx has no block_status */
	.create = vhdx_create,
	.get_info = vhdx_get_info,
	.check = vhdx_check,
	.create_opts = vhdx_create_opts,
};
