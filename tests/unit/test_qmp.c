/*
 * ui/qmp.c: QEMU 7.2's QMP over a fake control table.  Bytes go in as a
 * client would send them; every reply is checked for its CRLF ending, parsed
 * back with json-c and compared with what QEMU sends.
 *
 * Built from qmp.c alone (not libkestrel), with the two functions it calls
 * outside itself, hmp_run_line and run_state_name, stubbed here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ui/hmp.h"
#include "ui/qmp.h"

#ifndef KESTREL_VERSION
#define KESTREL_VERSION "0.1.0"
#endif

#define MAX_MESSAGE (1u << 20)	/* qmp.c's QMP_MAX_MESSAGE */

/*
 * Allocation failure injection: this program's malloc family replaces
 * glibc's (which its own internals, json-c and open_memstream included, call
 * too) and can fail the Nth call and track what was allocated and not freed.
 * AddressSanitizer brings its own allocator, so under it the test is skipped.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#ifndef HAVE_ASAN
#include <dlfcn.h>
#include <execinfo.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

#define LIVE_MAX 8192
static struct {
	bool on;		/* counting and tracking */
	long countdown;		/* the call that finds it at 0 fails; < 0: none */
	bool failed;		/* one did */
	void *live[LIVE_MAX];
	size_t nr_live;
} inject;

/*
 * json-c 0.16's tokener does not survive a failed allocation (it passes an
 * unchecked strdup of a member name on to strlen), so failures are injected
 * everywhere but inside json_tokener_parse_ex: the next allocation after it
 * takes the failure instead.
 */
static bool inject_in_tokener(void)
{
	void *frames[64];
	bool in = false;
	Dl_info info;
	int n;

	inject.on = false;	/* backtrace and dladdr may allocate */
	n = backtrace(frames, 64);
	for (int i = 0; i < n && !in; i++)
		in = dladdr(frames[i], &info) && info.dli_sname &&
		     strcmp(info.dli_sname, "json_tokener_parse_ex") == 0;
	inject.on = true;
	return in;
}

static bool inject_fail(void)
{
	if (!inject.on || inject.countdown < 0)
		return false;
	if (inject.countdown > 0) {
		inject.countdown--;
		return false;
	}
	if (inject_in_tokener())
		return false;
	inject.countdown = -1;
	inject.failed = true;
	return true;
}

static void *inject_track(void *p)
{
	if (p && inject.on && inject.nr_live < LIVE_MAX)
		inject.live[inject.nr_live++] = p;
	return p;
}

static void inject_untrack(void *p)
{
	for (size_t i = 0; p && i < inject.nr_live; i++) {
		if (inject.live[i] == p) {
			inject.live[i] = inject.live[--inject.nr_live];
			return;
		}
	}
}

