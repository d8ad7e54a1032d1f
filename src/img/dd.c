/*
 * kestrel-img dd: bs=, count=, skip=, if=, of= as qemu-img 7.2 takes them;
 * creates the output image and copies the input into it block by block.
 */
#include "img/img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* dd's command line, as dd_parse reads it. */
struct dd_args {
	const char *fmt, *out_fmt, *in, *out;
	uint64_t bs, count, skip;
	unsigned flags;
	bool image_opts;
};

/*
 * A dd operand's number, checked as qemu-img's cvtnum_full does: bs= lies in
 * 1..INT_MAX, count= and skip= in 0..INT64_MAX; the message names the operand.
 */
static bool img_dd_number(const char *name, const char *text, uint64_t *out)
{
	if (name[0] == 'b')
		return img_parse_size_range(name, text, 1, INT32_MAX, out);
	return img_parse_size_range(name, text, 0, INT64_MAX, out);
}

/* One operand, KEY=VALUE (the '=' is cut, so a refusal names the key alone). */
static bool dd_operand(char *arg, struct dd_args *a)
{
	char *eq = strchr(arg, '=');
	uint64_t v;

	if (!eq) {
		img_error("unrecognized operand %s", arg);
		return false;
	}
	*eq = '\0';
	if (!strcmp(arg, "if")) {
		a->in = eq + 1;
	} else if (!strcmp(arg, "of")) {
		a->out = eq + 1;
	} else if (!strcmp(arg, "bs") || !strcmp(arg, "count") || !strcmp(arg, "skip")) {
		if (!img_dd_number(arg, eq + 1, &v))
			return false;
		if (arg[0] == 'b')
			a->bs = v;
		else if (arg[0] == 'c')
			a->count = v;
		else
			a->skip = v;
	} else {
		img_error("unrecognized operand %s", arg);
		return false;
	}
	return true;
}

/* The options, then the operands and qemu-img's checks: IMG_CONTINUE, or the exit status. */
static int dd_parse(int argc, char **argv, struct dd_args *a)
{
	static const struct option longopts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	struct img_getopt g = { .cmd = "dd", .shortopts = ":hf:O:U", .longopts = longopts,
				.image_opts = &a->image_opts };

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help")) {
			img_cmd_help("dd");
			return 0;
		}
	while ((ch = img_getopt(&g, argc, argv)) != -1) {
		switch (ch) {
		case 'f': a->fmt = optarg; break;
		case 'O': a->out_fmt = optarg; break;
		case 'U': a->flags |= BLOCK_NO_LOCK; break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	for (int i = optind; i < argc; i++)
		if (!dd_operand(argv[i], a))
			return 1;
	if (!a->in || !a->out) {
		img_error("Must specify both input and output files");
		return 1;
	}
	if (!block_format_can_create(a->out_fmt)) {
		img_error("Unknown file format '%s'", a->out_fmt);
		return 1;
	}
	return IMG_CONTINUE;
}

/* size bytes from in_pos of src to the start of dst, bs at a time: 0 or a negative errno. */
static int dd_copy(struct block_dev *src, struct block_dev *dst, uint64_t in_pos, uint64_t size,
		   uint64_t bs, uint8_t *buf)
{
	int ret = 0;

	for (uint64_t out_pos = 0; out_pos < size;) {
		size_t n = size - out_pos < bs ? (size_t)(size - out_pos) : (size_t)bs;
		ret = block_pread(src, in_pos, buf, n);
		if (ret < 0) {
			img_error("error while reading from input image file: %s", strerror(-ret));
			return ret;
		}
		ret = block_pwrite(dst, out_pos, buf, n);
		if (ret < 0) {
			img_error("error while writing to output image file: %s", strerror(-ret));
			return ret;
		}
		in_pos += n;
		out_pos += n;
	}
	if ((ret = block_flush(dst)) < 0)
		img_error("error while flushing output image: %s", strerror(-ret));
	return ret;
}

/* Creates the output, as large as what is copied, opens it and copies: the exit status. */
static int dd_output(struct block_dev *src, const struct dd_args *a, uint64_t in_pos,
		     uint64_t size)
{
	struct block_create_opts o = { .size = size };
	struct block_dev *dst;
	char err[4096];
	uint8_t *buf;
	int ret;

	if (block_create(a->out, a->out_fmt, &o, err, sizeof(err)) < 0) {
		img_error("%s: error while creating output image: %s", a->out, err);
		return 1;
	}
	dst = img_open(a->out, a->out_fmt, BLOCK_NO_FLUSH);
	buf = block_alloc_buf((size_t)a->bs);
	ret = dst && buf ? dd_copy(src, dst, in_pos, size, a->bs, buf) : -ENOMEM;
	free(buf);
	block_close(dst);
	return ret < 0 ? 1 : 0;
}

int img_dd(int argc, char **argv)
{
	struct dd_args a = { .out_fmt = "raw", .bs = 512, .count = UINT64_MAX,
			     .flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE };
	struct block_dev *src;
	uint64_t size, in_pos;
	int ret = dd_parse(argc, argv, &a);

	if (ret != IMG_CONTINUE)
		return ret;
	src = img_open_image(a.in, a.fmt, a.flags, a.image_opts);
	if (!src)
		return 1;
	/*
	 * qemu-img 7.2 (img_dd) caps the input by count= before it applies
	 * skip=, so count= counts blocks from the start of the input; a skip
	 * past that end warns, creates an empty output and still succeeds,
	 * like dd(1).  Kept as is: scripts see the same output image.
	 */
	size = block_length(src);
	if (a.count != UINT64_MAX && a.count <= size / a.bs)
		size = a.count * a.bs;
	if (a.skip > size / a.bs) {
		img_error("%s: cannot skip to specified offset", a.in);
		size = 0;
		in_pos = 0;
	} else {
		in_pos = a.skip * a.bs;
		size -= in_pos;
	}
	ret = dd_output(src, &a, in_pos, size);
	block_close(src);
	return ret;
}
