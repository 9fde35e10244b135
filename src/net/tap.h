/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Linux tap device as a network backend: frames in both directions carry
 * a 12-byte virtio_net_hdr_v1 (IFF_VNET_HDR, TUNSETVNETHDRSZ), so checksum
 * and segmentation offloads pass between the guest and the host stack
 * untouched. The fd is non-blocking.
 *
 * tap_open() attaches to an existing tap of that name, or creates one (and
 * brings it up); one we created is not persistent, so it disappears when
 * tap_close() closes the fd, including when the process dies.
 */
#ifndef KEEL_NET_TAP_H
#define KEEL_NET_TAP_H

#include <stdbool.h>
#include <stddef.h>

#define TAP_VNET_HDR_LEN 12

/* Offloads the host may hand us (what the guest accepts), TUNSETOFFLOAD. */
#define TAP_OFFLOAD_CSUM 0x1
#define TAP_OFFLOAD_TSO4 0x2
#define TAP_OFFLOAD_TSO6 0x4
#define TAP_OFFLOAD_ECN 0x8

struct tap;

/* 0 and *out, or -errno with one line in err naming the tap and the cause. */
int tap_open(const char *name, struct tap **out, char *err, size_t errlen);
/* Closes; a tap we created goes away with it. NULL is fine. */
void tap_close(struct tap *tap);

int tap_fd(const struct tap *tap);
const char *tap_name(const struct tap *tap);
bool tap_created(const struct tap *tap);
/* Whether TUNSETOFFLOAD works here (probed at open): guest offloads possible. */
bool tap_can_offload(const struct tap *tap);
/* TAP_OFFLOAD_* bits; 0 or -errno. */
int tap_set_offload(struct tap *tap, unsigned offloads);

struct net_backend;
/* The tap as virtio-net's backend; close() closes the tap. */
void tap_backend(struct tap *tap, struct net_backend *out);

#endif
