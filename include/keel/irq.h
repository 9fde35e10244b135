/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a device raises interrupts without knowing about /dev/kvm: an irq_chip
 * provided by the VMM (KVM's in-kernel IOAPIC/PIC and MSI injection) or by
 * the test harness (which records what was raised).
 */
#ifndef KEEL_IRQ_H
#define KEEL_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_chip {
	/* Drive a legacy interrupt line (GSI) to a level. 0 or -errno. */
	int (*set_level)(struct irq_chip *chip, uint32_t gsi, bool level);
	/* Deliver a message-signalled interrupt. 0 or -errno. */
	int (*signal_msi)(struct irq_chip *chip, uint64_t addr, uint32_t data);
};

/* A device's handle on one wired interrupt line. */
struct irq_line {
	struct irq_chip *chip;
	uint32_t gsi;
};

static inline int irq_line_set(const struct irq_line *line, bool level)
{
	return line->chip ? line->chip->set_level(line->chip, line->gsi, level) : 0;
}

/* An edge: raise then lower, for edge-triggered ISA lines. */
static inline int irq_line_pulse(const struct irq_line *line)
{
	int r = irq_line_set(line, true);
	return r ? r : irq_line_set(line, false);
}

#endif
