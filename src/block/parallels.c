/*
 * parallels: Parallels/Virtuozzo expanding disks (QEMU's
 * docs/interop/parallels.txt).  A 64-byte header, then the BAT: one 32-bit
 * entry per cluster ("track" of `tracks` sectors), 0 for a cluster that
 * reads as zeroes, else its place in the file (in sectors for the old
 * "WithoutFreeSpace" magic, in clusters for "WithouFreSpacExt").  Clusters
 * are appended at data_end; the file grows ahead by prealloc-size and is cut
 * back to data_end on close, as QEMU's driver does.  The header's inuse
 * field marks an image open for writing; one left set was not closed and
 * only check -r may open it read-write.
 */
#include "block/block_int.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRL_MAGIC_OLD		"WithoutFreeSpace"
#define PRL_MAGIC_EXT		"WithouFreSpacExt"
#define PRL_VERSION		2
#define PRL_INUSE		0x746F6E59u
#define PRL_HEADER		64
#define PRL_HEADS		16
#define PRL_SEC_IN_CYL		32
#define PRL_DEFAULT_CLUSTER	(1u << 20)
#define PRL_IMAGE_FACTOR	(1ull << 32)	/* QEMU's MAX_PARALLELS_IMAGE_FACTOR */
#define PRL_PREALLOC_SIZE	(128ull << 20)	/* QEMU's prealloc-size default */
#define PRL_BAT_SLACK		(16u << 20)	/* BAT bytes allowed past the end of the file */

/* Header fields (parallels.txt "Header"), byte offsets. */
#define H_VERSION	16
#define H_TRACKS	28
#define H_BAT_ENTRIES	32
#define H_NB_SECTORS	36
#define H_INUSE		44
#define H_DATA_OFF	48
#define H_EXT_OFF	56

struct prl {
	pthread_mutex_t lock;
	uint8_t header[PRL_HEADER];
	uint32_t tracks;		/* sectors per cluster */
	uint64_t cluster_size;
	uint32_t off_mult;		/* BAT unit in sectors: 1 or tracks */
	bool old_magic;			/* "WithoutFreeSpace": 32-bit sector count */
	uint32_t bat_size;
	uint32_t *bat;
	uint64_t bat_end;		/* bytes: header + BAT; no cluster may lie there */
	uint64_t data_end;		/* sectors: where the next cluster goes */
	uint64_t file_len;		/* bytes the file has (prealloc included) */
	bool unclean;			/* inuse was set when opened */
};

static uint64_t bat_off(uint32_t i)
{
	return PRL_HEADER + 4ull * i;
}

/* Byte offset of cluster i's data, 0 when it has none. */
static uint64_t cluster_host(const struct prl *s, uint64_t i)
{
	if (i >= s->bat_size)
		return 0;
	return (uint64_t)s->bat[i] * s->off_mult * 512;
}

/* parallels_open's header checks, with QEMU's messages. */
static int parse_header(struct prl *s, int64_t fsize, char *err, size_t errlen)
{
	const uint8_t *h = s->header;
	uint64_t bat_bytes;

	if (ld_le32(h + H_VERSION) != PRL_VERSION)
		return block_err(err, errlen, "Image not in Parallels format");
	s->tracks = ld_le32(h + H_TRACKS);
	s->old_magic = !memcmp(h, PRL_MAGIC_OLD, 16);
	if (s->old_magic)
		s->off_mult = 1;
	else if (!memcmp(h, PRL_MAGIC_EXT, 16))
		s->off_mult = s->tracks;
	else
		return block_err(err, errlen, "Image not in Parallels format");
	if (s->tracks == 0)
		return block_err(err, errlen, "Invalid image: Zero sectors per track");
	if (s->tracks > INT32_MAX / 513)
		return block_err(err, errlen, "Invalid image: Too big cluster");
	s->cluster_size = (uint64_t)s->tracks * 512;
	s->bat_size = ld_le32(h + H_BAT_ENTRIES);
	if (s->bat_size > INT32_MAX / 4)
		return block_err(err, errlen, "Catalog too large");
	bat_bytes = 4ull * s->bat_size;
	/* QEMU reads a BAT past the end of the file as zeroes; bounded here. */
	if (bat_bytes > PRL_BAT_SLACK && bat_off(s->bat_size) > (uint64_t)fsize)
		return block_err(err, errlen, "Catalog of %" PRIu32 " entries runs past the end "
				 "of the file", s->bat_size);
	s->bat_end = bat_off(s->bat_size);
	return 0;
}

