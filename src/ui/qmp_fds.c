/*
 * File descriptors passed to the QMP monitor with SCM_RIGHTS, as QEMU 7.2's
 * monitor/fds.c keeps them: getfd/closefd name one fd for the session that
 * received it (closed when the session ends); add-fd/remove-fd/query-fdsets
 * keep fds in numbered sets shared by every monitor, so that a later command
 * (netdev_add with fd=, or a path /dev/fdset/N) can use them.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui/qmp_int.h"
#include "ui/qmp_runtime.h"

struct qmp_named_fd {
	char *name;
	int fd;
	struct qmp_named_fd *next;
};

struct fdset_fd {
	int fd;
	char *opaque;		/* NULL: none given */
	struct fdset_fd *next;	/* newest first, as QEMU inserts them */
};

struct fdset {
	int64_t id;
	struct fdset_fd *fds;
	struct fdset *next;	/* ascending id */
};

static struct fdset *fdsets;

/* The fd that came with the command's bytes, or -1. */
static int take_fd(struct qmp_session *s)
{
	return s->take_fd ? s->take_fd(s->fd_opaque) : -1;
}

static struct qmp_named_fd **find_named(struct qmp_session *s, const char *name)
{
	struct qmp_named_fd **p = &s->named_fds;

	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

/* monitor/fds.c qmp_getfd: a name taken again replaces (and closes) its fd. */
int qmp_getfd(struct qmp_session *s, struct json_object *args,
	      struct json_object **ret, struct qmp_error *err)
{
	const char *name = json_object_get_string(json_object_object_get(args, "fdname"));
	struct qmp_named_fd **p, *n;
	int fd = take_fd(s);

	if (fd < 0)
		return qmp_fail(err, "GenericError", "No file descriptor supplied via SCM_RIGHTS");
	if (isdigit((unsigned char)name[0])) {
		close(fd);
		return qmp_fail(err, "GenericError",
				"Parameter 'fdname' expects a name not starting with a digit");
	}
	p = find_named(s, name);
	if (*p) {
		close((*p)->fd);
		(*p)->fd = fd;
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (n)
		n->name = strdup(name);
	if (!n || !n->name) {
		free(n);
		close(fd);
		return qmp_oom(err);
	}
	n->fd = fd;
	*p = n;
	return 0;
}

int qmp_closefd(struct qmp_session *s, struct json_object *args,
		struct json_object **ret, struct qmp_error *err)
{
	const char *name = json_object_get_string(json_object_object_get(args, "fdname"));
	struct qmp_named_fd **p = find_named(s, name), *n = *p;

	if (!n)
		return qmp_fail(err, "GenericError", "File descriptor named '%s' not found", name);
	*p = n->next;
	close(n->fd);
	free(n->name);
	free(n);
	return 0;
}

int qmp_session_fd_get(struct qmp_session *s, const char *name)
{
	struct qmp_named_fd *n = *find_named(s, name);

	return n ? n->fd : -1;
}

void qmp_session_fds_close(struct qmp_session *s)
{
	while (s->named_fds) {
		struct qmp_named_fd *n = s->named_fds;
		s->named_fds = n->next;
		close(n->fd);
		free(n->name);
		free(n);
	}
}

/* The set with this id, created (in id order) when create and it is missing. */
static struct fdset *fdset_get(int64_t id, bool create)
{
	struct fdset **p = &fdsets, *set;

	while (*p && (*p)->id < id)
		p = &(*p)->next;
	if (*p && (*p)->id == id)
		return *p;
	if (!create)
		return NULL;
	set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	set->id = id;
	set->next = *p;
	*p = set;
	return set;
}

/* The lowest id no set has (monitor_fdset_add_fd without fdset-id). */
static int64_t fdset_free_id(void)
{
	int64_t id = 0;

	for (struct fdset *set = fdsets; set && set->id == id; set = set->next)
		id++;
	return id;
}

static void fdset_drop_if_empty(struct fdset *set)
{
	struct fdset **p = &fdsets;

	if (set->fds)
		return;
	while (*p != set)
		p = &(*p)->next;
	*p = set->next;
	free(set);
}

int qmp_add_fd(struct qmp_session *s, struct json_object *args,
	       struct json_object **ret, struct qmp_error *err)
{
	struct json_object *v;
	const char *opaque = NULL;
	struct fdset_fd *f;
	struct fdset *set;
	int64_t id = -1;
	bool ok = true;
	/* Taken first, as QEMU's qmp_add_fd: a refused command consumes (closes) it. */
	int fd = take_fd(s);

