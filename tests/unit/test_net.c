/* Network options (-net/-netdev/-nic/-device virtio-net-pci), MACs and the hub. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/options.h"
#include "net/net.h"
#include "util/loop.h"

static int parse(struct vm_config *cfg, int n, const char **extra)
{
	const char *argv[32] = { "kestrel", "-kernel", "k" };
	int argc = 3;
	FILE *out = fopen("/dev/null", "w");

	for (int i = 0; i < n; i++)
		argv[argc++] = extra[i];
	enum options_result r = options_parse(argc, (char **)argv, cfg, out);
	fclose(out);
	if (r != OPTIONS_RUN)
		options_free(cfg);	/* what an error path leaves behind */
	return r == OPTIONS_RUN ? 0 : r == OPTIONS_DONE ? 1 : -1;
}

#define PARSE(cfg, ...) parse(cfg, sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
			      (const char *[]){ __VA_ARGS__ })

static void test_net_nic_and_tap(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "-net", "nic,macaddr=52:54:00:aa:bb:cc,model=virtio,vlan=1,addr=5",
			       "-net", "tap,vlan=1,ifname=t0,script=no,downscript=no"), 0);
	assert_int_equal(cfg.nr_nics, 1);
	assert_int_equal(cfg.nics[0].vlan, 1);
	assert_true(cfg.nics[0].has_mac);
	assert_int_equal(cfg.nics[0].mac[5], 0xcc);
	assert_int_equal(cfg.nr_devices, 1);
	assert_int_equal(cfg.devices[0].kind, DEVICE_VIRTIO_NET);
	assert_int_equal(cfg.devices[0].slot, 5);
	assert_int_equal(cfg.nr_netdevs, 1);
	assert_string_equal(cfg.netdevs[0].type, "tap");
	assert_int_equal(cfg.netdevs[0].vlan, 1);
	assert_string_equal(cfg.netdevs[0].args, "ifname=t0,script=no,downscript=no");
	options_free(&cfg);
}

static void test_netdev_device_and_nic(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "-netdev", "user,id=u0,hostfwd=udp:127.0.0.1:5555-:7",
			       "-device", "virtio-net-pci,netdev=u0,mac=52:54:00:01:02:03"), 0);
	assert_string_equal(cfg.nics[0].netdev, "u0");
	assert_int_equal(cfg.nics[0].vlan, -1);
	assert_string_equal(cfg.netdevs[0].args, "hostfwd=udp:127.0.0.1:5555-:7");
	options_free(&cfg);

	/* -nic: NIC keys stay with the NIC, the rest (commas escaped) go to the back end. */
	assert_int_equal(PARSE(&cfg, "-nic", "user,model=virtio-net-pci,mac=52:54:00:01:02:04,"
			       "hostname=a,,b"), 0);
	assert_int_equal(cfg.nr_nics, 1);
	assert_string_equal(cfg.netdevs[0].type, "user");
	assert_string_equal(cfg.netdevs[0].args, "hostname=a,,b");
	assert_string_equal(cfg.nics[0].netdev, cfg.netdevs[0].id);
	options_free(&cfg);

	/* mq=on: a queue pair per TAP queue, 2 * pairs + 1 virtqueues. */
	assert_int_equal(PARSE(&cfg, "-netdev", "tap,id=t,queues=3,script=no",
			       "-device", "virtio-net-pci,netdev=t,mq=on,vectors=8"), 0);
	assert_int_equal(cfg.nics[0].pairs, 3);
	assert_int_equal(cfg.devices[0].num_queues, 7);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-netdev", "tap,id=t,queues=2,script=no",
			       "-device", "virtio-net-pci,netdev=t"), 0);
	assert_int_equal(cfg.nics[0].pairs, 1);		/* mq=off: one pair, as QEMU */
	assert_int_equal(cfg.devices[0].num_queues, 3);
	options_free(&cfg);

	assert_int_equal(PARSE(&cfg, "-nic", "none"), 0);
	assert_int_equal(cfg.nr_nics, 0);
	options_free(&cfg);
}

static void test_e1000_model(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "-net", "nic,model=e1000", "-net", "user"), 0);
	assert_true(cfg.nics[0].e1000);
	assert_int_equal(cfg.devices[0].kind, DEVICE_E1000);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-netdev", "user,id=n0", "-device", "e1000,netdev=n0,"
			       "mac=52:54:00:aa:bb:cc"), 0);
	assert_true(cfg.nics[0].e1000 && cfg.nics[0].has_mac);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-nic", "user,model=virtio"), 0);
	assert_false(cfg.nics[0].e1000);
	options_free(&cfg);
}