void *malloc(size_t size)
{
	return inject_fail() ? NULL : inject_track(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
	return inject_fail() ? NULL : inject_track(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
	void *q;

	if (inject_fail())
		return NULL;
	q = __libc_realloc(p, size);
	if (q || !size)
		inject_untrack(p);
	return inject_track(q);
}

void free(void *p)
{
	inject_untrack(p);
	__libc_free(p);
}
#endif

/* ---- fakes ---------------------------------------------------------------- */

struct fake {
	enum run_state state;
	const char *name;
	bool has_uuid;
	uint8_t uuid[16];
	unsigned cpus;
	unsigned nr_chardevs;
	int stops, conts, resets, powerdowns, quits;
	const char *fail;	/* actions fail with this message */
	char hmp_line[256];
	struct qmp_session *session;	/* for callbacks that act on it */
	bool event_on_stop;
	unsigned cpus_hole;	/* cpu_info fails for this index, when non-zero */
	struct drive_info drives[2];
	unsigned nr_drives;
	struct net_info nets[4];
	unsigned nr_nets;
	char throttle_group[32];	/* the last set_io_throttle: "" for none */
	struct throttle_config throttle;
};

static struct fake fake;

const char *run_state_name(enum run_state state)
{
	switch (state) {
	case RUN_STATE_RUNNING:
		return "running";
	case RUN_STATE_PAUSED:
		return "paused";
	case RUN_STATE_SHUTDOWN:
		return "shutdown";
	case RUN_STATE_INTERNAL_ERROR:
		return "internal-error";
	case RUN_STATE_IO_ERROR:
		return "io-error";
	case RUN_STATE_PRELAUNCH:
		return "prelaunch";
	case RUN_STATE_DEBUG:
		return "debug";
	}
	return "running";
}

int hmp_run_line(const struct control *ctl, const char *line, FILE *out)
{
	snprintf(fake.hmp_line, sizeof(fake.hmp_line), "%s", line);
	if (strcmp(line, "info status") == 0) {
		fprintf(out, "VM status: %s\r\n", run_state_name(ctl->run_state(ctl->opaque)));
		return 0;
	}
	fprintf(out, "unknown command: '%s'\r\n", line);
	return -1;
}

static const char *f_name(void *opaque)
{
	return ((struct fake *)opaque)->name;
}

static bool f_uuid(void *opaque, uint8_t out[16])
{
	struct fake *f = opaque;

	memcpy(out, f->uuid, 16);
	return f->has_uuid;
}

static enum run_state f_run_state(void *opaque)
{
	return ((struct fake *)opaque)->state;
}

static unsigned f_cpu_count(void *opaque)
{
	return ((struct fake *)opaque)->cpus;
}

static bool f_cpu_info(void *opaque, unsigned index, struct cpu_info *out)
{
	struct fake *f = opaque;

	if (index >= f->cpus || (f->cpus_hole && index == f->cpus_hole))
		return false;
	*out = (struct cpu_info){ .cpu_index = index, .thread_id = 1000 + index,
				  .socket_id = index / 2, .core_id = index % 2,
				  .thread_index = 0 };
	return true;
}

static unsigned f_chardevs(void *opaque, struct chardev_info *out, unsigned max)
{
	static const struct chardev_info all[] = {
		{ "serial0", "stdio", true },
		{ "compat_monitor0", "unix:/tmp/q.sock,server=on", false },
	};
	unsigned n = ((struct fake *)opaque)->nr_chardevs;

	for (unsigned i = 0; i < n && i < max; i++)
		out[i] = all[i % 2];
	return n;
}

static int f_action(struct fake *f, int *count, char *err, size_t errlen)
{
	(*count)++;
	if (f->fail) {
		snprintf(err, errlen, "%s", f->fail);
		return -1;
	}
	return 0;
}

static int f_stop(void *opaque, char *err, size_t errlen)
{
	struct fake *f = opaque;

	if (f->event_on_stop)
		qmp_session_event(f->session, "STOP", NULL);
	return f_action(f, &f->stops, err, errlen);
}

static int f_cont(void *opaque, char *err, size_t errlen)
{
	return f_action(opaque, &((struct fake *)opaque)->conts, err, errlen);
}

static int f_reset(void *opaque, char *err, size_t errlen)
{
	return f_action(opaque, &((struct fake *)opaque)->resets, err, errlen);
}

static int f_powerdown(void *opaque, char *err, size_t errlen)
{
	return f_action(opaque, &((struct fake *)opaque)->powerdowns, err, errlen);
}

static void f_quit(void *opaque)
{
	((struct fake *)opaque)->quits++;
}

static unsigned f_blocks(void *opaque, struct drive_info *out, unsigned max)
{
	struct fake *f = opaque;

	for (unsigned i = 0; i < f->nr_drives && i < max; i++)
		out[i] = f->drives[i];
	return f->nr_drives;
}

static unsigned f_nets(void *opaque, struct net_info *out, unsigned max)
{
	struct fake *f = opaque;

	for (unsigned i = 0; i < f->nr_nets && i < max; i++)
		out[i] = f->nets[i];
	return f->nr_nets;
}

static int f_throttle(void *opaque, const char *device, const char *group,
		      const struct throttle_config *c, char *err, size_t errlen)
{
	struct fake *f = opaque;

	if (strcmp(device, "virtio0")) {
		snprintf(err, errlen, "Device '%s' not found", device);
		return -1;
	}
	snprintf(f->throttle_group, sizeof(f->throttle_group), "%s", group ? group : "(none)");
	f->throttle = *c;
	return 0;
}

static unsigned f_peripherals(void *opaque, struct peripheral_info *out, unsigned max)
{
	static const struct peripheral_info all[] = {
		{ "disk0", "virtio-blk-pci" }, { "rng0", "virtio-rng-pci" },
		{ "b0", "virtio-balloon-pci" },
	};

	for (unsigned i = 0; i < 3 && i < max; i++)
		out[i] = all[i];
	return 3;
}

static const struct control ctl = {
	.opaque = &fake,
	.peripherals = f_peripherals,
	.set_io_throttle = f_throttle,
	.blocks = f_blocks,
	.net_clients = f_nets,
	.name = f_name,
	.uuid = f_uuid,
	.run_state = f_run_state,
	.cpu_count = f_cpu_count,
	.cpu_info = f_cpu_info,
	.chardevs = f_chardevs,
	.stop = f_stop,
	.cont = f_cont,
	.system_reset = f_reset,
	.system_powerdown = f_powerdown,
	.quit = f_quit,
};

/* ---- client side ---------------------------------------------------------- */

struct out {
	char *data;
	size_t len, cap, read;
	int writes;
	bool free_on_write;	/* the transport drops the session mid-write */
};

static struct out out;

static void capture(void *opaque, const char *data, size_t len)
{
	struct out *o = opaque;
#ifndef HAVE_ASAN
	bool on = inject.on;

	inject.on = false;	/* the client's buffer is not under test */
#endif
	if (o->len + len + 1 > o->cap) {
		while (o->len + len + 1 > o->cap)
			o->cap = o->cap ? o->cap * 2 : 4096;
		o->data = realloc(o->data, o->cap);
		assert_non_null(o->data);
	}
	memcpy(o->data + o->len, data, len);
	o->len += len;
	o->data[o->len] = '\0';
	o->writes++;
#ifndef HAVE_ASAN
	inject.on = on;
#endif
	if (o->free_on_write && fake.session) {
		qmp_session_free(fake.session);
		fake.session = NULL;
	}
}

static int setup(void **state)
{
	memset(&fake, 0, sizeof(fake));
	fake.cpus = 2;
	fake.nr_chardevs = 2;
	memset(&out, 0, sizeof(out));
	fake.session = qmp_session_new(&ctl, capture, &out);
	assert_non_null(fake.session);
	return 0;
}

static int teardown(void **state)
{
	qmp_session_free(fake.session);
	free(out.data);
	return 0;
}

static void send_bytes(const void *buf, size_t len)
{
	qmp_session_input(fake.session, buf, len);
}

static void send_str(const char *s)
{
	send_bytes(s, strlen(s));
}

/* The next message, raw, without its CRLF; NULL when none is pending. */
static char *next_raw(void)
{
	char *start = out.data + out.read, *crlf;
	char *line;

	if (out.read >= out.len)
		return NULL;
	crlf = strstr(start, "\r\n");
	assert_non_null(crlf);	/* every message ends with CRLF */
	line = strndup(start, (size_t)(crlf - start));
	assert_non_null(line);
	assert_null(strchr(line, '\n'));	/* one message, one line */
	out.read += (size_t)(crlf - start) + 2;
	return line;
}

static struct json_object *next_msg(void)
{
	struct json_tokener *tok = json_tokener_new_ex(128);
	struct json_object *o;
	char *line = next_raw();

	assert_non_null(line);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, line, (int)strlen(line));
	if (!o)
		fail_msg("reply is not strict JSON: %s", line);
	assert_int_equal(json_tokener_get_parse_end(tok), strlen(line));
	assert_true(json_object_is_type(o, json_type_object));
	json_tokener_free(tok);
	free(line);
	return o;
}

static void expect_nothing(void)
{
	char *line = next_raw();

	if (line)
		fail_msg("unexpected message: %s", line);
}

static void expect_raw(const char *want)
{
	char *line = next_raw();

	assert_non_null(line);
	assert_string_equal(line, want);
	free(line);
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no member '%s' in %s", key, json_object_to_json_string(o));
	return v;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static bool get_bool(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

static bool has(struct json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

static void expect_error(const char *cls, const char *desc)
{
	struct json_object *m = next_msg(), *e = get(m, "error");

	assert_false(has(m, "return"));
	assert_int_equal(json_object_object_length(e), 2);
	assert_string_equal(get_str(e, "class"), cls);
	assert_string_equal(get_str(e, "desc"), desc);
	json_object_put(m);
}

/* The "return" value of the next reply, which must have no id; put() the result. */
static struct json_object *expect_return(void)
{
	struct json_object *m = next_msg(), *r;

	if (!has(m, "return"))
		fail_msg("not a return: %s", json_object_to_json_string(m));
	assert_int_equal(json_object_object_length(m), 1);
	r = json_object_get(get(m, "return"));
	json_object_put(m);
	return r;
}

static void expect_empty_return(void)
{
	struct json_object *r = expect_return();

	assert_true(json_object_is_type(r, json_type_object));
	assert_int_equal(json_object_object_length(r), 0);
	json_object_put(r);
}

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"kestrel-" KESTREL_VERSION "\"}, \"capabilities\": [\"oob\"]}}";

static void negotiate(void)
{
	expect_raw(greeting);
	send_str("{\"execute\": \"qmp_capabilities\"}\r\n");
	expect_raw("{\"return\": {}}");
}

/* Runs a command (arguments optional) in a negotiated session. */
static void run(const char *cmd, const char *args)
{
	char buf[512];

	if (args)
		snprintf(buf, sizeof(buf), "{\"execute\": \"%s\", \"arguments\": %s}\n", cmd, args);
	else
		snprintf(buf, sizeof(buf), "{\"execute\": \"%s\"}\n", cmd);
	send_str(buf);
}

/* ---- protocol ------------------------------------------------------------- */

static void test_greeting(void **state)
{
	/* Byte for byte what QEMU 7.2 sends, key order included. */
	assert_int_equal(out.writes, 1);
	expect_raw(greeting);
	expect_nothing();
}

static void test_negotiation(void **state)
{
	expect_raw(greeting);
	send_str("{\"execute\": \"query-status\"}");
	expect_error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	send_str("{\"execute\": \"no-such-command\"}");
	expect_error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	/* Errors other than CommandNotFound keep their text. */
	send_str("{\"execute\": \"query-status\", \"bogus\": 1}");
	expect_error("GenericError", "QMP input member 'bogus' is unexpected");
	send_str("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"x\": 1}}");
	expect_error("GenericError", "Parameter 'x' is unexpected");
	/* Nothing happened to the machine. */
	assert_int_equal(fake.stops, 0);
	send_str("{\"execute\": \"stop\"}");
	expect_error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
	assert_int_equal(fake.stops, 0);

	send_str("{\"execute\": \"qmp_capabilities\"}");
	expect_raw("{\"return\": {}}");
	send_str("{\"execute\": \"qmp_capabilities\"}");
	expect_error("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
	send_str("{\"execute\": \"no-such-command\"}");
	expect_error("CommandNotFound", "The command no-such-command has not been found");
	expect_nothing();
}

static void test_capabilities_oob(void **state)
{
	expect_raw(greeting);
	send_str("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": \"oob\"}}");
	expect_error("GenericError", "Invalid parameter type for 'enable', expected: array");
	send_str("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [1]}}");
	expect_error("GenericError", "Invalid parameter type for 'enable[0]', expected: string");
	send_str("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\", \"x\"]}}");
	expect_error("GenericError", "Parameter 'enable[1]' does not accept value 'x'");
	send_str("{\"exec-oob\": \"qmp_capabilities\"}");
	expect_error("GenericError", "QMP input member 'exec-oob' is unexpected");

	send_str("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
	expect_empty_return();
	/* With oob on, exec-oob is understood, but no command here runs out of band. */
	send_str("{\"exec-oob\": \"query-status\", \"id\": 7}");
	expect_raw("{\"id\": 7, \"error\": {\"class\": \"GenericError\", "
		   "\"desc\": \"The command query-status does not support OOB\"}}");
	send_str("{\"exec-oob\": \"query-status\", \"execute\": \"query-status\"}");
	expect_error("GenericError", "QMP input member 'execute' clashes with 'exec-oob'");
	send_str("{\"exec-oob\": 1}");
	expect_error("GenericError", "QMP input member 'exec-oob' must be a string");
}

static void test_oob_off_rejects_exec_oob(void **state)
{
	negotiate();
	send_str("{\"exec-oob\": \"query-status\"}");
	expect_error("GenericError", "QMP input member 'exec-oob' is unexpected");
}

static void test_id_echo(void **state)
{
	negotiate();
	send_str("{\"execute\": \"query-kvm\", \"id\": \"libvirt-1\"}");
	expect_raw("{\"return\": {\"enabled\": true, \"present\": true}, \"id\": \"libvirt-1\"}");
	send_str("{\"id\": 42, \"execute\": \"no-such\"}");
	expect_raw("{\"id\": 42, \"error\": {\"class\": \"CommandNotFound\", "
		   "\"desc\": \"The command no-such has not been found\"}}");
	/* Any JSON value, printed as QEMU prints it. */
	send_str("{\"execute\": \"cont\", \"id\": null}");
	expect_raw("{\"return\": {}, \"id\": null}");
	/* Object members come out in QEMU's QDict order, not as sent. */
	send_str("{\"execute\": \"cont\", \"id\": [1, {\"b\": true, \"a\": 0.5}, \"\xc3\xa9\"]}");
	expect_raw("{\"return\": {}, \"id\": [1, {\"a\": 0.5, \"b\": true}, \"\\u00E9\"]}");
	send_str("{\"execute\": \"cont\", \"id\": 18446744073709551615}");
	expect_raw("{\"return\": {}, \"id\": 18446744073709551615}");
	/* Errors about the request still carry its id. */
	send_str("{\"id\": \"x\", \"arguments\": {}}");
	expect_raw("{\"id\": \"x\", \"error\": {\"class\": \"GenericError\", "
		   "\"desc\": \"QMP input lacks member 'execute'\"}}");
	send_str("{\"execute\": \"balloon\", \"id\": \"b\", \"arguments\": {\"value\": \"1\"}}");
	expect_raw("{\"id\": \"b\", \"error\": {\"class\": \"GenericError\", "
		   "\"desc\": \"Invalid parameter type for 'value', expected: integer\"}}");
}

static void test_message_rules(void **state)
{
	negotiate();
	send_str("{}");
	expect_error("GenericError", "QMP input lacks member 'execute'");
	send_str("{\"execute\": 1}");
	expect_error("GenericError", "QMP input member 'execute' must be a string");
	send_str("{\"execute\": \"query-status\", \"arguments\": []}");
	expect_error("GenericError", "QMP input member 'arguments' must be an object");
	send_str("{\"execute\": \"query-status\", \"foo\": 1}");
	expect_error("GenericError", "QMP input member 'foo' is unexpected");
	send_str("[1, 2] \"str\" 3 null true ");
	for (int i = 0; i < 5; i++)
		expect_error("GenericError", "QMP input must be a JSON object");
	expect_nothing();
}

static void test_argument_checking(void **state)
{
	negotiate();
	run("set_link", "{}");
	expect_error("GenericError", "Parameter 'name' is missing");
	run("set_link", "{\"name\": \"net0\"}");
	expect_error("GenericError", "Parameter 'up' is missing");
	run("set_link", "{\"name\": 1, \"up\": true}");
	expect_error("GenericError", "Invalid parameter type for 'name', expected: string");
	run("set_link", "{\"name\": \"n\", \"up\": \"yes\"}");
	expect_error("GenericError", "Invalid parameter type for 'up', expected: boolean");
	run("set_link", "{\"name\": \"n\", \"up\": true, \"x\": 1}");
	expect_error("GenericError", "Parameter 'x' is unexpected");
	run("balloon", "{\"value\": 1.5}");
	expect_error("GenericError", "Invalid parameter type for 'value', expected: integer");
	run("balloon", "{\"value\": 9223372036854775808}");
	expect_error("GenericError", "Invalid parameter type for 'value', expected: integer");
	run("balloon", "{\"value\": null}");
	expect_error("GenericError", "Invalid parameter type for 'value', expected: integer");
	run("query-status", "{\"verbose\": true}");
	expect_error("GenericError", "Parameter 'verbose' is unexpected");
	run("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": \"0\"}");
	expect_error("GenericError", "Invalid parameter type for 'cpu-index', expected: integer");
	expect_nothing();
}

/* ---- input handling ------------------------------------------------------- */

static void test_invalid_json_recovers(void **state)
{
	struct json_object *m, *e;

	negotiate();
	send_str("{\"execute\": nope}\r\n");
	m = next_msg();
	e = get(m, "error");
	assert_string_equal(get_str(e, "class"), "GenericError");
	assert_int_equal(strncmp(get_str(e, "desc"), "JSON parse error, ", 18), 0);
	assert_false(has(m, "id"));
	json_object_put(m);
	expect_nothing();
	run("query-kvm", NULL);
	json_object_put(expect_return());

	/* A broken message followed by a good one in the same read. */
	send_str("{\"execute\" \"x\"}{\"execute\": \"query-kvm\", \"id\": 1}");
	m = next_msg();
	assert_true(has(m, "error"));
	json_object_put(m);
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 1);
	assert_true(has(m, "return"));
	json_object_put(m);
	expect_nothing();

	/* A stray closing bracket, then a command. */
	send_str("}\n{\"execute\": \"query-kvm\", \"id\": 2}\n");
	m = next_msg();
	assert_true(has(m, "error"));
	json_object_put(m);
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 2);
	json_object_put(m);
	expect_nothing();

	/* Unquoted words: one error for the whole message, and what follows the
	 * error up to the next '{' is dropped with it. */
	send_str("{not json} }]\n{\"execute\": \"query-kvm\", \"id\": 3}");
	m = next_msg();
	assert_string_equal(get_str(get(m, "error"), "desc"),
			    "JSON parse error, quoted object property name expected");
	json_object_put(m);
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 3);
	json_object_put(m);
	expect_nothing();
}

/* QEMU 7.2 refuses a repeated key at any depth (qobject/json-parser.c parse_pair). */
static void test_duplicate_key(void **state)
{
	negotiate();
	run("query-kvm", NULL);
	json_object_put(expect_return());
	send_str("{\"execute\": \"query-status\", \"execute\": \"query-name\"}\n");
	expect_error("GenericError", "JSON parse error, duplicate key");
	send_str("{\"execute\": \"query-kvm\", \"arguments\": {\"a\": 1, \"a\": 2}}\n");
	expect_error("GenericError", "JSON parse error, duplicate key");
	/* The same key in two different objects is no duplicate; nor is a ':' in a string. */
	send_str("{\"execute\": \"query-kvm\", \"id\": {\"execute\": \"a:b\"}}\n");
	json_object_put(next_msg());
	expect_nothing();
	run("query-kvm", NULL);
	json_object_put(expect_return());
	expect_nothing();
}

/*
 * A line cut short inside a string: QEMU's lexer takes no newline there, so
 * the client gets an error at once and its next line is a fresh command.
 */
static void test_truncated_line_recovers(void **state)
{
	struct json_object *m;

	negotiate();
	send_str("{\"execute\": \"query-sta\n");
	expect_error("GenericError", "JSON parse error, stray '\"query-sta\n'");
	expect_nothing();
	send_str("{\"execute\": \"query-kvm\", \"id\": 1}\n");
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 1);
	assert_true(has(m, "return"));
	json_object_put(m);
	/* Split over two reads, with a tab inside a single-quoted string. */
	send_str("{'execute': 'query");
	expect_nothing();
	send_str("\tkvm'}{\"execute\": \"query-kvm\", \"id\": 2}");
	expect_error("GenericError", "JSON parse error, stray ''query\t'");
	/* QEMU lexes on after the error: "kvm'}" gets one error, then the command runs. */
	m = next_msg();
	assert_true(has(m, "error"));
	json_object_put(m);
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 2);
	assert_true(has(m, "return"));
	json_object_put(m);
	expect_nothing();
}

static void test_bad_strings(void **state)
{
	negotiate();
	send_str("{\"execute\": \"query-kvm\", \"id\": \"\xff\"}");
	expect_error("GenericError", "JSON parse error, stray byte 0xff");
	/* What follows the 0xFF is the tail of a broken message: skipped. */
	expect_nothing();
	send_str("{\"execute\": \"query-kvm\", \"id\": \"\xc3\x28\"}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	send_str("{\"execute\": \"query-kvm\", \"id\": \"a\\u0000b\"}");
	expect_error("GenericError", "JSON parse error, \\u0000 is not supported");
	send_str("{\"execute\": \"query-kvm\", \"id\": 1e400}");
	expect_error("GenericError", "JSON parse error, number out of range");
	send_str("{\"execute\": \"query-kvm\", \"id\": \"\xf0\x9f\x98\x80\\n\"}");
	expect_raw("{\"return\": {\"enabled\": true, \"present\": true}, "
		   "\"id\": \"\\uD83D\\uDE00\\n\"}");
	expect_nothing();
}

static void test_control_char_resets(void **state)
{
	negotiate();
	/* qmp-spec: a control character forces the parser back to a known state. */
	send_str("{\"execute\": \"query-kv");
	send_bytes("\x04", 1);
	expect_error("GenericError", "JSON parse error, stray byte 0x04");
	send_str("{\"execute\": \"query-kvm\"}");
	json_object_put(expect_return());
	expect_nothing();
}

static void test_split_reads(void **state)
{
	const char *msg = "  {\"execute\":\r\n \"query-name\", \"id\": \"s\xc3\xa9\"}";
	struct json_object *m;

	negotiate();
	fake.name = "vm0";
	/* One byte at a time, the two-byte character split too. */
	for (size_t i = 0; msg[i]; i++) {
		expect_nothing();
		send_bytes(msg + i, 1);
	}
	m = next_msg();
	assert_string_equal(get_str(m, "id"), "s\xc3\xa9");
	assert_string_equal(get_str(get(m, "return"), "name"), "vm0");
	json_object_put(m);
	send_str("\r\n");
	expect_nothing();

	/* A top-level number is only complete once something follows it. */
	send_str("12");
	expect_nothing();
	send_str("\n");
	expect_error("GenericError", "QMP input must be a JSON object");
	expect_nothing();
}

static void test_two_messages_one_read(void **state)
{
	struct json_object *m;

	negotiate();
	send_str("{\"execute\": \"stop\", \"id\": 1}{\"execute\": \"cont\", \"id\": 2}\r\n"
		 "\t{\"execute\": \"query-kvm\", \"id\": 3}");
	for (int id = 1; id <= 3; id++) {
		m = next_msg();
		assert_int_equal(get_int(m, "id"), id);
		assert_true(has(m, "return"));
		json_object_put(m);
	}
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.conts, 1);
	expect_nothing();
}

static char *make_message(size_t total, const char *fill)
{
	/* {"execute": "query-kvm", "id": "xxx...x"} of exactly total bytes */
	static const char head[] = "{\"execute\": \"query-kvm\", \"id\": \"";
	static const char tail[] = "\"}";
	size_t hl = strlen(head), tl = strlen(tail);
	char *m = malloc(total + 1);

	assert_non_null(m);
	memcpy(m, head, hl);
	for (size_t i = hl; i < total - tl; i++)
		m[i] = fill[(i - hl) % strlen(fill)];
	if (m[total - tl - 1] == '\\')
		m[total - tl - 1] = 'x';	/* would escape the closing quote */
	memcpy(m + total - tl, tail, tl);
	m[total] = '\0';
	return m;
}

static void test_size_limit(void **state)
{
	struct json_object *m;
	char *big;

	negotiate();
	/* Exactly at the limit is fine. */
	big = make_message(MAX_MESSAGE, "x");
	send_str(big);
	m = next_msg();
	assert_int_equal(json_object_get_string_len(get(m, "id")),
			 MAX_MESSAGE - strlen("{\"execute\": \"query-kvm\", \"id\": \"\"}"));
	json_object_put(m);
	free(big);

	/* One byte more is refused, the rest of it skipped whole (its braces,
	 * brackets and escaped quotes inside strings included), and the next
	 * command answered. */
	big = make_message(MAX_MESSAGE + 1000, "{[\\\"x]}");
	send_bytes(big, MAX_MESSAGE / 2);
	expect_nothing();
	send_str(big + MAX_MESSAGE / 2);
	expect_error("GenericError", "JSON message size limit exceeded");
	expect_nothing();
	free(big);
	send_str("{\"execute\": \"query-kvm\", \"id\": \"after\"}");
	m = next_msg();
	assert_string_equal(get_str(m, "id"), "after");
	json_object_put(m);
	expect_nothing();
}

static void test_size_limit_nested(void **state)
{
	size_t n = 0, cap = MAX_MESSAGE + 4096;
	char *big = malloc(cap);
	struct json_object *m;

	negotiate();
	assert_non_null(big);
	n += (size_t)sprintf(big, "{\"execute\": \"cont\", \"id\": [");
	while (n < MAX_MESSAGE + 100)
		n += (size_t)sprintf(big + n, "{\"a\": [1, \"}\"]}, ");
	n += (size_t)sprintf(big + n, "0]}\n{\"execute\": \"query-kvm\", \"id\": 5}\n");
	send_bytes(big, n);
	free(big);
	expect_error("GenericError", "JSON message size limit exceeded");
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 5);
	json_object_put(m);
	expect_nothing();
	assert_int_equal(fake.conts, 0);
}

