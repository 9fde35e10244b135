/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory as devices see it: a few regions of host memory,
 * each mapped at a guest-physical address. Devices never compute host
 * pointers themselves; they ask here, and every lookup is checked against
 * the regions so a hostile guest address (out of RAM, overflowing, straddling
 * a hole) yields NULL / -EFAULT instead of a pointer outside guest RAM.
 *
 * The VMM fills one of these from its memfd-backed RAM; the device test
 * harness fills one from a malloc'd buffer. Regions are fixed after setup, so
 * lookups need no lock.
 */
#ifndef KEEL_GUEST_MEM_H
#define KEEL_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define GUEST_MEM_MAX_REGIONS 8
#define GUEST_MEM_PAGE 4096

struct guest_mem_region {
	uint64_t gpa;  /* guest-physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping of the region */
	uint64_t *dirty; /* one bit per page from hva; NULL until dirty logging first starts */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
	int dirty_logging; /* atomic: guest_mem_mark_dirty() records */
};

/* Adds a region; regions must not overlap. Returns 0 or -errno. */
int guest_mem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, void *hva);

/*
 * Host pointer for [gpa, gpa + len) when that range lies entirely inside one
 * region, else NULL. len 0 is allowed and checks gpa alone.
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy helpers on top of guest_mem_ptr(); 0 or -EFAULT. */
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len);
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len);

/* Total bytes of RAM in all regions. */
uint64_t guest_mem_total(const struct guest_mem *mem);

/*
 * Dirty logging of what the VMM itself writes into guest RAM, for live
 * migration: KVM's dirty log sees only the vCPUs' writes, not a device
 * model's (used rings, block reads, received frames). A device calls
 * guest_mem_mark_dirty() AFTER each write it makes through a pointer from
 * guest_mem_ptr() (after, so a page collected while a request is in flight
 * is marked again when the data lands); it costs one atomic load while
 * logging is off. Marking is lock-free and may come from any thread.
 *
 * start allocates the bitmaps (once; they live until guest_mem_dirty_free(),
 * so a device marking while logging stops never touches freed memory),
 * clears them and turns logging on: 0 or -ENOMEM. collect moves region i's
 * bits (bit n = page n from the region's start) into `bitmap` with OR and
 * clears them, word by word atomically, so a mark is never lost between
 * the two.
 */
int guest_mem_dirty_start(struct guest_mem *mem);
void guest_mem_dirty_stop(struct guest_mem *mem);
void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, size_t len);
void guest_mem_mark_dirty_iov(const struct guest_mem *mem, const struct iovec *iov, unsigned n);
void guest_mem_dirty_collect(const struct guest_mem *mem, unsigned region, uint64_t *bitmap);
void guest_mem_dirty_free(struct guest_mem *mem);

#endif
