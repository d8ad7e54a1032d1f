/*
 * query-qmp-schema: QEMU's introspection (qapi/introspect.json) of exactly
 * the commands, arguments, return types and events Kestrel implements.
 *
 * The schema is data: the command and event tables below, next to the
 * dispatch table in qmp_cmds.c (a unit test checks that the two name the same
 * commands), and the type table.  A command's argument type is built from its
 * dispatch table entry's argument list unless the command names a richer one
 * (an enum or an object where the dispatcher takes a string or 'any'), so the
 * arguments described are the arguments parsed.  Types are written in a
 * small notation: object members "name:type", a leading '?' for optional;
 * enum values separated by spaces; "[T]" is an array of T.  On output every
 * non-builtin type name is masked to a number in order of first use, "0"
 * being the empty object, as QEMU's qapi-gen does without --unmask.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/qmp_introspect.h"

enum schema_kind { SCHEMA_OBJECT, SCHEMA_ENUM };

struct schema_type {
	const char *name;
	enum schema_kind kind;
	const char *members;
};

static const struct schema_command schema_commands[] = {
	{ "qmp_capabilities", NULL, NULL },
	{ "query-version", NULL, "VersionInfo" },
	{ "query-commands", NULL, "[CommandInfo]" },
	{ "query-status", NULL, "StatusInfo" },
	{ "query-name", NULL, "NameInfo" },
	{ "query-uuid", NULL, "UuidInfo" },
	{ "query-kvm", NULL, "KvmInfo" },
	{ "query-cpus-fast", NULL, "[CpuInfoFast]" },
	{ "query-block", NULL, "[BlockInfo]" },
	{ "query-blockstats", NULL, "[BlockStats]" },
	{ "query-rx-filter", NULL, "[RxFilterInfo]" },
	{ "query-chardev", NULL, "[ChardevInfo]" },
	{ "query-pci", NULL, "[PciInfo]" },
	{ "query-balloon", NULL, "BalloonInfo" },
	{ "query-migrate", NULL, "MigrationInfo" },
	{ "query-machines", NULL, "[MachineInfo]" },
	{ "query-cpu-definitions", NULL, "[CpuDefinitionInfo]" },
	{ "stop", NULL, NULL },
	{ "cont", NULL, NULL },
	{ "system_reset", NULL, NULL },
	{ "system_powerdown", NULL, NULL },
	{ "quit", NULL, NULL },
	{ "balloon", NULL, NULL },
	{ "human-monitor-command", NULL, "str" },
	{ "set_link", NULL, NULL },
	{ "device_del", NULL, NULL },
	{ "block_set_io_throttle", NULL, NULL },
	{ "qom-get", NULL, "any" },
	{ "qom-set", NULL, NULL },
	{ "nbd-server-start", NULL, NULL },
	{ "nbd-server-add", NULL, NULL },
	{ "nbd-server-remove", NULL, NULL },
	{ "nbd-server-stop", NULL, NULL },
	{ "block-export-add", NULL, NULL },
	{ "block-export-del", NULL, NULL },
	{ "query-block-exports", NULL, "[BlockExportInfo]" },
	{ "query-target", NULL, "TargetInfo" },
	{ "qom-list-types", NULL, "[ObjectTypeInfo]" },
	{ "device-list-properties", NULL, "[ObjectPropertyInfo]" },
	{ "qom-list-properties", NULL, "[ObjectPropertyInfo]" },
	{ "query-command-line-options", NULL, "[CommandLineOptionInfo]" },
	{ "query-migrate-capabilities", NULL, "[MigrationCapabilityStatus]" },
	{ "query-sev-capabilities", NULL, "SevCapability" },
	{ "query-sgx-capabilities", NULL, "SGXInfo" },
	{ "query-cpu-model-expansion", "q_obj_query-cpu-model-expansion-arg",
	  "CpuModelExpansionInfo" },
	{ "query-tpm-models", NULL, "[TpmModel]" },
	{ "query-tpm-types", NULL, "[TpmType]" },
	{ "query-hotpluggable-cpus", NULL, "[HotpluggableCPU]" },
	{ "query-qmp-schema", NULL, "[SchemaInfo]" },
	{ "query-named-block-nodes", NULL, "[BlockDeviceInfo]" },
	{ "query-block-jobs", NULL, "[BlockJobInfo]" },
	{ "query-iothreads", NULL, "[IOThreadInfo]" },
	{ "migrate-set-capabilities", "q_obj_migrate-set-capabilities-arg", NULL },
	{ "qom-list", NULL, "[ObjectPropertyInfo]" },
	{ "getfd", NULL, NULL },
	{ "closefd", NULL, NULL },
	{ "add-fd", NULL, "AddfdInfo" },
	{ "remove-fd", NULL, NULL },
	{ "query-fdsets", NULL, "[FdsetInfo]" },
	{ "send-key", "q_obj_send-key-arg", NULL },
	{ "input-send-event", "q_obj_input-send-event-arg", NULL },
	{ "query-mice", NULL, "[MouseInfo]" },
	{ "query-vnc", NULL, "VncInfo" },
	{ "change-vnc-password", NULL, NULL },
	{ "set_password", "SetPasswordOptions", NULL },
	{ "screendump", "q_obj_screendump-arg", NULL },
	{ "query-display-options", NULL, "DisplayOptions" },
	{ NULL, NULL, NULL },
};

/* The events Kestrel sends (cli/app_control.c, cli/kestrel.c), with their data. */
static const struct schema_event schema_events[] = {
	{ "SHUTDOWN", "q_obj_SHUTDOWN-arg" },
	{ "POWERDOWN", NULL },
	{ "RESET", "q_obj_RESET-arg" },
	{ "STOP", NULL },
	{ "RESUME", NULL },
	{ "BALLOON_CHANGE", "q_obj_BALLOON_CHANGE-arg" },
	{ "VNC_CONNECTED", "q_obj_VNC_CONNECTED-arg" },
	{ "VNC_INITIALIZED", "q_obj_VNC_INITIALIZED-arg" },
	{ "VNC_DISCONNECTED", "q_obj_VNC_DISCONNECTED-arg" },
	{ NULL, NULL },
};

