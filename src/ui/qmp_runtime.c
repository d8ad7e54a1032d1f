/*
 * QMP commands libvirt sends once the VM is up (issue #27, "QMP at start and
 * while running"), each answered from what Kestrel has: its drives' nodes,
 * no block jobs, no iothreads, no migration capabilities.  Names, arguments
 * and error texts as QEMU 7.2's qapi/ schemas and handlers give them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/qmp_int.h"
#include "ui/qmp_runtime.h"

#define RUNTIME_MAX_DRIVES 16

/*
 * query-named-block-nodes: one BlockDeviceInfo per node: each drive's format
 * node, then, for a -blockdev format node opened over a named file node (as
 * libvirt writes them), that file node: the file's driver and length.  'flat' only drops the nested image info of a backing chain, and
 * Kestrel's BlockDeviceInfo reports none (backing_file_depth 0, as its
 * query-block does even for an image with a backing file): so it changes
 * nothing here yet.
 */
static struct json_object *file_node_info(const struct drive_info *b, bool *ok)
{
	struct drive_info f = *b;

	/* The same file, cache mode and limits; its own name, driver and size. */
	snprintf(f.node_name, sizeof(f.node_name), "%s", b->file_node);
	f.format = b->file_driver;
	/* QEMU's bdrv_getlength counts whole 512-byte sectors: a partial one rounds up. */
	f.virtual_size = (b->file_size + 511) / 512 * 512;
	return qmp_block_device_info(&f, ok);
}

int qmp_query_named_block_nodes(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array();
	struct drive_info info[RUNTIME_MAX_DRIVES];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, RUNTIME_MAX_DRIVES)
				    : 0;
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && i < RUNTIME_MAX_DRIVES && ok; i++) {
		qmp_append(&ok, list, qmp_block_device_info(&info[i], &ok));
		if (info[i].file_node[0])
			qmp_append(&ok, list, file_node_info(&info[i], &ok));
	}
	return qmp_finish(ok, list, ret, err);
}

const struct qmp_arg qmp_named_block_nodes_args[] = {
	{ "flat", QMP_ARG_BOOL, true },
	{ NULL, 0, false },
};

/*
 * query-block-jobs and query-iothreads: Kestrel has no block jobs (no
 * block-stream, mirror, commit or backup) and no iothread objects, so both
 * lists are empty, as QEMU's are when it has none.
 */
int qmp_query_none(struct qmp_session *s, struct json_object *args,
		   struct json_object **ret, struct qmp_error *err)
{
	*ret = json_object_new_array();
	return *ret ? 0 : qmp_oom(err);
}

/* One MigrationCapabilityStatus, checked as QEMU's input visitor checks it. */
static int check_capability(struct json_object *e, size_t i, struct qmp_error *err)
{
	struct json_object *cap;

	if (!json_object_is_type(e, json_type_object))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'capabilities[%zu]', expected: object", i);
	if (!json_object_object_get_ex(e, "capability", &cap))
		return qmp_fail(err, "GenericError",
				"Parameter 'capabilities[%zu].capability' is missing", i);
	if (!json_object_is_type(cap, json_type_string))
		return qmp_fail(err, "GenericError", "Invalid parameter type for "
				"'capabilities[%zu].capability', expected: string", i);
	/*
	 * Kestrel's MigrationCapability enum is empty (no migration: see
	 * query-migrate-capabilities), so every name is one the enum lacks;
	 * QEMU's visit_type_enum words it so, before it visits 'state'.
	 * libvirt 9.0 sends "events" only when query-migrate-capabilities
	 * lists it (qemuMigrationCapsCheck), so it sends nothing here.
	 */
	return qmp_fail(err, "GenericError", "Parameter 'capability' does not accept value '%s'",
			json_object_get_string(cap));
}

int qmp_migrate_set_capabilities(struct qmp_session *s, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err)
{
	struct json_object *caps = json_object_object_get(args, "capabilities");
	size_t n;

	if (!json_object_is_type(caps, json_type_array))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'capabilities', expected: array");
	n = json_object_array_length(caps);
	for (size_t i = 0; i < n; i++)
		if (check_capability(json_object_array_get_idx(caps, i), i, err) < 0)
			return -1;
	/* An empty list sets nothing, and QEMU answers {} to it. */
	return 0;
}

const struct qmp_arg qmp_migrate_set_capabilities_args[] = {
	{ "capabilities", QMP_ARG_ANY, false },
	{ NULL, 0, false },
};

/*
 * qom-list / qom-get on a vCPU, at the path query-cpus-fast gives it.  Only
 * the properties Kestrel can answer from its real state are modelled: the
 * device's own (type, realized, hotplugged, hotpluggable) and the topology
 * (APIC IDs are vCPU indexes in Kestrel, see cli/app_control.c).  QEMU's
 * CPUID feature properties are not: Kestrel builds CPUID from KVM's table
 * and keeps no per-feature table a property could read.
 */
