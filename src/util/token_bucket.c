// SPDX-License-Identifier: Apache-2.0
#include <time.h>

#include "keel/compiler.h"
#include "keel/token_bucket.h"

typedef unsigned __int128 u128;

uint64_t tb_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * TB_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* consumed + capacity without wrapping: the level at which the bucket is full. */
static uint64_t full_mark(const struct token_bucket *tb)
{
	return tb->consumed > UINT64_MAX - tb->capacity ? UINT64_MAX : tb->consumed + tb->capacity;
}

/* Brings `earned` up to now. Integer arithmetic only, so nothing drifts. */
static void refill(struct token_bucket *tb, uint64_t now_ns)
{
	uint64_t dt, full;
	u128 x, add;

	if (now_ns <= tb->last_ns)
		return;
	dt = now_ns - tb->last_ns;
	tb->last_ns = now_ns;
	if (!tb->rate)
		return;
	full = full_mark(tb);
	if (tb->earned >= full) {
		/* Full: nothing accrues, and the next token starts from nothing. */
		tb->frac = 0;
		return;
	}
	x = (u128)tb->rate * dt + tb->frac;
	add = x / TB_NS_PER_S;
	if (add >= full - tb->earned) {
		tb->earned = full;
		tb->frac = 0;
	} else {
		tb->earned += (uint64_t)add;
		tb->frac = (uint64_t)(x % TB_NS_PER_S);
	}
}

void tb_init(struct token_bucket *tb, uint64_t rate, uint64_t capacity, uint64_t now_ns)
{
	*tb = (struct token_bucket){
		.rate = rate,
		.capacity = capacity,
		.earned = capacity,
		.last_ns = now_ns,
	};
}

void tb_set(struct token_bucket *tb, uint64_t rate, uint64_t capacity, uint64_t now_ns)
{
	bool was_unlimited = !tb->rate;

	refill(tb, now_ns);
	tb->capacity = capacity;
	if (was_unlimited) {
		tb->earned = full_mark(tb);
		tb->frac = 0;
	} else if (tb->earned > full_mark(tb)) {
		tb->earned = full_mark(tb);
		tb->frac = 0;
	}
	tb->rate = rate;
}

uint64_t tb_reserve(struct token_bucket *tb, uint64_t cost, uint64_t now_ns)
{
	uint64_t ticket;

	if (!tb->rate)
		return 0;
	refill(tb, now_ns);
	/*
	 * The request may go once the bucket holds what it had now plus the
	 * cost, or is full for a request bigger than the bucket.
	 */
	ticket = tb->consumed + MIN(cost, tb->capacity);
	tb->consumed += cost;
	return ticket;
}

uint64_t tb_wait_ns(struct token_bucket *tb, uint64_t ticket, uint64_t now_ns)
{
	u128 need, ns;

	if (!tb->rate)
		return 0;
	refill(tb, now_ns);
	if (tb->earned >= ticket)
		return 0;
	/* In 1e-9 tokens: the missing whole tokens less the fraction already earned. */
	need = (u128)(ticket - tb->earned) * TB_NS_PER_S - tb->frac;
	ns = (need + tb->rate - 1) / tb->rate;
	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

uint64_t tb_level(struct token_bucket *tb, uint64_t now_ns)
{
	refill(tb, now_ns);
	return tb->earned > tb->consumed ? tb->earned - tb->consumed : 0;
}

/* `ns` of a rate, at least one token. */
static uint64_t window(uint64_t rate, uint64_t ns)
{
	return MAX(rate / (TB_NS_PER_S / ns), 1ULL);
}

static uint64_t avg_capacity(const struct rate_limit_params *p)
{
	return p->burst ? p->burst : window(p->average, RATE_LIMIT_DEFAULT_BURST_NS);
}

void rate_limit_init(struct rate_limit *rl, const struct rate_limit_params *p, uint64_t now_ns)
{
	rl->p = p->average ? *p : (struct rate_limit_params){ 0 };
	tb_init(&rl->avg, rl->p.average, avg_capacity(&rl->p), now_ns);
	tb_init(&rl->peak, rl->p.peak, window(rl->p.peak, RATE_LIMIT_WINDOW_NS), now_ns);
}

void rate_limit_set(struct rate_limit *rl, const struct rate_limit_params *p, uint64_t now_ns)
{
	rl->p = p->average ? *p : (struct rate_limit_params){ 0 };
	tb_set(&rl->avg, rl->p.average, avg_capacity(&rl->p), now_ns);
	tb_set(&rl->peak, rl->p.peak, window(rl->p.peak, RATE_LIMIT_WINDOW_NS), now_ns);
}

void rate_limit_reserve(struct rate_limit *rl, uint64_t cost, uint64_t now_ns,
			struct rate_ticket *t)
{
	t->avg = tb_reserve(&rl->avg, cost, now_ns);
	t->peak = tb_reserve(&rl->peak, cost, now_ns);
}

uint64_t rate_limit_wait_ns(struct rate_limit *rl, const struct rate_ticket *t, uint64_t now_ns)
{
	return MAX(tb_wait_ns(&rl->avg, t->avg, now_ns), tb_wait_ns(&rl->peak, t->peak, now_ns));
}
