// SPDX-License-Identifier: Apache-2.0
/*
 * The device side of the virtio status machine (virtio 1.2 sections 2.1,
 * 3.1 and 4.1.4.3): the common configuration registers, feature
 * negotiation, queue setup, reset, DEVICE_NEEDS_RESET and interrupts. The
 * PCI specifics (BAR layout, capabilities, MSI-X table, doorbells) are in
 * virtio_pci.c. Everything here runs with vdev->lock held.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "virtio/virtio.h"
#include "virtio/virtio_int.h"

bool virtio_dev_running(const struct virtio_dev *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

void virtio_config_put16(struct virtio_dev *vdev, unsigned off, uint16_t v)
{
	memcpy(&vdev->config[off], &v, 2);
}

void virtio_config_put32(struct virtio_dev *vdev, unsigned off, uint32_t v)
{
	memcpy(&vdev->config[off], &v, 4);
}

void virtio_config_put64(struct virtio_dev *vdev, unsigned off, uint64_t v)
{
	memcpy(&vdev->config[off], &v, 8);
}

static void raise_intx(struct virtio_dev *vdev, uint8_t isr_bit)
{
	vdev->isr |= isr_bit;
	pci_set_intx(vdev->pci, true);
}

void virtio_notify_queue(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_queue *vq = &vdev->queues[q];

	if (!virtq_should_notify(&vq->vq))
		return;
	if (msix_enabled(&vdev->msix)) {
		if (vq->msix_vector != VIRTIO_NO_VECTOR)
			msix_notify(&vdev->msix, vq->msix_vector);
	} else {
		raise_intx(vdev, 1);
	}
}

static void notify_config(struct virtio_dev *vdev)
{
	if (msix_enabled(&vdev->msix)) {
		vdev->isr |= 2;
		if (vdev->config_vector != VIRTIO_NO_VECTOR)
			msix_notify(&vdev->msix, vdev->config_vector);
	} else {
		raise_intx(vdev, 2);
	}
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	vdev->config_generation++;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		notify_config(vdev);
}

void virtio_dev_error(struct virtio_dev *vdev)
{
	vdev->errors++;
	if (vdev->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* 2.1.2: after DRIVER_OK the driver learns it through a config interrupt. */
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		notify_config(vdev);
}

void virtio_drain_kick(struct virtio_queue *q)
{
	uint64_t v;

	if (read(q->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("%s: queue %u kick: %s", q->vdev->name, q->index, strerror(errno));
}

/* Lock held. */
static void do_reset(struct virtio_dev *vdev)
{
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct virtio_queue *q = &vdev->queues[i];

		virtq_reset(&q->vq);
		q->enabled = false;
		q->size = vdev->queue_max_size;
		q->msix_vector = VIRTIO_NO_VECTOR;
		q->desc = q->driver = q->device = 0;
		virtio_drain_kick(q);
	}
	vdev->status = 0;
	vdev->driver_features = 0;
	vdev->device_feature_select = vdev->driver_feature_select = 0;
	vdev->queue_select = 0;
	vdev->config_vector = VIRTIO_NO_VECTOR;
	vdev->isr = 0;
	pci_set_intx(vdev->pci, false);
}

void virtio_dev_reset(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	do_reset(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

static bool features_ok(struct virtio_dev *vdev)
{
	uint64_t f = vdev->driver_features;

	if (f & ~vdev->device_features) {
		log_guest("%s: driver accepted features 0x%llx the device does not offer", vdev->name,
			  (unsigned long long)(f & ~vdev->device_features));
		return false;
	}
	if (!(f & (1ULL << VIRTIO_F_VERSION_1))) {
		log_guest("%s: driver did not accept VIRTIO_F_VERSION_1 (legacy is not supported)",
			  vdev->name);
		return false;
	}
	return !vdev->ops->validate_features || vdev->ops->validate_features(vdev, f) == 0;
}

static void write_status(struct virtio_dev *vdev, uint8_t v)
{
	uint8_t old = vdev->status, set;

	if (!v) {
		do_reset(vdev);
		return;
	}
	v = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
	if (old & ~v) {
		log_guest("%s: driver cleared status bits 0x%x without a reset", vdev->name,
			  old & ~v);
		virtio_dev_error(vdev);
		return;
	}
	set = v & ~old;
	if ((set & VIRTIO_STATUS_FEATURES_OK) && !features_ok(vdev))
		v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* 3.1.1: the driver re-reads it */
	vdev->status = v;
	if (!(set & VIRTIO_STATUS_DRIVER_OK))
		return;
	if (!(v & VIRTIO_STATUS_FEATURES_OK)) {
		log_guest("%s: DRIVER_OK without FEATURES_OK", vdev->name);
		virtio_dev_error(vdev);
		return;
	}
	if (vdev->ops->activate && vdev->ops->activate(vdev) < 0) {
		virtio_dev_error(vdev);
		return;
	}
	/* Buffers made available before DRIVER_OK are looked at now. */
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		uint64_t one = 1;

		if (vdev->queues[i].enabled && write(vdev->queues[i].kick_fd, &one, 8) < 0)
			log_warn("%s: kick: %s", vdev->name, strerror(errno));
	}
}

static void enable_queue(struct virtio_dev *vdev, struct virtio_queue *q)
{
	if (!(vdev->status & VIRTIO_STATUS_FEATURES_OK) || (vdev->status & VIRTIO_STATUS_DRIVER_OK)) {
		log_guest("%s: queue %u enabled outside feature-negotiated setup", vdev->name,
			  q->index);
		virtio_dev_error(vdev);
		return;
	}
	if (virtq_setup(&q->vq, vdev->mem, q->size, vdev->queue_max_size, q->desc, q->driver,
			q->device, virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX),
			virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC)) < 0) {
		virtio_dev_error(vdev);
		return;
	}
	q->enabled = true;
}

