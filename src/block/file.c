/*
 * The file under a format: what every driver uses to touch its image file
 * (or, through struct block_proto, the server a protocol node reaches), and
 * the buffers for it.  With O_DIRECT, unaligned requests go through an
 * aligned bounce buffer.
 */
#include "block/block_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool block_buffer_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	/* Check the first bytes, then let memcmp against the buffer itself do the rest. */
	for (; i < len && i < 16; i++)
		if (p[i])
			return false;
	if (len <= 16)
		return true;
	return memcmp(p, p + 16, len - 16) == 0;
}

void *block_alloc_buf(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len ? len : 1))
		return NULL;
	return p;
}

#define DIRECT_ALIGN 4096

/*
 * pread or pwrite of all len bytes, through EINTR and short transfers.  At
 * the end of the file a read fills the rest with zeroes; a write that makes
 * no progress is an I/O error.
 */
static int io_full(int fd, uint64_t off, uint8_t *p, size_t len, bool write)
{
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			if (write)
				return -EIO;
			memset(p, 0, len);	/* past end of file reads as zeroes */
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int pread_full(int fd, uint64_t off, void *buf, size_t len)
{
	return io_full(fd, off, buf, len, false);
}

static int pwrite_full(int fd, uint64_t off, const void *buf, size_t len)
{
	block_crash_point();
	/* io_full only reads from buf when it writes. */
	return io_full(fd, off, (uint8_t *)buf, len, true);
}

int block_pwrite_fd(int fd, uint64_t off, const void *buf, size_t len)
{
	return pwrite_full(fd, off, buf, len);
}

static bool aligned(uint64_t off, const void *buf, size_t len)
{
	return !(off % DIRECT_ALIGN) && !(len % DIRECT_ALIGN) &&
	       !((uintptr_t)buf % DIRECT_ALIGN);
}

/* The aligned blocks around an unaligned O_DIRECT request, read. */
struct bounce {
	uint8_t *buf;
	uint64_t start, end;
};

static int bounce_read(const struct block_dev *bd, uint64_t off, size_t len, struct bounce *b)
{
	int ret;

	b->start = off & ~(uint64_t)(DIRECT_ALIGN - 1);
	b->end = (off + len + DIRECT_ALIGN - 1) & ~(uint64_t)(DIRECT_ALIGN - 1);
	b->buf = block_alloc_buf((size_t)(b->end - b->start));
	if (!b->buf)
		return -ENOMEM;
	ret = pread_full(bd->fd, b->start, b->buf, (size_t)(b->end - b->start));
	if (ret < 0)
		free(b->buf);
	return ret;
}

int bfile_pread(const struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	struct bounce b;
	int ret;

	if (bd->proto)
		return bd->proto->pread(bd->conn, off, buf, len);
	if (!bd->direct || aligned(off, buf, len))
		return pread_full(bd->fd, off, buf, len);
	ret = bounce_read(bd, off, len, &b);
	if (ret < 0)
		return ret;
	memcpy(buf, b.buf + (off - b.start), len);
	free(b.buf);
	return 0;
}

int bfile_pwrite(const struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	struct bounce b;
	struct stat st;
	off_t old_size;
	int ret;

	if (bd->proto)
		return bd->proto->pwrite(bd->conn, off, buf, len);
	if (!bd->direct || aligned(off, buf, len))
		return pwrite_full(bd->fd, off, buf, len);
	if (fstat(bd->fd, &st) < 0)
		return -errno;
	old_size = st.st_size;
	/* Read-modify-write of the partial blocks at either end. */
	ret = bounce_read(bd, off, len, &b);
	if (ret < 0)
		return ret;
	memcpy(b.buf + (off - b.start), buf, len);
	ret = pwrite_full(bd->fd, b.start, b.buf, (size_t)(b.end - b.start));
	free(b.buf);
	/* The rounded-up write must not grow the file past what was asked for. */
	if (ret == 0 && (uint64_t)old_size < b.end) {
		uint64_t want = off + len > (uint64_t)old_size ? off + len : (uint64_t)old_size;
		block_crash_point();
		if (ftruncate(bd->fd, (off_t)want) < 0)
			ret = -errno;
	}
	return ret;
}

int block_write_zero_buffer(int (*write)(void *opaque, uint64_t off, const void *buf,
					 size_t len),
			    void *opaque, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1 << 20) ? (size_t)len : (1 << 20);
	uint8_t *zero = block_alloc_buf(chunk);
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	memset(zero, 0, chunk ? chunk : 1);
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = write(opaque, off, zero, n);
		off += n;
		len -= n;
	}
	free(zero);
	return ret;
}

int bfile_flush(const struct block_dev *bd)
{
	if (bd->flags & BLOCK_NO_FLUSH)
		return 0;
	block_crash_point();
	if (bd->proto)
		return bd->proto->flush(bd->conn);
	return fdatasync(bd->fd) < 0 ? -errno : 0;
}

int64_t bfile_size(const struct block_dev *bd)
{
	struct stat st;

	if (bd->proto)
		return bd->proto->size(bd->conn);
	if (fstat(bd->fd, &st) < 0)
		return -errno;
	/* A block device's st_size is 0: its size is BLKGETSIZE64's. */
	if (S_ISBLK(st.st_mode))
		return block_device_size(bd->fd);
	return st.st_size;
}
