/*
 * The TLS credential objects (QEMU's tls-creds-x509 and tls-creds-psk) that
 * tls-creds= options name.  As secrets (secret.c): the command line adds
 * them before any image opens, and they live as long as the process.
 */
#include "block/block.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TLS_CREDS 16

static struct block_tls_creds creds[MAX_TLS_CREDS];
static size_t ncreds;

const struct block_tls_creds *block_tls_creds_lookup(const char *id)
{
	for (size_t i = 0; id && i < ncreds; i++)
		if (!strcmp(creds[i].id, id))
			return &creds[i];
	return NULL;
}

int block_tls_creds_add(const struct block_tls_creds *c)
{
	struct block_tls_creds *n;

	if (ncreds == MAX_TLS_CREDS || block_tls_creds_lookup(c->id))
		return -1;
	n = &creds[ncreds];
	*n = *c;
	n->id = strdup(c->id);
	n->dir = strdup(c->dir);
	n->username = c->username ? strdup(c->username) : NULL;
	if (!n->id || !n->dir || (c->username && !n->username)) {
		free((char *)n->id);
		free((char *)n->dir);
		free((char *)n->username);
		return -1;
	}
	ncreds++;
	return 0;
}
