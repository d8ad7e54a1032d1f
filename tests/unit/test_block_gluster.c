/*
 * gluster URLs (src/block/gluster.c) as QEMU 7.2's qemu_gluster_parse_uri
 * takes them: transports, default host and port, the unix socket query,
 * the volume/path split, and every form it refuses.  No server needed:
 * tests/system/test_gluster.py talks to a real glusterd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "block/gluster.h"

static int parse(const char *uri, struct block_gluster_opts *o, char **storage, char *err)
{
	return block_gluster_parse_uri(uri, o, storage, err, 512);
}

static void test_tcp_defaults(void **state)
{
	struct block_gluster_opts o;
	char *storage, err[512];

	(void)state;
	assert_int_equal(parse("gluster:///vol/dir/img.qcow2", &o, &storage, err), 0);
	assert_string_equal(o.volume, "vol");
	assert_string_equal(o.path, "dir/img.qcow2");
	assert_int_equal(o.nservers, 1);
	assert_false(o.server[0].is_unix);
	assert_string_equal(o.server[0].host, "localhost");
	assert_null(o.server[0].port);		/* 24007 */
	assert_int_equal(o.debug, BLOCK_GLUSTER_DEBUG_DEFAULT);
	assert_string_equal(o.logfile, "-");
	free(storage);
}

static void test_host_port_ipv6_and_escapes(void **state)
{
	struct block_gluster_opts o;
	char *storage, err[512];

	(void)state;
	assert_int_equal(parse("gluster+tcp://[::1]:24010//v//a%20b", &o, &storage, err), 0);
	assert_string_equal(o.server[0].host, "::1");
	assert_string_equal(o.server[0].port, "24010");
	assert_string_equal(o.volume, "v");
	assert_string_equal(o.path, "a b");
	free(storage);
	assert_int_equal(parse("gluster://user@h.example:7/v/p#frag", &o, &storage, err), 0);
	assert_string_equal(o.server[0].host, "h.example");
	assert_string_equal(o.server[0].port, "7");
	assert_string_equal(o.path, "p");
	free(storage);
}

static void test_unix_socket(void **state)
{
	struct block_gluster_opts o;
	char *storage, err[512];

	(void)state;
	assert_int_equal(parse("gluster+unix:///v/p?socket=/run/g%2Esock", &o, &storage, err), 0);
	assert_true(o.server[0].is_unix);
	assert_string_equal(o.server[0].path, "/run/g.sock");
	free(storage);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"gluster://h/v", "gluster://h/", "gluster://h", "gluster:///v/",
		"gluster+unix:///v/p", "gluster+unix://h/v/p?socket=/s",
		"gluster+unix:///v/p?path=/s", "gluster+unix:///v/p?socket=/s&x=1",
		"gluster://h/v/p?socket=/s", "gluster://h:port/v/p", "gluster://h:123456/v/p",
		"gluster://[::1/v/p", "gluster+foo://h/v/p", "gluster:v/p", "",
	};
	struct block_gluster_opts o;
	char *storage, err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &o, &storage, err), -1);
		assert_non_null(strstr(err, "invalid URI"));
		assert_non_null(strstr(err, "Usage: file=gluster[+transport]://"));
		free(storage);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_true(block_gluster_name("gluster://h/v/p"));
	assert_true(block_gluster_name("gluster+rdma://h/v/p"));
	assert_false(block_gluster_name("glusterx://h/v/p"));
	assert_false(block_gluster_name("/dir/gluster:x"));
	assert_false(block_gluster_name("nbd://h/e"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_defaults),
		cmocka_unit_test(test_host_port_ipv6_and_escapes),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
