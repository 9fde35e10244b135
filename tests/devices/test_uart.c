// SPDX-License-Identifier: Apache-2.0
/*
 * The 16550A as Linux's 8250 driver sees it: the autoconfig probe, the
 * startup THRE tests, interrupt-driven transmit and receive through an
 * edge-triggered line, FIFOs, loopback, modem status and backpressure.
 */
#include <pthread.h>
#include <string.h>

#include "harness.h"
#include "hw/uart_16550.h"
#include "ktest.h"

#define COM1 UART_COM1_PORT
#define IRQ UART_COM1_IRQ

enum { THR = 0, RBR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5,
       MSR = 6, SCR = 7 };

struct sink {
	uint8_t out[4096];
	size_t len;
	unsigned rx_ready;
};

static void sink_tx(void *opaque, const uint8_t *buf, size_t len)
{
	struct sink *s = opaque;

	for (size_t i = 0; i < len && s->len < sizeof(s->out); i++)
		s->out[s->len++] = buf[i];
}

static void sink_rx_ready(void *opaque)
{
	struct sink *s = opaque;

	s->rx_ready++;
}

static const struct uart_16550_ops sink_ops = { .tx = sink_tx, .rx_ready = sink_rx_ready };

struct rig {
	struct harness h;
	struct sink sink;
	struct uart_16550 *uart;
};

static bool rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	harness_init(&r->h);
	r->uart = uart_16550_create(&r->h.pio, COM1, harness_line(&r->h, IRQ), &sink_ops, &r->sink);
	return r->uart != NULL;
}

static void rig_fini(struct rig *r)
{
	uart_16550_destroy(r->uart);
	harness_fini(&r->h);
}

static uint8_t rd(struct rig *r, unsigned reg)
{
	return inb(&r->h, COM1 + reg);
}

static void wr(struct rig *r, unsigned reg, uint8_t v)
{
	outb(&r->h, COM1 + reg, v);
}

static bool line(struct rig *r)
{
	return r->h.irqs.level[IRQ];
}

/* The port set-up Linux's serial8250_do_startup ends with: 8N1, OUT2, FIFOs. */
static void linux_open(struct rig *r)
{
	wr(r, LCR, 0x83);
	wr(r, DLL, 1);
	wr(r, DLM, 0);
	wr(r, LCR, 0x03);
	wr(r, FCR, 0x01);
	wr(r, FCR, 0x81); /* FIFO on, RX trigger 8 */
	wr(r, MCR, 0x0b); /* DTR RTS OUT2 */
}

KTEST(uart_power_on_state)
{
	struct rig r;

	KASSERT(rig_init(&r));
	KCHECK_EQ(rd(&r, IER), 0);
	KCHECK_EQ(rd(&r, IIR), 0x01);
	KCHECK_EQ(rd(&r, LSR), 0x60);
	KCHECK_EQ(rd(&r, MCR), 0);
	KCHECK_EQ(rd(&r, MSR) & 0xf0, 0xb0); /* DCD DSR CTS: a terminal is attached */
	KCHECK(!line(&r));
	/* A second UART on the same ports is refused. */
	KCHECK(uart_16550_create(&r.h.pio, COM1, harness_line(&r.h, IRQ), &sink_ops, &r.sink) == NULL);
	rig_fini(&r);
}

