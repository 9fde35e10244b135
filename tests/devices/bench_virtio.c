// SPDX-License-Identifier: Apache-2.0
/*
 * The VMM's own cost per request, natively (no guest, no KVM): the mini
 * driver drives virtio-blk reads into a RAM-backed image with the
 * synchronous engine, and virtio-net transmit into a backend that drops
 * frames. Writes one JSON object per metric (make bench's format) into
 * OUTDIR, or prints them.
 *
 *   bench_virtio [OUTDIR]
 *   bench_virtio --blk-requests N [--aio io_uring|threads|sync]
 *
 * Instructions per request come from the CPU's counter (perf_event_open)
 * when the kernel lets us read it, and are left out otherwise. The second
 * form runs only N virtio-blk reads (a multiple of 32) and writes nothing:
 * bench/callgrind_insn.py counts its instructions under callgrind for two
 * values of N, where there is no counter, and divides the difference;
 * `strace -c -f` on it counts the system calls of N requests per engine.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "keel/compiler.h"
#include "keel/log.h"
#include "net/backend.h"
#include "vdriver.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define BLK_REQUESTS 200000
#define NET_FRAMES 400000
#define DEPTH 32

static const char *outdir;
static int blk_requests = BLK_REQUESTS;
static enum blk_aio blk_aio = BLK_AIO_SYNC;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int insn_counter(void)
{
	struct perf_event_attr a = {
		.type = PERF_TYPE_HARDWARE, .size = sizeof(a),
		.config = PERF_COUNT_HW_INSTRUCTIONS, .disabled = 1, .exclude_kernel = 1,
		.exclude_hv = 1,
	};

	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t insn_read(int fd)
{
	uint64_t v = 0;

	return fd >= 0 && read(fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

static void emit(const char *metric, const char *unit, const char *better, double v)
{
	char path[512];
	FILE *f = stdout;

	if (outdir) {
		snprintf(path, sizeof(path), "%s/%s.json", outdir, metric);
		f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "bench_virtio: %s: %s\n", path, strerror(errno));
			exit(1);
		}
	}
	fprintf(f, "{\"metric\": \"%s\", \"unit\": \"%s\", \"better\": \"%s\", \"keel\": %.1f, "
		   "\"peers\": {}}\n", metric, unit, better, v);
	if (outdir)
		fclose(f);
}

static void bench_blk(void)
{
	struct guest h;
	struct vdriver d;
	struct blk_open_opts oo = { .aio = blk_aio };
	struct blk_dev *dev;
	struct virtio_blk *blk;
	uint64_t hdr[DEPTH], data[DEPTH], st[DEPTH];
	char path[64];
	int mfd = memfd_create("bench-disk", 0), ifd = insn_counter();
	double t0, t1;
	uint64_t i0, i1;

	if (mfd < 0 || ftruncate(mfd, 64 << 20) < 0 || guest_init(&h, NULL) < 0)
		exit(1);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	oo.path = path;
	if (blk_open(&oo, &dev, NULL, 0) < 0)
		exit(1);
	blk = virtio_blk_create_dev(h.pci, &h.mem, dev, BLK_CACHE_WRITEBACK, "bench", 1, &h.loop);
	if (!blk || vd_probe(&d, &h, VIRTIO_ID_BLOCK, 0) < 0 ||
	    vd_negotiate(&d, 1ULL << VIRTIO_F_EVENT_IDX) < 0 || vd_setup_queue(&d, 0, 256) < 0)
		exit(1);
	vd_setup_msix(&d, 1);
	vd_driver_ok(&d);
	for (int k = 0; k < DEPTH; k++) {
		hdr[k] = h_alloc(&h, 16, 16);
		data[k] = h_alloc(&h, 4096, 4096);
		st[k] = h_alloc(&h, 1, 1);
	}
	if (ifd >= 0)
		ioctl(ifd, PERF_EVENT_IOC_ENABLE, 0);
	t0 = now();
	i0 = insn_read(ifd);
	for (int done = 0; done < blk_requests; done += DEPTH) {
		for (int k = 0; k < DEPTH; k++) {
			uint64_t sector = (uint64_t)((done + k) % 16384) * 8;

			memcpy((uint8_t *)h_ptr(&h, hdr[k]) + 8, &sector, 8);
			vd_add(&d, 0, (struct vd_buf[]){ { hdr[k], 16, false }, { data[k], 4096, true },
							 { st[k], 1, true } }, 3);
		}
		vd_kick(&d, 0);
		for (int k = 0; k < DEPTH; k++)
			if (vd_get_used(&d, 0, NULL, NULL, 5000) != 1)
				exit(1);
	}
	i1 = insn_read(ifd);
	t1 = now();
	/* Under callgrind (--blk-requests) the timings mean nothing: report none. */
	if (blk_requests == BLK_REQUESTS)
		emit("virtio_blk_native_4k_read_rps", "requests/s", "higher", BLK_REQUESTS / (t1 - t0));
	if (blk_requests == BLK_REQUESTS && ifd >= 0 && i1 > i0)
		emit("virtio_blk_native_insn_per_4k_request", "instructions", "lower",
		     (double)(i1 - i0) / BLK_REQUESTS);
	virtio_blk_destroy(blk);
	guest_destroy(&h);
	close(mfd);
	if (ifd >= 0)
		close(ifd);
}

