/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A virtio-blk device over a temporary image file, driven by the mini
 * driver (vdriver.h): what test_blk.c and test_blk_throttle.c share.
 */
#ifndef KEEL_TEST_BLKRIG_H
#define KEEL_TEST_BLKRIG_H

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "vdriver.h"
#include "virtio/blk.h"
#include "virtio/blk_defs.h"

#define DISK_SIZE (8u << 20)
#define F(b) (1ULL << (b))
#define FEATURES (F(VIRTIO_F_INDIRECT_DESC) | F(VIRTIO_F_EVENT_IDX) | F(BLK_F_FLUSH) | \
		  F(BLK_F_MQ) | F(BLK_F_DISCARD) | F(BLK_F_WRITE_ZEROES) | F(BLK_F_RO) | 0x444)

struct blkrig {
	struct guest h;
	struct virtio_blk *blk;
	struct vdriver d;
	char path[64];
	int fd; /* the image, for checking from the host side */
	uint64_t features; /* what the driver negotiates */
};

/* opts are appended to "path=...,serial=KEEL-SERIAL-0001". 0 or -1 (with a # line). */
int blkrig_up(struct blkrig *r, const char *opts, bool threaded);
/* The same with another feature set than FEATURES. */
int blkrig_up_features(struct blkrig *r, const char *opts, bool threaded, uint64_t features);
void blkrig_down(struct blkrig *r);
/* Negotiates, sets up every queue and DRIVER_OK (again after a reset). 0 or -1. */
int blkrig_driver_up(struct blkrig *r);
/* A request the way Linux builds it; waits for it. The status byte, or -1. */
int request(struct blkrig *r, unsigned q, uint32_t type, uint64_t sector, uint64_t data,
	    uint32_t len, bool data_in, uint32_t *used_len);
/* The same, posted without waiting; the status byte's address goes to *st. */
uint16_t post_request(struct blkrig *r, unsigned q, uint32_t type, uint64_t sector, uint64_t data,
		      uint32_t len, bool data_in, uint64_t *st);
/* len bytes of a pattern in fresh guest memory. */
uint64_t pattern(struct blkrig *r, uint32_t len, uint8_t seed);

#endif
