/* SPDX-License-Identifier: Apache-2.0 */
/* Strict parsers for command-line values: the whole string must be used. */
#ifndef KEEL_PARSE_H
#define KEEL_PARSE_H

#include <stdint.h>

/*
 * A size with an optional binary suffix: K, M, G, T (powers of 1024, an
 * optional trailing "iB" or "B" accepted). A bare number is taken in
 * `default_unit` bytes (1 for bytes, MiB for --memory). 0 or -EINVAL/-ERANGE.
 */
int parse_size(const char *s, uint64_t default_unit, uint64_t *out);

/* A decimal unsigned integer no larger than max. 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * A Linux id list ("0-3,8,10-11", as in /sys/devices/system/cpu/online)
 * into a bitmap of nbits bits, which it clears first. 0, -EINVAL for bad
 * syntax or a backwards range, -ERANGE for an id of nbits or more.
 */
int parse_id_list(const char *s, uint8_t *bits, unsigned nbits);

#endif
