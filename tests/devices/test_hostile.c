// SPDX-License-Identifier: Apache-2.0
/*
 * The guest is hostile: every platform device on one bus, hammered with
 * accesses of every width at every offset of its ports (and straddling
 * them) with garbage values. Nothing may crash (ASan/UBSan watch this
 * suite), and afterwards each device still answers like itself once reset.
 */
#include <string.h>
#include <time.h>

#include "harness.h"
#include "hw/acpi_pm.h"
#include "hw/cmos_rtc.h"
#include "hw/i8042.h"
#include "hw/reset_ctl.h"
#include "hw/uart_16550.h"
#include "ktest.h"

static void discard_tx(void *opaque, const uint8_t *buf, size_t len)
{
	*(size_t *)opaque += len;
}

static const struct uart_16550_ops discard_ops = { .tx = discard_tx };

struct platform {
	struct harness h;
	size_t tx_bytes;
	struct uart_16550 *uart;
	struct cmos_rtc *rtc;
	struct i8042 *kbc;
	struct reset_ctl *rc;
	struct acpi_pm *pm;
};

static bool platform_init(struct platform *p)
{
	memset(p, 0, sizeof(*p));
	harness_init(&p->h);
	p->uart = uart_16550_create(&p->h.pio, UART_COM1_PORT, harness_line(&p->h, UART_COM1_IRQ),
				    &discard_ops, &p->tx_bytes);
	p->rtc = cmos_rtc_create(&p->h.pio, harness_line(&p->h, CMOS_RTC_IRQ), NULL);
	p->kbc = i8042_create(&p->h.pio, harness_line(&p->h, I8042_KBD_IRQ),
			      harness_line(&p->h, I8042_AUX_IRQ), &p->h.events.ev);
	p->rc = reset_ctl_create(&p->h.pio, &p->h.events.ev);
	p->pm = acpi_pm_create(&p->h.pio, harness_line(&p->h, ACPI_SCI_IRQ), &p->h.events.ev);
	return p->uart && p->rtc && p->kbc && p->rc && p->pm;
}

static void platform_fini(struct platform *p)
{
	uart_16550_destroy(p->uart);
	cmos_rtc_destroy(p->rtc);
	i8042_destroy(p->kbc);
	reset_ctl_destroy(p->rc);
	acpi_pm_destroy(p->pm);
	harness_fini(&p->h);
}

KTEST(hostile_random_accesses_on_every_port)
{
	static const struct {
		uint16_t base, len;
	} ranges[] = {
		{ UART_COM1_PORT - 2, 12 }, { CMOS_RTC_PORT - 2, 6 },   { I8042_DATA_PORT - 1, 7 },
		{ RESET_CTL_PORT_A - 1, 3 }, { RESET_CTL_CF9 - 1, 7 }, { ACPI_PM_BASE - 2, ACPI_PM_LEN + 4 },
	};
	struct platform p;
	unsigned n = 0;

	KASSERT(platform_init(&p));
	for (unsigned i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		n += harness_fuzz_ports(&p.h, ranges[i].base, ranges[i].len, 200, 0x9e3779b9u + i);
	KCHECK(n > 10000);
	/* Reset requests were recorded, nothing else happened to the host. */
	KCHECK(p.h.events.requests > 0);
	KCHECK(p.h.events.last == VM_STOP_RESET || p.h.events.last == VM_STOP_POWEROFF);

	/* After a reset every device behaves as at power-on. */
	uart_16550_reset(p.uart);
	i8042_reset(p.kbc);
	reset_ctl_reset(p.rc);
	acpi_pm_reset(p.pm);
	cmos_rtc_reset(p.rtc);
	KCHECK_EQ(inb(&p.h, UART_COM1_PORT + 5), 0x60);
	KCHECK_EQ(inb(&p.h, UART_COM1_PORT + 2), 0x01);
	KCHECK(!p.h.irqs.level[UART_COM1_IRQ]);
	outb(&p.h, I8042_CMD_PORT, 0xaa);
	KCHECK_EQ(inb(&p.h, I8042_DATA_PORT), 0x55);
	KCHECK_EQ(inw(&p.h, ACPI_PM1_EVT_PORT), 0);
	KCHECK(!p.h.irqs.level[ACPI_SCI_IRQ]);
	outb(&p.h, 0x70, 0x0d);
	KCHECK_EQ(inb(&p.h, 0x71), 0x80);
	platform_fini(&p);
}

/* Values the guest could pick on purpose, not at random. */
KTEST(hostile_chosen_values)
{
	struct platform p;
	uint8_t rx[64];

	KASSERT(platform_init(&p));
	/* RTC: nonsense BCD and a century far in the future, committed via SET. */
	outb(&p.h, 0x70, 0x0b);
	outb(&p.h, 0x71, 0x80);
	for (uint8_t reg = 0; reg < 0x0a; reg++) {
		outb(&p.h, 0x70, reg);
		outb(&p.h, 0x71, 0xff);
	}
	outb(&p.h, 0x70, 0x32);
	outb(&p.h, 0x71, 0xff);
	outb(&p.h, 0x70, 0x0b);
	outb(&p.h, 0x71, 0x00);
	outb(&p.h, 0x70, 0x00);
	(void)inb(&p.h, 0x71);
	/* 12-hour mode with hour 0x00 and the PM bit alone. */
	outb(&p.h, 0x70, 0x0b);
	outb(&p.h, 0x71, 0x80);
	outb(&p.h, 0x70, 0x04);
	outb(&p.h, 0x71, 0x80);
	outb(&p.h, 0x70, 0x0b);
	outb(&p.h, 0x71, 0x00);
	/* Periodic rates 0..15 with the divider in every state. */
	for (unsigned a = 0; a < 0x80; a++) {
		outb(&p.h, 0x70, 0x0a);
		outb(&p.h, 0x71, (uint8_t)a);
		outb(&p.h, 0x70, 0x0c);
		(void)inb(&p.h, 0x71);
	}
	/* UART: the divisor latch left on while data arrives, FIFO toggled under it. */
	outb(&p.h, UART_COM1_PORT + 3, 0x80);
	memset(rx, 0xaa, sizeof(rx));
	KCHECK(uart_16550_rx(p.uart, rx, sizeof(rx)) <= 16);
	for (unsigned f = 0; f < 256; f++)
		outb(&p.h, UART_COM1_PORT + 2, (uint8_t)f);
	KCHECK(uart_16550_rx(p.uart, rx, sizeof(rx)) <= 16);
	/* i8042: every command byte, each followed by a data byte. */
	for (unsigned c = 0; c < 256; c++) {
		if (c >= 0xf0 || c == 0xd1)
			continue; /* the reset doors are tested on their own */
		outb(&p.h, I8042_CMD_PORT, (uint8_t)c);
		outb(&p.h, I8042_DATA_PORT, 0xff);
		while (inb(&p.h, I8042_CMD_PORT) & 1)
			(void)inb(&p.h, I8042_DATA_PORT);
	}
	KCHECK_EQ(p.h.events.requests, 0);
	platform_fini(&p);
}

int main(void)
{
	return ktest_run_all();
}
