/* kestrel: one virtual machine per process, started from a QEMU-style command line. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cli/accel.h"
#include "cli/app.h"
#include "cli/app_nbd.h"
#include "cli/options.h"
#include "chardev/term.h"
#include "util/log.h"
#include "vmm/gdb_kvm.h"
#include "vmm/hostcheck.h"

static void on_signal(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	struct signalfd_siginfo si;

	if (read(app->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	/* QEMU's wording, which scripts and people already recognise. */
	log_info("terminating on signal %u from pid %u", si.ssi_signo, si.ssi_pid);
	app_quit(app, "host-signal");
}

static void console_quit(void *opaque)
{
	app_quit(opaque, "host-ui");
}

static void on_wake(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t count;

	/* The stop flag itself is what the loop checks; just drain the eventfd. */
	if (read(vm->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_debug("eventfd read: %s", strerror(errno));
}

static int setup_signals(struct app *app)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);	/* a vanished socket reader is an error return, not death */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	/* Blocked here, before any thread exists, so only the signalfd sees them. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	app->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (app->signal_fd < 0)
		return -1;
	return loop_add(app->loop, app->signal_fd, EPOLLIN, on_signal, app);
}

/*
 * -daemonize: the parent waits until the child has the VM running, so its exit
 * status says whether start-up worked (QEMU's behaviour).  Must happen before
 * any KVM VM exists: a VM belongs to the process that created it.
 */
static int daemonize(struct app *app)
{
	int fds[2];
	pid_t pid;
	char status = 1;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_error("-daemonize: pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("-daemonize: fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(fds[0]);
	setsid();
	app->ready_fd = fds[1];
	return 0;
}

static void daemon_ready(struct app *app)
{
	char ok = 0;
	int null_fd;

	if (app->ready_fd < 0)
		return;
	if (write(app->ready_fd, &ok, 1) != 1)
		log_debug("-daemonize: parent vanished");
	close(app->ready_fd);
	app->ready_fd = -1;
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		close(null_fd);
	}
}

static int write_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		log_error("-pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	/* The lock lives as long as we do and tells a second instance we are running. */
	if (lockf(fd, F_TLOCK, 0) < 0) {
		log_error("-pidfile %s: cannot lock: another instance is running", path);
		close(fd);
		return -1;
	}
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)len) != len) {
		log_error("-pidfile %s: cannot write: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return 0;	/* fd intentionally kept open to hold the lock */
}

static struct chardev *find_chardev(struct app *app, const char *id)
{
	for (unsigned i = 0; i < app->nr_chardevs; i++)
		if (strcmp(app->chardevs[i].label, id) == 0)
			return &app->chardevs[i];
	return NULL;
}

/* Opens every character device and puts the console and monitors on them. */
static int setup_frontends(struct app *app)
{
	const struct vm_config *cfg = &app->cfg;

	for (unsigned i = 0; i < cfg->nr_chardevs; i++) {
		if (chardev_open(&app->chardevs[i], cfg->chardevs[i].id, &cfg->chardevs[i].spec) < 0)
			return -1;
		app->nr_chardevs++;
	}
	app->serial_cd = cfg->serial_chardev[0] ? find_chardev(app, cfg->serial_chardev) : NULL;
	if (app->serial_cd) {
		console_init(&app->console, app->serial_cd, console_quit, app);
		app->has_console = true;
	}
	for (unsigned i = 0; i < cfg->nr_monitors; i++) {
		struct chardev *cd = find_chardev(app, cfg->monitors[i].chardev);
		struct monitor *mon = &app->monitors[app->nr_monitors++];
		monitor_init(mon, cd, &app->control, cfg->monitors[i].control);
		if (cd == app->serial_cd) {
			console_set_monitor(&app->console, mon);	/* muxed: Ctrl-a c */
			continue;
		}
		struct chardev_frontend fe = monitor_frontend(mon);
		if (chardev_attach(cd, app->loop, &fe) < 0)
			return -1;
	}
	if (app->serial_cd) {
		struct chardev_frontend fe = console_frontend(&app->console);
		if (chardev_attach(app->serial_cd, app->loop, &fe) < 0)
			return -1;
	}
	return 0;
}

/*
 * A drive's I/O limits (QEMU's blk_io_limits_enable + blk_set_io_limits): its
 * own (-drive iops=..., group= or the drive's id), or a throttle node's group.
 */
static int open_limits(struct block_dev *bd, const struct drive_config *d, char *err,
		       size_t errlen)
{
	struct throttle_config c = d->throttle;

	if (d->throttle_node && !throttle_group_get_config(d->throttle_group, &c))
	{
		snprintf(err, errlen, "Throttle group '%s' does not exist", d->throttle_group);
		return -1;
	}
	if (!d->throttled && !(d->throttle_node && throttle_config_enabled(&c)))
		return 0;
	return block_io_limits(bd, d->throttle_group[0] ? d->throttle_group : d->id, &c, err,
			       errlen);
}

/* Opens every -drive once; a reset reuses them (and a snapshot=on overlay survives it). */
static int open_disks(struct app *app)
{
	const struct vm_config *cfg = &app->cfg;
	char err[256];

	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		const char *format = d->format[0] ? d->format : NULL;
		int rc = d->snapshot
			? block_open_snapshot_overlay(d->file, format, d->flags, &app->disks[i], err,
						      sizeof(err))
			: block_open_key(d->file, format, d->flags,
					 d->key_secret[0] ? d->key_secret : NULL, &app->disks[i], err,
					 sizeof(err));
		if (rc == 0 && d->copy_on_read)
			rc = block_copy_on_read(app->disks[i], &app->disks[i], err, sizeof(err));
		/* Only an encrypted format takes a key: accepted elsewhere, it would be ignored. */
		if (rc == 0 && d->key_secret[0] && strcmp(block_format_name(app->disks[i]), "luks")) {
			snprintf(err, sizeof(err), "Block format '%s' does not support the option "
				 "'key-secret'", block_format_name(app->disks[i]));
			block_close(app->disks[i]);
			app->disks[i] = NULL;
			rc = -1;
		}
		if (rc == 0 && open_limits(app->disks[i], d, err, sizeof(err)) < 0) {
			block_close(app->disks[i]);
			app->disks[i] = NULL;
			rc = -1;
		}
		if (rc < 0 && d->blockdev) {
			log_error("-blockdev node-name=%s: %s", d->id, err);
			return -1;
		}
		if (rc < 0) {
			log_error("-drive file=%s: %s", d->file, err);
			return -1;
		}
	}
	return 0;
}

