// SPDX-License-Identifier: Apache-2.0
/*
 * 16550A UART. Register semantics follow the National PC16550D data sheet;
 * the details that matter are the ones Linux's 8250 driver probes:
 *  - autoconfig: IER keeps only its low nibble; loopback maps MCR
 *    DTR/RTS/OUT1/OUT2 onto MSR DSR/CTS/RI/DCD; FCR bit 0 makes IIR bits
 *    7:6 read 11 (a 16550A); IIR bit 5 stays clear (no 64-byte 16750 FIFO).
 *  - startup: enabling THRI in IER while the transmitter is empty raises
 *    the THRE interrupt at once, and again after IER is cleared and set
 *    (UART_BUG_THRE / UART_BUG_TXEN tests).
 *
 * Transmission is instantaneous: a byte written to THR goes to ops->tx at
 * once, so THRE and TEMT are set again right after the write. To give the
 * edge-triggered ISA line a fresh edge per refill (as a real UART does when
 * its FIFO drains), a THR write first drops the THRE interrupt, updates the
 * line, then raises it again.
 *
 * Receive: uart_16550_rx() never overruns; it takes only what fits (16
 * bytes with FIFOs on, 1 without) and remembers that the sender was held
 * back, calling ops->rx_ready once the guest makes room. Overrun (LSR OE)
 * can only happen in loopback, where transmitted bytes have no flow
 * control, as on hardware.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/uart_16550.h"
#include "keel/log.h"

#define FIFO_SIZE 16

/* Register offsets (DLAB selects DLL/DLM at 0/1). */
enum {
	REG_RBR_THR = 0,
	REG_IER = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c /* character timeout */
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_KEPT 0xc9 /* trigger level, DMA mode, enable */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

/* What the far end looks like outside loopback: a terminal that is there. */
#define MSR_LINES_CONNECTED (MSR_CTS | MSR_DSR | MSR_DCD)

struct uart_16550 {
	pthread_mutex_t lock;
	struct bus *pio;
	uint16_t port;
	struct irq_line irq;
	const struct uart_16550_ops *ops;
	void *opaque;

	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t dll, dlm;
	uint8_t rbr_last; /* what RBR reads when the FIFO is empty */
	bool thre_pending; /* THRE interrupt latched, cleared by IIR read or THR write */
	bool line_level;   /* what we last drove the IRQ line to */
	bool rx_held;      /* uart_16550_rx() refused bytes: owe an rx_ready */

	uint8_t rx_fifo[FIFO_SIZE];
	unsigned rx_head, rx_count;

	uint64_t tx_bytes, rx_bytes, overruns; /* statistics */
};

static unsigned rx_capacity(const struct uart_16550 *u)
{
	return (u->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart_16550 *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };

	return (u->fcr & FCR_ENABLE) ? levels[u->fcr >> 6] : 1;
}

/* The pending interrupt of highest priority, as IIR bits 3:0. */
static uint8_t pending_iid(const struct uart_16550 *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_OE))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count) {
		/*
		 * Below the trigger level hardware waits four character times
		 * before a timeout interrupt; we report it at once, which the
		 * 8250 driver handles the same way and which keeps typing
		 * latency low.
		 */
		if (u->rx_count >= rx_trigger(u))
			return IIR_RDI;
		return IIR_CTI;
	}
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & 0x0f))
		return IIR_MSI;
	return IIR_NO_INT;
}

/*
 * On a PC the UART's interrupt output reaches the ISA bus through a gate
 * driven by OUT2; Linux sets OUT2 whenever it uses the interrupt.
 */
static void update_irq(struct uart_16550 *u)
{
	bool level = pending_iid(u) != IIR_NO_INT && (u->mcr & MCR_OUT2);

	if (level != u->line_level) {
		u->line_level = level;
		irq_line_set(&u->irq, level);
	}
}

