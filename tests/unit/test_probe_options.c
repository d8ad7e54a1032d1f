/*
 * libvirt's capability probe line and what it needs (cli/options.c,
 * cli/accel.c, chardev fd=): -S, -no-user-config, -msg, -machine none,
 * accel= lists, -nographic with -daemonize, -chardev socket,fd=N and
 * -mon id=.  Errors are logged by the parser; these look at the verdicts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/accel.h"
#include "cli/options.h"
#include "util/log.h"

#include "options_harness.h"

#define PARSE(cfg, ...) parse_to((cfg), devnull, (const char *[]){ __VA_ARGS__, NULL })
#define RUN_OK(cfg, ...) assert_int_equal(PARSE((cfg), __VA_ARGS__), OPTIONS_RUN)
#define RUN_ERR(...) do { \
		struct vm_config c_; \
		assert_int_equal(PARSE(&c_, __VA_ARGS__), OPTIONS_ERROR); \
		options_free(&c_); \
	} while (0)

/* The exact line libvirt 9.0 probes with (socket and pidfile paths aside). */
static void test_probe_line(void **state)
{
	struct vm_config cfg;

	RUN_OK(&cfg, "-S", "-no-user-config", "-nodefaults", "-nographic", "-machine",
	       "none,accel=kvm:tcg", "-qmp", "unix:/tmp/p.sock,server=on,wait=off", "-pidfile",
	       "/tmp/p.pid", "-daemonize");
	assert_int_equal(cfg.machine, MACHINE_NONE);
	assert_true(cfg.start_paused);
	assert_true(cfg.daemonize);
	assert_string_equal(cfg.accel.machine_list, "kvm:tcg");
	/* Only the QMP monitor: no serial port, no default monitor. */
	assert_int_equal(cfg.nr_chardevs, 1);
	assert_int_equal(cfg.nr_monitors, 1);
	assert_true(cfg.monitors[0].control);
	assert_string_equal(cfg.serial_chardev, "");
	options_free(&cfg);

	RUN_OK(&cfg, "-M", "none");
	assert_int_equal(cfg.machine, MACHINE_NONE);
	assert_false(cfg.start_paused);
	/* QEMU's default monitor on stdio, and no serial port on none. */
	assert_int_equal(cfg.nr_monitors, 1);
	assert_false(cfg.monitors[0].control);
	assert_string_equal(cfg.serial_chardev, "");
	options_free(&cfg);
	RUN_OK(&cfg, "-machine", "pc");
	assert_int_equal(cfg.machine, MACHINE_PC);
	options_free(&cfg);
}

static void test_machine_help_lists_none(void **state)
{
	struct vm_config cfg;
	char buf[1024] = "";
	FILE *out = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(out);
	assert_int_equal(parse_to(&cfg, out, (const char *[]){ "-machine", "help", NULL }),
			 OPTIONS_DONE);
	fclose(out);
	assert_non_null(strstr(buf, "\nnone                 empty machine\n"));
	assert_non_null(strstr(buf, "\npc "));
}

/* What none cannot carry: QEMU's refusals, and Kestrel's for RAM and CPU it lacks. */
static void test_machine_none_refusals(void **state)
{
	RUN_ERR("-M", "none", "-nodefaults", "-kernel", "vmlinuz");
	RUN_ERR("-M", "none", "-nodefaults", "-smp", "2");
	RUN_ERR("-M", "none", "-nodefaults", "-m", "64");
	RUN_ERR("-M", "none", "-nodefaults", "-cpu", "host");
	RUN_ERR("-M", "none", "-nodefaults", "-device", "virtio-rng-pci");
	RUN_ERR("-M", "none", "-nodefaults", "-drive", "file=/dev/null,format=raw");
	RUN_ERR("-M", "none", "-nodefaults", "-serial", "null");
	RUN_ERR("-M", "none", "-nodefaults", "-bios", "/dev/null");
	RUN_ERR("-machine", "nonesuch");

	struct vm_config cfg;
	RUN_OK(&cfg, "-M", "none", "-nodefaults", "-smp", "1", "-drive",
	       "file=/dev/null,format=raw,if=none,id=d0");
	options_free(&cfg);
}

