/* The saved-state stream: sections of named, typed fields (vmstate.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/vmstate.h"
#include "util/bytes.h"
#include "util/crc32c.h"

static const uint8_t MAGIC[8] = "KSTRLVM";
enum { TAG_SECTION = 0x01, TAG_END = 0x02 };

static size_t type_size(enum vmstate_type t)
{
	switch (t) {
	case VMS_U8: case VMS_BOOL: case VMS_BYTES: return 1;
	case VMS_U16: return 2;
	case VMS_U32: return 4;
	case VMS_U64: return 8;
	}
	return 0;
}

int vmstate_mem_read(void *membuf, void *buf, size_t len)
{
	struct vmstate_membuf *m = membuf;

	if (len > m->len - m->pos)
		return -1;
	memcpy(buf, m->data + m->pos, len);
	m->pos += len;
	return 0;
}

int vmstate_mem_write(void *membuf, void *buf, size_t len)
{
	struct vmstate_membuf *m = membuf;

	if (len > m->cap - m->len) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *p;

		while (cap - m->len < len)
			cap *= 2;
		p = realloc(m->data, cap);
		if (!p)
			return -1;
		m->data = p;
		m->cap = cap;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

/* The whole of len, across short transfers and signals; -1 at EOF or an error. */
static int fd_all(int fd, uint8_t *buf, size_t len, bool write_it)
{
	while (len) {
		ssize_t n = write_it ? write(fd, buf, len) : read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int vmstate_fd_read(void *fdp, void *buf, size_t len)
{
	return fd_all(*(int *)fdp, buf, len, false);
}

int vmstate_fd_write(void *fdp, void *buf, size_t len)
{
	return fd_all(*(int *)fdp, buf, len, true);
}

/* ---- writing ---- */

__attribute__((format(printf, 2, 3)))
static void out_fail(struct vmstate_out *out, const char *fmt, ...)
{
	va_list ap;

	if (out->failed)
		return;
	out->failed = true;
	va_start(ap, fmt);
	vsnprintf(out->err, sizeof(out->err), fmt, ap);
	va_end(ap);
}

static void put(struct vmstate_out *out, const void *p, size_t len)
{
	struct vmstate_membuf m = { out->buf, out->len, 0, out->cap };

	if (out->failed)
		return;
	if (vmstate_mem_write(&m, (void *)p, len) < 0) {
		out_fail(out, "migration stream: out of memory");
		return;
	}
	out->buf = m.data;
	out->len = m.len;
	out->cap = m.cap;
}

static void put_be32(struct vmstate_out *out, uint32_t v)
{
	uint8_t b[4];

	st_be32(b, v);
	put(out, b, 4);
}

static void put_name(struct vmstate_out *out, const char *name)
{
	uint8_t n = (uint8_t)strlen(name);

	put(out, &n, 1);
	put(out, name, n);
}

static void emit(struct vmstate_out *out, const void *p, size_t len)
{
	if (!out->failed && out->io.rw(out->io.opaque, (void *)p, len) < 0)
		out_fail(out, "migration stream: write failed: %s", strerror(errno ? errno : EIO));
}

int vmstate_out_begin(struct vmstate_out *out, struct vmstate_io io)
{
	uint8_t v[4];

	memset(out, 0, sizeof(*out));
	out->io = io;
	st_be32(v, VMSTATE_FORMAT_VERSION);
	emit(out, MAGIC, sizeof(MAGIC));
	emit(out, v, 4);
	return out->failed ? -1 : 0;
}

static void put_field(struct vmstate_out *out, const struct vmstate_field *f, const void *obj)
{
	const uint8_t *src = (const uint8_t *)obj + f->offset;
	size_t es = type_size(f->type);
	uint8_t type = (uint8_t)f->type;

	put_name(out, f->name);
	put(out, &type, 1);
	put_be32(out, (uint32_t)(es * f->count));
	for (size_t i = 0; i < f->count; i++, src += es) {
		uint8_t b[8];

		switch (f->type) {
		case VMS_U16: st_be16(b, *(const uint16_t *)src); break;
		case VMS_U32: st_be32(b, *(const uint32_t *)src); break;
		case VMS_U64: st_be64(b, *(const uint64_t *)src); break;
		case VMS_BOOL: b[0] = *(const bool *)src ? 1 : 0; break;
		default: b[0] = *src; break;
		}
		put(out, b, es);
	}
}

int vmstate_save(struct vmstate_out *out, const struct vmstate_desc *d, unsigned instance,
		 const void *obj)
{
	uint8_t hdr[1 + 1 + VMSTATE_MAX_NAME + 12], crc[4];
	size_t n = strlen(d->name), h = 0;

	out->len = 0;
	for (const struct vmstate_field *f = d->fields; f->name; f++)
		if (f->since <= d->version)
			put_field(out, f, obj);
	if (out->failed)
		return -1;
	if (out->len > VMSTATE_MAX_SECTION) {
		out_fail(out, "migration stream: section '%s' is %zu bytes, more than %u",
			 d->name, out->len, VMSTATE_MAX_SECTION);
		return -1;
	}
	hdr[h++] = TAG_SECTION;
	hdr[h++] = (uint8_t)n;
	memcpy(hdr + h, d->name, n);
	h += n;
	st_be32(hdr + h, instance);
	st_be32(hdr + h + 4, d->version);
	st_be32(hdr + h + 8, (uint32_t)out->len);
	h += 12;
	st_be32(crc, crc32c(0, out->buf, out->len));
	emit(out, hdr, h);
	emit(out, out->buf, out->len);
	emit(out, crc, 4);
	return out->failed ? -1 : 0;
}

int vmstate_out_end(struct vmstate_out *out)
{
	uint8_t tag = TAG_END;

	emit(out, &tag, 1);
	return out->failed ? -1 : 0;
}

void vmstate_out_free(struct vmstate_out *out)
{
	free(out->buf);
	out->buf = NULL;
}

/* ---- reading ---- */

__attribute__((format(printf, 2, 0)))
static int in_vfail(struct vmstate_in *in, const char *fmt, va_list ap)
{
	char msg[200];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (in->name[0])
		snprintf(in->err, sizeof(in->err), "migration stream: section '%s' instance %u: %s",
			 in->name, in->instance, msg);
	else
		snprintf(in->err, sizeof(in->err), "migration stream: %s", msg);
	return -1;
}

__attribute__((format(printf, 2, 3)))
static int in_fail(struct vmstate_in *in, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	in_vfail(in, fmt, ap);
	va_end(ap);
	return -1;
}

int vmstate_refuse(struct vmstate_in *in, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	in_vfail(in, fmt, ap);
	va_end(ap);
	return -1;
}

static int get(struct vmstate_in *in, void *buf, size_t len)
{
	if (in->io.rw(in->io.opaque, buf, len) < 0)
		return in_fail(in, "ends early (truncated stream)");
	return 0;
}

int vmstate_in_begin(struct vmstate_in *in, struct vmstate_io io)
{
	uint8_t hdr[12];
	uint32_t v;

	memset(in, 0, sizeof(*in));
	in->io = io;
	if (get(in, hdr, sizeof(hdr)) < 0)
		return -1;
	if (memcmp(hdr, MAGIC, sizeof(MAGIC)))
		return in_fail(in, "not a Kestrel migration stream (bad magic)");
	v = ld_be32(hdr + 8);
	if (v != VMSTATE_FORMAT_VERSION)
		return in_fail(in, "format version %u, this Kestrel reads version %u", v,
			       VMSTATE_FORMAT_VERSION);
	return 0;
}

static bool printable_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return n > 0;
}

int vmstate_next_section(struct vmstate_in *in)
{
	uint8_t tag, n, b[12];

	free(in->payload);
	in->payload = NULL;
	in->name[0] = 0;
	if (get(in, &tag, 1) < 0)
		return -1;
	if (tag == TAG_END)
		return 0;
	if (tag != TAG_SECTION)
		return in_fail(in, "unknown record type 0x%02x", tag);
	if (get(in, &n, 1) < 0)
		return -1;
	if (n == 0 || n > VMSTATE_MAX_NAME)
		return in_fail(in, "section name of %u bytes", n);
	if (get(in, in->name, n) < 0)
		return -1;
	in->name[n] = 0;
	if (!printable_name(in->name, n)) {
		in->name[0] = 0;
		return in_fail(in, "section name is not printable");
	}
	if (get(in, b, 12) < 0)
		return -1;
	in->instance = ld_be32(b);
	in->version = ld_be32(b + 4);
	in->payload_len = ld_be32(b + 8);
	if (in->payload_len > VMSTATE_MAX_SECTION)
		return in_fail(in, "%u bytes, more than %u", in->payload_len, VMSTATE_MAX_SECTION);
	in->payload = malloc(in->payload_len + 4u);
	if (!in->payload)
		return in_fail(in, "out of memory");
	if (get(in, in->payload, in->payload_len + 4u) < 0)
		return -1;
	if (ld_be32(in->payload + in->payload_len) != crc32c(0, in->payload, in->payload_len))
		return in_fail(in, "checksum mismatch (the stream is damaged)");
	return 1;
}

/* One field of the payload at *pos into dst, checked against the table's f. */
static int load_field(struct vmstate_in *in, size_t *pos, const struct vmstate_field *f,
		      uint8_t *obj)
{
	const uint8_t *p = in->payload, *data;
	size_t end = in->payload_len, es = type_size(f->type), n, len;
	uint8_t *dst = obj + f->offset;
	char name[VMSTATE_MAX_NAME + 1];

	if (*pos >= end)
		return in_fail(in, "field '%s' missing", f->name);
	n = p[(*pos)++];
	if (n > VMSTATE_MAX_NAME || end - *pos < n + 5)
		return in_fail(in, "field record truncated before '%s'", f->name);
	memcpy(name, p + *pos, n);
	name[n] = 0;
	*pos += n;
	if (strcmp(name, f->name))
		return in_fail(in, "field '%s' expected, the stream has '%.*s'", f->name,
			       printable_name(name, n) ? (int)n : 1, printable_name(name, n) ? name : "?");
	if (p[*pos] != f->type)
		return in_fail(in, "field '%s' has type %u, expected %u", f->name, p[*pos], f->type);
	len = ld_be32(p + *pos + 1);
	*pos += 5;
	if (len != es * f->count)
		return in_fail(in, "field '%s' is %zu bytes, expected %zu", f->name, len, es * f->count);
	if (end - *pos < len)
		return in_fail(in, "field '%s' truncated", f->name);
	data = p + *pos;
	*pos += len;
	for (size_t i = 0; i < f->count; i++, data += es, dst += es) {
		switch (f->type) {
		case VMS_U16: *(uint16_t *)dst = ld_be16(data); break;
		case VMS_U32: *(uint32_t *)dst = ld_be32(data); break;
		case VMS_U64: *(uint64_t *)dst = ld_be64(data); break;
		case VMS_BOOL:
			if (*data > 1)
				return in_fail(in, "field '%s' is a bool with value %u", f->name, *data);
			*(bool *)dst = *data;
			break;
		default: *dst = *data; break;
		}
	}
	return 0;
}

/* Staged in a copy of obj: a refused section leaves the device as it was, and
 * post_load sees the whole new state before any of it is applied. */
int vmstate_load(struct vmstate_in *in, const struct vmstate_desc *d, void *obj)
{
	uint8_t *tmp;
	size_t pos = 0;
	int rc = 0;

	if (strcmp(in->name, d->name))
		return in_fail(in, "is not a '%s' section", d->name);
	if (in->version > d->version)
		return in_fail(in, "version %u is newer than this Kestrel reads (%u)", in->version,
			       d->version);
	if (in->version < d->min_version)
		return in_fail(in, "version %u is older than this Kestrel reads (%u or later)",
			       in->version, d->min_version);
	tmp = malloc(d->size);
	if (!tmp)
		return in_fail(in, "out of memory");
	memcpy(tmp, obj, d->size);
	for (const struct vmstate_field *f = d->fields; f->name && rc == 0; f++)
		if (f->since <= in->version)
			rc = load_field(in, &pos, f, tmp);
	if (rc == 0 && pos != in->payload_len)
		rc = in_fail(in, "%u bytes after the last field this Kestrel knows",
			     (unsigned)(in->payload_len - pos));
	if (rc == 0 && d->post_load) {
		char err[160] = "";

		if (d->post_load(tmp, in->version, err, sizeof(err)) < 0)
			rc = in_fail(in, "%s", err[0] ? err : "refused by the device");
	}
	/* Field by field: the rest of obj (a lock other threads may wait on) is not
	 * written back. */
	for (const struct vmstate_field *f = d->fields; rc == 0 && f->name; f++)
		memcpy((uint8_t *)obj + f->offset, tmp + f->offset, type_size(f->type) * f->count);
	free(tmp);
	return rc;
}

void vmstate_in_free(struct vmstate_in *in)
{
	free(in->payload);
	in->payload = NULL;
}
