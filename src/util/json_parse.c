/*
 * JSON as QEMU reads it (qobject_from_json): a lexer with QEMU's states and
 * error recovery, the streamer's framing (a value is complete when its
 * brackets balance; a stray token is an error of its own) and the
 * recursive parser with QEMU's messages.  Only the first error is kept, as
 * in QEMU, so the messages match qemu-img's word for word.
 */
#include "util/json_parse.h"
#include "util/opts.h"
#include "util/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok_type { T_LCURLY, T_RCURLY, T_LSQUARE, T_RSQUARE, T_COLON, T_COMMA,
		T_INTEGER, T_FLOAT, T_KEYWORD, T_STRING, T_ERROR };

struct token {
	enum tok_type type;
	const char *start;
	size_t len;
};

/* Token limits of QEMU's streamer (json-streamer.c). */
#define MAX_TOKEN_COUNT (2u << 20)

struct parser {
	struct token *toks;
	size_t ntoks, pos;
	char err[256];
	bool failed;
};

static void perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(struct parser *p, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (p->failed)
		return;		/* QEMU keeps the first error */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, sizeof(p->err), "JSON parse error, %s", msg);
	p->failed = true;
}

/* --- lexer: one token from *pp, QEMU's json_lexer[] table written out --- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * Scans a number starting at s; returns its length and type, or 0 and in
 * *bad the length of the error token (which includes the offending byte,
 * or ends at the end of input).
 */
static size_t lex_number(const char *s, const char *end, enum tok_type *type, size_t *bad)
{
	const char *p = s;

	*type = T_INTEGER;
	if (*p == '-')
		p++;
	if (p == end || !is_digit(*p))
		goto error;
	if (*p == '0') {
		p++;
		if (p < end && is_digit(*p))
			goto error;
	} else {
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && *p == '.') {
		*type = T_FLOAT;
		p++;
		if (p == end || !is_digit(*p))
			goto error;
		while (p < end && is_digit(*p))
			p++;
	}
	/* QEMU's IN_ZERO takes no exponent: "0e1" is "0" then keyword "e". */
	if (p < end && (*p == 'e' || *p == 'E') && !(p - s == 1 + (*s == '-') && p[-1] == '0')) {
		*type = T_FLOAT;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			goto error;
		while (p < end && is_digit(*p))
			p++;
	}
	return (size_t)(p - s);
error:
	*bad = (size_t)(p - s) + (p < end);
	return 0;
}

/* A string token; 0 and *bad on a control byte, 0xFE/0xFF or the end of input. */
static size_t lex_string(const char *s, const char *end, size_t *bad)
{
	const char *p = s + 1;
	char quote = *s;

	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c > 0xFD)
			break;
		if (c == (unsigned char)quote)
			return (size_t)(p + 1 - s);
		if (c == '\\') {
			p++;
			if (p == end || (unsigned char)*p < 0x20 || (unsigned char)*p > 0xFD)
				break;
		}
		p++;
	}
	*bad = (size_t)(p - s) + (p < end);
	return 0;
}

static bool lex_one(const char **pp, const char *end, struct token *t)
{
	const char *s = *pp;
	size_t n = 0, bad = 1;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	if (s == end)
		return false;
	t->start = s;
	switch (*s) {
	case '{': t->type = T_LCURLY; n = 1; break;
	case '}': t->type = T_RCURLY; n = 1; break;
	case '[': t->type = T_LSQUARE; n = 1; break;
	case ']': t->type = T_RSQUARE; n = 1; break;
	case ':': t->type = T_COLON; n = 1; break;
	case ',': t->type = T_COMMA; n = 1; break;
	case '"': case '\'':
		t->type = T_STRING;
		n = lex_string(s, end, &bad);
		break;
	default:
		if (*s == '-' || is_digit(*s)) {
			n = lex_number(s, end, &t->type, &bad);
		} else if (*s >= 'a' && *s <= 'z') {
			t->type = T_KEYWORD;
			while (s + n < end && s[n] >= 'a' && s[n] <= 'z')
				n++;
		}
	}
	if (n) {
		t->len = n;
		*pp = s + n;
		return true;
	}
	/*
	 * An error token, then QEMU's recovery: skip to a bracket, a control
	 * byte other than tab, or 0xFE/0xFF, which start afresh.
	 */
	t->type = T_ERROR;
	t->len = bad;
	s += bad;
	while (s < end) {
		unsigned char c = (unsigned char)*s;
		if (c == '[' || c == ']' || c == '{' || c == '}' || (c < 0x20 && c != '\t') ||
		    c >= 0xFE)
			break;
		s++;
	}
	*pp = s;
	return true;
}

