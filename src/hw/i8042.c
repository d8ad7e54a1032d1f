/* The 8042 keyboard controller (i8042.h), after QEMU 7.2's hw/input/pckbd.c. */
#include <string.h>

#include "core/input.h"
#include "hw/i8042.h"

#define CMD_READ_MODE 0x20
#define CMD_WRITE_MODE 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_INPORT 0xc0
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_DISABLE_A20 0xdd
#define CMD_ENABLE_A20 0xdf
#define CMD_PULSE_RESET 0xfe
#define CMD_NOP 0xff

#define OUT_RESET 0x01		/* output port: 0 holds the CPU in reset */
#define OUT_A20 0x02
#define OUT_OBF 0x10
#define OUT_AUX_OBF 0x20
#define OUT_ONES 0xcc

static void set_line(struct i8042 *kbc, unsigned irq, bool *cur, bool level)
{
	if (*cur == level)
		return;
	*cur = level;
	if (kbc->set_irq)
		kbc->set_irq(kbc->irq_opaque, irq, level);
}

/*
 * Refills an empty output buffer: the controller's replies first, then the
 * keyboard, then the mouse (a disabled port sends nothing), and sets the
 * status bits and the interrupt lines the command byte enables.
 */
static void update(struct i8042 *kbc)
{
	bool aux = false;

	if (!(kbc->status & I8042_STR_OBF)) {
		bool full = false;

		if (kbc->own_count) {
			kbc->obuf = kbc->own[0];
			aux = kbc->own_aux[0];
			kbc->own_count--;
			memmove(kbc->own, kbc->own + 1, kbc->own_count);
			memmove(kbc->own_aux, kbc->own_aux + 1, kbc->own_count * sizeof(bool));
			full = true;
		} else if (!(kbc->ctr & I8042_CTR_KBDDIS) && ps2_queue_pop(&kbc->kbd.q, &kbc->obuf)) {
			full = true;
		} else if (!(kbc->ctr & I8042_CTR_AUXDIS) &&
			   ps2_queue_pop(&kbc->mouse.q, &kbc->obuf)) {
			full = aux = true;
		}
		if (full) {
			kbc->status |= I8042_STR_OBF;
			kbc->status = (uint8_t)((kbc->status & ~I8042_STR_AUX_OBF) |
						(aux ? I8042_STR_AUX_OBF : 0));
		}
	}
	aux = kbc->status & I8042_STR_AUX_OBF;
	bool obf = kbc->status & I8042_STR_OBF;
	kbc->outport = (uint8_t)((kbc->outport & ~(OUT_OBF | OUT_AUX_OBF)) |
				 (obf && !aux ? OUT_OBF : 0) | (obf && aux ? OUT_AUX_OBF : 0));
	set_line(kbc, I8042_KBD_IRQ, &kbc->irq_kbd, obf && !aux && (kbc->ctr & I8042_CTR_KBDINT));
	set_line(kbc, I8042_AUX_IRQ, &kbc->irq_aux, obf && aux && (kbc->ctr & I8042_CTR_AUXINT));
}

/* A byte from the controller itself, as if from the keyboard (or mouse) port. */
static void own_reply(struct i8042 *kbc, uint8_t b, bool aux)
{
	if (kbc->own_count == sizeof(kbc->own))
		return;
	kbc->own[kbc->own_count] = b;
	kbc->own_aux[kbc->own_count++] = aux;
}

static void controller_reset(struct i8042 *kbc)
{
	ps2_kbd_reset(&kbc->kbd);
	ps2_mouse_reset(&kbc->mouse);
	/* As after a BIOS POST: Kestrel boots kernels with no firmware to run the self-test. */
	kbc->status = I8042_STR_SYSFLAG | I8042_STR_UNLOCKED | I8042_STR_CMD;
	kbc->ctr = I8042_CTR_KBDINT | I8042_CTR_AUXINT;
	kbc->outport = OUT_RESET | OUT_A20 | OUT_ONES;
	kbc->write_cmd = 0;
	kbc->obuf = 0;
	kbc->own_count = 0;
}

int i8042_init(struct i8042 *kbc, const struct power_sink *power,
	       void (*set_irq)(void *opaque, unsigned irq, bool level), void *opaque)
{
	int err;

	memset(kbc, 0, sizeof(*kbc));
	err = pthread_mutex_init(&kbc->lock, NULL);
	if (err)
		return -err;
	kbc->power = *power;
	kbc->set_irq = set_irq;
	kbc->irq_opaque = opaque;
	controller_reset(kbc);
	return 0;
}

