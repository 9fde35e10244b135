// SPDX-License-Identifier: Apache-2.0
/*
 * MC146818 real-time clock. The time registers are never stored: each read
 * computes them from the host's CLOCK_REALTIME plus the guest's offset, in
 * the format register B selects. The guest sets the clock the way Linux's
 * mc146818_set_time() does (SET bit in B, write the fields, clear SET); we
 * freeze the fields while SET is 1 and turn them into a new offset when it
 * clears.
 *
 * Register A's UIP bit is high from 244 us before each second boundary
 * until the ~2 ms update cycle after it would end (data sheet timing), so a
 * guest that waits for UIP to fall and re-checks it, as Linux does, reads
 * stable values.
 *
 * Flags in register C (PF, AF, UF) are caught up lazily from the elapsed
 * guest time whenever the guest looks or the timer fires; the timer is
 * armed only while an interrupt is enabled and not yet pending.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw/cmos_rtc.h"
#include "keel/compiler.h"
#include "keel/log.h"

#define NS 1000000000LL

enum {
	REG_SEC = 0x00,
	REG_SEC_ALARM = 0x01,
	REG_MIN = 0x02,
	REG_MIN_ALARM = 0x03,
	REG_HOUR = 0x04,
	REG_HOUR_ALARM = 0x05,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
};

#define A_UIP 0x80
#define A_DV_MASK 0x70
#define A_DV_NORMAL 0x20 /* 32.768 kHz time base, divider running */
#define A_RS_MASK 0x0f

#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_SQWE 0x08
#define B_DM_BINARY 0x04
#define B_24H 0x02

#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10

#define D_VRT 0x80

#define HOUR_PM 0x80
#define ALARM_DONT_CARE 0xc0 /* values 0xc0-0xff match any time */

/* UIP window around a second boundary (MC146818 data sheet, figure 13). */
#define UIP_BEFORE_NS 244000LL
#define UPDATE_CYCLE_NS 1984000LL

struct gtime {
	int64_t sec;
	int64_t nsec; /* 0 .. NS-1 */
};

struct cmos_rtc {
	pthread_mutex_t lock;
	struct bus *pio;
	struct irq_line irq;
	struct event_loop *loop;
	struct event_timer timer;
	bool have_timer;

	uint8_t index;
	bool nmi_masked; /* port 0x70 bit 7: recorded, NMIs are not ours to gate */
	uint8_t ram[128];
	struct gtime offset;  /* guest time minus host time */
	struct gtime checked; /* guest time up to which register C is current */
	bool line;
	uint64_t irqs; /* statistics: rising edges of the line */
};

static bool is_time_reg(unsigned reg)
{
	return reg == REG_SEC || reg == REG_MIN || reg == REG_HOUR || reg == REG_WDAY ||
	       reg == REG_MDAY || reg == REG_MONTH || reg == REG_YEAR || reg == CMOS_CENTURY_REG;
}

static struct gtime guest_now(const struct cmos_rtc *rtc)
{
	struct timespec ts;
	struct gtime t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t.sec = ts.tv_sec + rtc->offset.sec;
	t.nsec = ts.tv_nsec + rtc->offset.nsec;
	if (t.nsec >= NS) {
		t.nsec -= NS;
		t.sec++;
	} else if (t.nsec < 0) {
		t.nsec += NS;
		t.sec--;
	}
	return t;
}

static bool running(const struct cmos_rtc *rtc)
{
	return !(rtc->ram[REG_B] & B_SET) && (rtc->ram[REG_A] & A_DV_MASK) == A_DV_NORMAL;
}

static uint8_t to_reg(const struct cmos_rtc *rtc, unsigned v)
{
	v %= 100;
	return (rtc->ram[REG_B] & B_DM_BINARY) ? v : (uint8_t)((v / 10) << 4 | (v % 10));
}