/* --- modified UTF-8 (QEMU's util/unicode.c) --- */

static bool valid_codepoint(long cp)
{
	return cp >= 0 && cp <= 0x10FFFF && (cp & 0xFFFE) != 0xFFFE &&
	       !(cp >= 0xD800 && cp <= 0xDFFF) && !(cp >= 0xFDD0 && cp <= 0xFDEF);
}

/*
 * Decodes one character of at most n bytes; -1 if invalid.  *used: bytes
 * taken.  Modified UTF-8 is strict UTF-8 (utf8.c) less NUL itself and the
 * noncharacters, plus the two-byte C0 80 for NUL.
 */
static long utf8_codepoint(const unsigned char *s, size_t n, size_t *used)
{
	int32_t cp;

	if (n >= 2 && s[0] == 0xC0 && s[1] == 0x80) {
		*used = 2;
		return 0;
	}
	*used = utf8_decode(s, n, &cp);
	return cp > 0 && valid_codepoint(cp) ? cp : -1;
}

static int mod_utf8_encode(char *buf, long cp)
{
	if (!valid_codepoint(cp))
		return -1;
	if (cp == 0) {
		buf[0] = (char)0xC0;
		buf[1] = (char)0x80;
		return 2;
	}
	return (int)utf8_encode(buf, (int32_t)cp);
}

static long hex4(const char *s, const char *end)
{
	long cp = 0;

	for (int i = 0; i < 4; i++) {
		char c = s + i < end ? s[i] : '\0';
		int v = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 :
			(c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
		if (v < 0)
			return -1;
		cp = (cp << 4) | v;
	}
	return cp;
}

/* --- values --- */

static struct json_value *new_value(enum json_type type)
{
	struct json_value *v = calloc(1, sizeof(*v));

	if (v)
		v->type = type;
	return v;
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->count; i++) {
		if (v->keys)
			free(v->keys[i]);
		json_free(v->items[i]);
	}
	free(v->keys);
	free(v->items);
	free(v->s);
	free(v);
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->count; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->items[i];
	return NULL;
}

/* The string token t unescaped (QEMU's parse_string). */
static struct json_value *parse_string(struct parser *p, const struct token *t)
{
	/* tend: the closing quote too, which QEMU's messages may show. */
	const char *s = t->start + 1, *end = t->start + t->len - 1, *tend = end + 1;
	char quote = t->start[0];
	struct json_value *v = new_value(JSON_STRING);
	/* Every escape and byte yields at most 4 output bytes per 2 input bytes. */
	char *out = malloc(t->len * 2 + 1);
	size_t n = 0, used;
	long cp;

