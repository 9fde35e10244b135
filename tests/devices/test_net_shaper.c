// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net shaping (net/shaper.h) over a fake backend that counts what
 * the guest sends and hands the guest as many frames as the test asks:
 * both directions are held back to their limits and lose nothing, a peak
 * slows a burst down, a change at run time applies to a waiting frame, and
 * the option strings refuse what makes no sense.
 *
 * Only lower bounds on elapsed time are asserted (the device's timer runs
 * on real time); the limiter's accuracy is unit-tested on a fake clock.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "net/backend.h"
#include "vdriver.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define HDR 12
#define RXQ 0
#define TXQ 1
#define FRAME 1000 /* payload bytes of every test frame */

struct fake_be {
	int fd;                   /* readable while frames are left for the guest */
	atomic_uint to_receive;   /* frames recv() still hands out */
	atomic_uint sent;         /* frames the guest sent */
	atomic_ullong sent_bytes; /* their bytes, header excluded */
};

static int fake_send(void *opaque, const struct iovec *iov, unsigned n)
{
	struct fake_be *b = opaque;
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += iov[i].iov_len;
	atomic_fetch_add(&b->sent_bytes, len - HDR);
	atomic_fetch_add(&b->sent, 1);
	return 0;
}

static ssize_t fake_recv(void *opaque, void *buf, size_t len)
{
	struct fake_be *b = opaque;
	unsigned left = atomic_load(&b->to_receive);
	uint64_t v;

	if (!left) {
		if (read(b->fd, &v, sizeof(v)) < 0) {
			/* already drained */
		}
		return -EAGAIN;
	}
	atomic_store(&b->to_receive, left - 1);
	memset(buf, 0, HDR);
	memset((uint8_t *)buf + HDR, 0xab, FRAME);
	return HDR + FRAME;
}

static int fake_fd(void *opaque)
{
	return ((struct fake_be *)opaque)->fd;
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .recv = fake_recv, .fd = fake_fd,
};

struct shaperig {
	struct guest h;
	struct fake_be be;
	struct virtio_net *net;
	struct vdriver d;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rig_up(struct shaperig *r, const char *limits)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct virtio_net_opts o;
	char spec[256], err[256];

	memset(r, 0, sizeof(*r));
	r->be.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->be.fd < 0 || guest_init(&r->h, NULL) < 0)
		return -1;
	snprintf(spec, sizeof(spec), "tap=unused%s", limits);
	if (virtio_net_parse(spec, &o, err, sizeof(err)) < 0) {
		printf("# %s\n", err);
		return -1;
	}
	r->net = virtio_net_create_backend(r->h.pci, &r->h.mem, mac,
					   &(struct net_backend){ .ops = &fake_ops, .opaque = &r->be },
					   NULL);
	if (!r->net)
		return -1;
	virtio_net_set_limits(r->net, &o.limits);
	if (vd_probe(&r->d, &r->h, VIRTIO_ID_NET, 0) < 0 || vd_negotiate(&r->d, 0) < 0)
		return -1;
	vd_setup_msix(&r->d, 2);
	if (vd_setup_queue(&r->d, RXQ, 0) < 0 || vd_setup_queue(&r->d, TXQ, 0) < 0)
		return -1;
	vd_driver_ok(&r->d);
	return 0;
}

static void rig_down(struct shaperig *r)
{
	virtio_net_destroy(r->net);
	guest_destroy(&r->h);
	close(r->be.fd);
}

static void send_frames(struct shaperig *r, unsigned n, uint32_t payload)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t g = h_alloc(&r->h, HDR + payload, 16);

		memset(h_ptr(&r->h, g), 0, HDR);
		vd_add(&r->d, TXQ, &(struct vd_buf){ g, HDR + payload, false }, 1);
	}
	vd_kick(&r->d, TXQ);
}

/* Waits until the backend saw n frames; false after 10 s. */
static bool wait_sent(struct shaperig *r, unsigned n)
{
	double end = now_s() + 10;

	while (atomic_load(&r->be.sent) < n && now_s() < end)
		usleep(500);
	return atomic_load(&r->be.sent) >= n;
}

KTEST(net_tx_average_holds_frames_back)
{
	struct shaperig r;
	struct virtio_net_stats st;
	double t0;

	/* 8 Mbit/s = 1 MB/s with 16 KiB at once: 160 KB take at least 0.14 s. */
	KASSERT(rig_up(&r, ",tx-average=8M,tx-burst=16K") == 0);
	t0 = now_s();
	send_frames(&r, 20, 8000);
	KCHECK(wait_sent(&r, 20));
	KCHECK(now_s() - t0 >= (160000.0 - 16384) / 1e6 - 0.005);
	KCHECK_EQ(atomic_load(&r.be.sent_bytes), 160000);
	for (unsigned i = 0; i < 20; i++)
		KCHECK(vd_get_used(&r.d, TXQ, NULL, NULL, 1000) == 1);
	virtio_net_get_stats(r.net, &st);
	KCHECK_EQ(st.tx_packets, 20);
	KCHECK(st.shaped[NET_TX] >= 15);
	KCHECK_EQ(st.shaped[NET_RX], 0);
	rig_down(&r);
}

