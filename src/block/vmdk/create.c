/*
 * vmdk create with qemu-img 7.2's options and messages (QEMU's
 * vmdk_co_create_opts/vmdk_co_do_create): the five subformats, the
 * descriptor text as QEMU writes it, sparse extents laid out as
 * vmdk_init_extent lays them out (header, descriptor room, redundant grain
 * directory and tables, grain directory and tables, grains).
 */
#include "block/vmdk/vmdk.h"
#include "util/bytes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPLIT_SIZE	0x80000000ULL	/* twoGbMaxExtent*: QEMU's constant split */

/* QEMU's vmdk_create_opts, in its order (the "Formatting" line's). */
const struct block_opt_desc vmdk_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "adapter_type", BLOCK_OPT_STR, NULL,
	  "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX" },
	{ "backing_file", BLOCK_OPT_STR, NULL, "File name of a base image" },
	{ "backing_fmt", BLOCK_OPT_STR, NULL, "Must be 'vmdk' if present" },
	{ "compat6", BLOCK_OPT_BOOL, "off", "VMDK version 6 image" },
	{ "hwversion", BLOCK_OPT_STR, "undefined", "VMDK hardware version" },
	{ "toolsversion", BLOCK_OPT_STR, NULL, "VMware guest tools version" },
	{ "subformat", BLOCK_OPT_STR, NULL,
	  "VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | "
	  "twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} " },
	{ "zeroed_grain", BLOCK_OPT_BOOL, NULL,
	  "Enable efficient zero writes using the zeroed-grain GTE feature" },
	{ NULL, 0, NULL, NULL },
};

struct vmdk_create {
	uint64_t size;
	const char *adapter, *backing, *hw, *tools, *sub;
	bool compat6, zeroed, flat, split, compress;
	int heads;
	char dir[4096], prefix[4096], postfix[4096];
};

static const char *opt_str(const struct block_create_opts *o, const char *name)
{
	const struct block_fmt_opt *v = block_create_opt(o, name);
	return v ? v->val : NULL;
}

static bool opt_bool(const struct block_create_opts *o, const char *name)
{
	const struct block_fmt_opt *v = block_create_opt(o, name);
	return v && v->num;
}

static bool one_of(const char *v, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(v, *names))
			return true;
	return false;
}

/* QEMU's filename_decompose: directory, base name without extension, extension. */
static int decompose(const char *path, struct vmdk_create *c, char *err, size_t errlen)
{
	const char *base = strrchr(path, '/'), *dot;

	if (!*path)
		return block_err(err, errlen, "No filename provided");
	base = base ? base + 1 : path;
	if ((size_t)(base - path) >= sizeof(c->dir) || strlen(base) >= sizeof(c->prefix))
		return block_err(err, errlen, "File name too long");
	snprintf(c->dir, sizeof(c->dir), "%.*s", (int)(base - path), path);
	dot = strrchr(base, '.');
	snprintf(c->prefix, sizeof(c->prefix), "%.*s", dot ? (int)(dot - base) : (int)strlen(base),
		 base);
	snprintf(c->postfix, sizeof(c->postfix), "%s", dot ? dot : "");
	return 0;
}

static int parse_opts(const struct block_create_opts *o, struct vmdk_create *c, char *err,
		      size_t errlen)
{
	static const char *const adapters[] = { "ide", "buslogic", "lsilogic", "legacyESX", NULL };
	static const char *const subs[] = { "monolithicSparse", "monolithicFlat",
		"twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized", NULL };

	if (o->backing_fmt && strcmp(o->backing_fmt, "vmdk"))
		return block_err(err, errlen, "backing_file must be a vmdk image");
	c->size = (o->size + VMDK_SECTOR - 1) & ~(VMDK_SECTOR - 1);
	c->adapter = opt_str(o, "adapter_type");
	c->backing = o->backing_file;
	c->hw = opt_str(o, "hwversion");
	c->tools = opt_str(o, "toolsversion");
	c->compat6 = opt_bool(o, "compat6");
	c->sub = opt_str(o, "subformat");
	c->zeroed = opt_bool(o, "zeroed_grain");
	if (c->hw && !strcmp(c->hw, "undefined"))
		c->hw = NULL;
	if (c->adapter && !one_of(c->adapter, adapters))
		return block_err(err, errlen, "invalid parameter value: %s", c->adapter);
	if (!c->adapter)
		c->adapter = "ide";
	if (c->sub && !one_of(c->sub, subs))
		return block_err(err, errlen, "invalid parameter value: %s", c->sub);
	if (!c->sub)
		c->sub = "monolithicSparse";
	if (c->compat6) {
		if (c->hw)
			return block_err(err, errlen, "compat6 cannot be enabled with hwversion set");
		c->hw = "6";
	}
	if (!c->hw)
		c->hw = "4";
	if (!c->tools)
		c->tools = "2147483647";
	/* VMware's geometry for adapters other than IDE. */
	c->heads = strcmp(c->adapter, "ide") ? 255 : 16;
	c->split = strstr(c->sub, "twoGb") != NULL;
	c->flat = strstr(c->sub, "Flat") != NULL;
	c->compress = !strcmp(c->sub, "streamOptimized");
	if (c->flat && c->backing)
		return block_err(err, errlen, "Flat image can't have backing file");
	if (c->flat && c->zeroed)
		return block_err(err, errlen, "Flat image can't enable zeroed grain");
	return 0;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	return block_pwrite_fd(fd, off, buf, len);
}