/* drivers/tty/serial/8250/8250_port.c autoconfig(), step by step. */
KTEST(uart_linux_autoconfig_finds_16550a)
{
	struct rig r;
	uint8_t s1, s2;

	KASSERT(rig_init(&r));
	/* IER read-back: only the low nibble is implemented. */
	wr(&r, IER, 0);
	KCHECK_EQ(rd(&r, IER), 0);
	wr(&r, IER, 0xff);
	KCHECK_EQ(rd(&r, IER), 0x0f);
	wr(&r, IER, 0);
	/* Loopback: RTS|OUT2 come back as CTS|DCD. */
	wr(&r, MCR, 0x10 | 0x0a);
	KCHECK_EQ(rd(&r, MSR) & 0xf0, 0x90);
	wr(&r, MCR, 0);
	/* No EFR behind LCR=0xBF: offset 2 still reads IIR, never 0. */
	wr(&r, LCR, 0xbf);
	KCHECK(rd(&r, IIR) != 0);
	wr(&r, LCR, 0);
	/* FIFO enable makes IIR bits 7:6 read 11: a 16550A. */
	wr(&r, FCR, 0x01);
	KCHECK_EQ(rd(&r, IIR) >> 6, 3);
	/* Not a 16750: IIR bit 5 stays clear with and without DLAB. */
	wr(&r, FCR, 0x21);
	s1 = rd(&r, IIR) >> 5;
	wr(&r, LCR, 0x80);
	wr(&r, FCR, 0x21);
	s2 = rd(&r, IIR) >> 5;
	wr(&r, LCR, 0);
	KCHECK_EQ(s1, 6);
	KCHECK_EQ(s2, 6);
	/* Not an XScale UART: IER bit 6 (UUE) does not stick. */
	wr(&r, IER, 0x40);
	KCHECK_EQ(rd(&r, IER) & 0x40, 0);
	/* Scratch register keeps what is written. */
	wr(&r, SCR, 0xa5);
	KCHECK_EQ(rd(&r, SCR), 0xa5);
	KCHECK_EQ(r.sink.len, 0); /* nothing was transmitted by probing */
	rig_fini(&r);
}

/* serial8250_do_startup(): UART_BUG_THRE and UART_BUG_TXEN must not be set. */
KTEST(uart_linux_startup_thre_tests)
{
	struct rig r;
	uint8_t iir1, iir, lsr;

	KASSERT(rig_init(&r));
	wr(&r, LCR, 0x03);
	wr(&r, IER, 0x02);
	iir1 = rd(&r, IIR);
	wr(&r, IER, 0);
	wr(&r, IER, 0x02);
	iir = rd(&r, IIR);
	wr(&r, IER, 0);
	KCHECK_EQ(iir1 & 0x0f, 0x02);
	KCHECK_EQ(iir & 0x0f, 0x02); /* re-asserted after IER was cleared and set */

	wr(&r, MCR, 0x0b);
	wr(&r, IER, 0x02);
	lsr = rd(&r, LSR);
	iir = rd(&r, IIR);
	wr(&r, IER, 0);
	KCHECK(lsr & 0x40);
	KCHECK_EQ(iir & 0x01, 0); /* an interrupt was pending */
	KCHECK(!line(&r));
	rig_fini(&r);
}

KTEST(uart_out2_gates_the_line)
{
	struct rig r;

	KASSERT(rig_init(&r));
	wr(&r, IER, 0x02);
	KCHECK(!line(&r)); /* pending, but OUT2 is low */
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x02);
	wr(&r, IER, 0);
	wr(&r, MCR, 0x08);
	harness_take_edges(&r.h, IRQ);
	wr(&r, IER, 0x02);
	KCHECK(line(&r));
	KCHECK_EQ(harness_take_edges(&r.h, IRQ), 1);
	wr(&r, MCR, 0x00);
	KCHECK(!line(&r));
	rig_fini(&r);
}

/* Transmit as the interrupt handler does: each refill must make a new edge. */
KTEST(uart_tx_interrupt_driven)
{
	struct rig r;
	const char *msg = "hello, keel\r\n";

	KASSERT(rig_init(&r));
	linux_open(&r);
	harness_take_edges(&r.h, IRQ);
	wr(&r, IER, 0x02 | 0x01); /* start_tx */
	KCHECK(line(&r));
	KCHECK_EQ(harness_take_edges(&r.h, IRQ), 1);
	for (const char *p = msg; *p; p++) {
		/* handler: IIR says THRE, LSR says empty, write one byte */
		KCHECK_EQ(rd(&r, IIR), 0xc2);
		KCHECK(!line(&r)); /* reading IIR acknowledged THRE */
		KCHECK(rd(&r, LSR) & 0x20);
		wr(&r, THR, (uint8_t)*p);
		KCHECK_EQ(rd(&r, LSR) & 0x60, 0x60);
		KCHECK(line(&r));
		KCHECK_EQ(harness_take_edges(&r.h, IRQ), 1);
	}
	wr(&r, IER, 0x01); /* stop_tx */
	KCHECK(!line(&r));
	KCHECK_EQ(rd(&r, IIR), 0xc1);
	KCHECK_EQ(r.sink.len, strlen(msg));
	KCHECK(!memcmp(r.sink.out, msg, strlen(msg)));
	rig_fini(&r);
}

