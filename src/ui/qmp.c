/*
 * QMP for one client, as QEMU 7.2 speaks it (docs/interop/qmp-spec.txt): the
 * greeting, capabilities negotiation, command dispatch with QEMU's error
 * classes and wording, and events.  JSON comes in through json-c's streaming
 * tokener; replies go out through our own writer so that they are byte for
 * byte what QEMU prints (see json_write).
 *
 * Ownership: qmp_session_event does not take the caller's data; it is only
 * read while the event is written, so one object can be fanned out to several
 * sessions and released by the caller afterwards.
 *
 * Re-entrancy: the write callback and the control functions may call
 * qmp_session_event or qmp_session_free on the session they are called from
 * (a monitor frees its session when a write finds the client gone).  A free
 * while the session is busy is deferred until the outermost call returns, and
 * nothing more is written or dispatched after it.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ui/hmp.h"
#include "ui/qmp.h"
#include "vmm/config.h"

#ifndef KESTREL_VERSION
#define KESTREL_VERSION "unknown"
#endif

/* The QEMU release whose protocol and command set we answer as. */
#define QMP_QEMU_MAJOR 7
#define QMP_QEMU_MINOR 2
#define QMP_QEMU_MICRO 0

/*
 * Per-message limits.  QEMU's are 64 MiB of tokens and 1024 levels
 * (qobject/json-streamer.c); no command here takes more than a short string,
 * so ours are far tighter and bound what one client can make us allocate.
 */
#define QMP_MAX_MESSAGE (1u << 20)
#define QMP_MAX_DEPTH 64

static const char qmp_oom_reply[] =
	"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Out of memory\"}}\r\n";

enum qmp_input_mode {
	QMP_PARSE,	/* feeding the tokener */
	QMP_RECOVER,	/* after a syntax error: dropping bytes up to the next '{' */
	QMP_SKIP,	/* after a limit: dropping the rest of the offending message */
};

/*
 * Bracket and string state of the message being parsed, tracked beside the
 * tokener so that a message over a limit can be skipped to its real end
 * instead of having its inner objects taken for new messages.
 */
struct qmp_scan {
	size_t depth;
	char quote;		/* '"' or '\'' while inside a string */
	bool escape;
	size_t colons;		/* ':' outside strings: one per object member */
};

struct qmp_buf {
	char *data;
	size_t len, cap;
	bool failed;
};

struct qmp_session {
	const struct control *ctl;
	qmp_write_fn write;
	void *opaque;
	struct json_tokener *tok;
	enum qmp_input_mode mode;
	size_t msg_len;		/* bytes of the current message fed so far */
	struct qmp_scan scan;
	struct qmp_buf strtext;	/* the string being scanned, from its quote: error text */
	bool negotiated;
	bool oob;		/* the client enabled the "oob" capability */
	unsigned busy;		/* nesting of our entry points on the stack */
	bool doomed;		/* freed while busy */
};

struct qmp_error {
	const char *cls;	/* QapiErrorClass name; NULL: no error */
	char *desc;		/* NULL when even formatting it failed */
};

typedef int (*qmp_handler)(struct qmp_session *s, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err);

enum qmp_arg_type {
	QMP_ARG_STR,
	QMP_ARG_INT,
	QMP_ARG_BOOL,
	QMP_ARG_CAPS,		/* ['QMPCapability'], qapi/control.json */
	QMP_ARG_ANY,		/* 'any': the command checks it */
};

struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool optional;
};

struct qmp_command {
	const char *name;
	qmp_handler fn;
	const struct qmp_arg *args;	/* NULL-named terminator; NULL: none */
};

/* -------------------------------------------------------------------------- */
/* Errors and object building                                                 */

static int __attribute__((format(printf, 3, 4)))
qmp_fail(struct qmp_error *err, const char *cls, const char *fmt, ...)
{
	va_list ap;

	free(err->desc);
	err->cls = cls;
	va_start(ap, fmt);
	if (vasprintf(&err->desc, fmt, ap) < 0)
		err->desc = NULL;
	va_end(ap);
	return -1;
}

static int qmp_oom(struct qmp_error *err)
{
	return qmp_fail(err, "GenericError", "Out of memory");
}

static struct json_object *new_obj(bool *ok)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		*ok = false;
	return o;
}

/*
 * Adds val, taking ownership of it, under key.  A NULL obj or val (a failed
 * allocation) or a failed add clears *ok and frees val, so a builder makes all
 * its calls and checks *ok once at the end.
 */
static void put(bool *ok, struct json_object *obj, const char *key, struct json_object *val)
{
	if (!obj || !val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		*ok = false;
	}
}

static void append(bool *ok, struct json_object *arr, struct json_object *val)
{
	if (!arr || !val || json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		*ok = false;
	}
}

/* Hands a finished builder result to *ret, or reports why there is none. */
static int finish(bool ok, struct json_object *obj, struct json_object **ret,
		  struct qmp_error *err)
{
	if (!ok || !obj) {
		json_object_put(obj);
		return qmp_oom(err);
	}
	*ret = obj;
	return 0;
}

/* -------------------------------------------------------------------------- */
/* UTF-8                                                                      */

/*
 * Decodes one UTF-8 sequence strictly (RFC 3629 §3: no overlong forms, no
 * surrogates, nothing past U+10FFFF).  Sets *cp to -1 for an invalid one,
 * which then counts as one byte.  Returns the bytes used; n must be >= 1.
 */
static size_t utf8_decode(const uint8_t *p, size_t n, int32_t *cp)
{
	size_t len;
	int32_t v, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		len = 2, v = p[0] & 0x1F, min = 0x80;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		len = 3, v = p[0] & 0x0F, min = 0x800;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		len = 4, v = p[0] & 0x07, min = 0x10000;
	} else {
		*cp = -1;
		return 1;
	}
	if (n < len) {
		*cp = -1;
		return 1;
	}
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			*cp = -1;
			return 1;
		}
		v = (v << 6) | (p[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
		*cp = -1;
		return 1;
	}
	*cp = v;
	return len;
}

static bool utf8_valid(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	int32_t cp;

	for (size_t i = 0; i < len;) {
		i += utf8_decode(p + i, len - i, &cp);
		if (cp < 0)
			return false;
	}
	return true;
}

/* -------------------------------------------------------------------------- */
/* Output: QEMU's JSON writer (qobject/json-writer.c, non-pretty)             */

