/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Statistics that devices and vCPUs publish through the control API:
 * named counters and latency histograms. A producer calls the sink's
 * functions from its stats callback (under its own lock, briefly); the API
 * layer's sink turns them into JSON, a test's sink records them.
 */
#ifndef KEEL_STATS_H
#define KEEL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Power-of-two buckets: bucket i counts values in [2^(i-1), 2^i) ns, bucket
 * 0 the value 0; the last bucket takes everything above. 2^39 ns is ~9 min.
 */
#define STATS_HIST_BUCKETS 40

struct stats_histogram {
	_Atomic uint64_t bucket[STATS_HIST_BUCKETS];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

void stats_histogram_add(struct stats_histogram *h, uint64_t ns);
/* The upper bound (exclusive, ns) of bucket i; UINT64_MAX for the last. */
uint64_t stats_histogram_bucket_limit(unsigned i);

struct stats_sink {
	void (*counter)(struct stats_sink *s, const char *name, uint64_t value);
	void (*histogram)(struct stats_sink *s, const char *name, const struct stats_histogram *h);
};

static inline void stats_counter(struct stats_sink *s, const char *name, uint64_t value)
{
	s->counter(s, name, value);
}

static inline void stats_hist(struct stats_sink *s, const char *name, const struct stats_histogram *h)
{
	s->histogram(s, name, h);
}

#endif
