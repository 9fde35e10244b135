/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a virtio device core (rng.c, net.c, blk.c) sees of the transport.
 * The core embeds a `struct virtio_dev`, describes itself with a
 * `virtio_dev_desc`, and implements `virtio_dev_ops`; the virtio 1.x PCI
 * transport (virtio_pci.c) does the rest: capabilities, feature
 * negotiation, status, queue setup, notifications, interrupts.
 *
 * Threading (docs/virtio.md): every device has an I/O thread running an
 * event loop (its own, or one the creator passes in and runs). Queue kicks
 * arrive there through one eventfd per queue, written by KVM (ioeventfd)
 * or by the transport's notify handler on the bus. All device state is
 * protected by `vdev->lock`, and EVERY ops callback runs with it held:
 * kicks and backend events on the I/O thread, config/status accesses
 * (activate, reset, config_write) on vCPU threads. So a core never locks
 * for itself, and a reset can never race with queue processing. Lock order:
 * pci host -> vdev->lock -> msix.
 */
#ifndef KEEL_VIRTIO_H
#define KEEL_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "keel/ioevent.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/virtqueue.h"

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Transport feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

#define VIRTIO_MAX_QUEUES 64
#define VIRTIO_CONFIG_MAX 256
#define VIRTIO_NO_VECTOR 0xffff

struct virtio_dev;

struct virtio_dev_ops {
	/* FEATURES_OK is being set with these features; 0 accepts, <0 refuses. */
	int (*validate_features)(struct virtio_dev *vdev, uint64_t features);
	/* DRIVER_OK: queues are set up, features final. 0, or <0 -> NEEDS_RESET. */
	int (*activate)(struct virtio_dev *vdev);
	/*
	 * Device reset (status 0, or the VMM resetting the machine): stop
	 * using the queues, wait for in-flight requests, forget state. The
	 * transport forgets the queues afterwards.
	 */
	void (*reset)(struct virtio_dev *vdev);
	/* The driver kicked queue q (device is DRIVER_OK, queue ready). */
	void (*queue_kick)(struct virtio_dev *vdev, unsigned q);
	/* Driver wrote device config [off, off+size) (already range-checked). */
	void (*config_write)(struct virtio_dev *vdev, unsigned off, const void *data,
			     unsigned size);
	/*
	 * Snapshots and live migration (virtio_state.c); all optional, lock
	 * held. quiesce: the VM pauses: complete every in-flight request into
	 * the used ring (on the device's I/O thread, which then stays parked
	 * until the VM resumes). sync: before the device's state is saved,
	 * make the backend durable for another process to open (a disk
	 * flush); 0 or -errno. load_config: a loaded state's device config
	 * (as saved): take what the guest or the source may differ in, refuse
	 * with -EINVAL and a reason what says this device is not configured
	 * like the saved one (another disk size, another MAC given).
	 */
	void (*quiesce)(struct virtio_dev *vdev);
	int (*sync)(struct virtio_dev *vdev);
	int (*load_config)(struct virtio_dev *vdev, const uint8_t *config, char *err, size_t errlen);
};

struct virtio_dev_desc {
	const char *name;      /* "virtio-rng0": logs and the bus region */
	uint16_t device_id;    /* VIRTIO_ID_* */
	uint32_t class_code;   /* PCI class */
	uint64_t features;     /* device-specific bits; the transport adds its own */
	unsigned num_queues;
	uint16_t queue_max_size;
	unsigned config_size;  /* bytes of device config, <= VIRTIO_CONFIG_MAX */
	const struct virtio_dev_ops *ops;
};

struct virtio_queue {
	struct virtq vq;
	struct virtio_dev *vdev;
	unsigned index;
	bool enabled;
	uint16_t size, msix_vector;
	uint64_t desc, driver, device;
	int kick_fd;
	struct event_handler kick;
	struct ioeventfd ioev;
	bool ioev_added;
};

/* A paused or freshly loaded device (virtio_state.c). */
struct virtio_hold {
	struct event_handler park; /* asks the I/O thread to park; it reads this eventfd */
	int ack_fd;                /* the I/O thread answers here */
	bool held;                 /* paused: the I/O thread is parked (or quiesce ran inline) */
	bool loaded;               /* state loaded, not yet started: resume activates and kicks */
};

struct virtio_dev {
	pthread_mutex_t lock;
	char name[32];
	const struct virtio_dev_ops *ops;
	const struct guest_mem *mem;
	struct pci_device *pci;
	struct msix msix;
	struct ioeventfd_provider *ioevents;

	/* The I/O thread: ours (own_thread) or the creator's loop. */
	struct event_loop *loop;
	struct event_loop own_loop;
	pthread_t thread;
	bool own_thread, thread_running;

	uint64_t device_features, driver_features;
	uint32_t device_feature_select, driver_feature_select;
	uint8_t status, config_generation, isr;
	uint16_t config_vector, queue_select;
	uint16_t queue_max_size;
	unsigned num_queues;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	unsigned config_size;
	uint8_t config[VIRTIO_CONFIG_MAX]; /* device config, owned by the core */
	unsigned pci_cfg_cap;              /* VIRTIO_PCI_CAP_PCI_CFG offset */
	uint64_t errors;                   /* guest errors seen, for tests/stats */
	struct virtio_hold hold;           /* pause and load (virtio_state.c) */
};

/*
 * Sets up the transport and adds the PCI function. `loop` NULL: the device
 * gets its own I/O thread, started by virtio_dev_start(). Otherwise the
 * caller runs `loop` (tests pump it from the test thread). 0 or -errno.
 */
int virtio_dev_init(struct virtio_dev *vdev, struct pci_host *pci, const struct guest_mem *mem,
		    const struct virtio_dev_desc *desc, struct event_loop *loop);
/* Starts the I/O thread if the device has its own. */
int virtio_dev_start(struct virtio_dev *vdev);
/* Stops the I/O thread, resets, removes the PCI function, closes fds. */
void virtio_dev_uninit(struct virtio_dev *vdev);
/* Machine reset: as if the driver wrote status 0. Any thread. */
void virtio_dev_reset(struct virtio_dev *vdev);

/* For cores, with vdev->lock held: */
static inline bool virtio_has_feature(const struct virtio_dev *vdev, unsigned bit)
{
	return vdev->driver_features & (1ULL << bit);
}
static inline struct virtq *virtio_vq(struct virtio_dev *vdev, unsigned q)
{
	return &vdev->queues[q].vq;
}
/* Interrupt the driver for queue q if the ring's suppression allows it. */
void virtio_notify_queue(struct virtio_dev *vdev, unsigned q);
/* Config changed (core updated vdev->config): generation and interrupt. */
void virtio_config_changed(struct virtio_dev *vdev);
/* The driver broke the rules: DEVICE_NEEDS_RESET, config interrupt. */
void virtio_dev_error(struct virtio_dev *vdev);
/* Whether queues may be used (DRIVER_OK, not NEEDS_RESET). */
bool virtio_dev_running(const struct virtio_dev *vdev);

/* Config-space helpers for cores filling vdev->config (little-endian). */
void virtio_config_put16(struct virtio_dev *vdev, unsigned off, uint16_t v);
void virtio_config_put32(struct virtio_dev *vdev, unsigned off, uint32_t v);
void virtio_config_put64(struct virtio_dev *vdev, unsigned off, uint64_t v);

#endif
