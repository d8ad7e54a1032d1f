/*
 * kestrel-img convert: its command line (convert_args.c), read before the
 * copy (convert.c) starts.
 */
#ifndef KESTREL_IMG_CONVERT_H
#define KESTREL_IMG_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

/* convert's command line, as convert_parse reads it. */
struct convert_args {
	const char *fmt, *out_fmt, *out_backing, *out_backing_fmt, *snapshot;
	const char *cache, *src_cache;
	char *options;			/* every -o, joined with commas */
	unsigned src_flags;
	bool progress, quiet, no_create, target_is_zero, out_fmt_given;
	bool image_opts, target_image_opts, bitmaps, skip_broken, sparse_given, salvage;
	bool copy_range, compress, out_of_order;
	uint64_t sparse, coroutines, rate;
};

/* The option loop: IMG_CONTINUE, or the exit status. */
int convert_parse(int argc, char **argv, struct convert_args *a);
/*
 * qemu-img's checks of the options among themselves, in its order, before
 * it prints any progress: IMG_CONTINUE, or the exit status.
 */
int convert_check_args(int argc, char **argv, struct convert_args *a);

#endif