	if (!v || !out)
		goto nomem;
	while (s < end && *s != quote) {
		if (*s != '\\') {
			cp = utf8_codepoint((const unsigned char *)s, (size_t)(end - s), &used);
			if (cp < 0) {
				perr(p, "invalid UTF-8 sequence in string");
				goto fail;
			}
			n += (size_t)mod_utf8_encode(out + n, cp);
			s += used;
			continue;
		}
		const char *beg = s++;
		char c = *s++;
		const char *esc = strchr("\"\"''\\\\//b\bf\fn\nr\rt\t", c);
		if (c && c != 'u' && esc && (esc - "\"\"''\\\\//b\bf\fn\nr\rt\t") % 2 == 0) {
			out[n++] = esc[1];
			continue;
		}
		if (c != 'u') {
			perr(p, "invalid escape sequence in string");
			goto fail;
		}
		cp = hex4(s, end);
		s = s + 4 < tend ? s + 4 : tend;
		if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 2 && s[0] == '\\' && s[1] == 'u') {
			long trail = hex4(s + 2, end);
			cp = 0x10000 + ((cp & 0x3FF) << 10);
			if (trail >= 0xDC00 && trail <= 0xDFFF) {
				cp |= trail & 0x3FF;
				s += 6;
			} else {
				cp = -1;
			}
		}
		int len = mod_utf8_encode(out + n, cp);
		if (len < 0) {
			perr(p, "%.*s is not a valid Unicode character", (int)(s - beg), beg);
			goto fail;
		}
		n += (size_t)len;
	}
	out[n] = '\0';
	v->s = out;
	return v;
nomem:
	perr(p, "out of memory");
fail:
	free(out);
	json_free(v);
	return NULL;
}

static struct json_value *parse_number(struct parser *p, const struct token *t)
{
	struct json_value *v = new_value(JSON_INT);
	char *buf = strndup(t->start, t->len);
	char *end;

	if (!v || !buf) {
		perr(p, "out of memory");
		free(buf);
		json_free(v);
		return NULL;
	}
	/* As QEMU: int64 if it fits, else uint64, else a double. */
	if (t->type == T_INTEGER) {
		errno = 0;
		v->i = strtoll(buf, &end, 10);
		if (!errno)
			goto out;
		if (buf[0] != '-') {
			errno = 0;
			v->u = strtoull(buf, &end, 10);
			if (!errno) {
				v->type = JSON_UINT;
				goto out;
			}
		}
	}
	v->type = JSON_DOUBLE;
	v->d = strtod(buf, &end);
out:
	free(buf);
	return v;
}

static struct json_value *parse_value(struct parser *p, int depth);

static const struct token *peek(struct parser *p)
{
	return p->pos < p->ntoks ? &p->toks[p->pos] : NULL;
}

static const struct token *pop(struct parser *p)
{
	return p->pos < p->ntoks ? &p->toks[p->pos++] : NULL;
}

static bool push_item(struct json_value *c, char *key, struct json_value *item)
{
	struct json_value **items = realloc(c->items, (c->count + 1) * sizeof(*items));
	char **keys;

	if (!items)
		return false;
	c->items = items;
	if (c->type == JSON_OBJECT) {
		keys = realloc(c->keys, (c->count + 1) * sizeof(*keys));
		if (!keys)
			return false;
		c->keys = keys;
		keys[c->count] = key;
	}
	items[c->count++] = item;
	return true;
}

static int parse_pair(struct parser *p, struct json_value *obj, int depth)
{
	struct json_value *key, *value;
	const struct token *t;

	if (!peek(p)) {
		perr(p, "premature EOI");
		return -1;
	}
	key = parse_value(p, depth);
	if (!key || key->type != JSON_STRING) {
		perr(p, "key is not a string in object");
		goto fail_key;
	}
	t = pop(p);
	if (!t) {
		perr(p, "premature EOI");
		goto fail_key;
	}
	if (t->type != T_COLON) {
		perr(p, "missing : in object pair");
		goto fail_key;
	}
	value = parse_value(p, depth);
	if (!value) {
		perr(p, "Missing value in dict");
		goto fail_key;
	}
	if (json_get(obj, key->s)) {
		perr(p, "duplicate key");
		json_free(value);
		goto fail_key;
	}
	if (!push_item(obj, key->s, value)) {
		perr(p, "out of memory");
		json_free(value);
		goto fail_key;
	}
	key->s = NULL;
	json_free(key);
	return 0;
fail_key:
	json_free(key);
	return -1;
}

