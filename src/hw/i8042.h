/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Enough of the 8042 keyboard controller (ports 0x60/0x64) for Linux to
 * probe it without hanging, and for its reboot path: command 0xFE pulses the
 * CPU reset line, which we turn into VM_STOP_RESET. No keyboard is attached
 * (the console is the serial port).
 */
#ifndef KEEL_HW_I8042_H
#define KEEL_HW_I8042_H

#include "keel/bus.h"
#include "keel/irq.h"
#include "keel/vm_events.h"

struct i8042;

struct i8042 *i8042_create(struct bus *pio, struct irq_line kbd_irq, struct irq_line aux_irq,
			   struct vm_events *events);
void i8042_destroy(struct i8042 *kbc);

#endif
