/*
 * The 8042 keyboard controller with QEMU's PS/2 keyboard and mouse behind
 * it (hw/ps2.c): the command byte (interrupts, translation, disabling each
 * port), the controller commands firmware and Linux's i8042 driver use, one
 * output buffer fed from the controller's own replies, the keyboard and the
 * mouse, IRQ 1 and IRQ 12, and the CPU reset line (0xfe, or output port bit 0)
 * that Linux and firmware use to reboot.  Port I/O (vCPU threads) and input
 * events (the main thread, through core/input.h) take the one lock.
 */
#ifndef KESTREL_HW_I8042_H
#define KESTREL_HW_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"
#include "hw/ps2.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

/* Status register (port 0x64) bits. */
#define I8042_STR_OBF 0x01		/* output buffer full */
#define I8042_STR_IBF 0x02
#define I8042_STR_SYSFLAG 0x04		/* self-test passed */
#define I8042_STR_CMD 0x08		/* last write went to the command port */
#define I8042_STR_UNLOCKED 0x10		/* keylock off */
#define I8042_STR_AUX_OBF 0x20		/* the output buffer holds a mouse byte */

/* Command byte bits (0x20 / 0x60). */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYSFLAG 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40

struct input;

struct i8042 {
	pthread_mutex_t lock;
	struct power_sink power;
	void (*set_irq)(void *opaque, unsigned irq, bool level);	/* NULL: no lines */
	void *irq_opaque;
	struct ps2_kbd kbd;
	struct ps2_mouse mouse;
	uint8_t status, ctr, outport;
	int write_cmd;			/* the controller command awaiting its data byte; 0: none */
	uint8_t obuf;			/* the byte port 0x60 reads */
	/* The controller's own replies (0x20, 0xaa, 0xd2 ...), each with its source port. */
	uint8_t own[4];
	bool own_aux[4];
	unsigned own_count;
	bool irq_kbd, irq_aux;		/* the levels last set */
	struct input *input;		/* registered with; NULL: none */
};

int i8042_init(struct i8042 *kbc, const struct power_sink *power,
	       void (*set_irq)(void *opaque, unsigned irq, bool level), void *opaque);
/* Registers the keyboard and mouse as input handlers (QEMU's names). */
int i8042_attach_input(struct i8042 *kbc, struct input *in);
void i8042_destroy(struct i8042 *kbc);
void i8042_data_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);
void i8042_command_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
