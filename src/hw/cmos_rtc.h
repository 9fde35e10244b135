/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PC's CMOS real-time clock (MC146818) on ports 0x70/0x71: the host's
 * wall-clock time in BCD or binary, 12/24-hour mode, the update-in-progress
 * flag, a century register (named in the FADT), and the rest of the 128
 * bytes of CMOS RAM. A guest setting the clock moves an offset, never the
 * host's clock.
 *
 * Interrupts (IRQ 8: periodic, alarm, update-ended) are raised from a timer
 * on `loop`; with loop NULL the flags in register C are still kept for a
 * polling guest, but nothing raises the line on its own.
 *
 * Threading: register accesses come from vCPU threads, the timer runs on
 * the loop's thread; the device locks itself. Destroy it from the loop's
 * thread (or with the loop not running) once vCPUs are stopped.
 */
#ifndef KEEL_HW_CMOS_RTC_H
#define KEEL_HW_CMOS_RTC_H

#include <stdint.h>

#include "keel/bus.h"
#include "keel/device.h"
#include "keel/event_loop.h"
#include "keel/irq.h"

#define CMOS_RTC_PORT 0x70
#define CMOS_RTC_IRQ 8
#define CMOS_CENTURY_REG 0x32

struct cmos_rtc;

/* Registers ports 0x70-0x71 on pio. NULL on failure (errno set). */
struct cmos_rtc *cmos_rtc_create(struct bus *pio, struct irq_line irq, struct event_loop *loop);
/*
 * What the chip's RESET pin does on a guest reboot: interrupt enables and
 * flags cleared. Time, the guest's offset and CMOS RAM survive (as on a PC).
 */
void cmos_rtc_reset(struct cmos_rtc *rtc);
/* NULL is fine. */
void cmos_rtc_destroy(struct cmos_rtc *rtc);

/* Saved state (section version 1) and statistics; dev is a struct cmos_rtc. */
extern const struct device_ops cmos_rtc_device_ops;

#endif
