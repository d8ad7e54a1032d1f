#include "hw/debug_exit.h"

#include <string.h>

void debug_exit_init(struct debug_exit *de, const struct power_sink *power)
{
	de->power = *power;
}

void debug_exit_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct debug_exit *de = dev;
	uint32_t value = 0;

	if (!is_write) {
		memset(data, 0xff, size);
		return;
	}
	memcpy(&value, data, size > sizeof(value) ? sizeof(value) : size);
	/* Exit statuses are 8 bits: QEMU's exit((val << 1) | 1) truncates the same way. */
	power_signal(&de->power, POWER_EVENT_EXIT, (int)(((value << 1) | 1) & 0xff));
}
