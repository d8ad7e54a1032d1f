/*
 * -net, -netdev, -nic and -device virtio-net-pci: QEMU's network syntax.
 * Options only sort what belongs to the NIC from what belongs to the back
 * end; each back end (src/net/) parses its own keys when it is opened.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/options_internal.h"
#include "net/net.h"
#include "util/log.h"
#include "util/size.h"

static const char *const backend_types[] = { "tap", "user", "socket", "bridge" };

static bool is_backend(const char *type)
{
	for (size_t i = 0; i < sizeof(backend_types) / sizeof(backend_types[0]); i++)
		if (strcmp(type, backend_types[i]) == 0)
			return true;
	return false;
}

static bool model_is_e1000(const char *model)
{
	return !strcmp(model, "e1000") || !strcmp(model, "e1000-82540em");
}

static bool nic_model_ok(const char *model)
{
	return !strcmp(model, "virtio") || !strcmp(model, "virtio-net-pci") ||
	       !strcmp(model, "virtio-net") || model_is_e1000(model);
}

void options_nic_models(FILE *out)
{
	fprintf(out, "Supported NIC models:\ne1000 (alias e1000-82540em; the default)\n"
		     "virtio-net-pci (alias virtio)\n");
}

/* The first word of a -net/-netdev/-nic argument: the type. */
static void type_word(const char *arg, char *type, size_t len)
{
	size_t n = strcspn(arg, ",");

	snprintf(type, len, "%.*s", (int)(n < len ? n : len - 1), arg);
}

/*
 * A -net or -nic argument: its type word into type, then 1 with the option
 * list in *o; 0 for "none" (no NIC, nothing to do); -1 after logging.
 */
static int front_list(const char *opt, const char *arg, char *type, size_t len, struct opts **o)
{
	type_word(arg, type, len);
	if (strcmp(type, "none") == 0)
		return 0;
	*o = parse_list(opt, arg, "type");
	return *o ? 1 : -1;
}

/* Rebuilds "k=v,k=v" from o, leaving out the keys the front end took; commas doubled. */
static char *backend_args(const struct opts *o, const char *const *skip)
{
	size_t cap = 16;
	char *s;

	for (size_t i = 0; i < o->count; i++)
		cap += 2 * (strlen(o->items[i].key) + strlen(o->items[i].value)) + 2;
	s = calloc(1, cap);
	if (!s)
		return NULL;
	for (size_t i = 0; i < o->count; i++) {
		bool drop = !strcmp(o->items[i].key, "type");
		for (const char *const *k = skip; *k && !drop; k++)
			drop = !strcmp(o->items[i].key, *k);
		if (drop)
			continue;
		if (*s)
			strcat(s, ",");
		strcat(s, o->items[i].key);
		strcat(s, "=");
		char *p = s + strlen(s);
		for (const char *v = o->items[i].value; *v; v++) {
			*p++ = *v;
			if (*v == ',')
				*p++ = ',';
		}
		*p = '\0';
	}
	return s;
}

static struct netdev_config *find_netdev(struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++)
		if (strcmp(cfg->netdevs[i].id, id) == 0)
			return &cfg->netdevs[i];
	return NULL;
}

static int add_netdev(struct vm_config *cfg, const char *opt, const char *arg, const char *type,
		      const char *id, int vlan, struct opts *o, const char *const *skip)
{
	struct netdev_config *nd;
	char msg[96];

	if (find_netdev(cfg, id)) {
		snprintf(msg, sizeof(msg), "Duplicate ID '%s' for netdev", id);
		return err_invalid(opt, arg, msg);
	}
	if (cfg->nr_netdevs == VM_MAX_NETDEVS)
		return err_invalid(opt, arg, "too many network back ends");
	if (strlen(id) >= sizeof(nd->id))
		return err_invalid(opt, arg, "id= is too long");
	nd = &cfg->netdevs[cfg->nr_netdevs];
	memset(nd, 0, sizeof(*nd));
	snprintf(nd->type, sizeof(nd->type), "%s", type);
	snprintf(nd->id, sizeof(nd->id), "%s", id);
	nd->vlan = vlan;
	nd->args = backend_args(o, skip);
	if (!nd->args)
		return err_invalid(opt, arg, "out of memory");
	cfg->nr_netdevs++;
	return 0;
}

