/*
 * Guest memory and the balloon on the command line: -object memory-backend-*,
 * -mem-path, -mem-prealloc, -numa, -overcommit, -machine mem-merge= and
 * memory-backend=, -balloon and -device virtio-balloon-pci, with QEMU 7.2's
 * names, defaults and (where practical) error wording.
 */
#include <stdlib.h>
#include <string.h>

#include "block/block.h"
#include "cli/options_internal.h"
#include "util/log.h"
#include "util/size.h"

static struct memdev_config *find_memdev(struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->memory.nr_memdevs; i++)
		if (strcmp(cfg->memory.memdevs[i].id, id) == 0)
			return &cfg->memory.memdevs[i];
	return NULL;
}

/* An on/off key; *given (if not NULL) says whether it was there at all. */
static bool get_bool(struct opts *o, const char *key, bool *out, bool *given)
{
	if (given)
		*given = opts_get(o, key) != NULL;
	return opts_get_bool(o, key, out);
}

/*
 * A list of numbers and ranges, "0-3", "0:2-3" (QEMU repeats the key instead,
 * cpus=0,cpus=2; our option lists keep the last one, so ':' joins them).
 */
static bool parse_ranges(const char *s, unsigned max, uint8_t *bitmap)
{
	while (*s) {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;

		if (end == s)
			return false;
		if (*end == '-') {
			s = end + 1;
			hi = strtoul(s, &end, 10);
			if (end == s)
				return false;
		}
		if (lo > hi || hi >= max)
			return false;
		for (unsigned long i = lo; i <= hi; i++)
			bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
		s = end;
		if (*s == ':')
			s++;
		else if (*s)
			return false;
	}
	return true;
}

static int parse_policy(const char *s, enum memory_policy *out)
{
	static const char *const names[] = { "default", "preferred", "bind", "interleave" };

	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum memory_policy)i;
			return 0;
		}
	}
	return -1;
}

/* qom-type=: which memory backend (memfd shares unless share= says otherwise). */
static int backend_kind(struct opts *o, const char *type, struct memory_backing *b,
			const char *opt, const char *arg)
{
	char msg[128];

	if (!type)
		return err_invalid(opt, arg, "Parameter 'qom-type' is missing");
	if (!strcmp(type, "memory-backend-ram")) {
		b->kind = MEMORY_ANON;
	} else if (!strcmp(type, "memory-backend-file")) {
		b->kind = MEMORY_FILE;
	} else if (!strcmp(type, "memory-backend-memfd")) {
		b->kind = MEMORY_MEMFD;
		if (!opts_get(o, "share"))
			b->share = true;	/* QEMU's memfd default; an explicit share= was read */
	} else {
		snprintf(msg, sizeof(msg), "invalid object type: %s", type);
		return err_invalid(opt, arg, msg);
	}
	return 0;
}

/* host-nodes= and policy= (mbind(2)): each needs the other, as QEMU checks. */
static int backend_placement(struct memory_backing *b, const char *nodes, const char *policy,
			     const char *opt, const char *arg)
{
	uint8_t nodemap[8] = { 0 };

	if (nodes && !parse_ranges(nodes, 64, nodemap))
		return err_invalid(opt, arg,
				   "host-nodes= must be node numbers or ranges below 64 (0-1:3)");
	memcpy(&b->host_nodes, nodemap, sizeof(nodemap));
	if (policy && parse_policy(policy, &b->policy) < 0)
		return err_invalid(opt, arg, "policy= must be default, preferred, bind or interleave");
	if (b->policy == MEMORY_POLICY_DEFAULT && b->host_nodes)
		return err_invalid(opt, arg, "host-nodes must be empty for policy default, or you "
				   "should explicitly specify a policy other than default");
	if (b->policy != MEMORY_POLICY_DEFAULT && !b->host_nodes)
		return err_invalid(opt, arg,
				   "host-nodes must be set for policy bind, preferred or interleave");
	return 0;
}

