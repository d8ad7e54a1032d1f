/* compare: are two images' contents the same?  Exit 0 same, 1 different, 2 error. */
#include "img/img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* qemu-img compare's IO_BUF_SIZE: the most it reads of a run at once (its steps for -p). */
#define COMPARE_CHUNK (2u << 20)

struct cmp {
	struct block_dev *a, *b;
	const char *name_a, *name_b;
	uint8_t *ba, *bb;
	uint64_t common, base;	/* the smaller and the larger size */
	bool strict, quiet;
	struct img_progress prog;
};

/* Whether a range reads as zeroes without reading it, through the backing chain. */
static int range_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			bool *zero, bool *allocated)
{
	unsigned flags;
	int ret = img_chain_status(bd, off, len, false, pnum, &flags);

	*zero = flags & BLOCK_STATUS_ZERO;
	*allocated = flags & BLOCK_STATUS_ALLOCATED;
	return ret;
}

/* Offset of the first differing 512-byte sector, or len. */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i += 512) {
		size_t n = len - i < 512 ? len - i : 512;
		if (memcmp(a + i, b + i, n))
			return i;
	}
	return len;
}

static size_t first_nonzero(const uint8_t *a, size_t len)
{
	for (size_t i = 0; i < len; i += 512) {
		size_t n = len - i < 512 ? len - i : 512;
		if (!block_buffer_is_zero(a + i, n))
			return i;
	}
	return len;
}

/* Advances the -p line by a step of n bytes, as qemu-img compare does after each run. */
static void step(struct cmp *c, uint64_t n)
{
	img_progress_print(&c->prog, (float)n / (float)c->base * 100, 100);
}

static int mismatch(const struct cmp *c, uint64_t off)
{
	if (!c->quiet)
		printf("Content mismatch at offset %" PRIu64 "!\n", off);
	return 1;
}

/*
 * The range both images have: run by run of block status (the shorter
 * run of the two), zero runs skipped whole, others read at most
 * COMPARE_CHUNK at a time.  Returns 0 same, 1 different, 2 error.
 */
static int compare_common(struct cmp *c)
{
	for (uint64_t off = 0; off < c->common;) {
		uint64_t n, p1, p2;
		bool z1, z2, al1, al2;
		int r;

		if (range_status(c->a, off, c->common - off, &p1, &z1, &al1) < 0) {
			img_error("Sector allocation test failed for %s", c->name_a);
			return 2;
		}
		if (range_status(c->b, off, c->common - off, &p2, &z2, &al2) < 0) {
			img_error("Sector allocation test failed for %s", c->name_b);
			return 2;
		}
		n = p1 < p2 ? p1 : p2;
		if (c->strict && al1 != al2) {
			if (!c->quiet)
				printf("Strict mode: Offset %" PRIu64 " block status mismatch!\n", off);
			return 1;
		}
		if (!(z1 && z2)) {
			size_t d;
			if (n > COMPARE_CHUNK)
				n = COMPARE_CHUNK;
			if ((r = block_pread(c->a, off, c->ba, (size_t)n)) < 0 ||
			    (r = block_pread(c->b, off, c->bb, (size_t)n)) < 0) {
				img_error("Error while reading offset %" PRIu64 ": %s", off, strerror(-r));
				return 2;
			}
			d = first_diff(c->ba, c->bb, (size_t)n);
			if (d < n)
				return mismatch(c, off + d);
		}
		off += n;
		step(c, n);
	}
	return 0;
}

/* Past the smaller image's end the larger one must read as zeroes. */
static int compare_tail(struct cmp *c)
{
	struct block_dev *big = block_length(c->a) > block_length(c->b) ? c->a : c->b;

	if (c->strict) {
		if (!c->quiet)
			printf("Strict mode: Image size mismatch!\n");
		return 1;
	}
	if (!c->quiet)
		printf("Warning: Image size mismatch!\n");
	for (uint64_t off = c->common; off < c->base;) {
		uint64_t p;
		bool z, al;
		if (range_status(big, off, c->base - off, &p, &z, &al) < 0) {
			img_error("Sector allocation test failed for %s", block_filename(big));
			return 2;
		}
		if (!z) {
			size_t d;
			if (p > COMPARE_CHUNK)
				p = COMPARE_CHUNK;
			if (block_pread(big, off, c->ba, (size_t)p) < 0) {
				img_error("Error while reading offset %" PRIu64, off);
				return 2;
			}
			d = first_nonzero(c->ba, (size_t)p);
			if (d < p)
				return mismatch(c, off + d);
		}
		off += p;
		step(c, p);
	}
	return 0;
}

int img_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt1 = NULL, *fmt2 = NULL, *cache = "writeback";
	bool progress = false, image_opts = false;
	unsigned flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE, cf;
	struct cmp c = { 0 };
	int opt, ret = 2;
	struct img_getopt g = { .cmd = "compare", .shortopts = ":hf:F:T:pqsU", .longopts = longopts,
				.image_opts = &image_opts };

	while ((opt = img_getopt(&g, argc, argv)) != -1) {
		switch (opt) {
		case 'f': fmt1 = optarg; break;
		case 'F': fmt2 = optarg; break;
		case 'T': cache = optarg; break;
		case 'p': progress = true; break;
		case 'q': c.quiet = true; break;
		case 's': c.strict = true; break;
		case 'U': flags |= BLOCK_NO_LOCK; break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (optind != argc - 2) {
		return img_usage_error("Expecting two image file names");
	}
	if (!img_cache_flags(cache, &cf)) {
		img_error("Invalid source cache option: %s", cache);
		return 2;
	}
	c.name_a = argv[optind];
	c.name_b = argv[optind + 1];
	/* qemu-img compare: progress lines at least 2% apart. */
	img_progress_init(&c.prog, progress && !c.quiet, 2.0f);
	c.a = img_open_image(c.name_a, fmt1, flags | cf, image_opts);
	if (c.a)
		c.b = img_open_image(c.name_b, fmt2, flags | cf, image_opts);
	c.ba = block_alloc_buf(COMPARE_CHUNK);
	c.bb = block_alloc_buf(COMPARE_CHUNK);
	if (!c.a || !c.b || !c.ba || !c.bb)
		goto out;
	c.common = block_length(c.a) < block_length(c.b) ? block_length(c.a) : block_length(c.b);
	c.base = block_length(c.a) < block_length(c.b) ? block_length(c.b) : block_length(c.a);
	img_progress_print(&c.prog, 0, 100);
	ret = compare_common(&c);
	if (ret == 0 && c.common != c.base)
		ret = compare_tail(&c);
	if (ret == 0 && !c.quiet)
		printf("Images are identical.\n");
out:
	img_progress_end(&c.prog);
	free(c.ba);
	free(c.bb);
	block_close(c.b);
	block_close(c.a);
	return ret;
}