/* The virtconsole's chardev feeds the virtio console, whichever VM currently runs. */
static int setup_virtconsole(struct app *app)
{
	struct chardev *cd;

	/* A virtio-serial-pci without a virtconsole is a console nobody listens to. */
	app->backends.console = &app->vcon;
	if (!app->cfg.console_chardev[0])
		return 0;
	cd = find_chardev(app, app->cfg.console_chardev);
	if (!cd) {
		log_error("-device virtconsole: chardev '%s' not found", app->cfg.console_chardev);
		return -1;
	}
	if (cd == app->serial_cd) {
		log_error("-device virtconsole: chardev '%s' is in use by the serial port", cd->label);
		return -1;
	}
	app->vcon.cd = cd;
	struct chardev_frontend fe = { .input = virtio_console_input, .opaque = &app->vcon };
	return chardev_attach(cd, app->loop, &fe);
}

static void on_balloon_change(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	uint64_t count;

	if (read(app->balloon.change_fd, &count, sizeof(count)) == sizeof(count))
		app_balloon_changed(app);
}

static void on_balloon_timer(void *opaque, uint32_t events)
{
	struct app *app = opaque;
	uint64_t count;

	if (read(app->balloon_timer_fd, &count, sizeof(count)) == sizeof(count))
		app_balloon_timer(app);
}