static void test_depth_limit(void **state)
{
	char buf[512];
	size_t n = 0;
	struct json_object *m;

	negotiate();
	/* 64 levels (the message object and 63 inside it) are fine... */
	n = (size_t)sprintf(buf, "{\"execute\": \"cont\", \"id\": ");
	for (int i = 0; i < 63; i++)
		buf[n++] = '[';
	for (int i = 0; i < 63; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	send_bytes(buf, n);
	m = next_msg();
	assert_true(has(m, "return"));
	json_object_put(m);
	assert_int_equal(fake.conts, 1);

	/* ...65 are not, and the whole message is dropped. */
	n = (size_t)sprintf(buf, "{\"execute\": \"cont\", \"id\": ");
	for (int i = 0; i < 64; i++)
		buf[n++] = '[';
	for (int i = 0; i < 64; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	n += (size_t)sprintf(buf + n, "{\"execute\": \"query-kvm\", \"id\": 9}");
	send_bytes(buf, n);
	expect_error("GenericError", "JSON nesting depth limit exceeded");
	m = next_msg();
	assert_int_equal(get_int(m, "id"), 9);
	json_object_put(m);
	expect_nothing();
	assert_int_equal(fake.conts, 1);
}

/* ---- commands ------------------------------------------------------------- */

static void test_query_version(void **state)
{
	negotiate();
	run("query-version", NULL);
	expect_raw("{\"return\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
		   "\"package\": \"kestrel-" KESTREL_VERSION "\"}}");
}

static void test_query_commands(void **state)
{
	static const char *const want[] = {
		"qmp_capabilities", "query-version", "query-commands", "query-status",
		"query-name", "query-uuid", "query-kvm", "query-cpus-fast", "query-block",
		"query-blockstats", "query-rx-filter", "query-chardev", "query-pci", "query-balloon",
		"query-migrate", "query-machines", "query-cpu-definitions", "stop", "cont",
		"system_reset", "system_powerdown", "quit", "balloon",
		"human-monitor-command", "set_link", "device_del", "block_set_io_throttle",
		"qom-get", "qom-set",
		"nbd-server-start", "nbd-server-add", "nbd-server-remove", "nbd-server-stop",
		"block-export-add", "block-export-del", "query-block-exports",
		"query-target", "qom-list-types", "device-list-properties", "qom-list-properties",
		"query-command-line-options", "query-migrate-capabilities",
		"query-sev-capabilities", "query-sgx-capabilities", "query-cpu-model-expansion",
		"query-tpm-models", "query-tpm-types", "query-hotpluggable-cpus",
		"query-qmp-schema", "query-named-block-nodes", "query-block-jobs",
		"query-iothreads", "migrate-set-capabilities", "qom-list",
		"getfd", "closefd", "add-fd", "remove-fd", "query-fdsets",
		"send-key", "input-send-event", "query-mice",
		"query-vnc", "change-vnc-password", "set_password", "screendump",
		"query-display-options",
	};
	size_t n = sizeof(want) / sizeof(want[0]);
	struct json_object *r, *c;
	char buf[128];

	negotiate();
	run("query-commands", NULL);
	r = expect_return();
	assert_true(json_object_is_type(r, json_type_array));
	assert_int_equal(json_object_array_length(r), n);
	for (size_t i = 0; i < n; i++) {
		c = json_object_array_get_idx(r, i);
		assert_int_equal(json_object_object_length(c), 1);
		assert_string_equal(get_str(c, "name"), want[i]);
		/* Everything listed can be run (argument errors aside). */
		snprintf(buf, sizeof(buf), "{\"execute\": \"%s\"}", want[i]);
		send_str(buf);
		json_object_put(next_msg());
	}
	json_object_put(r);
}

static void test_query_status(void **state)
{
	negotiate();
	run("query-status", NULL);
	expect_raw("{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}");
	fake.state = RUN_STATE_PAUSED;
	run("query-status", NULL);
	expect_raw("{\"return\": {\"status\": \"paused\", \"singlestep\": false, \"running\": false}}");
	fake.state = RUN_STATE_SHUTDOWN;
	run("query-status", NULL);
	expect_raw("{\"return\": {\"status\": \"shutdown\", \"singlestep\": false, \"running\": false}}");
}

static void test_query_name_uuid_kvm(void **state)
{
	negotiate();
	run("query-name", NULL);
	expect_raw("{\"return\": {}}");
	fake.name = "guest \"one\"";
	run("query-name", NULL);
	expect_raw("{\"return\": {\"name\": \"guest \\\"one\\\"\"}}");

	run("query-uuid", NULL);
	expect_raw("{\"return\": {\"UUID\": \"00000000-0000-0000-0000-000000000000\"}}");
	fake.has_uuid = true;
	for (int i = 0; i < 16; i++)
		fake.uuid[i] = (uint8_t)(0x10 * i + 0xa);
	run("query-uuid", NULL);
	expect_raw("{\"return\": {\"UUID\": \"0a1a2a3a-4a5a-6a7a-8a9a-aabacadaeafa\"}}");

	run("query-kvm", NULL);
	expect_raw("{\"return\": {\"enabled\": true, \"present\": true}}");
}

static void test_query_cpus_fast(void **state)
{
	struct json_object *r, *c, *props;

	negotiate();
	run("query-cpus-fast", NULL);
	expect_raw("{\"return\": [{\"thread-id\": 1000, \"props\": {\"core-id\": 0, \"thread-id\": 0, "
		   "\"socket-id\": 0}, \"qom-path\": \"/machine/unattached/device[0]\", "
		   "\"cpu-index\": 0, \"target\": \"x86_64\"}, {\"thread-id\": 1001, \"props\": "
		   "{\"core-id\": 1, \"thread-id\": 0, \"socket-id\": 0}, \"qom-path\": "
		   "\"/machine/unattached/device[1]\", \"cpu-index\": 1, \"target\": \"x86_64\"}]}");
	fake.cpus = 3;
	run("query-cpus-fast", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 3);
	c = json_object_array_get_idx(r, 2);
	assert_int_equal(json_object_object_length(c), 5);
	assert_int_equal(get_int(c, "cpu-index"), 2);
	assert_int_equal(get_int(c, "thread-id"), 1002);
	assert_string_equal(get_str(c, "qom-path"), "/machine/unattached/device[2]");
	assert_string_equal(get_str(c, "target"), "x86_64");
	props = get(c, "props");
	assert_int_equal(json_object_object_length(props), 3);
	assert_int_equal(get_int(props, "socket-id"), 1);
	assert_int_equal(get_int(props, "core-id"), 0);
	assert_int_equal(get_int(props, "thread-id"), 0);
	json_object_put(r);
}

/*
 * getfd/closefd/add-fd/remove-fd/query-fdsets with fds that really crossed a
 * unix socketpair as SCM_RIGHTS: the session's fd source receives them.
 */
static int fd_pair[2] = { -1, -1 };

static int take_passed_fd(void *opaque)
{
	char byte, ctlbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctlbuf,
			    .msg_controllen = sizeof(ctlbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(fd_pair[1], &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

/* Passes a new fd open on path through the socketpair; returns its inode. */
static ino_t pass_fd(const char *path)
{
	char ctlbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { "x", 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctlbuf,
			    .msg_controllen = sizeof(ctlbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	assert_int_equal(sendmsg(fd_pair[0], &m, 0), 1);
	close(fd);	/* only the passed copy is left */
	return st.st_ino;
}

static ino_t inode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static void test_getfd_closefd(void **state)
{
	ino_t ino;
	int fd;

	negotiate();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd_pair), 0);
	qmp_session_set_fd_source(fake.session, take_passed_fd, NULL);
	run("getfd", "{\"fdname\": \"tap0\"}");
	expect_error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
	ino = pass_fd("/dev/null");
	run("getfd", "{\"fdname\": \"tap0\"}");
	expect_raw("{\"return\": {}}");
	fd = qmp_session_fd_get(fake.session, "tap0");
	assert_true(fd >= 0);
	assert_true(inode_of(fd) == ino);
	/* A name taken again replaces the fd, closing the old one. */
	ino = pass_fd("/");
	run("getfd", "{\"fdname\": \"tap0\"}");
	expect_raw("{\"return\": {}}");
	assert_true(inode_of(qmp_session_fd_get(fake.session, "tap0")) == ino);
	pass_fd("/");
	run("getfd", "{\"fdname\": \"0tap\"}");
	expect_error("GenericError", "Parameter 'fdname' expects a name not starting with a digit");
	assert_int_equal(qmp_session_fd_get(fake.session, "0tap"), -1);
	fd = qmp_session_fd_get(fake.session, "tap0");
	run("closefd", "{\"fdname\": \"tap0\"}");
	expect_raw("{\"return\": {}}");
	assert_int_equal(fcntl(fd, F_GETFD), -1);	/* closed */
	run("closefd", "{\"fdname\": \"tap0\"}");
	expect_error("GenericError", "File descriptor named 'tap0' not found");
	/* The session's named fds are closed with it. */
	pass_fd("/dev/null");
	run("getfd", "{\"fdname\": \"net1\"}");
	expect_raw("{\"return\": {}}");
	fd = qmp_session_fd_get(fake.session, "net1");
	qmp_session_free(fake.session);
	fake.session = NULL;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	close(fd_pair[0]);
	close(fd_pair[1]);
}

static void test_fdsets(void **state)
{
	struct json_object *r, *set;
	char args[64];
	int fd0, fd1;
	ino_t ino;

	negotiate();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd_pair), 0);
	qmp_session_set_fd_source(fake.session, take_passed_fd, NULL);
	run("query-fdsets", NULL);
	expect_raw("{\"return\": []}");
	run("add-fd", NULL);
	expect_error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
	ino = pass_fd("/dev/null");
	run("add-fd", "{\"opaque\": \"rdonly:/dev/null\"}");
	r = expect_return();
	assert_int_equal(get_int(r, "fdset-id"), 0);
	fd0 = (int)get_int(r, "fd");
	assert_true(inode_of(fd0) == ino);
	json_object_put(r);
	pass_fd("/");
	run("add-fd", "{\"fdset-id\": 0}");
	r = expect_return();
	fd1 = (int)get_int(r, "fd");
	json_object_put(r);
	pass_fd("/");
	run("add-fd", "{\"fdset-id\": 4}");
	json_object_put(expect_return());
	pass_fd("/");
	run("add-fd", NULL);	/* the lowest free id */
	r = expect_return();
	assert_int_equal(get_int(r, "fdset-id"), 1);
	json_object_put(r);
	/* A refused add-fd still consumes the fd it was sent with, as QEMU's. */
	pass_fd("/");
	run("add-fd", "{\"fdset-id\": -1}");
	expect_error("GenericError", "Parameter 'fdset-id' expects a non-negative value");
	run("add-fd", NULL);
	expect_error("GenericError", "No file descriptor supplied via SCM_RIGHTS");
	/* Sets by descending id, each set's fds oldest first (QEMU's prepending). */
	run("query-fdsets", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 3);
	assert_int_equal(get_int(json_object_array_get_idx(r, 0), "fdset-id"), 4);
	set = json_object_array_get_idx(r, 2);
	assert_int_equal(get_int(set, "fdset-id"), 0);
	assert_int_equal(json_object_array_length(get(set, "fds")), 2);
	assert_int_equal(get_int(json_object_array_get_idx(get(set, "fds"), 0), "fd"), fd0);
	assert_string_equal(get_str(json_object_array_get_idx(get(set, "fds"), 0), "opaque"),
			    "rdonly:/dev/null");
	assert_false(has(json_object_array_get_idx(get(set, "fds"), 1), "opaque"));
	json_object_put(r);
	run("remove-fd", "{\"fdset-id\": 0, \"fd\": 9999}");
	expect_error("GenericError", "File descriptor named 'fdset-id:0, fd:9999' not found");
	run("remove-fd", "{\"fdset-id\": 7}");
	expect_error("GenericError", "File descriptor named 'fdset-id:7' not found");
	run("remove-fd", NULL);
	expect_error("GenericError", "Parameter 'fdset-id' is missing");
	snprintf(args, sizeof(args), "{\"fdset-id\": 0, \"fd\": %d}", fd1);
	run("remove-fd", args);
	expect_raw("{\"return\": {}}");
	assert_int_equal(fcntl(fd1, F_GETFD), -1);
	assert_true(fcntl(fd0, F_GETFD) >= 0);
	run("remove-fd", "{\"fdset-id\": 0}");
	expect_raw("{\"return\": {}}");
	assert_int_equal(fcntl(fd0, F_GETFD), -1);
	run("query-fdsets", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 2);	/* the emptied set went */
	json_object_put(r);
	qmp_fdsets_reset();
	run("query-fdsets", NULL);
	expect_raw("{\"return\": []}");
	close(fd_pair[0]);
	close(fd_pair[1]);
}

/* /machine/peripheral/ID for each -device id=ID, and what each device answers. */
static void test_qom_peripheral(void **state)
{
	negotiate();
	run("qom-list", "{\"path\": \"/machine/peripheral\"}");
	expect_raw("{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
		   "{\"name\": \"disk0\", \"type\": \"child<virtio-blk-pci>\"}, "
		   "{\"name\": \"rng0\", \"type\": \"child<virtio-rng-pci>\"}, "
		   "{\"name\": \"b0\", \"type\": \"child<virtio-balloon-pci>\"}]}");
	/* The balloon also lists the guest statistics qom-get reads. */
	run("qom-list", "{\"path\": \"/machine/peripheral/b0\"}");
	expect_raw("{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
		   "{\"name\": \"realized\", \"type\": \"bool\"}, "
		   "{\"name\": \"hotplugged\", \"type\": \"bool\"}, "
		   "{\"name\": \"hotpluggable\", \"type\": \"bool\"}, "
		   "{\"name\": \"guest-stats-polling-interval\", \"type\": \"int\"}, "
		   "{\"name\": \"guest-stats\", \"type\": \"guest statistics\"}]}");
	run("qom-list", "{\"path\": \"/machine/peripheral/rng0\"}");
	expect_raw("{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
		   "{\"name\": \"realized\", \"type\": \"bool\"}, "
		   "{\"name\": \"hotplugged\", \"type\": \"bool\"}, "
		   "{\"name\": \"hotpluggable\", \"type\": \"bool\"}]}");
	run("qom-get", "{\"path\": \"/machine/peripheral/disk0\", \"property\": \"type\"}");
	expect_raw("{\"return\": \"virtio-blk-pci\"}");
	run("qom-get", "{\"path\": \"/machine/peripheral/disk0\", \"property\": \"realized\"}");
	expect_raw("{\"return\": true}");
	run("qom-get", "{\"path\": \"/machine/peripheral/disk0\", "
	    "\"property\": \"hotpluggable\"}");
	expect_raw("{\"return\": false}");
	run("qom-get", "{\"path\": \"/machine/peripheral/disk0\", \"property\": \"drive\"}");
	expect_error("GenericError", "Property 'virtio-blk-pci.drive' not found");
	run("qom-get", "{\"path\": \"/machine/peripheral/disk1\", \"property\": \"type\"}");
	expect_error("DeviceNotFound", "Device '/machine/peripheral/disk1' not found");
	run("qom-list", "{\"path\": \"/machine/peripheral/\"}");
	expect_error("DeviceNotFound", "Device '/machine/peripheral/' not found");
	run("qom-list", "{\"path\": \"/machine/peripheral/disk0/x\"}");
	expect_error("DeviceNotFound", "Device '/machine/peripheral/disk0/x' not found");
}

/* qom-list / qom-get on a vCPU at its query-cpus-fast path: topology from cpu_info. */
static void test_qom_cpu(void **state)
{
	static const char *const names[] = { "type", "realized", "hotplugged", "hotpluggable",
					     "apic-id", "socket-id", "core-id", "thread-id" };
	struct json_object *r, *e;

	negotiate();
	fake.cpus = 3;
	run("qom-list", "{\"path\": \"/machine/unattached/device[2]\"}");
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 8);
	for (size_t i = 0; i < 8; i++) {
		e = json_object_array_get_idx(r, i);
		assert_string_equal(get_str(e, "name"), names[i]);
	}
	assert_string_equal(get_str(json_object_array_get_idx(r, 4), "type"), "uint32");
	json_object_put(r);
	run("qom-get", "{\"path\": \"/machine/unattached/device[2]\", \"property\": \"type\"}");
	expect_raw("{\"return\": \"host-x86_64-cpu\"}");
	run("qom-get", "{\"path\": \"/machine/unattached/device[2]\", "
	    "\"property\": \"socket-id\"}");
	expect_raw("{\"return\": 1}");
	run("qom-get", "{\"path\": \"/machine/unattached/device[1]\", \"property\": \"core-id\"}");
	expect_raw("{\"return\": 1}");
	run("qom-get", "{\"path\": \"/machine/unattached/device[1]\", \"property\": \"apic-id\"}");
	expect_raw("{\"return\": 1}");
	run("qom-get", "{\"path\": \"/machine/unattached/device[0]\", "
	    "\"property\": \"hotplugged\"}");
	expect_raw("{\"return\": false}");
	run("qom-get", "{\"path\": \"/machine/unattached/device[0]\", \"property\": \"realized\"}");
	expect_raw("{\"return\": true}");
	/* No CPUID feature table: a feature is an unknown property, in QEMU's words. */
	run("qom-get", "{\"path\": \"/machine/unattached/device[0]\", \"property\": \"avx2\"}");
	expect_error("GenericError", "Property 'host-x86_64-cpu.avx2' not found");
	run("qom-list", "{\"path\": \"/machine/unattached/device[3]\"}");
	expect_error("DeviceNotFound", "Device '/machine/unattached/device[3]' not found");
	run("qom-list", "{\"path\": \"/machine/unattached/device[0]x\"}");
	expect_error("DeviceNotFound", "Device '/machine/unattached/device[0]x' not found");
	run("qom-get", "{\"path\": \"/machine/unattached/device[3]\", \"property\": \"type\"}");
	expect_error("DeviceNotFound", "Device '/machine/unattached/device[3]' not found");
	run("qom-list", NULL);
	expect_error("GenericError", "Parameter 'path' is missing");
	fake.cpus = 2;
}

/* block_set_io_throttle: every BlockIOThrottle member reaches the machine; query-block shows them. */
static void test_block_set_io_throttle(void **state)
{
	const struct leaky_bucket *k = fake.throttle.b;
	struct json_object *r, *ins;

	negotiate();
	run("block_set_io_throttle", "{\"device\": \"virtio0\", \"bps\": 0, \"bps_rd\": 1000, "
	    "\"bps_wr\": 0, \"iops\": 50, \"iops_rd\": 0, \"iops_wr\": 0, \"iops_max\": 80, "
	    "\"iops_max_length\": 3, \"iops_size\": 4096, \"group\": \"g1\"}");
	expect_raw("{\"return\": {}}");
	assert_string_equal(fake.throttle_group, "g1");
	assert_int_equal(k[THROTTLE_BPS_READ].avg, 1000);
	assert_int_equal(k[THROTTLE_OPS_TOTAL].avg, 50);
	assert_int_equal(k[THROTTLE_OPS_TOTAL].max, 80);
	assert_int_equal(k[THROTTLE_OPS_TOTAL].burst_length, 3);
	assert_int_equal(k[THROTTLE_BPS_TOTAL].burst_length, 1);
	assert_int_equal(fake.throttle.op_size, 4096);
	run("block_set_io_throttle", "{\"device\": \"nope\", \"bps\": 0, \"bps_rd\": 0, "
	    "\"bps_wr\": 0, \"iops\": 0, \"iops_rd\": 0, \"iops_wr\": 0}");
	expect_error("DeviceNotFound", "Device 'nope' not found");
	run("block_set_io_throttle", "{\"device\": \"virtio0\", \"bps\": 0}");
	expect_error("GenericError", "Parameter 'bps_rd' is missing");
	/* query-block: the rates always, bursts, iops_size and group when throttled. */
	fake.drives[0] = (struct drive_info){ .device = "virtio0", .node_name = "#block001",
					      .file = "d.img", .format = "raw", .qdev = "q",
					      .throttled = true, .group = "g1" };
	fake.drives[0].limits = fake.throttle;
	fake.nr_drives = 1;
	run("query-block", NULL);
	r = expect_return();
	ins = get(json_object_array_get_idx(r, 0), "inserted");
	assert_int_equal(get_int(ins, "bps_rd"), 1000);
	assert_int_equal(get_int(ins, "iops"), 50);
	assert_int_equal(get_int(ins, "iops_max"), 80);
	assert_int_equal(get_int(ins, "iops_max_length"), 3);
	assert_int_equal(get_int(ins, "iops_size"), 4096);
	assert_string_equal(get_str(ins, "group"), "g1");
	assert_false(json_object_object_get_ex(ins, "bps_max", NULL));
	json_object_put(r);
	fake.nr_drives = 0;
}

static void test_empty_queries(void **state)
{
	negotiate();
	run("query-block", NULL);
	expect_raw("{\"return\": []}");
	run("query-blockstats", NULL);
	expect_raw("{\"return\": []}");
	run("query-pci", NULL);
	expect_raw("{\"return\": [{\"bus\": 0, \"devices\": []}]}");
	run("query-migrate", NULL);
	expect_raw("{\"return\": {}}");
	run("query-balloon", NULL);
	expect_error("DeviceNotActive", "No balloon device has been activated");
	run("balloon", "{\"value\": 1073741824}");
	expect_error("DeviceNotActive", "No balloon device has been activated");
	run("balloon", NULL);
	expect_error("GenericError", "Parameter 'value' is missing");
}

/* BlockDeviceStats' members in QEMU 7.2 (qapi/block-core.json), idle_time_ns aside. */
static const char *const blockstats_keys[] = {
	"rd_bytes", "wr_bytes", "unmap_bytes", "rd_operations", "wr_operations",
	"flush_operations", "unmap_operations", "rd_total_time_ns", "wr_total_time_ns",
	"flush_total_time_ns", "unmap_total_time_ns", "rd_merged", "wr_merged", "unmap_merged",
	"wr_highest_offset", "failed_rd_operations", "failed_wr_operations",
	"failed_flush_operations", "failed_unmap_operations", "invalid_rd_operations",
	"invalid_wr_operations", "invalid_flush_operations", "invalid_unmap_operations",
	"account_invalid", "account_failed", "timed_stats",
};

static void test_query_blockstats(void **state)
{
	struct json_object *r, *e, *st;
	struct block_stats *s = &fake.drives[0].stats;
	size_t nkeys = sizeof(blockstats_keys) / sizeof(blockstats_keys[0]);

	negotiate();
	fake.drives[0] = (struct drive_info){ .device = "virtio0", .node_name = "#block001",
					      .qdev = "/machine/peripheral-anon/device[0]/virtio-backend" };
	fake.nr_drives = 1;
	run("query-blockstats", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 1);
	e = json_object_array_get_idx(r, 0);
	assert_string_equal(get_str(e, "device"), "virtio0");
	assert_string_equal(get_str(e, "node-name"), "#block001");
	assert_string_equal(get_str(e, "qdev"), fake.drives[0].qdev);
	st = get(e, "stats");
	/* No I/O yet: every counter 0 and no idle_time_ns, as QEMU. */
	assert_int_equal(json_object_object_length(st), nkeys);
	for (size_t i = 0; i < nkeys; i++)
		assert_true(has(st, blockstats_keys[i]));
	assert_int_equal(get_int(st, "rd_operations"), 0);
	json_object_put(r);

	s->bytes[BLOCK_ACCT_READ] = 8192;
	s->ops[BLOCK_ACCT_READ] = 2;
	s->bytes[BLOCK_ACCT_WRITE] = 512;
	s->ops[BLOCK_ACCT_WRITE] = 1;
	s->ops[BLOCK_ACCT_FLUSH] = 3;
	s->bytes[BLOCK_ACCT_UNMAP] = 1 << 20;
	s->ops[BLOCK_ACCT_UNMAP] = 1;
	s->failed_ops[BLOCK_ACCT_WRITE] = 4;
	s->invalid_ops[BLOCK_ACCT_READ] = 5;
	s->total_time_ns[BLOCK_ACCT_READ] = 1234;
	s->wr_highest_offset = 1536;
	s->last_access_ns = 100;
	fake.drives[0].now_ns = 600;
	run("query-blockstats", NULL);
	r = expect_return();
	st = get(json_object_array_get_idx(r, 0), "stats");
	assert_int_equal(json_object_object_length(st), nkeys + 1);
	assert_int_equal(get_int(st, "rd_bytes"), 8192);
	assert_int_equal(get_int(st, "rd_operations"), 2);
	assert_int_equal(get_int(st, "wr_bytes"), 512);
	assert_int_equal(get_int(st, "wr_operations"), 1);
	assert_int_equal(get_int(st, "flush_operations"), 3);
	assert_int_equal(get_int(st, "unmap_bytes"), 1 << 20);
	assert_int_equal(get_int(st, "unmap_operations"), 1);
	assert_int_equal(get_int(st, "failed_wr_operations"), 4);
	assert_int_equal(get_int(st, "invalid_rd_operations"), 5);
	assert_int_equal(get_int(st, "rd_total_time_ns"), 1234);
	assert_int_equal(get_int(st, "wr_highest_offset"), 1536);
	assert_int_equal(get_int(st, "idle_time_ns"), 500);
	assert_true(get_bool(st, "account_invalid"));
	json_object_put(r);

	/* query-nodes: the same stats by node, without the device. */
	run("query-blockstats", "{\"query-nodes\": true}");
	r = expect_return();
	e = json_object_array_get_idx(r, 0);
	assert_false(has(e, "device"));
	assert_string_equal(get_str(e, "node-name"), "#block001");
	assert_int_equal(get_int(get(e, "stats"), "rd_bytes"), 8192);
	json_object_put(r);
	run("query-blockstats", "{\"query-nodes\": 1}");
	expect_error("GenericError", "Invalid parameter type for 'query-nodes', expected: boolean");
}

/* query-named-block-nodes: each drive's node, as query-block's "inserted". */
static void test_named_block_nodes(void **state)
{
	struct json_object *r, *e, *img;

	negotiate();
	run("query-named-block-nodes", NULL);
	expect_raw("{\"return\": []}");
	fake.drives[0] = (struct drive_info){ .device = "", .node_name = "libvirt-1-format",
					      .file = "/d.qcow2", .format = "qcow2",
					      .virtual_size = 1 << 20, .readonly = true };
	fake.drives[1] = (struct drive_info){ .device = "virtio1", .node_name = "#block002",
					      .file = "/e.raw", .format = "raw",
					      .virtual_size = 4096 };
	fake.nr_drives = 2;
	run("query-named-block-nodes", "{\"flat\": true}");
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 2);
	json_object_put(r);
	/* A -blockdev format node over a named file node: that node follows it. */
	snprintf(fake.drives[0].file_node, sizeof(fake.drives[0].file_node), "libvirt-1-storage");
	fake.drives[0].file_driver = "file";
	fake.drives[0].file_size = 196616;
	run("query-named-block-nodes", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 3);
	e = json_object_array_get_idx(r, 1);
	assert_string_equal(get_str(e, "node-name"), "libvirt-1-storage");
	assert_string_equal(get_str(e, "drv"), "file");
	assert_string_equal(get_str(e, "file"), "/d.qcow2");
	assert_true(get_bool(e, "ro"));
	assert_int_equal(get_int(get(e, "image"), "virtual-size"), 197120);	/* whole sectors */
	assert_string_equal(get_str(get(e, "image"), "format"), "file");
	json_object_put(r);
	fake.drives[0].file_node[0] = '\0';
	run("query-named-block-nodes", "{\"flat\": true}");
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 2);
	e = json_object_array_get_idx(r, 0);
	assert_string_equal(get_str(e, "node-name"), "libvirt-1-format");
	assert_string_equal(get_str(e, "drv"), "qcow2");
	assert_string_equal(get_str(e, "file"), "/d.qcow2");
	assert_true(get_bool(e, "ro"));
	assert_int_equal(get_int(e, "backing_file_depth"), 0);
	img = get(e, "image");
	assert_int_equal(get_int(img, "virtual-size"), 1 << 20);
	assert_string_equal(get_str(img, "format"), "qcow2");
	e = json_object_array_get_idx(r, 1);
	assert_string_equal(get_str(e, "node-name"), "#block002");
	assert_false(get_bool(e, "ro"));
	json_object_put(r);
	run("query-named-block-nodes", "{\"flat\": \"yes\"}");
	expect_error("GenericError", "Invalid parameter type for 'flat', expected: boolean");
	fake.nr_drives = 0;
}

