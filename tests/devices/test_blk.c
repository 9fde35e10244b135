// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk end to end over a real image file, through each I/O engine:
 * config space, read/write/flush/get-id/discard/write-zeroes, read-only
 * disks, several queues, reset with requests in flight, and the hostile
 * requests of issue 3 (I/O error status, the device keeps serving).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkrig.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "virtio/virtio.h"

static void read_write_flush(const char *aio)
{
	struct blkrig r;
	char opts[64], host[8192];
	uint64_t w, rd;
	uint32_t ulen;

	snprintf(opts, sizeof(opts), ",aio=%s", aio);
	KASSERT(blkrig_up(&r, opts, false) == 0);
	KCHECK_EQ(vd_config_read(&r.d, 0, 8), DISK_SIZE / 512);   /* capacity */
	KCHECK_EQ(vd_config_read(&r.d, 20, 4), 512);              /* blk_size */
	KCHECK_EQ(vd_config_read(&r.d, 12, 4), 254);              /* seg_max */
	KCHECK(r.d.features & F(BLK_F_FLUSH));
	KCHECK(!(r.d.features & F(BLK_F_RO)));
	w = pattern(&r, 8192, 7);
	KCHECK_EQ(request(&r, 0, T_OUT, 100, w, 8192, false, NULL), 0);
	KCHECK_EQ(request(&r, 0, T_FLUSH, 0, 0, 0, false, NULL), 0);
	KCHECK(pread(r.fd, host, sizeof(host), 100 * 512) == (ssize_t)sizeof(host));
	KCHECK(!memcmp(host, h_ptr(&r.h, w), sizeof(host)));
	rd = h_alloc(&r.h, 8192, 4096);
	KCHECK_EQ(request(&r, 0, T_IN, 100, rd, 8192, true, &ulen), 0);
	KCHECK_EQ(ulen, 8192 + 1);
	KCHECK(!memcmp(h_ptr(&r.h, rd), h_ptr(&r.h, w), 8192));
	/* The last sector is readable, one past it is not. */
	KCHECK_EQ(request(&r, 0, T_IN, DISK_SIZE / 512 - 1, rd, 512, true, NULL), 0);
	KCHECK_EQ(request(&r, 0, T_IN, DISK_SIZE / 512, rd, 512, true, NULL), 1);
	blkrig_down(&r);
}

KTEST(blk_read_write_flush_io_uring)
{
	read_write_flush("io_uring");
}

KTEST(blk_read_write_flush_threads)
{
	read_write_flush("threads");
}

KTEST(blk_read_write_flush_sync)
{
	read_write_flush("sync");
}

KTEST(blk_get_id_discard_write_zeroes)
{
	struct blkrig r;
	struct stat before, after;
	uint64_t id, ranges, w;
	uint8_t rg[16] = { 0 };
	uint32_t ulen, n = 2048; /* 1 MiB */
	uint64_t sector = 2048;
	char buf[4096];

	KASSERT(blkrig_up(&r, ",aio=threads", false) == 0);
	id = h_alloc(&r.h, 20, 16);
	KCHECK_EQ(request(&r, 0, T_GET_ID, 0, id, 20, true, &ulen), 0);
	KCHECK(!memcmp(h_ptr(&r.h, id), "KEEL-SERIAL-0001\0\0\0\0", 20));
	KCHECK_EQ(ulen, 21);
	/* Fill 1 MiB, flush, then discard it: the file's blocks go away. */
	w = pattern(&r, 1 << 20, 3);
	KCHECK_EQ(request(&r, 0, T_OUT, sector, w, 1 << 20, false, NULL), 0);
	KCHECK_EQ(request(&r, 0, T_FLUSH, 0, 0, 0, false, NULL), 0);
	fstat(r.fd, &before);
	ranges = h_alloc(&r.h, 16, 16);
	memcpy(rg, &sector, 8);
	memcpy(rg + 8, &n, 4);
	memcpy(h_ptr(&r.h, ranges), rg, 16);
	if (r.d.features & F(BLK_F_DISCARD)) {
		KCHECK_EQ(request(&r, 0, T_DISCARD, 0, ranges, 16, false, NULL), 0);
		fstat(r.fd, &after);
		KCHECK(after.st_blocks + 1800 < before.st_blocks);
	}
	/* Write zeroes over fresh data. */
	KCHECK_EQ(request(&r, 0, T_OUT, sector, w, 4096, false, NULL), 0);
	n = 8;
	memcpy(rg + 8, &n, 4);
	memcpy(h_ptr(&r.h, ranges), rg, 16);
	KCHECK(r.d.features & F(BLK_F_WRITE_ZEROES));
	KCHECK_EQ(request(&r, 0, T_WRITE_ZEROES, 0, ranges, 16, false, NULL), 0);
	KCHECK(pread(r.fd, buf, sizeof(buf), (off_t)sector * 512) == (ssize_t)sizeof(buf));
	for (unsigned i = 0; i < sizeof(buf); i++)
		if (buf[i]) {
			KFAIL("byte %u not zero after WRITE_ZEROES", i);
			break;
		}
	blkrig_down(&r);
}

