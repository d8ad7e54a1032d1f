/*
 * block-io: a small writer over the block library for the system tests
 * (tests/system/test_img*.py): applies requests read from stdin, one per
 * line, taking data from a pattern file so the tests know what was written.
 *
 *   w OFF LEN DOFF   write LEN bytes of the data file at DOFF to OFF
 *   c OFF LEN DOFF   the same, compressed (whole clusters)
 *   z OFF LEN        write zeroes, keeping allocation
 *   u OFF LEN        discard (reads return zeroes)
 *   r OFF LEN DOFF   read and compare with the data file (exit 3 on mismatch)
 *   f                flush; prints "flushed N" once N requests are stable
 *
 * Usage: block-io [-f fmt] [-t cache] [-d datafile] [-k password] [-e] image < requests
 * (-k: the key of an encrypted image, as a secret the image's key-secret names;
 *  -e: go on after a failed request, as qemu-io does, exiting 2 if any failed)
 */
#include "block/block_img.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cache_flags(const char *mode, unsigned *flags)
{
	if (!strcmp(mode, "none")) *flags = BLOCK_NOCACHE;
	else if (!strcmp(mode, "writeback")) *flags = 0;
	else if (!strcmp(mode, "writethrough")) *flags = BLOCK_DSYNC;
	else if (!strcmp(mode, "directsync")) *flags = BLOCK_NOCACHE | BLOCK_DSYNC;
	else if (!strcmp(mode, "unsafe")) *flags = BLOCK_NO_FLUSH;
	else return -1;
	return 0;
}

static int read_data(int fd, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *fmt = NULL, *data = NULL, *key = NULL;
	unsigned flags = 0;
	struct block_dev *bd;
	char err[1024], line[256];
	unsigned long long count = 0;
	int c, dfd = -1, ret = 0, failed = 0;
	bool go_on = false;

	while ((c = getopt(argc, argv, "f:t:d:k:e")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 't':
			if (cache_flags(optarg, &flags) < 0) {
				fprintf(stderr, "block-io: bad cache mode %s\n", optarg);
				return 1;
			}
			break;
		case 'd': data = optarg; break;
		case 'k': key = optarg; break;
		case 'e': go_on = true; break;
		default:
			fprintf(stderr, "usage: block-io [-f fmt] [-t cache] [-d datafile] [-k password] image\n");
			return 1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: block-io [-f fmt] [-t cache] [-d datafile] [-k password] image\n");
		return 1;
	}
	if (data && (dfd = open(data, O_RDONLY)) < 0) {
		perror(data);
		return 1;
	}
	if (key && block_secret_add("key0", key, strlen(key)) < 0) {
		fprintf(stderr, "block-io: could not add the key\n");
		return 1;
	}
	if (block_open_key(argv[optind], fmt, flags, key ? "key0" : NULL, &bd, err,
			   sizeof(err)) < 0) {
		fprintf(stderr, "block-io: %s\n", err);
		return 1;
	}
	while (ret == 0 && fgets(line, sizeof(line), stdin)) {
		unsigned long long off = 0, len = 0, doff = 0;
		char op = 0;
		void *buf = NULL, *want = NULL;

		if (sscanf(line, " %c %llu %llu %llu", &op, &off, &len, &doff) < 1)
			continue;
		switch (op) {
		case 'w':
		case 'c':
		case 'r':
			buf = block_alloc_buf(len);
			want = malloc(len ? len : 1);
			if (!buf || !want || dfd < 0 || read_data(dfd, doff, want, len) < 0) {
				fprintf(stderr, "block-io: no data for '%s'\n", line);
				ret = -EINVAL;
				break;
			}
			if (op == 'r') {
				ret = block_pread(bd, off, buf, len);
				if (ret == 0 && memcmp(buf, want, len)) {
					fprintf(stderr, "block-io: mismatch in %llu+%llu\n", off, len);
					free(buf);
					free(want);
					block_close(bd);
					return 3;
				}
			} else {
				memcpy(buf, want, len);
				ret = op == 'w' ? block_pwrite(bd, off, buf, len)
						: block_pwrite_compressed(bd, off, buf, len);
			}
			break;
		case 'z':
			ret = block_write_zeroes(bd, off, len, false);
			break;
		case 'u':
			ret = block_discard(bd, off, len);
			break;
		case 'f':
			ret = block_flush(bd);
			if (ret == 0) {
				printf("flushed %llu\n", count);
				fflush(stdout);
			}
			break;
		default:
			fprintf(stderr, "block-io: unknown request '%c'\n", op);
			ret = -EINVAL;
		}
		free(buf);
		free(want);
		if (ret < 0)
			fprintf(stderr, "block-io: %s: %s", strerror(-ret), line);
		if (ret < 0 && go_on) {
			failed = 1;
			ret = 0;
		}
		count++;
	}
	block_close(bd);
	return ret < 0 || failed ? 2 : 0;
}
