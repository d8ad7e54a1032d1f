#include "cli/options.h"
#include "cli/options_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "util/bytes.h"
#include "util/log.h"
#include "util/opts.h"
#include "util/size.h"
#include "hw/debug_exit.h"
#include "cli/accel.h"
#include "ui/keymap.h"
#include "ui/sdl.h"
#include "ui/vnc.h"

#define MIN_RAM (8ULL << 20)	/* room for the boot tables, the kernel and its stack */
#define MAX_RAM (1ULL << 40)

struct option_def {
	const char *name;
	bool has_arg;
	option_parser *handle;
	const char *help;
};

static int opt_m(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, "size");
	const char *size;
	uint64_t bytes;
	int rc = -1;

	if (!o)
		return -1;
	size = opts_get(o, "size");
	if (opts_get(o, "slots") || opts_get(o, "maxmem")) {
		err_invalid(opt, arg, "memory hotplug (slots=, maxmem=) is not supported");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (!size || !size_parse(size, 1ULL << 20, &bytes)) {
		err_invalid(opt, arg, "invalid RAM size (a number of MiB, or with a K/M/G/T suffix)");
		goto out;
	}
	if (bytes < MIN_RAM || bytes > MAX_RAM) {
		err_invalid(opt, arg, "RAM size must be between 8 MiB and 1 TiB");
		goto out;
	}
	/* QEMU rounds RAM up to its page granularity; whole pages are what KVM maps. */
	cfg->ram_size = (bytes + 4095) & ~4095ULL;
	cfg->memory.ram_size_given = true;
	rc = 0;
out:
	opts_free(o);
	return rc;
}

/* A count; one given as 0 sets *zero and counts as omitted, as in QEMU 7.2. */
static int get_count(struct opts *o, const char *key, unsigned *out, bool *zero)
{
	const char *v = opts_get(o, key);
	uint64_t n;

	if (!v)
		return 0;
	if (!uint_parse(v, &n) || n > 4096)
		return -1;
	*zero |= n == 0;
	if (n == 0 && strcmp(key, "dies") == 0)
		n = 1;
	*out = (unsigned)n;
	return 0;
}

