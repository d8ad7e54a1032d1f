/*
 * QEMU's key names (core/keycodes.c) and the monitor input commands on top
 * of them: HMP sendkey/mouse_move/mouse_button/info mice and QMP send-key,
 * input-send-event and query-mice, with QEMU 7.2's answers (taken from
 * qemu-system-x86_64 -machine pc / none), through core/input.h to recording
 * handlers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "core/input.h"
#include "core/keycodes.h"
#include "ui/hmp.h"
#include "ui/hmp_input.h"
#include "ui/qmp.h"

static struct {
	enum run_state state;
	char log[4096];		/* what the handlers got */
} fake;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	size_t n = strlen(fake.log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fake.log + n, sizeof(fake.log) - n, fmt, ap);
	va_end(ap);
}

static void rec_key(void *dev, unsigned qnum, bool down)
{
	logf_("%s%02x ", down ? "+" : "-", qnum);
}

static void rec_rel(void *dev, int dx, int dy, int dz, unsigned b)
{
	logf_("rel(%d,%d,%d,%x) ", dx, dy, dz, b);
}

static void rec_abs(void *dev, int x, int y, int dz, unsigned b)
{
	logf_("abs(%d,%d,%d,%x) ", x, y, dz, b);
}

static const struct input_handler_ops kbd_ops = { .key = rec_key };
static const struct input_handler_ops mouse_ops = { .rel = rec_rel };
static const struct input_handler_ops tablet_ops = { .abs = rec_abs };
static struct input in;
static int kbd_dev, mouse_dev, tablet_dev;

static enum run_state fake_state(void *opaque)
{
	return fake.state;
}

static struct control ctl = { .run_state = fake_state, .input = &in };

static int setup(void **state)
{
	memset(&fake, 0, sizeof(fake));
	fake.state = RUN_STATE_RUNNING;
	assert_int_equal(input_init(&in), 0);
	assert_int_equal(input_register(&in, "QEMU PS/2 Keyboard", INPUT_KEYBOARD, &kbd_ops,
					&kbd_dev), 0);
	assert_int_equal(input_register(&in, "QEMU PS/2 Mouse", INPUT_MOUSE_REL, &mouse_ops,
					&mouse_dev), 0);
	return 0;
}

static int teardown(void **state)
{
	input_destroy(&in);
	return 0;
}

/* Key names ------------------------------------------------------------- */

static int qnum(const char *name)
{
	return keycodes_qnum(name, strlen(name));
}

static void test_key_names(void **state)
{
	assert_int_equal(qnum("a"), 0x1e);
	assert_int_equal(qnum("ctrl"), 0x1d);
	assert_int_equal(qnum("ctrl_r"), 0x9d);
	assert_int_equal(qnum("alt"), 0x38);
	assert_int_equal(qnum("delete"), 0xd3);
	assert_int_equal(qnum("kp_1"), 0x4f);
	assert_int_equal(qnum("kp_enter"), 0x9c);
	assert_int_equal(qnum("f12"), 0x58);
	assert_int_equal(qnum("meta_l"), 0xdb);
	assert_int_equal(qnum("menu"), 0x9e);
	assert_int_equal(qnum("f13"), -1);	/* QEMU 7.2 has no F13-F24 */
	assert_int_equal(qnum("pause"), 0xc6);
	assert_int_equal(qnum("print"), 0xb7);
	assert_int_equal(qnum("unmapped"), 0);
	assert_true(keycodes_is_qcode("unmapped", 8));
	assert_int_equal(qnum("foo"), -1);
	assert_int_equal(qnum("ctr"), -1);	/* no prefixes */
	assert_int_equal(qnum("ctrlx"), -1);
	assert_int_equal(keycodes_qnum("ctrl-alt", 4), 0x1d);
	assert_string_equal(keycodes_name(0x1e), "a");
	assert_string_equal(keycodes_name(0x9d), "ctrl_r");
	assert_null(keycodes_name(0xff));
	assert_null(keycodes_name(0));
}

