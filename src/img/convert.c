/*
 * convert and dd: copy images between formats.  convert runs a few worker
 * threads: each claims a chunk, finds out what the source holds there
 * (data, zeroes, or "whatever the backing file has"), reads it, detects
 * zeroes and compresses, then writes in turn, so the target is laid out in
 * order as qemu-img lays it out (or in any order with -W).
 */
#include "img/convert.h"
#include "img/img.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK		(2u << 20)	/* qemu-img's IO_BUF_SIZE */
#define MAX_WORKERS	16

enum seg_kind { SEG_DATA, SEG_ZERO, SEG_BACKING };

struct conv {
	struct block_dev **src;
	int nsrc;
	uint64_t *src_start;		/* where each source begins in the concatenation */
	uint64_t total;
	struct block_dev *dst;
	bool compress, zero_init, target_backing, out_of_order;
	bool copy_range;		/* -C: data copied by copy_file_range, no zero detection */
	bool salvage, quiet;		/* --salvage: unreadable sectors become zeroes */
	uint64_t min_sparse;		/* 0: write everything */
	uint32_t cluster;		/* target cluster size (qcow2) or 0 */
	uint32_t chunk;
	uint64_t dst_size;

	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next_chunk, next_write;
	int err;
	bool err_read;
	uint64_t err_off;
	struct prog {
		struct img_progress bar;	/* -p: min_skip 1.0, as qemu-img convert */
		uint64_t *at, *done;	/* each step: where it starts, allocated bytes so far */
		size_t n, next;
		uint64_t total, copied;	/* allocated bytes; bytes of chunks finished */
	} progress;
	struct img_rate rate;		/* -r: QEMU throttles the target's writes */
};

/* What the source holds at off: data, zeroes, or (with -B) the backing file's data. */
static int seg_status(struct conv *c, struct block_dev *bd, uint64_t off, uint64_t len,
		      enum seg_kind *kind, uint64_t *pnum)
{
	unsigned flags;
	int ret;

	for (;;) {
		/*
		 * With -B, only the source's top layer (QEMU: status above the
		 * source's backing file); a source without one reads its
		 * unallocated ranges as zeroes, which qemu-img writes as zeroes.
		 */
		ret = img_chain_status(bd, off, len, c->target_backing && block_backing(bd), pnum,
				       &flags);
		if (ret >= 0 || !c->salvage)
			break;
		/* --salvage, as qemu-img: shorter ranges, then one sector read as data. */
		if (len > 512) {
			len = (len / 4 + 511) & ~511ULL;
			continue;
		}
		if (!c->quiet)
			img_warn("error while reading block status at offset %" PRIu64 ": %s", off,
				 strerror(-ret));
		*kind = SEG_DATA;
		*pnum = len;
		return 0;
	}
	if (ret < 0)
		return ret;
	*kind = flags & BLOCK_STATUS_ZERO ? SEG_ZERO :
		flags & BLOCK_STATUS_DATA ? SEG_DATA : SEG_BACKING;
	return 0;
}

/*
 * The failure at the lowest offset is the one kept: every chunk before it
 * still writes in turn, none after it does, so what a failed convert leaves
 * does not depend on which worker failed first.
 */
static void fail(struct conv *c, int err, bool read, uint64_t off)
{
	pthread_mutex_lock(&c->lock);
	if (!c->err || off < c->err_off) {
		c->err = err;
		c->err_read = read;
		c->err_off = off;
	}
	pthread_cond_broadcast(&c->turn);
	pthread_mutex_unlock(&c->lock);
}

/* One write of a chunk, planned before its turn: data, or zeroes when data is NULL. */
struct op {
	uint64_t off;
	size_t len;
	const uint8_t *data;
	bool copy;		/* -C: copy [off, off+len) of the sources instead */
};

