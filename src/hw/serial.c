#include "core/vmstate.h"
#include "hw/serial.h"

#include <stdio.h>
#include <string.h>

/* Register offsets and bits: National Semiconductor PC16550D data sheet. */
enum {
	UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | 0x04 | 0x08 | LSR_BI)

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, const struct serial_ops *ops, void *opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->ops = ops;
	s->opaque = opaque;
	s->lsr = LSR_THRE | LSR_TEMT;	/* transmission is instantaneous */
	s->dll = 0x0c;			/* 9600 baud, the power-on divisor */
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static uint8_t serial_iir(const struct serial *s)
{
	/* Priorities: line status, received data, transmitter empty, modem status. */
	if ((s->ier & IER_RLSI) && (s->lsr & LSR_ERRORS))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count > 0)
		return IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && s->msr_delta)
		return IIR_MSI;
	return IIR_NO_INT;
}

static void serial_update_irq(struct serial *s)
{
	bool level = serial_iir(s) != IIR_NO_INT;

	if (level != s->irq_level) {
		s->irq_level = level;
		s->ops->set_irq(s->opaque, level);
	}
}

static size_t rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	for (; n < len && s->rx_count < SERIAL_RX_QUEUE; n++) {
		s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_QUEUE] = buf[n];
		s->rx_count++;
	}
	if (s->rx_count)
		s->lsr |= LSR_DR;
	return n;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t byte = 0;

	if (s->rx_count) {
		byte = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_QUEUE;
		s->rx_count--;
	}
	if (!s->rx_count)
		s->lsr &= (uint8_t)~LSR_DR;
	return byte;
}

/* Modem status lines: fixed "carrier, ready, clear to send", or MCR looped back. */
static uint8_t serial_msr(const struct serial *s)
{
	uint8_t msr = MSR_DCD | MSR_DSR | MSR_CTS;

	if (s->mcr & MCR_LOOP) {
		msr = 0;
		if (s->mcr & MCR_DTR)
			msr |= MSR_DSR;
		if (s->mcr & MCR_RTS)
			msr |= MSR_CTS;
		if (s->mcr & MCR_OUT1)
			msr |= MSR_RI;
		if (s->mcr & MCR_OUT2)
			msr |= MSR_DCD;
	}
	return msr | s->msr_delta;
}

static void serial_write(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			break;
		}
		if (s->mcr & MCR_LOOP)
			rx_push(s, &v, 1);
		else
			s->ops->transmit(s->opaque, v);
		s->thr_ipending = true;
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI with an empty holding register raises it at once. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_ipending = true;
		s->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		if (v & FCR_CLEAR_RX) {
			s->rx_count = 0;
			s->lsr &= (uint8_t)~LSR_DR;
		}
		s->fcr = v & 0xc9;	/* enable, DMA mode and trigger level are readable state */
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;	/* LSR and MSR are read-only */
	}
}

static uint8_t serial_read(struct serial *s, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR:
		return (s->lcr & LCR_DLAB) ? s->dll : rx_pop(s);
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR_FCR:
		v = serial_iir(s);
		/* Reading IIR acknowledges a transmitter-empty interrupt. */
		if (v == IIR_THRI)
			s->thr_ipending = false;
		return v | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = s->lsr;
		s->lsr &= (uint8_t)~(LSR_OE | LSR_BI);	/* error bits clear on read */
		return v;
	case UART_MSR:
		v = serial_msr(s);
		s->msr_delta = 0;
		return v;
	case UART_SCR:
		return s->scr;
	}
	return 0xff;
}

void serial_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct serial *s = dev;

	/* The UART has byte registers; a wider access touches only the first. */
	pthread_mutex_lock(&s->lock);
	if (is_write) {
		serial_write(s, (unsigned)offset, data[0]);
	} else {
		memset(data, 0, size);
		data[0] = serial_read(s, (unsigned)offset);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	/* While looped back the chip does not listen to the line. */
	n = (s->mcr & MCR_LOOP) ? len : rx_push(s, buf, len);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_break(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->lsr |= LSR_BI;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* Version 1.  The queue travels whole: a 16550's FIFO plus what the host typed. */
static int serial_post_load(void *obj, unsigned version, char *err, size_t errlen)
{
	const struct serial *s = obj;

	(void)version;
	if (s->rx_head >= SERIAL_RX_QUEUE || s->rx_count > SERIAL_RX_QUEUE) {
		snprintf(err, errlen, "receive queue head %zu, count %zu past its %u bytes",
			 s->rx_head, s->rx_count, SERIAL_RX_QUEUE);
		return -1;
	}
	return 0;
}

static const struct vmstate_field serial_fields[] = {
	VMS_FIELD(struct serial, ier, VMS_U8),
	VMS_FIELD(struct serial, lcr, VMS_U8),
	VMS_FIELD(struct serial, mcr, VMS_U8),
	VMS_FIELD(struct serial, lsr, VMS_U8),
	VMS_FIELD(struct serial, msr_delta, VMS_U8),
	VMS_FIELD(struct serial, scr, VMS_U8),
	VMS_FIELD(struct serial, fcr, VMS_U8),
	VMS_FIELD(struct serial, dll, VMS_U8),
	VMS_FIELD(struct serial, dlm, VMS_U8),
	VMS_FIELD(struct serial, thr_ipending, VMS_BOOL),
	VMS_ARRAY(struct serial, rx, VMS_BYTES, SERIAL_RX_QUEUE),
	VMS_FIELD(struct serial, rx_head, VMS_U64),
	VMS_FIELD(struct serial, rx_count, VMS_U64),
	VMS_END
};

static const struct vmstate_desc serial_vmstate = {
	"serial", sizeof(struct serial), 1, 1, serial_fields, serial_post_load,
};

int serial_save(struct serial *s, struct vmstate_out *out, unsigned instance)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = vmstate_save(out, &serial_vmstate, instance, s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int serial_load(struct serial *s, struct vmstate_in *in)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = vmstate_load(in, &serial_vmstate, s);
	if (rc == 0)
		serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