KTEST(blk_read_only_refuses_writes)
{
	struct blkrig r;
	char host[512];
	uint64_t w, rg;

	KASSERT(blkrig_up(&r, ",readonly=on", false) == 0);
	KCHECK(r.d.features & F(BLK_F_RO));
	KCHECK(!(r.d.features & F(BLK_F_DISCARD)));
	w = pattern(&r, 512, 9);
	KCHECK_EQ(request(&r, 0, T_OUT, 0, w, 512, false, NULL), 1);
	rg = h_alloc(&r.h, 16, 16);
	*(uint32_t *)((uint8_t *)h_ptr(&r.h, rg) + 8) = 1;
	KCHECK_EQ(request(&r, 0, T_WRITE_ZEROES, 0, rg, 16, false, NULL), 1);
	KCHECK(pread(r.fd, host, sizeof(host), 0) == 512);
	KCHECK(memcmp(host, h_ptr(&r.h, w), 512) != 0);
	KCHECK_EQ(request(&r, 0, T_IN, 0, w, 512, true, NULL), 0);
	blkrig_down(&r);
}

/* Writethrough: every completed write is durable, so no FLUSH is offered. */
KTEST(blk_writethrough_offers_no_flush)
{
	struct blkrig r;
	char host[512];
	uint64_t w;

	KASSERT(blkrig_up(&r, ",cache=writethrough", false) == 0);
	KCHECK(!(r.d.features & F(BLK_F_FLUSH)));
	w = pattern(&r, 512, 5);
	KCHECK_EQ(request(&r, 0, T_OUT, 3, w, 512, false, NULL), 0);
	KCHECK(pread(r.fd, host, sizeof(host), 3 * 512) == 512);
	KCHECK(!memcmp(host, h_ptr(&r.h, w), 512));
	blkrig_down(&r);
}

KTEST(blk_multiqueue_threaded)
{
	struct blkrig r;
	uint64_t w[4];

	KASSERT(blkrig_up(&r, ",queues=4", true) == 0);
	KCHECK_EQ(vd_config_read(&r.d, 34, 2), 4);
	KCHECK_EQ(vd_common_read(&r.d, 0x12, 2), 4);
	for (unsigned q = 0; q < 4; q++) {
		w[q] = pattern(&r, 4096, (uint8_t)q);
		KCHECK_EQ(request(&r, q, T_OUT, 8 * q, w[q], 4096, false, NULL), 0);
	}
	for (unsigned q = 0; q < 4; q++) {
		uint64_t rd = h_alloc(&r.h, 4096, 4096);

		KCHECK_EQ(request(&r, (q + 1) % 4, T_IN, 8 * q, rd, 4096, true, NULL), 0);
		KCHECK(!memcmp(h_ptr(&r.h, rd), h_ptr(&r.h, w[q]), 4096));
	}
	/* Each queue completed a write and a read through its own vector. */
	for (unsigned q = 0; q < 4; q++) {
		/* The device thread pushes, then signals: give the MSI a moment. */
		for (int i = 0; i < 1000 && h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, q)) < 2; i++)
			usleep(1000);
		KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, q)) >= 2);
	}
	blkrig_down(&r);
}

/*
 * Requests completed in one pass cost the guest one interrupt, even when
 * the driver did not negotiate EVENT_IDX (which would otherwise suppress
 * the rest, but only after an irqfd write each).
 */
