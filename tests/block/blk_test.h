/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers the block-layer unit tests share: temp files, patterns, engines. */
#ifndef KEEL_BLK_TEST_H
#define KEEL_BLK_TEST_H

#include <stdint.h>
#include <stdlib.h>

#include "keel/block.h"

/* A fresh temp file of `size` bytes (sparse); the path is malloc'd. */
char *blk_test_tmpfile(uint64_t size);
/* Deterministic bytes for (seed, offset). */
void blk_test_fill(void *buf, uint64_t len, uint64_t seed, uint64_t offset);
struct blk_dev *blk_test_open(const char *path, enum blk_format fmt, enum blk_cache cache,
			      enum blk_aio aio, bool ro);
/* The same with BLK_OPEN_* flags. */
struct blk_dev *blk_test_open_flags(const char *path, enum blk_format fmt, enum blk_cache cache,
				    enum blk_aio aio, bool ro, unsigned flags);

#define BLK_TEST_ALL_AIO { BLK_AIO_IO_URING, BLK_AIO_THREADS, BLK_AIO_SYNC }

#endif
