/*
 * bench: a fixed number of equal requests at a fixed step, as qemu-img
 * bench issues them; -d requests in flight through the -i engine's stream
 * (block/aio.h), each completion sending the next request at once.
 */
#include "img/img.h"
#include "block/aio.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_FLUSH_INTERVAL = 256, OPT_NO_DRAIN, OPT_PATTERN };

struct bench {
	struct block_dev *bd;
	bool write;
	uint64_t count, bufsize, step, offset, image_size, flush_interval;
	bool drain;
	int pattern;

	uint64_t issued;
	uint64_t next_offset;
	int err;
};

/*
 * qemu-img 7.2's bench_cb: the next request's offset is the step further,
 * wrapped at the image's size (not at size - bufsize: so a step that does
 * not divide the size sends a request past the end, which fails).
 */
static uint64_t next_offset(const struct bench *b, uint64_t off)
{
	return b->image_size ? (off + b->step) % b->image_size : 0;
}

/* blk_check_byte_request: a request past the end fails with EIO (nothing is written). */
static int in_range(const struct bench *b, uint64_t off)
{
	return off > b->image_size || b->image_size - off < b->bufsize ? -EIO : 0;
}

/*
 * qemu-img sends its first window of requests at once, and a request past
 * the end fails at once (no I/O), so it exits before the others land:
 * checked here before anything is sent, so a failing run writes nothing.
 * The walk stops when the offsets come round to the start again.
 */
static int all_in_range(const struct bench *b)
{
	uint64_t off = b->offset;

	for (uint64_t i = 0; i < b->count; i++) {
		if (in_range(b, off) < 0)
			return -EIO;
		off = next_offset(b, off);
		if (off == b->offset)
			break;
	}
	return 0;
}

/* The next request into slot i of reqs/iov (its buffer stays the slot's). */
static void next_req(struct bench *b, struct block_req *req, struct iovec *iov)
{
	*req = (struct block_req){ .op = b->write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
				   .offset = b->next_offset, .len = b->bufsize, .iov = iov,
				   .niov = 1 };
	b->issued++;
	b->next_offset = next_offset(b, b->next_offset);
}

/* Waits for every request in flight; the first error of theirs, or ret. */
static int drain(struct block_aio_stream *st, int ret)
{
	struct block_req *r;

	while ((r = block_aio_stream_reap(st)))
		if (ret == 0)
			ret = r->result;
	return ret;
}

/*
 * qemu-img bench's loop: depth requests in flight, and each completion
 * sends the next one at once (bench_cb).  Every --flush-interval requests
 * a flush, after the requests in flight landed unless --no-drain.
 */
static int bench_stream(struct bench *b, struct block_aio_stream *st, unsigned depth,
			uint8_t *buf)
{
	struct block_req reqs[BLOCK_AIO_MAX_BATCH];
	struct iovec iov[BLOCK_AIO_MAX_BATCH];
	unsigned fresh = 0;	/* slots never used yet */
	int ret = 0;

	while (ret == 0 && b->issued < b->count) {
		unsigned i;

		if (fresh < depth) {
			i = fresh++;
		} else {
			struct block_req *r = block_aio_stream_reap(st);
			ret = r->result;
			i = (unsigned)(r - reqs);
			if (ret < 0)
				break;
		}
		iov[i] = (struct iovec){ buf + i * b->bufsize, (size_t)b->bufsize };
		next_req(b, &reqs[i], &iov[i]);
		ret = block_aio_stream_submit(st, &reqs[i]);
		if (ret == 0 && b->flush_interval && b->issued % b->flush_interval == 0) {
			if (b->drain) {
				ret = drain(st, 0);
				fresh = 0;
			}
			if (ret == 0)
				ret = block_flush(b->bd);
		}
	}
	return drain(st, ret);
}

/* The engine of -i (threads, io_uring or native), a slot for each of -d requests. */
static int bench_engine(struct bench *b, uint64_t depth, enum block_aio_engine engine)
{
	bool uring = engine == BLOCK_AIO_IO_URING;
	struct block_aio_stream *st;
	char err[512];
	uint8_t *buf;
	int ret;

	if (depth > BLOCK_AIO_MAX_BATCH)
		depth = BLOCK_AIO_MAX_BATCH;
	if (depth > b->count)
		depth = b->count ? b->count : 1;
	if (block_aio_stream_open(engine, b->bd, (unsigned)depth, &st, err, sizeof(err)) < 0) {
		img_error(uring ? "Unable to use io_uring: %s" : "%s", err);
		return -1;
	}
	buf = block_alloc_buf((size_t)(b->bufsize * depth));
	if (!buf) {
		block_aio_stream_close(st);
		return -ENOMEM;
	}
	memset(buf, b->pattern, (size_t)(b->bufsize * depth));
	ret = bench_stream(b, st, (unsigned)depth, buf);
	block_aio_stream_close(st);
	free(buf);
	return ret;
}

/* The command line, as qemu-img bench takes it. */
struct bench_opts {
	uint64_t depth;
	const char *fmt, *cache;
	unsigned flags;
	bool quiet, step_set, uring, native, image_opts;
};

/* A number option in its range, or qemu-img's error for it. */
static bool num_opt(const char *arg, uint64_t *v, uint64_t min, uint64_t max, const char *what)
{
	if (!img_parse_size(arg, v) || *v < min || *v > max) {
		img_error("Invalid %s specified", what);
		return false;
	}
	return true;
}

