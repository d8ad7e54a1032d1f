/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-blk (virtio 1.2 §5.2): the first one found, one request queue.
 * Scenarios blk-write and blk-read keep one request in flight and write and
 * check a pattern that a host-side test can compute for itself (below);
 * blk-bench keeps up to qd in flight and times them.
 */
#include "virtio.h"

/* §5.2.3 feature bits */
#define VIRTIO_BLK_F_SIZE_MAX	1
#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9

/* §5.2.4 struct virtio_blk_config */
#define BLK_CFG_CAPACITY	0
#define BLK_CFG_SIZE_MAX	8
#define BLK_CFG_SEG_MAX		12

/* §5.2.6 requests */
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8
#define VIRTIO_BLK_S_OK		0
#define VIRTIO_BLK_S_IOERR	1
#define VIRTIO_BLK_S_UNSUPP	2
#define VIRTIO_BLK_ID_BYTES	20

#define SECTOR			512	/* the request unit, whatever blk_size says */
#define CHUNK_SECTORS		128	/* 64 KiB per request: one data descriptor */
#define MIB_BYTES		((uint64_t)1 << 20)

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk {
	struct virtio_dev vd;
	struct virtq vq;
	uint64_t capacity;		/* in 512-byte sectors */
	uint32_t chunk;			/* sectors per request */
};

struct blk_args {
	uint64_t pattern, sectors, offset;
	bool expect_ioerr;
	bool zero;			/* zero=1: zeroes instead of the pattern */
	const char *forge;		/* forge=NAME: the first sector is that header */
};

/*
 * forge=NAME: the first sector written is a forged image header instead of
 * the pattern, what a hostile guest puts in sector 0 to make the host take
 * its disk for another format the next time the host probes it.  "vmdk" is
 * a VMDK descriptor whose extent is a host file; "qcow2" a qcow2 magic.
 * A host that probed the disk as raw must refuse it (QEMU: EPERM, IOERR
 * to the guest); with format=raw given it is ordinary data.
 */
static const struct {
	const char *name, *bytes;
	uint32_t len;
} forgeries[] = {
#define FORGERY(name, lit) { name, lit, sizeof(lit) - 1 }
	FORGERY("vmdk", "# Disk DescriptorFile\nversion=1\nRW 8 FLAT \"/etc/hostname\" 0\n"),
	FORGERY("qcow2", "QFI\xfb\0\0\0\3"),
#undef FORGERY
};

static uint64_t forged[SECTOR / 8];	/* the forged sector, zero-padded */

static bool forge_lookup(const char *name)
{
	for (uint32_t i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
		if (str_eq(name, forgeries[i].name)) {
			memset(forged, 0, sizeof(forged));
			memcpy(forged, forgeries[i].bytes, forgeries[i].len);
			return true;
		}
	}
	return fail("blk: bad forge=%s (vmdk or qcow2)", name);
}

static struct blk_req_hdr req_hdr;
static uint8_t req_status;
static uint64_t data[CHUNK_SECTORS * SECTOR / 8] __attribute__((aligned(4096)));

/*
 * The pattern.  The disk is a sequence of little-endian 64-bit words; the
 * word at absolute byte offset X (X a multiple of 8, W = X / 8) is
 *
 *     ((W + 1) * 0x9E3779B97F4A7C15  XOR  N * 0xD1B54A32D192ED03)  mod 2^64
 *
 * for pattern=N.  Multiplying by an odd constant is a bijection mod 2^64,
 * so every word of the disk differs from every other for a given N, and
 * a sector written to the wrong place, or twice, or not at all is caught.
 * Python: ((w + 1) * 0x9E3779B97F4A7C15 ^ n * 0xD1B54A32D192ED03) & (2**64 - 1)
 * (tests/guest/probe/README.md has a complete host-side checker).
 */
static uint64_t pattern_word(uint64_t w, uint64_t n)
{
	return (w + 1) * 0x9E3779B97F4A7C15ull ^ n * 0xD1B54A32D192ED03ull;
}

static void pattern_fill(uint64_t sector, uint32_t nsect, uint64_t n)
{
	uint64_t w0 = sector * SECTOR / 8;

	for (uint32_t i = 0; i < nsect * SECTOR / 8; i++)
		data[i] = pattern_word(w0 + i, n);
}

