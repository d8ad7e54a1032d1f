/*
 * QEMU's isa-debug-exit device, for tests only: a write of V leaves the VMM
 * with status (V << 1) | 1, exactly as QEMU does, so test guests run unchanged.
 */
#ifndef KESTREL_HW_DEBUG_EXIT_H
#define KESTREL_HW_DEBUG_EXIT_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"

#define DEBUG_EXIT_DEFAULT_BASE 0x501
#define DEBUG_EXIT_DEFAULT_SIZE 0x02

struct debug_exit {
	struct power_sink power;
};

void debug_exit_init(struct debug_exit *de, const struct power_sink *power);
void debug_exit_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