/* QEMU 7.2 vl.c: refused only while a default serial port or monitor is on stdio. */
static void test_nographic_with_daemonize(void **state)
{
	struct vm_config cfg;

	RUN_ERR("-M", "none", "-nographic", "-daemonize");		/* default monitor */
	RUN_ERR("-kernel", "k", "-nographic", "-daemonize", "-serial", "null");	/* and monitor */
	RUN_ERR("-kernel", "k", "-nographic", "-daemonize", "-monitor", "none");	/* serial */
	RUN_ERR("-M", "none", "-nodefaults", "-nographic", "-daemonize", "-monitor", "stdio");
	RUN_OK(&cfg, "-M", "none", "-nodefaults", "-nographic", "-daemonize");
	assert_true(cfg.daemonize);
	assert_int_equal(cfg.display, DISPLAY_NOGRAPHIC);
	options_free(&cfg);
	RUN_OK(&cfg, "-M", "none", "-nographic", "-daemonize", "-monitor", "none");
	options_free(&cfg);
	RUN_OK(&cfg, "-kernel", "k", "-nographic", "-daemonize", "-serial", "null", "-monitor",
	       "none");
	assert_string_equal(cfg.serial_chardev, "serial0");
	options_free(&cfg);
}

static void test_msg(void **state)
{
	struct vm_config cfg;

	RUN_OK(&cfg, "-M", "none", "-nodefaults", "-msg", "timestamp=on,guest-name=off");
	assert_false(cfg.msg_guest_name);
	options_free(&cfg);
	RUN_OK(&cfg, "-M", "none", "-nodefaults", "-name", "g", "-msg", "guest-name=on");
	assert_true(cfg.msg_guest_name);
	options_free(&cfg);
	RUN_ERR("-msg", "timestamp=maybe");
	RUN_ERR("-msg", "foo=on");
	log_set_timestamp(false);
	log_set_guest_name(NULL);
}

static void test_start_paused_and_no_user_config(void **state)
{
	struct vm_config cfg;

	RUN_OK(&cfg, "-kernel", "k", "-S", "-no-user-config");
	assert_true(cfg.start_paused);
	options_free(&cfg);
	RUN_OK(&cfg, "-kernel", "k");
	assert_false(cfg.start_paused);
	options_free(&cfg);
	RUN_ERR("-S=on");		/* a flag, as QEMU's */
}

/* -machine accel= and -accel: parsed as lists, opened (or refused) by accel_configure. */
static void test_accel_parsing(void **state)
{
	struct vm_config cfg;

	RUN_OK(&cfg, "-M", "none,accel=kvm", "-machine", "accel=kvm:tcg");	/* last wins */
	assert_string_equal(cfg.accel.machine_list, "kvm:tcg");
	options_free(&cfg);
	RUN_OK(&cfg, "-M", "none,accel=tcg", "-enable-kvm");
	assert_string_equal(cfg.accel.machine_list, "kvm");
	options_free(&cfg);
	RUN_OK(&cfg, "-M", "none", "-accel", "kvm", "-accel", "tcg");
	assert_int_equal(cfg.accel.nr_opts, 2);
	assert_string_equal(cfg.accel.opts[1], "tcg");
	options_free(&cfg);
	RUN_ERR("-M", "none,accel=kvm", "-accel", "kvm");	/* QEMU: incompatible */
	RUN_ERR("-M", "none", "-accel", "kvm,kernel-irqchip=on");
}

static bool have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int configure(const char **args, bool *enabled)
{
	struct vm_config cfg;
	struct kvm_host host = { .fd = -1 };
	int rc;

	assert_int_equal(parse_to(&cfg, devnull, args), OPTIONS_RUN);
	rc = accel_configure(&cfg, &host, enabled);
	assert_true(rc < 0 || *enabled == (host.fd >= 0));
	kvm_host_close(&host);
	options_free(&cfg);
	return rc;
}

#define CONFIGURE(enabled, ...) configure((const char *[]){ __VA_ARGS__, NULL }, (enabled))

