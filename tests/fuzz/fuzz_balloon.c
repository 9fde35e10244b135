// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-balloon through the whole device: the input picks the features
 * and the queue (inflate, deflate, statistics, reporting) and becomes its
 * descriptors and buffers. Every range the device hands to its memory
 * backend must be whole pages inside guest RAM; the backend aborts if not.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_ring.h"
#include "guest.h"
#include "keel/log.h"
#include "vdriver.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"

static struct guest h;

static void in_ram(void *hva, uint64_t len)
{
	uint8_t *p = hva;

	if (!len || len % BALLOON_PAGE || (uintptr_t)p % BALLOON_PAGE || p < h.ram ||
	    len > h.ram_size || (uint64_t)(p - h.ram) > h.ram_size - len)
		abort();
}

static int64_t fuzz_discard(void *opaque, void *hva, uint64_t len, bool free_report)
{
	in_ram(hva, len);
	return (int64_t)len;
}

static void fuzz_reuse(void *opaque, void *hva, uint64_t len)
{
	in_ram(hva, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_balloon_opts o = { .deflate_on_oom = true, .free_page_reporting = true };
	struct balloon_memory bm = { .discard = fuzz_discard, .reuse = fuzz_reuse };
	struct virtio_balloon *b;
	struct vdriver d;

	log_set_level(LOG_LEVEL_ERROR);
	if (size < 8 || guest_init(&h, &(struct guest_opts){ .ram_size = FUZZ_RAM }) < 0)
		return 0;
	b = virtio_balloon_create(h.pci, &h.mem, &o, &bm, &h.loop);
	if (!b || vd_probe(&d, &h, VIRTIO_ID_BALLOON, 0) < 0)
		abort();
	if (vd_negotiate(&d, fuzz_features(data)) == 0) {
		unsigned q = data[5] % 4;

		for (unsigned i = 0; i < 4; i++)
			vd_setup_queue(&d, i, FUZZ_QSIZE);
		vd_driver_ok(&d);
		fuzz_fill_queue(&d, q, data + 8, size - 8);
		h_pump(&h, 0);
		virtio_balloon_request_stats(b);
		h_pump(&h, 0);
	}
	virtio_balloon_destroy(b);
	guest_destroy(&h);
	return 0;
}