/*
 * Splits data into runs of zero and non-zero blocks at the sparse granularity
 * (zero runs left out, or written as zeroes), appending them to ops.  Done
 * before a chunk's turn to write, so workers detect zeroes in parallel.
 */
static size_t plan_sparse(struct conv *c, uint64_t off, const uint8_t *buf, size_t len,
			  struct op *ops, size_t n)
{
	uint64_t gran = c->min_sparse;
	size_t pos = 0;

	if (!gran) {
		ops[n++] = (struct op){ off, len, buf, false };
		return n;
	}
	/*
	 * A qcow2 target allocates whole clusters anyway: detect zeroes per
	 * cluster.  Other formats' blocks keep holes where qemu-img skips zeroes.
	 */
	if (c->cluster && gran < c->cluster && !strcmp(block_format_name(c->dst), "qcow2"))
		gran = c->cluster;
	while (pos < len) {
		size_t start = pos;
		bool zero;
		/* Blocks end on absolute multiples of gran. */
		size_t blk = (size_t)(gran - (off + pos) % gran);
		if (blk > len - pos)
			blk = len - pos;
		zero = block_buffer_is_zero(buf + pos, blk);
		pos += blk;
		while (pos < len) {
			size_t b = (size_t)(gran - (off + pos) % gran);
			if (b > len - pos)
				b = len - pos;
			if (block_buffer_is_zero(buf + pos, b) != zero)
				break;
			pos += b;
		}
		/* Short zero runs (at the ends, below min_sparse) are written as data. */
		if (zero && pos - start < c->min_sparse && pos != len)
			zero = false;
		if (zero && c->zero_init)
			continue;
		ops[n++] = (struct op){ off + start, pos - start, zero ? NULL : buf + start, false };
	}
	return n;
}

struct seg {
	enum seg_kind kind;
	uint64_t off, len;	/* in the concatenated source */
	size_t buf_off;
};

/* A worker's buffers: the chunk's data, its segments, its planned writes. */
#define MAX_SEGS 512
struct work {
	uint8_t *buf;
	struct seg segs[MAX_SEGS];
	struct op *ops;
};

/* The source holding byte off of the concatenation; *n is clamped to end there. */
static int src_at(const struct conv *c, uint64_t off, uint64_t *n)
{
	int s = c->nsrc - 1;

	while (s > 0 && c->src_start[s] > off)
		s--;
	if (s + 1 < c->nsrc && c->src_start[s + 1] - off < *n)
		*n = c->src_start[s + 1] - off;
	return s;
}

/*
 * A read of one source failed: with --salvage, sector by sector, what
 * cannot be read becomes zeroes (a warning each, as qemu-img); without,
 * the first failing cluster is found, the offset qemu-img reports.
 */
static int read_retry(struct conv *c, struct block_dev *bd, uint64_t off, uint8_t *buf,
		      size_t len, uint64_t cat_off, int err)
{
	size_t step = c->salvage ? 512 : block_cluster_size(bd) ? block_cluster_size(bd) : 512;

	for (size_t done = 0; done < len;) {
		/* Steps end on multiples of step, as the source's clusters do. */
		size_t n = step - (size_t)((off + done) % step);
		int ret;

		if (n > len - done)
			n = len - done;
		ret = block_pread(bd, off + done, buf + done, n);
		if (ret < 0 && !c->salvage) {
			fail(c, ret, true, cat_off + done);
			return ret;
		}
		if (ret < 0) {
			if (!c->quiet)
				img_warn("error while reading offset %" PRIu64 ": %s", off + done,
					 strerror(-ret));
			memset(buf + done, 0, n);
		}
		done += n;
	}
	if (!c->salvage) {
		/* Each piece read now: the error came and went; report it where it began. */
		fail(c, err, true, cat_off);
		return err;
	}
	return 0;
}