static void parse_ok(const char *keys, const unsigned *want, unsigned nwant)
{
	unsigned q[HMP_SENDKEY_MAX], n;
	char bad[64];

	if (hmp_parse_keys(keys, q, HMP_SENDKEY_MAX, &n, bad, sizeof(bad)) < 0)
		fail_msg("'%s' refused at '%s'", keys, bad);
	assert_int_equal(n, nwant);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(q[i], want[i]);
}

static void parse_bad(const char *keys, const char *want_bad)
{
	unsigned q[HMP_SENDKEY_MAX], n;
	char bad[64] = "unset";

	assert_int_equal(hmp_parse_keys(keys, q, HMP_SENDKEY_MAX, &n, bad, sizeof(bad)), -1);
	assert_string_equal(bad, want_bad);
}

static void test_parse_keys(void **state)
{
	parse_ok("ctrl-alt-delete", (unsigned[]){ 0x1d, 0x38, 0xd3 }, 3);
	parse_ok("shift-a", (unsigned[]){ 0x2a, 0x1e }, 2);
	parse_ok("<", (unsigned[]){ 0x56 }, 1);
	parse_ok("0x1e", (unsigned[]){ 0x1e }, 1);
	parse_ok("0x11e", (unsigned[]){ 0 }, 1);	/* past QEMU's qnum map: nothing */
	parse_ok("0x1ff", (unsigned[]){ 0 }, 1);	/* accepted, no key: nothing sent */
	parse_ok("ctrl-0x38-kp_1", (unsigned[]){ 0x1d, 0x38, 0x4f }, 3);
	parse_bad("foo", "foo");
	parse_bad("ctrl-foo-a", "foo");
	parse_bad("a-", "");
	parse_bad("-a", "");
	parse_bad("0xzz", "0xzz");
	parse_bad("0x", "0x");
	char many[HMP_SENDKEY_MAX * 2 + 8] = "a";
	for (unsigned i = 1; i <= HMP_SENDKEY_MAX; i++)
		strcat(many, "-a");
	parse_bad(many, "a");
}

/* HMP ------------------------------------------------------------------- */

static char *hmp(const char *line, int *rc)
{
	static char *buf;
	size_t len;
	FILE *f;

	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	*rc = hmp_run_line(&ctl, line, f);
	fclose(f);
	return buf;
}

static void hmp_says(const char *line, int want_rc, const char *want)
{
	int rc;
	const char *out = hmp(line, &rc);

	if (strcmp(out, want))
		fail_msg("'%s' answered '%s', expected '%s'", line, out, want);
	assert_int_equal(rc, want_rc);
}

static void test_hmp_sendkey(void **state)
{
	hmp_says("sendkey ctrl-alt-delete", 0, "");
	assert_string_equal(fake.log, "+1d +38 +d3 -d3 -38 -1d ");
	fake.log[0] = 0;
	hmp_says("sendkey a 50", 0, "");
	assert_string_equal(fake.log, "+1e -1e ");
	/* QEMU 7.2's words, byte for byte. */
	hmp_says("sendkey foo", -1, "invalid parameter: foo\r\n");
	hmp_says("sendkey a-", -1, "invalid parameter: \r\n");
	hmp_says("sendkey 0xzz", -1, "invalid parameter: 0xzz\r\n");
	hmp_says("sendkey", -1,
		 "sendkey: string expected\r\nTry \"help sendkey\" for more information\r\n");
	hmp_says("sendkey a b", -1,
		 "invalid char 'b' in expression\r\nTry \"help sendkey\" for more information\r\n");
	hmp_says("sendkey a -5", -1, "'sendkey' has failed: integer is for 32-bit values\r\n"
		 "Try \"help sendkey\" for more information\r\n");
	/* A stopped VM gets no input (QEMU drops it too). */
	fake.log[0] = 0;
	fake.state = RUN_STATE_PAUSED;
	hmp_says("sendkey a", 0, "");
	assert_string_equal(fake.log, "");
}

