/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An address space that devices register handlers on: one for x86 port I/O,
 * one for MMIO. The vCPU threads dispatch KVM exits here; the device test
 * harness calls the same entry points to play a guest driver.
 *
 * Threading: dispatch may run on several vCPU threads at once, and a handler
 * may change the bus itself (a PCI BAR being moved), so the bus lock is only
 * held to find the region; the handler runs unlocked. Devices protect their
 * own state. A region's ops and opaque must stay valid until the bus is
 * destroyed (devices live as long as the VM).
 */
#ifndef KEEL_BUS_H
#define KEEL_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Handlers get the offset inside their region and an access of 1, 2, 4 or 8
 * bytes. `data` is little-endian guest data, as KVM hands it over.
 */
struct bus_ops {
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned size);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_region *regions; /* sorted by base, non-overlapping */
	unsigned nr, cap;
};

int bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);

/* 0, -EINVAL for an empty or wrapping range, -EEXIST when it overlaps. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name);
/* Removes the region that starts at base; 0 or -ENOENT. */
int bus_unregister(struct bus *bus, uint64_t base);

/*
 * Dispatch an access. Returns true when a region covered the whole access.
 * On a miss a read fills `data` with all ones (what an empty bus returns on
 * a PC) and a write is dropped; the caller decides whether to log.
 */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned size);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned size);

#endif
