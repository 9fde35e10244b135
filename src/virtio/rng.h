/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng (virtio 1.2 section 5.4): one request queue whose buffers the
 * device fills with bytes from the host's getrandom(2).
 */
#ifndef KEEL_VIRTIO_RNG_H
#define KEEL_VIRTIO_RNG_H

#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "pci/pci.h"

struct virtio_rng;
struct virtio_dev;

/*
 * Adds the device to `pci`. `loop` NULL gives it its own I/O thread;
 * otherwise the caller runs `loop`. NULL with errno on failure (logged).
 */
struct virtio_rng *virtio_rng_create(struct pci_host *pci, const struct guest_mem *mem,
				     struct event_loop *loop);
/* Its transport, for the device-state operations (virtio_state.h). */
struct virtio_dev *virtio_rng_dev(struct virtio_rng *rng);
/* Stops and removes the device. NULL is fine. */
void virtio_rng_destroy(struct virtio_rng *rng);

#endif
