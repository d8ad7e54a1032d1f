/*
 * nfs:// URLs and -blockdev driver=nfs options (src/block/nfs.c): the
 * parsing Kestrel does itself before libnfs sees a byte.  The first input
 * byte picks the form: even, the rest is a URL (after "nfs://" when it
 * lacks one); odd, QEMU option text ("server.type=inet,server.host=...")
 * read under "" or, when bit 1 is set, "file.".  Aborts on a broken
 * invariant: success without a host or path (for a URL: an empty host, a
 * path not starting with '/'), failure without a message, or a display
 * name that is not an nfs:// URL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/nfs.h"
#include "util/opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check(const struct block_nfs_opts *o)
{
	char display[4096];

	/* An empty server.host is libnfs's to refuse, as in QEMU; a URL's never is. */
	if (!o->host || !o->path)
		abort();
	block_nfs_display(o, display, sizeof(display));
	if (strncmp(display, "nfs://", 6) || strlen(display) >= sizeof(display))
		abort();
}

static void parse_uri(const char *text)
{
	struct block_nfs_opts o;
	char err[512], *storage = NULL;

	if (block_nfs_parse_uri(text, &o, &storage, err, sizeof(err)) == 0) {
		check(&o);
		if (!*o.host || *o.path != '/')
			abort();
	} else if (!err[0]) {
		abort();
	}
	free(storage);
}

static void parse_opts(const char *text, const char *pfx)
{
	char err[512], *storage = NULL;
	struct block_nfs_opts o;
	struct opts *opts = opts_parse(text, NULL, err, sizeof(err));

	if (!opts)
		return;
	if (block_nfs_read_opts(opts, pfx, &o, &storage, err, sizeof(err)) == 0)
		check(&o);
	else if (!err[0])
		abort();
	free(storage);
	opts_free(opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *text;

	if (len < 1 || len > 8192)
		return 0;
	text = malloc(len + 6);
	if (!text)
		return 0;
	/* Text ends at the first NUL, as a command line's would. */
	if (data[0] & 1) {
		memcpy(text, data + 1, len - 1);
		text[len - 1] = '\0';
		parse_opts(text, (data[0] & 2) ? "file." : "");
	} else {
		memcpy(text, "nfs://", 6);
		memcpy(text + 6, data + 1, len - 1);
		text[len + 5] = '\0';
		parse_uri(!strncmp(text + 6, "nfs://", 6) ? text + 6 : text);
	}
	free(text);
	return 0;
}