/* Parses argv into b and o; false: stop with exit status *rc. */
static bool bench_options(int argc, char **argv, struct bench *b, struct bench_opts *o, int *rc)
{
	static const struct option longopts[] = {
		{ "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
		{ "pattern", required_argument, NULL, OPT_PATTERN },
		{ "no-drain", no_argument, NULL, OPT_NO_DRAIN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;
	bool ok = true;
	struct img_getopt g = { .cmd = "bench", .shortopts = ":hc:d:f:ni:o:qs:S:t:wU",
				.longopts = longopts, .image_opts = &o->image_opts };

	*rc = 1;
	while (ok && (c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'c': ok = num_opt(optarg, &b->count, 0, INT32_MAX, "request count"); break;
		case 'd': ok = num_opt(optarg, &o->depth, 1, INT32_MAX, "queue depth"); break;
		case 'f': o->fmt = optarg; break;
		/* qemu-img bench -n is aio=native, not a cache mode. */
		case 'n': o->native = true; break;
		case 'i':
			if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
			    strcmp(optarg, "io_uring")) {
				img_error("Invalid aio option: %s", optarg);
				return false;
			}
			/* As bdrv_parse_aio: the last -i wins; -n stays native. */
			o->uring = !strcmp(optarg, "io_uring");
			o->native = o->native || !strcmp(optarg, "native");
			break;
		case 'o': ok = num_opt(optarg, &b->offset, 0, UINT64_MAX, "offset"); break;
		case 'q': o->quiet = true; break;
		case 's': ok = num_opt(optarg, &b->bufsize, 1, INT32_MAX, "buffer size"); break;
		case 'S':
			ok = num_opt(optarg, &b->step, 0, INT32_MAX, "step size");
			o->step_set = true;
			break;
		case 't': o->cache = optarg; break;
		case 'w': b->write = true; break;
		case 'U': o->flags |= BLOCK_NO_LOCK; break;
		case OPT_FLUSH_INTERVAL:
			ok = num_opt(optarg, &b->flush_interval, 0, INT32_MAX, "flush interval");
			break;
		case OPT_NO_DRAIN: b->drain = false; break;
		case OPT_PATTERN:
			ok = num_opt(optarg, &v, 0, 0xff, "pattern byte");
			b->pattern = (int)v;
			break;
		}
	}
	if (g.status != IMG_CONTINUE) {
		*rc = g.status;
		return false;
	}
	if (!ok)
		return false;
	if (optind != argc - 1) {
		*rc = img_usage_error("Expecting one image file name");
		return false;
	}
	return true;
}

/* The refusals qemu-img makes before it opens the image, in its order. */
static bool bench_allowed(const struct bench *b, const struct bench_opts *o, unsigned cf,
			  const char *name)
{
	if (b->flush_interval && b->flush_interval < o->depth && b->drain) {
		img_error("Flush interval can't be smaller than depth");
		return false;
	}
	if (b->flush_interval && !b->write) {
		img_error("--flush-interval is only available in write tests");
		return false;
	}
	/* As bdrv_open: -U shares the image with its writers, so it is for readers only. */
	if ((o->flags & BLOCK_NO_LOCK) && b->write) {
		img_error("Could not open '%s': force-share=on can only be used with read-only images",
			  name);
		return false;
	}
	/* file-posix: Linux AIO needs O_DIRECT; the same refusal as qemu-img's. */
	if (o->native && !(cf & BLOCK_NOCACHE)) {
		img_error("Could not open '%s': aio=native was specified, but it requires "
			  "cache.direct=on, which was not specified.", name);
		return false;
	}
	return true;
}

/*
 * Sends the requests through the engine; 0, a negative errno, or -1 when
 * the engine could not start (said already).
 */
static int bench_run(struct bench *b, uint64_t depth, enum block_aio_engine engine)
{
	b->err = all_in_range(b);
	if (b->err)
		return b->err;
	return bench_engine(b, depth, engine);
}

int img_bench(int argc, char **argv)
{
	struct bench b = { .count = 75000, .bufsize = 4096, .drain = true };
	struct bench_opts o = { .depth = 64, .cache = "writeback" };
	struct timespec t0, t1;
	unsigned cf;
	int rc;

	if (!bench_options(argc, argv, &b, &o, &rc))
		return rc;
	if (!img_cache_flags(o.cache, &cf)) {
		img_error("Invalid cache mode");
		return 1;
	}
	if (!bench_allowed(&b, &o, cf, argv[optind]))
		return 1;
	if (!o.step_set)
		b.step = b.bufsize;
	b.bd = img_open_image(argv[optind], o.fmt, o.flags | cf | (b.write ? 0 : BLOCK_RDONLY),
			      o.image_opts);
	if (!b.bd)
		return 1;
	b.image_size = block_length(b.bd);
	b.next_offset = b.offset;
	if (!o.quiet) {
		printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64
		       " in parallel (starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
		       b.count, b.write ? "write" : "read", b.bufsize, o.depth, b.offset, b.step);
		if (b.flush_interval)
			printf("Sending flush every %" PRIu64 " requests\n", b.flush_interval);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	b.err = bench_run(&b, o.depth, o.native ? BLOCK_AIO_NATIVE
				 : o.uring ? BLOCK_AIO_IO_URING : BLOCK_AIO_THREADS);
	if (!b.err && b.write && b.flush_interval)
		b.err = block_flush(b.bd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (b.err && b.err != -1)
		img_error("Failed request: %s", strerror(-b.err));
	else if (!b.err && !o.quiet)
		printf("Run completed in %3.3f seconds.\n",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	block_close(b.bd);
	return b.err ? 1 : 0;
}