KTEST(blk_batch_of_completions_raises_one_interrupt)
{
	struct blkrig r;
	uint8_t *status[16];
	uint16_t *used;
	unsigned msi0;

	KASSERT(blkrig_up_features(&r, ",aio=sync", false, FEATURES & ~F(VIRTIO_F_EVENT_IDX)) == 0);
	for (unsigned i = 0; i < 16; i++) {
		uint64_t hdr = h_alloc(&r.h, 16, 16), st = h_alloc(&r.h, 1, 1);
		uint64_t data = h_alloc(&r.h, 4096, 4096), sector = 8 * i;

		memset(h_ptr(&r.h, hdr), 0, 16); /* T_IN */
		memcpy((uint8_t *)h_ptr(&r.h, hdr) + 8, &sector, 8);
		status[i] = h_ptr(&r.h, st);
		*status[i] = 0xee;
		vd_add(&r.d, 0, (struct vd_buf[]){ { hdr, 16, false }, { data, 4096, true },
						   { st, 1, true } }, 3);
	}
	msi0 = h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, 0));
	vd_kick(&r.d, 0);
	h_pump(&r.h, 20);
	used = h_ptr(&r.h, r.d.q[0].used);
	KCHECK_EQ(__atomic_load_n(&used[1], __ATOMIC_ACQUIRE), 16);
	for (unsigned i = 0; i < 16; i++)
		KCHECK_EQ(*status[i], 0);
	KCHECK_EQ(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, 0)) - msi0, 1);
	blkrig_down(&r);
}

KTEST(blk_reset_with_requests_in_flight)
{
	struct blkrig r;

	KASSERT(blkrig_up(&r, ",aio=threads", true) == 0);
	for (unsigned i = 0; i < 64; i++) {
		uint64_t hdr = h_alloc(&r.h, 16, 16), d = h_alloc(&r.h, 65536, 4096);
		uint64_t st = h_alloc(&r.h, 1, 1), sector = 128ULL * i;

		memcpy((uint8_t *)h_ptr(&r.h, hdr) + 8, &sector, 8);
		vd_add(&r.d, 0, (struct vd_buf[]){ { hdr, 16, false }, { d, 65536, true },
						   { st, 1, true } }, 3);
	}
	vd_kick(&r.d, 0);
	vd_reset(&r.d);
	KCHECK_EQ(vd_status(&r.d), 0);
	KASSERT(blkrig_driver_up(&r) == 0);
	KCHECK_EQ(request(&r, 0, T_IN, 0, h_alloc(&r.h, 512, 512), 512, true, NULL), 0);
	blkrig_down(&r);
}

/* Hostile requests: an I/O error (or UNSUPP) status, and the device keeps going. */
static int raw_request(struct blkrig *r, const struct vd_buf *bufs, unsigned n, uint64_t st)
{
	uint32_t id;

	*(uint8_t *)h_ptr(&r->h, st) = 0xee;
	vd_add(&r->d, 0, bufs, n);
	vd_kick(&r->d, 0);
	if (vd_get_used(&r->d, 0, &id, NULL, 5000) != 1)
		return -1;
	return *(uint8_t *)h_ptr(&r->h, st);
}

static uint64_t header(struct blkrig *r, uint32_t type, uint64_t sector)
{
	uint64_t g = h_alloc(&r->h, 16, 16);

	memcpy(h_ptr(&r->h, g), &type, 4);
	memcpy((uint8_t *)h_ptr(&r->h, g) + 8, &sector, 8);
	return g;
}

