/* SPDX-License-Identifier: Apache-2.0 */
/* Between the virtio status machine (virtio_common.c) and the PCI transport. */
#ifndef KEEL_VIRTIO_INT_H
#define KEEL_VIRTIO_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define COMMON_LEN 0x38 /* struct virtio_pci_common_cfg up to queue_device */

/* Whether a common-config access hits a field at its width (or a 64-bit half). */
bool virtio_common_access_ok(unsigned off, unsigned size);
uint64_t virtio_common_read(struct virtio_dev *vdev, unsigned off, unsigned size);
void virtio_common_write(struct virtio_dev *vdev, unsigned off, unsigned size, uint64_t v);
/* Empties a queue's kick eventfd. */
void virtio_drain_kick(struct virtio_queue *q);

#endif
