// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keel/bus.h"

int bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	if (!bus->name)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->regions);
	memset(bus, 0, sizeof(*bus));
}

/* Index of the first region whose end is above addr (binary search). */
static unsigned lower_bound(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_region *r = &bus->regions[mid];

		if (r->base + r->len - 1 < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name)
{
	unsigned i;
	int ret = 0;

	if (!len || base + len - 1 < base || !ops)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = lower_bound(bus, base);
	if (i < bus->nr && bus->regions[i].base <= base + len - 1) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->nr == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_region *n = realloc(bus->regions, cap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		bus->regions = n;
		bus->cap = cap;
	}
	memmove(&bus->regions[i + 1], &bus->regions[i], (bus->nr - i) * sizeof(bus->regions[0]));
	bus->regions[i] = (struct bus_region){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
	bus->nr++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	unsigned i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = lower_bound(bus, base);
	if (i < bus->nr && bus->regions[i].base == base) {
		memmove(&bus->regions[i], &bus->regions[i + 1],
			(bus->nr - i - 1) * sizeof(bus->regions[0]));
		bus->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/* Copies the region covering [addr, addr+size) out under the lock. */
static bool find(struct bus *bus, uint64_t addr, unsigned size, struct bus_region *out)
{
	bool found = false;
	unsigned i;

	if (size == 0 || size > 8 || addr + size - 1 < addr)
		return false;
	pthread_rwlock_rdlock(&bus->lock);
	i = lower_bound(bus, addr);
	if (i < bus->nr) {
		const struct bus_region *r = &bus->regions[i];

		if (r->base <= addr && addr + size - 1 <= r->base + r->len - 1) {
			*out = *r;
			found = true;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return found;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned size)
{
	struct bus_region r;

	if (!find(bus, addr, size, &r)) {
		memset(data, 0xff, size <= 8 ? size : 8);
		return false;
	}
	if (r.ops->read)
		r.ops->read(r.opaque, addr - r.base, data, size);
	else
		memset(data, 0xff, size);
	return true;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned size)
{
	struct bus_region r;

	if (!find(bus, addr, size, &r))
		return false;
	if (r.ops->write)
		r.ops->write(r.opaque, addr - r.base, data, size);
	return true;
}
