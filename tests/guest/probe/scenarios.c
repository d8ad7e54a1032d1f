/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * probe_main(), argument parsing and the scenario table; the device
 * scenarios live with their drivers (pci.c, virtio.c, blk.c, rng.c,
 * console.c; README.md lists them all).  The kernel command line word
 * "probe=NAME[,key=val...]" picks one (default: hello).  Each scenario
 * returns true for PASS or reports its failure through fail().  Every path
 * ends in platform_poweroff(), so the VMM always sees the guest stop.
 */
#include "probe.h"

#define MIB		((uint64_t)1 << 20)
#define PAGE_SIZE	((uint64_t)4096)
#define MAPPED_LIMIT	((uint64_t)1 << 32)	/* entry.S maps 0..4 GiB */

struct scenario {
	const char *name;
	bool (*run)(const struct platform *p, const struct args *a);
};

extern char _end[];			/* probe.ld: end of the image */

void probe_main(const struct hvm_start_info *si);

bool fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pr("probe: FAIL: ");
	vpr(fmt, ap);
	serial_putc('\n');
	va_end(ap);
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

static bool starts_with(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

/* The last "probe=" word wins, as with repeated Linux parameters. */
static void args_parse(const char *cmdline, struct args *a)
{
	const char *w = cmdline, *spec = NULL;
	char *s;
	size_t n = 0;

	while (*w) {
		while (is_space(*w))
			w++;
		if (starts_with(w, "probe="))
			spec = w + 6;
		while (*w && !is_space(*w))
			w++;
	}
	while (spec && spec[n] && !is_space(spec[n]) && n < sizeof(a->buf) - 1) {
		a->buf[n] = spec[n];
		n++;
	}
	a->buf[n] = 0;

	/* NAME,key=val,key: split in place. */
	a->name = a->buf[0] && a->buf[0] != ',' ? a->buf : "hello";
	a->n = 0;
	for (s = a->buf; *s; s++) {
		if (*s != ',')
			continue;
		*s = 0;
		if (a->n == ARGS_MAX)
			break;
		a->key[a->n] = s + 1;
		a->val[a->n] = "";
		a->n++;
	}
	for (int i = 0; i < a->n; i++) {
		for (s = a->key[i]; *s; s++) {
			if (*s == '=') {
				*s = 0;
				a->val[i] = s + 1;
				break;
			}
		}
	}
}

const char *arg_get(const struct args *a, const char *key)
{
	for (int i = 0; i < a->n; i++)
		if (str_eq(a->key[i], key))
			return a->val[i];
	return NULL;
}

/* A decimal option; false if present but not a number. */
bool arg_u64(const struct args *a, const char *key, uint64_t *v)
{
	const char *s = arg_get(a, key);
	uint64_t n = 0;

	if (!s)
		return true;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > UINT64_MAX / 10 - 10)
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return true;
}

static bool scenario_hello(const struct platform *p, const struct args *a)
{
	say("hello from the kestrel guest probe");
	return true;
}

static bool scenario_smp(const struct platform *p, const struct args *a)
{
	char m[16], t[16];

	say("smp: madt %s mptable %s cpuid-apic-id %u",
	    count_str(p->madt_cpus, m), count_str(p->mp_cpus, t),
	    boot_cpuid[CPUID_FEATURES][1] >> 24);
	if (p->madt_cpus >= 0 && p->mp_cpus >= 0 && p->madt_cpus != p->mp_cpus)
		return fail("madt says %d cpus, mptable says %d", p->madt_cpus,
			    p->mp_cpus);
	return true;
}

/*
 * Echo by polling LSR.DR: the 8259 is masked (entry.S), so there is no
 * receive interrupt.  The ACPI power button ends the scenario like "quit",
 * so a monitor's system_powerdown shuts the guest down cleanly.  CR and LF both end a line; CR echoes as CR LF so a
 * terminal's Enter key gives a tidy screen.
 */
static bool scenario_echo(const struct platform *p, const struct args *a)
{
	char line[256];
	size_t n = 0;
	uint8_t c;

	platform_power_button_arm(p);
	say("echo: ready");
	for (;;) {
		if (platform_power_button_pressed(p)) {
			say("echo: power button pressed");
			return true;
		}
		if (!serial_poll(&c)) {
			cpu_relax();
			continue;
		}
		if (c != '\r' && c != '\n') {
			serial_putc((char)c);
			if (n < sizeof(line) - 1)
				line[n++] = (char)c;
			continue;
		}
		if (c == '\r')
			serial_putc('\r');
		serial_putc('\n');
		if (!n)
			continue;
		line[n] = 0;
		n = 0;
		say("echo: %s", line);
		if (str_eq(line, "quit"))
			return true;
	}
}

/*
 * A line every ms= milliseconds (default 5), count= of them (default 0: no
 * end but the power button), so a test can watch the guest's serial output
 * keep flowing while it loads the VMM from outside (issue #16: a monitor
 * client that never reads must not stop it).
 */
