/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PC's other two reset doors, each turned into VM_STOP_RESET:
 *   port 0x92   System Control Port A: bit 0 rising = fast CPU reset
 *               (bit 1, the A20 gate, is kept but has no effect)
 *   port 0xCF9  Reset Control Register: a write with RST_CPU (bit 2) set;
 *               SYS_RST (bit 1) and FULL_RST (bit 3) are kept for read-back
 *
 * 0xCF9 sits inside the PCI configuration mechanism's 0xCF8-0xCFF; only the
 * single byte port is registered, so the PCI host bridge can later take the
 * dword ports 0xCF8 and 0xCFC-0xCFF around it.
 */
#ifndef KEEL_HW_RESET_CTL_H
#define KEEL_HW_RESET_CTL_H

#include "keel/bus.h"
#include "keel/device.h"
#include "keel/vm_events.h"

#define RESET_CTL_PORT_A 0x92
#define RESET_CTL_CF9 0xcf9

struct reset_ctl;

/* Registers both ports. NULL on failure (errno set). */
struct reset_ctl *reset_ctl_create(struct bus *pio, struct vm_events *events);
/* Power-on values (on guest reset). */
void reset_ctl_reset(struct reset_ctl *rc);
/* NULL is fine. */
void reset_ctl_destroy(struct reset_ctl *rc);

/* Saved state (section version 1) and statistics; dev is a struct reset_ctl. */
extern const struct device_ops reset_ctl_device_ops;

#endif
