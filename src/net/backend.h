/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What virtio-net needs of a network backend (the tap, or a fake in tests
 * and fuzzers): frames in both directions prefixed with a 12-byte
 * virtio_net_hdr_v1, a pollable fd, and offload control.
 */
#ifndef KEEL_NET_BACKEND_H
#define KEEL_NET_BACKEND_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

struct net_backend_ops {
	/* A frame from the guest. 0, or -errno (the frame is dropped). */
	int (*send)(void *opaque, const struct iovec *iov, unsigned n);
	/* The next frame for the guest: its length, -EAGAIN if none, -errno. */
	ssize_t (*recv)(void *opaque, void *buf, size_t len);
	/* Readable when recv() may have a frame; -1 if it never has. */
	int (*fd)(void *opaque);
	/* TAP_OFFLOAD_* (net/tap.h) the guest accepts; 0 or -errno. */
	int (*set_offload)(void *opaque, unsigned offloads);
	void (*close)(void *opaque);
};

struct net_backend {
	const struct net_backend_ops *ops;
	void *opaque;
	bool can_offload; /* set_offload works: guest TSO/CSUM can be offered */
};

#endif
