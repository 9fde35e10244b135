// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: qcow2 header and table parsing. The input is an image
 * file; it is opened read-only (header, extensions, L1, refcount and
 * snapshot tables), read at a few offsets (L2 lookups, compressed
 * clusters), checked (every table walked), then opened read-write and
 * written to (allocation over hostile refcount structures). Nothing may
 * crash, hang or touch memory it does not own; errors are fine.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/blk_img.h"
#include "block/qcow2.h"
#include "keel/block.h"
#include "keel/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd_with(const uint8_t *data, size_t size, char *path, size_t plen)
{
	int fd = memfd_create("qcow2", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

static void exercise(const char *path, bool rw)
{
	struct blk_open_opts o = { .path = path, .format = BLK_FORMAT_QCOW2, .read_only = !rw,
				   .aio = BLK_AIO_SYNC, .flags = BLK_OPEN_NO_BACKING };
	static uint8_t buf[128 * 1024] __attribute__((aligned(4096)));
	char err[BLK_ERR_LEN];
	struct blk_dev *dev;
	struct blk_queue *q;
	struct blk_info in;

	if (blk_open(&o, &dev, err, sizeof(err)))
		return;
	blk_get_info(dev, &in);
	if (!blk_queue_create(dev, 4, &q)) {
		uint64_t offs[] = { 0, in.size / 2, in.size > sizeof(buf) ? in.size - sizeof(buf) : 0 };

		for (unsigned i = 0; i < 3; i++) {
			uint64_t len = in.size < sizeof(buf) ? in.size & ~511ULL : sizeof(buf);

			if (rw)
				blk_pwrite(q, buf, len ? 512 : 0, offs[i] & ~511ULL);
			blk_pread(q, buf, len, offs[i] & ~511ULL);
		}
		if (rw)
			blk_flush(q);
		blk_queue_destroy(q);
	}
	if (!rw) {
		struct blk_check_result res;

		blk_img_check(dev, 0, &res, NULL);
	}
	blk_close(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qcow2_header h;
	char path[64], err[BLK_ERR_LEN];
	int fd;

	log_set_level((enum log_level)-1); /* quiet: errors are expected */
	qcow2_parse_header(data, size, size, &h, err, sizeof(err));
	fd = memfd_with(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	exercise(path, false);
	exercise(path, true);
	close(fd);
	return 0;
}
