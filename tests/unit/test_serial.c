/* hw/serial.c: the 16550A model, register by register (PC16550D data sheet). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/vmstate.h"
#include "hw/serial.h"

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
       LSR = 5, MSR = 6, SCR = 7 };

struct uart_fixture {
	struct serial s;
	uint8_t tx[64];
	size_t tx_count;
	bool irq;
	int irq_changes;
};

static void on_transmit(void *opaque, uint8_t byte)
{
	struct uart_fixture *f = opaque;

	if (f->tx_count < sizeof(f->tx))
		f->tx[f->tx_count] = byte;
	f->tx_count++;
}

static void on_irq(void *opaque, bool level)
{
	struct uart_fixture *f = opaque;

	f->irq = level;
	f->irq_changes++;
}

static const struct serial_ops fixture_ops = { .transmit = on_transmit, .set_irq = on_irq };

static int setup(void **state)
{
	struct uart_fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	serial_init(&f->s, &fixture_ops, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct uart_fixture *f = *state;

	serial_destroy(&f->s);
	free(f);
	return 0;
}

static uint8_t rd(struct uart_fixture *f, unsigned reg)
{
	uint8_t v = 0xaa;

	serial_io(&f->s, reg, false, &v, 1);
	return v;
}

static void wr(struct uart_fixture *f, unsigned reg, uint8_t v)
{
	serial_io(&f->s, reg, true, &v, 1);
}

static void rx(struct uart_fixture *f, const char *text)
{
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)text, strlen(text)),
			 strlen(text));
}

static void test_power_on_state(void **state)
{
	struct uart_fixture *f = *state;

	assert_int_equal(rd(f, LSR), 0x60);	/* THRE | TEMT */
	assert_int_equal(rd(f, IIR), 0x01);	/* no interrupt, FIFOs off */
	assert_int_equal(rd(f, IER), 0x00);
	assert_int_equal(rd(f, LCR), 0x00);
	assert_int_equal(rd(f, MCR), 0x00);
	assert_int_equal(rd(f, MSR), 0xb0);	/* DCD, DSR, CTS */
	assert_int_equal(f->irq_changes, 0);
}

static void test_transmit(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, THR, 'o');
	wr(f, THR, 'k');
	wr(f, THR, 0x00);
	assert_int_equal(f->tx_count, 3);
	assert_memory_equal(f->tx, "ok", 3);
	/* Transmission is instantaneous: the holding register is empty again. */
	assert_int_equal(rd(f, LSR) & 0x60, 0x60);
	/* Without IER.THRI the owed interrupt never reaches the line. */
	assert_false(f->irq);
}

static void test_receive_order_and_dr(void **state)
{
	struct uart_fixture *f = *state;

	assert_int_equal(rd(f, LSR) & 0x01, 0);
	rx(f, "abc");
	rx(f, "de");
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	for (const char *p = "abcde"; *p; p++) {
		assert_int_equal(rd(f, LSR) & 0x01, 0x01);
		assert_int_equal(rd(f, RBR), *p);
	}
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_int_equal(rd(f, RBR), 0);	/* empty reads are harmless */
	assert_int_equal(rd(f, LSR) & 0x01, 0);
}

static void test_receive_capacity(void **state)
{
	struct uart_fixture *f = *state;
	static uint8_t buf[SERIAL_RX_QUEUE + 100];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	assert_int_equal(serial_receive(&f->s, buf, sizeof(buf)), SERIAL_RX_QUEUE);
	assert_int_equal(serial_receive(&f->s, buf, 1), 0);
	/* Drain half, refill: the ring wraps and order holds. */
	for (size_t i = 0; i < SERIAL_RX_QUEUE / 2; i++)
		assert_int_equal(rd(f, RBR), buf[i]);
	assert_int_equal(serial_receive(&f->s, buf, 10), 10);
	for (size_t i = SERIAL_RX_QUEUE / 2; i < SERIAL_RX_QUEUE; i++)
		assert_int_equal(rd(f, RBR), buf[i]);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(rd(f, RBR), buf[i]);
	assert_int_equal(rd(f, LSR) & 0x01, 0);
}

static void test_rx_interrupt(void **state)
{
	struct uart_fixture *f = *state;

	rx(f, "x");
	assert_false(f->irq);			/* IER.RDI off */
	assert_int_equal(rd(f, IIR), 0x01);
	wr(f, IER, 0x01);
	assert_true(f->irq);
	assert_int_equal(f->irq_changes, 1);
	assert_int_equal(rd(f, IIR), 0x04);
	assert_int_equal(rd(f, IIR), 0x04);	/* reading IIR does not clear RDI */
	assert_int_equal(rd(f, RBR), 'x');
	assert_false(f->irq);
	assert_int_equal(f->irq_changes, 2);
	assert_int_equal(rd(f, IIR), 0x01);

	/* Input arriving with RDI enabled raises the line straight away. */
	rx(f, "y");
	assert_true(f->irq);
	assert_int_equal(f->irq_changes, 3);
}