static int load_bat(struct block_dev *bd, struct prl *s, char *err, size_t errlen)
{
	uint64_t data_off = ld_le32(s->header + H_DATA_OFF);
	int ret;

	s->bat = calloc(s->bat_size ? s->bat_size : 1, 4);
	if (!s->bat)
		return block_err(err, errlen, "out of memory");
	ret = bfile_pread(bd, PRL_HEADER, s->bat, 4ull * s->bat_size);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the BAT: %s", strerror(-ret));
	s->data_end = data_off ? data_off : (s->bat_end + 511) / 512;
	/* Never allocate over the header or the BAT, whatever data_off says. */
	if (s->data_end * 512 < s->bat_end)
		s->data_end = (s->bat_end + 511) / 512;
	for (uint32_t i = 0; i < s->bat_size; i++) {
		s->bat[i] = ld_le32(&s->bat[i]);
		uint64_t sect = (uint64_t)s->bat[i] * s->off_mult;
		if (s->bat[i] && sect >= s->data_end)
			s->data_end = sect + s->tracks;
	}
	return 0;
}

static int write_header_field(struct block_dev *bd, struct prl *s, unsigned off, uint32_t v)
{
	st_le32(s->header + off, v);
	return bfile_pwrite(bd, off, s->header + off, 4);
}

static void prl_free(struct prl *s)
{
	if (!s)
		return;
	free(s->bat);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int prl_open_state(struct block_dev *bd, struct prl *s, char *err, size_t errlen)
{
	int64_t fsize = bfile_size(bd);
	uint64_t sectors;
	int ret;

	if (fsize < 0)
		return block_err(err, errlen, "Could not get the size: %s", strerror((int)-fsize));
	ret = bfile_pread(bd, 0, s->header, PRL_HEADER);
	if (ret < 0)
		return block_err(err, errlen, "Could not read the header: %s", strerror(-ret));
	if (parse_header(s, fsize, err, errlen) < 0 || load_bat(bd, s, err, errlen) < 0)
		return -1;
	sectors = ld_le64(s->header + H_NB_SECTORS);
	if (s->old_magic)
		sectors &= 0xffffffffu;
	if (sectors > INT64_MAX / 512)
		return block_err(err, errlen, "Invalid image: virtual size too large");
	bd->size = sectors * 512;
	s->file_len = (uint64_t)fsize;
	s->unclean = ld_le32(s->header + H_INUSE) == PRL_INUSE;
	if (bd->read_only)
		return 0;
	if (s->unclean && !(bd->flags & BLOCK_CHECK))
		return block_err(err, errlen, "parallels: Image was not closed correctly; "
				 "cannot be opened read/write");
	ret = write_header_field(bd, s, H_INUSE, PRL_INUSE);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret < 0)
		return block_err(err, errlen, "Could not mark the image in use: %s", strerror(-ret));
	return 0;
}

