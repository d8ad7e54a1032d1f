/* The control table (ui/control.h) over the running VM, and QMP event fan-out. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <time.h>

#include "cli/app.h"
#include "cli/app_nbd.h"
#include "vmm/gdb_kvm.h"

static const char *ctl_name(void *opaque)
{
	struct app *app = opaque;
	return app->cfg.name;
}

static bool ctl_uuid(void *opaque, uint8_t out[16])
{
	struct app *app = opaque;

	memcpy(out, app->cfg.uuid, 16);
	return app->cfg.has_uuid;
}

static enum run_state ctl_run_state(void *opaque)
{
	struct app *app = opaque;
	return gdb_kvm_holds_vm(app->gdb) ? RUN_STATE_DEBUG : app->state;
}

static bool ctl_kvm_enabled(void *opaque)
{
	struct app *app = opaque;
	return app->kvm_enabled;
}

static const char *ctl_machine(void *opaque)
{
	struct app *app = opaque;
	return app->cfg.machine == MACHINE_NONE ? "none" : NULL;
}

static const char *ctl_cpu_type(void *opaque)
{
	struct app *app = opaque;
	return app->cfg.cpu.model == CPU_MODEL_QEMU64 ? "qemu64-x86_64-cpu" : NULL;
}

static unsigned ctl_cpu_count(void *opaque)
{
	struct app *app = opaque;
	return app->cfg.machine == MACHINE_NONE ? 0 : app->cfg.smp.cpus;
}

static bool ctl_cpu_info(void *opaque, unsigned index, struct cpu_info *out)
{
	struct app *app = opaque;
	const struct smp_config *smp = &app->cfg.smp;

	if (index >= smp->cpus || app->cfg.machine == MACHINE_NONE)
		return false;
	/* APIC IDs are vCPU indexes; topology splits them threads-first, as QEMU. */
	*out = (struct cpu_info){
		.cpu_index = index,
		.thread_id = app->vm ? atomic_load(&app->vm->vcpus[index].tid) : 0,
		.thread_index = index % smp->threads,
		.core_id = (index / smp->threads) % smp->cores,
		.socket_id = index / (smp->threads * smp->cores),
	};
	return true;
}

/*
 * The id'd devices: virtio-blk/-rng/-serial (device_config.id) and the
 * balloon (balloon_config.id).  NICs keep their id as the net client's name,
 * not told apart from a generated one, so they are not listed yet.
 */
static unsigned ctl_peripherals(void *opaque, struct peripheral_info *out, unsigned max)
{
	static const char *const types[] = {
		[DEVICE_VIRTIO_BLK] = "virtio-blk-pci", [DEVICE_VIRTIO_RNG] = "virtio-rng-pci",
		[DEVICE_VIRTIO_SERIAL] = "virtio-serial-pci",
	};
	const struct vm_config *cfg = &((struct app *)opaque)->cfg;
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		const struct device_config *d = &cfg->devices[i];
		if (!d->id[0] || d->kind > DEVICE_VIRTIO_SERIAL || !types[d->kind])
			continue;
		if (n < max) {
			snprintf(out[n].id, sizeof(out[n].id), "%s", d->id);
			out[n].type = types[d->kind];
		}
		n++;
	}
	if (cfg->balloon.enabled && cfg->balloon.id[0]) {
		if (n < max) {
			snprintf(out[n].id, sizeof(out[n].id), "%s", cfg->balloon.id);
			out[n].type = "virtio-balloon-pci";
		}
		n++;
	}
	return n;
}

static unsigned ctl_net_clients(void *opaque, struct net_info *out, unsigned max)
{
	struct app *app = opaque;

	return app->net_opened ? app_net_describe(&app->net, &app->cfg, out, max) : 0;
}

static char *ctl_usernet(void *opaque, const char *name)
{
	struct app *app = opaque;

	return app->net_opened ? app_net_usernet(&app->net, &app->cfg, name) : NULL;
}

static unsigned ctl_chardevs(void *opaque, struct chardev_info *out, unsigned max)
{
	struct app *app = opaque;

	for (unsigned i = 0; i < app->nr_chardevs && i < max; i++) {
		struct chardev *cd = &app->chardevs[i];
		out[i] = (struct chardev_info){
			.label = cd->label, .filename = cd->description, .frontend_open = cd->connected,
		};
	}
	return app->nr_chardevs;
}