KTEST(hostile_blk_requests_get_io_errors)
{
	struct blkrig r;
	uint64_t st, d, rg;
	uint32_t bad_range[4] = { 0, 0, 8, 0 };

	KASSERT(blkrig_up(&r, "", false) == 0);
	st = h_alloc(&r.h, 1, 1);
	d = h_alloc(&r.h, 4096, 4096);
	/* Header of 8 bytes. */
	KCHECK_EQ(raw_request(&r, (struct vd_buf[]){ { header(&r, T_IN, 0), 8, false },
						     { st, 1, true } }, 2, st), 1);
	/* Header device-writable (wrong direction): no readable header at all. */
	KCHECK_EQ(raw_request(&r, (struct vd_buf[]){ { header(&r, T_IN, 0), 16, true },
						     { st, 1, true } }, 2, st), 1);
	/* Sector beyond capacity, and sector * 512 overflowing 64 bits. */
	KCHECK_EQ(request(&r, 0, T_IN, DISK_SIZE / 512 + 7, d, 512, true, NULL), 1);
	KCHECK_EQ(request(&r, 0, T_OUT, 1ULL << 55, d, 512, false, NULL), 1);
	KCHECK_EQ(request(&r, 0, T_IN, UINT64_MAX, d, 512, true, NULL), 1);
	/* A length that is not whole sectors. */
	KCHECK_EQ(request(&r, 0, T_IN, 0, d, 100, true, NULL), 1);
	/* A read whose data buffer is device-readable (wrong direction). */
	KCHECK_EQ(request(&r, 0, T_IN, 0, d, 512, false, NULL), 1);
	/* A write whose data buffer is device-writable. */
	KCHECK_EQ(request(&r, 0, T_OUT, 0, d, 512, true, NULL), 1);
	/* Status buffer larger than one byte: the status is its last byte. */
	{
		uint64_t st4 = h_alloc(&r.h, 4, 4);

		KCHECK_EQ(raw_request(&r, (struct vd_buf[]){ { header(&r, T_FLUSH, 0), 16, false },
							     { st4, 4, true } }, 2, st4 + 3), 0);
	}
	/* Unknown request type. */
	KCHECK_EQ(request(&r, 0, 99, 0, 0, 0, false, NULL), 2);
	/* Discard: reserved flags, a range past the end, a partial range entry. */
	rg = h_alloc(&r.h, 16, 16);
	bad_range[3] = 0x80;
	memcpy(h_ptr(&r.h, rg), bad_range, 16);
	if (r.d.features & F(BLK_F_DISCARD))
		KCHECK_EQ(request(&r, 0, T_DISCARD, 0, rg, 16, false, NULL), 2);
	bad_range[0] = DISK_SIZE / 512 - 4;
	bad_range[3] = 0;
	memcpy(h_ptr(&r.h, rg), bad_range, 16);
	KCHECK_EQ(request(&r, 0, T_WRITE_ZEROES, 0, rg, 16, false, NULL), 1);
	KCHECK_EQ(request(&r, 0, T_WRITE_ZEROES, 0, rg, 12, false, NULL), 1);
	/* None of that broke the device. */
	KCHECK_EQ(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	KCHECK_EQ(request(&r, 0, T_OUT, 0, d, 4096, false, NULL), 0);
	KCHECK_EQ(request(&r, 0, T_IN, 0, d, 4096, true, NULL), 0);
	blkrig_down(&r);
}

KTEST(hostile_blk_status_not_writable_needs_reset)
{
	struct blkrig r;
	uint32_t id;

	KASSERT(blkrig_up(&r, "", false) == 0);
	/* The status descriptor is device-readable: nowhere to report. */
	vd_add(&r.d, 0, (struct vd_buf[]){ { header(&r, T_FLUSH, 0), 16, false },
					   { h_alloc(&r.h, 1, 1), 1, false } }, 2);
	vd_kick(&r.d, 0);
	h_pump(&r.h, 0);
	KCHECK(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET);
	KCHECK(vd_get_used(&r.d, 0, &id, NULL, 10) == 0);
	KASSERT(blkrig_driver_up(&r) == 0);
	KCHECK_EQ(request(&r, 0, T_FLUSH, 0, 0, 0, false, NULL), 0);
	blkrig_down(&r);
}

KTEST(blk_option_strings)
{
	struct virtio_blk_opts o;
	char err[512];

	KCHECK_EQ(virtio_blk_parse("path=/x.img,readonly=on,cache=none,aio=threads,serial=abc,"
				   "format=qcow2,queues=2", &o, err, sizeof(err)), 0);
	KCHECK_STR(o.path, "/x.img");
	KCHECK(o.read_only && o.cache == BLK_CACHE_NONE && o.aio == BLK_AIO_THREADS);
	KCHECK(o.format == BLK_FORMAT_QCOW2 && o.queues == 2);
	KCHECK_STR(o.serial, "abc");
	KCHECK_EQ(virtio_blk_parse("path=/x", &o, err, sizeof(err)), 0);
	KCHECK(o.cache == BLK_CACHE_WRITEBACK && o.aio == BLK_AIO_IO_URING && !o.read_only);
	KCHECK_EQ(virtio_blk_parse("path=/x,cache=fast", &o, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--disk: cache 'fast' is not none, writethrough or writeback");
	KCHECK_EQ(virtio_blk_parse("path=/x,size=1G", &o, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "unknown key 'size'") != NULL);
	KCHECK_EQ(virtio_blk_parse("path=/x,serial=123456789012345678901", &o, err, sizeof(err)),
		  -EINVAL);
	KCHECK_EQ(virtio_blk_parse("path=/x,queues=0", &o, err, sizeof(err)), -EINVAL);
	KCHECK_EQ(virtio_blk_parse("readonly=on", &o, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--disk: path=FILE is required");
}

int main(void)
{
	return ktest_run_all();
}
