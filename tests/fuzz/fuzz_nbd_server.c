/*
 * The NBD server (src/nbd) fed one client connection's bytes: the fuzz
 * input is everything a client sends, after one byte that picks the
 * export's settings (read-only, --discard, --detect-zeroes).  The export
 * is a 1 MiB raw image in a temporary file, opened once.  The server may
 * answer or end the connection; it must never crash, hang, or read or
 * allocate past what the input announces and the limits allow.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "nbd/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct mem {
	const uint8_t *p;
	size_t left;
	size_t written;
};

static ssize_t mem_read(void *opaque, void *buf, size_t n)
{
	struct mem *m = opaque;

	if (n > m->left)
		n = m->left;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

/* Replies go nowhere; a client that stopped reading does not stop the server. */
static ssize_t mem_write(void *opaque, const void *buf, size_t n)
{
	struct mem *m = opaque;

	(void)buf;
	m->written += n;
	return (ssize_t)n;
}

static struct block_dev *export_image(void)
{
	static struct block_dev *bd;
	char path[] = "/tmp/kestrel-fuzz-nbd.XXXXXX", err[256];
	int fd;

	if (bd)
		return bd;
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	close(fd);
	if (block_open(path, "raw", BLOCK_NO_LOCK, &bd, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_nbd_server: %s\n", err);
		abort();
	}
	unlink(path);
	return bd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct nbd_export exp = { .name = "", .description = "fuzz" };
	struct mem m;
	struct nbd_io io = { mem_read, mem_write, &m };
	char err[512];

	if (len < 1)
		return 0;
	exp.bd = export_image();
	exp.size = block_length(exp.bd);
	exp.readonly = data[0] & 1;
	exp.discard_unmap = data[0] & 2;
	exp.detect_zeroes = (enum nbd_detect_zeroes)((data[0] >> 2) % 3);
	exp.multi_conn = data[0] & 16;
	if (data[0] & 32)
		exp.name = "x";
	m.p = data + 1;
	m.left = len - 1;
	m.written = 0;
	if (nbd_serve(&exp, &io, err, sizeof(err)) < 0 && !err[0])
		abort();		/* an end without a reason */
	return 0;
}
