/*
 * The QMP command handlers, as QEMU's qmp-cmds: names, arguments, replies and
 * error texts from QEMU 7.2's qapi/ schemas.  Each answers through the
 * control table (ui/control.h); the session (qmp.c) frames and dispatches.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/hmp.h"
#include "ui/qmp_int.h"
#include "ui/monitor_display.h"
#include "ui/nbd_cmds.h"
#include "ui/qmp_introspect.h"
#include "ui/qmp_input.h"
#include "ui/qmp_runtime.h"
#include "vmm/config.h"

#ifndef KESTREL_VERSION
#define KESTREL_VERSION "unknown"
#endif

/* The QEMU release whose protocol and command set we answer as. */
#define QMP_QEMU_MAJOR 7
#define QMP_QEMU_MINOR 2
#define QMP_QEMU_MICRO 0

struct json_object *qmp_version_info(void)
{
	struct json_object *v, *q;
	bool ok = true;

	v = qmp_new_obj(&ok);
	q = qmp_new_obj(&ok);
	qmp_put(&ok, q, "major", json_object_new_int(QMP_QEMU_MAJOR));
	qmp_put(&ok, q, "minor", json_object_new_int(QMP_QEMU_MINOR));
	qmp_put(&ok, q, "micro", json_object_new_int(QMP_QEMU_MICRO));
	qmp_put(&ok, v, "qemu", q);
	qmp_put(&ok, v, "package", json_object_new_string("kestrel-" KESTREL_VERSION));
	if (!ok) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* Runs one of the control table's actions; its message becomes the error. */
static int run_action(struct qmp_session *s, int (*fn)(void *, char *, size_t),
		      struct qmp_error *err)
{
	char msg[256] = "";

	if (!fn)
		return qmp_fail(err, "GenericError", "Not supported");
	if (fn(s->ctl->opaque, msg, sizeof(msg)) < 0) {
		msg[sizeof(msg) - 1] = '\0';
		return qmp_fail(err, "GenericError", "%s", msg[0] ? msg : "Operation failed");
	}
	return 0;
}

/* qapi/control.json: 'oob' is the only capability, and the greeting offers it. */
static int cmd_qmp_capabilities(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *enable;

	if (s->negotiated)
		return qmp_fail(err, "CommandNotFound",
				"Capabilities negotiation is already complete, command ignored");
	s->oob = json_object_object_get_ex(args, "enable", &enable) &&
		 json_object_array_length(enable) > 0;
	s->negotiated = true;
	return 0;
}

static int cmd_query_version(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	*ret = qmp_version_info();
	return *ret ? 0 : qmp_oom(err);
}

static int cmd_query_commands(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *c;
	bool ok = list != NULL;

	for (const struct qmp_command *cmd = qmp_command_table(); cmd->name; cmd++) {
		c = qmp_new_obj(&ok);
		qmp_put(&ok, c, "name", json_object_new_string(cmd->name));
		qmp_append(&ok, list, c);
	}
	return qmp_finish(ok, list, ret, err);
}

static int cmd_query_status(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	enum run_state st = s->ctl->run_state ? s->ctl->run_state(s->ctl->opaque)
					       : RUN_STATE_RUNNING;
	struct json_object *r;
	bool ok = true;

	r = qmp_new_obj(&ok);
	qmp_put(&ok, r, "running", json_object_new_boolean(st == RUN_STATE_RUNNING));
	/* -singlestep is TCG-only; KVM never runs single-stepped. */
	qmp_put(&ok, r, "singlestep", json_object_new_boolean(0));
	qmp_put(&ok, r, "status", json_object_new_string(run_state_name(st)));
	return qmp_finish(ok, r, ret, err);
}

static int cmd_query_name(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	const char *name = s->ctl->name ? s->ctl->name(s->ctl->opaque) : NULL;
	struct json_object *r;
	bool ok = true;

	r = qmp_new_obj(&ok);
	if (name)
		qmp_put(&ok, r, "name", json_object_new_string(name));
	return qmp_finish(ok, r, ret, err);
}

static int cmd_query_uuid(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	uint8_t u[16] = { 0 };
	char text[37];
	struct json_object *r;
	bool ok = true;

	if (s->ctl->uuid && !s->ctl->uuid(s->ctl->opaque, u))
		memset(u, 0, sizeof(u));
	snprintf(text, sizeof(text),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
	r = qmp_new_obj(&ok);
	qmp_put(&ok, r, "UUID", json_object_new_string(text));
	return qmp_finish(ok, r, ret, err);
}

static int cmd_query_kvm(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct json_object *r;
	bool ok = true;

	/*
	 * present: the binary has KVM support (always); enabled: the machine
	 * uses it, which -machine none on a host without /dev/kvm does not.
	 */
	r = qmp_new_obj(&ok);
	qmp_put(&ok, r, "enabled", json_object_new_boolean(qmp_kvm_enabled(s)));
	qmp_put(&ok, r, "present", json_object_new_boolean(1));
	return qmp_finish(ok, r, ret, err);
}

/*
 * CpuInfoFast with the x86 CpuInstanceProperties QEMU's pc fills: socket,
 * core and thread (die-id only with dies > 1, which we refuse).  The CPUs are
 * the first devices pc creates, hence QOM paths device[0], device[1], ...
 */
struct json_object *qmp_cpu_props(bool *ok, const struct cpu_info *ci, char *path,
				  size_t pathlen)
{
	struct json_object *props = qmp_new_obj(ok);

	snprintf(path, pathlen, "/machine/unattached/device[%u]", ci->cpu_index);
	qmp_put(ok, props, "socket-id", json_object_new_int64(ci->socket_id));
	qmp_put(ok, props, "core-id", json_object_new_int64(ci->core_id));
	qmp_put(ok, props, "thread-id", json_object_new_int64(ci->thread_index));
	return props;
}

static int cmd_query_cpus_fast(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;
	struct json_object *list = json_object_new_array(), *c, *props;
	struct cpu_info ci;
	char path[64];
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && ok; i++) {
		if (!s->ctl->cpu_info || !s->ctl->cpu_info(s->ctl->opaque, i, &ci))
			continue;	/* not (or no longer) there: not listed */
		c = qmp_new_obj(&ok);
		props = qmp_cpu_props(&ok, &ci, path, sizeof(path));
		qmp_put(&ok, c, "cpu-index", json_object_new_int64(ci.cpu_index));
		qmp_put(&ok, c, "qom-path", json_object_new_string(path));
		qmp_put(&ok, c, "thread-id", json_object_new_int64(ci.thread_id));
		qmp_put(&ok, c, "props", props);
		qmp_put(&ok, c, "target", json_object_new_string("x86_64"));
		qmp_append(&ok, list, c);
	}
	return qmp_finish(ok, list, ret, err);
}

static int cmd_empty_object(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	return qmp_finish(true, json_object_new_object(), ret, err);
}

static int cmd_query_chardev(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct chardev_info local[16], *info = local;
	struct json_object *list, *c;
	unsigned n = 0, max = 16;
	bool ok = true;

	if (s->ctl->chardevs) {
		n = s->ctl->chardevs(s->ctl->opaque, local, max);
		if (n > max) {
			info = calloc(n, sizeof(*info));
			if (!info)
				return qmp_oom(err);
			max = n;
			n = s->ctl->chardevs(s->ctl->opaque, info, max);
			if (n > max)
				n = max;
		}
	}
	list = json_object_new_array();
	ok = list != NULL;
	for (unsigned i = 0; i < n && ok; i++) {
		c = qmp_new_obj(&ok);
		qmp_put(&ok, c, "label", json_object_new_string(info[i].label ? info[i].label : ""));
		qmp_put(&ok, c, "filename",
		    json_object_new_string(info[i].filename ? info[i].filename : ""));
		qmp_put(&ok, c, "frontend-open", json_object_new_boolean(info[i].frontend_open));
		qmp_append(&ok, list, c);
	}
	if (info != local)
		free(info);
	return qmp_finish(ok, list, ret, err);
}

/* PciDeviceInfo (qapi/pci.json): one function's identity, class and regions. */
static struct json_object *pci_function(const struct pci_info *p, bool *ok)
{
	struct json_object *d = qmp_new_obj(ok), *cls = qmp_new_obj(ok), *id = qmp_new_obj(ok);
	struct json_object *regions = json_object_new_array();

