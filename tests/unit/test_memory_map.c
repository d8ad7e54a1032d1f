/*
 * core/memory.c memory_init on real mappings, with KVM faked: ioctl is wrapped
 * (-Wl,--wrap=ioctl in meson.build) so KVM_SET_USER_MEMORY_REGION succeeds
 * without /dev/kvm.  What the kernel made of each mapping is read back from
 * /proc/self/smaps (VmFlags: "dd" is MADV_DONTDUMP, "mg" MADV_MERGEABLE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "cli/options.h"
#include "core/memory.h"

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

static unsigned slots_set;
static struct kvm_userspace_memory_region slots_seen[8];

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KVM_SET_USER_MEMORY_REGION) {
		if (slots_set < 8)
			slots_seen[slots_set] = *(struct kvm_userspace_memory_region *)arg;
		slots_set++;
		return 0;
	}
	return __real_ioctl(fd, req, arg);
}

/* The VmFlags line of the smaps entry that maps addr; fails the test when none does. */
static void vm_flags(const void *addr, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, len, "%s", line + 8);
			fclose(f);
			return;
		}
	}
	fclose(f);
	fail_msg("no mapping holds %p", addr);
}

static bool has_flag(const char *flags, const char *flag)
{
	char padded[512];

	snprintf(padded, sizeof(padded), " %s", flags);
	for (char *p = padded; (p = strstr(p, flag)); p++)
		if (p[-1] == ' ' && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return true;
	return false;
}

/* -machine dump-guest-core=off (dump=false): guest RAM is left out of core dumps. */
static void test_dump_off_is_madv_dontdump(void **state)
{
	struct memory_backing b[2] = {
		{ .kind = MEMORY_ANON, .size = 8 * MIB, .dump = false },
		{ .kind = MEMORY_ANON, .size = 8 * MIB, .dump = true },
	};
	struct guest_memory mem = { 0 };
	char flags[512];

	slots_set = 0;
	assert_int_equal(memory_init(&mem, -1, 16 * MIB, b, 2, false), 0);
	/* Low RAM is two slots around the VGA window 0xa0000-0xbffff, which no slot covers. */
	assert_int_equal(slots_set, mem.nr_regions + 1);
	for (unsigned i = 0; i < slots_set; i++) {
		const struct kvm_userspace_memory_region *k = &slots_seen[i];
		assert_true(k->guest_phys_addr + k->memory_size <= 0xa0000 ||
			    k->guest_phys_addr >= 0xc0000);
		assert_ptr_equal((void *)(uintptr_t)k->userspace_addr, mem.host + k->guest_phys_addr);
	}
	vm_flags(mem.host, flags, sizeof(flags));
	if (!has_flag(flags, "dd"))
		fail_msg("dump=off, but VmFlags:%s", flags);
	vm_flags(mem.host + 8 * MIB, flags, sizeof(flags));
	if (has_flag(flags, "dd"))
		fail_msg("dump=on, but VmFlags:%s", flags);
	memory_destroy(&mem);
}

/* The whole path: the option, the backing options_parse builds, the mapping. */
static void test_machine_dump_guest_core_off(void **state)
{
	char *argv[] = { "kestrel", "-kernel", "vmlinuz", "-m", "16M", "-machine",
			 "pc,dump-guest-core=off", NULL };
	FILE *devnull = fopen("/dev/null", "w");
	struct guest_memory mem = { 0 };
	struct vm_config cfg;
	char flags[512];

	assert_non_null(devnull);
	assert_int_equal(options_parse(7, argv, &cfg, devnull), OPTIONS_RUN);
	assert_int_equal(memory_init(&mem, -1, cfg.ram_size, cfg.memory.backing,
				     cfg.memory.nr_backing, false), 0);
	vm_flags(mem.host, flags, sizeof(flags));
	if (!has_flag(flags, "dd"))
		fail_msg("dump-guest-core=off, but VmFlags:%s", flags);
	memory_destroy(&mem);
	options_free(&cfg);
	fclose(devnull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_off_is_madv_dontdump),
		cmocka_unit_test(test_machine_dump_guest_core_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
