/* ui/hmp.c: human monitor commands against a fake machine, QEMU's output text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/hmp.h"

struct fake_vm {
	enum run_state state;
	int stops, conts, resets, powerdowns, quits;
	uint8_t ram[256];
	struct drive_info drives[2];
	unsigned nr_drives;
	struct net_info nets[8];
	unsigned nr_nets;
	char throttle_device[32];	/* the last set_io_throttle */
	struct throttle_config throttle;
};

static const char *f_name(void *o) { return "myos"; }
static bool f_uuid(void *o, uint8_t out[16]) { memset(out, 0xab, 16); return true; }
static enum run_state f_state(void *o) { return ((struct fake_vm *)o)->state; }
static unsigned f_cpus(void *o) { return 2; }

static bool f_cpu_info(void *o, unsigned i, struct cpu_info *out)
{
	*out = (struct cpu_info){ .cpu_index = i, .thread_id = 1000 + (long)i };
	return i < 2;
}

static unsigned f_chardevs(void *o, struct chardev_info *out, unsigned max)
{
	out[0] = (struct chardev_info){ "serial0", "stdio", true };
	return 1;
}

static bool f_regs(void *o, unsigned i, FILE *out)
{
	fprintf(out, "RAX=%016x\nRIP=%016x\n", i, 0x100000 + i);
	return true;
}

static bool usb_present;	/* info usb: whether the fake machine has a UHCI */

static bool f_describe(void *o, const char *topic, FILE *out)
{
	if (!strcmp(topic, "usb")) {
		if (usb_present)
			fprintf(out, "  Device 0.0, Port 1, Speed 12 Mb/s, Product QEMU USB Tablet\n");
		return usb_present;
	}
	fprintf(out, "%s tree\n", topic);
	return true;
}

static int f_read(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct fake_vm *vm = o;

	if (gpa + len > sizeof(vm->ram))
		return -1;
	memcpy(buf, vm->ram + gpa, len);
	return 0;
}

static int f_stop(void *o, char *e, size_t n) { ((struct fake_vm *)o)->stops++; return 0; }
static int f_cont(void *o, char *e, size_t n)
{
	snprintf(e, n, "Resetting the Virtual Machine is required");
	return ((struct fake_vm *)o)->conts++ ? -1 : 0;
}
static int f_reset(void *o, char *e, size_t n) { ((struct fake_vm *)o)->resets++; return 0; }
static int f_pd(void *o, char *e, size_t n) { ((struct fake_vm *)o)->powerdowns++; return 0; }
static void f_quit(void *o) { ((struct fake_vm *)o)->quits++; }

/* The pc chipset as SeaBIOS leaves it: host bridge, PIIX3 ISA bridge, IDE and UHCI functions. */
static unsigned f_pci(void *o, struct pci_info *out, unsigned max)
{
	if (max < 4)
		return 4;
	out[0] = (struct pci_info){ .slot = 0, .vendor = 0x8086, .device = 0x1237,
				    .subsys_vendor = 0x1af4, .subsys = 0x1100,
				    .class_code = 0x060000 };
	out[1] = (struct pci_info){ .slot = 1, .vendor = 0x8086, .device = 0x7000,
				    .subsys_vendor = 0x1af4, .subsys = 0x1100,
				    .class_code = 0x060100 };
	out[2] = (struct pci_info){ .slot = 1, .function = 1, .vendor = 0x8086, .device = 0x7010,
				    .subsys_vendor = 0x1af4, .subsys = 0x1100,
				    .class_code = 0x010180 };
	out[2].bars[4].addr = 0xc040;
	out[2].bars[4].size = 16;
	out[2].bars[4].io = true;
	/* -usb: the UHCI, function 2 (QEMU names class 0x0c03 "USB controller"). */
	out[3] = (struct pci_info){ .slot = 1, .function = 2, .vendor = 0x8086, .device = 0x7020,
				    .subsys_vendor = 0x1af4, .subsys = 0x1100,
				    .class_code = 0x0c0300, .irq = 11, .pin = 4 };
	out[3].bars[4].addr = 0xc000;
	out[3].bars[4].size = 32;
	out[3].bars[4].io = true;
	return 4;
}

