// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk under I/O limits (block/throttle.h): requests are held back
 * but all complete, queues and grouped disks take turns, a limit changed
 * while requests wait applies to them, a reset drops a held request
 * cleanly, and the option strings refuse what makes no sense.
 *
 * Time here is real (the device's timer), so only lower bounds on elapsed
 * time are asserted, which a slow machine cannot break; the limiter's
 * accuracy is unit-tested on a fake clock (tests/unit/test_token_bucket.c)
 * and measured by make bench.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blkrig.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "virtio/virtio.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Posts n 4 KiB reads on queue q; their status bytes go to st. */
static void post_reads(struct blkrig *r, unsigned q, unsigned n, uint64_t *st)
{
	for (unsigned i = 0; i < n; i++)
		post_request(r, q, T_IN, 8ULL * i, h_alloc(&r->h, 4096, 4096), 4096, true, &st[i]);
}

/* One completion from any of the rigs' queues, polled; returns its rig*queues+queue or -1. */
static int next_completion(struct blkrig **rigs, unsigned nrigs, unsigned nq, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;

	while (now_s() < end) {
		for (unsigned i = 0; i < nrigs; i++)
			for (unsigned q = 0; q < nq; q++)
				if (vd_get_used(&rigs[i]->d, q, NULL, NULL, 0) == 1)
					return (int)(i * nq + q);
		usleep(200);
	}
	return -1;
}

static bool all_ok(struct blkrig *r, const uint64_t *st, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (*(uint8_t *)h_ptr(&r->h, st[i]) != 0)
			return false;
	return true;
}

KTEST(blk_iops_limit_holds_requests_back)
{
	struct blkrig r, *rigs[] = { &r };
	struct virtio_blk_throttle_stats s;
	uint64_t st[25];
	double t0;

	KASSERT(blkrig_up(&r, ",aio=threads,iops=100,iops-burst=5", true) == 0);
	t0 = now_s();
	post_reads(&r, 0, 25, st);
	for (unsigned i = 0; i < 25; i++)
		KCHECK(next_completion(rigs, 1, 1, 5000) == 0);
	/* 5 at once, then 20 at 100 per second: at least 0.2 s. */
	KCHECK(now_s() - t0 >= 0.19);
	KCHECK(all_ok(&r, st, 25));
	virtio_blk_throttle_stats(r.blk, &s);
	/*
	 * The elapsed time proves the rate. How many requests had to wait
	 * depends on scheduling: an I/O thread woken late finds a token
	 * already there for the next one (seen under ASan on a loaded host).
	 */
	KCHECK(s.delayed >= 1 && s.delayed <= 20);
	KCHECK(s.delay_ns > 0);
	KCHECK_EQ(s.waiting, 0);
	blkrig_down(&r);
}

KTEST(blk_bandwidth_limit_counts_bytes)
{
	struct blkrig r, *rigs[] = { &r };
	uint64_t st[8];
	double t0;

	/* 8 reads of 64 KiB at 1 MiB/s with a 64 KiB bucket: the last 7 take 7/16 s. */
	KASSERT(blkrig_up(&r, ",aio=threads,bw=1M,bw-burst=64K", true) == 0);
	t0 = now_s();
	for (unsigned i = 0; i < 8; i++)
		post_request(&r, 0, T_IN, 128ULL * i, h_alloc(&r.h, 65536, 4096), 65536, true, &st[i]);
	for (unsigned i = 0; i < 8; i++)
		KCHECK(next_completion(rigs, 1, 1, 5000) == 0);
	KCHECK(now_s() - t0 >= 0.43);
	KCHECK(all_ok(&r, st, 8));
	/* A write limit does not hold reads. */
	virtio_blk_set_limits(r.blk, &(struct blk_limits){ .l[BLK_LIMIT_BW_WR] = { .average = 1 } });
	t0 = now_s();
	KCHECK_EQ(request(&r, 0, T_IN, 0, h_alloc(&r.h, 65536, 4096), 65536, true, NULL), 0);
	KCHECK(now_s() - t0 < 1.0);
	blkrig_down(&r);
}

KTEST(blk_queues_take_turns)
{
	struct blkrig r, *rigs[] = { &r };
	uint64_t st[2][12];
	unsigned done[2] = { 0, 0 };

	KASSERT(blkrig_up(&r, ",aio=threads,queues=2,iops=50,iops-burst=1", true) == 0);
	post_reads(&r, 0, 12, st[0]);
	post_reads(&r, 1, 12, st[1]);
	for (unsigned i = 0; i < 16; i++) {
		int who = next_completion(rigs, 1, 2, 5000);

		KASSERT(who >= 0);
		done[who]++;
	}
	/* Queue 0 was posted first and gets no more than its turn. */
	KCHECK(done[0] >= 7 && done[0] <= 9);
	KCHECK(done[1] >= 7 && done[1] <= 9);
	for (unsigned i = 0; i < 8; i++)
		KCHECK(next_completion(rigs, 1, 2, 5000) >= 0);
	KCHECK(all_ok(&r, st[0], 12) && all_ok(&r, st[1], 12));
	blkrig_down(&r);
}

KTEST(blk_group_shared_fairly)
{
	struct blkrig a, b, *rigs[] = { &a, &b };
	struct blk_throttle group;
	uint64_t st[2][20];
	unsigned done[2] = { 0, 0 };
	double t0;

	blk_throttle_init(&group, "g", &(struct blk_limits){ .l[BLK_LIMIT_IOPS] = {
					       .average = 100, .burst = 2 } });
	KASSERT(blkrig_up(&a, ",aio=threads", true) == 0);
	KASSERT(blkrig_up(&b, ",aio=threads", true) == 0);
	virtio_blk_join_group(a.blk, &group);
	virtio_blk_join_group(b.blk, &group);
	t0 = now_s();
	post_reads(&a, 0, 20, st[0]);
	post_reads(&b, 0, 20, st[1]);
	for (unsigned i = 0; i < 20; i++) {
		int who = next_completion(rigs, 2, 1, 5000);

		KASSERT(who >= 0);
		done[who]++;
	}
	KCHECK(done[0] >= 8 && done[0] <= 12);
	KCHECK(done[1] >= 8 && done[1] <= 12);
	for (unsigned i = 0; i < 20; i++)
		KCHECK(next_completion(rigs, 2, 1, 5000) >= 0);
	/* 40 requests, 2 at once, 100 per second between the two disks. */
	KCHECK(now_s() - t0 >= 0.37);
	KCHECK(all_ok(&a, st[0], 20) && all_ok(&b, st[1], 20));
	blkrig_down(&a);
	blkrig_down(&b);
	blk_throttle_destroy(&group);
}

KTEST(blk_limit_change_applies_to_waiting_requests)
{
	struct blkrig r, *rigs[] = { &r };
	struct blk_limits lim;
	uint64_t st[20];
	double t0;

	KASSERT(blkrig_up(&r, ",aio=threads,iops=10,iops-burst=1", true) == 0);
	virtio_blk_get_limits(r.blk, &lim);
	KCHECK_EQ(lim.l[BLK_LIMIT_IOPS].average, 10);
	KCHECK_EQ(lim.l[BLK_LIMIT_IOPS].burst, 1);
	t0 = now_s();
	post_reads(&r, 0, 20, st);
	KCHECK(next_completion(rigs, 1, 1, 5000) == 0);
	KCHECK(next_completion(rigs, 1, 1, 5000) == 0);
	/* 18 wait, which at 10 per second would take 1.7 s more. */
	lim.l[BLK_LIMIT_IOPS] = (struct rate_limit_params){ .average = 10000 };
	virtio_blk_set_limits(r.blk, &lim);
	for (unsigned i = 0; i < 18; i++)
		KCHECK(next_completion(rigs, 1, 1, 5000) == 0);
	KCHECK(now_s() - t0 < 1.7);
	KCHECK(all_ok(&r, st, 20));
	blkrig_down(&r);
}

KTEST(blk_reset_drops_held_request)
{
	struct blkrig r;
	struct virtio_blk_throttle_stats s;
	uint64_t st[3];

	KASSERT(blkrig_up(&r, ",aio=threads,iops=1,iops-burst=1", true) == 0);
	post_reads(&r, 0, 3, st);
	usleep(50000);
	virtio_blk_throttle_stats(r.blk, &s);
	KCHECK_EQ(s.waiting, 1);
	vd_reset(&r.d);
	virtio_blk_throttle_stats(r.blk, &s);
	KCHECK_EQ(s.waiting, 0);
	/* Unlimited now: a fresh driver is served at once. */
	virtio_blk_set_limits(r.blk, &(struct blk_limits){ 0 });
	KASSERT(blkrig_driver_up(&r) == 0);
	KCHECK_EQ(request(&r, 0, T_IN, 0, h_alloc(&r.h, 512, 512), 512, true, NULL), 0);
	blkrig_down(&r);
}

static const char *parse_error(const char *spec)
{
	static char err[512];
	struct virtio_blk_opts o;

	if (virtio_blk_parse(spec, &o, err, sizeof(err)) == 0)
		return "(accepted)";
	return err;
}

KTEST(blk_limit_options)
{
	struct virtio_blk_opts o;
	char err[512];

	KCHECK_EQ(virtio_blk_parse("path=/x,iops=500,iops-burst=1000,iops-peak=2000,bw-rd=10M,"
				   "bw-wr-burst=1G,bw-wr=5M,group=db", &o, err, sizeof(err)), 0);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_IOPS].average, 500);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_IOPS].burst, 1000);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_IOPS].peak, 2000);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_BW_RD].average, 10 << 20);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_BW_WR].average, 5 << 20);
	KCHECK_EQ(o.limits.l[BLK_LIMIT_BW_WR].burst, 1 << 30);
	KCHECK_STR(o.group, "db");
	KCHECK_STR(parse_error("path=/x,iops=-5"), "--disk: iops -5: a limit cannot be negative");
	KCHECK_STR(parse_error("path=/x,bw=-1M"), "--disk: bw -1M: a limit cannot be negative");
	KCHECK_STR(parse_error("path=/x,iops=20000000"),
		   "--disk: iops 20000000 is absurd: at most 10000000 per second");
	KCHECK_STR(parse_error("path=/x,bw=2T"),
		   "--disk: bw 2199023255552 is absurd: at most 1099511627776 bytes per second");
	KCHECK_STR(parse_error("path=/x,iops=99999999999999999999999"),
		   "--disk: iops 99999999999999999999999 is absurd: at most 10000000 per second");
	KCHECK_STR(parse_error("path=/x,iops=fast"),
		   "--disk: iops 'fast' is not a whole number of operations");
	KCHECK_STR(parse_error("path=/x,bw-rd=lots"),
		   "--disk: bw-rd 'lots' is not a number of bytes (examples: 500K, 10M)");
	KCHECK_STR(parse_error("path=/x,iops-burst=100"),
		   "--disk: iops-burst needs iops (the average) as well");
	KCHECK_STR(parse_error("path=/x,iops=500,iops-peak=100"),
		   "--disk: iops-peak 100 is below iops 500 (the peak is the fastest rate, the "
		   "average the long-run one)");
	KCHECK(strstr(parse_error("path=/x,iops-max=5"), "unknown key 'iops-max'") != NULL);
}

int main(void)
{
	return ktest_run_all();
}
