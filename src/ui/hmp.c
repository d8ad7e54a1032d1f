/*
 * The human monitor's commands, with QEMU 7.2's names and output layout
 * (hmp-commands.hx, hmp-commands-info.hx), so people and scripts used to
 * "(qemu) info status" feel at home.
 */
#include "ui/hmp.h"
#include "ui/hmp_input.h"
#include "ui/monitor_display.h"
#include "ui/nbd_cmds.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

#define HMP_MAX_ARGS 8

struct hmp_cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(const struct control *ctl, int argc, char **argv, FILE *out);
};

/* QEMU's monitor turns every "\n" into "\r\n"; so do we. */
__attribute__((format(printf, 3, 0)))
static void vhprintf(FILE *out, const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s", prefix);

	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	for (const char *p = buf; *p; p++) {
		if (*p == '\n')
			fputc('\r', out);
		fputc(*p, out);
	}
}

static void hprintf(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hprintf(FILE *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vhprintf(out, "", fmt, ap);
	va_end(ap);
}

/* HMP's error form (hmp_handle_error): "Error: <message>". Returns -1. */
static int herror(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int herror(FILE *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vhprintf(out, "Error: ", fmt, ap);
	va_end(ap);
	hprintf(out, "\n");
	return -1;
}

/* Copies captured multi-line text (from control callbacks) converting newlines. */
static void hcopy(FILE *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\n' && (p == text || p[-1] != '\r'))
			fputc('\r', out);
		fputc(*p, out);
	}
}

static const char *const no_balloon = "No balloon device has been activated";

/* monitor_display.c's commands write plain text; the monitor wants "\r\n". */
static int display_text(const struct control *ctl, int argc, char **argv, FILE *out,
			int (*fn)(const struct control *, int, char **, FILE *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int rc;

	if (!mem)
		return herror(out, "out of memory");
	rc = fn(ctl, argc, argv, mem);
	if (fclose(mem) == 0 && text)
		hcopy(out, text);
	free(text);
	return rc;
}

static int info_vnc_cmd(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return hmp_info_vnc(ctl, out);
}

static int cmd_change(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return display_text(ctl, argc, argv, out, hmp_change);
}

static int cmd_set_password(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return display_text(ctl, argc, argv, out, hmp_set_password);
}

static int cmd_screendump(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return display_text(ctl, argc, argv, out, hmp_screendump);
}

/* ---- info ------------------------------------------------------------- */

/* hmp_info_balloon: the size the guest has now, in MiB. */
static int info_balloon(const struct control *ctl, FILE *out)
{
	char err[256] = "";
	uint64_t actual;

	if (!ctl->query_balloon)
		return herror(out, "%s", no_balloon);
	if (ctl->query_balloon(ctl->opaque, &actual, err, sizeof(err)) < 0)
		return herror(out, "%s", err);
	hprintf(out, "balloon: actual=%" PRIu64 "\n", actual >> 20);
	return 0;
}

static int info_version(const struct control *ctl, FILE *out)
{
	hprintf(out, "7.2.0 (kestrel-" KESTREL_VERSION ")\n");
	return 0;
}

static int info_name(const struct control *ctl, FILE *out)
{
	const char *name = ctl->name(ctl->opaque);

	if (name)
		hprintf(out, "%s\n", name);
	return 0;
}

static int info_uuid(const struct control *ctl, FILE *out)
{
	uint8_t u[16] = { 0 };

	ctl->uuid(ctl->opaque, u);
	hprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		u[13], u[14], u[15]);
	return 0;
}

static int info_status(const struct control *ctl, FILE *out)
{
	enum run_state st = ctl->run_state(ctl->opaque);
	bool running = st == RUN_STATE_RUNNING;

	/* hmp_info_status: the RunState is added only when it is not plain "paused". */
	hprintf(out, "VM status: %s", running ? "running" : "paused");
	if (!running && st != RUN_STATE_PAUSED)
		hprintf(out, " (%s)", run_state_name(st));
	hprintf(out, "\n");
	return 0;
}

static int info_kvm(const struct control *ctl, FILE *out)
{
	bool on = !ctl->kvm_enabled || ctl->kvm_enabled(ctl->opaque);

	/* hmp_info_kvm: "present" is whether the binary has KVM, which Kestrel always has. */
	hprintf(out, "kvm support: %s\n", on ? "enabled" : "disabled");
	return 0;
}

static int info_cpus(const struct control *ctl, FILE *out)
{
	unsigned n = ctl->cpu_count(ctl->opaque);
	struct cpu_info ci;

	for (unsigned i = 0; i < n; i++) {
		if (!ctl->cpu_info(ctl->opaque, i, &ci))
			continue;
		/* The '*' marks the monitor's current CPU, which is CPU 0. */
		hprintf(out, "%c CPU #%u: thread_id=%ld\n", i == 0 ? '*' : ' ', ci.cpu_index,
			ci.thread_id);
	}
	return 0;
}

/* Runs fn into a memory buffer, then copies its text out with QEMU's line endings. */
static int capture(const struct control *ctl, FILE *out,
		   bool (*fn)(const struct control *, const char *, FILE *), const char *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	bool ok;

	if (!mem)
		return herror(out, "out of memory");
	ok = fn(ctl, arg, mem);
	fclose(mem);
	if (ok)
		hcopy(out, text);
	free(text);
	return ok ? 0 : -1;
}

static bool registers_all(const struct control *ctl, const char *unused, FILE *mem)
{
	bool ok = true;

	for (unsigned i = 0; i < ctl->cpu_count(ctl->opaque); i++)
		ok &= ctl->dump_registers(ctl->opaque, i, mem);
	return ok;
}

static bool registers_cpu0(const struct control *ctl, const char *unused, FILE *mem)
{
	return ctl->dump_registers(ctl->opaque, 0, mem);
}

static int info_registers(const struct control *ctl, int argc, char **argv, FILE *out)
{
	bool all = argc > 2 && strcmp(argv[2], "-a") == 0;

	if (capture(ctl, out, all ? registers_all : registers_cpu0, NULL) < 0)
		return herror(out, "the VM is not running");
	return 0;
}

static int info_chardev(const struct control *ctl, FILE *out)
{
	struct chardev_info info[16];
	unsigned n = ctl->chardevs(ctl->opaque, info, 16);

	for (unsigned i = 0; i < n && i < 16; i++)
		hprintf(out, "%s: filename=%s\n", info[i].label, info[i].filename);
	return 0;
}

/* print_block_info's throttling line (block-hmp-cmds.c), when any rate is set. */
static void info_throttle(const struct drive_info *b, FILE *out)
{
	const struct leaky_bucket *k = b->limits.b;

	hprintf(out, "    I/O throttling:   bps=%" PRIu64 " bps_rd=%" PRIu64 " bps_wr=%" PRIu64
		" bps_max=%" PRIu64 " bps_rd_max=%" PRIu64 " bps_wr_max=%" PRIu64
		" iops=%" PRIu64 " iops_rd=%" PRIu64 " iops_wr=%" PRIu64
		" iops_max=%" PRIu64 " iops_rd_max=%" PRIu64 " iops_wr_max=%" PRIu64
		" iops_size=%" PRIu64 " group=%s\n",
		k[THROTTLE_BPS_TOTAL].avg, k[THROTTLE_BPS_READ].avg, k[THROTTLE_BPS_WRITE].avg,
		k[THROTTLE_BPS_TOTAL].max, k[THROTTLE_BPS_READ].max, k[THROTTLE_BPS_WRITE].max,
		k[THROTTLE_OPS_TOTAL].avg, k[THROTTLE_OPS_READ].avg, k[THROTTLE_OPS_WRITE].avg,
		k[THROTTLE_OPS_TOTAL].max, k[THROTTLE_OPS_READ].max, k[THROTTLE_OPS_WRITE].max,
		b->limits.op_size, b->group);
}

/* hmp_info_block: "id (#blockN): file (format[, read-only])", then the device and cache. */
static int info_block(const struct control *ctl, FILE *out)
{
	struct drive_info info[16];
	unsigned n = ctl->blocks ? ctl->blocks(ctl->opaque, info, 16) : 0;

	for (unsigned i = 0; i < n && i < 16; i++) {
		const struct drive_info *b = &info[i];
		const char *mode = b->cache_no_flush ? "writeback, ignore flushes" :
				   b->cache_direct ? "writeback, direct" : "writeback";
		hprintf(out, "%s%s (%s): %s (%s%s)\n    Attached to:      %s\n    Cache mode:       %s\n",
			i ? "\n" : "", b->device, b->node_name, b->file, b->format,
			b->readonly ? ", read-only" : "", b->qdev, mode);
		if (b->throttled)
			info_throttle(b, out);
	}
	return 0;
}

/* hmp_info_blockstats: one line per named device, QEMU 7.2's fields and order. */
static int info_blockstats(const struct control *ctl, FILE *out)
{
	struct drive_info info[16];
	unsigned n = ctl->blocks ? ctl->blocks(ctl->opaque, info, 16) : 0;

	for (unsigned i = 0; i < n && i < 16; i++) {
		const struct block_stats *s = &info[i].stats;
		uint64_t idle = s->last_access_ns ? info[i].now_ns - s->last_access_ns : 0;
		hprintf(out, "%s: rd_bytes=%" PRIu64 " wr_bytes=%" PRIu64 " rd_operations=%" PRIu64
			" wr_operations=%" PRIu64 " flush_operations=%" PRIu64
			" wr_total_time_ns=%" PRIu64 " rd_total_time_ns=%" PRIu64
			" flush_total_time_ns=%" PRIu64 " rd_merged=0 wr_merged=0 idle_time_ns=%" PRIu64
			"\n", info[i].device, s->bytes[BLOCK_ACCT_READ], s->bytes[BLOCK_ACCT_WRITE],
			s->ops[BLOCK_ACCT_READ], s->ops[BLOCK_ACCT_WRITE], s->ops[BLOCK_ACCT_FLUSH],
			s->total_time_ns[BLOCK_ACCT_WRITE], s->total_time_ns[BLOCK_ACCT_READ],
			s->total_time_ns[BLOCK_ACCT_FLUSH], idle);
	}
	return 0;
}

#define HMP_NET_MAX 48

/* net.c print_net_client */
static void print_net_client(FILE *out, const struct net_info *nc)
{
	hprintf(out, "%s: index=0,type=%s,%s\n", nc->name, nc->type, nc->info);
}

/*
 * hmp_info_network: the hubs first (net_hub_info; hubs and their ports
 * newest first, as QEMU's lists insert at the head), each port with its
 * peer; then every other client not on a hub: a NIC with its back end
 * under it, a back end without a peer alone.
 */
static int info_network(const struct control *ctl, FILE *out)
{
	struct net_info *nc = calloc(HMP_NET_MAX, sizeof(*nc));
	unsigned n = nc && ctl->net_clients ? ctl->net_clients(ctl->opaque, nc, HMP_NET_MAX) : 0;
	bool on_hub[HMP_NET_MAX] = { false };

	if (!nc)
		return herror(out, "out of memory");
	if (n > HMP_NET_MAX)
		n = HMP_NET_MAX;
	for (unsigned i = n; i-- > 0;) {
		int hub = nc[i].hub;
		bool first = true;
		if (hub < 0)
			continue;
		for (unsigned j = i + 1; j < n; j++)
			first &= nc[j].hub != hub;
		if (!first)
			continue;
		hprintf(out, "hub %d\n", hub);
		for (unsigned j = i + 1; j-- > 0;) {
			if (nc[j].hub != hub)
				continue;
			hprintf(out, " \\ %s", nc[j].name);
			if (nc[j].peer >= 0) {
				hprintf(out, ": ");
				print_net_client(out, &nc[nc[j].peer]);
				on_hub[nc[j].peer] = true;
			} else {
				hprintf(out, "\n");
			}
		}
	}
	for (unsigned i = 0; i < n; i++) {
		bool nic = strcmp(nc[i].type, "nic") == 0;
		if (nc[i].hub >= 0 || on_hub[i])
			continue;
		if (nc[i].peer < 0 || nic)
			print_net_client(out, &nc[i]);
		if (nc[i].peer >= 0 && nic) {
			hprintf(out, " \\ ");
			print_net_client(out, &nc[nc[i].peer]);
		}
	}
	free(nc);
	return 0;
}

/* hmp_info_usernet: each user-mode stack, its hub (-1: none) and libslirp's table. */
static int info_usernet(const struct control *ctl, FILE *out)
{
	struct net_info *nc = calloc(HMP_NET_MAX, sizeof(*nc));
	unsigned n = nc && ctl->net_clients ? ctl->net_clients(ctl->opaque, nc, HMP_NET_MAX) : 0;

	if (!nc)
		return herror(out, "out of memory");
	if (n > HMP_NET_MAX)
		n = HMP_NET_MAX;
	for (unsigned i = 0; i < n; i++) {
		int peer = nc[i].peer, hub = -1;
		char *table;
		if (strcmp(nc[i].type, "user") != 0 || !ctl->usernet)
			continue;
		if (peer >= 0 && nc[peer].hub >= 0)
			hub = nc[peer].hub;
		table = ctl->usernet(ctl->opaque, nc[i].name);
		hprintf(out, "Hub %d (%s):\n", hub, nc[i].name);
		if (table)
			hcopy(out, table);
		free(table);
	}
	free(nc);
	return 0;
}

static const char *pci_class_name(uint32_t class_code)
{
	switch (class_code >> 8) {
	case 0x0100: return "SCSI controller";
	case 0x0101: return "IDE controller";
	case 0x0200: return "Ethernet controller";
	case 0x0300: return "VGA controller";
	case 0x0380: return "Display controller";
	case 0x0600: return "Host bridge";
	case 0x0601: return "ISA bridge";
	case 0x0680: return "Bridge";
	case 0x0780: return "Communication controller";
	case 0x0c03: return "USB controller";
	default: return NULL;
	}
}

/* hmp_info_pci's layout, one block per function. */
static int info_pci(const struct control *ctl, FILE *out)
{
	struct pci_info info[32];
	unsigned n = ctl->pci_devices ? ctl->pci_devices(ctl->opaque, info, 32) : 0;

	for (unsigned i = 0; i < n && i < 32; i++) {
		const struct pci_info *p = &info[i];
		const char *name = pci_class_name(p->class_code);
		hprintf(out, "  Bus  0, device %3u, function %u:\n", p->slot, p->function);
		if (name)
			hprintf(out, "    %s: PCI device %04x:%04x\n", name, p->vendor, p->device);
		else
			hprintf(out, "    Class %04x: PCI device %04x:%04x\n", p->class_code >> 8,
				p->vendor, p->device);
		hprintf(out, "      PCI subsystem %04x:%04x\n", p->subsys_vendor, p->subsys);
		if (p->pin)
			hprintf(out, "      IRQ %u, pin %c\n", p->irq, 'A' + p->pin - 1);
		for (unsigned b = 0; b < 6; b++) {
			if (!p->bars[b].size)
				continue;
			unsigned long long lo = p->bars[b].addr, hi = lo + p->bars[b].size - 1;
			if (p->bars[b].io)
				hprintf(out, "      BAR%u: I/O at 0x%04llx [0x%04llx].\n", b, lo, hi);
			else
				hprintf(out, "      BAR%u: 32 bit %smemory at 0x%08llx [0x%08llx].\n", b,
					p->bars[b].prefetch ? "prefetchable " : "", lo, hi);
		}
		hprintf(out, "      id \"\"\n");
	}
	return 0;
}

static int info_migrate(const struct control *ctl, FILE *out)
{
	/* No migration has happened: QEMU shows only its global settings. */
	hprintf(out, "globals:\nstore-global-state: on\nonly-migratable: off\n"
		     "send-configuration: on\nsend-section-footer: on\n"
		     "decompress-error-check: on\nclear-bitmap-shift: 18\n");
	return 0;
}

static bool describe_cb(const struct control *ctl, const char *topic, FILE *mem)
{
	return ctl->describe(ctl->opaque, topic, mem);
}

static int info_describe(const struct control *ctl, const char *topic, FILE *out)
{
	if (capture(ctl, out, describe_cb, topic) < 0)
		return herror(out, "nothing to show for %s", topic);
	return 0;
}

/* hmp_info_usb: the devices on the UHCI's ports; an error without a USB controller. */
static int info_usb(const struct control *ctl, FILE *out)
{
	if (!ctl->describe || capture(ctl, out, describe_cb, "usb") < 0)
		return herror(out, "USB support not enabled");
	return 0;
}

struct info_cmd {
	const char *name;
	const char *help;
};

static const struct info_cmd info_cmds[] = {
	{ "balloon", "show balloon information" },
	{ "block", "show info of one block device or all block devices" },
	{ "blockstats", "show block device statistics" },
	{ "chardev", "show the character devices" },
	{ "cpus", "show infos for each CPU" },
	{ "kvm", "show KVM information" },
	{ "mice", "show which guest mouse is receiving events" },
	{ "migrate", "show migration status" },
	{ "mtree", "show memory tree" },
	{ "name", "show the current VM name" },
	{ "network", "show the network state" },
	{ "pci", "show PCI info" },
	{ "qtree", "show device tree" },
	{ "registers", "show the cpu registers (-a: all CPUs)" },
	{ "snapshots", "show the currently saved VM snapshots" },
	{ "status", "show the current VM status (running|paused)" },
	{ "usb", "show guest USB devices" },
	{ "usernet", "show user network stack connection states" },
	{ "uuid", "show the current VM UUID" },
	{ "version", "show the version of QEMU" },
	{ "vnc", "show the vnc server status" },
};

static void info_help(FILE *out)
{
	for (size_t i = 0; i < sizeof(info_cmds) / sizeof(info_cmds[0]); i++)
		hprintf(out, "info %-10s -- %s\n", info_cmds[i].name, info_cmds[i].help);
}

static int cmd_info(const struct control *ctl, int argc, char **argv, FILE *out)
{
	const char *what = argc > 1 ? argv[1] : NULL;

	if (!what) {
		info_help(out);
		return 0;
	}
	if (!strcmp(what, "version")) return info_version(ctl, out);
	if (!strcmp(what, "name")) return info_name(ctl, out);
	if (!strcmp(what, "uuid")) return info_uuid(ctl, out);
	if (!strcmp(what, "status")) return info_status(ctl, out);
	if (!strcmp(what, "kvm")) return info_kvm(ctl, out);
	if (!strcmp(what, "cpus")) return info_cpus(ctl, out);
	if (!strcmp(what, "registers")) return info_registers(ctl, argc, argv, out);
	if (!strcmp(what, "chardev")) return info_chardev(ctl, out);
	if (!strcmp(what, "migrate")) return info_migrate(ctl, out);
	if (!strcmp(what, "mtree") || !strcmp(what, "qtree")) return info_describe(ctl, what, out);
	if (!strcmp(what, "balloon")) return info_balloon(ctl, out);
	if (!strcmp(what, "mice")) return hmp_info_mice(ctl, out);
	if (!strcmp(what, "block")) return info_block(ctl, out);
	if (!strcmp(what, "pci")) return info_pci(ctl, out);
	if (!strcmp(what, "snapshots")) {
		hprintf(out, "No available block device supports snapshots\n");
		return 0;
	}
	if (!strcmp(what, "blockstats")) return info_blockstats(ctl, out);
	if (!strcmp(what, "network")) return info_network(ctl, out);
	if (!strcmp(what, "usernet")) return info_usernet(ctl, out);
	if (!strcmp(what, "usb")) return info_usb(ctl, out);
	if (!strcmp(what, "vnc")) return display_text(ctl, argc, argv, out, info_vnc_cmd);
	hprintf(out, "unknown info command: '%s'\n", what);	/* not QEMU's; it lists help */
	info_help(out);
	return -1;
}

/* ---- actions ---------------------------------------------------------- */

/* monitor/hmp.c's argument errors for "balloon value:M": the message, then the help hint. */
static int balloon_usage(FILE *out, const char *msg)
{
	hprintf(out, "%s\n", msg);
	hprintf(out, "Try \"help balloon\" for more information\n");
	return -1;
}

/*
 * hmp_balloon: the target in MiB, an integer expression (decimal or 0x hex)
 * as QEMU's monitor reads it; 0 is refused as the QMP command refuses it.
 */
static int cmd_balloon(const struct control *ctl, int argc, char **argv, FILE *out)
{
	char err[256] = "", msg[64], *end;
	unsigned long long mib;

	if (argc < 2)
		return balloon_usage(out, "unexpected end of expression");
	if (argv[1][0] == '-')
		return balloon_usage(out, "enter a positive value");
	if (argv[1][0] < '0' || argv[1][0] > '9') {
		snprintf(msg, sizeof(msg), "invalid char '%c' in expression", argv[1][0]);
		return balloon_usage(out, msg);
	}
	mib = strtoull(argv[1], &end, 0);
	if (*end || argc > 2)
		return balloon_usage(out, "balloon: extraneous characters at the end of line");
	if (!ctl->balloon)
		return herror(out, "%s", no_balloon);
	if (mib > (UINT64_MAX >> 20) ||
	    ctl->balloon(ctl->opaque, (uint64_t)mib << 20, err, sizeof(err)) < 0)
		return herror(out, "%s", err[0] ? err : "Parameter 'target' expects a size");
	return 0;
}

static int run_action(const struct control *ctl, FILE *out,
		      int (*action)(void *, char *, size_t))
{
	char err[256] = "";

	if (action(ctl->opaque, err, sizeof(err)) < 0)
		return herror(out, "%s", err);
	return 0;
}

static int cmd_stop(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return run_action(ctl, out, ctl->stop);
}

static int cmd_cont(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return run_action(ctl, out, ctl->cont);
}

static int cmd_system_reset(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return run_action(ctl, out, ctl->system_reset);
}

static int cmd_system_powerdown(const struct control *ctl, int argc, char **argv, FILE *out)
{
	return run_action(ctl, out, ctl->system_powerdown);
}

static int cmd_quit(const struct control *ctl, int argc, char **argv, FILE *out)
{
	ctl->quit(ctl->opaque);
	return 0;
}


/* As QMP's set_link and device_del (qmp_cmds.c): real "not found", else refused by name. */
static int cmd_set_link(const struct control *ctl, int argc, char **argv, FILE *out)
{
	int found;

	if (argc != 3 || (strcmp(argv[2], "on") && strcmp(argv[2], "off")))
		return herror(out, "set_link: expected a device name and on|off");
	found = control_has_net_client(ctl, argv[1], false);
	if (found < 0)
		return herror(out, "out of memory");
	if (!found)
		return herror(out, "Device '%s' not found", argv[1]);
	return herror(out, "set_link %s: changing the link state is not supported (the link "
		      "stays up)", argv[1]);
}

static int cmd_device_del(const struct control *ctl, int argc, char **argv, FILE *out)
{
	int found;

	if (argc != 2)
		return herror(out, "device_del: expected a device id");
	found = control_has_net_client(ctl, argv[1], true);
	if (found < 0)
		return herror(out, "out of memory");
	if (!found)
		return herror(out, "Device '%s' not found", argv[1]);
	return herror(out, "Device '%s' cannot be removed: hot-unplug is not supported", argv[1]);
}

static int cmd_commit(const struct control *ctl, int argc, char **argv, FILE *out)
{
	if (argc != 2)
		return herror(out, "commit: expected a device name or 'all'");
	if (strcmp(argv[1], "all") == 0)
		return 0;	/* nothing to commit: no -snapshot disks exist */
	return herror(out, "Device '%s' not found", argv[1]);
}

static int cmd_unavailable(const struct control *ctl, int argc, char **argv, FILE *out)
{
	static const struct {
		const char *cmd, *why;
	} why[] = {
		{ "hostfwd_add", "no user-mode network (-netdev user) is configured" },
		{ "hostfwd_remove", "no user-mode network (-netdev user) is configured" },
		{ "drive_add", "this machine has no disk controllers yet" },
		{ "device_add", "no hotpluggable device models yet" },
		{ "gdbserver", "the gdb stub is not available in this build" },
		{ "x", "virtual-address dumps need guest page-table walks, not available yet; use xp" },
	};
	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++)
		if (strcmp(argv[0], why[i].cmd) == 0)
			return herror(out, "%s", why[i].why);
	return herror(out, "%s is not available", argv[0]);
}

