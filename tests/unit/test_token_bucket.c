// SPDX-License-Identifier: Apache-2.0
/*
 * The token buckets of keel/token_bucket.h on a fake clock: long-run
 * accuracy, exact bursts, peaks, requests bigger than the bucket, changes
 * at run time, and fairness between clients sharing one limit.
 */
#include "keel/compiler.h"
#include "keel/token_bucket.h"
#include "ktest.h"

#define S TB_NS_PER_S
#define MS (S / 1000)

/*
 * A client keeps one request waiting at all times (a greedy guest queue):
 * as soon as one may go it counts it and reserves the next.
 */
struct client {
	struct rate_limit *rl;
	struct rate_ticket t;
	uint64_t cost;         /* of the request waiting */
	uint64_t (*next_cost)(struct client *c);
	uint64_t seed;
	uint64_t requests, units;
};

static uint64_t fixed_cost(struct client *c)
{
	return c->cost;
}

/* Sizes from 512 B to 256 KiB, from a fixed seed so a failure repeats. */
static uint64_t random_size(struct client *c)
{
	c->seed = c->seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return 512 * (1 + (c->seed >> 33) % 512);
}

static void client_start(struct client *c, struct rate_limit *rl, uint64_t cost,
			 uint64_t (*next)(struct client *), uint64_t now)
{
	*c = (struct client){ .rl = rl, .cost = cost, .next_cost = next, .seed = 42 };
	c->cost = next(c);
	rate_limit_reserve(rl, c->cost, now, &c->t);
}

/*
 * Runs the clients until `end`: each step lets go the client whose
 * request is ready first (the waits are recomputed every step, as the
 * devices' timers are re-armed). Returns the time reached.
 */
static uint64_t run(struct client *cl, unsigned n, uint64_t now, uint64_t end)
{
	unsigned who = n - 1;

	for (;;) {
		uint64_t best = UINT64_MAX;
		unsigned last = who;

		/* Ties go round-robin, as the devices scan their queues. */
		for (unsigned k = 1; k <= n; k++) {
			unsigned i = (last + k) % n;
			uint64_t w = rate_limit_wait_ns(cl[i].rl, &cl[i].t, now);

			if (w < best) {
				best = w;
				who = i;
			}
		}
		if (best > end - now)
			return end;
		now += best;
		cl[who].requests++;
		cl[who].units += cl[who].cost;
		cl[who].cost = cl[who].next_cost(&cl[who]);
		rate_limit_reserve(cl[who].rl, cl[who].cost, now, &cl[who].t);
	}
}

static bool within(double got, double want, double fraction)
{
	double d = got > want ? got - want : want - got;

	return d <= want * fraction;
}

KTEST(average_iops_exact_over_60s)
{
	struct rate_limit rl;
	struct client c;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 500 }, 0);
	client_start(&c, &rl, 1, fixed_cost, 0);
	run(&c, 1, 0, 60 * S);
	/* The default bucket holds 100 ms of the rate: 50, then exactly 500 a second. */
	KCHECK_EQ(c.requests, 50 + 500 * 60);
	KCHECK(within((double)c.requests, 30000, 0.01));
}

KTEST(average_bytes_within_1pct_over_60s)
{
	struct rate_limit rl;
	struct client c;
	uint64_t rate = 10 * MiB, burst = 1 * MiB, want = rate * 60 + burst;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = rate, .burst = burst }, 0);
	client_start(&c, &rl, 0, random_size, 0);
	run(&c, 1, 0, 60 * S);
	KCHECK(within((double)c.units, (double)want, 0.01));
	/* Tighter: off by less than one request. */
	KCHECK(c.units <= want && want - c.units < 256 * KiB);
}

KTEST(fraction_of_a_token_is_kept)
{
	struct token_bucket tb;

	tb_init(&tb, 3, 10, 0);
	tb.earned = 0; /* start empty */
	KCHECK_EQ(tb_level(&tb, 333333333), 0); /* 0.999999999 tokens */
	KCHECK_EQ(tb_level(&tb, 333333334), 1);
	KCHECK_EQ(tb_level(&tb, 3 * S), 9);
	KCHECK_EQ(tb_level(&tb, 10 * S), 10); /* full */
	/* Many small steps earn what one big step does. */
	tb_init(&tb, 7, 1000000, 0);
	tb.earned = 0;
	for (uint64_t t = 0; t <= 100 * S; t += 12345)
		tb_level(&tb, t);
	KCHECK_EQ(tb_level(&tb, 100 * S), 700);
}

