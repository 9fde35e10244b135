/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enough of the 8042 keyboard controller (ports 0x60/0x64) for Linux to
 * probe it without hanging, and for its reboot path: command 0xFE pulses the
 * CPU reset line, which we turn into VM_STOP_RESET. No keyboard or mouse is
 * attached (the console is the serial port): bytes sent to either device
 * are answered "no device" at once.
 */
#ifndef KEEL_HW_I8042_H
#define KEEL_HW_I8042_H

#include "keel/bus.h"
#include "keel/device.h"
#include "keel/irq.h"
#include "keel/vm_events.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12

struct i8042;

/* NULL on failure (errno set). */
struct i8042 *i8042_create(struct bus *pio, struct irq_line kbd_irq, struct irq_line aux_irq,
			   struct vm_events *events);
/* Back to the state firmware leaves (on guest reset). */
void i8042_reset(struct i8042 *kbc);
/* NULL is fine. */
void i8042_destroy(struct i8042 *kbc);

/* Saved state (section version 1) and statistics; dev is a struct i8042. */
extern const struct device_ops i8042_device_ops;

#endif