static void buf_add(struct qmp_buf *b, const char *p, size_t n)
{
	size_t cap;
	char *data;

	if (b->failed)
		return;
	if (n > b->cap - b->len) {
		cap = b->cap ? b->cap : 256;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->failed = true;
				return;
			}
			cap *= 2;
		}
		data = realloc(b->data, cap);
		if (!data) {
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void buf_str(struct qmp_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/*
 * QEMU's quoted_str: the output is pure ASCII.  Non-ASCII and control
 * characters become \uXXXX (upper-case hex, surrogate pairs past the BMP) and
 * bytes that are not UTF-8 become U+FFFD.
 */
static void write_string(struct qmp_buf *b, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	char esc[16];
	int32_t cp;

	buf_add(b, "\"", 1);
	while (p < end) {
		p += utf8_decode(p, (size_t)(end - p), &cp);
		switch (cp) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\b':
			buf_add(b, "\\b", 2);
			break;
		case '\f':
			buf_add(b, "\\f", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			if (cp < 0)
				cp = 0xFFFD;
			if (cp > 0xFFFF) {
				snprintf(esc, sizeof(esc), "\\u%04X\\u%04X",
					 (unsigned)(0xD800 + ((cp - 0x10000) >> 10)),
					 (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
				buf_str(b, esc);
			} else if (cp < 0x20 || cp >= 0x7F) {
				snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)cp);
				buf_str(b, esc);
			} else {
				esc[0] = (char)cp;
				buf_add(b, esc, 1);
			}
		}
	}
	buf_add(b, "\"", 1);
}

/*
 * QEMU prints a QDict's members in hash-table order, not insertion order:
 * bucket tdb_hash(key) % QDICT_BUCKET_MAX (512) upwards, and within a bucket
 * the last inserted first (qobject/qdict.c).  Clients must not care, but
 * people and scripts diff our output against QEMU's, so we sort the same way;
 * for that to hold within a bucket, builders add members in the order of the
 * QAPI schema, which is the order QEMU's output visitor inserts them.
 */
static unsigned qdict_bucket(const char *key)
{
	size_t len = strlen(key);
	uint32_t v = 0x238F13AFu * (uint32_t)len;

	for (size_t i = 0; i < len; i++)
		v += (uint32_t)(uint8_t)key[i] << (i * 5 % 24);
	return (1103515243u * v + 12345u) % 512u;
}

struct qmp_member {
	const char *key;
	struct json_object *val;
	unsigned bucket;
	size_t index;
};

static int member_cmp(const void *a, const void *b)
{
	const struct qmp_member *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->index > y->index ? -1 : x->index < y->index;
}

static void json_write(struct qmp_buf *b, struct json_object *o);

static void write_object(struct qmp_buf *b, struct json_object *o)
{
	size_t n = (size_t)json_object_object_length(o), i = 0;
	struct qmp_member *m;

	if (n == 0) {
		buf_add(b, "{}", 2);
		return;
	}
	m = calloc(n, sizeof(*m));
	if (!m) {
		b->failed = true;
		return;
	}
	json_object_object_foreach(o, key, val) {
		m[i] = (struct qmp_member){ key, val, qdict_bucket(key), i };
		i++;
	}
	qsort(m, n, sizeof(*m), member_cmp);
	buf_add(b, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			buf_add(b, ", ", 2);
		write_string(b, m[i].key, strlen(m[i].key));
		buf_add(b, ": ", 2);
		json_write(b, m[i].val);
	}
	buf_add(b, "}", 1);
	free(m);
}

static void json_write(struct qmp_buf *b, struct json_object *o)
{
	char num[32];
	int64_t i;
	size_t n;
	double d;

	switch (json_object_get_type(o)) {
	case json_type_null:
		buf_str(b, "null");
		break;
	case json_type_boolean:
		buf_str(b, json_object_get_boolean(o) ? "true" : "false");
		break;
	case json_type_int:
		/* json-c keeps values past INT64_MAX as uint64, as QEMU's QNum does. */
		i = json_object_get_int64(o);
		if (i == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX)
			snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(o));
		else
			snprintf(num, sizeof(num), "%" PRId64, i);
		buf_str(b, num);
		break;
	case json_type_double:
		/* qobject/qnum.c qnum_to_string: 17 digits round-trip any double. */
		d = json_object_get_double(o);
		if (isfinite(d))
			snprintf(num, sizeof(num), "%.17g", d);
		else
			snprintf(num, sizeof(num), "null");
		buf_str(b, num);
		break;
	case json_type_string:
		write_string(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		n = json_object_array_length(o);
		if (n == 0) {
			buf_add(b, "[]", 2);
			break;
		}
		buf_add(b, "[", 1);
		for (size_t k = 0; k < n; k++) {
			if (k)
				buf_add(b, ", ", 2);
			json_write(b, json_object_array_get_idx(o, k));
		}
		buf_add(b, "]", 1);
		break;
	case json_type_object:
		write_object(b, o);
		break;
	}
}

/*
 * Writes one message, ended by CRLF as QEMU's monitor_puts ends every line.
 * fallback, if any, goes out instead when msg could not be built or printed.
 */
static void qmp_send(struct qmp_session *s, struct json_object *msg, const char *fallback)
{
	struct qmp_buf b = { 0 };

	if (s->doomed)
		return;
	if (msg) {
		json_write(&b, msg);
		buf_add(&b, "\r\n", 2);
	}
	if (msg && !b.failed)
		s->write(s->opaque, b.data, b.len);
	else if (fallback)
		s->write(s->opaque, fallback, strlen(fallback));
	free(b.data);
}

static void qmp_respond(struct qmp_session *s, struct json_object *ret,
			const struct qmp_error *err, bool has_id, struct json_object *id)
{
	struct json_object *rsp, *e;
	bool ok = true;

	rsp = new_obj(&ok);
	if (err->cls) {
		e = new_obj(&ok);
		put(&ok, e, "class", json_object_new_string(err->cls));
		put(&ok, e, "desc", json_object_new_string(err->desc ? err->desc : "Out of memory"));
		put(&ok, rsp, "error", e);
		json_object_put(ret);
	} else {
		put(&ok, rsp, "return", ret ? ret : json_object_new_object());
	}
	/* The id is echoed verbatim, JSON null included (qapi/qmp-dispatch.c). */
	if (has_id) {
		struct json_object *ref = json_object_get(id);

		if (!rsp || json_object_object_add(rsp, "id", ref) < 0) {
			json_object_put(ref);
			ok = false;
		}
	}
	qmp_send(s, ok ? rsp : NULL, qmp_oom_reply);
	json_object_put(rsp);
}

/* An error about the input itself: it has no id to echo. */
static void __attribute__((format(printf, 2, 3)))
qmp_input_error(struct qmp_session *s, const char *fmt, ...)
{
	struct qmp_error err = { .cls = "GenericError" };
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&err.desc, fmt, ap) < 0)
		err.desc = NULL;
	va_end(ap);
	qmp_respond(s, NULL, &err, false, NULL);
	free(err.desc);
}

/* -------------------------------------------------------------------------- */
/* Commands: names and shapes from QEMU 7.2 qapi/ schemas                       */

static struct json_object *version_info(void)
{
	struct json_object *v, *q;
	bool ok = true;

	v = new_obj(&ok);
	q = new_obj(&ok);
	put(&ok, q, "major", json_object_new_int(QMP_QEMU_MAJOR));
	put(&ok, q, "minor", json_object_new_int(QMP_QEMU_MINOR));
	put(&ok, q, "micro", json_object_new_int(QMP_QEMU_MICRO));
	put(&ok, v, "qemu", q);
	put(&ok, v, "package", json_object_new_string("kestrel-" KESTREL_VERSION));
	if (!ok) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* Runs one of the control table's actions; its message becomes the error. */
static int run_action(struct qmp_session *s, int (*fn)(void *, char *, size_t),
		      struct qmp_error *err)
{
	char msg[256] = "";

