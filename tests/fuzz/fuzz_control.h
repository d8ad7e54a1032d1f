/*
 * A control table (ui/control.h) over a pretend machine, for the monitor
 * fuzz targets: every callback is present, answers deterministically, and
 * some actions fail so that error paths are reached too.
 */
#ifndef KESTREL_TESTS_FUZZ_CONTROL_H
#define KESTREL_TESTS_FUZZ_CONTROL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/control.h"

struct fuzz_machine {
	enum run_state state;
	unsigned resets;
	bool quit;
	uint8_t ram[4096];	/* guest-physical 0x1000..0x1fff */
	uint64_t balloon_actual;	/* bytes */
	uint64_t stats_interval;
};

#define FM_RAM (128ull << 20)

static const char *fm_name(void *opaque) { return "fuzz\"vm\\\x01\xc3\xa9"; }

static bool fm_uuid(void *opaque, uint8_t out[16])
{
	for (int i = 0; i < 16; i++)
		out[i] = (uint8_t)(i * 17);
	return true;
}

static enum run_state fm_run_state(void *opaque)
{
	return ((struct fuzz_machine *)opaque)->state;
}

static unsigned fm_cpu_count(void *opaque) { return 2; }

static bool fm_cpu_info(void *opaque, unsigned index, struct cpu_info *out)
{
	if (index >= 2)
		return false;
	*out = (struct cpu_info){ .cpu_index = index, .thread_id = 1000 + index,
				  .socket_id = index };
	return true;
}

static unsigned fm_chardevs(void *opaque, struct chardev_info *out, unsigned max)
{
	static const struct chardev_info all[] = {
		{ "serial0", "stdio", true },
		{ "compat_monitor0", "unix:/tmp/q,server=on", false },
	};
	unsigned n = max < 2 ? max : 2;

	memcpy(out, all, n * sizeof(all[0]));
	return 2;
}

static bool fm_dump_registers(void *opaque, unsigned index, FILE *out)
{
	if (index >= 2)
		return false;
	fprintf(out, "RAX=0000000000000000 RBX=%016x\nRIP=00000000001000c0\n", index);
	return true;
}

static bool fm_describe(void *opaque, const char *topic, FILE *out)
{
	if (strcmp(topic, "mtree") != 0)
		return false;
	fprintf(out, "address-space: I/O\n  00000000000003f8-00000000000003ff (prio 0, i/o): serial\n");
	return true;
}

static int fm_read_memory(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct fuzz_machine *m = opaque;

	if (gpa < 0x1000 || gpa - 0x1000 > sizeof(m->ram) || len > sizeof(m->ram) - (gpa - 0x1000))
		return -1;
	memcpy(buf, m->ram + (gpa - 0x1000), len);
	return 0;
}

/*
 * A VM with something in it, so the monitors' formatters have values to
 * print: a qcow2 virtio disk with statistics, a read-only IDE CD-ROM with
 * an odd file name, a floppy that was never read (no statistics, size 0).
 * file and format are never NULL: empty drives are refused at start-up.
 */
static unsigned fm_blocks(void *opaque, struct drive_info *out, unsigned max)
{
	static const struct drive_info all[] = {
		{ .device = "virtio0", .node_name = "#block001",
		  .qdev = "/machine/peripheral-anon/device[0]/virtio-backend",
		  .file = "/tmp/disk.qcow2", .format = "qcow2", .virtual_size = 1ull << 30,
		  .stats = { .bytes = { 4096, 1ull << 40 }, .ops = { 1, 3, 2 },
			     .failed_ops = { 0, 1 }, .total_time_ns = { 1000, 999999999999 },
			     .wr_highest_offset = 1ull << 30, .last_access_ns = 4000000000ull },
		  .now_ns = 5000000000ull },
		{ .device = "ide1-cd0", .node_name = "#block002", .qdev = "/machine/unattached/device[23]",
		  .file = "/tmp/with \"quotes\"\n.iso", .format = "raw", .readonly = true,
		  .cache_direct = true, .cache_no_flush = true, .virtual_size = 3ull << 20 },
		{ .device = "floppy0", .qdev = "/machine/unattached/device[18]", .file = "",
		  .format = "raw" },
	};
	unsigned n = max < 3 ? max : 3;

	memcpy(out, all, n * sizeof(all[0]));
	return 3;
}

static unsigned fm_pci_devices(void *opaque, struct pci_info *out, unsigned max)
{
	static const struct pci_info all[] = {
		{ .slot = 0, .vendor = 0x8086, .device = 0x1237, .class_code = 0x060000 },
		{ .slot = 1, .function = 1, .vendor = 0x8086, .device = 0x7010,
		  .class_code = 0x010180, .bars = { [4] = { 0xc000, 16, true, false } } },
		{ .slot = 3, .vendor = 0x1af4, .device = 0x1000, .subsys_vendor = 0x1af4,
		  .subsys = 1, .class_code = 0x020000, .irq = 11, .pin = 1,
		  .bars = { { 0xc040, 32, true, false }, { 0xfebf1000, 4096, false, false },
			    [4] = { 0xfe000000, 16384, false, true } } },
		{ .slot = 31, .function = 7, .vendor = 0xffff, .device = 0xffff,
		  .class_code = 0xff0000, .irq = 255, .pin = 4 },
	};
	unsigned n = max < 4 ? max : 4;

	memcpy(out, all, n * sizeof(all[0]));
	return 4;
}