/* Reads [off, off+len) of the concatenated sources (a read may cross from one to the next). */
static int read_sources(struct conv *c, uint64_t off, uint64_t len, uint8_t *buf)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done, soff;
		int s = src_at(c, off + done, &n);
		int ret;

		soff = off + done - c->src_start[s];
		ret = block_pread(c->src[s], soff, buf + done, (size_t)n);
		if (ret < 0)
			ret = read_retry(c, c->src[s], soff, buf + done, (size_t)n, off + done, ret);
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

/* -C: the sources' range copied to the same place in the target (copy offloading). */
static int copy_sources(struct conv *c, uint64_t off, uint64_t len)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done;
		int s = src_at(c, off + done, &n);
		int ret = block_copy_range(c->src[s], off + done - c->src_start[s], c->dst,
					   off + done, n);
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

/* --- -p: the lines qemu-img prints, at its steps --- */

static int prog_add(struct prog *p, uint64_t at, uint64_t n)
{
	if (p->n == SIZE_MAX / 2 / sizeof(uint64_t))
		return -ENOMEM;
	if (!(p->n & (p->n + 1)) || !p->at) {
		size_t cap = p->n ? 2 * (p->n + 1) : 64;
		uint64_t *a = realloc(p->at, cap * sizeof(*a)), *d;
		if (a)
			p->at = a;
		d = a ? realloc(p->done, cap * sizeof(*d)) : NULL;
		if (!d)
			return -ENOMEM;
		p->done = d;
	}
	p->total += n;
	p->at[p->n] = at;
	p->done[p->n++] = p->total;
	return 0;
}

/*
 * -C into a qcow2 target: qemu-img copies whole target clusters, so a
 * cluster holding any data is copied entire (its zero part included) and
 * lands fully allocated; zero segments are written (when needed) first.
 */
static size_t plan_copy_clusters(const struct conv *c, const struct seg *segs, size_t nsegs,
				 uint64_t start, uint64_t end, struct op *ops, size_t n)
{
	for (size_t i = 0; i < nsegs; i++)
		if (segs[i].kind == SEG_ZERO && !c->zero_init)
			ops[n++] = (struct op){ segs[i].off, (size_t)segs[i].len, NULL, false };
	for (uint64_t off = start; off < end; off += c->cluster) {
		uint64_t len = end - off < c->cluster ? end - off : c->cluster;
		bool data = false;
		for (size_t i = 0; i < nsegs && !data; i++)
			data = segs[i].kind == SEG_DATA && segs[i].off < off + len &&
			       segs[i].off + segs[i].len > off;
		if (!data)
			continue;
		if (n && ops[n - 1].copy && ops[n - 1].off + ops[n - 1].len == off)
			ops[n - 1].len += (size_t)len;
		else
			ops[n++] = (struct op){ off, (size_t)len, NULL, true };
	}
	return n;
}

/*
 * qemu-img convert counts progress in its own steps: a pass over the
 * source as convert_iteration_sectors walks it (runs of one block status,
 * cut at the source's cluster alignment, data in buffers of 2 MiB), each
 * data run (and zero run with -S 0) one step.  The same pass here gives
 * the same lines; they are printed as the copy passes each step's start.
 * qemu-img makes that pass with or without -p, before the first write: a
 * block status error there ends the copy with the target still untouched.
 */
