/* Snapshots and backing chains: snapshot, commit, rebase. */
#include "img/img.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/*
 * qemu-img snapshot -d finds the snapshot by name only (bdrv_snapshot_find),
 * unlike -a, which takes an ID too; the one found is deleted by its ID.
 */
static int delete_by_name(struct block_dev *bd, const char *name, char *err, size_t errlen)
{
	struct block_snapshot *list = NULL;
	char id[sizeof(list->id)];
	int n = block_snapshot_list(bd, &list), i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i].name, name))
			break;
	if (i >= n) {
		free(list);
		snprintf(err, errlen, "Could not delete snapshot '%s': snapshot not found", name);
		return -ENOENT;
	}
	snprintf(id, sizeof(id), "%s", list[i].id);
	free(list);
	return block_snapshot_delete(bd, id, err, errlen);
}

int img_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	char action = 0, err[4096];
	/* qemu-img 7.2's snapshot takes no -f: the format is always probed. */
	const char *name = NULL, *fmt = NULL;
	unsigned flags = 0;	/* with the backing chain, as qemu-img opens it */
	bool force_share = false, image_opts = false;
	struct block_dev *bd;
	int c, ret = 0;
	struct img_getopt g = { .cmd = "snapshot", .shortopts = ":la:c:d:hqU", .longopts = longopts,
				.image_opts = &image_opts };

	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'l':
		case 'a':
		case 'c':
		case 'd':
			if (action) {
				return img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
			}
			action = (char)c;
			name = optarg;
			break;
		case 'q': break;
		case 'U': force_share = true; break;
		}
	}
	if (g.status != IMG_CONTINUE)
		return g.status;
	if (optind != argc - 1) {
		return img_usage_error("Expecting one image file name");
	}
	if (!action)
		action = 'l';
	if (action == 'l')
		flags |= BLOCK_RDONLY;
	if (force_share) {
		if (action != 'l') {
			img_error("--force-share/-U can only be used with -l");
			return 1;
		}
		flags |= BLOCK_NO_LOCK;
	}
	bd = img_open_image(argv[optind], fmt, flags, image_opts);
	if (!bd)
		return 1;
	switch (action) {
	case 'l':
		img_print_snapshot_list(bd);
		break;
	case 'c':
		ret = block_snapshot_create(bd, name, err, sizeof(err));
		break;
	case 'a':
		ret = block_snapshot_apply(bd, name, err, sizeof(err));
		break;
	case 'd':
		ret = delete_by_name(bd, name, err, sizeof(err));
		break;
	}
	if (ret < 0)
		img_error("%s", err);
	block_close(bd);
	return ret < 0 ? 1 : 0;
}

/*
 * Copies what the layers above base hold into base, chunk by chunk: data
 * as data, zero clusters as zeroes; what no layer above base holds stays.
 * The zeroes may unmap base's clusters: qemu-img commit is QEMU's active
 * commit, a mirror job started with unmap on.
 */
static int commit_data(struct block_dev *chain, struct block_dev *base_layer,
		       struct block_dev *base, struct img_progress *prog, struct img_rate *rate)
{
	uint64_t size = block_length(chain), off = 0;
	uint8_t *buf = block_alloc_buf(2 << 20);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size && ret == 0) {
		uint64_t n = size - off < (2 << 20) ? size - off : (2 << 20), pnum = n;
		struct block_dev *layer = chain;
		unsigned flags = 0;
		bool above = false;

		/* Who decides this range: a layer above base, or base and below? */
		while (layer && layer != base_layer) {
			if (off >= block_length(layer))
				break;
			ret = block_status(layer, off, pnum, &pnum, NULL, &flags);
			if (ret < 0)
				break;
			if (flags & BLOCK_STATUS_ALLOCATED) {
				above = true;
				break;
			}
			layer = block_backing(layer);
		}
		if (ret < 0)
			break;
		if (above && (flags & BLOCK_STATUS_ZERO)) {
			ret = block_write_zeroes(base, off, pnum, true);
		} else if (above) {
			ret = block_pread(chain, off, buf, (size_t)pnum);
			if (ret == 0)
				ret = block_pwrite(base, off, buf, (size_t)pnum);
		}
		/* -r: QEMU's commit job sleeps after each chunk it copied. */
		if (above && ret == 0)
			img_rate_charge(rate, pnum, false);
		off += pnum;
		img_progress_print(prog, (float)pnum / (float)size * 100, 100);
	}
	free(buf);
	return ret;
}

