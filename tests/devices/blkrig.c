// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkrig.h"
#include "virtio/virtio.h"

int blkrig_up(struct blkrig *r, const char *opts, bool threaded)
{
	return blkrig_up_features(r, opts, threaded, FEATURES);
}

int blkrig_up_features(struct blkrig *r, const char *opts, bool threaded, uint64_t features)
{
	struct virtio_blk_opts o;
	char spec[256], err[512];

	memset(r, 0, sizeof(*r));
	r->features = features;
	snprintf(r->path, sizeof(r->path), "/tmp/keel-blk-test-XXXXXX");
	r->fd = mkstemp(r->path);
	if (r->fd < 0 || ftruncate(r->fd, DISK_SIZE) < 0 || guest_init(&r->h, NULL) < 0)
		return -1;
	snprintf(spec, sizeof(spec), "path=%s,serial=KEEL-SERIAL-0001%s", r->path, opts);
	if (virtio_blk_parse(spec, &o, err, sizeof(err)) < 0) {
		printf("# %s\n", err);
		return -1;
	}
	r->blk = virtio_blk_create(r->h.pci, &r->h.mem, &o, 1, 0, threaded ? NULL : &r->h.loop, err,
				   sizeof(err));
	if (!r->blk) {
		printf("# %s\n", err);
		return -1;
	}
	if (vd_probe(&r->d, &r->h, VIRTIO_ID_BLOCK, 0) < 0)
		return -1;
	return blkrig_driver_up(r);
}

int blkrig_driver_up(struct blkrig *r)
{
	unsigned nq;

	if (vd_negotiate(&r->d, r->features) < 0)
		return -1;
	nq = (unsigned)vd_config_read(&r->d, 34, 2);
	vd_setup_msix(&r->d, nq);
	for (unsigned q = 0; q < nq; q++)
		if (vd_setup_queue(&r->d, q, 0) < 0)
			return -1;
	vd_driver_ok(&r->d);
	return 0;
}

void blkrig_down(struct blkrig *r)
{
	virtio_blk_destroy(r->blk);
	guest_destroy(&r->h);
	close(r->fd);
	unlink(r->path);
}

uint16_t post_request(struct blkrig *r, unsigned q, uint32_t type, uint64_t sector, uint64_t data,
		      uint32_t len, bool data_in, uint64_t *st)
{
	uint64_t hdr = h_alloc(&r->h, 16, 16);
	uint8_t *h = h_ptr(&r->h, hdr);
	struct vd_buf bufs[3];
	unsigned n = 0;
	uint16_t head;

	*st = h_alloc(&r->h, 1, 1);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	*(uint8_t *)h_ptr(&r->h, *st) = 0xee;
	bufs[n++] = (struct vd_buf){ hdr, 16, false };
	if (len)
		bufs[n++] = (struct vd_buf){ data, len, data_in };
	bufs[n++] = (struct vd_buf){ *st, 1, true };
	head = vd_add(&r->d, q, bufs, n);
	vd_kick(&r->d, q);
	return head;
}

int request(struct blkrig *r, unsigned q, uint32_t type, uint64_t sector, uint64_t data,
	    uint32_t len, bool data_in, uint32_t *used_len)
{
	uint64_t st;
	uint32_t id, ulen;

	post_request(r, q, type, sector, data, len, data_in, &st);
	if (vd_get_used(&r->d, q, &id, &ulen, 5000) != 1)
		return -1;
	if (used_len)
		*used_len = ulen;
	return *(uint8_t *)h_ptr(&r->h, st);
}

uint64_t pattern(struct blkrig *r, uint32_t len, uint8_t seed)
{
	uint64_t g = h_alloc(&r->h, len, 4096);
	uint8_t *p = h_ptr(&r->h, g);

	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13);
	return g;
}
