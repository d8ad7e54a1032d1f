/*
 * The VMM's NBD server (cli/app_nbd.c) and its monitor commands
 * (ui/nbd_cmds.c): a real server on a Unix socket, exporting block devices
 * the test opened as the VMM opens its drives, read back through Kestrel's
 * own NBD client (block_open of nbd+unix://).  The QMP handlers and HMP
 * lines run against a control table whose NBD members are the VMM's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/app_nbd.h"
#include "ui/hmp.h"
#include "ui/nbd_cmds.h"

static char dir[64], sock[128], path[2][128];
static struct block_dev *disks[2];
static struct app_nbd *srv;

/* The machine: two drives, "d0" (0x11 bytes) and "d1" (0x22 bytes), 1 MiB each. */
static int find(const char *node)
{
	if (!strcmp(node, "d0") || !strcmp(node, "#block001"))
		return 0;
	if (!strcmp(node, "d1") || !strcmp(node, "#block002"))
		return 1;
	return -1;
}

static int c_start(void *o, const struct nbd_listen *a, const char *tls, char *err, size_t n)
{
	return app_nbd_start(srv, a, tls, err, n);
}

static int c_stop(void *o, char *err, size_t n)
{
	return app_nbd_stop(srv, err, n);
}

static int c_add(void *o, const char *id, const char *node, const char *name, const char *desc,
		 bool writable, char *err, size_t n)
{
	int i = find(node);

	if (i < 0) {
		snprintf(err, n, "Cannot find device=%s nor node_name=%s", node, node);
		return -1;
	}
	return app_nbd_add(srv, id, node, name, desc, disks[i], writable, err, n);
}

static int c_del(void *o, const char *id, char *err, size_t n)
{
	return app_nbd_remove(srv, id, err, n);
}

static unsigned c_exports(void *o, struct export_info *out, unsigned max)
{
	return app_nbd_exports(srv, out, max);
}

static unsigned c_blocks(void *o, struct drive_info *out, unsigned max)
{
	memset(out, 0, 2 * sizeof(*out));
	out[0].device = "d0";
	out[1].device = "d1";
	return 2;
}

static const struct control ctl = {
	.nbd_server_start = c_start, .nbd_server_stop = c_stop, .export_add = c_add,
	.export_del = c_del, .exports = c_exports, .blocks = c_blocks,
};

static int setup(void **state)
{
	char err[256];
	uint8_t buf[4096];

	snprintf(dir, sizeof(dir), "/tmp/kestrel-nbdexp.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/nbd.sock", dir);
	for (int i = 0; i < 2; i++) {
		FILE *f;
		snprintf(path[i], sizeof(path[i]), "%s/d%d.raw", dir, i);
		f = fopen(path[i], "wb");
		memset(buf, 0x11 * (i + 1), sizeof(buf));
		for (int k = 0; k < 256; k++)
			fwrite(buf, 1, sizeof(buf), f);
		fclose(f);
		if (block_open(path[i], "raw", 0, &disks[i], err, sizeof(err)) < 0)
			return -1;
	}
	srv = app_nbd_new();
	return srv ? 0 : -1;
}

static int teardown(void **state)
{
	app_nbd_free(srv);
	for (int i = 0; i < 2; i++) {
		block_close(disks[i]);
		unlink(path[i]);
	}
	rmdir(dir);
	return 0;
}

/* One QMP command through its handler; returns the error text or NULL. */
static char *qmp(int (*fn)(struct qmp_session *, struct json_object *, struct json_object **,
			   struct qmp_error *), const char *args, struct json_object **ret)
{
	struct qmp_session s = { .ctl = &ctl };
	struct qmp_error err = { 0 };
	struct json_object *a = json_tokener_parse(args), *r = NULL;

	assert_non_null(a);
	fn(&s, a, &r, &err);
	json_object_put(a);
	if (ret)
		*ret = r;
	else
		json_object_put(r);
	return err.cls ? err.desc : NULL;
}

