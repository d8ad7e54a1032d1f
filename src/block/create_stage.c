/*
 * Creating an image on a protocol that can create files (nfs): QEMU's
 * formats create through a BlockBackend on the protocol node; Kestrel's
 * write their new image with plain file I/O.  So the format's create runs
 * on a scratch memfd (sparse, in memory), and then only its data extents
 * (SEEK_DATA/SEEK_HOLE) travel to the file the protocol created, which is
 * then cut to the scratch file's length.  A new image holds metadata only
 * (preallocation that writes data is refused, as QEMU's nfs driver has
 * none), so the scratch file stays small.
 */
#include "block/block_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGE_CHUNK	(1u << 20)

/* QEMU's words: raw passes preallocation to the protocol, which has no such option. */
static int check_prealloc(const struct block_driver *drv, const struct block_create_opts *o,
			  char *err, size_t errlen)
{
	if (o->prealloc != BLOCK_PREALLOC_FALLOC && o->prealloc != BLOCK_PREALLOC_FULL)
		return 0;
	if (drv == &block_raw_driver)
		return block_err(err, errlen, "Invalid parameter 'preallocation'");
	return block_err(err, errlen, "Could not resize image: Failed to resize underlying file: "
			 "Unsupported preallocation mode '%s'",
			 o->prealloc == BLOCK_PREALLOC_FULL ? "full" : "falloc");
}

/* [off, end) of fd written to conn, STAGE_CHUNK at a time. */
static int copy_range(int fd, const struct block_proto *proto, void *conn, uint8_t *buf,
		      off_t off, off_t end)
{
	while (off < end) {
		size_t n = end - off < STAGE_CHUNK ? (size_t)(end - off) : STAGE_CHUNK;
		ssize_t r = pread(fd, buf, n, off);
		int ret;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		ret = proto->pwrite(conn, (uint64_t)off, buf, (size_t)r);
		if (ret < 0)
			return ret;
		off += r;
	}
	return 0;
}

/* The data extents of fd, then its length, then a flush (COMMIT): the image is on the server. */
static int upload(int fd, const struct block_proto *proto, void *conn, char *err,
		  size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	off_t off = 0, end;
	int ret = 0;

	if (fstat(fd, &st) < 0)
		return block_err(err, errlen, "%s", strerror(errno));
	buf = malloc(STAGE_CHUNK);
	if (!buf)
		return block_err(err, errlen, "out of memory");
	while (ret == 0 && off < st.st_size) {
		off = lseek(fd, off, SEEK_DATA);
		if (off < 0) {
			ret = errno == ENXIO ? 0 : -errno;	/* ENXIO: no data after off */
			break;
		}
		end = lseek(fd, off, SEEK_HOLE);
		if (end < 0) {
			ret = -errno;
			break;
		}
		ret = copy_range(fd, proto, conn, buf, off, end);
		off = end;
	}
	free(buf);
	if (ret == 0)
		ret = proto->truncate(conn, (uint64_t)st.st_size, err, errlen) < 0 ? -1 : 0;
	else
		return block_err(err, errlen, "Could not write the image: %s", strerror(-ret));
	if (ret == 0 && (ret = proto->flush(conn)) < 0)
		return block_err(err, errlen, "Could not flush the image: %s", strerror(-ret));
	return ret;
}

int block_create_staged(const char *name, const struct block_driver *drv,
			const struct block_create_opts *o, block_remote_create_fn creator,
			char *err, size_t errlen)
{
	const struct block_proto *proto;
	void *conn;
	char path[64];
	int fd, ret;

	if (check_prealloc(drv, o, err, errlen) < 0)
		return -1;
	fd = memfd_create("kestrel-create", MFD_CLOEXEC);
	if (fd < 0)
		return block_err(err, errlen, "Could not create a scratch file: %s",
				 strerror(errno));
	/* The driver opens it by name: the memfd's /proc link reopens the same file. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = drv->create(path, o, err, errlen);
	if (ret < 0 && err && strstr(err, path))
		/* Files beside the image (vmdk extents) are not on the server: say so. */
		block_err(err, errlen, "Kestrel creates only single-file images on %.*s "
			  "protocols: the format asked for a second file", (int)strcspn(name, ":"),
			  name);
	if (ret == 0)
		ret = creator(name, &proto, &conn, err, errlen);
	if (ret == 0) {
		ret = upload(fd, proto, conn, err, errlen);
		proto->close(conn);
	}
	close(fd);
	return ret < 0 ? -1 : 0;
}
