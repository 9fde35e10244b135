// SPDX-License-Identifier: Apache-2.0
/*
 * The 8042 through Linux's probe (drivers/input/serio/i8042.c: flush,
 * self-test, CTR read/write, AUX loopback and MUX probe, device probes that
 * find nothing) and every reset door of the PC: 8042 pulse and output port,
 * port 0x92, port 0xCF9.
 */
#include <string.h>

#include "harness.h"
#include "hw/i8042.h"
#include "hw/reset_ctl.h"
#include "ktest.h"

#define DATA I8042_DATA_PORT
#define CMD I8042_CMD_PORT
#define KBD_IRQ I8042_KBD_IRQ
#define AUX_IRQ I8042_AUX_IRQ

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_CMD 0x08
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

struct rig {
	struct harness h;
	struct i8042 *kbc;
	struct reset_ctl *rc;
};

static bool rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	harness_init(&r->h);
	r->kbc = i8042_create(&r->h.pio, harness_line(&r->h, KBD_IRQ), harness_line(&r->h, AUX_IRQ),
			      &r->h.events.ev);
	r->rc = reset_ctl_create(&r->h.pio, &r->h.events.ev);
	return r->kbc && r->rc;
}

static void rig_fini(struct rig *r)
{
	i8042_destroy(r->kbc);
	reset_ctl_destroy(r->rc);
	harness_fini(&r->h);
}

/* i8042_wait_read(): the reply must be there on the first status read. */
static bool reply(struct rig *r, uint8_t *v, uint8_t *str)
{
	uint8_t s = inb(&r->h, CMD);

	if (str)
		*str = s;
	if (!(s & STR_OBF))
		return false;
	*v = inb(&r->h, DATA);
	return true;
}

/* __i8042_command(): command, optional parameter, optional one reply. */
static bool command(struct rig *r, uint8_t cmd, int param, uint8_t *out, uint8_t *str)
{
	if (inb(&r->h, CMD) & STR_IBF)
		return false;
	outb(&r->h, CMD, cmd);
	if (param >= 0) {
		if (inb(&r->h, CMD) & STR_IBF)
			return false;
		outb(&r->h, DATA, (uint8_t)param);
	}
	return out ? reply(r, out, str) : true;
}

KTEST(i8042_linux_probe)
{
	struct rig r;
	uint8_t v = 0, ctr1 = 0, ctr2 = 0, str = 0;
	int flushed = 0;

	KASSERT(rig_init(&r));
	/* i8042_flush(): nothing queued, and the status is not 0xff (controller present). */
	while ((inb(&r.h, CMD) & STR_OBF) && flushed < 16) {
		inb(&r.h, DATA);
		flushed++;
	}
	KCHECK_EQ(flushed, 0);
	KCHECK(inb(&r.h, CMD) != 0xff);
	/* i8042_controller_selftest() */
	KCHECK(command(&r, 0xaa, -1, &v, NULL));
	KCHECK_EQ(v, 0x55);
	/* i8042_controller_init(): two equal CTR reads, then write it back. */
	KCHECK(command(&r, 0x20, -1, &ctr1, NULL));
	KCHECK(command(&r, 0x20, -1, &ctr2, NULL));
	KCHECK_EQ(ctr1, ctr2);
	KCHECK(ctr1 & 0x04); /* system flag: POST passed */
	KCHECK(command(&r, 0x60, (ctr1 | 0x10) & ~0x01, NULL, NULL));
	KCHECK(command(&r, 0x20, -1, &v, NULL));
	KCHECK_EQ(v, (ctr1 | 0x10) & ~0x01);
	/* i8042_check_aux(): loopback echoes with the AUX flag. */
	KCHECK(command(&r, 0xd3, 0x5a, &v, &str));
	KCHECK_EQ(v, 0x5a);
	KCHECK(str & STR_AUXDATA);
	/* i8042_toggle_aux() both ways, read back through the CTR. */
	KCHECK(command(&r, 0xa7, -1, NULL, NULL));
	KCHECK(command(&r, 0x20, -1, &v, NULL));
	KCHECK(v & 0x20);
	KCHECK(command(&r, 0xa8, -1, NULL, NULL));
	KCHECK(command(&r, 0x20, -1, &v, NULL));
	KCHECK_EQ(v & 0x20, 0);
	/* AUX IRQ delivery test: AUXINT on, loopback, an edge on IRQ 12. */
	KCHECK(command(&r, 0x60, v | 0x02, NULL, NULL));
	harness_take_edges(&r.h, AUX_IRQ);
	outb(&r.h, CMD, 0xd3);
	outb(&r.h, DATA, 0xa5);
	KCHECK_EQ(harness_take_edges(&r.h, AUX_IRQ), 1);
	KCHECK(reply(&r, &v, NULL));
	KCHECK_EQ(v, 0xa5);
	KCHECK(!r.h.irqs.level[AUX_IRQ]);
	/* i8042_set_mux_mode(): an echoing loop is not an active multiplexer. */
	KCHECK(command(&r, 0xd3, 0xf0, &v, NULL) && v == 0xf0);
	KCHECK(command(&r, 0xd3, 0x56, &v, NULL) && v == 0x56);
	KCHECK(command(&r, 0xd3, 0xa4, &v, NULL) && v == 0xa4);
	KCHECK_EQ(r.h.events.requests, 0);
	rig_fini(&r);
}