/*
 * align= belongs to memory-backend-file only (QEMU: "Invalid parameter
 * 'align'" elsewhere) and must be a page multiple.  Guest RAM is always
 * mapped at a 2 MiB (or huge page) boundary (core/memory.c), so any valid
 * alignment up to that is already met; a larger one is refused, not ignored.
 */
static int backend_align(const struct memory_backing *b, const char *align, const char *opt,
			 const char *arg)
{
	uint64_t n;
	char msg[160];

	if (!align)
		return 0;
	if (b->kind != MEMORY_FILE)
		return err_invalid(opt, arg, "Invalid parameter 'align'");
	if (!size_parse(align, 1, &n))
		return err_invalid(opt, arg, "align= must be a size");
	if (n % 4096) {
		snprintf(msg, sizeof(msg), "alignment 0x%llx must be multiples of page size 0x1000",
			 (unsigned long long)n);
		return err_invalid(opt, arg, msg);
	}
	if (n > (2u << 20)) {
		snprintf(msg, sizeof(msg), "align=0x%llx is above the 2 MiB guest RAM is mapped at; "
			 "not supported", (unsigned long long)n);
		return err_invalid(opt, arg, msg);
	}
	return 0;
}

/*
 * -object secret,id=,data=|file= (QEMU's qcrypto secret, format=raw): the
 * passphrase that a luks drive's key-secret= names, kept by the block layer.
 */
static int object_secret(struct opts *o, const char *opt, const char *arg)
{
	const char *id = opts_get(o, "id"), *data = opts_get(o, "data");
	const char *file = opts_get(o, "file"), *format = opts_get(o, "format");
	char buf[4096];
	size_t len = 0;

	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (!id || !*id)
		return err_invalid(opt, arg, "Parameter 'id' is missing");
	if (format && strcmp(format, "raw"))
		return err_invalid(opt, arg, "format=base64 secrets are not supported by kestrel "
				   "(give the passphrase as data= or file=)");
	if (!data == !file)
		return err_invalid(opt, arg, data ? "'file' and 'data' are mutually exclusive" :
				   "Either 'file' or 'data' must be provided");
	if (file) {
		FILE *f = fopen(file, "rb");
		if (!f)
			return err_invalid(opt, arg, "Unable to read the secret's file");
		len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		data = buf;
	} else {
		len = strlen(data);
	}
	if (block_secret_add(id, data, len) < 0)
		return err_invalid(opt, arg, "duplicate id (or too many secrets)");
	return 0;
}

/*
 * -object tls-creds-x509|tls-creds-psk,id=,dir=,endpoint=,verify-peer=,username=
 * (qapi/qom.json): credentials for nbd-server-start's tls-creds and nbd
 * drives' tls-creds=, kept by the block layer as secrets are.
 */
static int object_tls_creds(struct opts *o, const char *type, const char *opt, const char *arg)
{
	struct block_tls_creds c = { .id = opts_get(o, "id"), .dir = opts_get(o, "dir"),
				     .verify_peer = true };
	const char *endpoint = opts_get(o, "endpoint");

	c.type = !strcmp(type, "tls-creds-psk") ? BLOCK_TLS_PSK : BLOCK_TLS_X509;
	if (c.type == BLOCK_TLS_PSK)
		c.username = opts_get(o, "username");
	else if (!opts_get_bool(o, "verify-peer", &c.verify_peer))
		return err_invalid(opt, arg, "Parameter 'verify-peer' expects 'on' or 'off'");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (!c.id || !*c.id)
		return err_invalid(opt, arg, "Parameter 'id' is missing");
	if (!c.dir)
		return err_invalid(opt, arg, "Missing 'dir' property value");
	if (endpoint && strcmp(endpoint, "client") && strcmp(endpoint, "server"))
		return err_invalid(opt, arg, "Parameter 'endpoint' does not accept this value");
	c.server = endpoint && !strcmp(endpoint, "server");
	if (c.username && c.server)
		return err_invalid(opt, arg, "username should not be set when endpoint=server");
	if (block_tls_creds_add(&c) < 0)
		return err_invalid(opt, arg, "duplicate id (or too many TLS credentials)");
	return 0;
}

