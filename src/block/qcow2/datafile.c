/*
 * External data files (qcow2 spec: incompatible feature bit 2, header
 * extension "External data file name", autoclear bit 1 "raw external
 * data").  The image file keeps the header, L1/L2 tables and refcounts;
 * guest data lives in the data file at host offset = guest offset, and the
 * data file's clusters are not refcounted.
 */
#include "block/blkdebug.h"
#include "block/qcow2/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

char *qcow2_data_path(const struct qcow2 *s)
{
	/* QEMU resolves the name against the image's directory, as for backing files. */
	return block_backing_path(s->bd->filename, s->data_file_name);
}

int qcow2_data_open(struct qcow2 *s, char *err, size_t errlen)
{
	unsigned flags = s->bd->flags & (BLOCK_RDONLY | BLOCK_NOCACHE | BLOCK_DSYNC |
					 BLOCK_NO_FLUSH | BLOCK_NO_LOCK);
	/* Like the backing file: info reads only metadata and works without it (QEMU). */
	bool optional = (s->bd->flags & BLOCK_NO_BACKING) && s->bd->read_only && !s->checking;
	char msg[1024], *path;
	int ret;

	/* Nor is it opened then: a name from an untrusted image must not open host files. */
	if (!qcow2_has_data_file(s) || optional)
		return 0;
	if (!s->data_file_name || !*s->data_file_name)
		return block_err(err, errlen, "'data-file' is required for this image");
	if (s->bd->read_only)
		flags |= BLOCK_RDONLY;
	path = qcow2_data_path(s);
	if (!path)
		return block_err(err, errlen, "out of memory");
	ret = block_open(path, "raw", flags, &s->data, msg, sizeof(msg));
	free(path);
	if (ret < 0) {
		s->data = NULL;
		return block_err(err, errlen, "%s", msg);
	}
	return 0;
}

void qcow2_data_close(struct qcow2 *s)
{
	if (s->data)
		block_close(s->data);
	s->data = NULL;
}

int qcow2_data_pread_raw(struct qcow2 *s, uint64_t host, void *buf, size_t len)
{
	if (qcow2_has_data_file(s))
		return s->data ? bfile_pread(s->data, host, buf, len) : -EIO;
	return bfile_pread(s->bd, host, buf, len);
}

int qcow2_data_pwrite_raw(struct qcow2 *s, uint64_t host, const void *buf, size_t len)
{
	if (!qcow2_has_data_file(s))
		return qcow2_checked_write(s, 0, host, buf, len);
	if (!s->data)
		return -EIO;
	return bfile_pwrite(s->data, host, buf, len);
}

/* Guest data, through the LUKS cipher where the image is encrypted (crypt.c). */
int qcow2_data_pread(struct qcow2 *s, uint64_t host, void *buf, size_t len)
{
	block_debug_event(s->bd, BLKDBG_READ_AIO);
	if (s->crypt)
		return qcow2_crypt_read(s, host, buf, len);
	return qcow2_data_pread_raw(s, host, buf, len);
}

int qcow2_data_pwrite(struct qcow2 *s, uint64_t host, const void *buf, size_t len)
{
	block_debug_event(s->bd, BLKDBG_WRITE_AIO);
	if (s->crypt)
		return qcow2_crypt_write(s, host, buf, len);
	return qcow2_data_pwrite_raw(s, host, buf, len);
}

int qcow2_data_alloc(struct qcow2 *s, uint64_t guest, uint64_t n, uint64_t *host)
{
	if (!qcow2_has_data_file(s))
		return qcow2_alloc_clusters(s, n, host);
	*host = guest & ~(uint64_t)(s->cluster_size - 1);
	return 0;
}

int qcow2_data_zero(struct qcow2 *s, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	uint8_t *z;
	int ret = 0;

	if (!s->data)
		return -EIO;
	z = calloc(1, chunk ? chunk : 1);
	if (!z)
		return -ENOMEM;
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = bfile_pwrite(s->data, off, z, n);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

/*
 * Zeroes [off, off+len) of the data file without writing it, as QEMU's
 * handle_alloc_space does before a partial write to a fresh cluster
 * (file-posix write-zeroes with BDRV_REQ_NO_FALLBACK): zero range, else punch
 * a hole and allocate it.  Fails where neither works; the caller writes then.
 */
int qcow2_data_zero_fast(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (!s->data)
		return -EIO;
	block_crash_point();
	if (fallocate(s->data->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	if (fallocate(s->data->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) < 0)
		return -errno;
	if (fallocate(s->data->fd, 0, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}
