/*
 * Image locking compatible with QEMU's file-posix locks: OFD byte-range
 * locks on bytes 100+perm ("I use this permission") and 200+perm ("I do not
 * share this permission"), so kestrel, kestrel-img and QEMU all see each other.
 */
#ifndef KESTREL_BLOCK_LOCK_H
#define KESTREL_BLOCK_LOCK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Takes the locks for a reader (consistent read, not sharing write) or a
 * writer (read + write + resize, sharing neither write nor resize).  Fails
 * with a message naming the other holder (its pid when /proc tells).
 */
int block_lock(int fd, const char *path, bool write, char *err, size_t errlen);

#endif
