/*
 * What the QMP session (qmp.c: framing, dispatch, output) and the command
 * handlers (qmp_cmds.c, as QEMU's qmp-cmds) share; private to ui/qmp*.c.
 */
#ifndef KESTREL_UI_QMP_INT_H
#define KESTREL_UI_QMP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ui/qmp.h"
#include "util/json_write.h"

enum qmp_input_mode {
	QMP_PARSE,	/* feeding the tokener */
	QMP_RECOVER,	/* after a syntax error: dropping bytes up to the next '{' */
	QMP_SKIP,	/* after a limit: dropping the rest of the offending message */
};

/*
 * Bracket and string state of the message being parsed, tracked beside the
 * tokener so that a message over a limit can be skipped to its real end
 * instead of having its inner objects taken for new messages.
 */
struct qmp_scan {
	size_t depth;
	char quote;		/* '"' or '\'' while inside a string */
	bool escape;
	size_t colons;		/* ':' outside strings: one per object member */
};

struct qmp_session {
	const struct control *ctl;
	qmp_write_fn write;
	void *opaque;
	struct json_tokener *tok;
	enum qmp_input_mode mode;
	size_t msg_len;		/* bytes of the current message fed so far */
	struct qmp_scan scan;
	struct json_buf strtext;	/* the string being scanned, from its quote: error text */
	bool negotiated;
	bool oob;		/* the client enabled the "oob" capability */
	/* The transport's fds passed with the bytes last read (SCM_RIGHTS); NULL: none. */
	int (*take_fd)(void *opaque);
	void *fd_opaque;
	struct qmp_named_fd *named_fds;	/* getfd's, closed with the session */
	unsigned busy;		/* nesting of our entry points on the stack */
	bool doomed;		/* freed while busy */
};

struct qmp_error {
	const char *cls;	/* QapiErrorClass name; NULL: no error */
	char *desc;		/* NULL when even formatting it failed */
};

typedef int (*qmp_handler)(struct qmp_session *s, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err);

enum qmp_arg_type {
	QMP_ARG_STR,
	QMP_ARG_INT,
	QMP_ARG_BOOL,
	QMP_ARG_CAPS,		/* ['QMPCapability'], qapi/control.json */
	QMP_ARG_ANY,		/* 'any': the command checks it */
};

struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool optional;
};

struct qmp_command {
	const char *name;
	qmp_handler fn;
	const struct qmp_arg *args;	/* NULL-named terminator; NULL: none */
};

/* qmp.c: errors and object building, for the command handlers. */
int qmp_fail(struct qmp_error *err, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int qmp_oom(struct qmp_error *err);
struct json_object *qmp_new_obj(bool *ok);
/*
 * Adds val, taking ownership of it, under key.  A NULL obj or val (a failed
 * allocation) or a failed add clears *ok and frees val, so a builder makes all
 * its calls and checks *ok once at the end.
 */
void qmp_put(bool *ok, struct json_object *obj, const char *key, struct json_object *val);
void qmp_append(bool *ok, struct json_object *arr, struct json_object *val);
/* Hands a finished builder result to *ret, or reports why there is none. */
int qmp_finish(bool ok, struct json_object *obj, struct json_object **ret, struct qmp_error *err);

/* qmp_cmds.c: the command table (NULL-named terminator) and the greeting's version. */
const struct qmp_command *qmp_command_table(void);
struct json_object *qmp_version_info(void);
/*
 * A vCPU's CpuInstanceProperties (socket, core, thread), and its QOM path in
 * path: query-cpus-fast and query-hotpluggable-cpus describe it alike.
 */
struct json_object *qmp_cpu_props(bool *ok, const struct cpu_info *ci, char *path,
				  size_t pathlen);
/* qmp_fds.c: closes the session's getfd fds (when it ends). */
void qmp_session_fds_close(struct qmp_session *s);
/* A drive's node as BlockDeviceInfo (query-block "inserted", query-named-block-nodes). */
struct json_object *qmp_block_device_info(const struct drive_info *b, bool *ok);

#endif
