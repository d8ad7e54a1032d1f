/* Image geometry: create, amend, resize, measure. */
#include "img/img.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_OUTPUT, OPT_SIZE, OPT_SHRINK, OPT_PREALLOC,
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

/* The "Formatting ..." line, options in the order qemu-img 7.2 prints them. */
static void print_formatting(const char *filename, const char *fmt,
			     const struct block_create_opts *o, unsigned set, bool prealloc_set)
{
	printf("Formatting '%s', fmt=%s", filename, fmt);
	if (!strcmp(fmt, "qcow2")) {
		printf(" cluster_size=%u extended_l2=%s", o->cluster_size ? o->cluster_size : 65536,
		       o->extended_l2 ? "on" : "off");
		if (prealloc_set)
			printf(" preallocation=%s", prealloc_name(o->prealloc));
		printf(" compression_type=%s size=%" PRIu64,
		       o->compression_type == BLOCK_COMPRESS_ZSTD ? "zstd" : "zlib", o->size);
		if (o->backing_file)
			printf(" backing_file=%s", o->backing_file);
		if (o->backing_fmt)
			printf(" backing_fmt=%s", o->backing_fmt);
		if (set & BLOCK_AMEND_COMPAT)
			printf(" compat=%s", o->compat == 2 ? "0.10" : "1.1");
		printf(" lazy_refcounts=%s refcount_bits=%d\n", o->lazy_refcounts ? "on" : "off",
		       o->refcount_bits ? o->refcount_bits : 16);
	} else {
		printf(" size=%" PRIu64, o->size);
		if (prealloc_set)
			printf(" preallocation=%s", prealloc_name(o->prealloc));
		printf("\n");
	}
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

int img_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, OPT_OBJECT },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL, *filename;
	struct block_create_opts o = { 0 };
	char *options IMG_AUTOFREE = NULL, *storage IMG_AUTOFREE = NULL, err[4096];
	unsigned set = 0;
	bool quiet = false, unsafe = false, size_given = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "F:b:f:ho:qu", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("create"); return 0;
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
		case OPT_OBJECT:
			img_error("--object is not supported");
			return 1;
		default:
			img_error("Try '%s create --help' for more information", IMG_NAME);
			return 1;
		}
	}
	if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
		img_error("Unknown file format '%s'", fmt);
		return 1;
	}
	if (options && img_is_help_opt(options)) {
		img_print_create_opts_help(fmt);
		return 0;
	}
	if (optind >= argc) {
		img_error("Expecting image file name");
		return 1;
	}
	filename = argv[optind++];
	if (options && img_parse_create_opts(fmt, options, &o, &set, &storage) < 0)
		return 1;
	if (set & BLOCK_AMEND_SIZE)
		size_given = true;
	if (optind < argc) {
		if (!img_parse_size(argv[optind], &o.size) || o.size > INT64_MAX) {
			img_error("Invalid image size specified. You may use k, M, G, T, P or E "
				  "suffixes for");
			img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
				  "exabytes.");
			return 1;
		}
		size_given = true;
		optind++;
	}
	if (optind != argc) {
		img_error("Expecting one image file name");
		return 1;
	}
	if (backing)
		o.backing_file = backing;
	if (backing_fmt)
		o.backing_fmt = backing_fmt;
	if (o.backing_fmt && !o.backing_file) {
		img_error("%s: Backing format given without a backing file", filename);
		return 1;
	}
	if (o.backing_file && strcmp(fmt, "qcow2")) {
		img_error("%s: Backing file not supported for file format '%s'", filename, fmt);
		return 1;
	}
	/* The backing file gives the size, and must be openable unless -u. */
	if (o.backing_file && (!unsafe || !size_given)) {
		char *path = img_backing_path(filename, o.backing_file);
		struct block_dev *b;
		if (!path)
			return 1;
		if (block_open(path, o.backing_fmt, BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_UNSAFE_PROBE,
			       &b, err, sizeof(err)) < 0) {
			free(path);
			img_error("%s: %s", filename, err);
			fprintf(stderr, "Could not open backing image.\n");
			return 1;
		}
		free(path);
		if (!o.backing_fmt) {
			img_error("%s: Backing file specified without backing format", filename);
			fprintf(stderr, "Detected format of %s.", block_format_name(b));
			block_close(b);
			return 1;
		}
		if (!size_given)
			o.size = block_length(b);
		size_given = true;
		block_close(b);
	}
	if (!size_given) {
		img_error("%s: Image creation needs a size parameter", filename);
		return 1;
	}
	if (!quiet)
		print_formatting(filename, fmt, &o, set, options && strstr(options, "preallocation="));
	/* qemu-img creates whole sectors (the -o path rounds the size up). */
	o.size = (o.size + 511) & ~511ULL;
	fflush(stdout);
	if (block_create(filename, fmt, &o, err, sizeof(err)) < 0) {
		img_error("%s: %s", filename, err);
		return 1;
	}
	return 0;
}

