// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>
#include <time.h>

#include "keel/compiler.h"
#include "pci/pci.h"
#include "vdriver.h"
#include "virtio/virtio.h"

uint64_t vd_common_read(struct vdriver *d, unsigned off, unsigned size)
{
	return h_read(d->h, d->common + off, size);
}

void vd_common_write(struct vdriver *d, unsigned off, unsigned size, uint64_t v)
{
	h_write(d->h, d->common + off, size, v);
}

uint64_t vd_config_read(struct vdriver *d, unsigned off, unsigned size)
{
	return h_read(d->h, d->device + off, size);
}

uint8_t vd_status(struct vdriver *d)
{
	return (uint8_t)vd_common_read(d, 0x14, 1);
}

static void set_status(struct vdriver *d, uint8_t bits)
{
	vd_common_write(d, 0x14, 1, vd_status(d) | bits);
}

/* Walks the capability list like vp_modern_probe(): vendor caps by type. */
static void read_caps(struct vdriver *d)
{
	struct guest *h = d->h;
	unsigned c = h_cfg_read(h, d->slot, PCI_CAPABILITY_LIST, 1);

	for (unsigned guard = 0; c && guard < 48; guard++) {
		unsigned id = h_cfg_read(h, d->slot, c, 1);

		if (id == PCI_CAP_ID_VNDR) {
			unsigned type = h_cfg_read(h, d->slot, c + 3, 1);
			uint64_t addr = d->bar + h_cfg_read(h, d->slot, c + 8, 4);
			uint32_t len = h_cfg_read(h, d->slot, c + 12, 4);

			if (type == 1)
				d->common = addr;
			else if (type == 2) {
				d->notify = addr;
				d->notify_mult = h_cfg_read(h, d->slot, c + 16, 4);
			} else if (type == 3)
				d->isr = addr;
			else if (type == 4) {
				d->device = addr;
				d->device_len = len;
			}
		}
		c = h_cfg_read(h, d->slot, c + 1, 1);
	}
}

int vd_probe(struct vdriver *d, struct guest *h, uint16_t virtio_id, unsigned nth)
{
	memset(d, 0, sizeof(*d));
	d->h = h;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		uint32_t id = h_cfg_read(h, s, 0, 4);
		uint32_t lo, hi;

		if (id != (0x1af4u | (0x1040u + virtio_id) << 16) || nth--)
			continue;
		d->slot = s;
		lo = h_cfg_read(h, s, PCI_BAR0, 4);
		hi = h_cfg_read(h, s, PCI_BAR0 + 4, 4);
		d->bar = (lo & ~0xfULL) | (uint64_t)hi << 32;
		h_cfg_write(h, s, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
		read_caps(d);
		return d->common && d->notify && d->isr ? 0 : -ENODEV;
	}
	return -ENODEV;
}

void vd_reset(struct vdriver *d)
{
	vd_common_write(d, 0x14, 1, 0);
	for (int i = 0; i < 1000 && vd_status(d); i++)
		h_pump(d->h, 1);
	memset(d->q, 0, sizeof(d->q));
}

int vd_negotiate(struct vdriver *d, uint64_t want)
{
	uint64_t offered;

	vd_reset(d);
	set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(d, VIRTIO_STATUS_DRIVER);
	vd_common_write(d, 0x00, 4, 0);
	offered = vd_common_read(d, 0x04, 4);
	vd_common_write(d, 0x00, 4, 1);
	offered |= vd_common_read(d, 0x04, 4) << 32;
	d->features = (want | 1ULL << VIRTIO_F_VERSION_1) & offered;
	vd_common_write(d, 0x08, 4, 0);
	vd_common_write(d, 0x0c, 4, (uint32_t)d->features);
	vd_common_write(d, 0x08, 4, 1);
	vd_common_write(d, 0x0c, 4, d->features >> 32);
	set_status(d, VIRTIO_STATUS_FEATURES_OK);
	return vd_status(d) & VIRTIO_STATUS_FEATURES_OK ? 0 : -EPROTO;
}

void vd_setup_msix(struct vdriver *d, unsigned nr_queues)
{
	struct guest *h = d->h;
	unsigned c = h_cfg_read(h, d->slot, PCI_CAPABILITY_LIST, 1);
	uint64_t table;

	while (c && h_cfg_read(h, d->slot, c, 1) != PCI_CAP_ID_MSIX)
		c = h_cfg_read(h, d->slot, c + 1, 1);
	if (!c)
		return;
	table = d->bar + (h_cfg_read(h, d->slot, c + 4, 4) & ~7u);
	for (unsigned v = 0; v <= nr_queues; v++) {
		h_write(h, table + 16 * v, 4, (uint32_t)VD_MSI_ADDR);
		h_write(h, table + 16 * v + 4, 4, 0);
		h_write(h, table + 16 * v + 8, 4, VD_MSI_DATA(d->slot, v));
		h_write(h, table + 16 * v + 12, 4, 0);
	}
	h_cfg_write(h, d->slot, c + 2, 2, 0x8000 | (h_cfg_read(h, d->slot, c + 2, 2) & 0x7ff));
	vd_common_write(d, 0x10, 2, nr_queues);
}

