/*
 * raw: the file is the disk.  Sparse aware: holes are found with
 * SEEK_DATA/SEEK_HOLE and made with FALLOC_FL_PUNCH_HOLE.
 */
#include "block/blkdebug.h"
#include "block/block_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int raw_open(struct block_dev *bd, char *err, size_t errlen)
{
	int64_t size = bfile_size(bd);

	if (size < 0) {
		/* Block devices report their size through lseek. */
		size = -1;
	}
	if (size < 0 && bd->proto)
		return block_err(err, errlen, "Could not get the size: %s", strerror((int)-size));
	if (size <= 0 && !bd->proto) {
		off_t end = lseek(bd->fd, 0, SEEK_END);
		if (end < 0)
			return block_err(err, errlen, "Could not get the size: %s", strerror(errno));
		size = end;
	}
	bd->size = (uint64_t)size;
	return 0;
}

static int raw_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	block_debug_event(bd, BLKDBG_READ_AIO);
	return bfile_pread(bd, off, buf, len);
}

static int raw_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	block_debug_event(bd, BLKDBG_WRITE_AIO);
	return bfile_pwrite(bd, off, buf, len);
}

/* The file is the disk: every range maps to itself. */
static int raw_map_direct(struct block_dev *bd, uint64_t off, uint64_t len, bool write,
			  uint64_t *host)
{
	*host = off;
	return 1;
}

static int raw_flush(struct block_dev *bd)
{
	return bfile_flush(bd);
}

/* bfile_pwrite for block_write_zero_buffer. */
static int file_write(void *bd, uint64_t off, const void *buf, size_t len)
{
	return bfile_pwrite(bd, off, buf, len);
}

