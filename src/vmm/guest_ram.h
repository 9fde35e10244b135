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

struct guest_ram {
	int memfd; /* -1 unless GUEST_RAM_MEMFD */
	bool anon; /* anonymous private memory: untouched pages are not resident */
	uint8_t *base;
	uint64_t size;
	uint64_t below_4g; /* bytes mapped at 0 */
	uint64_t above_4g; /* bytes mapped at 4 GiB */
	struct guest_mem mem;
};

/* Size split only, no allocation (for the e820 tests). */
void guest_ram_layout(uint64_t size, uint64_t *below_4g, uint64_t *above_4g);

/* 0, or -errno with one line in err. */
int guest_ram_create(struct guest_ram *ram, uint64_t size, enum guest_ram_backing backing,
		     char *err, size_t errlen);/*
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