/* atkbd/psmouse probes: "no device" at once, with the timeout bit and an IRQ. */
KTEST(i8042_devices_absent_answer_at_once)
{
	struct rig r;
	uint8_t v = 0, str = 0;

	KASSERT(rig_init(&r));
	KCHECK(command(&r, 0x60, 0x47, NULL, NULL)); /* KBDINT AUXINT SYS XLATE */
	harness_take_edges(&r.h, KBD_IRQ);
	outb(&r.h, DATA, 0xf2); /* keyboard GET ID */
	KCHECK_EQ(harness_take_edges(&r.h, KBD_IRQ), 1);
	KCHECK(reply(&r, &v, &str));
	KCHECK_EQ(v, 0xfe);
	KCHECK_EQ(str & (STR_TIMEOUT | STR_AUXDATA), STR_TIMEOUT);
	KCHECK(!r.h.irqs.level[KBD_IRQ]);

	harness_take_edges(&r.h, AUX_IRQ);
	KCHECK(command(&r, 0xd4, 0xf2, &v, &str)); /* mouse GET ID */
	KCHECK_EQ(v, 0xfe);
	KCHECK_EQ(str & (STR_TIMEOUT | STR_AUXDATA), STR_TIMEOUT | STR_AUXDATA);
	KCHECK_EQ(harness_take_edges(&r.h, AUX_IRQ), 1);
	KCHECK_EQ(harness_take_edges(&r.h, KBD_IRQ), 0);

	/* With the interrupt bits off the lines stay low. */
	KCHECK(command(&r, 0x60, 0x44, NULL, NULL));
	outb(&r.h, DATA, 0xff);
	KCHECK(!r.h.irqs.level[KBD_IRQ]);
	KCHECK(inb(&r.h, CMD) & STR_OBF);
	rig_fini(&r);
}

KTEST(i8042_status_and_queue_limits)
{
	struct rig r;
	unsigned n = 0;

	KASSERT(rig_init(&r));
	outb(&r.h, CMD, 0xab);
	KCHECK(inb(&r.h, CMD) & STR_CMD);
	KCHECK_EQ(inb(&r.h, DATA), 0x00); /* keyboard interface test passed */
	for (int i = 0; i < 40; i++)
		outb(&r.h, CMD, 0xaa);
	while ((inb(&r.h, CMD) & STR_OBF) && n < 100) {
		KCHECK_EQ(inb(&r.h, DATA), 0x55);
		n++;
	}
	KCHECK_EQ(n, 16);
	KCHECK_EQ(inb(&r.h, DATA), 0x55); /* empty: the last byte again */
	/* A command abandons one still waiting for its data byte. */
	outb(&r.h, CMD, 0x60);
	outb(&r.h, CMD, 0x20);
	KCHECK(inb(&r.h, CMD) & STR_OBF);
	KCHECK(inb(&r.h, DATA) != 0);
	rig_fini(&r);
}

