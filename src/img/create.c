/* Image geometry: create, amend, resize, measure. */
#include "img/img.h"
#include "block/probe.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_OUTPUT = 256, OPT_SIZE, OPT_SHRINK, OPT_PREALLOC,
       OPT_FORCE };

static const char *prealloc_name(enum block_prealloc p)
{
	static const char *const names[] = { "off", "metadata", "falloc", "full" };
	return names[p];
}

static bool parse_prealloc(const char *s, enum block_prealloc *p)
{
	for (int i = 0; i <= BLOCK_PREALLOC_FULL; i++) {
		if (!strcmp(s, prealloc_name((enum block_prealloc)i))) {
			*p = (enum block_prealloc)i;
			return true;
		}
	}
	return false;
}

static char *join_opts(char *old, const char *add)
{
	char *n;

	if (!old)
		return strdup(add);
	n = malloc(strlen(old) + strlen(add) + 2);
	if (n)
		sprintf(n, "%s,%s", old, add);
	free(old);
	return n;
}

/*
 * qemu-img's print_block_option_help: the format's options, and the file
 * protocol's too once a target file name is given.
 */
int img_print_option_help(const char *fmt, const char *filename)
{
	struct img_opts p;

	if (!img_check_create_format(fmt, NULL))
		return 1;
	if ((filename ? img_opts_init_target(&p, fmt, filename) :
	     img_opts_init(&p, fmt, IMG_OPTS_CREATE)) < 0)
		return 1;
	img_opts_print_help(&p);
	return 0;
}

/* The backing file gives the size, and must be openable unless -u. */
static int open_backing(const char *filename, struct block_create_opts *o, bool *size_given)
{
	char *path = img_backing_path(filename, o->backing_file), err[4096];
	struct block_dev *b;

	if (!path)
		return -1;
	if (block_open(path, o->backing_fmt, BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_UNSAFE_PROBE,
		       &b, err, sizeof(err)) < 0) {
		free(path);
		img_error("%s: %s", filename, err);
		fprintf(stderr, "Could not open backing image.\n");
		return -1;
	}
	free(path);
	if (!o->backing_fmt) {
		img_error("%s: Backing file specified without backing format", filename);
		fprintf(stderr, "Detected format of %s.", block_format_name(b));
		block_close(b);
		return -1;
	}
	if (!*size_given)
		o->size = block_length(b);
	*size_given = true;
	block_close(b);
	return 0;
}

/* bdrv_img_create: -o, then -b/-F and the size, as options of one list. */
static int create_image(const char *filename, const char *fmt, const char *options,
			const char *backing, const char *backing_fmt, bool size_given,
			uint64_t size, bool quiet, bool unsafe)
{
	struct block_create_opts o = { 0 };
	struct img_opts p;
	unsigned set = 0;
	char err[4096], bad[4096] = "";
	int ret = 1;

	if (img_opts_init_target(&p, fmt, filename) < 0)
		return 1;
	if (options && img_opts_parse(&p, options, err, sizeof(err)) < 0) {
		img_error("%s: %s", filename, err);
		goto out;
	}
	if (img_opts_given(&p, "size") && size_given) {
		img_error("%s: The image size must be specified only once", filename);
		goto out;
	}
	if ((backing && img_opts_set(&p, "backing_file", backing, 0) < 0) ||
	    (backing_fmt && img_opts_set(&p, "backing_fmt", backing_fmt, 0) < 0)) {
		img_error("%s: Backing file%s not supported for file format '%s'", filename,
			  backing ? "" : " format", fmt);
		goto out;
	}
	/* String values are the driver's to check, after the "Formatting" line. */
	if (img_opts_apply(&p, &o, &set, bad, sizeof(bad)) < 0 && !bad[0])
		snprintf(bad, sizeof(bad), "Invalid options");
	size_given = size_given || img_opts_given(&p, "size");
	if (!(set & BLOCK_AMEND_SIZE))
		o.size = size;
	if (o.backing_fmt && !o.backing_file) {
		img_error("%s: Backing format given without a backing file", filename);
		goto out;
	}
	/* A protocol that cannot create is refused before the backing file opens, as bdrv_img_create does. */
	if (block_create_name_check(filename, err, sizeof(err)) < 0) {
		img_error("%s: %s", filename, err);
		goto out;
	}
	if (o.backing_file && (!unsafe || !size_given) && open_backing(filename, &o, &size_given) < 0)
		goto out;
	if (!size_given) {
		img_error("%s: Image creation needs a size parameter", filename);
		goto out;
	}
	if (!img_opts_given(&p, "size"))
		img_opts_set(&p, "size", "", o.size);
	if (!quiet)
		img_opts_print_formatting(&p, filename);
	fflush(stdout);
	if (bad[0]) {
		img_error("%s: %s", filename, bad);
		goto out;
	}
	/* qemu-img creates whole sectors (the -o path rounds the size up). */
	o.size = (o.size + 511) & ~511ULL;
	if (block_create(filename, fmt, &o, err, sizeof(err)) < 0) {
		img_error("%s: %s", filename, err);
		goto out;
	}
	ret = 0;
out:
	img_opts_free(&p);
	return ret;
}

