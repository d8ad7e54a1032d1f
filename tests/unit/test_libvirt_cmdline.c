/*
 * What libvirt 9.0 passes at start (issue #27): JSON -object/-device/-netdev/
 * -audiodev mean what their key=value forms mean; -machine, -global, -rtc,
 * -cpu values are taken into the config or refused; and the models they set
 * (vmm/cpu_model.c's CPUID, hw/rtc.c's clock) show it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_img.h"
#include "cli/options.h"
#include "hw/rtc.h"
#include "vmm/cpu_model.h"

#include "options_harness.h"

#define PARSE(cfg, ...) parse_to((cfg), devnull, (const char *[]){ __VA_ARGS__, NULL })
#define OK(cfg, ...) assert_int_equal(PARSE((cfg), "-kernel", "vmlinuz", __VA_ARGS__), OPTIONS_RUN)
#define ERR(...) do { \
		struct vm_config c_; \
		assert_int_equal(PARSE(&c_, "-kernel", "vmlinuz", __VA_ARGS__), OPTIONS_ERROR); \
		options_free(&c_); \
	} while (0)

static void test_json_device_same_as_list(void **state)
{
	struct vm_config a, b;

	OK(&a, "-drive", "file=x.img,if=none,id=d0,format=raw",
	   "-device", "{\"driver\":\"virtio-blk-pci\",\"bus\":\"pci.0\",\"addr\":\"0x5\","
	   "\"drive\":\"d0\",\"id\":\"virtio-disk0\",\"bootindex\":1}");
	OK(&b, "-drive", "file=x.img,if=none,id=d0,format=raw",
	   "-device", "virtio-blk-pci,bus=pci.0,addr=0x5,drive=d0,id=virtio-disk0,bootindex=1");
	assert_int_equal(a.nr_devices, 1);
	assert_int_equal(a.devices[0].kind, DEVICE_VIRTIO_BLK);
	assert_int_equal(a.devices[0].slot, 5);
	assert_string_equal(a.devices[0].drive, "d0");
	assert_true(a.devices[0].has_bootindex);
	assert_int_equal(a.devices[0].bootindex, 1);
	assert_memory_equal(&a.devices[0], &b.devices[0], sizeof(a.devices[0]));
	options_free(&a);
	options_free(&b);
	/* Unknown keys and bad JSON are refused as in the list form. */
	ERR("-device", "{\"driver\":\"virtio-balloon-pci\",\"foo\":1}");
	ERR("-device", "{bad");
	ERR("-device", "[1]");
	ERR("-device", "{\"driver\":\"virtio-rng-pci\",\"addr\":null}");
}

static void test_json_object_memory_backend_is_ram(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-machine", "pc,dump-guest-core=off,memory-backend=pc.ram", "-m", "64",
	   "-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":67108864}");
	assert_int_equal(cfg.memory.nr_memdevs, 1);
	assert_string_equal(cfg.memory.memdevs[0].id, "pc.ram");
	assert_int_equal(cfg.memory.nr_backing, 1);
	assert_int_equal(cfg.memory.backing[0].size, 64 << 20);
	assert_false(cfg.memory.backing[0].dump);	/* MADV_DONTDUMP (test_memory_map) */
	options_free(&cfg);
	ERR("-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"m\",\"size\":\"x\"}");
	ERR("-object", "{\"qom-type\":\"memory-backend-ram\",\"id\":\"m\"");
}

static void test_json_object_secret(void **state)
{
	struct vm_config cfg;
	char path[] = "/tmp/kestrel-secret-XXXXXX";
	int fd = mkstemp(path);
	char json[200];

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "pw", 2), 2);
	close(fd);
	snprintf(json, sizeof(json), "{\"qom-type\":\"secret\",\"id\":\"masterKey0\","
		 "\"format\":\"raw\",\"file\":\"%s\"}", path);
	OK(&cfg, "-object", json);
	options_free(&cfg);
	unlink(path);
	assert_true(block_secret_lookup("masterKey0", NULL));
}

static void test_json_netdev_and_nic(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-netdev", "{\"type\":\"user\",\"id\":\"hostnet0\"}",
	   "-device", "{\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet0\",\"id\":\"net0\","
	   "\"mac\":\"52:54:00:12:34:56\",\"bus\":\"pci.0\",\"addr\":\"0x3\"}");
	assert_int_equal(cfg.nr_netdevs, 1);
	assert_string_equal(cfg.netdevs[0].type, "user");
	assert_string_equal(cfg.netdevs[0].id, "hostnet0");
	assert_int_equal(cfg.nr_nics, 1);
	assert_string_equal(cfg.nics[0].netdev, "hostnet0");
	assert_true(cfg.nics[0].has_mac);
	assert_int_equal(cfg.nics[0].mac[5], 0x56);
	options_free(&cfg);
	ERR("-netdev", "{\"type\":\"bogus\",\"id\":\"n\"}");
}