static void test_net_errors(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "-net", "nic,model=ne2k_pci"), -1);
	assert_int_equal(PARSE(&cfg, "-net", "nic,model=help"), 1);
	assert_int_equal(PARSE(&cfg, "-net", "nic,macaddr=01:00:00:00:00:01"), -1);	/* multicast */
	assert_int_equal(PARSE(&cfg, "-net", "nic,macaddr=52:54:00:00:01"), -1);
	assert_int_equal(PARSE(&cfg, "-net", "nic,bogus=1"), -1);
	assert_int_equal(PARSE(&cfg, "-net", "vde"), -1);
	assert_int_equal(PARSE(&cfg, "-netdev", "tap"), -1);			/* no id */
	assert_int_equal(PARSE(&cfg, "-netdev", "vde,id=b"), -1);
	assert_int_equal(PARSE(&cfg, "-netdev", "user,id=a", "-netdev", "user,id=a"), -1);
	assert_int_equal(PARSE(&cfg, "-device", "virtio-net-pci,netdev=nope"), -1);
	assert_int_equal(PARSE(&cfg, "-netdev", "user,id=a", "-device", "virtio-net-pci,netdev=a",
			       "-device", "virtio-net-pci,netdev=a"), -1);
	assert_int_equal(PARSE(&cfg, "-net", "nic,dup=maybe"), -1);
}

/* ctx.check_only: NULL with an empty err means valid; nothing may be opened. */
static const char *check_backend(struct net_client *(*open)(const char *, const char *,
							    struct net_open_ctx *),
				 const char *opts)
{
	static char err[256];
	struct net_open_ctx ctx = { .err = err, .errlen = sizeof(err), .check_only = true };

	err[0] = '\0';
	assert_null(open(opts, "n0", &ctx));	/* no loop: an open would have crashed */
	return err;
}

static void test_backends_check_without_opening(void **state)
{
	assert_string_equal(check_backend(net_socket_open, "mcast=230.0.0.1:1234"), "");
	assert_string_equal(check_backend(net_socket_open,
					  "udp=127.0.0.1:1,localaddr=127.0.0.1:2"), "");
	assert_string_equal(check_backend(net_socket_open, "listen=127.0.0.1:1"), "");
	assert_non_null(strstr(check_backend(net_socket_open, "mcast=10.0.0.1:1234"),
			       "not a multicast address"));
	assert_non_null(strstr(check_backend(net_socket_open, "udp=127.0.0.1:1"),
			       "udp= needs localaddr="));
	assert_non_null(strstr(check_backend(net_socket_open, "mcast=230.0.0.1"),
			       "not address:port"));
	assert_string_equal(check_backend(net_user_open, "hostfwd=tcp::2222-:22,net=10.1.0.0/24"),
			    "");
	assert_non_null(strstr(check_backend(net_user_open, "hostfwd=tcp::x-:22"),
			       "invalid host forwarding rule"));
	assert_non_null(strstr(check_backend(net_user_open, "frob=1"), "Invalid parameter 'frob'"));
	/* No TAP is created and no script runs: the script does not even exist. */
	assert_string_equal(check_backend(net_tap_open, "ifname=kt0,script=/nonexistent"), "");
	assert_non_null(strstr(check_backend(net_tap_open, "vhost=off,vhostfd=3"),
			       "vhostfd= is not valid without vhost"));
	/* Each of -netdev tap's argument checks, in check_only mode (nothing opened). */
	assert_non_null(strstr(check_backend(net_tap_open, "vnet_hdr=maybe"),
			       "vnet_hdr=, vhost= and vhostforce= take on or off"));
	assert_non_null(strstr(check_backend(net_tap_open, "fds=3:4"), "are not supported"));
	assert_non_null(strstr(check_backend(net_tap_open, "queues=0"), "queues=0: 1 to"));
	assert_non_null(strstr(check_backend(net_tap_open, "queues=2x"), "queues=2x: 1 to"));
	assert_non_null(strstr(check_backend(net_tap_open, "fd=3,queues=2"),
			       "queues= above 1 needs kestrel to open the TAP"));
	assert_non_null(strstr(check_backend(net_tap_open, "vhostfd=3,queues=2"),
			       "vhostfd= serves one queue"));
	assert_non_null(strstr(check_backend(net_tap_open, "ifname=abcdefghijklmnopq"),
			       "is longer than 15 characters"));
	assert_non_null(strstr(check_backend(net_tap_open, "fd=3,script=/x"),
			       "ifname=, script= and downscript= are invalid with fd="));
	assert_string_equal(check_backend(net_tap_open, "queues=2,vnet_hdr=on,vhost=on,"
					  "script=no,downscript=no"), "");
	assert_string_equal(check_backend(net_bridge_open, "br=nosuchbridge"), "");
}

/* -netdev user opened for real: the slirp stack, a forward, the info string. */
static void test_user_open(void **state)
{
	char err[256] = "";
	struct loop *loop = loop_create();
	struct net_open_ctx ctx = { .loop = loop, .err = err, .errlen = sizeof(err) };
	struct net_client *nc;

	assert_non_null(loop);
	nc = net_user_open("net=10.1.0.0/24,restrict=on,hostfwd=tcp:127.0.0.1:0-:22", "u0", &ctx);
	assert_non_null(nc);
	assert_string_equal(err, "");
	assert_string_equal(nc->info, "net=10.1.0.0,restrict=on");
	assert_true(nc->user_mode);
	net_client_close(nc);
	/* A forward that cannot be parsed fails the open with its reason. */
	assert_null(net_user_open("hostfwd=tcp::x-:22", "u1", &ctx));
	assert_non_null(strstr(err, "invalid host forwarding rule"));
	err[0] = '\0';
	assert_null(net_user_open("guestfwd=bogus", "u2", &ctx));
	assert_true(err[0] != '\0');
	loop_destroy(loop);
}