	qmp_put(ok, d, "bus", json_object_new_int(0));
	qmp_put(ok, d, "slot", json_object_new_int((int)p->slot));
	qmp_put(ok, d, "function", json_object_new_int((int)p->function));
	qmp_put(ok, cls, "class", json_object_new_int((int)(p->class_code >> 8)));
	qmp_put(ok, d, "class_info", cls);
	qmp_put(ok, id, "device", json_object_new_int(p->device));
	qmp_put(ok, id, "vendor", json_object_new_int(p->vendor));
	qmp_put(ok, id, "subsystem", json_object_new_int(p->subsys));
	qmp_put(ok, id, "subsystem-vendor", json_object_new_int(p->subsys_vendor));
	qmp_put(ok, d, "id", id);
	if (p->pin)
		qmp_put(ok, d, "irq", json_object_new_int(p->irq));
	qmp_put(ok, d, "irq_pin", json_object_new_int(p->pin));
	qmp_put(ok, d, "qdev_id", json_object_new_string(""));
	for (unsigned b = 0; b < 6 && regions; b++) {
		if (!p->bars[b].size)
			continue;
		struct json_object *r = qmp_new_obj(ok);
		qmp_put(ok, r, "bar", json_object_new_int((int)b));
		qmp_put(ok, r, "type", json_object_new_string(p->bars[b].io ? "io" : "memory"));
		qmp_put(ok, r, "address", json_object_new_int64((int64_t)p->bars[b].addr));
		qmp_put(ok, r, "size", json_object_new_int64((int64_t)p->bars[b].size));
		if (!p->bars[b].io) {
			qmp_put(ok, r, "prefetch", json_object_new_boolean(false));
			qmp_put(ok, r, "mem_type_64", json_object_new_boolean(false));
		}
		qmp_append(ok, regions, r);
	}
	if (!regions)
		*ok = false;
	qmp_put(ok, d, "regions", regions);
	return d;
}

static int cmd_query_pci(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *bus, *devs;
	struct pci_info info[32];
	unsigned n = s->ctl->pci_devices ? s->ctl->pci_devices(s->ctl->opaque, info, 32) : 0;
	bool ok = list != NULL;

	/* Bus 0 is always there, even with nothing behind it yet. */
	bus = qmp_new_obj(&ok);
	devs = json_object_new_array();
	ok = ok && devs;
	for (unsigned i = 0; i < n && i < 32 && ok; i++)
		qmp_append(&ok, devs, pci_function(&info[i], &ok));
	qmp_put(&ok, bus, "bus", json_object_new_int(0));
	qmp_put(&ok, bus, "devices", devs);
	qmp_append(&ok, list, bus);
	return qmp_finish(ok, list, ret, err);
}

/* BlockDeviceInfo's limits, in the order of its bps..iops_wr (QAPI names). */
static const int limit_bucket[] = { THROTTLE_BPS_TOTAL, THROTTLE_BPS_READ, THROTTLE_BPS_WRITE,
				    THROTTLE_OPS_TOTAL, THROTTLE_OPS_READ, THROTTLE_OPS_WRITE };
static const char *const limit_qapi[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd",
					  "iops_wr" };

/*
 * A throttled drive's bursts, iops_size and group (QEMU's bdrv_block_device_info:
 * each *_max and its *_max_length only when the burst rate is set).
 */
static void put_limits(bool *ok, struct json_object *ins, const struct drive_info *b)
{
	char key[32];

	for (int i = 0; i < 6; i++) {
		const struct leaky_bucket *k = &b->limits.b[limit_bucket[i]];
		snprintf(key, sizeof(key), "%s_max", limit_qapi[i]);
		if (k->max)
			qmp_put(ok, ins, key, json_object_new_int64((int64_t)k->max));
	}
	for (int i = 0; i < 6; i++) {
		const struct leaky_bucket *k = &b->limits.b[limit_bucket[i]];
		snprintf(key, sizeof(key), "%s_max_length", limit_qapi[i]);
		if (k->max)
			qmp_put(ok, ins, key, json_object_new_int64(k->burst_length));
	}
	if (b->limits.op_size)
		qmp_put(ok, ins, "iops_size", json_object_new_int64((int64_t)b->limits.op_size));
	qmp_put(ok, ins, "group", json_object_new_string(b->group));
}

/*
 * qmp_block_set_io_throttle (blockdev.c): BlockIOThrottle's six rates are
 * required, bursts, their lengths, iops_size and group optional; the drive
 * by device= (its id).  The limits are checked behind set_io_throttle.
 */
static int cmd_block_set_io_throttle(struct qmp_session *s, struct json_object *args,
				     struct json_object **ret, struct qmp_error *err)
{
	struct throttle_config c;
	struct json_object *v;
	const char *device = NULL, *group = NULL;
	char key[32], msg[256] = "";

