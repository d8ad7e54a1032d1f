/*
 * The NBD server's monitor commands (nbd_cmds.h): arguments as QEMU 7.2's
 * schema names them, errors in its words; what Kestrel does not have is
 * refused by name (tls-authz, bitmaps, mode=hard, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/nbd_cmds.h"

const struct qmp_arg qmp_nbd_server_start_args[] = {
	{ "addr", QMP_ARG_ANY, false },
	{ "tls-creds", QMP_ARG_STR, true },
	{ "tls-authz", QMP_ARG_STR, true },
	{ "max-connections", QMP_ARG_INT, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_nbd_server_add_args[] = {
	{ "device", QMP_ARG_STR, false },
	{ "name", QMP_ARG_STR, true },
	{ "description", QMP_ARG_STR, true },
	{ "writable", QMP_ARG_BOOL, true },
	{ "bitmap", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_nbd_server_remove_args[] = {
	{ "name", QMP_ARG_STR, false },
	{ "mode", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_block_export_add_args[] = {
	{ "type", QMP_ARG_STR, false },
	{ "id", QMP_ARG_STR, false },
	{ "node-name", QMP_ARG_STR, false },
	{ "name", QMP_ARG_STR, true },
	{ "description", QMP_ARG_STR, true },
	{ "writable", QMP_ARG_BOOL, true },
	{ "writethrough", QMP_ARG_BOOL, true },
	{ "fixed-iothread", QMP_ARG_BOOL, true },
	{ "iothread", QMP_ARG_STR, true },
	{ "bitmaps", QMP_ARG_ANY, true },
	{ "allocation-depth", QMP_ARG_BOOL, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_block_export_del_args[] = {
	{ "id", QMP_ARG_STR, false },
	{ "mode", QMP_ARG_STR, true },
	{ NULL, 0, false },
};

static const char *str_arg(struct json_object *args, const char *key)
{
	struct json_object *v = json_object_object_get(args, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool bool_arg(struct json_object *args, const char *key)
{
	struct json_object *v = json_object_object_get(args, key);

	return v && json_object_get_boolean(v);
}

/* An argument Kestrel takes only at its default value. */
static const char *refused(struct json_object *args, const char *const *keys)
{
	for (; *keys; keys++)
		if (json_object_object_get(args, *keys))
			return *keys;
	return NULL;
}

static int action(struct qmp_error *err, int rc, const char *msg)
{
	if (rc < 0)
		return qmp_fail(err, "GenericError", "%s", msg[0] ? msg : "Operation failed");
	return 0;
}

/* SocketAddressLegacy: {"type": "inet", "data": {"host", "port"}} or unix {"path"}. */
static int parse_addr(struct json_object *addr, struct nbd_listen *l, struct qmp_error *err)
{
	struct json_object *data = json_object_object_get(addr, "data");
	const char *type = str_arg(addr, "type");

	memset(l, 0, sizeof(*l));
	if (!json_object_is_type(addr, json_type_object) || !type)
		return qmp_fail(err, "GenericError", "Parameter 'addr.type' is missing");
	if (!data || !json_object_is_type(data, json_type_object))
		return qmp_fail(err, "GenericError", "Parameter 'addr.data' is missing");
	if (!strcmp(type, "unix")) {
		l->is_unix = true;
		l->path = str_arg(data, "path");
		if (!l->path)
			return qmp_fail(err, "GenericError", "Parameter 'addr.data.path' is missing");
		return 0;
	}
	if (strcmp(type, "inet"))
		return qmp_fail(err, "GenericError", "Parameter 'addr.type' does not accept value "
				"'%s' (Kestrel serves NBD on inet and unix sockets)", type);
	l->host = str_arg(data, "host");
	l->port = str_arg(data, "port");
	if (!l->host)
		return qmp_fail(err, "GenericError", "Parameter 'addr.data.host' is missing");
	if (!l->port)
		return qmp_fail(err, "GenericError", "Parameter 'addr.data.port' is missing");
	return 0;
}

