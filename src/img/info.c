/* info and map: what an image is and where its data lives, as qemu-img prints it. */
#include "img/img.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_OUTPUT = 256, OPT_BACKING_CHAIN, OPT_START,
       OPT_MAXLEN, OPT_FORCE_SHARE };

/* ImageInfo (qapi/block-core.json), members inserted in schema order. */
struct jnode *img_image_info(struct block_dev *bd, const char *filename)
{
	struct jnode *o = jobj();
	struct block_info info;
	struct block_snapshot *snaps = NULL;
	int nsnaps;

	/* As bdrv_query_image_info: no dirty flag where the driver has no get_info (null-co). */
	bool have_info = block_get_info(bd, &info) == 0;
	jset_str(o, "filename", filename);
	jset_str(o, "format", block_format_name(bd));
	if (have_info)
		jset_bool(o, "dirty-flag", info.dirty);
	if (!info.actual_size_unknown)
		jset_int(o, "actual-size", (int64_t)info.actual_size);
	jset_int(o, "virtual-size", (int64_t)info.virtual_size);
	if (info.cluster_size)
		jset_int(o, "cluster-size", info.cluster_size);
	if (info.encrypted)
		jset_bool(o, "encrypted", true);
	if (info.backing_file[0]) {
		char *full = img_backing_path(filename, info.backing_file);
		jset_str(o, "backing-filename", info.backing_file);
		if (full)
			jset_str(o, "full-backing-filename", full);
		free(full);
		if (info.backing_fmt[0])
			jset_str(o, "backing-filename-format", info.backing_fmt);
	}
	nsnaps = block_snapshot_list(bd, &snaps);
	if (nsnaps > 0) {
		struct jnode *arr = jarr();
		for (int i = 0; i < nsnaps; i++) {
			struct jnode *sn = jobj();
			jset_str(sn, "id", snaps[i].id);
			jset_str(sn, "name", snaps[i].name);
			jset_int(sn, "vm-state-size", (int64_t)snaps[i].vm_state_size);
			jset_int(sn, "date-sec", snaps[i].date_sec);
			jset_int(sn, "date-nsec", snaps[i].date_nsec);
			jset_int(sn, "vm-clock-sec", (int64_t)(snaps[i].vm_clock_nsec / 1000000000));
			jset_int(sn, "vm-clock-nsec", (int64_t)(snaps[i].vm_clock_nsec % 1000000000));
			if (snaps[i].icount != UINT64_MAX)
				jset_int(sn, "icount", (int64_t)snaps[i].icount);
			jadd(arr, sn);
		}
		jset(o, "snapshots", arr);
	}
	free(snaps);
	if (info.qcow2_version) {
		struct jnode *spec = jobj(), *data = jobj();
		jset_str(spec, "type", "qcow2");
		jset_str(data, "compat", info.qcow2_version >= 3 ? "1.1" : "0.10");
		if (info.qcow2_version >= 3) {
			jset_bool(data, "extended-l2", info.extended_l2);
			jset_bool(data, "lazy-refcounts", info.lazy_refcounts);
			jset_bool(data, "corrupt", info.corrupt);
			if (info.data_file[0])
				jset_str(data, "data-file", info.data_file);
			if (info.has_data_file)
				jset_bool(data, "data-file-raw", info.data_file_raw);
		}
		{
			struct block_bitmap *bm = NULL;
			int nbm = block_bitmap_list(bd, &bm);
			if (nbm > 0) {
				struct jnode *arr = jarr();
				for (int i = 0; i < nbm; i++) {
					struct jnode *b = jobj(), *flags = jarr();
					/* QEMU 7.2 appends in its map's order: in-use, auto. */
					if (bm[i].in_use)
						jadd_str(flags, "in-use");
					if (bm[i].autoload)
						jadd_str(flags, "auto");
					jset_str(b, "name", bm[i].name);
					jset_uint(b, "granularity", bm[i].granularity);
					jset(b, "flags", flags);
					jadd(arr, b);
				}
				jset(data, "bitmaps", arr);
			}
			free(bm);
		}
		jset_int(data, "refcount-bits", info.refcount_bits);
		/* An encrypted image: the LUKS header's data (qcow2's "encrypt"). */
		{
			struct jnode *enc = block_info_specific(bd);
			if (enc)
				jset(data, "encrypt", enc);
		}
		jset_str(data, "compression-type",
			 info.compression_type == BLOCK_COMPRESS_ZSTD ? "zstd" : "zlib");
		jset(spec, "data", data);
		jset(o, "format-specific", spec);
	} else {
		struct jnode *spec = block_info_specific(bd);
		if (spec)
			jset(o, "format-specific", spec);
	}
	return o;
}

