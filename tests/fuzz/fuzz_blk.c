// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk requests through the whole device: a driver sets it up over
 * a small image file (synchronous engine, so every request completes in
 * the same call), then the input becomes the queue's descriptor table and
 * the buffers it points to (headers, ranges, data), and the queue is
 * kicked. Whatever the input, the device must answer without touching
 * memory outside guest RAM or the image outside its size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_ring.h"
#include "guest.h"
#include "keel/log.h"
#include "vdriver.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[] = "/tmp/keel-fuzz-blk-XXXXXX";
	static bool made;
	struct blk_open_opts oo = { .path = path, .aio = BLK_AIO_SYNC };
	struct guest h;
	struct virtio_blk *blk;
	struct blk_dev *dev;
	struct vdriver d;

	log_set_level(LOG_LEVEL_ERROR);
	if (!made) {
		int fd = mkstemp(path);

		if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
			abort();
		close(fd);
		made = true;
	}
	if (size < 8 || guest_init(&h, &(struct guest_opts){ .ram_size = FUZZ_RAM }) < 0)
		return 0;
	oo.read_only = data[4] & 1;
	if (blk_open(&oo, &dev, NULL, 0) < 0)
		abort();
	blk = virtio_blk_create_dev(h.pci, &h.mem, dev, BLK_CACHE_WRITEBACK, "fuzz", 1, &h.loop);
	if (!blk || vd_probe(&d, &h, VIRTIO_ID_BLOCK, 0) < 0)
		abort();
	if (vd_negotiate(&d, fuzz_features(data)) == 0 &&
	    vd_setup_queue(&d, 0, FUZZ_QSIZE) == 0) {
		vd_driver_ok(&d);
		fuzz_fill_queue(&d, 0, data + 8, size - 8);
	}
	virtio_blk_destroy(blk);
	guest_destroy(&h);
	return 0;
}
