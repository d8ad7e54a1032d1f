/*
 * The secrets that key-secret= options name (QEMU's secret objects).  The
 * VMM and kestrel-img add them while parsing their command line, before any
 * image opens; nothing removes them, as a process ends with its images.
 */
#include "block/block.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SECRETS 64

static struct {
	char *id;
	char *data;
	size_t len;
} secrets[MAX_SECRETS];
static size_t nsecrets;

const char *block_secret_lookup(const char *id, size_t *len)
{
	for (size_t i = 0; id && i < nsecrets; i++) {
		if (!strcmp(secrets[i].id, id)) {
			if (len)
				*len = secrets[i].len;
			return secrets[i].data;
		}
	}
	return NULL;
}

int block_secret_add(const char *id, const void *data, size_t len)
{
	char *d;

	if (nsecrets == MAX_SECRETS || block_secret_lookup(id, NULL))
		return -1;
	d = malloc(len + 1);
	if (!d)
		return -1;
	memcpy(d, data, len);
	d[len] = '\0';
	secrets[nsecrets].id = strdup(id);
	if (!secrets[nsecrets].id) {
		free(d);
		return -1;
	}
	secrets[nsecrets].data = d;
	secrets[nsecrets].len = len;
	nsecrets++;
	return 0;
}
