/*
 * Image locking compatible with QEMU's file-posix locks: OFD byte-range
 * locks on bytes 100+perm ("I use this permission") and 200+perm ("I do not
 * share this permission"), so kestrel, kestrel-img and QEMU all see each other.
 */
#ifndef KESTREL_BLOCK_LOCK_H
#define KESTREL_BLOCK_LOCK_H

#include <stdbool.h>
#include <stddef.h>

/* QEMU's BLK_PERM_* (include/block/block-common.h); the lock bytes are 100+n and 200+n. */
#define BLOCK_PERM_READ			(1u << 0)	/* "consistent read" */
#define BLOCK_PERM_WRITE		(1u << 1)
#define BLOCK_PERM_WRITE_UNCHANGED	(1u << 2)
#define BLOCK_PERM_RESIZE		(1u << 3)
#define BLOCK_PERM_ALL			0xfu

/*
 * Takes the locks for the permissions perm, sharing only those in shared,
 * then checks (in QEMU's order, with its message) that no other open file
 * refuses to share what we use or uses what we do not share.  The locks
 * stay with fd's open file until it is closed, also after a failure.
 */
int block_lock_perms(int fd, const char *path, unsigned perm, unsigned shared, char *err,
		     size_t errlen);

/*
 * Takes the locks for a reader (consistent read, not sharing write) or a
 * writer (read + write + resize, sharing neither write nor resize).  Fails
 * with a message naming the other holder (its pid when /proc tells).
 */
int block_lock(int fd, const char *path, bool write, char *err, size_t errlen);

#endif