static int prog_plan(struct conv *c)
{
	struct prog *p = &c->progress;
	uint64_t off = 0, next_status = 0, buf = c->compress ? c->cluster : CHUNK;
	enum seg_kind kind = SEG_DATA;

	while (off < c->total) {
		uint64_t n = c->total - off < 2147483136ULL ? c->total - off : 2147483136ULL;
		if (next_status <= off) {
			uint64_t part = n, pnum, align, in;
			int s = src_at(c, off, &part);
			in = off - c->src_start[s];
			int ret = seg_status(c, c->src[s], in, part, &kind, &pnum);
			if (ret < 0) {
				img_error("error while reading block status at offset %" PRIu64
					  ": %s", in, strerror(-ret));
				return ret;
			}
			/* Extents end on the source's cluster (or sector) boundaries. */
			align = block_cluster_size(c->src[s]) ? block_cluster_size(c->src[s]) : 512;
			pnum = (pnum + 511) & ~511ULL;
			if (pnum > (in + pnum) % align)
				pnum -= (in + pnum) % align;
			next_status = off + pnum;
		}
		if (n > next_status - off)
			n = next_status - off;
		/* qemu-img's buffer: 2 MiB, one cluster when compressing. */
		if (kind == SEG_DATA || (kind == SEG_ZERO && !c->min_sparse))
			n = n < buf ? n : buf;
		if (c->compress) {
			if (n < c->cluster) {
				n = c->total - off < c->cluster ? c->total - off : c->cluster;
				kind = SEG_DATA;
			} else {
				n -= n % c->cluster;
			}
		}
		if (p->bar.enabled && (kind == SEG_DATA || (kind == SEG_ZERO && !c->min_sparse)) &&
		    prog_add(p, off, n) < 0)
			p->bar.enabled = false;	/* out of memory: no progress lines, the copy goes on */
		off += n;
	}
	return 0;
}

/* Under c->lock: the steps whose start the finished chunks have passed. */
static void prog_advance(struct conv *c, uint64_t n)
{
	struct prog *p = &c->progress;

	p->copied += n;
	while (p->next < p->n && p->at[p->next] < p->copied) {
		img_progress_set(&p->bar, (float)(100.0 * (double)p->done[p->next] / (double)p->total));
		p->next++;
	}
}

/*
 * What [start, end) of the sources holds, as segments of one kind each;
 * each data segment gets its place in the chunk's buffer.
 */
static int chunk_segments(struct conv *c, uint64_t start, uint64_t end, struct seg *segs,
			  size_t *pnsegs)
{
	size_t nsegs = 0, used = 0;

	for (uint64_t off = start; off < end;) {
		uint64_t pnum, n = end - off;
		enum seg_kind kind;
		int s = src_at(c, off, &n);
		int ret = seg_status(c, c->src[s], off - c->src_start[s], n, &kind, &pnum);
		if (ret < 0) {
			fail(c, ret, true, off);
			return ret;
		}
		/* -S 0: a fully allocated target, zeroes written like data (qemu-img). */
		if (!c->min_sparse && kind == SEG_ZERO)
			kind = SEG_DATA;
		if (nsegs && segs[nsegs - 1].kind == kind &&
		    segs[nsegs - 1].off + segs[nsegs - 1].len == off) {
			segs[nsegs - 1].len += pnum;
		} else {
			/* Too fragmented to track: the rest of the chunk is read as data. */
			if (nsegs == MAX_SEGS - 1 && off + pnum < end) {
				kind = SEG_DATA;
				pnum = end - off;
			}
			segs[nsegs].kind = kind;
			segs[nsegs].off = off;
			segs[nsegs].len = pnum;
			segs[nsegs].buf_off = used;
			nsegs++;
		}
		if (kind == SEG_DATA)
			used += (size_t)pnum;
		off += pnum;
	}
	*pnsegs = nsegs;
	return 0;
}

/* With -B, what the backing file provides is not copied. */
static bool from_backing(const struct seg *segs, size_t nsegs, uint64_t off, size_t n)
{
	bool backing = false;

	for (size_t i = 0; i < nsegs; i++)
		if (segs[i].kind == SEG_BACKING && segs[i].off <= off &&
		    segs[i].off + segs[i].len >= off + n)
			backing = true;
	return backing;
}

