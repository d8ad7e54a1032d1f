/*
 * The generic half of the block layer: format probing, opening with locks
 * and backing chains, and dispatch to the format drivers.
 */
#include "block/blkdebug.h"
#include "block/block_int.h"
#include "block/throttle.h"
#include "block/lock.h"
#include "block/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct block_driver *const drivers[] = {
	&block_qcow2_driver,
	&block_raw_driver,
	&block_vhdx_driver,
	&block_dmg_driver, &block_cloop_driver, &block_bochs_driver,
	&block_qed_driver,
	&block_parallels_driver,
	&block_vpc_driver,
	&block_vdi_driver,
	&block_luks_driver,
	&block_vmdk_driver,
};

int block_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int block_error_action_parse(const char *name)
{
	static const char *const names[] = { "enospc", "report", "stop", "ignore" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

const char *block_error_action_name(enum block_error_action a)
{
	return a == BLOCK_ERR_STOP ? "stop" : a == BLOCK_ERR_IGNORE ? "ignore" : "report";
}

int block_overlap_check_flags(const char *mode, unsigned *flags)
{
	static const struct { const char *name; unsigned bits; } modes[] = {
		{ "none", BLOCK_OL_NONE }, { "constant", BLOCK_OL_CONSTANT },
		{ "cached", BLOCK_OL_CACHED }, { "all", BLOCK_OL_ALL },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(mode, modes[i].name) == 0) {
			*flags = (*flags & ~BLOCK_OL_MASK) | modes[i].bits;
			return 0;
		}
	}
	return -1;
}

static const struct block_driver *driver_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

const struct block_opt_desc *block_format_opts(const char *format, bool amend)
{
	const struct block_driver *drv = driver_by_name(format);

	if (!drv)
		return NULL;
	return amend ? drv->amend_opts : drv->create_opts;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void block_print_formats(FILE *f)
{
	/* The protocols: spec.c opens these names and the network drivers of this build. */
	static const char *const protocols[] = { "file", "host_device", "host_cdrom", "null-co",
						 "null-aio" };
	const char *names[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]) && n < 64; i++)
		names[n++] = drivers[i]->name;
	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]) && n < 64; i++)
		names[n++] = protocols[i];
	n += block_network_protocols(names + n, 64 - n);
	qsort(names, n, sizeof(names[0]), cmp_name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %s", names[i]);
}

bool block_format_has_driver(const char *name)
{
	return driver_by_name(name) != NULL;
}

bool block_format_can_create(const char *format)
{
	const struct block_driver *drv = driver_by_name(format);

	return drv && drv->create;
}

const struct block_fmt_opt *block_create_opt(const struct block_create_opts *o, const char *name)
{
	for (size_t i = 0; i < o->n_fmt_opts; i++)
		if (!strcmp(o->fmt_opts[i].name, name))
			return &o->fmt_opts[i];
	return NULL;
}

const char *block_data_file(struct block_dev *bd, uint64_t offset)
{
	return bd->drv->data_file ? bd->drv->data_file(bd, offset) : NULL;
}

struct jnode *block_info_specific(struct block_dev *bd)
{
	/* A protocol node alone (driver=rbd) answers for itself, as in QEMU. */
	if (bd->proto && bd->proto->info_specific && bd->format_name &&
	    !strcmp(bd->format_name, bd->proto->name))
		return bd->proto->info_specific(bd->conn);
	return bd->drv->info_specific ? bd->drv->info_specific(bd) : NULL;
}

/*
 * Names the format of the file as bdrv_probe_all would (probe.c); reads go
 * through bfile_pread so an O_DIRECT descriptor works too.  An empty file
 * is raw (find_image_format does not probe it).
 */