static void test_blockdev_backing_null(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-blockdev", "{\"driver\":\"file\",\"filename\":\"x.qcow2\",\"node-name\":"
	   "\"libvirt-1-storage\",\"auto-read-only\":true,\"discard\":\"unmap\"}",
	   "-blockdev", "{\"node-name\":\"libvirt-1-format\",\"read-only\":false,\"driver\":"
	   "\"qcow2\",\"file\":\"libvirt-1-storage\",\"backing\":null}",
	   "-device", "{\"driver\":\"virtio-blk-pci\",\"drive\":\"libvirt-1-format\"}");
	assert_int_equal(cfg.nr_drives, 1);
	assert_true(cfg.drives[0].flags & BLOCK_NO_BACKING);
	assert_true(cfg.drives[0].discard);
	options_free(&cfg);
	/* Without backing: the chain is opened from the header. */
	OK(&cfg, "-blockdev", "{\"node-name\":\"f\",\"driver\":\"qcow2\",\"file\":"
	   "{\"driver\":\"file\",\"filename\":\"x.qcow2\"}}");
	assert_false(cfg.drives[0].flags & BLOCK_NO_BACKING);
	options_free(&cfg);
	ERR("-blockdev", "{\"node-name\":\"f\",\"driver\":\"qcow2\",\"file\":"
	    "{\"driver\":\"file\",\"filename\":\"x.qcow2\"},\"backing\":\"other\"}");
}

static void test_machine_switches(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-machine", "pc-i440fx-7.2,usb=off,vmport=off,dump-guest-core=off,hpet=off",
	   "-no-hpet");
	assert_false(cfg.memory.dump_guest_core);
	assert_false(cfg.usb.uhci);
	options_free(&cfg);
	/* usb=on is the PIIX3 UHCI, as -usb (libvirt's own controller is -device piix3-usb-uhci). */
	OK(&cfg, "-machine", "pc,usb=on");
	assert_true(cfg.usb.uhci);
	options_free(&cfg);
	ERR("-machine", "pc,usb=maybe");
	ERR("-machine", "pc,vmport=on");
	ERR("-machine", "pc,vmport=auto");
	ERR("-machine", "pc,vmport=maybe");
	ERR("-machine", "pc,hpet=on");
	ERR("-machine", "pc,dump-guest-core=maybe");
	OK(&cfg, "-machine", "pc,acpi=on");
	options_free(&cfg);
	ERR("-machine", "pc,acpi=off");
	ERR("-machine", "pc,acpi=maybe");
	ERR("-smbios", "type=1,serial=x");
	OK(&cfg, "-boot", "strict=on");
	assert_true(cfg.boot.strict);
	options_free(&cfg);
	ERR("-boot", "strict=maybe");
}

static void test_global(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-global", "kvm-pit.lost_tick_policy=delay", "-global", "PIIX4_PM.disable_s3=1",
	   "-global", "PIIX4_PM.disable_s4=1");
	options_free(&cfg);
	ERR("-global", "kvm-pit.lost_tick_policy=discard");
	ERR("-global", "kvm-pit.lost_tick_policy=bogus");
	ERR("-global", "PIIX4_PM.disable_s3=0");
	ERR("-global", "PIIX4_PM.disable_s4=0");
	ERR("-global", "PIIX4_PM.disable_s3=x");
	ERR("-global", "PIIX4_PM.foo=1");
	ERR("-global", "foo");
}

static void test_rtc_options(void **state)
{
	struct vm_config cfg;
	time_t before = time(NULL);

	OK(&cfg, "-rtc", "base=utc,clock=host,driftfix=slew");
	assert_false(cfg.rtc.localtime);
	assert_int_equal(cfg.rtc.offset, 0);
	assert_true(cfg.rtc.driftfix_slew);
	options_free(&cfg);
	OK(&cfg, "-rtc", "base=localtime,driftfix=none");
	assert_true(cfg.rtc.localtime);
	assert_false(cfg.rtc.driftfix_slew);
	options_free(&cfg);
	OK(&cfg, "-rtc", "base=2006-06-17T16:01:21");
	/* 1150560081 is 2006-06-17T16:01:21Z */
	assert_true(cfg.rtc.offset <= 1150560081 - (int64_t)before);
	assert_true(cfg.rtc.offset >= 1150560081 - (int64_t)time(NULL));
	options_free(&cfg);
	OK(&cfg, "-rtc", "base=2006-06-17");
	assert_false(cfg.rtc.localtime);
	options_free(&cfg);
	ERR("-rtc", "base=bogus");
	ERR("-rtc", "base=2006-13-01");
	ERR("-rtc", "clock=vm");
	ERR("-rtc", "clock=bogus");
	ERR("-rtc", "driftfix=bogus");
	ERR("-rtc", "base=utc,foo=1");
}

