// SPDX-License-Identifier: Apache-2.0
/*
 * ACPI fixed hardware as ACPICA drives it: 16-bit PM1 accesses, sleep
 * type then SLP_EN for S5, write-1-to-clear status, the SCI level, the
 * reset register and the PM timer.
 */
#include <string.h>
#include <time.h>

#include "harness.h"
#include "hw/acpi_pm.h"
#include "ktest.h"

#define STS ACPI_PM1_EVT_PORT
#define EN (ACPI_PM1_EVT_PORT + 2)
#define CNT ACPI_PM1_CNT_PORT
#define SCI ACPI_SCI_IRQ
#define PWRBTN 0x0100
#define SLP_EN 0x2000

struct rig {
	struct harness h;
	struct acpi_pm *pm;
};

static bool rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	harness_init(&r->h);
	r->pm = acpi_pm_create(&r->h.pio, harness_line(&r->h, SCI), &r->h.events.ev);
	return r->pm != NULL;
}

static void rig_fini(struct rig *r)
{
	acpi_pm_destroy(r->pm);
	harness_fini(&r->h);
}

/* acpi_hw_legacy_sleep(): SLP_TYP first, then SLP_TYP | SLP_EN. */
static void enter_sleep(struct rig *r, unsigned typ)
{
	uint16_t cnt = inw(&r->h, CNT) & ~(0x1c00 | SLP_EN);

	cnt |= (uint16_t)(typ << 10);
	outw(&r->h, CNT, cnt);
	outw(&r->h, CNT, cnt | SLP_EN);
}

KTEST(acpi_pm_s5_powers_off)
{
	struct rig r;

	KASSERT(rig_init(&r));
	KCHECK_EQ(inw(&r.h, CNT) & 1, 1); /* SCI_EN: already in ACPI mode */
	outw(&r.h, CNT, 5 << 10);
	KCHECK_EQ(r.h.events.requests, 0);
	KCHECK_EQ(inw(&r.h, CNT), (5 << 10) | 1); /* SLP_EN never reads back */
	enter_sleep(&r, ACPI_S5_SLP_TYP);
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_POWEROFF);
	rig_fini(&r);
}

KTEST(acpi_pm_other_sleep_types_do_not_power_off)
{
	struct rig r;

	KASSERT(rig_init(&r));
	for (unsigned typ = 0; typ < 8; typ++)
		if (typ != ACPI_S5_SLP_TYP)
			enter_sleep(&r, typ);
	KCHECK_EQ(r.h.events.requests, 0);
	/* A byte write of the high half alone works too (ACPI allows it). */
	outb(&r.h, CNT + 1, (5 << 2) | 0x20);
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_POWEROFF);
	rig_fini(&r);
}

KTEST(acpi_pm_sci_en_cannot_be_cleared)
{
	struct rig r;

	KASSERT(rig_init(&r));
	outw(&r.h, CNT, 0);
	KCHECK_EQ(inw(&r.h, CNT) & 1, 1);
	rig_fini(&r);
}

KTEST(acpi_pm_power_button_status_is_write_1_to_clear)
{
	struct rig r;

	KASSERT(rig_init(&r));
	KCHECK_EQ(inw(&r.h, STS), 0);
	acpi_pm_power_button(r.pm);
	KCHECK_EQ(inw(&r.h, STS), PWRBTN);
	KCHECK(!r.h.irqs.level[SCI]); /* not enabled: no SCI */
	outw(&r.h, STS, 0);
	outw(&r.h, STS, 0x00ff);
	KCHECK_EQ(inw(&r.h, STS), PWRBTN); /* zeros and other bits leave it */
	outw(&r.h, STS, PWRBTN);
	KCHECK_EQ(inw(&r.h, STS), 0);
	rig_fini(&r);
}

KTEST(acpi_pm_sci_level_follows_enabled_status)
{
	struct rig r;

	KASSERT(rig_init(&r));
	acpi_pm_power_button(r.pm);
	KCHECK(!r.h.irqs.level[SCI]);
	outw(&r.h, EN, PWRBTN); /* enabling a pending event raises the SCI */
	KCHECK(r.h.irqs.level[SCI]);
	KCHECK_EQ(inw(&r.h, EN), PWRBTN);
	outw(&r.h, STS, PWRBTN);
	KCHECK(!r.h.irqs.level[SCI]);
	acpi_pm_power_button(r.pm);
	KCHECK(r.h.irqs.level[SCI]);
	outw(&r.h, EN, 0);
	KCHECK(!r.h.irqs.level[SCI]);
	/* The global-lock enable sticks (ACPICA checks), undefined bits do not. */
	outw(&r.h, EN, 0xffff);
	KCHECK_EQ(inw(&r.h, EN), 0x4721);
	/* A 32-bit access covers status and enable at once. */
	outl(&r.h, STS, 0xffffffff);
	KCHECK_EQ(inl(&r.h, STS), 0xffffu << 16 & 0x47210000u);
	acpi_pm_reset(r.pm);
	KCHECK_EQ(inl(&r.h, STS), 0);
	rig_fini(&r);
}

KTEST(acpi_pm_reset_register)
{
	struct rig r;

	KASSERT(rig_init(&r));
	outb(&r.h, ACPI_RESET_PORT, 0x02);
	outb(&r.h, ACPI_RESET_PORT, 0x00);
	KCHECK_EQ(r.h.events.requests, 0);
	KCHECK_EQ(inb(&r.h, ACPI_RESET_PORT), 0);
	outb(&r.h, ACPI_RESET_PORT, ACPI_RESET_VALUE);
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_RESET);
	rig_fini(&r);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The timer's count over a sleep lies between what the inner and outer host intervals allow. */
KTEST(acpi_pm_timer_counts_at_3_58_mhz)
{
	struct rig r;
	uint64_t a0, a1, b0, b1;
	uint32_t t0, t1;
	double lo, hi, d;

	KASSERT(rig_init(&r));
	a0 = mono_ns();
	t0 = inl(&r.h, ACPI_PM_TMR_PORT);
	a1 = mono_ns();
	nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	b0 = mono_ns();
	t1 = inl(&r.h, ACPI_PM_TMR_PORT);
	b1 = mono_ns();
	d = (double)(uint32_t)(t1 - t0);
	lo = (double)(b0 - a1) * ACPI_PM_TMR_HZ / 1e9 - 2;
	hi = (double)(b1 - a0) * ACPI_PM_TMR_HZ / 1e9 + 2;
	KCHECK(d >= lo);
	KCHECK(d <= hi);
	/* Read-only: writes do not move it backwards. */
	outl(&r.h, ACPI_PM_TMR_PORT, 0);
	KCHECK((uint32_t)(inl(&r.h, ACPI_PM_TMR_PORT) - t1) < 0x80000000u);
	rig_fini(&r);
}

int main(void)
{
	return ktest_run_all();
}