/* MSR status bits as the current MCR/loopback state makes them. */
static uint8_t msr_lines(const struct uart_16550 *u)
{
	uint8_t m = 0;

	if (!(u->mcr & MCR_LOOP))
		return MSR_LINES_CONNECTED;
	if (u->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (u->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (u->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

/* Recomputes MSR status bits, latching delta bits for what changed. */
static void update_msr(struct uart_16550 *u)
{
	uint8_t old = u->msr & 0xf0, now = msr_lines(u), delta = 0;

	if ((old ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI)) /* trailing edge only */
		delta |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = now | (u->msr & 0x0f) | delta;
}

static void rx_clear(struct uart_16550 *u)
{
	u->rx_head = u->rx_count = 0;
	u->lsr &= ~LSR_DR;
}

/* Appends one byte; false (and OE) when there is no room. */
static bool rx_push(struct uart_16550 *u, uint8_t b)
{
	if (u->rx_count >= rx_capacity(u)) {
		u->lsr |= LSR_OE;
		u->overruns++;
		return false;
	}
	u->rx_fifo[(u->rx_head + u->rx_count) % FIFO_SIZE] = b;
	u->rx_count++;
	u->lsr |= LSR_DR;
	return true;
}

/* Returns true when the console was held back and can now send more. */
static bool rx_pop(struct uart_16550 *u, uint8_t *out)
{
	bool owe;

	if (!u->rx_count) {
		*out = u->rbr_last;
		return false;
	}
	*out = u->rbr_last = u->rx_fifo[u->rx_head];
	u->rx_head = (u->rx_head + 1) % FIFO_SIZE;
	if (!--u->rx_count)
		u->lsr &= ~LSR_DR;
	owe = u->rx_held;
	u->rx_held = false;
	return owe;
}

static void write_thr(struct uart_16550 *u, uint8_t b)
{
	u->thre_pending = false;
	update_irq(u);
	if (u->mcr & MCR_LOOP)
		rx_push(u, b);
	else if (u->ops && u->ops->tx)
		u->ops->tx(u->opaque, &b, 1);
	u->tx_bytes++;
	/* The byte left at once: THR (and the shift register) are empty again. */
	u->lsr |= LSR_THRE | LSR_TEMT;
	u->thre_pending = true;
}

static void write_fcr(struct uart_16550 *u, uint8_t v)
{
	/* Toggling the enable bit clears both FIFOs (data sheet, FCR bit 0). */
	if ((v ^ u->fcr) & FCR_ENABLE)
		rx_clear(u);
	/* The other bits are only programmed while bit 0 is written as 1. */
	if (!(v & FCR_ENABLE)) {
		u->fcr = 0;
		return;
	}
	if (v & FCR_CLEAR_RX)
		rx_clear(u);
	/* FCR_CLEAR_TX: the transmit FIFO is always empty here. */
	u->fcr = v & FCR_KEPT;
}

static void write_mcr(struct uart_16550 *u, uint8_t v, bool *owe_rx_ready)
{
	bool was_loop = u->mcr & MCR_LOOP;

	u->mcr = v & MCR_MASK;
	update_msr(u);
	/* Leaving loopback reconnects the console's input. */
	if (was_loop && !(u->mcr & MCR_LOOP) && u->rx_held) {
		u->rx_held = false;
		*owe_rx_ready = true;
	}
}

static uint8_t reg_read(struct uart_16550 *u, unsigned reg, bool *owe_rx_ready)
{
	uint8_t v = 0, iid;

	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		*owe_rx_ready = rx_pop(u, &v);
		return v;
	case REG_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case REG_IIR_FCR:
		iid = pending_iid(u);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if (iid == IIR_THRI)
			u->thre_pending = false;
		return iid | ((u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
	case REG_LCR:
		return u->lcr;
	case REG_MCR:
		return u->mcr;
	case REG_LSR:
		v = u->lsr;
		u->lsr &= ~LSR_OE; /* error bits clear on read */
		return v;
	case REG_MSR:
		v = u->msr;
		u->msr &= 0xf0; /* deltas clear on read */
		return v;
	default:
		return u->scr;
	}
}

static void reg_write(struct uart_16550 *u, unsigned reg, uint8_t v, bool *owe_rx_ready)
{
	uint8_t old;

	switch (reg) {
	case REG_RBR_THR:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			write_thr(u, v);
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		old = u->ier;
		u->ier = v & 0x0f;
		/* Enabling THRI with an empty transmitter interrupts at once. */
		if ((u->ier & IER_THRI) && !(old & IER_THRI) && (u->lsr & LSR_THRE))
			u->thre_pending = true;
		else if (!(u->ier & IER_THRI))
			u->thre_pending = false;
		break;
	case REG_IIR_FCR:
		write_fcr(u, v);
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		write_mcr(u, v, owe_rx_ready);
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* read-only (factory test writes are ignored) */
	default:
		u->scr = v;
		break;
	}
}

/*
 * Wider accesses are split into byte cycles on consecutive registers, as
 * an 8-bit ISA device sees them.
 */
static void uart_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct uart_16550 *u = opaque;
	uint8_t *out = data;
	bool owe = false;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size; i++)
		out[i] = reg_read(u, (offset + i) & 7, &owe);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	/* Outside the lock: the console may call uart_16550_rx() from it. */
	if (owe && u->ops && u->ops->rx_ready)
		u->ops->rx_ready(u->opaque);
}

static void uart_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct uart_16550 *u = opaque;
	const uint8_t *in = data;
	bool owe = false;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < size; i++)
		reg_write(u, (offset + i) & 7, in[i], &owe);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (owe && u->ops && u->ops->rx_ready)
		u->ops->rx_ready(u->opaque);
}

static const struct bus_ops uart_ops = { .read = uart_read, .write = uart_write };

size_t uart_16550_rx(struct uart_16550 *u, const uint8_t *buf, size_t len)
{
	size_t taken = 0;

	pthread_mutex_lock(&u->lock);
	/* In loopback the serial input pin is disconnected. */
	if (!(u->mcr & MCR_LOOP)) {
		while (taken < len && u->rx_count < rx_capacity(u))
			rx_push(u, buf[taken++]);
		u->rx_bytes += taken;
	}
	if (taken < len)
		u->rx_held = true;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

/* Power-on state (data sheet, "Reset" table). Called with the lock held. */
static bool reset_locked(struct uart_16550 *u)
{
	bool owe = u->rx_held;

	u->ier = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->fcr = 0;
	u->scr = 0;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->msr = msr_lines(u);
	u->dll = 0x0c; /* 9600 baud from 1.8432 MHz, what a BIOS leaves */
	u->dlm = 0;
	u->rbr_last = 0;
	u->thre_pending = false;
	u->rx_held = false;
	rx_clear(u);
	update_irq(u);
	return owe;
}

void uart_16550_reset(struct uart_16550 *u)
{
	bool owe;

	pthread_mutex_lock(&u->lock);
	owe = reset_locked(u);
	pthread_mutex_unlock(&u->lock);
	if (owe && u->ops && u->ops->rx_ready)
		u->ops->rx_ready(u->opaque);
}

struct uart_16550 *uart_16550_create(struct bus *pio, uint16_t port, struct irq_line irq,
				     const struct uart_16550_ops *ops, void *opaque)
{
	struct uart_16550 *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return NULL;
	pthread_mutex_init(&u->lock, NULL);
	u->pio = pio;
	u->port = port;
	u->irq = irq;
	u->ops = ops;
	u->opaque = opaque;
	/* The line starts low; make sure the chip agrees. */
	irq_line_set(&u->irq, false);
	reset_locked(u);
	r = bus_register(pio, port, 8, &uart_ops, u, "uart-16550");
	if (r < 0) {
		log_error("uart at port %#x: cannot register: %s", port, strerror(-r));
		pthread_mutex_destroy(&u->lock);
		free(u);
		errno = -r;
		return NULL;
	}
	return u;
}

void uart_16550_destroy(struct uart_16550 *u)
{
	if (!u)
		return;
	bus_unregister(u->pio, u->port);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* Version 1: the registers, the receive FIFO in order, the latched THRE interrupt. */
static int uart_save(void *dev, const char *name, struct state_writer *w)
{
	struct uart_16550 *u = dev;

	pthread_mutex_lock(&u->lock);
	state_begin(w, name, 1);
	state_put_u8(w, u->ier);
	state_put_u8(w, u->lcr);
	state_put_u8(w, u->mcr);
	state_put_u8(w, u->lsr);
	state_put_u8(w, u->msr);
	state_put_u8(w, u->scr);
	state_put_u8(w, u->fcr);
	state_put_u8(w, u->dll);
	state_put_u8(w, u->dlm);
	state_put_u8(w, u->rbr_last);
	state_put_bool(w, u->thre_pending);
	state_put_u8(w, (uint8_t)u->rx_count);
	for (unsigned i = 0; i < u->rx_count; i++)
		state_put_u8(w, u->rx_fifo[(u->rx_head + i) % FIFO_SIZE]);
	state_end(w);
	pthread_mutex_unlock(&u->lock);
	return state_writer_error(w);
}

static int uart_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	struct uart_16550 *u = dev;
	uint8_t r[10], fifo[FIFO_SIZE];
	unsigned count;
	bool thre, level;

	if (state_check_version(s, 1, 1, err, errlen))
		return -EINVAL;
	state_get_bytes(s, r, sizeof(r));
	thre = state_get_bool(s);
	count = state_get_u8(s);
	if (count > FIFO_SIZE || (!(r[6] & FCR_ENABLE) && count > 1)) {
		snprintf(err, errlen, "%s: %u bytes in the receive FIFO", s->tag, count);
		return -EINVAL;
	}
	state_get_bytes(s, fifo, count);
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	pthread_mutex_lock(&u->lock);
	u->ier = r[0] & 0x0f;
	u->lcr = r[1];
	u->mcr = r[2] & MCR_MASK;
	u->lsr = r[3] & (LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
	u->msr = r[4];
	u->scr = r[5];
	u->fcr = r[6] & FCR_KEPT;
	u->dll = r[7];
	u->dlm = r[8];
	u->rbr_last = r[9];
	u->thre_pending = thre;
	u->rx_head = 0;
	u->rx_count = count;
	memcpy(u->rx_fifo, fifo, count);
	u->lsr = (u->lsr & ~LSR_DR) | (count ? LSR_DR : 0);
	u->rx_held = false;
	/* The irqchip was loaded first; drive the line to what this state implies. */
	level = pending_iid(u) != IIR_NO_INT && (u->mcr & MCR_OUT2);
	u->line_level = level;
	irq_line_set(&u->irq, level);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static void uart_stats(void *dev, struct stats_sink *sink)
{
	struct uart_16550 *u = dev;
	uint64_t tx, rx, oe;

	pthread_mutex_lock(&u->lock);
	tx = u->tx_bytes;
	rx = u->rx_bytes;
	oe = u->overruns;
	pthread_mutex_unlock(&u->lock);
	stats_counter(sink, "tx_bytes", tx);
	stats_counter(sink, "rx_bytes", rx);
	stats_counter(sink, "overruns", oe);
}

const struct device_ops uart_16550_device_ops = {
	.type = "uart-16550",
	.state_version = 1,
	.save = uart_save,
	.load = uart_load,
	.stats = uart_stats,
};