	if (json_object_object_get_ex(args, "device", &v))
		device = json_object_get_string(v);
	if (json_object_object_get_ex(args, "group", &v))
		group = json_object_get_string(v);
	if (json_object_object_get_ex(args, "id", &v))
		return qmp_fail(err, "GenericError", "Kestrel's block_set_io_throttle names the "
				"drive by 'device' (its -drive id), not by the device's 'id'");
	if (!device)
		return qmp_fail(err, "GenericError", "Need exactly one of 'device' and 'id'");
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < 6; i++) {
		struct leaky_bucket *k = &c.b[limit_bucket[i]];
		k->avg = (uint64_t)json_object_get_int64(json_object_object_get(args, limit_qapi[i]));
		snprintf(key, sizeof(key), "%s_max", limit_qapi[i]);
		if (json_object_object_get_ex(args, key, &v))
			k->max = (uint64_t)json_object_get_int64(v);
		snprintf(key, sizeof(key), "%s_max_length", limit_qapi[i]);
		k->burst_length = 1;
		if (json_object_object_get_ex(args, key, &v))
			k->burst_length = (unsigned)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(args, "iops_size", &v))
		c.op_size = (uint64_t)json_object_get_int64(v);
	if (!s->ctl->set_io_throttle ||
	    s->ctl->set_io_throttle(s->ctl->opaque, device, group, &c, msg, sizeof(msg)) < 0)
		return qmp_fail(err, strstr(msg, "not found") ? "DeviceNotFound" : "GenericError",
				"%s", msg[0] ? msg : "no drives");
	return 0;
}

/*
 * BlockDeviceInfo (qapi/block-core.json): a drive's node, as query-block's
 * "inserted" and query-named-block-nodes describe it.
 */
struct json_object *qmp_block_device_info(const struct drive_info *b, bool *ok)
{
	struct json_object *ins = qmp_new_obj(ok), *img = qmp_new_obj(ok);
	struct json_object *cache = qmp_new_obj(ok);
	static const char *const zero_limits[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd",
						   "iops_wr" };

	qmp_put(ok, ins, "file", json_object_new_string(b->file));
	qmp_put(ok, ins, "node-name", json_object_new_string(b->node_name));
	qmp_put(ok, ins, "ro", json_object_new_boolean(b->readonly));
	qmp_put(ok, ins, "drv", json_object_new_string(b->format));
	qmp_put(ok, ins, "encrypted", json_object_new_boolean(false));
	qmp_put(ok, ins, "detect_zeroes", json_object_new_string("off"));
	for (size_t i = 0; i < sizeof(zero_limits) / sizeof(zero_limits[0]); i++)
		qmp_put(ok, ins, zero_limits[i], json_object_new_int64(b->throttled ?
			(int64_t)b->limits.b[limit_bucket[i]].avg : 0));
	qmp_put(ok, img, "filename", json_object_new_string(b->file));
	qmp_put(ok, img, "format", json_object_new_string(b->format));
	qmp_put(ok, img, "virtual-size", json_object_new_int64((int64_t)b->virtual_size));
	qmp_put(ok, ins, "image", img);
	if (b->throttled)
		put_limits(ok, ins, b);
	qmp_put(ok, cache, "writeback", json_object_new_boolean(true));
	qmp_put(ok, cache, "direct", json_object_new_boolean(b->cache_direct));
	qmp_put(ok, cache, "no-flush", json_object_new_boolean(b->cache_no_flush));
	qmp_put(ok, ins, "cache", cache);
	qmp_put(ok, ins, "write_threshold", json_object_new_int(0));
	qmp_put(ok, ins, "backing_file_depth", json_object_new_int(0));
	return ins;
}

