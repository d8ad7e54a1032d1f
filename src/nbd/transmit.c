/*
 * NBD server: the transmission phase (NBD protocol, doc/proto.md
 * "Transmission phase").  Requests are served one at a time per connection;
 * every offset and length is checked against the export and NBD_MAX_REQUEST
 * before a buffer is taken.  A request that cannot be answered in protocol
 * (bad magic, a write whose payload cannot be read) ends the connection.
 */
#include "nbd/nbd_int.h"
#include "nbd/proto.h"
#include "block/block_img.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct request {
	uint16_t flags, type;
	uint64_t handle, offset;
	uint32_t len;
};

/* The wire's error numbers (proto.md, "Error values"); others read as EINVAL, as in QEMU. */
static uint32_t nbd_errno(int e)
{
	switch (e) {
	case 0: return 0;
	case EPERM: case EROFS: return NBD_EPERM;
	case EIO: return NBD_EIO;
	case ENOMEM: return NBD_ENOMEM;
	case ENOSPC: case EFBIG: case EDQUOT: return NBD_ENOSPC;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EINVAL;
	}
}

static int simple_reply(struct nbd_conn *c, const struct request *r, int e, const void *data,
			size_t len)
{
	uint8_t h[16];

	st_be32(h, NBD_SIMPLE_REPLY_MAGIC);
	st_be32(h + 4, nbd_errno(e));
	st_be64(h + 8, r->handle);
	if (nbd_send(c, h, sizeof(h)) < 0)
		return -1;
	return !e && len ? nbd_send(c, data, len) : 0;
}

static int chunk_header(struct nbd_conn *c, const struct request *r, uint16_t flags,
			uint16_t type, uint32_t len)
{
	uint8_t h[20];

	st_be32(h, NBD_STRUCTURED_REPLY_MAGIC);
	st_be16(h + 4, flags);
	st_be16(h + 6, type);
	st_be64(h + 8, r->handle);
	st_be32(h + 16, len);
	return nbd_send(c, h, sizeof(h));
}

/* NBD_REPLY_TYPE_ERROR, the last chunk, with a message. */
static int chunk_error(struct nbd_conn *c, const struct request *r, int e)
{
	const char *msg = strerror(e);
	uint16_t ml = (uint16_t)strlen(msg);
	uint8_t d[6];

	st_be32(d, nbd_errno(e));
	st_be16(d + 4, ml);
	if (chunk_header(c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, 6u + ml) < 0 ||
	    nbd_send(c, d, 6) < 0)
		return -1;
	return nbd_send(c, msg, ml);
}

/* An error, or success without data, in the reply kind the client negotiated. */
static int reply(struct nbd_conn *c, const struct request *r, int e)
{
	if (c->structured && e)
		return chunk_error(c, r, e);
	return simple_reply(c, r, e, NULL, 0);
}

/*
 * Allocation status of [off, off + len) of the export, through the backing
 * chain as QEMU's bdrv_block_status_above: *hole when no layer stores data,
 * *zero when reads return zeroes.
 */
static int export_status(struct nbd_conn *c, uint64_t off, uint64_t len, uint64_t *pnum,
			 uint32_t *state)
{
	struct block_dev *layer = c->exp->bd;
	uint64_t pos = c->exp->offset + off;
	unsigned f;

	*pnum = len;
	for (;;) {
		int ret = block_status(layer, pos, *pnum, pnum, NULL, &f);
		if (ret < 0)
			return ret;
		if (f & (BLOCK_STATUS_ZERO | BLOCK_STATUS_DATA)) {
			*state = (f & BLOCK_STATUS_DATA ? 0 : NBD_STATE_HOLE) |
				 (f & BLOCK_STATUS_ZERO ? NBD_STATE_ZERO : 0);
			return 0;
		}
		if (!block_backing(layer) || pos >= block_length(block_backing(layer))) {
			*state = NBD_STATE_HOLE |
				 (block_unallocated_is_zero(layer) ? NBD_STATE_ZERO : 0);
			return 0;
		}
		layer = block_backing(layer);
		if (*pnum > block_length(layer) - pos)
			*pnum = block_length(layer) - pos;
	}
}

static int read_data(struct nbd_conn *c, uint64_t off, void *buf, uint32_t len)
{
	return block_pread(c->exp->bd, c->exp->offset + off, buf, len);
}

/*
 * A structured READ: zero runs go as NBD_REPLY_TYPE_OFFSET_HOLE, the rest as
 * OFFSET_DATA (QEMU's sparse read), all of it in one OFFSET_DATA chunk under
 * NBD_CMD_FLAG_DF.  Errors before the first chunk are one error chunk.
 */