/* -c: one target cluster, compressed, or left unallocated when it reads as zeroes. */
static int compress_cluster(struct conv *c, uint64_t off, const uint8_t *p, size_t n,
			    bool backing)
{
	int ret = 0;

	/* -S 0: every cluster written, zero ones compressed too (qemu-img). */
	if (backing || (c->min_sparse && block_buffer_is_zero(p, n))) {
		if (!backing && !c->zero_init) {
			img_rate_charge(&c->rate, n, true);
			ret = block_write_zeroes(c->dst, off, n, true);
		}
	} else {
		img_rate_charge(&c->rate, n, true);
		ret = block_pwrite_compressed(c->dst, off, p, n);
	}
	if (ret < 0)
		fail(c, ret, false, off);
	return ret;
}

/*
 * -c: whole target clusters, compressed in this thread (the chunk starts on a
 * cluster): the chunk is read in full, zero clusters stay unallocated.
 */
static int write_compressed(struct conv *c, uint64_t start, uint64_t end,
			    const struct seg *segs, size_t nsegs, uint8_t *buf)
{
	int ret = read_sources(c, start, end - start, buf);

	if (ret < 0)
		return ret;
	/* The target may end past the source (sector rounding): pad with zeroes. */
	if (end == c->total && c->dst_size > end) {
		uint64_t pad = c->dst_size - end;
		if (pad > start + c->chunk - end)
			pad = start + c->chunk - end;
		memset(buf + (end - start), 0, (size_t)pad);
	}
	for (uint64_t off = start; off < end; off += c->cluster) {
		uint64_t tail = end == c->total ? c->dst_size : end;
		size_t n = tail - off < c->cluster ? (size_t)(tail - off) : c->cluster;
		ret = compress_cluster(c, off, buf + (off - start), n,
				       from_backing(segs, nsegs, off, n));
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The chunk's writes, planned before its turn to write: its data read and
 * its zeroes found, in parallel with the other workers.
 */
static int plan_chunk(struct conv *c, uint64_t start, uint64_t end, size_t nsegs,
		      struct work *w, size_t *pnops)
{
	size_t nops = 0;

	if (c->copy_range && c->cluster)
		nops = plan_copy_clusters(c, w->segs, nsegs, start, end, w->ops, 0);
	for (size_t i = 0; i < nsegs && !(c->copy_range && c->cluster); i++) {
		struct seg *g = &w->segs[i];
		if (g->kind == SEG_DATA && c->copy_range) {
			w->ops[nops++] = (struct op){ g->off, (size_t)g->len, NULL, true };
		} else if (g->kind == SEG_DATA) {
			int ret = read_sources(c, g->off, g->len, w->buf + g->buf_off);
			if (ret < 0)
				return ret;
			nops = plan_sparse(c, g->off, w->buf + g->buf_off, (size_t)g->len, w->ops,
					   nops);
		} else if (g->kind == SEG_ZERO && !c->zero_init) {
			w->ops[nops++] = (struct op){ g->off, (size_t)g->len, NULL, false };
		}
	}
	*pnops = nops;
	return 0;
}

/* The planned writes, in the chunk's turn (any order with -W). */
static int write_in_turn(struct conv *c, uint64_t idx, const struct op *ops, size_t nops)
{
	/* A read error after this chunk does not stop it: every chunk before the error lands. */
	uint64_t end = (idx + 1) * c->chunk;
	int ret = 0;

	if (!c->out_of_order) {
		pthread_mutex_lock(&c->lock);
		while (c->next_write != idx && !(c->err && c->err_off < end))
			pthread_cond_wait(&c->turn, &c->lock);
		ret = c->err && c->err_off < end ? c->err : 0;
		pthread_mutex_unlock(&c->lock);
	}
	for (size_t i = 0; ret == 0 && i < nops; i++) {
		const struct op *o = &ops[i];
		img_rate_charge(&c->rate, o->len, true);
		ret = o->copy ? copy_sources(c, o->off, o->len)
		      : o->data ? block_pwrite(c->dst, o->off, o->data, o->len)
				: block_write_zeroes(c->dst, o->off, o->len, true);
		if (ret < 0)
			fail(c, ret, false, o->off);
	}
	return ret;
}

/* One chunk: classify, read, then compress or wait for its turn and write. */
static int do_chunk(struct conv *c, uint64_t idx, struct work *w)
{
	uint64_t start = idx * c->chunk, end = start + c->chunk;
	size_t nsegs, nops;
	int ret;

	if (end > c->total)
		end = c->total;
	ret = chunk_segments(c, start, end, w->segs, &nsegs);
	if (ret < 0)
		return ret;
	if (c->compress) {
		ret = write_compressed(c, start, end, w->segs, nsegs, w->buf);
	} else {
		ret = plan_chunk(c, start, end, nsegs, w, &nops);
		if (ret == 0)
			ret = write_in_turn(c, idx, w->ops, nops);
	}
	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	if (!c->out_of_order && !c->compress)
		c->next_write = idx + 1;
	prog_advance(c, end - start);
	pthread_cond_broadcast(&c->turn);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void *worker(void *arg)
{
	struct conv *c = arg;
	struct work *w = calloc(1, sizeof(*w));

	/* Planned writes: at most one a 512-byte block and one more a segment. */
	if (!w || !(w->buf = block_alloc_buf(c->chunk)) ||
	    !(w->ops = calloc(c->chunk / 512 + MAX_SEGS + 2, sizeof(*w->ops)))) {
		fail(c, -ENOMEM, false, 0);
		goto out;
	}
	for (;;) {
		uint64_t idx;
		pthread_mutex_lock(&c->lock);
		if (c->err || c->next_chunk * c->chunk >= c->total) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		idx = c->next_chunk++;
		pthread_mutex_unlock(&c->lock);
		if (do_chunk(c, idx, w) < 0)
			break;
	}
out:
	if (w) {
		free(w->buf);
		free(w->ops);
	}
	free(w);
	return NULL;
}

static int run_workers(struct conv *c, int n)
{
	pthread_t tids[MAX_WORKERS];
	int started = 0;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->turn, NULL);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&tids[i], NULL, worker, c))
			break;
		started++;
	}
	if (!started)
		worker(c);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_cond_destroy(&c->turn);
	pthread_mutex_destroy(&c->lock);
	return c->err;
}

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