	if (!fn)
		return qmp_fail(err, "GenericError", "Not supported");
	if (fn(s->ctl->opaque, msg, sizeof(msg)) < 0) {
		msg[sizeof(msg) - 1] = '\0';
		return qmp_fail(err, "GenericError", "%s", msg[0] ? msg : "Operation failed");
	}
	return 0;
}

static const struct qmp_command *qmp_command_table(void);

/* qapi/control.json: 'oob' is the only capability, and the greeting offers it. */
static int cmd_qmp_capabilities(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *enable;

	if (s->negotiated)
		return qmp_fail(err, "CommandNotFound",
				"Capabilities negotiation is already complete, command ignored");
	s->oob = json_object_object_get_ex(args, "enable", &enable) &&
		 json_object_array_length(enable) > 0;
	s->negotiated = true;
	return 0;
}

static int cmd_query_version(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	*ret = version_info();
	return *ret ? 0 : qmp_oom(err);
}

static int cmd_query_commands(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *c;
	bool ok = list != NULL;

	for (const struct qmp_command *cmd = qmp_command_table(); cmd->name; cmd++) {
		c = new_obj(&ok);
		put(&ok, c, "name", json_object_new_string(cmd->name));
		append(&ok, list, c);
	}
	return finish(ok, list, ret, err);
}

static int cmd_query_status(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	enum run_state st = s->ctl->run_state ? s->ctl->run_state(s->ctl->opaque)
					       : RUN_STATE_RUNNING;
	struct json_object *r;
	bool ok = true;

	r = new_obj(&ok);
	put(&ok, r, "running", json_object_new_boolean(st == RUN_STATE_RUNNING));
	/* -singlestep is TCG-only; KVM never runs single-stepped. */
	put(&ok, r, "singlestep", json_object_new_boolean(0));
	put(&ok, r, "status", json_object_new_string(run_state_name(st)));
	return finish(ok, r, ret, err);
}

static int cmd_query_name(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	const char *name = s->ctl->name ? s->ctl->name(s->ctl->opaque) : NULL;
	struct json_object *r;
	bool ok = true;

	r = new_obj(&ok);
	if (name)
		put(&ok, r, "name", json_object_new_string(name));
	return finish(ok, r, ret, err);
}

static int cmd_query_uuid(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	uint8_t u[16] = { 0 };
	char text[37];
	struct json_object *r;
	bool ok = true;

	if (s->ctl->uuid && !s->ctl->uuid(s->ctl->opaque, u))
		memset(u, 0, sizeof(u));
	snprintf(text, sizeof(text),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
	r = new_obj(&ok);
	put(&ok, r, "UUID", json_object_new_string(text));
	return finish(ok, r, ret, err);
}

static int cmd_query_kvm(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct json_object *r;
	bool ok = true;

	r = new_obj(&ok);
	put(&ok, r, "enabled", json_object_new_boolean(1));
	put(&ok, r, "present", json_object_new_boolean(1));
	return finish(ok, r, ret, err);
}

/*
 * CpuInfoFast with the x86 CpuInstanceProperties QEMU's pc fills: socket,
 * core and thread (die-id only with dies > 1, which we refuse).  The CPUs are
 * the first devices pc creates, hence QOM paths device[0], device[1], ...
 */
static int cmd_query_cpus_fast(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;
	struct json_object *list = json_object_new_array(), *c, *props;
	struct cpu_info ci;
	char path[64];
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && ok; i++) {
		if (!s->ctl->cpu_info || !s->ctl->cpu_info(s->ctl->opaque, i, &ci))
			continue;	/* not (or no longer) there: not listed */
		snprintf(path, sizeof(path), "/machine/unattached/device[%u]", ci.cpu_index);
		c = new_obj(&ok);
		props = new_obj(&ok);
		put(&ok, props, "socket-id", json_object_new_int64(ci.socket_id));
		put(&ok, props, "core-id", json_object_new_int64(ci.core_id));
		put(&ok, props, "thread-id", json_object_new_int64(ci.thread_index));
		put(&ok, c, "cpu-index", json_object_new_int64(ci.cpu_index));
		put(&ok, c, "qom-path", json_object_new_string(path));
		put(&ok, c, "thread-id", json_object_new_int64(ci.thread_id));
		put(&ok, c, "props", props);
		put(&ok, c, "target", json_object_new_string("x86_64"));
		append(&ok, list, c);
	}
	return finish(ok, list, ret, err);
}

static int cmd_empty_object(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	return finish(true, json_object_new_object(), ret, err);
}

static int cmd_query_chardev(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct chardev_info local[16], *info = local;
	struct json_object *list, *c;
	unsigned n = 0, max = 16;
	bool ok = true;

	if (s->ctl->chardevs) {
		n = s->ctl->chardevs(s->ctl->opaque, local, max);
		if (n > max) {
			info = calloc(n, sizeof(*info));
			if (!info)
				return qmp_oom(err);
			max = n;
			n = s->ctl->chardevs(s->ctl->opaque, info, max);
			if (n > max)
				n = max;
		}
	}
	list = json_object_new_array();
	ok = list != NULL;
	for (unsigned i = 0; i < n && ok; i++) {
		c = new_obj(&ok);
		put(&ok, c, "label", json_object_new_string(info[i].label ? info[i].label : ""));
		put(&ok, c, "filename",
		    json_object_new_string(info[i].filename ? info[i].filename : ""));
		put(&ok, c, "frontend-open", json_object_new_boolean(info[i].frontend_open));
		append(&ok, list, c);
	}
	if (info != local)
		free(info);
	return finish(ok, list, ret, err);
}

/* PciDeviceInfo (qapi/pci.json): one function's identity, class and regions. */
static struct json_object *pci_function(const struct pci_info *p, bool *ok)
{
	struct json_object *d = new_obj(ok), *cls = new_obj(ok), *id = new_obj(ok);
	struct json_object *regions = json_object_new_array();

	put(ok, d, "bus", json_object_new_int(0));
	put(ok, d, "slot", json_object_new_int((int)p->slot));
	put(ok, d, "function", json_object_new_int((int)p->function));
	put(ok, cls, "class", json_object_new_int((int)(p->class_code >> 8)));
	put(ok, d, "class_info", cls);
	put(ok, id, "device", json_object_new_int(p->device));
	put(ok, id, "vendor", json_object_new_int(p->vendor));
	put(ok, id, "subsystem", json_object_new_int(p->subsys));
	put(ok, id, "subsystem-vendor", json_object_new_int(p->subsys_vendor));
	put(ok, d, "id", id);
	if (p->pin)
		put(ok, d, "irq", json_object_new_int(p->irq));
	put(ok, d, "irq_pin", json_object_new_int(p->pin));
	put(ok, d, "qdev_id", json_object_new_string(""));
	for (unsigned b = 0; b < 6 && regions; b++) {
		if (!p->bars[b].size)
			continue;
		struct json_object *r = new_obj(ok);
		put(ok, r, "bar", json_object_new_int((int)b));
		put(ok, r, "type", json_object_new_string(p->bars[b].io ? "io" : "memory"));
		put(ok, r, "address", json_object_new_int64((int64_t)p->bars[b].addr));
		put(ok, r, "size", json_object_new_int64((int64_t)p->bars[b].size));
		if (!p->bars[b].io) {
			put(ok, r, "prefetch", json_object_new_boolean(false));
			put(ok, r, "mem_type_64", json_object_new_boolean(false));
		}
		append(ok, regions, r);
	}
	if (!regions)
		*ok = false;
	put(ok, d, "regions", regions);
	return d;
}

static int cmd_query_pci(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *bus, *devs;
	struct pci_info info[32];
	unsigned n = s->ctl->pci_devices ? s->ctl->pci_devices(s->ctl->opaque, info, 32) : 0;
	bool ok = list != NULL;

	/* Bus 0 is always there, even with nothing behind it yet. */
	bus = new_obj(&ok);
	devs = json_object_new_array();
	ok = ok && devs;
	for (unsigned i = 0; i < n && i < 32 && ok; i++)
		append(&ok, devs, pci_function(&info[i], &ok));
	put(&ok, bus, "bus", json_object_new_int(0));
	put(&ok, bus, "devices", devs);
	append(&ok, list, bus);
	return finish(ok, list, ret, err);
}

/* BlockInfo (qapi/block-core.json) for a drive with its image inserted. */
static struct json_object *block_entry(const struct drive_info *b, bool *ok)
{
	struct json_object *e = new_obj(ok), *ins = new_obj(ok), *img = new_obj(ok);
	struct json_object *cache = new_obj(ok);
	static const char *const zero_limits[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd",
						   "iops_wr" };

