/*
 * Images named by QEMU block options (src/block/spec.c): --image-opts text
 * and json: names mapped onto the open flags and drivers, protocol names,
 * null-co, and the refusals.  Messages are qemu-img 7.2's where QEMU has
 * one for the case; tests/system/test_img_names.py compares the programs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/block_int.h"
#include "block/gluster.h"
#include "block/iscsi.h"
#include "block/nbd.h"
#include "block/nfs.h"
#include "block/rbd.h"
#include "util/opts.h"

static char dir[64], raw_path[128], qcow2_path[128], overlay_path[128];

static int setup(void **state)
{
	struct block_create_opts o = { .size = 1 << 20 };
	char err[256];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kestrel-spec-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(raw_path, sizeof(raw_path), "%s/r.raw", dir);
	snprintf(qcow2_path, sizeof(qcow2_path), "%s/x.qcow2", dir);
	snprintf(overlay_path, sizeof(overlay_path), "%s/o.qcow2", dir);
	f = fopen(raw_path, "w");
	if (!f || ftruncate(fileno(f), 65536) < 0 || fclose(f))
		return -1;
	if (block_create(qcow2_path, "qcow2", &o, err, sizeof(err)) < 0)
		return -1;
	o.backing_file = "/nonexistent/base.qcow2";
	o.backing_fmt = "qcow2";
	return block_create(overlay_path, "qcow2", &o, err, sizeof(err)) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(raw_path);
	unlink(qcow2_path);
	unlink(overlay_path);
	rmdir(dir);
	return 0;
}

/*
 * Opens --image-opts text (tmpl with its "%s" replaced by arg); returns the
 * node or NULL with the message in err.
 */
static struct block_dev *open_opts(const char *tmpl, const char *arg, unsigned flags, char *err,
				   size_t errlen)
{
	const char *hole = strstr(tmpl, "%s");
	char text[512];
	struct block_dev *bd = NULL;
	struct opts *o;

	assert_non_null(hole);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(hole - tmpl), tmpl, arg, hole + 2);
	o = opts_parse(text, "file", err, errlen);
	assert_non_null(o);
	if (block_open_opts(o, flags, &bd, err, errlen) < 0)
		bd = NULL;
	opts_free(o);
	return bd;
}

static void test_options_set_flags(void **state)
{
	char err[512];
	struct block_dev *bd;

	(void)state;
	bd = open_opts("driver=qcow2,file.filename=%s", qcow2_path, BLOCK_RDONLY, err, sizeof(err));
	assert_non_null(bd);
	assert_string_equal(block_format_name(bd), "qcow2");
	assert_string_equal(block_filename(bd), qcow2_path);
	assert_false(bd->flags & BLOCK_NO_LOCK);
	block_close(bd);

	bd = open_opts("driver=qcow2,file.filename=%s,file.locking=off", qcow2_path, 0, err,
		       sizeof(err));
	assert_non_null(bd);
	assert_true(bd->flags & BLOCK_NO_LOCK);
	block_close(bd);

	bd = open_opts("driver=qcow2,file.filename=%s,cache.direct=on", qcow2_path, BLOCK_RDONLY,
		       err, sizeof(err));
	/* O_DIRECT where the file system has it (ext4, tmpfs since 6.6); else QEMU's refusal too. */
	if (bd) {
		assert_true(bd->direct);
		block_close(bd);
	}
	bd = open_opts("driver=qcow2,file.filename=%s", qcow2_path, BLOCK_RDONLY, err, sizeof(err));
	assert_non_null(bd);
	assert_false(bd->direct);
	block_close(bd);

	bd = open_opts("driver=qcow2,file.filename=%s,force-share=on", qcow2_path, BLOCK_RDONLY,
		       err, sizeof(err));
	assert_non_null(bd);
	assert_true(bd->flags & BLOCK_NO_LOCK);
	block_close(bd);

	assert_null(open_opts("driver=qcow2,file.filename=%s,force-share=on", qcow2_path, 0, err,
			      sizeof(err)));
	assert_string_equal(err, "force-share=on can only be used with read-only images");
	assert_null(open_opts("driver=raw,file.filename=%s,read-only=on", raw_path, 0, err,
			      sizeof(err)));
	assert_string_equal(err, "Block node is read-only");
	assert_null(open_opts("driver=raw,file.filename=%s,read-only=maybe", raw_path,
			      BLOCK_RDONLY, err, sizeof(err)));
	assert_string_equal(err, "Parameter 'read-only' expects 'on' or 'off'");

	/* Probed, and the protocol alone shows as "file", as in qemu-img info. */
	bd = open_opts("file.filename=%s", qcow2_path, BLOCK_RDONLY, err, sizeof(err));
	assert_non_null(bd);
	assert_string_equal(block_format_name(bd), "qcow2");
	block_close(bd);
	bd = open_opts("driver=file,filename=%s", raw_path, BLOCK_RDONLY, err, sizeof(err));
	assert_non_null(bd);
	assert_string_equal(block_format_name(bd), "file");
	assert_int_equal(block_length(bd), 65536);
	block_close(bd);
}

