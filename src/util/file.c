#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

int file_read_all(const char *what, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *data;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_error("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("%s %s: not a regular file", what, path);
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		log_error("%s %s: too large (%lld bytes, at most %zu)", what, path,
			  (long long)st.st_size, max);
		goto fail;
	}
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		log_error("%s %s: out of memory", what, path);
		goto fail;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("%s %s: read failed: %s", what, path, n ? strerror(errno) : "file shrank");
			free(data);
			goto fail;
		}
		done += (size_t)n;
	}
	close(fd);
	*buf = data;
	*len = done;
	return 0;
fail:
	close(fd);
	return -1;
}

int file_size(const char *what, const char *path, uint64_t *size)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		log_error("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s %s: not a regular file", what, path);
		return -1;
	}
	if (access(path, R_OK) < 0) {
		log_error("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}