/* BlockInfo (qapi/block-core.json) for a drive with its image inserted. */
static struct json_object *block_entry(const struct drive_info *b, bool *ok)
{
	struct json_object *e = qmp_new_obj(ok);

	qmp_put(ok, e, "device", json_object_new_string(b->device));
	qmp_put(ok, e, "qdev", json_object_new_string(b->qdev));
	qmp_put(ok, e, "locked", json_object_new_boolean(false));
	qmp_put(ok, e, "removable", json_object_new_boolean(false));
	qmp_put(ok, e, "type", json_object_new_string("unknown"));
	qmp_put(ok, e, "inserted", qmp_block_device_info(b, ok));
	return e;
}

static int cmd_query_block(struct qmp_session *s, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array();
	struct drive_info info[16];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, 16) : 0;
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && i < 16 && ok; i++)
		qmp_append(&ok, list, block_entry(&info[i], &ok));
	return qmp_finish(ok, list, ret, err);
}

/* BlockDeviceStats (qapi/block-core.json), from the device's accounting. */
static struct json_object *block_stats(const struct drive_info *b, bool *ok)
{
	static const char *const names[BLOCK_ACCT_NR] = { "rd", "wr", "flush", "unmap" };
	static const char *const failed[BLOCK_ACCT_NR] = {
		"failed_rd_operations", "failed_wr_operations", "failed_flush_operations",
		"failed_unmap_operations" };
	static const char *const invalid[BLOCK_ACCT_NR] = {
		"invalid_rd_operations", "invalid_wr_operations", "invalid_flush_operations",
		"invalid_unmap_operations" };
	const struct block_stats *st = &b->stats;
	struct json_object *o = qmp_new_obj(ok);
	char key[32];

	for (unsigned t = 0; t < BLOCK_ACCT_NR; t++) {
		if (t != BLOCK_ACCT_FLUSH) {
			snprintf(key, sizeof(key), "%s_bytes", names[t]);
			qmp_put(ok, o, key, json_object_new_int64((int64_t)st->bytes[t]));
			snprintf(key, sizeof(key), "%s_merged", names[t]);
			qmp_put(ok, o, key, json_object_new_int(0));
		}
		snprintf(key, sizeof(key), "%s_operations", names[t]);
		qmp_put(ok, o, key, json_object_new_int64((int64_t)st->ops[t]));
		snprintf(key, sizeof(key), "%s_total_time_ns", names[t]);
		qmp_put(ok, o, key, json_object_new_int64((int64_t)st->total_time_ns[t]));
		qmp_put(ok, o, failed[t], json_object_new_int64((int64_t)st->failed_ops[t]));
		qmp_put(ok, o, invalid[t], json_object_new_int64((int64_t)st->invalid_ops[t]));
	}
	qmp_put(ok, o, "wr_highest_offset", json_object_new_int64((int64_t)st->wr_highest_offset));
	if (st->last_access_ns)
		qmp_put(ok, o, "idle_time_ns",
		    json_object_new_int64((int64_t)(b->now_ns - st->last_access_ns)));
	/* A device's stats count invalid and failed requests (blockdev.c defaults). */
	qmp_put(ok, o, "account_invalid", json_object_new_boolean(1));
	qmp_put(ok, o, "account_failed", json_object_new_boolean(1));
	qmp_put(ok, o, "timed_stats", json_object_new_array());
	return o;
}

/*
 * query-blockstats: one entry per device, or with query-nodes per node
 * (node-name and stats only).  Kestrel's drives are single nodes: no
 * "parent" protocol layer is reported.
 */
static int cmd_query_blockstats(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *v;
	struct drive_info info[16];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, 16) : 0;
	bool ok = list != NULL, nodes = false;

	if (args && json_object_object_get_ex(args, "query-nodes", &v))
		nodes = json_object_get_boolean(v);
	for (unsigned i = 0; i < n && i < 16 && ok; i++) {
		struct json_object *e = qmp_new_obj(&ok);
		if (!nodes) {
			qmp_put(&ok, e, "device", json_object_new_string(info[i].device));
			qmp_put(&ok, e, "qdev", json_object_new_string(info[i].qdev));
		}
		qmp_put(&ok, e, "node-name", json_object_new_string(info[i].node_name));
		qmp_put(&ok, e, "stats", block_stats(&info[i], &ok));
		qmp_append(&ok, list, e);
	}
	return qmp_finish(ok, list, ret, err);
}

static const char *rx_state(bool none, bool all)
{
	return none ? "none" : all ? "all" : "normal";
}

static struct json_object *mac_list(const uint8_t (*macs)[6], unsigned n, bool *ok)
{
	struct json_object *list = json_object_new_array();
	char mac[18];

	if (!list)
		*ok = false;
	/* QAPI_LIST_PREPEND in virtio_net_query_rxfilter: newest first. */
	for (unsigned i = n; i-- > 0;) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", macs[i][0], macs[i][1],
			 macs[i][2], macs[i][3], macs[i][4], macs[i][5]);
		qmp_append(ok, list, json_object_new_string(mac));
	}
	return list;
}

