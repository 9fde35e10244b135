// SPDX-License-Identifier: Apache-2.0
/*
 * The CMOS RTC read and set the way Linux does it (mc146818_get_time /
 * mc146818_set_time), its formats, UIP, CMOS RAM, and its interrupts.
 * Some tests wait for a second boundary, so this suite takes a few seconds.
 */
#include <string.h>
#include <time.h>

#include "harness.h"
#include "hw/cmos_rtc.h"
#include "ktest.h"

#define IDX 0x70
#define DATA 0x71
#define IRQ CMOS_RTC_IRQ

struct rig {
	struct harness h;
	struct event_loop loop;
	bool have_loop;
	struct cmos_rtc *rtc;
};

static bool rig_init(struct rig *r, bool with_loop)
{
	memset(r, 0, sizeof(*r));
	harness_init(&r->h);
	if (with_loop) {
		if (event_loop_init(&r->loop))
			return false;
		r->have_loop = true;
	}
	r->rtc = cmos_rtc_create(&r->h.pio, harness_line(&r->h, IRQ), with_loop ? &r->loop : NULL);
	return r->rtc != NULL;
}

static void rig_fini(struct rig *r)
{
	cmos_rtc_destroy(r->rtc);
	if (r->have_loop)
		event_loop_destroy(&r->loop);
	harness_fini(&r->h);
}

static uint8_t cmos_read(struct rig *r, uint8_t reg)
{
	outb(&r->h, IDX, reg);
	return inb(&r->h, DATA);
}