static const struct schema_type schema_types[] = {
	{ "QMPCapability", SCHEMA_ENUM, "oob" },
	{ "VersionInfo", SCHEMA_OBJECT, "qemu:VersionTriple package:str" },
	{ "VersionTriple", SCHEMA_OBJECT, "major:int minor:int micro:int" },
	{ "CommandInfo", SCHEMA_OBJECT, "name:str" },
	{ "StatusInfo", SCHEMA_OBJECT, "running:bool singlestep:bool status:RunState" },
	/* The states ui/control.h's run_state (and -S's prelaunch) can be in. */
	{ "RunState", SCHEMA_ENUM, "prelaunch running paused shutdown internal-error io-error" },
	{ "NameInfo", SCHEMA_OBJECT, "?name:str" },
	{ "UuidInfo", SCHEMA_OBJECT, "UUID:str" },
	{ "KvmInfo", SCHEMA_OBJECT, "enabled:bool present:bool" },
	{ "CpuInfoFast", SCHEMA_OBJECT,
	  "cpu-index:int qom-path:str thread-id:int ?props:CpuInstanceProperties "
	  "target:SysEmuTarget" },
	{ "CpuInstanceProperties", SCHEMA_OBJECT, "?socket-id:int ?core-id:int ?thread-id:int" },
	{ "SysEmuTarget", SCHEMA_ENUM, "x86_64" },
	{ "BlockInfo", SCHEMA_OBJECT,
	  "device:str ?qdev:str type:str removable:bool locked:bool ?inserted:BlockDeviceInfo" },
	{ "BlockDeviceInfo", SCHEMA_OBJECT,
	  "file:str ?node-name:str ro:bool drv:str backing_file_depth:int encrypted:bool "
	  "detect_zeroes:BlockdevDetectZeroesOptions bps:int bps_rd:int bps_wr:int iops:int "
	  "iops_rd:int iops_wr:int image:ImageInfo ?bps_max:int ?bps_rd_max:int "
	  "?bps_wr_max:int ?iops_max:int ?iops_rd_max:int ?iops_wr_max:int "
	  "?bps_max_length:int ?bps_rd_max_length:int ?bps_wr_max_length:int "
	  "?iops_max_length:int ?iops_rd_max_length:int ?iops_wr_max_length:int "
	  "?iops_size:int ?group:str cache:BlockdevCacheInfo write_threshold:int" },
	{ "BlockdevDetectZeroesOptions", SCHEMA_ENUM, "off on unmap" },
	{ "ImageInfo", SCHEMA_OBJECT, "filename:str format:str virtual-size:int" },
	{ "BlockdevCacheInfo", SCHEMA_OBJECT, "writeback:bool direct:bool no-flush:bool" },
	{ "BlockStats", SCHEMA_OBJECT,
	  "?device:str ?qdev:str ?node-name:str stats:BlockDeviceStats" },
	{ "BlockDeviceStats", SCHEMA_OBJECT,
	  "rd_bytes:int wr_bytes:int unmap_bytes:int rd_operations:int wr_operations:int "
	  "flush_operations:int unmap_operations:int rd_total_time_ns:int "
	  "wr_total_time_ns:int flush_total_time_ns:int unmap_total_time_ns:int "
	  "rd_merged:int wr_merged:int unmap_merged:int ?idle_time_ns:int "
	  "failed_rd_operations:int failed_wr_operations:int failed_flush_operations:int "
	  "failed_unmap_operations:int invalid_rd_operations:int invalid_wr_operations:int "
	  "invalid_flush_operations:int invalid_unmap_operations:int wr_highest_offset:int "
	  "account_invalid:bool account_failed:bool timed_stats:[BlockDeviceTimedStats]" },
	{ "BlockDeviceTimedStats", SCHEMA_OBJECT, "interval_length:int" },
	{ "RxFilterInfo", SCHEMA_OBJECT,
	  "name:str promiscuous:bool multicast:RxState unicast:RxState vlan:RxState "
	  "broadcast-allowed:bool multicast-overflow:bool unicast-overflow:bool main-mac:str "
	  "vlan-table:[int] unicast-table:[str] multicast-table:[str]" },
	{ "RxState", SCHEMA_ENUM, "normal none all" },
	{ "ChardevInfo", SCHEMA_OBJECT, "label:str filename:str frontend-open:bool" },
	{ "PciInfo", SCHEMA_OBJECT, "bus:int devices:[PciDeviceInfo]" },
	{ "PciDeviceInfo", SCHEMA_OBJECT,
	  "bus:int slot:int function:int class_info:PciDeviceClass id:PciDeviceId ?irq:int "
	  "irq_pin:int qdev_id:str regions:[PciMemoryRegion]" },
	{ "PciDeviceClass", SCHEMA_OBJECT, "class:int" },
	{ "PciDeviceId", SCHEMA_OBJECT,
	  "device:int vendor:int ?subsystem:int ?subsystem-vendor:int" },
	{ "PciMemoryRegion", SCHEMA_OBJECT,
	  "bar:int type:str address:int size:int ?prefetch:bool ?mem_type_64:bool" },
	{ "BalloonInfo", SCHEMA_OBJECT, "actual:int" },
	/* Kestrel has no migration: query-migrate answers {}. */
	{ "MigrationInfo", SCHEMA_OBJECT, "" },
	{ "MachineInfo", SCHEMA_OBJECT,
	  "name:str ?alias:str ?is-default:bool cpu-max:int hotpluggable-cpus:bool "
	  "numa-mem-supported:bool deprecated:bool ?default-cpu-type:str ?default-ram-id:str" },
	{ "CpuDefinitionInfo", SCHEMA_OBJECT,
	  "name:str ?migration-safe:bool static:bool ?unavailable-features:[str] typename:str "
	  "deprecated:bool" },
	{ "BlockExportInfo", SCHEMA_OBJECT,
	  "id:str type:BlockExportType node-name:str shutting-down:bool" },
	{ "BlockExportType", SCHEMA_ENUM, "nbd" },
	{ "TargetInfo", SCHEMA_OBJECT, "arch:SysEmuTarget" },
	{ "ObjectTypeInfo", SCHEMA_OBJECT, "name:str ?abstract:bool ?parent:str" },
	{ "ObjectPropertyInfo", SCHEMA_OBJECT,
	  "name:str type:str ?description:str ?default-value:any" },
	{ "CommandLineOptionInfo", SCHEMA_OBJECT,
	  "option:str parameters:[CommandLineParameterInfo]" },
	{ "CommandLineParameterInfo", SCHEMA_OBJECT,
	  "name:str type:CommandLineParameterType ?help:str ?default:str" },
	{ "CommandLineParameterType", SCHEMA_ENUM, "string boolean number size" },
	{ "MigrationCapabilityStatus", SCHEMA_OBJECT,
	  "capability:MigrationCapability state:bool" },
	{ "q_obj_migrate-set-capabilities-arg", SCHEMA_OBJECT,
	  "capabilities:[MigrationCapabilityStatus]" },
	/* No block jobs: no job type (query-block-jobs is always empty). */
	{ "BlockJobInfo", SCHEMA_OBJECT,
	  "type:JobType device:str len:int offset:int busy:bool paused:bool speed:int "
	  "ready:bool" },
	{ "JobType", SCHEMA_ENUM, "" },
	/*
	 * The input commands.  KeyValue and InputEvent are QAPI unions (a "type"
	 * tag picks the "data" branch); the notation has no variants, so "data"
	 * is described as 'any' and the command checks it as QEMU's visitor does.
	 */
	{ "q_obj_send-key-arg", SCHEMA_OBJECT, "keys:[KeyValue] ?hold-time:int" },
	{ "KeyValue", SCHEMA_OBJECT, "type:KeyValueKind data:any" },
	{ "KeyValueKind", SCHEMA_ENUM, "number qcode" },
	{ "q_obj_input-send-event-arg", SCHEMA_OBJECT,
	  "?device:str ?head:int events:[InputEvent]" },
	{ "InputEvent", SCHEMA_OBJECT, "type:InputEventKind data:any" },
	{ "InputEventKind", SCHEMA_ENUM, "key btn rel abs" },
	{ "MouseInfo", SCHEMA_OBJECT, "name:str index:int current:bool absolute:bool" },
	{ "AddfdInfo", SCHEMA_OBJECT, "fdset-id:int fd:int" },
	{ "FdsetInfo", SCHEMA_OBJECT, "fdset-id:int fds:[FdsetFdInfo]" },
	{ "FdsetFdInfo", SCHEMA_OBJECT, "fd:int ?opaque:str" },
	{ "IOThreadInfo", SCHEMA_OBJECT,
	  "id:str thread-id:int poll-max-ns:int poll-grow:int poll-shrink:int "
	  "aio-max-batch:int" },
	/* No migration, so no capability (see query-migrate-capabilities). */
	{ "MigrationCapability", SCHEMA_ENUM, "" },
	{ "SevCapability", SCHEMA_OBJECT,
	  "pdh:str cert-chain:str cpu0-id:str cbitpos:int reduced-phys-bits:int" },
	{ "SGXInfo", SCHEMA_OBJECT,
	  "sgx:bool sgx1:bool sgx2:bool flc:bool sections:[SGXEPCSection]" },
	{ "SGXEPCSection", SCHEMA_OBJECT, "node:int size:int" },
	{ "q_obj_query-cpu-model-expansion-arg", SCHEMA_OBJECT,
	  "type:CpuModelExpansionType model:CpuModelInfo" },
	{ "CpuModelExpansionType", SCHEMA_ENUM, "static full" },
	{ "CpuModelInfo", SCHEMA_OBJECT, "name:str ?props:any" },
	{ "CpuModelExpansionInfo", SCHEMA_OBJECT, "model:CpuModelInfo" },
	/* Kestrel has no TPM. */
	{ "TpmModel", SCHEMA_ENUM, "" },
	{ "TpmType", SCHEMA_ENUM, "" },
	{ "HotpluggableCPU", SCHEMA_OBJECT,
	  "type:str vcpus-count:int props:CpuInstanceProperties ?qom-path:str" },
	/* The union flattened: which members appear depends on meta-type. */
	{ "SchemaInfo", SCHEMA_OBJECT,
	  "name:str meta-type:SchemaMetaType ?features:[str] ?arg-type:str ?ret-type:str "
	  "?allow-oob:bool ?members:any ?values:[str] ?element-type:str ?json-type:JSONType "
	  "?tag:str ?variants:any" },
	{ "SchemaMetaType", SCHEMA_ENUM, "builtin enum array object alternate command event" },
	{ "JSONType", SCHEMA_ENUM, "string number int boolean null object array value" },
	{ "q_obj_SHUTDOWN-arg", SCHEMA_OBJECT, "guest:bool reason:ShutdownCause" },
	{ "q_obj_RESET-arg", SCHEMA_OBJECT, "guest:bool reason:ShutdownCause" },
	{ "ShutdownCause", SCHEMA_ENUM,
	  "host-qmp-quit host-qmp-system-reset host-signal host-ui guest-shutdown guest-reset" },
	{ "q_obj_BALLOON_CHANGE-arg", SCHEMA_OBJECT, "actual:int" },
	/* qapi/ui.json: VNC (ui/vnc.c, ui/vnc_net.c) and the display commands. */
	{ "VncInfo", SCHEMA_OBJECT,
	  "enabled:bool ?host:str ?family:NetworkAddressFamily ?service:str ?auth:str "
	  "?clients:[VncClientInfo]" },
	{ "NetworkAddressFamily", SCHEMA_ENUM, "ipv4 ipv6 unix vsock unknown" },
	{ "VncBasicInfo", SCHEMA_OBJECT,
	  "host:str service:str family:NetworkAddressFamily websocket:bool" },
	{ "VncServerInfo", SCHEMA_OBJECT,
	  "host:str service:str family:NetworkAddressFamily websocket:bool ?auth:str" },
	{ "VncClientInfo", SCHEMA_OBJECT,
	  "host:str service:str family:NetworkAddressFamily websocket:bool ?x509_dname:str "
	  "?sasl_username:str" },
	{ "q_obj_VNC_CONNECTED-arg", SCHEMA_OBJECT, "server:VncServerInfo client:VncBasicInfo" },
	{ "q_obj_VNC_INITIALIZED-arg", SCHEMA_OBJECT, "server:VncServerInfo client:VncClientInfo" },
	{ "q_obj_VNC_DISCONNECTED-arg", SCHEMA_OBJECT, "server:VncServerInfo client:VncClientInfo" },
	{ "SetPasswordOptions", SCHEMA_OBJECT,
	  "protocol:DisplayProtocol password:str ?connected:SetPasswordAction ?display:str" },
	{ "DisplayProtocol", SCHEMA_ENUM, "vnc spice" },
	{ "SetPasswordAction", SCHEMA_ENUM, "keep fail disconnect" },
	{ "q_obj_screendump-arg", SCHEMA_OBJECT,
	  "filename:str ?device:str ?head:int ?format:ImageFormat" },
	{ "ImageFormat", SCHEMA_ENUM, "ppm png" },
	{ "DisplayOptions", SCHEMA_OBJECT, "type:DisplayType" },
	{ "DisplayType", SCHEMA_ENUM, "none" },
	{ NULL, 0, NULL },
};