/* One request (§5.2.6): header, optional data, status.  False: no answer. */
static bool blk_request(struct blk *b, uint32_t type, uint64_t sector,
			void *buf, uint32_t len, uint8_t *status)
{
	bool dev_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	struct vq_buf bufs[3];
	uint32_t used_len;
	int n = 0;

	req_hdr.type = type;
	req_hdr.reserved = 0;
	req_hdr.sector = sector;
	req_status = 0xff;		/* not a status: shows if it stays unwritten */
	bufs[n++] = (struct vq_buf){ &req_hdr, sizeof(req_hdr) };
	if (len)
		bufs[n++] = (struct vq_buf){ buf, len };
	bufs[n++] = (struct vq_buf){ &req_status, 1 };
	if (!vq_xfer(&b->vq, bufs, dev_writes || !len ? 1 : 2,
		     dev_writes && len ? 2 : 1, &used_len))
		return false;
	*status = req_status;
	return true;
}

static const char *serial_of(struct blk *b, char out[VIRTIO_BLK_ID_BYTES + 1])
{
	static uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint8_t st;
	int i;

	memset(id, 0, sizeof(id));
	if (!blk_request(b, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id), &st) ||
	    st != VIRTIO_BLK_S_OK)
		return "none";
	/* §5.2.6: NUL-terminated unless all 20 bytes are used. */
	for (i = 0; i < VIRTIO_BLK_ID_BYTES && id[i]; i++)
		out[i] = id[i] > ' ' && id[i] < 0x7f ? (char)id[i] : '?';
	out[i] = 0;
	return i ? out : "none";
}

/* qmax: the most queue entries to ask for (the device may offer fewer). */
static bool blk_open(const struct platform *p, struct blk *b, uint16_t qmax)
{
	const uint64_t wanted = 1ull << VIRTIO_BLK_F_SIZE_MAX |
				1ull << VIRTIO_BLK_F_SEG_MAX |
				1ull << VIRTIO_BLK_F_RO |
				1ull << VIRTIO_BLK_F_BLK_SIZE |
				1ull << VIRTIO_BLK_F_FLUSH;
	char serial[VIRTIO_BLK_ID_BYTES + 1];

	if (!virtio_find(p, VIRTIO_ID_BLK, 0, &b->vd))
		return fail("blk: no usable virtio-blk device");
	if (!virtio_negotiate(&b->vd, wanted) ||
	    !virtio_vq_init(&b->vd, &b->vq, 0, qmax))
		return false;
	virtio_driver_ok(&b->vd);

	b->capacity = virtio_cfg64(&b->vd, BLK_CFG_CAPACITY);
	b->chunk = CHUNK_SECTORS;
	/* §5.2.4: size_max bounds one segment; we use one data segment. */
	if (virtio_has(&b->vd, VIRTIO_BLK_F_SIZE_MAX)) {
		uint32_t sm = virtio_cfg32(&b->vd, BLK_CFG_SIZE_MAX);

		if (sm && sm / SECTOR < b->chunk)
			b->chunk = sm / SECTOR;
		if (!b->chunk)
			return fail("blk: size_max %u is below one sector", sm);
	}
	say("blk: capacity %lu sectors, serial %s", b->capacity,
	    serial_of(b, serial));
	if (virtio_has(&b->vd, VIRTIO_BLK_F_RO))
		say("blk: device is read-only (VIRTIO_BLK_F_RO)");
	return true;
}

static bool blk_args_parse(const struct args *a, const struct blk *b,
			   struct blk_args *ba)
{
	const char *e = arg_get(a, "expect");
	uint64_t zero = 0;

	ba->pattern = 1;
	ba->sectors = 64;
	ba->offset = 0;
	ba->expect_ioerr = e && str_eq(e, "ioerr");
	if (e && !ba->expect_ioerr)
		return fail("blk: bad expect=%s (only ioerr)", e);
	if (!arg_u64(a, "pattern", &ba->pattern) ||
	    !arg_u64(a, "sectors", &ba->sectors) ||
	    !arg_u64(a, "offset", &ba->offset) || !arg_u64(a, "zero", &zero) || !ba->sectors)
		return fail("blk: bad pattern=, sectors=, offset= or zero=");
	ba->zero = zero != 0;
	ba->forge = arg_get(a, "forge");
	if (ba->forge && !forge_lookup(ba->forge))
		return false;
	if (ba->offset > b->capacity || ba->sectors > b->capacity - ba->offset)
		return fail("blk: sectors %lu at %lu run past the capacity %lu",
			    ba->sectors, ba->offset, b->capacity);
	return true;
}

