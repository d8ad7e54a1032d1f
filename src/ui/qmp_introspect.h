/*
 * What QMP's introspection commands answer from (ui/qmp_introspect.c): the
 * QOM types Kestrel really has, the properties its -device, -object and
 * -machine parsers really accept, and its QemuOpts-style command-line options
 * with their parameters.  The tables are data so that a unit test can hold
 * each one against the parser it describes (tests/unit/test_qmp_introspect.c).
 */
#ifndef KESTREL_UI_QMP_INTROSPECT_H
#define KESTREL_UI_QMP_INTROSPECT_H

#include <stdbool.h>

#include "ui/qmp_int.h"

/* A property as ObjectPropertyInfo (qapi/qom.json) names it. */
struct qom_prop {
	const char *name;
	const char *type;	/* QEMU's property type: "str", "uint32", "bool", ... */
};

/* One QOM type: ObjectTypeInfo plus, for instantiable ones, its properties. */
struct qom_type {
	const char *name;
	const char *parent;	/* NULL: the root, "object" */
	bool abstract;
	const struct qom_prop *props;	/* NULL-named terminator; NULL: none of its own */
};

/* One QemuOptsList parameter (CommandLineParameterInfo, qapi/misc.json). */
struct cmdline_param {
	const char *name;
	const char *type;	/* "string", "boolean", "number" or "size" */
};

struct cmdline_option {
	const char *option;	/* as QEMU names the list: "smp-opts", "boot-opts", ... */
	const char *flag;	/* the command-line flag that takes it: "-smp" */
	const struct cmdline_param *params;	/* NULL-named terminator */
};

const struct qom_type *qmp_qom_types(void);	/* NULL-named terminator */
const struct qom_type *qmp_qom_type(const char *name);
bool qmp_qom_implements(const struct qom_type *t, const char *ancestor);
const struct cmdline_option *qmp_cmdline_options(void);	/* NULL-named terminator */

/* The handlers, for qmp_cmds.c's table. */
int qmp_query_target(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err);
int qmp_qom_list_types(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err);
int qmp_device_list_properties(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err);
int qmp_qom_list_properties(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err);
int qmp_query_command_line_options(struct qmp_session *s, struct json_object *args,
				   struct json_object **ret, struct qmp_error *err);
int qmp_query_migrate_capabilities(struct qmp_session *s, struct json_object *args,
				   struct json_object **ret, struct qmp_error *err);
int qmp_query_sev_capabilities(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err);
int qmp_query_sgx_capabilities(struct qmp_session *s, struct json_object *args,
			       struct json_object **ret, struct qmp_error *err);
int qmp_query_cpu_model_expansion(struct qmp_session *s, struct json_object *args,
				  struct json_object **ret, struct qmp_error *err);
int qmp_query_empty_list(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);
int qmp_query_hotpluggable_cpus(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err);
int qmp_query_qmp_schema(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);

extern const struct qmp_arg qmp_qom_list_types_args[], qmp_typename_args[],
	qmp_cmdline_options_args[], qmp_cpu_model_expansion_args[];

/* ui/qmp_schema.c: the schema's command and event tables, for the tests. */
struct schema_command {
	const char *name;
	const char *arg;	/* type of the arguments; NULL: from the dispatch table */
	const char *ret;	/* NULL: no return value (the empty object) */
};
struct schema_event {
	const char *name;
	const char *arg;	/* NULL: no data */
};
const struct schema_command *qmp_schema_commands(void);	/* NULL-named terminator */
const struct schema_event *qmp_schema_events(void);	/* NULL-named terminator */

/* Machine helpers shared by qmp_cmds.c and qmp_introspect.c. */
bool qmp_machine_is_none(const struct qmp_session *s);
bool qmp_kvm_enabled(const struct qmp_session *s);

#endif
