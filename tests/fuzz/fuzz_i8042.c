/*
 * The i8042 and its PS/2 keyboard and mouse driven by a guest and the host
 * at once: each 2-byte record is (op, value).  Ops 0x00-0x3f write value to
 * the data port, 0x40-0x7f to the command port, 0x80-0x9f read the data
 * port, 0xa0-0xbf the status port, 0xc0-0xdf press or release a key (qnum
 * value, bit 0 of op: down), 0xe0-0xff move the mouse (value as dx, dy and
 * wheel, op's low bits as buttons).  Checked after every step: the IRQ
 * callback only reports changes, a raised line has a full output buffer
 * behind it, and the queues stay within their bounds.  The CPU reset line
 * (0xfe, 0xd1) is counted, not acted on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/input.h"
#include "hw/i8042.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct harness {
	bool level[13];
	unsigned resets;
};

static void on_irq(void *opaque, unsigned irq, bool level)
{
	struct harness *h = opaque;

	if ((irq != 1 && irq != 12) || h->level[irq] == level)
		abort();	/* only the two lines, only edges */
	h->level[irq] = level;
}

static void on_power(void *opaque, enum power_event ev, int status)
{
	((struct harness *)opaque)->resets++;
}

static void check(const struct i8042 *kbc, const struct harness *h)
{
	bool obf = kbc->status & I8042_STR_OBF, aux = kbc->status & I8042_STR_AUX_OBF;

	if ((h->level[1] && (!obf || aux)) || (h->level[12] && (!obf || !aux)))
		abort();	/* an interrupt with nothing (or the wrong port's byte) to read */
	if (kbc->own_count > sizeof(kbc->own) || kbc->kbd.q.ev_count > PS2_QUEUE_SIZE ||
	    kbc->mouse.q.ev_count > PS2_QUEUE_SIZE || kbc->kbd.q.reply_count > PS2_REPLY_SIZE ||
	    kbc->mouse.q.reply_count > PS2_REPLY_SIZE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct i8042 kbc;
	static struct input in;
	struct harness h = { 0 };
	struct power_sink power = { .event = on_power, .opaque = &h };
	uint8_t v;

	if (i8042_init(&kbc, &power, on_irq, &h) < 0 || input_init(&in) < 0)
		abort();
	if (i8042_attach_input(&kbc, &in) < 0)
		abort();
	for (size_t i = 0; i + 1 < len; i += 2) {
		uint8_t op = data[i];

		v = data[i + 1];
		if (op < 0x40)
			i8042_data_io(&kbc, 0, true, &v, 1);
		else if (op < 0x80)
			i8042_command_io(&kbc, 0, true, &v, 1);
		else if (op < 0xa0)
			i8042_data_io(&kbc, 0, false, &v, 1);
		else if (op < 0xc0)
			i8042_command_io(&kbc, 0, false, &v, 1);
		else if (op < 0xe0)
			input_key(&in, v, op & 1);
		else
			input_pointer_rel(&in, (int8_t)v * 97, (int8_t)(v << 2) * 3,
					  (int8_t)(v ^ op) % 9, op & 0x1f);
		check(&kbc, &h);
	}
	i8042_destroy(&kbc);
	input_destroy(&in);
	return 0;
}