int options_parse_smp(const char *arg, struct smp_config *smp)
{
	const char *opt = "smp";
	struct opts *o = parse_list(opt, arg, "cpus");
	unsigned cpus = 0, sockets = 0, cores = 0, threads = 0, maxcpus = 0, dies = 1;
	bool zero = false;
	char msg[200];
	int rc = -1;

	if (!o)
		return -1;
	if (get_count(o, "cpus", &cpus, &zero) < 0 || get_count(o, "sockets", &sockets, &zero) < 0 ||
	    get_count(o, "cores", &cores, &zero) < 0 || get_count(o, "threads", &threads, &zero) < 0 ||
	    get_count(o, "maxcpus", &maxcpus, &zero) < 0 || get_count(o, "dies", &dies, &zero) < 0) {
		err_invalid(opt, arg, "CPU counts must be whole numbers");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	/* QEMU 7.2 machine_parse_smp_config: still accepted, as if omitted, with this warning. */
	if (zero)
		log_warn("Deprecated CPU topology (considered invalid): "
			 "CPU topology parameters must be greater than zero");
	if (dies != 1) {
		err_invalid(opt, arg, "dies > 1 not supported by this machine's CPU topology");
		goto out;
	}
	/*
	 * QEMU 7.2 machine_parse_smp_config, for machines that prefer cores over
	 * sockets (pc since 6.2): fill in what was omitted from maxcpus, then check.
	 */
	if (!cpus && !maxcpus) {
		sockets = sockets ? sockets : 1;
		cores = cores ? cores : 1;
		threads = threads ? threads : 1;
	} else {
		maxcpus = maxcpus ? maxcpus : cpus;
		if (!cores) {
			sockets = sockets ? sockets : 1;
			threads = threads ? threads : 1;
			cores = maxcpus / (sockets * threads);
		} else if (!sockets) {
			threads = threads ? threads : 1;
			sockets = maxcpus / (cores * threads);
		}
		if (!threads)
			threads = maxcpus / (sockets * cores);
	}
	uint64_t product = (uint64_t)sockets * cores * threads;
	if (!maxcpus)
		maxcpus = product > VM_MAX_CPUS ? VM_MAX_CPUS + 1 : (unsigned)product;
	if (!cpus)
		cpus = maxcpus;
	if (product != maxcpus) {
		snprintf(msg, sizeof(msg),
			 "Invalid CPU topology: product of the hierarchy must match maxcpus: "
			 "sockets (%u) * dies (1) * cores (%u) * threads (%u) != maxcpus (%u)",
			 sockets, cores, threads, maxcpus);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (maxcpus < cpus) {
		snprintf(msg, sizeof(msg),
			 "Invalid CPU topology: maxcpus must be equal to or greater than smp: "
			 "sockets (%u) * dies (1) * cores (%u) * threads (%u) == maxcpus (%u) < "
			 "smp_cpus (%u)", sockets, cores, threads, maxcpus, cpus);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (maxcpus > VM_MAX_CPUS) {
		snprintf(msg, sizeof(msg), "Invalid SMP CPUs %u. The max CPUs supported by machine "
			 "'pc' is %u", maxcpus, VM_MAX_CPUS);
		err_invalid(opt, arg, msg);
		goto out;
	}
	*smp = (struct smp_config){ cpus, sockets, cores, threads, maxcpus };
	rc = 0;
out:
	opts_free(o);
	return rc;
}

static int opt_smp(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return options_parse_smp(arg, &cfg->smp);
}

static int opt_name(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, "guest");
	const char *guest, *process;
	int rc = -1;

	if (!o)
		return -1;
	guest = opts_get(o, "guest");
	process = opts_get(o, "process");
	if (!opts_get_bool(o, "debug-threads", &cfg->debug_threads)) {
		err_invalid(opt, arg, "debug-threads takes on or off");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (!guest || !*guest) {
		err_invalid(opt, arg, "the name must not be empty");
		goto out;
	}
	free(cfg->name);
	cfg->name = strdup(guest);
	free(cfg->process_name);
	cfg->process_name = process ? strdup(process) : NULL;
	rc = cfg->name && (!process || cfg->process_name) ? 0 : -1;
out:
	opts_free(o);
	return rc;
}

static int opt_uuid(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const int dash_at[] = { 8, 13, 18, 23 };
	size_t n = 0;

	if (strlen(arg) != 36)
		goto bad;
	for (size_t i = 0; i < 36; i++) {
		bool dash = false;
		for (size_t d = 0; d < 4; d++)
			dash |= (int)i == dash_at[d];
		if (dash) {
			if (arg[i] != '-')
				goto bad;
			continue;
		}
		int hi = hex_digit(arg[i]), lo = hex_digit(arg[i + 1]);
		if (hi < 0 || lo < 0)
			goto bad;
		cfg->uuid[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	cfg->has_uuid = true;
	return 0;
bad:
	return err_invalid(opt, arg, "Fail to parse UUID string (expected "
			   "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
}

static int opt_machine(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o;
	const char *type, *accel;
	int rc = -1;

	if (strcmp(arg, "help") == 0 || strcmp(arg, "?") == 0) {
		/* QEMU's list: pc is an alias of the versioned name libvirt records. */
		fprintf(out, "Supported machines are:\n"
			     "pc                   Standard PC (i440FX + PIIX, 1996) "
			     "(alias of pc-i440fx-7.2)\n"
			     "pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n"
			     "none                 empty machine\n");
		return 1;
	}
	o = parse_list(opt, arg, "type");
	if (!o)
		return -1;
	type = opts_get(o, "type");
	accel = opts_get(o, "accel");
	if (options_machine_memory(cfg, o, opt, arg) < 0 ||
	    options_machine_platform(cfg, o, opt, arg) < 0 || check_unused(o, opt, arg) < 0)
		goto out;
	/* QEMU's "none": no RAM, no CPU, no device; the monitors only (probes). */
	if (type && strcmp(type, "none") == 0)
		cfg->machine = MACHINE_NONE;
	else if (type && strcmp(type, "pc") != 0 && strcmp(type, "pc-i440fx-7.2") != 0) {
		/* Older versions differ in compat properties Kestrel does not model. */
		err_invalid(opt, arg, "unsupported machine type (supported: pc, "
			    "pc-i440fx-7.2, none; see -machine help)");
		goto out;
	} else if (type)
		cfg->machine = MACHINE_PC;
	rc = accel ? accel_machine_option(cfg, opt, arg, accel) : 0;
out:
	opts_free(o);
	return rc;
}

/* -enable-kvm: QEMU 7.2 makes it "-machine accel=kvm" (a later accel= overrides it). */
static int opt_enable_kvm(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return accel_machine_option(cfg, opt, "", "kvm");
}

static int opt_kernel(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->kernel = arg;
	return 0;
}

static int opt_initrd(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->initrd = arg;
	return 0;
}

static int opt_append(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->append = arg;
	return 0;
}

static int opt_nographic(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->display = DISPLAY_NOGRAPHIC;
	return 0;
}

/* -vnc ARG: checked here with the server's own parser (ui/vnc_opts.c). */
static int set_vnc(struct vm_config *cfg, const char *opt, const char *arg, const char *vnc)
{
	struct vnc_options o;
	char err[256];

	if (vnc_parse(vnc, &o, err, sizeof(err)) < 0) {
		log_error("-%s %s: %s", opt, arg, err);
		return -1;
	}
	cfg->vnc = vnc;
	return 0;
}

static int opt_vnc(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return set_vnc(cfg, opt, arg, arg);
}

static int opt_keyboard(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	if (keymap_find(arg) < 0) {
		/* QEMU 7.2's words when it has no keymap file of that name. */
		log_error("-k %s: could not read keymap file: '%s' (layouts: en-us de fr ja)",
			  arg, arg);
		return -1;
	}
	cfg->keyboard_layout = arg;
	return 0;
}

/* -display sdl[,OPTS]: checked here with the window's own parser (ui/sdl_opts.c). */
static int set_sdl(struct vm_config *cfg, const char *opt, const char *arg, const char *opts)
{
	struct sdl_options o;
	char err[256];

	if (!sdl_built_in()) {
		log_error("Display 'sdl' is not available (Kestrel was built without libsdl2)");
		return -1;
	}
	sdl_defaults(&o);
	if (sdl_parse(opts, &o, err, sizeof(err)) < 0) {
		log_error("-%s %s: %s", opt, arg, err);
		return -1;
	}
	cfg->display = DISPLAY_SDL;
	cfg->sdl_opts = opts;
	return 0;
}

/* QEMU 7.2 vl.c parse_display: vnc is a remote protocol, not a DisplayType. */
static int opt_display(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	if (strcmp(arg, "help") == 0) {
		fprintf(out, "Available display backend types:\nnone\n%s", sdl_built_in() ? "sdl\n" : "");
		return 1;
	}
	if (strcmp(arg, "none") == 0) {
		cfg->display = DISPLAY_NONE;
		return 0;
	}
	if (strncmp(arg, "vnc", 3) == 0 && (arg[3] == '\0' || arg[3] == '=' || arg[3] == ',')) {
		if (arg[3] != '=') {
			log_error("-%s %s: VNC requires a display argument vnc=<display>", opt, arg);
			return -1;
		}
		/* As -vnc: the serial port stays where the default display puts it. */
		cfg->display = DISPLAY_DEFAULT;
		return set_vnc(cfg, opt, arg, arg + 4);
	}
	if (strncmp(arg, "sdl", 3) == 0 && (arg[3] == '\0' || arg[3] == ','))
		return set_sdl(cfg, opt, arg, arg + 3);
	return err_invalid(opt, arg, "display not supported (use -display none, sdl, vnc=<display> or -nographic)");
}

static int opt_sdl(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	if (!sdl_built_in()) {
		/* The words of the QEMUs that still had -sdl, built without SDL. */
		log_error("-sdl: SDL support is disabled (Kestrel was built without libsdl2)");
		return -1;
	}
	cfg->display = DISPLAY_SDL;
	cfg->sdl_opts = "";
	return 0;
}

/* -alt-grab, -ctrl-grab (qemu-kvm's, gone from QEMU 7.2): grab-mod's older spelling. */
static int opt_grab(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->sdl_grab = strcmp(opt, "alt-grab") == 0 ? 1 : 2;
	return 0;
}

static int opt_no_quit(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->no_quit = true;
	return 0;
}

static int opt_full_screen(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->full_screen = true;
	return 0;
}

/*
 * -vga TYPE (QEMU vl.c select_vgahw): Kestrel has std (Bochs VBE, the pc
 * default) and none; QEMU's other cards are refused by name, not faked.
 */
static int opt_vga(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const other[] = { "cirrus", "qxl", "vmware", "virtio", "tcx", "cg3",
					     "xenfb", "ati" };
	char msg[160];

	if (strcmp(arg, "help") == 0) {
		fprintf(out, "none                 no graphic card\n"
			     "std                  standard VGA (default)\n");
		return 1;
	}
	if (strcmp(arg, "std") == 0) {
		cfg->vga = VGA_TYPE_STD;
		return 0;
	}
	if (strcmp(arg, "none") == 0) {
		cfg->vga = VGA_TYPE_NONE;
		return 0;
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		if (strcmp(arg, other[i]) == 0) {
			snprintf(msg, sizeof(msg), "VGA type '%s' is not supported: kestrel has the "
				 "VGA types std and none", arg);
			return err_invalid(opt, arg, msg);
		}
	}
	snprintf(msg, sizeof(msg), "unknown vga type '%s' (kestrel has std and none)", arg);
	return err_invalid(opt, arg, msg);
}

static struct chardev_config *find_chardev(struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_chardevs; i++)
		if (strcmp(cfg->chardevs[i].id, id) == 0)
			return &cfg->chardevs[i];
	return NULL;
}

static int add_chardev(struct vm_config *cfg, const char *opt, const char *arg, const char *id,
		       const struct chardev_spec *spec)
{
	char msg[80];

	if (find_chardev(cfg, id)) {
		snprintf(msg, sizeof(msg), "Duplicate ID '%s' for chardev", id);
		return err_invalid(opt, arg, msg);
	}
	if (cfg->nr_chardevs == VM_MAX_CHARDEVS)
		return err_invalid(opt, arg, "too many character devices");
	struct chardev_config *c = &cfg->chardevs[cfg->nr_chardevs++];
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->spec = *spec;
	return 0;
}

static int add_monitor(struct vm_config *cfg, const char *opt, const char *arg, const char *chardev,
		       bool control, bool pretty)
{
	if (cfg->nr_monitors == VM_MAX_MONITORS)
		return err_invalid(opt, arg, "too many monitors");
	struct monitor_config *m = &cfg->monitors[cfg->nr_monitors++];
	snprintf(m->chardev, sizeof(m->chardev), "%s", chardev);
	m->control = control;
	m->pretty = pretty;
	return 0;
}

static int opt_chardev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct chardev_spec spec;
	char id[CHARDEV_ID_MAX], err[200];

	if (strcmp(arg, "help") == 0) {
		fprintf(out, "Available chardev backend types:\n  file\n  null\n  pty\n  socket\n"
			     "  stdio\n");
		return 1;
	}
	if (!chardev_option_parse(arg, &spec, id, err, sizeof(err)))
		return err_invalid(opt, arg, err);
	return add_chardev(cfg, opt, arg, id, &spec);
}

static int opt_serial(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct chardev_spec spec;
	char err[300];

	if (cfg->serial_given)
		return err_invalid(opt, arg, "only one serial port (COM1) is supported");
	cfg->serial_given = true;
	if (strcmp(arg, "none") == 0)
		return 0;
	if (strncmp(arg, "chardev:", 8) == 0) {
		snprintf(cfg->serial_chardev, sizeof(cfg->serial_chardev), "%s", arg + 8);
		return 0;
	}
	if (!chardev_spec_parse(arg, &spec, err, sizeof(err)))
		return err_invalid(opt, arg, err);
	snprintf(cfg->serial_chardev, sizeof(cfg->serial_chardev), "serial0");
	if (add_chardev(cfg, opt, arg, "serial0", &spec) < 0)
		return -1;
	/* "mon:stdio": the monitor shares the terminal, reached with Ctrl-a c. */
	return spec.mux ? add_monitor(cfg, opt, arg, "serial0", false, false) : 0;
}

/* -monitor and -qmp: a chardev named compat_monitorN plus a monitor on it. */
static int monitor_shorthand(struct vm_config *cfg, const char *opt, const char *arg, bool control)
{
	struct chardev_spec spec;
	char err[300], id[CHARDEV_ID_MAX];
	bool pretty = false;

	cfg->monitor_given = true;
	if (strcmp(arg, "none") == 0)
		return 0;
	if (strncmp(arg, "chardev:", 8) == 0)
		return add_monitor(cfg, opt, arg, arg + 8, control, false);
	if (!chardev_spec_parse(arg, &spec, err, sizeof(err)))
		return err_invalid(opt, arg, err);
	if (spec.kind == CHARDEV_NONE || spec.kind == CHARDEV_NULL)
		return 0;
	snprintf(id, sizeof(id), "compat_monitor%u", cfg->nr_monitors);
	if (add_chardev(cfg, opt, arg, id, &spec) < 0)
		return -1;
	return add_monitor(cfg, opt, arg, id, control, pretty);
}

static int opt_monitor(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return monitor_shorthand(cfg, opt, arg, false);
}

static int opt_qmp(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	return monitor_shorthand(cfg, opt, arg, true);
}

static int opt_mon(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, "chardev");
	const char *chardev, *mode, *id;
	bool pretty = false;
	char msg[80];
	int rc = -1;

	if (!o)
		return -1;
	cfg->monitor_given = true;
	chardev = opts_get(o, "chardev");
	mode = opts_get(o, "mode");
	/* id= names the monitor's option group, as QEMU's QemuOpts: unique, else an error. */
	id = opts_get(o, "id");
	for (unsigned i = 0; id && i < cfg->nr_monitors; i++) {
		if (strcmp(cfg->monitors[i].id, id) == 0) {
			snprintf(msg, sizeof(msg), "Duplicate ID '%s' for mon", id);
			err_invalid(opt, arg, msg);
			goto out;
		}
	}
	if (id && strlen(id) >= sizeof(cfg->monitors[0].id)) {
		err_invalid(opt, arg, "id is too long");
		goto out;
	}
	if (!opts_get_bool(o, "pretty", &pretty)) {
		err_invalid(opt, arg, "pretty= takes on or off");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (pretty) {
		err_invalid(opt, arg, "pretty=on is not supported; QMP replies are one line each");
		goto out;
	}
	if (!chardev) {
		err_invalid(opt, arg, "Parameter 'chardev' is missing");
		goto out;
	}
	if (mode && strcmp(mode, "readline") != 0 && strcmp(mode, "control") != 0) {
		err_invalid(opt, arg, "mode must be readline or control");
		goto out;
	}
	rc = add_monitor(cfg, opt, arg, chardev, mode && strcmp(mode, "control") == 0, pretty);
	if (rc == 0 && id)
		snprintf(cfg->monitors[cfg->nr_monitors - 1].id, sizeof(cfg->monitors[0].id), "%s", id);
out:
	opts_free(o);
	return rc;
}

static int opt_flag(bool *flag)
{
	*flag = true;
	return 0;
}

static int opt_no_reboot(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->no_reboot);
}

static int opt_no_shutdown(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->no_shutdown);
}

static int opt_daemonize(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->daemonize);
}

/* -S: the vCPUs are created and held until QMP cont / HMP c (the VM is in "prelaunch"). */
static int opt_start_paused(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->start_paused);
}