KTEST(net_tx_peak_paces_the_burst)
{
	struct shaperig r;
	double t0;

	/* A 1 MiB burst is plenty, but the peak of 4 Mbit/s spends it at 0.5 MB/s. */
	KASSERT(rig_up(&r, ",tx-average=1M,tx-burst=1M,tx-peak=4M") == 0);
	t0 = now_s();
	send_frames(&r, 20, 5000);
	KCHECK(wait_sent(&r, 20));
	/* 800 kbit at 4 Mbit/s, less the 10 ms the peak bucket holds. */
	KCHECK(now_s() - t0 >= 0.19 - 0.005);
	rig_down(&r);
}

KTEST(net_rx_average_holds_frames_back_without_loss)
{
	struct shaperig r;
	uint64_t eight = 8;
	double t0;
	unsigned got = 0;

	/* 800 kbit/s = 100 KB/s with 2 KiB at once: 30 KB take at least 0.27 s. */
	KASSERT(rig_up(&r, ",rx-average=800k,rx-burst=2K") == 0);
	for (unsigned i = 0; i < 40; i++)
		vd_add(&r.d, RXQ, &(struct vd_buf){ h_alloc(&r.h, 2048, 16), 2048, true }, 1);
	vd_kick(&r.d, RXQ);
	t0 = now_s();
	atomic_store(&r.be.to_receive, 30);
	KCHECK(write(r.be.fd, &eight, sizeof(eight)) == sizeof(eight));
	while (got < 30 && vd_get_used(&r.d, RXQ, NULL, NULL, 5000) == 1)
		got++;
	KCHECK_EQ(got, 30);
	KCHECK(now_s() - t0 >= (30000.0 - 2048) / 1e5 - 0.005);
	KCHECK(vd_get_used(&r.d, RXQ, NULL, NULL, 50) == 0);
	rig_down(&r);
}

KTEST(net_limit_change_applies_to_a_waiting_frame)
{
	struct shaperig r;
	struct net_limits lim;
	double t0;

	/* 100 kbit/s: 10 frames of 5000 bytes would take about 4 s. */
	KASSERT(rig_up(&r, ",tx-average=100k,tx-burst=5000") == 0);
	virtio_net_get_limits(r.net, &lim);
	KCHECK_EQ(lim.dir[NET_TX].average, 100000);
	KCHECK_EQ(lim.dir[NET_TX].burst, 5000);
	t0 = now_s();
	send_frames(&r, 10, 5000);
	KCHECK(wait_sent(&r, 1));
	usleep(20000);
	KCHECK(atomic_load(&r.be.sent) < 3);
	lim.dir[NET_TX].average = 1000000000;
	virtio_net_set_limits(r.net, &lim);
	KCHECK(wait_sent(&r, 10));
	KCHECK(now_s() - t0 < 3.5);
	/* Lifted entirely. */
	virtio_net_set_limits(r.net, &(struct net_limits){ 0 });
	send_frames(&r, 5, 5000);
	KCHECK(wait_sent(&r, 15));
	rig_down(&r);
}

static const char *parse_error(const char *spec)
{
	static char err[512];
	struct virtio_net_opts o;

	if (virtio_net_parse(spec, &o, err, sizeof(err)) == 0)
		return "(accepted)";
	return err;
}

KTEST(net_shaping_options)
{
	struct virtio_net_opts o;
	char err[256];

	KCHECK_EQ(virtio_net_parse("tap=t0,tx-average=50M,tx-peak=1G,tx-burst=10M,rx-average=500k",
				   &o, err, sizeof(err)), 0);
	KCHECK_EQ(o.limits.dir[NET_TX].average, 50000000);
	KCHECK_EQ(o.limits.dir[NET_TX].peak, 1000000000);
	KCHECK_EQ(o.limits.dir[NET_TX].burst, 10 << 20);
	KCHECK_EQ(o.limits.dir[NET_RX].average, 500000);
	KCHECK_STR(parse_error("tap=t0,tx-average=-50M"),
		   "--net: tx-average -50M: a limit cannot be negative");
	KCHECK_STR(parse_error("tap=t0,rx-average=5000G"),
		   "--net: rx-average 5000000000000 is absurd: at most 1000000000000 bit/s");
	KCHECK_STR(parse_error("tap=t0,rx-average=99999999999999999999G"),
		   "--net: rx-average 99999999999999999999G is absurd: at most 1000000000000 bit/s");
	KCHECK_STR(parse_error("tap=t0,tx-average=1M,tx-burst=100G"),
		   "--net: tx-burst 107374182400 is absurd: at most 68719476736 bytes");
	KCHECK_STR(parse_error("tap=t0,tx-average=fast"),
		   "--net: tx-average 'fast' is not a rate in bit/s (examples: 500k, 50M, 1G)");
	KCHECK_STR(parse_error("tap=t0,tx-burst=1M"), "--net: tx-burst needs tx-average as well");
	KCHECK_STR(parse_error("tap=t0,rx-average=50M,rx-peak=10M"),
		   "--net: rx-peak 10000000 is below rx-average 50000000 (bit/s)");
	KCHECK(strstr(parse_error("tap=t0,tx-max=5"), "unknown key 'tx-max'") != NULL);
}

int main(void)
{
	return ktest_run_all();
}