/* Objects and arrays: QEMU's parse_object and parse_array, one loop. */
static struct json_value *parse_container(struct parser *p, int depth)
{
	bool object = pop(p)->type == T_LCURLY;
	enum tok_type close = object ? T_RCURLY : T_RSQUARE;
	struct json_value *c = new_value(object ? JSON_OBJECT : JSON_ARRAY), *item;
	const struct token *t;

	if (!c) {
		perr(p, "out of memory");
		return NULL;
	}
	t = peek(p);
	if (!t) {
		perr(p, "premature EOI");
		goto fail;
	}
	if (t->type == close) {
		pop(p);
		return c;
	}
	for (;;) {
		if (object) {
			if (parse_pair(p, c, depth + 1) < 0)
				goto fail;
		} else {
			item = parse_value(p, depth + 1);
			if (!item) {
				perr(p, "expecting value");
				goto fail;
			}
			if (!push_item(c, NULL, item)) {
				json_free(item);
				perr(p, "out of memory");
				goto fail;
			}
		}
		t = pop(p);
		if (!t) {
			perr(p, "premature EOI");
			goto fail;
		}
		if (t->type == close)
			return c;
		if (t->type != T_COMMA) {
			perr(p, object ? "expected separator in dict" : "expected separator in list");
			goto fail;
		}
	}
fail:
	json_free(c);
	return NULL;
}

static struct json_value *parse_keyword(struct parser *p)
{
	const struct token *t = pop(p);
	struct json_value *v = NULL;

	if (t->len == 4 && !memcmp(t->start, "true", 4)) {
		v = new_value(JSON_BOOL);
		if (v)
			v->b = true;
	} else if (t->len == 5 && !memcmp(t->start, "false", 5)) {
		v = new_value(JSON_BOOL);
	} else if (t->len == 4 && !memcmp(t->start, "null", 4)) {
		v = new_value(JSON_NULL);
	} else {
		perr(p, "invalid keyword '%.*s'", (int)(t->len > 100 ? 100 : t->len), t->start);
		return NULL;
	}
	if (!v)
		perr(p, "out of memory");
	return v;
}

static struct json_value *parse_value(struct parser *p, int depth)
{
	const struct token *t = peek(p);

	if (!t) {
		perr(p, "premature EOI");
		return NULL;
	}
	switch (t->type) {
	case T_LCURLY:
	case T_LSQUARE:
		return parse_container(p, depth);
	case T_STRING:
		return parse_string(p, pop(p));
	case T_INTEGER:
	case T_FLOAT:
		return parse_number(p, pop(p));
	case T_KEYWORD:
		return parse_keyword(p);
	default:
		perr(p, "expecting value");
		return NULL;
	}
}

/* --- the streamer and qobject_from_json's consumer --- */

struct stream {
	struct json_value *result;
	char err[256];
	bool have_err;
};

/* consume_json: the first value or error stands; a second value is an error. */
static void emit(struct stream *st, struct json_value *v, const char *err)
{
	if (st->result) {
		json_free(st->result);
		st->result = NULL;
		snprintf(st->err, sizeof(st->err), "Expecting at most one JSON value");
		st->have_err = true;
	}
	if (st->have_err) {
		json_free(v);
		return;
	}
	st->result = v;
	if (err) {
		snprintf(st->err, sizeof(st->err), "%s", err);
		st->have_err = true;
	}
}