/* The balloon's state outlives resets, as the host's target should. */
static int setup_balloon(struct app *app)
{
	const struct balloon_config *bc = &app->cfg.balloon;
	struct virtio_balloon *b = &app->balloon;

	b->change_fd = b->timer_fd = -1;
	app->balloon_timer_fd = -1;
	if (!bc->enabled)
		return 0;
	app->balloon_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (virtio_balloon_init(b) < 0 || app->balloon_timer_fd < 0 ||
	    loop_add(app->loop, b->change_fd, EPOLLIN, on_balloon_change, app) < 0 ||
	    loop_add(app->loop, app->balloon_timer_fd, EPOLLIN, on_balloon_timer, app) < 0) {
		log_error("virtio-balloon: %s", strerror(errno));
		return -1;
	}
	b->deflate_on_oom = bc->deflate_on_oom;
	b->free_page_reporting = bc->free_page_reporting;
	b->polling_interval = bc->polling_interval;
	snprintf(b->id, sizeof(b->id), "%s", bc->id);
	app->backends.balloon = b;
	return 0;
}

/* Exit status for how the guest stopped, as QEMU reports them. */
static int stop_status(enum vm_stop stop, int status)
{
	switch (stop) {
	case VM_STOP_EXIT:
		return status;
	case VM_STOP_ERROR:
		return 1;
	default:
		return 0;
	}
}

/*
 * A vCPU reported a KVM internal error and the vCPUs are parking: the VM
 * pauses in "internal-error", as QEMU's vm_stop(RUN_STATE_INTERNAL_ERROR)
 * (a STOP event), and stays for the monitor until a reset or quit; cont is
 * refused ("Resetting the Virtual Machine is required").
 */
static void check_internal_error(struct app *app, struct vm *vm)
{
	if (!atomic_exchange(&vm->internal_error, false))
		return;
	vm_pause(vm);
	if (app->state == RUN_STATE_INTERNAL_ERROR)
		return;
	app->state = RUN_STATE_INTERNAL_ERROR;
	app_emit(app, "STOP", NULL);
}

/* Runs the main loop until the VM stops or, once stopped, until the host says quit. */
static void wait_for(struct app *app, struct vm *vm)
{
	while (vm ? atomic_load(&vm->stop) == VM_RUNNING : !app->quit && !app->reset_requested) {
		bool typed_ahead = app->has_console && console_flush(&app->console);
		if (vm)
			check_internal_error(app, vm);
		app_check_io_errors(app);
		if (loop_run_once(app->loop, typed_ahead ? 10 : -1) < 0) {
			log_error("event loop: %s", strerror(errno));
			if (!vm)
				return;
			vm_request_stop(vm, VM_STOP_ERROR, 1);
		}
		if (vm)
			check_internal_error(app, vm);
	}
}

/* Tells the monitors how the VM stopped; returns whether to build it again. */
static bool report_stop(struct app *app, enum vm_stop stop)
{
	struct json_object *data;
	bool host_reset = app->reset_requested;

	app->reset_requested = false;
	switch (stop) {
	case VM_STOP_RESET:
		if (app->cfg.no_reboot && !host_reset) {
			app_emit_shutdown(app, true, "guest-reset");
			return false;
		}
		data = json_object_new_object();
		json_object_object_add(data, "guest", json_object_new_boolean(!host_reset));
		json_object_object_add(data, "reason", json_object_new_string(
			host_reset ? "host-qmp-system-reset" : "guest-reset"));
		app_emit(app, "RESET", data);
		return !app->quit;
	case VM_STOP_POWEROFF:
		app_emit_shutdown(app, true, "guest-shutdown");
		return false;
	case VM_STOP_QUIT:
		app_emit_shutdown(app, false, app->quit_reason ? app->quit_reason : "host-signal");
		return false;
	case VM_STOP_ERROR:
		app->state = RUN_STATE_INTERNAL_ERROR;
		return false;
	default:
		return false;
	}
}

