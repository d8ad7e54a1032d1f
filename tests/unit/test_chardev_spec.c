/* chardev/chardev.c: QEMU's -serial back-end syntax, -chardev, and "info chardev" text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "chardev/chardev.h"
#include "chardev/term.h"

static struct chardev_spec spec_ok(const char *text)
{
	struct chardev_spec spec;
	char err[256] = "";

	if (!chardev_spec_parse(text, &spec, err, sizeof(err)))
		fail_msg("'%s' rejected: %s", text, err);
	return spec;
}

/* Returns the message so callers can check it names the problem. */
static const char *spec_bad(const char *text)
{
	static char err[256];
	struct chardev_spec spec;

	err[0] = '\0';
	if (chardev_spec_parse(text, &spec, err, sizeof(err)))
		fail_msg("'%s' accepted", text);
	assert_true(err[0] != '\0');
	return err;
}

static void test_simple_kinds(void **state)
{
	struct chardev_spec s;

	s = spec_ok("stdio");
	assert_int_equal(s.kind, CHARDEV_STDIO);
	assert_false(s.mux);
	s = spec_ok("mon:stdio");
	assert_int_equal(s.kind, CHARDEV_STDIO);
	assert_true(s.mux);
	s = spec_ok("none");
	assert_int_equal(s.kind, CHARDEV_NONE);
	s = spec_ok("null");
	assert_int_equal(s.kind, CHARDEV_NULL);
	s = spec_ok("pty");
	assert_int_equal(s.kind, CHARDEV_PTY);
	assert_false(s.mux);
}

static void test_file(void **state)
{
	struct chardev_spec s = spec_ok("file:/var/log/com1,with,commas");

	assert_int_equal(s.kind, CHARDEV_FILE);
	/* file: takes the rest verbatim, as QEMU's legacy -serial file: does. */
	assert_string_equal(s.path, "/var/log/com1,with,commas");
	assert_non_null(strstr(spec_bad("file:"), "missing path"));
}

static void test_path_length_limit(void **state)
{
	char text[5 + 200];

	/* sun_path is 108 bytes: 107 characters and the NUL. */
	memcpy(text, "file:", 5);
	memset(text + 5, 'a', 107);
	text[5 + 107] = '\0';
	assert_int_equal(strlen(spec_ok(text).path), 107);
	memset(text + 5, 'a', 108);
	text[5 + 108] = '\0';
	assert_non_null(strstr(spec_bad(text), "too long"));

	memcpy(text, "unix:", 5);
	assert_non_null(strstr(spec_bad(text), "too long"));
}

static void test_unix(void **state)
{
	struct chardev_spec s = spec_ok("unix:/tmp/s");

	assert_int_equal(s.kind, CHARDEV_SOCKET);
	assert_false(s.tcp);
	assert_string_equal(s.path, "/tmp/s");
	assert_false(s.server);
	assert_true(s.wait);

	s = spec_ok("unix:/tmp/s,server,nowait");
	assert_true(s.server);
	assert_false(s.wait);

	s = spec_ok("unix:/tmp/s,server=on,wait=off");
	assert_true(s.server);
	assert_false(s.wait);

	s = spec_ok("unix:/tmp/s,server=off");
	assert_false(s.server);

	s = spec_ok("unix:/tmp/a,,b,server");
	assert_string_equal(s.path, "/tmp/a,b");
}

static void test_tcp(void **state)
{
	struct chardev_spec s = spec_ok("tcp::4444,server,nowait");

	assert_int_equal(s.kind, CHARDEV_SOCKET);
	assert_true(s.tcp);
	/* No host: loopback, never every interface (a guest console is a shell). */
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 4444);
	assert_true(s.server);
	assert_false(s.wait);

	s = spec_ok("tcp:10.0.0.1:23");
	assert_string_equal(s.host, "10.0.0.1");
	assert_int_equal(s.port, 23);
	assert_false(s.server);
	assert_true(s.wait);

	s = spec_ok("tcp:[::1]:65535");		/* the last colon splits */
	assert_string_equal(s.host, "[::1]");
	assert_int_equal(s.port, 65535);

	spec_bad("tcp:4444");
	spec_bad("tcp:");
	spec_bad("tcp:host:");
	spec_bad("tcp:host:65536");
	spec_bad("tcp:host:http");
	spec_bad("tcp::-1");
	spec_bad("tcp::23,bogus=1");
}

static void test_unix_errors(void **state)
{
	spec_bad("unix:");
	assert_non_null(strstr(spec_bad("unix:/tmp/s,server=maybe"), "on or off"));
	assert_non_null(strstr(spec_bad("unix:/tmp/s,wait=2"), "on or off"));
	assert_non_null(strstr(spec_bad("unix:/tmp/s,bogus=1"), "'bogus'"));
	assert_non_null(strstr(spec_bad("unix:/tmp/s,reconnect=1"), "'reconnect'"));
	spec_bad("unix:/tmp/s,=1");
}

static void test_unsupported(void **state)
{
	assert_non_null(strstr(spec_bad("mon:pty"), "mon:"));
	spec_bad("mon:unix:/tmp/s");
	spec_bad("mon:");
	assert_non_null(strstr(spec_bad("udp::4444"), "'udp::4444'"));
	spec_bad("");
	spec_bad("vc");
	spec_bad("stdio,signal=off");
	spec_bad("STDIO");
	spec_bad("file");
	spec_bad("nullx");
}

