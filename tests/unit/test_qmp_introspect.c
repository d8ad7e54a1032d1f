/*
 * ui/qmp_introspect.c and ui/qmp_schema.c: the QMP commands libvirt's
 * capability probe calls, through a QMP session over a fake control table,
 * and the introspection tables held against what they describe: the schema
 * against the dispatch table, the QOM property and command-line tables
 * against the real command-line parser (options_parse).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/options.h"
#include "ui/qmp_introspect.h"
#include "vmm/config.h"

/* -------------------------------------------------------------------------- */
/* A session over a fake machine                                              */

static struct {
	const char *machine;	/* NULL: pc */
	bool kvm;
	unsigned cpus;
} fake;

static const char *fake_machine(void *opaque)
{
	return fake.machine;
}

static bool fake_kvm(void *opaque)
{
	return fake.kvm;
}

static unsigned fake_cpu_count(void *opaque)
{
	return fake.cpus;
}

static bool fake_cpu_info(void *opaque, unsigned i, struct cpu_info *out)
{
	*out = (struct cpu_info){ .cpu_index = i, .thread_id = 1000 + i, .socket_id = i };
	return i < fake.cpus;
}

static const struct control ctl = {
	.machine = fake_machine,
	.kvm_enabled = fake_kvm,
	.cpu_count = fake_cpu_count,
	.cpu_info = fake_cpu_info,
};

static char *out;
static size_t out_len;

static void capture(void *opaque, const char *data, size_t len)
{
	char *p = realloc(out, out_len + len + 1);

	assert_non_null(p);
	memcpy(p + out_len, data, len);
	out = p;
	out_len += len;
	out[out_len] = '\0';
}

/* Runs one command on a fresh negotiated session; returns the whole reply. */
static struct json_object *run(const char *json)
{
	struct qmp_session *s;
	struct json_object *reply, *last = NULL;
	char *line, *save = NULL;
	const char *neg = "{\"execute\": \"qmp_capabilities\"}";

	free(out);
	out = NULL;
	out_len = 0;
	s = qmp_session_new(&ctl, capture, NULL);
	assert_non_null(s);
	qmp_session_input(s, (const uint8_t *)neg, strlen(neg));
	qmp_session_input(s, (const uint8_t *)json, strlen(json));
	qmp_session_free(s);
	assert_non_null(out);
	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		json_object_put(last);
		last = json_tokener_parse(line);
		assert_non_null(last);
	}
	reply = last;
	return reply;
}

static struct json_object *ret_of(struct json_object *reply)
{
	struct json_object *r;

	if (!json_object_object_get_ex(reply, "return", &r))
		fail_msg("no return: %s", json_object_to_json_string(reply));
	return r;
}

static void assert_error(struct json_object *reply, const char *cls, const char *desc)
{
	struct json_object *e = json_object_object_get(reply, "error");

	assert_non_null(e);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "class")), cls);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "desc")), desc);
	json_object_put(reply);
}

static bool list_has_name(struct json_object *list, const char *key, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *v = json_object_array_get_idx(list, i), *n;
		if (key)
			v = json_object_object_get_ex(v, key, &n) ? n : NULL;
		if (v && !strcmp(json_object_get_string(v), name))
			return true;
	}
	return false;
}

static int reset(void **state)
{
	fake.machine = NULL;
	fake.kvm = true;
	fake.cpus = 2;
	return 0;
}

/* -------------------------------------------------------------------------- */
/* The schema                                                                 */

