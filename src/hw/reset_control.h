/* The PC's reset control register at port 0xcf9 (Intel PIIX3/ICH "RST_CNT"). */
#ifndef KESTREL_HW_RESET_CONTROL_H
#define KESTREL_HW_RESET_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"

#define RESET_CONTROL_PORT 0xcf9
#define RESET_CONTROL_VALUE 0x06	/* SYS_RST | RST_CPU: what ACPI's RESET_VALUE names */

struct reset_control {
	struct power_sink power;
	uint8_t value;
};

void reset_control_init(struct reset_control *rc, const struct power_sink *power);
void reset_control_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
