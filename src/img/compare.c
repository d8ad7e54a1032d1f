/* compare: are two images' contents the same?  Exit 0 same, 1 different, 2 error. */
#include "img/img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define COMPARE_CHUNK (1u << 20)

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

int img_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		IMG_LONGOPT_OBJECT,
		IMG_LONGOPT_IMAGE_OPTS,
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt1 = NULL, *fmt2 = NULL, *cache = "writeback";
	bool strict = false, quiet = false, progress = false;
	unsigned flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE, cf;
	struct block_dev *a = NULL, *b = NULL;
	uint8_t *ba = NULL, *bb = NULL;
	uint64_t common, off = 0;
	struct img_progress prog;
	int c, opt, ret = 2;
	bool image_opts = false;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":hf:F:T:pqsU", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("compare"); return 0;
		case 'f': fmt1 = optarg; break;
		case 'F': fmt2 = optarg; break;
		case 'T': cache = optarg; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 's': strict = true; break;
		case 'U': flags |= BLOCK_NO_LOCK; break;
		default:
			if ((opt = img_shared_option(c, argv, &image_opts)) != IMG_CONTINUE)
				return opt;
			break;
		}
	}
	if (quiet)
		progress = false;
	if (optind != argc - 2) {
		return img_usage_error("Expecting two image file names");
	}
	if (!img_cache_flags(cache, &cf)) {
		img_error("Invalid source cache option: %s", cache);
		return 2;
	}
	flags |= cf;
	a = img_open_image(argv[optind], fmt1, flags, image_opts);
	if (!a)
		goto out;
	b = img_open_image(argv[optind + 1], fmt2, flags, image_opts);
	if (!b)
		goto out;
	ba = block_alloc_buf(COMPARE_CHUNK);
	bb = block_alloc_buf(COMPARE_CHUNK);
	if (!ba || !bb)
		goto out;
	common = block_length(a) < block_length(b) ? block_length(a) : block_length(b);
	img_progress_init(&prog, progress,
			  block_length(a) > block_length(b) ? block_length(a) : block_length(b));
	while (off < common) {
		uint64_t n = common - off < COMPARE_CHUNK ? common - off : COMPARE_CHUNK, p1, p2;
		bool z1, z2, al1, al2;
		int r;

		if (range_status(a, off, n, &p1, &z1, &al1) < 0) {
			img_error("Sector allocation test failed for %s", argv[optind]);
			goto out;
		}
		if (range_status(b, off, n, &p2, &z2, &al2) < 0) {
			img_error("Sector allocation test failed for %s", argv[optind + 1]);
			goto out;
		}
		n = p1 < p2 ? p1 : p2;
		if (strict && al1 != al2) {
			if (!quiet)
				printf("Strict mode: Offset %" PRIu64 " block status mismatch!\n", off);
			ret = 1;
			goto out;
		}
		if (!(z1 && z2)) {
			size_t d;
			if ((r = block_pread(a, off, ba, (size_t)n)) < 0 ||
			    (r = block_pread(b, off, bb, (size_t)n)) < 0) {
				img_error("Error while reading offset %" PRIu64 ": %s", off, strerror(-r));
				goto out;
			}
			d = first_diff(ba, bb, (size_t)n);
			if (d < n) {
				if (!quiet)
					printf("Content mismatch at offset %" PRIu64 "!\n", off + d);
				ret = 1;
				goto out;
			}
		}
		img_progress_add(&prog, n);
		off += n;
	}
	if (block_length(a) != block_length(b)) {
		struct block_dev *big = block_length(a) > block_length(b) ? a : b;
		if (strict) {
			if (!quiet)
				printf("Strict mode: Image size mismatch!\n");
			ret = 1;
			goto out;
		}
		if (!quiet)
			printf("Warning: Image size mismatch!\n");
		/* The rest of the bigger image must read as zeroes. */
		while (off < block_length(big)) {
			uint64_t n = block_length(big) - off, p;
			bool z, al;
			if (n > COMPARE_CHUNK)
				n = COMPARE_CHUNK;
			if (range_status(big, off, n, &p, &z, &al) < 0) {
				img_error("Sector allocation test failed for %s", block_filename(big));
				goto out;
			}
			if (!z) {
				size_t d;
				if (block_pread(big, off, ba, (size_t)p) < 0) {
					img_error("Error while reading offset %" PRIu64, off);
					goto out;
				}
				d = first_nonzero(ba, (size_t)p);
				if (d < p) {
					if (!quiet)
						printf("Content mismatch at offset %" PRIu64 "!\n", off + d);
					ret = 1;
					goto out;
				}
			}
			img_progress_add(&prog, p);
			off += p;
		}
	}
	img_progress_end(&prog);
	if (!quiet)
		printf("Images are identical.\n");
	ret = 0;
out:
	free(ba);
	free(bb);
	block_close(b);
	block_close(a);
	return ret;
}