static const struct jnode *member(const struct jnode *o, const char *key);

/* The jnode layout is private to common.c; info keeps the values it prints itself. */
struct human {
	struct block_info info;
	struct block_snapshot *snaps;
	int nsnaps;
};

static void snapshot_line(const struct block_snapshot *sn)
{
	char date[64], clock[64], size[64], icount[32] = "";
	time_t t = sn->date_sec;
	struct tm tm;
	uint64_t secs = sn->vm_clock_nsec / 1000000000;

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d", (int)(secs / 3600),
		 (int)((secs / 60) % 60), (int)(secs % 60),
		 (int)((sn->vm_clock_nsec / 1000000) % 1000));
	img_size_to_str(sn->vm_state_size, size, sizeof(size));
	if (sn->icount != UINT64_MAX)
		snprintf(icount, sizeof(icount), "%" PRId64, (int64_t)sn->icount);
	printf("%-9s %-16s %8s%20s%13s%11s", sn->id, sn->name, size, date, clock, icount);
}

void img_print_snapshot_list(struct block_dev *bd)
{
	struct block_snapshot *snaps = NULL;
	int n = block_snapshot_list(bd, &snaps);

	if (n > 0) {
		printf("Snapshot list:\n");
		printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
		       "ICOUNT");
		for (int i = 0; i < n; i++) {
			snapshot_line(&snaps[i]);
			printf("\n");
		}
	}
	free(snaps);
}

/* QEMU's bdrv_image_info_dump. */
static void dump_human(struct block_dev *bd, const char *filename, const struct jnode *json)
{
	struct block_info info;
	char vsize[64], dsize[64];

	block_get_info(bd, &info);
	img_size_to_str(info.virtual_size, vsize, sizeof(vsize));
	if (info.actual_size_unknown)
		snprintf(dsize, sizeof(dsize), "unavailable");
	else
		img_size_to_str(info.actual_size, dsize, sizeof(dsize));
	printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRIu64 " bytes)\ndisk size: %s\n",
	       filename, block_format_name(bd), vsize, info.virtual_size, dsize);
	/* qemu-img's bdrv_image_info_dump order: encrypted, then cluster_size. */
	if (info.encrypted)
		printf("encrypted: yes\n");
	if (info.cluster_size)
		printf("cluster_size: %u\n", info.cluster_size);
	if (info.dirty)
		printf("cleanly shut down: no\n");
	if (info.backing_file[0]) {
		char *full = img_backing_path(filename, info.backing_file);
		printf("backing file: %s", info.backing_file);
		if (full && strcmp(full, info.backing_file))
			printf(" (actual path: %s)", full);
		printf("\n");
		free(full);
		if (info.backing_fmt[0])
			printf("backing file format: %s\n", info.backing_fmt);
	}
	img_print_snapshot_list(bd);
	const struct jnode *spec = member(json, "format-specific");
	if (spec) {
		printf("Format specific information:\n");
		if (spec && member(spec, "data") && jdump_human(stdout, member(spec, "data"), 1) < 0)
			img_error("Could not print the format specific information: out of memory");
	}
}

/*
 * The chain did not open: qemu-img info --backing-chain opens each image on
 * its own, so the message names the layer that failed (or the name met
 * twice: a loop).  False when every layer opens alone (the caller reports).
 */
