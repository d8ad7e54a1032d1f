/* The display and VNC commands of both monitors (monitor_display.c). */
#ifndef KESTREL_UI_MONITOR_DISPLAY_H
#define KESTREL_UI_MONITOR_DISPLAY_H

#include <stdio.h>

#include "ui/control.h"
#include "ui/qmp_int.h"

int qmp_query_vnc(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		  struct qmp_error *err);
int qmp_change_vnc_password(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err);
int qmp_set_password(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err);
int qmp_screendump(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		   struct qmp_error *err);
int qmp_query_display_options(struct qmp_session *s, struct json_object *args,
			      struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_change_vnc_password_args[];
extern const struct qmp_arg qmp_set_password_args[];
extern const struct qmp_arg qmp_screendump_args[];

/* HMP: plain "\n" text into out (hmp.c converts it); 0 or -1. */
int hmp_info_vnc(const struct control *ctl, FILE *out);
int hmp_change(const struct control *ctl, int argc, char **argv, FILE *out);
int hmp_set_password(const struct control *ctl, int argc, char **argv, FILE *out);
int hmp_screendump(const struct control *ctl, int argc, char **argv, FILE *out);

#endif