KTEST(uart_tx_write_without_reading_iir_still_edges)
{
	struct rig r;

	KASSERT(rig_init(&r));
	linux_open(&r);
	wr(&r, IER, 0x02);
	harness_take_edges(&r.h, IRQ);
	/* A handler that fills the FIFO with 16 bytes in a row. */
	for (int i = 0; i < 16; i++)
		wr(&r, THR, 'a' + i);
	KCHECK_EQ(harness_take_edges(&r.h, IRQ), 16);
	KCHECK_EQ(r.sink.len, 16);
	rig_fini(&r);
}

KTEST(uart_rx_fifo_trigger_and_timeout)
{
	struct rig r;
	uint8_t buf[8] = "abcdefgh";

	KASSERT(rig_init(&r));
	linux_open(&r); /* trigger level 8 */
	wr(&r, IER, 0x05);
	KCHECK_EQ(uart_16550_rx(r.uart, buf, 3), 3);
	KCHECK(line(&r));
	KCHECK_EQ(rd(&r, IIR), 0xcc); /* below trigger: character timeout */
	KCHECK_EQ(uart_16550_rx(r.uart, buf + 3, 5), 5);
	KCHECK_EQ(rd(&r, IIR), 0xc4); /* at trigger: data available */
	KCHECK(rd(&r, LSR) & 0x01);
	for (int i = 0; i < 8; i++)
		KCHECK_EQ(rd(&r, RBR), buf[i]);
	KCHECK_EQ(rd(&r, LSR) & 0x01, 0);
	KCHECK_EQ(rd(&r, IIR), 0xc1);
	KCHECK(!line(&r));
	/* Trigger levels 1, 4 and 14. */
	wr(&r, FCR, 0x01);
	KCHECK_EQ(uart_16550_rx(r.uart, buf, 1), 1);
	KCHECK_EQ(rd(&r, IIR), 0xc4);
	rd(&r, RBR);
	wr(&r, FCR, 0x41);
	KCHECK_EQ(uart_16550_rx(r.uart, buf, 4), 4);
	KCHECK_EQ(rd(&r, IIR), 0xc4);
	wr(&r, FCR, 0xc3); /* trigger 14, and clear RX */
	KCHECK_EQ(rd(&r, LSR) & 0x01, 0);
	KCHECK_EQ(uart_16550_rx(r.uart, buf, 8), 8);
	KCHECK_EQ(rd(&r, IIR), 0xcc);
	rig_fini(&r);
}

KTEST(uart_rx_backpressure_and_rx_ready)
{
	struct rig r;
	uint8_t in[40];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x30 + i);
	KASSERT(rig_init(&r));
	/* Without FIFOs the receiver holds one byte. */
	KCHECK_EQ(uart_16550_rx(r.uart, in, 5), 1);
	KCHECK_EQ(r.sink.rx_ready, 0);
	KCHECK_EQ(rd(&r, RBR), in[0]);
	KCHECK_EQ(r.sink.rx_ready, 1);
	KCHECK_EQ(rd(&r, RBR), in[0]); /* empty RBR reads the last byte again */
	KCHECK_EQ(r.sink.rx_ready, 1); /* nothing was held back since */

	linux_open(&r);
	KCHECK_EQ(uart_16550_rx(r.uart, in, sizeof(in)), 16);
	KCHECK_EQ(uart_16550_rx(r.uart, in + 16, 24), 0);
	KCHECK_EQ(rd(&r, LSR) & 0x02, 0); /* backpressure, never overrun */
	KCHECK_EQ(rd(&r, RBR), in[0]);
	KCHECK_EQ(r.sink.rx_ready, 2);
	KCHECK_EQ(uart_16550_rx(r.uart, in + 16, 24), 1);
	for (unsigned i = 1; i < 17; i++)
		KCHECK_EQ(rd(&r, RBR), in[i]);
	KCHECK_EQ(r.sink.rx_ready, 3);
	rig_fini(&r);
}

