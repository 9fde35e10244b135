// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio 1.x modern PCI transport (virtio 1.2 section 4.1): vendor
 * capabilities pointing into one 64-bit BAR that holds the common
 * configuration, ISR, device configuration, notification area and the
 * MSI-X table and PBA.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "virtio/virtio.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_MODERN 0x1040
#define VIRTIO_PCI_SUBSYSTEM 0x0040

/* Capability types (4.1.4). */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5

/* The BAR: one page per structure, so each can be mapped on its own. */
#define BAR_INDEX 0
#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4 /* each queue its own doorbell: no datamatch needed */
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000
#define AREA_LEN 0x1000

static void notify_config(struct virtio_dev *vdev);

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

static void drain_kick(struct virtio_queue *q)
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
		drain_kick(q);
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

static bool common_access_ok(unsigned off, unsigned size)
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

static uint64_t common_read(struct virtio_dev *vdev, unsigned off, unsigned size)
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

static void common_write(struct virtio_dev *vdev, unsigned off, unsigned size, uint64_t v)
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

static void device_cfg_access(struct virtio_dev *vdev, unsigned off, void *data, unsigned size,
			      bool write)
{
	if (off >= vdev->config_size || size > vdev->config_size - off ||
	    (size != 1 && size != 2 && size != 4 && size != 8)) {
		log_guest("%s: device config %s of %u bytes at 0x%x (size %u)", vdev->name,
			  write ? "write" : "read", size, off, vdev->config_size);
		virtio_dev_error(vdev);
		if (!write)
			memset(data, 0, size);
		return;
	}
	if (!write)
		memcpy(data, &vdev->config[off], size);
	else if (vdev->ops->config_write)
		vdev->ops->config_write(vdev, off, data, size);
	else
		log_guest("%s: device config is read-only (write at 0x%x)", vdev->name, off);
}

