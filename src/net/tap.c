// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "keel/log.h"
#include "net/backend.h"
#include "net/tap.h"

struct tap {
	int fd;
	bool created, can_offload;
	char name[IFNAMSIZ];
};

int tap_fd(const struct tap *tap)
{
	return tap->fd;
}

const char *tap_name(const struct tap *tap)
{
	return tap->name;
}

bool tap_created(const struct tap *tap)
{
	return tap->created;
}

bool tap_can_offload(const struct tap *tap)
{
	return tap->can_offload;
}

int tap_set_offload(struct tap *tap, unsigned offloads)
{
	unsigned flags = 0;

	if (offloads & TAP_OFFLOAD_CSUM)
		flags |= TUN_F_CSUM;
	if (offloads & TAP_OFFLOAD_TSO4)
		flags |= TUN_F_TSO4;
	if (offloads & TAP_OFFLOAD_TSO6)
		flags |= TUN_F_TSO6;
	if (offloads & TAP_OFFLOAD_ECN)
		flags |= TUN_F_TSO_ECN;
	return ioctl(tap->fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static int bring_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		r = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
	close(s);
	return r;
}

int tap_open(const char *name, struct tap **out, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	struct tap *tap;
	int hdr = TAP_VNET_HDR_LEN, r;

	if (!name || !*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || strchr(name, '%')) {
		snprintf(err, errlen, "tap name '%s' is not a valid interface name (1-%d characters)",
			 name ? name : "", IFNAMSIZ - 1);
		return -EINVAL;
	}
	tap = calloc(1, sizeof(*tap));
	if (!tap)
		return -ENOMEM;
	snprintf(tap->name, sizeof(tap->name), "%s", name);
	tap->created = if_nametoindex(name) == 0;
	tap->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "tap %s: cannot open /dev/net/tun: %s", name, strerror(-r));
		goto fail;
	}
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		snprintf(err, errlen, "tap %s: cannot %s it: %s%s", name,
			 tap->created ? "create" : "attach to", strerror(-r),
			 r == -EBUSY || r == -EINVAL ? " (in use, or not a single-queue tap?)" : "");
		goto fail;
	}
	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		r = -errno;
		snprintf(err, errlen, "tap %s: cannot set the vnet header size: %s", name,
			 strerror(-r));
		goto fail;
	}
	tap->can_offload = tap_set_offload(tap, 0) == 0;
	if (tap->created) {
		r = bring_up(name);
		if (r < 0)
			log_warn("tap %s: cannot bring it up: %s", name, strerror(-r));
	}
	*out = tap;
	return 0;
fail:
	if (tap->fd >= 0)
		close(tap->fd);
	free(tap);
	return r;
}

void tap_close(struct tap *tap)
{
	if (!tap)
		return;
	/* Ours was never made persistent: closing the last fd deletes it. */
	close(tap->fd);
	free(tap);
}

static int tap_send(void *opaque, const struct iovec *iov, unsigned n)
{
	struct tap *tap = opaque;

	for (;;) {
		ssize_t r = writev(tap->fd, iov, (int)n);

		if (r >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static ssize_t tap_recv(void *opaque, void *buf, size_t len)
{
	struct tap *tap = opaque;

	for (;;) {
		ssize_t r = read(tap->fd, buf, len);

		if (r >= 0)
			return r;
		if (errno != EINTR)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static int tap_backend_fd(void *opaque)
{
	return tap_fd(opaque);
}

static int tap_backend_offload(void *opaque, unsigned offloads)
{
	return tap_set_offload(opaque, offloads);
}

static void tap_backend_close(void *opaque)
{
	tap_close(opaque);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.fd = tap_backend_fd,
	.set_offload = tap_backend_offload,
	.close = tap_backend_close,
};

void tap_backend(struct tap *tap, struct net_backend *out)
{
	out->ops = &tap_ops;
	out->opaque = tap;
	out->can_offload = tap->can_offload;
}
