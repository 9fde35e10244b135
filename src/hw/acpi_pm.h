/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI fixed hardware the FADT points at: the PM1a event block (status and
 * enable, with the power button), the PM1a control block (SCI_EN; writing
 * SLP_EN with the S5 sleep type powers off), and the FADT reset register.
 * Raises the SCI (a level-triggered line) while an enabled event is
 * pending. Poweroff and reset become vm_events requests. Also the 32-bit
 * ACPI PM timer (3.579545 MHz), which Linux can use as a clocksource or
 * watchdog.
 */
#ifndef KEEL_HW_ACPI_PM_H
#define KEEL_HW_ACPI_PM_H

#include <stdint.h>

#include "keel/bus.h"
#include "keel/device.h"
#include "keel/irq.h"
#include "keel/vm_events.h"

/* Port layout; the ACPI table builder takes the same numbers. */
#define ACPI_PM_BASE 0x600
#define ACPI_PM1_EVT_PORT (ACPI_PM_BASE + 0x0) /* 4 bytes: status, enable */
#define ACPI_PM1_CNT_PORT (ACPI_PM_BASE + 0x4) /* 2 bytes */
#define ACPI_RESET_PORT (ACPI_PM_BASE + 0x8)   /* 1 byte */
#define ACPI_RESET_VALUE 0x1
#define ACPI_PM_TMR_PORT (ACPI_PM_BASE + 0xc)  /* 4 bytes, read-only */
#define ACPI_PM_TMR_HZ 3579545
#define ACPI_PM_LEN 0x10
#define ACPI_SCI_IRQ 9
#define ACPI_S5_SLP_TYP 5 /* the value the DSDT's \_S5 package names */

struct acpi_pm;

/* Registers ACPI_PM_BASE..+ACPI_PM_LEN on pio. NULL on failure (errno set). */
struct acpi_pm *acpi_pm_create(struct bus *pio, struct irq_line sci, struct vm_events *events);
/* Sets PWRBTN_STS and raises the SCI if enabled (the API's power button). */
void acpi_pm_power_button(struct acpi_pm *pm);
/* Power-on state (on guest reset): status and enables clear, SCI low. */
void acpi_pm_reset(struct acpi_pm *pm);
/* NULL is fine. */
void acpi_pm_destroy(struct acpi_pm *pm);

/*
 * Saved state (section version 1), statistics, and pause/resume, which stop
 * the PM timer while the VM is paused; dev is a struct acpi_pm.
 */
extern const struct device_ops acpi_pm_device_ops;

#endif
