/*
 * kestrel-img: the commands (one file per group) and what they share:
 * messages, option helpers, qemu-img's number formats and a JSON writer
 * that prints objects in the order qemu-img's QDict does.
 */
#ifndef KESTREL_IMG_IMG_H
#define KESTREL_IMG_IMG_H

#include "block/block.h"

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

extern const struct img_cmd img_cmds[];
void img_cmd_help(const char *name);

/* "kestrel-img: message" on stderr. */
void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

/* Opens an image for a command; prints the error (as qemu-img does) on failure. */
struct block_dev *img_open(const char *path, const char *fmt, unsigned flags);

/*
 * Creation options (-o) of a format, parsed into o; o's strings point into
 * *storage, which the caller frees (declare it IMG_AUTOFREE).
 */
int img_parse_create_opts(const char *fmt, const char *text, struct block_create_opts *o,
			  unsigned *set, char **storage);

/* A char * freed when it goes out of scope (GCC/clang cleanup attribute). */
void img_freep(char **p);
#define IMG_AUTOFREE __attribute__((cleanup(img_freep)))
bool img_is_help_opt(const char *text);
void img_print_create_opts_help(const char *fmt);

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

/* A progress bar as qemu-img -p prints it. */
struct img_progress {
	bool enabled;
	uint64_t total, done;
	int last;
};
void img_progress_init(struct img_progress *p, bool enabled, uint64_t total);
void img_progress_add(struct img_progress *p, uint64_t n);
void img_progress_end(struct img_progress *p);

/* JSON values with qemu-img's output format (QObject pretty printing). */
struct jnode;
struct jnode *jobj(void);
struct jnode *jarr(void);
void jset_str(struct jnode *o, const char *key, const char *v);
void jset_int(struct jnode *o, const char *key, int64_t v);
void jset_uint(struct jnode *o, const char *key, uint64_t v);
void jset_bool(struct jnode *o, const char *key, bool v);
void jset(struct jnode *o, const char *key, struct jnode *v);
void jadd(struct jnode *arr, struct jnode *v);
void jadd_str(struct jnode *arr, const char *v);
void jprint(FILE *f, const struct jnode *n);	/* pretty, then a newline */
/* qemu-img's human dump of a dict: "key with spaces: value", nested by 4. */
void jdump_human(FILE *f, const struct jnode *n, int indent);
void jfree(struct jnode *n);

/* ImageInfo for one image, as qemu-img info builds it. */
struct jnode *img_image_info(struct block_dev *bd, const char *filename);
void img_image_info_dump(FILE *f, const struct jnode *info);

#endif
