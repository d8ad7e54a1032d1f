/*
 * json: pseudo-filenames (src/util/json_parse.c): QEMU's JSON reader and
 * the flattening into block options.  The input is the text after "json:".
 * Aborts on a broken invariant: a value and an error at once, an error
 * without a message, an object with two members of one name (QEMU refuses
 * duplicate keys), a string with a byte no modified UTF-8 has, or a
 * flattened option without its text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_parse.h"
#include "util/opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Modified UTF-8 as the reader writes it: no NUL, no 0xF8.. lead bytes. */
static void check_string(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0xF8)
			abort();
}

static void check_value(const struct json_value *v)
{
	if (v->type == JSON_STRING) {
		check_string(v->s);
		return;
	}
	for (size_t i = 0; i < v->count; i++) {
		if (v->type == JSON_OBJECT) {
			check_string(v->keys[i]);
			for (size_t j = 0; j < i; j++)
				if (!strcmp(v->keys[i], v->keys[j]))
					abort();
		}
		check_value(v->items[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char err[256] = "";
	struct json_value *v = json_parse((const char *)data, len, err, sizeof(err));
	struct opts o = { 0 };

	if (!v) {
		if (!err[0])
			abort();
		return 0;
	}
	check_value(v);
	if (v->type == JSON_OBJECT) {
		if (json_flatten(v, &o) == 0)
			for (size_t i = 0; i < o.count; i++)
				if (!o.items[i].key || !o.items[i].value)
					abort();
		for (size_t i = 0; i < o.count; i++) {
			free(o.items[i].key);
			free(o.items[i].value);
		}
		free(o.items);
	}
	json_free(v);
	return 0;
}
