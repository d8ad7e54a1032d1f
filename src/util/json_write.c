/*
 * QEMU's JSON writer (qobject/json-writer.c) without a value tree: a growing
 * buffer, strings quoted as QEMU quotes them, and objects' members in QDict
 * order.  Whoever holds the values (json-c objects in QMP, a node tree
 * elsewhere) walks them and writes through these.
 */
#include "util/json_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

void json_buf_add(struct json_buf *b, const char *p, size_t n)
{
	size_t cap;
	char *data;

	if (b->failed)
		return;
	if (n > b->cap - b->len) {
		cap = b->cap ? b->cap : 256;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->failed = true;
				return;
			}
			cap *= 2;
		}
		data = realloc(b->data, cap);
		if (!data) {
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void json_buf_str(struct json_buf *b, const char *s)
{
	json_buf_add(b, s, strlen(s));
}

/*
 * QEMU's quoted_str: the output is pure ASCII.  Non-ASCII and control
 * characters become \uXXXX (upper-case hex, surrogate pairs past the BMP) and
 * bytes that are not UTF-8 become U+FFFD.
 */
void json_write_string(struct json_buf *b, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	char esc[16];
	int32_t cp;

	json_buf_add(b, "\"", 1);
	while (p < end) {
		p += utf8_decode(p, (size_t)(end - p), &cp);
		switch (cp) {
		case '"':
			json_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			json_buf_add(b, "\\\\", 2);
			break;
		case '\b':
			json_buf_add(b, "\\b", 2);
			break;
		case '\f':
			json_buf_add(b, "\\f", 2);
			break;
		case '\n':
			json_buf_add(b, "\\n", 2);
			break;
		case '\r':
			json_buf_add(b, "\\r", 2);
			break;
		case '\t':
			json_buf_add(b, "\\t", 2);
			break;
		default:
			if (cp < 0)
				cp = 0xFFFD;
			if (cp > 0xFFFF) {
				snprintf(esc, sizeof(esc), "\\u%04X\\u%04X",
					 (unsigned)(0xD800 + ((cp - 0x10000) >> 10)),
					 (unsigned)(0xDC00 + ((cp - 0x10000) & 0x3FF)));
				json_buf_str(b, esc);
			} else if (cp < 0x20 || cp >= 0x7F) {
				snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)cp);
				json_buf_str(b, esc);
			} else {
				esc[0] = (char)cp;
				json_buf_add(b, esc, 1);
			}
		}
	}
	json_buf_add(b, "\"", 1);
}

/*
 * QEMU prints a QDict's members in hash-table order, not insertion order:
 * bucket tdb_hash(key) % QDICT_BUCKET_MAX (512) upwards, and within a bucket
 * the last inserted first (qobject/qdict.c).  Clients must not care, but
 * people and scripts diff our output against QEMU's, so we sort the same way;
 * for that to hold within a bucket, builders add members in the order of the
 * QAPI schema, which is the order QEMU's output visitor inserts them.
 */
unsigned json_qdict_bucket(const char *key)
{
	size_t len = strlen(key);
	uint32_t v = 0x238F13AFu * (uint32_t)len;

	for (size_t i = 0; i < len; i++)
		v += (uint32_t)(uint8_t)key[i] << (i * 5 % 24);
	return (1103515243u * v + 12345u) % 512u;
}

static int member_cmp(const void *a, const void *b)
{
	const struct json_member *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->index > y->index ? -1 : x->index < y->index;
}

void json_qdict_sort(struct json_member *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		m[i].bucket = json_qdict_bucket(m[i].key);
		m[i].index = i;
	}
	qsort(m, n, sizeof(*m), member_cmp);
}