/* No block jobs and no iothreads: empty lists; migrate-set-capabilities knows none. */
static void test_runtime_empty_and_migration(void **state)
{
	negotiate();
	run("query-block-jobs", NULL);
	expect_raw("{\"return\": []}");
	run("query-iothreads", NULL);
	expect_raw("{\"return\": []}");
	run("migrate-set-capabilities", "{\"capabilities\": []}");
	expect_raw("{\"return\": {}}");
	run("migrate-set-capabilities",
	    "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}");
	expect_error("GenericError", "Parameter 'capability' does not accept value 'events'");
	/* The capability is visited before its state, as in QEMU. */
	run("migrate-set-capabilities",
	    "{\"capabilities\": [{\"capability\": \"events\", \"state\": 1}]}");
	expect_error("GenericError", "Parameter 'capability' does not accept value 'events'");
	run("migrate-set-capabilities", "{\"capabilities\": [{\"capability\": 1}]}");
	expect_error("GenericError", "Invalid parameter type for "
		     "'capabilities[0].capability', expected: string");
	run("migrate-set-capabilities", NULL);
	expect_error("GenericError", "Parameter 'capabilities' is missing");
	run("migrate-set-capabilities", "{\"capabilities\": {}}");
	expect_error("GenericError", "Invalid parameter type for 'capabilities', expected: array");
	run("migrate-set-capabilities", "{\"capabilities\": [1]}");
	expect_error("GenericError",
		     "Invalid parameter type for 'capabilities[0]', expected: object");
	run("migrate-set-capabilities", "{\"capabilities\": [{\"state\": true}]}");
	expect_error("GenericError", "Parameter 'capabilities[0].capability' is missing");
}

