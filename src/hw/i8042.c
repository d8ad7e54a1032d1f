#include "hw/i8042.h"

#include <string.h>

#define I8042_CMD_PULSE_RESET 0xfe
#define I8042_STATUS_SYSFLAG 0x04	/* self-test passed */

void i8042_init(struct i8042 *kbc, const struct power_sink *power)
{
	kbc->power = *power;
}

void i8042_data_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	if (!is_write)
		memset(data, 0, size);	/* no key was ever pressed */
}

void i8042_command_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct i8042 *kbc = dev;

	if (!is_write) {
		/* Output buffer empty, input buffer empty: commands are taken at once. */
		memset(data, 0, size);
		data[0] = I8042_STATUS_SYSFLAG;
		return;
	}
	if (data[0] == I8042_CMD_PULSE_RESET)
		power_signal(&kbc->power, POWER_EVENT_RESET, 0);
}