/* Runs the VM, rebuilding it on reset; returns the process exit status. */
static int run_machine(struct app *app)
{
	for (;;) {
		struct vm vm;
		enum vm_stop stop;
		int status;

		/* -S: until cont, and through a reset before it, as QEMU's prelaunch. */
		bool prelaunch = app->state == RUN_STATE_PRELAUNCH;

		app_io_errors_open(app);
		if (vm_create(&vm, &app->host, &app->cfg, &app->backends) < 0) {
			vm_destroy(&vm);
			return 1;
		}
		if (prelaunch)
			vm_hold_vcpus(&vm);
		if (vm_start(&vm) < 0 || loop_add(app->loop, vm.wake_fd, EPOLLIN, on_wake, &vm) < 0) {
			vm_destroy(&vm);
			return 1;
		}
		app->vm = &vm;
		app->state = prelaunch ? RUN_STATE_PRELAUNCH : RUN_STATE_RUNNING;
		gdb_kvm_set_vm(app->gdb, &vm, VM_RUNNING);
		if (app->has_console)
			console_set_serial(&app->console, pc_has_part(&vm, &vm.com1) ? &vm.com1 : NULL);
		daemon_ready(app);
		if (app->quit)
			vm_request_stop(&vm, VM_STOP_QUIT, 0);

		wait_for(app, &vm);
		/* A reset or quit: I/O threads waiting for cont fail their requests and end. */
		app_release_io_waiters(app, true);

		if (app->has_console)
			console_set_serial(&app->console, NULL);
		loop_remove(app->loop, vm.wake_fd);
		app->vm = NULL;
		stop = (enum vm_stop)atomic_load(&vm.stop);
		gdb_kvm_set_vm(app->gdb, NULL, stop);
		status = vm.exit_status;
		log_debug("VM stopped (reason %d) after %llu exits to userspace", stop,
			  (unsigned long long)vm_exit_count(&vm));
		vm_destroy(&vm);
		app->backends.boots++;

		if (report_stop(app, stop))
			continue;
		if (stop == VM_STOP_POWEROFF && app->cfg.no_shutdown) {
			/* -no-shutdown: the machine stays, stopped, until quit or system_reset. */
			app->state = RUN_STATE_SHUTDOWN;
			wait_for(app, NULL);
			if (app->reset_requested && !app->quit) {
				app->reset_requested = false;
				continue;
			}
			app_emit_shutdown(app, false, app->quit_reason ? app->quit_reason : "host-signal");
		}
		return stop_status(stop, status);
	}
}

/*
 * Machine none: no VM, only the monitors, until quit (QEMU's null-machine,
 * which libvirt's capability probe starts).  The run state still moves
 * (prelaunch, running, paused) as QMP cont and stop ask; system_reset is
 * a RESET event and nothing more.
 */
static int run_none(struct app *app)
{
	daemon_ready(app);
	for (;;) {
		wait_for(app, NULL);
		if (app->reset_requested && !app->quit) {
			app->reset_requested = false;
			struct json_object *data = json_object_new_object();
			json_object_object_add(data, "guest", json_object_new_boolean(false));
			json_object_object_add(data, "reason",
					       json_object_new_string("host-qmp-system-reset"));
			app_emit(app, "RESET", data);
			continue;
		}
		app_emit_shutdown(app, false, app->quit_reason ? app->quit_reason : "host-signal");
		return 0;
	}
}

static void teardown(struct app *app)
{
	gdb_kvm_close(app->gdb);
	/* The VNC thread refreshes the display: it stops before anything else goes. */
	app_display_close(app);
	/* The NBD server's sessions read the disks: they end first. */
	app_nbd_free(app->nbd);
	app->nbd = NULL;
	for (unsigned i = 0; i < app->cfg.nr_drives; i++)
		if (app->disks[i])
			block_close(app->disks[i]);
	for (unsigned i = 0; i < app->nr_monitors; i++)
		monitor_destroy(&app->monitors[i]);
	for (unsigned i = 0; i < app->nr_chardevs; i++)
		chardev_close(&app->chardevs[i]);
	if (app->net_opened)
		app_net_close(&app->net, &app->cfg);	/* runs the downscripts */
	app_input_close(app);	/* after the monitors: nothing sends keys any more */
	if (app->loop)
		loop_destroy(app->loop);
	if (app->signal_fd >= 0)
		close(app->signal_fd);
	if (app->backends.balloon) {
		close(app->balloon.change_fd);
		close(app->balloon.timer_fd);
	}
	if (app->balloon_timer_fd >= 0)
		close(app->balloon_timer_fd);
	if (app->pidfile_written)
		unlink(app->cfg.pidfile);
	kvm_host_close(&app->host);
	options_free(&app->cfg);
	/* Last: the VM (and its video card) is gone by now. */
	if (app->display_ready)
		display_destroy(&app->display);
}

