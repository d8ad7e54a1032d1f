/*
 * QEMU's isa-debugcon (port 0x402 by default): every byte written goes to a
 * character device; reads return 0xe9 so firmware can detect the port.
 */
#ifndef KESTREL_HW_DEBUGCON_H
#define KESTREL_HW_DEBUGCON_H

#include <stdbool.h>
#include <stdint.h>

#include "chardev/chardev.h"

#define DEBUGCON_PORT 0x402

struct debugcon {
	struct chardev *out;
};

void debugcon_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