static int get_vlan(struct opts *o, int *vlan)
{
	const char *v = opts_get(o, "vlan");
	uint64_t n;

	if (!v)
		return 0;
	if (!uint_parse(v, &n) || n > 4095)
		return -1;
	*vlan = (int)n;
	return 0;
}

/* The NIC properties common to -net nic, -nic and -device; marks them used in o. */
static int nic_props(struct opts *o, const char *mac_key, struct nic_config *nic, int *slot,
		     const char *opt, const char *arg)
{
	const char *mac = opts_get(o, mac_key), *model = opts_get(o, "model");
	const char *vectors = opts_get(o, "vectors"), *dup = opts_get(o, "dup");
	const char *romfile = opts_get(o, "romfile");
	char msg[200];
	uint64_t n;

	if (model && !nic_model_ok(model)) {
		snprintf(msg, sizeof(msg), "unsupported NIC model '%s' (supported: e1000, "
			 "virtio-net-pci, alias virtio; see model=help)", model);
		return err_invalid(opt, arg, msg);
	}
	if (model)
		nic->e1000 = model_is_e1000(model);
	if (romfile) {
		if (strlen(romfile) >= sizeof(nic->romfile))
			return err_invalid(opt, arg, "romfile= is too long");
		strcpy(nic->romfile, romfile);
		nic->romfile_set = true;
	}
	if (mac) {
		if (!net_mac_parse(mac, nic->mac) || (nic->mac[0] & 1))
			return err_invalid(opt, arg, "invalid MAC address (a unicast xx:xx:xx:xx:xx:xx)");
		nic->has_mac = true;
	}
	if (vectors) {
		if (!uint_parse(vectors, &n) || n > 1024)
			return err_invalid(opt, arg, "vectors= must be a number of MSI-X vectors");
		nic->vectors = (unsigned)n;
	}
	if (dup) {
		if (strcmp(dup, "allow") && strcmp(dup, "deny"))
			return err_invalid(opt, arg, "dup= must be allow or deny");
		nic->dup_allow = !strcmp(dup, "allow");
	}
	if (options_pci_addr(opts_get(o, "addr"), slot) < 0)
		return err_invalid(opt, arg, "addr= must be a PCI slot 1-31 (function 0)");
	return 0;
}

static int add_nic(struct vm_config *cfg, const char *opt, const char *arg,
		   const struct nic_config *nic, int slot)
{
	struct device_config dev = { .kind = nic->e1000 ? DEVICE_E1000 : DEVICE_VIRTIO_NET,
				     .slot = slot, .nic = cfg->nr_nics };

	if (cfg->nr_nics == VM_MAX_NICS)
		return err_invalid(opt, arg, "too many NICs");
	if (cfg->nr_devices == VM_MAX_DEVICES)
		return err_invalid(opt, arg, "too many devices");
	cfg->nics[cfg->nr_nics++] = *nic;
	cfg->devices[cfg->nr_devices++] = dev;
	return 0;
}

