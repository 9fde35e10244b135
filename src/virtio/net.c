// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "net/backend.h"
#include "net/shaper.h"
#include "net/tap.h"
#include "virtio/net.h"
#include "virtio/options.h"
#include "virtio/virtio.h"

/* Feature bits (5.1.3). */
#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define BIT(b) (1ULL << (b))

#define HDR_F_NEEDS_CSUM 1
#define HDR_F_DATA_VALID 2
#define GSO_NONE 0
#define GSO_TCPV4 1
#define GSO_TCPV6 4
#define GSO_ECN 0x80

#define NET_S_LINK_UP 1
#define CFG_STATUS 6
#define CFG_MAX_PAIRS 8
#define CFG_SIZE 10

#define RXQ 0
#define TXQ 1
#define QUEUE_SIZE 256
/* A 64 KiB GSO frame plus Ethernet/VLAN header and the vnet header. */
#define FRAME_MAX (65536 + 18 + TAP_VNET_HDR_LEN)
/* Frames handled per wake-up before yielding to the other direction. */
#define BUDGET 256
#define PCI_CLASS_NETWORK_ETHERNET 0x020000

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};
_Static_assert(sizeof(struct net_hdr) == TAP_VNET_HDR_LEN, "virtio_net_hdr_v1");

struct virtio_net {
	struct virtio_dev vdev;
	struct net_backend be;
	struct event_handler rx_h;
	bool rx_polling;          /* backend fd is in the loop */
	size_t pending;           /* bytes of a frame read but not yet delivered */
	bool mac_given;           /* --net mac=: a loaded state must have this MAC */
	struct virtio_net_stats stats;
	struct virtq_elem elem;
	uint8_t frame[FRAME_MAX];

	/* Shaping (net/shaper.h): a transmit chain or a received frame may wait. */
	struct net_shaper shaper;
	struct virtq_elem tx_elem;   /* transmit's own: it may be held while receive runs */
	struct rate_ticket ticket[NET_DIRS];
	bool held[NET_DIRS];         /* tx_elem / the pending frame waits for its ticket */
	bool rx_reserved;            /* the pending frame has its ticket */
	uint64_t held_since[NET_DIRS];
	struct event_timer shape_timer;
	bool shape_timer_ready;
};

static bool tx_header_ok(struct virtio_net *n, struct net_hdr *h, uint64_t frame_len)
{
	struct virtio_dev *vdev = &n->vdev;
	uint8_t gso = h->gso_type & (uint8_t)~GSO_ECN;

	h->flags &= (uint8_t)~HDR_F_DATA_VALID; /* meaningless on transmit */
	if (h->flags & ~HDR_F_NEEDS_CSUM) {
		log_guest("%s: transmit header flags 0x%x", vdev->name, h->flags);
		return false;
	}
	if (h->flags & HDR_F_NEEDS_CSUM &&
	    (!virtio_has_feature(vdev, NET_F_CSUM) ||
	     (uint64_t)h->csum_start + h->csum_offset + 2 > frame_len - sizeof(*h))) {
		log_guest("%s: partial checksum at %u+%u without CSUM or beyond the frame",
			  vdev->name, h->csum_start, h->csum_offset);
		return false;
	}
	if ((gso == GSO_TCPV4 && virtio_has_feature(vdev, NET_F_HOST_TSO4)) ||
	    (gso == GSO_TCPV6 && virtio_has_feature(vdev, NET_F_HOST_TSO6))) {
		if (!h->gso_size || (h->gso_type & GSO_ECN) || !(h->flags & HDR_F_NEEDS_CSUM)) {
			log_guest("%s: TSO frame with gso_size %u, type 0x%x, flags 0x%x",
				  vdev->name, h->gso_size, h->gso_type, h->flags);
			return false;
		}
		return true;
	}
	if (h->gso_type != GSO_NONE) {
		log_guest("%s: GSO type 0x%x not negotiated", vdev->name, h->gso_type);
		return false;
	}
	return true;
}

