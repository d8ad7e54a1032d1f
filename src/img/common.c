/* What the kestrel-img commands share: messages, numbers, options, JSON. */
#include "img/img.h"
#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

const char *img_prog = "kestrel-img";

/* One message line on stderr: "kestrel-img: [prefix]message". */
static void say(const char *prefix, const char *fmt, va_list ap)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s: %s%s\n", IMG_NAME, prefix, msg);
}

void img_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
}

int img_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information\n", IMG_NAME);
	return 1;
}

int img_bad_option(int c, char **argv)
{
	if (c == ':')
		return img_usage_error("missing argument for option '%s'", argv[optind - 1]);
	return img_usage_error("unrecognized option '%s'", argv[optind - 1]);
}

int img_strtosz(const char *text, uint64_t *out)
{
	bool hex_suffix = false;
	int r = size_strtosz(text, out, &hex_suffix);

	if (r == 0 && hex_suffix)
		img_error("warning: Using a multiplier suffix on hex numbers is deprecated: %s", text);
	return r;
}

void img_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("warning: ", fmt, ap);
	va_end(ap);
}

bool img_parse_size(const char *text, uint64_t *out)
{
	return img_strtosz(text, out) == 0;
}

bool img_parse_size_arg(const char *name, const char *text, uint64_t *out)
{
	return img_parse_size_range(name, text, 0, INT64_MAX, out);
}

bool img_parse_size_range(const char *name, const char *text, uint64_t min, uint64_t max,
			  uint64_t *out)
{
	int r = img_strtosz(text, out);

	if (r == -ERANGE || (r == 0 && (*out < min || *out > max))) {
		img_error("Invalid %s specified. Must be between %" PRIu64 " and %" PRIu64 ".", name,
			  min, max);
		return false;
	}
	if (r < 0) {
		img_error("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", name);
		img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
		return false;
	}
	return true;
}