/*
 * -no-user-config: QEMU then skips its config files (in /etc/qemu);
 * Kestrel reads no configuration file at all, so there is nothing to skip.
 */
static int opt_no_user_config(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return 0;
}

/* -msg timestamp=on|off,guest-name=on|off: QEMU's error message prefixes (util/log.c). */
static int opt_msg(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, NULL);
	bool stamp = false, name = false;
	int rc = -1;

	if (!o)
		return -1;
	if (!opts_get_bool(o, "timestamp", &stamp)) {
		err_invalid(opt, arg, "Parameter 'timestamp' expects 'on' or 'off'");
		goto out;
	}
	if (!opts_get_bool(o, "guest-name", &name)) {
		err_invalid(opt, arg, "Parameter 'guest-name' expects 'on' or 'off'");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	/* At once, as QEMU: the errors of the options after it carry the prefix. */
	log_set_timestamp(stamp);
	cfg->msg_guest_name = name;
	rc = 0;
out:
	opts_free(o);
	return rc;
}

static int opt_nodefaults(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->nodefaults);
}

static int opt_check_host(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->check_host);
}

static int opt_pidfile(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->pidfile = arg;
	return 0;
}

static int parse_port(struct opts *o, const char *key, uint16_t *out)
{
	const char *v = opts_get(o, key);
	uint64_t n;

	if (!v)
		return 0;
	if (!uint_parse(v, &n) || n > 0xffff)
		return -1;
	*out = (uint16_t)n;
	return 0;
}

