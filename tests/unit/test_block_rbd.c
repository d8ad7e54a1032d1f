/*
 * The rbd: pseudo-filename parser (src/block/rbd.c), which is QEMU's
 * qemu_rbd_parse_filename: pool, optional namespace, image, optional
 * snapshot, then ":name=value" pairs with conf and id taken out, '\'
 * escaping the next character everywhere.  tests/system/test_rbd.py
 * compares the programs on a real cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "block/rbd.h"

static void parse_ok(const char *name, struct block_rbd_opts *o)
{
	char err[256] = "";

	assert_int_equal(block_rbd_parse_filename(name, o, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void parse_fails(const char *name, const char *msg)
{
	struct block_rbd_opts o;
	char err[256] = "";

	assert_int_equal(block_rbd_parse_filename(name, &o, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	block_rbd_opts_free(&o);
}

static void test_parts(void **state)
{
	struct block_rbd_opts o;

	(void)state;
	parse_ok("rbd:pool/img", &o);
	assert_string_equal(o.pool, "pool");
	assert_string_equal(o.image, "img");
	assert_string_equal(o.nspace, "");
	assert_null(o.snapshot);
	assert_null(o.conf);
	assert_null(o.user);
	assert_int_equal(o.n_pairs, 0);
	block_rbd_opts_free(&o);

	parse_ok("rbd:pool/ns/img@snap:conf=/etc/c.conf:id=admin:rbd_cache=false:a=b", &o);
	assert_string_equal(o.pool, "pool");
	assert_string_equal(o.nspace, "ns");
	assert_string_equal(o.image, "img");
	assert_string_equal(o.snapshot, "snap");
	assert_string_equal(o.conf, "/etc/c.conf");
	assert_string_equal(o.user, "admin");
	assert_int_equal(o.n_pairs, 2);
	assert_string_equal(o.pairs[0], "rbd_cache");
	assert_string_equal(o.pairs[1], "false");
	assert_string_equal(o.pairs[2], "a");
	assert_string_equal(o.pairs[3], "b");
	block_rbd_opts_free(&o);
}

static void test_escapes(void **state)
{
	struct block_rbd_opts o;

	(void)state;
	/* '\' keeps a delimiter in a part and is dropped from it. */
	parse_ok("rbd:p\\/q/i\\:m\\@g:conf=/a\\:b:mon_host=1.2.3.4\\:6789", &o);
	assert_string_equal(o.pool, "p/q");
	assert_string_equal(o.image, "i:m@g");
	assert_null(o.snapshot);
	assert_string_equal(o.conf, "/a:b");
	assert_int_equal(o.n_pairs, 1);
	assert_string_equal(o.pairs[1], "1.2.3.4:6789");
	block_rbd_opts_free(&o);
	/* As in QEMU, an '@' anywhere after the pool starts the snapshot. */
	parse_ok("rbd:p/img:conf=a@b", &o);
	assert_string_equal(o.image, "img:conf=a");
	assert_string_equal(o.snapshot, "b");
	assert_null(o.conf);
	block_rbd_opts_free(&o);
	/* A trailing '\' stays. */
	parse_ok("rbd:p/img\\", &o);
	assert_string_equal(o.image, "img\\");
	block_rbd_opts_free(&o);
}

static void test_errors(void **state)
{
	(void)state;
	parse_fails("nbd:x", "File name must start with 'rbd:'");
	parse_fails("rbd:pool", "Pool name is required");
	parse_fails("rbd:", "Pool name is required");
	parse_fails("rbd:p/i:conf", "conf option conf has no value");
	parse_fails("rbd:p/i:conf=x:rbd_cache", "conf option rbd_cache has no value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
