/*
 * null-co / null-aio (QEMU's block/null.c): a disk with no storage.  Writes
 * are discarded; reads return zeroes.  QEMU leaves the buffer untouched
 * unless read-zeroes=on; Kestrel always zeroes it, so no stale memory can
 * pass for disk data, and keeps QEMU's block status: with read-zeroes=off
 * the content is "unknown" (neither data nor zero), with read-zeroes=on it
 * is zero at offset == guest offset.  latency-ns=N makes every read, write
 * and flush take N ns first (QEMU's null_co_common), for testing timeouts.
 */
#include "block/block_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct null_state {
	bool read_zeroes;
	uint64_t latency_ns;
};

/* QEMU's null_co_common: the request's latency before it completes. */
static void null_wait(const struct block_dev *bd)
{
	const struct null_state *s = bd->opaque;
	struct timespec ts = { .tv_sec = (time_t)(s->latency_ns / 1000000000ULL),
			       .tv_nsec = (long)(s->latency_ns % 1000000000ULL) };

	while (s->latency_ns && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int null_open(struct block_dev *bd, char *err, size_t errlen)
{
	return 0;
}

static void null_close(struct block_dev *bd)
{
	free(bd->opaque);
	bd->opaque = NULL;
}

static int null_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len)
{
	null_wait(bd);
	memset(buf, 0, len);
	return 0;
}

static int null_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	null_wait(bd);
	return 0;
}

static int null_flush(struct block_dev *bd)
{
	null_wait(bd);
	return 0;
}

static int null_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
	null_wait(bd);	/* QEMU writes a zero buffer through its pwritev */
	return 0;
}

static int null_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
		       uint64_t *map, unsigned *flags)
{
	const struct null_state *s = bd->opaque;

	*pnum = len;
	*map = off;
	*flags = s->read_zeroes ? BLOCK_STATUS_ZERO | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED
				: 0;
	return 0;
}

/* QEMU's null driver has no bdrv_get_info: info shows no dirty flag for it. */
static int null_get_info(struct block_dev *bd, struct block_info *info)
{
	info->virtual_size = bd->size;
	return -ENOTSUP;
}

const struct block_driver block_null_driver = {
	.name = "null-co",
	.open = null_open,
	.close = null_close,
	.pread = null_pread,
	.pwrite = null_pwrite,
	.flush = null_flush,
	.write_zeroes = null_write_zeroes,
	.status = null_status,
	.get_info = null_get_info,
};

bool block_unallocated_is_zero(const struct block_dev *bd)
{
	return bd->drv != &block_null_driver;
}

int block_null_open(const char *display, const char *format_name, uint64_t size,
		    bool read_zeroes, uint64_t latency_ns, unsigned flags, struct block_dev **out,
		    char *err, size_t errlen)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));
	struct null_state *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!bd || !s || !(bd->filename = strdup(display))) {
		free(bd);
		free(s);
		return block_err(err, errlen, "out of memory");
	}
	/* The fields block_close and block_free expect of any node. */
	bd->fd = -1;
	pthread_mutex_init(&bd->block0_lock, NULL);
	bd->drv = &block_null_driver;
	bd->flags = flags;
	bd->read_only = flags & BLOCK_RDONLY;
	bd->size = size;
	bd->format_name = format_name;
	s->read_zeroes = read_zeroes;
	s->latency_ns = latency_ns;
	bd->opaque = s;
	*out = bd;
	return 0;
}