static int probe(struct block_dev *bd, const struct stat *st, const char **format)
{
	uint8_t buf[BLOCK_PROBE_SIZE];
	int ret;

	*format = "raw";
	if (st && S_ISREG(st->st_mode) && st->st_size == 0)
		return 0;
	ret = bfile_pread(bd, 0, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	*format = block_probe_format(buf, sizeof(buf), bd->filename);
	return 0;
}

/*
 * The driver for a file opened without a format.  A format Kestrel has no
 * driver for is refused by name: opened as raw, its headers would be guest
 * data and a guest could rewrite them.
 */
static int probe_driver(struct block_dev *bd, const struct stat *st, unsigned flags,
			const struct block_driver **drv, char *err, size_t errlen)
{
	const char *format;
	int ret = probe(bd, st, &format);

	if (ret < 0)
		return block_err(err, errlen, "Could not read image for determining its format: %s",
				 strerror(-ret));
	*drv = driver_by_name(format);
	if (!*drv)
		return block_err(err, errlen,
				 "Image is in %s format, which Kestrel cannot open yet", format);
	if (*drv != &block_raw_driver || (flags & BLOCK_UNSAFE_PROBE))
		return 0;
	bd->probed_raw = true;
	if (!bd->read_only && !(flags & BLOCK_QUIET_PROBE))
		fprintf(stderr,
			"WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
			"         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n"
			"         Specify the 'raw' format explicitly to remove the restrictions.\n",
			bd->filename);
	return 0;
}

static int open_fd(const char *path, unsigned flags, bool *direct)
{
	int oflags = O_CLOEXEC | ((flags & BLOCK_RDONLY) ? O_RDONLY : O_RDWR);

	if (flags & BLOCK_DSYNC)
		oflags |= O_DSYNC;
	*direct = flags & BLOCK_NOCACHE;
	if (*direct)
		oflags |= O_DIRECT;
	return open(path, oflags);
}

static void block_free(struct block_dev *bd)
{
	if (!bd)
		return;
	if (bd->fd >= 0)
		close(bd->fd);
	if (bd->proto && bd->conn)
		bd->proto->close(bd->conn);
	pthread_mutex_destroy(&bd->block0_lock);
	free(bd->filename);
	free(bd);
}

/* The driver format names, or -1 with QEMU's message. */
static int format_driver(const char *format, const struct block_driver **drv, char *err,
			 size_t errlen)
{
	*drv = NULL;
	if (!format || (*drv = driver_by_name(format)))
		return 0;
	if (block_format_known(format))
		return block_err(err, errlen, "Image format '%s' is not supported by Kestrel: it "
				 "cannot open %s images yet", format, format);
	return block_err(err, errlen, "Unknown driver '%s'", format);
}

/* A node for path (no file open yet), or NULL. */
static struct block_dev *node_new(const char *path, unsigned flags, struct block_dev *parent)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));

	if (!bd)
		return NULL;
	bd->fd = -1;
	pthread_mutex_init(&bd->block0_lock, NULL);
	bd->flags = flags;
	bd->read_only = flags & BLOCK_RDONLY;
	bd->parent = parent;
	bd->depth = parent ? parent->depth + 1 : 0;
	bd->filename = strdup(path);
	if (!bd->filename) {
		block_free(bd);
		return NULL;
	}
	return bd;
}

/* The format of bd (drv, or probed) opened over its file or protocol; frees bd on failure. */
static int open_format(struct block_dev *bd, const struct block_driver *drv, const struct stat *st,
		       unsigned flags, struct block_dev **out, char *err, size_t errlen)
{
	if (!drv && probe_driver(bd, st, flags, &drv, err, errlen) < 0)
		goto fail;
	bd->drv = drv;
	/*
	 * As QEMU's bdrv_open: a driver's message stands alone, and the caller
	 * (kestrel-img: "Could not open 'X': ", kestrel: "-drive file=X: ") says
	 * which image it was.
	 */
	if (drv->open(bd, err, errlen) < 0)
		goto fail;
	bd->parent = NULL;
	bd->key_secret = NULL;
	*out = bd;
	return 0;
fail:
	block_free(bd);
	return -1;
}

int block_open_proto(const char *display, const struct block_proto *proto, void *conn,
		     const char *format, unsigned flags, struct block_dev *parent,
		     struct block_dev **out, char *err, size_t errlen)
{
	const struct block_driver *drv;
	struct block_dev *bd;