static void set_net(unsigned i, const char *name, const char *type, int peer)
{
	memset(&fake.nets[i], 0, sizeof(fake.nets[i]));
	snprintf(fake.nets[i].name, sizeof(fake.nets[i].name), "%s", name);
	fake.nets[i].type = type;
	fake.nets[i].peer = peer;
	fake.nets[i].hub = -1;
}

/* net/net.c qmp_query_rx_filter and virtio_net_query_rxfilter. */
static void test_query_rx_filter(void **state)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct json_object *r, *e, *t;

	negotiate();
	run("query-rx-filter", NULL);
	expect_raw("{\"return\": []}");
	set_net(0, "n0", "user", 1);
	set_net(1, "virtio-net-pci.0", "nic", 0);
	set_net(2, "e1000.0", "nic", -1);
	fake.nets[1].rx_filter = true;
	fake.nets[1].promisc = true;
	memcpy(fake.nets[1].mac, mac, 6);
	fake.nr_nets = 3;
	run("query-rx-filter", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 1);	/* the e1000 has no filter */
	e = json_object_array_get_idx(r, 0);
	assert_string_equal(get_str(e, "name"), "virtio-net-pci.0");
	assert_true(get_bool(e, "promiscuous"));
	assert_string_equal(get_str(e, "main-mac"), "52:54:00:12:34:56");
	assert_string_equal(get_str(e, "unicast"), "normal");
	assert_string_equal(get_str(e, "multicast"), "normal");
	assert_string_equal(get_str(e, "vlan"), "all");
	t = get(e, "vlan-table");
	assert_int_equal(json_object_array_length(t), 4096);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(t, 0)), 4095);
	assert_int_equal(json_object_array_length(get(e, "unicast-table")), 0);
	json_object_put(r);

	/* The driver's filter shows through. */
	fake.nets[1].promisc = false;
	fake.nets[1].nomulti = true;
	fake.nets[1].alluni = true;
	fake.nets[1].uni_entries = 1;
	fake.nets[1].multi_entries = 2;
	memcpy(fake.nets[1].mac_table[0], "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(fake.nets[1].mac_table[1], "\x01\x00\x5e\x00\x00\x01", 6);
	memcpy(fake.nets[1].mac_table[2], "\x33\x33\x00\x00\x00\x01", 6);
	run("query-rx-filter", "{\"name\": \"virtio-net-pci.0\"}");
	r = expect_return();
	e = json_object_array_get_idx(r, 0);
	assert_false(get_bool(e, "promiscuous"));
	assert_string_equal(get_str(e, "unicast"), "all");
	assert_string_equal(get_str(e, "multicast"), "none");
	t = get(e, "unicast-table");
	assert_int_equal(json_object_array_length(t), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(t, 0)),
			    "02:00:00:00:00:01");
	t = get(e, "multicast-table");
	assert_int_equal(json_object_array_length(t), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(t, 0)),
			    "33:33:00:00:00:01");		/* newest first, as QEMU */
	json_object_put(r);

	run("query-rx-filter", "{\"name\": \"n0\"}");
	expect_error("GenericError", "net client(n0) isn't a NIC");
	run("query-rx-filter", "{\"name\": \"e1000.0\"}");
	expect_error("GenericError", "net client(e1000.0) doesn't support rx-filter querying");
	run("query-rx-filter", "{\"name\": \"nosuch\"}");
	expect_error("GenericError", "invalid net client name: nosuch");
}