/* A sparse extent of size bytes, as QEMU's vmdk_init_extent lays it out. */
static int init_sparse(int fd, uint64_t size, const struct vmdk_create *c)
{
	uint64_t grains = (size / VMDK_SECTOR + 127) / 128;
	uint32_t gt_size = 4, gt_count = (uint32_t)((grains + 511) / 512);
	uint32_t gd_sectors = (gt_count * 4 + 511) / 512;
	uint64_t rgd = 21, gd = rgd + gd_sectors + (uint64_t)gt_size * gt_count;
	uint64_t grain_off = (gd + gd_sectors + (uint64_t)gt_size * gt_count + 127) / 128 * 128;
	uint8_t h[512] = { 0 };
	uint32_t *dir;
	int ret;

	st_be32(h, VMDK4_MAGIC);
	st_le32(h + 4, c->compress ? 3 : c->zeroed ? 2 : 1);
	st_le32(h + 8, VMDK4_FLAG_RGD | VMDK4_FLAG_NL_DETECT |
		(c->compress ? VMDK4_FLAG_COMPRESS | VMDK4_FLAG_MARKER : 0) |
		(c->zeroed ? VMDK4_FLAG_ZERO_GRAIN : 0));
	st_le64(h + 12, size / VMDK_SECTOR);
	st_le64(h + 20, 128);
	st_le64(h + 28, 1);
	st_le64(h + 36, 20);
	st_le32(h + 44, 512);
	st_le64(h + 48, rgd);
	st_le64(h + 56, gd);
	st_le64(h + 64, grain_off);
	memcpy(h + 73, "\n \r\n", 4);
	st_le16(h + 77, c->compress ? VMDK4_COMPRESS_DEFLATE : 0);
	/* The header fields up to compressAlgorithm; the rest of the sector stays zero. */
	ret = write_all(fd, h, 79, 0);
	block_crash_point();
	if (ret == 0 && block_ftruncate(fd, grain_off * VMDK_SECTOR) < 0)
		ret = -errno;
	if (ret < 0)
		return ret;
	dir = calloc(gd_sectors ? gd_sectors : 1, VMDK_SECTOR);
	if (!dir)
		return -ENOMEM;
	for (uint32_t i = 0; i < gt_count; i++)
		st_le32(&dir[i], (uint32_t)(rgd + gd_sectors + (uint64_t)i * gt_size));
	ret = write_all(fd, dir, (size_t)gd_sectors * VMDK_SECTOR, rgd * VMDK_SECTOR);
	for (uint32_t i = 0; i < gt_count; i++)
		st_le32(&dir[i], (uint32_t)(gd + gd_sectors + (uint64_t)i * gt_size));
	if (ret == 0)
		ret = write_all(fd, dir, (size_t)gd_sectors * VMDK_SECTOR, gd * VMDK_SECTOR);
	free(dir);
	return ret;
}

/* Extent idx (1...) of a split or flat image: QEMU's names -f001, -s001, -flat. */
static char *extent_name(const struct vmdk_create *c, int idx, bool rel)
{
	char name[8300];

	if (c->split)
		snprintf(name, sizeof(name), "%s-%c%03d%s", c->prefix, c->flat ? 'f' : 's', idx,
			 c->postfix);
	else
		snprintf(name, sizeof(name), "%s-flat%s", c->prefix, c->postfix);
	if (rel)
		return strdup(name);
	{
		char full[12400];
		snprintf(full, sizeof(full), "%s%s", c->dir, name);
		return strdup(full);
	}
}

static int make_extent(const char *path, uint64_t size, const struct vmdk_create *c, char *err,
		       size_t errlen)
{
	int fd = block_create_file(path, err, errlen), ret = 0;

	if (fd < 0)
		return -1;
	if (c->flat) {
		block_crash_point();
		if (block_ftruncate(fd, size) < 0)
			ret = -errno;
	} else {
		ret = init_sparse(fd, size, c);
	}
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}

/* The parent's CID (vmdk_co_do_create opens the backing file to read it). */
static int parent_cid(const char *path, const char *backing, uint32_t *cid, char *err,
		      size_t errlen)
{
	char *full = block_backing_path(path, backing), msg[1024];
	struct block_dev *b;
	int ret;

	if (!full)
		return block_err(err, errlen, "out of memory");
	ret = block_open(full, NULL, BLOCK_RDONLY | BLOCK_NO_BACKING | BLOCK_UNSAFE_PROBE, &b,
			 msg, sizeof(msg));
	if (ret < 0) {
		ret = block_err(err, errlen, "Could not open '%s': %s", full, msg);
		free(full);
		return ret;
	}
	free(full);
	if (strcmp(block_format_name(b), "vmdk")) {
		ret = block_err(err, errlen, "Invalid backing file format: %s. Must be vmdk",
				block_format_name(b));
	} else {
		*cid = ((struct vmdk_state *)b->opaque)->cid;
	}
	block_close(b);
	return ret;
}