int options_key_secret(struct opts *o, const char *key, struct drive_config *d, const char *opt,
		       const char *arg)
{
	const char *id = opts_get(o, key);

	if (!id)
		return 0;
	if (!block_secret_lookup(id, NULL))
		return err_invalid(opt, arg, "No secret with id (give its -object secret first)");
	if (strlen(id) >= sizeof(d->key_secret))
		return err_invalid(opt, arg, "key-secret id too long");
	strcpy(d->key_secret, id);
	return 0;
}

/* -object memory-backend-{ram,file,memfd},id=,size=,... (qapi/qom.json MemoryBackend*Properties). */
int options_object(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o;
	struct memdev_config m = { 0 };
	struct memory_backing *b = &m.backing;
	const char *type, *id, *size, *path, *nodes, *policy, *hsize, *align;
	bool bad = false;
	int rc = -1;

	if (arg[0] == '{')
		return options_json(options_object, cfg, opt, arg, "qom-type", out);
	o = parse_list(opt, arg, "qom-type");
	if (!o)
		return -1;
	type = opts_get(o, "qom-type");
	if (type && !strcmp(type, "secret")) {
		rc = object_secret(o, opt, arg);
		opts_free(o);
		return rc;
	}
	if (type && !strcmp(type, "throttle-group")) {
		rc = options_object_throttle_group(o, opt, arg);
		opts_free(o);
		return rc;
	}
	if (type && (!strcmp(type, "tls-creds-x509") || !strcmp(type, "tls-creds-psk"))) {
		rc = object_tls_creds(o, type, opt, arg);
		opts_free(o);
		return rc;
	}
	id = opts_get(o, "id");
	size = opts_get(o, "size");
	path = opts_get(o, "mem-path");
	nodes = opts_get(o, "host-nodes");
	policy = opts_get(o, "policy");
	hsize = opts_get(o, "hugetlbsize");
	b->dump = true;
	bad |= !get_bool(o, "merge", &b->merge, &m.merge_given);
	bad |= !get_bool(o, "dump", &b->dump, &m.dump_given);
	bad |= !get_bool(o, "prealloc", &b->prealloc, NULL);
	bad |= !get_bool(o, "share", &b->share, NULL);
	bad |= !get_bool(o, "hugetlb", &b->hugetlb, NULL);
	opts_get(o, "seal");		/* memfd sealing: ours is never handed to anyone */
	align = opts_get(o, "align");
	opts_get(o, "discard-data");
	opts_get(o, "x-use-canonical-path-for-ramblock-id");
	if (backend_kind(o, type, b, opt, arg) < 0 || check_unused(o, opt, arg) < 0)
		goto out;
	if (bad) {
		err_invalid(opt, arg, "merge=, dump=, prealloc=, share= and hugetlb= take on or off");
		goto out;
	}
	if (!id || !*id) {
		err_invalid(opt, arg, "Parameter 'id' is missing");
		goto out;
	}
	if (!size || !size_parse(size, 1, &b->size) || !b->size) {
		err_invalid(opt, arg, "property 'size' of memory-backend must not be zero");
		goto out;
	}
	if (b->kind == MEMORY_FILE && (!path || !*path)) {
		err_invalid(opt, arg, "mem-path property not set");
		goto out;
	}
	if (b->kind != MEMORY_FILE && path) {
		err_invalid(opt, arg, "Invalid parameter 'mem-path'");
		goto out;
	}
	if ((b->hugetlb || hsize) && b->kind != MEMORY_MEMFD) {
		err_invalid(opt, arg, "hugetlb= belongs to memory-backend-memfd; use mem-path= on hugetlbfs");
		goto out;
	}
	if (hsize && (!size_parse(hsize, 1, &b->hugetlbsize) || b->hugetlbsize & (b->hugetlbsize - 1))) {
		err_invalid(opt, arg, "hugetlbsize= must be a power of two size");
		goto out;
	}
	if (backend_placement(b, nodes, policy, opt, arg) < 0 || backend_align(b, align, opt, arg) < 0)
		goto out;
	if (find_memdev(cfg, id)) {
		err_invalid(opt, arg, "duplicate ID");
		goto out;
	}
	if (cfg->memory.nr_memdevs == VM_MAX_MEMDEVS) {
		err_invalid(opt, arg, "too many memory backends");
		goto out;
	}
	snprintf(m.id, sizeof(m.id), "%s", id);
	if (path && !(m.path = strdup(path))) {
		err_invalid(opt, arg, "out of memory");
		goto out;
	}
	cfg->memory.memdevs[cfg->memory.nr_memdevs++] = m;
	rc = 0;
out:
	opts_free(o);
	return rc;
}