static int prl_open(struct block_dev *bd, char *err, size_t errlen)
{
	struct prl *s = calloc(1, sizeof(*s));

	if (!s)
		return block_err(err, errlen, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	if (prl_open_state(bd, s, err, errlen) < 0) {
		prl_free(s);
		return -1;
	}
	bd->opaque = s;
	return 0;
}

/* parallels_close: inuse cleared, the file cut to the last cluster (drops preallocation). */
static void prl_close(struct block_dev *bd)
{
	struct prl *s = bd->opaque;

	if (!s)
		return;
	if (!bd->read_only) {
		block_crash_point();
		if (ftruncate(bd->fd, (off_t)(s->data_end * 512)) == 0 &&
		    write_header_field(bd, s, H_INUSE, 0) == 0)
			bfile_flush(bd);
	}
	prl_free(s);
	bd->opaque = NULL;
}

/*
 * A run of clusters from off with one state: *host is 0 (unallocated) or
 * where off lies.  One step per BAT entry at most: past the BAT everything
 * is unallocated, however large the disk says it is.
 */
static uint64_t run_of(const struct prl *s, uint64_t off, uint64_t len, uint64_t *host)
{
	uint64_t cs = s->cluster_size, i0 = off / cs, first = cluster_host(s, i0);
	uint64_t done = cs - off % cs;

	*host = first ? first + off % cs : 0;
	for (uint64_t i = i0 + 1; done < len; i++, done += cs) {
		if (i >= s->bat_size) {
			if (!first)
				done = len;
			break;
		}
		if (first ? cluster_host(s, i) != first + (i - i0) * cs : cluster_host(s, i) != 0)
			break;
	}
	return done < len ? done : len;
}

static int prl_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct prl *s = bd->opaque;
	uint8_t *p = buf;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	while (len && ret == 0) {
		uint64_t host, n = run_of(s, off, len, &host);
		if (host)
			ret = bfile_pread(bd, host, p, (size_t)n);
		else
			memset(p, 0, (size_t)n);
		off += n;
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * Room for n more clusters at data_end: the file grows by prealloc-size
 * beyond what is needed, as zeroes (QEMU's falloc mode), so that later
 * allocations cost no syscall; close gives back what stayed unused.
 */
static int prl_grow(struct block_dev *bd, struct prl *s, uint64_t n)
{
	uint64_t need = (s->data_end + n * s->tracks) * 512, to;

	if (need <= s->file_len)
		return 0;
	to = need + PRL_PREALLOC_SIZE;
	block_crash_point();
	if (fallocate(bd->fd, 0, (off_t)s->file_len, (off_t)(to - s->file_len)) < 0 &&
	    ftruncate(bd->fd, (off_t)to) < 0)
		return -errno;
	s->file_len = to;
	return 0;
}

/* Cluster i gets the next one at data_end (kept a whole BAT unit). */
static int prl_alloc(struct block_dev *bd, struct prl *s, uint64_t i)
{
	uint64_t sect = (s->data_end + s->off_mult - 1) / s->off_mult * s->off_mult;
	int ret;

	if (i >= s->bat_size)
		return -EIO;	/* the BAT does not cover this part of the disk */
	if (sect / s->off_mult > UINT32_MAX)
		return -EFBIG;
	s->data_end = sect;
	ret = prl_grow(bd, s, 1);
	if (ret < 0)
		return ret;
	s->bat[i] = (uint32_t)(sect / s->off_mult);
	s->data_end = sect + s->tracks;
	return 0;
}

/* The BAT entries [lo, hi) as they are now, after the data they point at. */
static int write_bat(struct block_dev *bd, struct prl *s, uint64_t lo, uint64_t hi)
{
	uint8_t *buf;
	int ret;

	if (hi <= lo)
		return 0;
	buf = malloc((size_t)(hi - lo) * 4);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = lo; i < hi; i++)
		st_le32(buf + (i - lo) * 4, s->bat[i]);
	ret = bfile_pwrite(bd, bat_off((uint32_t)lo), buf, (size_t)(hi - lo) * 4);
	free(buf);
	return ret;
}

/* A cluster whose data would land on the header or BAT is refused, not written. */
static bool host_ok(const struct prl *s, uint64_t host)
{
	return host >= s->bat_end;
}

static int prl_pwrite_locked(struct block_dev *bd, struct prl *s, uint64_t off, const uint8_t *p,
			     size_t len)
{
	uint64_t cs = s->cluster_size, lo = UINT64_MAX, hi = 0;
	int ret = 0, wret;

	while (len && ret == 0) {
		uint64_t i = off / cs, in = off % cs;
		size_t n = cs - in < len ? (size_t)(cs - in) : len;

		if (!cluster_host(s, i) && (ret = prl_alloc(bd, s, i)) == 0) {
			lo = i < lo ? i : lo;
			hi = i + 1 > hi ? i + 1 : hi;
		}
		if (ret == 0)
			ret = host_ok(s, cluster_host(s, i)) ?
			      bfile_pwrite(bd, cluster_host(s, i) + in, p, n) : -EIO;
		off += n;
		p += n;
		len -= n;
	}
	wret = write_bat(bd, s, lo, hi);
	return ret < 0 ? ret : wret;
}

static int prl_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct prl *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = prl_pwrite_locked(bd, s, off, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Unallocated clusters already read as zeroes; allocated ones get zeroes written. */
static int prl_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	struct prl *s = bd->opaque;
	uint8_t *zero = calloc(1, 1 << 16);
	int ret = 0;

	(void)may_unmap;
	if (!zero)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	while (len && ret == 0) {
		uint64_t host, n = run_of(s, off, len, &host);
		for (uint64_t d = 0; host && d < n && ret == 0; d += 1 << 16) {
			size_t k = n - d < (1 << 16) ? (size_t)(n - d) : (1 << 16);
			ret = host_ok(s, host) ? bfile_pwrite(bd, host + d, zero, k) : -EIO;
		}
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&s->lock);
	free(zero);
	return ret;
}

static int prl_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}

/* QEMU's parallels driver has no bdrv_get_info: no cluster size or dirty flag in info. */
static int prl_get_info(struct block_dev *bd, struct block_info *info)
{
	(void)bd;
	(void)info;
	return -ENOTSUP;
}

static int prl_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags)
{
	struct prl *s = bd->opaque;
	uint64_t host;

	pthread_mutex_lock(&s->lock);
	*pnum = run_of(s, off, len, &host);
	pthread_mutex_unlock(&s->lock);
	*flags = 0;
	if (host) {
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		*map = host;
	}
	return 0;
}