/* hw/net/virtio-net.c virtio_net_query_rxfilter, for a device without CTRL_VLAN. */
static struct json_object *rx_filter(const struct net_info *nc, bool *ok)
{
	struct json_object *o = qmp_new_obj(ok), *vlans = json_object_new_array();
	const uint8_t (*table)[6] = (const uint8_t (*)[6])nc->mac_table;
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", nc->mac[0], nc->mac[1],
		 nc->mac[2], nc->mac[3], nc->mac[4], nc->mac[5]);
	qmp_put(ok, o, "name", json_object_new_string(nc->name));
	qmp_put(ok, o, "promiscuous", json_object_new_boolean(nc->promisc));
	qmp_put(ok, o, "unicast", json_object_new_string(rx_state(nc->nouni, nc->alluni)));
	qmp_put(ok, o, "multicast", json_object_new_string(rx_state(nc->nomulti, nc->allmulti)));
	/* QEMU reports n->nobcast here, under this name: kept as it is. */
	qmp_put(ok, o, "broadcast-allowed", json_object_new_boolean(nc->nobcast));
	qmp_put(ok, o, "multicast-overflow", json_object_new_boolean(nc->multi_overflow));
	qmp_put(ok, o, "unicast-overflow", json_object_new_boolean(nc->uni_overflow));
	qmp_put(ok, o, "main-mac", json_object_new_string(mac));
	qmp_put(ok, o, "unicast-table", mac_list(table, nc->uni_entries, ok));
	qmp_put(ok, o, "multicast-table", mac_list(table + nc->uni_entries, nc->multi_entries, ok));
	/* Without VIRTIO_NET_F_CTRL_VLAN every VLAN passes: all 4096, newest first. */
	qmp_put(ok, o, "vlan", json_object_new_string("all"));
	for (int vid = 4095; vid >= 0 && vlans; vid--)
		qmp_append(ok, vlans, json_object_new_int(vid));
	qmp_put(ok, o, "vlan-table", vlans);
	return o;
}

/* net/net.c qmp_query_rx_filter: every NIC that has a filter, or the one named. */
static int cmd_query_rx_filter(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *v;
	struct net_info *nc = calloc(48, sizeof(*nc));
	unsigned n = nc && s->ctl->net_clients ? s->ctl->net_clients(s->ctl->opaque, nc, 48) : 0;
	const char *name = NULL;
	bool ok = list && nc, found = false;
	int rc;

	if (args && json_object_object_get_ex(args, "name", &v))
		name = json_object_get_string(v);
	for (unsigned i = 0; i < n && i < 48 && ok; i++) {
		if (name && strcmp(nc[i].name, name) != 0)
			continue;
		found = true;
		if (strcmp(nc[i].type, "nic") != 0) {
			if (!name)
				continue;
			json_object_put(list);
			free(nc);
			return qmp_fail(err, "GenericError", "net client(%s) isn't a NIC", name);
		}
		if (!nc[i].rx_filter) {
			if (!name)
				continue;
			json_object_put(list);
			free(nc);
			return qmp_fail(err, "GenericError",
					"net client(%s) doesn't support rx-filter querying", name);
		}
		qmp_append(&ok, list, rx_filter(&nc[i], &ok));
	}
	free(nc);
	if (ok && name && !found) {
		json_object_put(list);
		return qmp_fail(err, "GenericError", "invalid net client name: %s", name);
	}
	rc = qmp_finish(ok, list, ret, err);
	return rc;
}

/* hw/virtio/virtio-balloon.c: what QEMU says when no balloon device exists. */
static int cmd_no_balloon(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	return qmp_fail(err, "DeviceNotActive", "No balloon device has been activated");
}

/* qmp_balloon: value is the target guest size in bytes (QERR_INVALID_PARAMETER_VALUE for <= 0). */
static int cmd_balloon(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	int64_t value = json_object_get_int64(json_object_object_get(args, "value"));
	char msg[256] = "";

	if (!s->ctl->balloon)
		return cmd_no_balloon(s, args, ret, err);
	if (value <= 0)
		return qmp_fail(err, "GenericError", "Parameter 'target' expects a size");
	if (s->ctl->balloon(s->ctl->opaque, (uint64_t)value, msg, sizeof(msg)) < 0)
		return qmp_fail(err, strstr(msg, "target") ? "GenericError" : "DeviceNotActive", "%s",
				msg);
	return 0;
}

/* BalloonInfo: {"actual": bytes}. */
static int cmd_query_balloon(struct qmp_session *s, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	uint64_t actual;
	char msg[256] = "";
	bool ok = true;

	if (!s->ctl->query_balloon)
		return cmd_no_balloon(s, args, ret, err);
	if (s->ctl->query_balloon(s->ctl->opaque, &actual, msg, sizeof(msg)) < 0)
		return qmp_fail(err, "DeviceNotActive", "%s", msg);
	*ret = qmp_new_obj(&ok);
	qmp_put(&ok, *ret, "actual", json_object_new_int64((int64_t)actual));
	return qmp_finish(ok, *ret, ret, err);
}

/* hw/virtio/virtio-balloon.c balloon_stat_names, in tag order. */
static const char *const balloon_stat_names[CONTROL_BALLOON_STATS] = {
	"stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
	"stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
	"stat-htlb-pgalloc", "stat-htlb-pgfail",
};

