/*
 * qemu-img create -f vhdx, laid out as QEMU 7.2's vhdx_co_create does so
 * that both tools make the same files (spec §2.1):
 *   0       file identifier ("vhdxfile", creator)
 *   64 KiB  header 1, 128 KiB header 2, 192/256 KiB region tables
 *   1 MiB   log (log_size), then the BAT, then 1 MiB of metadata,
 *   5 MiB of slack, then payload blocks.
 */
#include "block/vhdx/vhdx.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* QEMU's vhdx_create_opts, in its order. */
const struct block_opt_desc vhdx_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size; max of 64TB." },
	{ "log_size", BLOCK_OPT_SIZE, "1048576", "Log size; min 1MB." },
	{ "block_size", BLOCK_OPT_SIZE, "0",
	  "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on image size." },
	{ "subformat", BLOCK_OPT_STR, NULL,
	  "VHDX format type, can be either 'dynamic' or 'fixed'. Default is 'dynamic'." },
	{ "block_state_zero", BLOCK_OPT_BOOL, NULL,
	  "Force use of payload blocks of type 'ZERO'. Non-standard, but default.  Do not set "
	  "to 'off' when using 'qemu-img convert' with subformat=dynamic." },
	{ NULL, 0, NULL, NULL },
};

struct vhdx_params {
	uint64_t size;
	uint64_t log_size;
	uint32_t block_size;
	bool fixed;
	bool zero_blocks;
	uint64_t bat_entries, bat_offset, bat_length, meta_offset, data_offset;
};