int qmp_nbd_server_start(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	static const char *const no[] = { "tls-authz", "max-connections", NULL };
	struct nbd_listen l;
	char msg[512] = "";
	const char *bad = refused(args, no);

	if (bad)
		return qmp_fail(err, "GenericError", "Parameter '%s' is not supported by Kestrel",
				bad);
	if (!s->ctl->nbd_server_start)
		return qmp_fail(err, "GenericError", "Not supported");
	if (parse_addr(json_object_object_get(args, "addr"), &l, err) < 0)
		return -1;
	return action(err, s->ctl->nbd_server_start(s->ctl->opaque, &l,
						     str_arg(args, "tls-creds"), msg,
						     sizeof(msg)), msg);
}

/* qmp_nbd_server_add: the export's id and name are its name (the device's by default). */
int qmp_nbd_server_add(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	static const char *const no[] = { "bitmap", NULL };
	const char *device = str_arg(args, "device"), *name = str_arg(args, "name");
	const char *bad = refused(args, no);
	char msg[512] = "";

	if (bad)
		return qmp_fail(err, "GenericError", "Parameter '%s' is not supported by Kestrel",
				bad);
	if (!s->ctl->export_add)
		return qmp_fail(err, "GenericError", "Not supported");
	return action(err, s->ctl->export_add(s->ctl->opaque, NULL, device, name ? name : device,
					       str_arg(args, "description"),
					       bool_arg(args, "writable"), msg, sizeof(msg)), msg);
}

static int remove_export(struct qmp_session *s, const char *id, const char *mode,
			 struct qmp_error *err)
{
	char msg[512] = "";

	if (mode && !strcmp(mode, "hard"))
		return qmp_fail(err, "GenericError", "mode 'hard' is not supported by Kestrel "
				"(exports in use stay until their clients leave)");
	if (mode && strcmp(mode, "safe"))
		return qmp_fail(err, "GenericError", "Parameter 'mode' does not accept value '%s'",
				mode);
	if (!s->ctl->export_del)
		return qmp_fail(err, "GenericError", "Not supported");
	return action(err, s->ctl->export_del(s->ctl->opaque, id, msg, sizeof(msg)), msg);
}

int qmp_nbd_server_remove(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	return remove_export(s, str_arg(args, "name"), str_arg(args, "mode"), err);
}

int qmp_nbd_server_stop(struct qmp_session *s, struct json_object *args,
			struct json_object **ret, struct qmp_error *err)
{
	char msg[512] = "";

	if (!s->ctl->nbd_server_stop)
		return qmp_fail(err, "GenericError", "Not supported");
	return action(err, s->ctl->nbd_server_stop(s->ctl->opaque, msg, sizeof(msg)), msg);
}

int qmp_block_export_add(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	static const char *const no[] = { "fixed-iothread", "iothread", "bitmaps",
					  "allocation-depth", NULL };
	const char *type = str_arg(args, "type"), *bad = refused(args, no);
	char msg[512] = "";

	if (strcmp(type, "nbd"))
		return qmp_fail(err, "GenericError", "Parameter 'type' does not accept value '%s' "
				"(Kestrel exports over NBD only)", type);
	if (bad)
		return qmp_fail(err, "GenericError", "Parameter '%s' is not supported by Kestrel",
				bad);
	if (bool_arg(args, "writethrough"))
		return qmp_fail(err, "GenericError", "Parameter 'writethrough' is not supported by "
				"Kestrel");
	if (!s->ctl->export_add)
		return qmp_fail(err, "GenericError", "Not supported");
	return action(err, s->ctl->export_add(s->ctl->opaque, str_arg(args, "id"),
					       str_arg(args, "node-name"), str_arg(args, "name"),
					       str_arg(args, "description"),
					       bool_arg(args, "writable"), msg, sizeof(msg)), msg);
}

int qmp_block_export_del(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	return remove_export(s, str_arg(args, "id"), str_arg(args, "mode"), err);
}

