/*
 * The VHDX metadata log (spec §2.3): a circular buffer of 4 KiB sectors
 * holding entries (a header, descriptors, data sectors) that describe
 * metadata writes.  A log GUID in the current header means the log may
 * hold entries not yet applied: they are found (§2.3.3 "Log Replay"),
 * checked (signature, GUID, sequence numbers, CRC-32C), and written to
 * their places before anything else reads the metadata.
 *
 * Kestrel writes BAT updates the way QEMU 7.2 does: one entry, flushed,
 * then applied and the log emptied, so a crash at any point leaves either
 * the old BAT or a log whose replay gives the new one.
 */
#include "block/vhdx/vhdx.h"
#include "util/bytes.h"
#include "util/crc32c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_HDR_SIZE	64
#define LOG_DESC_SIZE	32

struct log_entry {
	uint32_t pos;		/* offset in the log */
	uint32_t length;	/* entry_length */
	uint64_t seq;
	uint32_t ndesc;
	uint64_t flushed_off, last_off;
	uint8_t *buf;		/* the whole entry, unwrapped */
};

/* Sectors holding the header and n descriptors (§2.3.1.1: 126 in the first). */
static uint32_t desc_sectors(uint32_t n)
{
	return (n + 2 + 127) / 128;
}

/* Copies len bytes of the circular log (held in memory) from pos. */
static void log_copy(const uint8_t *log, uint32_t loglen, uint32_t pos, uint8_t *dst, uint32_t len)
{
	uint32_t first = loglen - pos < len ? loglen - pos : len;

	memcpy(dst, log + pos, first);
	memcpy(dst + first, log, len - first);
}

static bool desc_valid(const uint8_t *d, uint64_t seq)
{
	if (ld_le64(d + 24) != seq || ld_le64(d + 16) % VHDX_LOG_SECTOR)
		return false;
	if (!memcmp(d, "zero", 4))
		return ld_le64(d + 8) % VHDX_LOG_SECTOR == 0;
	return !memcmp(d, "desc", 4);
}

/*
 * §2.3.1: the entry at pos is valid when its header, its descriptors and
 * data sectors agree on the sequence number and its checksum (over the
 * whole entry, checksum field as zero) matches.  Fills e on success.
 */
static bool entry_valid(const struct vhdx_state *s, const uint8_t *log, uint32_t pos,
			struct log_entry *e)
{
	const uint8_t *h = log + pos;
	uint32_t len = ld_le32(h + 8), ndesc = ld_le32(h + 24), dsect, data = 0;
	uint64_t seq = ld_le64(h + 16);
	uint8_t *buf;

	if (memcmp(h, "loge", 4) || !len || len > s->log_length || len % VHDX_LOG_SECTOR || !seq ||
	    memcmp(h + 32, s->hdr[s->cur].log_guid, 16))
		return false;
	/* Descriptors fill at most the entry: checked before desc_sectors can wrap. */
	if (ndesc > len / VHDX_LOG_SECTOR * 128)
		return false;
	dsect = desc_sectors(ndesc);
	if ((uint64_t)dsect * VHDX_LOG_SECTOR > len)
		return false;
	buf = malloc(len);
	if (!buf)
		return false;
	log_copy(log, s->log_length, pos, buf, len);
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *d = buf + LOG_HDR_SIZE + LOG_DESC_SIZE * i;
		if (!desc_valid(d, seq))
			goto bad;
		if (!memcmp(d, "desc", 4)) {
			const uint8_t *ds = buf + (uint64_t)(dsect + data) * VHDX_LOG_SECTOR;
			if ((uint64_t)(dsect + data + 1) * VHDX_LOG_SECTOR > len ||
			    memcmp(ds, "data", 4) ||
			    (((uint64_t)ld_le32(ds + 4) << 32) | ld_le32(ds + 4092)) != seq)
				goto bad;
			data++;
		}
	}
	if (vhdx_checksum(buf, len, 4) != ld_le32(buf + 4))
		goto bad;
	*e = (struct log_entry){ pos, len, seq, ndesc, ld_le64(h + 48), ld_le64(h + 56), buf };
	return true;
bad:
	free(buf);
	return false;
}