KTEST(uart_loopback_overrun_and_line_status)
{
	struct rig r;
	uint8_t b = 'z';

	KASSERT(rig_init(&r));
	linux_open(&r);
	wr(&r, MCR, 0x1b); /* loopback */
	wr(&r, IER, 0x05);
	for (int i = 0; i < 17; i++)
		wr(&r, THR, (uint8_t)i);
	KCHECK_EQ(r.sink.len, 0); /* nothing left the chip */
	KCHECK_EQ(rd(&r, IIR), 0xc6); /* line status outranks data */
	KCHECK_EQ(rd(&r, LSR) & 0x03, 0x03);
	KCHECK_EQ(rd(&r, LSR) & 0x02, 0); /* OE cleared by the read */
	KCHECK_EQ(rd(&r, IIR), 0xc4);
	for (int i = 0; i < 16; i++)
		KCHECK_EQ(rd(&r, RBR), i); /* the 17th byte was lost */
	/* The serial input is disconnected in loopback. */
	KCHECK_EQ(uart_16550_rx(r.uart, &b, 1), 0);
	KCHECK_EQ(r.sink.rx_ready, 0);
	wr(&r, MCR, 0x0b);
	KCHECK_EQ(r.sink.rx_ready, 1);
	KCHECK_EQ(uart_16550_rx(r.uart, &b, 1), 1);
	KCHECK_EQ(rd(&r, RBR), 'z');
	rig_fini(&r);
}

KTEST(uart_modem_status_deltas)
{
	struct rig r;

	KASSERT(rig_init(&r));
	rd(&r, MSR);
	wr(&r, IER, 0x08);
	wr(&r, MCR, 0x08 | 0x10 | 0x04); /* loop, OUT2, OUT1 -> DCD, RI */
	KCHECK(line(&r));
	KCHECK_EQ(rd(&r, IIR), 0x00);
	/* CTS and DSR dropped, DCD stayed, RI rose (no TERI on a rising edge). */
	KCHECK_EQ(rd(&r, MSR), 0xc0 | 0x03);
	KCHECK(!line(&r));
	KCHECK_EQ(rd(&r, MSR), 0xc0);
	wr(&r, MCR, 0x08 | 0x10); /* RI falls: trailing edge */
	KCHECK_EQ(rd(&r, MSR), 0x80 | 0x04);
	wr(&r, MCR, 0x08 | 0x10 | 0x03);
	KCHECK_EQ(rd(&r, MSR), 0xb0 | 0x03);
	rig_fini(&r);
}

KTEST(uart_interrupt_priorities)
{
	struct rig r;
	uint8_t b = 1;

	KASSERT(rig_init(&r));
	linux_open(&r);
	wr(&r, MCR, 0x18); /* loopback with DTR/RTS low: CTS and DSR drop */
	for (int i = 0; i < 17; i++)
		wr(&r, THR, 0);
	wr(&r, MCR, 0x0b); /* MSR deltas now pending too */
	wr(&r, IER, 0x0f);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x06);
	rd(&r, LSR);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x04);
	while (rd(&r, LSR) & 0x01)
		rd(&r, RBR);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x02);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x00); /* THRE acknowledged: modem status */
	rd(&r, MSR);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x01);
	KCHECK_EQ(uart_16550_rx(r.uart, &b, 1), 1);
	KCHECK_EQ(rd(&r, IIR) & 0x0f, 0x0c);
	rig_fini(&r);
}

