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

void img_error(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", IMG_NAME, msg);
}

int img_usage_error(const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information\n", IMG_NAME, msg, IMG_NAME);
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
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: warning: %s\n", IMG_NAME, msg);
}

bool img_parse_size(const char *text, uint64_t *out)
{
	return img_strtosz(text, out) == 0;
}

bool img_parse_size_arg(const char *name, const char *text, uint64_t *out)
{
	int r = img_strtosz(text, out);

	if (r == -ERANGE || (r == 0 && *out > INT64_MAX)) {
		img_error("Invalid %s specified. Must be between 0 and %" PRId64 ".", name, INT64_MAX);
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

void img_progress_init(struct img_progress *p, bool enabled, uint64_t total)
{
	p->enabled = enabled;
	p->total = total ? total : 1;
	p->done = 0;
	p->last = -1;
	if (enabled) {
		printf("    (0.00/100%%)\r");
		fflush(stdout);
	}
}

void img_progress_add(struct img_progress *p, uint64_t n)
{
	int pct;

	p->done += n;
	if (!p->enabled)
		return;
	/* qemu-img redraws whenever a whole percent more is done. */
	pct = (int)(p->done * 100 / p->total);
	if (pct != p->last) {
		p->last = pct;
		printf("    (%3.2f/100%%)\r", (double)p->done * 100.0 / (double)p->total);
		fflush(stdout);
	}
}

void img_progress_end(struct img_progress *p)
{
	if (!p->enabled)
		return;
	printf("    (100.00/100%%)\r\n");
	fflush(stdout);
}

/* --- JSON --- */

enum jtype { J_OBJ, J_ARR, J_STR, J_INT, J_UINT, J_BOOL };

struct jnode {
	enum jtype type;
	char *key;
	char *str;
	int64_t i;
	uint64_t u;
	bool b;
	struct jnode *child, *last, *next;
	unsigned order;
};

static struct jnode *jnew(enum jtype t)
{
	struct jnode *n = calloc(1, sizeof(*n));

	if (!n) {
		img_error("out of memory");
		exit(1);
	}
	n->type = t;
	return n;
}

struct jnode *jobj(void) { return jnew(J_OBJ); }
struct jnode *jarr(void) { return jnew(J_ARR); }

static void append(struct jnode *parent, const char *key, struct jnode *n)
{
	if (key) {
		n->key = strdup(key);
		if (!n->key) {
			img_error("out of memory");
			exit(1);
		}
	}
	n->order = parent->last ? parent->last->order + 1 : 0;
	if (parent->last)
		parent->last->next = n;
	else
		parent->child = n;
	parent->last = n;
}

void jset_str(struct jnode *o, const char *key, const char *v)
{
	struct jnode *n = jnew(J_STR);

	n->str = strdup(v);
	if (!n->str) {
		img_error("out of memory");
		exit(1);
	}
	append(o, key, n);
}

void jset_int(struct jnode *o, const char *key, int64_t v)
{
	struct jnode *n = jnew(J_INT);
	n->i = v;
	append(o, key, n);
}

void jset_uint(struct jnode *o, const char *key, uint64_t v)
{
	struct jnode *n = jnew(J_UINT);
	n->u = v;
	append(o, key, n);
}

void jset_bool(struct jnode *o, const char *key, bool v)
{
	struct jnode *n = jnew(J_BOOL);
	n->b = v;
	append(o, key, n);
}

void jset(struct jnode *o, const char *key, struct jnode *v) { append(o, key, v); }
void jadd(struct jnode *arr, struct jnode *v) { append(arr, NULL, v); }

void jadd_str(struct jnode *arr, const char *v)
{
	struct jnode *n = jnew(J_STR);

	n->str = strdup(v);
	if (!n->str) {
		img_error("out of memory");
		exit(1);
	}
	append(arr, NULL, n);
}

void jfree(struct jnode *n)
{
	while (n) {
		struct jnode *next = n->next;
		jfree(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

/* QEMU's qdict hash (tdb_hash) and bucket count: objects print bucket by bucket. */
static unsigned qdict_bucket(const char *key)
{
	uint32_t v = 0x238F13AFu * (uint32_t)strlen(key);

	for (unsigned i = 0; key[i]; i++)
		v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
	return (1103515243u * v + 12345u) % 512;
}

/* Members in QDict iteration order: by bucket, later insertions first within one. */
static int qdict_cmp(const void *a, const void *b)
{
	const struct jnode *x = *(const struct jnode *const *)a, *y = *(const struct jnode *const *)b;
	unsigned bx = qdict_bucket(x->key), by = qdict_bucket(y->key);

	if (bx != by)
		return bx < by ? -1 : 1;
	return x->order > y->order ? -1 : 1;
}

static size_t sorted_members(const struct jnode *o, struct jnode ***out)
{
	size_t n = 0;
	struct jnode **v;

	for (struct jnode *c = o->child; c; c = c->next)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		img_error("out of memory");
		exit(1);
	}
	n = 0;
	for (struct jnode *c = o->child; c; c = c->next)
		v[n++] = c;
	if (o->type == J_OBJ)
		qsort(v, n, sizeof(*v), qdict_cmp);
	*out = v;
	return n;
}

/* QEMU's quoted_str: control and non-ASCII characters as \uXXXX. */
static void print_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		unsigned cp = *p;
		int extra = 0;

		if (cp >= 0x80) {
			if ((cp & 0xe0) == 0xc0) { cp &= 0x1f; extra = 1; }
			else if ((cp & 0xf0) == 0xe0) { cp &= 0x0f; extra = 2; }
			else if ((cp & 0xf8) == 0xf0) { cp &= 0x07; extra = 3; }
			else { cp = 0xfffd; }
			for (int k = 1; k <= extra; k++) {
				if ((p[k] & 0xc0) != 0x80) {
					cp = 0xfffd;
					extra = k - 1;
					break;
				}
				cp = (cp << 6) | (p[k] & 0x3f);
			}
		}
		p += 1 + extra;
		switch (cp) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (cp >= 0x20 && cp < 0x7f) {
				fputc((int)cp, f);
			} else if (cp > 0xffff) {
				cp -= 0x10000;
				fprintf(f, "\\u%04X\\u%04X", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
			} else {
				fprintf(f, "\\u%04X", cp);
			}
		}
	}
	fputc('"', f);
}

static void newline(FILE *f, int depth)
{
	fprintf(f, "\n%*s", 4 * depth, "");
}

static void print_node(FILE *f, const struct jnode *n, int depth)
{
	struct jnode **v;
	size_t count;

	switch (n->type) {
	case J_STR: print_str(f, n->str); return;
	case J_INT: fprintf(f, "%" PRId64, n->i); return;
	case J_UINT: fprintf(f, "%" PRIu64, n->u); return;
	case J_BOOL: fputs(n->b ? "true" : "false", f); return;
	default: break;
	}
	count = sorted_members(n, &v);
	fputc(n->type == J_OBJ ? '{' : '[', f);
	for (size_t i = 0; i < count; i++) {
		if (i)
			fputc(',', f);
		newline(f, depth + 1);
		if (n->type == J_OBJ) {
			print_str(f, v[i]->key);
			fputs(": ", f);
		}
		print_node(f, v[i], depth + 1);
	}
	newline(f, depth);
	fputc(n->type == J_OBJ ? '}' : ']', f);
	free(v);
}

void jprint(FILE *f, const struct jnode *n)
{
	print_node(f, n, 0);
	fputc('\n', f);
}

void jdump_human(FILE *f, const struct jnode *n, int indent)
{
	struct jnode **v;
	size_t count = sorted_members(n, &v);

	for (size_t i = 0; i < count; i++) {
		const struct jnode *c = v[i];
		bool composite = c->type == J_OBJ || c->type == J_ARR;
		if (n->type == J_OBJ) {
			fprintf(f, "%*s", indent * 4, "");
			for (const char *k = c->key; *k; k++)
				fputc(*k == '-' ? ' ' : *k, f);
			fputs(composite ? ":\n" : ": ", f);
		} else {
			fprintf(f, "%*s[%zu]:%c", indent * 4, "", i, composite ? '\n' : ' ');
		}
		switch (c->type) {
		case J_STR: fprintf(f, "%s\n", c->str); break;
		case J_INT: fprintf(f, "%" PRId64 "\n", c->i); break;
		case J_UINT: fprintf(f, "%" PRIu64 "\n", c->u); break;
		case J_BOOL: fprintf(f, "%s\n", c->b ? "true" : "false"); break;
		default: jdump_human(f, c, indent + 1); break;
		}
	}
	free(v);
}

const struct jnode *img_jmember(const struct jnode *o, const char *key);
const struct jnode *img_jmember(const struct jnode *o, const char *key)
{
	for (const struct jnode *c = o ? o->child : NULL; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}
