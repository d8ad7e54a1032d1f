/*
 * JSON option arguments, as libvirt passes every -object, -device, -netdev
 * and -audiodev: '{"driver":"virtio-blk-pci","drive":"d0","bootindex":1}'.
 * QEMU reads them with qobject_from_json and flattens nested members into
 * dotted keys (qdict_flatten); Kestrel reads them with the parser its
 * json: file names use (util/json_parse.c, QEMU's messages) and hands the
 * option's own parser the key=value text that means the same, so one parser
 * per option checks both syntaxes alike.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/options_internal.h"
#include "util/json_parse.h"

/* Appends s with QEMU's ",," escaping; false when out of room. */
static bool put(char *out, size_t cap, size_t *len, const char *s, bool escape)
{
	for (; *s; s++) {
		if (*len + 3 >= cap)
			return false;
		out[(*len)++] = *s;
		if (escape && *s == ',')
			out[(*len)++] = ',';
	}
	out[*len] = '\0';
	return true;
}

/*
 * The flattened members as "IMPLIED,key=value,...": the implied key's value
 * comes first, bare, as the option's short form has it ("tap,id=n0" for
 * -netdev, whose parser reads the type word first).  A null member cannot be
 * written in that form: only -blockdev's backing takes one (options_blockdev).
 */
static char *to_list(const struct opts *o, const char *implied, const char *opt,
		     const char *arg)
{
	size_t cap = 64, len = 0;
	const char *first = NULL;
	char *out;

	for (size_t i = 0; i < o->count; i++) {
		if (o->items[i].null) {
			char msg[160];
			snprintf(msg, sizeof(msg), "Parameter '%s' does not take null",
				 o->items[i].key);
			err_invalid(opt, arg, msg);
			return NULL;
		}
		cap += 2 * (strlen(o->items[i].key) + strlen(o->items[i].value)) + 2;
		if (implied && !strcmp(o->items[i].key, implied))
			first = o->items[i].value;
	}
	out = calloc(1, cap);
	if (!out)
		return NULL;
	if (first && !strpbrk(first, "=,") && *first && !put(out, cap, &len, first, false))
		goto full;
	for (size_t i = 0; i < o->count; i++) {
		const struct opt *it = &o->items[i];
		if (first && it->value == first && !strpbrk(first, "=,") && *first)
			continue;
		if ((len && !put(out, cap, &len, ",", false)) || !put(out, cap, &len, it->key, false) ||
		    !put(out, cap, &len, "=", false) || !put(out, cap, &len, it->value, true))
			goto full;
	}
	return out;
full:
	free(out);
	return NULL;
}

struct opts *options_json_opts(const char *opt, const char *arg)
{
	struct json_value *v;
	struct opts *o;
	char err[200];

	v = json_parse(arg, strlen(arg), err, sizeof(err));
	if (!v) {
		err_invalid(opt, arg, err);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o || v->type != JSON_OBJECT || json_flatten(v, o) < 0) {
		err_invalid(opt, arg, o && v->type != JSON_OBJECT ? "Invalid parameter type, "
			    "expected 'object'" : "out of memory");
		if (o)
			opts_free(o);
		o = NULL;
	}
	json_free(v);
	return o;
}

int options_json(option_parser *parse, struct vm_config *cfg, const char *opt, const char *arg,
		 const char *implied, FILE *out)
{
	struct opts *o = options_json_opts(opt, arg);
	char *list;
	int rc;

	if (!o)
		return -1;
	list = to_list(o, implied, opt, arg);
	opts_free(o);
	if (!list)
		return -1;
	options_json_shown(arg);
	rc = parse(cfg, opt, list, out);
	options_json_shown(NULL);
	/* Parsers may keep pointers into arg (-kernel does); these options copy what they keep. */
	free(list);
	return rc;
}