/* One transmit chain; false if the guest broke the ring rules. */
static bool tx_one(struct virtio_net *n)
{
	struct virtq_elem *e = &n->tx_elem;
	struct net_hdr h;
	struct iovec *iov = e->iov;
	unsigned cnt = e->n_out;

	if (e->n_in) {
		log_guest("%s: transmit chain with device-writable buffers", n->vdev.name);
		return false;
	}
	if (e->out_len < sizeof(h)) {
		log_guest("%s: transmit chain of %llu bytes has no header", n->vdev.name,
			  (unsigned long long)e->out_len);
		return false;
	}
	virtio_iov_to_buf(iov, cnt, 0, &h, sizeof(h));
	if (e->out_len > FRAME_MAX || !tx_header_ok(n, &h, e->out_len)) {
		n->stats.tx_dropped++;
		return true;
	}
	/*
	 * Send our checked copy of the header, never the guest's: the guest
	 * could change it between our check and the kernel's read.
	 */
	{
		struct iovec out[VIRTQ_MAX_CHAIN + 1];
		size_t skip = sizeof(h);
		unsigned k = 1;

		out[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
		for (unsigned i = 0; i < cnt; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
			out[k++].iov_len = iov[i].iov_len - skip;
			skip = 0;
		}
		if (n->be.ops->send(n->be.opaque, out, k) < 0)
			n->stats.tx_dropped++;
		else
			n->stats.tx_packets++;
	}
	return true;
}

/* Whether the shaper lets direction d go now; otherwise it is marked held. */
static bool shaper_allows(struct virtio_net *n, enum net_dir d, uint64_t now)
{
	bool was_held = n->held[d];

	n->held[d] = net_shaper_wait_ns(&n->shaper, d, &n->ticket[d], now) > 0;
	if (n->held[d] && !was_held) {
		n->held_since[d] = now;
	} else if (!n->held[d] && was_held) {
		n->stats.shaped[d]++;
		n->stats.shaped_ns[d] += now - n->held_since[d];
	}
	return !n->held[d];
}

/* Arms the shaping timer for the first held direction. */
static void shaper_schedule(struct virtio_net *n)
{
	uint64_t now = tb_clock_ns(), first = UINT64_MAX;

	for (unsigned d = 0; d < NET_DIRS; d++)
		if (n->held[d])
			first = MIN(first, net_shaper_wait_ns(&n->shaper, d, &n->ticket[d], now));
	if (first != UINT64_MAX && event_timer_arm(&n->shape_timer, first, 0) < 0)
		log_warn("%s: cannot arm the shaping timer: %s", n->vdev.name, strerror(errno));
}

/* The next transmit chain the shaper lets go: 1, 0 none (or held), <0 broken ring. */
static int tx_next(struct virtio_net *n, struct virtq *vq)
{
	uint64_t now;

	if (!n->held[NET_TX]) {
		struct virtq_elem *e = &n->tx_elem;
		int r = virtq_pop(vq, e);

		if (r <= 0)
			return r;
		/*
		 * Unshaped: no clock read per frame. On a host whose clocksource
		 * is not the TSC (an emulated or nested one) each read is a
		 * system call, and it showed in the transmit rate.
		 */
		if (!net_shaper_active(&n->shaper, NET_TX))
			return 1;
		now = tb_clock_ns();
		net_shaper_reserve(&n->shaper, NET_TX,
				   e->out_len > sizeof(struct net_hdr) ? e->out_len - sizeof(struct net_hdr)
								       : 0, now, &n->ticket[NET_TX]);
	} else {
		now = tb_clock_ns();
	}
	return shaper_allows(n, NET_TX, now) ? 1 : 0;
}

static void tx_process(struct virtio_net *n)
{
	struct virtio_dev *vdev = &n->vdev;
	struct virtq *vq = virtio_vq(vdev, TXQ);
	unsigned done = 0;
	int r = 0;

	do {
		virtq_disable_kicks(vq);
		while (done < BUDGET && (r = tx_next(n, vq)) > 0) {
			if (!tx_one(n)) {
				r = -EIO;
				break;
			}
			virtq_push(vq, n->tx_elem.head, 0);
			done++;
		}
		if (r < 0) {
			virtio_dev_error(vdev);
			return;
		}
		if (n->held[NET_TX]) {
			/* Kicks stay off: the timer resumes the queue. */
			shaper_schedule(n);
			break;
		}
		if (done == BUDGET) {
			/* Come back after the receive side had its turn. */
			uint64_t one = 1;

			if (write(vdev->queues[TXQ].kick_fd, &one, 8) < 0)
				log_warn("%s: re-kick: %s", vdev->name, strerror(errno));
			break;
		}
	} while (virtq_enable_kicks(vq));
	if (done)
		virtio_notify_queue(vdev, TXQ);
}

static void rx_poll(struct virtio_net *n, bool on)
{
	if (n->rx_polling == on || n->rx_h.fd < 0)
		return;
	if (on)
		event_loop_add(n->vdev.loop, &n->rx_h, EPOLLIN);
	else
		event_loop_del(n->vdev.loop, &n->rx_h);
	n->rx_polling = on;
}

/*
 * Copies the pending frame into as many chains as it needs (one without
 * MRG_RXBUF). Returns 1 delivered, 2 dropped (too big for a non-mergeable
 * buffer), 0 not enough buffers (nothing consumed; *seen says how many
 * there were), -EIO on a broken ring.
 */
static int rx_deliver(struct virtio_net *n, uint16_t *seen)
{
	struct virtio_dev *vdev = &n->vdev;
	struct virtq *vq = virtio_vq(vdev, RXQ);
	bool mrg = virtio_has_feature(vdev, NET_F_MRG_RXBUF);
	struct net_hdr *h = (struct net_hdr *)n->frame;
	uint16_t used = 0, heads[QUEUE_SIZE];
	uint32_t lens[QUEUE_SIZE];
	struct iovec first[sizeof(struct net_hdr)]; /* enough iovecs to hold the header */
	unsigned nfirst = 0;
	size_t off = 0;
	int r;

	if (!virtio_has_feature(vdev, NET_F_GUEST_CSUM))
		h->flags = 0; /* 5.1.6.4.1: no checksum hints without GUEST_CSUM */
	h->num_buffers = 1;
	while (off < n->pending) {
		uint64_t room;

		r = virtq_pop(vq, &n->elem);
		if (r <= 0) {
			virtq_unpop(vq, used);
			*seen = used;
			return r;
		}
		room = n->elem.in_len;
		if (n->elem.n_out || room < sizeof(*h)) {
			log_guest("%s: receive buffer %s", vdev->name,
				  n->elem.n_out ? "is device-readable" : "smaller than the header");
			return -EIO;
		}
		if (!mrg && room < n->pending) {
			log_guest("%s: receive buffer of %llu bytes for a %zu-byte frame", vdev->name,
				  (unsigned long long)room, n->pending);
			virtq_unpop(vq, 1);
			return 2;
		}
		if (!used) {
			nfirst = MIN(n->elem.n_in, (uint16_t)ARRAY_SIZE(first));
			memcpy(first, n->elem.iov, nfirst * sizeof(first[0]));
		}
		heads[used] = n->elem.head;
		lens[used] = (uint32_t)virtio_iov_from_buf(n->elem.iov, n->elem.n_in, 0, n->frame + off,
						    n->pending - off);
		guest_mem_mark_dirty_iov(vdev->mem, n->elem.iov, n->elem.n_in);
		off += lens[used];
		used++;
	}
	/* The count is known only now: patch it into the first chain's header. */
	if (used > 1) /* (the first chain is marked dirty already) */
		virtio_iov_from_buf(first, nfirst, offsetof(struct net_hdr, num_buffers), &used,
			     sizeof(used));
	for (uint16_t i = 0; i < used; i++)
		virtq_push(vq, heads[i], lens[i]);
	return 1;
}

static void rx_process(struct virtio_net *n)
{
	struct virtio_dev *vdev = &n->vdev;
	struct virtq *vq = virtio_vq(vdev, RXQ);
	unsigned done = 0, unsignalled = 0;
	uint16_t seen = 0;
	int r = 0;

	virtq_disable_kicks(vq);
	while (done < BUDGET) {
		if (!n->pending) {
			ssize_t len = n->be.ops->recv(n->be.opaque, n->frame, sizeof(n->frame));

			if (len == -EAGAIN)
				break;
			if (len < (ssize_t)sizeof(struct net_hdr)) {
				if (len < 0)
					log_warn("%s: receive: %s", vdev->name, strerror((int)-len));
				break;
			}
			n->pending = (size_t)len;
		}
		/* Unshaped and not held from before: no clock read (see tx_next()). */
		if (n->held[NET_RX] || net_shaper_active(&n->shaper, NET_RX)) {
			uint64_t now = tb_clock_ns();

			if (!n->rx_reserved) {
				net_shaper_reserve(&n->shaper, NET_RX,
						   n->pending - sizeof(struct net_hdr), now,
						   &n->ticket[NET_RX]);
				n->rx_reserved = true;
			}
			if (!shaper_allows(n, NET_RX, now)) {
				/* The frame waits; the tap is not read until the timer says. */
				rx_poll(n, false);
				shaper_schedule(n);
				break;
			}
		}
		r = rx_deliver(n, &seen);
		if (r < 0) {
			virtio_dev_error(vdev);
			n->pending = 0;
			n->rx_reserved = false;
			rx_poll(n, false);
			return;
		}
		if (r == 0) {
			/*
			 * Too few buffers: keep the frame, stop reading, and wait for
			 * the driver to add more. It refills only after hearing of
			 * what we delivered, so signal that first. Retry at once only
			 * if buffers beyond the `seen` ones arrived meanwhile; those
			 * alone cannot take the frame, and retrying on them would spin.
			 */
			n->stats.rx_stalls++;
			if (unsignalled) {
				virtio_notify_queue(vdev, RXQ);
				unsignalled = 0;
			}
			rx_poll(n, false);
			if (virtq_enable_kicks(vq) && virtq_avail_pending(vq) > seen) {
				rx_poll(n, true);
				continue;
			}
			break;
		}
		n->pending = 0;
		n->rx_reserved = false;
		if (r == 2)
			n->stats.rx_dropped++;
		else
			n->stats.rx_packets++;
		done++;
		unsignalled++;
	}
	if (unsignalled)
		virtio_notify_queue(vdev, RXQ);
}

static void rx_ready(struct event_handler *h, uint32_t events)
{
	struct virtio_net *n = container_of(h, struct virtio_net, rx_h);

	pthread_mutex_lock(&n->vdev.lock);
	if (virtio_dev_running(&n->vdev) && pci_bus_master_enabled(n->vdev.pci))
		rx_process(n);
	pthread_mutex_unlock(&n->vdev.lock);
}

static void net_kick(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_net *n = container_of(vdev, struct virtio_net, vdev);

	if (q == TXQ) {
		tx_process(n);
	} else {
		/*
		 * New receive buffers: deliver what is pending, then read the
		 * tap again, unless a frame still waits for more buffers.
		 */
		rx_process(n);
		if (virtio_dev_running(vdev) && !n->pending)
			rx_poll(n, true);
	}
}

/* The shaping timer: what waited may go now; each side carries on from there. */
static void shaper_fire(struct event_timer *t)
{
	struct virtio_net *n = container_of(t, struct virtio_net, shape_timer);

	pthread_mutex_lock(&n->vdev.lock);
	if (virtio_dev_running(&n->vdev) && pci_bus_master_enabled(n->vdev.pci)) {
		if (n->held[NET_TX])
			tx_process(n);
		if (n->held[NET_RX]) {
			rx_process(n);
			if (!n->pending && virtio_dev_running(&n->vdev))
				rx_poll(n, true);
		}
	}
	pthread_mutex_unlock(&n->vdev.lock);
}

void virtio_net_set_limits(struct virtio_net *n, const struct net_limits *lim)
{
	pthread_mutex_lock(&n->vdev.lock);
	net_shaper_set(&n->shaper, lim, tb_clock_ns());
	/* Whatever waits is looked at again with the new limits now. */
	if (n->shape_timer_ready && (n->held[NET_TX] || n->held[NET_RX]))
		event_timer_arm(&n->shape_timer, 0, 0);
	pthread_mutex_unlock(&n->vdev.lock);
}

void virtio_net_get_limits(struct virtio_net *n, struct net_limits *lim)
{
	pthread_mutex_lock(&n->vdev.lock);
	*lim = n->shaper.lim;
	pthread_mutex_unlock(&n->vdev.lock);
}

static int net_validate(struct virtio_dev *vdev, uint64_t f)
{
	/* 5.1.3.1: offloads depend on checksum offload in the same direction. */
	if ((f & (BIT(NET_F_GUEST_TSO4) | BIT(NET_F_GUEST_TSO6))) && !(f & BIT(NET_F_GUEST_CSUM))) {
		log_guest("%s: GUEST_TSO without GUEST_CSUM", vdev->name);
		return -EINVAL;
	}
	if ((f & (BIT(NET_F_HOST_TSO4) | BIT(NET_F_HOST_TSO6))) && !(f & BIT(NET_F_CSUM))) {
		log_guest("%s: HOST_TSO without CSUM", vdev->name);
		return -EINVAL;
	}
	return 0;
}

static int net_activate(struct virtio_dev *vdev)
{
	struct virtio_net *n = container_of(vdev, struct virtio_net, vdev);
	unsigned off = 0;
	int r;

	if (virtio_has_feature(vdev, NET_F_GUEST_CSUM))
		off |= TAP_OFFLOAD_CSUM;
	if (virtio_has_feature(vdev, NET_F_GUEST_TSO4))
		off |= TAP_OFFLOAD_TSO4;
	if (virtio_has_feature(vdev, NET_F_GUEST_TSO6))
		off |= TAP_OFFLOAD_TSO6;
	if (n->be.can_offload && n->be.ops->set_offload) {
		r = n->be.ops->set_offload(n->be.opaque, off);
		if (r < 0) {
			log_error("%s: cannot set offloads 0x%x on the backend: %s", vdev->name, off,
				  strerror(-r));
			return r;
		}
	}
	rx_poll(n, true);
	return 0;
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = container_of(vdev, struct virtio_net, vdev);

	rx_poll(n, false);
	n->pending = 0;
	n->rx_reserved = false;
	n->held[NET_TX] = n->held[NET_RX] = false; /* the chain was the old ring's */
	if (n->be.can_offload && n->be.ops->set_offload)
		n->be.ops->set_offload(n->be.opaque, 0);
}

/*
 * A loaded state's config: the guest knows the saved MAC and link state, so
 * they are taken (a MAC chosen at random here gives way), unless this
 * device was given a MAC of its own that differs.
 */
static int net_load_config(struct virtio_dev *vdev, const uint8_t *config, char *err, size_t errlen)
{
	struct virtio_net *n = container_of(vdev, struct virtio_net, vdev);

	if (n->mac_given && memcmp(config, vdev->config, 6)) {
		snprintf(err, errlen, "the saved NIC has MAC %02x:%02x:%02x:%02x:%02x:%02x, this one was "
			 "given %02x:%02x:%02x:%02x:%02x:%02x", config[0], config[1], config[2],
			 config[3], config[4], config[5], vdev->config[0], vdev->config[1],
			 vdev->config[2], vdev->config[3], vdev->config[4], vdev->config[5]);
		return -EINVAL;
	}
	if (memcmp(config + CFG_MAX_PAIRS, vdev->config + CFG_MAX_PAIRS, 2)) {
		snprintf(err, errlen, "the saved NIC has another number of queue pairs");
		return -EINVAL;
	}
	memcpy(vdev->config, config, CFG_MAX_PAIRS);
	return 0;
}

/*
 * The VM pauses: a transmit chain the shaper holds is off the avail ring,
 * so a snapshot taken meanwhile would never give it back to the guest. It
 * goes now, a little early (its tokens are spent already).
 */
static void net_quiesce(struct virtio_dev *vdev)
{
	struct virtio_net *n = container_of(vdev, struct virtio_net, vdev);

	if (!n->held[NET_TX] || !virtio_dev_running(vdev))
		return;
	n->held[NET_TX] = false;
	if (!tx_one(n)) {
		virtio_dev_error(vdev);
		return;
	}
	virtq_push(virtio_vq(vdev, TXQ), n->tx_elem.head, 0);
	virtio_notify_queue(vdev, TXQ);
}

static const struct virtio_dev_ops net_ops = {
	.validate_features = net_validate,
	.activate = net_activate,
	.reset = net_reset,
	.quiesce = net_quiesce,
	.queue_kick = net_kick,
	.load_config = net_load_config,
};

struct virtio_net *virtio_net_create_backend(struct pci_host *pci, const struct guest_mem *mem,
					     const uint8_t mac[6], const struct net_backend *be,
					     struct event_loop *loop)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint64_t f = BIT(NET_F_MAC) | BIT(NET_F_STATUS) | BIT(NET_F_MRG_RXBUF) | BIT(NET_F_CSUM) |
		     BIT(NET_F_HOST_TSO4) | BIT(NET_F_HOST_TSO6);
	int r;

	if (!n)
		return NULL;
	if (be->can_offload)
		f |= BIT(NET_F_GUEST_CSUM) | BIT(NET_F_GUEST_TSO4) | BIT(NET_F_GUEST_TSO6);
	n->be = *be;
	n->rx_h = (struct event_handler){ .fd = be->ops->fd ? be->ops->fd(be->opaque) : -1,
					  .cb = rx_ready };
	r = virtio_dev_init(&n->vdev, pci, mem, &(struct virtio_dev_desc){
		.name = "virtio-net",
		.device_id = VIRTIO_ID_NET,
		.class_code = PCI_CLASS_NETWORK_ETHERNET,
		.features = f,
		.num_queues = 2,
		.queue_max_size = QUEUE_SIZE,
		.config_size = CFG_SIZE,
		.ops = &net_ops,
	}, loop);
	if (r < 0)
		goto fail;
	net_shaper_init(&n->shaper, NULL, tb_clock_ns());
	r = event_timer_init(n->vdev.loop, &n->shape_timer, shaper_fire);
	if (r < 0) {
		virtio_dev_uninit(&n->vdev);
		goto fail;
	}
	n->shape_timer_ready = true;
	memcpy(n->vdev.config, mac, 6);
	virtio_config_put16(&n->vdev, CFG_STATUS, NET_S_LINK_UP);
	virtio_config_put16(&n->vdev, CFG_MAX_PAIRS, 1);
	r = virtio_dev_start(&n->vdev);
	if (r < 0) {
		event_timer_destroy(n->vdev.loop, &n->shape_timer);
		virtio_dev_uninit(&n->vdev);
		goto fail;
	}
	return n;
fail:
	free(n);
	errno = -r;
	return NULL;
}