static bool blk_verify(struct blk *b, const struct blk_args *ba)
{
	uint8_t st;

	for (uint64_t s = ba->offset; s < ba->offset + ba->sectors;) {
		uint64_t left = ba->offset + ba->sectors - s;
		uint32_t n = left < b->chunk ? (uint32_t)left : b->chunk;
		uint64_t w0 = s * SECTOR / 8;

		memset(data, 0, n * SECTOR);
		if (!blk_request(b, VIRTIO_BLK_T_IN, s, data, n * SECTOR, &st))
			return false;
		if (st != VIRTIO_BLK_S_OK) {
			say("blk: read status %u", st);
			return fail("blk: read of %u sectors at %lu failed", n, s);
		}
		for (uint32_t i = 0; i < n * SECTOR / 8; i++) {
			uint64_t want = ba->zero ? 0 : pattern_word(w0 + i, ba->pattern);

			if (ba->forge && s == ba->offset && i < SECTOR / 8)
				want = forged[i];
			if (data[i] != want)
				return fail("blk: byte offset 0x%lx (sector %lu) reads 0x%016lx, expected 0x%016lx",
					    (w0 + i) * 8, (w0 + i) * 8 / SECTOR,
					    data[i], want);
		}
		s += n;
	}
	say("blk: verified");
	return true;
}

/*
 * Scenario "blk-write,pattern=N,sectors=S,offset=O[,expect=ioerr][,zero=1][,forge=NAME]":
 * write (zeroes with zero=1; sector O a forged header with forge=), flush,
 * read back.  With expect=ioerr (readonly=on tests, forged headers on probed
 * raw disks) the PASS condition is the device refusing the first write with
 * IOERR.
 */
bool scenario_blk_write(const struct platform *p, const struct args *a)
{
	struct blk_args ba;
	struct blk b;
	uint8_t st;

	if (!blk_open(p, &b, VQ_SIZE_DEFAULT) || !blk_args_parse(a, &b, &ba))
		return false;
	for (uint64_t s = ba.offset; s < ba.offset + ba.sectors;) {
		uint64_t left = ba.offset + ba.sectors - s;
		uint32_t n = left < b.chunk ? (uint32_t)left : b.chunk;

		if (ba.zero)
			memset(data, 0, n * SECTOR);
		else
			pattern_fill(s, n, ba.pattern);
		if (ba.forge && s == ba.offset) {
			memcpy(data, forged, SECTOR);
			say("blk: sector %lu forged as a %s header", s, ba.forge);
		}
		if (!blk_request(&b, VIRTIO_BLK_T_OUT, s, data, n * SECTOR, &st))
			return false;
		if (st == VIRTIO_BLK_S_IOERR && ba.expect_ioerr) {
			say("blk: write refused (ioerr)");
			return true;
		}
		if (st != VIRTIO_BLK_S_OK) {
			say("blk: write status %u", st);
			return fail("blk: write of %u sectors at %lu failed", n, s);
		}
		s += n;
	}
	if (ba.zero)
		say("blk: wrote %lu sectors at %lu zeroes", ba.sectors, ba.offset);
	else
		say("blk: wrote %lu sectors at %lu pattern %lu", ba.sectors, ba.offset,
		    ba.pattern);
	if (ba.expect_ioerr)
		return fail("blk: write succeeded, expected IOERR");

	/* §5.2.6.2: without FLUSH offered the device is write-through. */
	if (virtio_has(&b.vd, VIRTIO_BLK_F_FLUSH)) {
		if (!blk_request(&b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &st))
			return false;
		if (st != VIRTIO_BLK_S_OK) {
			say("blk: flush status %u", st);
			return fail("blk: flush failed");
		}
		say("blk: flushed");
	} else {
		say("blk: flush not offered");
	}
	return blk_verify(&b, &ba);
}

/* Scenario "blk-read,pattern=N,sectors=S,offset=O": verify only. */
bool scenario_blk_read(const struct platform *p, const struct args *a)
{
	struct blk_args ba;
	struct blk b;

	if (!blk_open(p, &b, VQ_SIZE_DEFAULT) || !blk_args_parse(a, &b, &ba))
		return false;
	return blk_verify(&b, &ba);
}