int vd_setup_queue(struct vdriver *d, unsigned q, uint16_t size)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t max;

	vd_common_write(d, 0x16, 2, q);
	max = (uint16_t)vd_common_read(d, 0x18, 2);
	if (!max)
		return -ENOENT;
	vq->size = size ? size : max;
	vq->desc = h_alloc(d->h, 16ULL * vq->size, 4096);
	vq->avail = h_alloc(d->h, 6 + 2ULL * vq->size, 4096);
	vq->used = h_alloc(d->h, 6 + 8ULL * vq->size, 4096);
	vd_common_write(d, 0x18, 2, vq->size);
	vd_common_write(d, 0x20, 4, (uint32_t)vq->desc);
	vd_common_write(d, 0x24, 4, vq->desc >> 32);
	vd_common_write(d, 0x28, 4, (uint32_t)vq->avail);
	vd_common_write(d, 0x2c, 4, vq->avail >> 32);
	vd_common_write(d, 0x30, 4, (uint32_t)vq->used);
	vd_common_write(d, 0x34, 4, vq->used >> 32);
	vd_common_write(d, 0x1a, 2, q);
	vq->notify_addr = d->notify + vd_common_read(d, 0x1e, 2) * d->notify_mult;
	vd_common_write(d, 0x1c, 2, 1);
	if (q >= d->nr_queues)
		d->nr_queues = q + 1;
	return vd_common_read(d, 0x1c, 2) == 1 ? 0 : -EIO;
}

void vd_driver_ok(struct vdriver *d)
{
	set_status(d, VIRTIO_STATUS_DRIVER_OK);
}

void vd_set_desc(struct vdriver *d, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	struct vring_desc desc = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy((uint8_t *)h_ptr(d->h, d->q[q].desc) + 16 * (size_t)i, &desc, sizeof(desc));
}

uint16_t vd_add(struct vdriver *d, unsigned q, const struct vd_buf *bufs, unsigned n)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t head = vq->next_free, i = head;

	for (unsigned k = 0; k < n; k++) {
		uint16_t next = (uint16_t)((i + 1) % vq->size);

		vd_set_desc(d, q, i, bufs[k].gpa, bufs[k].len,
			    (uint16_t)((bufs[k].write ? VRING_DESC_F_WRITE : 0) |
				       (k + 1 < n ? VRING_DESC_F_NEXT : 0)),
			    next);
		i = next;
	}
	vq->next_free = i;
	vd_publish(d, q, head);
	return head;
}

uint16_t vd_add_indirect(struct vdriver *d, unsigned q, const struct vd_buf *bufs, unsigned n)
{
	struct vd_queue *vq = &d->q[q];
	uint64_t table = h_alloc(d->h, 16ULL * n, 16);
	uint16_t head = vq->next_free;

	for (unsigned k = 0; k < n; k++) {
		struct vring_desc desc = {
			.addr = bufs[k].gpa, .len = bufs[k].len,
			.flags = (uint16_t)((bufs[k].write ? VRING_DESC_F_WRITE : 0) |
					    (k + 1 < n ? VRING_DESC_F_NEXT : 0)),
			.next = (uint16_t)(k + 1),
		};
		memcpy((uint8_t *)h_ptr(d->h, table) + 16 * k, &desc, sizeof(desc));
	}
	vd_set_desc(d, q, head, table, 16 * n, VRING_DESC_F_INDIRECT, 0);
	vq->next_free = (uint16_t)((head + 1) % vq->size);
	vd_publish(d, q, head);
	return head;
}

void vd_publish(struct vdriver *d, unsigned q, uint16_t head)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t *avail = h_ptr(d->h, vq->avail);

	avail[2 + vq->avail_idx % vq->size] = head;
	vq->avail_idx++;
	__atomic_store_n(&avail[1], vq->avail_idx, __ATOMIC_RELEASE);
}

void vd_kick(struct vdriver *d, unsigned q)
{
	h_write(d->h, d->q[q].notify_addr, 2, q);
	d->q[q].kicked_idx = d->q[q].avail_idx;
}

bool vd_notify(struct vdriver *d, unsigned q)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t *used = h_ptr(d->h, vq->used), old = vq->kicked_idx, event;
	bool kick;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->features & (1ULL << VIRTIO_F_EVENT_IDX)) {
		/* avail_event follows the used ring; kick if it lies in [old, new). */
		event = __atomic_load_n(&used[2 + 4 * (unsigned)vq->size], __ATOMIC_ACQUIRE);
		kick = (uint16_t)(vq->avail_idx - event - 1) < (uint16_t)(vq->avail_idx - old);
	} else {
		kick = !(__atomic_load_n(&used[0], __ATOMIC_ACQUIRE) & VRING_USED_F_NO_NOTIFY);
	}
	vq->kicked_idx = vq->avail_idx;
	if (kick)
		h_write(d->h, vq->notify_addr, 2, q);
	return kick;
}

int vd_get_used(struct vdriver *d, unsigned q, uint32_t *id, uint32_t *len, int timeout_ms)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t *used = h_ptr(d->h, vq->used);
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int round = 0;; round++) {
		/* Reap first: the device may have answered already (threaded, or batched). */
		if (round)
			h_pump(d->h, 0);
		if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != vq->last_used) {
			struct vring_used_elem e;

			memcpy(&e, (uint8_t *)&used[2] + 8 * (size_t)(vq->last_used % vq->size),
			       sizeof(e));
			vq->last_used++;
			/* Like virtqueue_enable_cb(): interrupt me for the next one (EVENT_IDX). */
			((uint16_t *)h_ptr(d->h, vq->avail))[2 + vq->size] = vq->last_used;
			if (id)
				*id = e.id;
			if (len)
				*len = e.len;
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
		    timeout_ms)
			return 0;
		if (round)
			h_pump(d->h, 1);
	}
}