/* [BlockExportInfo]: {"type": "nbd", "id", "node-name", "shutting-down"}. */
int qmp_query_block_exports(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	struct export_info info[16];
	struct json_object *list = json_object_new_array();
	unsigned n = s->ctl->exports ? s->ctl->exports(s->ctl->opaque, info, 16) : 0;
	bool ok = list != NULL;

	for (unsigned i = 0; i < n && i < 16; i++) {
		struct json_object *e = qmp_new_obj(&ok);
		qmp_put(&ok, e, "type", json_object_new_string("nbd"));
		qmp_put(&ok, e, "id", json_object_new_string(info[i].id));
		qmp_put(&ok, e, "node-name", json_object_new_string(info[i].node_name));
		qmp_put(&ok, e, "shutting-down", json_object_new_boolean(false));
		qmp_append(&ok, list, e);
	}
	return qmp_finish(ok, list, ret, err);
}

/* HMP's host:port (or unix:path) of nbd_server_start. */
static int hmp_addr(char *text, struct nbd_listen *l, char *msg, size_t len)
{
	char *colon;

	memset(l, 0, sizeof(*l));
	if (!strncmp(text, "unix:", 5)) {
		l->is_unix = true;
		l->path = text + 5;
		return 0;
	}
	colon = strrchr(text, ':');
	if (!colon || !colon[1] || colon == text) {
		snprintf(msg, len, "host:port expected, not '%s'", text);
		return -1;
	}
	*colon = '\0';
	l->host = text;
	l->port = colon + 1;
	return 0;
}

/* nbd_server_start [-a] [-w] host:port: -a exports every drive (writable with -w). */
static int hmp_start(const struct control *ctl, int argc, char **argv, char *msg, size_t len)
{
	bool all = false, writable = false;
	struct nbd_listen l;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		all |= !strcmp(argv[i], "-a") || !strcmp(argv[i], "-aw") || !strcmp(argv[i], "-wa");
		writable |= !strcmp(argv[i], "-w") || !strcmp(argv[i], "-aw") ||
			    !strcmp(argv[i], "-wa");
	}
	if (i != argc - 1) {
		snprintf(msg, len, "nbd_server_start: expected [-a] [-w] host:port");
		return -1;
	}
	if (hmp_addr(argv[i], &l, msg, len) < 0 ||
	    ctl->nbd_server_start(ctl->opaque, &l, NULL, msg, len) < 0)
		return -1;
	if (!all)
		return 0;
	if (ctl->blocks) {
		struct drive_info d[16];
		unsigned n = ctl->blocks(ctl->opaque, d, 16);
		for (unsigned k = 0; k < n && k < 16; k++)
			if (ctl->export_add(ctl->opaque, NULL, d[k].device, d[k].device, NULL,
					    writable, msg, len) < 0)
				return -1;
	}
	return 0;
}

int hmp_nbd_command(const struct control *ctl, int argc, char **argv, char *msg, size_t len)
{
	bool flag = argc > 1 && (!strcmp(argv[1], "-w") || !strcmp(argv[1], "-f"));

	if (!ctl->nbd_server_start) {
		snprintf(msg, len, "%s: not supported", argv[0]);
		return -1;
	}
	if (!strcmp(argv[0], "nbd_server_start"))
		return hmp_start(ctl, argc, argv, msg, len);
	if (!strcmp(argv[0], "nbd_server_stop"))
		return ctl->nbd_server_stop(ctl->opaque, msg, len);
	if (!strcmp(argv[0], "nbd_server_add") && (argc == 2 + flag || argc == 3 + flag))
		return ctl->export_add(ctl->opaque, NULL, argv[1 + flag],
				       argc == 3 + flag ? argv[2 + flag] : argv[1 + flag], NULL,
				       flag, msg, len);
	if (!strcmp(argv[0], "nbd_server_remove") && argc == 2 + flag) {
		if (flag) {
			snprintf(msg, len, "nbd_server_remove -f is not supported by Kestrel");
			return -1;
		}
		return ctl->export_del(ctl->opaque, argv[1], msg, len);
	}
	snprintf(msg, len, "%s: wrong arguments", argv[0]);
	return -1;
}
