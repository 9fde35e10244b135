/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2 section 5.2) over the block layer (keel/block.h):
 * IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES; capacity, block size,
 * topology, segment and discard limits in config space; one virtqueue per
 * vCPU by default, each with its own block queue (its own io_uring or
 * worker slot and completion eventfd). Requests a guest gets wrong complete
 * with VIRTIO_BLK_S_IOERR (or UNSUPP); only chains without a status byte
 * to report into put the device in DEVICE_NEEDS_RESET.
 */
#ifndef KEEL_VIRTIO_BLK_H
#define KEEL_VIRTIO_BLK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "block/throttle.h"
#include "keel/block.h"
#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "pci/pci.h"

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_MAX_QUEUES 16

struct virtio_blk_opts {
	char path[PATH_MAX];
	bool read_only;
	enum blk_cache cache;   /* default writeback */
	enum blk_aio aio;       /* default io_uring */
	enum blk_format format; /* default raw */
	char serial[VIRTIO_BLK_ID_BYTES + 1];
	unsigned queues;        /* 0: the caller's default (one per vCPU) */
	struct blk_limits limits; /* iops=, bw=, ... (block/throttle.h); none by default */
	char group[32];           /* group=NAME: also under a --disk-group's limits */
};

/*
 * Parses "path=FILE[,readonly=on][,cache=none|writethrough|writeback]
 * [,aio=io_uring|threads|sync][,serial=STR][,format=raw|qcow2][,queues=N]".
 * 0, or -EINVAL with one line in err naming the bad key.
 */
int virtio_blk_parse(const char *s, struct virtio_blk_opts *opts, char *err, size_t errlen);

struct virtio_blk;
struct virtio_dev;

/*
 * Opens the image (with BLK_OPEN_* `open_flags`: a migration target opens
 * it inactive) and adds the device with opts->queues queues, or
 * `default_queues` (the vCPU count) when that is 0. `loop` NULL gives it
 * its own I/O thread. NULL on failure with one line in err.
 */
struct virtio_blk *virtio_blk_create(struct pci_host *pci, const struct guest_mem *mem,
				     const struct virtio_blk_opts *opts, unsigned default_queues,
				     unsigned open_flags, struct event_loop *loop,
				     char *err, size_t errlen);
/*
 * The same over an opened blk_dev, which the device then owns (closes).
 * `cache` is the mode it was opened with: VIRTIO_BLK_F_FLUSH is offered
 * unless it is writethrough (block.h: every completed write is durable).
 */
struct virtio_blk *virtio_blk_create_dev(struct pci_host *pci, const struct guest_mem *mem,
					 struct blk_dev *dev, enum blk_cache cache,
					 const char *serial, unsigned queues,
					 struct event_loop *loop);
/* Its transport, for the device-state operations (virtio_state.h). */
struct virtio_dev *virtio_blk_dev(struct virtio_blk *blk);
/* Its image, for handing it over in a live migration (block.h). */
struct blk_dev *virtio_blk_image(struct virtio_blk *blk);
/* Completes in-flight requests, removes the device, closes the image. NULL ok. */
void virtio_blk_destroy(struct virtio_blk *blk);

/*
 * I/O limits. Every disk has its own (none set: nothing is held back) and
 * may also be under a group's, shared with other disks. Reads and writes
 * wait, in the order they came, until every limit allows them: each queue
 * holds at most one waiting request and stops taking more from its ring,
 * so queues and disks take turns. A timer fires when the first waiting
 * request may go; changing limits re-arms it at once.
 */
void virtio_blk_set_limits(struct virtio_blk *blk, const struct blk_limits *lim);
void virtio_blk_get_limits(struct virtio_blk *blk, struct blk_limits *lim);
/* Before the guest runs; the group outlives the device. */
void virtio_blk_join_group(struct virtio_blk *blk, struct blk_throttle *group);

struct virtio_blk_throttle_stats {
	uint64_t delayed;      /* requests that waited for a limit */
	uint64_t delay_ns;     /* their total wait */
	uint64_t waiting;      /* requests waiting now */
};
void virtio_blk_throttle_stats(struct virtio_blk *blk, struct virtio_blk_throttle_stats *out);

#endif