static const struct schema_command *schema_cmd(const char *name)
{
	for (const struct schema_command *c = qmp_schema_commands(); c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static const struct qmp_command *dispatch_cmd(const char *name)
{
	for (const struct qmp_command *c = qmp_command_table(); c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* Every dispatched command is in the schema, every schema command dispatched. */
static void test_schema_commands_are_the_dispatch_table(void **state)
{
	unsigned n_dispatch = 0, n_schema = 0;

	for (const struct qmp_command *c = qmp_command_table(); c->name; c++, n_dispatch++)
		if (!schema_cmd(c->name))
			fail_msg("dispatched command %s is not in the schema", c->name);
	for (const struct schema_command *c = qmp_schema_commands(); c->name; c++, n_schema++)
		if (!dispatch_cmd(c->name))
			fail_msg("schema command %s is not dispatched", c->name);
	assert_int_equal(n_dispatch, n_schema);
}

static struct json_object *schema_entry(struct json_object *schema, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(schema); i++) {
		struct json_object *e = json_object_array_get_idx(schema, i);
		if (!strcmp(json_object_get_string(json_object_object_get(e, "name")), name))
			return e;
	}
	return NULL;
}

/* Each type a schema entry names is itself in the schema. */
static void check_resolves(struct json_object *schema, struct json_object *e, const char *key)
{
	struct json_object *t;

	if (json_object_object_get_ex(e, key, &t) &&
	    !schema_entry(schema, json_object_get_string(t)))
		fail_msg("%s of %s: type %s is not in the schema", key,
			 json_object_to_json_string(e), json_object_get_string(t));
}

static void test_schema_is_closed_and_masked(void **state)
{
	struct json_object *reply = run("{\"execute\": \"query-qmp-schema\"}");
	struct json_object *schema = ret_of(reply), *members, *m;
	unsigned commands = 0, events = 0;

	for (size_t i = 0; i < json_object_array_length(schema); i++) {
		struct json_object *e = json_object_array_get_idx(schema, i);
		const char *meta = json_object_get_string(json_object_object_get(e, "meta-type"));
		const char *name = json_object_get_string(json_object_object_get(e, "name"));

		check_resolves(schema, e, "arg-type");
		check_resolves(schema, e, "ret-type");
		check_resolves(schema, e, "element-type");
		commands += !strcmp(meta, "command");
		events += !strcmp(meta, "event");
		/* Non-builtin types are masked: numbers, or arrays of them. */
		if (!strcmp(meta, "object") || !strcmp(meta, "enum"))
			assert_true(name[0] >= '0' && name[0] <= '9');
		if (!strcmp(meta, "object") && json_object_object_get_ex(e, "members", &members))
			for (size_t k = 0; k < json_object_array_length(members); k++) {
				m = json_object_array_get_idx(members, k);
				check_resolves(schema, m, "type");
			}
	}
	assert_non_null(schema_entry(schema, "0"));
	for (const struct qmp_command *c = qmp_command_table(); c->name; c++)
		assert_non_null(schema_entry(schema, c->name));
	for (const struct schema_event *ev = qmp_schema_events(); ev->name; ev++)
		assert_non_null(schema_entry(schema, ev->name));
	assert_true(commands >= 40);
	assert_int_equal(events, 9);
	json_object_put(reply);
}

/* The arguments the schema describes are the ones the dispatcher parses. */
static void test_schema_arguments_are_the_parsed_ones(void **state)
{
	struct json_object *reply = run("{\"execute\": \"query-qmp-schema\"}");
	struct json_object *schema = ret_of(reply);

	for (const struct qmp_command *c = qmp_command_table(); c->name; c++) {
		struct json_object *e = schema_entry(schema, c->name);
		const char *arg = json_object_get_string(json_object_object_get(e, "arg-type"));
		struct json_object *obj = schema_entry(schema, arg), *members;
		size_t n = 0;

		assert_non_null(obj);
		members = json_object_object_get(obj, "members");
		for (const struct qmp_arg *a = c->args; a && a->name; a++, n++) {
			struct json_object *m = json_object_array_get_idx(members, n);
			assert_non_null(m);
			assert_string_equal(json_object_get_string(json_object_object_get(m, "name")),
					    a->name);
			assert_int_equal(json_object_object_get_ex(m, "default", NULL), a->optional);
		}
		if (json_object_array_length(members) != n)
			fail_msg("%s: schema has %zu arguments, dispatch %zu", c->name,
				 json_object_array_length(members), n);
	}
	json_object_put(reply);
}

/* -------------------------------------------------------------------------- */
/* The probe's commands                                                       */

static void test_query_target(void **state)
{
	struct json_object *r = run("{\"execute\": \"query-target\"}");

	assert_string_equal(json_object_get_string(json_object_object_get(ret_of(r), "arch")),
			    "x86_64");
	json_object_put(r);
}

static void test_qom_list_types_has_no_tcg(void **state)
{
	struct json_object *r = run("{\"execute\": \"qom-list-types\", \"arguments\": "
				    "{\"implements\": \"accel\"}}");
	struct json_object *list = ret_of(r);

	assert_int_equal(json_object_array_length(list), 2);	/* accel itself, kvm-accel */
	assert_true(list_has_name(list, "name", "kvm-accel"));
	assert_false(list_has_name(list, "name", "tcg-accel"));
	json_object_put(r);

	r = run("{\"execute\": \"qom-list-types\", \"arguments\": {\"implements\": \"device\"}}");
	list = ret_of(r);
	assert_true(list_has_name(list, "name", "virtio-blk-pci"));
	assert_false(list_has_name(list, "name", "pci-device"));	/* abstract */
	assert_false(list_has_name(list, "name", "memory-backend-ram"));
	json_object_put(r);

	r = run("{\"execute\": \"qom-list-types\", \"arguments\": {\"implements\": \"device\", "
		"\"abstract\": true}}");
	assert_true(list_has_name(ret_of(r), "name", "pci-device"));
	json_object_put(r);

	r = run("{\"execute\": \"qom-list-types\", \"arguments\": {\"implements\": \"nosuch\"}}");
	assert_int_equal(json_object_array_length(ret_of(r)), 0);
	json_object_put(r);
}

static void test_device_list_properties(void **state)
{
	struct json_object *r = run("{\"execute\": \"device-list-properties\", \"arguments\": "
				    "{\"typename\": \"virtio-blk-pci\"}}");

	assert_true(list_has_name(ret_of(r), "name", "drive"));
	assert_true(list_has_name(ret_of(r), "name", "bootindex"));
	assert_false(list_has_name(ret_of(r), "name", "write-cache"));	/* not parsed */
	json_object_put(r);
	assert_error(run("{\"execute\": \"device-list-properties\", \"arguments\": "
			 "{\"typename\": \"nosuch\"}}"), "DeviceNotFound",
		     "Device 'nosuch' not found");
	assert_error(run("{\"execute\": \"device-list-properties\", \"arguments\": "
			 "{\"typename\": \"pci-device\"}}"), "GenericError",
		     "Parameter 'typename' expects a non-abstract device type");
	assert_error(run("{\"execute\": \"device-list-properties\", \"arguments\": "
			 "{\"typename\": \"memory-backend-ram\"}}"), "GenericError",
		     "Parameter 'typename' expects a non-abstract device type");
}

static void test_qom_list_properties(void **state)
{
	struct json_object *r = run("{\"execute\": \"qom-list-properties\", \"arguments\": "
				    "{\"typename\": \"pc-i440fx-7.2-machine\"}}");

	assert_true(list_has_name(ret_of(r), "name", "memory-backend"));
	json_object_put(r);
	r = run("{\"execute\": \"qom-list-properties\", \"arguments\": "
		"{\"typename\": \"memory-backend-file\"}}");
	assert_true(list_has_name(ret_of(r), "name", "mem-path"));
	assert_true(list_has_name(ret_of(r), "name", "size"));	/* inherited */
	assert_false(list_has_name(ret_of(r), "name", "hugetlb"));	/* memfd's */
	json_object_put(r);
	assert_error(run("{\"execute\": \"qom-list-properties\", \"arguments\": "
			 "{\"typename\": \"nosuch\"}}"), "DeviceNotFound", "Class 'nosuch' not found");
}

static void test_command_line_options(void **state)
{
	struct json_object *r = run("{\"execute\": \"query-command-line-options\"}");

	assert_true(list_has_name(ret_of(r), "option", "machine"));
	assert_false(list_has_name(ret_of(r), "option", "sandbox"));
	json_object_put(r);
	r = run("{\"execute\": \"query-command-line-options\", \"arguments\": "
		"{\"option\": \"smp-opts\"}}");
	assert_int_equal(json_object_array_length(ret_of(r)), 1);
	json_object_put(r);
	assert_error(run("{\"execute\": \"query-command-line-options\", \"arguments\": "
			 "{\"option\": \"sandbox\"}}"), "GenericError",
		     "invalid option name: sandbox");
}

static void test_migrate_capabilities_empty(void **state)
{
	struct json_object *r = run("{\"execute\": \"query-migrate-capabilities\"}");

	assert_int_equal(json_object_array_length(ret_of(r)), 0);
	json_object_put(r);
}

static void test_sev_sgx_generic_errors(void **state)
{
	fake.kvm = false;
	assert_error(run("{\"execute\": \"query-sev-capabilities\"}"), "GenericError",
		     "KVM not enabled");
	fake.kvm = true;
	assert_error(run("{\"execute\": \"query-sev-capabilities\"}"), "GenericError",
		     "SEV is not enabled in KVM");
	assert_error(run("{\"execute\": \"query-sgx-capabilities\"}"), "GenericError",
		     "SGX is not enabled in KVM");
}

static void test_cpu_model_expansion_checks(void **state)
{
	assert_error(run("{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
			 "{\"type\": \"full\", \"model\": {\"name\": \"nosuch\"}}}"),
		     "GenericError", "CPU model 'nosuch' not found");
	assert_error(run("{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
			 "{\"type\": \"wide\", \"model\": {\"name\": \"host\"}}}"),
		     "GenericError", "Parameter 'type' does not accept value 'wide'");
	assert_error(run("{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
			 "{\"type\": \"full\", \"model\": {\"name\": \"host\", \"x\": 1}}}"),
		     "GenericError", "Parameter 'model.x' is unexpected");
	assert_error(run("{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
			 "{\"type\": \"static\", \"model\": {}}}"),
		     "GenericError", "Parameter 'model.name' is missing");
}

static void test_tpm_empty(void **state)
{
	struct json_object *r = run("{\"execute\": \"query-tpm-models\"}");

	assert_int_equal(json_object_array_length(ret_of(r)), 0);
	json_object_put(r);
	r = run("{\"execute\": \"query-tpm-types\"}");
	assert_int_equal(json_object_array_length(ret_of(r)), 0);
	json_object_put(r);
}

static void test_hotpluggable_cpus(void **state)
{
	struct json_object *r = run("{\"execute\": \"query-hotpluggable-cpus\"}"), *list, *e;

	list = ret_of(r);
	assert_int_equal(json_object_array_length(list), 2);
	e = json_object_array_get_idx(list, 0);	/* QEMU lists the last first */
	assert_string_equal(json_object_get_string(json_object_object_get(e, "qom-path")),
			    "/machine/unattached/device[1]");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "type")),
			    "host-x86_64-cpu");
	json_object_put(r);
	fake.machine = "none";
	fake.cpus = 0;
	assert_error(run("{\"execute\": \"query-hotpluggable-cpus\"}"), "GenericError",
		     "The feature 'query-hotpluggable-cpus' is not enabled");
}