/* The first byte of export name, read through Kestrel's NBD client; -1 if it cannot open. */
static int read_export(const char *name, bool write)
{
	char uri[256], err[512];
	struct block_dev *bd;
	uint8_t b = 0;

	snprintf(uri, sizeof(uri), "nbd+unix:///%s?socket=%s", name, sock);
	if (block_open(uri, "raw", write ? 0 : BLOCK_RDONLY, &bd, err, sizeof(err)) < 0)
		return -1;
	if (write) {
		uint8_t v = 0x77;
		assert_int_equal(block_pwrite(bd, 4096, &v, 1), 0);
	}
	assert_int_equal(block_pread(bd, 0, &b, 1), 0);
	block_close(bd);
	return b;
}

static char *start_args(char *buf, size_t n)
{
	snprintf(buf, n, "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"%s\"}}}", sock);
	return buf;
}

static void test_qmp_start_add_read_remove_stop(void **state)
{
	char args[256], *e;
	struct json_object *ret = NULL;

	e = qmp(qmp_nbd_server_add, "{\"device\": \"d0\"}", NULL);
	assert_string_equal(e, "NBD server not running");
	free(e);
	assert_null(qmp(qmp_nbd_server_start, start_args(args, sizeof(args)), NULL));
	e = qmp(qmp_nbd_server_start, start_args(args, sizeof(args)), NULL);
	assert_string_equal(e, "NBD server already running");
	free(e);
	assert_null(qmp(qmp_nbd_server_add, "{\"device\": \"d0\"}", NULL));
	assert_null(qmp(qmp_block_export_add, "{\"type\": \"nbd\", \"id\": \"e1\", "
			"\"node-name\": \"#block002\", \"name\": \"second\", \"writable\": true}",
			NULL));
	/* Each export serves its own drive's bytes; an unknown name is not served. */
	assert_int_equal(read_export("d0", false), 0x11);
	assert_int_equal(read_export("second", false), 0x22);
	assert_int_equal(read_export("nope", false), -1);
	/* Writable only where asked: d0 was added read-only. */
	assert_int_equal(read_export("d0", true), -1);
	assert_int_equal(read_export("second", true), 0x22);
	{
		uint8_t v = 0;
		assert_int_equal(block_pread(disks[1], 4096, &v, 1), 0);
		assert_int_equal(v, 0x77);	/* the client's write is in the VM's disk */
	}
	assert_null(qmp(qmp_query_block_exports, "{}", &ret));
	assert_int_equal(json_object_array_length(ret), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(
		json_object_array_get_idx(ret, 1), "node-name")), "#block002");
	json_object_put(ret);
	e = qmp(qmp_block_export_add, "{\"type\": \"nbd\", \"id\": \"e1\", \"node-name\": \"d0\"}",
		NULL);
	assert_string_equal(e, "Block export id 'e1' is already in use");
	free(e);
	e = qmp(qmp_nbd_server_add, "{\"device\": \"nodisk\"}", NULL);
	assert_string_equal(e, "Cannot find device=nodisk nor node_name=nodisk");
	free(e);
	assert_null(qmp(qmp_nbd_server_remove, "{\"name\": \"d0\"}", NULL));
	assert_int_equal(read_export("d0", false), -1);
	e = qmp(qmp_nbd_server_remove, "{\"name\": \"d0\"}", NULL);
	assert_string_equal(e, "Export 'd0' is not found");
	free(e);
	e = qmp(qmp_block_export_del, "{\"id\": \"e1\", \"mode\": \"hard\"}", NULL);
	assert_non_null(strstr(e, "'hard' is not supported"));
	free(e);
	assert_null(qmp(qmp_block_export_del, "{\"id\": \"e1\"}", NULL));
	assert_null(qmp(qmp_nbd_server_stop, "{}", NULL));
	assert_int_equal(access(sock, F_OK), -1);	/* the socket went with the server */
	e = qmp(qmp_nbd_server_stop, "{}", NULL);
	assert_string_equal(e, "NBD server not running");
	free(e);
}

