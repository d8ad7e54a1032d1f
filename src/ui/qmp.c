/*
 * QMP for one client, as QEMU 7.2 speaks it (docs/interop/qmp-spec.txt): the
 * session, its framing and the greeting, capabilities negotiation, command
 * dispatch with QEMU's error classes and wording, and events; the commands
 * themselves are in qmp_cmds.c.  JSON comes in through json-c's streaming
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

#include "ui/qmp_int.h"
#include "util/json_write.h"
#include "util/utf8.h"

/*
 * Per-message limits.  QEMU's are 64 MiB of tokens and 1024 levels
 * (qobject/json-streamer.c); no command here takes more than a short string,
 * so ours are far tighter and bound what one client can make us allocate.
 */
#define QMP_MAX_MESSAGE (1u << 20)
#define QMP_MAX_DEPTH 64

static const char qmp_oom_reply[] =
	"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Out of memory\"}}\r\n";

/* -------------------------------------------------------------------------- */
/* Errors and object building                                                 */

int qmp_fail(struct qmp_error *err, const char *cls, const char *fmt, ...)
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

int qmp_oom(struct qmp_error *err)
{
	return qmp_fail(err, "GenericError", "Out of memory");
}

struct json_object *qmp_new_obj(bool *ok)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		*ok = false;
	return o;
}

void qmp_put(bool *ok, struct json_object *obj, const char *key, struct json_object *val)
{
	if (!obj || !val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		*ok = false;
	}
}

void qmp_append(bool *ok, struct json_object *arr, struct json_object *val)
{
	if (!arr || !val || json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		*ok = false;
	}
}

int qmp_finish(bool ok, struct json_object *obj, struct json_object **ret, struct qmp_error *err)
{
	if (!ok || !obj) {
		/* A builder may have parked obj in *ret already: never hand it back freed. */
		json_object_put(obj);
		*ret = NULL;
		return qmp_oom(err);
	}
	*ret = obj;
	return 0;
}

/* -------------------------------------------------------------------------- */
/* Output: QEMU's JSON writer (qobject/json-writer.c, non-pretty) over json-c  */
/* values, through util/json_write (strings, QDict member order)             */

static void json_write(struct json_buf *b, struct json_object *o);

static void write_object(struct json_buf *b, struct json_object *o)
{
	size_t n = (size_t)json_object_object_length(o), i = 0;
	struct json_member *m;

	if (n == 0) {
		json_buf_add(b, "{}", 2);
		return;
	}
	m = calloc(n, sizeof(*m));
	if (!m) {
		b->failed = true;
		return;
	}
	json_object_object_foreach(o, key, val) {
		m[i++] = (struct json_member){ .key = key, .val = val };
	}
	json_qdict_sort(m, n);
	json_buf_add(b, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			json_buf_add(b, ", ", 2);
		json_write_string(b, m[i].key, strlen(m[i].key));
		json_buf_add(b, ": ", 2);
		json_write(b, (struct json_object *)m[i].val);
	}
	json_buf_add(b, "}", 1);
	free(m);
}

static void json_write(struct json_buf *b, struct json_object *o)
{
	char num[32];
	int64_t i;
	size_t n;
	double d;

	switch (json_object_get_type(o)) {
	case json_type_null:
		json_buf_str(b, "null");
		break;
	case json_type_boolean:
		json_buf_str(b, json_object_get_boolean(o) ? "true" : "false");
		break;
	case json_type_int:
		/* json-c keeps values past INT64_MAX as uint64, as QEMU's QNum does. */
		i = json_object_get_int64(o);
		if (i == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX)
			snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(o));
		else
			snprintf(num, sizeof(num), "%" PRId64, i);
		json_buf_str(b, num);
		break;
	case json_type_double:
		/* qobject/qnum.c qnum_to_string: 17 digits round-trip any double. */
		d = json_object_get_double(o);
		if (isfinite(d))
			snprintf(num, sizeof(num), "%.17g", d);
		else
			snprintf(num, sizeof(num), "null");
		json_buf_str(b, num);
		break;
	case json_type_string:
		json_write_string(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		break;
	case json_type_array:
		n = json_object_array_length(o);
		if (n == 0) {
			json_buf_add(b, "[]", 2);
			break;
		}
		json_buf_add(b, "[", 1);
		for (size_t k = 0; k < n; k++) {
			if (k)
				json_buf_add(b, ", ", 2);
			json_write(b, json_object_array_get_idx(o, k));
		}
		json_buf_add(b, "]", 1);
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
	struct json_buf b = { 0 };

	if (s->doomed)
		return;
	if (msg) {
		json_write(&b, msg);
		json_buf_add(&b, "\r\n", 2);
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

	rsp = qmp_new_obj(&ok);
	if (err->cls) {
		e = qmp_new_obj(&ok);
		qmp_put(&ok, e, "class", json_object_new_string(err->cls));
		qmp_put(&ok, e, "desc", json_object_new_string(err->desc ? err->desc : "Out of memory"));
		qmp_put(&ok, rsp, "error", e);
		json_object_put(ret);
	} else {
		qmp_put(&ok, rsp, "return", ret ? ret : json_object_new_object());
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
/* Dispatch (qapi/qmp-dispatch.c, monitor/qmp.c)                              */

/* Before negotiation only qmp_capabilities exists (qmp_cap_negotiation_commands). */
static const struct qmp_command *qmp_find(const struct qmp_session *s, const char *name)
{
	for (const struct qmp_command *cmd = qmp_command_table(); cmd->name; cmd++) {
		if (strcmp(cmd->name, name) != 0)
			continue;
		if (!s->negotiated && strcmp(cmd->name, "qmp_capabilities") != 0)
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
			json_buf_add(&s->strtext, (const char *)p + i, 1);
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
		s->strtext = (struct json_buf){ 0 };
	}
}

/* A string cut by a control character: QEMU's "stray" error with the token text. */
static size_t input_broken_string(struct qmp_session *s, uint8_t c)
{
	json_buf_add(&s->strtext, (const char *)&c, 1);
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
	qmp_session_fds_close(s);
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

void qmp_session_set_fd_source(struct qmp_session *s, int (*take_fd)(void *opaque),
			       void *opaque)
{
	s->take_fd = take_fd;
	s->fd_opaque = opaque;
}

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
	greeting = qmp_new_obj(&ok);
	qmp = qmp_new_obj(&ok);
	caps = json_object_new_array();
	qmp_append(&ok, caps, json_object_new_string("oob"));
	qmp_put(&ok, qmp, "version", qmp_version_info());
	qmp_put(&ok, qmp, "capabilities", caps);
	qmp_put(&ok, greeting, "QMP", qmp);
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
	msg = qmp_new_obj(&ok);
	stamp = qmp_new_obj(&ok);
	qmp_put(&ok, stamp, "seconds", json_object_new_int64((int64_t)now.tv_sec));
	qmp_put(&ok, stamp, "microseconds", json_object_new_int64(now.tv_nsec / 1000));
	qmp_put(&ok, msg, "timestamp", stamp);
	qmp_put(&ok, msg, "event", json_object_new_string(event));
	if (data)
		qmp_put(&ok, msg, "data", json_object_get(data));
	s->busy++;
	/* An event that cannot be built is dropped: there is nothing to answer. */
	if (ok)
		qmp_send(s, msg, NULL);
	json_object_put(msg);
	if (--s->busy == 0 && s->doomed)
		session_destroy(s);
}

