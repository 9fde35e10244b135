// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/reset_ctl.h"
#include "keel/log.h"

#define PORT_A_FAST_RESET 0x01
#define PORT_A_A20 0x02 /* gate open at power-on; kept, no effect */
#define CF9_RST_CPU 0x04
#define CF9_KEPT 0x0a /* SYS_RST, FULL_RST */

/* The bus hands a handler no address, so each port gets its own opaque. */
struct reset_port {
	struct reset_ctl *rc;
	bool is_cf9;
};

struct reset_ctl {
	pthread_mutex_t lock;
	struct bus *pio;
	struct vm_events *events;
	uint8_t port_a, cf9;
	struct reset_port ports[2];
	uint64_t resets; /* statistics */
};

static bool port_write(struct reset_ctl *rc, bool is_cf9, uint8_t v)
{
	bool edge;

	if (is_cf9) {
		rc->cf9 = v & CF9_KEPT;
		/* Soft (RST_CPU) and hard (with SYS_RST) resets both restart the VM. */
		return v & CF9_RST_CPU;
	}
	/* Port A resets on a 0->1 edge of bit 0, which then reads back as 0. */
	edge = (v & PORT_A_FAST_RESET) && !(rc->port_a & PORT_A_FAST_RESET);
	rc->port_a = v & ~PORT_A_FAST_RESET;
	return edge;
}

/* Both regions are one byte wide, so the bus only ever hands us size 1. */
static void reset_port_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct reset_port *p = opaque;

	pthread_mutex_lock(&p->rc->lock);
	*(uint8_t *)data = p->is_cf9 ? p->rc->cf9 : p->rc->port_a;
	pthread_mutex_unlock(&p->rc->lock);
}

static void reset_port_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct reset_port *p = opaque;

	pthread_mutex_lock(&p->rc->lock);
	if (port_write(p->rc, p->is_cf9, *(const uint8_t *)data)) {
		p->rc->resets++;
		vm_request_stop(p->rc->events, VM_STOP_RESET);
	}
	pthread_mutex_unlock(&p->rc->lock);
}

static const struct bus_ops reset_port_ops = { .read = reset_port_read, .write = reset_port_write };

struct reset_ctl *reset_ctl_create(struct bus *pio, struct vm_events *events)
{
	struct reset_ctl *rc = calloc(1, sizeof(*rc));
	int r;

	if (!rc)
		return NULL;
	pthread_mutex_init(&rc->lock, NULL);
	rc->pio = pio;
	rc->events = events;
	rc->port_a = PORT_A_A20;
	rc->ports[0] = (struct reset_port){ .rc = rc, .is_cf9 = false };
	rc->ports[1] = (struct reset_port){ .rc = rc, .is_cf9 = true };
	r = bus_register(pio, RESET_CTL_PORT_A, 1, &reset_port_ops, &rc->ports[0], "port-a");
	if (r == 0) {
		r = bus_register(pio, RESET_CTL_CF9, 1, &reset_port_ops, &rc->ports[1], "reset-cf9");
		if (r < 0)
			bus_unregister(pio, RESET_CTL_PORT_A);
	}
	if (r < 0) {
		log_error("reset control: cannot register ports %#x/%#x: %s", RESET_CTL_PORT_A,
			  RESET_CTL_CF9, strerror(-r));
		pthread_mutex_destroy(&rc->lock);
		free(rc);
		errno = -r;
		return NULL;
	}
	return rc;
}

void reset_ctl_reset(struct reset_ctl *rc)
{
	pthread_mutex_lock(&rc->lock);
	rc->port_a = PORT_A_A20;
	rc->cf9 = 0;
	pthread_mutex_unlock(&rc->lock);
}

void reset_ctl_destroy(struct reset_ctl *rc)
{
	if (!rc)
		return;
	bus_unregister(rc->pio, RESET_CTL_PORT_A);
	bus_unregister(rc->pio, RESET_CTL_CF9);
	pthread_mutex_destroy(&rc->lock);
	free(rc);
}

/* Version 1: port A (A20) and the kept bits of 0xcf9. */
static int reset_ctl_save(void *dev, const char *name, struct state_writer *w)
{
	struct reset_ctl *rc = dev;

	pthread_mutex_lock(&rc->lock);
	state_begin(w, name, 1);
	state_put_u8(w, rc->port_a);
	state_put_u8(w, rc->cf9);
	state_end(w);
	pthread_mutex_unlock(&rc->lock);
	return state_writer_error(w);
}

static int reset_ctl_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	struct reset_ctl *rc = dev;
	uint8_t port_a, cf9;

	if (state_check_version(s, 1, 1, err, errlen))
		return -EINVAL;
	port_a = state_get_u8(s);
	cf9 = state_get_u8(s);
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	pthread_mutex_lock(&rc->lock);
	rc->port_a = port_a & ~PORT_A_FAST_RESET;
	rc->cf9 = cf9 & CF9_KEPT;
	pthread_mutex_unlock(&rc->lock);
	return 0;
}

static void reset_ctl_stats(void *dev, struct stats_sink *sink)
{
	struct reset_ctl *rc = dev;
	uint64_t n;

	pthread_mutex_lock(&rc->lock);
	n = rc->resets;
	pthread_mutex_unlock(&rc->lock);
	stats_counter(sink, "resets", n);
}

const struct device_ops reset_ctl_device_ops = {
	.type = "reset-control",
	.state_version = 1,
	.save = reset_ctl_save,
	.load = reset_ctl_load,
	.stats = reset_ctl_stats,
};
