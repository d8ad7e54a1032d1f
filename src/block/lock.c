#include "block/lock.h"
#include "block/block_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* QEMU's RAW_LOCK_PERM_BASE / RAW_LOCK_SHARED_BASE and BLK_PERM_* bit numbers. */
#define PERM_BASE	100
#define SHARED_BASE	200
#define PERM_READ	0
#define PERM_WRITE	1
#define PERM_WRITE_UNCHANGED 2
#define PERM_RESIZE	3

static int lock_byte(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* True when another open file holds a lock on the byte. */
static bool byte_taken(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

/*
 * /proc/locks shows -1 as the pid of OFD locks, but /proc/PID/fdinfo/FD lists
 * the locks of each open file with their owner's pid in the path.
 */
static long lock_holder(int fd, int byte)
{
	char want[64], path[300], line[256];
	struct stat st;
	struct dirent *p, *f;
	DIR *proc, *fds;
	long found = -1, self = (long)getpid();

	if (fstat(fd, &st) < 0)
		return -1;
	snprintf(want, sizeof(want), " %02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev),
		 (unsigned long)st.st_ino);
	proc = opendir("/proc");
	if (!proc)
		return -1;
	while (found < 0 && (p = readdir(proc))) {
		char *end;
		long pid = strtol(p->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fdinfo", pid);
		fds = opendir(path);
		if (!fds)
			continue;
		while (found < 0 && (f = readdir(fds))) {
			FILE *fp;
			if (f->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, f->d_name);
			fp = fopen(path, "r");
			if (!fp)
				continue;
			while (fgets(line, sizeof(line), fp)) {
				char *at;
				long lo, hi;
				if (strncmp(line, "lock:", 5) || !(at = strstr(line, want)))
					continue;
				if (sscanf(at + strlen(want), "%ld %ld", &lo, &hi) == 2 &&
				    lo <= byte && byte <= hi) {
					found = pid;
					break;
				}
			}
			fclose(fp);
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

static int refuse(int fd, int byte, const char *path, const char *what, char *err,
		  size_t errlen)
{
	long pid = lock_holder(fd, byte);

	if (pid > 0)
		return block_err(err, errlen,
				 "Failed to get %s lock: '%s' is in use by process %ld", what,
				 path, pid);
	return block_err(err, errlen,
			 "Failed to get %s lock: '%s' is in use by another process", what, path);
}

int block_lock(int fd, const char *path, bool write, char *err, size_t errlen)
{
	static const int reader[] = { PERM_BASE + PERM_READ, SHARED_BASE + PERM_WRITE };
	static const int writer[] = {
		PERM_BASE + PERM_READ, PERM_BASE + PERM_WRITE, PERM_BASE + PERM_WRITE_UNCHANGED,
		PERM_BASE + PERM_RESIZE, SHARED_BASE + PERM_WRITE, SHARED_BASE + PERM_RESIZE,
	};
	const int *bytes = write ? writer : reader;
	size_t n = write ? sizeof(writer) / sizeof(writer[0]) : sizeof(reader) / sizeof(reader[0]);

	for (size_t i = 0; i < n; i++) {
		int ret = lock_byte(fd, bytes[i]);
		if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK)
			return 0;	/* a file system without OFD locks: QEMU goes on too */
		if (ret < 0)
			return block_err(err, errlen, "Failed to lock '%s': %s", path, strerror(-ret));
	}
	/* Someone writing, or someone who does not let others write while we write. */
	if (byte_taken(fd, PERM_BASE + PERM_WRITE))
		return refuse(fd, PERM_BASE + PERM_WRITE, path, "shared \"write\"", err, errlen);
	if (write && byte_taken(fd, SHARED_BASE + PERM_WRITE))
		return refuse(fd, SHARED_BASE + PERM_WRITE, path, "\"write\"", err, errlen);
	if (write && byte_taken(fd, PERM_BASE + PERM_RESIZE))
		return refuse(fd, PERM_BASE + PERM_RESIZE, path, "\"resize\"", err, errlen);
	return 0;
}
