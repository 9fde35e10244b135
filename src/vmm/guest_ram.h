/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM: one mapping, split around the 32-bit PCI hole: the first part
 * at guest address 0 up to 3 GiB, the rest from 4 GiB. Also the e820 map
 * that describes it to the guest.
 *
 * Two backings:
 *  - anonymous private memory (the default): transparent huge pages back it
 *    on a stock host, which the guest's nested page tables need to be fast
 *    (booting Linux in the lab takes ~25% longer on 4 KiB shmem pages), and
 *    KSM can merge it (KSM only scans private anonymous memory);
 *  - a memfd ("keel-guest-ram" in /proc/PID/smaps), for when another
 *    process must map guest RAM (vhost-user back ends, external snapshot
 *    tools). It gets huge pages only where the host enables shmem THP
 *    (/sys/kernel/mm/transparent_hugepage/shmem_enabled = advise).
 *
 * Either can instead be backed by hugetlbfs pages of 2 MiB or 1 GiB
 * (reserved when mapped: a host with too few says so at start-up), be
 * preallocated, marked mergeable for KSM (anonymous small pages only), or
 * locked against swapping (mlock; without it the host may swap guest RAM
 * like any other memory). guest_ram_discard.c gives pages back to the host
 * for the balloon.
 */
#ifndef KEEL_VMM_GUEST_RAM_H
#define KEEL_VMM_GUEST_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/guest_mem.h"
#include "vmm/boot_linux.h"

enum guest_ram_backing {
	GUEST_RAM_ANON,
	GUEST_RAM_MEMFD,
};

/* Zero is the default: anonymous, transparent huge pages, nothing else. */
struct guest_ram_opts {
	enum guest_ram_backing backing;
	uint64_t hugepage_size; /* 0: small pages; 2 MiB or 1 GiB: hugetlbfs */
	bool no_thp;            /* thp=off: MADV_NOHUGEPAGE */
	bool prealloc;          /* every page allocated at start-up */
	bool mergeable;         /* MADV_MERGEABLE: KSM may share identical pages */
	bool mlock;             /* locked in RAM as it is touched (all of it with prealloc) */
};

struct guest_ram {
	int memfd; /* -1 unless GUEST_RAM_MEMFD */
	bool anon; /* anonymous private memory: untouched pages are not resident */
	struct guest_ram_opts opts; /* as created; mergeable, mlock, no_thp change at run time */
	/* hugetlbfs: 4 KiB pages the balloon holds, a huge page goes back when all are held. */
	uint8_t *held;
	uint8_t *base;
	uint64_t size;
	uint64_t below_4g; /* bytes mapped at 0 */
	uint64_t above_4g; /* bytes mapped at 4 GiB */
	struct guest_mem mem;
};

/* Size split only, no allocation (for the e820 tests). */
void guest_ram_layout(uint64_t size, uint64_t *below_4g, uint64_t *above_4g);

/*
 * Maps RAM and applies the page-size and KSM advice; nothing is touched
 * yet, so a NUMA policy (vmm/numa.c) can still be bound before
 * guest_ram_populate(). 0, or -errno with one line in err.
 */
int guest_ram_create(struct guest_ram *ram, uint64_t size, const struct guest_ram_opts *opts,
		     char *err, size_t errlen);
/* Preallocation and mlock, as the options ask. 0, or -errno with one line in err. */
int guest_ram_populate(struct guest_ram *ram, char *err, size_t errlen);
/*
 * Whether this host can back `size` bytes with huge pages of `page_size`:
 * the page size exists and enough are free. 0, or -errno with one line.
 */
int guest_ram_check_hugepages(uint64_t size, uint64_t page_size, char *err, size_t errlen);
/* The page size guest RAM is allocated in (4 KiB unless hugetlbfs). */
uint64_t guest_ram_page_size(const struct guest_ram *ram);

/*
 * guest_ram_discard.c. Balloon and free page reporting (any thread, one at
 * a time): `hva` and `len` page-aligned inside RAM.
 *  - discard: the guest gave [hva, +len) up until it says otherwise; the
 *    host takes the memory back (anonymous: MADV_DONTNEED; memfd: the
 *    pages are punched out; hugetlbfs: whole huge pages once every 4 KiB
 *    of them was given up). -EINVAL outside RAM.
 *  - discard_free: free pages the guest may reuse at any time without
 *    telling (free page reporting): only what needs no bookkeeping, so
 *    with hugetlbfs only the whole huge pages inside the range.
 *  - reuse: the guest takes pages back (deflate): bookkeeping and mlock.
 *  - reuse_all: a reset; the guest owns all of RAM again.
 * Each returns the bytes given back to the host (for statistics) or -errno.
 */
int64_t guest_ram_discard(struct guest_ram *ram, void *hva, uint64_t len);
int64_t guest_ram_discard_free(struct guest_ram *ram, void *hva, uint64_t len);
void guest_ram_reuse(struct guest_ram *ram, void *hva, uint64_t len);
void guest_ram_reuse_all(struct guest_ram *ram);
/* Run-time changes (main thread). 0, or -errno with one line in err. */
int guest_ram_set_mergeable(struct guest_ram *ram, bool on, char *err, size_t errlen);
int guest_ram_set_mlock(struct guest_ram *ram, bool on, char *err, size_t errlen);
int guest_ram_set_thp(struct guest_ram *ram, bool on, char *err, size_t errlen);
/* Bytes of guest RAM resident in this process now (mincore). */
uint64_t guest_ram_resident(const struct guest_ram *ram);

/*
 * RAM mapped privately from a file (a snapshot's memory) at offset: loaded
 * lazily, the guest's writes copied on write; memfd stays -1.
 */
int guest_ram_create_from_file(struct guest_ram *ram, uint64_t size, int fd, uint64_t offset,
			       char *err, size_t errlen);
void guest_ram_destroy(struct guest_ram *ram);

#define GUEST_RAM_PAGE 4096

/*
 * The next run [*start, *end) of RAM offsets at or after pos that may hold
 * something other than zeros: the memfd's data extents (SEEK_DATA: pages
 * never touched are not read, so not allocated), anonymous RAM's resident
 * pages (mincore: the same for anonymous memory), or for file-backed RAM
 * runs of pages that are not all zero (at most 8 MiB each). false at the end.
 */
bool guest_ram_next_data(const struct guest_ram *ram, uint64_t pos, uint64_t *start, uint64_t *end);

/*
 * The guest's e820 map for a RAM split. Returns the number of entries
 * written to `out` (room for at least 8).
 */
unsigned guest_ram_e820(uint64_t below_4g, uint64_t above_4g, struct e820_entry *out);

#endif