static void test_kvm_and_machines(void **state)
{
	struct json_object *r, *v;

	fake.kvm = false;
	r = run("{\"execute\": \"query-kvm\"}");
	assert_false(json_object_get_boolean(json_object_object_get(ret_of(r), "enabled")));
	assert_true(json_object_get_boolean(json_object_object_get(ret_of(r), "present")));
	json_object_put(r);
	r = run("{\"execute\": \"query-cpu-definitions\"}");
	v = json_object_object_get(json_object_array_get_idx(ret_of(r), 0), "unavailable-features");
	assert_int_equal(json_object_array_length(v), 1);
	json_object_put(r);
	r = run("{\"execute\": \"query-machines\"}");
	assert_true(list_has_name(ret_of(r), "name", "none"));
	assert_true(list_has_name(ret_of(r), "alias", "pc"));
	json_object_put(r);
}

/* -------------------------------------------------------------------------- */
/* The tables against the command-line parser                                 */

/*
 * Runs options_parse on argv with its messages (log_error, on stderr)
 * captured; returns them.  Whether the line parses does not matter here
 * (a test value may be refused), only whether a key is refused as unknown.
 */
static char *parse_messages(const char **args)
{
	char *argv[16] = { "kestrel" }, *text;
	struct vm_config *cfg = calloc(1, sizeof(*cfg));
	FILE *tmp = tmpfile(), *null = fopen("/dev/null", "w");
	int saved = dup(2), argc = 1;
	long len;

	assert_non_null(cfg);
	assert_non_null(tmp);
	assert_non_null(null);
	while (args[argc - 1] && argc < 15) {
		argv[argc] = (char *)args[argc - 1];
		argc++;
	}
	fflush(stderr);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	options_parse(argc, argv, cfg, null);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	len = ftell(tmp);
	assert_true(len >= 0);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	rewind(tmp);
	assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
	fclose(tmp);
	fclose(null);
	options_free(cfg);
	free(cfg);
	return text;
}

