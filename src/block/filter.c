/*
 * What the filter nodes (blkdebug, quorum, copy-on-read) share: I/O on a
 * child node with the contract of a protocol (block_int.h struct block_proto).
 */
#include "block/filter.h"
#include "util/opts.h"

#include <errno.h>
#include <string.h>

int block_child_pread(struct block_dev *child, uint64_t off, void *buf, size_t len)
{
	uint64_t size = block_length(child);
	size_t n = off < size ? (size - off < len ? (size_t)(size - off) : len) : 0;
	int ret = n ? block_pread(child, off, buf, n) : 0;

	if (ret == 0)
		memset((uint8_t *)buf + n, 0, len - n);
	return ret;
}

/* A file node (raw over a file or null-co) grows; any other node keeps its size. */
static bool grows(const struct block_dev *child, uint64_t end)
{
	return end > child->size && child->drv == &block_raw_driver && !child->read_only &&
	       !child->backing;
}

int block_child_pwrite(struct block_dev *child, uint64_t off, const void *buf, size_t len)
{
	int ret;

	if (!grows(child, off + len))
		return block_pwrite(child, off, buf, len);
	ret = child->drv->pwrite(child, off, buf, len);
	if (ret == 0)
		child->size = off + len;
	return ret;
}

int block_child_write_zeroes(struct block_dev *child, uint64_t off, uint64_t len,
			     bool may_unmap)
{
	int ret;

	if (!grows(child, off + len))
		return block_write_zeroes(child, off, len, may_unmap);
	ret = child->drv->write_zeroes(child, off, len, may_unmap);
	if (ret == 0)
		child->size = off + len;
	return ret;
}

int block_child_status(struct block_dev *child, uint64_t off, uint64_t len, uint64_t *pnum,
		       unsigned *flags)
{
	uint64_t size = block_length(child);
	unsigned f = 0;
	int ret;

	if (off >= size) {
		*pnum = len;
		*flags = BLOCK_STATUS_ZERO;
		return 0;
	}
	ret = block_status(child, off, len < size - off ? len : size - off, pnum, NULL, &f);
	if (ret < 0)
		return ret;
	*flags = f & (BLOCK_STATUS_DATA | BLOCK_STATUS_ZERO);
	/* Not in the child's own layer: its backing file's data, else zeroes (null-co: data). */
	if (!*flags)
		*flags = !child->backing && block_unallocated_is_zero(child) ? BLOCK_STATUS_ZERO
									     : BLOCK_STATUS_DATA;
	return 0;
}

int block_child_truncate(struct block_dev *child, uint64_t size, char *err, size_t errlen)
{
	return block_truncate(child, size, true, BLOCK_PREALLOC_OFF, err, errlen);
}

bool block_opts_have(const struct opts *o, const char *pfx)
{
	size_t n = strlen(pfx);

	for (size_t i = 0; i < o->count; i++)
		if (!strncmp(o->items[i].key, pfx, n))
			return true;
	return false;
}
