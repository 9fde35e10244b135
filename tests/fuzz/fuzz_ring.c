// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "fuzz_ring.h"
#include "keel/compiler.h"

uint64_t fuzz_features(const uint8_t *data)
{
	return (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
	       (uint64_t)data[3] << 24;
}

void fuzz_fill_queue(struct vdriver *d, unsigned q, const uint8_t *data, size_t size)
{
	size_t ndesc = MIN(size / 16, (size_t)FUZZ_QSIZE);

	for (size_t i = 0; i < ndesc; i++) {
		struct vring_desc de;

		memcpy(&de, data + 16 * i, 16);
		if (!(de.flags & 0x8000))
			de.addr = FUZZ_DATA + de.addr % (FUZZ_RAM - FUZZ_DATA);
		de.flags &= 0x7fff;
		vd_set_desc(d, q, (uint16_t)i, de.addr, de.len, de.flags, de.next);
	}
	memcpy(h_ptr(d->h, FUZZ_DATA), data + 16 * ndesc,
	       MIN(size - 16 * ndesc, (size_t)(FUZZ_RAM - FUZZ_DATA)));
	for (size_t i = 0; i < ndesc; i++)
		vd_publish(d, q, (uint16_t)i);
	vd_kick(d, q);
	h_pump(d->h, 0);
}
