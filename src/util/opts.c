#include "util/opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool opts_append(struct opts *opts, const char *key, size_t keylen, const char *value)
{
	struct opt *items = realloc(opts->items, (opts->count + 1) * sizeof(*items));
	if (!items)
		return false;
	opts->items = items;
	struct opt *o = &items[opts->count];
	o->key = strndup(key, keylen);
	o->value = strdup(value);
	o->used = false;
	o->null = false;
	if (!o->key || !o->value) {
		free(o->key);
		free(o->value);
		return false;
	}
	opts->count++;
	return true;
}

bool opts_add(struct opts *opts, const char *key, const char *value)
{
	return opts_append(opts, key, strlen(key), value);
}

/* Copies one element up to an unescaped comma into buf, turning ",," into ','. */
static const char *next_element(const char *p, char *buf)
{
	size_t n = 0;

	while (*p) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		buf[n++] = *p++;
	}
	buf[n] = '\0';
	return p;
}

struct opts *opts_parse(const char *text, const char *implied_key, char *err, size_t errlen)
{
	struct opts *opts = calloc(1, sizeof(*opts));
	char *elem = malloc(strlen(text) + 1);
	const char *p = text;
	bool first = true;

	if (!opts || !elem)
		goto nomem;
	for (;;) {
		p = next_element(p, elem);
		char *eq = strchr(elem, '=');
		bool ok;

		if (eq) {
			if (eq == elem) {
				snprintf(err, errlen, "Invalid parameter ''");
				goto fail;
			}
			ok = opts_append(opts, elem, (size_t)(eq - elem), eq + 1);
		} else if (first && implied_key) {
			ok = opts_append(opts, implied_key, strlen(implied_key), elem);
		} else if (elem[0] == '\0') {
			/* A trailing or doubled separator, as in "a=1,": harmless, QEMU accepts it. */
			ok = true;
		} else if (strncmp(elem, "no", 2) == 0 && elem[2] != '\0') {
			ok = opts_append(opts, elem + 2, strlen(elem + 2), "off");
		} else {
			ok = opts_append(opts, elem, strlen(elem), "on");
		}
		if (!ok)
			goto nomem;
		first = false;
		if (*p == '\0')
			break;
		p++;	/* the separating comma */
	}
	free(elem);
	return opts;

nomem:
	snprintf(err, errlen, "out of memory");
fail:
	free(elem);
	opts_free(opts);
	return NULL;
}

void opts_free(struct opts *opts)
{
	if (!opts)
		return;
	for (size_t i = 0; i < opts->count; i++) {
		free(opts->items[i].key);
		free(opts->items[i].value);
	}
	free(opts->items);
	free(opts);
}

const char *opts_get(struct opts *opts, const char *key)
{
	const char *value = NULL;

	for (size_t i = 0; i < opts->count; i++) {
		if (strcmp(opts->items[i].key, key) == 0) {
			opts->items[i].used = true;
			value = opts->items[i].value;
		}
	}
	return value;
}

bool opts_get_bool(struct opts *opts, const char *key, bool *out)
{
	static const char *const yes[] = { "on", "yes", "true", "y" };
	static const char *const no[] = { "off", "no", "false", "n" };
	const char *v = opts_get(opts, key);

	if (!v)
		return true;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(v, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

const char *opts_first_unused(const struct opts *opts)
{
	for (size_t i = 0; i < opts->count; i++)
		if (!opts->items[i].used)
			return opts->items[i].key;
	return NULL;
}