int img_create(int argc, char **argv)
{
	const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL, *filename;
	char *options IMG_AUTOFREE = NULL;
	bool quiet = false, unsafe = false, size_given = false;
	uint64_t size = 0;
	int c;
	/* qemu-img create takes no --image-opts. */
	struct img_getopt g = { .cmd = "create", .shortopts = ":F:b:f:ho:qu" };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'F': backing_fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'f': fmt = optarg; break;
		case 'o':
			options = join_opts(options, optarg);
			if (!options)
				return 1;
			break;
		case 'q': quiet = true; break;
		case 'u': unsafe = true; break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (options && img_is_help_opt(options))
		return img_print_option_help(fmt, optind < argc ? argv[optind] : NULL);
	if (optind >= argc) {
		return img_usage_error("Expecting image file name");
	}
	filename = argv[optind++];
	if (optind < argc) {
		if (!img_parse_size_arg("image size", argv[optind], &size))
			return 1;
		size_given = true;
		optind++;
	}
	if (optind != argc) {
		return img_usage_error("Expecting one image file name");
	}
	if (!img_check_create_format(fmt, filename))
		return 1;
	return create_image(filename, fmt, options, backing, backing_fmt, size_given, size, quiet,
			    unsafe);
}

/* print_amend_option_help */
static int print_amend_help(const char *fmt)
{
	struct img_opts p;

	if (!block_format_known(fmt)) {
		img_error("Unknown file format '%s'", fmt);
		return 1;
	}
	if (strcmp(fmt, "qcow2") && !block_format_opts(fmt, true)) {
		img_error("Format driver '%s' does not support option amendment", fmt);
		return 1;
	}
	if (img_opts_init(&p, fmt, IMG_OPTS_AMEND) < 0)
		return 1;
	img_opts_print_help(&p);
	return 0;
}

/* amend's command line, as amend_parse reads it. */
struct amend_args {
	const char *fmt;
	char *options;			/* every -o, joined with commas */
	unsigned flags;
	bool image_opts, progress, quiet;
};

/* The option loop: IMG_CONTINUE, or the exit status. */
static int amend_parse(int argc, char **argv, struct amend_args *a)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	unsigned cache;
	int c;
	struct img_getopt g = { .cmd = "amend", .shortopts = ":ho:f:t:pq", .longopts = longopts,
				.image_opts = &a->image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'o':
			a->options = join_opts(a->options, optarg);
			if (!a->options)
				return 1;
			break;
		case 'f': a->fmt = optarg; break;
		case 't':
			if (!img_cache_flags(optarg, &cache)) {
				img_error("Invalid cache option: %s", optarg);
				return 1;
			}
			a->flags |= cache;
			break;
		case 'p': a->progress = true; break;
		case 'q': a->quiet = true; break;
		/*
		 * qemu-img passes --force only to encryption key management
		 * (encrypt.* options), which Kestrel refuses as unknown options:
		 * for every image Kestrel amends it changes nothing there either.
		 */
		case OPT_FORCE: break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (!a->options)
		return img_usage_error("Must specify options (-o)");
	/* qemu-img: with -f the help needs no image; without, the image names the format. */
	if (a->fmt && img_is_help_opt(a->options))
		return print_amend_help(a->fmt);
	if (optind != argc - 1) {
		/* qemu-img amend: error_report, no "Try" line (unlike its other usage errors) */
		img_error("Expecting one image file name");
		return 1;
	}
	return IMG_CONTINUE;
}

/*
 * qcow2_amend_options: the backing file stays as it is (rebase changes
 * it); naming the same file and format again is no change.
 */