struct virtio_net *virtio_net_create(struct pci_host *pci, const struct guest_mem *mem,
				     const struct virtio_net_opts *opts, struct event_loop *loop,
				     char *err, size_t errlen)
{
	struct net_backend be;
	struct virtio_net *n;
	struct tap *tap;
	uint8_t mac[6];
	int r = tap_open(opts->tap, &tap, err, errlen);

	if (r < 0)
		return NULL;
	if (opts->mac_set) {
		memcpy(mac, opts->mac, 6);
	} else {
		/* Random, locally administered, unicast. */
		if (getrandom(mac, 6, 0) != 6)
			memset(mac, 0x5a, 6);
		mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
	}
	tap_backend(tap, &be);
	n = virtio_net_create_backend(pci, mem, mac, &be, loop);
	if (n)
		n->mac_given = opts->mac_set;
	if (!n) {
		snprintf(err, errlen, "virtio-net on tap %s: %s", opts->tap, strerror(errno));
		tap_close(tap);
	} else {
		virtio_net_set_limits(n, &opts->limits);
	}
	return n;
}

struct virtio_dev *virtio_net_dev(struct virtio_net *n)
{
	return &n->vdev;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_dev_uninit(&n->vdev);
	event_timer_destroy(n->vdev.loop, &n->shape_timer);
	if (n->be.ops->close)
		n->be.ops->close(n->be.opaque);
	free(n);
}

