/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2 section 5.1) over a tap device: one receive and
 * one transmit queue, the MAC and link status in config space, checksum
 * and TSO offloads negotiated with the guest and applied to the tap, and
 * mergeable receive buffers. When the guest's receive ring is full the
 * device stops reading the tap (the kernel queues, then applies its own
 * backpressure) and resumes when the guest adds buffers: nothing that was
 * read from the tap is dropped.
 */
#ifndef KEEL_VIRTIO_NET_H
#define KEEL_VIRTIO_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/event_loop.h"
#include "keel/guest_mem.h"
#include "net/shaper.h"
#include "pci/pci.h"

struct virtio_net_opts {
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	bool mac_set; /* else a random locally administered address */
	struct net_limits limits; /* tx-average=, ... (net/shaper.h); none by default */
};

/*
 * Parses "tap=NAME[,mac=MAC][,tx-average=BITS,...]" (shaper.h for the
 * shaping keys). 0, or -EINVAL with one line in err naming the bad key.
 */
int virtio_net_parse(const char *s, struct virtio_net_opts *opts, char *err, size_t errlen);

struct virtio_net;
struct virtio_dev;

/*
 * Opens the tap and adds the device. `loop` NULL gives it its own I/O
 * thread. NULL on failure with one line in err.
 */
struct virtio_net *virtio_net_create(struct pci_host *pci, const struct guest_mem *mem,
				     const struct virtio_net_opts *opts, struct event_loop *loop,
				     char *err, size_t errlen);
/* The same over any backend (tests, fuzzers, benchmarks); it is closed on destroy. */
struct net_backend;
struct virtio_net *virtio_net_create_backend(struct pci_host *pci, const struct guest_mem *mem,
					     const uint8_t mac[6], const struct net_backend *be,
					     struct event_loop *loop);
/* Its transport, for the device-state operations (virtio_state.h). */
struct virtio_dev *virtio_net_dev(struct virtio_net *net);
/* Stops the device, closes the tap (removing it if we created it). NULL ok. */
void virtio_net_destroy(struct virtio_net *net);
/* Link up/down in config space (VIRTIO_NET_F_STATUS), with a config interrupt. */
void virtio_net_set_link(struct virtio_net *net, bool up);

struct virtio_net_stats {
	uint64_t tx_packets, tx_dropped, rx_packets, rx_dropped, rx_stalls;
	uint64_t shaped[NET_DIRS];    /* frames that waited for the shaper (tx, rx) */
	uint64_t shaped_ns[NET_DIRS]; /* their total wait */
};
void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out);

/*
 * Shaping per direction (net/shaper.h), changeable at any time: a frame
 * waiting for the old limits is looked at again at once.
 */
void virtio_net_set_limits(struct virtio_net *net, const struct net_limits *lim);
void virtio_net_get_limits(struct virtio_net *net, struct net_limits *lim);

#endif