/* -machine mem-merge=, memory-backend=, dump-guest-core= (called before check_unused). */
int options_machine_memory(struct vm_config *cfg, struct opts *o, const char *opt, const char *arg)
{
	const char *backend = opts_get(o, "memory-backend");

	if (!opts_get_bool(o, "mem-merge", &cfg->memory.mem_merge))
		return err_invalid(opt, arg, "mem-merge= takes on or off");
	/* QEMU: the default of every memory backend's dump= (MADV_DONTDUMP in core/memory.c). */
	if (!opts_get_bool(o, "dump-guest-core", &cfg->memory.dump_guest_core))
		return err_invalid(opt, arg, "dump-guest-core= takes on or off");
	if (backend)
		snprintf(cfg->memory.memory_backend, sizeof(cfg->memory.memory_backend), "%s", backend);
	return 0;
}

static bool node_declared(const struct memory_config *mc, unsigned id)
{
	for (unsigned i = 0; i < mc->nr_nodes; i++)
		if (mc->nodes[i].nodeid == id)
			return true;
	return false;
}

/* -numa node,nodeid=,cpus=,memdev=  and  -numa dist,src=,dst=,val= */
int options_numa(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct memory_config *mc = &cfg->memory;
	struct opts *o = parse_list(opt, arg, "type");
	const char *type, *s;
	uint64_t n;
	int rc = -1;

	if (!o)
		return -1;
	type = opts_get(o, "type");
	if (type && !strcmp(type, "node")) {
		struct numa_node_config node = { .nodeid = mc->nr_nodes };
		const char *cpus = opts_get(o, "cpus"), *memdev = opts_get(o, "memdev");
		if (opts_get(o, "mem")) {
			err_invalid(opt, arg, "Parameter -numa node,mem is not supported by this machine "
				    "type; use -numa node,memdev instead");
			goto out;
		}
		if (opts_get(o, "initiator")) {
			/* QEMU 7.2 numa.c: initiator= is an HMAT option; we build no HMAT. */
			err_invalid(opt, arg, "ACPI Heterogeneous Memory Attribute Table (HMAT) is "
				    "disabled, enable it with -machine hmat=on before using any of "
				    "hmat specific options");
			goto out;
		}
		s = opts_get(o, "nodeid");
		if (check_unused(o, opt, arg) < 0)
			goto out;
		if (s && (!uint_parse(s, &n) || n >= VM_MAX_NUMA_NODES)) {
			err_invalid(opt, arg, "nodeid= must be below 8");
			goto out;
		}
		if (s)
			node.nodeid = (unsigned)n;
		if (mc->nr_nodes == VM_MAX_NUMA_NODES) {
			err_invalid(opt, arg, "too many NUMA nodes (at most 8)");
			goto out;
		}
		for (unsigned i = 0; i < mc->nr_nodes; i++) {
			if (mc->nodes[i].nodeid == node.nodeid) {
				err_invalid(opt, arg, "Duplicate NUMA nodeid");
				goto out;
			}
		}
		if (cpus) {
			if (!parse_ranges(cpus, VM_MAX_CPUS, node.cpus)) {
				err_invalid(opt, arg, "cpus= must be CPU indexes or ranges (0-1:3)");
				goto out;
			}
			node.has_cpus = true;
		}
		if (memdev)
			snprintf(node.memdev, sizeof(node.memdev), "%s", memdev);
		mc->nodes[mc->nr_nodes++] = node;
		rc = 0;
	} else if (type && !strcmp(type, "dist")) {
		uint64_t src, dst, val;
		const char *a = opts_get(o, "src"), *b = opts_get(o, "dst"), *c = opts_get(o, "val");
		if (check_unused(o, opt, arg) < 0)
			goto out;
		if (!a || !b || !c || !uint_parse(a, &src) || !uint_parse(b, &dst) ||
		    !uint_parse(c, &val)) {
			err_invalid(opt, arg, "src=, dst= and val= are needed, as numbers");
			goto out;
		}
		if (src >= VM_MAX_NUMA_NODES || dst >= VM_MAX_NUMA_NODES) {
			err_invalid(opt, arg, "Invalid node");
			goto out;
		}
		if (!node_declared(mc, (unsigned)src) || !node_declared(mc, (unsigned)dst)) {
			err_invalid(opt, arg, "Source/Destination NUMA node is missing. Please use "
				    "'-numa node' option to declare it first.");
			goto out;
		}
		if (val < 10 || val > 255 || (src == dst && val != 10)) {
			err_invalid(opt, arg, src == dst ? "Local distance of node should be 10"
					      : "NUMA distance is invalid, it shouldn't be less than 10");
			goto out;
		}
		mc->distance[src][dst] = (uint8_t)val;
		rc = 0;
	} else if (type && !strcmp(type, "cpu")) {
		err_invalid(opt, arg, "-numa cpu is not supported; use -numa node,cpus=");
	} else {
		err_invalid(opt, arg, "Parameter 'type' expects node or dist");
	}
out:
	opts_free(o);
	return rc;
}

