// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "virtio/virtqueue.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

/* Offsets in 16-bit units inside the avail and used rings. */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 1
#define AVAIL_RING 2
#define USED_FLAGS 0
#define USED_IDX 1

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The VMM's writes into guest RAM, for live migration's dirty log (guest_mem.h). */
static void mark_dirty(struct virtq *vq, const void *p, size_t len)
{
	guest_mem_mark_dirty(vq->mem, p, len);
}

static uint16_t *used_event(struct virtq *vq)
{
	return &vq->avail[AVAIL_RING + vq->size];
}

/* avail_event sits after the used elements: 4 bytes of header, 8 per elem. */
static uint16_t *avail_event(struct virtq *vq)
{
	return &vq->used[2 + 4 * (unsigned)vq->size];
}

int virtq_setup(struct virtq *vq, const struct guest_mem *mem, uint16_t size, uint16_t max_size,
		uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa, bool event_idx,
		bool indirect)
{
	/* Sizes of the three areas (2.7): event_idx words are always counted. */
	uint64_t desc_len = 16ULL * size, avail_len = 6 + 2ULL * size, used_len = 6 + 8ULL * size;

	virtq_reset(vq);
	if (!size || size & (size - 1) || size > max_size || size > VIRTQ_MAX_SIZE) {
		log_guest("virtqueue: size %u is not a power of two between 1 and %u", size, max_size);
		return -EINVAL;
	}
	if (!IS_ALIGNED(desc_gpa, 16) || !IS_ALIGNED(avail_gpa, 2) || !IS_ALIGNED(used_gpa, 4)) {
		log_guest("virtqueue: misaligned rings (desc 0x%llx avail 0x%llx used 0x%llx)",
			  (unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			  (unsigned long long)used_gpa);
		return -EINVAL;
	}
	vq->desc = guest_mem_ptr(mem, desc_gpa, desc_len);
	vq->avail = guest_mem_ptr(mem, avail_gpa, avail_len);
	vq->used = guest_mem_ptr(mem, used_gpa, used_len);
	if (!vq->desc || !vq->avail || !vq->used) {
		log_guest("virtqueue: rings outside guest RAM (desc 0x%llx avail 0x%llx used 0x%llx)",
			  (unsigned long long)desc_gpa, (unsigned long long)avail_gpa,
			  (unsigned long long)used_gpa);
		virtq_reset(vq);
		return -EINVAL;
	}
	vq->mem = mem;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* The driver initializes rings to zero; our shadow indexes start there too. */
	vq->last_avail = 0;
	vq->used_idx = load16(&vq->used[USED_IDX]);
	vq->ready = true;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

static int broken(struct virtq *vq)
{
	vq->broken = true;
	return -EIO;
}

uint16_t virtq_avail_pending(struct virtq *vq)
{
	uint16_t n;

	if (!vq->ready || vq->broken)
		return 0;
	n = (uint16_t)(load16(&vq->avail[AVAIL_IDX]) - vq->last_avail);
	return n > vq->size ? 0 : n;
}

/* Appends one buffer to elem after checking it; 0 or -EIO. */
static int add_buffer(struct virtq *vq, struct virtq_elem *e, const struct vring_desc *d)
{
	void *p;

	if (!d->len) {
		log_guest("virtqueue: zero-length descriptor");
		return -EIO;
	}
	p = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!p) {
		log_guest("virtqueue: buffer 0x%llx+%u outside guest RAM",
			  (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	if (d->flags & VRING_DESC_F_WRITE) {
		e->in_len += d->len;
		e->n_in++;
	} else {
		if (e->n_in) {
			log_guest("virtqueue: device-readable buffer after a writable one");
			return -EIO;
		}
		e->out_len += d->len;
		e->n_out++;
	}
	if (e->n_out + e->n_in > VIRTQ_MAX_CHAIN) {
		log_guest("virtqueue: chain longer than %u buffers", VIRTQ_MAX_CHAIN);
		return -EIO;
	}
	e->iov[e->n_out + e->n_in - 1] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	return 0;
}

/* Switches the walk to an indirect table (2.7.5.3); 0 or -EIO. */
static int enter_indirect(struct virtq *vq, const struct vring_desc *d, bool nested,
			  const uint8_t **table, uint32_t *tsize)
{
	if (!vq->indirect) {
		log_guest("virtqueue: indirect descriptor without VIRTIO_F_INDIRECT_DESC");
		return -EIO;
	}
	if (nested) {
		log_guest("virtqueue: indirect table inside an indirect table");
		return -EIO;
	}
	if (d->flags & VRING_DESC_F_NEXT) {
		log_guest("virtqueue: descriptor with both INDIRECT and NEXT");
		return -EIO;
	}
	if (!d->len || d->len % sizeof(struct vring_desc) ||
	    d->len / sizeof(struct vring_desc) > VIRTQ_MAX_CHAIN) {
		log_guest("virtqueue: indirect table of %u bytes", d->len);
		return -EIO;
	}
	*table = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!*table) {
		log_guest("virtqueue: indirect table 0x%llx+%u outside guest RAM",
			  (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	*tsize = d->len / sizeof(struct vring_desc);
	return 0;
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
	const uint8_t *table = vq->desc;
	uint32_t tsize, idx, steps = 0;
	bool in_indirect = false;
	uint16_t avail_idx, n;

	if (!vq->ready || vq->broken)
		return vq->broken ? -EIO : 0;
	avail_idx = load16(&vq->avail[AVAIL_IDX]);
	n = (uint16_t)(avail_idx - vq->last_avail);
	if (!n)
		return 0;
	if (n > vq->size) {
		log_guest("virtqueue: avail index moved by %u on a queue of %u", n, vq->size);
		return broken(vq);
	}
	/* Read the ring entry only after seeing the index (pairs with the driver's wmb). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	idx = load16(&vq->avail[AVAIL_RING + vq->last_avail % vq->size]);
	tsize = vq->size;
	memset(e, 0, offsetof(struct virtq_elem, iov));
	e->head = (uint16_t)idx;
	for (;;) {
		struct vring_desc d;

		if (idx >= tsize) {
			log_guest("virtqueue: descriptor index %u beyond a table of %u", idx, tsize);
			return broken(vq);
		}
		/* A chain visiting more entries than its table has must loop. */
		if (++steps > tsize) {
			log_guest("virtqueue: descriptor chain loops or exceeds its table of %u",
				  tsize);
			return broken(vq);
		}
		memcpy(&d, table + (size_t)idx * sizeof(d), sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (enter_indirect(vq, &d, in_indirect, &table, &tsize) < 0)
				return broken(vq);
			in_indirect = true;
			idx = 0;
			steps = 0;
			continue;
		}
		if (add_buffer(vq, e, &d) < 0)
			return broken(vq);
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	if (e->out_len > UINT32_MAX || e->in_len > UINT32_MAX) {
		log_guest("virtqueue: chain of more than 4 GiB");
		return broken(vq);
	}
	vq->last_avail++;
	return 1;
}

void virtq_unpop(struct virtq *vq, uint16_t n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem el = { .id = head, .len = len };
	uint8_t *ring;

	if (!vq->ready)
		return;
	ring = (uint8_t *)&vq->used[2];
	memcpy(ring + (size_t)(vq->used_idx % vq->size) * sizeof(el), &el, sizeof(el));
	mark_dirty(vq, ring + (size_t)(vq->used_idx % vq->size) * sizeof(el), sizeof(el));
	vq->used_idx++;
	/* The element must be visible before the index that publishes it. */
	store16(&vq->used[USED_IDX], vq->used_idx);
	mark_dirty(vq, &vq->used[USED_IDX], 2);
}

/* 2.7.10: interrupt if used_event lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old, new_idx;
	bool valid;

	if (!vq->ready)
		return false;
	/* Our used index store must be ordered before reading the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&vq->avail[AVAIL_FLAGS]) & VRING_AVAIL_F_NO_INTERRUPT);
	old = vq->signalled_used;
	valid = vq->signalled_valid;
	new_idx = vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	return !valid || need_event(load16(used_event(vq)), new_idx, old);
}

void virtq_disable_kicks(struct virtq *vq)
{
	if (!vq->ready || vq->event_idx)
		return; /* with EVENT_IDX, avail_event is simply left behind */
	store16(&vq->used[USED_FLAGS], VRING_USED_F_NO_NOTIFY);
	mark_dirty(vq, &vq->used[USED_FLAGS], 2);
}

bool virtq_enable_kicks(struct virtq *vq)
{
	return virtq_enable_kicks_after(vq, 0);
}

bool virtq_enable_kicks_after(struct virtq *vq, uint16_t slack)
{
	if (!vq->ready || vq->broken)
		return false;
	if (slack && !vq->event_idx) {
		/* No way to say "after n more": stay silent, the caller polls. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return virtq_avail_pending(vq) != 0;
	}
	/*
	 * With EVENT_IDX the driver kicks when its avail index passes
	 * avail_event. Point it at the index the driver has reached, not at
	 * what we popped: a device waiting with buffers left unpopped (net
	 * receive needing more of them for one frame) must hear of the next
	 * one, and a driver that is already past last_avail would not kick.
	 */
	if (vq->event_idx) {
		store16(avail_event(vq), (uint16_t)(load16(&vq->avail[AVAIL_IDX]) + slack));
		mark_dirty(vq, avail_event(vq), 2);
	} else {
		store16(&vq->used[USED_FLAGS], 0);
		mark_dirty(vq, &vq->used[USED_FLAGS], 2);
	}
	/* Publish the request before re-checking, or a kick could be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_avail_pending(vq) != 0;
}

/* Copies between buf and the iovec bytes starting at `skip`. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len,
		       bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		uint8_t *p = (uint8_t *)iov[i].iov_base + skip;
		size_t c;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		c = MIN(iov[i].iov_len - skip, len - done);
		memcpy(to_iov ? p : buf + done, to_iov ? buf + done : p, c);
		done += c;
		skip = 0;
	}
	return done;
}

size_t virtio_iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
	return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}

size_t virtio_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	return iov_copy(iov, n, skip, buf, len, false);
}
