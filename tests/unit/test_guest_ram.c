// SPDX-License-Identifier: Apache-2.0
/*
 * Guest RAM's backings and memory options on this machine's real kernel:
 * pages given back by the balloon leave the process (anonymous memory and
 * memfd alike), locked memory is unlocked for it and locked again, KSM and
 * THP advice reach the mapping's VmFlags, preallocation makes RAM resident,
 * huge pages go back whole only, and a host without enough huge pages is
 * refused with a sentence saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/compiler.h"
#include "ktest.h"
#include "vmm/guest_ram.h"

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps. */
static bool vmflags(const void *p, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			fclose(f);
			return true;
		}
	}
	fclose(f);
	return false;
}

static bool has_flag(const void *p, const char *flag)
{
	char flags[512], want[8];

	snprintf(want, sizeof(want), " %s", flag);
	return vmflags(p, flags, sizeof(flags)) && strstr(flags, want) != NULL;
}

static uint64_t vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	uint64_t kb = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void discard_gives_memory_back(enum guest_ram_backing backing)
{
	struct guest_ram ram;
	char err[256];
	struct stat before, after;

	KASSERT(guest_ram_create(&ram, 64 * MiB, &(struct guest_ram_opts){ .backing = backing,
				 .no_thp = true }, err, sizeof(err)) == 0);
	memset(ram.base, 0x5a, ram.size);
	KCHECK_EQ(guest_ram_resident(&ram), 64 * MiB);
	if (ram.memfd >= 0)
		fstat(ram.memfd, &before);
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 8 * MiB, 16 * MiB), 16 * MiB);
	KCHECK_EQ(guest_ram_resident(&ram), 48 * MiB);
	if (ram.memfd >= 0) {
		/* Unmapping alone would keep the memfd's pages: they are punched out. */
		fstat(ram.memfd, &after);
		KCHECK_EQ((before.st_blocks - after.st_blocks) * 512, 16 * MiB);
	}
	/* Free page reporting gives back the same way. */
	KCHECK_EQ(guest_ram_discard_free(&ram, ram.base + 32 * MiB, 8 * MiB), 8 * MiB);
	KCHECK_EQ(guest_ram_resident(&ram), 40 * MiB);
	/* The guest touching them again finds zeros, and the rest is untouched. */
	KCHECK(all_zero(ram.base + 8 * MiB, 16 * MiB));
	KCHECK(ram.base[8 * MiB - 1] == 0x5a && ram.base[24 * MiB] == 0x5a);
	/* Not page-aligned, or outside RAM. */
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 100, 4096), -EINVAL);
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 60 * MiB, 8 * MiB), -EINVAL);
	KCHECK_EQ(guest_ram_discard(&ram, ram.base - 4096, 4096), -EINVAL);
	guest_ram_destroy(&ram);
}

KTEST(discard_anonymous)
{
	discard_gives_memory_back(GUEST_RAM_ANON);
}

KTEST(discard_memfd)
{
	discard_gives_memory_back(GUEST_RAM_MEMFD);
}

KTEST(prealloc_and_mlock)
{
	struct guest_ram ram;
	char err[256];
	uint64_t locked;

	KASSERT(guest_ram_create(&ram, 32 * MiB, &(struct guest_ram_opts){ .prealloc = true,
				 .mlock = true, .no_thp = true }, err, sizeof(err)) == 0);
	KCHECK_EQ(guest_ram_resident(&ram), 0);
	locked = vmlck_kb();
	if (guest_ram_populate(&ram, err, sizeof(err))) {
		printf("# %s\n", err);
		KCHECK(strstr(err, "mlock=on: cannot lock 32 MiB of guest RAM") != NULL);
		guest_ram_destroy(&ram);
		return;
	}
	KCHECK_EQ(guest_ram_resident(&ram), 32 * MiB);
	KCHECK(vmlck_kb() >= locked + 32 * 1024);
	/* The balloon can still take pages: unlocked, dropped, locked again on reuse. */
	KCHECK_EQ(guest_ram_discard(&ram, ram.base, 8 * MiB), 8 * MiB);
	KCHECK_EQ(guest_ram_resident(&ram), 24 * MiB);
	KCHECK(vmlck_kb() >= locked + 24 * 1024 && vmlck_kb() < locked + 32 * 1024);
	guest_ram_reuse(&ram, ram.base, 8 * MiB);
	memset(ram.base, 1, 8 * MiB);
	KCHECK(vmlck_kb() >= locked + 32 * 1024);
	KCHECK_EQ(guest_ram_set_mlock(&ram, false, err, sizeof(err)), 0);
	KCHECK(vmlck_kb() < locked + 1024);
	guest_ram_destroy(&ram);
}

