// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keel/compiler.h"
#include "keel/guest_mem.h"

int guest_mem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size, void *hva)
{
	if (!size || gpa + size < gpa || !hva)
		return -EINVAL;
	if (mem->nr_regions >= GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	mem->regions[mem->nr_regions++] = (struct guest_mem_region){
		.gpa = gpa, .size = size, .hva = hva,
	};
	return 0;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		uint64_t off;

		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		/* Written so no sum can overflow: off < size and len <= size - off. */
		if (off >= r->size || len > r->size - off)
			continue;
		return r->hva + off;
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len)
{
	const void *p = guest_mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len)
{
	void *p = guest_mem_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t guest_mem_total(const struct guest_mem *mem)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < mem->nr_regions; i++)
		total += mem->regions[i].size;
	return total;
}

static uint64_t region_words(const struct guest_mem_region *r)
{
	return (r->size + GUEST_MEM_PAGE * 64ULL - 1) / (GUEST_MEM_PAGE * 64ULL);
}

int guest_mem_dirty_start(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct guest_mem_region *r = &mem->regions[i];

		if (!r->dirty) {
			uint64_t *b = calloc(region_words(r), sizeof(uint64_t));

			if (!b)
				return -ENOMEM;
			/* Published before logging turns on (release below). */
			r->dirty = b;
		}
		for (uint64_t w = 0; w < region_words(r); w++)
			__atomic_store_n(&r->dirty[w], 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&mem->dirty_logging, 1, __ATOMIC_RELEASE);
	return 0;
}

void guest_mem_dirty_stop(struct guest_mem *mem)
{
	__atomic_store_n(&mem->dirty_logging, 0, __ATOMIC_RELEASE);
}

void guest_mem_mark_dirty(const struct guest_mem *mem, const void *hva, size_t len)
{
	const uint8_t *p = hva;

	if (!len || !__atomic_load_n(&mem->dirty_logging, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		uint64_t first, last;

		if (p < r->hva || (uint64_t)(p - r->hva) >= r->size || !r->dirty)
			continue;
		first = (uint64_t)(p - r->hva) / GUEST_MEM_PAGE;
		last = (MIN((uint64_t)(p - r->hva) + len, r->size) - 1) / GUEST_MEM_PAGE;
		for (uint64_t pg = first; pg <= last; pg++)
			__atomic_fetch_or(&r->dirty[pg / 64], 1ULL << (pg % 64), __ATOMIC_RELAXED);
		return;
	}
}

void guest_mem_mark_dirty_iov(const struct guest_mem *mem, const struct iovec *iov, unsigned n)
{
	if (!__atomic_load_n(&mem->dirty_logging, __ATOMIC_ACQUIRE))
		return;
	for (unsigned i = 0; i < n; i++)
		guest_mem_mark_dirty(mem, iov[i].iov_base, iov[i].iov_len);
}

void guest_mem_dirty_collect(const struct guest_mem *mem, unsigned region, uint64_t *bitmap)
{
	const struct guest_mem_region *r;

	if (region >= mem->nr_regions || !mem->regions[region].dirty)
		return;
	r = &mem->regions[region];
	for (uint64_t w = 0; w < region_words(r); w++)
		if (__atomic_load_n(&r->dirty[w], __ATOMIC_RELAXED))
			bitmap[w] |= __atomic_exchange_n(&r->dirty[w], 0, __ATOMIC_ACQ_REL);
}

void guest_mem_dirty_free(struct guest_mem *mem)
{
	guest_mem_dirty_stop(mem);
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		free(mem->regions[i].dirty);
		mem->regions[i].dirty = NULL;
	}
}
