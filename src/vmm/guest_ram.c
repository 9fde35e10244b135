// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <inttypes.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "vmm/guest_ram.h"
#include "vmm/layout.h"

void guest_ram_layout(uint64_t size, uint64_t *below_4g, uint64_t *above_4g)
{
	*below_4g = MIN(size, LAYOUT_RAM_BELOW_4G_MAX);
	*above_4g = size - *below_4g;
}

/*
 * mmap() at an address aligned to `align` (2 MiB, or the hugetlbfs page
 * size, which such a mapping needs anyway). KVM maps guest memory with huge
 * pages only where the host address and the guest address agree modulo the
 * page size; mmap() alone aligns to 4 KiB, and then every guest access
 * faults its 4 KiB page in separately (in the lab: 24,900 nested page
 * faults to reach init instead of 430, the guest's boot a third slower).
 */
static void *mmap_aligned(size_t size, size_t align, int prot, int flags, int fd, off_t offset)
{
	uint8_t *reserve, *base;

	reserve = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (reserve == MAP_FAILED)
		return MAP_FAILED;
	base = (uint8_t *)ALIGN_UP((uintptr_t)reserve, (uintptr_t)align);
	if (mmap(base, size, prot, flags | MAP_FIXED, fd, offset) == MAP_FAILED) {
		int e = errno;

		munmap(reserve, size + align);
		errno = e;
		return MAP_FAILED;
	}
	/* Give back the unaligned head and the tail of the reservation. */
	if (base > reserve)
		munmap(reserve, (size_t)(base - reserve));
	if (reserve + size + align > base + size)
		munmap(base + size, (size_t)(reserve + size + align - (base + size)));
	return base;
}

static void add_regions(struct guest_ram *ram)
{
	/* Guest RAM in a core dump of the VMM would be huge and leak guest secrets. */
	madvise(ram->base, ram->size, MADV_DONTDUMP);
	guest_mem_add_region(&ram->mem, 0, ram->below_4g, ram->base);
	if (ram->above_4g)
		guest_mem_add_region(&ram->mem, LAYOUT_RAM_ABOVE_4G_START, ram->above_4g,
				     ram->base + ram->below_4g);
}

int guest_ram_create_from_file(struct guest_ram *ram, uint64_t size, int fd, uint64_t offset,
			       char *err, size_t errlen)
{
	memset(ram, 0, sizeof(*ram));
	ram->memfd = -1;
	ram->size = size;
	guest_ram_layout(size, &ram->below_4g, &ram->above_4g);
	/*
	 * Private: the guest's writes stay in this process (copy on write);
	 * the page cache loads the rest on first touch, so nothing is read now.
	 */
	ram->base = mmap_aligned(size, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
				 fd, (off_t)offset);
	if (ram->base == MAP_FAILED) {
		int e = errno;

		ram->base = NULL;
		snprintf(err, errlen, "cannot map %llu MiB of guest RAM from the snapshot: %s",
			 (unsigned long long)(size >> 20), strerror(e));
		return -e;
	}
	add_regions(ram);
	return 0;
}

/* hugetlb's page-size encoding: log2 of the size in the flag bits. */
static int huge_shift(uint64_t page_size)
{
	return __builtin_ctzll(page_size);
}

static int read_sys_u64(const char *path, uint64_t *out)
{
	FILE *f = fopen(path, "re");
	int r = f && fscanf(f, "%" SCNu64, out) == 1 ? 0 : -ENOENT;

	if (f)
		fclose(f);
	return r;
}