static bool chain_report(const char *filename, const char *fmt, unsigned flags)
{
	char *names[64], *path = strdup(filename), *bfmt = fmt ? strdup(fmt) : NULL;
	bool reported = false;
	int n = 0;

	while (path && !reported && n < 64) {
		struct block_dev *bd;
		struct block_info bi;

		for (int i = 0; i < n && !reported; i++)
			if (!strcmp(names[i], path)) {
				img_error("Backing file '%s' creates an infinite loop.", path);
				reported = true;
			}
		bd = reported ? NULL : img_open(path, bfmt, flags | BLOCK_NO_BACKING |
						BLOCK_UNSAFE_PROBE);
		names[n++] = path;
		path = NULL;
		free(bfmt);
		bfmt = NULL;
		if (!bd) {
			reported = true;
			break;
		}
		block_get_info(bd, &bi);
		if (bi.backing_file[0])
			path = img_backing_path(block_filename(bd), bi.backing_file);
		if (bi.backing_fmt[0])
			bfmt = strdup(bi.backing_fmt);
		block_close(bd);
	}
	free(path);
	free(bfmt);
	while (n)
		free(names[--n]);
	return reported;
}

int img_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *output = "human", *filename;
	bool chain = false, json, image_opts = false;
	unsigned flags = BLOCK_RDONLY;
	struct block_dev *bd, *layer;
	struct jnode *arr = NULL;
	char *name = NULL, err[4096];
	int c, ret = 0;
	struct img_getopt g = { .cmd = "info", .shortopts = ":hf:U", .longopts = longopts,
				.image_opts = &image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'U': flags |= BLOCK_NO_LOCK; break;
		case OPT_OUTPUT: output = optarg; break;
		case OPT_BACKING_CHAIN: chain = true; break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (optind != argc - 1) {
		return img_usage_error("Expecting one image file name");
	}
	filename = argv[optind];
	if (!img_parse_output(output, &json))
		return 1;
	/* qemu-img info opens with BDRV_O_NO_IO: no key needed for an encrypted image. */
	flags |= BLOCK_NO_IO;
	/* As qemu-img: without the chain, the backing file is not opened at all. */
	if (!chain)
		flags |= BLOCK_NO_BACKING;
	/* With the chain, a layer that fails to open is named (chain_report), as qemu-img. */
	if (chain && !image_opts) {
		if (block_open(filename, fmt, flags | BLOCK_UNSAFE_PROBE, &bd, err, sizeof(err)) < 0) {
			if (!chain_report(filename, fmt, flags))
				img_error("Could not open '%s': %s", filename, err);
			return 1;
		}
	} else if (!(bd = img_open_image(filename, fmt, flags | BLOCK_UNSAFE_PROBE, image_opts))) {
		return 1;
	}
	if (chain && json)
		arr = jarr();
	/* The file the options named (json:, --image-opts, file:), as qemu-img shows it. */
	name = strdup(block_filename(bd));
	for (layer = bd; layer; layer = block_backing(layer)) {
		struct jnode *info = img_image_info(layer, name);
		struct block_info bi;
		if (arr) {
			jadd(arr, info);
		} else if (json) {
			ret = jprint(stdout, info);
			jfree(info);
			if (ret < 0)
				break;
		} else {
			if (layer != bd)
				printf("\n");
			dump_human(layer, name, info);
			jfree(info);
		}
		if (!chain)
			break;
		block_get_info(layer, &bi);
		free(name);
		/* The opened backing node names its file (a json: name resolves to it). */
		if (block_backing(layer))
			name = strdup(block_filename(block_backing(layer)));
		else
			name = bi.backing_file[0] ? img_backing_path(block_filename(layer),
								   bi.backing_file) : NULL;
		if (!name)
			break;
	}
	free(name);
	if (arr) {
		ret = jprint(stdout, arr);
		jfree(arr);
	}
	block_close(bd);
	if (ret < 0) {
		img_error("Could not print the image information: out of memory");
		return 1;
	}
	return 0;
}

