/*
 * cli/options_memory.c: -object memory-backend-*, -machine mem-merge= and
 * memory-backend=, -mem-path, -mem-prealloc, -numa, -overcommit, -balloon and
 * -device virtio-balloon-pci, as the VM will see them in vm_config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli/options.h"

#include "options_harness.h"

/* Every case names a kernel, as a command line that runs a VM does. */
#define ARGS(...) (const char *[]){ "-kernel", "vmlinuz", __VA_ARGS__, NULL }

#define OK(cfg, ...) assert_int_equal(parse_to((cfg), devnull, ARGS(__VA_ARGS__)), OPTIONS_RUN)
#define ERR(...) do { \
		struct vm_config c_; \
		assert_int_equal(parse_to(&c_, devnull, ARGS(__VA_ARGS__)), OPTIONS_ERROR); \
		options_free(&c_); \
	} while (0)

static void test_default_backing_is_lazy_mergeable_anonymous_memory(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-m", "256");
	assert_int_equal(cfg.memory.nr_backing, 1);
	assert_int_equal(cfg.memory.backing[0].kind, MEMORY_ANON);
	assert_int_equal(cfg.memory.backing[0].size, 256 * MIB);
	assert_true(cfg.memory.backing[0].merge);
	assert_true(cfg.memory.backing[0].dump);
	assert_false(cfg.memory.backing[0].prealloc);
	assert_false(cfg.memory.mem_lock);
	assert_false(cfg.balloon.enabled);
	options_free(&cfg);

	OK(&cfg, "-machine", "pc,mem-merge=off", "-mem-prealloc", "-overcommit", "mem-lock=on");
	assert_false(cfg.memory.backing[0].merge);
	assert_true(cfg.memory.backing[0].prealloc);
	assert_true(cfg.memory.mem_lock);
	options_free(&cfg);

	OK(&cfg, "-mem-path", "/dev/hugepages");
	assert_int_equal(cfg.memory.backing[0].kind, MEMORY_FILE);
	assert_string_equal(cfg.memory.backing[0].path, "/dev/hugepages");
	assert_false(cfg.memory.backing[0].share);
	options_free(&cfg);
}

static void test_memory_backend_objects(void **state)
{
	struct vm_config cfg;
	const struct memory_backing *b;

	OK(&cfg, "-object", "memory-backend-memfd,id=mem,size=512M,hugetlb=on,hugetlbsize=2M",
	   "-machine", "memory-backend=mem");
	b = &cfg.memory.backing[0];
	assert_int_equal(cfg.ram_size, 512 * MIB);	/* no -m: the backend sizes RAM */
	assert_int_equal(b->kind, MEMORY_MEMFD);
	assert_true(b->hugetlb);
	assert_int_equal(b->hugetlbsize, 2 * MIB);
	assert_true(b->share);				/* memfd's default */
	assert_true(b->merge);				/* from mem-merge */
	options_free(&cfg);

	OK(&cfg, "-m", "1G", "-machine", "mem-merge=off", "-object",
	   "memory-backend-file,id=m,size=1G,mem-path=/tmp,share=on,prealloc=on,merge=on,dump=off,"
	   "host-nodes=0,policy=bind", "-machine", "memory-backend=m");
	b = &cfg.memory.backing[0];
	assert_int_equal(b->kind, MEMORY_FILE);
	assert_string_equal(b->path, "/tmp");
	assert_true(b->share && b->prealloc && b->merge && !b->dump);
	assert_int_equal(b->host_nodes, 1);
	assert_int_equal(b->policy, MEMORY_POLICY_BIND);
	options_free(&cfg);

	OK(&cfg, "-object", "memory-backend-ram,id=m,size=64M,host-nodes=0-2:5,policy=interleave",
	   "-m", "64M", "-machine", "memory-backend=m");
	assert_int_equal(cfg.memory.backing[0].host_nodes, 0x27);
	options_free(&cfg);

	ERR("-object", "memory-backend-ram,id=m,size=64M", "-m", "128M", "-machine",
	    "memory-backend=m");
	ERR("-object", "memory-backend-ram,size=64M");
	ERR("-object", "memory-backend-ram,id=m,size=64M", "-object", "memory-backend-ram,id=m,size=64M");
	ERR("-object", "memory-backend-ram,id=m,size=64M,hugetlb=on");
	ERR("-object", "memory-backend-ram,id=m,size=64M,policy=bind");
	ERR("-object", "memory-backend-ram,id=m,size=64M,colour=blue");
	ERR("-object", "rng-random,id=r");
}