int guest_ram_check_hugepages(uint64_t size, uint64_t page_size, char *err, size_t errlen)
{
	char dir[96], path[128];
	uint64_t free_pages, resv = 0, need = size / page_size;

	if (size % page_size) {
		snprintf(err, errlen, "--memory %" PRIu64 "M with huge pages of %" PRIu64
			 " MiB: the size must be a multiple of the huge page size", size >> 20,
			 page_size >> 20);
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
		 page_size >> 10);
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	if (read_sys_u64(path, &free_pages)) {
		snprintf(err, errlen, "this host has no huge pages of %" PRIu64 " MiB (no %s)",
			 page_size >> 20, dir);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/resv_hugepages", dir);
	read_sys_u64(path, &resv);
	free_pages = free_pages > resv ? free_pages - resv : 0;
	if (free_pages < need) {
		snprintf(err, errlen, "guest RAM of %" PRIu64 " MiB needs %" PRIu64 " huge page%s of %"
			 PRIu64 " MiB; this host has %" PRIu64 " free (raise %s/nr_hugepages)",
			 size >> 20, need, need == 1 ? "" : "s", page_size >> 20, free_pages, dir);
		return -ENOMEM;
	}
	return 0;
}

uint64_t guest_ram_page_size(const struct guest_ram *ram)
{
	return ram->opts.hugepage_size ? ram->opts.hugepage_size : GUEST_RAM_PAGE;
}

int guest_ram_create(struct guest_ram *ram, uint64_t size, const struct guest_ram_opts *opts,
		     char *err, size_t errlen)
{
	bool huge = opts->hugepage_size != 0;
	/*
	 * Small pages are committed as the guest touches them, like a host's
	 * overcommit. Huge pages are reserved when mapped instead, so a host
	 * with too few fails here rather than with SIGBUS in the guest.
	 */
	int flags = huge ? 0 : MAP_NORESERVE;
	int e;

	memset(ram, 0, sizeof(*ram));
	ram->memfd = -1;
	ram->size = size;
	ram->opts = *opts;
	guest_ram_layout(size, &ram->below_4g, &ram->above_4g);
	if (huge) {
		e = -guest_ram_check_hugepages(size, opts->hugepage_size, err, errlen);
		if (e)
			return -e;
		/* One bit per 4 KiB page the balloon holds. */
		ram->held = calloc(size / GUEST_RAM_PAGE / 8 + 1, 1);
		if (!ram->held) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}

	if (opts->backing == GUEST_RAM_MEMFD) {
		unsigned mfd = MFD_CLOEXEC;

		if (huge)
			mfd |= MFD_HUGETLB | ((unsigned)huge_shift(opts->hugepage_size) << MFD_HUGE_SHIFT);
		ram->memfd = memfd_create("keel-guest-ram", mfd);
		if (ram->memfd < 0) {
			e = errno;
			snprintf(err, errlen, "cannot create guest RAM (memfd_create): %s", strerror(e));
			goto fail;
		}
		if (ftruncate(ram->memfd, (off_t)size) < 0) {
			e = errno;
			snprintf(err, errlen, "cannot size guest RAM to %llu MiB: %s",
				 (unsigned long long)(size >> 20), strerror(e));
			goto fail;
		}
		flags |= MAP_SHARED;
	} else {
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		if (huge)
			flags |= MAP_HUGETLB | (huge_shift(opts->hugepage_size) << MAP_HUGE_SHIFT);
	}
	ram->base = mmap_aligned(size, huge ? opts->hugepage_size : 2 * MiB, PROT_READ | PROT_WRITE,
				 flags, ram->memfd, 0);
	if (ram->base == MAP_FAILED) {
		e = errno;
		ram->base = NULL;
		snprintf(err, errlen, "cannot map %llu MiB of guest RAM%s: %s",
			 (unsigned long long)(size >> 20), huge ? " on huge pages" : "", strerror(e));
		goto fail;
	}
	ram->anon = opts->backing == GUEST_RAM_ANON && !huge;
	if (!huge) {
		/* Huge pages where the host allows them; failure just means small pages. */
		madvise(ram->base, size, opts->no_thp ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
		if (opts->mergeable && madvise(ram->base, size, MADV_MERGEABLE) < 0) {
			e = errno;
			snprintf(err, errlen, "mergeable=on: %s", e == EINVAL
				 ? "this host's kernel has no KSM (CONFIG_KSM)" : strerror(e));
			goto fail;
		}
	}
	add_regions(ram);
	return 0;
fail:
	guest_ram_destroy(ram);
	return -e;
}

int guest_ram_populate(struct guest_ram *ram, char *err, size_t errlen)
{
	int e;

	if (ram->opts.prealloc && madvise(ram->base, ram->size, MADV_POPULATE_WRITE) < 0) {
		e = errno;
		snprintf(err, errlen, "prealloc=on: cannot allocate %" PRIu64 " MiB of guest RAM: %s",
			 ram->size >> 20, strerror(e));
		return -e;
	}
	if (ram->opts.mlock && mlock2(ram->base, ram->size, MLOCK_ONFAULT) < 0) {
		e = errno;
		snprintf(err, errlen, "mlock=on: cannot lock %" PRIu64 " MiB of guest RAM: %s%s",
			 ram->size >> 20, strerror(e),
			 e == ENOMEM || e == EPERM ? " (raise the locked-memory limit, ulimit -l)" : "");
		return -e;
	}
	return 0;
}

void guest_ram_destroy(struct guest_ram *ram)
{
	guest_mem_dirty_free(&ram->mem);
	if (ram->base)
		munmap(ram->base, ram->size);
	if (ram->memfd >= 0)
		close(ram->memfd);
	free(ram->held);
	memset(ram, 0, sizeof(*ram));
	ram->memfd = -1;
}

unsigned guest_ram_e820(uint64_t below_4g, uint64_t above_4g, struct e820_entry *out)
{
	unsigned n = 0;

	/* Conventional memory below the EBDA, where Linux puts its SMP trampoline. */
	out[n++] = (struct e820_entry){ 0, LAYOUT_EBDA_START, E820_RAM };
	out[n++] = (struct e820_entry){ LAYOUT_EBDA_START, 0xa0000 - LAYOUT_EBDA_START, E820_RESERVED };
	/* ACPI tables and the RSDP live in the old BIOS area. */
	out[n++] = (struct e820_entry){ LAYOUT_ACPI_START, LAYOUT_HIGH_MEMORY - LAYOUT_ACPI_START,
					E820_RESERVED };
	if (below_4g > LAYOUT_HIGH_MEMORY)
		out[n++] = (struct e820_entry){ LAYOUT_HIGH_MEMORY, below_4g - LAYOUT_HIGH_MEMORY,
						E820_RAM };
	/* Linux only trusts MMCONFIG when its range is reserved. */
	out[n++] = (struct e820_entry){ LAYOUT_PCI_ECAM_START, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED };
	if (above_4g)
		out[n++] = (struct e820_entry){ LAYOUT_RAM_ABOVE_4G_START, above_4g, E820_RAM };
	return n;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned i = 0; i < GUEST_RAM_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/*
 * Anonymous memory the guest never touched is not resident and reads as
 * zeros; mincore() tells which pages are, without touching them.
 */
static bool next_resident(const struct guest_ram *ram, uint64_t pos, uint64_t *start, uint64_t *end)
{
	enum { CHUNK = 8 * MiB / GUEST_RAM_PAGE };
	unsigned char vec[CHUNK];
	uint64_t off = ALIGN_DOWN(pos, (uint64_t)GUEST_RAM_PAGE);
	bool in_run = false;

	while (off < ram->size) {
		uint64_t len = MIN((uint64_t)CHUNK * GUEST_RAM_PAGE, ram->size - off);
		uint64_t pages = len / GUEST_RAM_PAGE;

		if (mincore(ram->base + off, len, vec) < 0) {
			/* Cannot tell: call it all data, which is only slower. */
			memset(vec, 1, pages);
		}
		for (uint64_t i = 0; i < pages; i++) {
			bool resident = vec[i] & 1;

			if (!in_run && resident) {
				*start = off + i * GUEST_RAM_PAGE;
				in_run = true;
			} else if (in_run && !resident) {
				*end = off + i * GUEST_RAM_PAGE;
				return true;
			}
		}
		off += len;
		if (in_run && off - *start >= 8 * MiB) {
			*end = off;
			return true;
		}
	}
	if (in_run)
		*end = ram->size;
	return in_run;
}

bool guest_ram_next_data(const struct guest_ram *ram, uint64_t pos, uint64_t *start, uint64_t *end)
{
	uint64_t data = pos, hole;

	if (pos >= ram->size)
		return false;
	if (ram->memfd >= 0) {
		off_t d = lseek(ram->memfd, (off_t)pos, SEEK_DATA), h;

		if (d < 0 || (uint64_t)d >= ram->size)
			return false; /* ENXIO: no data after pos */
		h = lseek(ram->memfd, d, SEEK_HOLE);
		*start = (uint64_t)d;
		*end = h < 0 || (uint64_t)h > ram->size ? ram->size : (uint64_t)h;
		return true;
	}
	if (ram->anon)
		return next_resident(ram, pos, start, end);
	while (data < ram->size && page_is_zero(ram->base + data))
		data += GUEST_RAM_PAGE;
	if (data >= ram->size)
		return false;
	for (hole = data; hole < ram->size && hole - data < 8 * MiB && !page_is_zero(ram->base + hole);)
		hole += GUEST_RAM_PAGE;
	*start = data;
	*end = hole;
	return true;
}
