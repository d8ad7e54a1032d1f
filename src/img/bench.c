/*
 * bench: a fixed number of equal requests at a fixed step, as qemu-img
 * bench issues them; -d requests in flight are served by worker threads.
 */
#include "img/img.h"
#include "block/aio.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { OPT_FLUSH_INTERVAL = 256, OPT_NO_DRAIN, OPT_PATTERN };

struct bench {
	struct block_dev *bd;
	bool write;
	uint64_t count, bufsize, step, offset, image_size, flush_interval;
	bool drain;
	int pattern;

	pthread_mutex_t lock;
	uint64_t issued, done_since_flush;
	uint64_t next_offset;
	int err;
};

/*
 * -i io_uring: batches of up to -d requests (at most the engine's batch)
 * go to the kernel as one ring submission each, as QEMU's aio=io_uring.
 */
static int bench_uring(struct bench *b, uint64_t depth)
{
	struct block_req reqs[BLOCK_AIO_MAX_BATCH];
	struct iovec iov[BLOCK_AIO_MAX_BATCH];
	struct block_aio *aio;
	char err[512];
	uint8_t *buf;
	int ret = 0;

	if (block_aio_open(BLOCK_AIO_IO_URING, &aio, err, sizeof(err)) < 0) {
		img_error("Unable to use io_uring: %s", err);
		return -1;
	}
	if (depth > BLOCK_AIO_MAX_BATCH)
		depth = BLOCK_AIO_MAX_BATCH;
	buf = block_alloc_buf((size_t)(b->bufsize * depth));
	if (!buf) {
		block_aio_close(aio);
		return -ENOMEM;
	}
	memset(buf, b->pattern, (size_t)(b->bufsize * depth));
	while (ret == 0 && b->issued < b->count) {
		unsigned n = 0;
		bool flush = false;

		while (n < depth && b->issued < b->count && !flush) {
			iov[n] = (struct iovec){ buf + n * b->bufsize, (size_t)b->bufsize };
			reqs[n] = (struct block_req){ .op = b->write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
						      .offset = b->next_offset, .len = b->bufsize,
						      .iov = &iov[n], .niov = 1 };
			n++;
			b->issued++;
			b->next_offset += b->step;
			if (b->image_size <= b->bufsize)
				b->next_offset = 0;
			else
				b->next_offset %= b->image_size - b->bufsize;
			flush = b->flush_interval && b->issued % b->flush_interval == 0;
		}
		block_aio_run(aio, b->bd, reqs, n);
		for (unsigned i = 0; i < n && ret == 0; i++)
			ret = reqs[i].result;
		if (ret == 0 && flush)
			ret = block_flush(b->bd);
	}
	free(buf);
	block_aio_close(aio);
	return ret;
}

static void *bench_worker(void *arg)
{
	struct bench *b = arg;
	uint8_t *buf = block_alloc_buf((size_t)b->bufsize);

	if (!buf) {
		b->err = -ENOMEM;
		return NULL;
	}
	memset(buf, b->pattern, (size_t)b->bufsize);
	for (;;) {
		uint64_t off;
		bool flush = false;
		int ret;

		pthread_mutex_lock(&b->lock);
		if (b->err || b->issued >= b->count) {
			pthread_mutex_unlock(&b->lock);
			break;
		}
		b->issued++;
		off = b->next_offset;
		/* qemu-img bench: advance by the step, wrapping inside the image. */
		b->next_offset += b->step;
		if (b->image_size <= b->bufsize)
			b->next_offset = 0;
		else
			b->next_offset %= b->image_size - b->bufsize;
		if (b->flush_interval && b->issued % b->flush_interval == 0)
			flush = true;
		pthread_mutex_unlock(&b->lock);

		ret = b->write ? block_pwrite(b->bd, off, buf, (size_t)b->bufsize)
			       : block_pread(b->bd, off, buf, (size_t)b->bufsize);
		if (ret == 0 && flush)
			ret = block_flush(b->bd);
		if (ret < 0) {
			pthread_mutex_lock(&b->lock);
			if (!b->err)
				b->err = ret;
			pthread_mutex_unlock(&b->lock);
			break;
		}
	}
	free(buf);
	return NULL;
}