static void cmos_write(struct rig *r, uint8_t reg, uint8_t v)
{
	outb(&r->h, IDX, reg);
	outb(&r->h, DATA, v);
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

struct fields {
	unsigned sec, min, hour, mday, mon, year, century;
};

/* Linux's mc146818_avoid_UIP(): retry until UIP is clear on both sides. */
static bool read_fields(struct rig *r, struct fields *f)
{
	for (int tries = 0; tries < 100000; tries++) {
		uint8_t sec = cmos_read(r, 0x00);

		if (cmos_read(r, 0x0a) & 0x80)
			continue;
		f->sec = cmos_read(r, 0x00);
		f->min = cmos_read(r, 0x02);
		f->hour = cmos_read(r, 0x04);
		f->mday = cmos_read(r, 0x07);
		f->mon = cmos_read(r, 0x08);
		f->year = cmos_read(r, 0x09);
		f->century = cmos_read(r, 0x32);
		if (cmos_read(r, 0x0a) & 0x80 || sec != cmos_read(r, 0x00))
			continue;
		return true;
	}
	return false;
}

static time_t fields_to_time(const struct fields *f, bool binary)
{
	unsigned (*conv)(uint8_t) = binary ? NULL : bcd;
	struct tm tm = { 0 };

#define F(x) (conv ? conv((uint8_t)(x)) : (x))
	tm.tm_sec = (int)F(f->sec);
	tm.tm_min = (int)F(f->min);
	tm.tm_hour = (int)F(f->hour);
	tm.tm_mday = (int)F(f->mday);
	tm.tm_mon = (int)F(f->mon) - 1;
	tm.tm_year = (int)(F(f->century) * 100 + F(f->year)) - 1900;
#undef F
	return timegm(&tm);
}

static long long llabs_diff(time_t a, time_t b)
{
	return a > b ? (long long)(a - b) : (long long)(b - a);
}

KTEST(rtc_reads_host_time_in_bcd)
{
	struct rig r;
	struct fields f;

	KASSERT(rig_init(&r, false));
	KCHECK_EQ(cmos_read(&r, 0x0b) & 0x06, 0x02); /* BCD, 24 h */
	KCHECK_EQ(cmos_read(&r, 0x0d), 0x80);        /* VRT: valid RAM and time */
	KCHECK_EQ(cmos_read(&r, 0x0a) & 0x7f, 0x26);
	KASSERT(read_fields(&r, &f));
	KCHECK(llabs_diff(fields_to_time(&f, false), time(NULL)) <= 2);
	KCHECK_EQ(bcd((uint8_t)f.century), (unsigned)(1900 + gmtime(&(time_t){ time(NULL) })->tm_year) / 100);
	rig_fini(&r);
}

KTEST(rtc_binary_and_12_hour_modes)
{
	struct rig r;
	struct fields f;
	time_t now;
	struct tm tm;
	uint8_t h;
	unsigned want;

	KASSERT(rig_init(&r, false));
	cmos_write(&r, 0x0b, 0x06); /* binary, 24 h */
	KASSERT(read_fields(&r, &f));
	KCHECK(llabs_diff(fields_to_time(&f, true), time(NULL)) <= 2);
	KCHECK(f.sec < 60 && f.min < 60 && f.hour < 24);

	cmos_write(&r, 0x0b, 0x04); /* binary, 12 h */
	do {
		now = time(NULL);
		h = cmos_read(&r, 0x04);
	} while (now != time(NULL)); /* keep host and guest reads in one second */
	gmtime_r(&now, &tm);
	want = tm.tm_hour % 12 ? (unsigned)tm.tm_hour % 12 : 12;
	KCHECK_EQ(h & 0x7f, want);
	KCHECK_EQ(!!(h & 0x80), tm.tm_hour >= 12);
	rig_fini(&r);
}

/* mc146818_set_time(): SET and divider reset, fields, then both restored. */
static void linux_set_time(struct rig *r, unsigned year, unsigned mon, unsigned day, unsigned hour,
			   unsigned min, unsigned sec)
{
	uint8_t ctl = cmos_read(r, 0x0b), freq = cmos_read(r, 0x0a) & 0x7f;
#define B(x) ((uint8_t)(((x) / 10) << 4 | ((x) % 10)))
	cmos_write(r, 0x0b, ctl | 0x80);
	cmos_write(r, 0x0a, freq | 0x70);
	cmos_write(r, 0x09, B(year % 100));
	cmos_write(r, 0x08, B(mon));
	cmos_write(r, 0x07, B(day));
	cmos_write(r, 0x04, B(hour));
	cmos_write(r, 0x02, B(min));
	cmos_write(r, 0x00, B(sec));
	cmos_write(r, 0x32, B(year / 100));
#undef B
	cmos_write(r, 0x0b, ctl);
	cmos_write(r, 0x0a, freq);
}

KTEST(rtc_guest_set_time_moves_only_its_view)
{
	struct rig r, other;
	struct fields f;
	struct tm want = { .tm_year = 2001 - 1900, .tm_mon = 1, .tm_mday = 3, .tm_hour = 4,
			   .tm_min = 5, .tm_sec = 6 };
	time_t host_before = time(NULL);

	KASSERT(rig_init(&r, false));
	KASSERT(rig_init(&other, false));
	linux_set_time(&r, 2001, 2, 3, 4, 5, 6);
	KASSERT(read_fields(&r, &f));
	KCHECK(llabs_diff(fields_to_time(&f, false), timegm(&want)) <= 2);
	KCHECK_EQ(f.century, 0x20);
	KCHECK_EQ(f.year, 0x01);
	/* The host clock and another VM's RTC did not move. */
	KCHECK(llabs_diff(time(NULL), host_before) <= 2);
	KASSERT(read_fields(&other, &f));
	KCHECK(llabs_diff(fields_to_time(&f, false), time(NULL)) <= 2);
	/* Frozen while SET is 1: the fields read back exactly as written. */
	cmos_write(&r, 0x0b, 0x82);
	cmos_write(&r, 0x00, 0x59);
	KCHECK_EQ(cmos_read(&r, 0x00), 0x59);
	KCHECK_EQ(cmos_read(&r, 0x0a) & 0x80, 0); /* no updates while SET */
	cmos_write(&r, 0x0b, 0x02);
	rig_fini(&other);
	rig_fini(&r);
}

KTEST(rtc_single_field_write_while_running)
{
	struct rig r;
	struct fields f;

	KASSERT(rig_init(&r, false));
	cmos_write(&r, 0x09, 0x99); /* year 99 of this century */
	KASSERT(read_fields(&r, &f));
	KCHECK_EQ(f.year, 0x99);
	KCHECK(llabs_diff(fields_to_time(&f, false), time(NULL)) > 86400);
	rig_fini(&r);
}

/*
 * One update cycle seen by polling: wait for UIP to be clear, then for it to
 * rise, then to fall. False if the seconds did not move by exactly one.
 */
static bool watch_one_update(struct rig *r)
{
	uint8_t before, after;
	unsigned polls = 0;

	while ((cmos_read(r, 0x0a) & 0x80) && ++polls < 50000000)
		;
	do {
		before = cmos_read(r, 0x00);
	} while (!(cmos_read(r, 0x0a) & 0x80) && ++polls < 50000000);
	while ((cmos_read(r, 0x0a) & 0x80) && ++polls < 50000000)
		;
	after = cmos_read(r, 0x00);
	return polls < 50000000 && bcd(after) == (bcd(before) + 1) % 60;
}

/*
 * UIP rises before the second changes and falls after it. The host may
 * stall this thread for longer than the 244 us lead between two polls, so
 * one of three cycles watched must show it.
 */
KTEST(rtc_uip_rises_and_falls_around_the_update)
{
	struct rig r;
	bool seen = false;

	KASSERT(rig_init(&r, false));
	for (int i = 0; i < 3 && !seen; i++)
		seen = watch_one_update(&r);
	KCHECK(seen);
	rig_fini(&r);
}

KTEST(rtc_cmos_ram_is_kept_and_nmi_bit_ignored)
{
	struct rig r;
	bool ok = true;

	KASSERT(rig_init(&r, false));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(&r, (uint8_t)i, (uint8_t)(i ^ 0x5a));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32 && cmos_read(&r, (uint8_t)(i | 0x80)) != (uint8_t)(i ^ 0x5a))
			ok = false;
	KCHECK(ok);
	/* C and D are read-only; the index port reads as open bus. */
	cmos_write(&r, 0x0d, 0x00);
	KCHECK_EQ(cmos_read(&r, 0x0d), 0x80);
	KCHECK_EQ(inb(&r.h, IDX), 0xff);
	rig_fini(&r);
}