static void parse_queue(struct stream *st, struct parser *p)
{
	struct json_value *v;

	p->pos = 0;
	p->failed = false;
	v = parse_value(p, 0);
	/* QEMU's parser stops at the end of the value; leftovers cannot balance. */
	if (v && p->pos != p->ntoks) {
		json_free(v);
		v = NULL;
		perr(p, "expecting value");
	}
	emit(st, v, v ? NULL : p->err);
	p->ntoks = 0;
}

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	const char *s = text, *end = text + len;
	struct parser p = { 0 };
	struct stream st = { 0 };
	size_t cap = 0;
	int braces = 0, brackets = 0;
	struct token t;

	while (!st.have_err && lex_one(&s, end, &t)) {
		if (t.type == T_ERROR) {
			char msg[256];
			snprintf(msg, sizeof(msg), "JSON parse error, stray '%.*s'",
				 (int)(t.len > 200 ? 200 : t.len), t.start);
			emit(&st, NULL, msg);
			p.ntoks = 0;
			braces = brackets = 0;
			continue;
		}
		braces += (t.type == T_LCURLY) - (t.type == T_RCURLY);
		brackets += (t.type == T_LSQUARE) - (t.type == T_RSQUARE);
		if (p.ntoks + 1 > MAX_TOKEN_COUNT || braces + brackets > JSON_MAX_NESTING) {
			emit(&st, NULL, p.ntoks + 1 > MAX_TOKEN_COUNT ?
				"JSON token count limit exceeded" :
				"JSON nesting depth limit exceeded");
			p.ntoks = 0;
			braces = brackets = 0;
			continue;
		}
		if (p.ntoks == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct token *nt = realloc(p.toks, ncap * sizeof(*nt));
			if (!nt) {
				emit(&st, NULL, "out of memory");
				break;
			}
			p.toks = nt;
			cap = ncap;
		}
		p.toks[p.ntoks++] = t;
		if ((braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0)
			continue;
		parse_queue(&st, &p);
		braces = brackets = 0;
	}
	/* End of input: what is queued is parsed, and fails (premature EOI). */
	if (!st.have_err && p.ntoks)
		parse_queue(&st, &p);
	free(p.toks);
	if (!st.result && !st.have_err)
		snprintf(st.err, sizeof(st.err), "Expecting a JSON value");
	if (st.result && !st.have_err)
		return st.result;
	json_free(st.result);
	snprintf(err, errlen, "%s", st.err);
	return NULL;
}

/* --- qdict_flatten into option text --- */

static int flatten_into(const struct json_value *v, const char *prefix, struct opts *out);

static int flatten_member(const char *prefix, const char *key, const struct json_value *v,
			  struct opts *out)
{
	size_t n = strlen(prefix) + strlen(key) + 2;
	char *name = malloc(n);
	int ret;

	if (!name)
		return -1;
	snprintf(name, n, "%s%s%s", prefix, *prefix ? "." : "", key);
	ret = flatten_into(v, name, out);
	free(name);
	return ret;
}

static int flatten_scalar(const struct json_value *v, const char *name, struct opts *out)
{
	char buf[64];
	const char *text = buf;

	switch (v->type) {
	case JSON_NULL: text = ""; break;
	case JSON_BOOL: text = v->b ? "on" : "off"; break;
	case JSON_INT: snprintf(buf, sizeof(buf), "%" PRId64, v->i); break;
	case JSON_UINT: snprintf(buf, sizeof(buf), "%" PRIu64, v->u); break;
	case JSON_DOUBLE: snprintf(buf, sizeof(buf), "%.17g", v->d); break;
	case JSON_STRING: text = v->s; break;
	default: text = ""; break;	/* an empty object or array stays, as in QEMU */
	}
	if (!opts_add(out, name, text))
		return -1;
	out->items[out->count - 1].null = v->type == JSON_NULL;
	return 0;
}

static int flatten_into(const struct json_value *v, const char *prefix, struct opts *out)
{
	char idx[32];

	if ((v->type != JSON_OBJECT && v->type != JSON_ARRAY) || (!v->count && *prefix))
		return flatten_scalar(v, prefix, out);
	for (size_t i = 0; i < v->count; i++) {
		const char *key = v->keys ? v->keys[i] : idx;
		snprintf(idx, sizeof(idx), "%zu", i);
		if (flatten_member(prefix, key, v->items[i], out) < 0)
			return -1;
	}
	return 0;
}

int json_flatten(const struct json_value *obj, struct opts *out)
{
	if (obj->type != JSON_OBJECT)
		return -1;
	return flatten_into(obj, "", out);
}
