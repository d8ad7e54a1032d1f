/* check: metadata consistency, qemu-img's output and exit codes (0, 1, 2, 3, 63). */
#include "img/img.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

enum { OPT_OUTPUT = 256 };

static void print_human(const struct block_check_result *r)
{
	if (r->corruptions == 0 && r->leaks == 0 && r->check_errors == 0)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%d errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       r->corruptions);
	if (r->leaks)
		printf("\n%d leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n", r->leaks);
	if (r->check_errors)
		printf("\n%d internal errors have occurred during the check.\n", r->check_errors);
	if (r->total_clusters != 0 && r->allocated_clusters != 0)
		printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% "
		       "compressed clusters\n", r->allocated_clusters, r->total_clusters,
		       (double)r->allocated_clusters * 100.0 / (double)r->total_clusters,
		       (double)r->fragmented_clusters * 100.0 / (double)r->allocated_clusters,
		       (double)r->compressed_clusters * 100.0 / (double)r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

/* ImageCheck (qapi/block-core.json): optional members only when non-zero. */
static int print_json(const struct block_check_result *r, const char *filename,
		       const char *format)
{
	struct jnode *o = jobj();
	int ret;

	jset_str(o, "filename", filename);
	jset_str(o, "format", format);
	jset_int(o, "check-errors", r->check_errors);
	if (r->image_end_offset)
		jset_int(o, "image-end-offset", (int64_t)r->image_end_offset);
	if (r->corruptions)
		jset_int(o, "corruptions", r->corruptions);
	if (r->leaks)
		jset_int(o, "leaks", r->leaks);
	if (r->corruptions_fixed)
		jset_int(o, "corruptions-fixed", r->corruptions_fixed);
	if (r->leaks_fixed)
		jset_int(o, "leaks-fixed", r->leaks_fixed);
	if (r->total_clusters)
		jset_int(o, "total-clusters", (int64_t)r->total_clusters);
	if (r->allocated_clusters)
		jset_int(o, "allocated-clusters", (int64_t)r->allocated_clusters);
	if (r->fragmented_clusters)
		jset_int(o, "fragmented-clusters", (int64_t)r->fragmented_clusters);
	if (r->compressed_clusters)
		jset_int(o, "compressed-clusters", (int64_t)r->compressed_clusters);
	ret = jprint(stdout, o);
	jfree(o);
	return ret;
}

/* One check, its report lines on stderr ahead of anything printed after it. */
static int check_report(struct block_dev *bd, unsigned fix, struct block_check_result *r)
{
	int ret = block_check(bd, fix, r, stderr);

	fflush(stderr);
	return ret;
}

/* check's command line, as check_parse reads it. */
struct check_args {
	const char *fmt, *output, *filename;
	unsigned flags, fix;
	bool json, quiet, image_opts;
};

/* -r leaks|all: what the check repairs. */
static bool check_repair_mode(const char *arg, unsigned *fix)
{
	if (!strcmp(arg, "leaks"))
		*fix = BLOCK_FIX_LEAKS;
	else if (!strcmp(arg, "all"))
		*fix = BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS;
	else
		return false;
	return true;
}

/* The option loop: IMG_CONTINUE, or the exit status. */
static int check_parse(int argc, char **argv, struct check_args *a)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "repair", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned cache;
	int c;
	struct img_getopt g = { .cmd = "check", .shortopts = ":hf:r:T:qU", .longopts = longopts,
				.image_opts = &a->image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'r':
			if (!check_repair_mode(optarg, &a->fix))
				return img_usage_error("Unknown option value for -r "
						       "(expecting 'leaks' or 'all'): %s", optarg);
			break;
		case 'T':
			if (!img_cache_flags(optarg, &cache)) {
				img_error("Invalid source cache option: %s", optarg);
				return 1;
			}
			a->flags |= cache;
			break;
		case 'q': a->quiet = true; break;
		case 'U': a->flags |= BLOCK_NO_LOCK; break;
		case OPT_OUTPUT: a->output = optarg; break;
		}
	}
	return g.status;
}

/* qemu-img's checks of the arguments, in its order: IMG_CONTINUE, or the exit status. */
static int check_check_args(int argc, char **argv, struct check_args *a)
{
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	a->filename = argv[optind];
	if (!img_parse_output(a->output, &a->json))
		return 1;
	if (!a->fix)
		a->flags |= BLOCK_RDONLY;
	else	/* -r opens read-write: qemu-img warns of a probed raw image, restricting block 0. */
		a->flags &= ~BLOCK_UNSAFE_PROBE;
	if ((a->flags & BLOCK_NO_LOCK) && a->fix) {
		img_error("--force-share/-U is not allowed when repairing an image");
		return 1;
	}
	return IMG_CONTINUE;
}

/*
 * The check, and after a repair a second one of the fixed image:
 * IMG_CONTINUE, or the exit status.
 */
static int check_run(struct block_dev *bd, const struct check_args *a,
		     struct block_check_result *r)
{
	struct block_check_result r2;
	int ret;

	/*
	 * A damaged image can take one report line per cluster: buffered, they
	 * cost one write per 64 KiB instead of one each (qemu-img pays the same
	 * per line, but its time is what ours is measured against).
	 */
	setvbuf(stderr, NULL, _IOFBF, 1 << 16);
	ret = check_report(bd, a->fix, r);
	if (ret == -ENOTSUP) {
		img_error("This image format does not support checks");
		return 63;
	}
	if (ret < 0) {
		img_error("Check failed: %s", strerror(-ret));
		return 1;
	}
	if (!r->corruptions_fixed && !r->leaks_fixed)
		return IMG_CONTINUE;
	if (!a->json && !a->quiet)
		printf("The following inconsistencies were found and repaired:\n\n"
		       "    %d leaked clusters\n    %d corruptions\n\n"
		       "Double checking the fixed image now...\n",
		       r->leaks_fixed, r->corruptions_fixed);
	ret = check_report(bd, 0, &r2);
	if (ret < 0) {
		img_error("Check failed: %s", strerror(-ret));
		return 1;
	}
	r2.leaks_fixed = r->leaks_fixed;
	r2.corruptions_fixed = r->corruptions_fixed;
	*r = r2;
	return IMG_CONTINUE;
}

/* The result printed; the exit status says what the check found, as qemu-img's does. */
static int check_print(struct block_dev *bd, const struct check_args *a,
		       const struct block_check_result *r)
{
	if (a->json && print_json(r, a->filename, block_format_name(bd)) < 0) {
		img_error("Could not print the check result: out of memory");
		return 1;
	}
	if (!a->json && !a->quiet)
		print_human(r);
	if (r->check_errors)
		return 1;
	if (r->corruptions)
		return 2;
	if (r->leaks)
		return 3;
	return 0;
}

int img_check(int argc, char **argv)
{
	/* With its backing chain, as qemu-img opens it: a missing backing file fails the same. */
	struct check_args a = { .output = "human", .flags = BLOCK_CHECK | BLOCK_UNSAFE_PROBE };
	struct block_check_result r;
	struct block_dev *bd;
	int ret = check_parse(argc, argv, &a);

	if (ret == IMG_CONTINUE)
		ret = check_check_args(argc, argv, &a);
	if (ret != IMG_CONTINUE)
		return ret;
	bd = img_open_image(a.filename, a.fmt, a.flags, a.image_opts);
	if (!bd)
		return 1;
	ret = check_run(bd, &a, &r);
	if (ret == IMG_CONTINUE)
		ret = check_print(bd, &a, &r);
	block_close(bd);
	return ret;
}
