/*
 * kestrel-img bitmap: persistent dirty bitmaps of a qcow2 image, with
 * qemu-img 7.2's options, order of checks, messages and exit codes.  The
 * actions run in command-line order; those done before a failing one are
 * kept (stored when the image closes), as in qemu-img.
 */
#include "img/img.h"

#include <getopt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_ADD, OPT_REMOVE, OPT_CLEAR, OPT_ENABLE,
	OPT_DISABLE, OPT_MERGE,
};

struct action {
	enum block_bitmap_act act;
	const char *src;		/* --merge SOURCE */
};

static const char *const act_names[] = {
	[BLOCK_BITMAP_ADD] = "add", [BLOCK_BITMAP_REMOVE] = "remove",
	[BLOCK_BITMAP_CLEAR] = "clear", [BLOCK_BITMAP_ENABLE] = "enable",
	[BLOCK_BITMAP_DISABLE] = "disable", [BLOCK_BITMAP_MERGE] = "merge",
};

static int run_actions(struct block_dev *bd, struct block_dev *src, const struct action *acts,
		       int n, const char *bitmap, uint64_t granularity)
{
	char err[4096];

	for (int i = 0; i < n; i++) {
		struct block_bitmap_req req = {
			.act = acts[i].act, .name = bitmap, .granularity = (uint32_t)granularity,
			.granularity_set = granularity != 0, .src = src, .src_name = acts[i].src,
		};
		if (block_bitmap_change(bd, &req, err, sizeof(err)) < 0) {
			img_error("Operation %s on bitmap %s failed: %s", act_names[acts[i].act],
				  bitmap, err);
			return 1;
		}
	}
	return 0;
}

/* qemu-img's cvtnum for -g: its two-line message on a bad size. */
static bool parse_granularity(const char *arg, uint64_t *g)
{
	if (img_parse_size(arg, g) && *g <= INT64_MAX)
		return true;
	img_error("Invalid granularity specified. You may use k, M, G, T, P or E suffixes for");
	img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
	return false;
}

/* bitmap's command line, as bitmap_parse reads it. */
struct bitmap_args {
	const char *fmt, *src_fmt, *src_file;
	struct action *acts;		/* in command-line order */
	int n;
	bool add, merge;
	uint64_t granularity;
};

/* getopt_long's answer for an option qemu-img refuses: its message, with the "Try" line. */
static void bitmap_bad_option(int c, char **argv)
{
	switch (c) {
	/* No objects exist in kestrel-img yet; --image-opts has no parser here. */
	case OPT_OBJECT:
		img_error("--object is not supported");
		return;
	case OPT_IMAGE_OPTS:
		img_error("--image-opts is not supported");
		return;
	case ':':
		img_error("missing argument for option '%s'", argv[optind - 1]);
		break;
	default:
		img_error("unrecognized option '%s'", argv[optind - 1]);
		break;
	}
	fprintf(stderr, "Try '%s --help' for more information\n", IMG_NAME);
}

/* The option loop: IMG_CONTINUE, or the exit status. */
static int bitmap_parse(int argc, char **argv, struct bitmap_args *a)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, OPT_OBJECT },
		{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
		{ "add", no_argument, NULL, OPT_ADD },
		{ "remove", no_argument, NULL, OPT_REMOVE },
		{ "clear", no_argument, NULL, OPT_CLEAR },
		{ "enable", no_argument, NULL, OPT_ENABLE },
		{ "disable", no_argument, NULL, OPT_DISABLE },
		{ "merge", required_argument, NULL, OPT_MERGE },
		{ "granularity", required_argument, NULL, 'g' },
		{ "source-file", required_argument, NULL, 'b' },
		{ "source-format", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct action *acts = a->acts;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:f:F:g:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("bitmap"); return 0;
		case 'b': a->src_file = optarg; break;
		case 'f': a->fmt = optarg; break;
		case 'F': a->src_fmt = optarg; break;
		case 'g':
			if (!parse_granularity(optarg, &a->granularity))
				return 1;
			break;
		case OPT_ADD: acts[a->n++].act = BLOCK_BITMAP_ADD; a->add = true; break;
		case OPT_REMOVE: acts[a->n++].act = BLOCK_BITMAP_REMOVE; break;
		case OPT_CLEAR: acts[a->n++].act = BLOCK_BITMAP_CLEAR; break;
		case OPT_ENABLE: acts[a->n++].act = BLOCK_BITMAP_ENABLE; break;
		case OPT_DISABLE: acts[a->n++].act = BLOCK_BITMAP_DISABLE; break;
		case OPT_MERGE:
			acts[a->n].act = BLOCK_BITMAP_MERGE;
			acts[a->n++].src = optarg;
			a->merge = true;
			break;
		default:
			bitmap_bad_option(c, argv);
			return 1;
		}
	}
	return IMG_CONTINUE;
}

/* qemu-img's checks of the options among themselves, in its order. */
static bool bitmap_check_args(int argc, const struct bitmap_args *a)
{
	const char *msg = NULL;

	if (!a->n)
		msg = "Need at least one of --add, --remove, --clear, --enable, --disable, "
		      "or --merge";
	else if (a->granularity && !a->add)
		msg = "granularity only supported with --add";
	else if (a->src_fmt && !a->src_file)
		msg = "-F only supported with -b";
	else if (a->src_file && !a->merge)
		msg = "Merge bitmap source file only supported with --merge";
	else if (optind != argc - 2)
		msg = "Expecting filename and bitmap name";
	if (msg)
		img_error("%s", msg);
	return !msg;
}

