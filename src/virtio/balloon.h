/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-balloon (virtio 1.2 section 5.5): the host asks the guest to give
 * up memory (the target in config space), the guest hands over page frame
 * numbers on the inflate queue and takes pages back on the deflate queue;
 * the statistics queue reports the guest's free, available and cached
 * memory, swap traffic and faults; free page reporting hands over ranges
 * of free memory the guest may reuse without notice; with deflate-on-OOM
 * the guest deflates by itself rather than run out of memory.
 *
 * The device does not know how guest RAM is backed: a `balloon_memory`
 * gives pages back to the host (vmm/guest_ram.h does it per backing).
 *
 * Queues, in order, as Linux numbers them (only the queues of negotiated
 * features count): inflate, deflate, stats (STATS_VQ), reporting
 * (REPORTING). Free page hinting and page poisoning are not offered.
 */
#ifndef KEEL_VIRTIO_BALLOON_H
#define KEEL_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "pci/pci.h"

#define VIRTIO_ID_BALLOON 5
#define BALLOON_PAGE 4096ULL

struct virtio_balloon_opts {
	bool deflate_on_oom;      /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool free_page_reporting; /* VIRTIO_BALLOON_F_REPORTING */
	unsigned stats_interval_s; /* the guest is asked for statistics this often (0: on request) */
};

/*
 * "[deflate-on-oom=on][,free-page-reporting=on][,stats-interval=SECONDS]"
 * (an empty string or "on" for the defaults: no OOM deflate, no
 * reporting, statistics every 5 s). 0, or -EINVAL with one line in err.
 */
int virtio_balloon_parse(const char *s, struct virtio_balloon_opts *opts, char *err, size_t errlen);

/*
 * Where pages go: called on the device's I/O thread with page-aligned
 * host addresses inside guest RAM. discard returns bytes given back to the
 * host or -errno; `free_report` says the guest may reuse the range without
 * telling (free page reporting) rather than after a deflate.
 */
struct balloon_memory {
	int64_t (*discard)(void *opaque, void *hva, uint64_t len, bool free_report);
	void (*reuse)(void *opaque, void *hva, uint64_t len);
	void (*reset)(void *opaque); /* device reset: the guest owns all of RAM again */
	void *opaque;
};

/* Guest statistics tags (5.5.6.3), as reported. */
enum balloon_stat {
	BALLOON_S_SWAP_IN,
	BALLOON_S_SWAP_OUT,
	BALLOON_S_MAJFLT,
	BALLOON_S_MINFLT,
	BALLOON_S_MEMFREE,
	BALLOON_S_MEMTOT,
	BALLOON_S_AVAIL,
	BALLOON_S_CACHES,
	BALLOON_S_HTLB_PGALLOC,
	BALLOON_S_HTLB_PGFAIL,
	BALLOON_S_COUNT,
};
const char *balloon_stat_name(enum balloon_stat s);

struct virtio_balloon_info {
	bool driver_ok;
	bool deflate_on_oom, free_page_reporting, stats_queue; /* negotiated */
	uint64_t target_pages;   /* what the host asked for */
	uint64_t actual_pages;   /* what the guest says it holds */
	uint64_t inflated_pages, deflated_pages; /* page numbers seen, in total */
	uint64_t discarded_bytes; /* given back to the host by inflation */
	uint64_t reported_bytes;  /* given back by free page reporting */
	uint64_t discard_errors;
	bool stats_valid[BALLOON_S_COUNT];
	uint64_t stats[BALLOON_S_COUNT];
	uint64_t stats_updates;  /* statistics buffers received */
	uint64_t stats_age_ns;   /* since the last one; 0 before the first */
};

struct virtio_balloon;

struct virtio_balloon *virtio_balloon_create(struct pci_host *pci, const struct guest_mem *mem,
					     const struct virtio_balloon_opts *opts,
					     const struct balloon_memory *bm, struct event_loop *loop);
void virtio_balloon_destroy(struct virtio_balloon *b);
/* Its transport, for the device-state operations (virtio_state.h). */
struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b);
/* The balloon's target size in 4 KiB pages; the guest is told at once. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages);
void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out);
/* Asks the guest for fresh statistics now (they arrive asynchronously). */
void virtio_balloon_request_stats(struct virtio_balloon *b);

#endif