/* parallels_co_check's walk and messages: clusters past the end, unclean close, tail leaks. */
static void check_bat(struct prl *s, uint64_t size, unsigned fix, struct block_check_result *res,
		      FILE *report, bool *dirty)
{
	const char *act = fix & BLOCK_FIX_ERRORS ? "Repairing" : "ERROR";
	uint64_t prev = 0, high = 0;

	for (uint32_t i = 0; i < s->bat_size; i++) {
		uint64_t off = cluster_host(s, i);
		if (!off) {
			prev = 0;
			continue;
		}
		if (off > size) {
			if (report)
				fprintf(report, "%s cluster %" PRIu32 " is outside image\n", act, i);
			res->corruptions++;
			if (fix & BLOCK_FIX_ERRORS) {
				s->bat[i] = 0;
				res->corruptions_fixed++;
				*dirty = true;
				prev = 0;
				continue;
			}
		}
		res->allocated_clusters++;
		high = off > high ? off : high;
		if (prev && prev + s->cluster_size != off)
			res->fragmented_clusters++;
		prev = off;
	}
	res->image_end_offset = high + s->cluster_size;
}

/* Space after the last cluster: counted in clusters, cut off with -r leaks. */
static int check_tail(struct block_dev *bd, struct prl *s, uint64_t size, unsigned fix,
		      struct block_check_result *res, FILE *report)
{
	uint64_t end = res->image_end_offset, keep = (s->bat_end + 511) & ~511ull;
	int64_t count;

	if (size <= end)
		return 0;
	count = (int64_t)((size - end + s->cluster_size - 1) / s->cluster_size);
	if (report)
		fprintf(report, "%s space leaked at the end of the image %" PRIu64 "\n",
			fix & BLOCK_FIX_LEAKS ? "Repairing" : "ERROR", size - end);
	res->leaks += (int)count;
	if (!(fix & BLOCK_FIX_LEAKS))
		return 0;
	/* QEMU cuts at the last cluster; never into the header and BAT. */
	block_crash_point();
	if (ftruncate(bd->fd, (off_t)(end > keep ? end : keep)) < 0) {
		res->check_errors++;
		return -errno;
	}
	s->file_len = end > keep ? end : keep;
	res->leaks_fixed += (int)count;
	return 0;
}

static int prl_check_locked(struct block_dev *bd, struct prl *s, unsigned fix,
			    struct block_check_result *res, FILE *report)
{
	int64_t size = bfile_size(bd);
	bool dirty = false;
	int ret;

