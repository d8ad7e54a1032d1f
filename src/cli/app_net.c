#include "cli/app_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"

static struct net_client *open_backend(const struct netdev_config *nd, struct net_open_ctx *ctx)
{
	if (!strcmp(nd->type, "tap"))
		return net_tap_open(nd->args, nd->id, ctx);
	if (!strcmp(nd->type, "user"))
		return net_user_open(nd->args, nd->id, ctx);
	if (!strcmp(nd->type, "socket"))
		return net_socket_open(nd->args, nd->id, ctx);
	if (!strcmp(nd->type, "bridge"))
		return net_bridge_open(nd->args, nd->id, ctx);
	snprintf(ctx->err, ctx->errlen, "unsupported type");
	return NULL;
}

static struct net_hub *hub_for(struct app_net *net, int vlan)
{
	for (unsigned i = 0; i < net->nr_hubs; i++)
		if (net_hub_vlan(net->hubs[i]) == vlan)
			return net->hubs[i];
	struct net_hub *hub = net_hub_new(vlan);
	if (hub)
		net->hubs[net->nr_hubs++] = hub;
	return hub;
}

static int hub_link(struct app_net *net, int vlan, struct net_client *nc, const char *what)
{
	struct net_hub *hub = hub_for(net, vlan);
	struct net_client *port = hub ? net_hub_port(hub) : NULL;

	if (!port) {
		log_error("%s: hub %d has no free port", what, vlan);
		return -1;
	}
	net_connect(port, nc);
	return 0;
}

/*
 * Whether the NIC's frames can reach other hosts' or VMs' Ethernet: only then
 * does a MAC clash matter.  User-mode networking is private to this process.
 */
static bool reaches_outside(const struct vm_config *cfg, const struct nic_config *nic)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		const struct netdev_config *nd = &cfg->netdevs[i];
		bool linked = nic->vlan >= 0 ? nd->vlan == nic->vlan : !strcmp(nd->id, nic->netdev);
		if (linked && strcmp(nd->type, "user") != 0)
			return true;
	}
	return false;
}

#define IPXE_ROM_DIR "/usr/lib/ipxe/qemu"	/* Debian's ipxe-qemu */

/*
 * The NIC's PXE ROM from Debian's ipxe-qemu, as QEMU's romfile= default
 * (efi-e1000.rom, efi-virtio.rom), only when firmware runs: a -kernel boot
 * (without -bios) never executes it.  A default ROM that is not installed is no error.
 */
static int load_rom(const struct vm_config *cfg, const struct nic_config *nic,
		    struct nic_rom *rom)
{
	char path[512];
	const char *file = nic->romfile_set ? nic->romfile
			   : nic->e1000 ? "efi-e1000.rom" : "efi-virtio.rom";

	if (!vm_config_firmware_boot(cfg) || !*file)
		return 0;
	if (strchr(file, '/'))
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s", IPXE_ROM_DIR, file);
	if (!nic->romfile_set && access(path, R_OK) != 0)
		return 0;
	if (file_read_all("romfile", path, 16 << 20, &rom->data, &rom->len) < 0)
		return -1;
	return 0;
}

/*
 * vhost=on hands a TAP's frames to the kernel, which only a virtio-net NIC
 * linked to it directly can drive: not a hub (vlan=), not an e1000.  Say so
 * rather than run without it.
 */
static int check_vhost(const struct vm_config *cfg, struct net_client *const *netdevs)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		const struct netdev_config *nd = &cfg->netdevs[i];
		int fd;
		bool virtio = false;

		if (!netdevs[i]->ops->vhost || !netdevs[i]->ops->vhost(netdevs[i], 0, &fd))
			continue;
		for (unsigned j = 0; nd->vlan < 0 && j < cfg->nr_nics; j++)
			if (!strcmp(cfg->nics[j].netdev, nd->id) && !cfg->nics[j].e1000)
				virtio = true;
		if (!virtio) {
			log_error("-netdev %s,id=%s: vhost=on needs a virtio-net-pci NIC linked to it "
				  "directly (-netdev with -device virtio-net-pci, or -nic "
				  "...,model=virtio-net-pci), not %s", nd->type, nd->id,
				  nd->vlan >= 0 ? "a hub (vlan=)" : "an e1000 or no NIC");
			return -1;
		}
	}
	return 0;
}

