/* The VM's network: back ends, hubs and NIC states, opened once and kept across resets. */
#ifndef KESTREL_CLI_APP_NET_H
#define KESTREL_CLI_APP_NET_H

#include "hw/e1000.h"
#include "net/net.h"
#include "ui/control.h"
#include "util/loop.h"
#include "virtio/net.h"
#include "vmm/config.h"
#include "vmm/vm.h"

struct app_net {
	/* NIC i is nics[i] or e1000s[i], as cfg->nics[i].e1000 says. */
	struct virtio_net nics[VM_MAX_NICS];
	struct e1000 e1000s[VM_MAX_NICS];
	struct nic_rom roms[VM_MAX_NICS];	/* PXE ROMs, for firmware boot only */
	unsigned nr_nics;			/* initialised ones */
	int mac_fds[VM_MAX_NICS];		/* MAC claims, held while we run (-1: none) */
	struct net_client *netdevs[VM_MAX_NETDEVS];
	struct net_hub *hubs[VM_MAX_NICS + VM_MAX_NETDEVS];
	unsigned nr_hubs;
};

/*
 * Validates every -netdev's options without opening anything (no socket, TAP
 * or script): run before /dev/kvm is opened.  Logs and returns -1 on a bad one.
 */
int app_net_check(const struct vm_config *cfg);
/* Opens every back end (running ifup scripts), builds hubs, sets up and links the NICs. */
int app_net_open(struct app_net *net, const struct vm_config *cfg, struct loop *loop);
/* The net clients in QEMU's order (ui/control.h struct net_info); returns how many. */
unsigned app_net_describe(struct app_net *net, const struct vm_config *cfg, struct net_info *out,
			  unsigned max);
/* The connection table of user-mode back end name (malloc'd), NULL if none. */
char *app_net_usernet(struct app_net *net, const struct vm_config *cfg, const char *name);
/* Closes the back ends (running downscripts) and drops the MAC claims. */
void app_net_close(struct app_net *net, const struct vm_config *cfg);

#endif
