/*
 * -o option lists of create, convert, measure and amend, as qemu-img 7.2
 * builds them (QemuOptsList): the format driver's create_opts, then the file
 * protocol's when a target file name is known, an option of the protocol
 * dropped when the format already has it.  Parsing has qemu-img's two
 * phases: QemuOpts checks names and size/number/bool syntax
 * (img_opts_parse), the driver then checks string values (img_opts_apply).
 * To add a raw or qcow2 option: one line in its table below, in QEMU's order
 * (the order of the "Formatting ..." line), and a case in apply_one().  The
 * other formats keep their lists in their drivers (block_format_opts), and
 * their own options reach the driver as given (block_create_opts.fmt_opts).
 */
#include "img/img.h"
#include "block/probe.h"
#include "block/rbd.h"
#include "util/size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * QEMU's QCOW_COMMON_OPTIONS: what create and amend share.  The defaults
 * only reach create's "Formatting" line (amend prints none).
 */
#define QCOW2_COMMON_OPTS \
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" }, \
	{ "compat", BLOCK_OPT_STR, NULL, "Compatibility level (v2 [0.10] or v3 [1.1])" }, \
	{ "backing_file", BLOCK_OPT_STR, NULL, "File name of a base image" }, \
	{ "backing_fmt", BLOCK_OPT_STR, NULL, "Image format of the base image" }, \
	{ "data_file", BLOCK_OPT_STR, NULL, "File name of an external data file" }, \
	{ "data_file_raw", BLOCK_OPT_BOOL, NULL, \
	  "The external data file must stay valid as a raw image" }, \
	{ "lazy_refcounts", BLOCK_OPT_BOOL, "off", "Postpone refcount updates" }, \
	{ "refcount_bits", BLOCK_OPT_NUM, "16", "Width of a reference count entry in bits" }

static const struct block_opt_desc qcow2_create[] = {
	{ "encryption", BLOCK_OPT_BOOL, NULL,
	  "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)" },
	{ "encrypt.format", BLOCK_OPT_STR, NULL, "Encrypt the image, format choices: 'aes', 'luks'" },
	{ "encrypt.key-secret", BLOCK_OPT_STR, NULL,
	  "ID of secret providing qcow AES key or LUKS passphrase" },
	{ "encrypt.cipher-alg", BLOCK_OPT_STR, NULL, "Name of encryption cipher algorithm" },
	{ "encrypt.cipher-mode", BLOCK_OPT_STR, NULL, "Name of encryption cipher mode" },
	{ "encrypt.ivgen-alg", BLOCK_OPT_STR, NULL, "Name of IV generator algorithm" },
	{ "encrypt.ivgen-hash-alg", BLOCK_OPT_STR, NULL, "Name of IV generator hash algorithm" },
	{ "encrypt.hash-alg", BLOCK_OPT_STR, NULL, "Name of encryption hash algorithm" },
	{ "encrypt.iter-time", BLOCK_OPT_NUM, NULL, "Time to spend in PBKDF in milliseconds" },
	{ "cluster_size", BLOCK_OPT_SIZE, "65536", "qcow2 cluster size" },
	{ "extended_l2", BLOCK_OPT_BOOL, "off", "Extended L2 tables" },
	{ "preallocation", BLOCK_OPT_STR, NULL,
	  "Preallocation mode (allowed values: off, metadata, falloc, full)" },
	{ "compression_type", BLOCK_OPT_STR, "zlib",
	  "Compression method used for image cluster compression" },
	QCOW2_COMMON_OPTS,
	{ NULL, 0, NULL, NULL },
};

/* qcow2_amend_opts: what amend may change; the rest is "only for image creation". */
static const struct block_opt_desc qcow2_amend[] = {
	QCOW2_COMMON_OPTS,
	{ "encrypt.state", BLOCK_OPT_STR, NULL,
	  "Select new state of affected keyslots (active/inactive)" },
	{ "encrypt.keyslot", BLOCK_OPT_NUM, NULL, "Select a single keyslot to modify explicitly" },
	{ "encrypt.old-secret", BLOCK_OPT_STR, NULL, "Select all keyslots that match this password" },
	{ "encrypt.new-secret", BLOCK_OPT_STR, NULL,
	  "New secret to set in the matching keyslots. Empty string to erase" },
	{ "encrypt.iter-time", BLOCK_OPT_NUM, NULL, "Time to spend in PBKDF in milliseconds" },
	{ NULL, 0, NULL, NULL },
};