	if (fd < 0)
		return qmp_fail(err, "GenericError", "No file descriptor supplied via SCM_RIGHTS");
	if (json_object_object_get_ex(args, "fdset-id", &v)) {
		id = json_object_get_int64(v);
		if (id < 0) {
			close(fd);
			return qmp_fail(err, "GenericError",
					"Parameter 'fdset-id' expects a non-negative value");
		}
	}
	if (json_object_object_get_ex(args, "opaque", &v))
		opaque = json_object_get_string(v);
	if (id < 0)
		id = fdset_free_id();
	set = fdset_get(id, true);
	f = set ? calloc(1, sizeof(*f)) : NULL;
	if (f && opaque)
		f->opaque = strdup(opaque);
	if (!f || (opaque && !f->opaque)) {
		free(f);
		close(fd);
		if (set)
			fdset_drop_if_empty(set);
		return qmp_oom(err);
	}
	f->fd = fd;
	f->next = set->fds;
	set->fds = f;
	*ret = qmp_new_obj(&ok);
	qmp_put(&ok, *ret, "fdset-id", json_object_new_int64(id));
	qmp_put(&ok, *ret, "fd", json_object_new_int(fd));
	return qmp_finish(ok, *ret, ret, err);
}

/* Removes one fd of a set, or the whole set; a set left empty goes. */
int qmp_remove_fd(struct qmp_session *s, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	int64_t id = json_object_get_int64(json_object_object_get(args, "fdset-id"));
	struct json_object *v;
	struct fdset *set = fdset_get(id, false);
	bool one = json_object_object_get_ex(args, "fd", &v);
	int64_t fd = one ? json_object_get_int64(v) : -1;
	bool found = false;

	for (struct fdset_fd **p = set ? &set->fds : NULL; p && *p;) {
		struct fdset_fd *f = *p;
		if (one && f->fd != fd) {
			p = &f->next;
			continue;
		}
		*p = f->next;
		close(f->fd);
		free(f->opaque);
		free(f);
		found = true;
	}
	if (set)
		fdset_drop_if_empty(set);
	if (found)
		return 0;
	if (one)
		return qmp_fail(err, "GenericError",
				"File descriptor named 'fdset-id:%" PRId64 ", fd:%" PRId64
				"' not found", id, fd);
	return qmp_fail(err, "GenericError", "File descriptor named 'fdset-id:%" PRId64
			"' not found", id);
}

/* The array's elements in reverse order (a new array; arr is released). */
static struct json_object *reversed(struct json_object *arr, bool *ok)
{
	struct json_object *out = arr ? json_object_new_array() : NULL;
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = n; out && i-- > 0;)
		qmp_append(ok, out, json_object_get(json_object_array_get_idx(arr, i)));
	json_object_put(arr);
	if (!out)
		*ok = false;
	return out;
}

/* qmp_query_fdsets prepends: sets newest id first, each set's fds oldest first. */
int qmp_query_fdsets(struct qmp_session *s, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err)
{
	struct json_object *list = json_object_new_array(), *info, *fds, *e;
	bool ok = list != NULL;

	for (struct fdset *set = fdsets; set && ok; set = set->next) {
		info = qmp_new_obj(&ok);
		fds = json_object_new_array();
		for (struct fdset_fd *f = set->fds; f; f = f->next) {
			e = qmp_new_obj(&ok);
			qmp_put(&ok, e, "fd", json_object_new_int(f->fd));
			if (f->opaque)
				qmp_put(&ok, e, "opaque", json_object_new_string(f->opaque));
			qmp_append(&ok, fds, e);
		}
		qmp_put(&ok, info, "fdset-id", json_object_new_int64(set->id));
		qmp_put(&ok, info, "fds", reversed(fds, &ok));
		qmp_append(&ok, list, info);
	}
	if (!ok) {
		json_object_put(list);
		return qmp_oom(err);
	}
	list = reversed(list, &ok);
	return qmp_finish(ok, list, ret, err);
}

/* Closes every fd set (the tests, between cases). */
void qmp_fdsets_reset(void)
{
	while (fdsets) {
		struct fdset *set = fdsets;
		while (set->fds) {
			struct fdset_fd *f = set->fds;
			set->fds = f->next;
			close(f->fd);
			free(f->opaque);
			free(f);
		}
		fdsets = set->next;
		free(set);
	}
}

const struct qmp_arg qmp_fdname_args[] = {
	{ "fdname", QMP_ARG_STR, false },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_add_fd_args[] = {
	{ "fdset-id", QMP_ARG_INT, true },
	{ "opaque", QMP_ARG_STR, true },
	{ NULL, 0, false },
};
const struct qmp_arg qmp_remove_fd_args[] = {
	{ "fdset-id", QMP_ARG_INT, false },
	{ "fd", QMP_ARG_INT, true },
	{ NULL, 0, false },
};