/*
 * A -blockdev file node's driver and length, as the host has the file now.
 * A node on a network protocol (nbd, iscsi, ...) has no host file to
 * describe and is not listed.
 */
static void describe_file_node(const struct drive_config *d, struct drive_info *out)
{
	struct stat st;
	int fd;
	off_t end;

	if (stat(d->file, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return;
	snprintf(out->file_node, sizeof(out->file_node), "%s", d->file_node);
	out->file_driver = "file";
	out->file_size = (uint64_t)st.st_size;
	if (!S_ISBLK(st.st_mode))
		return;
	out->file_driver = "host_device";
	fd = open(d->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	out->file_size = end > 0 ? (uint64_t)end : 0;
	close(fd);
}

static unsigned ctl_blocks(void *opaque, struct drive_info *out, unsigned max)
{
	struct app *app = opaque;
	const struct vm_config *cfg = &app->cfg;

	for (unsigned i = 0; i < cfg->nr_drives && i < max; i++) {
		const struct drive_config *d = &cfg->drives[i];
		unsigned dev = 0;
		while (dev < cfg->nr_devices && strcmp(cfg->devices[dev].drive, d->id) != 0)
			dev++;
		out[i] = (struct drive_info){
			.device = d->id,
			.file = d->file,
			.format = app->disks[i] ? block_format_name(app->disks[i]) : "raw",
			.readonly = app->disks[i] && block_is_readonly(app->disks[i]),
			.cache_direct = d->flags & BLOCK_NOCACHE,
			.cache_no_flush = d->flags & BLOCK_NO_FLUSH,
			.virtual_size = app->disks[i] ? block_length(app->disks[i]) : 0,
		};
		if (app->disks[i])
			block_get_stats(app->disks[i], &out[i].stats);
		const char *group;
		if (app->disks[i] && block_io_limits_get(app->disks[i], &out[i].limits, &group)) {
			out[i].throttled = true;
			snprintf(out[i].group, sizeof(out[i].group), "%s", group);
		}
		out[i].now_ns = block_acct_now();
		if (d->file_node[0])
			describe_file_node(d, &out[i]);
		/* A -blockdev node keeps its node-name; a -drive's is generated, as QEMU's. */
		if (d->blockdev)
			snprintf(out[i].node_name, sizeof(out[i].node_name), "%s", d->id);
		else
			snprintf(out[i].node_name, sizeof(out[i].node_name), "#block%03u", i + 1);
		if (dev < cfg->nr_devices && cfg->devices[dev].id[0])
			snprintf(out[i].qdev, sizeof(out[i].qdev),
				 "/machine/peripheral/%s/virtio-backend", cfg->devices[dev].id);
		else
			snprintf(out[i].qdev, sizeof(out[i].qdev),
				 "/machine/peripheral-anon/device[%u]/virtio-backend", dev);
	}
	return cfg->nr_drives;
}

/* qmp_block_set_io_throttle: the drive by its id, then blk_io_limits_* as QEMU. */
static int ctl_set_io_throttle(void *opaque, const char *device, const char *group,
			       const struct throttle_config *limits, char *err, size_t errlen)
{
	struct app *app = opaque;
	struct throttle_config now;
	const char *current;

	for (unsigned i = 0; i < app->cfg.nr_drives; i++) {
		if (strcmp(app->cfg.drives[i].id, device) || !app->disks[i])
			continue;
		if (!group)
			group = block_io_limits_get(app->disks[i], &now, &current) ? current : device;
		return block_io_limits(app->disks[i], group, limits, err, errlen);
	}
	snprintf(err, errlen, "Device '%s' not found", device);
	return -1;
}

static void pci_describe(const struct pci_device *d, unsigned slot, unsigned fn,
			 struct pci_info *p)
{
	memset(p, 0, sizeof(*p));
	p->slot = slot;
	p->function = fn;
	memcpy(&p->vendor, d->config + PCI_VENDOR_ID, 2);
	memcpy(&p->device, d->config + PCI_DEVICE_ID, 2);
	memcpy(&p->subsys_vendor, d->config + PCI_SUBSYSTEM_VENDOR_ID, 2);
	memcpy(&p->subsys, d->config + PCI_SUBSYSTEM_ID, 2);
	p->class_code = (uint32_t)d->config[PCI_CLASS_DEVICE + 1] << 16 |
			(uint32_t)d->config[PCI_CLASS_DEVICE] << 8 | d->config[PCI_CLASS_PROG];
	p->irq = d->config[PCI_INTERRUPT_LINE];
	p->pin = d->config[PCI_INTERRUPT_PIN];
	for (unsigned b = 0; b < PCI_BARS; b++) {
		p->bars[b].addr = d->bars[b].addr;
		p->bars[b].size = d->bars[b].size;
		p->bars[b].io = d->bars[b].io;
		p->bars[b].prefetch = !d->bars[b].io && (d->config[PCI_BAR0 + 4 * b] & 0x08);
	}
}

/* Every function, in QEMU's order: by slot, then function (00:01.0, 00:01.1, ...). */
static unsigned ctl_pci_devices(void *opaque, struct pci_info *out, unsigned max)
{
	struct app *app = opaque;
	unsigned n = 0;

	if (!app->vm || !pc_has_part(app->vm, &app->vm->pci))
		return 0;
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		const struct pci_device *d = app->vm->pci.slots[s];
		if (!d)
			continue;
		if (n < max)
			pci_describe(d, s, 0, &out[n]);
		n++;
		for (unsigned f = 1; f <= 7; f++) {
			d = app->vm->pci.functions[s][f - 1];
			if (!d)
				continue;
			if (n < max)
				pci_describe(d, s, f, &out[n]);
			n++;
		}
	}
	return n;
}

static bool ctl_dump_registers(void *opaque, unsigned index, FILE *out)
{
	struct app *app = opaque;

	if (!app->vm || index >= app->vm->nr_vcpus)
		return false;
	vcpu_dump_registers(&app->vm->vcpus[index], out);
	return true;
}

static bool ctl_describe(void *opaque, const char *topic, FILE *out)
{
	struct app *app = opaque;

	if (!app->vm)
		return false;
	if (strcmp(topic, "mtree") == 0)
		pc_describe_mtree(app->vm, out);
	else if (strcmp(topic, "qtree") == 0)
		pc_describe_qtree(app->vm, out);
	else if (strcmp(topic, "usb") == 0)
		return pc_describe_usb(app->vm, out);
	else
		return false;
	return true;
}

static int ctl_read_memory(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct app *app = opaque;
	void *src = app->vm ? memory_ptr(&app->vm->mem, gpa, len) : NULL;

	if (!src)
		return -1;
	memcpy(buf, src, len);
	return 0;
}

static int ctl_stop(void *opaque, char *err, size_t errlen)
{
	struct app *app = opaque;

	/* An I/O thread's stop already queued: the VM is in io-error, not for stop to pause. */
	app_check_io_errors(app);
	/* Machine none has no VM: only the run state changes, as on QEMU's none. */
	if (app->state == RUN_STATE_RUNNING) {
		if (app->vm)
			vm_pause(app->vm);
		app->state = RUN_STATE_PAUSED;
		app_emit(app, "STOP", NULL);
	}
	return 0;	/* stopping a stopped VM is fine, as in QEMU */
}

static int ctl_cont(void *opaque, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (app->state == RUN_STATE_SHUTDOWN || app->state == RUN_STATE_INTERNAL_ERROR) {
		snprintf(err, errlen, "Resetting the Virtual Machine is required");
		return -1;
	}
	/*
	 * QEMU's cont leaves io-error too, and re-issues the failed requests;
	 * from prelaunch (-S) it opens the vCPUs' start gate (vm_resume).
	 */
	if (app->state == RUN_STATE_PAUSED || app->state == RUN_STATE_IO_ERROR ||
	    app->state == RUN_STATE_PRELAUNCH) {
		if (app->vm)
			vm_resume(app->vm);
		app->state = RUN_STATE_RUNNING;
		app_emit(app, "RESUME", NULL);
		app_release_io_waiters(app, false);
	}
	return 0;
}

static int ctl_system_reset(void *opaque, char *err, size_t errlen)
{
	struct app *app = opaque;

	app->reset_requested = true;
	if (app->vm)
		vm_request_stop(app->vm, VM_STOP_RESET, 0);
	return 0;
}

static int ctl_system_powerdown(void *opaque, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (app->vm)
		pc_power_button(app->vm);
	app_emit(app, "POWERDOWN", NULL);
	return 0;
}

static const char *const no_balloon = "No balloon device has been activated";

static int ctl_balloon(void *opaque, uint64_t target, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (!app->cfg.balloon.enabled) {
		snprintf(err, errlen, "%s", no_balloon);
		return -1;
	}
	if (!target) {
		snprintf(err, errlen, "Parameter 'target' expects a size");
		return -1;
	}
	virtio_balloon_set_target(&app->balloon, app->cfg.ram_size, target);
	return 0;
}

/* QEMU's virtio_balloon_stat: RAM minus what the guest has handed back. */
static int ctl_query_balloon(void *opaque, uint64_t *actual, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (!app->cfg.balloon.enabled) {
		snprintf(err, errlen, "%s", no_balloon);
		return -1;
	}
	*actual = app->cfg.ram_size - ((uint64_t)virtio_balloon_actual(&app->balloon) << 12);
	return 0;
}

/* The balloon's QOM path: /machine/peripheral/ID, or peripheral-anon by device index. */
static bool is_balloon_path(struct app *app, const char *path)
{
	char want[96];
	unsigned dev = 0;

	if (!app->cfg.balloon.enabled || !path)
		return false;
	if (app->cfg.balloon.id[0]) {
		snprintf(want, sizeof(want), "/machine/peripheral/%s", app->cfg.balloon.id);
	} else {
		while (dev < app->cfg.nr_devices && app->cfg.devices[dev].kind != DEVICE_VIRTIO_BALLOON)
			dev++;
		snprintf(want, sizeof(want), "/machine/peripheral-anon/device[%u]", dev);
	}
	return strcmp(path, want) == 0;
}

static bool ctl_balloon_stats(void *opaque, const char *path, struct balloon_stats_info *out)
{
	struct app *app = opaque;

	if (!is_balloon_path(app, path))
		return false;
	virtio_balloon_stats(&app->balloon, out->stats, &out->last_update, &out->polling_interval);
	return true;
}

static bool ctl_balloon_set_interval(void *opaque, const char *path, uint64_t seconds)
{
	struct app *app = opaque;

	if (!is_balloon_path(app, path))
		return false;
	virtio_balloon_set_interval(&app->balloon, seconds);
	return true;
}

/* A drive by its id or its node name ("#block001", as query-block names it). */
static int find_drive(const struct app *app, const char *node)
{
	for (unsigned i = 0; i < app->cfg.nr_drives; i++) {
		char name[24];
		snprintf(name, sizeof(name), "#block%03u", i + 1);
		if (app->disks[i] && (!strcmp(app->cfg.drives[i].id, node) || !strcmp(name, node)))
			return (int)i;
	}
	return -1;
}

static int ctl_nbd_server_start(void *opaque, const struct nbd_listen *addr,
				const char *tls_creds, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (!app->nbd)
		app->nbd = app_nbd_new();
	if (!app->nbd) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return app_nbd_start(app->nbd, addr, tls_creds, err, errlen);
}

static int ctl_nbd_server_stop(void *opaque, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (!app->nbd) {
		snprintf(err, errlen, "NBD server not running");
		return -1;
	}
	return app_nbd_stop(app->nbd, err, errlen);
}

/* The export serves the drive's own open node: the guest and the clients share it. */
static int ctl_export_add(void *opaque, const char *id, const char *node, const char *name,
			  const char *description, bool writable, char *err, size_t errlen)
{
	struct app *app = opaque;
	int i;

	if (!app->nbd) {
		snprintf(err, errlen, "NBD server not running");
		return -1;
	}
	i = find_drive(app, node);
	if (i < 0) {
		snprintf(err, errlen, "Cannot find device=%s nor node_name=%s", node, node);
		return -1;
	}
	return app_nbd_add(app->nbd, id, node, name, description, app->disks[i], writable, err,
			   errlen);
}

static int ctl_export_del(void *opaque, const char *id, char *err, size_t errlen)
{
	struct app *app = opaque;

	if (!app->nbd) {
		snprintf(err, errlen, "Export '%s' is not found", id);
		return -1;
	}
	return app_nbd_remove(app->nbd, id, err, errlen);
}

static unsigned ctl_exports(void *opaque, struct export_info *out, unsigned max)
{
	struct app *app = opaque;

	return app->nbd ? app_nbd_exports(app->nbd, out, max) : 0;
}

static void ctl_quit(void *opaque)
{
	app_quit(opaque, "host-qmp-quit");
}

void app_control_init(struct app *app)
{
	app->control = (struct control){
		.opaque = app,
		.name = ctl_name,
		.uuid = ctl_uuid,
		.run_state = ctl_run_state,
		.kvm_enabled = ctl_kvm_enabled,
		.machine = ctl_machine,
		.cpu_type = ctl_cpu_type,
		.gdbserver = app_gdb_server,
		.cpu_count = ctl_cpu_count,
		.cpu_info = ctl_cpu_info,
		.chardevs = ctl_chardevs,
		.net_clients = ctl_net_clients,
		.usernet = ctl_usernet,
		.blocks = ctl_blocks,
		.peripherals = ctl_peripherals,
		.set_io_throttle = ctl_set_io_throttle,
		.pci_devices = ctl_pci_devices,
		.dump_registers = ctl_dump_registers,
		.describe = ctl_describe,
		.read_memory = ctl_read_memory,
		.stop = ctl_stop,
		.cont = ctl_cont,
		.system_reset = ctl_system_reset,
		.system_powerdown = ctl_system_powerdown,
		.quit = ctl_quit,
		.balloon = ctl_balloon,
		.query_balloon = ctl_query_balloon,
		.balloon_stats = ctl_balloon_stats,
		.balloon_set_interval = ctl_balloon_set_interval,
		.nbd_server_start = ctl_nbd_server_start,
		.nbd_server_stop = ctl_nbd_server_stop,
		.export_add = ctl_export_add,
		.export_del = ctl_export_del,
		.exports = ctl_exports,
	};
}

void app_quit(struct app *app, const char *reason)
{
	if (!app->quit) {
		app->quit = true;
		app->quit_reason = reason;
	}
	if (app->vm)
		vm_request_stop(app->vm, VM_STOP_QUIT, 0);
}

/* data may be NULL; the reference passed in is consumed. */
void app_emit(struct app *app, const char *event, struct json_object *data)
{
	for (unsigned i = 0; i < app->nr_monitors; i++)
		monitor_event(&app->monitors[i], event, data);
	json_object_put(data);
}

void app_emit_shutdown(struct app *app, bool guest, const char *reason)
{
	struct json_object *data = json_object_new_object();

	json_object_object_add(data, "guest", json_object_new_boolean(guest));
	json_object_object_add(data, "reason", json_object_new_string(reason));
	app_emit(app, "SHUTDOWN", data);
}

#define BALLOON_EVENT_INTERVAL 1.0	/* monitor/monitor.c monitor_qapi_event_conf */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void balloon_emit(struct app *app)
{
	struct json_object *data = json_object_new_object();
	uint64_t actual = app->cfg.ram_size - ((uint64_t)virtio_balloon_actual(&app->balloon) << 12);

	json_object_object_add(data, "actual", json_object_new_int64((int64_t)actual));
	app_emit(app, "BALLOON_CHANGE", data);
	app->balloon_last_event = now_s();
	app->balloon_event_pending = false;
}

void app_balloon_changed(struct app *app)
{
	double wait = app->balloon_last_event + BALLOON_EVENT_INTERVAL - now_s();
	struct itimerspec its = { 0 };

	if (app->balloon_last_event == 0 || wait <= 0) {
		balloon_emit(app);
		return;
	}
	if (app->balloon_event_pending)
		return;		/* the timer is set; it sends the size as it is then */
	app->balloon_event_pending = true;
	its.it_value.tv_sec = (time_t)wait;
	its.it_value.tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9) + 1;
	if (timerfd_settime(app->balloon_timer_fd, 0, &its, NULL) < 0)
		balloon_emit(app);
}

void app_balloon_timer(struct app *app)
{
	if (app->balloon_event_pending)
		balloon_emit(app);
}

/*
 * The I/O thread's side of werror=/rerror= (QEMU's blk_error_action): the
 * error queued for the main loop's BLOCK_IO_ERROR; for stop, the VM asked
 * to pause and this thread held until cont (true: retry) or a reset or quit
 * (false: fail the request).
 */
bool app_blk_error(void *opaque, const char *drive, bool is_read, int errnum,
		   enum block_error_action action)
{
	struct app *app = opaque;
	struct app_io_errors *e = &app->io_errors;
	struct vm *vm = app->vm;
	bool stop = action == BLOCK_ERR_STOP, retry = false;
	unsigned gen;

	if (!vm)
		return false;
	pthread_mutex_lock(&e->lock);
	if (e->nr_pending < APP_IO_ERRORS_MAX) {
		snprintf(e->pending[e->nr_pending].drive, sizeof(e->pending[0].drive), "%s",
			 drive ? drive : "");
		e->pending[e->nr_pending].is_read = is_read;
		e->pending[e->nr_pending].errnum = errnum;
		e->pending[e->nr_pending].action = action;
		e->nr_pending++;
	} else {
		e->dropped++;	/* a storm of errors: the first ones tell the story */
	}
	stop = stop && !e->closing;
	e->stop_due |= stop;
	gen = e->resume_gen;
	pthread_mutex_unlock(&e->lock);
	vm_io_error(vm, stop);
	if (!stop)
		return false;
	pthread_mutex_lock(&e->lock);
	while (e->resume_gen == gen && !e->closing)
		pthread_cond_wait(&e->resumed, &e->lock);
	retry = !e->abort && !e->closing;
	pthread_mutex_unlock(&e->lock);
	return retry;
}

void app_io_errors_open(struct app *app)
{
	pthread_mutex_lock(&app->io_errors.lock);
	app->io_errors.closing = false;
	app->io_errors.abort = false;
	pthread_mutex_unlock(&app->io_errors.lock);
}

void app_release_io_waiters(struct app *app, bool abort)
{
	struct app_io_errors *e = &app->io_errors;

	pthread_mutex_lock(&e->lock);
	e->resume_gen++;
	e->abort = abort;
	e->closing |= abort;
	pthread_cond_broadcast(&e->resumed);
	pthread_mutex_unlock(&e->lock);
}

/* QEMU's BLOCK_IO_ERROR: device, operation, action, nospace, reason (node-name: none here). */
static void emit_io_error(struct app *app, const char *drive, bool is_read, int errnum,
			  int action)
{
	struct json_object *data = json_object_new_object();

	json_object_object_add(data, "device", json_object_new_string(drive));
	json_object_object_add(data, "operation", json_object_new_string(is_read ? "read"
										  : "write"));
	json_object_object_add(data, "action", json_object_new_string(
		block_error_action_name((enum block_error_action)action)));
	json_object_object_add(data, "nospace", json_object_new_boolean(errnum == ENOSPC));
	json_object_object_add(data, "reason", json_object_new_string(strerror(errnum)));
	app_emit(app, "BLOCK_IO_ERROR", data);
}

void app_check_io_errors(struct app *app)
{
	struct app_io_errors *e = &app->io_errors;
	unsigned n;
	bool stop;

	if (!app->vm)
		return;
	/* The flag only woke the loop: the queue itself says what is pending. */
	atomic_store(&app->vm->io_error, false);
	pthread_mutex_lock(&e->lock);
	n = e->nr_pending;
	stop = e->stop_due;
	e->stop_due = false;
	for (unsigned i = 0; i < n; i++)
		emit_io_error(app, e->pending[i].drive, e->pending[i].is_read, e->pending[i].errnum,
			      e->pending[i].action);
	e->nr_pending = 0;
	pthread_mutex_unlock(&e->lock);
	/* QEMU: the events first, then the vmstop request's STOP. */
	if (stop && app->state == RUN_STATE_RUNNING) {
		app->state = RUN_STATE_IO_ERROR;
		app_emit(app, "STOP", NULL);
	} else if (stop && app->state == RUN_STATE_PAUSED) {
		app->state = RUN_STATE_IO_ERROR;
	}
}