/* The same file, as realpath resolves both names (NULL: a name does not resolve). */
static bool same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/*
 * QEMU's bdrv_find_backing_image: name is taken relative to each layer's
 * directory in turn (or as given when absolute) and compared, canonicalised,
 * with the file that layer's backing name leads to.
 */
static struct block_dev *find_base(struct block_dev *top, const char *name)
{
	for (struct block_dev *l = top; block_backing(l); l = block_backing(l)) {
		struct block_dev *below = block_backing(l);
		char *cand = img_backing_path(block_filename(l), name);
		bool hit = cand && same_file(cand, block_filename(below));

		free(cand);
		if (hit)
			return below;
	}
	return NULL;
}

struct commit_opts {
	const char *fmt, *base_name, *cache;
	bool drop, progress, quiet, image_opts;
	uint64_t rate_limit;
};

/* Parses argv into o; false: stop with exit status *rc. */
static bool commit_options(int argc, char **argv, struct commit_opts *o, int *rc)
{
	int c;
	struct img_getopt g = { .cmd = "commit", .shortopts = ":f:ht:b:dpqr:",
				.image_opts = &o->image_opts };

	*rc = 1;
	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': o->fmt = optarg; break;
		case 't': o->cache = optarg; break;
		case 'b': o->base_name = optarg; o->drop = true; break;
		case 'd': o->drop = true; break;
		case 'p': o->progress = true; break;
		case 'q': o->quiet = true; break;
		case 'r':
			if (!img_rate_parse(optarg, &o->rate_limit))
				return false;
			break;
		}
	}
	if (g.status != IMG_CONTINUE) {
		*rc = g.status;
		return false;
	}
	if (optind != argc - 1) {
		*rc = img_usage_error("Expecting one image file name");
		return false;
	}
	return true;
}

/*
 * The layer to commit into (-b, else the top's backing file), opened for
 * writing and grown to the top's size; NULL after saying why.
 */
static struct block_dev *commit_base(struct block_dev *chain, const struct commit_opts *o,
				     const char *filename, unsigned cflags,
				     struct block_dev **base_layer)
{
	struct block_dev *base;
	char err[4096];

	/* -b is looked up first, as qemu-img does, even in an image without a backing file. */
	*base_layer = o->base_name ? find_base(chain, o->base_name) : block_backing(chain);
	if (!*base_layer && o->base_name) {
		img_error("Did not find '%s' in the backing chain of '%s'", o->base_name, filename);
		return NULL;
	}
	if (!*base_layer) {
		img_error("Image does not have a backing file");
		return NULL;
	}
	base = img_open(block_filename(*base_layer), block_format_name(*base_layer),
			cflags | BLOCK_NO_BACKING);
	if (base && block_length(base) < block_length(chain) &&
	    block_truncate(base, block_length(chain), false, BLOCK_PREALLOC_OFF, err,
			   sizeof(err)) < 0) {
		img_error("Could not resize the base image: %s", err);
		block_close(base);
		return NULL;
	}
	return base;
}