	put(ok, e, "device", json_object_new_string(b->device));
	put(ok, e, "qdev", json_object_new_string(b->qdev));
	put(ok, e, "locked", json_object_new_boolean(false));
	put(ok, e, "removable", json_object_new_boolean(false));
	put(ok, e, "type", json_object_new_string("unknown"));
	put(ok, ins, "file", json_object_new_string(b->file));
	put(ok, ins, "node-name", json_object_new_string(b->node_name));
	put(ok, ins, "ro", json_object_new_boolean(b->readonly));
	put(ok, ins, "drv", json_object_new_string(b->format));
	put(ok, ins, "encrypted", json_object_new_boolean(false));
	put(ok, ins, "detect_zeroes", json_object_new_string("off"));
	for (size_t i = 0; i < sizeof(zero_limits) / sizeof(zero_limits[0]); i++)
		put(ok, ins, zero_limits[i], json_object_new_int(0));
	put(ok, img, "filename", json_object_new_string(b->file));
	put(ok, img, "format", json_object_new_string(b->format));
	put(ok, img, "virtual-size", json_object_new_int64((int64_t)b->virtual_size));
	put(ok, ins, "image", img);
	put(ok, cache, "writeback", json_object_new_boolean(true));
	put(ok, cache, "direct", json_object_new_boolean(b->cache_direct));
	put(ok, cache, "no-flush", json_object_new_boolean(b->cache_no_flush));
	put(ok, ins, "cache", cache);
	put(ok, ins, "write_threshold", json_object_new_int(0));
	put(ok, ins, "backing_file_depth", json_object_new_int(0));
	put(ok, e, "inserted", ins);
	return e;
}

static int cmd_query_block(struct qmp_session *s, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array();
	struct drive_info info[16];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, 16) : 0;
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && i < 16 && ok; i++)
		append(&ok, list, block_entry(&info[i], &ok));
	return finish(ok, list, ret, err);
}

/* BlockDeviceStats (qapi/block-core.json), from the device's accounting. */
static struct json_object *block_stats(const struct drive_info *b, bool *ok)
{
	static const char *const names[BLOCK_ACCT_NR] = { "rd", "wr", "flush", "unmap" };
	static const char *const failed[BLOCK_ACCT_NR] = {
		"failed_rd_operations", "failed_wr_operations", "failed_flush_operations",
		"failed_unmap_operations" };
	static const char *const invalid[BLOCK_ACCT_NR] = {
		"invalid_rd_operations", "invalid_wr_operations", "invalid_flush_operations",
		"invalid_unmap_operations" };
	const struct block_stats *st = &b->stats;
	struct json_object *o = new_obj(ok);
	char key[32];

	for (unsigned t = 0; t < BLOCK_ACCT_NR; t++) {
		if (t != BLOCK_ACCT_FLUSH) {
			snprintf(key, sizeof(key), "%s_bytes", names[t]);
			put(ok, o, key, json_object_new_int64((int64_t)st->bytes[t]));
			snprintf(key, sizeof(key), "%s_merged", names[t]);
			put(ok, o, key, json_object_new_int(0));
		}
		snprintf(key, sizeof(key), "%s_operations", names[t]);
		put(ok, o, key, json_object_new_int64((int64_t)st->ops[t]));
		snprintf(key, sizeof(key), "%s_total_time_ns", names[t]);
		put(ok, o, key, json_object_new_int64((int64_t)st->total_time_ns[t]));
		put(ok, o, failed[t], json_object_new_int64((int64_t)st->failed_ops[t]));
		put(ok, o, invalid[t], json_object_new_int64((int64_t)st->invalid_ops[t]));
	}
	put(ok, o, "wr_highest_offset", json_object_new_int64((int64_t)st->wr_highest_offset));
	if (st->last_access_ns)
		put(ok, o, "idle_time_ns",
		    json_object_new_int64((int64_t)(b->now_ns - st->last_access_ns)));
	/* A device's stats count invalid and failed requests (blockdev.c defaults). */
	put(ok, o, "account_invalid", json_object_new_boolean(1));
	put(ok, o, "account_failed", json_object_new_boolean(1));
	put(ok, o, "timed_stats", json_object_new_array());
	return o;
}

/*
 * query-blockstats: one entry per device, or with query-nodes per node
 * (node-name and stats only).  Kestrel's drives are single nodes: no
 * "parent" protocol layer is reported.
 */
static int cmd_query_blockstats(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *v;
	struct drive_info info[16];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, 16) : 0;
	bool ok = list != NULL, nodes = false;

	if (args && json_object_object_get_ex(args, "query-nodes", &v))
		nodes = json_object_get_boolean(v);
	for (unsigned i = 0; i < n && i < 16 && ok; i++) {
		struct json_object *e = new_obj(&ok);
		if (!nodes) {
			put(&ok, e, "device", json_object_new_string(info[i].device));
			put(&ok, e, "qdev", json_object_new_string(info[i].qdev));
		}
		put(&ok, e, "node-name", json_object_new_string(info[i].node_name));
		put(&ok, e, "stats", block_stats(&info[i], &ok));
		append(&ok, list, e);
	}
	return finish(ok, list, ret, err);
}

static const char *rx_state(bool none, bool all)
{
	return none ? "none" : all ? "all" : "normal";
}

static struct json_object *mac_list(const uint8_t (*macs)[6], unsigned n, bool *ok)
{
	struct json_object *list = json_object_new_array();
	char mac[18];

	if (!list)
		*ok = false;
	/* QAPI_LIST_PREPEND in virtio_net_query_rxfilter: newest first. */
	for (unsigned i = n; i-- > 0;) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", macs[i][0], macs[i][1],
			 macs[i][2], macs[i][3], macs[i][4], macs[i][5]);
		append(ok, list, json_object_new_string(mac));
	}
	return list;
}

/* hw/net/virtio-net.c virtio_net_query_rxfilter, for a device without CTRL_VLAN. */
static struct json_object *rx_filter(const struct net_info *nc, bool *ok)
{
	struct json_object *o = new_obj(ok), *vlans = json_object_new_array();
	const uint8_t (*table)[6] = (const uint8_t (*)[6])nc->mac_table;
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", nc->mac[0], nc->mac[1],
		 nc->mac[2], nc->mac[3], nc->mac[4], nc->mac[5]);
	put(ok, o, "name", json_object_new_string(nc->name));
	put(ok, o, "promiscuous", json_object_new_boolean(nc->promisc));
	put(ok, o, "unicast", json_object_new_string(rx_state(nc->nouni, nc->alluni)));
	put(ok, o, "multicast", json_object_new_string(rx_state(nc->nomulti, nc->allmulti)));
	/* QEMU reports n->nobcast here, under this name: kept as it is. */
	put(ok, o, "broadcast-allowed", json_object_new_boolean(nc->nobcast));
	put(ok, o, "multicast-overflow", json_object_new_boolean(nc->multi_overflow));
	put(ok, o, "unicast-overflow", json_object_new_boolean(nc->uni_overflow));
	put(ok, o, "main-mac", json_object_new_string(mac));
	put(ok, o, "unicast-table", mac_list(table, nc->uni_entries, ok));
	put(ok, o, "multicast-table", mac_list(table + nc->uni_entries, nc->multi_entries, ok));
	/* Without VIRTIO_NET_F_CTRL_VLAN every VLAN passes: all 4096, newest first. */
	put(ok, o, "vlan", json_object_new_string("all"));
	for (int vid = 4095; vid >= 0 && vlans; vid--)
		append(ok, vlans, json_object_new_int(vid));
	put(ok, o, "vlan-table", vlans);
	return o;
}