/* -net nic[,vlan=n][,macaddr=][,model=][,name=][,addr=][,vectors=][,netdev=] or -net TYPE,... */
int options_net(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const skip[] = { "vlan", "name", "id", NULL };
	struct opts *o;
	char type[16], id[32];
	int rc = -1, vlan = 0, slot = -1;

	rc = front_list(opt, arg, type, sizeof(type), &o);
	if (rc <= 0)
		return rc;
	rc = -1;
	if (strcmp(type, "nic") == 0) {
		/* e1000 unless model= says otherwise: QEMU's default NIC on the pc machine. */
		struct nic_config nic = { .vlan = 0, .e1000 = true };
		const char *model = opts_get(o, "model"), *name = opts_get(o, "name");
		const char *netdev = opts_get(o, "netdev");
		opts_get(o, "id");
		opts_get(o, "type");
		if (model && (!strcmp(model, "help") || !strcmp(model, "?"))) {
			options_nic_models(out);
			rc = 1;
			goto out;
		}
		if (get_vlan(o, &nic.vlan) < 0) {
			err_invalid(opt, arg, "vlan= must be a number 0-4095");
			goto out;
		}
		if (nic_props(o, "macaddr", &nic, &slot, opt, arg) < 0 || check_unused(o, opt, arg) < 0)
			goto out;
		if (netdev) {
			snprintf(nic.netdev, sizeof(nic.netdev), "%s", netdev);
			nic.vlan = -1;
		}
		snprintf(nic.name, sizeof(nic.name), "%s", name ? name : "");
		if (!name)
			snprintf(nic.name, sizeof(nic.name), "nic.%u", cfg->nr_nics);
		rc = add_nic(cfg, opt, arg, &nic, slot);
	} else if (is_backend(type)) {
		const char *name = opts_get(o, "name"), *idv = opts_get(o, "id");
		if (get_vlan(o, &vlan) < 0) {
			err_invalid(opt, arg, "vlan= must be a number 0-4095");
			goto out;
		}
		/* QEMU names -net back ends "hub0port1" style; name= or id= overrides. */
		snprintf(id, sizeof(id), "%s", name ? name : idv ? idv : "");
		if (!id[0])
			snprintf(id, sizeof(id), "%s.%u", type, cfg->nr_netdevs);
		rc = add_netdev(cfg, opt, arg, type, id, vlan, o, skip);
	} else {
		char msg[160];
		snprintf(msg, sizeof(msg), "unsupported network type '%s' (supported: nic, tap, user, "
			 "socket, bridge, none)", type);
		err_invalid(opt, arg, msg);
	}
out:
	opts_free(o);
	return rc;
}

/* -netdev TYPE,id=ID[,...] */
int options_netdev(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const skip[] = { "id", NULL };
	struct opts *o;
	const char *id;
	char type[16], msg[160];
	int rc = -1;

	if (strcmp(arg, "help") == 0) {
		fprintf(out, "Available netdev backend types:\nsocket\nuser\ntap\nbridge\n");
		return 1;
	}
	if (arg[0] == '{')
		return options_json(options_netdev, cfg, opt, arg, "type", out);
	type_word(arg, type, sizeof(type));
	if (!is_backend(type)) {
		snprintf(msg, sizeof(msg), "unsupported netdev type '%s' (supported: tap, user, "
			 "socket, bridge; see -netdev help)", type);
		return err_invalid(opt, arg, msg);
	}
	o = parse_list(opt, arg, "type");
	if (!o)
		return -1;
	opts_get(o, "type");
	id = opts_get(o, "id");
	if (!id || !*id) {
		err_invalid(opt, arg, "Parameter 'id' is missing");
		goto out;
	}
	rc = add_netdev(cfg, opt, arg, type, id, -1, o, skip);
out:
	opts_free(o);
	return rc;
}

/* -nic [TYPE][,model=][,mac=][,addr=][,...back-end options]: a NIC and its back end at once. */
int options_nic(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	static const char *const skip[] = { "model", "mac", "addr", "vectors", "dup", "id", "romfile",
					    NULL };
	struct nic_config nic = { .vlan = -1, .e1000 = true };	/* QEMU's pc default */
	struct opts *o;
	char type[16], id[32], msg[160];
	int rc = -1, slot = -1;

	rc = front_list(opt, arg, type, sizeof(type), &o);
	if (rc <= 0)
		return rc;
	rc = -1;
	const char *model = opts_get(o, "model");
	opts_get(o, "type");
	if (model && (!strcmp(model, "help") || !strcmp(model, "?"))) {
		options_nic_models(out);
		rc = 1;
		goto out;
	}
	if (!*type)
		snprintf(type, sizeof(type), "user");	/* QEMU's default back end */
	if (!is_backend(type)) {
		snprintf(msg, sizeof(msg), "unsupported network type '%s' (supported: tap, user, "
			 "socket, bridge, none)", type);
		err_invalid(opt, arg, msg);
		goto out;
	}
	if (nic_props(o, "mac", &nic, &slot, opt, arg) < 0)
		goto out;
	opts_get(o, "id");
	/* QEMU's internal name for the back end of a -nic. */
	snprintf(id, sizeof(id), "__nic%u", cfg->nr_nics);
	snprintf(nic.netdev, sizeof(nic.netdev), "%s", id);
	snprintf(nic.name, sizeof(nic.name), "nic.%u", cfg->nr_nics);
	if (add_netdev(cfg, opt, arg, type, id, -1, o, skip) < 0)
		goto out;
	rc = add_nic(cfg, opt, arg, &nic, slot);
out:
	opts_free(o);
	return rc;
}