static const struct block_opt_desc raw_create[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ NULL, 0, NULL, NULL },
};

/* file-posix's raw_create_opts: the protocol under both formats. */
static const struct block_opt_desc file_create[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "nocow", BLOCK_OPT_BOOL, NULL, "Turn off copy-on-write (valid only on btrfs)" },
	{ "preallocation", BLOCK_OPT_STR, NULL,
	  "Preallocation mode (allowed values: off, falloc, full)" },
	{ "extent_size_hint", BLOCK_OPT_SIZE, NULL, "Extent size hint for the image file, 0 to disable" },
	{ NULL, 0, NULL, NULL },
};

/* QEMU's nfs_create_opts: the nfs protocol creates files of a size, nothing more. */
static const struct block_opt_desc nfs_create[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ NULL, 0, NULL, NULL },
};

/* rbd's qemu_rbd_create_opts: the protocol list when the target is an rbd: image. */
static const struct block_opt_desc rbd_create[] = {
	{ "size", BLOCK_OPT_SIZE, NULL, "Virtual disk size" },
	{ "cluster_size", BLOCK_OPT_SIZE, NULL, "RBD object size" },
	{ "password-secret", BLOCK_OPT_STR, NULL, "ID of secret providing the password" },
	{ "encrypt.format", BLOCK_OPT_STR, NULL,
	  "Encrypt the image, format choices: 'luks', 'luks2'" },
	{ "encrypt.cipher-alg", BLOCK_OPT_STR, NULL,
	  "Name of encryption cipher algorithm (allowed values: aes-128, aes-256)" },
	{ "encrypt.key-secret", BLOCK_OPT_STR, NULL, "ID of secret providing LUKS passphrase" },
	{ NULL, 0, NULL, NULL },
};

static const struct block_opt_desc *format_list(const char *fmt, bool amend)
{
	if (!strcmp(fmt, "qcow2"))
		return amend ? qcow2_amend : qcow2_create;
	if (!strcmp(fmt, "raw"))
		return amend ? NULL : raw_create;
	return block_format_opts(fmt, amend);
}

static int add_list(struct img_opts *p, const struct block_opt_desc *list)
{
	for (; list && list->name; list++) {
		if (img_opts_find(p, list->name) >= 0)
			continue;
		if (p->n >= IMG_OPTS_MAX)
			return -1;
		p->desc[p->n++] = list;
	}
	return 0;
}

int img_opts_init(struct img_opts *p, const char *fmt, enum img_opts_kind kind)
{
	memset(p, 0, sizeof(*p));
	p->fmt = fmt;
	p->kind = kind;
	if (add_list(p, format_list(fmt, kind == IMG_OPTS_AMEND)) < 0)
		return -1;
	if (kind == IMG_OPTS_CREATE_FILE || kind == IMG_OPTS_MEASURE)
		return add_list(p, file_create);
	return 0;
}

int img_opts_init_target(struct img_opts *p, const char *fmt, const char *target)
{
	const struct block_opt_desc *list = NULL;
	bool rbd = target && !strncmp(target, "rbd:", 4) && block_rbd_available();

	if (rbd)
		list = rbd_create;
	else if (target && !strncmp(target, "nfs://", 6))
		list = nfs_create;
	if (!list)
		return img_opts_init(p, fmt, IMG_OPTS_CREATE_FILE);
	if (img_opts_init(p, fmt, IMG_OPTS_CREATE) < 0)
		return -1;
	p->kind = IMG_OPTS_CREATE_FILE;
	p->rbd = rbd;
	return add_list(p, list);
}

void img_opts_free(struct img_opts *p)
{
	free(p->storage);
	p->storage = NULL;
}

