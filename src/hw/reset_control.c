#include "hw/reset_control.h"

#include <string.h>

#define RST_CPU 0x04	/* a 0 -> 1 transition resets the CPU */

void reset_control_init(struct reset_control *rc, const struct power_sink *power)
{
	rc->power = *power;
	rc->value = 0;
}

void reset_control_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct reset_control *rc = dev;

	if (!is_write) {
		memset(data, 0, size);
		data[0] = rc->value;
		return;
	}
	/* Single-threaded per access: only vCPUs touch it and a reset ends them all. */
	if ((data[0] & RST_CPU) && !(rc->value & RST_CPU))
		power_signal(&rc->power, POWER_EVENT_RESET, 0);
	rc->value = data[0] & (uint8_t)~RST_CPU;
}