static int amend_check_backing(struct block_dev *bd, const struct block_create_opts *o,
			       unsigned set)
{
	struct block_info bi;

	if (!(set & (BLOCK_AMEND_BACKING_FILE | BLOCK_AMEND_BACKING_FMT)))
		return 0;
	block_get_info(bd, &bi);
	if (((set & BLOCK_AMEND_BACKING_FILE) &&
	     strcmp(o->backing_file ? o->backing_file : "", bi.backing_file)) ||
	    ((set & BLOCK_AMEND_BACKING_FMT) &&
	     strcmp(o->backing_fmt ? o->backing_fmt : "", bi.backing_fmt))) {
		img_error("Cannot amend the backing file");
		fprintf(stderr, "You can use '%s rebase' instead.\n", IMG_NAME);
		return -1;
	}
	return 0;
}

/* The -o options applied to the open image: the exit status. */
static int amend_image(struct block_dev *bd, const struct amend_args *a)
{
	struct block_create_opts o = { 0 };
	struct img_progress prog;
	struct img_opts p;
	unsigned set = 0;
	char err[4096];
	int ret;

	if (img_is_help_opt(a->options))
		return print_amend_help(block_format_name(bd));
	/* qcow2, or a driver with its own amend list (luks: keyslots). */
	if (strcmp(block_format_name(bd), "qcow2") && !block_format_opts(block_format_name(bd), true)) {
		img_error("Format driver '%s' does not support option amendment",
			  block_format_name(bd));
		return 1;
	}
	if (img_opts_init(&p, block_format_name(bd), IMG_OPTS_AMEND) < 0 ||
	    img_opts_parse(&p, a->options, err, sizeof(err)) < 0 ||
	    img_opts_apply(&p, &o, &set, err, sizeof(err)) < 0) {
		img_error("%s", err);
		img_opts_free(&p);
		return 1;
	}
	/* qemu-img amend -p: 0% before, 100% after (its converters report steps between). */
	img_progress_init(&prog, a->progress && !a->quiet, 1.0f);
	img_progress_print(&prog, 0, 100);
	ret = amend_check_backing(bd, &o, set);
	if (ret == 0) {
		ret = block_amend(bd, &o, set, err, sizeof(err));
		/* qemu-img amend prints the driver's error alone. */
		if (ret < 0)
			img_error("%s", err);
	}
	/* 100% and the end of the line, whatever happened (qemu-img amend). */
	img_progress_print(&prog, 100, 0);
	img_progress_end(&prog);
	img_opts_free(&p);
	return ret < 0 ? 1 : 0;
}

int img_amend(int argc, char **argv)
{
	struct amend_args a = { 0 };
	struct block_dev *bd;
	int ret = amend_parse(argc, argv, &a);

	if (ret == IMG_CONTINUE) {
		/* With its backing chain, as qemu-img amend opens it (a missing one fails). */
		bd = img_open_image(argv[optind], a.fmt, a.flags, a.image_opts);
		ret = bd ? amend_image(bd, &a) : 1;
		block_close(bd);
	}
	free(a.options);
	return ret;
}

/* resize's command line, as resize_parse reads it. */
struct resize_args {
	const char *fmt, *filename, *size_arg;
	enum block_prealloc prealloc;
	bool shrink, quiet, image_opts;
	bool negative;			/* the size's '-' was turned into '~' */
	int sign;			/* +N: 1, -N: -1, N: 0 */
};

/* The option loop: IMG_CONTINUE, or the exit status. */
static int resize_parse(int argc, char **argv, struct resize_args *a)
{
	static const struct option longopts[] = {
		{ "preallocation", required_argument, NULL, OPT_PREALLOC },
		{ "shrink", no_argument, NULL, OPT_SHRINK },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	struct img_getopt g = { .cmd = "resize", .shortopts = ":f:hq", .longopts = longopts,
				.image_opts = &a->image_opts };

	/*
	 * qemu-img counts the words before it parses any option; a lone
	 * -h/--help still prints the usage here (documented: resize-help).
	 */
	if (argc < 3 && !(argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))))
		return img_usage_error("Not enough arguments");
	/* "-N" would look like an option: qemu-img takes it out first. */
	if (argc >= 3 && argv[argc - 1][0] == '-' && argv[argc - 1][1] >= '0' &&
	    argv[argc - 1][1] <= '9') {
		argv[argc - 1][0] = '~';
		a->negative = true;
	}
	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'q': a->quiet = true; break;
		case OPT_SHRINK: a->shrink = true; break;
		case OPT_PREALLOC:
			if (!parse_prealloc(optarg, &a->prealloc)) {
				img_error("Invalid preallocation mode '%s'", optarg);
				return 1;
			}
			break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (optind != argc - 2)
		return img_usage_error("Expecting image file name and size");
	a->filename = argv[optind];
	a->size_arg = argv[optind + 1];
	/* Only the '~' put there above means minus: a '~' typed is a bad size, as in qemu-img. */
	if (a->size_arg[0] == '+' ||
	    (a->negative && a->size_arg[0] == '~' && a->size_arg == argv[argc - 1])) {
		a->sign = a->size_arg[0] == '+' ? 1 : -1;
		a->size_arg++;
	}
	return IMG_CONTINUE;
}

