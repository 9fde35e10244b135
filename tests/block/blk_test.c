// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blk_test.h"

char *blk_test_tmpfile(uint64_t size)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	char *path;
	int fd;

	if (asprintf(&path, "%s/keel-blk-XXXXXX", dir) < 0)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, size) < 0) {
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

void blk_test_fill(void *buf, uint64_t len, uint64_t seed, uint64_t offset)
{
	uint8_t *b = buf;

	for (uint64_t i = 0; i < len; i++) {
		uint64_t x = (offset + i) * 0x9e3779b97f4a7c15ULL + seed * 0x100000001b3ULL;

		x ^= x >> 29;
		b[i] = (uint8_t)(x * 0xbf58476d1ce4e5b9ULL >> 56);
	}
}

struct blk_dev *blk_test_open(const char *path, enum blk_format fmt, enum blk_cache cache,
			      enum blk_aio aio, bool ro)
{
	return blk_test_open_flags(path, fmt, cache, aio, ro, 0);
}

struct blk_dev *blk_test_open_flags(const char *path, enum blk_format fmt, enum blk_cache cache,
				    enum blk_aio aio, bool ro, unsigned flags)
{
	struct blk_open_opts o = { .path = path, .format = fmt, .cache = cache,
				   .aio = aio, .read_only = ro, .flags = flags };
	struct blk_dev *dev = NULL;
	char err[BLK_ERR_LEN];

	if (blk_open(&o, &dev, err, sizeof(err))) {
		printf("# open %s: %s\n", path, err);
		return NULL;
	}
	return dev;
}
