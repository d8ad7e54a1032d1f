/*
 * JSON trees printed as qemu-img prints its QObjects (json_tree.c): pretty
 * with four spaces, object members in QDict order.  Used by kestrel-img and
 * by the block drivers for their format-specific information.  An
 * allocation failure is carried in the tree: jprint and jdump_human then
 * print nothing and return -ENOMEM.
 */
#ifndef KESTREL_UTIL_JSON_TREE_H
#define KESTREL_UTIL_JSON_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct jnode;
struct jnode *jobj(void);
struct jnode *jarr(void);
void jset_str(struct jnode *o, const char *key, const char *v);
void jset_int(struct jnode *o, const char *key, int64_t v);
void jset_uint(struct jnode *o, const char *key, uint64_t v);
void jset_bool(struct jnode *o, const char *key, bool v);
void jset(struct jnode *o, const char *key, struct jnode *v);
void jadd(struct jnode *arr, struct jnode *v);
void jadd_str(struct jnode *arr, const char *v);
int jprint(FILE *f, const struct jnode *n);	/* pretty, then a newline */
/* qemu-img's human dump of a dict: "key with spaces: value", nested by 4. */
int jdump_human(FILE *f, const struct jnode *n, int indent);
const struct jnode *jmember(const struct jnode *o, const char *key);
void jfree(struct jnode *n);

#endif