/* net/net.c qmp_query_rx_filter: every NIC that has a filter, or the one named. */
static int cmd_query_rx_filter(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *v;
	struct net_info *nc = calloc(48, sizeof(*nc));
	unsigned n = nc && s->ctl->net_clients ? s->ctl->net_clients(s->ctl->opaque, nc, 48) : 0;
	const char *name = NULL;
	bool ok = list && nc, found = false;
	int rc;

	if (args && json_object_object_get_ex(args, "name", &v))
		name = json_object_get_string(v);
	for (unsigned i = 0; i < n && i < 48 && ok; i++) {
		if (name && strcmp(nc[i].name, name) != 0)
			continue;
		found = true;
		if (strcmp(nc[i].type, "nic") != 0) {
			if (!name)
				continue;
			json_object_put(list);
			free(nc);
			return qmp_fail(err, "GenericError", "net client(%s) isn't a NIC", name);
		}
		if (!nc[i].rx_filter) {
			if (!name)
				continue;
			json_object_put(list);
			free(nc);
			return qmp_fail(err, "GenericError",
					"net client(%s) doesn't support rx-filter querying", name);
		}
		append(&ok, list, rx_filter(&nc[i], &ok));
	}
	free(nc);
	if (ok && name && !found) {
		json_object_put(list);
		return qmp_fail(err, "GenericError", "invalid net client name: %s", name);
	}
	rc = finish(ok, list, ret, err);
	return rc;
}

/* hw/virtio/virtio-balloon.c: what QEMU says when no balloon device exists. */
static int cmd_no_balloon(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	return qmp_fail(err, "DeviceNotActive", "No balloon device has been activated");
}

/* qmp_balloon: value is the target guest size in bytes (QERR_INVALID_PARAMETER_VALUE for <= 0). */
static int cmd_balloon(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	int64_t value = json_object_get_int64(json_object_object_get(args, "value"));
	char msg[256] = "";

	if (!s->ctl->balloon)
		return cmd_no_balloon(s, args, ret, err);
	if (value <= 0)
		return qmp_fail(err, "GenericError", "Parameter 'target' expects a size");
	if (s->ctl->balloon(s->ctl->opaque, (uint64_t)value, msg, sizeof(msg)) < 0)
		return qmp_fail(err, strstr(msg, "target") ? "GenericError" : "DeviceNotActive", "%s",
				msg);
	return 0;
}

/* BalloonInfo: {"actual": bytes}. */
static int cmd_query_balloon(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	uint64_t actual;
	char msg[256] = "";
	bool ok = true;

	if (!s->ctl->query_balloon)
		return cmd_no_balloon(s, args, ret, err);
	if (s->ctl->query_balloon(s->ctl->opaque, &actual, msg, sizeof(msg)) < 0)
		return qmp_fail(err, "DeviceNotActive", "%s", msg);
	*ret = new_obj(&ok);
	put(&ok, *ret, "actual", json_object_new_int64((int64_t)actual));
	return finish(ok, *ret, ret, err);
}

/* hw/virtio/virtio-balloon.c balloon_stat_names, in tag order. */
static const char *const balloon_stat_names[CONTROL_BALLOON_STATS] = {
	"stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
	"stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
	"stat-htlb-pgalloc", "stat-htlb-pgfail",
};

/* qom-get: only the balloon's guest-stats properties are modelled. */
static int cmd_qom_get(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	const char *path = json_object_get_string(json_object_object_get(args, "path"));
	const char *prop = json_object_get_string(json_object_object_get(args, "property"));
	struct balloon_stats_info info;
	struct json_object *stats;
	bool ok = true;

	if (!s->ctl->balloon_stats || !s->ctl->balloon_stats(s->ctl->opaque, path, &info))
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", path);
	if (!strcmp(prop, "guest-stats-polling-interval")) {
		*ret = json_object_new_int64((int64_t)info.polling_interval);
		return *ret ? 0 : qmp_oom(err);
	}
	if (strcmp(prop, "guest-stats"))
		return qmp_fail(err, "GenericError", "Property 'virtio-balloon-pci.%s' not found",
				prop);
	*ret = new_obj(&ok);
	stats = new_obj(&ok);
	for (unsigned i = 0; i < CONTROL_BALLOON_STATS; i++)
		put(&ok, stats, balloon_stat_names[i], json_object_new_uint64(info.stats[i]));
	put(&ok, *ret, "stats", stats);
	put(&ok, *ret, "last-update", json_object_new_int64(info.last_update));
	return finish(ok, *ret, ret, err);
}

static int cmd_qom_set(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	const char *path = json_object_get_string(json_object_object_get(args, "path"));
	const char *prop = json_object_get_string(json_object_object_get(args, "property"));
	struct json_object *v = json_object_object_get(args, "value");
	struct balloon_stats_info info;
	int64_t n;

	if (!s->ctl->balloon_stats || !s->ctl->balloon_stats(s->ctl->opaque, path, &info))
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", path);
	if (strcmp(prop, "guest-stats-polling-interval"))
		return qmp_fail(err, "GenericError", "Property 'virtio-balloon-pci.%s' not found",
				prop);
	if (!json_object_is_type(v, json_type_int))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for '%s', expected: integer", prop);
	n = json_object_get_int64(v);
	if (n < 0)
		return qmp_fail(err, "GenericError", "timer value must be greater than zero");
	if (n > UINT32_MAX)
		return qmp_fail(err, "GenericError", "timer value is too big");
	s->ctl->balloon_set_interval(s->ctl->opaque, path, (uint64_t)n);
	return 0;
}

/*
 * MachineInfo as of 7.2 ('acpi' came in 8.0), for the one machine we are:
 * QEMU's default, pc-i440fx-7.2 alias pc (-M accepts both).  The default CPU
 * is the host model because that is what Kestrel's vCPUs get without -cpu,
 * and CPUs cannot be hot-plugged (there is no device_add).
 */
static int cmd_query_machines(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *m;
	bool ok = list != NULL;

	m = new_obj(&ok);
	put(&ok, m, "name", json_object_new_string("pc-i440fx-7.2"));
	put(&ok, m, "alias", json_object_new_string("pc"));
	put(&ok, m, "is-default", json_object_new_boolean(1));
	put(&ok, m, "cpu-max", json_object_new_int(VM_MAX_CPUS));
	put(&ok, m, "hotpluggable-cpus", json_object_new_boolean(0));
	put(&ok, m, "numa-mem-supported", json_object_new_boolean(0));
	put(&ok, m, "deprecated", json_object_new_boolean(0));
	put(&ok, m, "default-cpu-type", json_object_new_string("host-x86_64-cpu"));
	put(&ok, m, "default-ram-id", json_object_new_string("pc.ram"));
	append(&ok, list, m);
	return finish(ok, list, ret, err);
}

/*
 * CpuDefinitionInfo as target/i386/cpu.c x86_cpu_definition_entry fills it:
 * x86 always reports unavailable-features, empty for host and max under KVM.
 */
static int cmd_query_cpu_definitions(struct qmp_session *s, struct json_object *args,
				     struct json_object **ret, struct qmp_error *err)
{
	static const char *const models[][2] = {
		{ "host", "host-x86_64-cpu" },
		{ "max", "max-x86_64-cpu" },
	};
	struct json_object *list = json_object_new_array(), *d;
	bool ok = list != NULL;

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		d = new_obj(&ok);
		put(&ok, d, "name", json_object_new_string(models[i][0]));
		put(&ok, d, "migration-safe", json_object_new_boolean(0));
		put(&ok, d, "static", json_object_new_boolean(0));
		put(&ok, d, "unavailable-features", json_object_new_array());
		put(&ok, d, "typename", json_object_new_string(models[i][1]));
		put(&ok, d, "deprecated", json_object_new_boolean(0));
		append(&ok, list, d);
	}
	return finish(ok, list, ret, err);
}

static int cmd_stop(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->stop, err);
}

static int cmd_cont(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->cont, err);
}

static int cmd_system_reset(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->system_reset, err);
}

static int cmd_system_powerdown(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->system_powerdown, err);
}