struct log_seq {
	struct log_entry *e;
	size_t n;
};

static void seq_free(struct log_seq *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->e[i].buf);
	free(q->e);
	q->e = NULL;
	q->n = 0;
}

/* The chain of valid entries with consecutive sequence numbers from pos. */
static int chain_from(const struct vhdx_state *s, const uint8_t *log, uint32_t pos,
		      struct log_seq *q)
{
	struct log_entry e;
	uint64_t walked = 0;

	while (walked < s->log_length && entry_valid(s, log, pos, &e)) {
		struct log_entry *ne;
		if (q->n && e.seq != q->e[q->n - 1].seq + 1) {
			free(e.buf);
			break;
		}
		ne = realloc(q->e, (q->n + 1) * sizeof(*ne));
		if (!ne) {
			free(e.buf);
			return -ENOMEM;
		}
		q->e = ne;
		q->e[q->n++] = e;
		walked += e.length;
		pos = (uint32_t)((pos + e.length) % s->log_length);
	}
	return 0;
}

/* §2.3.3: the active sequence is the valid one with the highest sequence number. */
static int log_search(const struct vhdx_state *s, const uint8_t *log, struct log_seq *best)
{
	for (uint32_t pos = 0; pos < s->log_length; pos += VHDX_LOG_SECTOR) {
		struct log_seq q = { NULL, 0 };
		if (memcmp(log + pos, "loge", 4))
			continue;
		uint64_t walked = 0;
		if (chain_from(s, log, pos, &q) < 0)
			return -ENOMEM;
		for (size_t i = 0; i < q.n; i++)
			walked += q.e[i].length;
		if (q.n && (!best->n || q.e[q.n - 1].seq > best->e[best->n - 1].seq)) {
			seq_free(best);
			*best = q;
		} else {
			seq_free(&q);
		}
		/* Resume after the chain, as QEMU does: each sector is walked once, no more. */
		if (walked >= s->log_length - pos)
			break;
		if (walked)
			pos += (uint32_t)walked - VHDX_LOG_SECTOR;
	}
	return 0;
}

#define ZERO_CHUNK	(1u << 20)

static int apply_desc(struct block_dev *bd, const uint8_t *d, const uint8_t *data,
		      uint64_t limit)
{
	uint64_t off = ld_le64(d + 16), len = VHDX_LOG_SECTOR;
	bool zero = !memcmp(d, "zero", 4);
	uint8_t *buf = block_alloc_buf(zero ? ZERO_CHUNK : VHDX_LOG_SECTOR);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	if (zero) {
		memset(buf, 0, ZERO_CHUNK);
		len = ld_le64(d + 8);
	} else {
		/* §2.3.1.3: 8 leading and 4 trailing bytes live in the descriptor. */
		memcpy(buf, d + 8, 8);
		memcpy(buf + 8, data + 8, 4084);
		memcpy(buf + 4092, d + 4, 4);
	}
	/* Never into the header section, never past what the entry says the file holds. */
	if (off < VHDX_HEADER_SECTION_END || len > limit || off > limit - len)
		ret = -EINVAL;
	for (uint64_t done = 0; done < len && ret == 0; done += ZERO_CHUNK) {
		size_t n = len - done < ZERO_CHUNK ? (size_t)(len - done) : ZERO_CHUNK;
		ret = bfile_pwrite(bd, off + done, buf, n);
	}
	free(buf);
	return ret;
}