static unsigned f_blocks(void *o, struct drive_info *out, unsigned max)
{
	struct fake_vm *v = o;

	for (unsigned i = 0; i < v->nr_drives && i < max; i++)
		out[i] = v->drives[i];
	return v->nr_drives;
}

static unsigned f_nets(void *o, struct net_info *out, unsigned max)
{
	struct fake_vm *v = o;

	for (unsigned i = 0; i < v->nr_nets && i < max; i++)
		out[i] = v->nets[i];
	return v->nr_nets;
}

static const char usernet_head[] =
	"  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n";

static char *f_usernet(void *o, const char *name)
{
	char *text = NULL;

	if (strcmp(name, "u2") == 0)
		return strdup(usernet_head);
	if (asprintf(&text, "%s  TCP[HOST_FORWARD]  11       127.0.0.1  5556       10.0.2.15    80"
		     "     0     0\n", usernet_head) < 0)
		return NULL;
	return text;
}

/* Records the limits, refusing an unknown drive as QEMU's qmp_get_blk. */
static int f_throttle(void *o, const char *device, const char *group,
		      const struct throttle_config *c, char *err, size_t errlen)
{
	struct fake_vm *v = o;

	if (strcmp(device, "virtio0")) {
		snprintf(err, errlen, "Device '%s' not found", device);
		return -1;
	}
	snprintf(v->throttle_device, sizeof(v->throttle_device), "%s", device);
	v->throttle = *c;
	return 0;
}

/* HMP gdbserver: the device asked for; "tcp::1" fails as a port in use would. */
static char gdb_dev[64];
static int f_gdbserver(void *o, const char *dev, char *msg, size_t msglen)
{
	(void)o;
	snprintf(gdb_dev, sizeof(gdb_dev), "%s", dev ? dev : "(default)");
	if (dev && strcmp(dev, "tcp::1") == 0) {
		snprintf(msg, msglen, "Could not open gdbserver on device '%s'", dev);
		return -1;
	}
	snprintf(msg, msglen, "Waiting for gdb connection on device '%s'", dev ? dev : "tcp::1234");
	return 0;
}

static struct fake_vm vm;
static const struct control ctl = {
	.set_io_throttle = f_throttle, .gdbserver = f_gdbserver,
	.blocks = f_blocks, .net_clients = f_nets, .usernet = f_usernet,
	.opaque = &vm, .name = f_name, .uuid = f_uuid, .run_state = f_state,
	.cpu_count = f_cpus, .cpu_info = f_cpu_info, .chardevs = f_chardevs,
	.dump_registers = f_regs, .describe = f_describe, .read_memory = f_read,
	.stop = f_stop, .cont = f_cont, .system_reset = f_reset,
	.system_powerdown = f_pd, .quit = f_quit, .pci_devices = f_pci,
};

/* Runs a line; returns its output (static buffer) and the status through rc. */
static const char *run(const char *line, int *rc)
{
	static char text[4096];
	FILE *out;

	memset(text, 0, sizeof(text));
	out = fmemopen(text, sizeof(text), "w");

	assert_non_null(out);
	*rc = hmp_run_line(&ctl, line, out);
	fclose(out);
	return text;
}

static void test_info_status_layout(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("info status", &rc), "VM status: running\r\n");
	vm.state = RUN_STATE_PAUSED;
	assert_string_equal(run("info status", &rc), "VM status: paused\r\n");
	vm.state = RUN_STATE_SHUTDOWN;
	assert_string_equal(run("info status", &rc), "VM status: paused (shutdown)\r\n");
	/* gdb holds the VM (QEMU's RUN_STATE_DEBUG); QMP query-status shows the same name. */
	vm.state = RUN_STATE_DEBUG;
	assert_string_equal(run("info status", &rc), "VM status: paused (debug)\r\n");
	assert_string_equal(run_state_name(RUN_STATE_DEBUG), "debug");
	assert_int_equal(rc, 0);
}