static void test_pci_slot_clashes(void **state)
{
	struct vm_config cfg;

	assert_int_equal(PARSE(&cfg, "-device", "virtio-rng-pci,addr=3", "-device",
			       "virtio-rng-pci,addr=4"), 0);
	options_free(&cfg);
	assert_int_equal(PARSE(&cfg, "-device", "virtio-rng-pci,addr=3", "-device",
			       "virtio-balloon-pci,addr=3"), -1);
	assert_int_equal(PARSE(&cfg, "-device", "virtio-rng-pci,addr=1"), -1);	/* PIIX3 */
}

static void test_mac_parse_and_derive(void **state)
{
	uint8_t a[6], b[6], c[6];
	char s[18];

	assert_true(net_mac_parse("52:54:00:AB:cd:0f", a));
	net_mac_format(a, s);
	assert_string_equal(s, "52:54:00:ab:cd:0f");
	assert_false(net_mac_parse("52:54:00:ab:cd", a));
	assert_false(net_mac_parse("52:54:00:ab:cd:0g", a));

	net_mac_derive("vm1", NULL, 0, a);
	net_mac_derive("vm1", NULL, 0, b);
	assert_memory_equal(a, b, 6);		/* stable */
	assert_int_equal(a[0], 0x52);
	assert_int_equal(a[1], 0x54);
	assert_int_equal(a[2], 0x00);
	net_mac_derive("vm1", NULL, 1, c);
	assert_memory_not_equal(a, c, 6);	/* per NIC */
	net_mac_derive("vm2", NULL, 0, c);
	assert_memory_not_equal(a, c, 6);	/* per VM */
	uint8_t uuid[16] = { 1, 2, 3 };
	net_mac_derive("vm1", uuid, 0, c);
	assert_memory_not_equal(a, c, 6);	/* the UUID wins over the name */
	net_mac_derive(NULL, NULL, 1, c);
	net_mac_format(c, s);
	assert_string_equal(s, "52:54:00:12:34:57");	/* QEMU's default, + index */
}

static void test_mac_claim(void **state)
{
	char dir[] = "/tmp/kestrel-mac-XXXXXX", err[256];
	uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 }, other[6] = { 0x52, 0x54, 0, 1, 2, 4 };
	int fd1, fd2, fd3;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(net_mac_claim(dir, mac, "first", &fd1, err, sizeof(err)), 0);
	/* OFD locks conflict between open file descriptions, even in one process. */
	assert_int_equal(net_mac_claim(dir, mac, "second", &fd2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "52:54:00:01:02:03"));
	assert_non_null(strstr(err, "name first"));
	assert_int_equal(net_mac_claim(dir, other, "second", &fd3, err, sizeof(err)), 0);
	close(fd1);
	assert_int_equal(net_mac_claim(dir, mac, "second", &fd2, err, sizeof(err)), 0);
	close(fd2);
	close(fd3);
	char path[128];
	snprintf(path, sizeof(path), "%s/52:54:00:01:02:03", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/52:54:00:01:02:04", dir);
	unlink(path);
	rmdir(dir);
}

struct sink {
	struct net_client nc;
	int frames;
	size_t bytes;
};

static ssize_t sink_receive(struct net_client *nc, const struct iovec *iov, int iovcnt)
{
	struct sink *s = nc->opaque;

	s->frames++;
	s->bytes += net_iov_size(iov, iovcnt);
	return (ssize_t)net_iov_size(iov, iovcnt);
}

static const struct net_client_ops sink_ops = { .type = "test", .receive = sink_receive };

static void test_hub_floods_other_ports(void **state)
{
	struct net_hub *hub = net_hub_new(0);
	struct sink s[3];
	uint8_t frame[60] = { 0 };
	struct iovec iov = { frame, sizeof(frame) };

	for (int i = 0; i < 3; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].nc.ops = &sink_ops;
		s[i].nc.opaque = &s[i];
		net_connect(net_hub_port(hub), &s[i].nc);
	}
	assert_int_equal(net_send(&s[0].nc, &iov, 1), 60);
	assert_int_equal(s[0].frames, 0);	/* never back to the sender */
	assert_int_equal(s[1].frames, 1);
	assert_int_equal(s[2].frames, 1);
	assert_int_equal(s[2].bytes, 60);
	net_hub_free(hub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_nic_and_tap),
		cmocka_unit_test(test_user_open),
		cmocka_unit_test(test_netdev_device_and_nic),
		cmocka_unit_test(test_e1000_model),
		cmocka_unit_test(test_net_errors),
		cmocka_unit_test(test_backends_check_without_opening),
		cmocka_unit_test(test_pci_slot_clashes),
		cmocka_unit_test(test_mac_parse_and_derive),
		cmocka_unit_test(test_mac_claim),
		cmocka_unit_test(test_hub_floods_other_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