static int opt_device(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o;
	const char *driver;
	int rc = -1;

	if (strcmp(arg, "help") == 0 || strcmp(arg, "?") == 0) {
		options_device_help(out);
		return 1;
	}
	if (arg[0] == '{')
		return options_json(opt_device, cfg, opt, arg, "driver", out);
	o = parse_list(opt, arg, "driver");
	if (!o)
		return -1;
	driver = opts_get(o, "driver");
	if (driver && strcmp(driver, "isa-debug-exit") == 0) {
		cfg->debug_exit.enabled = true;
		if (parse_port(o, "iobase", &cfg->debug_exit.iobase) < 0 ||
		    parse_port(o, "iosize", &cfg->debug_exit.iosize) < 0 ||
		    cfg->debug_exit.iosize == 0 || cfg->debug_exit.iosize > 4) {
			err_invalid(opt, arg, "iobase must be a port number, iosize 1 to 4");
			goto out;
		}
		rc = check_unused(o, opt, arg);
	} else {
		rc = options_virtio_device(cfg, o, driver, opt, arg);
	}
out:
	opts_free(o);
	return rc;
}

static int opt_snapshot(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->snapshot_all);
}

static int opt_mem_path(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	cfg->memory.mem_path = arg;
	return 0;
}

static int opt_mem_prealloc(struct vm_config *cfg, const char *o, const char *a, FILE *f)
{
	return opt_flag(&cfg->memory.mem_prealloc);
}