static struct chardev_spec option_ok(const char *text, const char *want_id)
{
	struct chardev_spec spec;
	char id[CHARDEV_ID_MAX] = "", err[256] = "";

	if (!chardev_option_parse(text, &spec, id, err, sizeof(err)))
		fail_msg("-chardev '%s' rejected: %s", text, err);
	assert_string_equal(id, want_id);
	return spec;
}

static const char *option_bad(const char *text)
{
	static char err[256];
	struct chardev_spec spec;
	char id[CHARDEV_ID_MAX];

	err[0] = '\0';
	if (chardev_option_parse(text, &spec, id, err, sizeof(err)))
		fail_msg("-chardev '%s' accepted", text);
	assert_true(err[0] != '\0');
	return err;
}

static void test_chardev_option(void **state)
{
	struct chardev_spec s;

	s = option_ok("stdio,id=con,mux=on,signal=off", "con");
	assert_int_equal(s.kind, CHARDEV_STDIO);
	assert_true(s.mux);
	s = option_ok("backend=null,id=n", "n");
	assert_int_equal(s.kind, CHARDEV_NULL);
	s = option_ok("pty,id=p", "p");
	assert_int_equal(s.kind, CHARDEV_PTY);
	assert_false(s.mux);
	s = option_ok("file,id=f,path=/tmp/log", "f");
	assert_int_equal(s.kind, CHARDEV_FILE);
	assert_string_equal(s.path, "/tmp/log");

	s = option_ok("socket,id=q,path=/tmp/q,server=on,wait=off", "q");
	assert_int_equal(s.kind, CHARDEV_SOCKET);
	assert_false(s.tcp);
	assert_true(s.server);
	assert_false(s.wait);
	s = option_ok("socket,id=t,port=4444,server,nowait", "t");
	assert_true(s.tcp);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 4444);
	assert_true(s.server);
	s = option_ok("socket,id=t,host=192.168.1.1,port=23", "t");
	assert_string_equal(s.host, "192.168.1.1");
	assert_false(s.server);
	assert_true(s.wait);
}

static void test_chardev_option_errors(void **state)
{
	char long_id[80];

	assert_non_null(strstr(option_bad("stdio"), "'id'"));
	assert_non_null(strstr(option_bad("stdio,id="), "'id'"));
	snprintf(long_id, sizeof(long_id), "null,id=%040d", 0);
	assert_non_null(strstr(option_bad(long_id), "too long"));
	assert_non_null(strstr(option_bad("id=x"), "backend"));
	assert_non_null(strstr(option_bad("vc,id=x"), "'vc'"));
	assert_non_null(strstr(option_bad("file,id=f"), "missing path"));
	assert_non_null(strstr(option_bad("socket,id=s"), "port"));
	assert_non_null(strstr(option_bad("socket,id=s,host=h"), "port"));
	option_bad("socket,id=s,port=70000");
	option_bad("socket,id=s,path=/tmp/s,server=perhaps");
	assert_non_null(strstr(option_bad("pty,id=p,mux=on"), "mux"));
	option_bad("stdio,id=s,mux=2");
	assert_non_null(strstr(option_bad("stdio,id=s,bogus=1"), "'bogus'"));
	assert_non_null(strstr(option_bad("null,id=n,path=/tmp/x"), "'path'"));
	option_bad("null,id=n,=1");
}

static void describe_is(const char *text, const char *want)
{
	struct chardev_spec s = spec_ok(text);
	char buf[200];

	memset(buf, 'x', sizeof(buf));
	chardev_spec_describe(&s, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_describe(void **state)
{
	describe_is("stdio", "stdio");
	describe_is("mon:stdio", "stdio");
	describe_is("null", "null");
	describe_is("pty", "pty");
	describe_is("file:/tmp/a", "file:/tmp/a");
	describe_is("unix:/tmp/s,server,nowait", "unix:/tmp/s,server=on");
	describe_is("unix:/tmp/s", "unix:/tmp/s");
	describe_is("tcp::4444,server,nowait", "tcp:127.0.0.1:4444,server=on");

	/* A short buffer is truncated, never overrun. */
	struct chardev_spec s = spec_ok("unix:/tmp/a-long-socket-path,server");
	char small[8];
	chardev_spec_describe(&s, small, sizeof(small));
	assert_string_equal(small, "unix:/t");
}

/* Issue #26: signal=on keeps the terminal's ISIG (Ctrl-C is SIGINT); off clears it. */
static void test_term_raw_signals(void **state)
{
	struct termios tio;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	int slave;

	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	assert_int_equal(tcgetattr(slave, &tio), 0);
	tio.c_lflag |= ISIG | ICANON | ECHO;
	assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);

	assert_int_equal(term_raw_enter(slave, true), 0);
	assert_int_equal(tcgetattr(slave, &tio), 0);
	assert_true(tio.c_lflag & ISIG);
	assert_false(tio.c_lflag & (ICANON | ECHO));
	term_restore();

	assert_int_equal(term_raw_enter(slave, false), 0);
	assert_int_equal(tcgetattr(slave, &tio), 0);
	assert_false(tio.c_lflag & ISIG);
	term_restore();
	assert_int_equal(tcgetattr(slave, &tio), 0);
	assert_true(tio.c_lflag & ISIG);		/* restored */
	close(slave);
	close(master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_kinds),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_path_length_limit),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_unix_errors),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_chardev_option),
		cmocka_unit_test(test_chardev_option_errors),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_term_raw_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