/* QEMU answers {} and only then shuts down (SHUTDOWN reason host-qmp-quit). */
static int cmd_quit(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	if (s->ctl->quit)
		s->ctl->quit(s->ctl->opaque);
	return 0;
}

/*
 * monitor/hmp.c qmp_human_monitor_command: the text HMP printed, "\r\n" line
 * ends and its own error messages included, is the successful result.
 */
static int cmd_human_monitor_command(struct qmp_session *s, struct json_object *args,
				     struct json_object **ret, struct qmp_error *err)
{
	const char *line = json_object_get_string(json_object_object_get(args, "command-line"));
	struct json_object *cpu;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	if (json_object_object_get_ex(args, "cpu-index", &cpu)) {
		int64_t index = json_object_get_int64(cpu);
		unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;

		/* QERR_INVALID_PARAMETER_VALUE, as monitor_set_cpu failing gives. */
		if (index < 0 || (uint64_t)index >= n)
			return qmp_fail(err, "GenericError",
					"Parameter 'cpu-index' expects a CPU number");
	}
	out = open_memstream(&text, &len);
	if (!out)
		return qmp_oom(err);
	/* Its -1 (unknown command, bad arguments) is reported in the text. */
	(void)hmp_run_line(s->ctl, line, out);
	if (fclose(out) != 0 || len > INT_MAX) {
		free(text);
		return qmp_oom(err);
	}
	*ret = json_object_new_string_len(text ? text : "", (int)len);
	free(text);
	return *ret ? 0 : qmp_oom(err);
}

/* net/net.c qmp_set_link and softmmu/qdev-monitor.c find_device_state. */
static int cmd_set_link(struct qmp_session *s, struct json_object *args,
			struct json_object **ret, struct qmp_error *err)
{
	return qmp_fail(err, "DeviceNotFound", "Device '%s' not found",
			json_object_get_string(json_object_object_get(args, "name")));
}

static int cmd_device_del(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	return qmp_fail(err, "DeviceNotFound", "Device '%s' not found",
			json_object_get_string(json_object_object_get(args, "id")));
}

static const struct qmp_arg caps_args[] = {
	{ "enable", QMP_ARG_CAPS, true },
	{ NULL, 0, false },
};
static const struct qmp_arg balloon_args[] = {
	{ "value", QMP_ARG_INT, false },
	{ NULL, 0, false },
};
static const struct qmp_arg qom_get_args[] = {
	{ "path", QMP_ARG_STR, false },
	{ "property", QMP_ARG_STR, false },
	{ NULL, 0, false },
};
static const struct qmp_arg qom_set_args[] = {
	{ "path", QMP_ARG_STR, false },
	{ "property", QMP_ARG_STR, false },
	{ "value", QMP_ARG_ANY, false },
	{ NULL, 0, false },
};
static const struct qmp_arg hmp_args[] = {
	{ "command-line", QMP_ARG_STR, false },
	{ "cpu-index", QMP_ARG_INT, true },
	{ NULL, 0, false },
};
static const struct qmp_arg set_link_args[] = {
	{ "name", QMP_ARG_STR, false },
	{ "up", QMP_ARG_BOOL, false },
	{ NULL, 0, false },
};
static const struct qmp_arg blockstats_args[] = {
	{ "query-nodes", QMP_ARG_BOOL, true },
	{ NULL, 0, false },
};
static const struct qmp_arg rx_filter_args[] = {
	{ "name", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
static const struct qmp_arg device_del_args[] = {
	{ "id", QMP_ARG_STR, false },
	{ NULL, 0, false },
};

static const struct qmp_command qmp_commands[] = {
	{ "qmp_capabilities", cmd_qmp_capabilities, caps_args },
	{ "query-version", cmd_query_version, NULL },
	{ "query-commands", cmd_query_commands, NULL },
	{ "query-status", cmd_query_status, NULL },
	{ "query-name", cmd_query_name, NULL },
	{ "query-uuid", cmd_query_uuid, NULL },
	{ "query-kvm", cmd_query_kvm, NULL },
	{ "query-cpus-fast", cmd_query_cpus_fast, NULL },
	{ "query-block", cmd_query_block, NULL },
	{ "query-blockstats", cmd_query_blockstats, blockstats_args },
	{ "query-rx-filter", cmd_query_rx_filter, rx_filter_args },
	{ "query-chardev", cmd_query_chardev, NULL },
	{ "query-pci", cmd_query_pci, NULL },
	{ "query-balloon", cmd_query_balloon, NULL },
	{ "query-migrate", cmd_empty_object, NULL },
	{ "query-machines", cmd_query_machines, NULL },
	{ "query-cpu-definitions", cmd_query_cpu_definitions, NULL },
	{ "stop", cmd_stop, NULL },
	{ "cont", cmd_cont, NULL },
	{ "system_reset", cmd_system_reset, NULL },
	{ "system_powerdown", cmd_system_powerdown, NULL },
	{ "quit", cmd_quit, NULL },
	{ "balloon", cmd_balloon, balloon_args },
	{ "human-monitor-command", cmd_human_monitor_command, hmp_args },
	{ "set_link", cmd_set_link, set_link_args },
	{ "device_del", cmd_device_del, device_del_args },
	{ "qom-get", cmd_qom_get, qom_get_args },
	{ "qom-set", cmd_qom_set, qom_set_args },
	{ NULL, NULL, NULL },
};

static const struct qmp_command *qmp_command_table(void)
{
	return qmp_commands;
}

/* -------------------------------------------------------------------------- */
/* Dispatch (qapi/qmp-dispatch.c, monitor/qmp.c)                              */

/* Before negotiation only qmp_capabilities exists (qmp_cap_negotiation_commands). */
static const struct qmp_command *qmp_find(const struct qmp_session *s, const char *name)
{
	for (const struct qmp_command *cmd = qmp_commands; cmd->name; cmd++) {
		if (strcmp(cmd->name, name) != 0)
			continue;
		if (!s->negotiated && cmd->fn != cmd_qmp_capabilities)
			return NULL;
		return cmd;
	}
	return NULL;
}

/* What the qobject input visitor accepts for each type, with its error text. */
static int check_type(const struct qmp_arg *a, struct json_object *v, struct qmp_error *err)
{
	static const char *const type_name[] = {
		[QMP_ARG_STR] = "string", [QMP_ARG_INT] = "integer",
		[QMP_ARG_BOOL] = "boolean", [QMP_ARG_CAPS] = "array", [QMP_ARG_ANY] = "any",
	};
	struct json_object *e;
	bool ok = false;

	switch (a->type) {
	case QMP_ARG_STR:
		ok = json_object_is_type(v, json_type_string);
		break;
	case QMP_ARG_INT:
		/* 'int' is int64: a uint64 past INT64_MAX is out of its range. */
		ok = json_object_is_type(v, json_type_int) &&
		     !(json_object_get_int64(v) == INT64_MAX &&
		       json_object_get_uint64(v) > (uint64_t)INT64_MAX);
		break;
	case QMP_ARG_BOOL:
		ok = json_object_is_type(v, json_type_boolean);
		break;
	case QMP_ARG_ANY:
		ok = true;
		break;
	case QMP_ARG_CAPS:
		ok = json_object_is_type(v, json_type_array);
		for (size_t i = 0; ok && i < json_object_array_length(v); i++) {
			e = json_object_array_get_idx(v, i);
			if (!json_object_is_type(e, json_type_string))
				return qmp_fail(err, "GenericError",
						"Invalid parameter type for '%s[%zu]', expected: string",
						a->name, i);
			if (strcmp(json_object_get_string(e), "oob") != 0)
				return qmp_fail(err, "GenericError",
						"Parameter '%s[%zu]' does not accept value '%s'",
						a->name, i, json_object_get_string(e));
		}
		break;
	}
	if (!ok)
		return qmp_fail(err, "GenericError", "Invalid parameter type for '%s', expected: %s",
				a->name, type_name[a->type]);
	return 0;
}

/*
 * The generated marshallers visit members in schema order (missing or
 * mistyped: the first one fails), then reject whatever is left over.
 */
static int check_args(const struct qmp_arg *spec, struct json_object *args,
		      struct qmp_error *err)
{
	struct json_object *v;
	const struct qmp_arg *a;

	for (a = spec; a && a->name; a++) {
		if (!json_object_object_get_ex(args, a->name, &v)) {
			if (a->optional)
				continue;
			return qmp_fail(err, "GenericError", "Parameter '%s' is missing", a->name);
		}
		if (check_type(a, v, err) < 0)
			return -1;
	}
	if (!args)
		return 0;
	json_object_object_foreach(args, key, val) {
		for (a = spec; a && a->name && strcmp(a->name, key) != 0; a++)
			;
		if (!a || !a->name)
			return qmp_fail(err, "GenericError", "Parameter '%s' is unexpected", key);
	}
	return 0;
}

static int qmp_dispatch(struct qmp_session *s, struct json_object *req,
			struct json_object **ret, struct qmp_error *err)
{
	const char *exec_key = NULL, *name;
	struct json_object *args = NULL;
	const struct qmp_command *cmd;

	/* qmp_dispatch_check_obj; json-c keeps members in input order. */
	json_object_object_foreach(req, key, val) {
		if (!strcmp(key, "execute") || (s->oob && !strcmp(key, "exec-oob"))) {
			if (!json_object_is_type(val, json_type_string))
				return qmp_fail(err, "GenericError",
						"QMP input member '%s' must be a string", key);
			if (exec_key)
				return qmp_fail(err, "GenericError",
						"QMP input member '%s' clashes with '%s'", key, exec_key);
			exec_key = key;
		} else if (!strcmp(key, "arguments")) {
			if (!json_object_is_type(val, json_type_object))
				return qmp_fail(err, "GenericError",
						"QMP input member 'arguments' must be an object");
			args = val;
		} else if (strcmp(key, "id") != 0) {
			return qmp_fail(err, "GenericError", "QMP input member '%s' is unexpected", key);
		}
	}
	if (!exec_key)
		return qmp_fail(err, "GenericError", "QMP input lacks member 'execute'");
	name = json_object_get_string(json_object_object_get(req, exec_key));
	cmd = qmp_find(s, name);
	if (!cmd)
		return qmp_fail(err, "CommandNotFound", "The command %s has not been found", name);
	/* No command here is QCO_ALLOW_OOB. */
	if (strcmp(exec_key, "exec-oob") == 0)
		return qmp_fail(err, "GenericError", "The command %s does not support OOB", name);
	if (check_args(cmd->args, args, err) < 0)
		return -1;
	return cmd->fn(s, args, ret, err);
}

/*
 * What QEMU's JSON parser refuses and json-c lets through: "\u0000" inside
 * strings, bytes that are not UTF-8, and numbers that overflow to infinity
 * (or json-c's NaN and Infinity literals), none of which we could echo back.
 */
static const char *json_check(struct json_object *o)
{
	const char *why;
	size_t n;

	switch (json_object_get_type(o)) {
	case json_type_string:
		n = (size_t)json_object_get_string_len(o);
		if (memchr(json_object_get_string(o), '\0', n))
			return "\\u0000 is not supported";
		if (!utf8_valid(json_object_get_string(o), n))
			return "invalid UTF-8 sequence in string";
		return NULL;
	case json_type_double:
		return isfinite(json_object_get_double(o)) ? NULL : "number out of range";
	case json_type_array:
		n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++) {
			why = json_check(json_object_array_get_idx(o, i));
			if (why)
				return why;
		}
		return NULL;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			if (!utf8_valid(key, strlen(key)))
				return "invalid UTF-8 sequence in string";
			why = json_check(val);
			if (why)
				return why;
		}
		return NULL;
	}
	default:
		return NULL;
	}
}