static bool scenario_tick(const struct platform *p, const struct args *a)
{
	uint64_t ms = 5, count = 0, hz = tsc_hz(), period;

	if (!arg_u64(a, "ms", &ms) || !arg_u64(a, "count", &count))
		return fail("tick: bad ms= or count=");
	/* Without a calibrated TSC, assume 1 GHz: only the rhythm is approximate. */
	period = (hz ? hz : 1000000000ull) / 1000 * ms;
	platform_power_button_arm(p);
	say("tick: ready");
	for (uint64_t n = 1; !count || n <= count; n++) {
		if (platform_power_button_pressed(p)) {
			say("tick: power button pressed");
			return true;
		}
		delay_tsc(period);
		say("tick %lu", n);
	}
	return true;
}

/*
 * TSC rate from the 8254 PIT (1.193182 MHz), as Linux's pit_calibrate_tsc:
 * gate channel 2 on through port 0x61 with the speaker off, load ~10 ms in
 * mode 0 and time OUT2 (0x61 bit 5) going high.  Returns 0 if it never
 * does.
 */
#define PIT_HZ		1193182u
#define PIT_CH0		0x40
#define PIT_CH2		0x42
#define PIT_CMD		0x43
#define PORT_B		0x61
#define PORT_B_GATE2	0x01
#define PORT_B_SPKR	0x02
#define PORT_B_OUT2	0x20
#define CAL_LATCH	(PIT_HZ / 100)		/* 10 ms */
#define CAL_GIVE_UP	((uint64_t)1 << 36)	/* TSC ticks: >10 s */

static uint64_t tsc_calibrate_ch2(void)
{
	uint64_t t0;

	outb(PORT_B, (inb(PORT_B) & ~PORT_B_SPKR) | PORT_B_GATE2);
	outb(PIT_CMD, 0xb0);		/* channel 2, lo/hi byte, mode 0 */
	outb(PIT_CH2, CAL_LATCH & 0xff);
	outb(PIT_CH2, CAL_LATCH >> 8);
	t0 = rdtsc();
	while (!(inb(PORT_B) & PORT_B_OUT2))
		if (rdtsc() - t0 > CAL_GIVE_UP)
			return 0;
	return (rdtsc() - t0) * PIT_HZ / CAL_LATCH;
}

/*
 * Without port 0x61 (QEMU microvm has none: it reads 0xff) channel 2's
 * gate stays low and it never counts.  Channel 0 is always gated: load
 * 0xffff in mode 0 and read it back with counter-latch commands.  Its
 * IRQ0 goes nowhere; the 8259 and the IOAPIC are masked.
 */
static uint64_t tsc_calibrate_ch0(void)
{
	uint64_t t0, t1;
	uint32_t done;

	outb(PIT_CMD, 0x30);		/* channel 0, lo/hi byte, mode 0 */
	outb(PIT_CH0, 0xff);
	outb(PIT_CH0, 0xff);
	t0 = rdtsc();
	do {
		outb(PIT_CMD, 0x00);	/* latch channel 0 */
		done = inb(PIT_CH0);
		done |= (uint32_t)inb(PIT_CH0) << 8;
		done = 0xffff - done;
		t1 = rdtsc();
		if (t1 - t0 > CAL_GIVE_UP)
			return 0;
	} while (done < CAL_LATCH);
	return (t1 - t0) * PIT_HZ / done;
}

static uint64_t tsc_calibrate(void)
{
	return inb(PORT_B) == 0xff ? tsc_calibrate_ch0() : tsc_calibrate_ch2();
}

/* Calibrated once (~10 ms), for the virtio drivers' timeouts. */
uint64_t tsc_hz(void)
{
	static uint64_t hz;
	static bool done;

	if (!done) {
		hz = tsc_calibrate();
		if (hz < 100000000ull)
			hz = 0;
		done = true;
	}
	return hz;
}

/* A 16 MiB-aligned range of one RAM entry, above the image, below 4 GiB. */
bool mem_find(const struct platform *p, uint64_t bytes, uint64_t *at)
{
	const uint64_t align = 16 * MIB;

	for (uint32_t i = 0; i < p->memmap_entries; i++) {
		const struct hvm_memmap_entry *e = &p->memmap[i];
		uint64_t lo = e->addr, hi = e->addr + e->size;

		if (e->type != E820_RAM)
			continue;
		if (lo < (uint64_t)(uintptr_t)_end)
			lo = (uint64_t)(uintptr_t)_end;
		lo = (lo + align - 1) & ~(align - 1);
		if (hi > MAPPED_LIMIT)
			hi = MAPPED_LIMIT;
		if (lo < hi && hi - lo >= bytes) {
			*at = lo;
			return true;
		}
	}
	return false;
}

/*
 * One 8-byte write per 4 KiB page, then read all back: the cost is the
 * VMM's first-touch path (EPT / shadow faults), not memory bandwidth.
 */