int img_opts_find(const struct img_opts *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->desc[i]->name, name))
			return (int)i;
	return -1;
}

/* QEMU's has_help_option: any key "help" or "?", with or without a value. */
bool img_is_help_opt(const char *text)
{
	size_t len;

	for (const char *s = text; s && *s; s += len + (s[len] == ',')) {
		len = strcspn(s, ",=");
		if ((len == 4 && !strncmp(s, "help", 4)) || (len == 1 && *s == '?'))
			return true;
		if (s[len] == '=') {
			/* Skip the value; ",," is a literal comma inside it. */
			const char *v = s + len + 1;
			while (*v && !(*v == ',' && v[1] != ','))
				v += *v == ',' ? 2 : 1;
			len = (size_t)(v - s);
		}
	}
	return false;
}

static const char *type_name(enum block_opt_type t)
{
	static const char *const names[] = { "str", "bool (on/off)", "num", "size" };
	return names[t];
}

static int cmp_opt(const void *a, const void *b)
{
	const struct block_opt_desc *x = *(const struct block_opt_desc *const *)a;
	const struct block_opt_desc *y = *(const struct block_opt_desc *const *)b;
	return strcmp(x->name, y->name);
}

/* qemu_opts_print_help: sorted by name, the help column at 24. */
void img_opts_print_help(const struct img_opts *p)
{
	const struct block_opt_desc *sorted[IMG_OPTS_MAX];
	bool file = p->kind == IMG_OPTS_CREATE_FILE;

	memcpy(sorted, p->desc, p->n * sizeof(sorted[0]));
	qsort(sorted, p->n, sizeof(sorted[0]), cmp_opt);
	if (p->kind == IMG_OPTS_AMEND)
		printf("Amend options for '%s':\n", p->fmt);
	else if (file)
		printf("Supported options:\n");
	else
		printf("Supported %s options:\n", p->fmt);
	for (size_t i = 0; i < p->n; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s=<%s>", sorted[i]->name, type_name(sorted[i]->type));
		printf("  %-22s - %s\n", left, sorted[i]->help);
	}
	if (p->kind == IMG_OPTS_CREATE)
		printf("\nThe protocol level may support further options.\n"
		       "Specify the target filename to include those options.\n");
}

/* QemuOpts' bool: on/yes/true/y and off/no/false/n. */
static bool parse_bool(const char *v, bool *out)
{
	static const char *const on[] = { "on", "yes", "true", "y" };
	static const char *const off[] = { "off", "no", "false", "n" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(v, on[i]) || !strcmp(v, off[i])) {
			*out = !strcmp(v, on[i]);
			return true;
		}
	}
	return false;
}

/* QemuOpts' type check of one value (qemu_opt_parse); messages as QEMU words them. */
static int check_value(const struct block_opt_desc *d, const char *val, uint64_t *num, char *err,
		       size_t errlen)
{
	char *end;
	bool b;
	int r;

	switch (d->type) {
	case BLOCK_OPT_STR:
		return 0;
	case BLOCK_OPT_BOOL:
		if (parse_bool(val, &b)) {
			*num = b;
			return 0;
		}
		snprintf(err, errlen, "Parameter '%s' expects 'on' or 'off'", d->name);
		return -1;
	case BLOCK_OPT_NUM:
		/* qemu_strtou64 base 0, the whole text */
		errno = 0;
		*num = strtoull(val, &end, 0);
		if (end == val || *end || strchr(val, '-')) {
			snprintf(err, errlen, "Parameter '%s' expects a number", d->name);
			return -1;
		}
		if (errno == ERANGE) {
			snprintf(err, errlen, "Value '%s' is too large for parameter '%s'", val, d->name);
			return -1;
		}
		return 0;
	case BLOCK_OPT_SIZE:
		r = img_strtosz(val, num);
		if (r == -ERANGE) {
			snprintf(err, errlen, "Value '%s' is out of range for parameter '%s'", val,
				 d->name);
			return -1;
		}
		if (r < 0) {
			snprintf(err, errlen, "Parameter '%s' expects a non-negative number below "
				 "2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, "
				 "tera-, peta-\nand exabytes, respectively.", d->name);
			return -1;
		}
		return 0;
	}
	return 0;
}

