/* Snapshots and backing chains: snapshot, commit, rebase. */
#include "img/img.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void img_snapshot_header(void);
void img_snapshot_line(const struct block_snapshot *sn);

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
		{ "help", no_argument, NULL, 'h' },
		IMG_LONGOPT_OBJECT,
		IMG_LONGOPT_IMAGE_OPTS,
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	char action = 0, err[4096];
	/* qemu-img 7.2's snapshot takes no -f: the format is always probed. */
	const char *name = NULL, *fmt = NULL;
	unsigned flags = 0;	/* with the backing chain, as qemu-img opens it */
	bool force_share = false, image_opts = false;
	struct block_dev *bd;
	int c, opt, ret = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("snapshot"); return 0;
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
		default:
			if ((opt = img_shared_option(c, argv, &image_opts)) != IMG_CONTINUE)
				return opt;
			break;
		}
	}
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
	case 'l': {
		struct block_snapshot *list = NULL;
		int n = block_snapshot_list(bd, &list);
		if (n > 0) {
			printf("Snapshot list:\n");
			img_snapshot_header();
			printf("\n");
			for (int i = 0; i < n; i++) {
				img_snapshot_line(&list[i]);
				printf("\n");
			}
		}
		free(list);
		break;
	}
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
			ret = block_write_zeroes(base, off, pnum, false);
		} else if (above) {
			ret = block_pread(chain, off, buf, (size_t)pnum);
			if (ret == 0)
				ret = block_pwrite(base, off, buf, (size_t)pnum);
		}
		/* -r: QEMU's commit job sleeps after each chunk it copied. */
		if (above && ret == 0)
			img_rate_charge(rate, pnum, false);
		img_progress_add(prog, pnum);
		off += pnum;
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

int img_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		IMG_LONGOPT_OBJECT,
		IMG_LONGOPT_IMAGE_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *base_name = NULL, *cache = "writeback", *filename;
	bool drop = false, progress = false, quiet = false, image_opts = false;
	struct block_dev *top = NULL, *chain = NULL, *base = NULL, *base_layer;
	struct img_progress prog;
	struct img_rate rate;
	uint64_t rate_limit = 0;
	unsigned cflags;
	char err[4096];
	int c, opt, ret = 1;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":f:ht:b:dpqr:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("commit"); return 0;
		case 'f': fmt = optarg; break;
		case 't': cache = optarg; break;
		case 'b': base_name = optarg; drop = true; break;
		case 'd': drop = true; break;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'r':
			if (!img_rate_parse(optarg, &rate_limit))
				return 1;
			break;
		default:
			if ((opt = img_shared_option(c, argv, &image_opts)) != IMG_CONTINUE)
				return opt;
			break;
		}
	}
	if (quiet)
		progress = false;
	if (optind != argc - 1) {
		return img_usage_error("Expecting one image file name");
	}
	filename = argv[optind];
	if (!img_cache_flags(cache, &cflags)) {
		img_error("Invalid cache option: %s", cache);
		return 1;
	}
	/*
	 * The top first, for writing, as qemu-img opens it: its open errors are
	 * qemu-img's ("Is a directory", locks).  Then the chain for reading, unlocked.
	 */
	top = img_open_image(filename, fmt, cflags | BLOCK_NO_BACKING | BLOCK_UNSAFE_PROBE,
			     image_opts);
	if (!top)
		return 1;
	chain = img_open_image(filename, image_opts ? NULL : block_format_name(top),
			       BLOCK_RDONLY | BLOCK_NO_LOCK | BLOCK_UNSAFE_PROBE, image_opts);
	if (!chain)
		goto out;
	/* -b is looked up first, as qemu-img does, even in an image without a backing file. */
	base_layer = base_name ? find_base(chain, base_name) : block_backing(chain);
	if (!base_layer && base_name) {
		img_error("Did not find '%s' in the backing chain of '%s'", base_name, filename);
		goto out;
	}
	if (!base_layer) {
		img_error("Image does not have a backing file");
		goto out;
	}
	base = img_open(block_filename(base_layer), block_format_name(base_layer),
			cflags | BLOCK_NO_BACKING);
	if (!base)
		goto out;
	if (block_length(base) < block_length(chain) &&
	    block_truncate(base, block_length(chain), false, BLOCK_PREALLOC_OFF, err,
			   sizeof(err)) < 0) {
		img_error("Could not resize the base image: %s", err);
		goto out;
	}
	img_progress_init(&prog, progress, block_length(chain));
	img_rate_init(&rate, rate_limit);
	ret = commit_data(chain, base_layer, base, &prog, &rate);
	if (ret == 0)
		ret = block_flush(base);
	if (ret == 0 && !drop)
		ret = block_make_empty(top);
	if (ret < 0) {
		img_error("%s", strerror(-ret));
		ret = 1;
		goto out;
	}
	img_progress_end(&prog);
	if (!quiet)
		printf("Image committed.\n");
	ret = 0;
