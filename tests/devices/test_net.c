// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net end to end over a real tap device, inside a network namespace
 * this test creates (so the host's network is untouched): frames from the
 * mini driver reach a UDP socket on the host side of the tap and back,
 * offloads reach the tap, a full receive ring stalls without loss, and
 * hostile rings end in DEVICE_NEEDS_RESET. Needs root (CAP_NET_ADMIN); skips
 * otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "vdriver.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define TAP "ktap0"
#define HOST_IP "10.77.0.1"
#define GUEST_IP "10.77.0.2"
#define HOST_PORT 5555
#define GUEST_PORT 6666
#define HDR 12
#define RXQ 0
#define TXQ 1
#define F(b) (1ULL << (b))
#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_HOST_TSO4 11
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define ALL_FEATURES                                                                     \
	(F(NET_F_CSUM) | F(NET_F_GUEST_CSUM) | F(NET_F_MAC) | F(NET_F_GUEST_TSO4) |       \
	 F(NET_F_HOST_TSO4) | F(NET_F_MRG_RXBUF) | F(NET_F_STATUS) |                      \
	 F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_F_INDIRECT_DESC))

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct netrig {
	struct guest h;
	struct virtio_net *net;
	struct vdriver d;
	int sock; /* host-side UDP socket bound to HOST_IP:HOST_PORT */
};

static int ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0), r;

	if (s < 0)
		return -errno;
	r = ioctl(s, req, ifr) < 0 ? -errno : 0;
	close(s);
	return r;
}

