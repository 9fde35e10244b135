// SPDX-License-Identifier: Apache-2.0
/*
 * An 8042 keyboard controller with both PS/2 ports and nothing plugged in.
 *
 * Linux's i8042 driver must finish its probe quickly: every controller
 * command it uses answers at once (self-test 0x55, interface tests 0x00,
 * command byte read/write, AUX loopback 0xD3 echoing with the AUX flag so
 * the MUX probe sees a plain port). A byte sent to a device on either port
 * is answered the way a PS/2 controller answers when no device clocks it
 * in: 0xFE with the timeout bit, which atkbd/psmouse take as a NAK and give
 * up without waiting out their timeouts.
 *
 * Reset: command 0xFE (or any 0xF0-0xFF pulse with bit 0 clear), and an
 * output-port write (0xD1) with bit 0 clear, pull the CPU reset line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hw/i8042.h"
#include "keel/log.h"

#define STS_OBF 0x01
#define STS_IBF 0x02
#define STS_SYS 0x04
#define STS_CMD 0x08     /* last write went to the command port */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */
#define STS_AUXDATA 0x20
#define STS_TIMEOUT 0x40

#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
/* What firmware leaves: translated keyboard with interrupts, AUX off, POST passed. */
#define CTR_POWER_ON (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

#define OUT_RESET_N 0x01 /* CPU reset line, active low */
#define OUT_A20 0x02
#define OUT_POWER_ON (OUT_RESET_N | OUT_A20)

#define REPLY_NO_DEVICE 0xfe
#define QUEUE_LEN 16

enum {
	CMD_READ_RAM = 0x20,    /* 0x20-0x3f; 0x20 is the command byte */
	CMD_WRITE_RAM = 0x60,   /* 0x60-0x7f */
	CMD_AUX_DISABLE = 0xa7,
	CMD_AUX_ENABLE = 0xa8,
	CMD_AUX_TEST = 0xa9,
	CMD_SELF_TEST = 0xaa,
	CMD_KBD_TEST = 0xab,
	CMD_KBD_DISABLE = 0xad,
	CMD_KBD_ENABLE = 0xae,
	CMD_READ_INPUT = 0xc0,
	CMD_READ_OUTPUT = 0xd0,
	CMD_WRITE_OUTPUT = 0xd1,
	CMD_WRITE_KBD_OBUF = 0xd2,
	CMD_WRITE_AUX_OBUF = 0xd3,
	CMD_WRITE_AUX = 0xd4,
	CMD_A20_OFF = 0xdd,
	CMD_A20_ON = 0xdf,
	CMD_PULSE = 0xf0, /* 0xf0-0xff: pulse output bits 3:0 that are 0 */
};

struct obyte {
	uint8_t data;
	uint8_t status; /* STS_AUXDATA / STS_TIMEOUT that come with it */
};

struct i8042 {
	pthread_mutex_t lock;
	struct bus *pio;
	struct irq_line kbd_irq, aux_irq;
	struct vm_events *events;

	uint8_t ram[32]; /* ram[0] is the command byte (CTR) */
	uint8_t outport;
	uint8_t pending; /* command waiting for its data byte, 0 if none */
	bool last_was_cmd;
	uint8_t last_data; /* what port 0x60 reads with nothing queued */
	struct obyte queue[QUEUE_LEN];
	unsigned head, count;
	bool kbd_level, aux_level;
	uint64_t commands; /* statistics */
};

static void push(struct i8042 *k, uint8_t data, uint8_t status)
{
	if (k->count == QUEUE_LEN)
		return; /* a guest that never reads loses the newest replies */
	k->queue[(k->head + k->count) % QUEUE_LEN] = (struct obyte){ data, status };
	k->count++;
}