/* qom-get: a vCPU's properties (qmp_runtime.c) and the balloon's guest stats. */
static int cmd_qom_get(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	const char *path = json_object_get_string(json_object_object_get(args, "path"));
	const char *prop = json_object_get_string(json_object_object_get(args, "property"));
	struct balloon_stats_info info;
	struct json_object *stats;
	bool ok = true;
	int rc = qmp_qom_get_cpu(s, path, prop, ret, err);

	if (rc <= 0)
		return rc;
	rc = qmp_qom_get_peripheral(s, path, prop, ret, err);
	if (rc <= 0)
		return rc;
	if (!s->ctl->balloon_stats || !s->ctl->balloon_stats(s->ctl->opaque, path, &info))
		return qmp_qom_missing(s, path, prop, err);
	if (!strcmp(prop, "guest-stats-polling-interval")) {
		*ret = json_object_new_int64((int64_t)info.polling_interval);
		return *ret ? 0 : qmp_oom(err);
	}
	if (strcmp(prop, "guest-stats"))
		return qmp_fail(err, "GenericError", "Property 'virtio-balloon-pci.%s' not found",
				prop);
	*ret = qmp_new_obj(&ok);
	stats = qmp_new_obj(&ok);
	for (unsigned i = 0; i < CONTROL_BALLOON_STATS; i++)
		qmp_put(&ok, stats, balloon_stat_names[i], json_object_new_uint64(info.stats[i]));
	qmp_put(&ok, *ret, "stats", stats);
	qmp_put(&ok, *ret, "last-update", json_object_new_int64(info.last_update));
	return qmp_finish(ok, *ret, ret, err);
}

static int cmd_qom_set(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	const char *path = json_object_get_string(json_object_object_get(args, "path"));
	const char *prop = json_object_get_string(json_object_object_get(args, "property"));
	struct json_object *v = json_object_object_get(args, "value");
	struct balloon_stats_info info;
	int64_t n;

	if (!s->ctl->balloon_stats || !s->ctl->balloon_stats(s->ctl->opaque, path, &info))
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", path);
	if (strcmp(prop, "guest-stats-polling-interval"))
		return qmp_fail(err, "GenericError", "Property 'virtio-balloon-pci.%s' not found",
				prop);
	if (!json_object_is_type(v, json_type_int))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for '%s', expected: integer", prop);
	n = json_object_get_int64(v);
	if (n < 0)
		return qmp_fail(err, "GenericError", "timer value must be greater than zero");
	if (n > UINT32_MAX)
		return qmp_fail(err, "GenericError", "timer value is too big");
	s->ctl->balloon_set_interval(s->ctl->opaque, path, (uint64_t)n);
	return 0;
}

/*
 * MachineInfo as of 7.2 ('acpi' came in 8.0), for the machines we have:
 * QEMU's default, pc-i440fx-7.2 alias pc (-M accepts both), and none, the
 * QMP-only machine libvirt's capability probe starts.  The default CPU
 * is the host model because that is what Kestrel's vCPUs get without -cpu,
 * and CPUs cannot be hot-plugged (there is no device_add).
 */
static int cmd_query_machines(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *m;
	bool ok = list != NULL;

	m = qmp_new_obj(&ok);
	qmp_put(&ok, m, "name", json_object_new_string("pc-i440fx-7.2"));
	qmp_put(&ok, m, "alias", json_object_new_string("pc"));
	qmp_put(&ok, m, "is-default", json_object_new_boolean(1));
	qmp_put(&ok, m, "cpu-max", json_object_new_int(VM_MAX_CPUS));
	qmp_put(&ok, m, "hotpluggable-cpus", json_object_new_boolean(0));
	qmp_put(&ok, m, "numa-mem-supported", json_object_new_boolean(0));
	qmp_put(&ok, m, "deprecated", json_object_new_boolean(0));
	qmp_put(&ok, m, "default-cpu-type", json_object_new_string("host-x86_64-cpu"));
	qmp_put(&ok, m, "default-ram-id", json_object_new_string("pc.ram"));
	qmp_append(&ok, list, m);
	/* hw/core/null-machine.c: no CPU type of its own, one CPU at most. */
	m = qmp_new_obj(&ok);
	qmp_put(&ok, m, "name", json_object_new_string("none"));
	qmp_put(&ok, m, "cpu-max", json_object_new_int(1));
	qmp_put(&ok, m, "hotpluggable-cpus", json_object_new_boolean(0));
	qmp_put(&ok, m, "numa-mem-supported", json_object_new_boolean(0));
	qmp_put(&ok, m, "deprecated", json_object_new_boolean(0));
	qmp_put(&ok, m, "default-ram-id", json_object_new_string("ram"));
	qmp_append(&ok, list, m);
	return qmp_finish(ok, list, ret, err);
}

/*
 * CpuDefinitionInfo as target/i386/cpu.c x86_cpu_definition_entry fills it:
 * x86 always reports unavailable-features, empty for host and max under KVM.
 */
static int cmd_query_cpu_definitions(struct qmp_session *s, struct json_object *args,
				     struct json_object **ret, struct qmp_error *err)
{
	/* name, QOM type, migration-safe (a named model is; host and max are not) */
	static const struct { const char *name, *type; bool safe; } models[] = {
		{ "host", "host-x86_64-cpu", false },
		{ "max", "max-x86_64-cpu", false },
		{ "qemu64", "qemu64-x86_64-cpu", true },	/* vmm/cpu_model.c */
	};
	struct json_object *list = json_object_new_array(), *d;
	bool ok = list != NULL;

	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		d = qmp_new_obj(&ok);
		qmp_put(&ok, d, "name", json_object_new_string(models[i].name));
		qmp_put(&ok, d, "migration-safe", json_object_new_boolean(models[i].safe));
		qmp_put(&ok, d, "static", json_object_new_boolean(0));
		/* Every model is built from KVM's CPUID: without KVM none can run (no TCG). */
		struct json_object *missing = json_object_new_array();
		if (!qmp_kvm_enabled(s))
			qmp_append(&ok, missing, json_object_new_string("kvm"));
		qmp_put(&ok, d, "unavailable-features", missing);
		qmp_put(&ok, d, "typename", json_object_new_string(models[i].type));
		qmp_put(&ok, d, "deprecated", json_object_new_boolean(0));
		qmp_append(&ok, list, d);
	}
	return qmp_finish(ok, list, ret, err);
}