static void test_accel_configure(void **state)
{
	bool kvm = have_kvm(), on;

	/* No TCG in Kestrel: tcg alone, or only unknown names, never start. */
	assert_int_equal(CONFIGURE(&on, "-M", "none,accel=tcg", "-nodefaults"), -1);
	assert_int_equal(CONFIGURE(&on, "-M", "none", "-accel", "tcg", "-nodefaults"), -1);
	assert_int_equal(CONFIGURE(&on, "-M", "none,accel=foo", "-nodefaults"), -1);
	assert_int_equal(CONFIGURE(&on, "-M", "none,accel=foo:tcg", "-nodefaults"), -1);
	/* kvm:tcg: KVM where /dev/kvm opens, else none starts without an accelerator. */
	assert_int_equal(CONFIGURE(&on, "-M", "none,accel=kvm:tcg", "-nodefaults"), 0);
	assert_int_equal(on, kvm);
	assert_int_equal(CONFIGURE(&on, "-M", "none", "-accel", "kvm", "-accel", "tcg",
				   "-nodefaults"), 0);
	assert_int_equal(on, kvm);
	assert_int_equal(CONFIGURE(&on, "-M", "none", "-nodefaults"), 0);
	assert_int_equal(on, kvm);
	/* kvm alone is what QEMU makes fatal without KVM; so does the pc, always. */
	assert_int_equal(CONFIGURE(&on, "-M", "none,accel=kvm", "-nodefaults"), kvm ? 0 : -1);
	assert_int_equal(CONFIGURE(&on, "-M", "none", "-enable-kvm", "-nodefaults"), kvm ? 0 : -1);
	if (!kvm)
		assert_int_equal(CONFIGURE(&on, "-kernel", "k", "-machine", "pc,accel=kvm:tcg",
					   "-nodefaults"), -1);
}

/* -chardev socket,fd=N: a socket the caller passes; anything else is QEMU's error. */
static void test_chardev_fd(void **state)
{
	struct vm_config cfg;
	char arg[128];
	int sv[2];
	int file = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	snprintf(arg, sizeof(arg), "socket,id=charmonitor,fd=%d,server=on,wait=off", sv[0]);
	RUN_OK(&cfg, "-M", "none", "-nodefaults", "-chardev", arg, "-mon",
	       "chardev=charmonitor,id=monitor,mode=control");
	assert_int_equal(cfg.chardevs[0].spec.kind, CHARDEV_SOCKET);
	assert_int_equal(cfg.chardevs[0].spec.fd, sv[0]);
	assert_true(cfg.chardevs[0].spec.server);
	assert_false(cfg.chardevs[0].spec.wait);
	assert_string_equal(cfg.monitors[0].id, "monitor");
	assert_true(cfg.monitors[0].control);
	options_free(&cfg);

	snprintf(arg, sizeof(arg), "socket,id=c,fd=%d,server=on,wait=off", file);
	RUN_ERR("-M", "none", "-nodefaults", "-chardev", arg);		/* not a socket */
	RUN_ERR("-M", "none", "-nodefaults", "-chardev", "socket,id=c,fd=987,server=on");
	RUN_ERR("-M", "none", "-nodefaults", "-chardev", "socket,id=c,fd=x,server=on");
	snprintf(arg, sizeof(arg), "socket,id=c,fd=%d,path=/tmp/s,server=on", sv[0]);
	RUN_ERR("-M", "none", "-nodefaults", "-chardev", arg);		/* fd and path */
	/* -mon id= is unique, as QEMU's option ids. */
	RUN_ERR("-M", "none", "-nodefaults", "-chardev", "null,id=c", "-mon",
		"chardev=c,id=m", "-mon", "chardev=c,id=m");
	close(sv[0]);
	close(sv[1]);
	close(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_line),
		cmocka_unit_test(test_machine_help_lists_none),
		cmocka_unit_test(test_machine_none_refusals),
		cmocka_unit_test(test_nographic_with_daemonize),
		cmocka_unit_test(test_msg),
		cmocka_unit_test(test_start_paused_and_no_user_config),
		cmocka_unit_test(test_accel_parsing),
		cmocka_unit_test(test_accel_configure),
		cmocka_unit_test(test_chardev_fd),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
