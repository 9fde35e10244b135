// SPDX-License-Identifier: Apache-2.0
/*
 * Pause, save, load and resume of a virtio PCI device (virtio_state.h).
 * The section, version 1, in order:
 *   PCI function (pci_state.h), MSI-X (msix.h),
 *   u64 device features (what this device offered), u64 driver features,
 *   u32 device/driver feature select, u8 status, config generation, ISR,
 *   u16 config vector, queue select, u32 queue count, u32 config size,
 *   the device config, then per queue: u16 size, bool enabled, u16 vector,
 *   u64 descriptor/driver/device areas, u16 last available index, u16 used
 *   index, u16 used index last signalled, bool that one is valid, bool
 *   the ring is broken.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "pci/pci_state.h"
#include "virtio/virtio_state.h"

#define KNOWN_STATUS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK | \
		      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)
#define MSIX_CTRL_HI_ENABLE 0x80 /* message control bit 15, in its high byte */

/* --- pause and resume -------------------------------------------------------- */

static void write_one(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		log_warn("virtio: eventfd write: %s", strerror(errno));
}

static void read_one(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/*
 * On the I/O thread: finish what is in flight, say so, and stay here until
 * resume asks again (or the loop is being stopped: the device is going away).
 */
static void park_cb(struct event_handler *h, uint32_t events)
{
	struct virtio_dev *vdev = container_of(h, struct virtio_dev, hold.park);
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&vdev->lock);
	if (vdev->ops->quiesce)
		vdev->ops->quiesce(vdev);
	pthread_mutex_unlock(&vdev->lock);
	write_one(vdev->hold.ack_fd);
	for (;;) {
		struct pollfd p[2] = { { .fd = h->fd, .events = POLLIN },
				       { .fd = vdev->loop->wake_fd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0)
			continue;
		if ((p[0].revents & POLLIN) && read(h->fd, &v, sizeof(v)) == sizeof(v))
			break;
		if (vdev->loop->stop)
			break;
		if (p[1].revents & POLLIN)
			read_one(vdev->loop->wake_fd);
	}
	write_one(vdev->hold.ack_fd);
}

/* Parks the device's own I/O thread; false if it has none (or cannot). */
static bool park_thread(struct virtio_dev *vdev)
{
	struct virtio_hold *hd = &vdev->hold;

	if (!vdev->own_thread || !vdev->thread_running)
		return false;
	hd->park = (struct event_handler){ .fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .cb = park_cb };
	hd->ack_fd = eventfd(0, EFD_CLOEXEC);
	if (hd->park.fd < 0 || hd->ack_fd < 0 || event_loop_add(vdev->loop, &hd->park, EPOLLIN) < 0) {
		log_error("%s: cannot park its I/O thread: %s", vdev->name, strerror(errno));
		if (hd->park.fd >= 0)
			close(hd->park.fd);
		if (hd->ack_fd >= 0)
			close(hd->ack_fd);
		return false;
	}
	write_one(hd->park.fd);
	read_one(hd->ack_fd);
	return true;
}

void virtio_dev_pause(struct virtio_dev *vdev)
{
	if (vdev->hold.held)
		return;
	if (!park_thread(vdev)) {
		/* No thread of ours (a test's loop) or no eventfd: quiesce here. */
		pthread_mutex_lock(&vdev->lock);
		if (vdev->ops->quiesce)
			vdev->ops->quiesce(vdev);
		pthread_mutex_unlock(&vdev->lock);
		vdev->hold.park.fd = -1;
	}
	vdev->hold.held = true;
}

/*
 * Every enabled queue is looked at again: a request the core left in the
 * ring when it quiesced (a full block queue), or that the guest queued
 * before a save, has no doorbell of its own afterwards. After a load the
 * core first starts as at DRIVER_OK.
 */
static void restart(struct virtio_dev *vdev, bool loaded)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->hold.loaded = false;
	if (loaded && virtio_dev_running(vdev) && vdev->ops->activate &&
	    vdev->ops->activate(vdev) < 0)
		virtio_dev_error(vdev);
	for (unsigned i = 0; virtio_dev_running(vdev) && i < vdev->num_queues; i++)
		if (vdev->queues[i].enabled)
			write_one(vdev->queues[i].kick_fd);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_dev_resume(struct virtio_dev *vdev)
{
	struct virtio_hold *hd = &vdev->hold;
	bool was_held = hd->held;

	if (hd->held && hd->park.fd >= 0) {
		write_one(hd->park.fd);
		read_one(hd->ack_fd);
		event_loop_del(vdev->loop, &hd->park);
		close(hd->park.fd);
		close(hd->ack_fd);
		hd->park.fd = hd->ack_fd = -1;
	}
	hd->held = false;
	if (was_held || hd->loaded)
		restart(vdev, hd->loaded);
}

/* --- save -------------------------------------------------------------------- */

int virtio_dev_save(struct virtio_dev *vdev, const char *name, struct state_writer *w)
{
	int r = 0;

	pthread_mutex_lock(&vdev->lock);
	if (vdev->ops->sync)
		r = vdev->ops->sync(vdev);
	if (r) {
		pthread_mutex_unlock(&vdev->lock);
		return r;
	}
	state_begin(w, name, VIRTIO_STATE_VERSION);
	pci_function_save(vdev->pci, w);
	msix_save(&vdev->msix, w);
	state_put_u64(w, vdev->device_features);
	state_put_u64(w, vdev->driver_features);
	state_put_u32(w, vdev->device_feature_select);
	state_put_u32(w, vdev->driver_feature_select);
	state_put_u8(w, vdev->status);
	state_put_u8(w, vdev->config_generation);
	state_put_u8(w, vdev->isr);
	state_put_u16(w, vdev->config_vector);
	state_put_u16(w, vdev->queue_select);
	state_put_u32(w, vdev->num_queues);
	state_put_u32(w, vdev->config_size);
	state_put_bytes(w, vdev->config, vdev->config_size);
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		const struct virtio_queue *q = &vdev->queues[i];

		state_put_u16(w, q->size);
		state_put_bool(w, q->enabled);
		state_put_u16(w, q->msix_vector);
		state_put_u64(w, q->desc);
		state_put_u64(w, q->driver);
		state_put_u64(w, q->device);
		state_put_u16(w, q->vq.last_avail);
		state_put_u16(w, q->vq.used_idx);
		state_put_u16(w, q->vq.signalled_used);
		state_put_bool(w, q->vq.signalled_valid);
		state_put_bool(w, q->vq.broken);
	}
	state_end(w);
	pthread_mutex_unlock(&vdev->lock);
	return state_writer_error(w);
}

