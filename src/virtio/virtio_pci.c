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
#include "keel/thread.h"
#include "virtio/virtio.h"
#include "virtio/virtio_int.h"

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
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4 /* each queue its own doorbell: no datamatch needed */
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000
#define AREA_LEN 0x1000

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
	if (off < COMMON_LEN && virtio_common_access_ok((unsigned)off, size)) {
		v = virtio_common_read(vdev, (unsigned)off, size);
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
	if (off < COMMON_LEN && virtio_common_access_ok((unsigned)off, size)) {
		virtio_common_write(vdev, (unsigned)off, size, v);
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

/* Machine reset, under the pci host lock: the device, MSI-X, the PCI_CFG window. */
static void pci_reset(struct pci_device *dev)
{
	struct virtio_dev *vdev = dev->opaque;

	virtio_dev_reset(vdev);
	msix_reset(&vdev->msix);
	if (vdev->pci_cfg_cap)
		memset(&dev->cfg[vdev->pci_cfg_cap + 8], 0, 12);
}

static const struct pci_device_ops pci_ops = {
	.config_written = pci_config_written,
	.config_read = pci_config_read,
	.bar_mapped = pci_bar_mapped,
	.reset = pci_reset,
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
	uint64_t kicks;

	/*
	 * Read the counter under the lock: a reset drains it under the same
	 * lock, so a kick the driver sent before resetting is not mistaken
	 * for one on a queue that is no longer set up.
	 */
	pthread_mutex_lock(&vdev->lock);
	if (read(q->kick_fd, &kicks, sizeof(kicks)) != sizeof(kicks)) {
		/* Nothing pending (EAGAIN): a reset consumed it. */
	} else if (!q->enabled) {
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
	r = -thread_create(&vdev->thread, THREAD_STACK_IO, io_thread, vdev);
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
