/* QMP input commands (qmp_input.c); private to ui/qmp*.c. */
#ifndef KESTREL_UI_QMP_INPUT_H
#define KESTREL_UI_QMP_INPUT_H

#include "ui/qmp_int.h"

int qmp_send_key(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		 struct qmp_error *err);
int qmp_input_send_event(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);
int qmp_query_mice(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		   struct qmp_error *err);
extern const struct qmp_arg qmp_send_key_args[];
extern const struct qmp_arg qmp_input_send_event_args[];

#endif
