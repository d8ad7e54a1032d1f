/*
 * img_getopt: the option loop every kestrel-img command runs, with what the
 * commands share (--help, --object, --image-opts, qemu-img's usage errors).
 */
#include "img/img.h"

#include <getopt.h>
#include <stdbool.h>
#include <string.h>

/* What every command shares: IMG_CONTINUE, or the exit status. */
static int shared_option(int c, char **argv, bool *image_opts)
{
	int ret;

	if (c == IMG_OPT_OBJECT) {
		ret = img_object_add(optarg);
		return ret ? ret < 0 : IMG_CONTINUE;
	}
	if (c == IMG_OPT_IMAGE_OPTS && image_opts) {
		*image_opts = true;
		return IMG_CONTINUE;
	}
	return img_bad_option(c, argv);
}

/* The command's long options and the shared ones: false when they do not fit. */
static bool merge_longopts(struct img_getopt *g)
{
	static const struct option help = { "help", no_argument, NULL, 'h' },
		object = { "object", required_argument, NULL, IMG_OPT_OBJECT },
		image_opts = { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS };
	size_t n = 0, max = sizeof(g->all) / sizeof(g->all[0]) - 4;

	for (const struct option *o = g->longopts; o && o->name; o++) {
		if (n == max)
			return false;
		g->all[n++] = *o;
	}
	g->all[n++] = help;
	g->all[n++] = object;
	if (g->image_opts)
		g->all[n++] = image_opts;
	g->all[n] = (struct option){ 0 };
	return true;
}

int img_getopt(struct img_getopt *g, int argc, char **argv)
{
	int c;

	if (!g->started) {
		if (!merge_longopts(g)) {
			img_error("%s: too many options for the parser", g->cmd);
			g->status = 1;
			return -1;
		}
		optind = 0;	/* glibc: a full reset, as each command parses argv afresh */
		g->started = true;
	}
	g->status = IMG_CONTINUE;
	while ((c = getopt_long(argc, argv, g->shortopts, g->all, NULL)) != -1) {
		if (c == 'h') {
			img_cmd_help(g->cmd);
			g->status = 0;
			return -1;
		}
		if (c != IMG_OPT_OBJECT && c != IMG_OPT_IMAGE_OPTS && c != ':' && c != '?')
			return c;
		g->status = shared_option(c, argv, g->image_opts);
		if (g->status != IMG_CONTINUE)
			return -1;
	}
	return -1;
}