/* qemu-img parses the size as a QemuOpts "size" before opening the image. */
static int resize_parse_size(const char *size_arg, uint64_t *n)
{
	struct img_opts p;
	char err[4096], *spec, *q;
	int ret;

	if (img_opts_init(&p, "raw", IMG_OPTS_CREATE) < 0)
		return -1;
	spec = malloc(strlen(size_arg) * 2 + 6);
	if (!spec) {
		img_opts_free(&p);
		return -1;
	}
	/* A ',' in the value is doubled, as QemuOpts escapes it. */
	q = stpcpy(spec, "size=");
	for (const char *t = size_arg; *t; t++) {
		*q++ = *t;
		if (*t == ',')
			*q++ = ',';
	}
	*q = '\0';
	ret = img_opts_parse(&p, spec, err, sizeof(err));
	free(spec);
	*n = p.num[0];
	img_opts_free(&p);
	if (ret < 0) {
		img_error("%s", err);
		return -1;
	}
	return 0;
}

/* The new size, from the size argument and the image's size, checked as qemu-img does. */
static int resize_new_size(struct block_dev *bd, const struct resize_args *a, uint64_t n,
			   uint64_t *size)
{
	/* total_size is an int64_t in qemu-img: 8E and above read as negative. */
	if (a->sign > 0)
		*size = block_length(bd) + n;
	else if (a->sign < 0)
		*size = block_length(bd) - n;
	else
		*size = n;
	if (*size == 0 || *size > INT64_MAX) {
		img_error("New image size must be positive");
		return -1;
	}
	if (*size <= block_length(bd) && a->prealloc != BLOCK_PREALLOC_OFF) {
		img_error("Preallocation can only be used for growing images");
		return -1;
	}
	if (*size < block_length(bd) && !a->shrink) {
		img_error("Use the --shrink option to perform a shrink operation.");
		img_error("warning: Shrinking an image will delete all data beyond the shrunken "
			  "image's end. Before performing such an operation, make sure there is no "
			  "important data there.");
		return -1;
	}
	return 0;
}

int img_resize(int argc, char **argv)
{
	struct resize_args a = { .prealloc = BLOCK_PREALLOC_OFF };
	struct block_dev *bd;
	uint64_t size, n;
	char err[4096];
	int ret = resize_parse(argc, argv, &a);

	if (ret != IMG_CONTINUE)
		return ret;
	if (resize_parse_size(a.size_arg, &n) < 0)
		return 1;
	/* With its backing chain, as qemu-img resize opens it (a missing one fails). */
	bd = img_open_image(a.filename, a.fmt, 0, a.image_opts);
	if (!bd)
		return 1;
	ret = resize_new_size(bd, &a, n, &size);
	if (ret == 0 && block_truncate(bd, size, a.shrink, a.prealloc, err, sizeof(err)) < 0) {
		img_error("%s", err);
		ret = -1;
	}
	if (ret == 0 && !a.quiet)
		printf("Image resized.\n");
	block_close(bd);
	return ret < 0 ? 1 : 0;
}

/* measure's command line, as measure_parse reads it. */
struct measure_args {
	const char *fmt, *out_fmt, *output, *snapshot;
	char *options;			/* every -o, joined with commas */
	unsigned flags;
	uint64_t size;			/* --size */
	bool have_size, image_opts, json;
};

/* What measure prints. */
struct measure_result {
	uint64_t required, full, bitmaps_size;
	bool bitmaps;
};