/* -debugcon DEV: QEMU's isa-debugcon at 0x402 on a -serial style device. */
static int opt_debugcon(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct chardev_spec spec;
	char err[300];

	if (strncmp(arg, "chardev:", 8) == 0) {
		snprintf(cfg->debugcon_chardev, sizeof(cfg->debugcon_chardev), "%s", arg + 8);
		return 0;
	}
	if (!chardev_spec_parse(arg, &spec, err, sizeof(err)))
		return err_invalid(opt, arg, err);
	snprintf(cfg->debugcon_chardev, sizeof(cfg->debugcon_chardev), "debugcon");
	return add_chardev(cfg, opt, arg, "debugcon", &spec);
}

static int opt_version(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);
static int opt_help(struct vm_config *cfg, const char *opt, const char *arg, FILE *out);

static const struct option_def option_table[] = {
	{ "m", true, opt_m, "[size=]megs  guest RAM, default 128M (suffixes K, M, G, T)" },
	{ "smp", true, opt_smp, "[cpus=]n[,sockets=][,cores=][,threads=][,maxcpus=]  CPUs" },
	{ "name", true, opt_name, "string  name of the guest" },
	{ "uuid", true, opt_uuid, "%08x-%04x-%04x-%04x-%012x  machine UUID" },
	{ "cpu", true, options_cpu, "host[,migratable=on|off]|max|qemu64|help  CPU model" },
	{ "machine", true, opt_machine, "[type=]pc|none[,accel=kvm[:tcg]]|help  machine type" },
	{ "M", true, opt_machine, NULL },
	{ "accel", true, accel_option, "kvm|help  accelerator (KVM, the only one)" },
	{ "enable-kvm", false, opt_enable_kvm, "  use KVM (-machine accel=kvm)" },
	{ "kernel", true, opt_kernel, "bzImage|elf  Linux bzImage or PVH ELF kernel" },
	{ "initrd", true, opt_initrd, "file  initial ram disk" },
	{ "append", true, opt_append, "cmdline  kernel command line" },
	{ "nographic", false, opt_nographic, "  no display; serial and Ctrl-a keys on stdio" },
	{ "display", true, opt_display, "none|sdl[,<optargs>]|vnc=<display>[,<optargs>]  display back end" },
	{ "vga", true, opt_vga, "std|none  video card (default std)" },
	{ "sdl", false, opt_sdl, "  the local SDL window (-display sdl)" },
	{ "alt-grab", false, opt_grab, "  SDL: Ctrl-Alt-Shift toggles the grab (grab-mod=lshift-lctrl-lalt)" },
	{ "ctrl-grab", false, opt_grab, "  SDL: right Ctrl toggles the grab (grab-mod=rctrl)" },
	{ "no-quit", false, opt_no_quit, "  SDL: closing the window does not quit (window-close=off)" },
	{ "full-screen", false, opt_full_screen, "  SDL: start in full screen" },
	{ "vnc", true, opt_vnc, "<display>[,<optargs>]  VNC server on the display (:D, HOST:D, unix:PATH, none)" },
	{ "k", true, opt_keyboard, "language  keyboard layout for VNC (en-us, de, fr, ja)" },
	{ "serial", true, opt_serial,
	  "stdio|mon:stdio|file:path|unix:path[,server][,nowait]|tcp:host:port[,server][,nowait]|"
	  "pty|null|none|chardev:id  COM1" },
	{ "chardev", true, opt_chardev,
	  "stdio|socket|file|pty|null,id=id[,path=][,host=][,port=][,server=on|off][,wait=on|off]"
	  "[,mux=on|off]  a character device" },
	{ "mon", true, opt_mon, "[chardev=]id[,mode=readline|control][,pretty=on|off]  a monitor" },
	{ "monitor", true, opt_monitor, "dev  the human monitor on a -serial style device" },
	{ "qmp", true, opt_qmp, "dev  QMP on a -serial style device (e.g. unix:path,server,nowait)" },
	{ "device", true, opt_device, "driver[,prop=value...]|help  add a device (see -device help)" },
	{ "drive", true, options_drive,
	  "file=f[,if=virtio|none][,format=raw|qcow2][,cache=none|writeback|writethrough|unsafe|"
	  "directsync][,readonly=on][,snapshot=on][,id=][,serial=][,discard=unmap]  a disk" },
	{ "blockdev", true, options_blockdev,
	  "driver=file|host_device|raw|qcow2,node-name=name[,filename=][,file=node]"
	  "[,cache.direct=][,read-only=]...  a block node (also JSON)" },
	{ "net", true, options_net,
	  "nic[,vlan=n][,macaddr=mac][,model=virtio|help][,name=][,addr=][,vectors=][,dup=allow]"
	  "|tap,...|user,...|socket,...|none  a NIC or a back end on hub (vlan) n" },
	{ "netdev", true, options_netdev,
	  "tap|user|socket,id=id[,...]|help  a network back end (see kestrel(1))" },
	{ "nic", true, options_nic, "[tap|user|socket|none][,model=][,mac=][,...]  NIC + back end" },
	{ "snapshot", false, opt_snapshot, "  write to temporary files instead of disk images" },
	{ "nodefaults", false, opt_nodefaults, "  no default serial port or monitor" },
	{ "no-reboot", false, opt_no_reboot, "  exit instead of rebooting" },
	{ "no-shutdown", false, opt_no_shutdown, "  stop the guest, do not exit, on power-off" },
	{ "daemonize", false, opt_daemonize, "  detach after start-up" },
	{ "S", false, opt_start_paused, "  freeze the CPUs at start-up (QMP cont / HMP c)" },
	{ "no-user-config", false, opt_no_user_config,
	  "  accepted: Kestrel reads no configuration files" },
	{ "msg", true, opt_msg, "[timestamp=on|off][,guest-name=on|off]  error message prefixes" },
	{ "pidfile", true, opt_pidfile, "file  write the process ID to file" },
	{ "check-host", false, opt_check_host, "  check this host for running VMs and exit" },
	{ "bios", true, options_bios, "file  firmware image (default /usr/share/seabios/bios-256k.bin)" },
	{ "boot", true, options_boot,
	  "[order=]drives[,once=drives][,menu=on|off][,splash-time=ms][,reboot-timeout=ms]"
	  "[,strict=on|off]  firmware boot order (a, c, d, n)" },
	{ "hda", true, options_ide_shorthand, "file  IDE disk, primary master" },
	{ "hdb", true, options_ide_shorthand, "file  IDE disk, primary slave" },
	{ "hdc", true, options_ide_shorthand, "file  IDE disk, secondary master" },
	{ "hdd", true, options_ide_shorthand, "file  IDE disk, secondary slave" },
	{ "cdrom", true, options_ide_shorthand, "file  IDE CD-ROM, secondary master (an ISO image)" },
	{ "fda", true, options_floppy_shorthand, "file  floppy drive A: (a 1.44 MB image)" },
	{ "fdb", true, options_floppy_shorthand, "file  floppy drive B: (a 1.44 MB image)" },
	{ "debugcon", true, opt_debugcon, "dev  debug console at port 0x402 (-serial style dev)" },
	{ "object", true, options_object,
	  "memory-backend-{ram,file,memfd},id=,size=[,mem-path=][,share=][,prealloc=][,merge=]"
	  "[,dump=][,hugetlb=][,host-nodes=,policy=]  a RAM backend" },
	{ "numa", true, options_numa, "node[,nodeid=][,cpus=][,memdev=]|dist,src=,dst=,val=  NUMA" },
	{ "mem-path", true, opt_mem_path, "path  back RAM with a file in path (e.g. hugetlbfs)" },
	{ "mem-prealloc", false, opt_mem_prealloc, "  allocate all of RAM at start-up" },
	{ "overcommit", true, options_overcommit, "mem-lock=on|off  lock RAM in host memory" },
	{ "balloon", true, options_balloon, "none|virtio[,addr=]  the memory balloon device" },
	{ "usb", false, options_usb, "  the PIIX3 USB UHCI controller (as -machine usb=on)" },
	{ "usbdevice", true, options_usbdevice, "tablet|mouse|keyboard  a USB HID device (implies -usb)" },
	{ "no-hpet", false, options_no_hpet, "  no HPET (kestrel's pc machine has none)" },
	{ "smbios", true, options_smbios_refused, "  (refused: kestrel gives the firmware no SMBIOS tables)" },
	{ "global", true, options_global,
	  "kvm-pit.lost_tick_policy=delay|PIIX4_PM.disable_s3=1|PIIX4_PM.disable_s4=1  "
	  "device defaults" },
	{ "rtc", true, options_rtc, "[base=utc|localtime|DATE][,clock=host][,driftfix=none|slew]  "
	  "the CMOS clock" },
	{ "audiodev", true, options_audiodev, "none,id=id  an audio back end (none: no device)" },
	{ "gdb", true, options_gdb, "dev  gdbstub on dev (tcp:[host]:port, unix:path,server, none)" },
	{ "s", false, options_gdb, "  shorthand for -gdb tcp::1234" },
	{ "version", false, opt_version, "  print the version and exit" },
	{ "h", false, opt_help, "  print this help and exit" },
	{ "help", false, opt_help, NULL },
};