/* A client that chose an export holds it: mode=safe removal is refused until it leaves. */
static void test_an_export_in_use_stays(void **state)
{
	char args[256], uri[256], err[512], *e;
	struct block_dev *bd;

	assert_null(qmp(qmp_nbd_server_start, start_args(args, sizeof(args)), NULL));
	assert_null(qmp(qmp_nbd_server_add, "{\"device\": \"d1\", \"name\": \"x\"}", NULL));
	snprintf(uri, sizeof(uri), "nbd+unix:///x?socket=%s", sock);
	assert_int_equal(block_open(uri, "raw", BLOCK_RDONLY, &bd, err, sizeof(err)), 0);
	e = qmp(qmp_nbd_server_remove, "{\"name\": \"x\"}", NULL);
	assert_string_equal(e, "export 'x' still in use");
	free(e);
	block_close(bd);
	/* The session's end is the server thread's: wait for it to let go. */
	for (int i = 0; i < 200 && (e = qmp(qmp_nbd_server_remove, "{\"name\": \"x\"}", NULL));
	     i++) {
		free(e);
		usleep(10000);
	}
	assert_null(e);
	assert_null(qmp(qmp_nbd_server_stop, "{}", NULL));
}

static void test_refused_and_bad_arguments(void **state)
{
	char *e;

	e = qmp(qmp_nbd_server_start, "{\"addr\": {\"type\": \"vsock\", \"data\": {}}}", NULL);
	assert_non_null(strstr(e, "'addr.type' does not accept value 'vsock'"));
	free(e);
	e = qmp(qmp_nbd_server_start, "{\"addr\": {\"type\": \"inet\", \"data\": "
		"{\"host\": \"127.0.0.1\"}}}", NULL);
	assert_string_equal(e, "Parameter 'addr.data.port' is missing");
	free(e);
	e = qmp(qmp_nbd_server_start, "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": "
		"\"/x\"}}, \"tls-authz\": \"a\"}", NULL);
	assert_non_null(strstr(e, "'tls-authz' is not supported"));
	free(e);
	e = qmp(qmp_nbd_server_start, "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": "
		"\"/x\"}}, \"tls-creds\": \"nope\"}", NULL);
	assert_non_null(strstr(e, "nope"));
	free(e);
	e = qmp(qmp_block_export_add, "{\"type\": \"fuse\", \"id\": \"f\", \"node-name\": \"d0\"}",
		NULL);
	assert_non_null(strstr(e, "'type' does not accept value 'fuse'"));
	free(e);
}

static char *hmp(const char *line)
{
	static char buf[1024];
	FILE *f;

	memset(buf, 0, sizeof(buf));
	f = fmemopen(buf, sizeof(buf) - 1, "w");

	hmp_run_line(&ctl, line, f);
	fclose(f);
	return buf;
}

/* A session that just ended may still hold its export for a moment (its thread's end). */
static char *hmp_settled(const char *line)
{
	char *out = hmp(line);

	for (int i = 0; i < 200 && strstr(out, "still in use"); i++) {
		usleep(10000);
		out = hmp(line);
	}
	return out;
}

static void test_hmp_commands(void **state)
{
	char line[256];

	snprintf(line, sizeof(line), "nbd_server_start -a unix:%s", sock);
	assert_string_equal(hmp(line), "");
	/* -a exported every drive read-only, by its id. */
	assert_int_equal(read_export("d0", false), 0x11);
	assert_int_equal(read_export("d1", true), -1);
	assert_non_null(strstr(hmp("nbd_server_add -w d1"), "already in use"));
	assert_string_equal(hmp_settled("nbd_server_remove d1"), "");
	assert_string_equal(hmp("nbd_server_add -w d1 rw"), "");
	assert_int_equal(read_export("rw", true), 0x22);
	assert_non_null(strstr(hmp("nbd_server_remove nope"), "Export 'nope' is not found"));
	assert_string_equal(hmp("nbd_server_stop"), "");
	assert_non_null(strstr(hmp("nbd_server_stop"), "NBD server not running"));
}

int main(void)
{
	/* As the VMM (kestrel.c): a client gone mid-reply is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmp_start_add_read_remove_stop),
		cmocka_unit_test(test_an_export_in_use_stays),
		cmocka_unit_test(test_refused_and_bad_arguments),
		cmocka_unit_test(test_hmp_commands),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