/* The option loop: IMG_CONTINUE, or the exit status. */
static int measure_parse(int argc, char **argv, struct measure_args *a)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	struct img_getopt g = { .cmd = "measure", .shortopts = ":hf:O:o:l:U", .longopts = longopts,
				.image_opts = &a->image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'O': a->out_fmt = optarg; break;
		case 'o':
			a->options = join_opts(a->options, optarg);
			if (!a->options)
				return 1;
			break;
		case 'l': a->snapshot = img_snapshot_arg(optarg); break;
		case 'U': a->flags |= BLOCK_NO_LOCK; break;
		case OPT_OUTPUT: a->output = optarg; break;
		case OPT_SIZE:
			if (!img_parse_size_arg("image size", optarg, &a->size))
				return 1;
			a->have_size = true;
			break;
		}
	}
	return g.status;
}

/* qemu-img's checks of the arguments, in its order: IMG_CONTINUE, or the exit status. */
static int measure_check_args(int argc, struct measure_args *a)
{
	if (!img_check_create_format(a->out_fmt, NULL))
		return 1;
	if (!img_parse_output(a->output, &a->json))
		return 1;
	if (a->have_size == (optind < argc)) {
		img_error(a->have_size ? "--size N cannot be used together with a filename."
				       : "Either --size N or one filename must be specified.");
		return 1;
	}
	if (a->have_size && (a->image_opts || a->fmt || a->snapshot)) {
		img_error("--image-opts, -f, and -l require a filename argument.");
		return 1;
	}
	if (optind < argc - 1) {
		img_error("At most one filename argument is allowed.");
		return 1;
	}
	return IMG_CONTINUE;
}

/*
 * The -o options of the target format, as its measure function reads them;
 * *pp holds the strings o's format options point to: the caller frees it.
 */
static int measure_opts(const struct measure_args *a, struct block_create_opts *o,
			struct img_opts *pp)
{
	struct img_opts p;
	unsigned set = 0;
	char err[4096];
	int ret;

	if (img_opts_init(&p, a->out_fmt, IMG_OPTS_MEASURE) < 0)
		return -1;
	if (a->options && img_opts_parse(&p, a->options, err, sizeof(err)) < 0) {
		img_error("%s", err);
		img_error("Invalid options for file format '%s'", a->out_fmt);
		img_opts_free(&p);
		return -1;
	}
	ret = img_opts_apply(&p, o, &set, err, sizeof(err));
	*pp = p;
	if (ret < 0) {
		img_error("%s", err);
		return -1;
	}
	return 0;
}

/* The image measured (with -l, at one of its snapshots); a->size gets its size. */
static struct block_dev *measure_open(const char *filename, struct measure_args *a)
{
	struct block_dev *bd = img_open_image(filename, a->fmt, a->flags, a->image_opts);
	char err[4096];

	if (!bd)
		return NULL;
	/* qemu-img 7.2 measures at the image's current virtual size:
	 * loading the snapshot does not change it there. */
	a->size = block_length(bd);
	if (a->snapshot && block_snapshot_load_tmp(bd, a->snapshot, err, sizeof(err)) < 0) {
		img_error("Failed to load snapshot: %s", err);
		block_close(bd);
		return NULL;
	}
	return bd;
}

/*
 * The status of [off, off+len) through bd's backing chain: the first layer
 * that holds data or zeroes there decides, as QEMU's bdrv_block_status_above.
 */
static int measure_status(struct block_dev *bd, uint64_t off, uint64_t len, uint64_t *pnum,
			  unsigned *fl)
{
	struct block_dev *layer = bd;
	uint64_t map;

	for (;;) {
		if (block_status(layer, off, len, pnum, &map, fl) < 0) {
			img_error("Unable to get block status");
			return -1;
		}
		if ((*fl & (BLOCK_STATUS_ZERO | BLOCK_STATUS_DATA)) || !block_backing(layer) ||
		    off >= block_length(block_backing(layer)))
			return 0;
		layer = block_backing(layer);
		len = *pnum;
	}
}

/* qcow2_measure: the bytes of the data clusters the source really has. */
static int measure_qcow2_data(struct block_dev *bd, uint64_t size, uint32_t cs,
			      uint64_t *required)
{
	/* A snapshot (-l) may be shorter: nothing lies past its end. */
	uint64_t end = size < block_length(bd) ? size : block_length(bd);

	for (uint64_t off = 0; off < end;) {
		uint64_t pnum;
		unsigned fl = 0;
		if (measure_status(bd, off, end - off, &pnum, &fl) < 0)
			return -1;
		if (!(fl & BLOCK_STATUS_ZERO) && (fl & BLOCK_STATUS_DATA)) {
			pnum = ((off + pnum + cs - 1) / cs * cs) - off;
			*required += off % cs + pnum;
		}
		off += pnum;
	}
	return 0;
}

