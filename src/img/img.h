/*
 * kestrel-img: the commands (one file per group) and what they share:
 * messages, option helpers, qemu-img's number formats and a JSON writer
 * that prints objects in the order qemu-img's QDict does.
 */
#ifndef KESTREL_IMG_IMG_H
#define KESTREL_IMG_IMG_H

#include "block/block_img.h"
#include "util/json_tree.h"

#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The program's name as invoked (argv[0]'s basename), so that installed as
 * qemu-img (an alternatives link) every message and usage line says qemu-img.
 */
extern const char *img_prog;
#define IMG_NAME img_prog

/*
 * What a command's steps (parse, check, ...) answer when the command goes
 * on; any other answer is the command's exit status.
 */
#define IMG_CONTINUE (-1)

struct img_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

/* Commands, one per qemu-img subcommand. */
int img_create(int argc, char **argv);
int img_amend(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_check(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_bitmap(int argc, char **argv);
/* QEMU's bdrv_supports_persistent_dirty_bitmap: a qcow2 v3 image. */
bool img_supports_bitmaps(struct block_dev *bd);
/* Bytes the persistent bitmaps of bd take in a new qcow2 image (qemu-img measure). */
int img_bitmaps_size(struct block_dev *bd, uint32_t cluster_size, uint64_t *out);
/* convert --bitmaps: qemu-img's checks of the sources, then the copy (returns 0 or 1). */
int img_convert_check_bitmaps(struct block_dev **src, int nsrc, bool skip_broken);
int img_convert_copy_bitmaps(struct block_dev *src, struct block_dev *dst, bool skip_broken);

extern const struct img_cmd img_cmds[];
void img_cmd_help(const char *name);

/* "kestrel-img: message" on stderr. */
void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A usage error, as qemu-img's error_exit words it: "kestrel-img: message"
 * then "Try 'kestrel-img --help' for more information" on stderr.  Returns 1.
 */
int img_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * getopt_long answered ':' (missing argument; the optstring starts with ':')
 * or '?' (unknown option): the usage error naming argv[optind - 1].  Returns 1.
 */
int img_bad_option(int c, char **argv);
/* "kestrel-img: warning: message" on stderr (QEMU's warn_report). */
void img_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* qemu_strtosz: a size with an optional k/M/G/T/P/E suffix (powers of 1024). */
bool img_parse_size(const char *text, uint64_t *out);
/* QEMU's size_to_str: "1 GiB", "196 KiB", "1.5 MiB". */
void img_size_to_str(uint64_t val, char *buf, size_t len);
/* -t/-T: none, writeback, writethrough, directsync, unsafe -> BLOCK_* flags. */
bool img_cache_flags(const char *mode, unsigned *flags);

/*
 * A backing file name as stored in an image, made usable from here: a
 * relative name is relative to the image's directory.  malloc'd, or NULL.
 */
char *img_backing_path(const char *image, const char *backing);
/*
 * What [off, off+len) of bd reads as, through its backing chain: *flags gets
 * BLOCK_STATUS_ZERO or BLOCK_STATUS_DATA from the layer that decides it
 * (beyond the chain's end: zeroes), plus BLOCK_STATUS_ALLOCATED when a layer
 * on the way allocates the range.  top_only stops at bd: neither flag then
 * means "whatever the backing file has".  *pnum: bytes with that status.
 */
int img_chain_status(struct block_dev *bd, uint64_t off, uint64_t len, bool top_only,
		     uint64_t *pnum, unsigned *flags);
/* --output=human|json; prints qemu-img's message and returns false otherwise. */
bool img_parse_output(const char *arg, bool *json);
/* -l of convert and measure: snapshot.name=X, snapshot.id=X or just X names X. */
const char *img_snapshot_arg(const char *arg);

/* Opens an image for a command; prints the error (as qemu-img does) on failure. */
struct block_dev *img_open(const char *path, const char *fmt, unsigned flags);
/* "Snapshot list:" and its table, as info and snapshot -l print it; nothing without snapshots. */
void img_print_snapshot_list(struct block_dev *bd);

/*
 * objects.c: naming images as qemu-img does.  img_open_image is img_open,
 * or with image_opts (--image-opts) name is QEMU block options
 * ("driver=qcow2,file.filename=x,file.locking=off"); -f is refused with it.
 */
struct block_dev *img_open_image(const char *name, const char *fmt, unsigned flags,
				 bool image_opts);
/*
 * --object TEXT, for every command: 0 when defined, 1 when help was printed
 * (the command then exits 0), -1 with the message printed.  A command's
 * option loop reaches it through img_getopt.
 */
int img_object_add(const char *text);
/*
 * --object and --image-opts, which the commands share: their getopt_long
 * values, above any command's own.
 */
enum { IMG_OPT_OBJECT = 0x1000, IMG_OPT_IMAGE_OPTS };
/*
 * A command's option loop, with what every command shares taken here:
 *	struct img_getopt g = { .cmd = "resize", .shortopts = ":f:hq",
 *				.longopts = longopts, .image_opts = &a->image_opts };
 *	while ((c = img_getopt(&g, argc, argv)) != -1)
 *		switch (c) { ...the command's own options... }
 *	if (g.status != IMG_CONTINUE)
 *		return g.status;
 * longopts lists the command's own long options (NULL: none); --help,
 * --object and --image-opts (with image_opts) are added here.
 * -h/--help prints the command's help (exit status 0); --object is defined
 * (the exit status 0 after its help, 1 after an error); --image-opts sets
 * *image_opts; an unknown option or a missing argument is qemu-img's usage
 * error (img_bad_option).  -1: the options ended (status IMG_CONTINUE) or
 * the command stops with status.
 */
struct img_getopt {
	const char *cmd;		/* its name, for the help */
	const char *shortopts;		/* ':' first: a missing argument is ':' */
	const struct option *longopts;
	bool *image_opts;		/* NULL: --image-opts is not taken */
	int status;
	bool started;
	struct option all[24];		/* longopts and the shared ones */
};
int img_getopt(struct img_getopt *g, int argc, char **argv);
/* The bytes of the secret object id (data=/file=, format= decoded), or NULL. */
const char *img_secret_lookup(const char *id, size_t *len);

/* A char * freed when it goes out of scope (GCC/clang cleanup attribute). */
void img_freep(char **p);
#define IMG_AUTOFREE __attribute__((cleanup(img_freep)))

/* qemu_strtosz: 0, -EINVAL or -ERANGE; warns as qemu-img does about hex with a suffix. */
int img_strtosz(const char *text, uint64_t *out);
/*
 * A size argument checked as qemu-img's cvtnum_full("image size") does, with
 * its two messages (bad syntax; outside 0..INT64_MAX).  name: "image size".
 */
bool img_parse_size_arg(const char *name, const char *text, uint64_t *out);
/* The same in min..max (qemu-img's cvtnum_full with its own bounds). */
bool img_parse_size_range(const char *name, const char *text, uint64_t min, uint64_t max,
			  uint64_t *out);

/*
 * -o options (create_opts.c): the option list of a format, as qemu-img
 * builds it from the format's and the file protocol's QemuOptsLists.
 */
enum img_opts_kind {
	IMG_OPTS_CREATE,	/* the format's list alone (help with no file name) */
	IMG_OPTS_CREATE_FILE,	/* format + file protocol: create/convert with a target */
	IMG_OPTS_MEASURE,	/* format + file protocol, measure's messages */
	IMG_OPTS_AMEND,		/* the format's amend list */
};
#define IMG_OPTS_MAX 48
struct img_opts {
	const char *fmt;
	enum img_opts_kind kind;
	size_t n;
	const struct block_opt_desc *desc[IMG_OPTS_MAX];
	const char *val[IMG_OPTS_MAX];	/* given values (NULL: not given), in storage */
	uint64_t num[IMG_OPTS_MAX];	/* parsed size/number/bool values */
	char *storage;
	bool rbd;			/* the target is an rbd image: its protocol list */
};
int img_opts_init(struct img_opts *p, const char *fmt, enum img_opts_kind kind);
/* IMG_OPTS_CREATE_FILE with the list of the target's protocol (nfs:// and rbd: have their own). */
int img_opts_init_target(struct img_opts *p, const char *fmt, const char *target);
void img_opts_free(struct img_opts *p);
int img_opts_find(const struct img_opts *p, const char *name);
/* QemuOpts syntax: unknown names, bad sizes/numbers/bools.  err may hold two lines. */
int img_opts_parse(struct img_opts *p, const char *text, char *err, size_t errlen);
/* The drivers' checks of string values, and the values into o. */
int img_opts_apply(const struct img_opts *p, struct block_create_opts *o, unsigned *set,
		   char *err, size_t errlen);
bool img_opts_given(const struct img_opts *p, const char *name);
/* Sets an option as qemu-img does for -b/-F and the size argument. */
int img_opts_set(struct img_opts *p, const char *name, const char *val, uint64_t num);
void img_opts_print_help(const struct img_opts *p);
void img_opts_print_formatting(const struct img_opts *p, const char *filename);
bool img_is_help_opt(const char *text);
/* Prints qemu-img's refusal of a -f/-O it cannot create; prefix: file name or NULL. */
bool img_check_create_format(const char *fmt, const char *prefix);
/* print_block_option_help: the -o help of create and convert. */
int img_print_option_help(const char *fmt, const char *filename);

/*
 * -r RATE of convert and commit: bytes a second written to the target.
 * rate 0: no limit.  Thread-safe: convert's workers share one.
 */
struct img_rate {
	uint64_t rate;
	uint64_t sent;			/* bytes accounted so far */
	double start;			/* CLOCK_MONOTONIC seconds of the first write */
	pthread_mutex_t lock;
};
/* Parses RATE (cvtnum: a size with an optional suffix); prints qemu-img's error. */
bool img_rate_parse(const char *text, uint64_t *rate);
void img_rate_init(struct img_rate *r, uint64_t rate);
/*
 * Accounts n bytes and sleeps until the bytes before them (before=true, as
 * QEMU's throttle lets a request through and charges it) or including them
 * (before=false, as a block job sleeps after each chunk) fit in the rate.
 */
void img_rate_charge(struct img_rate *r, uint64_t n, bool before);

/*
 * -p: QEMU's progress model (util/qemu-progress.c), whose lines scripts
 * parse: a percentage that each command advances in its own steps.
 */
struct img_progress {
	bool enabled;
	float current, last, min_skip;
};
void img_progress_init(struct img_progress *p, bool enabled, float min_skip);
void img_progress_print(struct img_progress *p, float value, int max);
/* The total set to value (a command that counts its own steps, as convert). */
void img_progress_set(struct img_progress *p, float value);
void img_progress_end(struct img_progress *p);


/* ImageInfo for one image, as qemu-img info builds it. */
struct jnode *img_image_info(struct block_dev *bd, const char *filename);
void img_image_info_dump(FILE *f, const struct jnode *info);

#endif