KTEST(ksm_and_thp_advice)
{
	struct guest_ram ram, fd_ram;
	char err[256];

	KASSERT(guest_ram_create(&ram, 16 * MiB, &(struct guest_ram_opts){ .mergeable = true },
				 err, sizeof(err)) == 0);
	KCHECK(has_flag(ram.base, "mg"));
	KCHECK(has_flag(ram.base, "hg"));
	KCHECK_EQ(guest_ram_set_mergeable(&ram, false, err, sizeof(err)), 0);
	KCHECK(!has_flag(ram.base, "mg"));
	KCHECK_EQ(guest_ram_set_thp(&ram, false, err, sizeof(err)), 0);
	KCHECK(has_flag(ram.base, "nh"));
	KCHECK(!has_flag(ram.base, "hg"));
	guest_ram_destroy(&ram);
	/* KSM merges only private anonymous memory. */
	KASSERT(guest_ram_create(&fd_ram, 16 * MiB, &(struct guest_ram_opts){
				 .backing = GUEST_RAM_MEMFD }, err, sizeof(err)) == 0);
	KCHECK_EQ(guest_ram_set_mergeable(&fd_ram, true, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "KSM merges only anonymous memory of small pages; this VM's RAM is a memfd");
	guest_ram_destroy(&fd_ram);
}

KTEST(too_few_huge_pages_is_a_clear_error)
{
	struct guest_ram ram;
	char err[256], want[256];
	uint64_t size = 1ULL << 40; /* no build machine has 512 Ki free huge pages */
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "re");
	unsigned long free_pages = 0;

	if (!f) {
		KCHECK_EQ(guest_ram_check_hugepages(size, 2 * MiB, err, sizeof(err)), -ENOENT);
		KCHECK_STR(err, "this host has no huge pages of 2 MiB (no "
			   "/sys/kernel/mm/hugepages/hugepages-2048kB)");
		return;
	}
	KCHECK(fscanf(f, "%lu", &free_pages) == 1);
	fclose(f);
	KCHECK_EQ(guest_ram_create(&ram, size, &(struct guest_ram_opts){ .hugepage_size = 2 * MiB },
				   err, sizeof(err)), -ENOMEM);
	snprintf(want, sizeof(want), "guest RAM of 1048576 MiB needs 524288 huge pages of 2 MiB; this "
		 "host has %lu free (raise /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)",
		 free_pages);
	KCHECK_STR(err, want);
	KCHECK_EQ(guest_ram_check_hugepages(3 * MiB, 2 * MiB, err, sizeof(err)), -EINVAL);
	KCHECK_EQ(guest_ram_check_hugepages(2 * GiB, 4 * MiB, err, sizeof(err)), -ENOENT);
	KCHECK_STR(err, "this host has no huge pages of 4 MiB (no "
		   "/sys/kernel/mm/hugepages/hugepages-4096kB)");
}

#define NR_HUGEPAGES "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f && fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static bool write_long(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	bool ok = f && fprintf(f, "%ld\n", v) > 0;

	if (f)
		ok = fclose(f) == 0 && ok;
	return ok;
}

static void huge_pages_whole(void)
{
	struct guest_ram ram;
	char err[256];

	KASSERT(guest_ram_create(&ram, 8 * MiB, &(struct guest_ram_opts){ .hugepage_size = 2 * MiB },
				 err, sizeof(err)) == 0);
	memset(ram.base, 0x77, ram.size);
	/* Half a huge page held by the balloon: nothing goes yet. */
	KCHECK_EQ(guest_ram_discard(&ram, ram.base, 1 * MiB), 0);
	KCHECK(ram.base[0] == 0x77);
	/* The other half: the whole page goes. */
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 1 * MiB, 1 * MiB), 2 * MiB);
	KCHECK(ram.base[0] == 0);
	/* Taken back by the guest before the rest came: the next huge page stays. */
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 2 * MiB, 1 * MiB), 0);
	guest_ram_reuse(&ram, ram.base + 2 * MiB, 4096);
	KCHECK_EQ(guest_ram_discard(&ram, ram.base + 3 * MiB, 1 * MiB), 0);
	KCHECK(ram.base[2 * MiB + 4096] == 0x77);
	/* Reported free ranges: only the whole huge pages inside. */
	ram.base[4 * MiB] = ram.base[6 * MiB] = 0x77;
	KCHECK_EQ(guest_ram_discard_free(&ram, ram.base + 3 * MiB, 5 * MiB), 4 * MiB);
	KCHECK(ram.base[3 * MiB] == 0x77 && ram.base[4 * MiB] == 0 && ram.base[6 * MiB] == 0);
	guest_ram_destroy(&ram);
}

/*
 * Needs 4 free huge pages of 2 MiB: as root, 4 more are reserved for the
 * test and handed back after it (8 MiB, for milliseconds).
 */
KTEST(huge_pages_go_back_whole)
{
	long nr = read_long(NR_HUGEPAGES);

	KASSERT(nr >= 0);
	if (!write_long(NR_HUGEPAGES, nr + 4)) {
		printf("# not root: huge pages tested only where 4 are free\n");
		if (read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages") >= 4)
			huge_pages_whole();
		return;
	}
	huge_pages_whole();
	KCHECK(write_long(NR_HUGEPAGES, nr));
}

int main(void)
{
	return ktest_run_all();
}