int img_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
		IMG_LONGOPT_IMAGE_OPTS,
		IMG_LONGOPT_OBJECT,
		{ "pattern", required_argument, NULL, OPT_PATTERN },
		{ "no-drain", no_argument, NULL, OPT_NO_DRAIN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { .count = 75000, .bufsize = 4096, .drain = true };
	uint64_t depth = 64, v;
	const char *fmt = NULL, *cache = "writeback";
	unsigned flags = 0, cf;
	bool quiet = false, step_set = false, uring = false, native = false;
	struct timespec t0, t1;
	pthread_t tids[16];
	long ncpu;
	int c, opt, nthreads, started = 0;
	bool image_opts = false;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("bench"); return 0;
		case 'c':
			if (!img_parse_size(optarg, &b.count) || b.count > INT32_MAX) {
				img_error("Invalid request count specified");
				return 1;
			}
			break;
		case 'd':
			if (!img_parse_size(optarg, &depth) || !depth || depth > INT32_MAX) {
				img_error("Invalid queue depth specified");
				return 1;
			}
			break;
		case 'f': fmt = optarg; break;
		/* qemu-img bench -n is aio=native, not a cache mode. */
		case 'n': native = true; break;
		case 'i':
			if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
			    strcmp(optarg, "io_uring")) {
				img_error("Invalid aio option: %s", optarg);
				return 1;
			}
			/* As bdrv_parse_aio: the last -i wins; -n stays native. */
			uring = !strcmp(optarg, "io_uring");
			native = native || !strcmp(optarg, "native");
			break;
		case 'o':
			if (!img_parse_size(optarg, &b.offset)) {
				img_error("Invalid offset specified");
				return 1;
			}
			break;
		case 'q': quiet = true; break;
		case 's':
			if (!img_parse_size(optarg, &b.bufsize) || !b.bufsize || b.bufsize > INT32_MAX) {
				img_error("Invalid buffer size specified");
				return 1;
			}
			break;
		case 'S':
			if (!img_parse_size(optarg, &b.step) || b.step > INT32_MAX) {
				img_error("Invalid step size specified");
				return 1;
			}
			step_set = true;
			break;
		case 't': cache = optarg; break;
		case 'w': b.write = true; break;
		case 'U': flags |= BLOCK_NO_LOCK; break;
		case OPT_FLUSH_INTERVAL:
			if (!img_parse_size(optarg, &b.flush_interval) || b.flush_interval > INT32_MAX) {
				img_error("Invalid flush interval specified");
				return 1;
			}
			break;
		case OPT_NO_DRAIN: b.drain = false; break;
		case OPT_PATTERN:
			if (!img_parse_size(optarg, &v) || v > 0xff) {
				img_error("Invalid pattern byte specified");
				return 1;
			}
			b.pattern = (int)v;
			break;
		default:
			if ((opt = img_shared_option(c, argv, &image_opts)) != IMG_CONTINUE)
				return opt;
			break;
		}
	}
	if (optind != argc - 1) {
		return img_usage_error("Expecting one image file name");
	}
	if (b.flush_interval && b.flush_interval < depth && b.drain) {
		img_error("Flush interval can't be smaller than depth");
		return 1;
	}
	if (b.flush_interval && !b.write) {
		img_error("--flush-interval is only available in write tests");
		return 1;
	}
	if (!img_cache_flags(cache, &cf)) {
		img_error("Invalid cache mode");
		return 1;
	}
	/* As bdrv_open: -U shares the image with its writers, so it is for readers only. */
	if ((flags & BLOCK_NO_LOCK) && b.write) {
		img_error("Could not open '%s': force-share=on can only be used with read-only images",
			  argv[optind]);
		return 1;
	}
	/* file-posix: Linux AIO needs O_DIRECT; the same refusal as qemu-img's. */
	if (native && !(cf & BLOCK_NOCACHE)) {
		img_error("Could not open '%s': aio=native was specified, but it requires "
			  "cache.direct=on, which was not specified.", argv[optind]);
		return 1;
	}
	if (native) {
		img_error("aio=native (Linux AIO) is not supported by Kestrel; use -i io_uring "
			  "or -i threads");
		return 1;
	}
	if (!step_set)
		b.step = b.bufsize;
	flags |= cf | (b.write ? 0 : BLOCK_RDONLY);
	b.bd = img_open_image(argv[optind], fmt, flags, image_opts);
	if (!b.bd)
		return 1;
	b.image_size = block_length(b.bd);
	b.next_offset = b.offset;
	if (!quiet) {
		printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64
		       " in parallel (starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
		       b.count, b.write ? "write" : "read", b.bufsize, depth, b.offset, b.step);
		if (b.flush_interval)
			printf("Sending flush every %" PRIu64 " requests\n", b.flush_interval);
	}
	/* Synchronous requests from a few threads keep the queue full enough. */
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	nthreads = ncpu < 1 ? 1 : (int)ncpu;
	if ((uint64_t)nthreads > depth)
		nthreads = (int)depth;
	if (nthreads > 16)
		nthreads = 16;
	pthread_mutex_init(&b.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (uring) {
		b.err = bench_uring(&b, depth);
		if (b.err == -1) {
			pthread_mutex_destroy(&b.lock);
			block_close(b.bd);
			return 1;
		}
		nthreads = 0;
	}
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tids[started], NULL, bench_worker, &b) == 0)
			started++;
	if (nthreads)
		bench_worker(&b);
	for (int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (!b.err && b.write && b.flush_interval)
		b.err = block_flush(b.bd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_mutex_destroy(&b.lock);
	if (b.err) {
		img_error("Failed request: %s", strerror(-b.err));
		block_close(b.bd);
		return 1;
	}
	if (!quiet)
		printf("Run completed in %3.3f seconds.\n",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	block_close(b.bd);
	return 0;
}
