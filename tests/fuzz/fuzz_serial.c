/*
 * The 16550A driven by a guest: each 2-byte record is one register access
 * (op, value); a few op codes stand for host input and a line break.
 * Checked after every step: the IRQ callback only reports changes, and
 * LSR.DR agrees with the receive queue.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hw/serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct harness {
	bool irq;
	size_t transmitted;
};

static void on_transmit(void *opaque, uint8_t byte)
{
	((struct harness *)opaque)->transmitted++;
}

static void on_irq(void *opaque, bool level)
{
	struct harness *h = opaque;

	if (level == h->irq)
		abort();	/* set_irq must only report edges */
	h->irq = level;
}

static const struct serial_ops ops = { .transmit = on_transmit, .set_irq = on_irq };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct serial s;	/* 4 KiB queue: keep it off the stack */
	struct harness h = { 0 };
	uint8_t buf[4];

	serial_init(&s, &ops, &h);
	for (size_t i = 0; i + 1 < len; i += 2) {
		uint8_t op = data[i], v = data[i + 1];
		unsigned reg = op & 7, size = 1u << ((op >> 3) & 3);

		if (size > 4)
			size = 4;
		switch (op >> 5) {
		case 0:
		case 1:
		case 2:
			memset(buf, v, sizeof(buf));
			serial_io(&s, reg, true, buf, size);
			break;
		case 3:
		case 4:
		case 5:
			memset(buf, 0xa5, sizeof(buf));
			serial_io(&s, reg, false, buf, size);
			for (unsigned b = 1; b < size; b++)
				if (buf[b] != 0)
					abort();	/* wide reads: upper bytes are zero */
			break;
		case 6: {
			/* Host input: v bytes of the rest of the record stream, or a flood. */
			size_t n = v == 0xff ? 5000 : v;
			uint8_t in[5000];
			memset(in, v, n);
			size_t took = serial_receive(&s, in, n);
			if (took > n)
				abort();
			break;
		}
		default:
			serial_break(&s);
			break;
		}
		if (s.rx_count > SERIAL_RX_QUEUE || s.rx_head >= SERIAL_RX_QUEUE)
			abort();
		if (!!(s.lsr & 0x01) != (s.rx_count > 0))
			abort();
		if (h.irq != s.irq_level)
			abort();
	}
	serial_destroy(&s);
	return 0;
}