KTEST(i8042_pulse_reset)
{
	struct rig r;

	KASSERT(rig_init(&r));
	outb(&r.h, CMD, 0xff); /* pulse nothing */
	outb(&r.h, CMD, 0xf1); /* pulse bits 1-3, not reset */
	KCHECK_EQ(r.h.events.requests, 0);
	outb(&r.h, CMD, 0xfe); /* what Linux's reboot=kbd writes */
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_RESET);
	outb(&r.h, CMD, 0xf0);
	KCHECK_EQ(r.h.events.requests, 2);
	rig_fini(&r);
}

KTEST(i8042_output_port_reset)
{
	struct rig r;
	uint8_t v = 0;

	KASSERT(rig_init(&r));
	KCHECK(command(&r, 0xd0, -1, &v, NULL));
	KCHECK_EQ(v & 0x03, 0x03); /* reset inactive, A20 on */
	KCHECK(command(&r, 0xd1, 0x01, NULL, NULL));
	KCHECK(command(&r, 0xd0, -1, &v, NULL));
	KCHECK_EQ(v & 0x02, 0);
	KCHECK_EQ(r.h.events.requests, 0);
	KCHECK(command(&r, 0xd1, 0x02, NULL, NULL));
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_RESET);
	rig_fini(&r);
}

KTEST(i8042_reset_restores_firmware_state)
{
	struct rig r;
	uint8_t ctr = 0;

	KASSERT(rig_init(&r));
	KCHECK(command(&r, 0x60, 0x03, NULL, NULL));
	outb(&r.h, DATA, 0x00);
	KCHECK(r.h.irqs.level[KBD_IRQ]);
	i8042_reset(r.kbc);
	KCHECK(!r.h.irqs.level[KBD_IRQ]);
	KCHECK_EQ(inb(&r.h, CMD) & STR_OBF, 0);
	KCHECK(command(&r, 0x20, -1, &ctr, NULL));
	KCHECK_EQ(ctr, 0x65);
	rig_fini(&r);
}

KTEST(reset_port_92)
{
	struct rig r;

	KASSERT(rig_init(&r));
	KCHECK_EQ(inb(&r.h, 0x92), 0x02);
	outb(&r.h, 0x92, 0x00);
	outb(&r.h, 0x92, 0x02);
	KCHECK_EQ(r.h.events.requests, 0);
	KCHECK_EQ(inb(&r.h, 0x92), 0x02);
	outb(&r.h, 0x92, 0x03);
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_RESET);
	KCHECK_EQ(inb(&r.h, 0x92) & 0x01, 0);
	rig_fini(&r);
}

/* Linux's reboot=pci: write SYS_RST, then SYS_RST|RST_CPU. */
KTEST(reset_port_cf9)
{
	struct rig r;
	uint32_t d = 0x12345678;

	KASSERT(rig_init(&r));
	KCHECK_EQ(inb(&r.h, 0xcf9), 0);
	outb(&r.h, 0xcf9, 0x02);
	KCHECK_EQ(r.h.events.requests, 0);
	KCHECK_EQ(inb(&r.h, 0xcf9), 0x02);
	outb(&r.h, 0xcf9, 0x06);
	KCHECK_EQ(r.h.events.requests, 1);
	KCHECK_EQ(r.h.events.last, VM_STOP_RESET);
	/* PCI configuration dwords at 0xCF8/0xCFC are not ours. */
	KCHECK(!bus_write(&r.h.pio, 0xcf8, &d, 4));
	KCHECK(!bus_read(&r.h.pio, 0xcf8, &d, 4));
	KCHECK(!bus_read(&r.h.pio, 0xcfc, &d, 4));
	KCHECK_EQ(r.h.events.requests, 1);
	rig_fini(&r);
}

int main(void)
{
	return ktest_run_all();
}
