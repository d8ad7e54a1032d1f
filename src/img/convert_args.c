/*
 * kestrel-img convert's command line: qemu-img 7.2's options, and its checks
 * of them among themselves, in its order and with its messages.
 */
#include "img/convert.h"
#include "img/img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_TARGET_IMAGE_OPTS = 256, OPT_TARGET_IS_ZERO,
       OPT_BITMAPS, OPT_SALVAGE, OPT_FORCE_SHARE, OPT_SKIP_BROKEN };

/* -o given again: qemu-img joins the option strings with a comma. */
static int convert_add_options(struct convert_args *a, const char *arg)
{
	char *n = a->options ? malloc(strlen(a->options) + strlen(arg) + 2) : strdup(arg);

	if (!n)
		return -1;
	if (a->options) {
		sprintf(n, "%s,%s", a->options, arg);
		free(a->options);
	}
	a->options = n;
	return 0;
}

/* The options that take a number: -S, -m and -r.  False: refused (message printed). */
static bool convert_number_opt(struct convert_args *a, int ch, const char *arg)
{
	switch (ch) {
	case 'S':
		a->sparse_given = true;
		if (!img_parse_size(arg, &a->sparse) || a->sparse > INT32_MAX || a->sparse % 512) {
			img_error("Invalid buffer size for sparse output specified. Valid sizes "
				  "are multiples of 512 up to 2147483136.");
			return false;
		}
		return true;
	case 'm':
		if (!img_parse_size(arg, &a->coroutines) || a->coroutines < 1 ||
		    a->coroutines > 16 || strpbrk(arg, "kKmMgGtTpPeE")) {
			img_error("Invalid number of coroutines. Allowed number of coroutines is "
				  "between 1 and 16");
			return false;
		}
		return true;
	default:
		return img_rate_parse(arg, &a->rate);
	}
}

int convert_parse(int argc, char **argv, struct convert_args *a)
{
	static const struct option longopts[] = {
		{ "target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS },
		{ "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
		{ "bitmaps", no_argument, NULL, OPT_BITMAPS },
		{ "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
		{ "salvage", no_argument, NULL, OPT_SALVAGE },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	struct img_getopt g = { .cmd = "convert",
				.shortopts = ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:s:",
				.longopts = longopts, .image_opts = &a->image_opts };

	*a = (struct convert_args){ .cache = "unsafe", .src_cache = "writeback",
				    .src_flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE,
				    .sparse = 4096, .coroutines = 8 };
	while ((ch = img_getopt(&g, argc, argv)) != -1) {
		switch (ch) {
		case 'f': a->fmt = optarg; break;
		case 'O': a->out_fmt = optarg; break;
		case 'B': a->out_backing = optarg; break;
		case 'F': a->out_backing_fmt = optarg; break;
		case 'C': a->copy_range = true; break;
		case 'c': a->compress = true; break;
		case 'o':
			if (convert_add_options(a, optarg) < 0)
				return 1;
			break;
		case 'l':
		case 's': a->snapshot = img_snapshot_arg(optarg); break;	/* -s: the old -l */
		case 'S':
		case 'm':
		case 'r':
			if (!convert_number_opt(a, ch, optarg))
				return 1;
			break;
		case 'p': a->progress = true; break;
		case 't': a->cache = optarg; break;
		case 'T': a->src_cache = optarg; break;
		case 'q': a->quiet = true; break;
		case 'n': a->no_create = true; break;
		case 'W': a->out_of_order = true; break;
		case 'U': a->src_flags |= BLOCK_NO_LOCK; break;
		case OPT_TARGET_IS_ZERO: a->target_is_zero = true; break;
		case OPT_TARGET_IMAGE_OPTS: a->target_image_opts = true; break;
		case OPT_SALVAGE: a->salvage = true; break;
		case OPT_BITMAPS: a->bitmaps = true; break;
		case OPT_SKIP_BROKEN: a->skip_broken = true; break;
		}
	}
	return g.status;
}

int convert_check_args(int argc, char **argv, struct convert_args *a)
{
	unsigned cf;

	if (a->quiet)
		a->progress = false;
	a->out_fmt_given = a->out_fmt != NULL;
	if (a->skip_broken && !a->bitmaps) {
		img_error("Use of --skip-broken-bitmaps requires --bitmaps");
		return 1;
	}
	if (!a->out_fmt)
		a->out_fmt = "raw";
	/* qemu-img's refusals of copy offloading, in its order. */
	if (a->copy_range && (a->compress || a->sparse_given || a->salvage)) {
		img_error(a->compress ? "Cannot enable copy offloading when -c is used" :
			  a->sparse_given ? "Cannot enable copy offloading when -S is used" :
			  "Cannot use copy offloading in salvaging mode");
		return 1;
	}
	if (a->options && img_is_help_opt(a->options))
		return img_print_option_help(a->out_fmt,
					     argc - optind >= 2 ? argv[argc - 1] : NULL);
	if (!img_check_create_format(a->out_fmt, NULL))
		return 1;
	if (argc - optind < 2) {
		/* qemu-img 7.2 words both a missing source and a missing output so. */
		img_error("Must specify image file name");
		return 1;
	}
	if (a->target_image_opts && !a->no_create) {
		img_error("--target-image-opts requires use of -n flag");
		return 1;
	}
	if (a->target_is_zero && !a->no_create) {
		img_error("--target-is-zero requires use of -n flag");
		return 1;
	}
	/* qemu-img refuses both: they would describe a target that is not created. */
	if (a->no_create && (a->out_backing || a->options)) {
		img_error(a->out_backing ? "-B makes no sense when not creating the target"
					 : "-o has no effect when skipping image creation");
		return 1;
	}
	if (!img_cache_flags(a->src_cache, &cf)) {
		img_error("Invalid source cache option: %s", a->src_cache);
		return 1;
	}
	a->src_flags |= cf;
	return IMG_CONTINUE;
}