int options_overcommit(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o = parse_list(opt, arg, NULL);
	bool cpu_pm = false;
	int rc = -1;

	if (!o)
		return -1;
	if (!opts_get_bool(o, "mem-lock", &cfg->memory.mem_lock)) {
		err_invalid(opt, arg, "mem-lock= takes on or off");
		goto out;
	}
	/*
	 * cpu-pm=on hands HLT/MWAIT/PAUSE to the guest (KVM_CAP_X86_DISABLE_EXITS);
	 * we do not, so only the default, off, is accepted.
	 */
	if (!opts_get_bool(o, "cpu-pm", &cpu_pm)) {
		err_invalid(opt, arg, "Parameter 'cpu-pm' expects 'on' or 'off'");
		goto out;
	}
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (cpu_pm) {
		err_invalid(opt, arg, "cpu-pm=on (guest-controlled HLT/MWAIT) is not supported");
		goto out;
	}
	rc = 0;
out:
	opts_free(o);
	return rc;
}

static int add_balloon(struct vm_config *cfg, const char *opt, const char *arg, int slot)
{
	struct device_config dev = { .kind = DEVICE_VIRTIO_BALLOON, .slot = slot };

	if (cfg->balloon.enabled)
		return err_invalid(opt, arg, "Only one balloon device is supported");
	if (cfg->nr_devices == VM_MAX_DEVICES)
		return err_invalid(opt, arg, "too many devices");
	cfg->balloon.enabled = true;
	cfg->balloon.slot = slot;
	cfg->devices[cfg->nr_devices++] = dev;
	return 0;
}