/* The natural size of the common-config field at off, 0 if none (4.1.4.3). */
static unsigned field_size(unsigned off)
{
	static const uint8_t sizes[COMMON_LEN] = {
		[0x00] = 4, [0x04] = 4, [0x08] = 4, [0x0c] = 4, [0x10] = 2, [0x12] = 2,
		[0x14] = 1, [0x15] = 1, [0x16] = 2, [0x18] = 2, [0x1a] = 2, [0x1c] = 2,
		[0x1e] = 2, [0x20] = 8, [0x28] = 8, [0x30] = 8,
	};
	return off < COMMON_LEN ? sizes[off] : 0;
}

bool virtio_common_access_ok(unsigned off, unsigned size)
{
	unsigned base = off >= 0x20 && off < COMMON_LEN ? off & ~7u : off;

	/* 64-bit fields may also be accessed as two 32-bit halves. */
	if (base != off || field_size(off) != 8)
		return field_size(off) == size ||
		       (field_size(base) == 8 && size == 4 && off == base + 4);
	return size == 8 || size == 4;
}

static uint64_t *queue_addr_field(struct virtio_queue *q, unsigned off)
{
	return off < 0x28 ? &q->desc : off < 0x30 ? &q->driver : &q->device;
}

uint64_t virtio_common_read(struct virtio_dev *vdev, unsigned off, unsigned size)
{
	struct virtio_queue *q =
		vdev->queue_select < vdev->num_queues ? &vdev->queues[vdev->queue_select] : NULL;
	unsigned sel;

	switch (off) {
	case 0x00: return vdev->device_feature_select;
	case 0x04:
		sel = vdev->device_feature_select;
		return sel < 2 ? (uint32_t)(vdev->device_features >> (32 * sel)) : 0;
	case 0x08: return vdev->driver_feature_select;
	case 0x0c:
		sel = vdev->driver_feature_select;
		return sel < 2 ? (uint32_t)(vdev->driver_features >> (32 * sel)) : 0;
	case 0x10: return vdev->config_vector;
	case 0x12: return vdev->num_queues;
	case 0x14: return vdev->status;
	case 0x15: return vdev->config_generation;
	case 0x16: return vdev->queue_select;
	}
	if (!q)
		return off == 0x1a ? VIRTIO_NO_VECTOR : 0; /* queue_size 0: no such queue */
	switch (off) {
	case 0x18: return q->size;
	case 0x1a: return q->msix_vector;
	case 0x1c: return q->enabled;
	case 0x1e: return q->index;
	}
	if (size == 8)
		return *queue_addr_field(q, off);
	return (uint32_t)(*queue_addr_field(q, off) >> (off % 8 ? 32 : 0));
}

static void set_half(uint64_t *f, unsigned off, unsigned size, uint64_t v)
{
	if (size == 8)
		*f = v;
	else if (off % 8)
		*f = (*f & 0xffffffffULL) | v << 32;
	else
		*f = (*f & ~0xffffffffULL) | (uint32_t)v;
}

void virtio_common_write(struct virtio_dev *vdev, unsigned off, unsigned size, uint64_t v)
{
	struct virtio_queue *q =
		vdev->queue_select < vdev->num_queues ? &vdev->queues[vdev->queue_select] : NULL;

	switch (off) {
	case 0x00: vdev->device_feature_select = (uint32_t)v; return;
	case 0x08: vdev->driver_feature_select = (uint32_t)v; return;
	case 0x0c:
		if (vdev->status & VIRTIO_STATUS_FEATURES_OK) {
			log_guest("%s: driver features written after FEATURES_OK", vdev->name);
			virtio_dev_error(vdev);
		} else if (vdev->driver_feature_select < 2) {
			unsigned sh = 32 * vdev->driver_feature_select;

			vdev->driver_features = (vdev->driver_features & ~(0xffffffffULL << sh)) |
						(v & 0xffffffffULL) << sh;
		}
		return;
	case 0x10:
		vdev->config_vector = v < vdev->msix.nr ? (uint16_t)v : VIRTIO_NO_VECTOR;
		return;
	case 0x14: write_status(vdev, (uint8_t)v); return;
	case 0x16: vdev->queue_select = (uint16_t)v; return;
	case 0x04: case 0x12: case 0x15: case 0x1e:
		log_guest("%s: write to read-only common config 0x%x", vdev->name, off);
		return;
	}
	if (!q) {
		log_guest("%s: queue register 0x%x written for missing queue %u", vdev->name, off,
			  vdev->queue_select);
		return;
	}
	if (off == 0x1a) {
		q->msix_vector = v < vdev->msix.nr ? (uint16_t)v : VIRTIO_NO_VECTOR;
		return;
	}
	if (q->enabled) {
		/* 4.1.4.3.2: no changes to an enabled queue except its vector. */
		log_guest("%s: queue %u reconfigured while enabled", vdev->name, q->index);
		virtio_dev_error(vdev);
		return;
	}
	switch (off) {
	case 0x18: q->size = (uint16_t)v; return;
	case 0x1c:
		if (v == 1)
			enable_queue(vdev, q);
		else if (v)
			log_guest("%s: queue_enable written with %llu", vdev->name,
				  (unsigned long long)v);
		return;
	}
	set_half(queue_addr_field(q, off), off, size, v);
}
