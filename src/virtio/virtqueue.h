/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues (virtio 1.x section 2.7), device side: popping
 * descriptor chains the driver made available, with indirect tables and
 * VIRTIO_F_EVENT_IDX, and returning them through the used ring.
 *
 * Everything read from the rings is treated as hostile: the avail index may
 * jump, descriptor chains may loop, point outside guest RAM, nest indirect
 * tables, mix directions, or change under our feet (each descriptor is copied
 * once and only the copy is checked and used). A malformed chain makes
 * virtq_pop() return -EIO after one log_guest() line, and the queue stays
 * broken until it is set up again; the caller (the transport) then puts the
 * device in DEVICE_NEEDS_RESET.
 *
 * Not thread-safe: one queue is driven by one thread at a time (the device
 * lock in virtio.c guarantees it).
 */
#ifndef KEEL_VIRTQUEUE_H
#define KEEL_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "keel/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024
/* The longest chain accepted, counting direct and indirect descriptors. */
#define VIRTQ_MAX_CHAIN 1024

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* Ring layout in guest memory (little-endian; x86 hosts only). */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;
	bool ready;  /* set up and usable */
	bool broken; /* the driver broke the ring rules; nothing more is read */
	bool event_idx, indirect;
	uint8_t *desc;    /* host pointers, validated at setup */
	uint16_t *avail;  /* flags, idx, ring[size], used_event */
	uint16_t *used;   /* flags, idx, then elems; avail_event after them */
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_valid;
};

/* One chain: the device-readable buffers first, then the writable ones. */
struct virtq_elem {
	uint16_t head;
	uint16_t n_out, n_in;
	uint64_t out_len, in_len; /* byte totals */
	struct iovec iov[VIRTQ_MAX_CHAIN];
};

/*
 * Validates and maps the rings. size must be a power of two no larger than
 * max_size; the three areas aligned (16/2/4) and inside guest RAM.
 * 0, or -EINVAL after a log_guest() line naming the problem.
 */
int virtq_setup(struct virtq *vq, const struct guest_mem *mem, uint16_t size, uint16_t max_size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool event_idx,
		bool indirect);
void virtq_reset(struct virtq *vq);

/* 1 and *elem filled, 0 when nothing is available, -EIO on a broken ring. */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);
/* Gives back the last n popped chains unused (they are popped again later). */
void virtq_unpop(struct virtq *vq, uint16_t n);
/* Entries the driver made available that we have not popped (0 if broken). */
uint16_t virtq_avail_pending(struct virtq *vq);

/* Returns a chain to the driver with `len` bytes written; visible at once. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since last asked. */
bool virtq_should_notify(struct virtq *vq);

/*
 * Kick suppression while the device is busy with the queue: disable before
 * processing, enable after; enable asks for a kick on the next buffer the
 * driver adds and returns true if buffers are available unpopped, so the
 * caller must process again (no lost wake-up).
 */
void virtq_disable_kicks(struct virtq *vq);
bool virtq_enable_kicks(struct virtq *vq);
/*
 * Like virtq_enable_kicks(), but the driver need kick only once it has made
 * `slack` more chains available (EVENT_IDX; without it kicks stay off while
 * slack is non-zero). For a device that looks at the ring anyway when a
 * request in flight completes: it must, or chains could wait for ever.
 */
bool virtq_enable_kicks_after(struct virtq *vq, uint16_t slack);

/* Copy helpers over an element's writable / readable buffers. */
size_t virtio_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);
size_t virtio_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);

#endif
