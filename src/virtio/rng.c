// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define RNG_QUEUE_SIZE 256
/* Bytes given per request at most; the driver asks again for more (5.4.6). */
#define RNG_MAX_REQUEST (64 * KiB)
#define PCI_CLASS_OTHER 0xff0000

struct virtio_rng {
	struct virtio_dev vdev;
	struct virtq_elem elem;
};

/* Fills the request's buffers; returns bytes written, or -errno. */
static ssize_t fill(struct virtq_elem *e)
{
	size_t total = 0;

	for (unsigned i = 0; i < e->n_in && total < RNG_MAX_REQUEST; i++) {
		size_t want = MIN(e->iov[i].iov_len, RNG_MAX_REQUEST - total), got = 0;

		while (got < want) {
			ssize_t n = getrandom((uint8_t *)e->iov[i].iov_base + got, want - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			got += (size_t)n;
		}
		total += got;
	}
	return (ssize_t)total;
}

static void rng_kick(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_rng *rng = container_of(vdev, struct virtio_rng, vdev);
	struct virtq *vq = virtio_vq(vdev, q);
	bool pushed = false;
	int r;

	do {
		virtq_disable_kicks(vq);
		while ((r = virtq_pop(vq, &rng->elem)) > 0) {
			ssize_t n;

			if (rng->elem.n_out) {
				log_guest("%s: request with device-readable buffers", vdev->name);
				r = -EIO;
				break;
			}
			n = fill(&rng->elem);
			if (n < 0) {
				log_error("%s: getrandom: %s", vdev->name, strerror((int)-n));
				n = 0;
			}
			guest_mem_mark_dirty_iov(vdev->mem, rng->elem.iov, rng->elem.n_in);
			virtq_push(vq, rng->elem.head, (uint32_t)n);
			pushed = true;
		}
		if (r < 0) {
			virtio_dev_error(vdev);
			break;
		}
	} while (virtq_enable_kicks(vq));
	if (pushed)
		virtio_notify_queue(vdev, q);
}

static const struct virtio_dev_ops rng_ops = {
	.queue_kick = rng_kick,
};

struct virtio_rng *virtio_rng_create(struct pci_host *pci, const struct guest_mem *mem,
				     struct event_loop *loop)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int r;

	if (!rng)
		return NULL;
	r = virtio_dev_init(&rng->vdev, pci, mem, &(struct virtio_dev_desc){
		.name = "virtio-rng",
		.device_id = VIRTIO_ID_RNG,
		.class_code = PCI_CLASS_OTHER,
		.num_queues = 1,
		.queue_max_size = RNG_QUEUE_SIZE,
		.ops = &rng_ops,
	}, loop);
	if (!r) {
		r = virtio_dev_start(&rng->vdev);
		if (r < 0)
			virtio_dev_uninit(&rng->vdev);
	}
	if (r < 0) {
		free(rng);
		errno = -r;
		return NULL;
	}
	return rng;
}

struct virtio_dev *virtio_rng_dev(struct virtio_rng *rng)
{
	return &rng->vdev;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
	if (!rng)
		return;
	virtio_dev_uninit(&rng->vdev);
	free(rng);
}