int img_amend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, OPT_OBJECT },
		{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *filename;
	struct block_create_opts o = { 0 };
	char *options IMG_AUTOFREE = NULL, *storage IMG_AUTOFREE = NULL, err[4096];
	unsigned set = 0, flags = 0, cache;
	struct block_dev *bd;
	struct img_progress prog;
	bool progress = false, quiet = false;
	int c, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "ho:f:t:pq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("amend"); return 0;
		case 'o':
			options = join_opts(options, optarg);
			if (!options)
				return 1;
			break;
		case 'f': fmt = optarg; break;
		case 't':
			if (!img_cache_flags(optarg, &cache)) {
				img_error("Invalid cache option: %s", optarg);
				return 1;
			}
			flags |= cache;
			break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		/*
		 * qemu-img passes --force only to encryption key management
		 * (encrypt.* options), which Kestrel refuses as unknown options:
		 * for every image Kestrel amends it changes nothing there either.
		 */
		case OPT_FORCE: break;
		default:
			img_error("Try '%s amend --help' for more information", IMG_NAME);
			return 1;
		}
	}
	if (!options) {
		img_error("Must specify options (-o)");
		return 1;
	}
	if (img_is_help_opt(options)) {
		printf("Amend options for '%s':\n", fmt ? fmt : "qcow2");
		printf("  %-22s - %s\n", "backing_file=<str>", "File name of a base image");
		printf("  %-22s - %s\n", "backing_fmt=<str>", "Image format of the base image");
		printf("  %-22s - %s\n", "compat=<str>", "Compatibility level (v2 [0.10] or v3 [1.1])");
		printf("  %-22s - %s\n", "lazy_refcounts=<bool (on/off)>", "Postpone refcount updates");
		printf("  %-22s - %s\n", "refcount_bits=<num>", "Width of a reference count entry in bits");
		printf("  %-22s - %s\n", "size=<size>", "Virtual disk size");
		return 0;
	}
	if (optind != argc - 1) {
		img_error("Expecting one image file name");
		return 1;
	}
	filename = argv[optind];
	/* With its backing chain, as qemu-img amend opens it (a missing one fails). */
	bd = img_open(filename, fmt, flags);
	if (!bd)
		return 1;
	if (strcmp(block_format_name(bd), "qcow2")) {
		img_error("Format driver '%s' does not support option amendment",
			  block_format_name(bd));
		block_close(bd);
		return 1;
	}
	if (img_parse_create_opts("qcow2", options, &o, &set, &storage) < 0) {
		block_close(bd);
		return 1;
	}
	if (o.cluster_size || o.prealloc || o.extended_l2 || strstr(options, "compression_type")) {
		img_error("Changing the %s is not supported", o.cluster_size ? "cluster size" :
			  o.prealloc ? "preallocation mode" : strstr(options, "compression_type") ?
			  "compression type" : "extended L2 setting");
		block_close(bd);
		return 1;
	}
	/* qemu-img amend -p: 0% before, 100% after (its converters report steps between). */
	img_progress_init(&prog, progress && !quiet, 1);
	ret = block_amend(bd, &o, set, err, sizeof(err));
	if (ret < 0)
		img_error("Error while amending options: %s", err);
	else
		img_progress_end(&prog);
	block_close(bd);
	return ret < 0 ? 1 : 0;
}