out:
	block_close(base);
	block_close(top);
	block_close(chain);
	return ret;
}

/* Rewrites, from the old backing chain, every range where old and new backing differ. */
static int rebase_data(struct block_dev *bd, struct block_dev *old, struct block_dev *new,
		       struct img_progress *prog)
{
	uint64_t size = block_length(bd), off = 0, old_len = old ? block_length(old) : 0;
	size_t chunk = 1 << 20;
	uint8_t *a = block_alloc_buf(chunk), *b = block_alloc_buf(chunk);
	int ret = 0;

	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	while (off < size && ret == 0) {
		uint64_t n = size - off < chunk ? size - off : chunk, pnum;
		unsigned flags;

		ret = block_status(bd, off, n, &pnum, NULL, &flags);
		if (ret < 0)
			break;
		/* A run stops at the old backing file's end: past it only zeroes (below). */
		if (old_len > off && pnum > old_len - off)
			pnum = old_len - off;
		if (!(flags & BLOCK_STATUS_ALLOCATED)) {
			/* Unallocated here: the image shows its backing file. */
			size_t len = (size_t)pnum;
			memset(a, 0, len);
			memset(b, 0, len);
			if (old && off < block_length(old))
				ret = block_pread(old, off, a, off + len <= block_length(old) ? len :
						  (size_t)(block_length(old) - off));
			if (ret == 0 && new && off < block_length(new))
				ret = block_pread(new, off, b, off + len <= block_length(new) ? len :
						  (size_t)(block_length(new) - off));
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
		}
		img_progress_add(prog, pnum);
		off += pnum;
	}
	free(a);
	free(b);
	return ret;
}

int img_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		IMG_LONGOPT_OBJECT,
		IMG_LONGOPT_IMAGE_OPTS,
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL, *cache = "writeback";
	const char *src_cache = "writeback", *filename;
	bool unsafe = false, progress = false, quiet = false, force_share = false;
	bool image_opts = false;
	struct block_dev *bd = NULL, *new = NULL;
	struct img_progress prog;
	unsigned flags, sflags;
	char err[4096];
	int c, opt, ret = 1;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': img_cmd_help("rebase"); return 0;
		case 'f': fmt = optarg; break;
		case 'F': backing_fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': progress = true; break;
		case 't': cache = optarg; break;
		case 'T': src_cache = optarg; break;
		case 'q': quiet = true; break;
		case 'U': force_share = true; break;
		default:
			if ((opt = img_shared_option(c, argv, &image_opts)) != IMG_CONTINUE)
				return opt;
			break;
		}
	}
	if (quiet)
		progress = false;
	if (optind != argc - 1) {
		return img_usage_error("Expecting one image file name");
	}
	if (!backing && !unsafe)
		return img_usage_error("Must specify backing file (-b) or use unsafe mode (-u)");
	if (!backing) {
		img_error("Must specify backing file (-b)");
		return 1;
	}
	filename = argv[optind];
	if (!img_cache_flags(cache, &flags) || !img_cache_flags(src_cache, &sflags)) {
		img_error("Invalid cache option: %s", cache);
		return 1;
	}
	/* Safe mode reads through the old chain, so it must open; -u never opens it. */
	bd = img_open_image(filename, fmt, flags | (unsafe ? BLOCK_NO_BACKING : 0), image_opts);
	if (!bd)
		return 1;
	if (!unsafe) {
		if (*backing) {
			char *path = img_backing_path(filename, backing);
			if (!path)
				goto out;
			/* -U: the new backing file opens while another process writes it. */
			if (block_open(path, backing_fmt,
				       BLOCK_RDONLY | sflags | (force_share ? BLOCK_NO_LOCK : 0), &new,
				       err, sizeof(err)) < 0) {
				free(path);
				img_error("Could not open new backing file '%s': %s", backing, err);
				goto out;
			}
			free(path);
		}
	}
	/*
	 * qemu-img opens the image (and, safe, the new backing file) before it
	 * refuses a backing file without a format; refused before any data moves.
	 */
	if (*backing && !backing_fmt) {
		img_error("Could not change the backing file to '%s': backing format must be "
			  "specified", backing);
		goto out;
	}
	if (!unsafe) {
		img_progress_init(&prog, progress, block_length(bd));
		ret = rebase_data(bd, block_backing(bd), new, &prog);
		if (ret < 0) {
			img_error("Error while rebasing: %s", strerror(-ret));
			ret = 1;
			goto out;
		}
		img_progress_end(&prog);
	}
	if (block_change_backing(bd, *backing ? backing : NULL, *backing ? backing_fmt : NULL,
				 err, sizeof(err)) < 0) {
		img_error("Could not change the backing file to '%s': %s", backing, err);
		ret = 1;
		goto out;
	}
	ret = 0;
out:
	block_close(new);
	block_close(bd);
	return ret;
}