/* Host side of the tap: address, a static neighbour for the guest, a socket. */
static int host_side_up(struct netrig *r)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	struct arpreq arp = { 0 };
	struct sockaddr_in bind_addr = { .sin_family = AF_INET, .sin_port = htons(HOST_PORT) };
	struct timeval tv = { .tv_sec = 2 };
	int s;

	snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, HOST_IP, &sin->sin_addr);
	if (ifreq_ioctl(SIOCSIFADDR, &ifr) < 0)
		return -1;
	inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
	if (ifreq_ioctl(SIOCSIFNETMASK, &ifr) < 0)
		return -1;
	sin = (struct sockaddr_in *)&arp.arp_pa;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, GUEST_IP, &sin->sin_addr);
	arp.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(arp.arp_ha.sa_data, guest_mac, 6);
	arp.arp_flags = ATF_COM | ATF_PERM;
	snprintf(arp.arp_dev, sizeof(arp.arp_dev), TAP);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || ioctl(s, SIOCSARP, &arp) < 0)
		return -1;
	close(s);
	r->sock = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, HOST_IP, &bind_addr.sin_addr);
	if (r->sock < 0 || bind(r->sock, (struct sockaddr *)&bind_addr, sizeof(bind_addr)) < 0)
		return -1;
	setsockopt(r->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

static int netrig_up(struct netrig *r, bool threaded, const char *extra_opts)
{
	struct virtio_net_opts o;
	char spec[128], err[256];

	memset(r, 0, sizeof(*r));
	r->sock = -1;
	if (guest_init(&r->h, NULL) < 0)
		return -1;
	snprintf(spec, sizeof(spec), "tap=" TAP ",mac=52:54:00:12:34:56%s", extra_opts);
	if (virtio_net_parse(spec, &o, err, sizeof(err)) < 0)
		return -1;
	r->net = virtio_net_create(r->h.pci, &r->h.mem, &o, threaded ? NULL : &r->h.loop, err,
				   sizeof(err));
	if (!r->net) {
		printf("# %s\n", err);
		return -1;
	}
	if (vd_probe(&r->d, &r->h, VIRTIO_ID_NET, 0) < 0)
		return -1;
	return host_side_up(r);
}

static void netrig_down(struct netrig *r)
{
	if (r->sock >= 0)
		close(r->sock);
	virtio_net_destroy(r->net);
	guest_destroy(&r->h);
}

static int start(struct vdriver *d, uint64_t features)
{
	if (vd_negotiate(d, features) < 0)
		return -1;
	vd_setup_msix(d, 2);
	if (vd_setup_queue(d, RXQ, 0) < 0 || vd_setup_queue(d, TXQ, 0) < 0)
		return -1;
	vd_driver_ok(d);
	return 0;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/*
 * vnet header + Ethernet + IPv4 + UDP from the guest to the host socket.
 * partial: leave the UDP checksum to the host (NEEDS_CSUM).
 */
static size_t build_udp(uint8_t *f, const void *payload, size_t plen, bool partial)
{
	uint8_t *eth = f + HDR, *ip = eth + 14, *udp = ip + 20;
	uint16_t ulen = (uint16_t)(8 + plen), tot = (uint16_t)(20 + ulen), c;
	uint32_t pseudo;

	memset(f, 0, HDR + 42);
	eth[0] = 0xff; /* any destination MAC: the tap takes every frame */
	memset(eth, 0xff, 6);
	memcpy(eth + 6, guest_mac, 6);
	eth[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = 17;
	inet_pton(AF_INET, GUEST_IP, ip + 12);
	inet_pton(AF_INET, HOST_IP, ip + 16);
	c = (uint16_t)~csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = GUEST_PORT >> 8;
	udp[1] = GUEST_PORT & 0xff;
	udp[2] = HOST_PORT >> 8;
	udp[3] = HOST_PORT & 0xff;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	memcpy(udp + 8, payload, plen);
	pseudo = csum_add(0, ip + 12, 8) + 17 + ulen;
	if (partial) {
		c = csum_fold(pseudo);
		f[0] = 1; /* NEEDS_CSUM */
		f[6] = 34; /* csum_start = Ethernet + IP */
		f[8] = 6;  /* csum_offset inside UDP */
	} else {
		c = (uint16_t)~csum_fold(csum_add(pseudo, udp, ulen));
	}
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
	return HDR + 42 + plen;
}

static int guest_send(struct netrig *r, const void *payload, size_t plen, bool partial, bool split)
{
	uint64_t gpa = h_alloc(&r->h, 2048, 16);
	size_t len = build_udp(h_ptr(&r->h, gpa), payload, plen, partial);
	uint32_t id;

	if (split) /* header alone in the first buffer, as Linux does without ANY_LAYOUT */
		vd_add(&r->d, TXQ, (struct vd_buf[]){ { gpa, HDR, false },
						       { gpa + HDR, (uint32_t)(len - HDR), false } }, 2);
	else
		vd_add(&r->d, TXQ, &(struct vd_buf){ gpa, (uint32_t)len, false }, 1);
	vd_kick(&r->d, TXQ);
	return vd_get_used(&r->d, TXQ, &id, NULL, 2000);
}

static ssize_t host_recv(struct netrig *r, void *buf, size_t len)
{
	return recv(r->sock, buf, len, 0);
}

static void host_send(struct netrig *r, const void *buf, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(GUEST_PORT) };

	inet_pton(AF_INET, GUEST_IP, &to.sin_addr);
	if (sendto(r->sock, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len)
		printf("# sendto: %s\n", strerror(errno));
}

static void post_rx(struct netrig *r, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = h_alloc(&r->h, size, 16);

		vd_add(&r->d, RXQ, &(struct vd_buf){ gpa, size, true }, 1);
	}
	vd_kick(&r->d, RXQ);
}

/*
 * Reaps one received frame (across num_buffers chains) into out; returns
 * the UDP payload length if it is one of ours, 0 for other traffic, -1 if
 * nothing arrived.
 */
static int guest_recv(struct netrig *r, uint8_t *out, size_t outlen, uint16_t *nbufs)
{
	uint8_t frame[70000];
	size_t got = 0;
	uint16_t nb = 1;
	uint32_t id, len;

	for (uint16_t i = 0; i < nb; i++) {
		uint64_t gpa;

		if (vd_get_used(&r->d, RXQ, &id, &len, 2000) != 1)
			return -1;
		/* Our buffers are single-descriptor: the descriptor holds the address. */
		memcpy(&gpa, (uint8_t *)h_ptr(&r->h, r->d.q[RXQ].desc) + 16 * id, 8);
		if (got + len > sizeof(frame))
			return -1;
		memcpy(frame + got, h_ptr(&r->h, gpa), len);
		got += len;
		if (i == 0)
			memcpy(&nb, frame + 10, 2);
	}
	if (nbufs)
		*nbufs = nb;
	if (got < HDR + 42 || frame[HDR + 12] != 0x08 || frame[HDR + 13] != 0 ||
	    frame[HDR + 14 + 9] != 17 || frame[HDR + 14 + 20 + 2] != GUEST_PORT >> 8 ||
	    frame[HDR + 14 + 20 + 3] != (GUEST_PORT & 0xff))
		return 0;
	if (memcmp(frame + HDR, guest_mac, 6))
		return 0;
	if (got - HDR - 42 > outlen)
		return -1;
	memcpy(out, frame + HDR + 42, got - HDR - 42);
	return (int)(got - HDR - 42);
}

/* Skips unrelated traffic; -1 if nothing of ours came. */
static int guest_recv_ours(struct netrig *r, uint8_t *out, size_t outlen, uint16_t *nb)
{
	for (int i = 0; i < 16; i++) {
		int n = guest_recv(r, out, outlen, nb);

		if (n != 0)
			return n;
		post_rx(r, 1, 2048);
	}
	return -1;
}

KTEST(net_guest_to_host_and_back)
{
	struct netrig r;
	char buf[2048];
	uint8_t in[2048];
	uint16_t nb = 0;
	ssize_t n;

	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	KCHECK_EQ(vd_config_read(&r.d, 0, 4), 0x12005452);   /* MAC in config space */
	KCHECK_EQ(vd_config_read(&r.d, 4, 2), 0x5634);
	KCHECK_EQ(vd_config_read(&r.d, 6, 2), 1);            /* link up */
	/* Complete checksum, header in its own buffer. */
	KCHECK(guest_send(&r, "hello host", 10, false, true) == 1);
	n = host_recv(&r, buf, sizeof(buf));
	KCHECK(n == 10 && !memcmp(buf, "hello host", 10));
	/* Checksum offloaded to the host (NEEDS_CSUM), one buffer. */
	KCHECK(guest_send(&r, "partial csum", 12, true, false) == 1);
	n = host_recv(&r, buf, sizeof(buf));
	KCHECK(n == 12 && !memcmp(buf, "partial csum", 12));
	/* Host to guest. */
	post_rx(&r, 8, 2048);
	host_send(&r, "hello guest", 11);
	KCHECK_EQ(guest_recv_ours(&r, in, sizeof(in), &nb), 11);
	KCHECK(!memcmp(in, "hello guest", 11));
	KCHECK_EQ(nb, 1);
	KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, RXQ)) >= 1);
	KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, TXQ)) >= 1);
	netrig_down(&r);
	KCHECK_EQ(if_nametoindex(TAP), 0); /* we created it, so it is gone */
}

