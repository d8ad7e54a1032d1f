/*
 * The kestrel-img commands and their usage lines: the table belongs to the
 * commands, so each one's -h prints its own line without reaching up into the
 * program that dispatches them (src/cli/kestrel-img.c).
 */
#include "img/img.h"

#include <stdio.h>
#include <string.h>

const struct img_cmd img_cmds[] = {
	{ "amend", img_amend,
	  "amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options "
	  "filename" },
	{ "bench", img_bench,
	  "bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] "
	  "[--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] "
	  "[-t cache] [-w] [-U] filename" },
	{ "bitmap", img_bitmap,
	  "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... "
	  "[-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] "
	  "[--image-opts | -f fmt] filename bitmap" },
	{ "check", img_check,
	  "check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] "
	  "[-T src_cache] [-U] filename" },
	{ "commit", img_commit,
	  "commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] "
	  "[-r rate_limit] [-d] [-p] filename" },
	{ "compare", img_compare,
	  "compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] "
	  "[-U] filename1 filename2" },
	{ "convert", img_convert,
	  "convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] "
	  "[-U] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] "
	  "[-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] "
	  "[-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] filename [filename2 [...]] "
	  "output_filename" },
	{ "create", img_create,
	  "create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename "
	  "[size]" },
	{ "dd", img_dd,
	  "dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] "
	  "if=input of=output" },
	{ "info", img_info,
	  "info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] "
	  "filename" },
	{ "map", img_map,
	  "map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] "
	  "[--max-length=len] [--output=ofmt] [-U] filename" },
	{ "measure", img_measure,
	  "measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] "
	  "[--image-opts] [-f fmt] [-l snapshot_param] filename]" },
	{ "snapshot", img_snapshot,
	  "snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename" },
	{ "rebase", img_rebase,
	  "rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file "
	  "[-F backing_fmt] filename" },
	{ "resize", img_resize,
	  "resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] "
	  "[--shrink] filename [+ | -]size" },
	{ NULL, NULL, NULL },
};

void img_cmd_help(const char *name)
{
	for (const struct img_cmd *c = img_cmds; c->name; c++) {
		if (!strcmp(c->name, name)) {
			printf("Usage: %s %s\n\nRun '%s --help' for the meaning of the options.\n",
			       IMG_NAME, c->usage, IMG_NAME);
			return;
		}
	}
}