static void test_query_chardev(void **state)
{
	struct json_object *r, *c;

	negotiate();
	run("query-chardev", NULL);
	expect_raw("{\"return\": [{\"frontend-open\": true, \"filename\": \"stdio\", "
		   "\"label\": \"serial0\"}, {\"frontend-open\": false, \"filename\": "
		   "\"unix:/tmp/q.sock,server=on\", \"label\": \"compat_monitor0\"}]}");
	/* More than fit the first buffer. */
	fake.nr_chardevs = 40;
	run("query-chardev", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 40);
	c = json_object_array_get_idx(r, 39);
	assert_string_equal(get_str(c, "label"), "compat_monitor0");
	assert_false(get_bool(c, "frontend-open"));
	json_object_put(r);
	fake.nr_chardevs = 0;
	run("query-chardev", NULL);
	expect_raw("{\"return\": []}");
}

static void test_query_machines_and_cpus(void **state)
{
	struct json_object *r, *m;

	negotiate();
	run("query-machines", NULL);
	r = expect_return();
	assert_int_equal(json_object_array_length(r), 2);
	m = json_object_array_get_idx(r, 1);	/* the QMP-only machine, as QEMU's none */
	assert_int_equal(json_object_object_length(m), 6);
	assert_string_equal(get_str(m, "name"), "none");
	assert_int_equal(get_int(m, "cpu-max"), 1);
	assert_string_equal(get_str(m, "default-ram-id"), "ram");
	m = json_object_array_get_idx(r, 0);
	assert_int_equal(json_object_object_length(m), 9);
	assert_string_equal(get_str(m, "name"), "pc-i440fx-7.2");
	assert_string_equal(get_str(m, "alias"), "pc");
	assert_true(get_bool(m, "is-default"));
	assert_int_equal(get_int(m, "cpu-max"), 255);
	assert_false(get_bool(m, "hotpluggable-cpus"));
	assert_false(get_bool(m, "numa-mem-supported"));
	assert_false(get_bool(m, "deprecated"));
	assert_string_equal(get_str(m, "default-cpu-type"), "host-x86_64-cpu");
	assert_string_equal(get_str(m, "default-ram-id"), "pc.ram");
	json_object_put(r);

	run("query-cpu-definitions", NULL);
	expect_raw("{\"return\": [{\"name\": \"host\", \"typename\": \"host-x86_64-cpu\", "
		   "\"unavailable-features\": [], \"static\": false, \"migration-safe\": false, "
		   "\"deprecated\": false}, {\"name\": \"max\", \"typename\": \"max-x86_64-cpu\", "
		   "\"unavailable-features\": [], \"static\": false, \"migration-safe\": false, "
		   "\"deprecated\": false}, {\"name\": \"qemu64\", \"typename\": "
		   "\"qemu64-x86_64-cpu\", \"unavailable-features\": [], \"static\": false, "
		   "\"migration-safe\": true, \"deprecated\": false}]}");
}