/* The formats' create lists name options that amend does not take. */
static bool create_only(const char *fmt, const char *name)
{
	for (const struct block_opt_desc *o = format_list(fmt, false); o && o->name; o++)
		if (!strcmp(o->name, name))
			return true;
	return false;
}

static int store(struct img_opts *p, const char *key, const char *val, char *err, size_t errlen)
{
	int i = img_opts_find(p, key);

	if (i < 0) {
		snprintf(err, errlen, "Invalid parameter '%s'%s", key,
			 p->kind == IMG_OPTS_AMEND && create_only(p->fmt, key)
				 ? "\nThis option is only supported for image creation" : "");
		return -1;
	}
	/* "key" alone is "key=on" (QemuOpts' implied bool). */
	if (!val)
		val = p->desc[i]->type == BLOCK_OPT_BOOL ? "on" : "";
	if (check_value(p->desc[i], val, &p->num[i], err, errlen) < 0)
		return -1;
	p->val[i] = val;
	return 0;
}

int img_opts_parse(struct img_opts *p, const char *text, char *err, size_t errlen)
{
	char *copy = malloc(strlen(text) + 1), *q = copy;
	const char *s = text;

	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(p->storage);
	p->storage = copy;
	if (!*s) {
		snprintf(err, errlen, "Invalid option list: %s", text);
		return -1;
	}
	while (*s) {
		char *key = q, *val = NULL;
		for (; *s && *s != ',' && *s != '='; s++)
			*q++ = *s;
		*q++ = '\0';
		if (*s == '=') {
			val = q;
			for (s++; *s && !(*s == ',' && s[1] != ','); s++) {
				if (*s == ',')
					s++;	/* ",," is one literal comma */
				*q++ = *s;
			}
			*q++ = '\0';
		}
		if (*s == ',')
			s++;
		if (store(p, key, val, err, errlen) < 0)
			return -1;
	}
	return 0;
}

bool img_opts_given(const struct img_opts *p, const char *name)
{
	int i = img_opts_find(p, name);
	return i >= 0 && p->val[i];
}

int img_opts_set(struct img_opts *p, const char *name, const char *val, uint64_t num)
{
	int i = img_opts_find(p, name);

	if (i < 0)
		return -1;
	p->val[i] = val;
	p->num[i] = num;
	return 0;
}

/* escaped_print: a comma in a value is doubled, as on the command line. */
static void print_escaped(const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			putchar(',');
		putchar(*s);
	}
}

/* qemu_opts_print: given options and defaults, in the list's order. */
void img_opts_print_formatting(const struct img_opts *p, const char *filename)
{
	printf("Formatting '%s', fmt=%s", filename, p->fmt);
	for (size_t i = 0; i < p->n; i++) {
		const struct block_opt_desc *d = p->desc[i];
		const char *v = p->val[i] ? p->val[i] : d->def;
		if (!v)
			continue;
		printf(" %s=", d->name);
		if (d->type == BLOCK_OPT_STR)
			print_escaped(v);
		else if ((d->type == BLOCK_OPT_SIZE || d->type == BLOCK_OPT_NUM) && p->val[i])
			printf("%" PRIu64, p->num[i]);
		else
			printf("%s", v);
	}
	printf("\n");
}

/* The wording of a bad string value depends on who checks it in QEMU. */
static int bad_compat(const struct img_opts *p, const char *v, char *err, size_t errlen)
{
	if (p->kind == IMG_OPTS_AMEND)
		snprintf(err, errlen, "Unknown compatibility level %s", v);
	else if (p->kind == IMG_OPTS_MEASURE)
		snprintf(err, errlen, "Invalid compatibility level: '%s'", v);
	else
		snprintf(err, errlen, "Parameter 'version' does not accept value '%s'", v);
	return -1;
}

