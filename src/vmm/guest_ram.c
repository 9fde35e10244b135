// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
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

int guest_ram_create(struct guest_ram *ram, uint64_t size, enum guest_ram_backing backing,
		     char *err, size_t errlen)
{
	int flags = MAP_NORESERVE; /* committed as the guest touches it, like a host's overcommit */
	int e;

	memset(ram, 0, sizeof(*ram));
	ram->memfd = -1;
	ram->size = size;
	guest_ram_layout(size, &ram->below_4g, &ram->above_4g);

	if (backing == GUEST_RAM_MEMFD) {
		ram->memfd = memfd_create("keel-guest-ram", MFD_CLOEXEC);
		if (ram->memfd < 0) {
			e = errno;
			snprintf(err, errlen, "cannot create guest RAM (memfd_create): %s", strerror(e));
			return -e;
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
	}
	ram->base = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, ram->memfd, 0);
	if (ram->base == MAP_FAILED) {
		e = errno;
		ram->base = NULL;
		snprintf(err, errlen, "cannot map %llu MiB of guest RAM: %s",
			 (unsigned long long)(size >> 20), strerror(e));
		goto fail;
	}
	/* Huge pages where the host allows them; failure just means small pages. */
	madvise(ram->base, size, MADV_HUGEPAGE);
	/* Guest RAM in a core dump of the VMM would be huge and leak guest secrets. */
	madvise(ram->base, size, MADV_DONTDUMP);
	guest_mem_add_region(&ram->mem, 0, ram->below_4g, ram->base);
	if (ram->above_4g)
		guest_mem_add_region(&ram->mem, LAYOUT_RAM_ABOVE_4G_START, ram->above_4g,
				     ram->base + ram->below_4g);
	return 0;
fail:
	guest_ram_destroy(ram);
	return -e;
}

void guest_ram_destroy(struct guest_ram *ram)
{
	if (ram->base)
		munmap(ram->base, ram->size);
	if (ram->memfd >= 0)
		close(ram->memfd);
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