static int opt_version(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	fprintf(out, "Kestrel emulator version " KESTREL_VERSION
		     " (QEMU-compatible command line, KVM only)\n");
	return 1;
}

static int opt_help(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	fprintf(out, "usage: kestrel [options]\n"
		     "Starts one virtual machine on KVM; options follow qemu-system-x86_64.\n\n");
	for (size_t i = 0; i < sizeof(option_table) / sizeof(option_table[0]); i++) {
		const struct option_def *d = &option_table[i];
		if (d->help)
			fprintf(out, "-%s %s\n", d->name, d->help);
	}
	fprintf(out, "\nDuring -nographic emulation, press Ctrl-a h for the escape keys.\n");
	return 1;
}

static const struct option_def *find_option(const char *name)
{
	for (size_t i = 0; i < sizeof(option_table) / sizeof(option_table[0]); i++)
		if (strcmp(option_table[i].name, name) == 0)
			return &option_table[i];
	return NULL;
}

static void set_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ram_size = VM_DEFAULT_RAM;
	cfg->memory.mem_merge = true;	/* QEMU's default: KSM may merge guest pages */
	cfg->memory.dump_guest_core = true;
	cfg->smp = (struct smp_config){ 1, 1, 1, 1, 1 };
	cfg->debug_exit.iobase = DEBUG_EXIT_DEFAULT_BASE;
	cfg->debug_exit.iosize = DEBUG_EXIT_DEFAULT_SIZE;
	cfg->boot.splash_time = -1;
	cfg->boot.reboot_timeout = -1;
}