/* --- load -------------------------------------------------------------------- */

struct saved_queue {
	uint16_t size, msix_vector, last_avail, used_idx, signalled_used;
	bool enabled, signalled_valid, broken;
	uint64_t desc, driver, device;
};

struct saved_virtio {
	struct pci_saved_function pci;
	struct msix_saved msix;
	uint64_t device_features, driver_features;
	uint32_t device_feature_select, driver_feature_select, num_queues, config_size;
	uint8_t status, config_generation, isr;
	uint16_t config_vector, queue_select;
	uint8_t config[VIRTIO_CONFIG_MAX];
	struct saved_queue q[VIRTIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MAX_QUEUES]; /* the enabled queues, set up and checked */
};

#define FAIL(...)                                        \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		return -EINVAL;                          \
	} while (0)

static int read_section(struct virtio_dev *vdev, struct state_section *s, struct saved_virtio *v,
			char *err, size_t errlen)
{
	int r;

	pci_function_read(s, &v->pci);
	r = msix_read_saved(&vdev->msix, s, &v->msix, err, errlen);
	if (r)
		return r;
	v->device_features = state_get_u64(s);
	v->driver_features = state_get_u64(s);
	v->device_feature_select = state_get_u32(s);
	v->driver_feature_select = state_get_u32(s);
	v->status = state_get_u8(s);
	v->config_generation = state_get_u8(s);
	v->isr = state_get_u8(s);
	v->config_vector = state_get_u16(s);
	v->queue_select = state_get_u16(s);
	v->num_queues = state_get_u32(s);
	v->config_size = state_get_u32(s);
	if (v->num_queues != vdev->num_queues)
		FAIL("%u queues, this device has %u", v->num_queues, vdev->num_queues);
	if (v->config_size != vdev->config_size)
		FAIL("%u bytes of device config, this device has %u", v->config_size, vdev->config_size);
	state_get_bytes(s, v->config, v->config_size);
	for (unsigned i = 0; i < v->num_queues; i++) {
		struct saved_queue *q = &v->q[i];

		q->size = state_get_u16(s);
		q->enabled = state_get_bool(s);
		q->msix_vector = state_get_u16(s);
		q->desc = state_get_u64(s);
		q->driver = state_get_u64(s);
		q->device = state_get_u64(s);
		q->last_avail = state_get_u16(s);
		q->used_idx = state_get_u16(s);
		q->signalled_used = state_get_u16(s);
		q->signalled_valid = state_get_bool(s);
		q->broken = state_get_bool(s);
	}
	return state_finish(s, err, errlen) ? -EBADMSG : 0;
}