/* Guest-written values may be anything; the result is only ever normalised by timegm(). */
static unsigned from_reg(const struct cmos_rtc *rtc, uint8_t v)
{
	return (rtc->ram[REG_B] & B_DM_BINARY) ? v : (v >> 4) * 10u + (v & 0x0f);
}

static uint8_t hour_to_reg(const struct cmos_rtc *rtc, unsigned h)
{
	unsigned h12;

	if (rtc->ram[REG_B] & B_24H)
		return to_reg(rtc, h);
	h12 = h % 12 ? h % 12 : 12;
	return to_reg(rtc, h12) | (h >= 12 ? HOUR_PM : 0);
}

static unsigned hour_from_reg(const struct cmos_rtc *rtc, uint8_t v)
{
	unsigned h;

	if (rtc->ram[REG_B] & B_24H)
		return from_reg(rtc, v);
	h = from_reg(rtc, v & ~HOUR_PM) % 12;
	return (v & HOUR_PM) ? h + 12 : h;
}

/* The time-of-day registers for `sec`, in the current format, indexed like ram[]. */
static void format_time(const struct cmos_rtc *rtc, int64_t sec, uint8_t regs[128])
{
	time_t tt = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	regs[REG_SEC] = to_reg(rtc, tm.tm_sec);
	regs[REG_MIN] = to_reg(rtc, tm.tm_min);
	regs[REG_HOUR] = hour_to_reg(rtc, tm.tm_hour);
	regs[REG_WDAY] = to_reg(rtc, tm.tm_wday + 1);
	regs[REG_MDAY] = to_reg(rtc, tm.tm_mday);
	regs[REG_MONTH] = to_reg(rtc, tm.tm_mon + 1);
	regs[REG_YEAR] = to_reg(rtc, (unsigned)(tm.tm_year + 1900) % 100);
	regs[CMOS_CENTURY_REG] = to_reg(rtc, (unsigned)(tm.tm_year + 1900) / 100);
}

