// SPDX-License-Identifier: Apache-2.0
/*
 * Giving guest RAM back to the host (balloon, free page reporting) and the
 * memory options that change at run time (guest_ram.h).
 *
 * How memory goes back depends on the backing:
 *  - anonymous private memory: MADV_DONTNEED drops the pages; the guest
 *    touching them again gets zero pages. A transparent huge page is split.
 *  - a memfd (shared): MADV_DONTNEED would only unmap, the pages stay in
 *    the memfd; punching a hole frees them (fallocate PUNCH_HOLE).
 *  - a private file mapping (a restored snapshot): MADV_DONTNEED drops our
 *    copy; the guest then reads the file's old contents, which is fine for
 *    pages it gave up.
 *  - hugetlbfs: only whole huge pages can go, so the 4 KiB pages the
 *    balloon holds are tracked and a huge page goes back once all of its
 *    pages are held. Free page reporting gives no notice when the guest
 *    reuses a page, so only the whole huge pages inside a reported range go.
 * Locked memory (mlock) cannot be dropped: the range is unlocked first and
 * locked again when the guest takes it back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keel/compiler.h"
#include "vmm/guest_ram.h"

static bool inside(const struct guest_ram *ram, const uint8_t *p, uint64_t len)
{
	return p >= ram->base && len <= ram->size && (uint64_t)(p - ram->base) <= ram->size - len &&
	       IS_ALIGNED((uint64_t)(p - ram->base), (uint64_t)GUEST_RAM_PAGE) &&
	       IS_ALIGNED(len, (uint64_t)GUEST_RAM_PAGE);
}

/*
 * munlock through the system call: AddressSanitizer replaces munlock() with
 * a no-op (it does not intercept mlock2), so the sanitizer build would keep
 * the pages locked and MADV_DONTNEED would then fail with EINVAL.
 */
static int unlock(void *p, uint64_t len)
{
	return (int)syscall(SYS_munlock, p, (size_t)len);
}

/* Returns [off, +len) of RAM to the host. */
static int drop(struct guest_ram *ram, uint64_t off, uint64_t len)
{
	if (ram->opts.mlock)
		unlock(ram->base + off, len);
	if (ram->memfd >= 0)
		return fallocate(ram->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				 (off_t)len) < 0 ? -errno : 0;
	return madvise(ram->base + off, len, MADV_DONTNEED) < 0 ? -errno : 0;
}

static bool bit(const uint8_t *map, uint64_t i)
{
	return map[i / 8] & (1u << (i % 8));
}

