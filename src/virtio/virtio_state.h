/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots and live migration of virtio PCI devices: the device_ops the
 * machine registers for each (include/keel/device.h, docs/snapshot.md).
 * The `dev` pointer is the device's struct virtio_dev (virtio_blk_dev(),
 * virtio_net_dev(), virtio_rng_dev(), virtio_balloon_dev()).
 *
 * pause   the core completes its in-flight requests into the used ring
 *         (quiesce), then the device's I/O thread parks: nothing touches
 *         guest RAM or the device until resume. Doorbells rung meanwhile
 *         wait in their eventfds.
 * save    flushes the backend (a disk), then one section: the PCI
 *         function's config space and INTx level, MSI-X table and pending
 *         bits, the transport (status, features, selectors, config
 *         generation, ISR, vectors, device config) and every queue (size,
 *         enable, vector, ring addresses, last available and used index,
 *         event-index suppression state).
 * load    reads and checks everything as it would a driver's writes (ring
 *         addresses inside RAM, vectors in range, features this device
 *         offers, the same disk size, ...) before changing anything; the
 *         device then waits, quiet, for resume.
 * resume  unparks the I/O thread; after a load it activates the core
 *         (virtio-net puts the offloads on the new tap and starts
 *         receiving) and rings every enabled queue, so requests the guest
 *         queued before the save are served.
 *
 * For a device on a loop its creator runs (tests), pause runs quiesce on
 * the calling thread and the creator must not run the loop until resume.
 */
#ifndef KEEL_VIRTIO_STATE_H
#define KEEL_VIRTIO_STATE_H

#include "keel/device.h"
#include "virtio/virtio.h"

#define VIRTIO_STATE_VERSION 1

extern const struct device_ops virtio_blk_device_ops;
extern const struct device_ops virtio_net_device_ops;
extern const struct device_ops virtio_rng_device_ops;
extern const struct device_ops virtio_balloon_device_ops;

/* The same operations for callers holding a struct virtio_dev. */
void virtio_dev_pause(struct virtio_dev *vdev);
void virtio_dev_resume(struct virtio_dev *vdev);
int virtio_dev_save(struct virtio_dev *vdev, const char *name, struct state_writer *w);
int virtio_dev_load(struct virtio_dev *vdev, struct state_section *s, char *err, size_t errlen);

#endif