static int drop_send(void *opaque, const struct iovec *iov, unsigned n)
{
	return 0;
}

static ssize_t none_recv(void *opaque, void *buf, size_t len)
{
	return -EAGAIN;
}

static const struct net_backend_ops drop_ops = { .send = drop_send, .recv = none_recv };

static void bench_net_tx(void)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct net_backend be = { .ops = &drop_ops };
	struct guest h;
	struct vdriver d;
	struct virtio_net *net;
	uint64_t frame[DEPTH];
	double t0, t1;

	if (guest_init(&h, NULL) < 0)
		exit(1);
	net = virtio_net_create_backend(h.pci, &h.mem, mac, &be, &h.loop);
	if (!net || vd_probe(&d, &h, VIRTIO_ID_NET, 0) < 0 ||
	    vd_negotiate(&d, 1ULL << VIRTIO_F_EVENT_IDX) < 0 || vd_setup_queue(&d, 0, 256) < 0 ||
	    vd_setup_queue(&d, 1, 256) < 0)
		exit(1);
	vd_setup_msix(&d, 2);
	vd_driver_ok(&d);
	for (int k = 0; k < DEPTH; k++)
		frame[k] = h_alloc(&h, 12 + 64, 64); /* zero header, 64-byte frame */
	t0 = now();
	for (int done = 0; done < NET_FRAMES; done += DEPTH) {
		for (int k = 0; k < DEPTH; k++)
			vd_add(&d, 1, &(struct vd_buf){ frame[k], 12 + 64, false }, 1);
		vd_kick(&d, 1);
		for (int k = 0; k < DEPTH; k++)
			if (vd_get_used(&d, 1, NULL, NULL, 5000) != 1)
				exit(1);
	}
	t1 = now();
	emit("virtio_net_native_tx_pps", "packets/s", "higher", NET_FRAMES / (t1 - t0));
	virtio_net_destroy(net);
	guest_destroy(&h);
}

int main(int argc, char **argv)
{
	log_set_level(LOG_LEVEL_ERROR);
	if ((argc == 3 || argc == 5) && !strcmp(argv[1], "--blk-requests")) {
		blk_requests = atoi(argv[2]);
		if (argc == 5) {
			static const char *const names[] = { [BLK_AIO_IO_URING] = "io_uring",
							     [BLK_AIO_THREADS] = "threads",
							     [BLK_AIO_SYNC] = "sync" };
			unsigned i = 0;

			while (i < ARRAY_SIZE(names) && strcmp(argv[4], names[i]))
				i++;
			if (strcmp(argv[3], "--aio") || i == ARRAY_SIZE(names)) {
				fprintf(stderr, "bench_virtio: expected --aio io_uring|threads|sync\n");
				return 2;
			}
			blk_aio = (enum blk_aio)i;
		}
		if (blk_requests <= 0 || blk_requests % DEPTH) {
			fprintf(stderr, "bench_virtio: --blk-requests wants a positive multiple of %d\n",
				DEPTH);
			return 2;
		}
		bench_blk();
		return 0;
	}
	outdir = argc > 1 ? argv[1] : NULL;
	bench_blk();
	bench_net_tx();
	return 0;
}
