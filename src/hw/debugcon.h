/*
 * QEMU's isa-debugcon (port 0x402 by default): every byte written goes to
 * the machine's transmit callback (a character device); reads return 0xe9
 * so firmware can detect the port.
 */
#ifndef KESTREL_HW_DEBUGCON_H
#define KESTREL_HW_DEBUGCON_H

#include <stdbool.h>
#include <stdint.h>

#define DEBUGCON_PORT 0x402

struct debugcon {
	/* Set by the machine, as serial_ops.transmit: one byte the guest wrote. */
	void (*transmit)(void *opaque, uint8_t byte);
	void *opaque;
};

void debugcon_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