KTEST(burst_is_exact)
{
	struct rate_limit rl;
	struct rate_ticket t;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 100, .burst = 50 }, 0);
	for (unsigned i = 0; i < 50; i++) {
		rate_limit_reserve(&rl, 1, 0, &t);
		KCHECK_EQ(rate_limit_wait_ns(&rl, &t, 0), 0);
	}
	rate_limit_reserve(&rl, 1, 0, &t);
	KCHECK_EQ(rate_limit_wait_ns(&rl, &t, 0), 10 * MS); /* one token at 100/s */
	KCHECK_EQ(rate_limit_wait_ns(&rl, &t, 10 * MS - 1), 1);
	KCHECK_EQ(rate_limit_wait_ns(&rl, &t, 10 * MS), 0);
	/* Idle for 10 s refills only to the burst. */
	KCHECK_EQ(tb_level(&rl.avg, 10 * S), 50);
}

KTEST(burst_is_spent_at_the_peak)
{
	struct rate_limit rl;
	struct client c;
	uint64_t at_1s, at_2s, at_3s, at_4s;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 100, .burst = 1000,
							 .peak = 500 }, 0);
	client_start(&c, &rl, 1, fixed_cost, 0);
	run(&c, 1, 0, 1 * S);
	at_1s = c.requests;
	run(&c, 1, 1 * S, 2 * S);
	at_2s = c.requests;
	run(&c, 1, 2 * S, 3 * S);
	at_3s = c.requests;
	run(&c, 1, 3 * S, 4 * S);
	at_4s = c.requests;
	/* 10 ms of the peak at once, then the peak rate... */
	KCHECK_EQ(at_1s, 5 + 500);
	KCHECK_EQ(at_2s - at_1s, 500);
	/* ...until the burst is spent (at 2.4875 s: 1000 + 100 t = 5 + 500 t), then the average. */
	KCHECK(at_3s - at_2s < 500 && at_3s - at_2s > 100);
	KCHECK_EQ(at_4s - at_3s, 100);
	run(&c, 1, 4 * S, 60 * S);
	KCHECK_EQ(c.requests, 1000 + 100 * 60);
}

KTEST(request_bigger_than_the_bucket)
{
	struct rate_limit rl;
	struct client c;
	uint64_t rate = 1 * MiB;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = rate, .burst = 4 * KiB }, 0);
	client_start(&c, &rl, 64 * KiB, fixed_cost, 0);
	/* The first goes (bucket full), the next once the debt is paid and the bucket full. */
	KCHECK_EQ(rate_limit_wait_ns(&rl, &c.t, 0), 0);
	run(&c, 1, 0, 1);
	KCHECK_EQ(c.requests, 1);
	KCHECK_EQ(rate_limit_wait_ns(&rl, &c.t, 1), 64 * KiB * S / rate - 1);
	run(&c, 1, 1, 60 * S);
	KCHECK(within((double)c.units, (double)(rate * 60), 0.01));
}

KTEST(runtime_change_applies_to_waiting_requests)
{
	struct rate_limit rl;
	struct client c;
	uint64_t before;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 100, .burst = 1 }, 0);
	client_start(&c, &rl, 1, fixed_cost, 0);
	run(&c, 1, 0, 10 * S + 5 * MS);
	/* A request waits for its token, due at 10.01 s at 100/s. */
	KCHECK_EQ(rate_limit_wait_ns(&rl, &c.t, 10 * S + 5 * MS), 5 * MS);
	rate_limit_set(&rl, &(struct rate_limit_params){ .average = 1000, .burst = 1 }, 10 * S + 5 * MS);
	/* Half a token was earned at the old rate; the other half at 1000/s. */
	KCHECK_EQ(rate_limit_wait_ns(&rl, &c.t, 10 * S + 5 * MS), MS / 2);
	before = c.requests;
	run(&c, 1, 10 * S + 5 * MS, 20 * S + 5 * MS);
	KCHECK_EQ(c.requests - before, 10000);
	/* Down again: the next second has the new rate. */
	rate_limit_set(&rl, &(struct rate_limit_params){ .average = 10, .burst = 1 }, 20 * S + 5 * MS);
	KCHECK(rate_limit_wait_ns(&rl, &c.t, 20 * S + 5 * MS) <= 100 * MS);
	before = c.requests;
	run(&c, 1, 20 * S + 5 * MS, 21 * S + 5 * MS);
	KCHECK(c.requests - before == 10 || c.requests - before == 11);
	/* Lifted: the waiting request goes at once. */
	rate_limit_set(&rl, &(struct rate_limit_params){ 0 }, 21 * S + 5 * MS);
	KCHECK_EQ(rate_limit_wait_ns(&rl, &c.t, 21 * S + 5 * MS), 0);
	KCHECK(!rate_limit_active(&rl));
	/* Limited again: it starts with a full bucket. */
	rate_limit_set(&rl, &(struct rate_limit_params){ .average = 10, .burst = 7 }, 22 * S);
	KCHECK_EQ(tb_level(&rl.avg, 22 * S), 7);
}