/* The image (and --merge's source file) opened, the actions run: the exit status. */
static int bitmap_run(char **argv, const struct bitmap_args *a)
{
	struct block_dev *bd, *src = NULL;
	int ret;

	bd = img_open(argv[optind], a->fmt, 0);
	if (!bd)
		return 1;
	if (a->src_file && !(src = img_open(a->src_file, a->src_fmt, BLOCK_RDONLY))) {
		block_close(bd);
		return 1;
	}
	/* QMP's granularity is 32 bits: qemu-img passes -g truncated, 0 meaning the default. */
	ret = run_actions(bd, src ? src : bd, a->acts, a->n, argv[optind + 1], a->granularity);
	if (src)
		block_close(src);
	block_close(bd);
	return ret;
}

int img_bitmap(int argc, char **argv)
{
	struct bitmap_args a = { .acts = calloc((size_t)argc + 1, sizeof(*a.acts)) };
	int ret;

	if (!a.acts)
		return 1;
	ret = bitmap_parse(argc, argv, &a);
	if (ret == IMG_CONTINUE)
		ret = bitmap_check_args(argc, &a) ? bitmap_run(argv, &a) : 1;
	free(a.acts);
	return ret;
}

bool img_supports_bitmaps(struct block_dev *bd)
{
	struct block_info info;

	memset(&info, 0, sizeof(info));
	return !strcmp(block_format_name(bd), "qcow2") && block_get_info(bd, &info) == 0 &&
	       info.qcow2_version >= 3;
}

/*
 * QEMU's qcow2_get_persistent_dirty_bitmap_size: every bitmap fully
 * allocated, its table, and the directory, each rounded to clusters.
 */
int img_bitmaps_size(struct block_dev *bd, uint32_t cluster_size, uint64_t *out)
{
	struct block_bitmap *list = NULL;
	uint64_t size = block_length(bd), total = 0, dir = 0;
	int n = block_bitmap_list(bd, &list);

	if (n < 0) {
		img_error("Could not read the bitmaps of '%s': %s", block_filename(bd),
			  strerror(-n));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		uint64_t bits = (size + list[i].granularity - 1) / list[i].granularity;
		uint64_t clusters = ((bits + 7) / 8 + cluster_size - 1) / cluster_size;
		total += clusters * cluster_size;
		total += (clusters * 8 + cluster_size - 1) / cluster_size * cluster_size;
		dir += (24 + strlen(list[i].name) + 7) & ~7ULL;
	}
	total += (dir + cluster_size - 1) / cluster_size * cluster_size;
	free(list);
	*out = total;
	return 0;
}

int img_convert_check_bitmaps(struct block_dev **src, int nsrc, bool skip_broken)
{
	struct block_bitmap *list = NULL;
	int n;

	if (nsrc > 1) {
		img_error("Copying bitmaps only possible with single source");
		return -1;
	}
	if (!img_supports_bitmaps(src[0])) {
		img_error("Source lacks bitmap support");
		return -1;
	}
	n = block_bitmap_list(src[0], &list);
	/* QEMU walks its bitmaps newest first: the directory backwards. */
	for (int i = n - 1; i >= 0 && !skip_broken; i--) {
		if (list[i].in_use) {
			img_error("Cannot copy inconsistent bitmap '%s'", list[i].name);
			fprintf(stderr, "Try --skip-broken-bitmaps, or use '%s bitmap --remove' to "
				"delete it\n", IMG_NAME);
			free(list);
			return -1;
		}
	}
	free(list);
	return n < 0 ? -1 : 0;
}

/* qemu-img's convert_copy_bitmaps: each one added to dst (same granularity and state), then merged. */
int img_convert_copy_bitmaps(struct block_dev *src, struct block_dev *dst, bool skip_broken)
{
	struct block_bitmap *list = NULL;
	char err[4096];
	int n = block_bitmap_list(src, &list), ret = 0;

	for (int i = n - 1; i >= 0 && ret == 0; i--) {
		struct block_bitmap_req req = {
			.act = BLOCK_BITMAP_ADD, .name = list[i].name,
			.granularity = (uint32_t)list[i].granularity, .granularity_set = true,
			.disabled = !list[i].autoload, .src = src, .src_name = list[i].name,
		};
		if (skip_broken && list[i].in_use) {
			img_error("warning: Skipping inconsistent bitmap '%s'", list[i].name);
			continue;
		}
		if (block_bitmap_change(dst, &req, err, sizeof(err)) < 0) {
			img_error("Failed to create bitmap %s: %s", list[i].name, err);
			ret = 1;
			break;
		}
		req.act = BLOCK_BITMAP_MERGE;
		if (block_bitmap_change(dst, &req, err, sizeof(err)) < 0) {
			img_error("Failed to populate bitmap %s: %s", list[i].name, err);
			req.act = BLOCK_BITMAP_REMOVE;
			block_bitmap_change(dst, &req, err, sizeof(err));
			ret = 1;
		}
	}
	free(list);
	return n < 0 ? 1 : ret;
}