static void test_actions(void **state)
{
	negotiate();
	run("stop", NULL);
	expect_empty_return();
	run("cont", NULL);
	expect_empty_return();
	run("system_reset", NULL);
	expect_empty_return();
	run("system_powerdown", NULL);
	expect_empty_return();
	assert_int_equal(fake.stops, 1);
	assert_int_equal(fake.conts, 1);
	assert_int_equal(fake.resets, 1);
	assert_int_equal(fake.powerdowns, 1);

	fake.fail = "Resetting the Virtual Machine is required";
	run("cont", NULL);
	expect_error("GenericError", "Resetting the Virtual Machine is required");
	assert_int_equal(fake.conts, 2);
	fake.fail = NULL;

	run("quit", NULL);
	expect_empty_return();
	assert_int_equal(fake.quits, 1);
}

static void test_human_monitor_command(void **state)
{
	negotiate();
	fake.state = RUN_STATE_PAUSED;
	run("human-monitor-command", "{\"command-line\": \"info status\"}");
	expect_raw("{\"return\": \"VM status: paused\\r\\n\"}");
	assert_string_equal(fake.hmp_line, "info status");
	/* HMP's own errors are its output, and QMP succeeds. */
	run("human-monitor-command", "{\"command-line\": \"frobnicate\"}");
	expect_raw("{\"return\": \"unknown command: 'frobnicate'\\r\\n\"}");
	run("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": 1}");
	json_object_put(expect_return());
	run("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": 2}");
	expect_error("GenericError", "Parameter 'cpu-index' expects a CPU number");
	run("human-monitor-command", "{\"command-line\": \"info status\", \"cpu-index\": -1}");
	expect_error("GenericError", "Parameter 'cpu-index' expects a CPU number");
	run("human-monitor-command", NULL);
	expect_error("GenericError", "Parameter 'command-line' is missing");
}

/*
 * set_link and device_del look the name up in the machine: "not found" only
 * for a name it lacks; a NIC (or back end, for set_link) it has is refused by
 * name, as neither link state nor hot-unplug is modelled (issue #26).
 */
static void test_set_link_and_device_del(void **state)
{
	negotiate();
	run("set_link", "{\"name\": \"net0\", \"up\": false}");
	expect_error("DeviceNotFound", "Device 'net0' not found");
	set_net(0, "n0", "user", 1);
	set_net(1, "net0", "nic", 0);
	fake.nr_nets = 2;
	run("set_link", "{\"name\": \"net0\", \"up\": false}");
	expect_error("GenericError", "set_link net0: changing the link state is not supported "
		     "(the link stays up)");
	run("set_link", "{\"name\": \"n0\", \"up\": true}");
	expect_error("GenericError", "set_link n0: changing the link state is not supported "
		     "(the link stays up)");
	run("set_link", "{\"name\": \"net1\", \"up\": false}");
	expect_error("DeviceNotFound", "Device 'net1' not found");
	run("device_del", "{\"id\": \"net0\"}");
	expect_error("GenericError", "Device 'net0' cannot be removed: hot-unplug is not supported");
	run("device_del", "{\"id\": \"n0\"}");		/* a back end is no device */
	expect_error("DeviceNotFound", "Device 'n0' not found");
	run("device_del", "{\"id\": true}");
	expect_error("GenericError", "Invalid parameter type for 'id', expected: string");
}

/* ---- events and lifetime -------------------------------------------------- */

static void test_events(void **state)
{
	struct json_object *data = json_object_new_object(), *m, *ts;

	json_object_object_add(data, "guest", json_object_new_boolean(0));
	json_object_object_add(data, "reason", json_object_new_string("host-qmp-quit"));

	expect_raw(greeting);
	qmp_session_event(fake.session, "STOP", NULL);
	qmp_session_event(fake.session, "SHUTDOWN", data);
	expect_nothing();	/* not before negotiation */

	send_str("{\"execute\": \"qmp_capabilities\"}");
	expect_empty_return();
	qmp_session_event(fake.session, "STOP", NULL);
	m = next_msg();
	assert_int_equal(json_object_object_length(m), 2);
	assert_string_equal(get_str(m, "event"), "STOP");
	assert_false(has(m, "data"));
	ts = get(m, "timestamp");
	assert_int_equal(json_object_object_length(ts), 2);
	assert_true(get_int(ts, "seconds") > 1600000000);
	assert_in_range(get_int(ts, "microseconds"), 0, 999999);
	json_object_put(m);

	qmp_session_event(fake.session, "SHUTDOWN", data);
	m = next_msg();
	assert_string_equal(get_str(m, "event"), "SHUTDOWN");
	assert_false(get_bool(get(m, "data"), "guest"));
	assert_string_equal(get_str(get(m, "data"), "reason"), "host-qmp-quit");
	json_object_put(m);
	/* The caller's reference is untouched: still ours to use and release. */
	assert_string_equal(json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN),
			    "{\"guest\":false,\"reason\":\"host-qmp-quit\"}");
	assert_int_equal(json_object_put(data), 1);

	/* Key order as QEMU prints it. */
	out.read = out.len;
	qmp_session_event(fake.session, "RESUME", NULL);
	{
		char *line = next_raw();

		assert_non_null(line);
		assert_int_equal(strncmp(line, "{\"timestamp\": {\"seconds\": ", 26), 0);
		assert_non_null(strstr(line, "}, \"event\": \"RESUME\"}"));
		free(line);
	}
}