/* "xp /fmt addr": fmt = [count][format x d u o c][size b h w g], QEMU's defaults 1, x, w. */
static int cmd_xp(const struct control *ctl, int argc, char **argv, FILE *out)
{
	unsigned count = 1, size = 4;
	char format = 'x';
	const char *addr_arg = argv[1];
	uint64_t addr;

	if (argc == 3 && argv[1][0] == '/') {
		const char *f = argv[1] + 1;
		if (*f >= '0' && *f <= '9')
			count = (unsigned)strtoul(f, (char **)&f, 10);
		for (; *f; f++) {
			if (strchr("xduoc", *f))
				format = *f;
			else if (*f == 'b') size = 1;
			else if (*f == 'h') size = 2;
			else if (*f == 'w') size = 4;
			else if (*f == 'g') size = 8;
			else
				return herror(out, "invalid format character '%c'", *f);
		}
		addr_arg = argv[2];
	} else if (argc != 2) {
		return herror(out, "xp: usage: xp /fmt addr");
	}
	if (format == 'c')
		size = 1;
	if (!uint_parse(addr_arg, &addr) || count == 0 || count > 4096)
		return herror(out, "xp: bad address or count");
	unsigned per_line = size == 8 ? 2 : size == 4 ? 4 : 8;
	for (unsigned i = 0; i < count; i++) {
		uint64_t v = 0;
		if (ctl->read_memory(ctl->opaque, addr + (uint64_t)i * size, &v, size) < 0)
			return herror(out, "cannot access memory at 0x%" PRIx64, addr + (uint64_t)i * size);
		if (i % per_line == 0)
			hprintf(out, "%s%016" PRIx64 ":", i ? "\n" : "", addr + (uint64_t)i * size);
		switch (format) {
		case 'x': hprintf(out, " 0x%0*" PRIx64, (int)size * 2, v); break;
		case 'o': hprintf(out, " %#" PRIo64, v); break;
		case 'u': hprintf(out, " %" PRIu64, v); break;
		case 'd': hprintf(out, " %" PRId64, size == 8 ? (int64_t)v : size == 4 ? (int64_t)(int32_t)v :
				  size == 2 ? (int64_t)(int16_t)v : (int64_t)(int8_t)v); break;
		case 'c': hprintf(out, " '%c'", v >= 0x20 && v < 0x7f ? (char)v : '.'); break;
		}
	}
	hprintf(out, "\n");
	return 0;
}