static const char *peripheral_type(struct qmp_session *s, const char *path, bool *oom);
static int list_peripheral_dir(struct qmp_session *s, struct json_object **ret,
			       struct qmp_error *err);
#define PERIPHERAL_DIR "/machine/peripheral"

/* A property qom-list names, with its QOM type (ObjectPropertyInfo). */
struct prop_desc {
	const char *name, *type;
};

static int list_props(const struct prop_desc *props, size_t count,
		      struct json_object **ret, struct qmp_error *err);

/*
 * A -device's own properties: its type and qdev's state; the balloon adds
 * the guest statistics qom-get reads (QEMU's types, "guest statistics" its
 * own name for the struct).
 */
static const struct prop_desc dev_props[] = {
	{ "type", "string" }, { "realized", "bool" }, { "hotplugged", "bool" },
	{ "hotpluggable", "bool" },
	{ "guest-stats-polling-interval", "int" }, { "guest-stats", "guest statistics" },
};
#define DEV_NR_PROPS 4
#define BALLOON_NR_PROPS (sizeof(dev_props) / sizeof(dev_props[0]))

enum cpu_prop { CPU_TYPE, CPU_REALIZED, CPU_HOTPLUGGED, CPU_HOTPLUGGABLE, CPU_APIC_ID,
		CPU_SOCKET_ID, CPU_CORE_ID, CPU_THREAD_ID, CPU_NR_PROPS };

static const struct prop_desc cpu_props[CPU_NR_PROPS] = {
	[CPU_TYPE] = { "type", "string" },
	[CPU_REALIZED] = { "realized", "bool" },
	[CPU_HOTPLUGGED] = { "hotplugged", "bool" },
	[CPU_HOTPLUGGABLE] = { "hotpluggable", "bool" },
	[CPU_APIC_ID] = { "apic-id", "uint32" },
	[CPU_SOCKET_ID] = { "socket-id", "int32" },
	[CPU_CORE_ID] = { "core-id", "int32" },
	[CPU_THREAD_ID] = { "thread-id", "int32" },
};

/* The vCPU whose QOM path is path, into ci; false when path names none. */
static bool cpu_at_path(struct qmp_session *s, const char *path, struct cpu_info *ci)
{
	unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;
	char mine[64];

	if (!path || strncmp(path, "/machine/unattached/device[", 27) != 0)
		return false;
	for (unsigned i = 0; i < n; i++) {
		if (!s->ctl->cpu_info || !s->ctl->cpu_info(s->ctl->opaque, i, ci))
			continue;
		json_object_put(qmp_cpu_props(&(bool){ true }, ci, mine, sizeof(mine)));
		if (!strcmp(mine, path))
			return true;
	}
	return false;
}

static const char *cpu_type(struct qmp_session *s)
{
	const char *t = s->ctl->cpu_type ? s->ctl->cpu_type(s->ctl->opaque) : NULL;

	return t ? t : "host-x86_64-cpu";
}

static struct json_object *cpu_prop_value(struct qmp_session *s, const struct cpu_info *ci,
					  enum cpu_prop p)
{
	switch (p) {
	case CPU_TYPE:
		return json_object_new_string(cpu_type(s));
	case CPU_REALIZED:
		return json_object_new_boolean(1);
	/* Every vCPU is created at start-up; none can be plugged or unplugged. */
	case CPU_HOTPLUGGED:
	case CPU_HOTPLUGGABLE:
		return json_object_new_boolean(0);
	case CPU_APIC_ID:
		return json_object_new_int64(ci->cpu_index);
	case CPU_SOCKET_ID:
		return json_object_new_int64(ci->socket_id);
	case CPU_CORE_ID:
		return json_object_new_int64(ci->core_id);
	case CPU_THREAD_ID:
		return json_object_new_int64(ci->thread_index);
	case CPU_NR_PROPS:
		break;
	}
	return NULL;
}

int qmp_qom_list(struct qmp_session *s, struct json_object *args,
		 struct json_object **ret, struct qmp_error *err)
{
	const char *path = json_object_get_string(json_object_object_get(args, "path"));
	struct cpu_info ci;
	const char *type;
	bool oom;

	if (path && !strcmp(path, PERIPHERAL_DIR))
		return list_peripheral_dir(s, ret, err);
	type = peripheral_type(s, path, &oom);
	if (type)
		return list_props(dev_props, strcmp(type, "virtio-balloon-pci") ? DEV_NR_PROPS
					     : BALLOON_NR_PROPS, ret, err);
	if (oom)
		return qmp_oom(err);
	if (!cpu_at_path(s, path, &ci))
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", path);
	return list_props(cpu_props, CPU_NR_PROPS, ret, err);
}

const struct qmp_arg qmp_qom_list_args[] = {
	{ "path", QMP_ARG_STR, false },
	{ NULL, 0, false },
};