int main(int argc, char **argv)
{
	struct app app = { .signal_fd = -1, .ready_fd = -1, .host = { .fd = -1 }, .keys = { .timer_fd = -1 },
			    .balloon_timer_fd = -1 };
	int status = 1;

	log_set_program("kestrel");
	if (getenv("KESTREL_DEBUG"))
		log_set_verbose(true);
	switch (options_parse(argc, argv, &app.cfg, stdout)) {
	case OPTIONS_DONE:
		options_free(&app.cfg);
		return 0;
	case OPTIONS_ERROR:
		options_free(&app.cfg);	/* what was parsed before the bad option */
		return 1;
	case OPTIONS_RUN:
		break;
	}
	if (options_set_process_name(&app.cfg) < 0) {
		options_free(&app.cfg);
		return 1;
	}
	if (app.cfg.check_host) {
		status = hostcheck_run(stdout);
		options_free(&app.cfg);
		return status;
	}
	app_control_init(&app);
	if (app_input_init(&app) < 0)
		goto out;
	if (app_display_init(&app) < 0)
		goto out;
	app.state = app.cfg.start_paused ? RUN_STATE_PRELAUNCH : RUN_STATE_RUNNING;
	/* Machine none boots nothing: no kernel or firmware file to check. */
	if ((app.cfg.machine != MACHINE_NONE && vm_preflight(&app.cfg) < 0) ||
	    app_net_check(&app.cfg) < 0)
		goto out;
	if (app.cfg.daemonize && daemonize(&app) < 0)
		goto out;
	if (app.cfg.pidfile) {
		if (write_pidfile(app.cfg.pidfile) < 0)
			goto out;
		app.pidfile_written = true;
	}
	app.loop = loop_create();
	if (!app.loop || setup_signals(&app) < 0 || app_input_start(&app) < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	if (setup_frontends(&app) < 0 || open_disks(&app) < 0 ||
	    vm_preflight_backends(&app.cfg, app.disks) < 0 || setup_virtconsole(&app) < 0 ||
	    setup_balloon(&app) < 0)
		goto out;
	/*
	 * KVM last, after everything the command line names was checked and
	 * opened (QEMU's order too), so a bad option gets its own error on a host
	 * without /dev/kvm; network back ends follow it because their ifup
	 * scripts change the host.
	 */
	if (accel_configure(&app.cfg, &app.host, &app.kvm_enabled) < 0 || app_gdb_open(&app) < 0)
		goto out;
	app.net_opened = true;
	if (app_net_open(&app.net, &app.cfg, app.loop) < 0)
		goto out;
	if (app_display_start(&app) < 0)
		goto out;
	app.backends.nics = app.net.nics;
	app.backends.e1000s = app.net.e1000s;
	app.backends.nic_roms = app.net.roms;
	app.backends.serial = app.serial_cd;
	app.backends.disks = app.disks;
	app.backends.blks = app.blks;
	pthread_mutex_init(&app.io_errors.lock, NULL);
	pthread_cond_init(&app.io_errors.resumed, NULL);
	app.backends.blk_error = (struct blk_error_hook){ .fn = app_blk_error, .opaque = &app };
	if (app.cfg.debugcon_chardev[0])
		app.backends.debugcon = find_chardev(&app, app.cfg.debugcon_chardev);
	if (app.serial_cd && app.serial_cd->spec.kind == CHARDEV_STDIO &&
	    term_raw_enter(STDIN_FILENO, app.serial_cd->spec.signal) < 0)
		log_warn("cannot put the terminal in raw mode: %s", strerror(errno));

	status = app.cfg.machine == MACHINE_NONE ? run_none(&app) : run_machine(&app);
	term_restore();
out:
	teardown(&app);
	return status;
}