KTEST(net_mergeable_rx_buffers)
{
	struct netrig r;
	uint8_t payload[1000], in[2048];
	uint16_t nb = 0;

	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	post_rx(&r, 64, 256);
	host_send(&r, payload, sizeof(payload));
	KCHECK_EQ(guest_recv_ours(&r, in, sizeof(in), &nb), (int)sizeof(payload));
	KCHECK(!memcmp(in, payload, sizeof(payload)));
	KCHECK_EQ(nb, (HDR + 42 + sizeof(payload) + 255) / 256);
	netrig_down(&r);
}

KTEST(net_full_rx_ring_stalls_without_loss)
{
	struct netrig r;
	struct virtio_net_stats st;
	uint8_t in[64];
	unsigned next = 0;

	KASSERT(netrig_up(&r, true, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES & ~F(NET_F_MRG_RXBUF)) == 0);
	for (unsigned i = 0; i < 60; i++) {
		char msg[16];

		snprintf(msg, sizeof(msg), "seq %03u", i);
		host_send(&r, msg, 7);
	}
	usleep(100 * 1000);
	/* Feed the ring a few buffers at a time; every datagram must arrive in order. */
	for (int round = 0; round < 200 && next < 60; round++) {
		int n;

		post_rx(&r, 4, 2048);
		while ((n = guest_recv(&r, in, sizeof(in), NULL)) >= 0) {
			char want[16];

			if (n == 0)
				continue;
			snprintf(want, sizeof(want), "seq %03u", next);
			KCHECK(n == 7 && !memcmp(in, want, 7));
			next++;
			if (next == 60 || r.d.q[RXQ].last_used == r.d.q[RXQ].avail_idx)
				break;
		}
	}
	KCHECK_EQ(next, 60);
	virtio_net_get_stats(r.net, &st);
	KCHECK(st.rx_stalls >= 1);
	KCHECK_EQ(st.rx_dropped, 0);
	netrig_down(&r);
}

/*
 * Found with a Linux guest (iperf3 host to guest, GSO frames over mergeable
 * buffers): a frame needing more buffers than the ring holds must wait
 * without the I/O thread spinning on the buffers that are there, frames
 * delivered before it must be signalled (Linux refills its receive ring
 * only after an interrupt), and the device must ask for a kick through
 * avail_event, since a driver honouring EVENT_IDX (vd_notify, like
 * Linux) notifies only when asked.
 */