static bool refused_as_unknown(const char *msgs, const char *key)
{
	char a[96], b[96];

	snprintf(a, sizeof(a), "Invalid parameter '%s'", key);
	snprintf(b, sizeof(b), "Property '%s' not found", key);
	/* A key refused by name ("cpu-pm=on ... is not supported") counts too. */
	return strstr(msgs, a) || strstr(msgs, b) || strstr(msgs, "is not a valid device model") ||
	       strstr(msgs, "not supported");
}

static const char *test_value(const char *type)
{
	if (!strcmp(type, "bool") || !strcmp(type, "boolean"))
		return "on";
	if (!strcmp(type, "str") || !strcmp(type, "string") || !strncmp(type, "link<", 5))
		return "x";
	if (!strcmp(type, "HostMemPolicy"))
		return "bind";
	return "1";
}

/* Each device property listed is one -device <type> really takes, and only those. */
static void test_device_props_are_parsed(void **state)
{
	unsigned checked = 0;

	for (const struct qom_type *t = qmp_qom_types(); t->name; t++) {
		char arg[160];
		char *msgs;

		if (t->abstract || !qmp_qom_implements(t, "device") ||
		    qmp_qom_implements(t, "cpu"))
			continue;
		for (const struct qom_prop *p = t->props; p && p->name; p++, checked++) {
			snprintf(arg, sizeof(arg), "%s,%s=%s", t->name, p->name,
				 test_value(p->type));
			msgs = parse_messages((const char *[]){ "-device", arg, NULL });
			if (refused_as_unknown(msgs, p->name))
				fail_msg("-device %s: listed property refused: %s", arg, msgs);
			free(msgs);
		}
		snprintf(arg, sizeof(arg), "%s,no-such-prop=1", t->name);
		msgs = parse_messages((const char *[]){ "-device", arg, NULL });
		assert_true(refused_as_unknown(msgs, "no-such-prop"));
		free(msgs);
	}
	assert_true(checked >= 20);
}