/* introspect.json's builtins and their JSON types. */
static const char *const builtins[][2] = {
	{ "str", "string" }, { "int", "int" }, { "bool", "boolean" },
	{ "number", "number" }, { "null", "null" }, { "any", "value" },
};
#define NR_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

const struct schema_command *qmp_schema_commands(void)
{
	return schema_commands;
}

const struct schema_event *qmp_schema_events(void)
{
	return schema_events;
}

/* -------------------------------------------------------------------------- */
/* Building the answer                                                        */

#define MAX_TYPES 256
#define DERIVED_PREFIX "q_obj_"

/* The types referenced so far, in order: the index is the masked name. */
struct schema_build {
	char *names[MAX_TYPES];
	size_t nr;
	struct json_object *list;
	bool ok;
};

static const struct schema_type *find_type(const char *name)
{
	for (const struct schema_type *t = schema_types; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static bool is_builtin(const char *name)
{
	for (size_t i = 0; i < NR_BUILTINS; i++)
		if (!strcmp(builtins[i][0], name))
			return true;
	return false;
}

static const struct qmp_command *find_command(const char *name)
{
	for (const struct qmp_command *c = qmp_command_table(); c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* The number a type is shown as, assigned at first use ("" is the empty object). */
static int type_index(struct schema_build *b, const char *name)
{
	for (size_t i = 0; i < b->nr; i++)
		if (!strcmp(b->names[i], name))
			return (int)i;
	if (b->nr == MAX_TYPES) {
		b->ok = false;
		return 0;
	}
	b->names[b->nr] = strdup(name);
	if (!b->names[b->nr]) {
		b->ok = false;
		return 0;
	}
	return (int)b->nr++;
}

/* The masked name of a type reference: builtins as they are, arrays as "[N]". */
static void masked(struct schema_build *b, const char *name, char *out, size_t len)
{
	size_t n = strlen(name);
	char elem[128];

	if (is_builtin(name)) {
		snprintf(out, len, "%s", name);
	} else if (name[0] == '[' && n > 2 && n - 2 < sizeof(elem)) {
		memcpy(elem, name + 1, n - 2);
		elem[n - 2] = '\0';
		if (is_builtin(elem)) {
			snprintf(out, len, "%s", name);
			type_index(b, name);
		} else {
			char inner[140];
			masked(b, elem, inner, sizeof(inner));
			snprintf(out, len, "[%s]", inner);
			type_index(b, name);
		}
	} else {
		snprintf(out, len, "%d", type_index(b, name));
	}
}

static struct json_object *member(struct schema_build *b, const char *name, size_t nlen,
				  const char *type, bool optional)
{
	struct json_object *m = qmp_new_obj(&b->ok);
	char t[160];

	masked(b, type, t, sizeof(t));
	qmp_put(&b->ok, m, "name", json_object_new_string_len(name, (int)nlen));
	/* An optional member has "default": null (json-c's null is a NULL value). */
	if (optional && m && json_object_object_add(m, "default", NULL) < 0)
		b->ok = false;
	qmp_put(&b->ok, m, "type", json_object_new_string(t));
	return m;
}

/* "a:T ?b:U" → members; enum "x y" → values and members. */
static void put_members(struct schema_build *b, struct json_object *o,
			const struct schema_type *t)
{
	struct json_object *members = json_object_new_array(), *values = NULL, *m;
	const char *p = t->members;
	char type[128];

	if (!members)
		b->ok = false;
	if (t->kind == SCHEMA_ENUM) {
		values = json_object_new_array();
		if (!values)
			b->ok = false;
	}
	while (*p) {
		size_t len = strcspn(p, " ");
		bool optional = *p == '?';
		const char *name = p + optional, *colon;

		if (len == 0) {
			p++;
			continue;
		}
		if (t->kind == SCHEMA_ENUM) {
			m = qmp_new_obj(&b->ok);
			qmp_put(&b->ok, m, "name", json_object_new_string_len(p, (int)len));
			qmp_append(&b->ok, members, m);
			qmp_append(&b->ok, values, json_object_new_string_len(p, (int)len));
		} else {
			colon = memchr(name, ':', len - optional);
			if (!colon || (size_t)(p + len - colon - 1) >= sizeof(type)) {
				b->ok = false;
				return;
			}
			memcpy(type, colon + 1, (size_t)(p + len - colon - 1));
			type[p + len - colon - 1] = '\0';
			qmp_append(&b->ok, members,
				   member(b, name, (size_t)(colon - name), type, optional));
		}
		p += len;
	}
	qmp_put(&b->ok, o, "members", members);
	if (values)
		qmp_put(&b->ok, o, "values", values);
}

static const char *const arg_types[] = {
	[QMP_ARG_STR] = "str", [QMP_ARG_INT] = "int", [QMP_ARG_BOOL] = "bool",
	[QMP_ARG_CAPS] = "[QMPCapability]", [QMP_ARG_ANY] = "any",
};

/* A command's argument object from its dispatch table entry. */
static void put_derived(struct schema_build *b, struct json_object *o, const char *cmd)
{
	const struct qmp_command *c = find_command(cmd);
	struct json_object *members = json_object_new_array();

	if (!members)
		b->ok = false;
	for (const struct qmp_arg *a = c ? c->args : NULL; a && a->name; a++)
		qmp_append(&b->ok, members,
			   member(b, a->name, strlen(a->name), arg_types[a->type], a->optional));
	qmp_put(&b->ok, o, "members", members);
}

/* Emits the SchemaInfo of type number i (which may reference new types). */
static void emit_type(struct schema_build *b, size_t i)
{
	const char *name = b->names[i];
	struct json_object *o = qmp_new_obj(&b->ok);
	const struct schema_type *t;
	char num[160], elem[128], full[170];
	size_t n = strlen(name);

	snprintf(num, sizeof(num), "%zu", i);
	if (name[0] == '[') {
		snprintf(elem, sizeof(elem), "%.*s", (int)(n - 2), name + 1);
		masked(b, elem, num, sizeof(num));
		snprintf(full, sizeof(full), "[%s]", num);
		qmp_put(&b->ok, o, "name", json_object_new_string(full));
		qmp_put(&b->ok, o, "meta-type", json_object_new_string("array"));
		qmp_put(&b->ok, o, "element-type", json_object_new_string(num));
	} else if (i == 0) {
		qmp_put(&b->ok, o, "name", json_object_new_string(num));
		qmp_put(&b->ok, o, "meta-type", json_object_new_string("object"));
		qmp_put(&b->ok, o, "members", json_object_new_array());
	} else if ((t = find_type(name))) {
		qmp_put(&b->ok, o, "name", json_object_new_string(num));
		qmp_put(&b->ok, o, "meta-type",
			json_object_new_string(t->kind == SCHEMA_ENUM ? "enum" : "object"));
		put_members(b, o, t);
	} else if (!strncmp(name, DERIVED_PREFIX, strlen(DERIVED_PREFIX))) {
		qmp_put(&b->ok, o, "name", json_object_new_string(num));
		qmp_put(&b->ok, o, "meta-type", json_object_new_string("object"));
		/* "q_obj_<command>-arg" */
		snprintf(elem, sizeof(elem), "%.*s", (int)(n - strlen(DERIVED_PREFIX) - 4),
			 name + strlen(DERIVED_PREFIX));
		put_derived(b, o, elem);
	} else {
		b->ok = false;	/* a reference to a type the table lacks: a bug */
	}
	qmp_append(&b->ok, b->list, o);
}

static void emit_entity(struct schema_build *b, const char *name, const char *meta,
			const char *arg, const char *ret)
{
	struct json_object *o = qmp_new_obj(&b->ok);
	char t[160];

	qmp_put(&b->ok, o, "name", json_object_new_string(name));
	qmp_put(&b->ok, o, "meta-type", json_object_new_string(meta));
	masked(b, arg, t, sizeof(t));
	qmp_put(&b->ok, o, "arg-type", json_object_new_string(t));
	if (ret) {
		masked(b, ret, t, sizeof(t));
		qmp_put(&b->ok, o, "ret-type", json_object_new_string(t));
	}
	qmp_append(&b->ok, b->list, o);
}

/* A command with no arguments gets the empty object, as qapi-gen's q_empty. */
static const char *command_arg(const struct schema_command *c, char *buf, size_t len)
{
	const struct qmp_command *d = find_command(c->name);

	if (c->arg)
		return c->arg;
	if (!d || !d->args || !d->args[0].name)
		return "";
	snprintf(buf, len, DERIVED_PREFIX "%s-arg", c->name);
	return buf;
}

int qmp_query_qmp_schema(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct schema_build b = { .ok = true };
	char arg[96];

	b.list = json_object_new_array();
	b.ok = b.list != NULL;
	type_index(&b, "");	/* "0": the empty object */
	for (const struct schema_command *c = schema_commands; c->name && b.ok; c++)
		emit_entity(&b, c->name, "command", command_arg(c, arg, sizeof(arg)),
			    c->ret ? c->ret : "");
	for (const struct schema_event *e = schema_events; e->name && b.ok; e++)
		emit_entity(&b, e->name, "event", e->arg ? e->arg : "", NULL);
	/* Emitting a type may reference more: b.nr grows while we walk. */
	for (size_t i = 0; i < b.nr && b.ok; i++)
		if (!is_builtin(b.names[i]))
			emit_type(&b, i);
	for (size_t i = 0; i < NR_BUILTINS && b.ok; i++) {
		struct json_object *o = qmp_new_obj(&b.ok);
		qmp_put(&b.ok, o, "name", json_object_new_string(builtins[i][0]));
		qmp_put(&b.ok, o, "meta-type", json_object_new_string("builtin"));
		qmp_put(&b.ok, o, "json-type", json_object_new_string(builtins[i][1]));
		qmp_append(&b.ok, b.list, o);
	}
	for (size_t i = 0; i < b.nr; i++)
		free(b.names[i]);
	return qmp_finish(b.ok, b.list, ret, err);
}