static void test_numa_nodes_and_distances(void **state)
{
	struct vm_config cfg;
	const struct memory_config *mc = &cfg.memory;

	OK(&cfg, "-m", "512M", "-smp", "4", "-object", "memory-backend-ram,id=a,size=128M",
	   "-object", "memory-backend-memfd,id=b,size=384M",
	   "-numa", "node,nodeid=1,cpus=2-3,memdev=b", "-numa", "node,nodeid=0,cpus=0:1,memdev=a",
	   "-numa", "dist,src=0,dst=1,val=30");
	assert_int_equal(mc->nr_nodes, 2);
	assert_int_equal(mc->nr_backing, 2);
	/* Backing follows node IDs, not the order on the command line. */
	assert_int_equal(mc->backing[0].size, 128 * MIB);
	assert_int_equal(mc->backing[0].kind, MEMORY_ANON);
	assert_int_equal(mc->backing[1].size, 384 * MIB);
	assert_int_equal(mc->backing[1].kind, MEMORY_MEMFD);
	assert_int_equal(mc->nodes[0].cpus[0], 0x0c);
	assert_int_equal(mc->nodes[1].cpus[0], 0x03);
	assert_int_equal(mc->distance[0][1], 30);
	options_free(&cfg);

	/* Without memdev RAM is split in 8 MiB-aligned shares, the rest on the last node. */
	OK(&cfg, "-m", "100M", "-numa", "node", "-numa", "node", "-numa", "node");
	assert_int_equal(mc->backing[0].size, 32 * MIB);
	assert_int_equal(mc->backing[1].size, 32 * MIB);
	assert_int_equal(mc->backing[2].size, 36 * MIB);
	options_free(&cfg);

	ERR("-m", "512M", "-object", "memory-backend-ram,id=a,size=128M", "-numa", "node,memdev=a");
	ERR("-object", "memory-backend-ram,id=a,size=128M", "-numa", "node,memdev=a", "-numa", "node");
	ERR("-numa", "node,nodeid=0", "-numa", "node,nodeid=0");
	ERR("-numa", "node,nodeid=1");
	ERR("-numa", "node", "-numa", "dist,src=0,dst=0,val=20");
	ERR("-numa", "node", "-numa", "dist,src=0,dst=1,val=20");
	ERR("-numa", "node,cpus=300");
	ERR("-smp", "2", "-numa", "node,cpus=0-2");
	ERR("-numa", "node,nodeid=9");
	ERR("-numa", "cpu,node-id=0");
}

/* Issue #26: -machine dump-guest-core= is every backing's dump= default (MADV_DONTDUMP). */
static void test_dump_guest_core(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-machine", "dump-guest-core=off");
	assert_false(cfg.memory.backing[0].dump);
	options_free(&cfg);

	OK(&cfg, "-m", "64M", "-numa", "node", "-machine", "pc,dump-guest-core=off");
	assert_false(cfg.memory.backing[0].dump);
	options_free(&cfg);

	/* The machine's setting reaches a backend given before it, unless dump= was explicit. */
	OK(&cfg, "-m", "128M", "-object", "memory-backend-ram,id=a,size=64M",
	   "-object", "memory-backend-ram,id=b,size=64M,dump=on",
	   "-numa", "node,memdev=a", "-numa", "node,memdev=b", "-machine", "dump-guest-core=off");
	assert_false(cfg.memory.backing[0].dump);
	assert_true(cfg.memory.backing[1].dump);
	options_free(&cfg);

	ERR("-machine", "dump-guest-core=perhaps");
}

/* Issue #26: what QEMU 7.2 refuses is refused, not parsed and dropped. */
static void test_refused_as_qemu(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-object", "memory-backend-file,id=m,size=64M,mem-path=/tmp,align=2M", "-m", "64M",
	   "-machine", "memory-backend=m");
	options_free(&cfg);
	ERR("-object", "memory-backend-ram,id=m,size=64M,align=4096");
	ERR("-object", "memory-backend-memfd,id=m,size=64M,align=4096");
	ERR("-object", "memory-backend-file,id=m,size=64M,mem-path=/tmp,align=999");
	ERR("-object", "memory-backend-file,id=m,size=64M,mem-path=/tmp,align=1G");
	ERR("-numa", "dist,src=0,dst=1,val=20");
	ERR("-numa", "node,nodeid=0", "-numa", "dist,src=0,dst=1,val=20");
	ERR("-numa", "node,initiator=0");
	ERR("-mem-path", "/tmp", "-numa", "node");
	OK(&cfg, "-mem-path", "/tmp");
	options_free(&cfg);
	OK(&cfg, "-overcommit", "cpu-pm=off");
	options_free(&cfg);
	ERR("-overcommit", "cpu-pm=on");
	ERR("-overcommit", "cpu-pm=yes please");
}

static void test_balloon_options(void **state)
{
	struct vm_config cfg;

	OK(&cfg, "-balloon", "virtio,addr=0x5");
	assert_true(cfg.balloon.enabled);
	assert_int_equal(cfg.balloon.slot, 5);
	assert_int_equal(cfg.nr_devices, 1);
	assert_int_equal(cfg.devices[0].kind, DEVICE_VIRTIO_BALLOON);
	options_free(&cfg);

	OK(&cfg, "-balloon", "none");
	assert_false(cfg.balloon.enabled);
	assert_int_equal(cfg.nr_devices, 0);
	options_free(&cfg);

	OK(&cfg, "-device", "virtio-balloon-pci,id=bal,deflate-on-oom=on,free-page-reporting=on,"
	   "guest-stats-polling-interval=5");
	assert_true(cfg.balloon.deflate_on_oom);
	assert_true(cfg.balloon.free_page_reporting);
	assert_int_equal(cfg.balloon.polling_interval, 5);
	assert_string_equal(cfg.balloon.id, "bal");
	options_free(&cfg);

	ERR("-balloon", "virtio", "-device", "virtio-balloon");
	ERR("-balloon", "virtio,addr=0");
	ERR("-balloon", "virtio,size=3");
	ERR("-device", "virtio-balloon-pci,guest-stats-polling-interval=often");
	ERR("-device", "virtio-balloon-pci,free-page-hint=on");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_backing_is_lazy_mergeable_anonymous_memory),
		cmocka_unit_test(test_memory_backend_objects),
		cmocka_unit_test(test_numa_nodes_and_distances),
		cmocka_unit_test(test_balloon_options),
		cmocka_unit_test(test_dump_guest_core),
		cmocka_unit_test(test_refused_as_qemu),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