static void qmp_handle(struct qmp_session *s, struct json_object *req)
{
	struct qmp_error err = { 0 };
	struct json_object *ret = NULL, *id = NULL;
	bool negotiating = !s->negotiated, has_id;
	const char *why = json_check(req);

	if (why) {
		qmp_input_error(s, "JSON parse error, %s", why);
		return;
	}
	if (!json_object_is_type(req, json_type_object)) {
		qmp_input_error(s, "QMP input must be a JSON object");
		return;
	}
	has_id = json_object_object_get_ex(req, "id", &id);
	if (qmp_dispatch(s, req, &ret, &err) < 0) {
		json_object_put(ret);
		ret = NULL;
		/* monitor_qmp_dispatch: point a client that skipped negotiation at it. */
		if (negotiating && err.cls && !strcmp(err.cls, "CommandNotFound"))
			qmp_fail(&err, "CommandNotFound",
				 "Expecting capabilities negotiation with 'qmp_capabilities'");
	}
	qmp_respond(s, ret, &err, has_id, id);
	free(err.desc);
}

/* -------------------------------------------------------------------------- */
/* Input                                                                      */

/*
 * qmp-spec.txt "Forcing the JSON parser into known-good state": an ASCII
 * control character other than tab, CR and LF, or 0xFE/0xFF (never in UTF-8),
 * is a lexical error anywhere and resets the parser, as in QEMU's lexer.
 */
static bool reset_byte(uint8_t c)
{
	return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c >= 0xFE;
}

static bool json_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void scan_byte(struct qmp_scan *sc, uint8_t c)
{
	if (sc->quote) {
		if (sc->escape)
			sc->escape = false;
		else if (c == '\\')
			sc->escape = true;
		else if (c == (uint8_t)sc->quote)
			sc->quote = 0;
	} else if (c == '"' || c == '\'') {
		sc->quote = (char)c;
	} else if (c == '{' || c == '[') {
		sc->depth++;
	} else if ((c == '}' || c == ']') && sc->depth) {
		sc->depth--;
	} else if (c == ':') {
		sc->colons++;
	}
}

/* scan_byte over p[0..n), keeping the text of the string being read for errors. */
static void scan_bytes(struct qmp_session *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool was_in = s->scan.quote;

		scan_byte(&s->scan, p[i]);
		if (!was_in && s->scan.quote)
			s->strtext.len = 0;
		if (was_in || s->scan.quote)
			buf_add(&s->strtext, (const char *)p + i, 1);
	}
}

/*
 * QEMU's lexer (qobject/json-lexer.c) takes no control character inside a
 * string, tab, CR and LF included: a line cut short inside a string is a
 * lexical error at its newline, and the next line starts afresh.  Returns the
 * index of the first such byte in p[0..n), or n.
 */
static size_t string_breaks_at(const struct qmp_scan *scan, const uint8_t *p, size_t n)
{
	struct qmp_scan sc = *scan;

	for (size_t i = 0; i < n; i++) {
		if (sc.quote && p[i] < 0x20)
			return i;
		scan_byte(&sc, p[i]);
	}
	return n;
}

/* Members of every object in o, to tell a duplicate key (one ':' too many). */
static size_t json_members(struct json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			n += json_members(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			(void)key;
			n += 1 + json_members(val);
		}
	}
	return n;
}

static bool scan_outside(const struct qmp_scan *sc)
{
	return !sc->quote && !sc->depth;
}