/* The memory backends' and the machine's properties, likewise. */
static void test_object_and_machine_props_are_parsed(void **state)
{
	static const char *const backends[] = {
		"memory-backend-ram", "memory-backend-file", "memory-backend-memfd",
	};
	const struct qom_type *base = qmp_qom_type("memory-backend");
	const struct qom_type *m = qmp_qom_type("machine");
	char arg[200], *msgs;

	for (size_t i = 0; i < 3; i++) {
		const struct qom_type *t = qmp_qom_type(backends[i]);
		assert_non_null(t);
		for (int own = 0; own < 2; own++)
			for (const struct qom_prop *p = own ? t->props : base->props;
			     p && p->name; p++) {
				snprintf(arg, sizeof(arg), "%s,id=m,size=1M,mem-path=/tmp,%s=%s",
					 backends[i], p->name, test_value(p->type));
				msgs = parse_messages((const char *[]){ "-object", arg, NULL });
				if (refused_as_unknown(msgs, p->name))
					fail_msg("-object %s refused: %s", arg, msgs);
				free(msgs);
			}
	}
	for (const struct qom_prop *p = m->props; p && p->name; p++) {
		snprintf(arg, sizeof(arg), "pc,%s=%s", p->name, test_value(p->type));
		msgs = parse_messages((const char *[]){ "-machine", arg, NULL });
		if (refused_as_unknown(msgs, p->name))
			fail_msg("-machine %s refused: %s", arg, msgs);
		free(msgs);
	}
}

/* Each listed option parameter is one Kestrel's parser takes; no -sandbox. */
static void test_cmdline_options_are_parsed(void **state)
{
	char arg[160], *msgs;
	unsigned checked = 0;

	for (const struct cmdline_option *o = qmp_cmdline_options(); o->option; o++) {
		for (const struct cmdline_param *p = o->params; p->name; p++, checked++) {
			snprintf(arg, sizeof(arg), "%s=%s", p->name, test_value(p->type));
			msgs = parse_messages((const char *[]){ o->flag, arg, NULL });
			if (refused_as_unknown(msgs, p->name))
				fail_msg("%s %s refused: %s", o->flag, arg, msgs);
			free(msgs);
		}
		/* The flag itself exists: an unknown option reads differently. */
		msgs = parse_messages((const char *[]){ o->flag, "no-such-param=1", NULL });
		assert_null(strstr(msgs, "invalid option"));
		free(msgs);
	}
	assert_true(checked >= 25);
	msgs = parse_messages((const char *[]){ "-sandbox", "on", NULL });
	assert_non_null(strstr(msgs, "sandbox"));
	free(msgs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_commands_are_the_dispatch_table),
		cmocka_unit_test_setup(test_schema_is_closed_and_masked, reset),
		cmocka_unit_test_setup(test_schema_arguments_are_the_parsed_ones, reset),
		cmocka_unit_test_setup(test_query_target, reset),
		cmocka_unit_test_setup(test_qom_list_types_has_no_tcg, reset),
		cmocka_unit_test_setup(test_device_list_properties, reset),
		cmocka_unit_test_setup(test_qom_list_properties, reset),
		cmocka_unit_test_setup(test_command_line_options, reset),
		cmocka_unit_test_setup(test_migrate_capabilities_empty, reset),
		cmocka_unit_test_setup(test_sev_sgx_generic_errors, reset),
		cmocka_unit_test_setup(test_cpu_model_expansion_checks, reset),
		cmocka_unit_test_setup(test_tpm_empty, reset),
		cmocka_unit_test_setup(test_hotpluggable_cpus, reset),
		cmocka_unit_test_setup(test_kvm_and_machines, reset),
		cmocka_unit_test(test_device_props_are_parsed),
		cmocka_unit_test(test_object_and_machine_props_are_parsed),
		cmocka_unit_test(test_cmdline_options_are_parsed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