int app_net_check(const struct vm_config *cfg)
{
	char err[512];
	struct net_open_ctx ctx = { .vm_name = cfg->name, .err = err, .errlen = sizeof(err),
				    .check_only = true };

	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		const struct netdev_config *nd = &cfg->netdevs[i];
		struct net_client *nc;

		err[0] = '\0';
		nc = open_backend(nd, &ctx);	/* every back end stops before opening */
		if (nc)
			net_client_close(nc);
		else if (err[0]) {
			log_error("-netdev %s,id=%s: %s", nd->type, nd->id, err);
			return -1;
		}
	}
	return 0;
}

int app_net_open(struct app_net *net, const struct vm_config *cfg, struct loop *loop)
{
	char err[512];
	struct net_open_ctx ctx = { .loop = loop, .vm_name = cfg->name, .err = err,
				    .errlen = sizeof(err) };

	for (unsigned i = 0; i < VM_MAX_NICS; i++)
		net->mac_fds[i] = -1;
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		const struct netdev_config *nd = &cfg->netdevs[i];
		err[0] = '\0';
		net->netdevs[i] = open_backend(nd, &ctx);
		if (!net->netdevs[i]) {
			log_error("-netdev %s,id=%s: %s", nd->type, nd->id, err);
			return -1;
		}
		if (nd->vlan >= 0 && hub_link(net, nd->vlan, net->netdevs[i], nd->id) < 0)
			return -1;
	}
	for (unsigned i = 0; i < cfg->nr_nics; i++) {
		const struct nic_config *nic = &cfg->nics[i];
		uint8_t mac[6];
		char macs[18];

		if (nic->has_mac)
			memcpy(mac, nic->mac, 6);
		else
			net_mac_derive(cfg->name, cfg->has_uuid ? cfg->uuid : NULL, i, mac);
		if (nic->e1000 ? e1000_init(&net->e1000s[i], nic->name, mac) < 0
			       : virtio_net_init(&net->nics[i], nic->name, mac,
						 nic->pairs ? nic->pairs : 1) < 0) {
			log_error("%s: out of memory", nic->name);
			return -1;
		}
		struct net_client *nc = nic->e1000 ? &net->e1000s[i].nc : &net->nics[i].nc;
		if (load_rom(cfg, nic, &net->roms[i]) < 0)
			return -1;
		net->nr_nics++;
		net_mac_format(mac, macs);
		if (!nic->dup_allow && reaches_outside(cfg, nic) &&
		    net_mac_claim(NET_MAC_LOCK_DIR, mac, cfg->name, &net->mac_fds[i], err,
				  sizeof(err)) < 0) {
			log_error("%s: %s", nic->name, err);
			return -1;
		}
		if (nic->vlan >= 0) {
			if (hub_link(net, nic->vlan, nc, nic->name) < 0)
				return -1;
		} else if (nic->netdev[0]) {
			for (unsigned j = 0; j < cfg->nr_netdevs; j++)
				if (!strcmp(cfg->netdevs[j].id, nic->netdev))
					net_connect(nc, net->netdevs[j]);
		}
		log_debug("%s: MAC %s", nic->name, macs);
	}
	return check_vhost(cfg, net->netdevs);
}

void app_net_close(struct app_net *net, const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		net_client_close(net->netdevs[i]);
		net->netdevs[i] = NULL;
	}
	for (unsigned i = 0; i < net->nr_hubs; i++)
		net_hub_free(net->hubs[i]);
	net->nr_hubs = 0;
	for (unsigned i = 0; i < net->nr_nics; i++) {
		free(net->roms[i].data);
		net->roms[i] = (struct nic_rom){ 0 };
		if (cfg->nics[i].e1000)
			e1000_release(&net->e1000s[i]);
		else
			virtio_net_release(&net->nics[i]);
		if (net->mac_fds[i] >= 0)
			close(net->mac_fds[i]);
		net->mac_fds[i] = -1;
	}
	net->nr_nics = 0;
}

/* ---- the monitors' view: "info network", "info usernet", query-rx-filter ---- */

/* QEMU names a NIC without id= after its model and a per-model count: "e1000.0". */
static void nic_name(const struct vm_config *cfg, unsigned i, char *buf, size_t len)
{
	const struct nic_config *nic = &cfg->nics[i];
	unsigned same = 0;

	if (strncmp(nic->name, "nic.", 4) != 0) {
		snprintf(buf, len, "%s", nic->name);
		return;
	}
	for (unsigned j = 0; j < i; j++)
		same += strncmp(cfg->nics[j].name, "nic.", 4) == 0 &&
			cfg->nics[j].e1000 == nic->e1000;
	snprintf(buf, len, "%s.%u", nic->e1000 ? "e1000" : "virtio-net-pci", same);
}