static int structured_read(struct nbd_conn *c, const struct request *r, uint8_t *buf)
{
	uint64_t done = 0;

	while (done < r->len) {
		uint64_t n = r->len - done;
		uint32_t st = 0;
		uint8_t d[12];
		bool last;
		int e = 0;

		if (!(r->flags & NBD_CMD_FLAG_DF))
			e = export_status(c, r->offset + done, n, &n, &st);
		if (!e && !(st & NBD_STATE_ZERO))
			e = read_data(c, r->offset + done, buf, (uint32_t)n);
		if (e)
			return chunk_error(c, r, -e);
		last = done + n == r->len;
		st_be64(d, r->offset + done);
		if (st & NBD_STATE_ZERO) {
			st_be32(d + 8, (uint32_t)n);
			if (chunk_header(c, r, last ? NBD_REPLY_FLAG_DONE : 0,
					 NBD_REPLY_TYPE_OFFSET_HOLE, 12) < 0 ||
			    nbd_send(c, d, 12) < 0)
				return -1;
		} else if (chunk_header(c, r, last ? NBD_REPLY_FLAG_DONE : 0,
					NBD_REPLY_TYPE_OFFSET_DATA, 8 + (uint32_t)n) < 0 ||
			   nbd_send(c, d, 8) < 0 || nbd_send(c, buf, n) < 0) {
			return -1;
		}
		done += n;
	}
	return 0;
}

static int cmd_read(struct nbd_conn *c, const struct request *r)
{
	uint8_t *buf;
	int ret, e;

	if (r->len == 0) {
		/* Nothing to send; a structured reply still needs a final chunk. */
		if (c->structured)
			return chunk_header(c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0);
		return simple_reply(c, r, 0, NULL, 0);
	}
	buf = malloc(r->len);
	if (!buf)
		return reply(c, r, ENOMEM);
	if (c->structured) {
		ret = structured_read(c, r, buf);
	} else {
		e = read_data(c, r->offset, buf, r->len);
		ret = simple_reply(c, r, -e, buf, r->len);
	}
	free(buf);
	return ret;
}

static int flush_if_fua(struct nbd_conn *c, const struct request *r, int e)
{
	if (!e && (r->flags & NBD_CMD_FLAG_FUA))
		e = block_flush(c->exp->bd);
	return e;
}

/* --detect-zeroes: a write of zeroes becomes a zero write (QEMU's bdrv_co_do_pwrite_zeroes). */
static int write_data(struct nbd_conn *c, uint64_t off, const void *buf, uint32_t len)
{
	const struct nbd_export *x = c->exp;

	if (x->detect_zeroes != NBD_DZ_OFF && block_buffer_is_zero(buf, len))
		return block_write_zeroes(x->bd, x->offset + off, len,
					  x->detect_zeroes == NBD_DZ_UNMAP && x->discard_unmap);
	return block_pwrite(x->bd, x->offset + off, buf, len);
}

/* The payload is read first so that an error reply keeps the stream in step. */
static int cmd_write(struct nbd_conn *c, const struct request *r, int e)
{
	uint8_t *buf = NULL;

	if (r->len) {
		buf = malloc(r->len);
		if (!buf)
			return nbd_fail(c, "out of memory for a %u byte write", r->len);
		if (nbd_recv(c, buf, r->len) < 0) {
			free(buf);
			return -1;
		}
	}
	if (!e && r->len)
		e = -write_data(c, r->offset, buf, r->len);
	free(buf);
	if (!e)
		e = -flush_if_fua(c, r, 0);
	return reply(c, r, e);
}

static int cmd_zero(struct nbd_conn *c, const struct request *r)
{
	const struct nbd_export *x = c->exp;
	int e = 0;

	if (r->len)
		e = block_write_zeroes(x->bd, x->offset + r->offset, r->len,
				       x->discard_unmap && !(r->flags & NBD_CMD_FLAG_NO_HOLE));
	return reply(c, r, -flush_if_fua(c, r, e));
}

/* --discard=ignore (qemu-nbd's default) answers TRIM without deallocating. */
static int cmd_trim(struct nbd_conn *c, const struct request *r)
{
	int e = 0;

	if (r->len && c->exp->discard_unmap)
		e = block_discard(c->exp->bd, c->exp->offset + r->offset, r->len);
	return reply(c, r, -flush_if_fua(c, r, e));
}