/*
 * Scenario "blk-bench,mode=M,bs=B,qd=Q,count=N[,span=MiB]": N requests of
 * B bytes (a multiple of 512), at most Q in flight, timed with the TSC.
 * Modes randread, randwrite (offsets a multiple of B, uniform in the first
 * span MiB of the disk, from a fixed-seed xorshift64, so every run issues
 * the same sequence) and seqread, seqwrite (0, B, 2B, ... wrapping at span).
 *
 * The queue is filled with Q requests and kicked once; then each time
 * used->idx moves, every completed request is checked (status OK) and
 * replaced by the next one, and the batch is kicked once, unless the device
 * set VIRTQ_USED_F_NO_NOTIFY.  Each slot has its own header, status byte and
 * data buffer (from guest RAM above the image); the data buffer is one
 * descriptor, or several if the device's size_max asks for it.  Writes send
 * the pattern (pattern=1 at the buffer's own index, not at the offset: the
 * disk contents are not meant to be checked).  Nothing is flushed.
 *
 *     probe: blk-bench: mode randread bs 4096 qd 32 count 20000 time_us 812345 iops 24619 mbps 100.8
 *
 * time_us runs from the first submission to the last completion; iops is
 * count / time; mbps is count * bs / time in 10^6 bytes per second.
 */
#define BENCH_QD_MAX		VQ_SIZE_MAX
#define BENCH_SEED		0x9E3779B97F4A7C15ull

struct bench_slot {
	struct blk_req_hdr hdr;
	uint8_t status;
	uint8_t *buf;
};

static struct bench_slot bench_slots[BENCH_QD_MAX];
static uint16_t bench_slot_of[VQ_SIZE_MAX];	/* head descriptor -> slot */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

struct bench {
	struct blk b;
	bool write, random;
	uint64_t bs, blocks;		/* request size; blocks of bs in the span */
	uint64_t seq, rng;		/* next sequential block; xorshift state */
	uint32_t seg_len;		/* bytes per data descriptor */
	int segs;			/* data descriptors per request */
};

static bool bench_submit(struct bench *bn, int slot)
{
	struct bench_slot *sl = &bench_slots[slot];
	static struct vq_buf bufs[2 + VQ_SIZE_MAX];
	uint64_t blk = bn->random ? xorshift64(&bn->rng) % bn->blocks
				  : bn->seq++ % bn->blocks;
	int n = 0, head;

	sl->hdr.type = bn->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	sl->hdr.reserved = 0;
	sl->hdr.sector = blk * bn->bs / SECTOR;
	sl->status = 0xff;
	bufs[n++] = (struct vq_buf){ &sl->hdr, sizeof(sl->hdr) };
	for (uint64_t off = 0; off < bn->bs; off += bn->seg_len) {
		uint64_t left = bn->bs - off;

		bufs[n++] = (struct vq_buf){ sl->buf + off,
			left < bn->seg_len ? (uint32_t)left : bn->seg_len };
	}
	bufs[n++] = (struct vq_buf){ &sl->status, 1 };
	head = vq_add(&bn->b.vq, bufs, bn->write ? n - 1 : 1, bn->write ? 1 : n - 1);
	if (head < 0)
		return fail("blk-bench: queue full");
	bench_slot_of[head] = (uint16_t)slot;
	return true;
}

static bool bench_args(const struct args *a, struct bench *bn, uint64_t *qd,
		       uint64_t *count, const char **mode)
{
	uint64_t span = 64, cap_bytes = bn->b.capacity * SECTOR, span_bytes;
	const char *m = arg_get(a, "mode");

	bn->bs = 4096;
	*qd = 1;
	*count = 1000;
	*mode = m ? m : "randread";
	if (str_eq(*mode, "randread") || str_eq(*mode, "randwrite") ||
	    str_eq(*mode, "seqread") || str_eq(*mode, "seqwrite")) {
		bn->write = str_eq(*mode, "randwrite") || str_eq(*mode, "seqwrite");
		bn->random = (*mode)[0] == 'r';
	} else {
		return fail("blk-bench: bad mode=%s (randread, randwrite, seqread, seqwrite)",
			    *mode);
	}
	if (!arg_u64(a, "bs", &bn->bs) || !arg_u64(a, "qd", qd) ||
	    !arg_u64(a, "count", count) || !arg_u64(a, "span", &span))
		return fail("blk-bench: bad bs=, qd=, count= or span=");
	if (!bn->bs || bn->bs % SECTOR || bn->bs > 64 * MIB_BYTES)
		return fail("blk-bench: bs=%lu is not a multiple of %u up to 64 MiB",
			    bn->bs, SECTOR);
	if (!*qd || *qd > BENCH_QD_MAX || !*count || !span)
		return fail("blk-bench: qd= must be 1..%d, count= and span= above 0",
			    BENCH_QD_MAX);
	span_bytes = span > cap_bytes / MIB_BYTES ? cap_bytes : span * MIB_BYTES;
	bn->blocks = span_bytes / bn->bs;
	if (!bn->blocks)
		return fail("blk-bench: bs=%lu is larger than the span (%lu bytes)",
			    bn->bs, span_bytes);
	return true;
}