/* The target's creation options (-o, -B, -F), checked as the driver checks them. */
static int convert_target_opts(const struct convert_args *a, const char *out_name,
			       struct img_opts *copts, struct block_create_opts *o, unsigned *set)
{
	char err[4096];

	if (a->compress && strcmp(a->out_fmt, "qcow2")) {
		img_error("Compression not supported for this file format");
		return -1;
	}
	if (img_opts_init_target(copts, a->out_fmt, out_name) < 0)
		return -1;
	if (a->options && img_opts_parse(copts, a->options, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return -1;
	}
	/* The driver checks string values when it creates the target. */
	if (img_opts_apply(copts, o, set, err, sizeof(err)) < 0) {
		img_error("%s: error while converting %s: %s", out_name, a->out_fmt, err);
		return -1;
	}
	/* qcow2 spec: no compressed clusters in an encrypted image (qemu-img checks first). */
	if (a->compress && block_create_opt(o, "format")) {
		img_error("Compression and encryption not supported at the same time");
		return -1;
	}
	if (a->out_backing)
		o->backing_file = a->out_backing;
	if (a->out_backing_fmt)
		o->backing_fmt = a->out_backing_fmt;
	return 0;
}

/* The sources, one after another (or a snapshot of the one source). */
static int convert_open_sources(struct conv *c, const struct convert_args *a, char **names,
				int nsrc)
{
	char err[4096];

	c->nsrc = nsrc;
	c->src = calloc((size_t)c->nsrc, sizeof(*c->src));
	c->src_start = calloc((size_t)c->nsrc + 1, sizeof(*c->src_start));
	if (!c->src || !c->src_start)
		return -1;
	if (a->snapshot && c->nsrc > 1) {
		img_error("No support for concatenating multiple snapshot");
		return -1;
	}
	for (int i = 0; i < c->nsrc; i++) {
		c->src[i] = img_open_image(names[i], a->fmt, a->src_flags, a->image_opts);
		if (!c->src[i])
			return -1;
		c->src_start[i] = c->total;
		c->total += block_length(c->src[i]);
	}
	c->src_start[c->nsrc] = c->total;
	if (a->snapshot) {
		if (block_snapshot_load_tmp(c->src[0], a->snapshot, err, sizeof(err)) < 0) {
			img_error("Failed to load snapshot: %s", err);
			return -1;
		}
		c->total = block_length(c->src[0]);
		c->src_start[1] = c->total;
	}
	return 0;
}

/* Creates the target (without -n), as large as the sources unless -o size= says. */
static int convert_create_target(const struct convert_args *a, const char *out_name,
				 struct block_create_opts *o, unsigned set, uint64_t total)
{
	char err[4096];

