/*
 * Creating an image on a network protocol (nfs, gluster, rbd): QEMU's
 * formats create through a BlockBackend on the protocol node; Kestrel's
 * write their new image with plain file I/O.  So the format's create runs
 * on a scratch file in a private directory under $TMPDIR, and then only
 * its data extents (SEEK_DATA/SEEK_HOLE) travel to the object the
 * protocol's creator made, which is then cut to the scratch file's length.
 * The directory shows a format that wrote more than one file (vmdk's
 * extents), which one object on the server cannot hold: refused.  An object
 * of fixed size that keeps its old bytes (an iSCSI LUN) gets the holes as
 * zeroes too, and keeps its size.
 */
#include "block/block_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGE_CHUNK	(1u << 20)

/* QEMU's words: raw passes preallocation to the protocol, which has no such option. */
int block_create_refuse_prealloc(const char *name, const struct block_driver *drv,
				 const struct block_create_opts *o, char *err, size_t errlen)
{
	(void)name;
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

/* The holes of a fixed-size object's image are zeroed: its old bytes are not the image's. */
static int zero_gap(const struct block_proto *proto, void *conn, bool fixed, off_t off,
		    off_t end)
{
	return fixed && end > off ? proto->zero(conn, (uint64_t)off, (uint64_t)(end - off), false)
				  : 0;
}

/* Before anything is written: the image fits in the fixed-size object. */
static int fits(const struct block_proto *proto, void *conn, off_t size, char *err,
		size_t errlen)
{
	int64_t have = proto->size(conn);

	if (have >= 0 && size <= have)
		return 0;
	return block_err(err, errlen, "Cannot grow %s devices: the image needs %lld bytes, "
			 "the device has %lld", proto->label, (long long)size, (long long)have);
}

/* The data extents of fd, then its length, then a flush (COMMIT): the image is on the server. */
static int upload(int fd, off_t size, const struct block_proto *proto, void *conn, bool fixed,
		  char *err, size_t errlen)
{
	uint8_t *buf;
	off_t off = 0, end, data;
	int ret = 0;

	if (fixed && fits(proto, conn, size, err, errlen) < 0)
		return -1;
	buf = malloc(STAGE_CHUNK);
	if (!buf)
		return block_err(err, errlen, "out of memory");
	while (ret == 0 && off < size) {
		data = lseek(fd, off, SEEK_DATA);
		if (data < 0) {
			ret = errno == ENXIO ? 0 : -errno;	/* ENXIO: no data after off */
			break;
		}
		end = lseek(fd, data, SEEK_HOLE);
		if (end < 0) {
			ret = -errno;
			break;
		}
		ret = zero_gap(proto, conn, fixed, off, data);
		if (ret == 0)
			ret = copy_range(fd, proto, conn, buf, data, end);
		off = end;
	}
	if (ret == 0)
		ret = zero_gap(proto, conn, fixed, off, size);
	free(buf);
	if (ret < 0)
		return block_err(err, errlen, "Could not write the image: %s", strerror(-ret));
	/* An object made of its size (rbd) keeps it, and so does a fixed one (a LUN). */
	if (!fixed && (!proto->size || proto->size(conn) != (int64_t)size) &&
	    proto->truncate(conn, (uint64_t)size, err, errlen) < 0)
		return -1;
	if ((ret = proto->flush(conn)) < 0)
		return block_err(err, errlen, "Could not flush the image: %s", strerror(-ret));
	return 0;
}

/*
 * The files the format's create made in dir: the image alone (0), or more
 * (1: vmdk's split or flat kinds).  All but the image are removed.
 */
static int other_files(const char *dir, const char *image)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int more = 0;

	if (!d)
		return 1;
	while ((e = readdir(d))) {
		char path[4200];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, image))
			continue;
		more = 1;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return more;
}

/* The scratch image at path, made on the server by creator c. */
static int send_image(const char *name, const char *path, const struct block_remote_creator *c,
		      const struct block_create_opts *o, char *err, size_t errlen)
{
	const struct block_proto *proto;
	struct stat st;
	void *conn;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = block_err(err, errlen, "Could not read back '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = c->create(name, (uint64_t)st.st_size, &proto, &conn, err, errlen);
	if (ret == 0) {
		ret = upload(fd, st.st_size, proto, conn, c->fixed_size, err, errlen);
		if (ret == 0 && c->finish)
			ret = c->finish(conn, (uint64_t)st.st_size, o, err, errlen);
		proto->close(conn);
		if (ret < 0 && c->remove)
			c->remove(name);	/* nothing half-made stays behind */
	}
	close(fd);
	return ret;
}

int block_create_staged(const char *name, const struct block_driver *drv,
			const struct block_create_opts *o, const struct block_remote_creator *c,
			char *err, size_t errlen)
{
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096], path[4200];
	int ret = -1;

	if (c->check && c->check(name, drv, o, err, errlen) < 0)
		return -1;
	if (drv == &block_raw_driver && c->create_raw)
		return c->create_raw(name, o, err, errlen);
	snprintf(dir, sizeof(dir), "%s/kestrel-create-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		return block_err(err, errlen, "Could not create a temporary directory: %s",
				 strerror(errno));
	snprintf(path, sizeof(path), "%s/image", dir);
	if (drv->create(path, o, err, errlen) == 0) {
		if (other_files(dir, "image"))
			c->several_files(name, drv, err, errlen);
		else
			ret = send_image(name, path, c, o, err, errlen);
	}
	other_files(dir, "");
	rmdir(dir);
	return ret < 0 ? -1 : 0;
}
