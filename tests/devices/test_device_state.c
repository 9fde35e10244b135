// SPDX-License-Identifier: Apache-2.0
/*
 * Save and load of every platform device (include/keel/device.h): a device
 * driven into a state by a guest driver, saved, and loaded into a fresh
 * instance on another bus must behave the same from then on, with its
 * interrupt line driven to match; damaged or foreign sections are refused
 * with a message and leave the device as it was.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "hw/acpi_pm.h"
#include "hw/cmos_rtc.h"
#include "hw/i8042.h"
#include "hw/reset_ctl.h"
#include "hw/uart_16550.h"
#include "ktest.h"

static struct state_reader reader;

/* Saves dev under name and finds the section again in a reader. */
static struct state_section save_one(const struct device_ops *ops, void *dev, struct state_writer *w)
{
	struct state_section s = { .len = 0 };
	char err[128];

	state_writer_init(w);
	KCHECK_EQ(ops->save(dev, "dev", w), 0);
	KCHECK(state_reader_init(&reader, w->buf, w->len, err, sizeof(err)) == 0);
	KCHECK(state_find(&reader, "dev", &s) == 0);
	KCHECK_EQ(s.version, ops->state_version);
	return s;
}

static void check_refusals(const struct device_ops *ops, void *dev, const struct state_writer *w)
{
	struct state_section s;
	char err[128];

	/* A version from the future. */
	KASSERT(state_reader_init(&reader, w->buf, w->len, err, sizeof(err)) == 0);
	KASSERT(state_find(&reader, "dev", &s) == 0);
	s.version = ops->state_version + 1;
	KCHECK_EQ(ops->load(dev, &s, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "state version") != NULL);
	/* One byte short, and one byte too many. */
	KASSERT(state_find(&reader, "dev", &s) == 0);
	s.len--;
	KCHECK(ops->load(dev, &s, err, sizeof(err)) < 0);
	KASSERT(state_find(&reader, "dev", &s) == 0);
	s.len++;
	s.pos = 0;
	{
		uint8_t longer[4096];

		KASSERT(s.len + 1 <= sizeof(longer));
		memcpy(longer, s.data, s.len);
		longer[s.len] = 0;
		s.data = longer;
		s.len++;
		KCHECK_EQ(ops->load(dev, &s, err, sizeof(err)), -EBADMSG);
		KCHECK(strstr(err, "wrong length") != NULL);
	}
}

KTEST(uart_state_moves_with_fifo_and_interrupt)
{
	struct harness a, b;
	struct uart_16550 *ua, *ub;
	struct state_writer w;
	struct state_section s;
	char err[128];

	harness_init(&a);
	harness_init(&b);
	ua = uart_16550_create(&a.pio, UART_COM1_PORT, harness_line(&a, 4), NULL, NULL);
	ub = uart_16550_create(&b.pio, UART_COM1_PORT, harness_line(&b, 4), NULL, NULL);
	KASSERT(ua && ub);
	outb(&a, 0x3fb, 0x83);       /* DLAB */
	outb(&a, 0x3f8, 0x01);       /* 115200 */
	outb(&a, 0x3fb, 0x03);       /* 8N1 */
	outb(&a, 0x3fa, 0xc7);       /* FIFO on, trigger 14 */
	outb(&a, 0x3fc, 0x0b);       /* DTR RTS OUT2 */
	outb(&a, 0x3f9, 0x01);       /* RDI */
	outb(&a, 0x3ff, 0x5a);       /* scratch */
	KCHECK_EQ(uart_16550_rx(ua, (const uint8_t *)"hello", 5), 5);
	KCHECK(a.irqs.level[4]);

	s = save_one(&uart_16550_device_ops, ua, &w);
	KCHECK_EQ(uart_16550_device_ops.load(ub, &s, err, sizeof(err)), 0);
	KCHECK(b.irqs.level[4]);     /* the line follows the loaded state */
	KCHECK_EQ(inb(&b, 0x3ff), 0x5a);
	KCHECK_EQ(inb(&b, 0x3fb), 0x03);
	KCHECK_EQ(inb(&b, 0x3fa) & 0xcf, 0xcc); /* FIFOs on, character timeout pending */
	for (const char *p = "hello"; *p; p++) {
		KCHECK_EQ(inb(&b, 0x3fd) & 1, 1);
		KCHECK_EQ(inb(&b, 0x3f8), (uint8_t)*p);
	}
	KCHECK_EQ(inb(&b, 0x3fd) & 1, 0);
	KCHECK(!b.irqs.level[4]);
	check_refusals(&uart_16550_device_ops, ub, &w);
	KCHECK_EQ(inb(&b, 0x3ff), 0x5a); /* refused loads changed nothing */
	state_writer_free(&w);
	uart_16550_destroy(ua);
	uart_16550_destroy(ub);
	harness_fini(&a);
	harness_fini(&b);
}