static int apply_prealloc(const struct img_opts *p, const char *v, struct block_create_opts *o,
			  char *err, size_t errlen)
{
	static const char *const names[] = { "off", "metadata", "falloc", "full" };
	bool qcow2 = !strcmp(p->fmt, "qcow2");
	/* QEMU's luks takes metadata (its crypto header is all the metadata there is). */
	bool metadata_ok = qcow2 || !strcmp(p->fmt, "luks");

	for (int i = 0; i <= BLOCK_PREALLOC_FULL; i++) {
		if (strcmp(v, names[i]))
			continue;
		if (i == BLOCK_PREALLOC_METADATA && !metadata_ok) {
			snprintf(err, errlen, "Unsupported preallocation mode: %s", v);
			return -1;
		}
		o->prealloc = (enum block_prealloc)i;
		return 0;
	}
	if (qcow2)
		snprintf(err, errlen, "Parameter 'preallocation' does not accept value '%s'", v);
	else
		snprintf(err, errlen, "invalid parameter value: %s", v);
	return -1;
}

/* size, backing_file and backing_fmt stay in o->size/backing_file/backing_fmt for every format. */
static bool img_opt_is_generic(const char *name)
{
	return !strcmp(name, "size") || !strcmp(name, "backing_file") || !strcmp(name, "backing_fmt");
}

/* An option of a format with its own list, for its driver to check. */
static bool pass_to_driver(const struct img_opts *p, size_t i, struct block_create_opts *o)
{
	const struct block_opt_desc *list = block_format_opts(p->fmt, p->kind == IMG_OPTS_AMEND);

	for (; list && list->name; list++) {
		if (list == p->desc[i] && !img_opt_is_generic(list->name)) {
			if (o->n_fmt_opts >= BLOCK_FMT_OPTS_MAX)
				return false;
			o->fmt_opts[o->n_fmt_opts++] = (struct block_fmt_opt){
				list->name, p->val[i], p->num[i] };
			return true;
		}
	}
	return false;
}

/*
 * qcow2's encrypt.* on create, convert, measure and amend (keyslots): LUKS,
 * passed to the driver without the prefix (it checks the values as QEMU's
 * luks does).  The old AES method is refused by name.
 */
static int apply_encrypt(const struct img_opts *p, const char *name, const char *v, uint64_t n,
			 struct block_create_opts *o, char *err, size_t errlen)
{
	if (!strcmp(name, "encryption")) {
		snprintf(err, errlen, "Option 'encryption' is not supported by Kestrel: it writes "
			 "no images with the old AES encryption (use encrypt.format=luks)");
		return -1;
	}
	if (o->n_fmt_opts >= BLOCK_FMT_OPTS_MAX) {
		snprintf(err, errlen, "Too many options");
		return -1;
	}
	o->fmt_opts[o->n_fmt_opts++] = (struct block_fmt_opt){ name + 8, v, n };
	return 0;
}