static void update_irqs(struct i8042 *k)
{
	bool aux = k->count && (k->queue[k->head].status & STS_AUXDATA);
	bool kbd_level = k->count && !aux && (k->ram[0] & CTR_KBDINT);
	bool aux_level = k->count && aux && (k->ram[0] & CTR_AUXINT);

	if (kbd_level != k->kbd_level) {
		k->kbd_level = kbd_level;
		irq_line_set(&k->kbd_irq, kbd_level);
	}
	if (aux_level != k->aux_level) {
		k->aux_level = aux_level;
		irq_line_set(&k->aux_irq, aux_level);
	}
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t s = STS_UNLOCKED;

	if (k->ram[0] & CTR_SYS)
		s |= STS_SYS;
	if (k->last_was_cmd)
		s |= STS_CMD;
	if (k->count)
		s |= STS_OBF | k->queue[k->head].status;
	/* Commands complete at once: the input buffer is never full. */
	return s;
}

static void request_reset(struct i8042 *k, const char *how)
{
	log_debug("i8042: reset requested (%s)", how);
	vm_request_stop(k->events, VM_STOP_RESET);
}

static void command(struct i8042 *k, uint8_t cmd)
{
	k->commands++;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + 32) {
		push(k, k->ram[cmd - CMD_READ_RAM], 0);
		return;
	}
	if ((cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 32) || cmd == CMD_WRITE_OUTPUT ||
	    cmd == CMD_WRITE_KBD_OBUF || cmd == CMD_WRITE_AUX_OBUF || cmd == CMD_WRITE_AUX) {
		k->pending = cmd;
		return;
	}
	if (cmd >= CMD_PULSE) {
		if (!(cmd & OUT_RESET_N))
			request_reset(k, "pulse command");
		return;
	}
	switch (cmd) {
	case CMD_AUX_DISABLE:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ram[0] &= ~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		push(k, 0x00, 0); /* clock and data lines fine */
		break;
	case CMD_SELF_TEST:
		push(k, 0x55, 0);
		break;
	case CMD_KBD_DISABLE:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ram[0] &= ~CTR_KBDDIS;
		break;
	case CMD_READ_INPUT:
		push(k, 0x00, 0);
		break;
	case CMD_READ_OUTPUT:
		push(k, k->outport, 0);
		break;
	case CMD_A20_OFF:
		k->outport &= ~OUT_A20;
		break;
	case CMD_A20_ON:
		k->outport |= OUT_A20;
		break;
	default:
		break; /* vendor commands: no answer, as on controllers without them */
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 32) {
		k->ram[cmd - CMD_WRITE_RAM] = v;
		return;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPUT:
		k->outport = v;
		if (!(v & OUT_RESET_N))
			request_reset(k, "output port");
		break;
	case CMD_WRITE_KBD_OBUF:
		push(k, v, 0);
		break;
	case CMD_WRITE_AUX_OBUF:
		push(k, v, STS_AUXDATA);
		break;
	case CMD_WRITE_AUX:
		push(k, REPLY_NO_DEVICE, STS_AUXDATA | STS_TIMEOUT);
		break;
	default:
		/* A byte for the keyboard, which is not there. */
		push(k, REPLY_NO_DEVICE, STS_TIMEOUT);
		break;
	}
}

static uint8_t data_read(struct i8042 *k)
{
	if (k->count) {
		k->last_data = k->queue[k->head].data;
		k->head = (k->head + 1) % QUEUE_LEN;
		k->count--;
	}
	return k->last_data;
}

static void data_port_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct i8042 *k = opaque;

	memset(data, 0xff, size);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = data_read(k);
	update_irqs(k);
	pthread_mutex_unlock(&k->lock);
}

static void data_port_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	data_write(k, *(const uint8_t *)data);
	update_irqs(k);
	pthread_mutex_unlock(&k->lock);
}

static void cmd_port_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct i8042 *k = opaque;

	memset(data, 0xff, size);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = status(k);
	pthread_mutex_unlock(&k->lock);
}

static void cmd_port_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = true;
	k->pending = 0; /* a new command abandons one waiting for data */
	command(k, *(const uint8_t *)data);
	update_irqs(k);
	pthread_mutex_unlock(&k->lock);
}

static const struct bus_ops data_ops = { .read = data_port_read, .write = data_port_write };
static const struct bus_ops cmd_ops = { .read = cmd_port_read, .write = cmd_port_write };