static void test_info_commands(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("info name", &rc), "myos\r\n");
	assert_string_equal(run("info uuid", &rc), "abababab-abab-abab-abab-abababababab\r\n");
	assert_string_equal(run("info kvm", &rc), "kvm support: enabled\r\n");
	assert_string_equal(run("info cpus", &rc),
			    "* CPU #0: thread_id=1000\r\n  CPU #1: thread_id=1001\r\n");
	assert_string_equal(run("info chardev", &rc), "serial0: filename=stdio\r\n");
	assert_string_equal(run("info registers", &rc), "RAX=0000000000000000\r\nRIP=0000000000100000\r\n");
	assert_non_null(strstr(run("info registers -a", &rc), "RIP=0000000000100001"));
	assert_string_equal(run("info mtree", &rc), "mtree tree\r\n");
	assert_string_equal(run("info balloon", &rc),
			    "Error: No balloon device has been activated\r\n");
	assert_string_equal(run("info block", &rc), "");
	assert_string_equal(run("info version", &rc), "7.2.0 (kestrel-" KESTREL_TEST_VERSION ")\r\n");
	assert_non_null(strstr(run("info", &rc), "info status"));
}

/* hmp_info_usb: the device lines, or QEMU's error when the machine has no USB. */
static void test_info_usb(void **state)
{
	int rc;

	usb_present = false;
	assert_string_equal(run("info usb", &rc), "Error: USB support not enabled\r\n");
	usb_present = true;
	assert_string_equal(run("info usb", &rc),
			    "  Device 0.0, Port 1, Speed 12 Mb/s, Product QEMU USB Tablet\r\n");
	assert_non_null(strstr(run("info", &rc), "info usb"));
}

/* Every function of a multifunction slot gets its own block, as QEMU 7.2 prints them. */
/* What Kestrel cannot do is refused with its reason, never a silent success (issue #26). */
static void test_refused_commands_say_why(void **state)
{
	static const char *const refused[][2] = {
		{ "change ide1-cd0 /tmp/x.iso", "removable media" },
		{ "change vnc password x", "Could not set password" },
		{ "set_password vnc x", "Could not set password" },
		{ "device_add virtio-rng-pci", "hotpluggable" },
		{ "drive_add 0 file=/tmp/x", "disk controllers" },
		{ "hostfwd_add tcp::2222-:22", "user-mode network" },
		{ "hostfwd_remove tcp::2222", "user-mode network" },
		{ "screendump /tmp/x.ppm", "no console" },
		{ "x /4x 0", "use xp" },
	};
	int rc;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *out = run(refused[i][0], &rc);
		assert_int_not_equal(rc, 0);
		if (!strstr(out, refused[i][1]))
			fail_msg("'%s' answered '%s'", refused[i][0], out);
	}
	assert_true(strlen(run("info migrate", &rc)) > 0);
	assert_int_equal(rc, 0);
	assert_string_equal(run("info qtree", &rc), "qtree tree\r\n");
}

static void test_info_pci_lists_every_function(void **state)
{
	int rc;
	(void)state;

	assert_string_equal(run("info pci", &rc),
		"  Bus  0, device   0, function 0:\r\n"
		"    Host bridge: PCI device 8086:1237\r\n"
		"      PCI subsystem 1af4:1100\r\n"
		"      id \"\"\r\n"
		"  Bus  0, device   1, function 0:\r\n"
		"    ISA bridge: PCI device 8086:7000\r\n"
		"      PCI subsystem 1af4:1100\r\n"
		"      id \"\"\r\n"
		"  Bus  0, device   1, function 1:\r\n"
		"    IDE controller: PCI device 8086:7010\r\n"
		"      PCI subsystem 1af4:1100\r\n"
		"      BAR4: I/O at 0xc040 [0xc04f].\r\n"
		"      id \"\"\r\n"
		"  Bus  0, device   1, function 2:\r\n"
		"    USB controller: PCI device 8086:7020\r\n"
		"      PCI subsystem 1af4:1100\r\n"
		"      IRQ 11, pin D\r\n"
		"      BAR4: I/O at 0xc000 [0xc01f].\r\n"
		"      id \"\"\r\n");
	assert_int_equal(rc, 0);
}

static void set_net(unsigned i, const char *name, const char *type, const char *info, int peer,
		    int hub)
{
	struct net_info *n = &vm.nets[i];

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->type = type;
	snprintf(n->info, sizeof(n->info), "%s", info);
	n->peer = peer;
	n->hub = hub;
}

/*
 * QEMU 7.2's "info network" for -net nic,model=e1000 -net user,hostfwd=...
 * -netdev user,id=u2 -device e1000,netdev=u2,mac=52:54:00:aa:bb:cc,id=nic2,
 * byte for byte (hubs and their ports newest first, then NICs with back ends).
 */
