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

/* QEMU's RAW_LOCK_PERM_BASE / RAW_LOCK_SHARED_BASE, plus the BLK_PERM_* bit number. */
#define PERM_BASE	100
#define SHARED_BASE	200
#define PERM_COUNT	4

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

static const char *const perm_names[PERM_COUNT] = {
	"consistent read", "write", "write unchanged", "resize",
};

/*
 * QEMU's wording (raw_check_lock_bytes, with the hint its callers append),
 * and the holder's pid when /proc tells it.
 */
static int refuse(int fd, int byte, const char *path, bool shared, int perm, char *err,
		  size_t errlen)
{
	long pid = lock_holder(fd, byte);
	char who[64] = "";

	if (pid > 0)
		snprintf(who, sizeof(who), " It is in use by process %ld.", pid);
	return block_err(err, errlen,
			 "Failed to get %s\"%s\" lock\nIs another process using the image [%s]?%s",
			 shared ? "shared " : "", perm_names[perm], path, who);
}

int block_lock_perms(int fd, const char *path, unsigned perm, unsigned shared, char *err,
		     size_t errlen)
{
	/* Step one: announce what we use (100+n) and what we do not share (200+n). */
	for (int i = 0; i < PERM_COUNT; i++) {
		int ret = 0;
		if (perm & (1u << i))
			ret = lock_byte(fd, PERM_BASE + i);
		if (ret == 0 && !(shared & (1u << i)))
			ret = lock_byte(fd, SHARED_BASE + i);
		if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK)
			return 0;	/* a file system without OFD locks: QEMU goes on too */
		if (ret < 0)
			return block_err(err, errlen, "Failed to lock '%s': %s", path, strerror(-ret));
	}
	/* Step two: nobody refuses to share what we use, nobody uses what we keep. */
	for (int i = 0; i < PERM_COUNT; i++)
		if ((perm & (1u << i)) && byte_taken(fd, SHARED_BASE + i))
			return refuse(fd, SHARED_BASE + i, path, false, i, err, errlen);
	for (int i = 0; i < PERM_COUNT; i++)
		if (!(shared & (1u << i)) && byte_taken(fd, PERM_BASE + i))
			return refuse(fd, PERM_BASE + i, path, true, i, err, errlen);
	return 0;
}

int block_lock(int fd, const char *path, bool write, char *err, size_t errlen)
{
	/* A writer may change and resize the image and lets nobody else do either. */
	if (write)
		return block_lock_perms(fd, path, BLOCK_PERM_ALL, BLOCK_PERM_READ |
					BLOCK_PERM_WRITE_UNCHANGED, err, errlen);
	/* A reader wants consistent data: nobody may write meanwhile. */
	return block_lock_perms(fd, path, BLOCK_PERM_READ, BLOCK_PERM_ALL & ~BLOCK_PERM_WRITE,
				err, errlen);
}
