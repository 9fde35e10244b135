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

#define GUEST_MEM_MAX_REGIONS 8

struct guest_mem_region {
	uint64_t gpa;  /* guest-physical start */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping of the region */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
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

#endif