static void reset_locked(struct i8042 *k)
{
	memset(k->ram, 0, sizeof(k->ram));
	k->ram[0] = CTR_POWER_ON;
	k->outport = OUT_POWER_ON;
	k->pending = 0;
	k->last_was_cmd = false;
	k->last_data = 0;
	k->head = k->count = 0;
	update_irqs(k);
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

struct i8042 *i8042_create(struct bus *pio, struct irq_line kbd_irq, struct irq_line aux_irq,
			   struct vm_events *events)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int r;

	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->pio = pio;
	k->kbd_irq = kbd_irq;
	k->aux_irq = aux_irq;
	k->events = events;
	irq_line_set(&k->kbd_irq, false);
	irq_line_set(&k->aux_irq, false);
	reset_locked(k);
	r = bus_register(pio, I8042_DATA_PORT, 1, &data_ops, k, "i8042-data");
	if (r == 0) {
		r = bus_register(pio, I8042_CMD_PORT, 1, &cmd_ops, k, "i8042-cmd");
		if (r < 0)
			bus_unregister(pio, I8042_DATA_PORT);
	}
	if (r < 0) {
		log_error("i8042: cannot register ports %#x/%#x: %s", I8042_DATA_PORT,
			  I8042_CMD_PORT, strerror(-r));
		pthread_mutex_destroy(&k->lock);
		free(k);
		errno = -r;
		return NULL;
	}
	return k;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	bus_unregister(k->pio, I8042_DATA_PORT);
	bus_unregister(k->pio, I8042_CMD_PORT);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* Version 1: controller RAM, output port, the pending command, the output queue in order. */
static int i8042_save(void *dev, const char *name, struct state_writer *w)
{
	struct i8042 *k = dev;

	pthread_mutex_lock(&k->lock);
	state_begin(w, name, 1);
	state_put_bytes(w, k->ram, sizeof(k->ram));
	state_put_u8(w, k->outport);
	state_put_u8(w, k->pending);
	state_put_bool(w, k->last_was_cmd);
	state_put_u8(w, k->last_data);
	state_put_u8(w, (uint8_t)k->count);
	for (unsigned i = 0; i < k->count; i++) {
		state_put_u8(w, k->queue[(k->head + i) % QUEUE_LEN].data);
		state_put_u8(w, k->queue[(k->head + i) % QUEUE_LEN].status);
	}
	state_end(w);
	pthread_mutex_unlock(&k->lock);
	return state_writer_error(w);
}

static int i8042_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	struct i8042 *k = dev;
	struct i8042 n;

	if (state_check_version(s, 1, 1, err, errlen))
		return -EINVAL;
	state_get_bytes(s, n.ram, sizeof(n.ram));
	n.outport = state_get_u8(s);
	n.pending = state_get_u8(s);
	n.last_was_cmd = state_get_bool(s);
	n.last_data = state_get_u8(s);
	n.count = state_get_u8(s);
	if (n.count > QUEUE_LEN) {
		snprintf(err, errlen, "%s: %u bytes queued, at most %u fit", s->tag, n.count, QUEUE_LEN);
		return -EINVAL;
	}
	for (unsigned i = 0; i < n.count; i++) {
		n.queue[i].data = state_get_u8(s);
		n.queue[i].status = state_get_u8(s) & (STS_AUXDATA | STS_TIMEOUT);
	}
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, n.ram, sizeof(k->ram));
	k->outport = n.outport;
	k->pending = n.pending;
	k->last_was_cmd = n.last_was_cmd;
	k->last_data = n.last_data;
	memcpy(k->queue, n.queue, sizeof(k->queue));
	k->head = 0;
	k->count = n.count;
	/* Both lines low, then up where this state has an interrupt pending. */
	k->kbd_level = k->aux_level = false;
	irq_line_set(&k->kbd_irq, false);
	irq_line_set(&k->aux_irq, false);
	update_irqs(k);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_stats(void *dev, struct stats_sink *sink)
{
	struct i8042 *k = dev;
	uint64_t n;

	pthread_mutex_lock(&k->lock);
	n = k->commands;
	pthread_mutex_unlock(&k->lock);
	stats_counter(sink, "commands", n);
}

const struct device_ops i8042_device_ops = {
	.type = "i8042",
	.state_version = 1,
	.save = i8042_save,
	.load = i8042_load,
	.stats = i8042_stats,
};
