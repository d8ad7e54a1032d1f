/*
 * JSON values printed as qemu-img prints its QObjects: pretty with four
 * spaces, object members in QDict order.  The quoting and the member order
 * are util/json_write's, shared with QMP.
 *
 * Out of memory is carried, not fatal: a node that cannot be made or added
 * marks its parent failed, and jprint/jdump_human then return -ENOMEM
 * without printing, so the command reports it and exits 1.
 */
#include "util/json_tree.h"
#include "util/json_write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum jtype { J_OBJ, J_ARR, J_STR, J_INT, J_UINT, J_BOOL };

struct jnode {
	enum jtype type;
	bool failed;		/* a member was lost to an allocation failure */
	char *key;
	char *str;
	int64_t i;
	uint64_t u;
	bool b;
	struct jnode *child, *last, *next;
};

static struct jnode *jnew(enum jtype t)
{
	struct jnode *n = calloc(1, sizeof(*n));

	if (n)
		n->type = t;
	return n;
}

struct jnode *jobj(void) { return jnew(J_OBJ); }
struct jnode *jarr(void) { return jnew(J_ARR); }

/* Takes n (NULL: it could not be made); a NULL parent drops it. */
static void append(struct jnode *parent, const char *key, struct jnode *n)
{
	if (!parent) {
		jfree(n);
		return;
	}
	if (n && key && !(n->key = strdup(key))) {
		jfree(n);
		n = NULL;
	}
	if (!n) {
		parent->failed = true;
		return;
	}
	if (parent->last)
		parent->last->next = n;
	else
		parent->child = n;
	parent->last = n;
}

static struct jnode *new_str(const char *v)
{
	struct jnode *n = jnew(J_STR);

	if (n && !(n->str = strdup(v))) {
		free(n);
		n = NULL;
	}
	return n;
}

void jset_str(struct jnode *o, const char *key, const char *v) { append(o, key, new_str(v)); }
void jadd_str(struct jnode *arr, const char *v) { append(arr, NULL, new_str(v)); }

void jset_int(struct jnode *o, const char *key, int64_t v)
{
	struct jnode *n = jnew(J_INT);

	if (n)
		n->i = v;
	append(o, key, n);
}

void jset_uint(struct jnode *o, const char *key, uint64_t v)
{
	struct jnode *n = jnew(J_UINT);

	if (n)
		n->u = v;
	append(o, key, n);
}

void jset_bool(struct jnode *o, const char *key, bool v)
{
	struct jnode *n = jnew(J_BOOL);

	if (n)
		n->b = v;
	append(o, key, n);
}

void jset(struct jnode *o, const char *key, struct jnode *v) { append(o, key, v); }
void jadd(struct jnode *arr, struct jnode *v) { append(arr, NULL, v); }

void jfree(struct jnode *n)
{
	while (n) {
		struct jnode *next = n->next;
		jfree(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

const struct jnode *jmember(const struct jnode *o, const char *key)
{
	for (const struct jnode *c = o ? o->child : NULL; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}

static bool complete(const struct jnode *n)
{
	if (!n || n->failed)
		return false;
	for (const struct jnode *c = n->child; c; c = c->next)
		if (!complete(c))
			return false;
	return true;
}

/* The members of n in print order (QDict order for objects); NULL when out of memory. */
static struct json_member *members(const struct jnode *n, size_t *count)
{
	struct json_member *m;
	size_t k = 0;

	for (const struct jnode *c = n->child; c; c = c->next)
		k++;
	m = calloc(k ? k : 1, sizeof(*m));
	if (!m)
		return NULL;
	k = 0;
	for (const struct jnode *c = n->child; c; c = c->next)
		m[k++] = (struct json_member){ .key = c->key ? c->key : "", .val = c };
	if (n->type == J_OBJ)
		json_qdict_sort(m, k);
	*count = k;
	return m;
}

static int print_str(FILE *f, const char *s)
{
	struct json_buf b = { 0 };
	int ret = 0;

	json_write_string(&b, s, strlen(s));
	if (b.failed)
		ret = -ENOMEM;
	else
		fwrite(b.data, 1, b.len, f);
	free(b.data);
	return ret;
}

static void newline(FILE *f, int depth)
{
	fprintf(f, "\n%*s", 4 * depth, "");
}

static int print_node(FILE *f, const struct jnode *n, int depth)
{
	struct json_member *m;
	size_t count;
	int ret = 0;

	switch (n->type) {
	case J_STR: return print_str(f, n->str);
	case J_INT: fprintf(f, "%" PRId64, n->i); return 0;
	case J_UINT: fprintf(f, "%" PRIu64, n->u); return 0;
	case J_BOOL: fputs(n->b ? "true" : "false", f); return 0;
	default: break;
	}
	m = members(n, &count);
	if (!m)
		return -ENOMEM;
	fputc(n->type == J_OBJ ? '{' : '[', f);
	for (size_t i = 0; i < count && ret == 0; i++) {
		if (i)
			fputc(',', f);
		newline(f, depth + 1);
		if (n->type == J_OBJ) {
			ret = print_str(f, m[i].key);
			fputs(": ", f);
		}
		if (ret == 0)
			ret = print_node(f, m[i].val, depth + 1);
	}
	newline(f, depth);
	fputc(n->type == J_OBJ ? '}' : ']', f);
	free(m);
	return ret;
}

int jprint(FILE *f, const struct jnode *n)
{
	int ret;

	if (!complete(n))
		return -ENOMEM;
	ret = print_node(f, n, 0);
	fputc('\n', f);
	return ret;
}

static int dump_human(FILE *f, const struct jnode *n, int indent)
{
	struct json_member *m;
	size_t count;
	int ret = 0;

	m = members(n, &count);
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < count && ret == 0; i++) {
		const struct jnode *c = m[i].val;
		bool composite = c->type == J_OBJ || c->type == J_ARR;
		if (n->type == J_OBJ) {
			fprintf(f, "%*s", indent * 4, "");
			for (const char *k = c->key; *k; k++)
				fputc(*k == '-' ? ' ' : *k, f);
			fputs(composite ? ":\n" : ": ", f);
		} else {
			fprintf(f, "%*s[%zu]:%c", indent * 4, "", i, composite ? '\n' : ' ');
		}
		switch (c->type) {
		case J_STR: fprintf(f, "%s\n", c->str); break;
		case J_INT: fprintf(f, "%" PRId64 "\n", c->i); break;
		case J_UINT: fprintf(f, "%" PRIu64 "\n", c->u); break;
		case J_BOOL: fprintf(f, "%s\n", c->b ? "true" : "false"); break;
		default: ret = dump_human(f, c, indent + 1); break;
		}
	}
	free(m);
	return ret;
}

int jdump_human(FILE *f, const struct jnode *n, int indent)
{
	if (!complete(n))
		return -ENOMEM;
	return dump_human(f, n, indent);
}
