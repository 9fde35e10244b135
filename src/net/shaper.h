/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic shaping of a NIC, per direction, in the model operators know
 * from vSphere and FusionCompute: an average bandwidth, a peak bandwidth
 * and a burst size. Frames (Ethernet header and payload, not the virtio
 * header) are counted in bits against keel/token_bucket.h's rate_limit:
 * the burst is how much may pass above the average, the peak how fast.
 *
 * Directions are the guest's: tx is what the guest sends, rx what it
 * receives. A frame over the limit waits in the device (transmit: its
 * chain stays popped and the queue stops; receive: the frame read from the
 * tap stays pending and the tap is not read meanwhile, so the host's
 * stack queues and then drops, as an ingress policer would).
 *
 * Not locked: the NIC uses it under its device lock.
 */
#ifndef KEEL_NET_SHAPER_H
#define KEEL_NET_SHAPER_H

#include <stddef.h>
#include <stdint.h>

#include "keel/token_bucket.h"

enum net_dir { NET_TX, NET_RX, NET_DIRS };

/* The largest values accepted. */
#define NET_LIMIT_MAX_BITS 1000000000000ULL /* 1 Tbit/s */
#define NET_LIMIT_MAX_BURST (64ULL << 30)   /* bytes */

/* average and peak in bits per second, burst in bytes; average 0: no limit. */
struct net_limits {
	struct rate_limit_params dir[NET_DIRS];
};

const char *net_dir_name(enum net_dir d);

/*
 * One "key=value" of --net: tx-average, tx-peak, tx-burst, rx-average,
 * rx-peak, rx-burst. Rates in bit/s with an optional k, M or G (powers of
 * 1000, as link speeds are given); bursts in bytes with K, M or G (powers
 * of 1024). 1 when stored, 0 when not a shaping key, -EINVAL with a line.
 */
int net_limits_parse_key(struct net_limits *lim, const char *what, const char *key,
			 const char *val, char *err, size_t errlen);
/* A burst or peak needs its average; a peak is not below it. 0 or -EINVAL. */
int net_limits_check(const struct net_limits *lim, const char *what, char *err, size_t errlen);
/* The range check of one value ("average", "peak" or "burst"), for the API. */
int net_limit_check_value(enum net_dir d, const char *field, uint64_t v, const char *what,
			  char *err, size_t errlen);

struct net_shaper {
	struct net_limits lim;
	struct rate_limit rl[NET_DIRS]; /* in bits */
};

void net_shaper_init(struct net_shaper *s, const struct net_limits *lim, uint64_t now_ns);
void net_shaper_set(struct net_shaper *s, const struct net_limits *lim, uint64_t now_ns);
/* Whether direction d has a limit: without one, callers need not read the clock. */
static inline bool net_shaper_active(const struct net_shaper *s, enum net_dir d)
{
	return rate_limit_active(&s->rl[d]);
}
void net_shaper_reserve(struct net_shaper *s, enum net_dir d, uint64_t frame_bytes,
			uint64_t now_ns, struct rate_ticket *t);
uint64_t net_shaper_wait_ns(struct net_shaper *s, enum net_dir d, const struct rate_ticket *t,
			    uint64_t now_ns);

#endif
