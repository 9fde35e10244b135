// SPDX-License-Identifier: Apache-2.0
/*
 * ACPI fixed hardware (ACPI 6.x, section 4.8 "Fixed Hardware Registers"),
 * laid out in one port block:
 *
 *   +0x0  PM1a_STS  16 bit, write 1 to clear
 *   +0x2  PM1a_EN   16 bit
 *   +0x4  PM1a_CNT  16 bit: SCI_EN reads 1 (there is no SMI_CMD, the
 *                   machine is always in ACPI mode), SLP_TYP + SLP_EN
 *   +0x8  RESET_REG  8 bit: ACPI_RESET_VALUE resets
 *   +0xc  PM_TMR    32 bit, 3.579545 MHz (FADT TMR_VAL_EXT)
 *
 * Accesses of any width are split into bytes of this register file, as the
 * ACPI register-access rules allow, except that the timer is sampled once
 * per access so a 32-bit read is consistent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/acpi_pm.h"
#include "keel/log.h"

#define OFF_STS 0x0
#define OFF_EN 0x2
#define OFF_CNT 0x4
#define OFF_RESET 0x8
#define OFF_TMR 0xc

#define TMR_STS 0x0001
#define BM_STS 0x0010
#define GBL_STS 0x0020
#define PWRBTN_STS 0x0100
#define SLPBTN_STS 0x0200
#define RTC_STS 0x0400
#define PCIEXP_WAKE_STS 0x4000
#define WAK_STS 0x8000
#define STS_MASK (TMR_STS | BM_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS | \
		  PCIEXP_WAKE_STS | WAK_STS)

/* PM1_EN bits sit at the same positions as their status bits. */
#define PCIEXP_WAKE_DIS 0x4000
#define EN_MASK (TMR_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS | PCIEXP_WAKE_DIS)
#define SCI_SOURCES (TMR_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS)

#define CNT_SCI_EN 0x0001
#define CNT_BM_RLD 0x0002
#define CNT_GBL_RLS 0x0004 /* write-only: would signal firmware, which we lack */
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP 0x1c00
#define CNT_SLP_EN 0x2000 /* write-only */
#define CNT_KEPT (CNT_BM_RLD | CNT_SLP_TYP)

struct acpi_pm {
	pthread_mutex_t lock;
	struct bus *pio;
	struct irq_line sci;
	struct vm_events *events;
	uint16_t sts, en, cnt;
	bool sci_level;
	uint64_t tmr_base_ns;
	/* While the VM is paused the PM timer stands still at this many ns. */
	bool paused;
	uint64_t paused_elapsed_ns;
	uint64_t power_button_presses, sci_raised; /* statistics */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Guest time the timer has counted. It stops while the VM is paused, as
 * kvmclock does: a guest that compares the two (Linux's clocksource
 * watchdog) must not see them drift apart over a pause.
 */
static uint64_t elapsed_ns(const struct acpi_pm *pm)
{
	return pm->paused ? pm->paused_elapsed_ns : mono_ns() - pm->tmr_base_ns;
}

static uint32_t timer_value(const struct acpi_pm *pm)
{
	uint64_t ns = elapsed_ns(pm);

	/* Split so the product cannot overflow however long the VM runs. */
	return (uint32_t)((ns / 1000000000ull) * ACPI_PM_TMR_HZ +
			  (ns % 1000000000ull) * ACPI_PM_TMR_HZ / 1000000000ull);
}

static void update_sci(struct acpi_pm *pm)
{
	bool level = pm->sts & pm->en & SCI_SOURCES;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		pm->sci_raised += level;
		irq_line_set(&pm->sci, level);
	}
}

static uint8_t byte_of(uint32_t v, unsigned i)
{
	return (uint8_t)(v >> (8 * i));
}

static uint8_t reg_read(struct acpi_pm *pm, unsigned off, uint32_t tmr)
{
	switch (off) {
	case OFF_STS:
	case OFF_STS + 1:
		return byte_of(pm->sts, off - OFF_STS);
	case OFF_EN:
	case OFF_EN + 1:
		return byte_of(pm->en, off - OFF_EN);
	case OFF_CNT:
	case OFF_CNT + 1:
		return byte_of(pm->cnt | CNT_SCI_EN, off - OFF_CNT);
	case OFF_TMR:
	case OFF_TMR + 1:
	case OFF_TMR + 2:
	case OFF_TMR + 3:
		return byte_of(tmr, off - OFF_TMR);
	default:
		return 0; /* the reset register and reserved bytes read as 0 */
	}
}

static void sleep_request(struct acpi_pm *pm, unsigned slp_typ)
{
	if (slp_typ == ACPI_S5_SLP_TYP) {
		vm_request_stop(pm->events, VM_STOP_POWEROFF);
		return;
	}
	/* Only \_S5 is declared in the DSDT; anything else is a confused guest. */
	log_guest("ACPI: sleep type %u requested; only S5 (soft off) is supported", slp_typ);
}