static void set_bits(uint8_t *map, uint64_t first, uint64_t n, bool on)
{
	for (uint64_t i = first; i < first + n; i++) {
		if (on)
			map[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			map[i / 8] &= (uint8_t)~(1u << (i % 8));
	}
}

/* Huge pages inside [off, +len) that are held whole go back. */
static int64_t drop_whole_huge(struct guest_ram *ram, uint64_t off, uint64_t len, bool held_only)
{
	uint64_t hp = ram->opts.hugepage_size, per = hp / GUEST_RAM_PAGE, done = 0;

	for (uint64_t h = ALIGN_DOWN(off, hp); h < off + len; h += hp) {
		bool whole = h >= off && h + hp <= off + len;

		if (held_only) {
			whole = true;
			for (uint64_t i = 0; i < per && whole; i++)
				whole = bit(ram->held, h / GUEST_RAM_PAGE + i);
		}
		if (!whole)
			continue;
		if (drop(ram, h, hp) < 0)
			return -errno;
		done += hp;
	}
	return (int64_t)done;
}

int64_t guest_ram_discard(struct guest_ram *ram, void *hva, uint64_t len)
{
	uint64_t off = (uint64_t)((uint8_t *)hva - ram->base);
	int r;

	if (!inside(ram, hva, len))
		return -EINVAL;
	if (ram->opts.hugepage_size) {
		set_bits(ram->held, off / GUEST_RAM_PAGE, len / GUEST_RAM_PAGE, true);
		return drop_whole_huge(ram, off, len, true);
	}
	r = drop(ram, off, len);
	return r < 0 ? r : (int64_t)len;
}

int64_t guest_ram_discard_free(struct guest_ram *ram, void *hva, uint64_t len)
{
	uint64_t off = (uint64_t)((uint8_t *)hva - ram->base);
	int r;

	if (!inside(ram, hva, len))
		return -EINVAL;
	if (ram->opts.hugepage_size)
		return drop_whole_huge(ram, off, len, false);
	r = drop(ram, off, len);
	/* Locked RAM stays locked: the guest may reuse these pages at once. */
	if (!r && ram->opts.mlock)
		mlock2(hva, len, MLOCK_ONFAULT);
	return r < 0 ? r : (int64_t)len;
}

void guest_ram_reuse(struct guest_ram *ram, void *hva, uint64_t len)
{
	uint64_t off = (uint64_t)((uint8_t *)hva - ram->base);

	if (!inside(ram, hva, len))
		return;
	if (ram->opts.hugepage_size)
		set_bits(ram->held, off / GUEST_RAM_PAGE, len / GUEST_RAM_PAGE, false);
	if (ram->opts.mlock)
		mlock2(hva, len, MLOCK_ONFAULT);
}

void guest_ram_reuse_all(struct guest_ram *ram)
{
	if (ram->held)
		memset(ram->held, 0, ram->size / GUEST_RAM_PAGE / 8 + 1);
	if (ram->opts.mlock)
		mlock2(ram->base, ram->size, MLOCK_ONFAULT);
}

int guest_ram_set_mergeable(struct guest_ram *ram, bool on, char *err, size_t errlen)
{
	if (!ram->anon) {
		snprintf(err, errlen, "KSM merges only anonymous memory of small pages; this VM's RAM "
			 "is %s", ram->memfd >= 0 ? "a memfd" : ram->opts.hugepage_size
			 ? "on huge pages" : "mapped from a file");
		return -EINVAL;
	}
	if (madvise(ram->base, ram->size, on ? MADV_MERGEABLE : MADV_UNMERGEABLE) < 0) {
		snprintf(err, errlen, "cannot mark guest RAM %smergeable: %s", on ? "" : "un",
			 errno == EINVAL ? "this host's kernel has no KSM" : strerror(errno));
		return -errno;
	}
	ram->opts.mergeable = on;
	return 0;
}

int guest_ram_set_mlock(struct guest_ram *ram, bool on, char *err, size_t errlen)
{
	if ((on ? mlock2(ram->base, ram->size, MLOCK_ONFAULT) : unlock(ram->base, ram->size)) < 0) {
		snprintf(err, errlen, "cannot %slock guest RAM: %s%s", on ? "" : "un", strerror(errno),
			 errno == ENOMEM || errno == EPERM ? " (raise the locked-memory limit)" : "");
		return -errno;
	}
	ram->opts.mlock = on;
	return 0;
}

int guest_ram_set_thp(struct guest_ram *ram, bool on, char *err, size_t errlen)
{
	if (ram->opts.hugepage_size) {
		snprintf(err, errlen, "guest RAM is on hugetlbfs pages; transparent huge pages do not "
			 "apply");
		return -EINVAL;
	}
	if (madvise(ram->base, ram->size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) < 0) {
		snprintf(err, errlen, "cannot change transparent huge pages: %s", strerror(errno));
		return -errno;
	}
	ram->opts.no_thp = !on;
	return 0;
}

uint64_t guest_ram_resident(const struct guest_ram *ram)
{
	enum { CHUNK = 4096 };
	unsigned char vec[CHUNK];
	uint64_t pages = 0;

	for (uint64_t off = 0; off < ram->size; off += (uint64_t)CHUNK * GUEST_RAM_PAGE) {
		uint64_t len = MIN((uint64_t)CHUNK * GUEST_RAM_PAGE, ram->size - off);

		if (mincore(ram->base + off, len, vec) < 0)
			return 0;
		for (uint64_t i = 0; i < len / GUEST_RAM_PAGE; i++)
			pages += vec[i] & 1;
	}
	return pages * GUEST_RAM_PAGE;
}