static void test_backing_null(void **state)
{
	char err[512];
	struct block_dev *bd;

	(void)state;
	/* The overlay's backing file does not exist: it only opens without it. */
	assert_null(open_opts("driver=qcow2,file.filename=%s", overlay_path, BLOCK_RDONLY, err,
			      sizeof(err)));
	bd = open_opts("driver=qcow2,file.filename=%s,backing=", overlay_path, BLOCK_RDONLY, err,
		       sizeof(err));
	assert_non_null(bd);
	assert_null(block_backing(bd));
	block_close(bd);
	assert_null(open_opts("driver=qcow2,file.filename=%s,backing=node0", overlay_path,
			      BLOCK_RDONLY, err, sizeof(err)));
	assert_string_equal(err, "Cannot find device='node0' nor node-name='node0'");
}

static void test_refusals(void **state)
{
	static const struct { const char *text, *message; } cases[] = {
		{ "driver=qcow2,file.filename=%s,foo=1",
		  "Block format 'qcow2' does not support the option 'foo'" },
		{ "driver=qcow2,file.filename=%s,file.foo=1",
		  "Block protocol 'file' doesn't support the option 'foo'" },
		{ "driver=qcow2,file.filename=%s,l2-cache-size=1M",
		  "Option 'l2-cache-size' of block format 'qcow2' is not supported by Kestrel" },
		/* encrypt.key-secret is qcow2's key (ignored on a plain image, as QEMU does). */
		{ "driver=qcow2,file.filename=%s,encrypt.format=luks",
		  "Option 'encrypt.format' of block format 'qcow2' is not supported by Kestrel" },
		{ "driver=raw,file.filename=%s,encrypt.key-secret=s0",
		  "Block format 'raw' does not support the option 'encrypt.key-secret'" },
		{ "driver=qcow2,file.filename=%s,file.aio=native",
		  "Option 'aio' of block protocol 'file' is not supported by Kestrel" },
		{ "driver=qcow2,file.filename=%s,file.locking=maybe", "invalid parameter value: maybe" },
		/* The throttle filter opens its child first, then wants its group (QEMU's order). */
		{ "driver=throttle,file.filename=%s", "Please specify a throttle group" },
		{ "driver=throttle,throttle-group=g,file.filename=%s",
		  "Throttle group 'g' does not exist" },
		{ "driver=qcow2,file.driver=nosuch,file.filename=%s", "Unknown driver 'nosuch'" },
		{ "driver=qcow2,filename=%s", "A block device must be specified for \"file\"" },
		{ "filename=%s", "Must specify either driver or file" },
		{ "file.filename=%s,foo=1", "Block format 'qcow2' does not support the option 'foo'" },
		{ "%s", NULL },	/* the implied key "file" names a node */
	};
	char err[512], want[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct block_dev *bd = open_opts(cases[i].text, qcow2_path, BLOCK_RDONLY, err,
						 sizeof(err));
		if (cases[i].message)
			snprintf(want, sizeof(want), "%s", cases[i].message);
		else
			snprintf(want, sizeof(want), "Cannot find device='%s' nor node-name='%s'",
				 qcow2_path, qcow2_path);
		if (bd || strcmp(err, want)) {
			print_error("'%s': got '%s', want '%s'\n", cases[i].text, bd ? "opened" : err,
				    want);
			fail();
		}
	}
}