static void test_hmp_mouse(void **state)
{
	hmp_says("mouse_move 5 -3", 0, "");
	hmp_says("mouse_move 0 0 2", 0, "");	/* positive dz: wheel up (dz -1) */
	hmp_says("mouse_button 1", 0, "");
	hmp_says("mouse_button 1", 0, "");	/* no change: no event */
	hmp_says("mouse_button 2", 0, "");	/* bit 1 is the right button in QEMU's code */
	hmp_says("mouse_move 1 1", 0, "");	/* moves with the button held */
	assert_string_equal(fake.log, "rel(5,-3,0,0) rel(0,0,-1,0) rel(0,0,0,0) rel(0,0,0,1) "
				      "rel(0,0,0,4) rel(1,1,0,4) ");
	hmp_says("mouse_button x", -1,
		 "invalid char 'x' in expression\r\nTry \"help mouse_button\" for more information\r\n");
	hmp_says("mouse_button", -1,
		 "unexpected end of expression\r\nTry \"help mouse_button\" for more information\r\n");
	hmp_says("mouse_move 1", -1,
		 "mouse_move: string expected\r\nTry \"help mouse_move\" for more information\r\n");
}

static void test_hmp_info_mice(void **state)
{
	hmp_says("info mice", 0, "* Mouse #2: QEMU PS/2 Mouse\r\n");
	/* A tablet takes over the pointer and is listed first (QEMU's activation order). */
	assert_int_equal(input_register(&in, "QEMU HID Tablet", INPUT_MOUSE_ABS, &tablet_ops,
					&tablet_dev), 0);
	hmp_says("info mice", 0, "* Mouse #3: QEMU HID Tablet (absolute)\r\n"
		 "  Mouse #2: QEMU PS/2 Mouse\r\n");
	input_unregister(&in, &tablet_dev);
	input_unregister(&in, &mouse_dev);
	hmp_says("info mice", 0, "No mouse devices connected\r\n");
}

/* QMP ------------------------------------------------------------------- */

static char *qout;
static size_t qout_len;

static void capture(void *opaque, const char *data, size_t len)
{
	char *p = realloc(qout, qout_len + len + 1);

	assert_non_null(p);
	memcpy(p + qout_len, data, len);
	qout = p;
	qout_len += len;
	qout[qout_len] = '\0';
}

