/*
 * The copy-on-read filter (QEMU's block/copy-on-read.c and the
 * BDRV_REQ_COPY_ON_READ path of block/io.c, 7.2): reads of ranges the child
 * does not hold in its own layer (data of its backing chain, or nothing)
 * are written into the child as they pass, whole clusters at a time, so a
 * later read finds them there; zeroes become zero writes.  Writes pass
 * through.  Opened as driver=copy-on-read (file= the child) or by the
 * VMM's -drive copy-on-read=on.  The copies are writes: like QEMU, a
 * read-only open is refused.  QEMU's bottom= names a node, and Kestrel has
 * no node names: refused by name.
 */
#include "block/blkdebug.h"
#include "block/filter.h"
#include "util/opts.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COR_CHUNK (4u << 20)	/* the most one copy reads and writes at once */

/*
 * One request at a time: a copy reads backing data and writes it into the
 * child, and a guest write to the same cluster in between would be undone
 * by it (QEMU serialises such requests the same way).
 */
struct cor {
	pthread_mutex_t lock;
	struct block_dev *child;
	uint32_t cluster;	/* the copy granularity: the child's cluster size */
};

/* The aligned range [*start, *end) around [off, off+len), inside the child. */
static void align_range(const struct cor *c, uint64_t off, uint64_t len, uint64_t *start,
			uint64_t *end)
{
	uint64_t size = block_length(c->child);

	*start = off - off % c->cluster;
	*end = off + len + (c->cluster - 1);
	*end -= *end % c->cluster;
	if (*end > size)
		*end = size;
}

/* [off, off+len), all outside the child's own layer: read, copied in, then given. */
static int copy_in(struct cor *c, uint64_t off, uint8_t *buf, size_t len)
{
	uint64_t start, end;
	uint8_t *bounce;
	int ret;

	align_range(c, off, len, &start, &end);
	bounce = malloc((size_t)(end - start));
	if (!bounce)
		return -ENOMEM;
	ret = block_pread(c->child, start, bounce, (size_t)(end - start));
	if (ret == 0) {
		/* QEMU's bdrv_co_do_copy_on_readv: zero data is written as zeroes. */
		block_debug_event(c->child, BLKDBG_COR_WRITE);
		if (block_buffer_is_zero(bounce, (size_t)(end - start)))
			ret = block_write_zeroes(c->child, start, end - start, false);
		else
			ret = block_pwrite(c->child, start, bounce, (size_t)(end - start));
	}
	if (ret == 0)
		memcpy(buf, bounce + (off - start), len);
	free(bounce);
	return ret;
}

static int cor_pread_locked(struct cor *c, uint64_t off, void *buf, size_t len)
{
	uint64_t size = block_length(c->child);
	uint8_t *p = buf;

	while (len) {
		uint64_t pnum = 0, want = len < COR_CHUNK ? len : COR_CHUNK;
		unsigned flags = 0;
		int ret;

		if (off >= size) {
			memset(p, 0, len);
			return 0;
		}
		if (want > size - off)
			want = size - off;
		ret = block_status(c->child, off, want, &pnum, NULL, &flags);
		if (ret < 0)
			return ret;
		if (!pnum || pnum > want)
			pnum = want;
		if (flags & BLOCK_STATUS_ALLOCATED)
			ret = block_pread(c->child, off, p, (size_t)pnum);
		else
			ret = copy_in(c, off, p, (size_t)pnum);
		if (ret < 0)
			return ret;
		off += pnum;
		p += pnum;
		len -= (size_t)pnum;
	}
	return 0;
}

static int cor_pread(void *conn, uint64_t off, void *buf, size_t len)
{
	struct cor *c = conn;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = cor_pread_locked(c, off, buf, len);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int cor_pwrite(void *conn, uint64_t off, const void *buf, size_t len)
{
	struct cor *c = conn;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = block_child_pwrite(c->child, off, buf, len);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int cor_zero(void *conn, uint64_t off, uint64_t len, bool may_unmap)
{
	struct cor *c = conn;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = block_child_write_zeroes(c->child, off, len, may_unmap);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int cor_flush(void *conn)
{
	return block_flush(((struct cor *)conn)->child);
}

static int cor_status(void *conn, uint64_t off, uint64_t len, uint64_t *pnum, unsigned *flags)
{
	return block_child_status(((struct cor *)conn)->child, off, len, pnum, flags);
}

static int64_t cor_size(void *conn)
{
	return (int64_t)block_length(((struct cor *)conn)->child);
}

static int cor_truncate(void *conn, uint64_t size, char *err, size_t errlen)
{
	return block_child_truncate(((struct cor *)conn)->child, size, err, errlen);
}

static void cor_close(void *conn)
{
	struct cor *c = conn;

	block_close(c->child);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static const struct block_proto cor_proto = {
	.name = "copy-on-read", .label = "copy-on-read",
	.pread = cor_pread, .pwrite = cor_pwrite, .flush = cor_flush, .zero = cor_zero,
	.status = cor_status, .size = cor_size, .truncate = cor_truncate, .close = cor_close,
};

/* The filter over child (owned from here on, also on failure), raw on top. */
static int cor_open(struct block_dev *child, const char *display, const char *format, bool alone,
		    unsigned flags, struct block_dev *parent, struct block_dev **out, char *err,
		    size_t errlen)
{
	struct cor *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c) {
		block_close(child);
		return block_err(err, errlen, "out of memory");
	}
	pthread_mutex_init(&c->lock, NULL);
	c->child = child;
	c->cluster = block_cluster_size(child);
	if (!c->cluster)
		c->cluster = 512;	/* formats without clusters: sectors */
	if (block_open_proto(display, &cor_proto, c, format, flags, parent, out, err,
			     errlen) < 0)
		return -1;
	if (alone)
		(*out)->format_name = "copy-on-read";
	return 0;
}

int block_cor_open_opts(struct opts *o, const char *pfx, const char *format, bool alone,
			unsigned flags, struct block_dev *parent, struct block_dev **out,
			char *err, size_t errlen)
{
	struct block_dev *child;
	char key[128];
	const char *v;

	*out = NULL;
	snprintf(key, sizeof(key), "%sbottom", pfx);
	if (opts_get(o, key))
		return block_err(err, errlen, "Option 'bottom' of block driver 'copy-on-read' is "
				 "not supported by Kestrel (it names a node; Kestrel has no node "
				 "names)");
	snprintf(key, sizeof(key), "%sfile", pfx);
	if ((v = opts_get(o, key)))
		return block_err(err, errlen, "Cannot find device='%s' nor node-name='%s'", v, v);
	if (flags & BLOCK_RDONLY)
		return block_err(err, errlen, "Block node is read-only");
	strcat(key, ".");
	if (!block_opts_have(o, key))
		return block_err(err, errlen, "A block device must be specified for \"file\"");
	if (block_open_opts_child(o, key, flags, &child, err, errlen) < 0)
		return -1;
	return cor_open(child, block_filename(child), format, alone, flags, parent, out, err,
			errlen);
}

int block_copy_on_read(struct block_dev *child, struct block_dev **out, char *err,
		       size_t errlen)
{
	*out = NULL;
	if (block_is_readonly(child)) {
		block_close(child);
		return block_err(err, errlen, "Can't use copy-on-read on read-only device");
	}
	if (cor_open(child, block_filename(child), "raw", false, child->flags, NULL, out, err,
		     errlen) < 0)
		return -1;
	/* The guest's disk keeps its format's name (info block). */
	(*out)->format_name = block_format_name(child);
	return 0;
}