static int check_chardev_refs(struct vm_config *cfg)
{
	unsigned stdio_users = 0;

	if (cfg->serial_chardev[0] && !find_chardev(cfg, cfg->serial_chardev)) {
		log_error("-serial chardev:%s: chardev '%s' not found", cfg->serial_chardev,
			  cfg->serial_chardev);
		return -1;
	}
	for (unsigned i = 0; i < cfg->nr_monitors; i++) {
		const struct chardev_config *c = find_chardev(cfg, cfg->monitors[i].chardev);
		if (!c) {
			log_error("-mon: chardev '%s' not found", cfg->monitors[i].chardev);
			return -1;
		}
		/* Only a multiplexed stdio can carry a monitor beside the serial port. */
		if (strcmp(c->id, cfg->serial_chardev) == 0 && !c->spec.mux) {
			log_error("-mon: chardev '%s' is in use by the serial port; use mux=on", c->id);
			return -1;
		}
	}
	for (unsigned i = 0; i < cfg->nr_chardevs; i++)
		stdio_users += cfg->chardevs[i].spec.kind == CHARDEV_STDIO;
	if (stdio_users > 1) {
		log_error("cannot use stdio by multiple character devices");
		return -1;
	}
	if (stdio_users && cfg->daemonize) {
		log_error("-daemonize: cannot use stdio with -daemonize (give -serial or "
			  "-display none)");
		return -1;
	}
	return 0;
}

/* QEMU's name of a -device driver Kestrel models. */
static const char *device_driver_name(enum device_kind kind)
{
	switch (kind) {
	case DEVICE_VIRTIO_BLK:
		return "virtio-blk-pci";
	case DEVICE_VIRTIO_RNG:
		return "virtio-rng-pci";
	case DEVICE_VIRTIO_SERIAL:
		return "virtio-serial-pci";
	case DEVICE_VIRTIO_NET:
		return "virtio-net-pci";
	case DEVICE_E1000:
		return "e1000";
	case DEVICE_VIRTIO_BALLOON:
		return "virtio-balloon-pci";
	case DEVICE_VGA:
		return "VGA";
	case DEVICE_BOCHS_DISPLAY:
		return "bochs-display";
	}
	return "?";
}

/*
 * What machine none (QEMU's null-machine: no RAM, at most one CPU and only
 * with -cpu, no bus, no firmware) cannot carry, refused as QEMU refuses it
 * where QEMU does; RAM and -cpu, which QEMU would give it, are refused by
 * name because Kestrel's none has neither.
 */
static int check_machine_none(const struct vm_config *cfg)
{
	char msg[200];

	if (cfg->kernel) {
		log_error("The -kernel parameter is not supported (use the generic 'loader' device "
			  "instead).");
		return -1;
	}
	if (cfg->smp.cpus > 1 || cfg->smp.maxcpus > 1) {
		log_error("Invalid SMP CPUs %u. The max CPUs supported by machine 'none' is 1",
			  cfg->smp.maxcpus > cfg->smp.cpus ? cfg->smp.maxcpus : cfg->smp.cpus);
		return -1;
	}
	if (cfg->cpu_given || cfg->memory.ram_size_given || cfg->memory.nr_nodes ||
	    cfg->memory.memory_backend[0] || cfg->memory.mem_path || cfg->bios) {
		log_error("machine 'none' has no CPU, RAM or firmware in Kestrel: -cpu, -m, -numa, "
			  "-mem-path, memory-backend= and -bios cannot be used with it");
		return -1;
	}
	if (cfg->nr_devices || cfg->nr_nics || cfg->balloon.enabled) {
		snprintf(msg, sizeof(msg), "No 'PCI' bus found for device '%s'",
			 cfg->nr_devices ? device_driver_name(cfg->devices[0].kind) :
			 cfg->nr_nics ? (cfg->nics[0].e1000 ? "e1000" : "virtio-net-pci") :
			 "virtio-balloon-pci");
		log_error("-device: %s", msg);
		return -1;
	}
	if (cfg->debug_exit.enabled) {
		log_error("-device: No 'ISA' bus found for device 'isa-debug-exit'");
		return -1;
	}
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		if (cfg->drives[i].iface != DRIVE_IF_NONE) {
			log_error("-drive: machine type 'none' has no disk controller; use if=none");
			return -1;
		}
	}
	if (cfg->serial_chardev[0] || cfg->debugcon_chardev[0] || cfg->console_chardev[0]) {
		log_error("machine 'none' has no serial port or console: use -serial none");
		return -1;
	}
	return 0;
}

/*
 * -nographic with -daemonize (QEMU 7.2 vl.c): refused while a default
 * serial port or monitor would land on stdio; with both placed elsewhere
 * (or -nodefaults) -nographic has nothing left to do and is allowed.
 * Machine none has no serial port, so only the monitor counts there.
 */
