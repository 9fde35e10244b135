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

	/*
	 * Optional MSI fast path (irqfd); all three NULL when the chip has
	 * none. With KVM: a GSI routing entry (KVM_SET_GSI_ROUTING) holding
	 * addr/data, and KVM_IRQFD binding `fd` to that GSI, so a write to
	 * the eventfd injects the MSI without an ioctl.
	 *
	 * - Ownership: the device (src/pci/msix.c, one eventfd per MSI-X
	 *   vector) creates and closes the fd; the chip only references it
	 *   from irqfd_add() until irqfd_del(), which comes before close().
	 *   The fd is the key of the binding.
	 * - When: irqfd_add() once per vector when the device is created
	 *   (main thread); irqfd_update() from vCPU threads whenever the guest
	 *   rewrites the vector's address/data or changes its mask (per-vector
	 *   or function mask, MSI-X enable); irqfd_del() when the device is
	 *   destroyed. Calls for one device are serialized by the device, calls
	 *   for different devices may run concurrently.
	 * - `masked`: the device never writes the eventfd of a masked vector
	 *   (it sets the PBA bit instead and delivers on unmask), so a chip may
	 *   ignore it; it may also use it to detach the route while masked.
	 * - Writes to the eventfd come from device I/O threads at any time
	 *   between add() and del().
	 * - irqfd_add() returning -errno makes the device fall back to
	 *   signal_msi() for that vector.
	 */
	int (*irqfd_add)(struct irq_chip *chip, int fd, uint64_t addr, uint32_t data, bool masked);
	int (*irqfd_update)(struct irq_chip *chip, int fd, uint64_t addr, uint32_t data,
			    bool masked);
	void (*irqfd_del)(struct irq_chip *chip, int fd);
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