/* The virtio-net receive filter, as virtio_net_query_rxfilter reads it. */
static void nic_filter(struct virtio_net *n, struct net_info *o)
{
	unsigned entries;

	if (n->vdev)
		pthread_mutex_lock(&n->vdev->lock);
	o->rx_filter = true;
	o->promisc = n->promisc;
	o->allmulti = n->allmulti;
	o->alluni = n->alluni;
	o->nomulti = n->nomulti;
	o->nouni = n->nouni;
	o->nobcast = n->nobcast;
	o->uni_overflow = n->uni_overflow;
	o->multi_overflow = n->multi_overflow;
	entries = n->uni_entries + n->multi_entries;
	if (entries > CONTROL_NET_MACS)
		entries = CONTROL_NET_MACS;
	o->uni_entries = n->uni_entries < entries ? n->uni_entries : entries;
	o->multi_entries = entries - o->uni_entries;
	memcpy(o->mac_table, n->mac_table, 6 * (size_t)entries);
	if (n->vdev)
		pthread_mutex_unlock(&n->vdev->lock);
}

static const char *client_type(const struct net_client *nc)
{
	if (!nc->ops)
		return "none";
	return strcmp(nc->ops->type, "hub") == 0 ? "hubport" : nc->ops->type;
}

static unsigned add_client(struct net_client **all, struct net_info *out, unsigned n,
			   unsigned max, struct net_client *nc, const char *name)
{
	if (n < max) {
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].name, sizeof(out[n].name), "%s", name);
		out[n].type = client_type(nc);
		snprintf(out[n].info, sizeof(out[n].info), "%s", nc->info);
		out[n].hub = -1;
		all[n] = nc;
	}
	return n + 1;
}

unsigned app_net_describe(struct app_net *net, const struct vm_config *cfg, struct net_info *out,
			  unsigned max)
{
	struct net_client *all[VM_MAX_NETDEVS + VM_MAX_NICS * 2 + 64];
	unsigned n = 0;
	char name[32], mac[18];

	if (max > sizeof(all) / sizeof(all[0]))
		max = sizeof(all) / sizeof(all[0]);
	for (unsigned i = 0; i < cfg->nr_netdevs; i++)
		if (net->netdevs[i])
			n = add_client(all, out, n, max, net->netdevs[i], net->netdevs[i]->id);
	for (unsigned i = 0; i < cfg->nr_nics && i < net->nr_nics; i++) {
		const struct nic_config *nic = &cfg->nics[i];
		struct net_client *nc = nic->e1000 ? &net->e1000s[i].nc : &net->nics[i].nc;
		const uint8_t *m = nic->e1000 ? net->e1000s[i].mac : net->nics[i].mac;
		nic_name(cfg, i, name, sizeof(name));
		if (add_client(all, out, n, max, nc, name) > max) {
			n++;
			continue;
		}
		out[n].type = "nic";
		net_mac_format(m, mac);
		/* net.c qemu_format_nic_info_str */
		snprintf(out[n].info, sizeof(out[n].info), "model=%s,macaddr=%s",
			 nic->e1000 ? "e1000" : "virtio-net-pci", mac);
		memcpy(out[n].mac, m, 6);
		if (!nic->e1000)
			nic_filter(&net->nics[i], &out[n]);
		n++;
	}
	for (unsigned h = 0; h < net->nr_hubs; h++) {
		for (unsigned p = 0; p < net_hub_nports(net->hubs[h]); p++) {
			struct net_client *port = net_hub_get_port(net->hubs[h], p);
			if (add_client(all, out, n, max, port, port->id) <= max)
				out[n].hub = net_hub_vlan(net->hubs[h]);
			n++;
		}
	}
	for (unsigned i = 0; i < n && i < max; i++) {
		out[i].peer = -1;
		for (unsigned j = 0; j < n && j < max; j++)
			if (all[i]->peer && all[i]->peer == all[j])
				out[i].peer = (int)j;
	}
	return n;
}

char *app_net_usernet(struct app_net *net, const struct vm_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++)
		if (net->netdevs[i] && strcmp(net->netdevs[i]->id, name) == 0)
			return net_user_connection_info(net->netdevs[i]);
	return NULL;
}
