/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Disk I/O limits: operations per second and bytes per second, for all
 * requests or separately for reads and writes, each with a burst and a
 * peak (keel/token_bucket.h's rate_limit). A request reserves in every
 * limit that applies to it (a read: iops, iops-rd, bw, bw-rd) and may go
 * when all of them allow.
 *
 * A `blk_throttle` holds one set of limits under a mutex, so it can be one
 * disk's own or a group's, shared by disks served on different I/O threads.
 * Devices using it join as members; blk_throttle_set() wakes every member
 * so a waiting request is looked at again with the new limits at once.
 *
 * Only reads and writes are limited; flushes, discards and write-zeroes
 * pass (they move no data through the guest's bandwidth, and a flush held
 * back would only delay durability).
 */
#ifndef KEEL_BLOCK_THROTTLE_H
#define KEEL_BLOCK_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/token_bucket.h"

enum blk_limit {
	BLK_LIMIT_IOPS,
	BLK_LIMIT_IOPS_RD,
	BLK_LIMIT_IOPS_WR,
	BLK_LIMIT_BW,
	BLK_LIMIT_BW_RD,
	BLK_LIMIT_BW_WR,
	BLK_LIMIT_COUNT,
};

/* The limits' names on the command line ("iops-rd") and in the API ("iops_rd"). */
const char *blk_limit_name(enum blk_limit l);
const char *blk_limit_api_name(enum blk_limit l);
bool blk_limit_is_bytes(enum blk_limit l);

/* The largest values accepted: anything above is a typo, not a limit. */
#define BLK_LIMIT_MAX_IOPS 10000000ULL       /* per second */
#define BLK_LIMIT_MAX_BYTES (1ULL << 40)     /* per second, and a burst */
#define BLK_LIMIT_MAX_OPS_BURST 1000000000ULL

struct blk_limits {
	struct rate_limit_params l[BLK_LIMIT_COUNT];
};

/*
 * One "key=value" of --disk or --disk-group: iops, iops-rd, iops-wr, bw,
 * bw-rd, bw-wr, each also with -burst or -peak (iops in operations, bw in
 * bytes with an optional K/M/G suffix). Returns 1 when the key was a limit
 * and is stored, 0 when it is not a limit key, -EINVAL with one line in
 * err (prefixed by `what`) for a bad value.
 */
int blk_limits_parse_key(struct blk_limits *lim, const char *what, const char *key,
			 const char *val, char *err, size_t errlen);
/* Consistency: a burst or peak needs its average, a peak is not below it. 0 or -EINVAL. */
int blk_limits_check(const struct blk_limits *lim, const char *what, char *err, size_t errlen);
enum blk_limit_field { BLK_FIELD_AVERAGE, BLK_FIELD_BURST, BLK_FIELD_PEAK };
/* Checks one value as the parser does (the API uses it). 0 or -EINVAL. */
int blk_limit_check_value(enum blk_limit l, enum blk_limit_field f, uint64_t v, const char *what,
			  char *err, size_t errlen);
bool blk_limits_any(const struct blk_limits *lim);

struct blk_throttle_member {
	void (*wake)(struct blk_throttle_member *m);
	struct blk_throttle_member *next;
};

struct blk_throttle {
	pthread_mutex_t lock;
	struct rate_limit rl[BLK_LIMIT_COUNT];
	pthread_mutex_t members_lock; /* taken before any device lock, never under one */
	struct blk_throttle_member *members;
	char name[32];                /* a group's name; "" for a disk's own */
};

struct blk_throttle_ticket {
	struct rate_ticket t[BLK_LIMIT_COUNT];
};

void blk_throttle_init(struct blk_throttle *t, const char *name, const struct blk_limits *lim);
void blk_throttle_destroy(struct blk_throttle *t);
/* New limits from now on, then every member is woken. */
void blk_throttle_set(struct blk_throttle *t, const struct blk_limits *lim);
void blk_throttle_get(struct blk_throttle *t, struct blk_limits *lim);
void blk_throttle_join(struct blk_throttle *t, struct blk_throttle_member *m);
void blk_throttle_leave(struct blk_throttle *t, struct blk_throttle_member *m);

/* Reserves a read or write of `bytes`. */
void blk_throttle_reserve(struct blk_throttle *t, bool write, uint64_t bytes, uint64_t now_ns,
			  struct blk_throttle_ticket *tk);
/* Nanoseconds until the reserved request may go; 0 now. */
uint64_t blk_throttle_wait_ns(struct blk_throttle *t, const struct blk_throttle_ticket *tk,
			      uint64_t now_ns);
bool blk_throttle_active(struct blk_throttle *t);

#endif