	if (size < 0) {
		res->check_errors++;
		return (int)size;
	}
	size = (size + 511) & ~511ll;	/* bdrv_getlength counts whole sectors */
	if (s->unclean) {
		if (report)
			fprintf(report, "%s image was not closed correctly\n",
				fix & BLOCK_FIX_ERRORS ? "Repairing" : "ERROR");
		res->corruptions++;
		if (fix & BLOCK_FIX_ERRORS) {
			res->corruptions_fixed++;
			s->unclean = false;	/* close clears inuse */
		}
	}
	res->total_clusters = s->bat_size;
	check_bat(s, (uint64_t)size, fix, res, report, &dirty);
	if (dirty && (ret = write_bat(bd, s, 0, s->bat_size)) < 0) {
		res->check_errors++;
		return ret;
	}
	return check_tail(bd, s, (uint64_t)size, fix, res, report);
}

static int prl_check(struct block_dev *bd, unsigned fix, struct block_check_result *res,
		     FILE *report)
{
	struct prl *s = bd->opaque;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = prl_check_locked(bd, s, fix, res, report);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* parallels_co_create: header sector, then the BAT zeroed up to a whole cluster. */
static int prl_create_write(int fd, uint64_t size, uint64_t cl)
{
	uint64_t entries = (size + cl - 1) / cl;
	uint64_t bat_bytes = (bat_off(0) + 4 * entries + cl - 1) / cl * cl;
	uint8_t sector[512] = { 0 };

	memcpy(sector, PRL_MAGIC_EXT, 16);
	st_le32(sector + H_VERSION, PRL_VERSION);
	st_le32(sector + 20, PRL_HEADS);
	st_le32(sector + 24, (uint32_t)(size / 512 / PRL_HEADS / PRL_SEC_IN_CYL));
	st_le32(sector + H_TRACKS, (uint32_t)(cl / 512));
	st_le32(sector + H_BAT_ENTRIES, (uint32_t)entries);
	st_le64(sector + H_NB_SECTORS, size / 512);
	st_le32(sector + H_DATA_OFF, (uint32_t)(bat_bytes / 512));
	block_crash_point();
	if (pwrite(fd, sector, sizeof(sector), 0) != (ssize_t)sizeof(sector))
		return errno ? -errno : -EIO;
	/* Written zeroes as QEMU's blk_pwrite_zeroes: allocated, so "disk size" matches. */
	if (bat_bytes > 512 && fallocate(fd, FALLOC_FL_ZERO_RANGE, 512, (off_t)(bat_bytes - 512)) == 0)
		return 0;
	return block_ftruncate(fd, bat_bytes > 512 ? bat_bytes : 512) < 0 ? -errno : 0;
}

static int prl_create(const char *path, const struct block_create_opts *o, char *err,
		      size_t errlen)
{
	const struct block_fmt_opt *c = block_create_opt(o, "cluster_size");
	uint64_t size = (o->size + 511) & ~511ull;
	uint64_t cl = c ? c->num : PRL_DEFAULT_CLUSTER;
	int fd, ret;

	if (o->backing_file)
		return block_err(err, errlen, "Backing file not supported for file format 'parallels'");
	cl = cl > UINT64_MAX - 511 ? cl : (cl + 511) & ~511ull;
	if (cl >= INT64_MAX / PRL_IMAGE_FACTOR)
		return block_err(err, errlen, "Cluster size is too large");
	if (size >= PRL_IMAGE_FACTOR * cl)
		return block_err(err, errlen, "Image size is too large for this cluster size");
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	ret = prl_create_write(fd, size, cl);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}

static const struct block_opt_desc prl_create_opts[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "cluster_size", BLOCK_OPT_SIZE, "1048576", "Parallels image cluster size" },
	{ NULL, 0, NULL, NULL },
};

const struct block_driver block_parallels_driver = {
	.name = "parallels",
	.open = prl_open,
	.close = prl_close,
	.pread = prl_pread,
	.pwrite = prl_pwrite,
	.flush = prl_flush,
	.write_zeroes = prl_write_zeroes,
	.status = prl_status,
	.create = prl_create,
	.check = prl_check,
	.get_info = prl_get_info,
	.create_opts = prl_create_opts,
};