int qmp_qom_get_cpu(struct qmp_session *s, const char *path, const char *prop,
		    struct json_object **ret, struct qmp_error *err)
{
	struct cpu_info ci;

	if (!cpu_at_path(s, path, &ci))
		return 1;
	for (unsigned i = 0; i < CPU_NR_PROPS; i++) {
		if (strcmp(prop, cpu_props[i].name))
			continue;
		*ret = cpu_prop_value(s, &ci, (enum cpu_prop)i);
		return *ret ? 0 : qmp_oom(err);
	}
	return qmp_fail(err, "GenericError", "Property '%s.%s' not found", cpu_type(s), prop);
}

/*
 * /machine/peripheral and the devices in it (-device ...,id=ID): the
 * container lists each as child<TYPE>; a device answers its type and the
 * qdev state every device has.  Kestrel has no hot-plug: every device was
 * created at start-up, and none can be unplugged.
 */
#define RUNTIME_MAX_PERIPHERALS 64


/* The peripherals (calloc'd, *n of them), or NULL with *n 0 when there are none. */
static struct peripheral_info *peripherals(struct qmp_session *s, unsigned *n)
{
	struct peripheral_info *p = calloc(RUNTIME_MAX_PERIPHERALS, sizeof(*p));

	*n = 0;
	if (!p || !s->ctl->peripherals)
		return p;
	*n = s->ctl->peripherals(s->ctl->opaque, p, RUNTIME_MAX_PERIPHERALS);
	if (*n > RUNTIME_MAX_PERIPHERALS)
		*n = RUNTIME_MAX_PERIPHERALS;
	return p;
}

/* The QOM type of the peripheral at path, or NULL (*oom set when it could not look). */
static const char *peripheral_type(struct qmp_session *s, const char *path, bool *oom)
{
	static char type[64];
	const char *found = NULL;
	unsigned n;
	struct peripheral_info *p;

	*oom = false;
	if (!path || strncmp(path, PERIPHERAL_DIR "/", sizeof(PERIPHERAL_DIR)) != 0)
		return NULL;
	p = peripherals(s, &n);
	if (!p) {
		*oom = true;
		return NULL;
	}
	for (unsigned i = 0; i < n && !found; i++) {
		if (!strcmp(p[i].id, path + sizeof(PERIPHERAL_DIR))) {
			snprintf(type, sizeof(type), "%s", p[i].type);
			found = type;
		}
	}
	free(p);
	return found;
}

static int list_peripheral_dir(struct qmp_session *s, struct json_object **ret,
			       struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *e;
	struct peripheral_info *p;
	bool ok = list != NULL;
	char child[96];
	unsigned n;

	p = peripherals(s, &n);
	ok = ok && p;
	e = qmp_new_obj(&ok);
	qmp_put(&ok, e, "name", json_object_new_string("type"));
	qmp_put(&ok, e, "type", json_object_new_string("string"));
	qmp_append(&ok, list, e);
	for (unsigned i = 0; i < n && ok; i++) {
		snprintf(child, sizeof(child), "child<%s>", p[i].type);
		e = qmp_new_obj(&ok);
		qmp_put(&ok, e, "name", json_object_new_string(p[i].id));
		qmp_put(&ok, e, "type", json_object_new_string(child));
		qmp_append(&ok, list, e);
	}
	free(p);
	return qmp_finish(ok, list, ret, err);
}

static int list_props(const struct prop_desc *props, size_t count,
		      struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *e;
	bool ok = list != NULL;

	for (size_t i = 0; i < count; i++) {
		e = qmp_new_obj(&ok);
		qmp_put(&ok, e, "name", json_object_new_string(props[i].name));
		qmp_put(&ok, e, "type", json_object_new_string(props[i].type));
		qmp_append(&ok, list, e);
	}
	return qmp_finish(ok, list, ret, err);
}

int qmp_qom_get_peripheral(struct qmp_session *s, const char *path, const char *prop,
			   struct json_object **ret, struct qmp_error *err)
{
	bool oom;
	const char *type = peripheral_type(s, path, &oom);

	if (oom)
		return qmp_oom(err);
	if (!type)
		return 1;
	if (!strcmp(prop, "type"))
		*ret = json_object_new_string(type);
	else if (!strcmp(prop, "realized"))
		*ret = json_object_new_boolean(1);
	else if (!strcmp(prop, "hotplugged") || !strcmp(prop, "hotpluggable"))
		*ret = json_object_new_boolean(0);
	else
		return 1;
	return *ret ? 0 : qmp_oom(err);
}

int qmp_qom_missing(struct qmp_session *s, const char *path, const char *prop,
		    struct qmp_error *err)
{
	bool oom;
	const char *type = peripheral_type(s, path, &oom);

	if (oom)
		return qmp_oom(err);
	if (type)
		return qmp_fail(err, "GenericError", "Property '%s.%s' not found", type, prop);
	return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", path);
}
