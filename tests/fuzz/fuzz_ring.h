/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the device fuzzers: fuzz input -> a queue full of requests. */
#ifndef KEEL_FUZZ_RING_H
#define KEEL_FUZZ_RING_H

#include <stddef.h>
#include <stdint.h>

#include "vdriver.h"

#define FUZZ_RAM (1u << 20)
#define FUZZ_DATA 0x80000u /* where the input's buffers land in guest RAM */
#define FUZZ_QSIZE 16

/* The driver features the input's first four bytes ask for. */
uint64_t fuzz_features(const uint8_t *data);

/*
 * Writes up to FUZZ_QSIZE descriptors from the input into queue q (their
 * addresses folded into the data area unless flags bit 15 says raw), the
 * rest of the input into the data area, publishes them all and kicks.
 */
void fuzz_fill_queue(struct vdriver *d, unsigned q, const uint8_t *data, size_t size);

#endif