/* The opaque jnode: common.c owns its layout, so look members up through it. */
const struct jnode *jmember(const struct jnode *o, const char *key);
static const struct jnode *member(const struct jnode *o, const char *key)
{
	return jmember(o, key);
}

/* --- map --- */

struct map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *filename;
};

/*
 * The file a layer's data lies in: its external data file (qcow2), named
 * relative to the image as QEMU opens it.  Kept until exit: map entries
 * point at it.
 */
static const char *data_filename(struct block_dev *layer)
{
	static struct { struct block_dev *layer; char *name; } seen[16];
	struct block_info bi;
	unsigned i;

	for (i = 0; i < 16 && seen[i].layer; i++)
		if (seen[i].layer == layer)
			return seen[i].name ? seen[i].name : block_filename(layer);
	if (i == 16)
		return block_filename(layer);
	memset(&bi, 0, sizeof(bi));
	block_get_info(layer, &bi);
	seen[i].layer = layer;
	if (bi.data_file[0])
		seen[i].name = img_backing_path(block_filename(layer), bi.data_file);
	return seen[i].name ? seen[i].name : block_filename(layer);
}

/* qemu-img's get_block_status: walk down the chain until a layer decides. */
static int map_status(struct block_dev *bd, uint64_t off, uint64_t len, struct map_entry *e)
{
	struct block_dev *layer = bd, *decided = NULL;
	unsigned flags = 0;
	uint64_t pnum = len, map = 0;
	int depth = 0, ret;

	for (;;) {
		ret = block_status(layer, off, pnum, &pnum, &map, &flags);
		if (ret < 0)
			return ret;
		if (flags & (BLOCK_STATUS_ZERO | BLOCK_STATUS_DATA)) {
			decided = layer;
			break;
		}
		if (!block_backing(layer)) {
			/* Unallocated at the bottom of the chain reads as zeroes (host offset kept). */
			flags = (block_unallocated_is_zero(layer) ? BLOCK_STATUS_ZERO : 0) |
				(flags & BLOCK_STATUS_OFFSET);
			break;
		}
		if (off >= block_length(block_backing(layer))) {
			flags = BLOCK_STATUS_ZERO;
			break;
		}
		layer = block_backing(layer);
		if (pnum > block_length(layer) - off)
			pnum = block_length(layer) - off;
		depth++;
	}
	*e = (struct map_entry){
		.start = off,
		.length = pnum,
		.data = flags & BLOCK_STATUS_DATA,
		.zero = flags & BLOCK_STATUS_ZERO,
		.offset = map,
		.has_offset = flags & BLOCK_STATUS_OFFSET,
		.depth = depth,
		.present = flags & BLOCK_STATUS_ALLOCATED,
		.filename = decided && (flags & BLOCK_STATUS_OFFSET) ?
			(block_data_file(decided, off) ? block_data_file(decided, off)
							: data_filename(decided)) : NULL,
	};
	return 0;
}

static bool entries_mergeable(const struct map_entry *a, const struct map_entry *b)
{
	if (a->present != b->present || a->zero != b->zero || a->data != b->data ||
	    a->depth != b->depth || a->has_offset != b->has_offset)
		return false;
	if ((a->filename == NULL) != (b->filename == NULL) ||
	    (a->filename && strcmp(a->filename, b->filename)))
		return false;
	return !a->has_offset || a->offset + a->length == b->offset;
}

static int dump_entry(const struct map_entry *e, bool json, bool last)
{
	if (json) {
		printf("{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %d, "
		       "\"present\": %s, \"zero\": %s, \"data\": %s", (int64_t)e->start,
		       (int64_t)e->length, e->depth, e->present ? "true" : "false",
		       e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %" PRId64, (int64_t)e->offset);
		putchar('}');
		if (!last)
			puts(",");
		return 0;
	}
	if (e->data && !e->has_offset) {
		img_error("File contains external, encrypted or compressed clusters.");
		return -1;
	}
	if (e->data && !e->zero)
		printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start, e->length,
		       e->has_offset ? e->offset : 0, e->filename ? e->filename : "");
	return 0;
}

