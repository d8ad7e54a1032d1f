/*
 * gluster URLs (src/block/gluster.c, QEMU's qemu_gluster_parse_uri rules):
 * text a user, a libvirt domain or an image's backing-file name supplies.
 * Every accepted URL must name a volume and a path, and a server of the
 * transport its scheme says; nothing connects.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/gluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check(const char *text, const struct block_gluster_opts *o)
{
	const struct block_gluster_server *s = &o->server[0];

	if (!o->volume || !*o->volume || strchr(o->volume, '/') || !o->path || !*o->path ||
	    o->path[0] == '/' || o->nservers != 1)
		abort();
	if (s->is_unix != !strncmp(text, "gluster+unix:", 13))
		abort();
	if (s->is_unix && (!s->path || s->host))
		abort();
	if (!s->is_unix && (!s->host || !*s->host ||
			    (s->port && (!*s->port || strspn(s->port, "0123456789") !=
					 strlen(s->port) || strlen(s->port) > 5))))
		abort();
	if (!block_gluster_name(text))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct block_gluster_opts o;
	char *text = malloc(len + 1), *storage = NULL, err[1024];

	if (!text)
		return 0;
	memcpy(text, data, len);
	text[len] = '\0';
	if (block_gluster_parse_uri(text, &o, &storage, err, sizeof(err)) == 0)
		check(text, &o);
	else if (!strstr(err, "invalid URI") && strcmp(err, "out of memory"))
		abort();		/* every refusal is QEMU's "invalid URI" */
	free(storage);
	free(text);
	return 0;
}
