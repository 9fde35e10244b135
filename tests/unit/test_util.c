// SPDX-License-Identifier: Apache-2.0
/* Unit tests of src/util: guest memory bounds, the bus, parsers, event loop. */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "keel/bus.h"
#include "keel/compiler.h"
#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "keel/parse.h"
#include "ktest.h"

KTEST(guest_mem_bounds)
{
	static uint8_t low[4096], high[8192];
	struct guest_mem m = { 0 };
	uint8_t b;

	KCHECK_EQ(guest_mem_add_region(&m, 0, sizeof(low), low), 0);
	KCHECK_EQ(guest_mem_add_region(&m, 1ULL << 32, sizeof(high), high), 0);
	KCHECK_EQ(guest_mem_add_region(&m, 4000, 100, low), -EEXIST);
	KCHECK_EQ(guest_mem_add_region(&m, UINT64_MAX - 10, 100, low), -EINVAL);
	KCHECK(guest_mem_ptr(&m, 0, 4096) == low);
	KCHECK(guest_mem_ptr(&m, 4095, 1) == low + 4095);
	KCHECK(guest_mem_ptr(&m, 4095, 2) == NULL);         /* straddles the hole */
	KCHECK(guest_mem_ptr(&m, 4096, 0) == NULL);
	KCHECK(guest_mem_ptr(&m, (1ULL << 32) + 8191, 1) == high + 8191);
	KCHECK(guest_mem_ptr(&m, (1ULL << 32) + 1, UINT64_MAX) == NULL); /* overflow */
	KCHECK(guest_mem_ptr(&m, UINT64_MAX, 1) == NULL);
	KCHECK_EQ(guest_mem_read(&m, 8192, &b, 1), -EFAULT);
	KCHECK_EQ(guest_mem_total(&m), 4096 + 8192);
}

KTEST(guest_mem_dirty_log)
{
	static uint8_t low[64 * 4096], high[130 * 4096];
	struct guest_mem m = { 0 };
	uint64_t bits[3] = { 0 }, hb[3] = { 0 };
	struct iovec iov[2] = { { high + 4095, 2 }, { high + 129 * 4096, 4096 } };

	KASSERT(guest_mem_add_region(&m, 0, sizeof(low), low) == 0);
	KASSERT(guest_mem_add_region(&m, 1ULL << 32, sizeof(high), high) == 0);
	/* Off: nothing is recorded, and nothing is allocated yet. */
	guest_mem_mark_dirty(&m, low, 1);
	KCHECK(m.regions[0].dirty == NULL);
	KASSERT(guest_mem_dirty_start(&m) == 0);
	guest_mem_mark_dirty(&m, low + 3 * 4096 + 100, 4096); /* pages 3 and 4 */
	guest_mem_mark_dirty(&m, low + 63 * 4096, 1);
	guest_mem_mark_dirty(&m, low, 0);                      /* empty: nothing */
	guest_mem_mark_dirty(&m, low + sizeof(low), 1);        /* outside: nothing */
	guest_mem_mark_dirty_iov(&m, iov, 2);                  /* pages 0, 1 and 129 of high */
	guest_mem_dirty_collect(&m, 0, bits);
	KCHECK_EQ(bits[0], (1ULL << 3) | (1ULL << 4) | (1ULL << 63));
	KCHECK_EQ(bits[1], 0);
	guest_mem_dirty_collect(&m, 1, hb);
	KCHECK_EQ(hb[0], 3);
	KCHECK_EQ(hb[2], 2);
	/* Collected bits are cleared; collect ORs into what the caller has. */
	bits[0] = 1;
	guest_mem_dirty_collect(&m, 0, bits);
	KCHECK_EQ(bits[0], 1);
	guest_mem_dirty_collect(&m, 7, bits); /* no such region */
	/* Stopped: marks are ignored; started again: the bitmap starts clean. */
	guest_mem_dirty_stop(&m);
	guest_mem_mark_dirty(&m, low, 1);
	KASSERT(guest_mem_dirty_start(&m) == 0);
	bits[0] = 0;
	guest_mem_dirty_collect(&m, 0, bits);
	KCHECK_EQ(bits[0], 0);
	guest_mem_dirty_free(&m);
	KCHECK(m.regions[0].dirty == NULL && m.regions[1].dirty == NULL);
}

struct fake_dev {
	uint64_t last_off;
	uint32_t value;
	unsigned writes;
};

static void fake_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->last_off = off;
	memcpy(data, &d->value, size > 4 ? 4 : size);
}

static void fake_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->last_off = off;
	d->value = 0;
	memcpy(&d->value, data, size > 4 ? 4 : size);
	d->writes++;
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

