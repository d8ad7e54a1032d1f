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
/*
 * qom-get on /machine/peripheral/ID: its type and qdev state (0 or -1 as a
 * handler), 1 for another path or property; qmp_qom_missing then words the
 * error: an unknown property of a device that exists, or an unknown path.
 */
int qmp_qom_get_peripheral(struct qmp_session *s, const char *path, const char *prop,
			   struct json_object **ret, struct qmp_error *err);
int qmp_qom_missing(struct qmp_session *s, const char *path, const char *prop,
		    struct qmp_error *err);

/* qmp_fds.c: fds passed with SCM_RIGHTS (getfd, closefd, add-fd, remove-fd, query-fdsets). */
int qmp_getfd(struct qmp_session *s, struct json_object *args,
	      struct json_object **ret, struct qmp_error *err);
int qmp_closefd(struct qmp_session *s, struct json_object *args,
		struct json_object **ret, struct qmp_error *err);
int qmp_add_fd(struct qmp_session *s, struct json_object *args,
	       struct json_object **ret, struct qmp_error *err);
int qmp_remove_fd(struct qmp_session *s, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err);
int qmp_query_fdsets(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_fdname_args[], qmp_add_fd_args[], qmp_remove_fd_args[];

#endif