static bool vector_ok(const struct virtio_dev *vdev, uint16_t v)
{
	return v == VIRTIO_NO_VECTOR || v < vdev->msix.nr;
}

/* Everything a driver could not have made the device hold. */
static int check_transport(struct virtio_dev *vdev, struct saved_virtio *v, char *err, size_t errlen)
{
	uint8_t st = v->status;
	bool msix_on = v->pci.cfg[vdev->msix.cap + 3] & MSIX_CTRL_HI_ENABLE;

	if (pci_function_check(vdev->pci, &v->pci, err, errlen))
		return -EINVAL;
	if (msix_on != v->msix.enabled)
		FAIL("MSI-X is %s in config space but %s in the saved MSI-X state",
		     msix_on ? "on" : "off", v->msix.enabled ? "on" : "off");
	if (v->device_features != vdev->device_features)
		FAIL("the saved device offered features 0x%llx, this one offers 0x%llx: is it "
		     "configured the same way (read-only, cache mode, the tap's offloads)?",
		     (unsigned long long)v->device_features, (unsigned long long)vdev->device_features);
	if (st & ~KNOWN_STATUS)
		FAIL("device status 0x%x", st);
	if (v->isr & ~3u)
		FAIL("ISR status 0x%x", v->isr);
	if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK) &&
	    !(st & VIRTIO_STATUS_NEEDS_RESET))
		FAIL("device status 0x%x: DRIVER_OK without FEATURES_OK", st);
	if (st & VIRTIO_STATUS_FEATURES_OK) {
		/* What write_status() checked when the driver set FEATURES_OK. */
		if ((v->driver_features & ~vdev->device_features) ||
		    !(v->driver_features & (1ULL << VIRTIO_F_VERSION_1)) ||
		    (vdev->ops->validate_features &&
		     vdev->ops->validate_features(vdev, v->driver_features)))
			FAIL("negotiated features 0x%llx that this device would refuse",
			     (unsigned long long)v->driver_features);
	}
	if (!vector_ok(vdev, v->config_vector))
		FAIL("config vector %u of %u", v->config_vector, vdev->msix.nr);
	return 0;
}

static int check_queues(struct virtio_dev *vdev, struct saved_virtio *v, char *err, size_t errlen)
{
	bool event_idx = v->driver_features & (1ULL << VIRTIO_F_EVENT_IDX);
	bool indirect = v->driver_features & (1ULL << VIRTIO_F_INDIRECT_DESC);

	for (unsigned i = 0; i < v->num_queues; i++) {
		const struct saved_queue *q = &v->q[i];
		struct virtq *vq = &v->vq[i];

		if (!vector_ok(vdev, q->msix_vector))
			FAIL("queue %u: vector %u of %u", i, q->msix_vector, vdev->msix.nr);
		virtq_reset(vq);
		if (!q->enabled)
			continue;
		if (!(v->status & VIRTIO_STATUS_FEATURES_OK))
			FAIL("queue %u enabled before the features were negotiated", i);
		/* The same checks as when the driver enabled it (alignment, size, inside RAM). */
		if (virtq_setup(vq, vdev->mem, q->size, vdev->queue_max_size, q->desc, q->driver,
				q->device, event_idx, indirect) < 0)
			FAIL("queue %u: size %u with rings at 0x%llx, 0x%llx, 0x%llx do not fit this VM",
			     i, q->size, (unsigned long long)q->desc, (unsigned long long)q->driver,
			     (unsigned long long)q->device);
		vq->last_avail = q->last_avail;
		vq->used_idx = q->used_idx;
		vq->signalled_used = q->signalled_used;
		vq->signalled_valid = q->signalled_valid;
		vq->broken = q->broken;
	}
	return 0;
}