/* Update-ended flag for a polling guest, without any timer. */
KTEST(rtc_update_flag_without_loop)
{
	struct rig r;
	uint8_t c = 0;
	unsigned polls = 0;

	KASSERT(rig_init(&r, false));
	cmos_read(&r, 0x0c);
	while (!((c = cmos_read(&r, 0x0c)) & 0x10) && ++polls < 50000000)
		;
	KCHECK(c & 0x10);
	KCHECK_EQ(c & 0x80, 0); /* UIE off: no IRQF */
	KCHECK(!r.h.irqs.level[IRQ]);
	rig_fini(&r);
}

/* Runs the loop until the RTC's line rises; false after ~3 s of nothing. */
static bool wait_for_irq(struct rig *r)
{
	for (int i = 0; i < 30 && !r->h.irqs.level[IRQ]; i++)
		event_loop_run_once(&r->loop, 100);
	return r->h.irqs.level[IRQ];
}

KTEST(rtc_update_interrupt)
{
	struct rig r;
	uint8_t c;

	KASSERT(rig_init(&r, true));
	cmos_write(&r, 0x0b, 0x12); /* UIE, 24 h */
	KASSERT(wait_for_irq(&r));
	KCHECK_EQ(harness_take_edges(&r.h, IRQ), 1);
	c = cmos_read(&r, 0x0c);
	KCHECK_EQ(c & 0x90, 0x90);
	KCHECK(!r.h.irqs.level[IRQ]);
	/* And again the next second: a fresh edge after the acknowledge. */
	KASSERT(wait_for_irq(&r));
	KCHECK_EQ(harness_take_edges(&r.h, IRQ), 1);
	cmos_write(&r, 0x0b, 0x02);
	cmos_read(&r, 0x0c);
	rig_fini(&r);
}

KTEST(rtc_alarm_interrupt)
{
	struct rig r;
	uint8_t c;

	KASSERT(rig_init(&r, true));
	/* Alarm at any hour and minute, at the second after the next one. */
	cmos_write(&r, 0x0b, 0x06); /* binary */
	cmos_write(&r, 0x01, (uint8_t)((cmos_read(&r, 0x00) + 2) % 60));
	cmos_write(&r, 0x03, 0xc0);
	cmos_write(&r, 0x05, 0xff);
	cmos_read(&r, 0x0c);
	cmos_write(&r, 0x0b, 0x26); /* AIE */
	KASSERT(wait_for_irq(&r));
	c = cmos_read(&r, 0x0c);
	KCHECK_EQ(c & 0xa0, 0xa0);
	rig_fini(&r);
}

KTEST(rtc_periodic_interrupt_and_reset)
{
	struct rig r;

	KASSERT(rig_init(&r, true));
	cmos_write(&r, 0x0a, 0x2f); /* 2 Hz */
	cmos_write(&r, 0x0b, 0x42); /* PIE */
	KASSERT(wait_for_irq(&r));
	KCHECK_EQ(cmos_read(&r, 0x0c) & 0xc0, 0xc0);
	KASSERT(wait_for_irq(&r));
	/* The RESET pin: enables and flags cleared, the line drops. */
	cmos_rtc_reset(r.rtc);
	KCHECK(!r.h.irqs.level[IRQ]);
	KCHECK_EQ(cmos_read(&r, 0x0b) & 0x78, 0);
	KCHECK_EQ(cmos_read(&r, 0x0c) & 0x80, 0);
	rig_fini(&r);
}

int main(void)
{
	return ktest_run_all();
}