static void test_info_network(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("info network", &rc), "");
	set_net(0, "u2", "user", "net=10.0.2.0,restrict=off", 3, -1);
	set_net(1, "#net146", "user", "net=10.0.2.0,restrict=off", 5, -1);
	set_net(2, "e1000.0", "nic", "model=e1000,macaddr=52:54:00:12:34:56", 4, -1);
	set_net(3, "nic2", "nic", "model=e1000,macaddr=52:54:00:aa:bb:cc", 0, -1);
	set_net(4, "hub0port0", "hubport", "", 2, 0);
	set_net(5, "hub0port1", "hubport", "", 1, 0);
	vm.nr_nets = 6;
	assert_string_equal(run("info network", &rc),
		"hub 0\r\n"
		" \\ hub0port1: #net146: index=0,type=user,net=10.0.2.0,restrict=off\r\n"
		" \\ hub0port0: e1000.0: index=0,type=nic,model=e1000,macaddr=52:54:00:12:34:56\r\n"
		"nic2: index=0,type=nic,model=e1000,macaddr=52:54:00:aa:bb:cc\r\n"
		" \\ u2: index=0,type=user,net=10.0.2.0,restrict=off\r\n");
	assert_int_equal(rc, 0);

	/* A back end nobody uses stands alone; a NIC without one too. */
	set_net(0, "u2", "user", "net=10.0.2.0,restrict=off", -1, -1);
	set_net(1, "virtio-net-pci.0", "nic", "model=virtio-net-pci,macaddr=52:54:00:12:34:56",
		-1, -1);
	vm.nr_nets = 2;
	assert_string_equal(run("info network", &rc),
		"u2: index=0,type=user,net=10.0.2.0,restrict=off\r\n"
		"virtio-net-pci.0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56\r\n");
}

/* hmp_info_usernet: each stack with its hub (-1: none) and libslirp's table. */
static void test_info_usernet(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("info usernet", &rc), "");
	set_net(0, "u2", "user", "net=10.0.2.0,restrict=off", 2, -1);
	set_net(1, "#net146", "user", "net=10.0.2.0,restrict=off", 3, -1);
	set_net(2, "nic2", "nic", "model=e1000,macaddr=52:54:00:aa:bb:cc", 0, -1);
	set_net(3, "hub0port1", "hubport", "", 1, 0);
	vm.nr_nets = 4;
	assert_string_equal(run("info usernet", &rc),
		"Hub -1 (u2):\r\n"
		"  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
		"Hub 0 (#net146):\r\n"
		"  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
		"  TCP[HOST_FORWARD]  11       127.0.0.1  5556       10.0.2.15    80     0     0\r\n");
}

/* hmp_info_blockstats: the counters the devices keep, one line per drive. */
static void test_info_blockstats(void **state)
{
	struct block_stats *s;
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("info blockstats", &rc), "");
	vm.drives[0].device = "virtio0";
	vm.drives[1].device = "ide0-hd0";
	vm.nr_drives = 2;
	assert_string_equal(run("info blockstats", &rc),
		"virtio0: rd_bytes=0 wr_bytes=0 rd_operations=0 wr_operations=0 flush_operations=0 "
		"wr_total_time_ns=0 rd_total_time_ns=0 flush_total_time_ns=0 rd_merged=0 "
		"wr_merged=0 idle_time_ns=0\r\n"
		"ide0-hd0: rd_bytes=0 wr_bytes=0 rd_operations=0 wr_operations=0 flush_operations=0 "
		"wr_total_time_ns=0 rd_total_time_ns=0 flush_total_time_ns=0 rd_merged=0 "
		"wr_merged=0 idle_time_ns=0\r\n");
	s = &vm.drives[1].stats;
	s->bytes[BLOCK_ACCT_READ] = 1536;
	s->ops[BLOCK_ACCT_READ] = 3;
	s->bytes[BLOCK_ACCT_WRITE] = 4096;
	s->ops[BLOCK_ACCT_WRITE] = 1;
	s->ops[BLOCK_ACCT_FLUSH] = 2;
	s->total_time_ns[BLOCK_ACCT_READ] = 700;
	s->total_time_ns[BLOCK_ACCT_WRITE] = 900;
	s->total_time_ns[BLOCK_ACCT_FLUSH] = 50;
	s->last_access_ns = 1000;
	vm.drives[1].now_ns = 251000;
	assert_non_null(strstr(run("info blockstats", &rc),
		"ide0-hd0: rd_bytes=1536 wr_bytes=4096 rd_operations=3 wr_operations=1 "
		"flush_operations=2 wr_total_time_ns=900 rd_total_time_ns=700 "
		"flush_total_time_ns=50 rd_merged=0 wr_merged=0 idle_time_ns=250000\r\n"));
}

