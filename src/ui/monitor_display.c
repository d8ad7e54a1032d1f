/*
 * The monitors' display commands (QEMU 7.2 ui/vnc.c, ui/console.c,
 * monitor/hmp-cmds.c): QMP query-vnc, change-vnc-password, set_password,
 * screendump, query-display-options; HMP info vnc, change vnc password,
 * set_password, screendump.  HMP's side writes plain text ("\n") that hmp.c
 * turns into the monitor's "\r\n".
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "ui/control.h"
#include "ui/monitor_display.h"
#include "ui/qmp_int.h"
#include "ui/screendump.h"
#include "ui/sdl.h"
#include "ui/vnc.h"

/* ---- QMP ------------------------------------------------------------------ */

static const char *arg_str(struct json_object *args, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(args, key, &v) ? json_object_get_string(v) : NULL;
}

int qmp_query_vnc(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		  struct qmp_error *err)
{
	struct json_object *r = vnc_query(s->ctl->vnc);

	return qmp_finish(r != NULL, r, ret, err);
}

int qmp_change_vnc_password(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	char msg[128];

	if (vnc_set_password(s->ctl->vnc, arg_str(args, "password"), msg, sizeof(msg)) < 0)
		return qmp_fail(err, "GenericError", "%s", msg);
	return 0;
}

/* SetPasswordOptions: protocol vnc (spice is not built in), connected keep only. */
int qmp_set_password(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err)
{
	const char *proto = arg_str(args, "protocol"), *conn = arg_str(args, "connected");
	const char *display = arg_str(args, "display");
	char msg[128];

	if (!strcmp(proto, "spice"))
		return qmp_fail(err, "GenericError", "SPICE is not in use");
	if (strcmp(proto, "vnc"))
		return qmp_fail(err, "GenericError",
				"Parameter 'protocol' does not accept value '%s'", proto);
	if (conn && strcmp(conn, "keep"))
		return qmp_fail(err, "GenericError",
				"VNC protocol only supports 'keep' for 'connected'");
	if (display && strcmp(display, "default"))
		return qmp_fail(err, "GenericError", "Display '%s' not found", display);
	if (vnc_set_password(s->ctl->vnc, arg_str(args, "password"), msg, sizeof(msg)) < 0)
		return qmp_fail(err, "GenericError", "%s", msg);
	return 0;
}

int qmp_screendump(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		   struct qmp_error *err)
{
	const char *device = arg_str(args, "device");
	struct json_object *head;
	char msg[512];

	if (device)
		return qmp_fail(err, "GenericError", "Device '%s' not found", device);
	if (json_object_object_get_ex(args, "head", &head) && json_object_get_int64(head) != 0)
		return qmp_fail(err, "GenericError", "Head '%" PRId64 "' not found",
				json_object_get_int64(head));
	if (screendump(s->ctl->display, arg_str(args, "filename"), arg_str(args, "format"), msg,
		       sizeof(msg)) < 0)
		return qmp_fail(err, "GenericError", "%s", msg);
	return 0;
}

/* QEMU 7.2 answers "none" for -display none, -nographic, vnc and its default; "sdl" for sdl. */
int qmp_query_display_options(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err)
{
	bool ok = true;
	struct json_object *r = qmp_new_obj(&ok);

	const struct sdl_options *o = s->ctl->sdl;
	static const char *const mods[] = { "lctrl-lalt", "lshift-lctrl-lalt", "rctrl" };

	qmp_put(&ok, r, "type", json_object_new_string(o ? "sdl" : "none"));
	/* The members that differ from the defaults, as given on the command line. */
	if (o && o->full_screen)
		qmp_put(&ok, r, "full-screen", json_object_new_boolean(1));
	if (o && !o->window_close)
		qmp_put(&ok, r, "window-close", json_object_new_boolean(0));
	if (o && o->grab_mod != SDL_GRAB_LCTRL_LALT)
		qmp_put(&ok, r, "grab-mod", json_object_new_string(mods[o->grab_mod]));
	return qmp_finish(ok, r, ret, err);
}

const struct qmp_arg qmp_change_vnc_password_args[] = {
	{ "password", QMP_ARG_STR, false },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_set_password_args[] = {
	{ "protocol", QMP_ARG_STR, false },
	{ "password", QMP_ARG_STR, false },
	{ "connected", QMP_ARG_STR, true },
	{ "display", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_screendump_args[] = {
	{ "filename", QMP_ARG_STR, false },
	{ "device", QMP_ARG_STR, true },
	{ "head", QMP_ARG_INT, true },
	{ "format", QMP_ARG_STR, true },
	{ NULL, 0, false },
};

/* ---- HMP ------------------------------------------------------------------ */

int hmp_info_vnc(const struct control *ctl, FILE *out)
{
	vnc_info(ctl->vnc, out);
	return 0;
}

static int hmp_fail(FILE *out, const char *msg)
{
	fprintf(out, "Error: %s\n", msg);
	return -1;
}

/* change vnc password PW (QEMU's hmp_change; without PW QEMU prompts: we need it given). */
int hmp_change(const struct control *ctl, int argc, char **argv, FILE *out)
{
	char msg[128];

	if (argc < 3) {
		fprintf(out, "change: expected 'change vnc password PASSWORD' or a device and file\n");
		return -1;
	}
	if (strcmp(argv[1], "vnc"))
		return hmp_fail(out, "changing removable media is not supported yet");
	if (strcmp(argv[2], "password") && strcmp(argv[2], "passwd"))
		return hmp_fail(out, "changing the VNC display is not supported (QEMU 7.2 removed it too)");
	if (argc < 4)
		return hmp_fail(out, "change vnc password: give the password (no interactive prompt)");
	if (vnc_set_password(ctl->vnc, argv[3], msg, sizeof(msg)) < 0)
		return hmp_fail(out, msg);
	return 0;
}

/* set_password vnc PASSWORD [action-if-connected] */
int hmp_set_password(const struct control *ctl, int argc, char **argv, FILE *out)
{
	char msg[128];

	if (argc < 3) {
		fprintf(out, "set_password: string expected\n"
			"Try \"help set_password\" for more information\n");
		return -1;
	}
	if (!strcmp(argv[1], "spice"))
		return hmp_fail(out, "SPICE is not in use");
	if (strcmp(argv[1], "vnc"))
		return hmp_fail(out, "Parameter 'protocol' does not accept value");
	if (argc > 3 && strcmp(argv[3], "keep"))
		return hmp_fail(out, "VNC protocol only supports 'keep' for 'connected'");
	if (vnc_set_password(ctl->vnc, argv[2], msg, sizeof(msg)) < 0)
		return hmp_fail(out, msg);
	return 0;
}

/* screendump FILENAME [-f ppm|png] */
int hmp_screendump(const struct control *ctl, int argc, char **argv, FILE *out)
{
	const char *file = NULL, *format = NULL;
	char msg[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") && i + 1 < argc)
			format = argv[++i];
		else if (argv[i][0] == '-' || file)
			return hmp_fail(out, "screendump: expected FILENAME [-f ppm|png]");
		else
			file = argv[i];
	}
	if (!file) {
		fprintf(out, "screendump: filename expected\n"
			"Try \"help screendump\" for more information\n");
		return -1;
	}
	if (screendump(ctl->display, file, format, msg, sizeof(msg)) < 0)
		return hmp_fail(out, msg);
	return 0;
}