static int check_nographic_daemonize(const struct vm_config *cfg)
{
	bool default_serial = !cfg->serial_given && !cfg->nodefaults &&
			      cfg->machine != MACHINE_NONE;
	bool default_monitor = !cfg->monitor_given && !cfg->nodefaults;

	if (cfg->daemonize && cfg->display == DISPLAY_NOGRAPHIC &&
	    (default_serial || default_monitor)) {
		log_error("-nographic cannot be used with -daemonize");
		return -1;
	}
	return 0;
}

/* Cross-option rules, checked once everything is known. */
static int finish(struct vm_config *cfg)
{
	struct chardev_spec spec = { .kind = CHARDEV_NULL };

	if (cfg->initrd && !cfg->kernel) {
		log_error("-initrd only makes sense with -kernel");
		return -1;
	}
	if (check_nographic_daemonize(cfg) < 0 || accel_check(cfg) < 0)
		return -1;
	if (cfg->msg_guest_name)
		log_set_guest_name(cfg->name);
	if (cfg->display == DISPLAY_DEFAULT && !cfg->vnc) {
		/* QEMU on a host without a GUI: VNC on localhost, the first free display. */
		cfg->vnc = "localhost:0,to=99";
		cfg->vnc_default = true;
	}
	if (cfg->machine == MACHINE_NONE && !cfg->nodefaults && !cfg->monitor_given &&
	    cfg->display != DISPLAY_NONE) {
		/* QEMU's default monitor on stdio; none has no serial port to share it with. */
		struct chardev_spec stdio = { .kind = CHARDEV_STDIO, .signal = true };
		if (add_chardev(cfg, "monitor", "default", "compat_monitor0", &stdio) < 0 ||
		    add_monitor(cfg, "monitor", "default", "compat_monitor0", false, false) < 0)
			return -1;
	}
	if (!cfg->serial_given && !cfg->nodefaults && cfg->machine != MACHINE_NONE) {
		/*
		 * QEMU: -nographic puts the serial port on stdio with the monitor muxed
		 * in (Ctrl-a c) unless a monitor was placed elsewhere.  We keep the
		 * Ctrl-a keys either way.
		 */
		if (cfg->display != DISPLAY_NONE) {
			spec.kind = CHARDEV_STDIO;
			spec.mux = true;
		}
		snprintf(cfg->serial_chardev, sizeof(cfg->serial_chardev), "serial0");
		if (add_chardev(cfg, "serial", "default", "serial0", &spec) < 0)
			return -1;
		if (spec.mux && !cfg->monitor_given &&
		    add_monitor(cfg, "monitor", "default", "serial0", false, false) < 0)
			return -1;
	}
	if (check_chardev_refs(cfg) < 0)
		return -1;
	if (options_check_net(cfg) < 0)
		return -1;
	if (cfg->debugcon_chardev[0] && !find_chardev(cfg, cfg->debugcon_chardev)) {
		log_error("-debugcon chardev:%s: chardev '%s' not found", cfg->debugcon_chardev,
			  cfg->debugcon_chardev);
		return -1;
	}
	if (options_check_devices(cfg) < 0)
		return -1;
	if (options_check_usb(cfg) < 0)
		return -1;
	if (cfg->machine == MACHINE_NONE && check_machine_none(cfg) < 0)
		return -1;
	return options_check_memory(cfg);
}

enum options_result options_parse(int argc, char **argv, struct vm_config *cfg, FILE *out)
{
	set_defaults(cfg);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *name;
		const struct option_def *def;
		int rc;

		if (arg[0] != '-' || arg[1] == '\0') {
			/* QEMU: a bare file name is the first IDE disk. */
			if (arg[0] == '-' || options_ide_shorthand(cfg, "hda", arg, out) < 0)
				return OPTIONS_ERROR;
			continue;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);	/* QEMU accepts -opt and --opt */
		def = find_option(name);
		if (!def) {
			log_error("-%s: invalid option", name);
			return OPTIONS_ERROR;
		}
		if (def->has_arg && i + 1 >= argc) {
			log_error("-%s: requires an argument", name);
			return OPTIONS_ERROR;
		}
		rc = def->handle(cfg, name, def->has_arg ? argv[++i] : NULL, out);
		if (rc < 0)
			return OPTIONS_ERROR;
		if (rc > 0)
			return OPTIONS_DONE;
	}
	return finish(cfg) < 0 ? OPTIONS_ERROR : OPTIONS_RUN;
}

void options_free(struct vm_config *cfg)
{
	options_free_memory(cfg);
	free(cfg->process_name);
	cfg->process_name = NULL;
	free(cfg->name);
	cfg->name = NULL;
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		free(cfg->drives[i].file);
		cfg->drives[i].file = NULL;
	}
	options_free_net(cfg);
}

/*
 * -name process=NAME: the name ps and top show (QEMU's os_set_proc_name: the
 * kernel keeps 15 bytes).  Called by main before any thread starts.
 */
int options_set_process_name(const struct vm_config *cfg)
{
	char comm[16];

	if (!cfg->process_name)
		return 0;
	snprintf(comm, sizeof(comm), "%s", cfg->process_name);
	if (prctl(PR_SET_NAME, (unsigned long)comm, 0, 0, 0) < 0) {
		log_error("-name process=%s: cannot set the process name: %s", cfg->process_name,
			  strerror(errno));
		return -1;
	}
	return 0;
}