static uint32_t random_cid(void)
{
	uint32_t v = 0;
	FILE *f = fopen("/dev/urandom", "re");

	if (!f || fread(&v, sizeof(v), 1, f) != 1)
		v = (uint32_t)random() ^ (uint32_t)getpid();
	if (f)
		fclose(f);
	return v;
}

/* QEMU's descriptor template, byte for byte. */
static char *descriptor(const struct vmdk_create *c, uint32_t pcid, const char *lines)
{
	char parent[4200] = "", *d = NULL;

	if (c->backing)
		snprintf(parent, sizeof(parent), "parentFileNameHint=\"%s\"", c->backing);
	if (asprintf(&d, "# Disk DescriptorFile\nversion=1\nCID=%" PRIx32 "\nparentCID=%" PRIx32
		     "\ncreateType=\"%s\"\n%s\n# Extent description\n%s\n# The Disk Data Base\n"
		     "#DDB\n\nddb.virtualHWVersion = \"%s\"\nddb.geometry.cylinders = \"%" PRId64
		     "\"\nddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"63\"\n"
		     "ddb.adapterType = \"%s\"\nddb.toolsVersion = \"%s\"\n", random_cid(), pcid,
		     c->sub, parent, lines, c->hw,
		     (int64_t)(c->size / (63ULL * (uint64_t)c->heads * VMDK_SECTOR)), c->heads,
		     c->adapter, c->tools) < 0)
		return NULL;
	return d;
}

/* The extent lines, each extent file made as it is named. */
static int make_extents(const char *path, const struct vmdk_create *c, char **lines, char *err,
			size_t errlen)
{
	uint64_t done = 0, step = c->split ? SPLIT_SIZE : c->size;
	int idx = 1;

	*lines = calloc(1, 1);
	if (!*lines)
		return block_err(err, errlen, "out of memory");
	if (!c->split && !c->flat) {
		const char *base = strrchr(path, '/');
		char *l;
		if (asprintf(&l, "RW %" PRIu64 " SPARSE \"%s\"\n", (uint64_t)(c->size / VMDK_SECTOR),
			     base ? base + 1 : path) < 0)
			return block_err(err, errlen, "out of memory");
		free(*lines);
		*lines = l;
		return 0;
	}
	for (; done < c->size; idx++) {
		uint64_t n = c->size - done < step ? c->size - done : step;
		char *full = extent_name(c, idx, false), *rel = extent_name(c, idx, true), *l = NULL;
		int ret = full && rel ? make_extent(full, n, c, err, errlen) : -1;
		if (ret == 0) {
			int w = asprintf(&l, "%s" "RW %" PRIu64 " %s \"%s\"%s\n", *lines,
					 (uint64_t)((n + VMDK_SECTOR - 1) / VMDK_SECTOR), c->flat ? "FLAT" : "SPARSE",
					 rel, c->flat ? " 0" : "");
			ret = w < 0 ? block_err(err, errlen, "out of memory") : 0;
		}
		free(full);
		free(rel);
		if (ret < 0)
			return -1;
		free(*lines);
		*lines = l;
		done += n;
	}
	return 0;
}

int vmdk_create(const char *path, const struct block_create_opts *o, char *err, size_t errlen)
{
	struct vmdk_create c;
	uint32_t pcid = 0xffffffff;
	char *lines = NULL, *desc = NULL;
	int fd, ret = -1;

	memset(&c, 0, sizeof(c));
	if (parse_opts(o, &c, err, errlen) < 0 || decompose(path, &c, err, errlen) < 0)
		return -1;
	fd = block_create_file(path, err, errlen);
	if (fd < 0)
		return -1;
	if (!c.split && !c.flat && init_sparse(fd, c.size, &c) < 0) {
		block_err(err, errlen, "Could not create '%s': %s", path, strerror(EIO));
		goto out;
	}
	if (c.backing && parent_cid(path, c.backing, &pcid, err, errlen) < 0)
		goto out;
	if (make_extents(path, &c, &lines, err, errlen) < 0)
		goto out;
	desc = descriptor(&c, pcid, lines);
	if (!desc) {
		block_err(err, errlen, "out of memory");
		goto out;
	}
	if (write_all(fd, desc, strlen(desc), !c.split && !c.flat ? 0x200 : 0) < 0) {
		block_err(err, errlen, "Could not write description: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(lines);
	free(desc);
	if (close(fd) < 0 && ret == 0)
		ret = block_err(err, errlen, "Could not write description: %s", strerror(errno));
	return ret;
}