/* hmp_block_set_io_throttle: the six rates by position; bursts reset; info block shows them. */
static void test_block_set_io_throttle(void **state)
{
	const struct leaky_bucket *k = vm.throttle.b;
	int rc;

	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("block_set_io_throttle virtio0 1048576 0 0 0x10 0 0", &rc), "");
	assert_int_equal(rc, 0);
	assert_string_equal(vm.throttle_device, "virtio0");
	assert_int_equal(k[THROTTLE_BPS_TOTAL].avg, 1048576);
	assert_int_equal(k[THROTTLE_OPS_TOTAL].avg, 16);
	assert_int_equal(k[THROTTLE_BPS_READ].avg + k[THROTTLE_OPS_WRITE].avg, 0);
	for (int i = 0; i < THROTTLE_BUCKETS; i++) {
		assert_int_equal(k[i].max, 0);
		assert_int_equal(k[i].burst_length, 1);
	}
	assert_int_equal(vm.throttle.op_size, 0);
	run("block_set_io_throttle virtio0 0 1 2 3 4 5", &rc);
	assert_int_equal(k[THROTTLE_BPS_READ].avg, 1);
	assert_int_equal(k[THROTTLE_OPS_WRITE].avg, 5);
	assert_string_equal(run("block_set_io_throttle nope 1 0 0 0 0 0", &rc),
			    "Error: Device 'nope' not found\r\n");
	assert_int_equal(rc, -1);
	assert_non_null(strstr(run("block_set_io_throttle virtio0 1 2", &rc),
			       "Parameter 'iops_wr' is missing"));
	assert_non_null(strstr(run("block_set_io_throttle virtio0 1 0 0 x 0 0", &rc),
			       "invalid char 'x' in expression"));
	assert_non_null(strstr(run("help block_set_io_throttle", &rc),
			       "device bps bps_rd bps_wr iops iops_rd iops_wr"));
	/* info block: QEMU's I/O throttling line, only for a throttled drive. */
	vm.drives[0] = (struct drive_info){ .device = "virtio0", .node_name = "#block001",
					    .file = "d.img", .format = "raw", .qdev = "q",
					    .throttled = true, .group = "g1" };
	vm.drives[0].limits.b[THROTTLE_BPS_READ].avg = 1000;
	vm.drives[0].limits.b[THROTTLE_OPS_TOTAL].avg = 50;
	vm.drives[0].limits.b[THROTTLE_OPS_TOTAL].max = 80;
	vm.drives[0].limits.op_size = 4096;
	vm.nr_drives = 1;
	assert_non_null(strstr(run("info block", &rc),
		"    Cache mode:       writeback\r\n"
		"    I/O throttling:   bps=0 bps_rd=1000 bps_wr=0 bps_max=0 bps_rd_max=0 "
		"bps_wr_max=0 iops=50 iops_rd=0 iops_wr=0 iops_max=80 iops_rd_max=0 iops_wr_max=0 "
		"iops_size=4096 group=g1\r\n"));
	vm.drives[0].throttled = false;
	assert_null(strstr(run("info block", &rc), "I/O throttling"));
}