int img_commit(int argc, char **argv)
{
	struct commit_opts o = { .cache = "writeback" };
	struct block_dev *top = NULL, *chain = NULL, *base = NULL, *base_layer;
	struct img_progress prog;
	struct img_rate rate;
	const char *filename;
	unsigned cflags;
	int ret;

	if (!commit_options(argc, argv, &o, &ret))
		return ret;
	filename = argv[optind];
	/* qemu-img commit: progress lines at least 1% apart, ended on every way out. */
	img_progress_init(&prog, o.progress && !o.quiet, 1.0f);
	if (!img_cache_flags(o.cache, &cflags)) {
		img_error("Invalid cache option: %s", o.cache);
		return 1;
	}
	/*
	 * The top first, for writing, as qemu-img opens it: its open errors are
	 * qemu-img's ("Is a directory", locks).  Then the chain for reading, unlocked.
	 */
	top = img_open_image(filename, o.fmt, cflags | BLOCK_NO_BACKING | BLOCK_UNSAFE_PROBE,
			     o.image_opts);
	if (!top)
		return 1;
	img_progress_print(&prog, 0, 100);
	ret = 1;
	chain = img_open_image(filename, o.image_opts ? NULL : block_format_name(top),
			       BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_UNSAFE_PROBE, o.image_opts);
	if (chain)
		base = commit_base(chain, &o, filename, cflags, &base_layer);
	if (!base)
		goto out;
	img_rate_init(&rate, o.rate_limit);
	ret = commit_data(chain, base_layer, base, &prog, &rate);
	if (ret == 0)
		ret = block_flush(base);
	if (ret == 0 && !o.drop)
		ret = block_make_empty(top);
	if (ret < 0) {
		img_error("%s", strerror(-ret));
		ret = 1;
		goto out;
	}
	img_progress_print(&prog, 100, 0);
out:
	img_progress_end(&prog);
	block_close(base);
	block_close(top);
	block_close(chain);
	if (ret == 0 && !o.quiet)
		printf("Image committed.\n");
	return ret;
}

/* Rewrites old's data wherever it differs from new's in [off, off + len). */
static int rebase_range(struct block_dev *bd, struct block_dev *old, struct block_dev *new,
			uint64_t off, size_t len, uint8_t *a, uint8_t *b)
{
	uint64_t old_len = old ? block_length(old) : 0, new_len = new ? block_length(new) : 0;
	int ret = 0;

	memset(a, 0, len);
	memset(b, 0, len);
	if (off < old_len)
		ret = block_pread(old, off, a, len);
	if (ret == 0 && off < new_len)
		ret = block_pread(new, off, b, len);
	for (size_t i = 0; ret == 0 && i < len;) {
		size_t j;
		if (!memcmp(a + i, b + i, 512 < len - i ? 512 : len - i)) {
			i += 512;
			continue;
		}
		for (j = i + 512; j < len && memcmp(a + j, b + j, 512 < len - j ? 512 : len - j); j += 512)
			;
		if (j > len)
			j = len;
		/*
		 * Past the old backing file's end the image read zeroes:
		 * written as zeroes (zero clusters), as qemu-img rebase does.
		 */
		if (off >= old_len)
			ret = block_write_zeroes(bd, off + i, j - i, false);
		else
			ret = block_pwrite(bd, off + i, a + i, j - i);
		i = j;
	}
	return ret;
}

/*
 * Rewrites, from the old backing chain, every range where old and new
 * backing differ, as qemu-img rebase walks the image: runs of what the
 * image does not hold itself, at most REBASE_BUF at a time and cut at
 * either backing file's end.  -p advances by one equal step per run
 * (qemu-img's local_progress: 100 / (size / REBASE_BUF)).
 */
#define REBASE_BUF (2u << 20)

static int rebase_data(struct block_dev *bd, struct block_dev *old, struct block_dev *new,
		       struct img_progress *prog)
{
	uint64_t size = block_length(bd), off = 0, pnum;
	uint64_t old_len = old ? block_length(old) : 0, new_len = new ? block_length(new) : 0;
	uint8_t *a = block_alloc_buf(REBASE_BUF), *b = block_alloc_buf(REBASE_BUF);
	float local = size ? 100.0f / (float)(size / (size < REBASE_BUF ? size : REBASE_BUF)) : 0;
	int ret = 0;

	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	for (; off < size && ret == 0; off += pnum) {
		uint64_t n = size - off < REBASE_BUF ? size - off : REBASE_BUF;
		unsigned flags;

		ret = block_status(bd, off, n, &pnum, NULL, &flags);
		if (ret < 0)
			break;
		if (flags & BLOCK_STATUS_ALLOCATED)
			continue;	/* the image's own data stays as it is */
		if (off < old_len && pnum > old_len - off)
			pnum = old_len - off;
		if (off < new_len && pnum > new_len - off)
			pnum = new_len - off;
		ret = rebase_range(bd, old, new, off, (size_t)pnum, a, b);
		img_progress_print(prog, local, 100);
	}
	free(a);
	free(b);
	return ret;
}

struct rebase_opts {
	const char *fmt, *backing, *backing_fmt, *cache, *src_cache;
	bool unsafe, progress, quiet, force_share, image_opts;
};

