/*
 * QMP commands libvirt sends once the VM is up (issue #27, "QMP at start and
 * while running"), each answered from what Kestrel has: its drives' nodes,
 * no block jobs, no iothreads, no migration capabilities.  Names, arguments
 * and error texts as QEMU 7.2's qapi/ schemas and handlers give them.
 */
#include <stdio.h>
#include <string.h>

#include "ui/qmp_int.h"
#include "ui/qmp_runtime.h"

#define RUNTIME_MAX_DRIVES 16

/*
 * query-named-block-nodes: one BlockDeviceInfo per node.  Kestrel's drive is
 * one node (its format driver over the file it opened), so each drive is one
 * entry; 'flat' only drops the backing chain's nested image info, and no
 * Kestrel node reports a backing chain, so it changes nothing here.
 */
int qmp_query_named_block_nodes(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array();
	struct drive_info info[RUNTIME_MAX_DRIVES];
	unsigned n = s->ctl->blocks ? s->ctl->blocks(s->ctl->opaque, info, RUNTIME_MAX_DRIVES)
				    : 0;
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && i < RUNTIME_MAX_DRIVES && ok; i++)
		qmp_append(&ok, list, qmp_block_device_info(&info[i], &ok));
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