/* -device virtio-balloon-pci[,id=][,addr=][,deflate-on-oom=][,free-page-reporting=]... */
int options_balloon_device(struct vm_config *cfg, struct opts *o, int slot, const char *opt,
			   const char *arg)
{
	struct balloon_config *bc = &cfg->balloon;
	const char *id = opts_get(o, "id"), *interval = opts_get(o, "guest-stats-polling-interval");
	bool hint = false;

	if (!opts_get_bool(o, "deflate-on-oom", &bc->deflate_on_oom) ||
	    !opts_get_bool(o, "free-page-reporting", &bc->free_page_reporting) ||
	    !opts_get_bool(o, "free-page-hint", &hint))
		return err_invalid(opt, arg, "deflate-on-oom=, free-page-reporting= take on or off");
	opts_get(o, "bus");
	if (check_unused(o, opt, arg) < 0)
		return -1;
	if (hint)
		return err_invalid(opt, arg, "free-page-hint=on (migration hints) is not supported; "
				   "use free-page-reporting=on");
	if (interval && !uint_parse(interval, &bc->polling_interval))
		return err_invalid(opt, arg, "guest-stats-polling-interval= is a number of seconds");
	if (id)
		snprintf(bc->id, sizeof(bc->id), "%s", id);
	return add_balloon(cfg, opt, arg, slot);
}

/* The seed's -balloon none | virtio[,addr=] (QEMU removed it in 5.0; we keep it). */
int options_balloon(struct vm_config *cfg, const char *opt, const char *arg, FILE *out)
{
	struct opts *o;
	const char *type, *addr;
	int slot = -1, rc = -1;

	if (!strcmp(arg, "none"))
		return 0;
	o = parse_list(opt, arg, "type");
	if (!o)
		return -1;
	type = opts_get(o, "type");
	addr = opts_get(o, "addr");
	if (check_unused(o, opt, arg) < 0)
		goto out;
	if (!type || strcmp(type, "virtio")) {
		err_invalid(opt, arg, "unknown balloon device (supported: virtio, none)");
		goto out;
	}
	if (options_pci_addr(addr, &slot) < 0) {
		err_invalid(opt, arg, "addr= must be a PCI slot 1-31 (function 0)");
		goto out;
	}
	rc = add_balloon(cfg, opt, arg, slot);
out:
	opts_free(o);
	return rc;
}

static void backing_from_memdev(struct memdev_config *m, const struct memory_config *mc,
				struct memory_backing *out)
{
	*out = m->backing;
	out->path = m->path;
	if (!m->merge_given)
		out->merge = mc->mem_merge;
	if (!m->dump_given)
		out->dump = mc->dump_guest_core;
	m->used = true;
}

/* QEMU's numa_default_auto_assign_ram: equal shares aligned to 8 MiB, the rest on the last. */
static uint64_t numa_share(uint64_t ram_size, unsigned nodes, unsigned i)
{
	uint64_t share = (ram_size / nodes) & ~((1ULL << 23) - 1);

	return i == nodes - 1 ? ram_size - share * (nodes - 1) : share;
}

