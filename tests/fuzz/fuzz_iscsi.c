/*
 * The iSCSI driver's own parsing of what users and targets send
 * (src/block/iscsi_parse.c): iscsi:// URLs, -blockdev option lists, the
 * node name built from them, and the LUN geometry a target reports (READ
 * CAPACITY 16, Block Limits VPD) with the byte reads and writes Kestrel maps
 * onto whole-block commands.  libiscsi decodes the PDUs themselves; what it
 * hands back (block size, last LBA, transfer limit) is the hostile input here.
 *
 * The first byte picks the case: 0 a URL, 1 an option list (top level or
 * under "file."), 2 a geometry and a run of reads and writes checked against
 * a byte model of the LUN.  Aborts on a broken invariant: a parsed address
 * with an empty part, a LUN out of range, a name that is not closed JSON, a
 * command outside the LUN or larger than the transfer limit, or data that
 * differs from the model.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/iscsi.h"
#include "util/opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void check_parsed(const struct block_iscsi_opts *o)
{
	char name[4096], tiny[64];

	if (!o->portal || !*o->portal || !o->target || !*o->target || o->lun < 0 ||
	    o->lun > 16383 || o->header_digest < 0 || o->header_digest > 3)
		abort();
	if (block_iscsi_display(o, "raw", name, sizeof(name)) == 0) {
		size_t n = strlen(name);
		if (strncmp(name, "json:{", 6) || name[n - 1] != '}')
			abort();
	}
	/* Too small a buffer is refused, never overrun (ASan watches tiny). */
	if (block_iscsi_display(o, "qcow2", tiny, sizeof(tiny)) == 0 && strlen(tiny) >= sizeof(tiny))
		abort();
}

static void fuzz_url(const char *text)
{
	struct block_iscsi_opts o;
	char err[256] = "", *storage;

	if (block_iscsi_parse_uri(text, &o, &storage, err, sizeof(err)) == 0)
		check_parsed(&o);
	else if (!err[0])
		abort();
	free(storage);
}

static void fuzz_opts(const char *text, bool under)
{
	struct block_iscsi_opts o;
	char err[256];
	struct opts *opts = opts_parse(text, "driver", err, sizeof(err));

	if (!opts)
		return;
	err[0] = '\0';
	if (block_iscsi_read_opts(opts, under ? "file." : "", &o, err, sizeof(err)) == 0)
		check_parsed(&o);
	else if (!err[0])
		abort();
	opts_free(opts);
}

/* The fake LUN: whole-block commands only, inside the LUN, within the limit. */
struct lun {
	const struct block_iscsi_geom *g;
	uint8_t *disk;
};

static int lun_io(void *ctx, bool write, uint64_t lba, void *buf, uint32_t n)
{
	struct lun *l = ctx;
	uint64_t bytes = (uint64_t)n * l->g->block_size;

	if (n == 0 || lba >= l->g->blocks || n > l->g->blocks - lba || bytes > l->g->max_xfer)
		abort();
	if (write)
		memcpy(l->disk + lba * l->g->block_size, buf, bytes);
	else
		memcpy(buf, l->disk + lba * l->g->block_size, bytes);
	return 0;
}

static uint64_t take(const uint8_t **p, size_t *len, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		v = v << 8 | (*len ? **p : 0);
		if (*len) {
			(*p)++;
			(*len)--;
		}
	}
	return v;
}

static void fuzz_geometry(const uint8_t *p, size_t len)
{
	uint32_t bs = (uint32_t)take(&p, &len, 4);
	uint64_t last = take(&p, &len, 8);
	uint32_t max_blocks = (uint32_t)take(&p, &len, 4);
	struct block_iscsi_geom g;
	uint8_t *model, *bounce, buf[1 << 14];
	struct lun l = { .g = &g };
	uint64_t size;
	char err[256] = "";

	if (block_iscsi_geometry(bs, last, max_blocks, &g, err, sizeof(err)) < 0) {
		if (!err[0])
			abort();
		return;
	}
	size = g.blocks * g.block_size;
	if (g.block_size % 512 || g.max_xfer < g.block_size || g.max_xfer % g.block_size ||
	    size / g.block_size != g.blocks)
		abort();
	if (size > (128u << 10))
		return;		/* checked; too big to model quickly */
	l.disk = calloc(1, size);
	model = calloc(1, size);
	bounce = malloc(g.block_size);
	while (l.disk && model && bounce && len >= 7) {
		bool write = take(&p, &len, 1) & 1;
		uint64_t off = take(&p, &len, 4) % (size + 2);
		size_t n = (size_t)take(&p, &len, 2) % (sizeof(buf) + 1);
		int ret;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(off + i * 7);
		ret = block_iscsi_rw(&g, lun_io, &l, write, off, buf, n, bounce);
		if ((ret == 0) != (off + n <= size))
			abort();
		if (ret < 0)
			continue;
		if (write)
			memcpy(model + off, buf, n);
		else if (memcmp(model + off, buf, n))
			abort();
		if (memcmp(model, l.disk, size))
			abort();
	}
	free(l.disk);
	free(model);
	free(bounce);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char *text;

	if (len < 1)
		return 0;
	if (data[0] % 3 == 2) {
		fuzz_geometry(data + 1, len - 1);
		return 0;
	}
	text = malloc(len);
	if (!text)
		return 0;
	memcpy(text, data + 1, len - 1);
	text[len - 1] = '\0';
	if (data[0] % 3 == 0)
		fuzz_url(text);
	else
		fuzz_opts(text, data[0] & 4);
	free(text);
	return 0;
}