static int cmd_stop(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->stop, err);
}

static int cmd_cont(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->cont, err);
}

static int cmd_system_reset(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->system_reset, err);
}

static int cmd_system_powerdown(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	return run_action(s, s->ctl->system_powerdown, err);
}

/* QEMU answers {} and only then shuts down (SHUTDOWN reason host-qmp-quit). */
static int cmd_quit(struct qmp_session *s, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	if (s->ctl->quit)
		s->ctl->quit(s->ctl->opaque);
	return 0;
}

/*
 * monitor/hmp.c qmp_human_monitor_command: the text HMP printed, "\r\n" line
 * ends and its own error messages included, is the successful result.
 */
static int cmd_human_monitor_command(struct qmp_session *s, struct json_object *args,
				     struct json_object **ret, struct qmp_error *err)
{
	const char *line = json_object_get_string(json_object_object_get(args, "command-line"));
	struct json_object *cpu;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	if (json_object_object_get_ex(args, "cpu-index", &cpu)) {
		int64_t index = json_object_get_int64(cpu);
		unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;

		/* QERR_INVALID_PARAMETER_VALUE, as monitor_set_cpu failing gives. */
		if (index < 0 || (uint64_t)index >= n)
			return qmp_fail(err, "GenericError",
					"Parameter 'cpu-index' expects a CPU number");
	}
	out = open_memstream(&text, &len);
	if (!out)
		return qmp_oom(err);
	/* Its -1 (unknown command, bad arguments) is reported in the text. */
	(void)hmp_run_line(s->ctl, line, out);
	if (fclose(out) != 0 || len > INT_MAX) {
		free(text);
		return qmp_oom(err);
	}
	*ret = json_object_new_string_len(text ? text : "", (int)len);
	free(text);
	return *ret ? 0 : qmp_oom(err);
}

/* net/net.c qmp_set_link and softmmu/qdev-monitor.c find_device_state. */
/*
 * The link state of a NIC is not modelled (its link is always up), so a
 * client that exists is refused by name rather than told it was not found.
 */
static int cmd_set_link(struct qmp_session *s, struct json_object *args,
			struct json_object **ret, struct qmp_error *err)
{
	const char *name = json_object_get_string(json_object_object_get(args, "name"));
	int found = control_has_net_client(s->ctl, name, false);

	if (found < 0)
		return qmp_fail(err, "GenericError", "out of memory");
	if (!found)
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", name);
	return qmp_fail(err, "GenericError", "set_link %s: changing the link state is not "
			"supported (the link stays up)", name);
}

/* No PCI hot-unplug: a NIC that exists is refused by name (other -device ids: #26). */
static int cmd_device_del(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	const char *id = json_object_get_string(json_object_object_get(args, "id"));
	int found = control_has_net_client(s->ctl, id, true);

	if (found < 0)
		return qmp_fail(err, "GenericError", "out of memory");
	if (!found)
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", id);
	return qmp_fail(err, "GenericError", "Device '%s' cannot be removed: hot-unplug is not "
			"supported", id);
}