/* Parses argv into o; false: stop with exit status *rc. */
static bool rebase_options(int argc, char **argv, struct rebase_opts *o, int *rc)
{
	static const struct option longopts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	struct img_getopt g = { .cmd = "rebase", .shortopts = ":hf:F:b:upt:T:qU",
				.longopts = longopts, .image_opts = &o->image_opts };

	*rc = 1;
	while ((c = img_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'f': o->fmt = optarg; break;
		case 'F': o->backing_fmt = optarg; break;
		case 'b': o->backing = optarg; break;
		case 'u': o->unsafe = true; break;
		case 'p': o->progress = true; break;
		case 't': o->cache = optarg; break;
		case 'T': o->src_cache = optarg; break;
		case 'q': o->quiet = true; break;
		case 'U': o->force_share = true; break;
		}
	}
	if (g.status != IMG_CONTINUE) {
		*rc = g.status;
		return false;
	}
	if (optind != argc - 1) {
		*rc = img_usage_error("Expecting one image file name");
		return false;
	}
	if (!o->backing && !o->unsafe) {
		*rc = img_usage_error("Must specify backing file (-b) or use unsafe mode (-u)");
		return false;
	}
	if (!o->backing) {
		img_error("Must specify backing file (-b)");
		return false;
	}
	return true;
}

/* The new backing file, named relative to the image, for reading; false after saying why. */
static bool rebase_open_new(const struct rebase_opts *o, const char *filename, unsigned sflags,
			    struct block_dev **new)
{
	char err[4096], *path = img_backing_path(filename, o->backing);

	if (!path)
		return false;
	/* -U: the new backing file opens while another process writes it. */
	if (block_open(path, o->backing_fmt,
		       BLOCK_RDONLY | sflags | (o->force_share ? BLOCK_NO_LOCK : 0), new,
		       err, sizeof(err)) < 0) {
		img_error("Could not open new backing file '%s': %s", o->backing, err);
		*new = NULL;
	}
	free(path);
	return *new != NULL;
}

int img_rebase(int argc, char **argv)
{
	struct rebase_opts o = { .cache = "writeback", .src_cache = "writeback" };
	struct block_dev *bd = NULL, *new = NULL;
	struct img_progress prog;
	const char *filename;
	unsigned flags, sflags;
	char err[4096];
	int ret;

	if (!rebase_options(argc, argv, &o, &ret))
		return ret;
	ret = 1;
	filename = argv[optind];
	/* qemu-img rebase: lines at least 2% apart, from 0 on, ended on every way out. */
	img_progress_init(&prog, o.progress && !o.quiet, 2.0f);
	img_progress_print(&prog, 0, 100);
	if (!img_cache_flags(o.cache, &flags) || !img_cache_flags(o.src_cache, &sflags)) {
		img_error("Invalid cache option: %s", o.cache);
		goto out;
	}
	/* Safe mode reads through the old chain, so it must open; -u never opens it. */
	bd = img_open_image(filename, o.fmt, flags | (o.unsafe ? BLOCK_NO_BACKING : 0),
			    o.image_opts);
	if (!bd || (!o.unsafe && *o.backing && !rebase_open_new(&o, filename, sflags, &new)))
		goto out;
	/*
	 * qemu-img opens the image (and, safe, the new backing file) before it
	 * refuses a backing file without a format; refused before any data moves.
	 */
	if (*o.backing && !o.backing_fmt) {
		img_error("Could not change the backing file to '%s': backing format must be "
			  "specified", o.backing);
		goto out;
	}
	if (!o.unsafe && (ret = rebase_data(bd, block_backing(bd), new, &prog)) < 0) {
		img_error("Error while rebasing: %s", strerror(-ret));
		ret = 1;
		goto out;
	}
	ret = 1;
	if (block_change_backing(bd, *o.backing ? o.backing : NULL,
				 *o.backing ? o.backing_fmt : NULL, err, sizeof(err)) < 0) {
		img_error("Could not change the backing file to '%s': %s", o.backing, err);
		goto out;
	}
	img_progress_print(&prog, 100, 0);
	ret = 0;
out:
	img_progress_end(&prog);
	block_close(new);
	block_close(bd);
	return ret;
}
