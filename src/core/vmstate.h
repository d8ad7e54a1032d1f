/*
 * Kestrel's saved-state stream (issue #18): what a device writes when the VM
 * is migrated or snapshotted, and reads back on the other side.
 *
 * Each device describes its state once, as a table of named fields (QEMU's
 * VMStateDescription, cut down), and the same table drives both save and
 * load, so the two can never disagree.  The stream describes itself: every
 * section carries its device's name, instance and version, every field its
 * name, type and length, and every section a CRC-32C, so a stream from a
 * different build or a damaged one is refused with an error naming the
 * section and field, never loaded half-right.
 *
 *   stream  := "KSTRLVM\0" u32 format-version  section* end
 *   section := 0x01 u8 len name  u32 instance  u32 version  u32 len payload  u32 crc32c(payload)
 *   end     := 0x02
 *   payload := field*;  field := u8 len name  u8 type  u32 len data
 *
 * Integers are big-endian (as QEMU's stream).  A section's payload is at most
 * VMSTATE_MAX_SECTION bytes; guest RAM does not travel in sections.
 */
#ifndef KESTREL_CORE_VMSTATE_H
#define KESTREL_CORE_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMSTATE_FORMAT_VERSION 1
#define VMSTATE_MAX_SECTION (64u << 20)
#define VMSTATE_MAX_NAME 63

enum vmstate_type {
	VMS_U8 = 1,	/* count elements each */
	VMS_U16,
	VMS_U32,
	VMS_U64,
	VMS_BOOL,
	VMS_BYTES,	/* count bytes, as they are */
};

struct vmstate_field {
	const char *name;
	enum vmstate_type type;
	size_t offset;		/* in the device's state struct */
	size_t count;		/* elements (1 for a scalar) */
	unsigned since;		/* first section version that has the field (0: all) */
};

/* The bytes one element of a type takes in the state struct (bool: 1 on x86-64). */
#define VMS_SIZE(t) ((t) == VMS_U16 ? 2 : (t) == VMS_U32 ? 4 : (t) == VMS_U64 ? 8 : 1)
/* Fails to compile when the member's size is not what the type says. */
#define VMS_CHECK(st, member, t, n) \
	(0 * sizeof(char[sizeof(((st *)0)->member) == (n) * VMS_SIZE(t) ? 1 : -1]))
#define VMS_FIELD(st, member, t) \
	{ #member, t, offsetof(st, member) + VMS_CHECK(st, member, t, 1), 1, 0 }
#define VMS_ARRAY(st, member, t, n) \
	{ #member, t, offsetof(st, member) + VMS_CHECK(st, member, t, n), n, 0 }
#define VMS_END { NULL, 0, 0, 0, 0 }

struct vmstate_desc {
	const char *name;		/* the section's name: QEMU's idstr where there is one */
	size_t size;			/* sizeof the state struct: a load is staged in a copy */
	unsigned version;		/* what this build writes */
	unsigned min_version;		/* the oldest it reads */
	const struct vmstate_field *fields;
	/* Optional: check what was loaded (e.g. an index inside its array) before the
	 * device runs with it; message into err, return -1 to refuse the stream. */
	int (*post_load)(void *obj, unsigned version, char *err, size_t errlen);
};

/* Where the bytes go or come from: fd or memory. */
struct vmstate_io {
	/* 0 on success; -1 on error or (reading) end of stream before len bytes. */
	int (*rw)(void *opaque, void *buf, size_t len);
	void *opaque;
};

struct vmstate_out {
	struct vmstate_io io;
	uint8_t *buf;			/* the section being built */
	size_t len, cap;
	bool failed;
	char err[256];
};

struct vmstate_in {
	struct vmstate_io io;
	/* The section just read by vmstate_next_section. */
	char name[VMSTATE_MAX_NAME + 1];
	uint32_t instance, version;
	uint8_t *payload;
	uint32_t payload_len;
	char err[384];
};

/* Memory and fd sources/sinks for vmstate_io. */
struct vmstate_membuf {
	uint8_t *data;
	size_t len, pos, cap;	/* writing grows data; reading stops at len */
};
int vmstate_mem_read(void *membuf, void *buf, size_t len);
int vmstate_mem_write(void *membuf, void *buf, size_t len);
int vmstate_fd_read(void *fdp, void *buf, size_t len);
int vmstate_fd_write(void *fdp, void *buf, size_t len);

/* Writing: header, then one save per device, then the end mark. */
int vmstate_out_begin(struct vmstate_out *out, struct vmstate_io io);
int vmstate_save(struct vmstate_out *out, const struct vmstate_desc *d, unsigned instance,
		 const void *obj);
int vmstate_out_end(struct vmstate_out *out);
void vmstate_out_free(struct vmstate_out *out);

/* Reading: the header, then sections until vmstate_next_section says 0 (the
 * end mark); each section goes to the device with its name and instance. */
int vmstate_in_begin(struct vmstate_in *in, struct vmstate_io io);
int vmstate_next_section(struct vmstate_in *in);	/* 1: a section, 0: end, -1: error */
int vmstate_load(struct vmstate_in *in, const struct vmstate_desc *d, void *obj);
/* For a device's own checks after vmstate_load: the message goes into in->err
 * after the section's name and instance; returns -1. */
int vmstate_refuse(struct vmstate_in *in, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vmstate_in_free(struct vmstate_in *in);

#endif
