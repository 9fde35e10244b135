/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token buckets for rate limits: disk IOPS and bandwidth (src/block/throttle.c)
 * and NIC shaping (src/net/shaper.c).
 *
 * Exact, and driven by the caller's clock (nanoseconds, monotonic; tests pass
 * a fake one). Tokens are integers; the fraction of a token earned so far is
 * kept in 1e-9 tokens, so no rounding accumulates: after T seconds a bucket
 * has earned exactly floor(rate * T) tokens plus its initial fill.
 *
 * Reservations instead of polling: tb_reserve() takes the request's cost at
 * once (the bucket may go into debt) and returns a ticket; the request may
 * go when tb_wait_ns() says 0, and that function also says exactly how long
 * to sleep, so callers arm a precise timer instead of backing off by a fixed
 * period. Requests are served in the order they reserved, which is what makes
 * a bucket shared by several queues or disks fair: each waiting queue holds
 * one reservation at a time, so they take turns. A reservation stays valid
 * when the rate changes: it is a position in the stream of consumed tokens,
 * and only the time to reach it changes.
 *
 * A request may go when the bucket holds its cost, or, if it costs more than
 * the bucket can hold, when the bucket is full (the debt is then paid back
 * at the rate before anything else goes), so large requests are never stuck
 * and the long-run rate stays exact.
 *
 * Not thread-safe: callers lock (a group shared by disks on several I/O
 * threads has a mutex).
 */
#ifndef KEEL_TOKEN_BUCKET_H
#define KEEL_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

#define TB_NS_PER_S 1000000000ULL

struct token_bucket {
	uint64_t rate;     /* tokens per second; 0: unlimited */
	uint64_t capacity; /* the most it holds */
	uint64_t earned;   /* tokens earned since set-up, the initial fill included */
	uint64_t consumed; /* tokens reserved since set-up */
	uint64_t frac;     /* part of the next token earned, in 1e-9 tokens */
	uint64_t last_ns;  /* time earned was brought up to */
};

/* A bucket starting full. rate 0 makes it unlimited. */
void tb_init(struct token_bucket *tb, uint64_t rate, uint64_t capacity, uint64_t now_ns);
/*
 * Changes rate and capacity from now on: what was earned at the old rate
 * stays, outstanding tickets stay valid. A bucket that was unlimited
 * starts full.
 */
void tb_set(struct token_bucket *tb, uint64_t rate, uint64_t capacity, uint64_t now_ns);
/* Takes `cost` tokens; returns the ticket tb_wait_ns() checks. */
uint64_t tb_reserve(struct token_bucket *tb, uint64_t cost, uint64_t now_ns);
/* Nanoseconds until the ticket's request may go; 0 when it may now. */
uint64_t tb_wait_ns(struct token_bucket *tb, uint64_t ticket, uint64_t now_ns);
/* Tokens available now (0 in debt); for statistics. */
uint64_t tb_level(struct token_bucket *tb, uint64_t now_ns);

/*
 * A limit as operators state it: an average rate, a burst (how much above
 * the average may be spent at once: the average bucket's size) and a peak
 * (how fast a burst may be spent: a second bucket). Units are the caller's
 * (operations, bytes). average 0: no limit; burst 0: the default, 100 ms of
 * the average (at least 1); peak 0: a burst goes as fast as it comes.
 */
struct rate_limit_params {
	uint64_t average;
	uint64_t burst;
	uint64_t peak;
};

struct rate_limit {
	struct rate_limit_params p;
	struct token_bucket avg;
	struct token_bucket peak;
};

struct rate_ticket {
	uint64_t avg, peak;
};

/*
 * The default burst: what the bucket earns while the device waits for its
 * timer beyond its size is lost, so the bucket must outlast a late wake-up.
 * In the lab's loaded emulated host a 500 IOPS limit with a 10 ms bucket
 * gave 305-380 IOPS, with 100 ms (QEMU's default share, avg / 10) 438-464,
 * with 200 ms 483-504 (tests/lab qos-disk-iops).
 */
#define RATE_LIMIT_DEFAULT_BURST_NS (100 * 1000 * 1000ULL)
/* The peak bucket holds this much of the peak rate: requests at the peak are paced in 10 ms steps. */
#define RATE_LIMIT_WINDOW_NS (10 * 1000 * 1000ULL)

void rate_limit_init(struct rate_limit *rl, const struct rate_limit_params *p, uint64_t now_ns);
void rate_limit_set(struct rate_limit *rl, const struct rate_limit_params *p, uint64_t now_ns);
static inline bool rate_limit_active(const struct rate_limit *rl)
{
	return rl->p.average != 0;
}
void rate_limit_reserve(struct rate_limit *rl, uint64_t cost, uint64_t now_ns,
			struct rate_ticket *t);
uint64_t rate_limit_wait_ns(struct rate_limit *rl, const struct rate_ticket *t, uint64_t now_ns);

/* CLOCK_MONOTONIC in nanoseconds: the clock the devices use. */
uint64_t tb_clock_ns(void);

#endif