/* -device virtio-net-pci|e1000,netdev=ID[,mac=][,addr=][,vectors=][,dup=][,id=] */
int options_net_device(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg)
{
	struct nic_config nic = { .vlan = -1, .e1000 = model_is_e1000(opts_get(o, "driver")) };
	const char *netdev = opts_get(o, "netdev"), *id = opts_get(o, "id");
	int slot = -1;

	opts_get(o, "bus");
	if (!opts_get_bool(o, "mq", &nic.mq))
		return err_invalid(opt, arg, "mq= takes on or off");
	if (nic_props(o, "mac", &nic, &slot, opt, arg) < 0 || check_unused(o, opt, arg) < 0)
		return -1;
	if (netdev)
		snprintf(nic.netdev, sizeof(nic.netdev), "%s", netdev);
	snprintf(nic.name, sizeof(nic.name), "%s", id ? id : "");
	if (!id)
		snprintf(nic.name, sizeof(nic.name), "nic.%u", cfg->nr_nics);
	return add_nic(cfg, opt, arg, &nic, slot);
}

/* queues=N of a back end's option list (1 when absent or unreadable: the back end says why). */
static unsigned netdev_queues(const struct netdev_config *nd)
{
	char err[160];
	struct opts *o = opts_parse(nd->args, NULL, err, sizeof(err));
	const char *v = o ? opts_get(o, "queues") : NULL;
	uint64_t n = 1;

	if (v && (!uint_parse(v, &n) || n < 1 || n > NET_MAX_QUEUES))
		n = 1;
	opts_free(o);
	return (unsigned)n;
}

/*
 * With mq=on the NIC gets one queue pair per back-end queue, as QEMU's
 * virtio-net takes its queue count from the netdev: 2 * pairs + 1 virtqueues.
 */
static void set_queue_pairs(struct vm_config *cfg, unsigned i, const struct netdev_config *nd)
{
	struct nic_config *nic = &cfg->nics[i];

	nic->pairs = nic->mq && nd ? netdev_queues(nd) : 1;
	for (unsigned d = 0; d < cfg->nr_devices; d++)
		if (cfg->devices[d].kind == DEVICE_VIRTIO_NET && cfg->devices[d].nic == i)
			cfg->devices[d].num_queues = 2 * nic->pairs + 1;
}

/* Every netdev= names a back end, used by one NIC at most; -net hubs without a NIC are odd. */
int options_check_net(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_nics; i++) {
		const struct nic_config *nic = &cfg->nics[i];
		set_queue_pairs(cfg, i, NULL);
		if (nic->vlan >= 0)
			continue;
		if (!nic->netdev[0]) {
			log_warn("%s: no netdev= given: the NIC is not connected", nic->name);
			continue;
		}
		struct netdev_config *nd = find_netdev(cfg, nic->netdev);
		if (nd && nd->vlan < 0)
			set_queue_pairs(cfg, i, nd);
		if (!nd || nd->vlan >= 0) {
			log_error("-device virtio-net-pci: netdev '%s' not found", nic->netdev);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			if (cfg->nics[j].vlan < 0 && !strcmp(cfg->nics[j].netdev, nic->netdev)) {
				log_error("-device virtio-net-pci,netdev=%s: the netdev is already in "
					  "use by another NIC", nic->netdev);
				return -1;
			}
		}
	}
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		const struct netdev_config *nd = &cfg->netdevs[i];
		bool used = false;
		for (unsigned j = 0; j < cfg->nr_nics; j++)
			used |= nd->vlan >= 0 ? cfg->nics[j].vlan == nd->vlan
					      : !strcmp(cfg->nics[j].netdev, nd->id);
		if (!used)
			log_warn("netdev %s has no peer", nd->id);
	}
	return 0;
}

void options_free_net(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_netdevs; i++) {
		free(cfg->netdevs[i].args);
		cfg->netdevs[i].args = NULL;
	}
}
