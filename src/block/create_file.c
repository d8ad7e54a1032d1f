/*
 * The host file a create writes: opened and locked as QEMU's
 * raw_co_create does, devices kept at their size, and file-posix's nocow
 * and extent size hints.
 */
#include "block/block_int.h"
#include "block/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Opens path to create an image in it as QEMU's raw_co_create does: without
 * O_TRUNC, so that a file another process has open is never touched; takes
 * write and resize (sharing all but resize), checks that nobody objects, and
 * only then empties the file.  Returns the descriptor, which holds the locks
 * until it is closed, or -1.
 */
/*
 * A device cannot be emptied: as QEMU's bdrv_co_create_opts_simple, its
 * first sector is zeroed once the size is known to fit, so that no old
 * header is probed in it.
 */
int block_device_zero_head(int fd)
{
	static const uint8_t zero[512];

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, sizeof(zero)) == 0)
		return 0;
	return block_pwrite_fd(fd, 0, zero, sizeof(zero));
}

int block_create_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return block_err(err, errlen, "Could not create '%s': %s", path, strerror(errno));
	if (block_lock_perms(fd, path, BLOCK_PERM_WRITE | BLOCK_PERM_RESIZE,
			     BLOCK_PERM_ALL & ~BLOCK_PERM_RESIZE, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	/* A device keeps its size and bytes (block_ftruncate, block_device_zero_head). */
	if (block_device_size(fd) >= 0)
		return fd;
	if (ftruncate(fd, 0) < 0) {
		block_err(err, errlen, "Could not create '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int64_t block_device_size(int fd)
{
	struct stat st;
	uint64_t size;

	if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode))
		return -1;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0 || size > INT64_MAX)
		return -1;
	return (int64_t)size;
}

int block_ftruncate(int fd, uint64_t len)
{
	int64_t dev = block_device_size(fd);

	if (dev < 0)
		return ftruncate(fd, (off_t)len);
	if (len > (uint64_t)dev) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

/*
 * QEMU's raw_co_create (file-posix): FS_NOCOW_FL is tried and its failure
 * ignored (only btrfs has it); the extent size hint goes through
 * FS_IOC_FSSETXATTR.  A file system that refuses the hint (tmpfs:
 * EOPNOTSUPP) only earns a warning, and none for the default nobody asked
 * for, as in QEMU 7.2; ext4 accepts the call and keeps nothing, silently.
 */
static void set_file_hints(int fd, const struct block_create_opts *o)
{
	struct fsxattr attr;
	int flags;

	if (o->nocow && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_NOCOW_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (!o->extent_size_hint)
		return;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
		attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
		attr.fsx_extsize = o->extent_size_hint;
		if (ioctl(fd, FS_IOC_FSSETXATTR, &attr) == 0)
			return;
	}
	if (o->extent_size_hint_given)
		fprintf(stderr, "%s: warning: Failed to set extent size hint: %s\n",
			program_invocation_short_name, strerror(errno));
}

int block_create_file_opts(const char *path, const struct block_create_opts *o, char *err,
			   size_t errlen)
{
	int fd = block_create_file(path, err, errlen);

	if (fd < 0)
		return -1;
	set_file_hints(fd, o);
	return fd;
}