KTEST(uart_divisor_latch)
{
	struct rig r;

	KASSERT(rig_init(&r));
	wr(&r, IER, 0x05);
	wr(&r, LCR, 0x80 | 0x03);
	wr(&r, DLL, 0x34);
	wr(&r, DLM, 0x12);
	KCHECK_EQ(rd(&r, DLL), 0x34);
	KCHECK_EQ(rd(&r, DLM), 0x12);
	KCHECK_EQ(rd(&r, LCR), 0x83);
	wr(&r, LCR, 0x03);
	KCHECK_EQ(rd(&r, IER), 0x05); /* IER was not touched */
	KCHECK_EQ(r.sink.len, 0);      /* nor was THR */
	wr(&r, LCR, 0x83);
	KCHECK_EQ(rd(&r, DLL) | rd(&r, DLM) << 8, 0x1234);
	rig_fini(&r);
}

KTEST(uart_fifo_disable_clears)
{
	struct rig r;
	uint8_t in[4] = "wxyz";

	KASSERT(rig_init(&r));
	linux_open(&r);
	KCHECK_EQ(uart_16550_rx(r.uart, in, 4), 4);
	wr(&r, FCR, 0x00);
	KCHECK_EQ(rd(&r, LSR) & 0x01, 0);
	KCHECK_EQ(rd(&r, IIR) & 0xc0, 0);
	KCHECK_EQ(uart_16550_rx(r.uart, in, 4), 1);
	rig_fini(&r);
}

KTEST(uart_reset_restores_power_on_state)
{
	struct rig r;
	uint8_t in[20] = { 0 };

	KASSERT(rig_init(&r));
	linux_open(&r);
	wr(&r, IER, 0x0f);
	uart_16550_rx(r.uart, in, sizeof(in)); /* holds the sender back */
	KCHECK(line(&r));
	uart_16550_reset(r.uart);
	KCHECK(!line(&r));
	KCHECK_EQ(rd(&r, IER), 0);
	KCHECK_EQ(rd(&r, MCR), 0);
	KCHECK_EQ(rd(&r, LSR), 0x60);
	KCHECK_EQ(rd(&r, IIR), 0x01);
	KCHECK_EQ(r.sink.rx_ready, 1); /* the held-back sender may go on */
	rig_fini(&r);
}

KTEST(uart_wide_accesses_are_byte_cycles)
{
	struct rig r;

	KASSERT(rig_init(&r));
	/* A 16-bit write at LCR programs LCR and MCR. */
	outw(&r.h, COM1 + LCR, 0x0b03);
	KCHECK_EQ(rd(&r, LCR), 0x03);
	KCHECK_EQ(rd(&r, MCR), 0x0b);
	KCHECK_EQ(inw(&r.h, COM1 + LCR), 0x0b03);
	rig_fini(&r);
}

struct feeder {
	struct uart_16550 *uart;
	unsigned total;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;

	for (unsigned sent = 0; sent < f->total;) {
		uint8_t b = (uint8_t)sent;

		sent += uart_16550_rx(f->uart, &b, 1);
	}
	return NULL;
}

/* The console feeds from the main loop while a vCPU drains: nothing lost. */
KTEST(uart_concurrent_rx_keeps_order)
{
	struct rig r;
	struct feeder f;
	pthread_t t;
	unsigned got = 0;
	bool ordered = true;

	KASSERT(rig_init(&r));
	linux_open(&r);
	f.uart = r.uart;
	f.total = 5000;
	KASSERT(pthread_create(&t, NULL, feed, &f) == 0);
	while (got < f.total) {
		if (rd(&r, LSR) & 0x01) {
			if (rd(&r, RBR) != (uint8_t)got)
				ordered = false;
			got++;
		}
	}
	pthread_join(t, NULL);
	KCHECK(ordered);
	KCHECK_EQ(rd(&r, LSR) & 0x03, 0);
	rig_fini(&r);
}

int main(void)
{
	return ktest_run_all();
}