KTEST(burst_change_at_run_time)
{
	struct rate_limit rl;

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 100, .burst = 1000 }, 0);
	/* A smaller bucket drops what no longer fits. */
	rate_limit_set(&rl, &(struct rate_limit_params){ .average = 100, .burst = 10 }, 1 * S);
	KCHECK_EQ(tb_level(&rl.avg, 1 * S), 10);
	rate_limit_set(&rl, &(struct rate_limit_params){ .average = 100, .burst = 500 }, 1 * S);
	KCHECK_EQ(tb_level(&rl.avg, 2 * S), 110);
}

KTEST(shared_limit_is_fair)
{
	struct rate_limit rl;
	struct client c[3];

	rate_limit_init(&rl, &(struct rate_limit_params){ .average = 300, .burst = 30 }, 0);
	for (unsigned i = 0; i < 3; i++)
		client_start(&c[i], &rl, 1, fixed_cost, 0);
	run(c, 3, 0, 60 * S);
	KCHECK_EQ(c[0].requests + c[1].requests + c[2].requests, 30 + 300 * 60);
	for (unsigned i = 0; i < 3; i++)
		KCHECK(c[i].requests >= 6009 && c[i].requests <= 6011);
}

KTEST(shared_bandwidth_takes_turns)
{
	struct rate_limit rl;
	struct client c[2];
	uint64_t rate = 8 * MiB;

	/* Unequal requests: turns are equal, so bytes follow the request sizes. */
	rate_limit_init(&rl, &(struct rate_limit_params){ .average = rate }, 0);
	client_start(&c[0], &rl, 4 * KiB, fixed_cost, 0);
	client_start(&c[1], &rl, 0, random_size, 0);
	run(c, 2, 0, 60 * S);
	KCHECK(within((double)(c[0].units + c[1].units), (double)(rate * 60), 0.01));
	KCHECK(c[0].requests + 1 >= c[1].requests && c[1].requests + 1 >= c[0].requests);
}

KTEST(unlimited_and_huge_values)
{
	struct rate_limit rl;
	struct rate_ticket t;
	struct token_bucket tb;

	rate_limit_init(&rl, &(struct rate_limit_params){ .burst = 5, .peak = 7 }, 0);
	KCHECK(!rate_limit_active(&rl));
	for (unsigned i = 0; i < 1000; i++) {
		rate_limit_reserve(&rl, UINT64_MAX / 2, 0, &t);
		KCHECK_EQ(rate_limit_wait_ns(&rl, &t, 0), 0);
	}
	/* A terabit per second, idle for 30 years: no overflow, the bucket just full. */
	tb_init(&tb, 1000000000000ULL, 1ULL << 40, 0);
	KCHECK_EQ(tb_reserve(&tb, 1ULL << 40, 0), 1ULL << 40);
	KCHECK_EQ(tb_level(&tb, 30ULL * 365 * 86400 * S), 1ULL << 40);
	/* One token a second, a huge debt: the wait is long but exact. */
	tb_init(&tb, 1, 1, 0);
	KCHECK_EQ(tb_wait_ns(&tb, tb_reserve(&tb, 1000000, 0), 0), 0);
	KCHECK_EQ(tb_wait_ns(&tb, tb_reserve(&tb, 1, 0), 0), 1000000 * S);
}

int main(void)
{
	return ktest_run_all();
}