static void test_null_co(void **state)
{
	char err[512];
	struct block_dev *bd;
	uint8_t buf[512];
	uint64_t pnum, map;
	unsigned flags;

	(void)state;
	bd = open_opts("driver=null-co,size=%s,read-zeroes=on", "4096", 0, err, sizeof(err));
	assert_non_null(bd);
	assert_string_equal(block_format_name(bd), "null-co");
	assert_int_equal(block_length(bd), 4096);
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(block_pwrite(bd, 0, buf, sizeof(buf)), 0);
	assert_int_equal(block_pread(bd, 0, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);	/* the write went nowhere */
	assert_int_equal(block_status(bd, 512, 1024, &pnum, &map, &flags), 0);
	assert_int_equal(flags, BLOCK_STATUS_ZERO | BLOCK_STATUS_OFFSET | BLOCK_STATUS_ALLOCATED);
	assert_int_equal(map, 512);
	block_close(bd);

	/* Without read-zeroes QEMU reports nothing about the content. */
	bd = open_opts("driver=raw,file.driver=null-co,file.size=%s", "1M", BLOCK_RDONLY, err,
		       sizeof(err));
	assert_non_null(bd);
	assert_string_equal(block_format_name(bd), "raw");
	assert_int_equal(block_length(bd), 1 << 20);
	assert_int_equal(block_status(bd, 0, 4096, &pnum, &map, &flags), 0);
	assert_int_equal(flags, 0);
	block_close(bd);

	assert_null(open_opts("driver=null-co,size=%s", "abc", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "Parameter 'size' expects a non-negative number"));
	assert_null(open_opts("driver=qcow2,file.driver=null-co%s", "", BLOCK_RDONLY, err,
			      sizeof(err)));
	assert_string_equal(err, "Image is not in qcow2 format");
	/* latency-ns: QEMU's number, negative (as an int64) refused; a delay per request. */
	assert_null(open_opts("driver=null-co,latency-ns=%s", "-1", 0, err, sizeof(err)));
	assert_string_equal(err, "latency-ns is invalid");
	assert_null(open_opts("driver=null-co,latency-ns=%s", "1ms", 0, err, sizeof(err)));
	assert_string_equal(err, "Parameter 'latency-ns' expects a number");
	bd = open_opts("driver=null-co,latency-ns=%s", "20000000", 0, err, sizeof(err));
	assert_non_null(bd);
	{
		uint8_t b[512];
		uint64_t t0 = block_acct_now();
		assert_int_equal(block_pread(bd, 0, b, sizeof(b)), 0);
		assert_int_equal(block_flush(bd), 0);
		assert_true(block_acct_now() - t0 >= 40000000);
	}
	block_close(bd);
}

static void test_names(void **state)
{
	char err[512], name[512];
	struct block_dev *bd;

	(void)state;
	assert_true(block_name_is_special("json:{}"));
	assert_true(block_name_is_special("nbd+unix:///x?socket=/s"));
	assert_true(block_name_is_special("foo:bar/baz"));
	assert_false(block_name_is_special("./foo:bar"));
	assert_false(block_name_is_special("/tmp/a:b"));

	snprintf(name, sizeof(name),
		 "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}",
		 qcow2_path);
	assert_int_equal(block_open(name, NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(bd), "qcow2");
	assert_string_equal(block_filename(bd), qcow2_path);
	block_close(bd);
	/* -f wins over the JSON's driver, as in qemu-img. */
	assert_int_equal(block_open(name, "raw", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(bd), "raw");
	block_close(bd);

	snprintf(name, sizeof(name), "file:%s", raw_path);
	assert_int_equal(block_open(name, "raw", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	assert_string_equal(block_filename(bd), raw_path);
	block_close(bd);

	assert_int_equal(block_open("null-co://", NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	assert_string_equal(block_format_name(bd), "raw");
	assert_int_equal(block_length(bd), 1ULL << 30);
	block_close(bd);

	static const struct { const char *name, *message; } refused[] = {
		{ "null-co://x", "The only allowed filename for this driver is 'null-co://'" },
		{ "blkdebug:x.qcow2", "blkdebug requires both config file and image path" },
		{ "blkdebug::/nonexistent/x.qcow2",
		  "Could not open '/nonexistent/x.qcow2': No such file or directory" },
		{ "json:[1]", "Invalid JSON object given" },
		{ "json:{", "Could not parse the JSON options: JSON parse error, premature EOI" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int ret = block_open(refused[i].name, NULL, BLOCK_RDONLY, &bd, err, sizeof(err));
		if (ret == 0 || strcmp(err, refused[i].message)) {
			print_error("'%s': got '%s'\n", refused[i].name, ret ? err : "opened");
			fail();
		}
	}
	/* rbd names parse before anything connects (rbd.c); without librbd they are unknown. */
	assert_int_equal(block_open("rbd:pool", NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), -1);
	assert_string_equal(err, block_rbd_available() ? "Pool name is required"
						       : "Unknown protocol 'rbd'");
	/* nbd names parse before anything connects (nbd.c); without libnbd they are unknown. */
	assert_int_equal(block_open("nbd+unix://host/x?socket=/tmp/s", NULL, BLOCK_RDONLY, &bd, err,
				    sizeof(err)), -1);
	assert_string_equal(err, block_nbd_available()
			    ? "Invalid URI: nbd+unix needs no host and exactly one query parameter, "
			      "socket=PATH"
			    : "Unknown protocol 'nbd+unix'");
	/* gluster URLs too (gluster.c): a volume without a path connects nowhere. */
	assert_int_equal(block_open("gluster://h/v", NULL, BLOCK_RDONLY, &bd, err, sizeof(err)),
			 -1);
	assert_string_equal(err, block_gluster_available()
			    ? "invalid URI gluster://h/v\nUsage: file=gluster[+transport]://"
			      "[host[:port]]volume/path[?socket=...][,file.debug=N]"
			      "[,file.logfile=/path/filename.log]"
			    : "Unknown protocol 'gluster'");
	/* nfs names too (nfs.c); without libnfs they are unknown. */
	assert_int_equal(block_open("nfs://h", NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), -1);
	assert_string_equal(err, block_nfs_available() ? "missing file path in URI"
						      : "Unknown protocol 'nfs'");
}

/* iscsi:// URLs (iscsi_parse.c, in every build): libiscsi's grammar, QEMU's message. */
static void test_iscsi_urls(void **state)
{
	static const char *const bad[] = {
		"iscsi://", "iscsi://h", "iscsi://h/iqn", "iscsi://h/iqn/", "iscsi://h/iqn/x",
		"iscsi://h/iqn/1/2", "iscsi://h//1", "iscsi:///iqn/1", "iscsi://h/iqn/16384",
		"iscsi://h/iqn/-1", "iscsi://h/iqn/ 1",
	};
	struct block_iscsi_opts o;
	struct block_dev *bd;
	char err[256], want[256], *st;

	(void)state;
	assert_int_equal(block_iscsi_parse_uri("iscsi://u%p%q@[::1]:3261/iqn.x:y/16383", &o, &st,
					       err, sizeof(err)), 0);
	assert_string_equal(o.user, "u");
	assert_string_equal(o.password, "p%q");
	assert_string_equal(o.portal, "[::1]:3261");
	assert_string_equal(o.target, "iqn.x:y");
	assert_int_equal(o.lun, 16383);
	free(st);
	/* A user without a password (and none in LIBISCSI_CHAP_PASSWORD) is dropped, as QEMU shows. */
	unsetenv("LIBISCSI_CHAP_PASSWORD");
	assert_int_equal(block_iscsi_parse_uri("iscsi://u@h/t/0", &o, &st, err, sizeof(err)), 0);
	assert_null(o.user);
	assert_string_equal(o.portal, "h");
	free(st);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "Failed to parse URL : %s", bad[i]);
		assert_int_equal(block_iscsi_parse_uri(bad[i], &o, &st, err, sizeof(err)), -1);
		assert_string_equal(err, want);
		free(st);
		/* The same before any connection through block_open; unknown without libiscsi. */
		assert_int_equal(block_open(bad[i], NULL, BLOCK_RDONLY, &bd, err, sizeof(err)), -1);
		assert_string_equal(err, block_iscsi_available() ? want : "Unknown protocol 'iscsi'");
	}
}

/* QEMU's nfs_parse_uri and BlockdevOptionsNfs, as block/nfs.c reads them (no server). */
static void test_nfs_names(void **state)
{
	static const struct { const char *uri, *message; } bad[] = {
		{ "nfs:///x/y", "missing hostname in URI" },
		{ "nfs://h", "missing file path in URI" },
		{ "nfs://h:x/p", "Invalid URI specified" },
		{ "nfs://h/p%zz", "Invalid URI specified" },
		{ "nfs://h/p?uid", "Value for NFS parameter expected: uid" },
		{ "nfs://h/p?uid=-1", "Illegal value for NFS parameter: uid" },
		{ "nfs://h/p?gid= 1", "Illegal value for NFS parameter: gid" },
		{ "nfs://h/p?page-cache=1", "Unknown NFS parameter name: page-cache" },
		{ "n", "URI scheme must be 'nfs'" },
	};
	struct block_nfs_opts o;
	char err[256], *storage;
	struct opts *opts;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(block_nfs_parse_uri(bad[i].uri, &o, &storage, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].message);
		free(storage);
	}
	assert_int_equal(block_nfs_parse_uri("nfs://u@[::1]:2049/a%20b/c.raw?uid=0x10;gid=010&"
					     "debug=2#x", &o, &storage, err, sizeof(err)), 0);
	assert_string_equal(o.host, "::1");
	assert_string_equal(o.path, "/a b/c.raw");
	assert_true(o.has[BLOCK_NFS_USER] && o.val[BLOCK_NFS_USER] == 16);
	assert_true(o.has[BLOCK_NFS_GROUP] && o.val[BLOCK_NFS_GROUP] == 8);
	assert_true(o.has[BLOCK_NFS_DEBUG] && !o.has[BLOCK_NFS_READAHEAD]);
	block_nfs_display(&o, err, sizeof(err));
	assert_string_equal(err, "nfs://::1/a b/c.raw?uid=16&gid=8");
	free(storage);
	/* filename= shorter than the scheme: refused without reading past it (fuzz_nfs_uri). */
	opts = opts_parse("filename=n", NULL, err, sizeof(err));
	assert_non_null(opts);
	assert_int_equal(block_nfs_read_opts(opts, "", &o, &storage, err, sizeof(err)), -1);
	assert_string_equal(err, "URI scheme must be 'nfs'");
	free(storage);
	opts_free(opts);
	opts = opts_parse("file.server.type=inet,file.server.host=h,file.path=/e/d,file.user=1x",
			  NULL, err, sizeof(err));
	assert_non_null(opts);
	assert_int_equal(block_nfs_read_opts(opts, "file.", &o, &storage, err, sizeof(err)), -1);
	assert_string_equal(err, "Parameter 'user' expects integer");
	opts_free(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_set_flags),
		cmocka_unit_test(test_backing_null),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_null_co),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_iscsi_urls),
		cmocka_unit_test(test_nfs_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
