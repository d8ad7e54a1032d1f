/*
 * QEMU option lists (opts_parse) and the parsers built on them that read
 * command-line and config text: -serial specs and -smp topologies.
 * The first input byte picks the implied key; the rest is the text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "chardev/chardev.h"
#include "util/opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check_opts(const char *text, const char *implied)
{
	char err[128];
	struct opts *o = opts_parse(text, implied, err, sizeof(err));
	bool b = false;

	if (!o)
		return;
	for (size_t i = 0; i < o->count; i++) {
		/* Keys are never empty and never contain '=': the first one splits. */
		if (!o->items[i].key[0] || strchr(o->items[i].key, '='))
			abort();
	}
	opts_get(o, "path");
	opts_get_bool(o, "server", &b);
	opts_get_bool(o, "wait", &b);
	while (opts_first_unused(o))
		opts_get(o, opts_first_unused(o));
	opts_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const implied[] = { NULL, "size", "cpus", "path", "guest", "driver" };
	struct chardev_spec spec;
	struct smp_config smp;
	char err[256];
	char *text;

	if (len < 1)
		return 0;
	text = malloc(len);
	if (!text)
		return 0;
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';

	check_opts(text, implied[data[0] % 6]);
	if (chardev_spec_parse(text, &spec, err, sizeof(err)) && strlen(spec.path) >= sizeof(spec.path))
		abort();
	if (options_parse_smp(text, &smp) == 0) {
		/* What the VM builder relies on: a consistent topology within the pc limits. */
		if (smp.cpus < 1 || smp.cpus > smp.maxcpus || smp.maxcpus > 255)
			abort();
	}
	free(text);
	return 0;
}