KTEST(net_rx_waits_for_enough_mergeable_buffers)
{
	struct netrig r;
	uint8_t big[1000], in[2048];
	uint16_t nb = 0;
	unsigned msi0;

	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13);
	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	host_send(&r, "small first", 11);
	host_send(&r, big, sizeof(big)); /* 1054 bytes with headers: 5 buffers of 256 */
	usleep(50 * 1000);
	h_pump(&r.h, 20); /* no buffers yet: the first frame waits */
	msi0 = h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, RXQ));
	for (int i = 0; i < 2; i++) {
		uint64_t gpa = h_alloc(&r.h, 256, 16);

		vd_add(&r.d, RXQ, &(struct vd_buf){ gpa, 256, true }, 1);
	}
	KCHECK(vd_notify(&r.d, RXQ));
	h_pump(&r.h, 20); /* returns: the big frame waits for 3 more buffers */
	KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, RXQ)) > msi0);
	KCHECK_EQ(guest_recv(&r, in, sizeof(in), &nb), 11);
	KCHECK(!memcmp(in, "small first", 11));
	for (int i = 0; i < 4; i++) {
		uint64_t gpa = h_alloc(&r.h, 256, 16);

		vd_add(&r.d, RXQ, &(struct vd_buf){ gpa, 256, true }, 1);
	}
	KCHECK(vd_notify(&r.d, RXQ));
	KCHECK_EQ(guest_recv_ours(&r, in, sizeof(in), &nb), (int)sizeof(big));
	KCHECK(!memcmp(in, big, sizeof(big)));
	KCHECK_EQ(nb, 5);
	netrig_down(&r);
}

static int ethtool_tso(const char *ifname)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_GTSO };
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	return ifreq_ioctl(SIOCETHTOOL, &ifr) < 0 ? -1 : (int)ev.data;
}

KTEST(net_offloads_follow_negotiation)
{
	struct netrig r;

	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	KCHECK_EQ(ethtool_tso(TAP), 1);
	KASSERT(start(&r.d, F(NET_F_MAC)) == 0);
	KCHECK_EQ(ethtool_tso(TAP), 0);
	/* GUEST_TSO4 needs GUEST_CSUM (5.1.3.1): FEATURES_OK refused. */
	KCHECK(vd_negotiate(&r.d, F(NET_F_GUEST_TSO4)) < 0);
	KCHECK(vd_negotiate(&r.d, F(NET_F_HOST_TSO4)) < 0);
	netrig_down(&r);
}

KTEST(net_link_status_change)
{
	struct netrig r;
	unsigned before;
	uint8_t gen;

	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	before = h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, 2));
	gen = (uint8_t)vd_common_read(&r.d, 0x15, 1);
	virtio_net_set_link(r.net, false);
	KCHECK_EQ(vd_config_read(&r.d, 6, 2), 0);
	KCHECK_EQ(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, 2)), before + 1);
	KCHECK(vd_common_read(&r.d, 0x15, 1) != gen);
	virtio_net_set_link(r.net, true);
	KCHECK_EQ(vd_config_read(&r.d, 6, 2), 1);
	netrig_down(&r);
}

KTEST(net_attaches_to_existing_tap_and_leaves_it)
{
	struct ifreq ifr = { 0 };
	struct netrig r;
	int fd = open("/dev/net/tun", O_RDWR);

	KASSERT(fd >= 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	KASSERT(ioctl(fd, TUNSETIFF, &ifr) == 0);
	KASSERT(ioctl(fd, TUNSETPERSIST, 1) == 0);
	close(fd);
	KASSERT(if_nametoindex(TAP) != 0);
	/* Persistent taps start down; the host side needs it up for the address. */
	ifr.ifr_flags = IFF_UP;
	ifreq_ioctl(SIOCSIFFLAGS, &ifr);
	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	KCHECK(guest_send(&r, "existing", 8, false, false) == 1);
	netrig_down(&r);
	KCHECK(if_nametoindex(TAP) != 0); /* not ours: still there */
	fd = open("/dev/net/tun", O_RDWR);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	KCHECK(ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, 0) == 0);
	close(fd);
	KCHECK_EQ(if_nametoindex(TAP), 0);
}

static void hostile_tx(void (*fn)(struct netrig *r))
{
	struct netrig r;
	char buf[64];

	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	fn(&r);
	h_pump(&r.h, 0);
	KCHECK(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET);
	KASSERT(start(&r.d, ALL_FEATURES) == 0);
	KCHECK(guest_send(&r, "after reset", 11, false, false) == 1);
	KCHECK(host_recv(&r, buf, sizeof(buf)) == 11);
	netrig_down(&r);
}

