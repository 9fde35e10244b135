// SPDX-License-Identifier: Apache-2.0
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "keel/compiler.h"

static int fake_set_level(struct irq_chip *chip, uint32_t gsi, bool level)
{
	struct fake_irq_chip *f = container_of(chip, struct fake_irq_chip, chip);

	if (gsi >= FAKE_IRQ_LINES)
		return -22;
	if (level && !f->level[gsi])
		f->edges[gsi]++;
	f->level[gsi] = level;
	f->calls[gsi]++;
	return 0;
}

static int fake_signal_msi(struct irq_chip *chip, uint64_t addr, uint32_t data)
{
	return -95; /* the platform devices never use MSI */
}

static void fake_request_stop(struct vm_events *ev, enum vm_stop_reason why)
{
	struct fake_events *f = container_of(ev, struct fake_events, ev);

	f->requests++;
	f->last = why;
}

void harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	if (bus_init(&h->pio, "pio"))
		abort();
	h->irqs.chip.set_level = fake_set_level;
	h->irqs.chip.signal_msi = fake_signal_msi;
	h->events.ev.request_stop = fake_request_stop;
}

void harness_fini(struct harness *h)
{
	bus_destroy(&h->pio);
}

struct irq_line harness_line(struct harness *h, uint32_t gsi)
{
	return (struct irq_line){ .chip = &h->irqs.chip, .gsi = gsi };
}

unsigned harness_take_edges(struct harness *h, uint32_t gsi)
{
	unsigned n = h->irqs.edges[gsi];

	h->irqs.edges[gsi] = 0;
	return n;
}

uint8_t inb(struct harness *h, uint16_t port)
{
	uint8_t v;

	bus_read(&h->pio, port, &v, 1);
	return v;
}

uint16_t inw(struct harness *h, uint16_t port)
{
	uint16_t v;

	bus_read(&h->pio, port, &v, 2);
	return v;
}

uint32_t inl(struct harness *h, uint16_t port)
{
	uint32_t v;

	bus_read(&h->pio, port, &v, 4);
	return v;
}

void outb(struct harness *h, uint16_t port, uint8_t v)
{
	bus_write(&h->pio, port, &v, 1);
}

void outw(struct harness *h, uint16_t port, uint16_t v)
{
	bus_write(&h->pio, port, &v, 2);
}

void outl(struct harness *h, uint16_t port, uint32_t v)
{
	bus_write(&h->pio, port, &v, 4);
}

/* xorshift32: reproducible garbage for the hostile-input tests. */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

unsigned harness_fuzz_ports(struct harness *h, uint16_t base, unsigned len, unsigned rounds,
			    uint32_t seed)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned n = 0;

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned off = 0; off < len; off++) {
			for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++) {
				uint64_t v = ((uint64_t)next_rand(&seed) << 32) | next_rand(&seed);
				uint64_t out = 0;

				bus_write(&h->pio, base + off, &v, sizes[s]);
				bus_read(&h->pio, base + off, &out, sizes[s]);
				n += 2;
			}
		}
	}
	return n;
}
