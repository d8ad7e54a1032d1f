#include "hw/port92.h"

#include <string.h>

#define PORT92_RESET 0x01
#define PORT92_A20 0x02

void port92_init(struct port92 *p, const struct power_sink *power)
{
	p->power = *power;
}

void port92_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct port92 *p = dev;

	if (!is_write) {
		memset(data, 0, size);
		data[0] = PORT92_A20;
		return;
	}
	if (data[0] & PORT92_RESET)
		power_signal(&p->power, POWER_EVENT_RESET, 0);
}

void post_port_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	(void)dev;
	if (!is_write)
		memset(data, 0xff, size);
}