	if (a->no_create)
		return 0;
	if (block_create_name_check(out_name, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return -1;
	}
	if (!(set & BLOCK_AMEND_SIZE))
		o->size = total;
	o->size = (o->size + 511) & ~511ULL;	/* whole sectors, as qemu-img creates */
	if (o->backing_file && !o->backing_fmt) {
		img_error("%s: Backing file specified without backing format", out_name);
		return -1;
	}
	if (block_create(out_name, a->out_fmt, o, err, sizeof(err)) < 0) {
		img_error("%s: error while converting %s: %s", out_name, a->out_fmt, err);
		return -1;
	}
	return 0;
}

/* Opens the target, with its backing file if it has one: partial clusters copy from it. */
static int convert_open_target(struct conv *c, const struct convert_args *a,
			       const char *out_name, unsigned dst_flags,
			       const struct block_create_opts *o)
{
	const struct block_fmt_opt *key = block_create_opt(o, "key-secret");
	char err[4096];

	/* qemu-img's img_add_key_secrets: -o key-secret= also opens the target. */
	if (key && !a->target_image_opts) {
		if (block_open_key(out_name, a->out_fmt, dst_flags, key->val, &c->dst, err,
				   sizeof(err)) < 0) {
			img_error("Could not open '%s': %s", out_name, err);
			c->dst = NULL;
		}
	} else {
		c->dst = img_open_image(out_name,
					a->out_fmt_given || !a->target_image_opts ? a->out_fmt : NULL,
					dst_flags, a->target_image_opts);
	}
	if (!c->dst)
		return -1;
	if (block_length(c->dst) < c->total) {
		img_error("Target image is too small (%" PRIu64 " < %" PRIu64 ")",
			  block_length(c->dst), c->total);
		return -1;
	}
	if (a->bitmaps && !img_supports_bitmaps(c->dst)) {
		img_error("Format driver '%s' does not support bitmaps", a->out_fmt);
		return -1;
	}
	c->cluster = block_cluster_size(c->dst);
	c->dst_size = block_length(c->dst);
	if (a->compress && !c->cluster) {
		img_error("Compression not supported for this file format");
		return -1;
	}
	return 0;
}

/* How the copy runs: zero handling, chunk size; returns the number of workers. */
static int convert_plan(struct conv *c, const struct convert_args *a,
			const struct block_create_opts *o)
{
	int nworkers;

	/* A new image without a backing file reads as zeroes until written. */
	c->zero_init = (!a->no_create && !o->backing_file && block_has_zero_init(c->dst)) ||
		       a->target_is_zero;
	c->target_backing = o->backing_file != NULL;
	c->min_sparse = a->sparse;
	img_rate_init(&c->rate, a->rate);
	c->chunk = CHUNK;
	if (c->cluster && c->cluster > c->chunk)
		c->chunk = c->cluster;
	/*
	 * Copying is I/O: a worker a CPU and one more keep reads ahead of the
	 * in-order writes.  Compressing is CPU work: -m of them (8 by default,
	 * as many clusters as qemu-img compresses at once), so that the
	 * compression keeps every CPU busy even when other work competes for it.
	 */
	nworkers = c->compress ? (int)a->coroutines : online_cpus() + 1;
	if (nworkers > (int)a->coroutines)
		nworkers = (int)a->coroutines;
	if (nworkers > MAX_WORKERS)
		nworkers = MAX_WORKERS;
	/* Also qemu-img's first walk over the source: a block status error stops it here. */
	if (prog_plan(c) < 0)
		return -1;
	return nworkers;
}

/* The copy, its error message, then the bitmaps: the exit status. */
static int convert_copy(struct conv *c, const struct convert_args *a, int nworkers)
{
	int ret;

	if (nworkers < 0)
		return 1;	/* said by prog_plan */
	ret = run_workers(c, nworkers);
	if (ret == 0)
		ret = block_flush(c->dst);
	if (ret < 0) {
		if (c->err_read)
			img_error("error while reading at byte %" PRIu64 ": %s", c->err_off,
				  strerror(-ret));
		else
			img_error("error while writing at byte %" PRIu64 ": %s", c->err_off,
				  strerror(-ret));
		return 1;
	}
	img_progress_set(&c->progress.bar, 100);
	/* The bitmaps last, so that the copy's writes do not mark them (as qemu-img). */
	return a->bitmaps ? img_convert_copy_bitmaps(c->src[0], c->dst, a->skip_broken) : 0;
}

/* From qemu-img's first progress line on: open, create, copy (the exit status). */
static int convert_run(int argc, char **argv, struct convert_args *a, struct conv *c,
		       struct img_opts *copts)
{
	struct block_create_opts o = { 0 };
	const char *out_name = argv[argc - 1];
	unsigned set = 0, dst_flags;