/* Lock held. The config: the core's rules, or else it must be what this device has. */
static int take_config(struct virtio_dev *vdev, const struct saved_virtio *v, char *err, size_t errlen)
{
	if (vdev->ops->load_config)
		return vdev->ops->load_config(vdev, v->config, err, errlen);
	if (memcmp(v->config, vdev->config, vdev->config_size))
		FAIL("its device config differs from this device's");
	return 0;
}

/* Lock held: nothing can fail from here on. */
static void apply_transport(struct virtio_dev *vdev, const struct saved_virtio *v)
{
	vdev->driver_features = v->driver_features;
	vdev->device_feature_select = v->device_feature_select;
	vdev->driver_feature_select = v->driver_feature_select;
	vdev->status = v->status;
	vdev->config_generation = v->config_generation;
	vdev->isr = v->isr;
	vdev->config_vector = v->config_vector;
	vdev->queue_select = v->queue_select;
	for (unsigned i = 0; i < vdev->num_queues; i++) {
		struct virtio_queue *q = &vdev->queues[i];
		const struct saved_queue *sq = &v->q[i];

		q->size = sq->size;
		q->enabled = sq->enabled;
		q->msix_vector = sq->msix_vector;
		q->desc = sq->desc;
		q->driver = sq->driver;
		q->device = sq->device;
		q->vq = v->vq[i];
	}
	vdev->hold.loaded = true;
}

int virtio_dev_load(struct virtio_dev *vdev, struct state_section *s, char *err, size_t errlen)
{
	struct saved_virtio *v;
	char why[400] = "";
	int r;

	r = state_check_version(s, 1, VIRTIO_STATE_VERSION, err, errlen);
	if (r)
		return r;
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "%s: out of memory", s->tag);
		return -ENOMEM;
	}
	r = read_section(vdev, s, v, why, sizeof(why));
	if (!r)
		r = check_transport(vdev, v, why, sizeof(why));
	if (!r)
		r = check_queues(vdev, v, why, sizeof(why));
	if (!r) {
		pthread_mutex_lock(&vdev->lock);
		r = take_config(vdev, v, why, sizeof(why));
		pthread_mutex_unlock(&vdev->lock);
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", s->tag, why);
	} else {
		/* BARs first: the doorbells' ioeventfds follow them. Lock order: PCI, device, MSI-X. */
		pci_device_load_config(vdev->pci, v->pci.cfg, PCI_STATE_CFG_BYTES);
		msix_apply_saved(&vdev->msix, &v->msix);
		pthread_mutex_lock(&vdev->lock);
		apply_transport(vdev, v);
		pthread_mutex_unlock(&vdev->lock);
		pci_set_intx(vdev->pci, v->pci.intx_level);
	}
	msix_saved_free(&v->msix);
	free(v);
	return r;
}

/* --- the device_ops ------------------------------------------------------------ */

static void ops_pause(void *dev)
{
	virtio_dev_pause(dev);
}

static void ops_resume(void *dev)
{
	virtio_dev_resume(dev);
}

static int ops_save(void *dev, const char *name, struct state_writer *w)
{
	return virtio_dev_save(dev, name, w);
}

static int ops_load(void *dev, struct state_section *s, char *err, size_t errlen)
{
	return virtio_dev_load(dev, s, err, errlen);
}

#define VIRTIO_DEVICE_OPS(kind)                                                         \
	{                                                                               \
		.type = kind, .state_version = VIRTIO_STATE_VERSION, .pause = ops_pause, \
		.resume = ops_resume, .save = ops_save, .load = ops_load,               \
	}

const struct device_ops virtio_blk_device_ops = VIRTIO_DEVICE_OPS("virtio-blk");
const struct device_ops virtio_net_device_ops = VIRTIO_DEVICE_OPS("virtio-net");
const struct device_ops virtio_rng_device_ops = VIRTIO_DEVICE_OPS("virtio-rng");
const struct device_ops virtio_balloon_device_ops = VIRTIO_DEVICE_OPS("virtio-balloon");
