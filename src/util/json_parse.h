/*
 * A JSON parser that reads what QEMU's qobject_from_json reads and refuses
 * what it refuses, with its messages: single-quoted strings, modified UTF-8
 * ("\u0000" is C0 80), integers kept exact up to 64 bits, duplicate keys
 * refused.  Used for "json:{...}" pseudo-filenames, which must parse as
 * qemu-img parses them (qobject/json-lexer.c, json-streamer.c, json-parser.c).
 */
#ifndef KESTREL_UTIL_JSON_PARSE_H
#define KESTREL_UTIL_JSON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opts;

enum json_type {
	JSON_NULL, JSON_BOOL, JSON_INT, JSON_UINT, JSON_DOUBLE, JSON_STRING, JSON_ARRAY,
	JSON_OBJECT,
};

struct json_value {
	enum json_type type;
	bool b;
	int64_t i;		/* JSON_INT */
	uint64_t u;		/* JSON_UINT: above INT64_MAX */
	double d;		/* JSON_DOUBLE */
	char *s;		/* JSON_STRING (modified UTF-8, no NUL inside) */
	size_t count;		/* JSON_ARRAY, JSON_OBJECT */
	char **keys;		/* JSON_OBJECT, in input order */
	struct json_value **items;
};

/* Nesting limit of QEMU's streamer (MAX_NESTING). */
#define JSON_MAX_NESTING 1024

/*
 * Parses exactly one JSON value from text[0..len).  Returns NULL with
 * QEMU's message in err ("JSON parse error, premature EOI", "Expecting a
 * JSON value", "Expecting at most one JSON value", ...).
 */
struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json_value *v);

/* The member named key of an object, or NULL. */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/*
 * QEMU's qdict_flatten into an option list: nested objects become dotted
 * keys ("file.filename"), array elements "key.0", "key.1"; scalars become
 * option text as qemu_opts_absorb_qdict writes it (true -> "on", numbers in
 * decimal), null an option marked null.  obj must be an object.  Returns 0,
 * or -1 (out of memory).
 */
int json_flatten(const struct json_value *obj, struct opts *out);

#endif