int img_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, OPT_OBJECT },
		{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
		{ "preallocation", required_argument, NULL, OPT_PREALLOC },
		{ "shrink", no_argument, NULL, OPT_SHRINK },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *filename, *size_arg;
	enum block_prealloc prealloc = BLOCK_PREALLOC_OFF;
	bool shrink = false, quiet = false;
	struct block_dev *bd;
	uint64_t size, n;
	char err[4096];
	int c, sign = 0;

	/* "-N" would look like an option: qemu-img takes it out first. */
	if (argc >= 3 && argv[argc - 1][0] == '-' && argv[argc - 1][1] >= '0' &&
	    argv[argc - 1][1] <= '9') {
		argv[argc - 1][0] = '~';
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, "f:hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("resize"); return 0;
		case 'f': fmt = optarg; break;
		case 'q': quiet = true; break;
		case OPT_SHRINK: shrink = true; break;
		case OPT_PREALLOC:
			if (!parse_prealloc(optarg, &prealloc)) {
				img_error("Invalid preallocation mode '%s'", optarg);
				return 1;
			}
			break;
		default:
			img_error("Try '%s resize --help' for more information", IMG_NAME);
			return 1;
		}
	}
	if (optind != argc - 2) {
		img_error("Expecting image file name and size");
		return 1;
	}
	filename = argv[optind];
	size_arg = argv[optind + 1];
	if (size_arg[0] == '+' || size_arg[0] == '~') {
		sign = size_arg[0] == '+' ? 1 : -1;
		size_arg++;
	}
	if (!img_parse_size(size_arg, &n) || n > INT64_MAX) {
		img_error("Invalid image size specified. You may use k, M, G, T, P or E suffixes "
			  "for ");
		img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
		return 1;
	}
	/* With its backing chain, as qemu-img resize opens it (a missing one fails). */
	bd = img_open(filename, fmt, 0);
	if (!bd)
		return 1;
	if (sign > 0)
		size = block_length(bd) + n;
	else if (sign < 0)
		size = n > block_length(bd) ? 0 : block_length(bd) - n;
	else
		size = n;
	if (sign < 0 && n > block_length(bd)) {
		img_error("New image size must be positive");
		block_close(bd);
		return 1;
	}
	if (size < block_length(bd) && !shrink) {
		img_error("Use the --shrink option to perform a shrink operation.");
		img_error("warning: Shrinking an image will delete all data beyond the shrunken "
			  "image's end. Before performing such an operation, make sure there is no "
			  "important data there.");
		block_close(bd);
		return 1;
	}
	if (block_truncate(bd, size, shrink, prealloc, err, sizeof(err)) < 0) {
		img_error("%s", err);
		block_close(bd);
		return 1;
	}
	if (!quiet)
		printf("Image resized.\n");
	block_close(bd);
	return 0;
}