static void reg_write(struct acpi_pm *pm, unsigned off, uint8_t v)
{
	unsigned shift = 8 * (off & 1);
	uint16_t mask = (uint16_t)(0xff << shift), val = (uint16_t)(v << shift);

	switch (off) {
	case OFF_STS:
	case OFF_STS + 1:
		pm->sts &= ~(val & STS_MASK);
		break;
	case OFF_EN:
	case OFF_EN + 1:
		pm->en = (uint16_t)((pm->en & ~mask) | (val & EN_MASK));
		break;
	case OFF_CNT:
	case OFF_CNT + 1:
		pm->cnt = (uint16_t)((pm->cnt & ~mask) | (val & CNT_KEPT));
		if (val & CNT_SLP_EN)
			sleep_request(pm, (pm->cnt & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT);
		break;
	case OFF_RESET:
		if (v == ACPI_RESET_VALUE)
			vm_request_stop(pm->events, VM_STOP_RESET);
		break;
	default:
		break; /* the timer and reserved bytes are read-only */
	}
}

static void pm_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint8_t *out = data;
	uint32_t tmr;

	pthread_mutex_lock(&pm->lock);
	tmr = timer_value(pm);
	for (unsigned i = 0; i < size; i++)
		out[i] = reg_read(pm, (unsigned)offset + i, tmr);
	pthread_mutex_unlock(&pm->lock);
}

static void pm_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *in = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size; i++)
		reg_write(pm, (unsigned)offset + i, in[i]);
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static const struct bus_ops pm_ops = { .read = pm_read, .write = pm_write };

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->power_button_presses++;
	pm->sts |= PWRBTN_STS;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_reset(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts = 0;
	pm->en = 0;
	pm->cnt = 0;
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

struct acpi_pm *acpi_pm_create(struct bus *pio, struct irq_line sci, struct vm_events *events)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int r;

	if (!pm)
		return NULL;
	pthread_mutex_init(&pm->lock, NULL);
	pm->pio = pio;
	pm->sci = sci;
	pm->events = events;
	pm->tmr_base_ns = mono_ns();
	irq_line_set(&pm->sci, false);
	r = bus_register(pio, ACPI_PM_BASE, ACPI_PM_LEN, &pm_ops, pm, "acpi-pm");
	if (r < 0) {
		log_error("ACPI PM: cannot register ports %#x-%#x: %s", ACPI_PM_BASE,
			  ACPI_PM_BASE + ACPI_PM_LEN - 1, strerror(-r));
		pthread_mutex_destroy(&pm->lock);
		free(pm);
		errno = -r;
		return NULL;
	}
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	bus_unregister(pm->pio, ACPI_PM_BASE);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static void acpi_pm_pause(void *dev)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	if (!pm->paused) {
		pm->paused_elapsed_ns = elapsed_ns(pm);
		pm->paused = true;
	}
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_resume(void *dev)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	if (pm->paused) {
		pm->tmr_base_ns = mono_ns() - pm->paused_elapsed_ns;
		pm->paused = false;
	}
	pthread_mutex_unlock(&pm->lock);
}

/* Version 1: PM1 status, enable and control, and the PM timer's count in ns. */
static int acpi_pm_save(void *dev, const char *name, struct state_writer *w)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	state_begin(w, name, 1);
	state_put_u16(w, pm->sts);
	state_put_u16(w, pm->en);
	state_put_u16(w, pm->cnt);
	state_put_u64(w, elapsed_ns(pm));
	state_end(w);
	pthread_mutex_unlock(&pm->lock);
	return state_writer_error(w);
}

static int acpi_pm_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	struct acpi_pm *pm = dev;
	uint16_t sts, en, cnt;
	uint64_t elapsed;

	if (state_check_version(s, 1, 1, err, errlen))
		return -EINVAL;
	sts = state_get_u16(s);
	en = state_get_u16(s);
	cnt = state_get_u16(s);
	elapsed = state_get_u64(s);
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	pthread_mutex_lock(&pm->lock);
	pm->sts = sts & STS_MASK;
	pm->en = en & EN_MASK;
	pm->cnt = cnt & CNT_KEPT;
	pm->paused = false;
	pm->tmr_base_ns = mono_ns() - MIN(elapsed, mono_ns());
	pm->sci_level = false;
	irq_line_set(&pm->sci, false);
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

static void acpi_pm_stats(void *dev, struct stats_sink *sink)
{
	struct acpi_pm *pm = dev;
	uint64_t presses, sci;

	pthread_mutex_lock(&pm->lock);
	presses = pm->power_button_presses;
	sci = pm->sci_raised;
	pthread_mutex_unlock(&pm->lock);
	stats_counter(sink, "power_button_presses", presses);
	stats_counter(sink, "sci_raised", sci);
}

const struct device_ops acpi_pm_device_ops = {
	.type = "acpi-pm",
	.state_version = 1,
	.pause = acpi_pm_pause,
	.resume = acpi_pm_resume,
	.save = acpi_pm_save,
	.load = acpi_pm_load,
	.stats = acpi_pm_stats,
};
