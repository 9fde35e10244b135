// SPDX-License-Identifier: Apache-2.0
/*
 * Split-virtqueue parsing: the input is guest RAM holding the descriptor
 * table, avail and used rings (at the offsets the first bytes choose) and
 * whatever buffers and indirect tables the fuzzer invents. Every chain
 * virtq_pop() accepts must lie inside guest RAM; ASan checks we never read
 * or write outside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/compiler.h"
#include "keel/guest_mem.h"
#include "keel/log.h"
#include "virtio/virtqueue.h"

#define RAM_SIZE (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct virtq_elem e;
	struct guest_mem mem = { 0 };
	struct virtq vq;
	uint16_t qsize;
	uint64_t desc, avail, used;

	if (!ram) {
		ram = aligned_alloc(4096, RAM_SIZE);
		log_set_level(LOG_LEVEL_ERROR);
	}
	if (size < 4)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9));
	desc = 0;
	avail = ALIGN_UP(16ULL * qsize, 2);
	used = ALIGN_UP(avail + 6 + 2ULL * qsize, 4);
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data + 4, MIN(size - 4, (size_t)RAM_SIZE));
	guest_mem_add_region(&mem, 0, RAM_SIZE, ram);
	if (virtq_setup(&vq, &mem, qsize, 256, desc, avail, used, data[1] & 1, data[1] & 2) < 0)
		return 0;
	for (unsigned round = 0; round < 2u * qsize + 2; round++) {
		int r = virtq_pop(&vq, &e);
		volatile uint8_t sink = 0;

		if (r <= 0)
			break;
		for (unsigned i = 0; i < e.n_out + e.n_in; i++) {
			const uint8_t *p = e.iov[i].iov_base;

			if (p < ram || p + e.iov[i].iov_len > ram + RAM_SIZE)
				abort();
			sink ^= p[0] ^ p[e.iov[i].iov_len - 1];
		}
		(void)sink;
		if (data[2] & 1)
			virtq_unpop(&vq, 1);
		virtq_push(&vq, e.head, (uint32_t)e.in_len);
		virtq_should_notify(&vq);
		virtq_enable_kicks(&vq);
		virtq_disable_kicks(&vq);
	}
	return 0;
}