static void test_actions_reach_the_machine(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	run("stop", &rc);
	run("s", &rc);
	run("cont", &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(run("c", &rc), "Error: Resetting the Virtual Machine is required\r\n");
	assert_int_equal(rc, -1);
	run("system_reset", &rc);
	run("system_powerdown", &rc);
	run("q", &rc);
	assert_int_equal(vm.stops, 2);
	assert_int_equal(vm.conts, 2);
	assert_int_equal(vm.resets, 1);
	assert_int_equal(vm.powerdowns, 1);
	assert_int_equal(vm.quits, 1);
}

static void test_xp_memory_dump(void **state)
{
	int rc;

	memset(&vm, 0, sizeof(vm));
	for (int i = 0; i < 16; i++)
		vm.ram[0x10 + i] = (uint8_t)(0x10 + i);
	assert_string_equal(run("xp /2x 0x10", &rc),
			    "0000000000000010: 0x13121110 0x17161514\r\n");
	assert_string_equal(run("xp /3xb 0x10", &rc),
			    "0000000000000010: 0x10 0x11 0x12\r\n");
	assert_string_equal(run("xp /1xg 0x10", &rc),
			    "0000000000000010: 0x1716151413121110\r\n");
	assert_string_equal(run("xp /1dw 0x10", &rc), "0000000000000010: 319951120\r\n");
	assert_non_null(strstr(run("xp /4x 0x1000", &rc), "cannot access memory"));
	assert_int_equal(rc, -1);
	assert_non_null(strstr(run("xp /4q 0x10", &rc), "invalid format"));
}

static void test_errors_and_unknown(void **state)
{
	int rc;

	assert_string_equal(run("frobnicate now", &rc), "unknown command: 'frobnicate'\r\n");
	assert_int_equal(rc, -1);
	memset(&vm, 0, sizeof(vm));
	assert_string_equal(run("set_link nic0 off", &rc), "Error: Device 'nic0' not found\r\n");
	assert_string_equal(run("device_del d1", &rc), "Error: Device 'd1' not found\r\n");
	/* A NIC the machine has is refused by name, not "not found" (issue #26). */
	set_net(0, "u2", "user", "net=10.0.2.0,restrict=off", 1, -1);
	set_net(1, "nic0", "nic", "model=e1000,macaddr=52:54:00:12:34:56", 0, -1);
	vm.nr_nets = 2;
	assert_string_equal(run("set_link nic0 off", &rc), "Error: set_link nic0: changing the link "
			    "state is not supported (the link stays up)\r\n");
	assert_int_not_equal(rc, 0);
	assert_string_equal(run("set_link nic1 off", &rc), "Error: Device 'nic1' not found\r\n");
	assert_string_equal(run("device_del nic0", &rc), "Error: Device 'nic0' cannot be removed: "
			    "hot-unplug is not supported\r\n");
	assert_string_equal(run("device_del u2", &rc), "Error: Device 'u2' not found\r\n");
	/* QEMU's argument error for an expression, then the help hint. */
	assert_string_equal(run("balloon lots", &rc),
			    "invalid char 'l' in expression\r\nTry \"help balloon\" for more information\r\n");
	assert_int_equal(rc, -1);
	/* gdbserver [DEV]: the device reaches the machine; QEMU's messages, no "Error:". */
	assert_string_equal(run("gdbserver", &rc),
			    "Waiting for gdb connection on device 'tcp::1234'\r\n");
	assert_int_equal(rc, 0);
	assert_string_equal(gdb_dev, "(default)");
	assert_string_equal(run("gdbserver unix:/tmp/g.sock,server", &rc),
			    "Waiting for gdb connection on device 'unix:/tmp/g.sock,server'\r\n");
	assert_string_equal(gdb_dev, "unix:/tmp/g.sock,server");
	assert_string_equal(run("gdbserver tcp::1", &rc),
			    "Could not open gdbserver on device 'tcp::1'\r\n");
	assert_int_not_equal(rc, 0);
	assert_string_equal(run("   ", &rc), "");
	assert_int_equal(rc, 0);
	assert_non_null(strstr(run("a b c d e f g h i j", &rc), "too many arguments"));
	assert_non_null(strstr(run("help stop", &rc), "stop emulation"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_status_layout),
		cmocka_unit_test(test_info_commands),
		cmocka_unit_test(test_info_usb),
		cmocka_unit_test(test_refused_commands_say_why),
		cmocka_unit_test(test_info_pci_lists_every_function),
		cmocka_unit_test(test_info_network),
		cmocka_unit_test(test_info_usernet),
		cmocka_unit_test(test_info_blockstats),
		cmocka_unit_test(test_block_set_io_throttle),
		cmocka_unit_test(test_actions_reach_the_machine),
		cmocka_unit_test(test_xp_memory_dump),
		cmocka_unit_test(test_errors_and_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