static time_t fixed_now(time_t *t)
{
	return 1150560081;	/* 2006-06-17T16:01:21Z */
}

static uint8_t cmos_read(struct rtc *rtc, uint8_t reg)
{
	uint8_t v = reg;

	rtc_io(rtc, 0, true, &v, 1);
	rtc_io(rtc, 1, false, &v, 1);
	return v;
}

/* The guest's CMOS clock: host time, shifted by base=DATE, in UTC or local time. */
static void test_rtc_clock_follows_base(void **state)
{
	struct rtc rtc;

	rtc_init(&rtc);
	rtc.now = fixed_now;
	assert_int_equal(cmos_read(&rtc, 0x09), 0x06);	/* year, BCD */
	assert_int_equal(cmos_read(&rtc, 0x04), 0x16);	/* hour 16 UTC */
	rtc_set_base(&rtc, false, 86400 + 3600);
	assert_int_equal(cmos_read(&rtc, 0x07), 0x18);	/* day 18 */
	assert_int_equal(cmos_read(&rtc, 0x04), 0x17);
	setenv("TZ", "JST-9", 1);
	tzset();
	rtc_set_base(&rtc, true, 0);
	assert_int_equal(cmos_read(&rtc, 0x04), 0x01);	/* 16:01Z is 01:01 in UTC+9 */
	assert_int_equal(cmos_read(&rtc, 0x07), 0x18);
	unsetenv("TZ");
	tzset();
	rtc_destroy(&rtc);
}

static void test_cpu_options(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-m", "128");
	assert_int_equal(cfg.cpu.model, CPU_MODEL_HOST);
	assert_false(cfg.cpu.migratable);	/* no -cpu: the host table as before */
	options_free(&cfg);
	OK(&cfg, "-cpu", "qemu64");
	assert_int_equal(cfg.cpu.model, CPU_MODEL_QEMU64);
	options_free(&cfg);
	OK(&cfg, "-cpu", "host,migratable=off");
	assert_int_equal(cfg.cpu.model, CPU_MODEL_HOST);
	assert_false(cfg.cpu.migratable);
	options_free(&cfg);
	OK(&cfg, "-cpu", "host,migratable=on");
	assert_true(cfg.cpu.migratable);
	options_free(&cfg);
	ERR("-cpu", "bogus");
	ERR("-cpu", "Haswell");
	ERR("-cpu", "host,migratable=maybe");
	ERR("-cpu", "qemu64,migratable=on");
	ERR("-cpu", "qemu64,+avx");
}

/* A host table as an Intel host with invtsc, AVX2 and a high leaf might report. */
static struct kvm_cpuid2 *host_table(void)
{
	static const struct kvm_cpuid_entry2 rows[] = {
		{ .function = 0, .eax = 0x16, .ebx = 0x756e6547, .edx = 0x49656e69, .ecx = 0x6c65746e },
		{ .function = 1, .eax = 0x906ea, .ebx = 0x00000800, .ecx = 0xfffa3203, .edx = 0x1fabfbff },
		{ .function = 7, .ebx = 0x029c67af },
		{ .function = 0xd, .eax = 7 },
		{ .function = 0x16, .eax = 3000 },
		{ .function = 0x40000001, .eax = 0x01007efb },
		{ .function = 0x80000000, .eax = 0x80000008 },
		{ .function = 0x80000001, .ecx = 0x121, .edx = 0x2c100800 },
		{ .function = 0x80000002, .eax = 0x65746e49 },
		{ .function = 0x80000007, .edx = 0x100 },
		{ .function = 0x80000008, .eax = 0x3027, .ebx = 0x100d000 },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(rows[0]));

	assert_non_null(c);
	c->nent = (uint32_t)n;
	memcpy(c->entries, rows, sizeof(rows));
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn)
			return &c->entries[i];
	return NULL;
}