static int check_numa(struct vm_config *cfg)
{
	struct memory_config *mc = &cfg->memory;
	unsigned with_memdev = 0;
	uint64_t total = 0;

	for (unsigned id = 0; id < mc->nr_nodes; id++) {
		unsigned i = 0;
		while (i < mc->nr_nodes && mc->nodes[i].nodeid != id)
			i++;
		if (i == mc->nr_nodes) {
			log_error("numa: Node ID missing: %u", id);
			return -1;
		}
		with_memdev += mc->nodes[i].memdev[0] != 0;
		for (unsigned c = cfg->smp.maxcpus; c < VM_MAX_CPUS; c++) {
			if (mc->nodes[i].cpus[c / 8] >> (c % 8) & 1) {
				log_error("numa: CPU index (%u) should be smaller than maxcpus (%u)", c,
					  cfg->smp.maxcpus);
				return -1;
			}
		}
	}
	if (with_memdev && with_memdev != mc->nr_nodes) {
		log_error("memdev option must be specified for either all or no nodes");
		return -1;
	}
	/*
	 * Nodes without memdev share anonymous RAM; -mem-path would be dropped
	 * there, so refuse the pair as QEMU 7.2 does (no node then holds memory).
	 */
	if (!with_memdev && mc->mem_path) {
		log_error("total memory for NUMA nodes (0x0) should equal RAM size (0x%llx)",
			  (unsigned long long)cfg->ram_size);
		return -1;
	}
	for (unsigned id = 0; id < mc->nr_nodes; id++) {
		struct numa_node_config *node = NULL;
		struct memory_backing *b = &mc->backing[id];
		for (unsigned i = 0; i < mc->nr_nodes; i++)
			if (mc->nodes[i].nodeid == id)
				node = &mc->nodes[i];
		if (!with_memdev) {
			*b = (struct memory_backing){ .kind = MEMORY_ANON, .merge = mc->mem_merge,
						      .dump = mc->dump_guest_core, .prealloc = mc->mem_prealloc,
						      .size = numa_share(cfg->ram_size, mc->nr_nodes, id) };
		} else {
			struct memdev_config *m = find_memdev(cfg, node->memdev);
			if (!m) {
				log_error("-numa node,memdev=%s: memory backend not found", node->memdev);
				return -1;
			}
			if (m->used) {
				log_error("memdev=%s is already used by another node", node->memdev);
				return -1;
			}
			backing_from_memdev(m, mc, b);
		}
		total += b->size;
	}
	if (total != cfg->ram_size) {
		log_error("total memory for NUMA nodes (0x%llx) should equal RAM size (0x%llx)",
			  (unsigned long long)total, (unsigned long long)cfg->ram_size);
		return -1;
	}
	for (unsigned i = 0; i < VM_MAX_NUMA_NODES; i++) {
		for (unsigned j = 0; j < VM_MAX_NUMA_NODES; j++) {
			if (!mc->distance[i][j])
				continue;
			if (i >= mc->nr_nodes || j >= mc->nr_nodes) {
				log_error("-numa dist: node %u does not exist", i >= mc->nr_nodes ? i : j);
				return -1;
			}
		}
	}
	mc->nr_backing = mc->nr_nodes;
	return 0;
}

/* Once every option is read: what backs RAM, in guest-physical order. */
int options_check_memory(struct vm_config *cfg)
{
	struct memory_config *mc = &cfg->memory;
	struct memory_backing *b = &mc->backing[0];

	if (mc->memory_backend[0]) {
		struct memdev_config *m = find_memdev(cfg, mc->memory_backend);
		if (!m) {
			log_error("-machine memory-backend=%s: memory backend not found",
				  mc->memory_backend);
			return -1;
		}
		if (mc->nr_nodes) {
			log_error("-machine memory-backend cannot be combined with -numa node; "
				  "give each node a memdev=");
			return -1;
		}
		if (!mc->ram_size_given)
			cfg->ram_size = m->backing.size;
		if (m->backing.size != cfg->ram_size) {
			log_error("Machine memory size does not match the size of the memory backend");
			return -1;
		}
		backing_from_memdev(m, mc, b);
		mc->nr_backing = 1;
		return 0;
	}
	if (mc->nr_nodes)
		return check_numa(cfg);
	*b = (struct memory_backing){
		.kind = mc->mem_path ? MEMORY_FILE : MEMORY_ANON, .path = mc->mem_path,
		.size = cfg->ram_size, .merge = mc->mem_merge, .dump = mc->dump_guest_core,
		.prealloc = mc->mem_prealloc,
	};
	mc->nr_backing = 1;
	return 0;
}

void options_free_memory(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->memory.nr_memdevs; i++) {
		free(cfg->memory.memdevs[i].path);
		cfg->memory.memdevs[i].path = NULL;
	}
}
