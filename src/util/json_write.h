/*
 * The pieces of QEMU's JSON output (qobject/json-writer.c) that do not
 * depend on how values are held: a buffer, quoted strings, QDict order.
 */
#ifndef KESTREL_UTIL_JSON_WRITE_H
#define KESTREL_UTIL_JSON_WRITE_H

#include <stdbool.h>
#include <stddef.h>

/* Output that grows as needed; after a failed allocation it stays failed. */
struct json_buf {
	char *data;
	size_t len, cap;
	bool failed;
};

void json_buf_add(struct json_buf *b, const char *p, size_t n);
void json_buf_str(struct json_buf *b, const char *s);

/*
 * QEMU's quoted_str: the output is pure ASCII.  Non-ASCII and control
 * characters become \uXXXX (upper-case hex, surrogate pairs past the BMP) and
 * bytes that are not UTF-8 become U+FFFD.
 */
void json_write_string(struct json_buf *b, const char *s, size_t len);

/*
 * QEMU prints a QDict's members in hash-table order, not insertion order:
 * bucket tdb_hash(key) % QDICT_BUCKET_MAX (512) upwards, and within a bucket
 * the last inserted first (qobject/qdict.c).
 */
unsigned json_qdict_bucket(const char *key);

/* One member of an object being written; val is the caller's. */
struct json_member {
	const char *key;
	const void *val;
	unsigned bucket;	/* set by json_qdict_sort */
	size_t index;		/* insertion order, set by json_qdict_sort */
};

/* Puts m[0..n), given in insertion order, in QDict print order. */
void json_qdict_sort(struct json_member *m, size_t n);

#endif