/*
 * hmp_block_set_io_throttle: "device bps bps_rd bps_wr iops iops_rd iops_wr",
 * integers as the monitor reads them (decimal or 0x hex); the bursts and
 * iops_size go back to none, as QEMU's HMP command leaves them unset.
 */
static int cmd_block_set_io_throttle(const struct control *ctl, int argc, char **argv,
				     FILE *out)
{
	static const int bucket[6] = { THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE,
				       THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE };
	struct throttle_config c;
	char err[256] = "", *end;

	if (argc != 8) {
		hprintf(out, "%s\n", argc < 8 ? "Parameter 'iops_wr' is missing" :
			"block_set_io_throttle: extraneous characters at the end of line");
		hprintf(out, "Try \"help block_set_io_throttle\" for more information\n");
		return -1;
	}
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 6; i++) {
		const char *v = argv[2 + i];
		if (*v < '0' || *v > '9')
			return herror(out, "invalid char '%c' in expression", *v);
		c.b[bucket[i]].avg = strtoull(v, &end, 0);
		if (*end)
			return herror(out, "invalid char '%c' in expression", *end);
		c.b[bucket[i]].burst_length = 1;
	}
	if (!ctl->set_io_throttle ||
	    ctl->set_io_throttle(ctl->opaque, argv[1], NULL, &c, err, sizeof(err)) < 0)
		return herror(out, "%s", err[0] ? err : "no drives");
	return 0;
}