static void test_thri_acknowledged_by_iir_read(void **state)
{
	struct uart_fixture *f = *state;

	/* Enabling THRI with the holding register empty owes an interrupt at once. */
	wr(f, IER, 0x02);
	assert_true(f->irq);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_false(f->irq);			/* the IIR read acknowledged it */
	assert_int_equal(rd(f, IIR), 0x01);

	wr(f, THR, 'a');
	assert_true(f->irq);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_false(f->irq);

	/* Rewriting IER with THRI still set is not a new enable. */
	wr(f, IER, 0x02);
	assert_false(f->irq);
	/* Turning it off and on again is. */
	wr(f, IER, 0x00);
	wr(f, IER, 0x02);
	assert_true(f->irq);
}

static void test_thri_masked_keeps_pending(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, IER, 0x02);
	wr(f, IER, 0x00);		/* pending but masked */
	assert_false(f->irq);
	assert_int_equal(rd(f, IIR), 0x01);
	wr(f, THR, 'a');
	assert_false(f->irq);
}

static void test_iir_priorities(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, IER, 0x0f);		/* all four sources */
	rx(f, "z");
	serial_break(&f->s);
	assert_true(f->irq);
	/* Line status beats received data beats transmitter empty. */
	assert_int_equal(rd(f, IIR), 0x06);
	assert_int_equal(rd(f, IIR), 0x06);	/* LSR errors clear only by reading LSR */
	assert_int_equal(rd(f, LSR) & 0x11, 0x11);	/* BI and DR */
	assert_int_equal(rd(f, LSR) & 0x10, 0);	/* BI cleared by the read */
	assert_int_equal(rd(f, IIR), 0x04);
	/* The THRI interrupt hid behind RDI: that IIR read did not acknowledge it. */
	assert_int_equal(rd(f, RBR), 'z');
	assert_true(f->irq);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_false(f->irq);
}

static void test_break_without_rlsi(void **state)
{
	struct uart_fixture *f = *state;

	serial_break(&f->s);
	assert_false(f->irq);
	assert_int_equal(rd(f, LSR) & 0x10, 0x10);
	assert_int_equal(rd(f, LSR) & 0x10, 0);
}

static void test_irq_callback_only_on_change(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, IER, 0x01);
	rx(f, "a");
	rx(f, "b");
	rx(f, "c");
	assert_int_equal(f->irq_changes, 1);
	rd(f, RBR);
	rd(f, RBR);
	assert_int_equal(f->irq_changes, 1);
	rd(f, RBR);
	assert_int_equal(f->irq_changes, 2);
	assert_false(f->irq);
}

static void test_divisor_latch(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, IER, 0x05);
	wr(f, LCR, 0x83);		/* DLAB, 8N1 */
	assert_int_equal(rd(f, DLL), 0x0c);	/* 9600 baud at power-on */
	assert_int_equal(rd(f, DLM), 0x00);
	wr(f, DLL, 0x01);		/* 115200 */
	wr(f, DLM, 0x02);
	assert_int_equal(rd(f, DLL), 0x01);
	assert_int_equal(rd(f, DLM), 0x02);
	assert_int_equal(f->tx_count, 0);	/* a DLL write is not a transmission */
	rx(f, "q");
	assert_int_equal(rd(f, DLL), 0x01);	/* and a DLL read does not pop the queue */

	wr(f, LCR, 0x03);
	assert_int_equal(rd(f, LCR), 0x03);
	assert_int_equal(rd(f, IER), 0x05);	/* IER survived the DLM write */
	assert_int_equal(rd(f, RBR), 'q');
	wr(f, LCR, 0x83);
	assert_int_equal(rd(f, DLL), 0x01);
	assert_int_equal(rd(f, DLM), 0x02);
}

static void test_loopback_msr(void **state)
{
	struct uart_fixture *f = *state;
	static const struct { uint8_t mcr, msr; } map[] = {
		{ 0x10, 0x00 },
		{ 0x11, 0x20 },		/* DTR -> DSR */
		{ 0x12, 0x10 },		/* RTS -> CTS */
		{ 0x14, 0x40 },		/* OUT1 -> RI */
		{ 0x18, 0x80 },		/* OUT2 -> DCD */
		{ 0x1f, 0xf0 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		wr(f, MCR, map[i].mcr);
		assert_int_equal(rd(f, MCR), map[i].mcr);
		assert_int_equal(rd(f, MSR), map[i].msr);
	}
	wr(f, MCR, 0xff);
	assert_int_equal(rd(f, MCR), 0x1f);	/* bits 5-7 are zero on a 16550 */
	wr(f, MCR, 0x0b);
	assert_int_equal(rd(f, MSR), 0xb0);	/* not looped: fixed lines again */
}

static void test_loopback_data(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, IER, 0x01);
	wr(f, MCR, 0x10);
	wr(f, THR, 0x55);
	wr(f, THR, 0xaa);
	assert_int_equal(f->tx_count, 0);	/* nothing leaves the chip */
	assert_true(f->irq);
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	assert_int_equal(rd(f, RBR), 0x55);
	assert_int_equal(rd(f, RBR), 0xaa);

	/* The line is disconnected while looped: host input is dropped. */
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"xyz", 3), 3);
	assert_int_equal(rd(f, LSR) & 0x01, 0);

	wr(f, MCR, 0x00);
	wr(f, THR, 'o');
	assert_int_equal(f->tx_count, 1);
	assert_int_equal(f->tx[0], 'o');
}

