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

#endif
