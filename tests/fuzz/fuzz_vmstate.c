/*
 * The saved-state stream (core/vmstate.c) on arbitrary bytes, as a migration
 * destination or `loadvm` meets them: every section is loaded into the device
 * it names.  Checked: a section that loads saves again to the same bytes, and
 * a refused one leaves the device untouched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vmstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct dev {
	uint8_t regs[8];
	uint16_t divisor;
	uint32_t count;
	uint64_t ticks;
	bool irq;
	uint8_t buf[16];
	uint32_t v2;
};

static int dev_post_load(void *obj, unsigned version, char *err, size_t errlen)
{
	struct dev *d = obj;

	(void)version;
	if (d->count > sizeof(d->buf)) {
		snprintf(err, errlen, "count %u past the buffer", d->count);
		return -1;
	}
	return 0;
}

static const struct vmstate_field fields[] = {
	VMS_ARRAY(struct dev, regs, VMS_U8, 8),
	VMS_FIELD(struct dev, divisor, VMS_U16),
	VMS_FIELD(struct dev, count, VMS_U32),
	VMS_FIELD(struct dev, ticks, VMS_U64),
	VMS_FIELD(struct dev, irq, VMS_BOOL),
	VMS_ARRAY(struct dev, buf, VMS_BYTES, 16),
	{ "v2", VMS_U32, offsetof(struct dev, v2), 1, 2 },
	VMS_END
};

static const struct vmstate_desc descs[] = {
	{ "serial", sizeof(struct dev), 2, 1, fields, dev_post_load },
	{ "rtc", sizeof(struct dev), 1, 1, fields, NULL },
};

static void check_resave(const struct vmstate_desc *d, unsigned instance, const struct dev *dev,
			 const struct vmstate_in *in)
{
	struct vmstate_membuf m = { 0 };
	struct vmstate_out out;

	if (in->version != d->version)
		return;		/* an older section saves as the current version */
	if (vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }) < 0 ||
	    vmstate_save(&out, d, instance, dev) < 0)
		abort();
	/* 12 bytes of stream header, then the section record as it came in. */
	if (memcmp(m.data + 12 + 2 + strlen(d->name) + 12, in->payload, in->payload_len))
		abort();
	vmstate_out_free(&out);
	free(m.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vmstate_membuf src = { (uint8_t *)data, len, 0, len };
	struct vmstate_in in;
	struct dev devs[2], before;

	memset(devs, 0, sizeof(devs));
	if (vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &src }) < 0)
		return 0;
	while (vmstate_next_section(&in) == 1) {
		for (int i = 0; i < 2; i++) {
			if (strcmp(in.name, descs[i].name))
				continue;
			before = devs[i];
			if (vmstate_load(&in, &descs[i], &devs[i]) == 0)
				check_resave(&descs[i], in.instance, &devs[i], &in);
			else if (memcmp(&before, &devs[i], sizeof(before)))
				abort();
		}
	}
	vmstate_in_free(&in);
	return 0;
}