static bool scenario_mem(const struct platform *p, const struct args *a)
{
	const uint64_t pattern = 0x6b657374726c0000ull;	/* "kestrl" */
	uint64_t size = 64, bytes, base, hz, t0, ticks;

	if (!arg_u64(a, "size", &size) || !size || size >= MAPPED_LIMIT / MIB)
		return fail("mem: bad size=%s", arg_get(a, "size"));
	bytes = size * MIB;
	if (!mem_find(p, bytes, &base))
		return fail("mem: no RAM entry holds %lu MiB at a 16 MiB boundary above 0x%lx below 4 GiB",
			    size, (uint64_t)(uintptr_t)_end);

	hz = tsc_calibrate();
	if (hz < 100000000ull)
		return fail("tsc: PIT calibration failed (%lu Hz)", hz);
	say("tsc: %lu MHz", hz / 1000000);

	t0 = rdtsc();
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE)
		*(volatile uint64_t *)phys(base + off) = pattern ^ (base + off);
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE) {
		uint64_t got = *(volatile uint64_t *)phys(base + off);

		if (got != (pattern ^ (base + off)))
			return fail("mem: 0x%lx reads 0x%lx, wrote 0x%lx",
				    base + off, got, pattern ^ (base + off));
	}
	ticks = rdtsc() - t0;
	if (!ticks)
		ticks = 1;
	say("mem: touched %lu MiB in %lu ms (%lu MiB/s)", size,
	    ticks * 1000 / hz, size * hz / ticks);
	return true;
}

/*
 * The two classic PC reset paths: 8042 "pulse output port" (command 0xfe)
 * then the PIIX reset control register at 0xcf9 (SYS_RST | RST_CPU).
 * A VMM stops the vCPU asynchronously, so wait a moment after each.
 */
static bool scenario_reset(const struct platform *p, const struct args *a)
{
	say("reset");
	outb(0x64, 0xfe);
	delay_tsc(2000000000ull);
	outb(0xcf9, 0x06);
	delay_tsc(2000000000ull);
	return fail("reset did not take effect");
}

/* QEMU's isa-debug-exit test device: the VMM exits with (code << 1) | 1. */
static bool scenario_debug_exit(const struct platform *p, const struct args *a)
{
	uint64_t code = 1, port = 0xf4;

	if (!arg_u64(a, "code", &code) || code > 0xff || !arg_u64(a, "port", &port) ||
	    port > 0xffff)
		return fail("debug-exit: bad code= or port=");
	say("debug-exit: code %lu on port 0x%lx", code, port);
	outb((uint16_t)port, (uint8_t)code);
	delay_tsc(2000000000ull);
	return fail("debug-exit did not take effect");
}

/*
 * An exception with the empty IDT from entry.S: #UD cannot be delivered, nor
 * the #GP and #DF that follow, so the CPU shuts down (a triple fault) and the
 * VMM must report it.
 */
static bool scenario_fault(const struct platform *p, const struct args *a)
{
	say("fault: executing ud2");
	__asm__ volatile("ud2");
	return fail("ud2 did not fault");
}

/* cpl0.c ran the load before CPL3: reaching this means no VMM stopped the guest. */
static bool scenario_emulation_failure(const struct platform *p, const struct args *a)
{
	return fail("emulation-failure: the x87 load from MMIO completed");
}

static const struct scenario scenarios[] = {
	{ "hello", scenario_hello },
	{ "smp", scenario_smp },
	{ "echo", scenario_echo },
	{ "tick", scenario_tick },
	{ "mem", scenario_mem },
	{ "reset", scenario_reset },
	{ "debug-exit", scenario_debug_exit },
	{ "fault", scenario_fault },
	{ "emulation-failure", scenario_emulation_failure },
	{ "pci", scenario_pci },
	{ "virtio", scenario_virtio },
	{ "blk-write", scenario_blk_write },
	{ "blk-read", scenario_blk_read },
	{ "blk-bench", scenario_blk_bench },
	{ "rng", scenario_rng },
	{ "console", scenario_console },
	{ "net-respond", scenario_net_respond },
	{ "net-send", scenario_net_send },
	{ "net-dhcp", scenario_net_dhcp },
	{ "net-tftp", scenario_net_tftp },
	{ "net-blast", scenario_net_blast },
	{ "net-sink", scenario_net_sink },
	{ "balloon", scenario_balloon },
	{ "mem-hold", scenario_mem_hold },
	{ "numa", scenario_numa },
};

/* Called at CPL3 by entry.S with the start_info physical address. */
void probe_main(const struct hvm_start_info *si)
{
	struct platform p;
	struct args a;
	bool ok = false;
	size_t i;

	serial_init();
	/* SeaBIOS leaves "Booting from ROM.." unterminated: start a line. */
	serial_putc('\n');
	say("start");
	si = multiboot_adapt(si);
	platform_probe(si, &p);
	args_parse(p.cmdline, &a);
	say("scenario: %s", a.name);

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (str_eq(scenarios[i].name, a.name))
			break;
	if (!p.si)
		ok = fail("start_info at 0x%lx has magic 0x%x, not 0x%x",
			  (uint64_t)(uintptr_t)si, si ? si->magic : 0,
			  HVM_START_MAGIC);
	else if (i == sizeof(scenarios) / sizeof(scenarios[0]))
		ok = fail("unknown scenario %s", a.name);
	else
		ok = scenarios[i].run(&p, &a);
	if (ok)
		say("PASS");
	platform_poweroff(&p);
}