/*
 * A qcow2 target: its metadata, its data clusters, and its bitmaps when
 * r->bitmaps says the source has some to copy.
 */
static int measure_qcow2(struct block_dev *bd, uint64_t size, const struct block_create_opts *o,
			 struct measure_result *r)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int rbits = o->refcount_bits ? o->refcount_bits : 16;
	uint64_t vsize = (size + cs - 1) / cs * cs, luks;
	char err[4096];

	if (block_qcow2_crypt_measure(o, cs, &luks, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return -1;
	}
	if (bd && measure_qcow2_data(bd, size, cs, &r->required) < 0)
		return -1;
	if (o->prealloc == BLOCK_PREALLOC_FULL || o->prealloc == BLOCK_PREALLOC_FALLOC)
		r->required = vsize;
	r->full = block_qcow2_metadata_size(vsize, cs, rbits, o->compat == 2, o->extended_l2);
	r->required = r->full - vsize + r->required + luks;
	r->full += luks;
	r->bitmaps = r->bitmaps && o->compat != 2;
	if (r->bitmaps && img_bitmaps_size(bd, cs, &r->bitmaps_size) < 0)
		return -1;
	return 0;
}

static int measure_report(const struct measure_result *r, bool json)
{
	if (json) {
		struct jnode *j = jobj();
		int ret;
		jset_int(j, "required", (int64_t)r->required);
		jset_int(j, "fully-allocated", (int64_t)r->full);
		if (r->bitmaps)
			jset_int(j, "bitmaps", (int64_t)r->bitmaps_size);
		ret = jprint(stdout, j);
		jfree(j);
		if (ret < 0) {
			img_error("out of memory");
			return 1;
		}
	} else {
		printf("required size: %" PRIu64 "\n", r->required);
		printf("fully allocated size: %" PRIu64 "\n", r->full);
		if (r->bitmaps)
			printf("bitmaps size: %" PRIu64 "\n", r->bitmaps_size);
	}
	return 0;
}

/* After the checks: the options, the image (without --size), the sizes, the report. */
static int measure_run(char **argv, struct measure_args *a)
{
	struct block_create_opts o = { 0 };
	struct measure_result r = { 0 };
	struct block_dev *bd = NULL;
	struct img_opts p = { 0 };
	int ret = 1;

	if (measure_opts(a, &o, &p) < 0)
		goto out;
	if (!a->have_size) {
		bd = measure_open(argv[optind], a);
		if (!bd)
			goto out;
		r.bitmaps = img_supports_bitmaps(bd) && !strcmp(a->out_fmt, "qcow2");
	}
	if (strcmp(a->out_fmt, "raw") && strcmp(a->out_fmt, "qcow2") && strcmp(a->out_fmt, "luks")) {
		/* bdrv_measure: only raw, qcow2 and luks (of Kestrel's formats) have one. */
		img_error("Block driver '%s' does not support size measurement", a->out_fmt);
		block_close(bd);
		return 1;
	}
	if (!strcmp(a->out_fmt, "raw")) {
		/* raw_measure: everything the source holds, rounded to sectors. */
		r.required = r.full = (a->size + 511) & ~511ULL;
	} else if (!strcmp(a->out_fmt, "luks")) {
		char err[4096];
		if (block_luks_measure(&o, a->size, &r.required, err, sizeof(err)) < 0) {
			img_error("%s", err);
			goto out;
		}
		r.full = r.required;
	} else if (measure_qcow2(bd, a->size, &o, &r) < 0) {
		goto out;
	}
	ret = measure_report(&r, a->json);
out:
	block_close(bd);
	img_opts_free(&p);
	return ret;
}

int img_measure(int argc, char **argv)
{
	struct measure_args a = { .out_fmt = "raw", .output = "human",
				  .flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE };
	int ret = measure_parse(argc, argv, &a);

	if (ret == IMG_CONTINUE)
		ret = measure_check_args(argc, &a);
	if (ret == IMG_CONTINUE)
		ret = measure_run(argv, &a);
	free(a.options);
	return ret;
}