static int apply_entry(struct block_dev *bd, const struct log_entry *e)
{
	int64_t size = bfile_size(bd);
	uint64_t last = (e->last_off + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB, limit;
	uint32_t dsect = desc_sectors(e->ndesc), data = 0;
	int ret;

	if (size < 0)
		return (int)size;
	/*
	 * §2.3.1.1: a file shorter than FlushedFileOffset has lost data.  The
	 * file may have to grow to LastFileOffset, but not by more than a
	 * writer could have had in flight: a hostile entry cannot make us
	 * write terabytes.
	 */
	if (e->flushed_off > (uint64_t)size || last < e->last_off ||
	    last > (uint64_t)size + (1ull << 30))
		return -EINVAL;
	limit = last > (uint64_t)size ? last : (uint64_t)size;
	if (last > (uint64_t)size) {
		block_crash_point();
		if (ftruncate(bd->fd, (off_t)last) < 0)
			return -errno;
	}
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = e->buf + LOG_HDR_SIZE + LOG_DESC_SIZE * i;
		const uint8_t *ds = e->buf + (uint64_t)(dsect + data) * VHDX_LOG_SECTOR;
		if (!memcmp(d, "desc", 4))
			data++;
		ret = apply_desc(bd, d, ds, limit);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Applies the sequence, then empties the log (GUID zero in both headers). */
static int log_replay(struct block_dev *bd, struct vhdx_state *s, const struct log_seq *q)
{
	static const uint8_t zero_guid[16];
	int ret = vhdx_user_visible_write(bd, s);

	for (size_t i = 0; i < q->n && ret == 0; i++)
		ret = apply_entry(bd, &q->e[i]);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret == 0)
		ret = vhdx_update_headers(bd, s, false, zero_guid);
	return ret;
}

static int log_check_region(struct block_dev *bd, const struct vhdx_state *s, char *err,
			    size_t errlen)
{
	int64_t size = bfile_size(bd);

	if (s->log_offset < VHDX_MiB || s->log_offset % VHDX_MiB)
		return block_err(err, errlen, "VHDX log offset %llu is invalid",
				 (unsigned long long)s->log_offset);
	if (s->hdr[s->cur].log_version != 0)
		return block_err(err, errlen, "VHDX log version %u is not supported",
				 s->hdr[s->cur].log_version);
	if (!s->log_length || vhdx_guid_is_zero(s->hdr[s->cur].log_guid))
		return 0;
	if (s->log_length % VHDX_MiB)
		return block_err(err, errlen, "VHDX log length %u is not a multiple of 1 MiB",
				 s->log_length);
	if (size < 0 || s->log_offset + s->log_length > (uint64_t)size)
		return block_err(err, errlen, "VHDX log (offset %llu, length %u) lies past the "
				 "end of the file", (unsigned long long)s->log_offset,
				 s->log_length);
	return 1;
}

int vhdx_log_open(struct block_dev *bd, struct vhdx_state *s, char *err, size_t errlen)
{
	struct log_seq q = { NULL, 0 };
	uint8_t *log;
	int ret = log_check_region(bd, s, err, errlen);

	if (ret <= 0)
		return ret;
	log = malloc(s->log_length);
	if (!log)
		return block_err(err, errlen, "%s", strerror(ENOMEM));
	ret = bfile_pread(bd, s->log_offset, log, s->log_length);
	if (ret == 0)
		ret = log_search(s, log, &q);
	free(log);
	if (ret < 0) {
		seq_free(&q);
		return block_err(err, errlen, "Could not read the VHDX log: %s", strerror(-ret));
	}
	if (!q.n)
		return 0;	/* no valid entry: nothing to replay (§2.3.3) */
	if (bd->read_only) {
		seq_free(&q);
		/* qemu-img 7.2's words (vhdx_parse_log), with this tool's name. */
		return block_err(err, errlen, "VHDX image file '%s' opened read-only, but contains "
				 "a log that needs to be replayed\nTo replay the log, run:\n"
				 "kestrel-img check -r all '%s'", bd->filename, bd->filename);
	}
	s->log_seq = q.e[q.n - 1].seq + 1;
	ret = log_replay(bd, s, &q);
	seq_free(&q);
	if (ret < 0)
		return block_err(err, errlen, "Could not replay the VHDX log: %s", strerror(-ret));
	s->log_replayed = true;
	return 0;
}

int vhdx_user_visible_write(struct block_dev *bd, struct vhdx_state *s)
{
	if (s->first_write_done)
		return 0;
	s->first_write_done = true;
	return vhdx_update_headers(bd, s, true, NULL);
}

/*
 * One entry describing len bytes at off, whole 4 KiB sectors with the
 * bytes around the change read from the file (§2.3.1).
 */
static uint8_t *entry_build(struct block_dev *bd, struct vhdx_state *s, const void *data,
			    uint32_t len, uint64_t off, uint32_t *entry_len)
{
	uint64_t first = off / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	uint32_t nsect = (uint32_t)((off + len - first + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR);
	uint32_t dsect = desc_sectors(nsect), total = (dsect + nsect) * VHDX_LOG_SECTOR;
	int64_t fsize = bfile_size(bd);
	uint8_t *buf = block_alloc_buf(total), *img;

	if (!buf || fsize < 0 || total > s->log_length - VHDX_LOG_SECTOR) {
		free(buf);
		return NULL;
	}
	memset(buf, 0, total);
	img = buf + (size_t)dsect * VHDX_LOG_SECTOR;	/* data sectors, filled in place */
	if (bfile_pread(bd, first, img, (size_t)nsect * VHDX_LOG_SECTOR) < 0) {
		free(buf);
		return NULL;
	}
	memcpy(img + (off - first), data, len);
	memcpy(buf, "loge", 4);
	st_le32(buf + 8, total);
	st_le32(buf + 12, s->log_tail);
	st_le64(buf + 16, s->log_seq);
	st_le32(buf + 24, nsect);
	memcpy(buf + 32, s->hdr[s->cur].log_guid, 16);
	st_le64(buf + 48, (uint64_t)fsize);
	st_le64(buf + 56, (uint64_t)fsize);
	for (uint32_t i = 0; i < nsect; i++) {
		uint8_t *d = buf + LOG_HDR_SIZE + LOG_DESC_SIZE * i, *ds = img + (size_t)i * VHDX_LOG_SECTOR;
		memcpy(d, "desc", 4);
		memcpy(d + 4, ds + 4092, 4);
		memcpy(d + 8, ds, 8);
		st_le64(d + 16, first + (uint64_t)i * VHDX_LOG_SECTOR);
		st_le64(d + 24, s->log_seq);
		memcpy(ds, "data", 4);
		st_le32(ds + 4, (uint32_t)(s->log_seq >> 32));
		st_le32(ds + 4092, (uint32_t)s->log_seq);
	}
	vhdx_set_checksum(buf, total, 4);
	*entry_len = total;
	return buf;
}

/* Writes the entry at the log's write position, wrapping around its end. */
static int entry_write(struct block_dev *bd, struct vhdx_state *s, const uint8_t *buf,
		       uint32_t len)
{
	uint32_t pos = s->log_write;

	for (uint32_t done = 0; done < len; done += VHDX_LOG_SECTOR) {
		int ret = bfile_pwrite(bd, s->log_offset + pos, buf + done, VHDX_LOG_SECTOR);
		if (ret < 0)
			return ret;
		pos = (pos + VHDX_LOG_SECTOR) % s->log_length;
	}
	s->log_tail = s->log_write;
	s->log_write = pos;
	return 0;
}

int vhdx_log_write_and_flush(struct block_dev *bd, struct vhdx_state *s, const void *data,
			     uint32_t len, uint64_t off)
{
	static const uint8_t zero_guid[16];
	struct log_entry e = { 0 };
	uint8_t guid[16];
	uint32_t elen;
	int ret;

	/* The data the new metadata points at is stable before the entry exists. */
	ret = bfile_flush(bd);
	if (ret < 0)
		return ret;
	if (!s->log_length)
		return -ENOTSUP;
	vhdx_guid_generate(guid);
	ret = vhdx_update_headers(bd, s, false, guid);
	if (ret < 0)
		return ret;
	if (!s->log_seq)
		s->log_seq = 1;
	e.buf = entry_build(bd, s, data, len, off, &elen);
	if (!e.buf)
		return -EIO;
	e.ndesc = ld_le32(e.buf + 24);
	e.last_off = e.flushed_off = ld_le64(e.buf + 48);
	ret = entry_write(bd, s, e.buf, elen);
	if (ret == 0)
		ret = bfile_flush(bd);
	if (ret == 0) {
		s->log_seq++;
		ret = apply_entry(bd, &e);
		if (ret == 0)
			ret = bfile_flush(bd);
		if (ret == 0)
			ret = vhdx_update_headers(bd, s, false, zero_guid);
	}
	free(e.buf);
	return ret;
}