static void bar_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct virtio_dev *vdev = opaque;
	uint64_t v = 0;

	if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + AREA_LEN) {
		msix_table_access(&vdev->msix, off - MSIX_TABLE_OFF, data, size, false);
		return;
	}
	if (off >= MSIX_PBA_OFF && off < MSIX_PBA_OFF + AREA_LEN) {
		msix_pba_read(&vdev->msix, off - MSIX_PBA_OFF, data, size);
		return;
	}
	memset(data, 0, size);
	pthread_mutex_lock(&vdev->lock);
	if (off < COMMON_LEN && common_access_ok((unsigned)off, size)) {
		v = common_read(vdev, (unsigned)off, size);
		memcpy(data, &v, size);
	} else if (off == ISR_OFF && size == 1) {
		/* 4.1.4.5: reading the ISR acknowledges it and de-asserts INTx. */
		*(uint8_t *)data = vdev->isr;
		vdev->isr = 0;
		pci_set_intx(vdev->pci, false);
	} else if (off >= DEVICE_OFF && off < DEVICE_OFF + AREA_LEN) {
		device_cfg_access(vdev, (unsigned)(off - DEVICE_OFF), data, size, false);
	} else if (!(off >= NOTIFY_OFF && off < NOTIFY_OFF + AREA_LEN)) {
		log_guest("%s: read of %u bytes at BAR offset 0x%llx", vdev->name, size,
			  (unsigned long long)off);
		virtio_dev_error(vdev);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void notify_write(struct virtio_dev *vdev, uint64_t off)
{
	uint64_t one = 1;
	uint64_t q = off / NOTIFY_MULT;

	if (off % NOTIFY_MULT || q >= vdev->num_queues) {
		pthread_mutex_lock(&vdev->lock);
		log_guest("%s: notification at offset 0x%llx: no such queue", vdev->name,
			  (unsigned long long)off);
		virtio_dev_error(vdev);
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	/* The same eventfd KVM would signal: one path for both. */
	if (write(vdev->queues[q].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: kick: %s", vdev->name, strerror(errno));
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct virtio_dev *vdev = opaque;
	uint64_t v = 0;

	if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + AREA_LEN) {
		msix_table_access(&vdev->msix, off - MSIX_TABLE_OFF, (void *)data, size, true);
		return;
	}
	if (off >= NOTIFY_OFF && off < NOTIFY_OFF + AREA_LEN) {
		notify_write(vdev, off - NOTIFY_OFF);
		return;
	}
	memcpy(&v, data, size);
	pthread_mutex_lock(&vdev->lock);
	if (off < COMMON_LEN && common_access_ok((unsigned)off, size)) {
		common_write(vdev, (unsigned)off, size, v);
	} else if (off >= DEVICE_OFF && off < DEVICE_OFF + AREA_LEN) {
		device_cfg_access(vdev, (unsigned)(off - DEVICE_OFF), (void *)data, size, true);
	} else {
		log_guest("%s: write of %u bytes at BAR offset 0x%llx", vdev->name, size,
			  (unsigned long long)off);
		virtio_dev_error(vdev);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

/*
 * VIRTIO_PCI_CAP_PCI_CFG (4.1.4.9): a window into the BAR through config
 * space, for firmware. cap.bar/offset/length select what pci_cfg_data hits.
 */
static bool pci_cfg_window(struct virtio_dev *vdev, unsigned off, unsigned size,
			   uint32_t *bar_off, unsigned *len)
{
	unsigned c = vdev->pci_cfg_cap;

	if (!c || off >= c + 20 || off + size <= c + 16)
		return false;
	*bar_off = pci_cfg_read32(vdev->pci, c + 8);
	*len = pci_cfg_read32(vdev->pci, c + 12);
	if (vdev->pci->cfg[c + 4] != BAR_INDEX || (*len != 1 && *len != 2 && *len != 4) ||
	    !IS_ALIGNED(*bar_off, *len) || *bar_off >= BAR_SIZE) {
		log_guest("%s: bad PCI_CFG window (bar %u offset 0x%x length %u)", vdev->name,
			  vdev->pci->cfg[c + 4], *bar_off, *len);
		return false;
	}
	return true;
}

static void pci_config_read(struct pci_device *dev, unsigned off, unsigned size)
{
	struct virtio_dev *vdev = dev->opaque;
	uint32_t bar_off, v = 0;
	unsigned len;

	if (!pci_cfg_window(vdev, off, size, &bar_off, &len))
		return;
	bar_read(vdev, bar_off, &v, len);
	pci_cfg_write32(dev, vdev->pci_cfg_cap + 16, v);
}

static void pci_config_written(struct pci_device *dev, unsigned off, unsigned size)
{
	struct virtio_dev *vdev = dev->opaque;
	uint32_t bar_off, v;
	unsigned len;

	msix_config_written(&vdev->msix, off, size);
	if (!pci_cfg_window(vdev, off, size, &bar_off, &len))
		return;
	v = pci_cfg_read32(dev, vdev->pci_cfg_cap + 16);
	bar_write(vdev, bar_off, &v, len);
}

/* Under the pci host lock: move the doorbells' ioeventfds with the BAR. */
static void pci_bar_mapped(struct pci_device *dev, unsigned bar, uint64_t addr)
{
	struct virtio_dev *vdev = dev->opaque;

	if (bar != BAR_INDEX || !vdev->ioevents)
		return;
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct virtio_queue *q = &vdev->queues[i];

		if (q->ioev_added) {
			vdev->ioevents->del(vdev->ioevents, &q->ioev);
			q->ioev_added = false;
		}
		if (!addr)
			continue;
		/* Linux writes the 16-bit queue index; other sizes take the bus path. */
		q->ioev = (struct ioeventfd){
			.addr = addr + NOTIFY_OFF + (uint64_t)i * NOTIFY_MULT, .len = 2, .fd = q->kick_fd,
		};
		q->ioev_added = vdev->ioevents->add(vdev->ioevents, &q->ioev) == 0;
	}
}

static const struct pci_device_ops pci_ops = {
	.config_written = pci_config_written,
	.config_read = pci_config_read,
	.bar_mapped = pci_bar_mapped,
};

static unsigned add_virtio_cap(struct pci_device *dev, uint8_t type, uint32_t off, uint32_t len,
			       unsigned cap_len)
{
	unsigned c = pci_add_capability(dev, PCI_CAP_ID_VNDR, cap_len);

	if (!c)
		return 0;
	dev->cfg[c + 2] = (uint8_t)cap_len;
	dev->cfg[c + 3] = type;
	dev->cfg[c + 4] = BAR_INDEX;
	pci_cfg_write32(dev, c + 8, off);
	pci_cfg_write32(dev, c + 12, len);
	return c;
}

static int add_caps(struct virtio_dev *vdev)
{
	struct pci_device *dev = vdev->pci;
	unsigned c;

	if (!add_virtio_cap(dev, CAP_COMMON, COMMON_OFF, COMMON_LEN, 16) ||
	    !add_virtio_cap(dev, CAP_ISR, ISR_OFF, 1, 16))
		return -ENOSPC;
	c = add_virtio_cap(dev, CAP_NOTIFY, NOTIFY_OFF, vdev->num_queues * NOTIFY_MULT, 20);
	if (!c)
		return -ENOSPC;
	pci_cfg_write32(dev, c + 16, NOTIFY_MULT);
	if (vdev->config_size && !add_virtio_cap(dev, CAP_DEVICE, DEVICE_OFF, vdev->config_size, 16))
		return -ENOSPC;
	c = add_virtio_cap(dev, CAP_PCI_CFG, 0, 0, 20);
	if (!c)
		return -ENOSPC;
	dev->wmask[c + 4] = 0xff;
	memset(&dev->wmask[c + 8], 0xff, 12); /* offset, length, data */
	vdev->pci_cfg_cap = c;
	return 0;
}

static void kick_cb(struct event_handler *h, uint32_t events)
{
	struct virtio_queue *q = container_of(h, struct virtio_queue, kick);
	struct virtio_dev *vdev = q->vdev;

	drain_kick(q);
	pthread_mutex_lock(&vdev->lock);
	if (!q->enabled) {
		log_guest("%s: notification on queue %u, which was never set up", vdev->name,
			  q->index);
		virtio_dev_error(vdev);
	} else if (!virtio_dev_running(vdev)) {
		/* Before DRIVER_OK: looked at on activation. After an error: ignored. */
	} else if (!pci_bus_master_enabled(vdev->pci)) {
		log_guest("%s: queue %u kicked with bus mastering off", vdev->name, q->index);
	} else {
		vdev->ops->queue_kick(vdev, q->index);
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void *io_thread(void *arg)
{
	struct virtio_dev *vdev = arg;
	int r = event_loop_run(vdev->loop);

	if (r < 0)
		log_error("%s: I/O thread: %s", vdev->name, strerror(-r));
	return NULL;
}

int virtio_dev_init(struct virtio_dev *vdev, struct pci_host *pci, const struct guest_mem *mem,
		    const struct virtio_dev_desc *desc, struct event_loop *loop)
{
	int r;

	if (!desc->num_queues || desc->num_queues > VIRTIO_MAX_QUEUES ||
	    desc->config_size > VIRTIO_CONFIG_MAX || !desc->queue_max_size ||
	    desc->queue_max_size > VIRTQ_MAX_SIZE || !desc->ops || !desc->ops->queue_kick)
		return -EINVAL;
	memset(vdev, 0, sizeof(*vdev));
	pthread_mutex_init(&vdev->lock, NULL);
	snprintf(vdev->name, sizeof(vdev->name), "%s", desc->name);
	vdev->ops = desc->ops;
	vdev->mem = mem;
	vdev->ioevents = pci_host_ioevents(pci);
	vdev->device_features = desc->features | 1ULL << VIRTIO_F_VERSION_1 |
				1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VIRTIO_F_INDIRECT_DESC;
	vdev->num_queues = desc->num_queues;
	vdev->queue_max_size = desc->queue_max_size;
	vdev->config_size = desc->config_size;
	vdev->config_vector = VIRTIO_NO_VECTOR;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vdev->queues[i].kick_fd = -1;
	if (!loop) {
		r = event_loop_init(&vdev->own_loop);
		if (r < 0)
			return r;
		loop = &vdev->own_loop;
		vdev->own_thread = true;
	}
	vdev->loop = loop;
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct virtio_queue *q = &vdev->queues[i];

		q->vdev = vdev;
		q->index = i;
		q->size = vdev->queue_max_size;
		q->msix_vector = VIRTIO_NO_VECTOR;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0) {
			r = -errno;
			goto fail;
		}
		q->kick = (struct event_handler){ .fd = q->kick_fd, .cb = kick_cb };
		r = event_loop_add(loop, &q->kick, EPOLLIN);
		if (r < 0)
			goto fail;
	}
	r = pci_device_add(pci, &(struct pci_device_desc){
		.vendor_id = VIRTIO_PCI_VENDOR,
		.device_id = (uint16_t)(VIRTIO_PCI_DEVICE_MODERN + desc->device_id),
		.subsystem_vendor_id = VIRTIO_PCI_VENDOR,
		.subsystem_id = VIRTIO_PCI_SUBSYSTEM,
		.revision = 1, /* 4.1.2.1: modern-only devices have revision >= 1 */
		.class_code = desc->class_code,
		.intx = true,
		.bars[BAR_INDEX] = { .type = PCI_BAR_MEM64, .prefetchable = true,
				     .size = BAR_SIZE, .ops = &bar_ops, .opaque = vdev },
		.ops = &pci_ops,
		.opaque = vdev,
		.name = vdev->name,
	}, &vdev->pci);
	if (r < 0)
		goto fail;
	r = add_caps(vdev);
	if (!r)
		r = msix_init(&vdev->msix, vdev->pci, vdev->num_queues + 1, BAR_INDEX,
			      MSIX_TABLE_OFF, MSIX_PBA_OFF);
	if (r < 0)
		goto fail;
	return 0;
fail:
	log_error("%s: cannot create the device: %s", vdev->name, strerror(-r));
	virtio_dev_uninit(vdev);
	return r;
}

int virtio_dev_start(struct virtio_dev *vdev)
{
	int r;

	if (!vdev->own_thread)
		return 0;
	r = -pthread_create(&vdev->thread, NULL, io_thread, vdev);
	if (r < 0)
		log_error("%s: cannot start its I/O thread: %s", vdev->name, strerror(-r));
	else
		vdev->thread_running = true;
	return r;
}

void virtio_dev_uninit(struct virtio_dev *vdev)
{
	if (vdev->thread_running) {
		event_loop_stop(vdev->loop);
		pthread_join(vdev->thread, NULL);
	}
	if (vdev->pci) {
		virtio_dev_reset(vdev);
		pci_device_remove(vdev->pci);
		vdev->pci = NULL;
	}
	msix_destroy(&vdev->msix);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtio_queue *q = &vdev->queues[i];

		if (q->kick_fd < 0)
			continue;
		event_loop_del(vdev->loop, &q->kick);
		close(q->kick_fd);
		q->kick_fd = -1;
	}
	if (vdev->own_thread)
		event_loop_destroy(&vdev->own_loop);
	vdev->own_thread = vdev->thread_running = false;
	pthread_mutex_destroy(&vdev->lock);
}