int img_measure(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "object", required_argument, NULL, OPT_OBJECT },
		{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *out_fmt = "raw", *output = "human";
	struct block_create_opts o = { 0 };
	char *options IMG_AUTOFREE = NULL, *storage IMG_AUTOFREE = NULL;
	uint64_t size = 0, required = 0, full, vsize;
	unsigned set = 0, flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE;
	bool have_size = false, bitmaps = false, json;
	struct block_dev *bd = NULL;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "hf:O:o:l:U", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("measure"); return 0;
		case 'f': fmt = optarg; break;
		case 'O': out_fmt = optarg; break;
		case 'o':
			options = join_opts(options, optarg);
			if (!options)
				return 1;
			break;
		case 'l':
			img_error("-l is not supported by measure here");
			return 1;
		case 'U': flags |= BLOCK_NO_LOCK; break;
		case OPT_OUTPUT: output = optarg; break;
		case OPT_SIZE:
			if (!img_parse_size(optarg, &size) || size > INT64_MAX) {
				img_error("Invalid size specified. Must be between 0 and %" PRId64 ".",
					  INT64_MAX);
				return 1;
			}
			have_size = true;
			break;
		default:
			img_error("Try '%s measure --help' for more information", IMG_NAME);
			return 1;
		}
	}
	if (strcmp(out_fmt, "qcow2") && strcmp(out_fmt, "raw")) {
		img_error("Unknown file format '%s'", out_fmt);
		return 1;
	}
	if (options && img_is_help_opt(options)) {
		img_print_create_opts_help(out_fmt);
		return 0;
	}
	if (!img_parse_output(output, &json))
		return 1;
	if (have_size == (optind < argc)) {
		img_error(have_size ? "--size N cannot be used together with a filename."
				    : "Either --size N or one filename must be specified.");
		return 1;
	}
	if (optind < argc - 1) {
		img_error("At most one filename argument is allowed.");
		return 1;
	}
	if (options && img_parse_create_opts(out_fmt, options, &o, &set, &storage) < 0)
		return 1;
	if (!have_size) {
		bd = img_open(argv[optind], fmt, flags);
		if (!bd)
			return 1;
		size = block_length(bd);
		bitmaps = !strcmp(block_format_name(bd), "qcow2") && !strcmp(out_fmt, "qcow2");
	}
	if (!strcmp(out_fmt, "raw")) {
		required = full = (size + 511) & ~511ULL;
		if (bd) {
			/* raw_measure: everything the source holds, rounded to sectors. */
			required = full;
		}
	} else {
		uint32_t cs = o.cluster_size ? o.cluster_size : 65536;
		int rbits = o.refcount_bits ? o.refcount_bits : 16;
		vsize = (size + cs - 1) / cs * cs;
		if (bd) {
			/* qcow2_measure: data clusters the source really has. */
			for (uint64_t off = 0; off < size;) {
				uint64_t pnum, map, s = 0;
				unsigned fl = 0;
				struct block_dev *layer = bd;
				uint64_t len = size - off;
				for (;;) {
					if (block_status(layer, off, len, &pnum, &map, &fl) < 0) {
						img_error("Unable to get block status");
						block_close(bd);
						return 1;
					}
					if ((fl & (BLOCK_STATUS_ZERO | BLOCK_STATUS_DATA)) ||
					    !block_backing(layer) || off >= block_length(block_backing(layer)))
						break;
					layer = block_backing(layer);
					len = pnum;
				}
				if (!(fl & BLOCK_STATUS_ZERO) && (fl & BLOCK_STATUS_DATA)) {
					pnum = ((off + pnum + cs - 1) / cs * cs) - off;
					s = off % cs + pnum;
					required += s;
				}
				off += pnum;
			}
		}
		if (o.prealloc == BLOCK_PREALLOC_FULL || o.prealloc == BLOCK_PREALLOC_FALLOC)
			required = vsize;
		full = block_qcow2_metadata_size(vsize, cs, rbits, o.compat == 2);
		required = full - vsize + required;
		bitmaps = bitmaps && o.compat != 2;
	}
	if (json) {
		struct jnode *j = jobj();
		jset_int(j, "required", (int64_t)required);
		jset_int(j, "fully-allocated", (int64_t)full);
		if (bitmaps)
			jset_int(j, "bitmaps", 0);
		jprint(stdout, j);
		jfree(j);
	} else {
		printf("required size: %" PRIu64 "\n", required);
		printf("fully allocated size: %" PRIu64 "\n", full);
		if (bitmaps)
			printf("bitmaps size: %" PRIu64 "\n", (uint64_t)0);
	}
	block_close(bd);
	return 0;
}