void virtio_net_set_link(struct virtio_net *n, bool up)
{
	pthread_mutex_lock(&n->vdev.lock);
	virtio_config_put16(&n->vdev, CFG_STATUS, up ? NET_S_LINK_UP : 0);
	virtio_config_changed(&n->vdev);
	pthread_mutex_unlock(&n->vdev.lock);
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *out)
{
	pthread_mutex_lock(&n->vdev.lock);
	*out = n->stats;
	pthread_mutex_unlock(&n->vdev.lock);
}

struct parse_ctx {
	struct virtio_net_opts *o;
	bool have_tap;
};

static int net_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct parse_ctx *c = ctx;
	int r = net_limits_parse_key(&c->o->limits, "--net", key, val, err, errlen);

	if (r)
		return r < 0 ? r : 0;
	if (!strcmp(key, "tap")) {
		if (strlen(val) >= IFNAMSIZ || strchr(val, '/')) {
			snprintf(err, errlen, "--net: tap name '%s' is not a valid interface name", val);
			return -EINVAL;
		}
		snprintf(c->o->tap, sizeof(c->o->tap), "%s", val);
		c->have_tap = true;
		return 0;
	}
	if (!strcmp(key, "mac")) {
		if (opts_mac(val, c->o->mac) < 0) {
			snprintf(err, errlen, "--net: mac '%s' is not a unicast MAC like 52:54:00:12:34:56",
				 val);
			return -EINVAL;
		}
		c->o->mac_set = true;
		return 0;
	}
	snprintf(err, errlen, "--net: unknown key '%s' (tap, mac, tx-average, tx-peak, tx-burst, "
		 "rx-average, rx-peak, rx-burst)", key);
	return -EINVAL;
}

int virtio_net_parse(const char *s, struct virtio_net_opts *opts, char *err, size_t errlen)
{
	struct parse_ctx c = { .o = opts };
	int r;

	memset(opts, 0, sizeof(*opts));
	r = opts_parse("--net", s, net_opt, &c, err, errlen);
	if (!r && !c.have_tap) {
		snprintf(err, errlen, "--net: tap=NAME is required");
		r = -EINVAL;
	}
	if (!r)
		r = net_limits_check(&opts->limits, "--net", err, errlen);
	return r;
}