/* The guest's fields in ram[] made into a new offset, the second starting now. */
static void commit_time_regs(struct cmos_rtc *rtc)
{
	struct tm tm = { 0 };
	struct timespec ts;
	time_t t;

	tm.tm_sec = (int)from_reg(rtc, rtc->ram[REG_SEC]);
	tm.tm_min = (int)from_reg(rtc, rtc->ram[REG_MIN]);
	tm.tm_hour = (int)hour_from_reg(rtc, rtc->ram[REG_HOUR]);
	tm.tm_mday = (int)from_reg(rtc, rtc->ram[REG_MDAY]);
	tm.tm_mon = (int)from_reg(rtc, rtc->ram[REG_MONTH]) - 1;
	tm.tm_year = (int)(from_reg(rtc, rtc->ram[CMOS_CENTURY_REG]) * 100 +
			   from_reg(rtc, rtc->ram[REG_YEAR])) - 1900;
	errno = 0;
	t = timegm(&tm);
	if (t == (time_t)-1 && errno) {
		log_guest("rtc: cannot represent the time the guest set; keeping the old one");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	rtc->offset.sec = (int64_t)t - ts.tv_sec;
	rtc->offset.nsec = -(int64_t)ts.tv_nsec;
	rtc->checked = guest_now(rtc);
}

static bool uip(const struct cmos_rtc *rtc)
{
	struct gtime now;

	if (!running(rtc))
		return false;
	now = guest_now(rtc);
	return now.nsec >= NS - UIP_BEFORE_NS || now.nsec < UPDATE_CYCLE_NS;
}

/* Periodic interrupt rate in Hz from RS3-0 (0 = off), 32.768 kHz base. */
static unsigned periodic_hz(const struct cmos_rtc *rtc)
{
	unsigned rs = rtc->ram[REG_A] & A_RS_MASK;

	if (!rs)
		return 0;
	if (rs <= 2) /* 1 and 2 alias to 256 Hz and 128 Hz */
		return 512u >> rs;
	return 65536u >> rs;
}

static bool alarm_field_matches(uint8_t alarm, uint8_t now)
{
	return (alarm & ALARM_DONT_CARE) == ALARM_DONT_CARE || alarm == now;
}

static bool alarm_matches(const struct cmos_rtc *rtc, int64_t sec)
{
	uint8_t now[128];

	format_time(rtc, sec, now);
	return alarm_field_matches(rtc->ram[REG_SEC_ALARM], now[REG_SEC]) &&
	       alarm_field_matches(rtc->ram[REG_MIN_ALARM], now[REG_MIN]) &&
	       alarm_field_matches(rtc->ram[REG_HOUR_ALARM], now[REG_HOUR]);
}

/* Sets PF/AF/UF for what happened between rtc->checked and now. */
static void catch_up(struct cmos_rtc *rtc)
{
	struct gtime now = guest_now(rtc), last = rtc->checked;
	unsigned hz = periodic_hz(rtc);

	rtc->checked = now;
	if (!running(rtc))
		return;
	if (hz && now.sec * hz + now.nsec * hz / NS > last.sec * hz + last.nsec * hz / NS)
		rtc->ram[REG_C] |= C_PF;
	if (now.sec <= last.sec)
		return;
	rtc->ram[REG_C] |= C_UF;
	if (rtc->ram[REG_C] & C_AF)
		return; /* already pending: no need to look again */
	/* An alarm pattern repeats daily: a day of boundaries covers any gap. */
	for (int64_t s = now.sec; s > last.sec && s > now.sec - 86400; s--) {
		if (alarm_matches(rtc, s)) {
			rtc->ram[REG_C] |= C_AF;
			break;
		}
	}
}

static uint8_t irq_sources(const struct cmos_rtc *rtc)
{
	uint8_t b = rtc->ram[REG_B];

	return rtc->ram[REG_C] & (((b & B_PIE) ? C_PF : 0) | ((b & B_AIE) ? C_AF : 0) |
				  ((b & B_UIE) ? C_UF : 0));
}

/* IRQF is PF.PIE + AF.AIE + UF.UIE; the line follows it. */
static void update_irq(struct cmos_rtc *rtc)
{
	bool level = irq_sources(rtc) != 0;

	rtc->ram[REG_C] = (rtc->ram[REG_C] & ~C_IRQF) | (level ? C_IRQF : 0);
	if (level != rtc->line) {
		rtc->line = level;
		rtc->irqs += level;
		irq_line_set(&rtc->irq, level);
	}
}

/* Arms the timer for the next event that would raise the line. */
static void schedule(struct cmos_rtc *rtc)
{
	uint8_t b = rtc->ram[REG_B];
	struct gtime now;
	int64_t wait = -1;
	unsigned hz;

	if (!rtc->have_timer)
		return;
	if (!(rtc->ram[REG_C] & C_IRQF) && running(rtc) && (b & (B_PIE | B_AIE | B_UIE))) {
		now = guest_now(rtc);
		if (b & (B_AIE | B_UIE))
			wait = NS - now.nsec;
		hz = periodic_hz(rtc);
		if ((b & B_PIE) && hz) {
			int64_t period = NS / hz, to_tick = period - now.nsec % period;

			if (wait < 0 || to_tick < wait)
				wait = to_tick;
		}
	}
	/*
	 * Nothing to wait for: a timer already armed may still fire once;
	 * timer_fired() then finds nothing new and does not re-arm.
	 */
	if (wait >= 0)
		event_timer_arm(&rtc->timer, (uint64_t)wait, 0);
}

static void timer_fired(struct event_timer *t)
{
	struct cmos_rtc *rtc = container_of(t, struct cmos_rtc, timer);

	pthread_mutex_lock(&rtc->lock);
	catch_up(rtc);
	update_irq(rtc);
	schedule(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

static uint8_t reg_read(struct cmos_rtc *rtc, unsigned reg)
{
	uint8_t now[128], v;

	if (is_time_reg(reg) && !(rtc->ram[REG_B] & B_SET)) {
		format_time(rtc, guest_now(rtc).sec, now);
		return now[reg];
	}
	switch (reg) {
	case REG_A:
		return rtc->ram[REG_A] | (uip(rtc) ? A_UIP : 0);
	case REG_C:
		/* Reading C acknowledges: all flags clear, the line drops. */
		catch_up(rtc);
		update_irq(rtc);
		v = rtc->ram[REG_C];
		rtc->ram[REG_C] = 0;
		update_irq(rtc);
		schedule(rtc);
		return v;
	case REG_D:
		return D_VRT; /* the battery is always good */
	default:
		return rtc->ram[reg];
	}
}

static void write_b(struct cmos_rtc *rtc, uint8_t v)
{
	uint8_t old = rtc->ram[REG_B];

	catch_up(rtc);
	if (v & B_SET)
		v &= ~B_UIE; /* data sheet: setting SET clears UIE */
	/* Freeze or commit the fields in the format they were written in. */
	if (!(old & B_SET) && (v & B_SET))
		format_time(rtc, guest_now(rtc).sec, rtc->ram);
	else if ((old & B_SET) && !(v & B_SET))
		commit_time_regs(rtc);
	rtc->ram[REG_B] = v;
	update_irq(rtc);
	schedule(rtc);
}

static void reg_write(struct cmos_rtc *rtc, unsigned reg, uint8_t v)
{
	if (is_time_reg(reg)) {
		if (reg == REG_WDAY && !(rtc->ram[REG_B] & B_SET))
			return; /* derived from the date; nothing to move */
		if (!(rtc->ram[REG_B] & B_SET)) {
			/* A single field changed while running: the rest stay as they are now. */
			format_time(rtc, guest_now(rtc).sec, rtc->ram);
			rtc->ram[reg] = v;
			commit_time_regs(rtc);
		} else {
			rtc->ram[reg] = v;
		}
		return;
	}
	switch (reg) {
	case REG_A:
		catch_up(rtc);
		rtc->ram[REG_A] = v & ~A_UIP;
		schedule(rtc);
		break;
	case REG_B:
		write_b(rtc, v);
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		rtc->ram[reg] = v;
		break;
	}
}

/* Port 0x70 is the index (bit 7 masks NMI), 0x71 the data; byte cycles. */
static void rtc_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct cmos_rtc *rtc = opaque;
	uint8_t *out = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size; i++)
		out[i] = ((offset + i) & 1) ? reg_read(rtc, rtc->index) : 0xff;
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct cmos_rtc *rtc = opaque;
	const uint8_t *in = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size; i++) {
		if ((offset + i) & 1) {
			reg_write(rtc, rtc->index, in[i]);
		} else {
			rtc->index = in[i] & 0x7f;
			rtc->nmi_masked = in[i] & 0x80;
		}
	}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct bus_ops rtc_ops = { .read = rtc_read, .write = rtc_write };

struct cmos_rtc *cmos_rtc_create(struct bus *pio, struct irq_line irq, struct event_loop *loop)
{
	struct cmos_rtc *rtc = calloc(1, sizeof(*rtc));
	int r;

	if (!rtc)
		return NULL;
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->pio = pio;
	rtc->irq = irq;
	rtc->loop = loop;
	rtc->ram[REG_A] = A_DV_NORMAL | 0x06; /* 1024 Hz periodic rate, as a BIOS leaves it */
	rtc->ram[REG_B] = B_24H;
	rtc->checked = guest_now(rtc);
	irq_line_set(&rtc->irq, false);
	if (loop) {
		r = event_timer_init(loop, &rtc->timer, timer_fired);
		if (r < 0) {
			log_error("rtc: cannot create its timer: %s", strerror(-r));
			goto fail;
		}
		rtc->have_timer = true;
	}
	r = bus_register(pio, CMOS_RTC_PORT, 2, &rtc_ops, rtc, "cmos-rtc");
	if (r < 0) {
		log_error("rtc: cannot register ports %#x-%#x: %s", CMOS_RTC_PORT, CMOS_RTC_PORT + 1,
			  strerror(-r));
		goto fail;
	}
	return rtc;
fail:
	if (rtc->have_timer)
		event_timer_destroy(loop, &rtc->timer);
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
	errno = -r;
	return NULL;
}

void cmos_rtc_reset(struct cmos_rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	rtc->ram[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
	rtc->ram[REG_C] = 0;
	rtc->checked = guest_now(rtc);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

void cmos_rtc_destroy(struct cmos_rtc *rtc)
{
	if (!rtc)
		return;
	bus_unregister(rtc->pio, CMOS_RTC_PORT);
	if (rtc->have_timer)
		event_timer_destroy(rtc->loop, &rtc->timer);
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

/*
 * Version 1: index and NMI mask, the 128 bytes of registers and CMOS RAM,
 * and the guest's clock as an offset from the host's wall clock, so a
 * restored or migrated guest reads the right date whenever it resumes.
 */
static int rtc_save(void *dev, const char *name, struct state_writer *w)
{
	struct cmos_rtc *rtc = dev;

	pthread_mutex_lock(&rtc->lock);
	catch_up(rtc);
	update_irq(rtc);
	state_begin(w, name, 1);
	state_put_u8(w, rtc->index);
	state_put_bool(w, rtc->nmi_masked);
	state_put_bytes(w, rtc->ram, sizeof(rtc->ram));
	state_put_u64(w, (uint64_t)rtc->offset.sec);
	state_put_u64(w, (uint64_t)rtc->offset.nsec);
	state_end(w);
	pthread_mutex_unlock(&rtc->lock);
	return state_writer_error(w);
}

static int rtc_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	struct cmos_rtc *rtc = dev;
	uint8_t index, ram[128];
	int64_t off_sec, off_nsec;
	bool nmi;

	if (state_check_version(s, 1, 1, err, errlen))
		return -EINVAL;
	index = state_get_u8(s);
	nmi = state_get_bool(s);
	state_get_bytes(s, ram, sizeof(ram));
	off_sec = (int64_t)state_get_u64(s);
	off_nsec = (int64_t)state_get_u64(s);
	if (state_finish(s, err, errlen))
		return -EBADMSG;
	/* timegm() can only have made offsets within a few hundred years of now. */
	if (index > 0x7f || off_nsec < -NS || off_nsec >= NS || off_sec > (1LL << 40) ||
	    off_sec < -(1LL << 40)) {
		snprintf(err, errlen, "%s: saved values out of range", s->tag);
		return -EINVAL;
	}
	pthread_mutex_lock(&rtc->lock);
	rtc->index = index;
	rtc->nmi_masked = nmi;
	memcpy(rtc->ram, ram, sizeof(ram));
	rtc->offset.sec = off_sec;
	rtc->offset.nsec = off_nsec;
	/* Events missed while the VM was saved are not replayed. */
	rtc->checked = guest_now(rtc);
	rtc->line = !(irq_sources(rtc) != 0);
	update_irq(rtc);
	schedule(rtc);
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

static void rtc_stats(void *dev, struct stats_sink *sink)
{
	struct cmos_rtc *rtc = dev;
	uint64_t irqs;

	pthread_mutex_lock(&rtc->lock);
	irqs = rtc->irqs;
	pthread_mutex_unlock(&rtc->lock);
	stats_counter(sink, "interrupts", irqs);
}

const struct device_ops cmos_rtc_device_ops = {
	.type = "cmos-rtc",
	.state_version = 1,
	.save = rtc_save,
	.load = rtc_load,
	.stats = rtc_stats,
};
