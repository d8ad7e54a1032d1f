/*
 * The keyboard controller, only as far as a guest without a keyboard needs
 * it: an idle status, and the CPU reset line (command 0xfe) that Linux and
 * firmware use to reboot.
 */
#ifndef KESTREL_HW_I8042_H
#define KESTREL_HW_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64

struct i8042 {
	struct power_sink power;
};

void i8042_init(struct i8042 *kbc, const struct power_sink *power);
void i8042_data_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void i8042_command_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