/* base:allocation extents, merged while their flags agree, at most NBD_MAX_EXTENTS. */
static int cmd_block_status(struct nbd_conn *c, const struct request *r)
{
	uint32_t cap = r->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_MAX_EXTENTS;
	uint8_t *ext = malloc(4 + 8 * (size_t)cap);
	uint32_t n = 0, last = UINT32_MAX, prev_len = 0;
	uint64_t off = r->offset, end = r->offset + r->len;
	int ret;

	if (!ext)
		return reply(c, r, ENOMEM);
	while (off < end) {
		uint64_t pnum;
		uint32_t st;
		int e = export_status(c, off, end - off, &pnum, &st);
		if (e) {
			free(ext);
			return reply(c, r, -e);
		}
		if (n && st == last) {
			prev_len += (uint32_t)pnum;
			st_be32(ext + 4 + 8 * (n - 1), prev_len);
		} else {
			if (n == cap)
				break;
			prev_len = (uint32_t)pnum;
			st_be32(ext + 4 + 8 * n, prev_len);
			st_be32(ext + 8 + 8 * n, st);
			n++;
			last = st;
		}
		off += pnum;
	}
	st_be32(ext, NBD_META_ALLOC_ID);
	ret = chunk_header(c, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8 * n);
	if (ret == 0)
		ret = nbd_send(c, ext, 4 + 8 * (size_t)n);
	free(ext);
	return ret;
}

/* Which command flags each command takes (proto.md, "Command flags"). */
static uint16_t allowed_flags(const struct nbd_conn *c, uint16_t type)
{
	switch (type) {
	case NBD_CMD_READ:
		return c->structured ? NBD_CMD_FLAG_DF : 0;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
		return NBD_CMD_FLAG_FUA;
	case NBD_CMD_WRITE_ZEROES:
		return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
	case NBD_CMD_BLOCK_STATUS:
		return NBD_CMD_FLAG_REQ_ONE;
	default:
		return 0;
	}
}

static bool is_write(uint16_t type)
{
	return type == NBD_CMD_WRITE || type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES;
}

/*
 * The error a request gets before it reaches the image, as QEMU's
 * nbd_co_receive_request: 0 when it is valid.
 */
static int check_request(const struct nbd_conn *c, const struct request *r)
{
	uint64_t size = c->exp->size;
	bool data_cmd = r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE;

	if (r->type > NBD_CMD_BLOCK_STATUS)
		return EINVAL;
	if (r->flags & ~allowed_flags(c, r->type))
		return EINVAL;
	if (data_cmd && r->len > NBD_MAX_REQUEST)
		return EINVAL;
	if (is_write(r->type) && c->exp->readonly)
		return EPERM;
	if (r->type == NBD_CMD_FLUSH || r->type == NBD_CMD_DISC)
		return 0;
	if (r->offset > size || r->len > size - r->offset)
		return r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ? ENOSPC
										     : EINVAL;
	if (r->type == NBD_CMD_BLOCK_STATUS && (r->len == 0 || !c->meta_alloc))
		return EINVAL;
	return 0;
}

static int serve_request(struct nbd_conn *c, const struct request *r)
{
	int e = check_request(c, r);

	if (r->type == NBD_CMD_WRITE) {
		/* A payload too big to read cannot be skipped: answer, then hang up (as QEMU). */
		if (r->len > NBD_MAX_REQUEST) {
			reply(c, r, e);
			return nbd_fail(c, "write of %u bytes: over the %u byte limit", r->len,
					NBD_MAX_REQUEST);
		}
		return cmd_write(c, r, e);
	}
	if (e)
		return reply(c, r, e);
	switch (r->type) {
	case NBD_CMD_READ:
		return cmd_read(c, r);
	case NBD_CMD_FLUSH:
		return reply(c, r, -block_flush(c->exp->bd));
	case NBD_CMD_TRIM:
		return cmd_trim(c, r);
	case NBD_CMD_WRITE_ZEROES:
		return cmd_zero(c, r);
	case NBD_CMD_BLOCK_STATUS:
		return cmd_block_status(c, r);
	default:
		/* NBD_CMD_CACHE: a hint; the range was checked, nothing to prefetch. */
		return reply(c, r, 0);
	}
}

int nbd_transmit(struct nbd_conn *c)
{
	for (;;) {
		uint8_t h[28];
		struct request r;

		if (nbd_recv(c, h, sizeof(h)) < 0)
			return -1;
		if (ld_be32(h) != NBD_REQUEST_MAGIC)
			return nbd_fail(c, "bad request magic 0x%08x", ld_be32(h));
		r.flags = ld_be16(h + 4);
		r.type = ld_be16(h + 6);
		r.handle = ld_be64(h + 8);
		r.offset = ld_be64(h + 16);
		r.len = ld_be32(h + 24);
		if (r.type == NBD_CMD_DISC)
			return 0;
		if (serve_request(c, &r) < 0)
			return -1;
	}
}