bool scenario_blk_bench(const struct platform *p, const struct args *a)
{
	static struct bench bn;
	uint64_t qd, count, submitted = 0, done = 0, hz, base, t0, ticks, us;
	uint64_t size_max = 0, seg_max = 0;
	const char *mode;
	uint32_t id, len;
	uint8_t *mem;

	memset(&bn, 0, sizeof(bn));
	if (!blk_open(p, &bn.b, VQ_SIZE_MAX) || !bench_args(a, &bn, &qd, &count, &mode))
		return false;
	hz = tsc_hz();
	if (!hz)
		return fail("tsc: PIT calibration failed");

	/* §5.2.4: size_max bounds a segment, seg_max the segments of a request. */
	if (virtio_has(&bn.b.vd, VIRTIO_BLK_F_SIZE_MAX))
		size_max = virtio_cfg32(&bn.b.vd, BLK_CFG_SIZE_MAX);
	if (virtio_has(&bn.b.vd, VIRTIO_BLK_F_SEG_MAX))
		seg_max = virtio_cfg32(&bn.b.vd, BLK_CFG_SEG_MAX);
	bn.seg_len = size_max && size_max < bn.bs ? (uint32_t)(size_max & ~(uint64_t)(SECTOR - 1))
						   : (uint32_t)bn.bs;
	if (!bn.seg_len)
		return fail("blk: size_max %lu is below one sector", size_max);
	bn.segs = (int)((bn.bs + bn.seg_len - 1) / bn.seg_len);
	if (seg_max && (uint64_t)bn.segs > seg_max)
		return fail("blk-bench: bs=%lu needs %d segments of %u bytes, seg_max is %lu",
			    bn.bs, bn.segs, bn.seg_len, seg_max);
	if (qd * (uint64_t)(bn.segs + 2) > bn.b.vq.size)
		return fail("blk-bench: qd=%lu needs %lu descriptors, the queue has %u",
			    qd, qd * (uint64_t)(bn.segs + 2), bn.b.vq.size);
	if (!mem_find(p, qd * bn.bs, &base))
		return fail("blk-bench: no RAM for %lu buffers of %lu bytes", qd, bn.bs);

	/* Touch every buffer before the clock starts (first-touch faults). */
	mem = phys(base);
	for (uint64_t i = 0; i < qd * bn.bs / 8; i++)
		((uint64_t *)mem)[i] = bn.write ? pattern_word(i, 1) : 0;
	for (uint64_t s = 0; s < qd; s++)
		bench_slots[s].buf = mem + s * bn.bs;
	bn.rng = BENCH_SEED;

	t0 = rdtsc();
	for (; submitted < qd && submitted < count; submitted++)
		if (!bench_submit(&bn, (int)submitted))
			return false;
	vq_kick_if_needed(&bn.b.vq);
	while (done < count) {
		uint64_t again = 0;

		/* The first completion by vq_wait (its timeout), the rest as they are. */
		if (!vq_wait(&bn.b.vq, &id, &len, virtio_ticks(10)))
			return fail("blk-bench: %lu of %lu requests completed", done, count);
		do {
			struct bench_slot *sl;

			if (id >= bn.b.vq.size)
				return fail("blk-bench: used id %u", id);
			sl = &bench_slots[bench_slot_of[id]];
			if (sl->status != VIRTIO_BLK_S_OK) {
				say("blk: %s status %u", bn.write ? "write" : "read",
				    sl->status);
				return fail("blk-bench: request at sector %lu failed",
					    sl->hdr.sector);
			}
			done++;
			if (submitted < count) {
				if (!bench_submit(&bn, bench_slot_of[id]))
					return false;
				submitted++;
				again++;
			}
		} while (vq_poll(&bn.b.vq, &id, &len));
		if (again)
			vq_kick_if_needed(&bn.b.vq);
	}
	ticks = rdtsc() - t0;
	us = ticks * 1000000 / hz;
	if (!us)
		us = 1;
	say("blk-bench: mode %s bs %lu qd %lu count %lu time_us %lu iops %lu mbps %lu.%lu",
	    mode, bn.bs, qd, count, us, count * 1000000 / us,
	    count * bn.bs / us, count * bn.bs * 10 / us % 10);
	return true;
}