static void kbd_key(void *dev, unsigned qnum, bool down)
{
	struct i8042 *kbc = dev;

	pthread_mutex_lock(&kbc->lock);
	ps2_kbd_key(&kbc->kbd, qnum, down);
	update(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

static void mouse_rel(void *dev, int dx, int dy, int dz, unsigned buttons)
{
	struct i8042 *kbc = dev;

	pthread_mutex_lock(&kbc->lock);
	ps2_mouse_event(&kbc->mouse, dx, dy, dz, buttons);
	update(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

static const struct input_handler_ops kbd_ops = { .key = kbd_key };
static const struct input_handler_ops mouse_ops = { .rel = mouse_rel };

int i8042_attach_input(struct i8042 *kbc, struct input *in)
{
	int err = input_register(in, "QEMU PS/2 Keyboard", INPUT_KEYBOARD, &kbd_ops, kbc);

	if (err)
		return err;
	err = input_register(in, "QEMU PS/2 Mouse", INPUT_MOUSE_REL, &mouse_ops, kbc);
	if (err) {
		input_unregister(in, kbc);
		return err;
	}
	kbc->input = in;
	return 0;
}

void i8042_destroy(struct i8042 *kbc)
{
	if (kbc->input)
		input_unregister(kbc->input, kbc);
	kbc->input = NULL;
	pthread_mutex_destroy(&kbc->lock);
}

/* Output port write (0xd1): bit 0 low resets the CPU; A20 is never masked under KVM. */
static void write_outport(struct i8042 *kbc, uint8_t val)
{
	kbc->outport = val;
	if (!(val & OUT_RESET))
		power_signal(&kbc->power, POWER_EVENT_RESET, 0);
}

static void write_data(struct i8042 *kbc, uint8_t val)
{
	int cmd = kbc->write_cmd;

	kbc->write_cmd = 0;
	kbc->status &= ~I8042_STR_CMD;
	switch (cmd) {
	case CMD_WRITE_MODE:
		kbc->ctr = val;
		if (val & I8042_CTR_SYSFLAG)
			kbc->status |= I8042_STR_SYSFLAG;
		else
			kbc->status &= ~I8042_STR_SYSFLAG;
		ps2_kbd_set_translation(&kbc->kbd, val & I8042_CTR_XLATE);
		break;
	case CMD_WRITE_OUTPORT:
		write_outport(kbc, val);
		break;
	case CMD_WRITE_OBUF:
		own_reply(kbc, val, false);
		break;
	case CMD_WRITE_AUX_OBUF:
		own_reply(kbc, val, true);
		break;
	case CMD_WRITE_AUX:
		ps2_mouse_write(&kbc->mouse, val);
		break;
	default:
		/* Writing to the keyboard enables its port again (QEMU, and real 8042s). */
		ps2_kbd_write(&kbc->kbd, val);
		kbc->ctr &= ~I8042_CTR_KBDDIS;
		break;
	}
}

static void write_command(struct i8042 *kbc, uint8_t val)
{
	kbc->status |= I8042_STR_CMD;
	kbc->write_cmd = 0;	/* a new command cancels one still waiting for its byte */
	/* 0xf0-0xff pulse output port bits 0-3 low; only bit 0 (reset) does anything. */
	if ((val & 0xf0) == 0xf0)
		val = (val & 1) ? CMD_NOP : CMD_PULSE_RESET;
	switch (val) {
	case CMD_READ_MODE:
		own_reply(kbc, kbc->ctr, false);
		break;
	case CMD_WRITE_MODE:
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		kbc->write_cmd = val;
		break;
	case CMD_AUX_DISABLE:
		kbc->ctr |= I8042_CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		kbc->ctr &= ~I8042_CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		own_reply(kbc, 0x00, false);	/* no clock or data line stuck */
		break;
	case CMD_SELF_TEST:
		kbc->status |= I8042_STR_SYSFLAG;
		own_reply(kbc, 0x55, false);
		break;
	case CMD_KBD_DISABLE:
		kbc->ctr |= I8042_CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		kbc->ctr &= ~I8042_CTR_KBDDIS;
		break;
	case CMD_READ_INPORT:
		own_reply(kbc, 0x80, false);	/* keyboard not inhibited (QEMU's value) */
		break;
	case CMD_READ_OUTPORT:
		own_reply(kbc, kbc->outport, false);
		break;
	case CMD_DISABLE_A20:
		kbc->outport &= ~OUT_A20;
		break;
	case CMD_ENABLE_A20:
		kbc->outport |= OUT_A20;
		break;
	case CMD_PULSE_RESET:
		power_signal(&kbc->power, POWER_EVENT_RESET, 0);
		break;
	default:
		break;		/* QEMU ignores the others too */
	}
}

void i8042_data_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct i8042 *kbc = dev;

	pthread_mutex_lock(&kbc->lock);
	if (is_write) {
		write_data(kbc, data[0]);
	} else {
		memset(data, 0, size);
		/* An empty buffer reads its last byte again, as QEMU's. */
		data[0] = kbc->obuf;
		kbc->status &= ~(I8042_STR_OBF | I8042_STR_AUX_OBF);
		/* Lower the lines before the next byte raises them: each byte is an edge. */
		set_line(kbc, I8042_KBD_IRQ, &kbc->irq_kbd, false);
		set_line(kbc, I8042_AUX_IRQ, &kbc->irq_aux, false);
	}
	update(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

void i8042_command_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct i8042 *kbc = dev;

	pthread_mutex_lock(&kbc->lock);
	if (is_write) {
		write_command(kbc, data[0]);
		update(kbc);
	} else {
		memset(data, 0, size);
		data[0] = kbc->status;
	}
	pthread_mutex_unlock(&kbc->lock);
}
