/*
 * A control table (ui/control.h) over a pretend machine, for the monitor
 * fuzz targets: every callback is present, answers deterministically, and
 * some actions fail so that error paths are reached too.
 */
#ifndef KESTREL_TESTS_FUZZ_CONTROL_H
#define KESTREL_TESTS_FUZZ_CONTROL_H

#include <stdio.h>
#include <string.h>

#include "ui/control.h"

struct fuzz_machine {
	enum run_state state;
	unsigned resets;
	bool quit;
	uint8_t ram[4096];	/* guest-physical 0x1000..0x1fff */
};

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
	return (struct control){
		.opaque = m, .name = fm_name, .uuid = fm_uuid, .run_state = fm_run_state,
		.cpu_count = fm_cpu_count, .cpu_info = fm_cpu_info, .chardevs = fm_chardevs,
		.dump_registers = fm_dump_registers, .describe = fm_describe,
		.read_memory = fm_read_memory, .stop = fm_stop, .cont = fm_cont,
		.system_reset = fm_system_reset, .system_powerdown = fm_system_powerdown,
		.quit = fm_quit,
	};
}

#endif