KTEST(rtc_state_keeps_cmos_ram_and_the_guest_clock_offset)
{
	struct harness a, b;
	struct cmos_rtc *ra, *rb;
	struct state_writer w;
	struct state_section s;
	char err[128];

	harness_init(&a);
	harness_init(&b);
	ra = cmos_rtc_create(&a.pio, harness_line(&a, 8), NULL);
	rb = cmos_rtc_create(&b.pio, harness_line(&b, 8), NULL);
	KASSERT(ra && rb);
	outb(&a, 0x70, 0x40);
	outb(&a, 0x71, 0x77);        /* a CMOS RAM byte */
	outb(&a, 0x70, 0x0b);
	outb(&a, 0x71, 0x82);        /* SET, 24h, BCD */
	outb(&a, 0x70, 0x09);
	outb(&a, 0x71, 0x50);        /* year 2050 */
	outb(&a, 0x70, 0x0b);
	outb(&a, 0x71, 0x02);        /* run */

	s = save_one(&cmos_rtc_device_ops, ra, &w);
	KCHECK_EQ(cmos_rtc_device_ops.load(rb, &s, err, sizeof(err)), 0);
	outb(&b, 0x70, 0x40);
	KCHECK_EQ(inb(&b, 0x71), 0x77);
	outb(&b, 0x70, 0x09);
	KCHECK_EQ(inb(&b, 0x71), 0x50); /* the guest's clock offset came along */
	outb(&b, 0x70, 0x0b);
	KCHECK_EQ(inb(&b, 0x71), 0x02);
	check_refusals(&cmos_rtc_device_ops, rb, &w);
	state_writer_free(&w);
	cmos_rtc_destroy(ra);
	cmos_rtc_destroy(rb);
	harness_fini(&a);
	harness_fini(&b);
}

KTEST(i8042_state_keeps_command_byte_and_queue)
{
	struct harness a, b;
	struct i8042 *ka, *kb;
	struct state_writer w;
	struct state_section s;
	char err[128];

	harness_init(&a);
	harness_init(&b);
	ka = i8042_create(&a.pio, harness_line(&a, 1), harness_line(&a, 12), &a.events.ev);
	kb = i8042_create(&b.pio, harness_line(&b, 1), harness_line(&b, 12), &b.events.ev);
	KASSERT(ka && kb);
	outb(&a, 0x64, 0x60);
	outb(&a, 0x60, 0x45);        /* command byte: KBDINT, SYS, XLAT */
	outb(&a, 0x64, 0xaa);        /* self-test: 0x55 queued */
	KCHECK(a.irqs.level[1]);

	s = save_one(&i8042_device_ops, ka, &w);
	KCHECK_EQ(i8042_device_ops.load(kb, &s, err, sizeof(err)), 0);
	KCHECK(b.irqs.level[1]);
	KCHECK_EQ(inb(&b, 0x64) & 1, 1);
	KCHECK_EQ(inb(&b, 0x60), 0x55);
	KCHECK(!b.irqs.level[1]);
	outb(&b, 0x64, 0x20);
	KCHECK_EQ(inb(&b, 0x60), 0x45);
	check_refusals(&i8042_device_ops, kb, &w);
	state_writer_free(&w);
	i8042_destroy(ka);
	i8042_destroy(kb);
	harness_fini(&a);
	harness_fini(&b);
}

KTEST(reset_control_state_keeps_port_a_and_cf9)
{
	struct harness a, b;
	struct reset_ctl *ca, *cb;
	struct state_writer w;
	struct state_section s;
	char err[128];

	harness_init(&a);
	harness_init(&b);
	ca = reset_ctl_create(&a.pio, &a.events.ev);
	cb = reset_ctl_create(&b.pio, &b.events.ev);
	KASSERT(ca && cb);
	outb(&a, 0x92, 0x00);        /* A20 off */
	outb(&a, 0xcf9, 0x02);       /* SYS_RST without RST_CPU: no reset */
	s = save_one(&reset_ctl_device_ops, ca, &w);
	KCHECK_EQ(reset_ctl_device_ops.load(cb, &s, err, sizeof(err)), 0);
	KCHECK_EQ(inb(&b, 0x92), 0x00);
	KCHECK_EQ(inb(&b, 0xcf9), 0x02);
	KCHECK_EQ(b.events.requests, 0);
	check_refusals(&reset_ctl_device_ops, cb, &w);
	state_writer_free(&w);
	reset_ctl_destroy(ca);
	reset_ctl_destroy(cb);
	harness_fini(&a);
	harness_fini(&b);
}

KTEST(acpi_pm_state_keeps_events_and_the_timer_count)
{
	struct harness a, b;
	struct acpi_pm *pa, *pb;
	struct state_writer w;
	struct state_section s;
	uint32_t t_saved, t_loaded;
	char err[128];

	harness_init(&a);
	harness_init(&b);
	pa = acpi_pm_create(&a.pio, harness_line(&a, 9), &a.events.ev);
	pb = acpi_pm_create(&b.pio, harness_line(&b, 9), &b.events.ev);
	KASSERT(pa && pb);
	outw(&a, ACPI_PM1_EVT_PORT + 2, 0x0100); /* PWRBTN_EN */
	acpi_pm_power_button(pa);
	KCHECK(a.irqs.level[9]);
	/* Paused, the timer stands still; the saved count is where it stood. */
	acpi_pm_device_ops.pause(pa);
	t_saved = inl(&a, ACPI_PM_TMR_PORT);
	KCHECK_EQ(inl(&a, ACPI_PM_TMR_PORT), t_saved);
	s = save_one(&acpi_pm_device_ops, pa, &w);
	KCHECK_EQ(acpi_pm_device_ops.load(pb, &s, err, sizeof(err)), 0);
	t_loaded = inl(&b, ACPI_PM_TMR_PORT);
	KCHECK(t_loaded - t_saved < ACPI_PM_TMR_HZ); /* it continues from there */
	KCHECK(b.irqs.level[9]);
	KCHECK_EQ(inw(&b, ACPI_PM1_EVT_PORT) & 0x0100, 0x0100);
	KCHECK_EQ(inw(&b, ACPI_PM1_EVT_PORT + 2), 0x0100);
	acpi_pm_device_ops.resume(pa);
	check_refusals(&acpi_pm_device_ops, pb, &w);
	state_writer_free(&w);
	acpi_pm_destroy(pa);
	acpi_pm_destroy(pb);
	harness_fini(&a);
	harness_fini(&b);
}

int main(void)
{
	return ktest_run_all();
}
