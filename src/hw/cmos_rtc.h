/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PC's CMOS real-time clock (MC146818) on ports 0x70/0x71: the host's
 * wall-clock time in BCD or binary, 12/24-hour mode, the update-in-progress
 * flag, a century register (named in the FADT), and the rest of the 128
 * bytes of CMOS RAM. A guest setting the clock moves an offset, never the
 * host's clock.
 */
#ifndef KEEL_HW_CMOS_RTC_H
#define KEEL_HW_CMOS_RTC_H

#include <stdint.h>

#include "keel/bus.h"
#include "keel/irq.h"

#define CMOS_RTC_PORT 0x70
#define CMOS_RTC_IRQ 8
#define CMOS_CENTURY_REG 0x32

struct cmos_rtc;

struct cmos_rtc *cmos_rtc_create(struct bus *pio, struct irq_line irq);
void cmos_rtc_destroy(struct cmos_rtc *rtc);

#endif
