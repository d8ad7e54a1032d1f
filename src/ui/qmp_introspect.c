/*
 * QMP introspection as libvirt's capability probe calls it (QEMU 7.2's
 * qapi/machine.json, machine-target.json, qom.json, misc.json, migration.json):
 * query-target, qom-list-types, device-list-properties, qom-list-properties,
 * query-command-line-options, query-migrate-capabilities, query-sev- and
 * query-sgx-capabilities, query-cpu-model-expansion, query-tpm-models/-types
 * and query-hotpluggable-cpus.  Every answer comes from the tables below,
 * which describe what Kestrel's parsers really accept; the unit test
 * test_qmp_introspect.c runs each table entry through those parsers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/qmp_introspect.h"

/* -------------------------------------------------------------------------- */
/* QOM types and their properties                                             */

/*
 * PCI functions take addr= (options_pci_addr: slot 1-31, function 0).  A key
 * the parser takes only with its default value (virtio-balloon's
 * free-page-hint=off, -mon pretty=off) is not listed: it cannot be turned on.
 */
static const struct qom_prop virtio_blk_props[] = {
	{ "addr", "int32" }, { "drive", "str" }, { "serial", "str" },
	{ "num-queues", "uint16" }, { "bootindex", "int32" }, { NULL, NULL },
};
static const struct qom_prop virtio_rng_props[] = {
	{ "addr", "int32" }, { NULL, NULL },
};
static const struct qom_prop virtio_serial_props[] = {
	{ "addr", "int32" }, { "max_ports", "uint32" }, { NULL, NULL },
};
static const struct qom_prop nic_props[] = {
	{ "addr", "int32" }, { "netdev", "str" }, { "mac", "str" }, { "mq", "bool" },
	{ "vectors", "uint32" }, { "romfile", "str" }, { NULL, NULL },
};
static const struct qom_prop e1000_props[] = {
	{ "addr", "int32" }, { "netdev", "str" }, { "mac", "str" }, { "romfile", "str" },
	{ NULL, NULL },
};
static const struct qom_prop balloon_props[] = {
	{ "addr", "int32" }, { "deflate-on-oom", "bool" }, { "free-page-reporting", "bool" },
	{ "guest-stats-polling-interval", "int" }, { NULL, NULL },
};
static const struct qom_prop ide_props[] = {
	{ "drive", "str" }, { "unit", "uint32" }, { "bootindex", "int32" }, { NULL, NULL },
};
static const struct qom_prop virtconsole_props[] = {
	{ "chardev", "str" }, { NULL, NULL },
};
/* -machine (options.c opt_machine, options_memory.c options_machine_memory). */
static const struct qom_prop machine_props[] = {
	{ "memory-backend", "link<memory-backend>" }, { "mem-merge", "bool" },
	{ "dump-guest-core", "bool" }, { NULL, NULL },
};
/* -object memory-backend-* (options_memory.c options_object). */
static const struct qom_prop backend_props[] = {
	{ "size", "int" }, { "merge", "bool" }, { "dump", "bool" }, { "prealloc", "bool" },
	{ "share", "bool" }, { "host-nodes", "int" }, { "policy", "HostMemPolicy" },
	{ "x-use-canonical-path-for-ramblock-id", "bool" }, { NULL, NULL },
};
static const struct qom_prop backend_file_props[] = {
	{ "mem-path", "string" }, { "align", "int" }, { "discard-data", "bool" }, { NULL, NULL },
};
static const struct qom_prop backend_memfd_props[] = {
	{ "hugetlb", "bool" }, { "hugetlbsize", "int" }, { "seal", "bool" }, { NULL, NULL },
};

/*
 * The types Kestrel has: its machines, its one accelerator (KVM; there is no
 * TCG, so no tcg-accel), its CPU models, the devices -device creates and the
 * objects -object creates.  Parents follow QEMU's hierarchy where Kestrel has
 * the same type, so that implements= filters the way libvirt expects.
 */
