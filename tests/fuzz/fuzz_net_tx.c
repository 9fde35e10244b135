// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net transmit through the whole device: a driver sets the device
 * up, then the input becomes the transmit queue's descriptor table and the
 * buffers it points to, in guest RAM, and the queue is kicked. The backend
 * reads every byte it is given (so ASan sees any buffer we got wrong).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ring.h"
#include "guest.h"
#include "keel/log.h"
#include "net/backend.h"
#include "vdriver.h"
#include "virtio/net.h"
#include "virtio/virtio.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int null_send(void *opaque, const struct iovec *iov, unsigned n)
{
	volatile uint8_t sink = 0;

	for (unsigned i = 0; i < n; i++)
		for (size_t k = 0; k < iov[i].iov_len; k++)
			sink ^= ((const uint8_t *)iov[i].iov_base)[k];
	(void)sink;
	return 0;
}

static ssize_t null_recv(void *opaque, void *buf, size_t len)
{
	return -EAGAIN;
}

static const struct net_backend_ops null_ops = { .send = null_send, .recv = null_recv };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct net_backend be = { .ops = &null_ops, .can_offload = true };
	struct guest h;
	struct virtio_net *net;
	struct vdriver d;

	log_set_level(LOG_LEVEL_ERROR);
	if (size < 8 || guest_init(&h, &(struct guest_opts){ .ram_size = FUZZ_RAM }) < 0)
		return 0;
	net = virtio_net_create_backend(h.pci, &h.mem, mac, &be, &h.loop);
	if (!net || vd_probe(&d, &h, VIRTIO_ID_NET, 0) < 0)
		abort();
	/* Feature choice from the input: any subset of what the device offers. */
	if (vd_negotiate(&d, fuzz_features(data)) == 0 &&
	    vd_setup_queue(&d, 0, FUZZ_QSIZE) == 0 && vd_setup_queue(&d, 1, FUZZ_QSIZE) == 0) {
		vd_driver_ok(&d);
		fuzz_fill_queue(&d, 1, data + 8, size - 8);
	}
	virtio_net_destroy(net);
	guest_destroy(&h);
	return 0;
}