static unsigned fm_net_clients(void *opaque, struct net_info *out, unsigned max)
{
	struct net_info all[3] = {
		{ .name = "n0", .type = "user", .info = "net=10.0.2.0,restrict=off", .peer = 1,
		  .hub = -1 },
		{ .name = "net0", .type = "nic",
		  .info = "model=virtio-net-pci,macaddr=52:54:00:12:34:56", .peer = 0, .hub = -1,
		  .rx_filter = true, .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .allmulti = true,
		  .uni_entries = 1, .multi_entries = 1,
		  .mac_table = { { 2, 0, 0, 0, 0, 1 }, { 1, 0, 0x5e, 0, 0, 1 } } },
		{ .name = "hub0port0", .type = "hubport", .info = "", .peer = 7, .hub = 0 },
	};
	unsigned n = max < 3 ? max : 3;

	memcpy(out, all, n * sizeof(all[0]));
	return 3;
}

static char *fm_usernet(void *opaque, const char *name)
{
	if (strcmp(name, "n0") != 0)
		return NULL;
	return strdup("  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n"
		      "  TCP[HOST_FORWARD]  12       127.0.0.1  2222       10.0.2.15    22     0     0\n");
}

static int fm_balloon(void *opaque, uint64_t target, char *err, size_t errlen)
{
	struct fuzz_machine *m = opaque;

	if (target > FM_RAM) {
		snprintf(err, errlen, "Parameter 'value' expects a size at most the RAM size");
		return -1;
	}
	m->balloon_actual = target;
	return 0;
}

static int fm_query_balloon(void *opaque, uint64_t *actual, char *err, size_t errlen)
{
	*actual = ((struct fuzz_machine *)opaque)->balloon_actual;
	return 0;
}

static bool fm_balloon_stats(void *opaque, const char *path, struct balloon_stats_info *out)
{
	struct fuzz_machine *m = opaque;

	if (strcmp(path, "/machine/peripheral/balloon0") != 0)
		return false;
	for (unsigned i = 0; i < CONTROL_BALLOON_STATS; i++)
		out->stats[i] = i % 3 ? i * 4096 : UINT64_MAX;
	out->last_update = m->stats_interval ? 1700000000 : 0;
	out->polling_interval = m->stats_interval;
	return true;
}

static bool fm_balloon_set_interval(void *opaque, const char *path, uint64_t seconds)
{
	struct fuzz_machine *m = opaque;

	if (strcmp(path, "/machine/peripheral/balloon0") != 0)
		return false;
	m->stats_interval = seconds;
	return true;
}

static int fm_stop(void *opaque, char *err, size_t errlen)
{
	((struct fuzz_machine *)opaque)->state = RUN_STATE_PAUSED;
	return 0;
}

static int fm_cont(void *opaque, char *err, size_t errlen)
{
	struct fuzz_machine *m = opaque;

	if (m->state == RUN_STATE_SHUTDOWN) {
		snprintf(err, errlen, "Resetting the Virtual Machine is required");
		return -1;
	}
	m->state = RUN_STATE_RUNNING;
	return 0;
}

static int fm_system_reset(void *opaque, char *err, size_t errlen)
{
	((struct fuzz_machine *)opaque)->resets++;
	return 0;
}

static int fm_system_powerdown(void *opaque, char *err, size_t errlen)
{
	struct fuzz_machine *m = opaque;

	m->state = RUN_STATE_SHUTDOWN;
	return -1;	/* err left empty: the monitor must supply its own words */
}

static void fm_quit(void *opaque) { ((struct fuzz_machine *)opaque)->quit = true; }

static struct control fuzz_control(struct fuzz_machine *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(m->ram); i++)
		m->ram[i] = (uint8_t)i;
	m->balloon_actual = FM_RAM;
	return (struct control){
		.opaque = m, .name = fm_name, .uuid = fm_uuid, .run_state = fm_run_state,
		.cpu_count = fm_cpu_count, .cpu_info = fm_cpu_info, .chardevs = fm_chardevs,
		.dump_registers = fm_dump_registers, .describe = fm_describe,
		.read_memory = fm_read_memory, .stop = fm_stop, .cont = fm_cont,
		.system_reset = fm_system_reset, .system_powerdown = fm_system_powerdown,
		.quit = fm_quit, .blocks = fm_blocks, .pci_devices = fm_pci_devices,
		.net_clients = fm_net_clients, .usernet = fm_usernet, .balloon = fm_balloon,
		.query_balloon = fm_query_balloon, .balloon_stats = fm_balloon_stats,
		.balloon_set_interval = fm_balloon_set_interval,
	};
}

#endif