static const struct qom_type qom_types[] = {
	{ "object", NULL, true, NULL },
	{ "machine", "object", true, machine_props },
	{ "x86-machine", "machine", true, NULL },
	{ "generic-pc-machine", "x86-machine", true, NULL },
	{ "pc-i440fx-7.2-machine", "generic-pc-machine", false, NULL },
	{ "none-machine", "machine", false, NULL },
	{ "accel", "object", false, NULL },	/* not abstract in QEMU either */
	{ "kvm-accel", "accel", false, NULL },
	{ "device", "object", true, NULL },
	{ "cpu", "device", true, NULL },
	{ "x86_64-cpu", "cpu", true, NULL },
	{ "host-x86_64-cpu", "max-x86_64-cpu", false, NULL },
	{ "max-x86_64-cpu", "x86_64-cpu", false, NULL },
	{ "pci-device", "device", true, NULL },
	{ "virtio-pci", "pci-device", true, NULL },
	{ "virtio-blk-pci-base", "virtio-pci", true, NULL },
	{ "virtio-blk-pci", "virtio-blk-pci-base", false, virtio_blk_props },
	{ "virtio-net-pci-base", "virtio-pci", true, NULL },
	{ "virtio-net-pci", "virtio-net-pci-base", false, nic_props },
	{ "virtio-rng-pci-base", "virtio-pci", true, NULL },
	{ "virtio-rng-pci", "virtio-rng-pci-base", false, virtio_rng_props },
	{ "virtio-serial-pci-base", "virtio-pci", true, NULL },
	{ "virtio-serial-pci", "virtio-serial-pci-base", false, virtio_serial_props },
	{ "virtio-balloon-pci-base", "virtio-pci", true, NULL },
	{ "virtio-balloon-pci", "virtio-balloon-pci-base", false, balloon_props },
	{ "e1000-base", "pci-device", true, NULL },
	{ "e1000", "e1000-base", false, e1000_props },
	{ "ide-device", "device", true, NULL },
	{ "ide-hd", "ide-device", false, ide_props },
	{ "ide-cd", "ide-device", false, ide_props },
	{ "virtio-serial-port", "device", true, NULL },
	{ "virtconsole", "virtio-serial-port", false, virtconsole_props },
	{ "memory-backend", "object", true, backend_props },
	{ "memory-backend-ram", "memory-backend", false, NULL },
	{ "memory-backend-file", "memory-backend", false, backend_file_props },
	{ "memory-backend-memfd", "memory-backend", false, backend_memfd_props },
	{ "secret_common", "object", true, NULL },
	{ "secret", "secret_common", false, NULL },
	{ "tls-creds", "object", true, NULL },
	{ "tls-creds-x509", "tls-creds", false, NULL },
	{ "tls-creds-psk", "tls-creds", false, NULL },
	{ NULL, NULL, false, NULL },
};

const struct qom_type *qmp_qom_types(void)
{
	return qom_types;
}