KTEST(bus_dispatch_and_overlap)
{
	struct fake_dev a = { .value = 0x11223344 }, c = { 0 };
	struct bus bus;
	uint32_t v = 0;
	uint8_t b;

	KASSERT(bus_init(&bus, "pio") == 0);
	KCHECK_EQ(bus_register(&bus, 0x3f8, 8, &fake_ops, &a, "a"), 0);
	KCHECK_EQ(bus_register(&bus, 0x3fc, 8, &fake_ops, &c, "overlap"), -EEXIST);
	KCHECK_EQ(bus_register(&bus, 0x3f0, 9, &fake_ops, &c, "overlap"), -EEXIST);
	KCHECK_EQ(bus_register(&bus, 0x3f0, 8, &fake_ops, &c, "below"), 0);
	KCHECK_EQ(bus_register(&bus, 0, 0, &fake_ops, &c, "empty"), -EINVAL);
	KCHECK_EQ(bus_register(&bus, UINT64_MAX, 2, &fake_ops, &c, "wraps"), -EINVAL);
	KCHECK(bus_read(&bus, 0x3f9, &v, 4));
	KCHECK_EQ(a.last_off, 1);
	KCHECK_EQ(v, 0x11223344);
	KCHECK(!bus_read(&bus, 0x3fe, &v, 4)); /* runs past the end of a */
	KCHECK_EQ(v, 0xffffffff);
	KCHECK(!bus_read(&bus, 0x500, &b, 1));
	KCHECK_EQ(b, 0xff);
	b = 0x5a;
	KCHECK(bus_write(&bus, 0x3f7, &b, 1));
	KCHECK_EQ(c.value, 0x5a);
	KCHECK_EQ(c.last_off, 7);
	KCHECK_EQ(bus_unregister(&bus, 0x3f8), 0);
	KCHECK_EQ(bus_unregister(&bus, 0x3f8), -ENOENT);
	KCHECK(!bus_write(&bus, 0x3f8, &b, 1));
	KCHECK_EQ(a.writes, 0);
	bus_destroy(&bus);
}

KTEST(parse_sizes)
{
	uint64_t v = 0;

	KCHECK_EQ(parse_size("512", 1ULL << 20, &v), 0);
	KCHECK_EQ(v, 512ULL << 20);
	KCHECK_EQ(parse_size("2G", 1, &v), 0);
	KCHECK_EQ(v, 2ULL << 30);
	KCHECK_EQ(parse_size("64MiB", 1, &v), 0);
	KCHECK_EQ(v, 64ULL << 20);
	KCHECK_EQ(parse_size("1k", 1, &v), 0);
	KCHECK_EQ(v, 1024);
	KCHECK_EQ(parse_size("100B", 1ULL << 20, &v), 0);
	KCHECK_EQ(v, 100);
	KCHECK_EQ(parse_size("", 1, &v), -EINVAL);
	KCHECK_EQ(parse_size("-1G", 1, &v), -EINVAL);
	KCHECK_EQ(parse_size(" 1G", 1, &v), -EINVAL);
	KCHECK_EQ(parse_size("1X", 1, &v), -EINVAL);
	KCHECK_EQ(parse_size("1GG", 1, &v), -EINVAL);
	KCHECK_EQ(parse_size("99999999999999999999", 1, &v), -ERANGE);
	KCHECK_EQ(parse_size("17179869184T", 1, &v), -ERANGE);
	KCHECK_EQ(parse_u64("42", 100, &v), 0);
	KCHECK_EQ(v, 42);
	KCHECK_EQ(parse_u64("101", 100, &v), -ERANGE);
	KCHECK_EQ(parse_u64("4x", 100, &v), -EINVAL);
	KCHECK_EQ(parse_u64("+4", 100, &v), -EINVAL);
}

struct counter_timer {
	struct event_timer t;
	struct event_loop *loop;
	int fired;
};

static void on_timer(struct event_timer *t)
{
	struct counter_timer *c = container_of(t, struct counter_timer, t);

	if (++c->fired == 3)
		event_loop_stop(c->loop);
}

KTEST(event_loop_timer_and_stop)
{
	struct event_loop loop;
	struct counter_timer c = { .fired = 0 };

	KASSERT(event_loop_init(&loop) == 0);
	c.loop = &loop;
	KASSERT(event_timer_init(&loop, &c.t, on_timer) == 0);
	KCHECK_EQ(event_timer_arm(&c.t, 1000000, 1000000), 0);
	KCHECK_EQ(event_loop_run(&loop), 0);
	KCHECK_EQ(c.fired, 3);
	event_timer_destroy(&loop, &c.t);
	event_loop_destroy(&loop);
}

KTEST(parse_id_lists)
{
	uint8_t bits[2];

	KCHECK_EQ(parse_id_list("0-3,8,10-11", bits, 16), 0);
	KCHECK_EQ(bits[0], 0x0f);
	KCHECK_EQ(bits[1], 0x0d);
	KCHECK_EQ(parse_id_list("5", bits, 16), 0);
	KCHECK_EQ(bits[0], 0x20);
	KCHECK_EQ(parse_id_list("15", bits, 16), 0);
	KCHECK_EQ(parse_id_list("16", bits, 16), -ERANGE);
	KCHECK_EQ(parse_id_list("3-1", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("1,", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("-1", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("1-", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("a", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("", bits, 16), -EINVAL);
	KCHECK_EQ(parse_id_list("99999999999999999999", bits, 16), -ERANGE);
}

int main(void)
{
	return ktest_run_all();
}