static void parser_reset(struct qmp_session *s, enum qmp_input_mode mode)
{
	json_tokener_reset(s->tok);
	s->msg_len = 0;
	s->mode = mode;
	if (mode != QMP_SKIP)
		s->scan = (struct qmp_scan){ 0 };
	s->scan.colons = 0;
	s->strtext.len = 0;
	s->strtext.failed = false;
	if (s->strtext.cap > 4096) {	/* a long string is over: give its copy back */
		free(s->strtext.data);
		s->strtext = (struct qmp_buf){ 0 };
	}
}

/* A string cut by a control character: QEMU's "stray" error with the token text. */
static size_t input_broken_string(struct qmp_session *s, uint8_t c)
{
	buf_add(&s->strtext, (const char *)&c, 1);
	if (s->strtext.failed)
		qmp_input_error(s, "JSON parse error, stray string");
	else
		qmp_input_error(s, "JSON parse error, stray '%.*s'", (int)s->strtext.len,
				s->strtext.data);
	parser_reset(s, QMP_PARSE);
	return 1;
}

/* A whole message: refused if it repeats a key (json-c keeps the last one). */
static void input_message(struct qmp_session *s, struct json_object *obj, size_t colons)
{
	if (json_members(obj) != colons)
		qmp_input_error(s, "JSON parse error, duplicate key");
	else
		qmp_handle(s, obj);
}

/* A well-formed message broke a limit: drop the rest of it, if there is a rest. */
static void input_limit(struct qmp_session *s, const char *desc)
{
	qmp_input_error(s, "%s", desc);
	parser_reset(s, scan_outside(&s->scan) ? QMP_RECOVER : QMP_SKIP);
}

static size_t input_parse(struct qmp_session *s, const uint8_t *p, size_t n)
{
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t i = 0, feed, end, colons;

	if (s->msg_len == 0) {
		while (i < n && json_space(p[i]))
			i++;
		if (i)
			return i;
	}
	if (s->msg_len == QMP_MAX_MESSAGE) {
		input_limit(s, "JSON message size limit exceeded");
		return 0;
	}
	feed = QMP_MAX_MESSAGE - s->msg_len;
	if (feed > n)
		feed = n;
	feed = string_breaks_at(&s->scan, p, feed);
	if (feed == 0)
		return input_broken_string(s, p[0]);
	obj = json_tokener_parse_ex(s->tok, (const char *)p, (int)feed);
	jerr = json_tokener_get_error(s->tok);
	end = json_tokener_get_parse_end(s->tok);
	if (end > feed)
		end = feed;
	switch (jerr) {
	case json_tokener_continue:
		scan_bytes(s, p, feed);
		s->msg_len += feed;
		return feed;
	case json_tokener_success:
		/* end may be 0: a number or literal ended by this byte. */
		scan_bytes(s, p, end);
		colons = s->scan.colons;
		parser_reset(s, QMP_PARSE);
		input_message(s, obj, colons);
		json_object_put(obj);
		return end;
	case json_tokener_error_depth:
		end = end < feed ? end + 1 : feed;
		for (i = 0; i < end; i++)
			scan_byte(&s->scan, p[i]);
		input_limit(s, "JSON nesting depth limit exceeded");
		return end;
	default:
		json_object_put(obj);
		qmp_input_error(s, "JSON parse error, %s", json_tokener_error_desc(jerr));
		parser_reset(s, QMP_RECOVER);
		return end < feed ? end + 1 : feed;
	}
}

/*
 * Takes what it can of p[0..n), which holds no reset byte.  Returns 0 only
 * when it changed state instead (mode, or a message ended by lookahead), so
 * the caller's loop always moves on.
 */
static size_t input_consume(struct qmp_session *s, const uint8_t *p, size_t n)
{
	const uint8_t *brace;
	size_t i;

	switch (s->mode) {
	case QMP_RECOVER:
		brace = memchr(p, '{', n);
		if (!brace)
			return n;
		parser_reset(s, QMP_PARSE);
		return (size_t)(brace - p);
	case QMP_SKIP:
		for (i = 0; i < n;) {
			scan_byte(&s->scan, p[i++]);
			if (scan_outside(&s->scan)) {
				parser_reset(s, QMP_PARSE);
				break;
			}
		}
		return i;
	default:
		return input_parse(s, p, n);
	}
}

static void session_destroy(struct qmp_session *s)
{
	free(s->strtext.data);
	json_tokener_free(s->tok);
	free(s);
}

void qmp_session_input(struct qmp_session *s, const uint8_t *buf, size_t len)
{
	size_t i = 0, stop = 0;

	if (!s)
		return;
	s->busy++;
	while (i < len && !s->doomed) {
		if (i >= stop) {
			if (reset_byte(buf[i])) {
				/* What follows is the rest of a broken message, or
				 * the client's fresh start: resume at its '{'. */
				qmp_input_error(s, "JSON parse error, stray byte 0x%02x", buf[i]);
				parser_reset(s, QMP_RECOVER);
				i++;
				continue;
			}
			for (stop = i; stop < len && !reset_byte(buf[stop]); stop++)
				;
		}
		i += input_consume(s, buf + i, stop - i);
	}
	if (--s->busy == 0 && s->doomed)
		session_destroy(s);
}

/* -------------------------------------------------------------------------- */
/* Sessions and events                                                        */

struct qmp_session *qmp_session_new(const struct control *ctl, qmp_write_fn write, void *opaque)
{
	struct qmp_session *s = calloc(1, sizeof(*s));
	struct json_object *greeting, *qmp, *caps;
	bool ok = true;

	if (!s)
		return NULL;
	s->ctl = ctl;
	s->write = write;
	s->opaque = opaque;
	/* json-c's depth counts the outermost container: 64 allows 64 levels. */
	s->tok = json_tokener_new_ex(QMP_MAX_DEPTH);
	if (!s->tok) {
		free(s);
		return NULL;
	}

	/* monitor/qmp.c qmp_greeting; "oob" as QEMU offers it on every QMP monitor
	 * that can run commands out of band (ours simply has none that do). */
	greeting = new_obj(&ok);
	qmp = new_obj(&ok);
	caps = json_object_new_array();
	append(&ok, caps, json_object_new_string("oob"));
	put(&ok, qmp, "version", version_info());
	put(&ok, qmp, "capabilities", caps);
	put(&ok, greeting, "QMP", qmp);
	s->busy++;
	if (ok)
		qmp_send(s, greeting, NULL);
	json_object_put(greeting);
	if (--s->busy == 0 && s->doomed) {
		session_destroy(s);
		return NULL;
	}
	if (!ok) {
		session_destroy(s);
		return NULL;
	}
	return s;
}

void qmp_session_free(struct qmp_session *s)
{
	if (!s)
		return;
	if (s->busy) {
		s->doomed = true;
		return;
	}
	session_destroy(s);
}

/* qapi/qmp-event.c qmp_event_build_dict; QEMU stamps events with g_get_real_time. */
void qmp_session_event(struct qmp_session *s, const char *event, struct json_object *data)
{
	struct json_object *msg, *stamp;
	struct timespec now;
	bool ok = true;

	if (!s || !event || !s->negotiated || s->doomed)
		return;
	if (clock_gettime(CLOCK_REALTIME, &now) < 0)
		now = (struct timespec){ 0 };
	msg = new_obj(&ok);
	stamp = new_obj(&ok);
	put(&ok, stamp, "seconds", json_object_new_int64((int64_t)now.tv_sec));
	put(&ok, stamp, "microseconds", json_object_new_int64(now.tv_nsec / 1000));
	put(&ok, msg, "timestamp", stamp);
	put(&ok, msg, "event", json_object_new_string(event));
	if (data)
		put(&ok, msg, "data", json_object_get(data));
	s->busy++;
	/* An event that cannot be built is dropped: there is nothing to answer. */
	if (ok)
		qmp_send(s, msg, NULL);
	json_object_put(msg);
	if (--s->busy == 0 && s->doomed)
		session_destroy(s);
}