	*out = NULL;
	if (format_driver(format, &drv, err, errlen) < 0) {
		proto->close(conn);
		return -1;
	}
	bd = node_new(display, flags, parent);
	if (!bd) {
		proto->close(conn);
		return block_err(err, errlen, "Could not open '%s': out of memory", display);
	}
	bd->proto = proto;
	bd->conn = conn;
	return open_format(bd, drv, NULL, flags, out, err, errlen);
}

static int open_one(const char *path, const char *format, unsigned flags, const char *key_secret,
		    struct block_dev *parent, struct block_dev **out, char *err, size_t errlen)
{
	const struct block_driver *drv;
	struct block_dev *bd;
	struct stat st;

	*out = NULL;
	if (format_driver(format, &drv, err, errlen) < 0)
		return -1;
	bd = node_new(path, flags, parent);
	if (!bd)
		return block_err(err, errlen, "Could not open '%s': out of memory", path);
	bd->key_secret = key_secret;	/* for the driver's open only */
	bd->fd = open_fd(path, flags, &bd->direct);
	if (bd->fd < 0 || fstat(bd->fd, &st) < 0) {
		if (errno == EINVAL && (flags & BLOCK_NOCACHE))
			block_err(err, errlen, "Could not open '%s': O_DIRECT is not supported here",
				  path);
		else
			block_err(err, errlen, "Could not open '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		block_err(err, errlen, "'file' driver requires '%s' to be a regular file", path);
		goto fail;
	}
	bd->st_dev = st.st_dev;
	bd->st_ino = st.st_ino;
	/* A backing chain that leads back to one of its own images never ends. */
	for (struct block_dev *p = parent; p; p = p->parent) {
		if (p->st_dev == st.st_dev && p->st_ino == st.st_ino) {
			block_err(err, errlen, "Backing file loop: '%s' is already in the chain of '%s'",
				  path, p->filename);
			goto fail;
		}
	}
	if (!(flags & BLOCK_NO_LOCK) && block_lock(bd->fd, path, !bd->read_only, err, errlen) < 0)
		goto fail;
	return open_format(bd, drv, &st, flags, out, err, errlen);
fail:
	block_free(bd);
	return -1;
}

int block_open_file(const char *path, const char *format, unsigned flags, struct block_dev *parent,
		    struct block_dev **out, char *err, size_t errlen)
{
	return open_one(path, format, flags, NULL, parent, out, err, errlen);
}

int block_open_file_key(const char *path, const char *format, unsigned flags,
			const char *key_secret, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen)
{
	return open_one(path, format, flags, key_secret, parent, out, err, errlen);
}

int block_open_key(const char *path, const char *format, unsigned flags, const char *key_secret,
		   struct block_dev **out, char *err, size_t errlen)
{
	if (!key_secret || block_name_is_special(path))
		return block_open(path, format, flags, out, err, errlen);
	return open_one(path, format, flags, key_secret, NULL, out, err, errlen) < 0 ? -1 : 0;
}

int block_open(const char *path, const char *format, unsigned flags, struct block_dev **out,
	       char *err, size_t errlen)
{
	if (block_name_is_special(path))
		return block_open_special(path, format, flags, NULL, out, err, errlen);
	return open_one(path, format, flags, NULL, NULL, out, err, errlen) < 0 ? -1 : 0;
}

char *block_backing_path(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');
	char *path;
	size_t dirlen;

	/* QEMU's path_combine: relative names are relative to the image's directory. */
	if (backing[0] == '/' || !slash || block_name_is_special(backing))
		return strdup(backing);
	dirlen = (size_t)(slash - image) + 1;
	path = malloc(dirlen + strlen(backing) + 1);
	if (!path)
		return NULL;
	memcpy(path, image, dirlen);
	strcpy(path + dirlen, backing);
	return path;
}

int block_open_backing(struct block_dev *bd, const char *file, const char *fmt,
		       char *err, size_t errlen)
{
	unsigned flags;
	char *path, msg[1024];
	int ret;

	if (bd->flags & BLOCK_NO_BACKING)
		return 0;
	path = block_backing_path(bd->filename, file);
	if (!path)
		return block_err(err, errlen, "out of memory");
	flags = (bd->flags & (BLOCK_NOCACHE | BLOCK_NO_LOCK | BLOCK_UNSAFE_PROBE)) |
		BLOCK_RDONLY | BLOCK_QUIET_PROBE;
	if (block_name_is_special(path))
		ret = block_open_special(path, fmt && *fmt ? fmt : NULL, flags, bd, &bd->backing, msg,
					 sizeof(msg));
	else
		ret = open_one(path, fmt && *fmt ? fmt : NULL, flags, NULL, bd, &bd->backing, msg,
			       sizeof(msg));
	free(path);
	if (ret < 0)
		return block_err(err, errlen, "Could not open backing file: %s", msg);
	return 0;
}

void block_close(struct block_dev *bd)
{
	if (!bd)
		return;
	if (bd->drv && bd->drv->close)
		bd->drv->close(bd);
	throttle_member_leave(bd->throttle);
	block_close(bd->backing);
	block_free(bd);
}

uint64_t block_length(const struct block_dev *bd) { return bd->size; }
const char *block_format_name(const struct block_dev *bd)
{
	return bd->format_name ? bd->format_name : bd->drv->name;
}
bool block_is_readonly(const struct block_dev *bd) { return bd->read_only; }
const char *block_filename(const struct block_dev *bd) { return bd->filename; }
/* A device or LUN keeps its old bytes when raw is "created" on it (QEMU: no has_zero_init). */
bool block_has_zero_init(const struct block_dev *bd)
{
	if (bd->drv == &block_raw_driver && !bd->proto && block_device_size(bd->fd) >= 0)
		return false;
	if (bd->drv == &block_raw_driver && bd->proto && bd->proto->no_zero_init)
		return false;
	return !bd->drv->no_zero_init;
}
struct block_dev *block_backing(const struct block_dev *bd) { return bd->backing; }

static bool in_range(const struct block_dev *bd, uint64_t offset, uint64_t len)
{
	return offset <= bd->size && len <= bd->size - offset;
}

int block_pread(struct block_dev *bd, uint64_t offset, void *buf, size_t len)
{
	if (!in_range(bd, offset, len))
		return -EINVAL;
	if (!len)
		return 0;
	return bd->drv->pread(bd, offset, buf, len);
}

/*
 * QEMU refuses writes that would make a probed raw image probe as something
 * else next time (raw_co_pwritev runs bdrv_probe_all on the new block 0):
 * otherwise a guest could plant, say, a VMDK descriptor naming a host file,
 * and the next open that probes would read that file as the disk.  Returns
 * 0 when the write may go ahead, -EPERM or a read error otherwise.  The
 * caller holds block0_lock until its write is done, so that two partial
 * writes, each harmless alone, cannot combine into a magic.
 */
static int block0_check(struct block_dev *bd, uint64_t offset, const void *buf, size_t len)
{
	uint8_t sector[BLOCK_PROBE_SIZE];
	int ret = bd->drv->pread(bd, 0, sector, sizeof(sector));

	if (ret < 0)
		return ret;
	memcpy(sector + offset, buf, len < sizeof(sector) - offset ? len : sizeof(sector) - offset);
	/* Probed without a file name, as QEMU does here: only the content counts. */
	return strcmp(block_probe_format(sector, sizeof(sector), NULL), "raw") ? -EPERM : 0;
}

static bool restricted(const struct block_dev *bd, uint64_t offset)
{
	return bd->probed_raw && offset < BLOCK_PROBE_SIZE;
}

/* What every write is checked for first: 1 to go ahead, else the result (0: nothing to do). */
static int write_allowed(const struct block_dev *bd, uint64_t offset, uint64_t len)
{
	if (bd->read_only)
		return -EROFS;
	if (!in_range(bd, offset, len))
		return -EINVAL;
	return len ? 1 : 0;
}

/*
 * The driver's write (buf) or write-zeroes (buf NULL) once the checks every
 * write passes allow it; block 0 of a probed raw image under its lock.
 */
static int write_checked(struct block_dev *bd, uint64_t offset, const void *buf, uint64_t len,
			 bool may_unmap)
{
	static const uint8_t zero[BLOCK_PROBE_SIZE];
	int ret = write_allowed(bd, offset, len);
	bool block0 = restricted(bd, offset);

	if (ret <= 0)
		return ret;
	ret = 0;
	if (block0) {
		pthread_mutex_lock(&bd->block0_lock);
		ret = block0_check(bd, offset, buf ? buf : zero,
				   len < sizeof(zero) ? (size_t)len : sizeof(zero));
	}
	if (ret == 0)
		ret = buf ? bd->drv->pwrite(bd, offset, buf, (size_t)len)
			  : bd->drv->write_zeroes(bd, offset, len, may_unmap);
	if (block0)
		pthread_mutex_unlock(&bd->block0_lock);
	return ret;
}

int block_pwrite(struct block_dev *bd, uint64_t offset, const void *buf, size_t len)
{
	return write_checked(bd, offset, buf, len, false);
}

int block_map_direct(struct block_dev *bd, uint64_t off, uint64_t len, bool write, uint64_t *host)
{
	if (!bd->drv->map_direct || bd->proto || !len || !in_range(bd, off, len))
		return 0;
	/* Writes the generic checks might refuse take the ordinary path. */
	if (write && (bd->read_only || restricted(bd, off)))
		return 0;
	return bd->drv->map_direct(bd, off, len, write, host);
}

void block_end_direct(struct block_dev *bd, uint64_t host, uint64_t len, bool write, int result)
{
	if (bd->drv->end_direct)
		bd->drv->end_direct(bd, host, len, write, result);
}

/* copy_file_range until done; *done says how far it got before an error. */
static int copy_file_loop(int in, uint64_t soff, int out, uint64_t doff, uint64_t len,
			  uint64_t *done)
{
	*done = 0;
	while (*done < len) {
		loff_t si = (loff_t)(soff + *done), di = (loff_t)(doff + *done);
		ssize_t n = copy_file_range(in, &si, out, &di, (size_t)(len - *done), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* the source ended early */
		*done += (uint64_t)n;
	}
	return 0;
}

/* What copy offloading cannot do goes through memory. */
static int copy_bounce(struct block_dev *src, uint64_t soff, struct block_dev *dst,
		       uint64_t doff, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : 1u << 20;
	uint8_t *buf = block_alloc_buf(chunk);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t o = 0; o < len && ret == 0; o += chunk) {
		size_t n = len - o < chunk ? (size_t)(len - o) : chunk;
		ret = block_pread(src, soff + o, buf, n);
		if (ret == 0)
			ret = block_pwrite(dst, doff + o, buf, n);
	}
	free(buf);
	return ret;
}

int block_copy_range(struct block_dev *src, uint64_t soff, struct block_dev *dst, uint64_t doff,
		     uint64_t len)
{
	uint64_t sh, dh, done = 0;
	int ret = -ENOTSUP;

	if (!len)
		return 0;
	if (dst->read_only)
		return -EROFS;
	if (!in_range(src, soff, len) || !in_range(dst, doff, len))
		return -EINVAL;
	if (block_map_direct(src, soff, len, false, &sh) == 1) {
		if (block_map_direct(dst, doff, len, true, &dh) == 1) {
			ret = copy_file_loop(src->fd, sh, dst->fd, dh, len, &done);
			block_end_direct(dst, dh, len, true, ret);
		}
		block_end_direct(src, sh, len, false, 0);
	}
	if (ret == 0)
		return 0;
	/* EXDEV, EOPNOTSUPP, O_DIRECT's EINVAL...: the rest the ordinary way. */
	return copy_bounce(src, soff + done, dst, doff + done, len - done);
}

int block_pwrite_compressed(struct block_dev *bd, uint64_t offset, const void *buf, size_t len)
{
	if (bd->read_only)
		return -EROFS;
	if (!in_range(bd, offset, len))
		return -EINVAL;
	if (!bd->drv->pwrite_compressed)
		return -ENOTSUP;
	return bd->drv->pwrite_compressed(bd, offset, buf, len);
}

int block_flush(struct block_dev *bd)
{
	if (bd->read_only)
		return 0;
	/* QEMU's bdrv_co_flush, even with cache=unsafe (flush_to_disk: the protocol's flush). */
	block_debug_event(bd, BLKDBG_FLUSH_TO_OS);
	return bd->drv->flush(bd);
}

int block_write_zeroes(struct block_dev *bd, uint64_t offset, uint64_t len, bool may_unmap)
{
	return write_checked(bd, offset, NULL, len, may_unmap);
}

int block_discard(struct block_dev *bd, uint64_t offset, uint64_t len)
{
	return block_write_zeroes(bd, offset, len, true);
}

int block_status(struct block_dev *bd, uint64_t offset, uint64_t len, uint64_t *pnum,
		 uint64_t *map, unsigned *flags)
{
	uint64_t dummy;

	if (!in_range(bd, offset, len) || !len)
		return -EINVAL;
	if (!map)
		map = &dummy;
	*map = 0;
	return bd->drv->status(bd, offset, len, pnum, map, flags);
}

int block_read_backing(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct block_dev *b = bd->backing;
	size_t n = 0;

	if (b && off < b->size) {
		n = b->size - off < len ? (size_t)(b->size - off) : len;
		int ret = b->drv->pread(b, off, buf, n);
		if (ret < 0)
			return ret;
	}
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

uint32_t block_cluster_size(const struct block_dev *bd)
{
	struct block_info info;

	if (block_get_info((struct block_dev *)bd, &info) < 0)
		return 0;
	return info.cluster_size;
}

int block_get_info(struct block_dev *bd, struct block_info *info)
{
	int64_t alloc = bd->proto && bd->proto->allocated ? bd->proto->allocated(bd->conn) : -1;
	struct stat st;

	memset(info, 0, sizeof(*info));
	info->virtual_size = bd->size;
	if (alloc >= 0)
		info->actual_size = (uint64_t)alloc;
	else if (bd->proto)
		info->actual_size_unknown = true;	/* a server's disk usage is its own */
	else if (fstat(bd->fd, &st) == 0)
		info->actual_size = (uint64_t)st.st_blocks * 512;
	if (bd->drv->get_info)
		return bd->drv->get_info(bd, info);
	/* raw passes the question to its protocol, and NBD has no answer (QEMU: no dirty flag). */
	if (bd->proto && bd->proto->get_info)
		return bd->proto->get_info(bd->conn, info);
	if (bd->proto && bd->proto->cluster_size) {
		info->cluster_size = bd->proto->cluster_size(bd->conn);
		return 0;
	}
	return bd->proto && !bd->proto->has_info ? -ENOTSUP : 0;
}

int block_create(const char *path, const char *format, const struct block_create_opts *o,
		 char *err, size_t errlen)
{
	const struct block_driver *drv = driver_by_name(format);

	if (!drv)
		return block_err(err, errlen, "Unknown file format '%s'", format);
	if (!drv->create)
		return block_err(err, errlen, "Format driver '%s' does not support image creation",
				 format);
	/* A network protocol's object (nfs, gluster, rbd): create_stage.c. */
	if (block_remote_creator(path))
		return block_create_staged(path, drv, o, block_remote_creator(path), err, errlen);
	if (block_name_is_special(path)) {
		/* "file:x" creates x; other protocols cannot create (spec.c). */
		path = block_create_path(path, err, errlen);
		if (!path)
			return -1;
	}
	return drv->create(path, o, err, errlen);
}

int block_check(struct block_dev *bd, unsigned fix, struct block_check_result *res, FILE *report)
{
	memset(res, 0, sizeof(*res));
	if (!bd->drv->check)
		return -ENOTSUP;
	if (fix && bd->read_only)
		return -EROFS;
	return bd->drv->check(bd, fix, res, report);
}

int block_truncate(struct block_dev *bd, uint64_t size, bool shrink, enum block_prealloc prealloc,
		   char *err, size_t errlen)
{
	if (bd->read_only)
		return block_err(err, errlen, "Image is read-only");
	if (size < bd->size && !shrink)
		return block_err(err, errlen,
				 "Use the --shrink option to perform a shrink operation.");
	if (!bd->drv->truncate)
		return block_err(err, errlen, "Image format driver does not support resize");
	return bd->drv->truncate(bd, size, shrink, prealloc, err, errlen);
}

/* raw without snapshots of its own: its protocol's (rbd), as bdrv_snapshot_fallback finds. */
static const struct block_proto *snapshot_proto(const struct block_dev *bd)
{
	return !bd->drv->snapshot_list && bd->drv == &block_raw_driver && bd->proto &&
	       bd->proto->snapshot_list ? bd->proto : NULL;
}

/* A protocol's snapshot operation, its failure in qemu-img's words. */
int block_snapshot_list(struct block_dev *bd, struct block_snapshot **list)
{
	*list = NULL;
	/* raw has none of its own: QEMU's bdrv_snapshot_list asks its protocol (rbd). */
	if (snapshot_proto(bd))
		return bd->proto->snapshot_list(bd->conn, list);
	if (!bd->drv->snapshot_list)
		return 0;
	return bd->drv->snapshot_list(bd, list);
}

/*
 * qemu-img's words when the format has no snapshots: apply says
 * bdrv_snapshot_goto's message; delete never gets here (img/snapshot.c
 * looks the name up first).
 */
static int proto_snapshot(struct block_dev *bd, int (*op)(void *, const char *),
			  const char *what, const char *name, char *err, size_t errlen)
{
	int r = bd->read_only ? -EROFS : op(bd->conn, name);

	/* qemu-img's apply goes through bdrv_snapshot_goto, whose words differ. */
	if (r < 0 && !strcmp(what, "apply"))
		return block_err(err, errlen, "Could not apply snapshot '%s': Failed to load "
				 "snapshot: %s", name, strerror(-r));
	if (r < 0)
		return block_err(err, errlen, "Could not %s snapshot '%s': %d (%s)", what, name, r,
				 strerror(-r));
	return 0;
}

#define SNAPSHOT_OP(fn, what, nosup)							\
int block_snapshot_##fn(struct block_dev *bd, const char *name, char *err, size_t errlen) \
{											\
	if (snapshot_proto(bd) && snapshot_proto(bd)->snapshot_##fn)			\
		return proto_snapshot(bd, snapshot_proto(bd)->snapshot_##fn, what, name, err, \
				      errlen);						\
	if (!bd->drv->snapshot_##fn)							\
		return block_err(err, errlen, "Could not " what " snapshot '%s': %s",	\
				 name, nosup);						\
	if (bd->read_only)								\
		return block_err(err, errlen, "Could not " what " snapshot '%s': %s",	\
				 name, strerror(EROFS));				\
	return bd->drv->snapshot_##fn(bd, name, err, errlen);				\
}

/* qemu-img reports a failed create as "errno (text)": -95 (Operation not supported). */
int block_snapshot_create(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	int e = bd->drv->snapshot_create ? (bd->read_only ? EROFS : 0) : ENOTSUP;

	if (snapshot_proto(bd) && snapshot_proto(bd)->snapshot_create)
		return proto_snapshot(bd, snapshot_proto(bd)->snapshot_create, "create", name, err,
				      errlen);
	if (e)
		return block_err(err, errlen, "Could not create snapshot '%s': %d (%s)", name, -e,
				 strerror(e));
	return bd->drv->snapshot_create(bd, name, err, errlen);
}

int block_snapshot_load_tmp(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	if (!bd->drv->snapshot_load_tmp)
		return block_err(err, errlen, "Failed to load snapshot: %s", strerror(ENOTSUP));
	if (!bd->read_only)
		return block_err(err, errlen, "Failed to load snapshot: the image is writable");
	return bd->drv->snapshot_load_tmp(bd, name, err, errlen);
}
SNAPSHOT_OP(apply, "apply", "Block driver does not support snapshots")
SNAPSHOT_OP(delete, "delete", strerror(ENOTSUP))

int block_change_backing(struct block_dev *bd, const char *file, const char *fmt,
			 char *err, size_t errlen)
{
	if (!bd->drv->change_backing)
		return block_err(err, errlen, "Operation not supported by the image format");
	if (bd->read_only)
		return block_err(err, errlen, "Image is read-only");
	return bd->drv->change_backing(bd, file, fmt, err, errlen);
}

int block_amend(struct block_dev *bd, const struct block_create_opts *o, unsigned set,
		char *err, size_t errlen)
{
	if (!bd->drv->amend)
		return block_err(err, errlen, "Format driver '%s' does not support option amendment",
				 bd->drv->name);
	if (bd->read_only)
		return block_err(err, errlen, "Image is read-only");
	return bd->drv->amend(bd, o, set, err, errlen);
}

int block_bitmap_list(struct block_dev *bd, struct block_bitmap **list)
{
	*list = NULL;
	return bd->drv->bitmap_list ? bd->drv->bitmap_list(bd, list) : 0;
}

/*
 * QEMU names an anonymous node "#blockNNN" in its messages, NNN counting the
 * nodes it made; kestrel has one node per image and says "#block0".
 */
#define BLOCK_NODE_NAME "#block0"

int block_bitmap_change(struct block_dev *bd, const struct block_bitmap_req *req,
			char *err, size_t errlen)
{
	uint32_t g = req->granularity;

	/* QEMU's qmp_block_dirty_bitmap_add checks these before it asks the driver. */
	if (req->act == BLOCK_BITMAP_ADD) {
		if (!req->name[0])
			return block_err(err, errlen, "Bitmap name cannot be empty");
		if (req->granularity_set && (g < 512 || (g & (g - 1))))
			return block_err(err, errlen,
					 "Granularity must be power of 2 and at least 512");
	}
	if (bd->drv->bitmap_change)
		return bd->drv->bitmap_change(bd, req, err, errlen);
	if (req->act == BLOCK_BITMAP_ADD)
		return block_err(err, errlen, "Can't store persistent bitmaps to %s: %s",
				 BLOCK_NODE_NAME, strerror(ENOTSUP));
	return block_err(err, errlen, "Dirty bitmap '%s' not found", req->name);
}

int block_bitmap_get(struct block_dev *bd, const char *name, struct block_bitmap_data *out,
		     char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (bd->drv->bitmap_get)
		return bd->drv->bitmap_get(bd, name, out, err, errlen);
	return block_err(err, errlen, "Dirty bitmap '%s' not found", name);
}

int block_make_empty(struct block_dev *bd)
{
	if (bd->read_only)
		return -EROFS;
	if (bd->drv->make_empty)
		return bd->drv->make_empty(bd);
	return block_write_zeroes(bd, 0, bd->size, true);
}

int block_open_snapshot_overlay(const char *path, const char *format, unsigned flags,
				struct block_dev **out, char *err, size_t errlen)
{
	struct block_create_opts o = { 0 };
	struct block_dev *base;
	char base_fmt[32], *abs = NULL, tmp[4096];
	const char *dir = getenv("TMPDIR");
	int fd;

	*out = NULL;
	if (block_open(path, format, (flags & ~BLOCK_NO_LOCK) | BLOCK_RDONLY | BLOCK_NO_LOCK, &base,
		       err, errlen) < 0)
		return -1;
	o.size = base->size;
	snprintf(base_fmt, sizeof(base_fmt), "%s", block_format_name(base));
	block_close(base);

	abs = realpath(path, NULL);
	if (!abs)
		return block_err(err, errlen, "Could not resolve '%s': %s", path, strerror(errno));
	/* As QEMU's get_tmp_filename: $TMPDIR or /var/tmp, vl.XXXXXX. */
	snprintf(tmp, sizeof(tmp), "%s/vl.XXXXXX", dir && *dir ? dir : "/var/tmp");
	fd = mkstemp(tmp);
	if (fd < 0) {
		free(abs);
		return block_err(err, errlen, "Could not create temporary overlay: %s",
				 strerror(errno));
	}
	close(fd);
	o.backing_file = abs;
	o.backing_fmt = base_fmt;
	if (block_create(tmp, "qcow2", &o, err, errlen) < 0 ||
	    block_open(tmp, "qcow2", flags & ~BLOCK_RDONLY, out, err, errlen) < 0) {
		unlink(tmp);
		free(abs);
		return -1;
	}
	unlink(tmp);
	free(abs);
	return 0;
}

int block_status_all_data(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			  uint64_t *map, unsigned *flags)
{
	*pnum = len;
	*map = 0;
	*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
	return 0;
}