const struct qom_type *qmp_qom_type(const char *name)
{
	for (const struct qom_type *t = qom_types; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* object_class_dynamic_cast: a type implements itself and each ancestor. */
bool qmp_qom_implements(const struct qom_type *t, const char *ancestor)
{
	while (t) {
		if (!strcmp(t->name, ancestor))
			return true;
		t = t->parent ? qmp_qom_type(t->parent) : NULL;
	}
	return false;
}

/* -------------------------------------------------------------------------- */
/* Command-line options (QemuOptsLists) with their parameters                 */

static const struct cmdline_param machine_params[] = {
	{ "type", "string" }, { "accel", "string" }, { "memory-backend", "string" },
	{ "mem-merge", "boolean" }, { "dump-guest-core", "boolean" }, { NULL, NULL },
};
static const struct cmdline_param drive_params[] = {
	{ "file", "string" }, { "if", "string" }, { "format", "string" }, { "cache", "string" },
	{ "media", "string" }, { "discard", "string" }, { "aio", "string" }, { "id", "string" },
	{ "serial", "string" }, { "index", "number" }, { "detect-zeroes", "string" },
	{ "werror", "string" }, { "rerror", "string" }, { NULL, NULL },
};
static const struct cmdline_param smp_params[] = {
	{ "cpus", "number" }, { "sockets", "number" }, { "cores", "number" },
	{ "threads", "number" }, { "maxcpus", "number" }, { NULL, NULL },
};
static const struct cmdline_param memory_params[] = {
	{ "size", "size" }, { NULL, NULL },
};
static const struct cmdline_param mon_params[] = {
	{ "chardev", "string" }, { "mode", "string" }, { NULL, NULL },
};
static const struct cmdline_param overcommit_params[] = {
	{ "mem-lock", "boolean" }, { NULL, NULL },
};
/* QEMU lists these with no parameters: their keys are checked by QOM/QAPI. */
static const struct cmdline_param no_params[] = {
	{ NULL, NULL },
};

/*
 * Kestrel's key=value options.  There is no -sandbox: libvirt passes one only
 * when this list names it, and it must not until a real seccomp sandbox exists.
 */
static const struct cmdline_option cmdline_options[] = {
	{ "machine", "-machine", machine_params },
	{ "drive", "-drive", drive_params },
	{ "smp-opts", "-smp", smp_params },
	{ "memory", "-m", memory_params },
	{ "mon", "-mon", mon_params },
	{ "overcommit", "-overcommit", overcommit_params },
	{ "accel", "-accel", no_params },
	{ "device", "-device", no_params },
	{ "netdev", "-netdev", no_params },
	{ "net", "-net", no_params },
	{ "nic", "-nic", no_params },
	{ "object", "-object", no_params },
	{ "numa", "-numa", no_params },
	{ NULL, NULL, NULL },
};

const struct cmdline_option *qmp_cmdline_options(void)
{
	return cmdline_options;
}

/* -------------------------------------------------------------------------- */
/* Machine state                                                              */

bool qmp_machine_is_none(const struct qmp_session *s)
{
	const char *m = s->ctl->machine ? s->ctl->machine(s->ctl->opaque) : NULL;

	return m && !strcmp(m, "none");
}

bool qmp_kvm_enabled(const struct qmp_session *s)
{
	return !s->ctl->kvm_enabled || s->ctl->kvm_enabled(s->ctl->opaque);
}

static const char *arg_str(struct json_object *args, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(args, key, &v) ? json_object_get_string(v) : NULL;
}

/* -------------------------------------------------------------------------- */
/* Handlers                                                                   */

/* qapi/machine-target.json TargetInfo: Kestrel is x86_64 only. */
int qmp_query_target(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err)
{
	bool ok = true;

	*ret = qmp_new_obj(&ok);
	qmp_put(&ok, *ret, "arch", json_object_new_string("x86_64"));
	return qmp_finish(ok, *ret, ret, err);
}

/* qom/qom-qmp-cmds.c qmp_qom_list_types: abstract types only when asked. */
int qmp_qom_list_types(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	const char *impl = arg_str(args, "implements");
	struct json_object *list = json_object_new_array(), *v, *o;
	bool abstract = false, ok = list != NULL;

	if (json_object_object_get_ex(args, "abstract", &v))
		abstract = json_object_get_boolean(v);
	for (const struct qom_type *t = qom_types; t->name; t++) {
		if ((t->abstract && !abstract) || (impl && !qmp_qom_implements(t, impl)))
			continue;
		o = qmp_new_obj(&ok);
		qmp_put(&ok, o, "name", json_object_new_string(t->name));
		if (t->abstract)
			qmp_put(&ok, o, "abstract", json_object_new_boolean(1));
		if (t->parent)
			qmp_put(&ok, o, "parent", json_object_new_string(t->parent));
		qmp_append(&ok, list, o);
	}
	return qmp_finish(ok, list, ret, err);
}

/* A type's own properties and its ancestors', as QOM's class property walk. */
static void put_props(bool *ok, struct json_object *list, const struct qom_type *t)
{
	struct json_object *o;

	for (; t; t = t->parent ? qmp_qom_type(t->parent) : NULL) {
		for (const struct qom_prop *p = t->props; p && p->name; p++) {
			o = qmp_new_obj(ok);
			qmp_put(ok, o, "name", json_object_new_string(p->name));
			qmp_put(ok, o, "type", json_object_new_string(p->type));
			qmp_append(ok, list, o);
		}
	}
}

/* softmmu/qdev-monitor.c qmp_device_list_properties, its errors verbatim. */
int qmp_device_list_properties(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	const char *name = arg_str(args, "typename");
	const struct qom_type *t = qmp_qom_type(name);
	struct json_object *list;
	bool ok;

	if (!t)
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found", name);
	if (!qmp_qom_implements(t, "device") || t->abstract)
		return qmp_fail(err, "GenericError",
				"Parameter 'typename' expects a non-abstract device type");
	list = json_object_new_array();
	ok = list != NULL;
	put_props(&ok, list, t);
	return qmp_finish(ok, list, ret, err);
}

/* qom/qom-qmp-cmds.c qmp_qom_list_properties: any object type. */
int qmp_qom_list_properties(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	const char *name = arg_str(args, "typename");
	const struct qom_type *t = qmp_qom_type(name);
	struct json_object *list, *o;
	bool ok;

	if (!t)
		return qmp_fail(err, "DeviceNotFound", "Class '%s' not found", name);
	list = json_object_new_array();
	ok = list != NULL;
	/* Every QOM object has the read-only "type" property. */
	{
		o = qmp_new_obj(&ok);
		qmp_put(&ok, o, "name", json_object_new_string("type"));
		qmp_put(&ok, o, "type", json_object_new_string("string"));
		qmp_append(&ok, list, o);
	}
	put_props(&ok, list, t);
	return qmp_finish(ok, list, ret, err);
}

/* util/qemu-config.c qmp_query_command_line_options. */
int qmp_query_command_line_options(struct qmp_session *s, struct json_object *args,
				   struct json_object **ret, struct qmp_error *err)
{
	const char *want = arg_str(args, "option");
	struct json_object *list = json_object_new_array(), *o, *params, *p;
	bool ok = list != NULL, found = false;

	for (const struct cmdline_option *c = cmdline_options; c->option; c++) {
		if (want && strcmp(want, c->option))
			continue;
		found = true;
		o = qmp_new_obj(&ok);
		params = json_object_new_array();
		for (const struct cmdline_param *q = c->params; q->name; q++) {
			p = qmp_new_obj(&ok);
			qmp_put(&ok, p, "name", json_object_new_string(q->name));
			qmp_put(&ok, p, "type", json_object_new_string(q->type));
			qmp_append(&ok, params, p);
		}
		qmp_put(&ok, o, "parameters", params);
		qmp_put(&ok, o, "option", json_object_new_string(c->option));
		qmp_append(&ok, list, o);
	}
	if (want && !found) {
		json_object_put(list);
		return qmp_fail(err, "GenericError", "invalid option name: %s", want);
	}
	return qmp_finish(ok, list, ret, err);
}

/*
 * Kestrel has no migration, so it has no migration capability to report:
 * the list is empty.  QEMU lists every capability with state false, but each
 * entry tells libvirt that migrate-set-capabilities can turn it on (libvirt
 * turns on "events" at every start when listed); an empty list is the honest
 * answer and libvirt 9.0 takes it (no capability flags, no set call).
 */
int qmp_query_migrate_capabilities(struct qmp_session *s, struct json_object *args,
				   struct json_object **ret, struct qmp_error *err)
{
	return qmp_finish(true, json_object_new_array(), ret, err);
}

/* target/i386/sev.c sev_get_capabilities: no SEV support at all here. */
int qmp_query_sev_capabilities(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	if (!qmp_kvm_enabled(s))
		return qmp_fail(err, "GenericError", "KVM not enabled");
	return qmp_fail(err, "GenericError", "SEV is not enabled in KVM");
}

/* hw/i386/sgx.c sgx_get_capabilities: Kestrel gives guests no SGX. */
int qmp_query_sgx_capabilities(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err)
{
	return qmp_fail(err, "GenericError", "SGX is not enabled in KVM");
}

/*
 * query-cpu-model-expansion (target/i386/cpu-sysemu.c): checks the arguments
 * as QEMU does.  Kestrel's host and max models are whatever
 * KVM_GET_SUPPORTED_CPUID reports, and it has no table naming those CPUID
 * bits as QEMU's feature properties, so it cannot list "props" yet: it says
 * so with a GenericError, which libvirt's probe takes as "no expansion" (as
 * it does for QEMU targets without one) instead of a made-up feature list.
 */
int qmp_query_cpu_model_expansion(struct qmp_session *s, struct json_object *args,
				  struct json_object **ret, struct qmp_error *err)
{
	const char *type = arg_str(args, "type");
	struct json_object *model = json_object_object_get(args, "model"), *name, *props;

	if (strcmp(type, "static") && strcmp(type, "full"))
		return qmp_fail(err, "GenericError",
				"Parameter 'type' does not accept value '%s'", type);
	if (!json_object_is_type(model, json_type_object))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'model', expected: object");
	if (!json_object_object_get_ex(model, "name", &name))
		return qmp_fail(err, "GenericError", "Parameter 'model.name' is missing");
	if (!json_object_is_type(name, json_type_string))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'model.name', expected: string");
	json_object_object_foreach(model, key, val) {
		(void)val;
		if (strcmp(key, "name") && strcmp(key, "props"))
			return qmp_fail(err, "GenericError", "Parameter 'model.%s' is unexpected",
					key);
	}
	if (json_object_object_get_ex(model, "props", &props) &&
	    !json_object_is_type(props, json_type_object))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'model.props', expected: object");
	if (strcmp(json_object_get_string(name), "host") &&
	    strcmp(json_object_get_string(name), "max") &&
	    strcmp(json_object_get_string(name), "qemu64"))
		return qmp_fail(err, "GenericError", "CPU model '%s' not found",
				json_object_get_string(name));
	return qmp_fail(err, "GenericError",
			"CPU model '%s' cannot be expanded: Kestrel has no CPU feature "
			"property table", json_object_get_string(name));
}

/* query-tpm-models, query-tpm-types: Kestrel has no TPM. */
int qmp_query_empty_list(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	return qmp_finish(true, json_object_new_array(), ret, err);
}

/*
 * hw/core/machine-qmp-cmds.c qmp_query_hotpluggable_cpus: machine none has
 * no CPU slots (QERR_FEATURE_DISABLED); pc lists one slot per vCPU, newest
 * first as QEMU prepends them, each with the CPU's props and QOM path (the
 * same path query-cpus-fast gives, which libvirt matches them by).
 */
int qmp_query_hotpluggable_cpus(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	const char *type = s->ctl->cpu_type ? s->ctl->cpu_type(s->ctl->opaque) : NULL;
	unsigned n = s->ctl->cpu_count ? s->ctl->cpu_count(s->ctl->opaque) : 0;
	struct json_object *list, *c, *props;
	struct cpu_info ci;
	char path[64];
	bool ok;

	if (qmp_machine_is_none(s))
		return qmp_fail(err, "GenericError",
				"The feature 'query-hotpluggable-cpus' is not enabled");
	list = json_object_new_array();
	ok = list != NULL;
	for (unsigned i = n; i-- > 0 && ok;) {
		if (!s->ctl->cpu_info || !s->ctl->cpu_info(s->ctl->opaque, i, &ci))
			continue;
		c = qmp_new_obj(&ok);
		props = qmp_cpu_props(&ok, &ci, path, sizeof(path));
		qmp_put(&ok, c, "props", props);
		qmp_put(&ok, c, "vcpus-count", json_object_new_int(1));
		qmp_put(&ok, c, "qom-path", json_object_new_string(path));
		qmp_put(&ok, c, "type", json_object_new_string(type ? type : "host-x86_64-cpu"));
		qmp_append(&ok, list, c);
	}
	return qmp_finish(ok, list, ret, err);
}

const struct qmp_arg qmp_qom_list_types_args[] = {
	{ "implements", QMP_ARG_STR, true },
	{ "abstract", QMP_ARG_BOOL, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_typename_args[] = {
	{ "typename", QMP_ARG_STR, false },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_cmdline_options_args[] = {
	{ "option", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_cpu_model_expansion_args[] = {
	{ "type", QMP_ARG_STR, false },
	{ "model", QMP_ARG_ANY, false },
	{ NULL, 0, false },
};
