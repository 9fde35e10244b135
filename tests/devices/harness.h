/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the device tests share: a port-I/O bus the test drives like a guest
 * driver (inb/outb), an irq_chip that records every level each line was
 * driven to and counts rising edges (what an edge-triggered PIC/IOAPIC
 * would latch), and a vm_events that records stop requests.
 */
#ifndef KEEL_TESTS_DEVICES_HARNESS_H
#define KEEL_TESTS_DEVICES_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/bus.h"
#include "keel/irq.h"
#include "keel/vm_events.h"

#define FAKE_IRQ_LINES 24

struct fake_irq_chip {
	struct irq_chip chip;
	bool level[FAKE_IRQ_LINES];
	unsigned edges[FAKE_IRQ_LINES]; /* low -> high transitions */
	unsigned calls[FAKE_IRQ_LINES];
};

struct fake_events {
	struct vm_events ev;
	unsigned requests;
	enum vm_stop_reason last;
};

struct harness {
	struct bus pio;
	struct fake_irq_chip irqs;
	struct fake_events events;
};

void harness_init(struct harness *h);
void harness_fini(struct harness *h);
struct irq_line harness_line(struct harness *h, uint32_t gsi);

uint8_t inb(struct harness *h, uint16_t port);
uint16_t inw(struct harness *h, uint16_t port);
uint32_t inl(struct harness *h, uint16_t port);
void outb(struct harness *h, uint16_t port, uint8_t v);
void outw(struct harness *h, uint16_t port, uint16_t v);
void outl(struct harness *h, uint16_t port, uint32_t v);

/* Rising edges on gsi since the last call. */
unsigned harness_take_edges(struct harness *h, uint32_t gsi);

/*
 * Hammers [base, base+len) with writes and reads of every width (1, 2, 4,
 * 8 bytes, also straddling the region's end) and pseudo-random values from
 * a fixed seed, so a failure reproduces. Returns the number of accesses.
 */
unsigned harness_fuzz_ports(struct harness *h, uint16_t base, unsigned len, unsigned rounds,
			    uint32_t seed);

#endif