static int raw_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;

	block_crash_point();
	if (bd->proto)
		return bd->proto->zero(bd->conn, off, len, may_unmap);
	/* A block device zeroes without unmapping through BLKZEROOUT, as QEMU's host_device. */
	if (!may_unmap && !(off % 512) && !(len % 512) && block_device_size(bd->fd) >= 0) {
		uint64_t range[2] = { off, len };
		if (ioctl(bd->fd, BLKZEROOUT, range) == 0)
			return 0;
	}
	if (fallocate(bd->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (may_unmap && fallocate(bd->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	/* No fallocate support here (or a block device): write the zeroes. */
	return block_write_zero_buffer(file_write, bd, off, len);
}

/* SEEK_DATA/SEEK_HOLE: a hole reads as zeroes and is not allocated. */
static int raw_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		      uint64_t *map, unsigned *flags)
{
	off_t data, hole;

	*map = off;
	if (bd->proto) {
		unsigned what = BLOCK_STATUS_DATA;
		int ret = 0;
		*pnum = len;
		if (bd->proto->status)
			ret = bd->proto->status(bd->conn, off, len, pnum, &what);
		*flags = what | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		return ret;
	}
	data = lseek(bd->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		/* Past the last data: a hole up to the end of the file (or beyond). */
		*pnum = len;
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	if (data < 0) {
		/* No SEEK_DATA here: everything is data. */
		*pnum = len;
		*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	if ((uint64_t)data > off) {
		*pnum = (uint64_t)data - off < len ? (uint64_t)data - off : len;
		*flags = BLOCK_STATUS_ZERO | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	hole = lseek(bd->fd, (off_t)off, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole <= off)
		hole = (off_t)(off + len);
	*pnum = (uint64_t)hole - off < len ? (uint64_t)hole - off : len;
	*flags = BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED;
	return 0;
}

static int raw_prealloc(int fd, uint64_t from, uint64_t to, enum block_prealloc prealloc)
{
	if (to <= from)
		return 0;
	if (prealloc == BLOCK_PREALLOC_FALLOC) {
		block_crash_point();
		return -posix_fallocate(fd, (off_t)from, (off_t)(to - from));
	}
	if (prealloc == BLOCK_PREALLOC_FULL) {
		size_t chunk = 1 << 20;
		uint8_t *zero = calloc(1, chunk);
		int ret = 0;
		if (!zero)
			return -ENOMEM;
		while (from < to && ret == 0) {
			size_t n = to - from < chunk ? (size_t)(to - from) : chunk;
			ssize_t w;
			block_crash_point();
			w = pwrite(fd, zero, n, (off_t)from);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				ret = w < 0 ? -errno : -EIO;
			else
				from += (uint64_t)w;
		}
		free(zero);
		return ret;
	}
	return 0;
}

/*
 * QEMU's allocate_first_block (file-posix handle_aiocb_truncate): a file
 * grown from empty gets its first 4 KiB written, so that O_DIRECT alignment
 * probing finds an allocated block (and "disk size" and map match
 * qemu-img's); after falloc too, where the rest stays unwritten extents that
 * map reads as zeroes.  Full preallocation has written everything already.
 */
static int raw_first_block(int fd, uint64_t old, uint64_t size, enum block_prealloc prealloc)
{
	static const uint8_t zero[4096];
	size_t n = size < sizeof(zero) ? (size_t)size : sizeof(zero);
	ssize_t w;

	if (old || !size || prealloc == BLOCK_PREALLOC_FULL)
		return 0;
	block_crash_point();
	w = pwrite(fd, zero, n, 0);
	if (w < 0)
		return -errno;
	return w == (ssize_t)n ? 0 : -EIO;
}

static int raw_create(const char *path, const struct block_create_opts *o, char *err,
		      size_t errlen)
{
	int fd, ret;

	if (o->backing_file)
		return block_err(err, errlen, "Backing file not supported for file format 'raw'");
	if (o->prealloc == BLOCK_PREALLOC_METADATA)
		return block_err(err, errlen, "Unsupported preallocation mode: metadata");
	fd = block_create_file_opts(path, o, err, errlen);
	if (fd < 0)
		return -1;
	ret = raw_prealloc(fd, 0, o->size, o->prealloc);
	if (ret == 0 && block_ftruncate(fd, o->size) < 0)
		ret = -errno;
	if (ret == 0)
		ret = raw_first_block(fd, 0, o->size, o->prealloc);
	if (ret == -EFBIG && block_device_size(fd) >= 0) {
		close(fd);
		return block_err(err, errlen, "Cannot grow device files");
	}
	if (ret == 0 && block_device_size(fd) >= 0)
		ret = block_device_zero_head(fd);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	/* bdrv_img_create's words for a size the file system cannot hold. */
	if (ret == -EFBIG)
		return block_err(err, errlen, "The image size is too large for file format 'raw'");
	if (ret < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(-ret));
	return 0;
}

static int raw_truncate(struct block_dev *bd, uint64_t size, bool shrink,
			enum block_prealloc prealloc, char *err, size_t errlen)
{
	struct stat st;
	int ret;

	if (bd->proto && !bd->proto->truncate)
		return block_err(err, errlen, "Cannot resize %s nodes", bd->proto->label);
	if (bd->proto) {
		/* QEMU's rbd and ssh drivers grow only without preallocation. */
		if (prealloc != BLOCK_PREALLOC_OFF)
			return block_err(err, errlen, "Unsupported preallocation mode '%s'",
					 prealloc == BLOCK_PREALLOC_FULL ? "full" :
					 prealloc == BLOCK_PREALLOC_FALLOC ? "falloc" : "metadata");
		if (bd->proto->truncate(bd->conn, size, err, errlen) < 0)
			return -1;
		bd->size = size;
		return 0;
	}
	if (fstat(bd->fd, &st) < 0)
		return block_err(err, errlen, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode)) {
		if (size > bd->size)
			return block_err(err, errlen, "Cannot grow device files");
		bd->size = size;
		return 0;
	}
	if (prealloc == BLOCK_PREALLOC_METADATA)
		return block_err(err, errlen, "Unsupported preallocation mode: metadata");
	ret = raw_prealloc(bd->fd, bd->size, size, prealloc);
	if (ret == 0)
		block_crash_point();
	if (ret == 0 && ftruncate(bd->fd, (off_t)size) < 0)
		ret = -errno;
	if (ret == 0)
		ret = raw_first_block(bd->fd, (uint64_t)st.st_size, size, prealloc);
	if (ret < 0)
		return block_err(err, errlen, "Could not resize file: %s", strerror(-ret));
	bd->size = size;
	return 0;
}

const struct block_driver block_raw_driver = {
	.name = "raw",
	.open = raw_open,
	.pread = raw_pread,
	.pwrite = raw_pwrite,
	.flush = raw_flush,
	.write_zeroes = raw_write_zeroes,
	.status = raw_status,
	.create = raw_create,
	.truncate = raw_truncate,
	.map_direct = raw_map_direct,
};