/* map's command line, as map_parse reads it. */
struct map_args {
	const char *fmt, *output;
	uint64_t start, maxlen;
	unsigned flags;
	bool image_opts, json;
};

/* The option loop and qemu-img's checks: IMG_CONTINUE, or the exit status. */
static int map_parse(int argc, char **argv, struct map_args *a)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "start-offset", required_argument, NULL, OPT_START },
		{ "max-length", required_argument, NULL, OPT_MAXLEN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	struct img_getopt g = { .cmd = "map", .shortopts = ":hf:U", .longopts = longopts,
				.image_opts = &a->image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'U': a->flags |= BLOCK_NO_LOCK; break;
		case OPT_OUTPUT: a->output = optarg; break;
		case OPT_START:
			if (!img_parse_size_arg("start offset", optarg, &a->start))
				return 1;
			break;
		case OPT_MAXLEN:
			if (!img_parse_size_arg("max length", optarg, &a->maxlen))
				return 1;
			break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	if (!img_parse_output(a->output, &a->json))
		return 1;
	return IMG_CONTINUE;
}

/* The entry at off (at most 1 GiB of it, as qemu-img asks), up to end. */
static int map_next(struct block_dev *bd, uint64_t off, uint64_t end, struct map_entry *next)
{
	uint64_t n = end - off < (1ULL << 30) ? end - off : (1ULL << 30);

	if (off >= block_length(bd)) {
		*next = (struct map_entry){ .start = off, .length = end - off, .zero = true,
					    .present = true, .has_offset = true, .offset = off,
					    .filename = block_filename(bd) };
		return 0;
	}
	return map_status(bd, off, n < block_length(bd) - off ? n : block_length(bd) - off, next);
}

/* Walks [start, end), printing each run of entries that merge as one: 0 or -1. */
static int map_walk(struct block_dev *bd, uint64_t start, uint64_t end, bool json)
{
	struct map_entry curr = { 0 }, next;
	int ret = 0;

	/* As qemu-img: an empty range (start at or past the end) maps as one empty entry at start. */
	curr.start = start;
	if (json)
		printf("[");
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (uint64_t off = start; off < end;) {
		ret = map_next(bd, off, end, &next);
		if (ret < 0) {
			img_error("Could not read file metadata: %s", strerror(-ret));
			return ret;
		}
		off += next.length;
		if (curr.length && entries_mergeable(&curr, &next)) {
			curr.length += next.length;
			continue;
		}
		if (curr.length && dump_entry(&curr, json, false) < 0)
			return -1;
		curr = next;
	}
	/* As qemu-img: the last entry is printed even for an empty image. */
	if (dump_entry(&curr, json, true) < 0)
		ret = -1;
	/* qemu-img leaves the JSON list open when the walk fails. */
	if (json)
		printf("]\n");
	return ret;
}

int img_map(int argc, char **argv)
{
	struct map_args a = { .output = "human", .maxlen = UINT64_MAX,
			      .flags = BLOCK_RDONLY | BLOCK_UNSAFE_PROBE };
	struct block_dev *bd;
	uint64_t end;
	int ret = map_parse(argc, argv, &a);

	if (ret != IMG_CONTINUE)
		return ret;
	bd = img_open_image(argv[optind], a.fmt, a.flags, a.image_opts);
	if (!bd)
		return 1;
	/*
	 * QEMU measures a raw file in whole sectors (bdrv_getlength): the tail
	 * of the last one, past the file's end, maps as zeroes at its offset.
	 */
	end = (block_length(bd) + 511) & ~511ULL;
	if (a.maxlen < end - (a.start < end ? a.start : end))
		end = a.start + a.maxlen;
	ret = map_walk(bd, a.start, end, a.json);
	block_close(bd);
	return ret < 0 ? 1 : 0;
}
