/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A 16550A UART as a PC's COM port: eight registers on port I/O, 16-byte
 * FIFOs, the interrupt identification and enable logic Linux's 8250 driver
 * relies on, and an edge on its ISA interrupt line when an enabled condition
 * becomes true.
 *
 * Transmitted bytes go to `ops->tx` (called on the vCPU thread that wrote
 * THR; it must not block forever). Received bytes come in through
 * uart_16550_rx() from the console backend on the main loop; when the
 * receive FIFO was full and the guest drains it, `ops->rx_ready` says more
 * can be sent. All entry points are thread-safe.
 */
#ifndef KEEL_HW_UART_16550_H
#define KEEL_HW_UART_16550_H

#include <stddef.h>
#include <stdint.h>

#include "keel/bus.h"
#include "keel/device.h"
#include "keel/irq.h"

#define UART_COM1_PORT 0x3f8
#define UART_COM1_IRQ 4

struct uart_16550;

struct uart_16550_ops {
	void (*tx)(void *opaque, const uint8_t *buf, size_t len);
	void (*rx_ready)(void *opaque);
};

/* Registers 8 ports at `port` on `pio`. NULL on failure (errno set). */
struct uart_16550 *uart_16550_create(struct bus *pio, uint16_t port, struct irq_line irq,
				     const struct uart_16550_ops *ops, void *opaque);
/* Queues up to len bytes for the guest; returns how many were taken. */
size_t uart_16550_rx(struct uart_16550 *uart, const uint8_t *buf, size_t len);
/* Back to power-on state (on guest reset). */
void uart_16550_reset(struct uart_16550 *uart);
/* Saved state (section version 1) and statistics; dev is a struct uart_16550. */
extern const struct device_ops uart_16550_device_ops;
/* Unregisters from the bus and frees. NULL is fine. */
void uart_16550_destroy(struct uart_16550 *uart);

#endif
