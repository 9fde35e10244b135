// SPDX-License-Identifier: Apache-2.0
/* The API's statistics: per vCPU and per device, as JSON. */
#include "keel/compiler.h"
#include "vmm/control.h"

struct json_sink {
	struct stats_sink sink;
	json_object *counters;
	json_object *histograms;
};

/*
 * The vCPU or I/O thread keeps recording while this reads, so "count" is
 * the sum of the buckets as read, never a separate load: a client adding
 * the buckets up must get exactly the count.
 */
static json_object *histogram_json(const struct stats_histogram *h)
{
	json_object *o = json_object_new_object(), *buckets = json_object_new_array();
	uint64_t n[STATS_HIST_BUCKETS], count = 0;

	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
		n[i] = atomic_load(&h->bucket[i]);
		count += n[i];
	}
	json_object_object_add(o, "count", json_object_new_uint64(count));
	json_object_object_add(o, "sum_ns", json_object_new_uint64(atomic_load(&h->sum_ns)));
	/* Only buckets with samples; "lt_ns" is the bucket's exclusive upper bound. */
	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
		json_object *b;

		if (!n[i])
			continue;
		b = json_object_new_object();
		if (stats_histogram_bucket_limit(i) == UINT64_MAX)
			json_object_object_add(b, "lt_ns", NULL);
		else
			json_object_object_add(b, "lt_ns",
					       json_object_new_uint64(stats_histogram_bucket_limit(i)));
		json_object_object_add(b, "count", json_object_new_uint64(n[i]));
		json_object_array_add(buckets, b);
	}
	json_object_object_add(o, "buckets", buckets);
	return o;
}

static void sink_counter(struct stats_sink *s, const char *name, uint64_t value)
{
	struct json_sink *js = container_of(s, struct json_sink, sink);

	json_object_object_add(js->counters, name, json_object_new_uint64(value));
}

static void sink_histogram(struct stats_sink *s, const char *name, const struct stats_histogram *h)
{
	struct json_sink *js = container_of(s, struct json_sink, sink);

	json_object_object_add(js->histograms, name, histogram_json(h));
}

json_object *control_device_stats(struct machine *m)
{
	json_object *list = json_object_new_array();

	for (unsigned i = 0; i < m->devices.nr; i++) {
		const struct device_entry *d = &m->devices.items[i];
		struct json_sink js = {
			.sink = { .counter = sink_counter, .histogram = sink_histogram },
			.counters = json_object_new_object(),
			.histograms = json_object_new_object(),
		};
		json_object *o = json_object_new_object();

		if (d->ops->stats)
			d->ops->stats(d->dev, &js.sink);
		json_object_object_add(o, "name", json_object_new_string(d->name));
		json_object_object_add(o, "type", json_object_new_string(d->ops->type));
		json_object_object_add(o, "counters", js.counters);
		json_object_object_add(o, "histograms", js.histograms);
		json_object_array_add(list, o);
	}
	return list;
}

json_object *control_vcpu_stats(struct machine *m)
{
	json_object *list = json_object_new_array();

	for (unsigned i = 0; i < m->nr_vcpus_created; i++) {
		struct vcpu *v = &m->vcpus[i];
		json_object *o = json_object_new_object(), *exits = json_object_new_object();
		uint64_t total = 0;

		for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
			uint64_t n = atomic_load(&v->stats.exits[k]);

			total += n;
			json_object_object_add(exits, vcpu_exit_kind_name(k), json_object_new_uint64(n));
		}
		json_object_object_add(o, "index", json_object_new_int((int)v->index));
		json_object_object_add(o, "apic_id", json_object_new_int((int)v->apic_id));
		json_object_object_add(o, "exits_total", json_object_new_uint64(total));
		json_object_object_add(o, "exits", exits);
		json_object_object_add(o, "unhandled_io",
				       json_object_new_uint64(atomic_load(&v->stats.unhandled_io)));
		json_object_object_add(o, "unhandled_mmio",
				       json_object_new_uint64(atomic_load(&v->stats.unhandled_mmio)));
		json_object_object_add(o, "pauses", json_object_new_uint64(atomic_load(&v->stats.pauses)));
		json_object_object_add(o, "io_handling", histogram_json(&v->stats.io_handling));
		json_object_object_add(o, "mmio_handling", histogram_json(&v->stats.mmio_handling));
		json_object_array_add(list, o);
	}
	return list;
}