static void test_cpuid_qemu64(void **state)
{
	struct cpu_config cpu = { .model = CPU_MODEL_QEMU64 };
	struct kvm_cpuid2 *c = host_table();
	char vendor[13] = { 0 }, brand[17] = { 0 };

	cpu_model_apply(&cpu, c);
	assert_int_equal(leaf(c, 0)->eax, 0xd);
	memcpy(vendor, &leaf(c, 0)->ebx, 4);
	memcpy(vendor + 4, &leaf(c, 0)->edx, 4);
	memcpy(vendor + 8, &leaf(c, 0)->ecx, 4);
	assert_string_equal(vendor, "AuthenticAMD");
	assert_int_equal(leaf(c, 1)->eax, 0x60fb1);		/* family 15 model 107 stepping 1 */
	assert_int_equal(leaf(c, 1)->ecx, 0x80202001);		/* sse3 cx16 x2apic hypervisor */
	assert_int_equal(leaf(c, 1)->edx, 0x1fabfbff & 0x078bfbfd);
	assert_int_equal(leaf(c, 7)->ebx, 0);			/* no AVX2, BMI, ... */
	assert_int_equal(leaf(c, 0xd)->eax, 0);
	assert_null(leaf(c, 0x16));				/* above level 0xd */
	assert_int_equal(leaf(c, 0x40000001)->eax, 0x0100007b);
	assert_int_equal(leaf(c, 0x80000000)->eax, 0x8000000a);
	assert_int_equal(leaf(c, 0x80000001)->ecx, 1);		/* lahf_lm only */
	assert_int_equal(leaf(c, 0x80000001)->edx,
			 (0x2c100800 & 0x20100800) | (0x1fabfbff & 0x078bfbfd & 0x0183f3ff));
	memcpy(brand, &leaf(c, 0x80000002)->eax, 16);
	assert_string_equal(brand, "QEMU Virtual CPU");
	assert_int_equal(leaf(c, 0x80000007)->edx, 0);
	free(c);
}

static void test_cpuid_host_migratable(void **state)
{
	struct cpu_config on = { .model = CPU_MODEL_HOST, .migratable = true };
	struct cpu_config off = { .model = CPU_MODEL_HOST, .migratable = false };
	struct kvm_cpuid2 *a = host_table(), *b = host_table(), *h = host_table();

	cpu_model_apply(&on, a);
	cpu_model_apply(&off, b);
	assert_int_equal(leaf(a, 0x80000007)->edx, 0);		/* invtsc hidden */
	assert_int_equal(leaf(b, 0x80000007)->edx, 0x100);	/* invtsc passed */
	assert_int_equal(a->nent, h->nent);
	assert_memory_equal(b->entries, h->entries, h->nent * sizeof(h->entries[0]));
	assert_int_equal(leaf(a, 7)->ebx, 0x029c67af);
	free(a);
	free(b);
	free(h);
}

static void test_isa_serial_and_audiodev(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-chardev", "pty,id=charserial0", "-device",
	   "{\"driver\":\"isa-serial\",\"chardev\":\"charserial0\",\"id\":\"serial0\",\"index\":0}",
	   "-audiodev", "{\"id\":\"audio1\",\"driver\":\"none\"}");
	assert_string_equal(cfg.serial_chardev, "charserial0");
	assert_string_equal(cfg.platform.audiodev, "audio1");
	options_free(&cfg);
	OK(&cfg, "-audiodev", "none,id=a");
	assert_string_equal(cfg.platform.audiodev, "a");
	options_free(&cfg);
	ERR("-device", "isa-serial,chardev=c,index=1");
	ERR("-serial", "null", "-device", "isa-serial,chardev=c");
	ERR("-device", "isa-serial,chardev=nosuch");
	ERR("-audiodev", "none");
	ERR("-audiodev", "pa,id=a");
	ERR("-audiodev", "bogus,id=a");
	ERR("-audiodev", "none,id=a,foo=1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_device_same_as_list),
		cmocka_unit_test(test_json_object_memory_backend_is_ram),
		cmocka_unit_test(test_json_object_secret),
		cmocka_unit_test(test_json_netdev_and_nic),
		cmocka_unit_test(test_blockdev_backing_null),
		cmocka_unit_test(test_machine_switches),
		cmocka_unit_test(test_global),
		cmocka_unit_test(test_rtc_options),
		cmocka_unit_test(test_rtc_clock_follows_base),
		cmocka_unit_test(test_cpu_options),
		cmocka_unit_test(test_cpuid_qemu64),
		cmocka_unit_test(test_cpuid_host_migratable),
		cmocka_unit_test(test_isa_serial_and_audiodev),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
