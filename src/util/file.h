#ifndef KESTREL_UTIL_FILE_H
#define KESTREL_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads a whole regular file (at most max bytes) into a malloc'd buffer.
 * Logs "what: path: reason" and returns -1 on failure.
 */
int file_read_all(const char *what, const char *path, size_t max, uint8_t **buf, size_t *len);

/* The size of a readable regular file, without reading it; logs as file_read_all. */
int file_size(const char *what, const char *path, uint64_t *size);

#endif