/* One command on a negotiated session: its reply line. */
static const char *qmp(const char *json)
{
	static char last[1024];
	const char *neg = "{\"execute\": \"qmp_capabilities\"}";
	struct qmp_session *s;
	char *line, *save = NULL;

	free(qout);
	qout = NULL;
	qout_len = 0;
	s = qmp_session_new(&ctl, capture, NULL);
	assert_non_null(s);
	qmp_session_input(s, (const uint8_t *)neg, strlen(neg));
	qmp_session_input(s, (const uint8_t *)json, strlen(json));
	qmp_session_free(s);
	for (line = strtok_r(qout, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
		snprintf(last, sizeof(last), "%s", line);
	return last;
}

static void qmp_error(const char *json, const char *cls, const char *desc)
{
	struct json_object *r = json_tokener_parse(qmp(json)), *e, *v;

	assert_non_null(r);
	if (!json_object_object_get_ex(r, "error", &e))
		fail_msg("%s: no error: %s", json, json_object_to_json_string(r));
	json_object_object_get_ex(e, "class", &v);
	assert_string_equal(json_object_get_string(v), cls);
	json_object_object_get_ex(e, "desc", &v);
	if (strcmp(json_object_get_string(v), desc))
		fail_msg("%s: '%s', expected '%s'", json, json_object_get_string(v), desc);
	json_object_put(r);
}

static void qmp_ok(const char *json)
{
	const char *r = qmp(json);

	if (!strstr(r, "\"return\""))
		fail_msg("%s: %s", json, r);
}

#define SK(keys) "{\"execute\":\"send-key\",\"arguments\":{\"keys\":" keys "}}"
#define EV(evs) "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":" evs "}}"

static void test_qmp_send_key(void **state)
{
	qmp_ok(SK("[{\"type\":\"qcode\",\"data\":\"ctrl\"},{\"type\":\"qcode\",\"data\":\"alt\"},"
		  "{\"type\":\"qcode\",\"data\":\"delete\"}]"));
	assert_string_equal(fake.log, "+1d +38 +d3 -d3 -38 -1d ");
	fake.log[0] = 0;
	qmp_ok("{\"execute\":\"send-key\",\"arguments\":{\"keys\":[{\"type\":\"number\",\"data\":30}],"
	       "\"hold-time\":50}}");
	assert_string_equal(fake.log, "+1e -1e ");
	qmp_ok(SK("[]"));
	qmp_ok(SK("[{\"type\":\"number\",\"data\":-1}]"));
	/* Past QEMU's qnum map, or no key: accepted, and nothing reaches the guest. */
	fake.log[0] = 0;
	qmp_ok(SK("[{\"type\":\"number\",\"data\":286}]"));
	assert_string_equal(fake.log, "+00 -00 ");
	qmp_error(SK("[{\"type\":\"qcode\",\"data\":\"foo\"}]"), "GenericError",
		  "Parameter 'data' does not accept value 'foo'");
	qmp_error(SK("[{\"type\":\"bad\",\"data\":30}]"), "GenericError",
		  "Parameter 'type' does not accept value 'bad'");
	qmp_error(SK("[{\"type\":\"number\",\"data\":\"x\"}]"), "GenericError",
		  "Invalid parameter type for 'keys[0].data', expected: integer");
	qmp_error(SK("[{\"type\":\"qcode\"}]"), "GenericError", "Parameter 'keys[0].data' is missing");
	qmp_error(SK("5"), "GenericError", "Invalid parameter type for 'keys', expected: array");
	qmp_error(SK("[5]"), "GenericError", "Invalid parameter type for 'keys[0]', expected: object");
	qmp_error(SK("[{\"data\":5}]"), "GenericError", "Parameter 'keys[0].type' is missing");
	qmp_error(SK("[{\"type\":5,\"data\":5}]"), "GenericError",
		  "Invalid parameter type for 'keys[0].type', expected: string");
	qmp_error(SK("[{\"type\":\"qcode\",\"data\":5}]"), "GenericError",
		  "Invalid parameter type for 'keys[0].data', expected: string");
	qmp_error(SK("[{\"type\":\"qcode\",\"data\":\"a\",\"x\":1}]"), "GenericError",
		  "Parameter 'keys[0].x' is unexpected");
	qmp_error("{\"execute\":\"send-key\",\"arguments\":{}}", "GenericError",
		  "Parameter 'keys' is missing");
	qmp_error("{\"execute\":\"send-key\",\"arguments\":{\"keys\":[],\"foo\":1}}", "GenericError",
		  "Parameter 'foo' is unexpected");
}

static void test_qmp_input_send_event(void **state)
{
	qmp_ok(EV("[{\"type\":\"rel\",\"data\":{\"axis\":\"x\",\"value\":10}},"
		  "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"left\"}},"
		  "{\"type\":\"key\",\"data\":{\"down\":true,\"key\":{\"type\":\"qcode\",\"data\":\"a\"}}}]"));
	assert_string_equal(fake.log, "+1e rel(10,0,0,1) ");
	fake.log[0] = 0;
	qmp_ok(EV("[{\"type\":\"btn\",\"data\":{\"down\":false,\"button\":\"left\"}},"
		  "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"wheel-down\"}}]"));
	assert_string_equal(fake.log, "rel(0,0,1,0) ");
	qmp_ok(EV("[]"));
	qmp_error(EV("[{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":10}}]"), "GenericError",
		  "Input handler not found for event type abs");
	qmp_error(EV("[{\"type\":\"rel\",\"data\":{\"axis\":\"q\",\"value\":10}}]"), "GenericError",
		  "Parameter 'axis' does not accept value 'q'");
	qmp_error(EV("[{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"nope\"}}]"),
		  "GenericError", "Parameter 'button' does not accept value 'nope'");
	qmp_error(EV("[{\"type\":\"zz\",\"data\":{}}]"), "GenericError",
		  "Parameter 'type' does not accept value 'zz'");
	qmp_error(EV("[{\"type\":\"key\",\"data\":{\"down\":true,\"key\":{\"type\":\"qcode\","
		     "\"data\":\"nokey\"}}}]"), "GenericError",
		  "Parameter 'data' does not accept value 'nokey'");
	qmp_error(EV("[{\"type\":\"key\",\"data\":{\"key\":{\"type\":\"qcode\",\"data\":\"a\"}}}]"),
		  "GenericError", "Parameter 'events[0].data.down' is missing");
	qmp_error(EV("[{\"type\":\"key\",\"data\":{\"down\":1,\"key\":{\"type\":\"qcode\","
		     "\"data\":\"a\"}}}]"), "GenericError",
		  "Invalid parameter type for 'events[0].data.down', expected: boolean");
	qmp_error(EV("[{\"type\":\"rel\",\"data\":{\"axis\":\"x\"}}]"), "GenericError",
		  "Parameter 'events[0].data.value' is missing");
	qmp_error(EV("[{\"type\":\"rel\"}]"), "GenericError", "Parameter 'events[0].data' is missing");
	qmp_error(EV("5"), "GenericError", "Invalid parameter type for 'events', expected: array");
	qmp_error("{\"execute\":\"input-send-event\",\"arguments\":{\"device\":\"video0\","
		  "\"events\":[]}}", "DeviceNotFound", "Device 'video0' not found");
	qmp_ok("{\"execute\":\"input-send-event\",\"arguments\":{\"head\":1,\"events\":[]}}");
	/* With a tablet, abs events go to it, in 0..0x7fff. */
	assert_int_equal(input_register(&in, "QEMU HID Tablet", INPUT_MOUSE_ABS, &tablet_ops,
					&tablet_dev), 0);
	fake.log[0] = 0;
	qmp_ok(EV("[{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":100}},"
		  "{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":32767}}]"));
	assert_string_equal(fake.log, "abs(100,32767,0,0) ");
	fake.state = RUN_STATE_PAUSED;
	qmp_error(EV("[]"), "GenericError", "VM not running");
	fake.state = RUN_STATE_RUNNING;
	/* Without a keyboard (machine none): QEMU's error for keys. */
	input_unregister(&in, &kbd_dev);
	qmp_error(EV("[{\"type\":\"key\",\"data\":{\"down\":true,\"key\":{\"type\":\"qcode\","
		     "\"data\":\"a\"}}}]"), "GenericError", "Input handler not found for event type key");
}

static void test_qmp_query_mice(void **state)
{
	assert_string_equal(qmp("{\"execute\":\"query-mice\"}"),
			    "{\"return\": [{\"index\": 2, \"name\": \"QEMU PS/2 Mouse\", "
			    "\"current\": true, \"absolute\": false}]}");
	input_unregister(&in, &mouse_dev);
	assert_string_equal(qmp("{\"execute\":\"query-mice\"}"), "{\"return\": []}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_names),
		cmocka_unit_test(test_parse_keys),
		cmocka_unit_test_setup_teardown(test_hmp_sendkey, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hmp_mouse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hmp_info_mice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qmp_send_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qmp_input_send_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qmp_query_mice, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	free(qout);
	return rc;
}
