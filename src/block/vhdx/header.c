/*
 * VHDX header section (spec §2.1-2.2) and the structures it points at:
 * the two headers chosen by sequence number, the region table (§2.2.3) and
 * the metadata region (§2.6).  Every offset and length a file gives is
 * checked against the file and the spec's limits before use.
 */
#include "block/vhdx/vhdx.h"
#include "util/bytes.h"
#include "util/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Region and metadata item GUIDs (§2.2.3.1, §2.6.2), in on-disk byte order. */
const uint8_t vhdx_bat_guid[16] = {
	0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
	0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
const uint8_t vhdx_metadata_guid[16] = {
	0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
	0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
const uint8_t vhdx_file_param_guid[16] = {
	0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
	0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
const uint8_t vhdx_virtual_size_guid[16] = {
	0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
	0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
const uint8_t vhdx_page83_guid[16] = {
	0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
	0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
const uint8_t vhdx_logical_sector_guid[16] = {
	0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
	0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
const uint8_t vhdx_phys_sector_guid[16] = {
	0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
	0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
const uint8_t vhdx_parent_locator_guid[16] = {
	0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
	0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = crc32c(0, buf, crc_off);

	c = crc32c(c, zero, 4);
	return crc32c(c, buf + crc_off + 4, len - crc_off - 4);
}

void vhdx_set_checksum(uint8_t *buf, size_t len, size_t crc_off)
{
	st_le32(buf + crc_off, vhdx_checksum(buf, len, crc_off));
}

/* A random (version 4) GUID; the spec only asks that it be unique. */
void vhdx_guid_generate(uint8_t guid[16])
{
	size_t got = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		while (got < 16) {
			ssize_t n = read(fd, guid + got, 16 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fd);
	}
	for (; got < 16; got++)
		guid[got] = (uint8_t)random();
	guid[7] = (guid[7] & 0x0f) | 0x40;	/* data3's high nibble: version 4 */
	guid[8] = (guid[8] & 0x3f) | 0x80;
}

bool vhdx_guid_is_zero(const uint8_t guid[16])
{
	static const uint8_t zero[16];

	return !memcmp(guid, zero, 16);
}

bool vhdx_region_overlaps(const struct vhdx_state *s, uint64_t start, uint64_t len)
{
	uint64_t end = start + len;

	for (int i = 0; i < s->n_regions; i++)
		if (start < s->regions[i].end && end > s->regions[i].start)
			return true;
	return false;
}

int vhdx_region_add(struct vhdx_state *s, uint64_t start, uint64_t len)
{
	if (s->n_regions >= VHDX_MAX_REGIONS || start + len < start)
		return -EINVAL;
	s->regions[s->n_regions++] = (struct vhdx_region){ start, start + len };
	return 0;
}

/* §2.2.2: a header is valid with its signature, its checksum and version 1. */
static bool header_decode(struct vhdx_header *h, const uint8_t *buf)
{
	memcpy(h->raw, buf, VHDX_HEADER_SIZE);
	if (memcmp(buf, "head", 4) || vhdx_checksum(buf, VHDX_HEADER_SIZE, 4) != ld_le32(buf + 4))
		return false;
	h->seq = ld_le64(buf + 8);
	memcpy(h->file_write_guid, buf + 16, 16);
	memcpy(h->data_write_guid, buf + 32, 16);
	memcpy(h->log_guid, buf + 48, 16);
	h->log_version = ld_le16(buf + 64);
	h->version = ld_le16(buf + 66);
	h->log_length = ld_le32(buf + 68);
	h->log_offset = ld_le64(buf + 72);
	return h->version == 1;
}

void vhdx_header_encode(const struct vhdx_header *h, uint8_t *buf)
{
	memcpy(buf, h->raw, VHDX_HEADER_SIZE);
	memcpy(buf, "head", 4);
	st_le64(buf + 8, h->seq);
	memcpy(buf + 16, h->file_write_guid, 16);
	memcpy(buf + 32, h->data_write_guid, 16);
	memcpy(buf + 48, h->log_guid, 16);
	st_le16(buf + 64, h->log_version);
	st_le16(buf + 66, h->version);
	st_le32(buf + 68, h->log_length);
	st_le64(buf + 72, h->log_offset);
	vhdx_set_checksum(buf, VHDX_HEADER_SIZE, 4);
}

/*
 * §2.2.2: the valid header with the larger sequence number is current;
 * two valid headers with the same number are only accepted when identical
 * (Disk2VHD writes them so), as QEMU does.
 */
int vhdx_read_headers(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen)
{
	uint8_t *buf = malloc(VHDX_HEADER_SIZE);
	bool ok[2];
	int ret;

	if (!buf)
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	for (int i = 0; i < 2; i++) {
		ret = bfile_pread(bd, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET, buf,
				  VHDX_HEADER_SIZE);
		if (ret < 0) {
			free(buf);
			return block_err(err, errlen, "Could not read the VHDX headers: %s",
					 strerror(-ret));
		}
		ok[i] = header_decode(&s->hdr[i], buf);
	}
	free(buf);
	if (!ok[0] && !ok[1])
		return block_err(err, errlen, "No valid VHDX header found (both headers have a bad "
				 "signature, checksum or version)");
	if (ok[0] && ok[1] && s->hdr[0].seq == s->hdr[1].seq) {
		if (memcmp(s->hdr[0].raw, s->hdr[1].raw, VHDX_HEADER_SIZE))
			return block_err(err, errlen, "No valid VHDX header found (two different "
					 "headers with sequence number %llu)",
					 (unsigned long long)s->hdr[0].seq);
		s->cur = 0;
	} else {
		s->cur = ok[0] && (!ok[1] || s->hdr[0].seq > s->hdr[1].seq) ? 0 : 1;
	}
	if (!ok[1 - s->cur])
		s->hdr[1 - s->cur] = s->hdr[s->cur];	/* the next update rewrites it whole */
	s->log_offset = s->hdr[s->cur].log_offset;
	s->log_length = s->hdr[s->cur].log_length;
	return vhdx_region_add(s, s->log_offset, s->log_length) < 0
	       ? block_err(err, errlen, "VHDX log region overflows") : 0;
}

/* One header update (§2.2.2.1): the non-current header gets seq + 1. */
static int update_one(struct block_dev *bd, struct vhdx_state *s, bool new_data_guid,
		      const uint8_t *log_guid)
{
	int idx = 1 - s->cur;
	struct vhdx_header *h = &s->hdr[idx];
	uint8_t *buf;
	int ret;

	*h = s->hdr[s->cur];	/* reserved bytes too: both headers carry the same */
	h->seq = s->hdr[s->cur].seq + 1;
	memcpy(h->file_write_guid, s->session_guid, 16);
	if (new_data_guid)
		vhdx_guid_generate(h->data_write_guid);
	if (log_guid)
		memcpy(h->log_guid, log_guid, 16);
	buf = block_alloc_buf(VHDX_HEADER_SIZE);
	if (!buf)
		return -ENOMEM;
	vhdx_header_encode(h, buf);
	memcpy(h->raw, buf, VHDX_HEADER_SIZE);
	ret = bfile_pwrite(bd, idx ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET, buf,
			   VHDX_HEADER_SIZE);
	free(buf);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret == 0)
		s->cur = idx;
	return ret;
}

int vhdx_update_headers(struct block_dev *bd, struct vhdx_state *s, bool new_data_guid,
			const uint8_t *log_guid)
{
	int ret = update_one(bd, s, new_data_guid, log_guid);

	return ret < 0 ? ret : update_one(bd, s, new_data_guid, log_guid);
}

static int region_entry(struct vhdx_state *s, const uint8_t *e, int64_t file_size, bool *bat,
			bool *meta, char *err, size_t errlen)
{
	uint64_t off = ld_le64(e + 16);
	uint32_t len = ld_le32(e + 24);
	bool required = ld_le32(e + 28) & 1;

	if (vhdx_region_overlaps(s, off, len) || vhdx_region_add(s, off, len) < 0)
		return block_err(err, errlen, "VHDX region table entry at offset %llu overlaps "
				 "another region", (unsigned long long)off);
	if (!memcmp(e, vhdx_bat_guid, 16) || !memcmp(e, vhdx_metadata_guid, 16)) {
		bool is_bat = !memcmp(e, vhdx_bat_guid, 16);
		if (is_bat ? *bat : *meta)
			return block_err(err, errlen, "VHDX region table lists the %s region twice",
					 is_bat ? "BAT" : "metadata");
		/* §2.2.3.2: regions are 1 MiB aligned, past the header section. */
		if (off < VHDX_HEADER_SECTION_END || off % VHDX_MiB || len % VHDX_MiB || !len)
			return block_err(err, errlen, "VHDX %s region has an invalid offset or "
					 "length", is_bat ? "BAT" : "metadata");
		if (off + len > (uint64_t)file_size)
			return block_err(err, errlen, "VHDX %s region (offset %llu, length %u) lies "
					 "past the end of the file", is_bat ? "BAT" : "metadata",
					 (unsigned long long)off, len);
		if (is_bat) {
			*bat = true;
			s->bat_offset = off;
			s->bat_length = len;
		} else {
			*meta = true;
			s->meta_offset = off;
			s->meta_length = len;
		}
		return 0;
	}
	if (required)
		return block_err(err, errlen, "VHDX region table has a required region Kestrel "
				 "does not know");
	return 0;
}

/* §2.2.3: QEMU reads the first region table only; so do we. */
int vhdx_read_regions(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen)
{
	uint8_t *buf = malloc(VHDX_TABLE_SIZE);
	int64_t file_size = bfile_size(bd);
	bool bat = false, meta = false;
	uint32_t count;
	int ret;

	if (!buf)
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	ret = bfile_pread(bd, VHDX_REGION1_OFFSET, buf, VHDX_TABLE_SIZE);
	if (ret < 0) {
		ret = block_err(err, errlen, "Could not read the VHDX region table: %s",
				strerror(-ret));
		goto out;
	}
	ret = -1;
	if (memcmp(buf, "regi", 4)) {
		block_err(err, errlen, "VHDX region table has a bad signature");
		goto out;
	}
	if (vhdx_checksum(buf, VHDX_TABLE_SIZE, 4) != ld_le32(buf + 4)) {
		block_err(err, errlen, "VHDX region table has a bad checksum");
		goto out;
	}
	count = ld_le32(buf + 8);
	if (count > 2047) {	/* §2.2.3.1 */
		block_err(err, errlen, "VHDX region table has %u entries (at most 2047)", count);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++)
		if (region_entry(s, buf + 16 + 32 * i, file_size, &bat, &meta, err, errlen) < 0)
			goto out;
	if (!bat || !meta) {
		block_err(err, errlen, "VHDX region table lacks the %s region",
			  bat ? "metadata" : "BAT");
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

enum { MD_PARAMS, MD_SIZE, MD_PAGE83, MD_LSECT, MD_PSECT, MD_PARENT, MD_N };
static const uint8_t *const md_guids[MD_N] = {
	vhdx_file_param_guid, vhdx_virtual_size_guid, vhdx_page83_guid, vhdx_logical_sector_guid, vhdx_phys_sector_guid,
	vhdx_parent_locator_guid,
};
static const char *const md_names[MD_N] = {
	"file parameters", "virtual disk size", "page 83 data", "logical sector size",
	"physical sector size", "parent locator",
};
static const uint32_t md_min_len[MD_N] = { 8, 8, 16, 4, 4, 20 };

struct md_item {
	uint32_t off, len;
	bool present;
};

static int md_entry(struct vhdx_state *s, const uint8_t *e, struct md_item *items, char *err,
		    size_t errlen)
{
	uint32_t off = ld_le32(e + 16), len = ld_le32(e + 20), flags = ld_le32(e + 24);

	for (int k = 0; k < MD_N; k++) {
		if (memcmp(e, md_guids[k], 16))
			continue;
		if (items[k].present)
			return block_err(err, errlen, "VHDX metadata lists the %s twice",
					 md_names[k]);
		/* §2.6.1.2: items lie inside the region, past the 64 KiB table. */
		if (off < VHDX_TABLE_SIZE || len < md_min_len[k] || off > s->meta_length ||
		    len > s->meta_length - off)
			return block_err(err, errlen, "VHDX metadata item %s (offset %u, length %u) "
					 "lies outside the metadata region", md_names[k], off, len);
		items[k] = (struct md_item){ off, len, true };
		return 0;
	}
	if (flags & 4)	/* IsRequired */
		return block_err(err, errlen, "VHDX metadata has a required item Kestrel does "
				 "not know");
	return 0;
}

static int md_values(struct vhdx_state *s, const uint8_t *region, const struct md_item *items,
		     char *err, size_t errlen)
{
	uint32_t bits = ld_le32(region + items[MD_PARAMS].off + 4);

	s->block_size = ld_le32(region + items[MD_PARAMS].off);
	s->disk_size = ld_le64(region + items[MD_SIZE].off);
	s->logical_sector = ld_le32(region + items[MD_LSECT].off);
	s->physical_sector = ld_le32(region + items[MD_PSECT].off);
	s->fixed = bits & 1;
	if (bits & 2)
		return block_err(err, errlen, "VHDX differencing images (with a parent) are not "
				 "supported");
	if (s->block_size < VHDX_BLOCK_MIN || s->block_size > VHDX_BLOCK_MAX ||
	    (s->block_size & (s->block_size - 1)))
		return block_err(err, errlen, "VHDX block size %u is invalid (a power of two "
				 "from 1 MiB to 256 MiB)", s->block_size);
	if (s->logical_sector != 512 && s->logical_sector != 4096)
		return block_err(err, errlen, "VHDX logical sector size %u is invalid (512 or "
				 "4096)", s->logical_sector);
	if (s->disk_size > VHDX_MAX_SIZE || s->disk_size % s->logical_sector)
		return block_err(err, errlen, "VHDX virtual disk size %llu is invalid",
				 (unsigned long long)s->disk_size);
	s->chunk_ratio = (uint32_t)(VHDX_MAX_SECTORS_PER_BLOCK * s->logical_sector /
				    s->block_size);
	return 0;
}

/* §2.6: the five required items; a parent locator means a differencing disk. */
int vhdx_read_metadata(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen)
{
	struct md_item items[MD_N] = { { 0 } };
	uint8_t *buf;
	uint16_t count;
	int ret;

	buf = malloc(s->meta_length);
	if (!buf)
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	ret = bfile_pread(bd, s->meta_offset, buf, s->meta_length);
	if (ret < 0) {
		ret = block_err(err, errlen, "Could not read the VHDX metadata: %s",
				strerror(-ret));
		goto out;
	}
	ret = -1;
	if (memcmp(buf, "metadata", 8)) {
		block_err(err, errlen, "VHDX metadata table has a bad signature");
		goto out;
	}
	count = ld_le16(buf + 10);
	if (count > 2047) {	/* §2.6.1.1 */
		block_err(err, errlen, "VHDX metadata table has %u entries (at most 2047)", count);
		goto out;
	}
	for (uint16_t i = 0; i < count; i++)
		if (md_entry(s, buf + 32 + 32 * i, items, err, errlen) < 0)
			goto out;
	for (int k = 0; k < MD_PARENT; k++) {
		if (!items[k].present) {
			block_err(err, errlen, "VHDX metadata lacks the %s", md_names[k]);
			goto out;
		}
	}
	ret = md_values(s, buf, items, err, errlen);
out:
	free(buf);
	return ret;
}