static void test_event_inside_command(void **state)
{
	struct json_object *m;

	negotiate();
	/* stop emits STOP while it runs: QEMU sends the event before the reply. */
	fake.event_on_stop = true;
	run("stop", NULL);
	m = next_msg();
	assert_string_equal(get_str(m, "event"), "STOP");
	json_object_put(m);
	expect_empty_return();
}

static void test_free_during_write(void **state)
{
	negotiate();
	/* The transport finds the client gone while writing a reply and frees the
	 * session; the rest of the input must not be looked at (ASan checks). */
	out.free_on_write = true;
	send_str("{\"execute\": \"query-kvm\"}{\"execute\": \"stop\"}{\"execute\": \"cont\"}");
	assert_null(fake.session);
	assert_int_equal(fake.stops, 0);
	json_object_put(expect_return());
	expect_nothing();
}

static void test_free_null(void **state)
{
	qmp_session_free(NULL);
}

static void test_output_escapes(void **state)
{
	negotiate();
	/* Control characters, 3- and 4-byte UTF-8, all as QEMU escapes them. */
	send_str("{\"execute\": \"cont\", \"id\": \"\\b\\f\\t\\u0001\\/\xe2\x82\xac\x7f\"}");
	expect_raw("{\"return\": {}, \"id\": \"\\b\\f\\t\\u0001/\\u20AC\\u007F\"}");
	/* Text from the machine that is not UTF-8 goes out as U+FFFD. */
	fake.name = "a\xff\xc0\x80\xed\xa0\x80\xe2\x82";
	run("query-name", NULL);
	expect_raw("{\"return\": {\"name\": \"a\\uFFFD\\uFFFD\\uFFFD\\uFFFD\\uFFFD\\uFFFD"
		   "\\uFFFD\\uFFFD\"}}");
	/* Invalid input UTF-8: overlong, surrogate, truncated, past U+10FFFF. */
	send_str("{\"execute\": \"cont\", \"id\": \"\xc0\xaf\"}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	send_str("{\"execute\": \"cont\", \"id\": \"\xed\xa0\x80\"}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	send_str("{\"execute\": \"cont\", \"id\": \"\xe2\x82\"}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	send_str("{\"execute\": \"cont\", \"id\": \"\xf4\x90\x80\x80\"}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	send_str("{\"execute\": \"cont\", \"\xc3\": 1}");
	expect_error("GenericError", "JSON parse error, invalid UTF-8 sequence in string");
	expect_nothing();
	assert_int_equal(fake.conts, 1);
}

static void test_missing_hooks(void **state)
{
	struct control bare = { .opaque = &fake };
	struct qmp_session *s;
	static const char *const cmds[] = {
		"query-status", "query-name", "query-uuid", "query-cpus-fast", "query-chardev",
	};
	char buf[128];

	negotiate();
	/* A control table with holes answers as a machine with nothing in it. */
	s = qmp_session_new(&bare, capture, &out);
	assert_non_null(s);
	expect_raw(greeting);
	qmp_session_input(s, (const uint8_t *)"{\"execute\": \"qmp_capabilities\"}", 31);
	expect_empty_return();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"execute\": \"%s\"}", cmds[i]);
		qmp_session_input(s, (const uint8_t *)buf, strlen(buf));
		json_object_put(expect_return());
	}
	qmp_session_input(s, (const uint8_t *)"{\"execute\": \"stop\"}", 19);
	expect_error("GenericError", "Not supported");
	qmp_session_input(s, (const uint8_t *)"{\"execute\": \"quit\"}", 19);
	expect_empty_return();
	qmp_session_free(s);

	/* A vCPU the machine cannot describe is left out. */
	fake.cpus = 3;
	fake.cpus_hole = 1;
	run("query-cpus-fast", NULL);
	{
		struct json_object *r = expect_return();

		assert_int_equal(json_object_array_length(r), 2);
		assert_int_equal(get_int(json_object_array_get_idx(r, 1), "cpu-index"), 2);
		json_object_put(r);
	}
}

#ifndef HAVE_ASAN
/* Everything a session does, once; allocation failures are injected into it. */
static void oom_scenario(struct json_object *data)
{
	static const char input[] =
		"{\"execute\": \"qmp_capabilities\"}"
		"{\"execute\": \"query-version\", \"id\": {\"k\": [1, \"v\"]}}"
		"{\"execute\": \"query-commands\"}{\"execute\": \"query-status\"}"
		"{\"execute\": \"query-cpus-fast\"}{\"execute\": \"query-chardev\"}"
		"{\"execute\": \"query-pci\"}{\"execute\": \"query-machines\"}"
		"{\"execute\": \"query-cpu-definitions\"}{\"execute\": \"query-uuid\"}"
		"{\"execute\": \"query-name\"}{\"execute\": \"query-kvm\"}"
		"{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info status\"}}"
		"{\"execute\": \"set_link\", \"arguments\": {\"name\": \"n\", \"up\": true}}"
		"{\"execute\": \"query-target\"}{\"execute\": \"query-hotpluggable-cpus\"}"
		"{\"execute\": \"qom-list-types\", \"arguments\": {\"implements\": \"accel\"}}"
		"{\"execute\": \"device-list-properties\", \"arguments\": {\"typename\": \"e1000\"}}"
		"{\"execute\": \"query-command-line-options\", \"arguments\": {\"option\": \"mon\"}}"
		"{\"execute\": \"query-sgx-capabilities\"}{\"execute\": \"query-tpm-models\"}"
		"{\"execute\": nope}{\"execute\": \"cont\", \"id\": 1.5}[1]";
	struct qmp_session *s;

	s = qmp_session_new(&ctl, capture, &out);
	if (!s)
		return;
	for (size_t i = 0; i < sizeof(input) - 1; i += 97)
		qmp_session_input(s, (const uint8_t *)input + i,
				  sizeof(input) - 1 - i < 97 ? sizeof(input) - 1 - i : 97);
	qmp_session_event(s, "SHUTDOWN", data);
	qmp_session_event(s, "STOP", NULL);
	qmp_session_free(s);
}
#endif

static void test_allocation_failures(void **state)
{
#ifdef HAVE_ASAN
	skip();
#else
	struct json_object *data = json_object_new_object(), *m;
	int runs = 0;
	char *line;

	assert_non_null(data);
	json_object_object_add(data, "guest", json_object_new_boolean(1));
	fake.name = "vm0";
	fake.nr_chardevs = 40;	/* past the session's first guess */
	inject_in_tokener();	/* warm up: backtrace loads libgcc_s */
	inject.on = false;
	oom_scenario(data);	/* warm up: libc's one-time allocations */
	for (long n = 0;; n++) {
		memset(&inject, 0, sizeof(inject));
		inject.countdown = n;
		inject.on = true;
		oom_scenario(data);
		inject.on = false;
		if (inject.nr_live)
			fail_msg("failing allocation %ld leaks %zu block(s)", n, inject.nr_live);
		/* Whatever was written is whole JSON (the fallback reply included). */
		while ((line = next_raw()) != NULL) {
			struct json_tokener *tok = json_tokener_new_ex(128);

			m = json_tokener_parse_ex(tok, line, (int)strlen(line));
			if (!m || json_tokener_get_parse_end(tok) != strlen(line))
				fail_msg("not JSON: %s", line);
			json_object_put(m);
			json_tokener_free(tok);
			free(line);
		}
		out.len = out.read = 0;
		runs++;
		if (!inject.failed)
			break;
	}
	assert_true(runs > 100);
	assert_int_equal(json_object_put(data), 1);
#endif
}

/*
 * query-qmp-schema alone, with a failure injected at every 13th of its
 * thousands of allocations (every one would take the whole scenario's
 * quadratic time): no leak, no double free, a whole reply each time.
 */
static void test_schema_allocation_failures(void **state)
{
#ifdef HAVE_ASAN
	skip();
#else
	static const char input[] = "{\"execute\": \"qmp_capabilities\"}"
				    "{\"execute\": \"query-qmp-schema\"}";
	struct qmp_session *s;
	struct json_object *m;
	char *line;
	int runs = 0;

	for (long n = 0;; n += 13) {
		memset(&inject, 0, sizeof(inject));
		inject.countdown = n;
		inject.on = true;
		s = qmp_session_new(&ctl, capture, &out);
		if (s) {
			qmp_session_input(s, (const uint8_t *)input, sizeof(input) - 1);
			qmp_session_free(s);
		}
		inject.on = false;
		if (inject.nr_live)
			fail_msg("failing allocation %ld leaks %zu block(s)", n, inject.nr_live);
		while ((line = next_raw()) != NULL) {
			m = json_tokener_parse(line);
			if (!m)
				fail_msg("not JSON: %.80s", line);
			json_object_put(m);
			free(line);
		}
		out.len = out.read = 0;
		runs++;
		if (!inject.failed)
			break;
	}
	assert_true(runs > 50);
#endif
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_block_set_io_throttle),
		T(test_greeting),
		T(test_negotiation),
		T(test_capabilities_oob),
		T(test_oob_off_rejects_exec_oob),
		T(test_id_echo),
		T(test_message_rules),
		T(test_argument_checking),
		T(test_invalid_json_recovers),
		T(test_bad_strings),
		T(test_duplicate_key),
		T(test_truncated_line_recovers),
		T(test_control_char_resets),
		T(test_split_reads),
		T(test_two_messages_one_read),
		T(test_size_limit),
		T(test_size_limit_nested),
		T(test_depth_limit),
		T(test_query_version),
		T(test_query_commands),
		T(test_query_status),
		T(test_query_name_uuid_kvm),
		T(test_query_cpus_fast),
		T(test_qom_cpu),
		T(test_qom_peripheral),
		T(test_getfd_closefd),
		T(test_fdsets),
		T(test_empty_queries),
		T(test_query_blockstats),
		T(test_named_block_nodes),
		T(test_runtime_empty_and_migration),
		T(test_query_rx_filter),
		T(test_query_chardev),
		T(test_query_machines_and_cpus),
		T(test_actions),
		T(test_human_monitor_command),
		T(test_set_link_and_device_del),
		T(test_events),
		T(test_event_inside_command),
		T(test_free_during_write),
		T(test_free_null),
		T(test_output_escapes),
		T(test_missing_hooks),
		T(test_allocation_failures),
		T(test_schema_allocation_failures),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
