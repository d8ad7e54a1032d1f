/*
 * System control port A (0x92, "fast A20 and reset"): A20 always reads as
 * enabled (KVM never masks it); bit 0 written as 1 resets the machine.
 */
#ifndef KESTREL_HW_PORT92_H
#define KESTREL_HW_PORT92_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"

#define PORT92_PORT 0x92
#define POST_PORT 0x80		/* POST codes: accepted and dropped */

struct port92 {
	struct power_sink power;
};

void port92_init(struct port92 *p, const struct power_sink *power);
void port92_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
/* Port 0x80: firmware writes progress codes and uses it as an I/O delay. */
void post_port_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
