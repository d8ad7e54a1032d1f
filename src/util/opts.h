/*
 * QEMU-style option lists: "value,key=val,flag,nokey,a=b,,c".
 * ",," is a literal comma; a leading element without '=' belongs to the implied
 * key ("-m 128" is "size=128"); a later bare word is a boolean flag ("server" is
 * server=on, "nowait" is wait=off), as QEMU's legacy syntax allows.
 */
#ifndef KESTREL_UTIL_OPTS_H
#define KESTREL_UTIL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opt {
	char *key;
	char *value;
	bool used;
	bool null;	/* a JSON null (json_flatten); value is "" */
};

struct opts {
	struct opt *items;
	size_t count;
};

/* Returns NULL and fills err on a syntax error; free the result with opts_free. */
struct opts *opts_parse(const char *text, const char *implied_key, char *err, size_t errlen);
void opts_free(struct opts *opts);
/* Appends key=value (copied); false when out of memory. */
bool opts_add(struct opts *opts, const char *key, const char *value);

/* The value of the last occurrence of key, or NULL; marks every occurrence used. */
const char *opts_get(struct opts *opts, const char *key);

/*
 * Reads an on/off boolean (also yes/no, true/false).  Leaves *out untouched when
 * the key is absent; returns false when the value is not a boolean.
 */
bool opts_get_bool(struct opts *opts, const char *key, bool *out);

/* The first key nobody asked for, so callers can reject unknown parameters. */
const char *opts_first_unused(const struct opts *opts);

#endif