static void tx_writable(struct netrig *r)
{
	uint64_t g = h_alloc(&r->h, 64, 16);

	vd_add(&r->d, TXQ, (struct vd_buf[]){ { g, HDR, false }, { g + 16, 48, true } }, 2);
	vd_kick(&r->d, TXQ);
}

static void tx_no_header(struct netrig *r)
{
	vd_add(&r->d, TXQ, &(struct vd_buf){ h_alloc(&r->h, 8, 16), 8, false }, 1);
	vd_kick(&r->d, TXQ);
}

static void rx_readable(struct netrig *r)
{
	vd_add(&r->d, RXQ, &(struct vd_buf){ h_alloc(&r->h, 2048, 16), 2048, false }, 1);
	vd_kick(&r->d, RXQ);
	host_send(r, "x", 1);
	usleep(20000);
	h_pump(&r->h, 50);
}

KTEST(hostile_net_tx_writable_buffer)
{
	hostile_tx(tx_writable);
}

KTEST(hostile_net_tx_without_header)
{
	hostile_tx(tx_no_header);
}

KTEST(hostile_net_rx_readable_buffer)
{
	hostile_tx(rx_readable);
}

KTEST(net_bad_gso_header_is_dropped_not_fatal)
{
	struct netrig r;
	struct virtio_net_stats st;
	uint8_t *f;
	uint64_t g;
	size_t len;
	char buf[64];

	KASSERT(netrig_up(&r, false, "") == 0);
	KASSERT(start(&r.d, F(NET_F_MAC)) == 0); /* no CSUM, no TSO */
	g = h_alloc(&r.h, 2048, 16);
	f = h_ptr(&r.h, g);
	len = build_udp(f, "gso", 3, false);
	f[1] = 1; /* TCPV4 GSO, never negotiated */
	vd_add(&r.d, TXQ, &(struct vd_buf){ g, (uint32_t)len, false }, 1);
	g = h_alloc(&r.h, 2048, 16);
	len = build_udp(h_ptr(&r.h, g), "x", 1, true); /* NEEDS_CSUM, CSUM not negotiated */
	vd_add(&r.d, TXQ, &(struct vd_buf){ g, (uint32_t)len, false }, 1);
	vd_kick(&r.d, TXQ);
	KCHECK(vd_get_used(&r.d, TXQ, NULL, NULL, 2000) == 1);
	KCHECK(vd_get_used(&r.d, TXQ, NULL, NULL, 2000) == 1);
	virtio_net_get_stats(r.net, &st);
	KCHECK_EQ(st.tx_dropped, 2);
	KCHECK_EQ(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	KCHECK(guest_send(&r, "fine", 4, false, false) == 1);
	KCHECK(host_recv(&r, buf, sizeof(buf)) == 4);
	netrig_down(&r);
}

KTEST(net_option_strings)
{
	struct virtio_net_opts o;
	char err[256];

	KCHECK_EQ(virtio_net_parse("tap=t0,mac=02:00:00:00:00:01", &o, err, sizeof(err)), 0);
	KCHECK_STR(o.tap, "t0");
	KCHECK(o.mac_set && o.mac[0] == 2 && o.mac[5] == 1);
	KCHECK_EQ(virtio_net_parse("tap=t0,colour=red", &o, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--net: unknown key 'colour' (tap, mac, tx-average, tx-peak, tx-burst, "
		   "rx-average, rx-peak, rx-burst)");
	KCHECK_EQ(virtio_net_parse("tap=t0,mac=01:00:00:00:00:01", &o, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "mac '01:00:00:00:00:01'") != NULL);
	KCHECK_EQ(virtio_net_parse("mac=02:00:00:00:00:01", &o, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--net: tap=NAME is required");
	KCHECK_EQ(virtio_net_parse("tap=averyveryverylongname", &o, err, sizeof(err)), -EINVAL);
	KCHECK_EQ(virtio_net_parse("tap", &o, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "--net: 'tap' is not key=value");
}

int main(void)
{
	int fd;

	if (geteuid() != 0) {
		printf("1..0 # SKIP virtio-net tests need root for a tap in a network namespace\n");
		return 0;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("1..0 # SKIP cannot create a network namespace: %s\n", strerror(errno));
		return 0;
	}
	/* No IPv6 chatter (router solicitations, DAD) on the tap. */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			printf("# cannot disable IPv6: %s\n", strerror(errno));
		close(fd);
	}
	return ktest_run_all();
}