static int cmd_help(const struct control *ctl, int argc, char **argv, FILE *out);

/* nbd_server_start/add/remove/stop (nbd_cmds.c): QEMU's output is silence on success. */
static int cmd_nbd(const struct control *ctl, int argc, char **argv, FILE *out)
{
	char msg[512] = "";

	if (hmp_nbd_command(ctl, argc, argv, msg, sizeof(msg)) < 0)
		return herror(out, "%s", msg[0] ? msg : "Operation failed");
	return 0;
}

static int cmd_gdbserver(const struct control *ctl, int argc, char **argv, FILE *out)
{
	char msg[300];

	if (!ctl->gdbserver)
		return herror(out, "gdbserver is not available");
	/* hmp_gdbserver prints its failure without "Error: ". */
	int rc = ctl->gdbserver(ctl->opaque, argc > 1 ? argv[1] : NULL, msg, sizeof(msg));
	hprintf(out, "%s\n", msg);
	return rc;
}

static const struct hmp_cmd commands[] = {
	{ "balloon", "target", "request VM to change its memory allocation (in MB)", cmd_balloon },
	{ "block_set_io_throttle", "device bps bps_rd bps_wr iops iops_rd iops_wr",
	  "change I/O throttle limits for a block drive", cmd_block_set_io_throttle },
	{ "change", "device filename [format]", "change a removable medium, or the VNC password",
	  cmd_change },
	{ "commit", "device|all", "commit changes to the disk images (if -snapshot is used)",
	  cmd_commit },
	{ "cont", "", "resume emulation", cmd_cont },
	{ "c", "", "resume emulation", cmd_cont },
	{ "device_add", "driver[,prop=value][,...]", "add device", cmd_unavailable },
	{ "device_del", "device", "remove device", cmd_device_del },
	{ "drive_add", "[-n] [[<domain>:]<bus>:]<slot> [file=file][,if=type]...", "add drive",
	  cmd_unavailable },
	{ "gdbserver", "[device]", "start gdbserver on given device", cmd_gdbserver },
	{ "help", "[cmd]", "show the help", cmd_help },
	{ "?", "[cmd]", "show the help", cmd_help },
	{ "hostfwd_add", "[netdev_id] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport",
	  "redirect TCP or UDP connections from host to guest (requires -net user)",
	  cmd_unavailable },
	{ "hostfwd_remove", "[netdev_id] [tcp|udp]:[hostaddr]:hostport",
	  "remove host-to-guest TCP or UDP redirection", cmd_unavailable },
	{ "info", "[subcommand]", "show various information about the system state", cmd_info },
	{ "mouse_button", "state", "change mouse button state (1=L, 2=M, 4=R)", hmp_mouse_button },
	{ "mouse_move", "dx dy [dz]", "send mouse move events", hmp_mouse_move },
	{ "nbd_server_add", "[-w] device [name]",
	  "export a block device via NBD", cmd_nbd },
	{ "nbd_server_remove", "[-f] name",
	  "remove an export previously exposed via NBD", cmd_nbd },
	{ "nbd_server_start", "[-a] [-w] host:port",
	  "serve block devices on the given host and port", cmd_nbd },
	{ "nbd_server_stop", "", "stop serving block devices using the NBD protocol",
	  cmd_nbd },
	{ "quit", "", "quit the emulator", cmd_quit },
	{ "q", "", "quit the emulator", cmd_quit },
	{ "screendump", "filename [-f format]", "save screen from head 'head' of display device",
	  cmd_screendump },
	{ "sendkey", "keys [hold_ms]",
	  "send keys to the VM (e.g. 'sendkey ctrl-alt-f1', default hold time=100 ms)",
	  hmp_sendkey },
	{ "set_password", "protocol password [action-if-connected]",
	  "set spice/vnc password", cmd_set_password },
	{ "set_link", "name on|off", "change the link status of a network adapter", cmd_set_link },
	{ "stop", "", "stop emulation", cmd_stop },
	{ "s", "", "stop emulation", cmd_stop },
	{ "system_powerdown", "", "send system power down event", cmd_system_powerdown },
	{ "system_reset", "", "reset the system", cmd_system_reset },
	{ "x", "/fmt addr", "virtual memory dump starting at 'addr'", cmd_unavailable },
	{ "xp", "/fmt addr", "physical memory dump starting at 'addr'", cmd_xp },
};

static int cmd_help(const struct control *ctl, int argc, char **argv, FILE *out)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct hmp_cmd *c = &commands[i];
		if (argc > 1 && strcmp(argv[1], c->name) != 0)
			continue;
		hprintf(out, "%s %s -- %s\n", c->name, c->args, c->help);
	}
	if (argc > 1 && strcmp(argv[1], "info") == 0)
		info_help(out);
	return 0;
}

int hmp_run_line(const struct control *ctl, const char *line, FILE *out)
{
	char copy[1024];
	char *argv[HMP_MAX_ARGS + 1];
	int argc = 0;

	snprintf(copy, sizeof(copy), "%s", line);
	for (char *tok = strtok(copy, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (argc == HMP_MAX_ARGS)
			return herror(out, "too many arguments");
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (argc == 0)
		return 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			return commands[i].run(ctl, argc, argv, out);
	hprintf(out, "unknown command: '%s'\n", argv[0]);
	return -1;
}
