/*
 * The block.h API as the VMM uses it: raw and qcow2 through the same calls,
 * probing, locks, backing files, the snapshot=on overlay, range checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/block_img.h"
#include "tmpdir.h"

static struct block_dev *create_open(const char *name, const char *fmt, uint64_t size,
				     unsigned flags)
{
	struct block_create_opts o = { .size = size };
	struct block_dev *bd;
	char err[512];

	if (block_create(tmpdir_path(name), fmt, &o, err, sizeof(err)) < 0)
		fail_msg("create: %s", err);
	if (block_open(tmpdir_path(name), fmt, flags, &bd, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	return bd;
}

static void test_both_formats_same_behaviour(void **state)
{
	const char *fmts[] = { "raw", "qcow2" };

	for (int f = 0; f < 2; f++) {
		struct block_dev *bd = create_open(fmts[f], fmts[f], 4 << 20, 0);
		uint8_t w[8192], r[8192];

		assert_string_equal(block_format_name(bd), fmts[f]);
		assert_int_equal(block_length(bd), 4 << 20);
		assert_false(block_is_readonly(bd));
		for (size_t i = 0; i < sizeof(w); i++)
			w[i] = (uint8_t)(i * 7 + f);
		assert_int_equal(block_pwrite(bd, 12345, w, sizeof(w)), 0);
		assert_int_equal(block_pread(bd, 12345, r, sizeof(r)), 0);
		assert_memory_equal(r, w, sizeof(w));
		/* Zeroes and discards read back as zeroes. */
		assert_int_equal(block_write_zeroes(bd, 12345 + 100, 1000, false), 0);
		assert_int_equal(block_discard(bd, 0, 1 << 20), 0);
		assert_int_equal(block_pread(bd, 12345, r, sizeof(r)), 0);
		for (size_t i = 0; i < sizeof(r); i++)
			assert_int_equal(r[i], 0);
		assert_int_equal(block_flush(bd), 0);
		/* Out of range is -EINVAL, not a short read or a crash. */
		assert_int_equal(block_pread(bd, (4 << 20) - 10, r, 20), -EINVAL);
		assert_int_equal(block_pwrite(bd, UINT64_MAX - 5, w, 10), -EINVAL);
		assert_int_equal(block_write_zeroes(bd, 4 << 20, 1, true), -EINVAL);
		block_close(bd);
	}
}

/*
 * "backing": null on an image whose header names a backing file (libvirt's
 * -blockdev): unallocated clusters read as zeroes and a partial write copies
 * zeroes up, as QEMU's qemu-io does on the same node; the backing file is
 * untouched and still shows through where the overlay has nothing.
 */