static void test_scratch(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, SCR, 0x5a);
	assert_int_equal(rd(f, SCR), 0x5a);
	wr(f, SCR, 0xa5);
	assert_int_equal(rd(f, SCR), 0xa5);
}

static void test_fcr(void **state)
{
	struct uart_fixture *f = *state;

	rx(f, "abc");
	wr(f, FCR, 0x01);
	assert_int_equal(rd(f, IIR), 0xc1);	/* FIFOs enabled, no interrupt */
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);	/* enable alone keeps data */
	wr(f, FCR, 0x03);			/* clear the receive FIFO */
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_int_equal(rd(f, IIR), 0xc1);
	rx(f, "d");
	assert_int_equal(rd(f, RBR), 'd');	/* nothing stale behind it */
	wr(f, FCR, 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
}

static void test_lsr_msr_read_only(void **state)
{
	struct uart_fixture *f = *state;

	wr(f, LSR, 0x00);
	wr(f, MSR, 0x00);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, MSR), 0xb0);
}

static void test_wide_access(void **state)
{
	struct uart_fixture *f = *state;
	uint8_t data[4] = { 0x11, 0x22, 0x33, 0x44 };

	serial_io(&f->s, SCR, true, data, 4);
	memset(data, 0xee, sizeof(data));
	serial_io(&f->s, SCR, false, data, 4);
	assert_memory_equal(data, ((uint8_t[]){ 0x11, 0, 0, 0 }), 4);
}

/* Saved and loaded into a UART that never ran: the guest sees the same device. */
static void test_state_round_trip(void **state)
{
	struct uart_fixture *f = *state, *g = NULL;
	struct vmstate_membuf m = { 0 };
	struct vmstate_out out;
	struct vmstate_in in;

	wr(f, LCR, 0x80);
	wr(f, DLL, 0x01);
	wr(f, LCR, 0x03);
	wr(f, SCR, 0x5a);
	wr(f, IER, 0x01);
	rx(f, "hi!");
	assert_int_equal(rd(f, RBR), 'h');
	assert_true(f->irq);
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(serial_save(&f->s, &out, 0), 0);
	assert_int_equal(vmstate_out_end(&out), 0);
	vmstate_out_free(&out);

	assert_int_equal(setup((void **)&g), 0);
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_int_equal(serial_load(&g->s, &in), 0);
	assert_true(g->irq);			/* the line follows the loaded registers */
	assert_int_equal(rd(g, SCR), 0x5a);
	assert_int_equal(rd(g, LCR), 0x03);
	assert_int_equal(rd(g, RBR), 'i');
	assert_int_equal(rd(g, RBR), '!');
	assert_false(g->irq);
	wr(g, LCR, 0x80);
	assert_int_equal(rd(g, DLL), 0x01);
	vmstate_in_free(&in);

	/* A stream whose queue count is past the queue (as a hostile source would
	 * send): refused by name, the UART unchanged. */
	free(m.data);
	memset(&m, 0, sizeof(m));
	f->s.rx_count = SERIAL_RX_QUEUE + 1;
	assert_int_equal(vmstate_out_begin(&out, (struct vmstate_io){ vmstate_mem_write, &m }), 0);
	assert_int_equal(serial_save(&f->s, &out, 0), 0);
	vmstate_out_free(&out);
	f->s.rx_count = 0;
	m.pos = 0;
	assert_int_equal(vmstate_in_begin(&in, (struct vmstate_io){ vmstate_mem_read, &m }), 0);
	assert_int_equal(vmstate_next_section(&in), 1);
	assert_int_equal(serial_load(&g->s, &in), -1);
	assert_non_null(strstr(in.err, "section 'serial' instance 0: receive queue head"));
	assert_int_equal(rd(g, SCR), 0x5a);
	vmstate_in_free(&in);
	free(m.data);
	teardown((void **)&g);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_power_on_state),
		T(test_transmit),
		T(test_receive_order_and_dr),
		T(test_receive_capacity),
		T(test_rx_interrupt),
		T(test_thri_acknowledged_by_iir_read),
		T(test_thri_masked_keeps_pending),
		T(test_iir_priorities),
		T(test_break_without_rlsi),
		T(test_irq_callback_only_on_change),
		T(test_divisor_latch),
		T(test_loopback_msr),
		T(test_loopback_data),
		T(test_scratch),
		T(test_fcr),
		T(test_lsr_msr_read_only),
		T(test_wide_access),
		T(test_state_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