static int apply_one(const struct img_opts *p, size_t i, struct block_create_opts *o,
		     unsigned *set, char *err, size_t errlen)
{
	const char *name = p->desc[i]->name, *v = p->val[i];
	uint64_t n = p->num[i];

	if (pass_to_driver(p, i, o))
		return 0;
	/* The rbd protocol's own options: Kestrel makes no encrypted rbd images. */
	if (p->rbd && (!strcmp(name, "password-secret") ||
		       (!strncmp(name, "encrypt.", 8) && strcmp(p->fmt, "qcow2")))) {
		snprintf(err, errlen, "Option '%s' of block protocol 'rbd' is not supported by "
			 "Kestrel", name);
		return -1;
	}
	if (!strcmp(name, "size")) {
		o->size = n;
		*set |= BLOCK_AMEND_SIZE;
	} else if (!strcmp(name, "preallocation")) {
		return apply_prealloc(p, v, o, err, errlen);
	} else if (!strcmp(name, "backing_file")) {
		o->backing_file = v;
		*set |= BLOCK_AMEND_BACKING_FILE;
	} else if (!strcmp(name, "backing_fmt")) {
		o->backing_fmt = v;
		*set |= BLOCK_AMEND_BACKING_FMT;
	} else if (!strcmp(name, "cluster_size")) {
		/* Out of range values fail the qcow2 driver's power-of-two check. */
		o->cluster_size = n > UINT32_MAX || !n ? 3 : (uint32_t)n;
	} else if (!strcmp(name, "compat")) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
			o->compat = 2;
		else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
			o->compat = 3;
		else
			return bad_compat(p, v, err, errlen);
		*set |= BLOCK_AMEND_COMPAT;
	} else if (!strcmp(name, "compression_type")) {
		if (!strcmp(v, "zlib")) {
			o->compression_type = BLOCK_COMPRESS_ZLIB;
		} else if (!strcmp(v, "zstd")) {
			o->compression_type = BLOCK_COMPRESS_ZSTD;
		} else {
			snprintf(err, errlen, "Parameter 'compression-type' does not accept value '%s'",
				 v);
			return -1;
		}
	} else if (!strcmp(name, "lazy_refcounts")) {
		o->lazy_refcounts = n;
		*set |= BLOCK_AMEND_LAZY_REFCOUNTS;
	} else if (!strcmp(name, "extended_l2")) {
		o->extended_l2 = n;
		*set |= BLOCK_AMEND_EXTENDED_L2;
	} else if (!strcmp(name, "data_file")) {
		o->data_file = v;
		*set |= BLOCK_AMEND_DATA_FILE;
	} else if (!strcmp(name, "data_file_raw")) {
		o->data_file_raw = n;
		*set |= BLOCK_AMEND_DATA_FILE_RAW;
	} else if (!strcmp(name, "refcount_bits")) {
		o->refcount_bits = n > 128 || !n ? 3 : (int)n;	/* fails the driver's check */
		*set |= BLOCK_AMEND_REFCOUNT_BITS;
	} else if (!strcmp(name, "extent_size_hint")) {
		if (n > UINT32_MAX) {
			snprintf(err, errlen, "Extent size hint is too large");
			return -1;
		}
		o->extent_size_hint = (uint32_t)n;
		o->extent_size_hint_given = true;
	} else if (!strcmp(name, "nocow")) {
		o->nocow = n;
	} else if (!strcmp(name, "encryption") && !n) {
		return 0;	/* "encryption=off" asks for nothing */
	} else if (!strcmp(name, "encrypt.key-secret") && !img_secret_lookup(v, NULL)) {
		/* qemu-img checks the secret (--object) before the encryption itself. */
		snprintf(err, errlen, "No secret with id '%s'", v);
		return -1;
	} else if (!strncmp(name, "encrypt", 7)) {
		return apply_encrypt(p, name, v, n, o, err, errlen);
	} else {
		snprintf(err, errlen, "Option '%s' is not supported", name);
		return -1;
	}
	return 0;
}

static const char *given(const struct img_opts *p, const char *name, uint64_t *num)
{
	int i = img_opts_find(p, name);

	if (i < 0 || !p->val[i])
		return NULL;
	*num = p->num[i];
	return p->val[i];
}

/*
 * qcow2_measure's own checks, in its order (qcow2_opt_get_*_del): it knows
 * only "0.10" and "1.1" for compat and ignores compression_type; raw_measure
 * reads no option at all.
 */