static void test_backing_null_writes_copy_zeroes_up(void **state)
{
	struct block_create_opts bo = { .size = 1 << 20 };
	struct block_create_opts oo = { .size = 1 << 20, .backing_file = "bn-base.qcow2",
					.backing_fmt = "qcow2" };
	struct block_dev *bd;
	uint8_t buf[4096], w[512];
	char err[512];

	assert_int_equal(block_create(tmpdir_path("bn-base.qcow2"), "qcow2", &bo, err,
				      sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("bn-base.qcow2"), "qcow2", 0, &bd, err,
				    sizeof(err)), 0);
	memset(buf, 0x55, sizeof(buf));
	for (unsigned off = 0; off < 128 << 10; off += sizeof(buf))
		assert_int_equal(block_pwrite(bd, off, buf, sizeof(buf)), 0);
	block_close(bd);
	if (block_create(tmpdir_path("bn-top.qcow2"), "qcow2", &oo, err, sizeof(err)) < 0)
		fail_msg("create: %s", err);
	assert_int_equal(block_open(tmpdir_path("bn-top.qcow2"), "qcow2", BLOCK_NO_BACKING, &bd,
				    err, sizeof(err)), 0);
	assert_int_equal(block_pread(bd, 0, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	memset(w, 0xaa, sizeof(w));
	assert_int_equal(block_pwrite(bd, 0, w, sizeof(w)), 0);
	block_close(bd);
	assert_int_equal(block_open(tmpdir_path("bn-top.qcow2"), "qcow2", BLOCK_RDONLY, &bd, err,
				    sizeof(err)), 0);
	assert_int_equal(block_pread(bd, 0, buf, sizeof(buf)), 0);
	assert_memory_equal(buf, w, sizeof(w));
	for (size_t i = sizeof(w); i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);		/* copied up from nothing */
	assert_int_equal(block_pread(bd, 96 << 10, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0x55);			/* the backing file, elsewhere */
	block_close(bd);
}

static void test_read_only(void **state)
{
	struct block_dev *bd = create_open("ro.qcow2", "qcow2", 1 << 20, BLOCK_RDONLY);
	uint8_t b[512] = { 1 };

	assert_true(block_is_readonly(bd));
	assert_int_equal(block_pwrite(bd, 0, b, sizeof(b)), -EROFS);
	assert_int_equal(block_discard(bd, 0, 512), -EROFS);
	assert_int_equal(block_pread(bd, 0, b, sizeof(b)), 0);
	assert_int_equal(b[0], 0);
	block_close(bd);
}

static void test_probe(void **state)
{
	struct block_dev *bd = create_open("p.qcow2", "qcow2", 1 << 20, 0), *p;
	char err[512];

	block_close(bd);
	assert_int_equal(block_open(tmpdir_path("p.qcow2"), NULL, BLOCK_RDONLY, &p, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(p), "qcow2");
	block_close(p);
	bd = create_open("p.raw", "raw", 1 << 20, 0);
	block_close(bd);
	assert_int_equal(block_open(tmpdir_path("p.raw"), NULL, BLOCK_RDONLY, &p, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(p), "raw");
	block_close(p);
	/* A format QEMU knows is refused by name; a name nobody knows is unknown. */
	/* vmdk has a driver: a raw file is no VMDK descriptor, as QEMU's vmdk says. */
	assert_int_equal(block_open(tmpdir_path("p.raw"), "vmdk", 0, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid VMDK image descriptor"));
	/* A read-only format (bochs) opened for writing: qemu-img's refusal. */
	assert_int_equal(block_open(tmpdir_path("p.raw"), "bochs", 0, &p, err, sizeof(err)), -1);
	assert_string_equal(err, "Image is read-only");
	assert_int_equal(block_open(tmpdir_path("p.raw"), "nosuchfmt", 0, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Unknown driver 'nosuchfmt'"));
	assert_int_equal(block_open(tmpdir_path("none"), NULL, 0, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

/* First sectors that probe as another format (the magic of each prober in probe.c). */
static const struct {
	const char *format;
	const char *bytes;
	size_t len;
} magics[] = {
#define MAGIC(fmt, lit) { fmt, lit, sizeof(lit) - 1 }
	MAGIC("qcow2", "QFI\xfb\0\0\0\3"),
	MAGIC("qcow", "QFI\xfb\0\0\0\1"),
	MAGIC("qed", "QED\0"),
	MAGIC("vmdk", "KDMV"),
	MAGIC("vmdk", "COWD"),
	MAGIC("vmdk", "# Disk DescriptorFile\nversion=1\nRW 8 FLAT \"/etc/hostname\" 0\n"),
	MAGIC("vdi", "<<< Oracle VM VirtualBox Disk Image >>>\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	      "\0\0\0\0\0\0\0\0\0\x7f\x10\xda\xbe"),
	MAGIC("vhdx", "vhdxfile"),
	MAGIC("vpc", "conectix"),
	MAGIC("parallels", "WithoutFreeSpace\2\0\0\0"),
	MAGIC("parallels", "WithouFreSpacExt\2\0\0\0"),
	MAGIC("luks", "LUKS\xba\xbe\0\1"),
	MAGIC("bochs", "Bochs Virtual HD Image\0\0\0\0\0\0\0\0\0\0Redolog\0\0\0\0\0\0\0\0\0"
	      "Growing\0\0\0\0\0\0\0\0\0\0\0\2\0"),
	MAGIC("cloop", "#!/bin/sh\n#V2.0 Format\n"
	      "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"),
#undef MAGIC
};

static void put_file(const char *name, uint64_t off, const void *buf, size_t len)
{
	FILE *f = fopen(tmpdir_path(name), "r+b");

	assert_non_null(f);
	assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * A probed raw image (format not given) refuses every write that would make
 * block 0 probe as another format, as QEMU's raw_co_pwritev does: the next
 * open that probes would otherwise take the guest's bytes for a header
 * (a VMDK descriptor can name any host file as its extent).
 */
static void test_probed_raw_refuses_every_magic(void **state)
{
	struct block_dev *bd = create_open("m.raw", "raw", 1 << 20, 0), *ex;
	uint8_t sector[4096], r[4096];
	char err[512];

	block_close(bd);
	assert_int_equal(block_open(tmpdir_path("m.raw"), NULL, BLOCK_QUIET_PROBE, &bd, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(bd), "raw");
	assert_int_equal(block_open(tmpdir_path("m.raw"), "raw", BLOCK_NO_LOCK, &ex, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		memset(sector, 0, sizeof(sector));
		memcpy(sector, magics[i].bytes, magics[i].len);
		if (block_pwrite(bd, 0, sector, 512) != -EPERM)
			fail_msg("%s magic written into block 0", magics[i].format);
		/* Longer writes that start in block 0, and zero writes, are checked too. */
		assert_int_equal(block_pwrite(bd, 0, sector, sizeof(sector)), -EPERM);
		assert_int_equal(block_pread(bd, 0, r, sizeof(r)), 0);
		assert_true(all_zero(r, sizeof(r)));
		/* The same bytes one sector further are ordinary data. */
		assert_int_equal(block_pwrite(bd, 512, sector, 512), 0);
		assert_int_equal(block_pread(bd, 512, r, 512), 0);
		assert_memory_equal(r, sector, 512);
		assert_int_equal(block_write_zeroes(bd, 512, 512, false), 0);
		/* An explicit format=raw means "this is raw": no restriction. */
		assert_int_equal(block_pwrite(ex, 0, sector, 512), 0);
		assert_int_equal(block_write_zeroes(ex, 0, 512, false), 0);
	}
	block_close(ex);
	/* Ordinary data in block 0 is fine, and so is zeroing it again. */
	memset(sector, 0xeb, sizeof(sector));
	assert_int_equal(block_pwrite(bd, 0, sector, sizeof(sector)), 0);
	assert_int_equal(block_write_zeroes(bd, 0, 4096, true), 0);
	/* A magic put together from harmless pieces is caught at the last one. */
	assert_int_equal(block_pwrite(bd, 0, "KD", 2), 0);
	assert_int_equal(block_pwrite(bd, 2, "MV", 2), -EPERM);
	assert_int_equal(block_pwrite(bd, 0, "# Disk DescriptorFile\n", 22), 0);
	assert_int_equal(block_pwrite(bd, 22, "version=1\n", 10), -EPERM);
	block_close(bd);
}

/* A file whose magic names a format Kestrel has no driver for is refused by that name. */
static void test_foreign_format_refused_by_name(void **state)
{
	static const unsigned flags[] = { 0, BLOCK_RDONLY, BLOCK_RDONLY | BLOCK_UNSAFE_PROBE };
	struct block_dev *bd = create_open("f.img", "raw", 1 << 20, 0);
	char err[512], want[128];

	block_close(bd);
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		uint8_t sector[512] = { 0 };

		memcpy(sector, magics[i].bytes, magics[i].len);
		put_file("f.img", 0, sector, sizeof(sector));
		if (block_format_has_driver(magics[i].format))
			continue;	/* Kestrel's own: its driver judges the header */
		snprintf(want, sizeof(want), "Image is in %s format, which Kestrel cannot open yet",
			 magics[i].format);
		for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
			assert_int_equal(block_open(tmpdir_path("f.img"), NULL, flags[f], &bd, err,
						    sizeof(err)), -1);
			assert_string_equal(err, want);
		}
		assert_int_equal(block_open(tmpdir_path("f.img"), "raw", BLOCK_RDONLY, &bd, err,
					    sizeof(err)), 0);
		block_close(bd);
	}
}

static void test_locks(void **state)
{
	struct block_dev *a = create_open("l.qcow2", "qcow2", 1 << 20, 0), *b;
	char err[512];

	/* A second writer and a reader are refused, with the holder named. */
	assert_int_equal(block_open(tmpdir_path("l.qcow2"), "qcow2", 0, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "lock"));
	assert_int_equal(block_open(tmpdir_path("l.qcow2"), "qcow2", BLOCK_RDONLY, &b, err, sizeof(err)), -1);
	/* -U style: no lock taken, no conflict. */
	assert_int_equal(block_open(tmpdir_path("l.qcow2"), "qcow2", BLOCK_RDONLY | BLOCK_NO_LOCK, &b,
				    err, sizeof(err)), 0);
	block_close(b);
	block_close(a);
	assert_int_equal(block_open(tmpdir_path("l.qcow2"), "qcow2", BLOCK_RDONLY, &a, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("l.qcow2"), "qcow2", BLOCK_RDONLY, &b, err, sizeof(err)), 0);
	block_close(a);
	block_close(b);
}

/*
 * Creating over an image another user has open fails before the file is
 * touched (it used to be truncated first, and the lock refused afterwards).
 */
static void test_create_over_an_image_in_use(void **state)
{
	const char *fmts[] = { "raw", "qcow2" };
	struct block_create_opts o = { .size = 1 << 20 };
	uint8_t w[4096], r[4096];
	struct stat st, was;
	char err[512];

	memset(w, 0x3c, sizeof(w));
	for (int f = 0; f < 2; f++) {
		struct block_dev *bd = create_open("busy", fmts[f], 2 << 20, 0);

		assert_int_equal(block_pwrite(bd, 65536, w, sizeof(w)), 0);
		assert_int_equal(block_flush(bd), 0);
		assert_int_equal(stat(tmpdir_path("busy"), &was), 0);
		for (int g = 0; g < 2; g++) {
			assert_int_equal(block_create(tmpdir_path("busy"), fmts[g], &o, err, sizeof(err)), -1);
			assert_non_null(strstr(err, "Failed to get \"write\" lock\n"
						    "Is another process using the image ["));
			assert_int_equal(stat(tmpdir_path("busy"), &st), 0);
			assert_int_equal(st.st_size, was.st_size);
			assert_int_equal(block_pread(bd, 65536, r, sizeof(r)), 0);
			assert_memory_equal(r, w, sizeof(r));
		}
		block_close(bd);
		/* A reader (shares nothing for writing) keeps creators out as well. */
		assert_int_equal(block_open(tmpdir_path("busy"), fmts[f], BLOCK_RDONLY, &bd, err,
					    sizeof(err)), 0);
		assert_int_equal(block_create(tmpdir_path("busy"), "qcow2", &o, err, sizeof(err)), -1);
		block_close(bd);
		/* Nobody left: create replaces it. */
		assert_int_equal(block_create(tmpdir_path("busy"), "qcow2", &o, err, sizeof(err)), 0);
		assert_int_equal(block_open(tmpdir_path("busy"), NULL, 0, &bd, err, sizeof(err)), 0);
		assert_int_equal(block_length(bd), 1 << 20);
		block_close(bd);
	}
}

static void test_backing_and_overlay(void **state)
{
	struct block_dev *base = create_open("base.raw", "raw", 2 << 20, 0), *top, *ov;
	struct block_create_opts o = { .size = 3 << 20, .backing_file = "base.raw",
				       .backing_fmt = "raw" };
	uint8_t w[4096], r[4096];
	char err[512];

	memset(w, 0x5a, sizeof(w));
	assert_int_equal(block_pwrite(base, 65536, w, sizeof(w)), 0);
	block_close(base);
	assert_int_equal(block_create(tmpdir_path("top.qcow2"), "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("top.qcow2"), NULL, 0, &top, err, sizeof(err)), 0);
	assert_non_null(block_backing(top));
	/* Reads fall through; past the backing file's end they are zeroes. */
	assert_int_equal(block_pread(top, 65536, r, sizeof(r)), 0);
	assert_memory_equal(r, w, sizeof(r));
	assert_int_equal(block_pread(top, (2 << 20) + 100, r, 100), 0);
	assert_int_equal(r[0], 0);
	/* A partial write copies the rest of the cluster up from the backing file. */
	assert_int_equal(block_pwrite(top, 65536 + 100, "x", 1), 0);
	assert_int_equal(block_pread(top, 65536, r, sizeof(r)), 0);
	assert_int_equal(r[99], 0x5a);
	assert_int_equal(r[100], 'x');
	assert_int_equal(r[101], 0x5a);
	block_close(top);

	/* snapshot=on: writes go to an unlinked overlay, the image stays as it was. */
	assert_int_equal(block_open_snapshot_overlay(tmpdir_path("top.qcow2"), NULL, 0, &ov, err,
						     sizeof(err)), 0);
	assert_int_equal(block_length(ov), 3 << 20);
	assert_int_equal(block_pwrite(ov, 65536, "y", 1), 0);
	assert_int_equal(block_pread(ov, 65536 + 100, r, 2), 0);
	assert_int_equal(r[0], 'x');
	block_close(ov);
	assert_int_equal(block_open(tmpdir_path("top.qcow2"), NULL, BLOCK_RDONLY, &top, err, sizeof(err)), 0);
	assert_int_equal(block_pread(top, 65536, r, 1), 0);
	assert_int_equal(r[0], 0x5a);
	block_close(top);
}

static void test_backing_loop(void **state)
{
	struct block_create_opts o = { .size = 1 << 20, .backing_file = "loop.qcow2",
				       .backing_fmt = "qcow2" };
	struct block_dev *bd;
	char err[512];

	/* An image that is its own backing file. */
	assert_int_equal(block_create(tmpdir_path("loop.qcow2"), "qcow2", &o, err, sizeof(err)), 0);
	assert_int_equal(block_open(tmpdir_path("loop.qcow2"), NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "loop"));
	assert_int_equal(block_open(tmpdir_path("loop.qcow2"), NULL, BLOCK_RDONLY | BLOCK_NO_BACKING, &bd,
				    err, sizeof(err)), 0);
	block_close(bd);
}

static void test_status(void **state)
{
	struct block_dev *bd = create_open("s.qcow2", "qcow2", 4 << 20, 0);
	uint64_t pnum, map;
	unsigned flags;
	uint8_t w[65536];

	memset(w, 1, sizeof(w));
	assert_int_equal(block_status(bd, 0, 4 << 20, &pnum, &map, &flags), 0);
	assert_int_equal(pnum, 4 << 20);
	assert_int_equal(flags, 0);
	assert_int_equal(block_pwrite(bd, 131072, w, sizeof(w)), 0);
	assert_int_equal(block_status(bd, 131072, (4 << 20) - 131072, &pnum, &map, &flags), 0);
	assert_int_equal(pnum, 65536);
	assert_true(flags & BLOCK_STATUS_DATA);
	assert_true(flags & BLOCK_STATUS_OFFSET);
	assert_int_equal(block_pwrite_compressed(bd, 0, w, sizeof(w)), 0);
	assert_int_equal(block_status(bd, 0, 65536, &pnum, &map, &flags), 0);
	assert_true(flags & BLOCK_STATUS_COMPRESSED);
	assert_int_equal(block_pread(bd, 100, w, 10), 0);
	assert_int_equal(w[0], 1);
	assert_int_equal(block_write_zeroes(bd, 0, 65536, false), 0);
	assert_int_equal(block_status(bd, 0, 65536, &pnum, &map, &flags), 0);
	assert_int_equal(flags & (BLOCK_STATUS_DATA | BLOCK_STATUS_ZERO), BLOCK_STATUS_ZERO);
	block_close(bd);
}

struct worker {
	struct block_dev *bd;
	uint64_t base, len;
	unsigned seed;
	int failures;
};

/* Each thread owns a region: writes, compressed writes, zeroes and reads race. */
static void *worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *model = calloc(1, w->len), *buf = malloc(65536);
	unsigned x = w->seed;

	for (int i = 0; i < 400; i++) {
		uint64_t off, n;
		x = x * 1103515245 + 12345;
		off = (x >> 8) % w->len;
		n = 1 + (x >> 3) % 65536;
		if (off + n > w->len)
			n = w->len - off;
		switch (x % 4) {
		case 0:
		case 1:
			for (uint64_t k = 0; k < n; k++)
				buf[k] = (uint8_t)(x + k);
			if (block_pwrite(w->bd, w->base + off, buf, n) < 0)
				w->failures++;
			memcpy(model + off, buf, n);
			break;
		case 2:
			if (block_write_zeroes(w->bd, w->base + off, n, x & 16) < 0)
				w->failures++;
			memset(model + off, 0, n);
			break;
		case 3:
			if (block_pread(w->bd, w->base + off, buf, n) < 0 || memcmp(buf, model + off, n))
				w->failures++;
			break;
		}
		if (i % 100 == 99 && block_flush(w->bd) < 0)
			w->failures++;
	}
	for (uint64_t off = 0; off < w->len; off += 65536) {
		uint64_t n = w->len - off < 65536 ? w->len - off : 65536;
		if (block_pread(w->bd, w->base + off, buf, n) < 0 || memcmp(buf, model + off, n))
			w->failures++;
	}
	free(model);
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct block_dev *bd = create_open("t.qcow2", "qcow2", 8 << 20, 0);
	struct block_check_result r;
	struct worker w[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .bd = bd, .base = (uint64_t)i * (2 << 20) + 4096 * i,
					.len = (2 << 20) - 4096 * 4, .seed = (unsigned)i + 1 };
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(block_check(bd, 0, &r, stderr), 0);
	assert_int_equal(r.corruptions + r.leaks + r.check_errors, 0);
	block_close(bd);
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static char open_err[512];

/*
 * Opens name read-only (flags adds BLOCK_CHECK), lists its bitmaps and checks
 * it: how many (-1: the open failed, open_err says why), in how many seconds.
 */
static int list_bitmaps(const char *name, unsigned flags, double *secs)
{
	struct block_bitmap *list = NULL;
	struct block_check_result res;
	struct block_dev *bd;
	struct timespec t0, t1;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (block_open(tmpdir_path(name), "qcow2", BLOCK_RDONLY | BLOCK_NO_LOCK | flags, &bd, open_err,
		       sizeof(open_err)) < 0) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		*secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		return -1;
	}
	n = block_bitmap_list(bd, &list);
	assert_int_equal(block_check(bd, 0, &res, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(list);
	block_close(bd);
	*secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return n;
}

/*
 * Found by fuzz_qcow2: a bitmaps extension whose directory claims 64 MiB in
 * a small file made info and check read megabytes of zeroes past the end
 * and list millions of empty bitmaps, growing the list one entry at a time
 * (minutes, gigabytes).  Now an open refuses such a directory at its first
 * entry, as QEMU's does; opened for check, a directory must lie inside the
 * file, and listing stops at the extension's count and at an entry without
 * a name.
 */
static void test_hostile_bitmap_directory(void **state)
{
	struct block_dev *bd = create_open("bm.qcow2", "qcow2", 16 << 20, 0);
	uint8_t hdr[4096];
	uint32_t ext_at;
	double secs;
	FILE *f;

	block_close(bd);
	f = fopen(tmpdir_path("bm.qcow2"), "r+b");
	assert_non_null(f);
	assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	/* Header extensions start at header_length; put the bitmaps extension first. */
	ext_at = (uint32_t)hdr[100] << 24 | (uint32_t)hdr[101] << 16 | hdr[102] << 8 | hdr[103];
	assert_true(ext_at >= 104 && ext_at < 1024);
	memmove(hdr + ext_at + 32, hdr + ext_at, sizeof(hdr) - ext_at - 32);
	put_be(hdr + ext_at, 0x23852875, 4);		/* bitmaps */
	put_be(hdr + ext_at + 4, 24, 4);
	put_be(hdr + ext_at + 8, 65535, 4);		/* nb_bitmaps */
	put_be(hdr + ext_at + 12, 0, 4);
	put_be(hdr + ext_at + 16, 65535ULL * 1024, 8);	/* directory size: 64 MiB */
	put_be(hdr + ext_at + 24, 65536, 8);		/* directory offset */
	put_be(hdr + 88, 1, 8);				/* autoclear: bitmaps valid */
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(list_bitmaps("bm.qcow2", 0, &secs), -1);
	assert_string_equal(open_err, "Bitmap '' doesn't satisfy the constraints");
	assert_true(secs < 2.0);
	assert_int_equal(list_bitmaps("bm.qcow2", BLOCK_CHECK, &secs), 0);
	assert_true(secs < 2.0);

	/* A directory inside the file, of entries without names: no bitmaps either. */
	put_be(hdr + ext_at + 16, 4096, 8);
	f = fopen(tmpdir_path("bm.qcow2"), "r+b");
	assert_non_null(f);
	assert_int_equal(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(list_bitmaps("bm.qcow2", 0, &secs), -1);
	assert_true(secs < 2.0);
	assert_int_equal(list_bitmaps("bm.qcow2", BLOCK_CHECK, &secs), 0);
	assert_true(secs < 2.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_formats_same_behaviour),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_backing_null_writes_copy_zeroes_up),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_probed_raw_refuses_every_magic),
		cmocka_unit_test(test_foreign_format_refused_by_name),
		cmocka_unit_test(test_locks),
		cmocka_unit_test(test_create_over_an_image_in_use),
		cmocka_unit_test(test_backing_and_overlay),
		cmocka_unit_test(test_backing_loop),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_hostile_bitmap_directory),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
