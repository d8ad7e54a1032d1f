/*
 * 16550A UART (the PC's COM ports).  The model knows nothing of where bytes go:
 * it calls transmit() for each byte the guest sends and set_irq() when its
 * interrupt line changes.
 */
#ifndef KESTREL_HW_SERIAL_H
#define KESTREL_HW_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NR_PORTS 8
/*
 * Receive queue depth.  Larger than the chip's 16-byte FIFO so pasted input is
 * not lost; the guest cannot tell the difference.
 */
#define SERIAL_RX_QUEUE 4096

struct serial_ops {
	void (*transmit)(void *opaque, uint8_t byte);
	void (*set_irq)(void *opaque, bool level);
};

struct serial {
	pthread_mutex_t lock;
	const struct serial_ops *ops;
	void *opaque;

	uint8_t ier, lcr, mcr, lsr, msr_delta, scr, fcr;
	uint8_t dll, dlm;
	bool thr_ipending;	/* the "transmitter empty" interrupt is owed */
	bool irq_level;

	uint8_t rx[SERIAL_RX_QUEUE];
	size_t rx_head, rx_count;
};

void serial_init(struct serial *s, const struct serial_ops *ops, void *opaque);
void serial_destroy(struct serial *s);

/* Port access at offset 0..7 (bus_access_fn). */
void serial_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Queues bytes typed at the host; returns how many fit. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* A line break condition (Ctrl-a b): LSR.BI and its interrupt. */
void serial_break(struct serial *s);

/* Saved state (core/vmstate.h): registers and the receive queue.  A load that
 * the stream or the checks refuse leaves the UART as it was; one that succeeds
 * sets the interrupt line to what the loaded registers say. */
struct vmstate_out;
struct vmstate_in;
int serial_save(struct serial *s, struct vmstate_out *out, unsigned instance);
int serial_load(struct serial *s, struct vmstate_in *in);

#endif
