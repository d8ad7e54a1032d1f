/*
 * The kestrel process: its configuration, character devices, console,
 * monitors and the VM currently running.  One instance lives on main()'s stack
 * and reaches every callback through its opaque pointer.
 */
#ifndef KESTREL_CLI_APP_H
#define KESTREL_CLI_APP_H

#include <stdbool.h>

#include "cli/app_net.h"
#include "chardev/chardev.h"
#include "core/display.h"
#include "core/input.h"
#include "ui/console.h"
#include "ui/control.h"
#include "ui/monitor.h"
#include "util/loop.h"
#include "vmm/config.h"
#include "vmm/kvm.h"
#include "vmm/vm.h"

struct json_object;
struct app_nbd;
struct gdb_kvm;

/*
 * Disk errors the I/O threads hand to the main loop (app_control.c): each
 * becomes a BLOCK_IO_ERROR event; a stop pauses the VM in "io-error", and
 * the threads waiting for cont go on when resume_gen moves (abort: fail
 * their requests, the VM is being reset or going away).
 */
#define APP_IO_ERRORS_MAX 16
struct app_io_errors {
	pthread_mutex_t lock;
	pthread_cond_t resumed;
	struct { char drive[32]; bool is_read; int errnum; int action; } pending[APP_IO_ERRORS_MAX];
	unsigned nr_pending, dropped;
	bool stop_due;
	unsigned resume_gen;
	bool abort;
	bool closing;		/* the VM is being torn down: no thread may wait any more */
};

/* Keys a sendkey holds down until its timer fires (cli/app_input.c). */
#define APP_KEYS_MAX 64
struct app_keys {
	int timer_fd;
	unsigned held[APP_KEYS_MAX];
	unsigned nr_held;
};

struct app {
	struct vm_config cfg;
	struct display display;		/* the VM's screen: its video card draws, viewers read */
	bool display_ready;
	struct kvm_host host;
	struct chardev chardevs[VM_MAX_CHARDEVS];
	unsigned nr_chardevs;
	struct chardev *serial_cd;	/* COM1's back end, NULL for -serial none */
	struct console console;
	bool has_console;
	struct monitor monitors[VM_MAX_MONITORS];
	unsigned nr_monitors;
	struct control control;
	struct block_dev *disks[VM_MAX_DRIVES];	/* cfg->drives, opened once for all resets */
	struct virtio_console vcon;
	struct virtio_blk blks[VM_MAX_DEVICES];	/* virtio-blk state, rebuilt at each plug */
	struct app_net net;		/* NICs and network back ends, kept across resets */
	bool net_opened;
	struct virtio_balloon balloon;	/* valid when cfg.balloon.enabled */
	int balloon_timer_fd;		/* BALLOON_CHANGE rate limit: a held-back event */
	double balloon_last_event;	/* CLOCK_MONOTONIC seconds of the last one sent */
	bool balloon_event_pending;
	struct vm_backends backends;
	struct loop *loop;
	struct vm *vm;			/* the running VM, NULL between resets */
	enum run_state state;
	bool kvm_enabled;		/* KVM opened (machine none may run without it) */
	bool quit;			/* the host asked to stop */
	const char *quit_reason;	/* SHUTDOWN event reason: "host-signal", ... */
	bool reset_requested;		/* by the host (system_reset), not the guest */
	int signal_fd;
	int ready_fd;			/* -daemonize: tells the waiting parent start-up worked */
	bool pidfile_written;		/* only then is the pid file ours to remove */
	struct app_nbd *nbd;		/* QMP nbd-server-start's server, NULL until then */
	struct app_io_errors io_errors;	/* werror=/rerror= reports from the I/O threads */
	struct gdb_kvm *gdb;		/* -gdb/-s/HMP gdbserver's stub, NULL for none */
	struct input input;		/* keys and pointer from VNC and the monitors */
	bool input_ready;
	struct app_keys keys;
	struct vnc *vnc;		/* NULL: no -vnc (or -vnc none) */
	struct app_events *vnc_events;	/* VNC thread -> main loop event queue */
	struct sdl *sdl;		/* -display sdl / -sdl's window, NULL for none */
	int sdl_quit_fd;		/* SDL thread -> main loop: the window was closed */
	bool sdl_quit_open;
};

/* app_input.c: input routing (init before the VM, start once the loop exists). */
int app_input_init(struct app *app);
int app_input_start(struct app *app);
void app_input_close(struct app *app);
/* app_control.c: the monitors' view of the machine, and QMP events. */
void app_control_init(struct app *app);
/* app_gdb.c: (re)opens the gdbstub on dev (NULL/"none": closes it); -1 with err. */
int app_gdb_start(struct app *app, const char *dev, char *err, size_t errlen);
int app_gdb_server(void *opaque, const char *dev, char *msg, size_t msglen);
int app_gdb_open(struct app *app);
void app_quit(struct app *app, const char *reason);
void app_emit(struct app *app, const char *event, struct json_object *data);
void app_emit_shutdown(struct app *app, bool guest, const char *reason);
/*
 * The guest moved the balloon: BALLOON_CHANGE with the guest's new size, at
 * most one a second as QEMU rate-limits it (the latest size wins);
 * app_balloon_timer sends one held back.
 */
void app_balloon_changed(struct app *app);
/* The virtio-blk error hook (struct blk_error_hook) of the running VM. */
bool app_blk_error(void *opaque, const char *drive, bool is_read, int errnum,
		   enum block_error_action action);
/* Main loop: the pending disk errors as events, and the io-error stop. */
void app_check_io_errors(struct app *app);
/*
 * cont, reset or quit: threads waiting in app_blk_error go on (abort: without
 * retrying, and none waits again until app_io_errors_open for the next VM).
 */
void app_release_io_waiters(struct app *app, bool abort);
void app_io_errors_open(struct app *app);
void app_balloon_timer(struct app *app);
/* app_display.c: the screen, input routing, the VNC server of -vnc/-display and the
 * SDL window of -display sdl. */
int app_display_init(struct app *app);
int app_display_start(struct app *app);
void app_display_close(struct app *app);

#endif