	c->copy_range = a->copy_range;
	c->compress = a->compress;
	c->out_of_order = a->out_of_order;
	c->salvage = a->salvage;
	c->quiet = a->quiet;
	/* From here on qemu-img has printed 0%, and ends the line however it ends. */
	img_progress_init(&c->progress.bar, a->progress, 1.0f);
	img_progress_set(&c->progress.bar, 0);
	if (!img_cache_flags(a->cache, &dst_flags)) {
		img_error("Invalid cache option: %s", a->cache);
		return 1;
	}
	if (convert_target_opts(a, out_name, copts, &o, &set) < 0 ||
	    convert_open_sources(c, a, argv + optind, argc - optind - 1) < 0)
		return 1;
	/* qemu-img checks the source's bitmaps before it creates the target. */
	if (a->bitmaps && img_convert_check_bitmaps(c->src, c->nsrc, a->skip_broken) < 0)
		return 1;
	if (convert_create_target(a, out_name, &o, set, c->total) < 0 ||
	    convert_open_target(c, a, out_name, dst_flags, &o) < 0)
		return 1;
	return convert_copy(c, a, convert_plan(c, a, &o));
}

static void convert_free(struct conv *c)
{
	img_progress_end(&c->progress.bar);	/* the line ends, whatever happened */
	free(c->progress.at);
	free(c->progress.done);
	if (c->dst)
		block_close(c->dst);
	for (int i = 0; c->src && i < c->nsrc; i++)
		block_close(c->src[i]);
	free(c->src);
	free(c->src_start);
}

int img_convert(int argc, char **argv)
{
	struct convert_args a;
	struct img_opts copts = { 0 };
	struct conv c = { 0 };
	int ret = convert_parse(argc, argv, &a);

	if (ret == IMG_CONTINUE)
		ret = convert_check_args(argc, argv, &a);
	if (ret == IMG_CONTINUE) {
		ret = convert_run(argc, argv, &a, &c, &copts);
		convert_free(&c);
		img_opts_free(&copts);
	}
	free(a.options);
	return ret;
}