void img_size_to_str(uint64_t val, char *buf, size_t len)
{
	static const char *const suffixes[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	int i;

	/* QEMU's size_to_str: switch unit once the integer part reaches 1000. */
	frexp((double)val / (1000.0 / 1024.0), &i);
	i = (i - 1) / 10;
	if (i < 0)
		i = 0;
	snprintf(buf, len, "%0.3g %sB", (double)val / (double)(1ULL << (i * 10)), suffixes[i]);
}

bool img_cache_flags(const char *mode, unsigned *flags)
{
	*flags = 0;
	if (!strcmp(mode, "none") || !strcmp(mode, "off"))
		*flags = BLOCK_NOCACHE;
	else if (!strcmp(mode, "directsync"))
		*flags = BLOCK_NOCACHE | BLOCK_DSYNC;
	else if (!strcmp(mode, "writethrough"))
		*flags = BLOCK_DSYNC;
	else if (!strcmp(mode, "unsafe"))
		*flags = BLOCK_NO_FLUSH;
	else if (strcmp(mode, "writeback"))
		return false;
	return true;
}

struct block_dev *img_open(const char *path, const char *fmt, unsigned flags)
{
	struct block_dev *bd;
	char err[4096];

	/* block_open's message does not name the image when the format refused it. */
	if (block_open(path, fmt, flags, &bd, err, sizeof(err)) < 0) {
		img_error("Could not open '%s': %s", path, err);
		return NULL;
	}
	return bd;
}

void img_freep(char **p)
{
	free(*p);
	*p = NULL;
}

char *img_backing_path(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');
	char *p;

	if (backing[0] == '/' || !slash || block_name_is_special(backing))
		return strdup(backing);
	p = malloc((size_t)(slash - image) + 2 + strlen(backing));
	if (p)
		sprintf(p, "%.*s/%s", (int)(slash - image), image, backing);
	return p;
}

int img_chain_status(struct block_dev *bd, uint64_t off, uint64_t len, bool top_only,
		     uint64_t *pnum, unsigned *flags)
{
	struct block_dev *layer = bd;
	unsigned f, alloc = 0;
	int ret;

	*pnum = len;
	*flags = 0;
	for (;;) {
		ret = block_status(layer, off, *pnum, pnum, NULL, &f);
		if (ret < 0)
			return ret;
		alloc |= f & BLOCK_STATUS_ALLOCATED;
		if (f & (BLOCK_STATUS_ZERO | BLOCK_STATUS_DATA)) {
			*flags = alloc | (f & BLOCK_STATUS_ZERO ? BLOCK_STATUS_ZERO : BLOCK_STATUS_DATA);
			return 0;
		}
		if (top_only) {
			*flags = alloc;
			return 0;
		}
		if (!block_backing(layer) || off >= block_length(block_backing(layer))) {
			*flags = alloc | BLOCK_STATUS_ZERO;
			return 0;
		}
		layer = block_backing(layer);
		if (*pnum > block_length(layer) - off)
			*pnum = block_length(layer) - off;
	}
}

bool img_parse_output(const char *arg, bool *json)
{
	if (!strcmp(arg, "json") || !strcmp(arg, "human")) {
		*json = arg[0] == 'j';
		return true;
	}
	img_error("--output must be used with human or json as argument.");
	return false;
}

/* --- -r rate limits --- */

bool img_rate_parse(const char *text, uint64_t *rate)
{
	if (img_parse_size(text, rate) && *rate <= INT64_MAX)
		return true;
	img_error("Invalid rate limit specified. You may use k, M, G, T, P or E suffixes for");
	img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
	return false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void img_rate_init(struct img_rate *r, uint64_t rate)
{
	r->rate = rate;
	r->sent = 0;
	r->start = 0;
	pthread_mutex_init(&r->lock, NULL);
}

void img_rate_charge(struct img_rate *r, uint64_t n, bool before)
{
	double due, wait;

	if (!r->rate)
		return;
	pthread_mutex_lock(&r->lock);
	if (!r->sent)
		r->start = now_s();
	/* The time by which the accounted bytes may have been written at rate. */
	due = r->start + (double)(before ? r->sent : r->sent + n) / (double)r->rate;
	r->sent += n;
	pthread_mutex_unlock(&r->lock);
	wait = due - now_s();
	if (wait > 0) {
		struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* --- progress --- */

void img_progress_init(struct img_progress *p, bool enabled, float min_skip)
{
	*p = (struct img_progress){ .enabled = enabled, .min_skip = min_skip };
}

/*
 * QEMU's qemu_progress_print: with max 0 the value is added as it is, else
 * as that share of max percent.  A line is printed when the total moved
 * more than min_skip from the last line, or stands at 0 or 100.
 */
/* The total now at cur; its line when QEMU would print one. */
static void progress_show(struct img_progress *p, float cur)
{
	p->current = cur;
	if (!p->enabled)
		return;
	if (cur > p->last + p->min_skip || cur < p->last - p->min_skip || cur == 100 || cur == 0) {
		p->last = cur;
		printf("    (%3.2f/100%%)\r", cur);
		fflush(stdout);
	}
}

void img_progress_print(struct img_progress *p, float value, int max)
{
	float cur = max ? p->current + value / 100 * (float)max : p->current + value;

	progress_show(p, cur > 100 ? 100 : cur);
}

void img_progress_set(struct img_progress *p, float value)
{
	progress_show(p, value > 100 ? 100 : value);
}

/* qemu_progress_end: the line ends, whatever happened. */
void img_progress_end(struct img_progress *p)
{
	if (!p->enabled)
		return;
	printf("\n");
	fflush(stdout);
}

const char *img_snapshot_arg(const char *arg)
{
	if (!strncmp(arg, "snapshot.name=", 14))
		return arg + 14;
	if (!strncmp(arg, "snapshot.id=", 12))
		return arg + 12;
	return arg;
}
