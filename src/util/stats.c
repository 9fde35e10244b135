// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "keel/device.h"
#include "keel/stats.h"

void stats_histogram_add(struct stats_histogram *h, uint64_t ns)
{
	unsigned b = ns ? 64 - (unsigned)__builtin_clzll(ns) : 0;

	if (b >= STATS_HIST_BUCKETS)
		b = STATS_HIST_BUCKETS - 1;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

uint64_t stats_histogram_bucket_limit(unsigned i)
{
	return i + 1 >= STATS_HIST_BUCKETS ? UINT64_MAX : 1ULL << i;
}

int device_list_add(struct device_list *l, const char *name, const struct device_ops *ops, void *dev)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(l->items[0].name) || !ops)
		return -EINVAL;
	for (unsigned i = 0; i < l->nr; i++)
		if (!strcmp(l->items[i].name, name))
			return -EEXIST;
	if (l->nr == DEVICE_LIST_MAX)
		return -ENOSPC;
	memcpy(l->items[l->nr].name, name, n + 1);
	l->items[l->nr].ops = ops;
	l->items[l->nr].dev = dev;
	l->nr++;
	return 0;
}