static uint64_t round_mib(uint64_t v)
{
	return (v + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB;
}

/* QEMU's defaults, roundings (vhdx_co_create_opts) and messages (vhdx_co_create). */
static int create_params(const struct block_create_opts *o, struct vhdx_params *p, char *err,
			 size_t errlen)
{
	const struct block_fmt_opt *v;
	uint64_t bs = 0;

	p->size = (o->size + 511) / 512 * 512;
	if (p->size > VHDX_MAX_SIZE)
		return block_err(err, errlen, "Image size too large; max of 64TB");
	p->log_size = VHDX_MiB;
	if ((v = block_create_opt(o, "log_size")))
		p->log_size = round_mib(v->num);
	if (p->log_size > UINT32_MAX)
		return block_err(err, errlen, "Log size must be smaller than 4 GB");
	if (p->log_size < VHDX_MiB)
		return block_err(err, errlen, "Log size must be a multiple of 1 MB");
	p->zero_blocks = true;
	if ((v = block_create_opt(o, "block_state_zero")))
		p->zero_blocks = v->num != 0;
	if ((v = block_create_opt(o, "subformat")) && strcmp(v->val, "dynamic")) {
		if (strcmp(v->val, "fixed"))
			return block_err(err, errlen, "Parameter 'subformat' does not accept value "
					 "'%s'", v->val);
		p->fixed = true;
	}
	if ((v = block_create_opt(o, "block_size"))) {
		bs = round_mib(v->num);
		if (bs > VHDX_BLOCK_MAX)
			bs = VHDX_BLOCK_MAX;
	}
	if (!bs) {
		/* "pretty arbitrary", QEMU says: they keep the BAT small. */
		if (p->size > (32ull << 40))
			bs = 64 * VHDX_MiB;
		else if (p->size > (100ull << 30))
			bs = 32 * VHDX_MiB;
		else if (p->size > (1ull << 30))
			bs = 16 * VHDX_MiB;
		else
			bs = 8 * VHDX_MiB;
	}
	if (bs & (bs - 1))
		return block_err(err, errlen, "Block size must be a power of two");
	p->block_size = (uint32_t)bs;
	return 0;
}

static void create_layout(struct vhdx_params *p)
{
	uint64_t chunk = VHDX_MAX_SECTORS_PER_BLOCK * 512 / p->block_size;
	uint32_t blocks = (uint32_t)((p->size + p->block_size - 1) / p->block_size);
	int bits = __builtin_ctzll(chunk);

	/* QEMU's vhdx_calc_bat_entries, whose 32-bit "blocks - 1" wraps for an empty disk. */
	p->bat_entries = blocks + ((uint32_t)(blocks - 1) >> bits);
	p->bat_offset = round_mib(VHDX_HEADER_SECTION_END + p->log_size);
	p->bat_length = round_mib(p->bat_entries * 8);
	p->meta_offset = round_mib(p->bat_offset + p->bat_length);
	p->data_offset = p->bat_offset + p->bat_length + 5 * VHDX_MiB;
}

static int write_all(int fd, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *b = buf;

	while (len) {
		ssize_t n = pwrite(fd, b, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		b += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_ident_headers(int fd, const struct vhdx_params *p)
{
	static const char creator[] = "Kestrel";
	uint8_t id[8 + 2 * sizeof(creator)] = "vhdxfile";
	struct vhdx_header h = { 0 };
	uint8_t buf[VHDX_HEADER_SIZE];
	uint8_t rnd[16];
	int ret;

	for (size_t i = 0; i < sizeof(creator); i++)
		st_le16(id + 8 + 2 * i, (uint16_t)creator[i]);	/* UTF-16LE (§2.1.1) */
	ret = write_all(fd, 0, id, sizeof(id));
	vhdx_guid_generate(h.file_write_guid);
	vhdx_guid_generate(h.data_write_guid);
	vhdx_guid_generate(rnd);
	h.seq = ld_le32(rnd);	/* QEMU starts from a random 32-bit number */
	h.version = 1;
	h.log_length = (uint32_t)p->log_size;
	h.log_offset = VHDX_HEADER_SECTION_END;
	for (int i = 0; i < 2 && ret == 0; i++, h.seq++) {
		vhdx_header_encode(&h, buf);
		ret = write_all(fd, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET, buf, sizeof(buf));
	}
	return ret;
}

static int write_regions(int fd, const struct vhdx_params *p)
{
	uint8_t *buf = calloc(1, VHDX_TABLE_SIZE);
	int ret;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, "regi", 4);
	st_le32(buf + 8, 2);
	memcpy(buf + 16, vhdx_bat_guid, 16);
	st_le64(buf + 32, p->bat_offset);
	st_le32(buf + 40, (uint32_t)p->bat_length);
	memcpy(buf + 48, vhdx_metadata_guid, 16);
	st_le64(buf + 64, p->meta_offset);
	st_le32(buf + 72, VHDX_MiB);
	vhdx_set_checksum(buf, VHDX_TABLE_SIZE, 4);
	ret = write_all(fd, VHDX_REGION1_OFFSET, buf, VHDX_TABLE_SIZE);
	if (ret == 0)
		ret = write_all(fd, VHDX_REGION2_OFFSET, buf, VHDX_TABLE_SIZE);
	free(buf);
	return ret;
}

/* QEMU's vhdx_create_bat: fixed disks point at preallocated blocks, zero mode says ZERO. */
static int write_bat(int fd, const struct vhdx_params *p)
{
	uint64_t chunk = VHDX_MAX_SECTORS_PER_BLOCK * 512 / p->block_size;
	uint64_t end = p->data_offset + (p->fixed ? p->size : 0), blocks;
	uint8_t *bat;
	int ret;

	if (block_ftruncate(fd, end) < 0)
		return -errno;
	if (!p->fixed && !p->zero_blocks)
		return 0;	/* all NOT_PRESENT: the zeroes the file already holds */
	bat = calloc(1, p->bat_length);
	if (!bat)
		return -ENOMEM;
	blocks = (p->size + p->block_size - 1) / p->block_size;
	for (uint64_t b = 0; b < blocks; b++) {
		uint64_t e = PAYLOAD_BLOCK_ZERO;
		if (!p->zero_blocks)
			e = round_mib(p->data_offset + b * p->block_size) |
			    PAYLOAD_BLOCK_FULLY_PRESENT;
		st_le64(bat + (b + b / chunk) * 8, e);
	}
	ret = write_all(fd, p->bat_offset, bat, p->bat_length);
	free(bat);
	return ret;
}

/* §2.6.2: the five required items, 64 KiB into the region. */
static int write_metadata(int fd, const struct vhdx_params *p)
{
	static const uint8_t *const ids[5] = {
		vhdx_file_param_guid, vhdx_virtual_size_guid, vhdx_page83_guid,
		vhdx_logical_sector_guid, vhdx_phys_sector_guid,
	};
	static const uint32_t len[5] = { 8, 8, 16, 4, 4 };
	uint8_t *buf = calloc(1, VHDX_TABLE_SIZE + 40), *item = NULL;
	uint32_t off = VHDX_TABLE_SIZE;
	int ret;

	if (!buf)
		return -ENOMEM;
	item = buf + VHDX_TABLE_SIZE;
	memcpy(buf, "metadata", 8);
	st_le16(buf + 10, 5);
	for (int i = 0; i < 5; i++) {
		uint8_t *e = buf + 32 + 32 * i;
		memcpy(e, ids[i], 16);
		st_le32(e + 16, off);
		st_le32(e + 20, len[i]);
		st_le32(e + 24, i ? 6 : 4);	/* IsRequired, and IsVirtualDisk but for the params */
		off += len[i];
	}
	st_le32(item, p->block_size);
	st_le32(item + 4, p->fixed ? 1 : 0);	/* LeaveBlockAllocated */
	st_le64(item + 8, p->size);
	vhdx_guid_generate(item + 16);
	st_le32(item + 32, 512);
	st_le32(item + 36, 512);
	ret = write_all(fd, p->meta_offset, buf, VHDX_TABLE_SIZE + 40);
	free(buf);
	return ret;
}

int vhdx_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen)
{
	struct vhdx_params p = { 0 };
	int fd, ret;

	if (o->backing_file)
		return block_err(err, errlen, "Backing file not supported for file format 'vhdx'");
	if (create_params(o, &p, err, errlen) < 0)
		return -1;
	create_layout(&p);
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	ret = write_ident_headers(fd, &p);
	if (ret == 0)
		ret = write_bat(fd, &p);
	if (ret == 0)
		ret = write_regions(fd, &p);
	if (ret == 0)
		ret = write_metadata(fd, &p);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}
