/*
 * The monitor's NBD server commands (QEMU 7.2's qapi/block-export.json and
 * hmp-commands.hx): QMP nbd-server-start/add/remove/stop, block-export-add/
 * del, query-block-exports, and HMP nbd_server_start/add/remove/stop, all
 * through the control table.  Private to ui/.
 */
#ifndef KESTREL_UI_NBD_CMDS_H
#define KESTREL_UI_NBD_CMDS_H

#include "ui/qmp_int.h"

int qmp_nbd_server_start(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);
int qmp_nbd_server_add(struct qmp_session *s, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err);
int qmp_nbd_server_remove(struct qmp_session *s, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err);
int qmp_nbd_server_stop(struct qmp_session *s, struct json_object *args,
			struct json_object **ret, struct qmp_error *err);
int qmp_block_export_add(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);
int qmp_block_export_del(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err);
int qmp_query_block_exports(struct qmp_session *s, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err);
extern const struct qmp_arg qmp_nbd_server_start_args[], qmp_nbd_server_add_args[],
	qmp_nbd_server_remove_args[], qmp_block_export_add_args[], qmp_block_export_del_args[];

/* HMP nbd_server_start|add|remove|stop (argv[0]): 0, or -1 with the message in msg. */
int hmp_nbd_command(const struct control *ctl, int argc, char **argv, char *msg, size_t len);

#endif
