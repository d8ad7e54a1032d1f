/* QMP commands of a running VM (qmp_runtime.c); private to ui/qmp*.c. */
#ifndef KESTREL_UI_QMP_RUNTIME_H
#define KESTREL_UI_QMP_RUNTIME_H

#include "ui/qmp_int.h"

int qmp_query_named_block_nodes(struct qmp_session *s, struct json_object *args,
				struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_named_block_nodes_args[];
int qmp_query_none(struct qmp_session *s, struct json_object *args,
		   struct json_object **ret, struct qmp_error *err);
int qmp_migrate_set_capabilities(struct qmp_session *s, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_migrate_set_capabilities_args[];
int qmp_qom_list(struct qmp_session *s, struct json_object *args,
		 struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_qom_list_args[];
/* qom-get on a vCPU's path: 0 or -1 as a handler; 1 when path is no vCPU's. */
int qmp_qom_get_cpu(struct qmp_session *s, const char *path, const char *prop,
		    struct json_object **ret, struct qmp_error *err);

#endif
