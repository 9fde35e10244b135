/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A mini virtio driver doing what Linux's virtio_pci_modern + virtio_ring
 * do: find the function by scanning ECAM, walk its capabilities, program
 * MSI-X, reset, negotiate features, set up split queues, post buffers,
 * kick, reap the used ring. Hostile tests reach under it (raw descriptors,
 * raw register writes) through the same fields.
 */
#ifndef KEEL_TEST_VDRIVER_H
#define KEEL_TEST_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "virtio/virtqueue.h"

#define VD_MAX_QUEUES 16
#define VD_MSI_ADDR 0xfee00000ULL
/* Vector v is programmed with data VD_MSI_DATA(slot, v). */
#define VD_MSI_DATA(slot, v) (0x1000u * (slot) + 0x40u + (v))

struct vd_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx, last_used;
	uint16_t next_free; /* descriptors handed out round-robin */
	uint16_t kicked_idx; /* avail_idx at the last notification decision */
	uint64_t notify_addr;
};

struct vdriver {
	struct guest *h;
	unsigned slot;
	uint64_t bar;
	uint64_t common, isr, device, notify; /* absolute addresses */
	uint32_t notify_mult, device_len;
	unsigned nr_queues;
	uint64_t features;
	struct vd_queue q[VD_MAX_QUEUES];
};

struct vd_buf {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

/* Finds the n-th (0-based) virtio function with this device type. 0 or -ENODEV. */
int vd_probe(struct vdriver *d, struct guest *h, uint16_t virtio_id, unsigned nth);
/* Reset, ACK|DRIVER, negotiate `want` (VERSION_1 added). 0 or -EPROTO if refused. */
int vd_negotiate(struct vdriver *d, uint64_t want);
/* MSI-X on, vector v = queue v, config = vector nr_queues. */
void vd_setup_msix(struct vdriver *d, unsigned nr_queues);
/* Sets up queue q with `size` (0: the device max). 0 or -errno. */
int vd_setup_queue(struct vdriver *d, unsigned q, uint16_t size);
/* DRIVER_OK. */
void vd_driver_ok(struct vdriver *d);
/* Writes 0 and waits for the status to read 0. */
void vd_reset(struct vdriver *d);
uint8_t vd_status(struct vdriver *d);

/* Posts a chain; returns its head. */
uint16_t vd_add(struct vdriver *d, unsigned q, const struct vd_buf *bufs, unsigned n);
/* Posts a chain through one indirect descriptor. */
uint16_t vd_add_indirect(struct vdriver *d, unsigned q, const struct vd_buf *bufs, unsigned n);
/* Makes `head` available (raw: no checks, hostile tests pass anything). */
void vd_publish(struct vdriver *d, unsigned q, uint16_t head);
void vd_kick(struct vdriver *d, unsigned q);
/*
 * Like Linux's virtqueue_kick(): notifies only if the device asked for it
 * (EVENT_IDX avail_event, or no VRING_USED_F_NO_NOTIFY). Returns whether it
 * kicked.
 */
bool vd_notify(struct vdriver *d, unsigned q);
/* Waits up to timeout_ms (pumping the guest loop) for a used entry. 1 or 0. */
int vd_get_used(struct vdriver *d, unsigned q, uint32_t *id, uint32_t *len, int timeout_ms);
/* Raw descriptor write into the queue's table. */
void vd_set_desc(struct vdriver *d, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next);

/* Common-config register access. */
uint64_t vd_common_read(struct vdriver *d, unsigned off, unsigned size);
void vd_common_write(struct vdriver *d, unsigned off, unsigned size, uint64_t v);
/* Device-config read. */
uint64_t vd_config_read(struct vdriver *d, unsigned off, unsigned size);

#endif