static const struct qmp_arg caps_args[] = {
	{ "enable", QMP_ARG_CAPS, true },
	{ NULL, 0, false },
};
static const struct qmp_arg balloon_args[] = {
	{ "value", QMP_ARG_INT, false },
	{ NULL, 0, false },
};
static const struct qmp_arg qom_get_args[] = {
	{ "path", QMP_ARG_STR, false },
	{ "property", QMP_ARG_STR, false },
	{ NULL, 0, false },
};
static const struct qmp_arg qom_set_args[] = {
	{ "path", QMP_ARG_STR, false },
	{ "property", QMP_ARG_STR, false },
	{ "value", QMP_ARG_ANY, false },
	{ NULL, 0, false },
};
static const struct qmp_arg hmp_args[] = {
	{ "command-line", QMP_ARG_STR, false },
	{ "cpu-index", QMP_ARG_INT, true },
	{ NULL, 0, false },
};
static const struct qmp_arg set_link_args[] = {
	{ "name", QMP_ARG_STR, false },
	{ "up", QMP_ARG_BOOL, false },
	{ NULL, 0, false },
};
static const struct qmp_arg blockstats_args[] = {
	{ "query-nodes", QMP_ARG_BOOL, true },
	{ NULL, 0, false },
};
static const struct qmp_arg rx_filter_args[] = {
	{ "name", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
static const struct qmp_arg io_throttle_args[] = {
	{ "device", QMP_ARG_STR, true }, { "id", QMP_ARG_STR, true },
	{ "bps", QMP_ARG_INT, false }, { "bps_rd", QMP_ARG_INT, false },
	{ "bps_wr", QMP_ARG_INT, false }, { "iops", QMP_ARG_INT, false },
	{ "iops_rd", QMP_ARG_INT, false }, { "iops_wr", QMP_ARG_INT, false },
	{ "bps_max", QMP_ARG_INT, true }, { "bps_rd_max", QMP_ARG_INT, true },
	{ "bps_wr_max", QMP_ARG_INT, true }, { "iops_max", QMP_ARG_INT, true },
	{ "iops_rd_max", QMP_ARG_INT, true }, { "iops_wr_max", QMP_ARG_INT, true },
	{ "bps_max_length", QMP_ARG_INT, true }, { "bps_rd_max_length", QMP_ARG_INT, true },
	{ "bps_wr_max_length", QMP_ARG_INT, true }, { "iops_max_length", QMP_ARG_INT, true },
	{ "iops_rd_max_length", QMP_ARG_INT, true }, { "iops_wr_max_length", QMP_ARG_INT, true },
	{ "iops_size", QMP_ARG_INT, true }, { "group", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
static const struct qmp_arg device_del_args[] = {
	{ "id", QMP_ARG_STR, false },
	{ NULL, 0, false },
};

static const struct qmp_command qmp_commands[] = {
	{ "qmp_capabilities", cmd_qmp_capabilities, caps_args },
	{ "query-version", cmd_query_version, NULL },
	{ "query-commands", cmd_query_commands, NULL },
	{ "query-status", cmd_query_status, NULL },
	{ "query-name", cmd_query_name, NULL },
	{ "query-uuid", cmd_query_uuid, NULL },
	{ "query-kvm", cmd_query_kvm, NULL },
	{ "query-cpus-fast", cmd_query_cpus_fast, NULL },
	{ "query-block", cmd_query_block, NULL },
	{ "query-blockstats", cmd_query_blockstats, blockstats_args },
	{ "query-rx-filter", cmd_query_rx_filter, rx_filter_args },
	{ "query-chardev", cmd_query_chardev, NULL },
	{ "query-pci", cmd_query_pci, NULL },
	{ "query-balloon", cmd_query_balloon, NULL },
	{ "query-migrate", cmd_empty_object, NULL },
	{ "query-machines", cmd_query_machines, NULL },
	{ "query-cpu-definitions", cmd_query_cpu_definitions, NULL },
	{ "stop", cmd_stop, NULL },
	{ "cont", cmd_cont, NULL },
	{ "system_reset", cmd_system_reset, NULL },
	{ "system_powerdown", cmd_system_powerdown, NULL },
	{ "quit", cmd_quit, NULL },
	{ "balloon", cmd_balloon, balloon_args },
	{ "human-monitor-command", cmd_human_monitor_command, hmp_args },
	{ "set_link", cmd_set_link, set_link_args },
	{ "device_del", cmd_device_del, device_del_args },
	{ "block_set_io_throttle", cmd_block_set_io_throttle, io_throttle_args },
	{ "qom-get", cmd_qom_get, qom_get_args },
	{ "qom-set", cmd_qom_set, qom_set_args },
	{ "nbd-server-start", qmp_nbd_server_start, qmp_nbd_server_start_args },
	{ "nbd-server-add", qmp_nbd_server_add, qmp_nbd_server_add_args },
	{ "nbd-server-remove", qmp_nbd_server_remove, qmp_nbd_server_remove_args },
	{ "nbd-server-stop", qmp_nbd_server_stop, NULL },
	{ "block-export-add", qmp_block_export_add, qmp_block_export_add_args },
	{ "block-export-del", qmp_block_export_del, qmp_block_export_del_args },
	{ "query-block-exports", qmp_query_block_exports, NULL },
	{ "query-target", qmp_query_target, NULL },
	{ "qom-list-types", qmp_qom_list_types, qmp_qom_list_types_args },
	{ "device-list-properties", qmp_device_list_properties, qmp_typename_args },
	{ "qom-list-properties", qmp_qom_list_properties, qmp_typename_args },
	{ "query-command-line-options", qmp_query_command_line_options,
	  qmp_cmdline_options_args },
	{ "query-migrate-capabilities", qmp_query_migrate_capabilities, NULL },
	{ "query-sev-capabilities", qmp_query_sev_capabilities, NULL },
	{ "query-sgx-capabilities", qmp_query_sgx_capabilities, NULL },
	{ "query-cpu-model-expansion", qmp_query_cpu_model_expansion,
	  qmp_cpu_model_expansion_args },
	{ "query-tpm-models", qmp_query_empty_list, NULL },
	{ "query-tpm-types", qmp_query_empty_list, NULL },
	{ "query-hotpluggable-cpus", qmp_query_hotpluggable_cpus, NULL },
	{ "query-qmp-schema", qmp_query_qmp_schema, NULL },
	{ "query-named-block-nodes", qmp_query_named_block_nodes, qmp_named_block_nodes_args },
	{ "query-block-jobs", qmp_query_none, NULL },
	{ "query-iothreads", qmp_query_none, NULL },
	{ "migrate-set-capabilities", qmp_migrate_set_capabilities,
	  qmp_migrate_set_capabilities_args },
	{ "qom-list", qmp_qom_list, qmp_qom_list_args },
	{ "getfd", qmp_getfd, qmp_fdname_args },
	{ "closefd", qmp_closefd, qmp_fdname_args },
	{ "add-fd", qmp_add_fd, qmp_add_fd_args },
	{ "remove-fd", qmp_remove_fd, qmp_remove_fd_args },
	{ "query-fdsets", qmp_query_fdsets, NULL },
	{ "send-key", qmp_send_key, qmp_send_key_args },
	{ "input-send-event", qmp_input_send_event, qmp_input_send_event_args },
	{ "query-mice", qmp_query_mice, NULL },
	{ "query-vnc", qmp_query_vnc, NULL },
	{ "change-vnc-password", qmp_change_vnc_password, qmp_change_vnc_password_args },
	{ "set_password", qmp_set_password, qmp_set_password_args },
	{ "screendump", qmp_screendump, qmp_screendump_args },
	{ "query-display-options", qmp_query_display_options, NULL },
	{ NULL, NULL, NULL },
};

const struct qmp_command *qmp_command_table(void)
{
	return qmp_commands;
}