static int apply_measure(const struct img_opts *p, struct block_create_opts *o, char *err,
			 size_t errlen)
{
	const char *v;
	uint64_t n;

	/* A format with its own list measures from its own options. */
	for (size_t i = 0; i < p->n; i++)
		if (p->val[i] && !pass_to_driver(p, i, o) && !strcmp(p->desc[i]->name, "size"))
			o->size = p->num[i];
	if (strcmp(p->fmt, "qcow2"))
		return 0;
	/* encrypt.*: the LUKS header's clusters (measure_qcow2 adds them). */
	for (size_t i = 0; i < p->n; i++)
		if (p->val[i] && !strncmp(p->desc[i]->name, "encrypt", 7) &&
		    apply_encrypt(p, p->desc[i]->name, p->val[i], p->num[i], o, err, errlen) < 0)
			return -1;
	if (given(p, "extended_l2", &n))
		o->extended_l2 = n;
	if (given(p, "cluster_size", &n)) {
		if (n < 512 || n > (2u << 20) || (n & (n - 1))) {
			snprintf(err, errlen, "Cluster size must be a power of two between 512 and "
				 "2048k");
			return -1;
		}
		o->cluster_size = (uint32_t)n;
	}
	if (o->extended_l2 && (o->cluster_size ? o->cluster_size : 65536) < 16384) {
		snprintf(err, errlen, "Extended L2 entries are only supported with cluster sizes of "
			 "at least 16384 bytes");
		return -1;
	}
	if ((v = given(p, "compat", &n))) {
		if (strcmp(v, "0.10") && strcmp(v, "1.1")) {
			snprintf(err, errlen, "Invalid compatibility level: '%s'", v);
			return -1;
		}
		o->compat = v[0] == '0' ? 2 : 3;
	}
	if (given(p, "refcount_bits", &n)) {
		if (!n || n > 64 || (n & (n - 1))) {
			snprintf(err, errlen, "Refcount width must be a power of two and may not "
				 "exceed 64 bits");
			return -1;
		}
		if (o->compat == 2 && n != 16) {
			snprintf(err, errlen, "Different refcount widths than 16 bits require "
				 "compatibility level 1.1 or above (use compat=1.1 or greater)");
			return -1;
		}
		o->refcount_bits = (int)n;
	}
	if ((v = given(p, "preallocation", &n))) {
		static const char *const names[] = { "off", "metadata", "falloc", "full" };
		int i;
		for (i = 0; i <= BLOCK_PREALLOC_FULL && strcmp(v, names[i]); i++)
			;
		if (i > BLOCK_PREALLOC_FULL) {
			snprintf(err, errlen, "invalid parameter value: %s", v);
			return -1;
		}
		o->prealloc = (enum block_prealloc)i;
	}
	if (given(p, "size", &n))
		o->size = n;
	if ((v = given(p, "backing_file", &n)))
		o->backing_file = v;
	return 0;
}

int img_opts_apply(const struct img_opts *p, struct block_create_opts *o, unsigned *set,
		   char *err, size_t errlen)
{
	if (p->kind == IMG_OPTS_MEASURE)
		return apply_measure(p, o, err, errlen);
	/* file-posix's default hint (QEMU sets 1 MiB unless told otherwise). */
	if (p->kind != IMG_OPTS_AMEND)
		o->extent_size_hint = 1 << 20;
	for (size_t i = 0; i < p->n; i++) {
		bool hex = false;
		uint64_t n;
		/* create and convert parse sizes a second time (the QAPI visitor): a second warning. */
		if (p->kind == IMG_OPTS_CREATE_FILE && p->val[i] && p->desc[i]->type == BLOCK_OPT_SIZE &&
		    size_strtosz(p->val[i], &n, &hex) == 0 && hex)
			img_error("warning: Using a multiplier suffix on hex numbers is deprecated: %s",
				  p->val[i]);
	}
	for (size_t i = 0; i < p->n; i++) {
		if (p->val[i] && apply_one(p, i, o, set, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/*
 * -f/-O of a command that creates: qemu-img's "Unknown file format" for a
 * name it does not know; a format QEMU knows but Kestrel does not write is
 * refused by name.  prefix: the target file name, or NULL.
 */
bool img_check_create_format(const char *fmt, const char *prefix)
{
	const char *sep = prefix ? ": " : "";

	if (!prefix)
		prefix = "";
	if (block_format_can_create(fmt))
		return true;
	if (!block_format_known(fmt))
		img_error("%s%sUnknown file format '%s'", prefix, sep, fmt);
	else if (!block_format_creatable(fmt))
		img_error("%s%sFormat driver '%s' does not support image creation", prefix, sep, fmt);
	else
		img_error("%s%sImage format '%s' is not supported by Kestrel: it cannot create "
			  "%s images yet", prefix, sep, fmt, fmt);
	return false;
}
