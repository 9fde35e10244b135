// SPDX-License-Identifier: Apache-2.0
/*
 * Host files under the block layer: opening with the cache mode's flags,
 * O_DIRECT alignment (bounce buffers), synchronous metadata access, and the
 * system calls every engine ends up making.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block_int.h"
#include "keel/compiler.h"

uint64_t iov_total(const struct iovec *iov, unsigned n)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/* Walks [skip, skip+len) of an iovec, calling fn on each piece. */
#define IOV_WALK(iov, n, skip, len, ptr, plen, pos, body)                        \
	do {                                                                     \
		uint64_t s_ = (skip), l_ = (len), pos = 0;                        \
		for (unsigned i_ = 0; i_ < (n) && l_; i_++) {                    \
			if (s_ >= (iov)[i_].iov_len) {                           \
				s_ -= (iov)[i_].iov_len;                         \
				continue;                                        \
			}                                                        \
			uint8_t *ptr = (uint8_t *)(iov)[i_].iov_base + s_;       \
			uint64_t plen = MIN((iov)[i_].iov_len - s_, l_);         \
			(void)pos;                                               \
			body;                                                    \
			pos += plen;                                             \
			l_ -= plen;                                              \
			s_ = 0;                                                  \
		}                                                                \
	} while (0)

void iov_memset(const struct iovec *iov, unsigned n, uint64_t skip, int c, uint64_t len)
{
	IOV_WALK(iov, n, skip, len, p, pl, pos, memset(p, c, pl));
}

void iov_to_buf(const struct iovec *iov, unsigned n, uint64_t skip, void *buf, uint64_t len)
{
	IOV_WALK(iov, n, skip, len, p, pl, pos, memcpy((uint8_t *)buf + pos, p, pl));
}

void iov_from_buf(const struct iovec *iov, unsigned n, uint64_t skip, const void *buf, uint64_t len)
{
	IOV_WALK(iov, n, skip, len, p, pl, pos, memcpy(p, (const uint8_t *)buf + pos, pl));
}

int iov_slice(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len,
	      struct iovec *dst, unsigned cap)
{
	int cnt = 0;
	bool over = false;

	IOV_WALK(src, n, skip, len, p, pl, pos, {
		if ((unsigned)cnt == cap) {
			over = true;
			break;
		}
		dst[cnt].iov_base = p;
		dst[cnt].iov_len = pl;
		cnt++;
	});
	return over ? -1 : cnt;
}

void *blk_alloc_aligned(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len ? ALIGN_UP(len, 4096) : 4096))
		return NULL;
	return p;
}

/* ---- host_io ---- */

static bool iov_aligned(const struct iovec *iov, unsigned n, uint32_t a)
{
	for (unsigned i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % a || iov[i].iov_len % a)
			return false;
	return true;
}

int host_io_prepare(struct host_io *hio)
{
	uint64_t len;

	hio->bounce = NULL;
	if (!hio->dio_align || (hio->op != HOST_READ && hio->op != HOST_WRITE) ||
	    iov_aligned(hio->iov, hio->iovcnt, hio->dio_align))
		return 0;
	len = iov_total(hio->iov, hio->iovcnt);
	hio->bounce = blk_alloc_aligned(len);
	if (!hio->bounce)
		return -ENOMEM;
	hio->bounce_iov.iov_base = hio->bounce;
	hio->bounce_iov.iov_len = len;
	if (hio->op == HOST_WRITE)
		iov_to_buf(hio->iov, hio->iovcnt, 0, hio->bounce, len);
	return 0;
}

void host_io_finish(struct host_io *hio)
{
	if (!hio->bounce)
		return;
	if (hio->op == HOST_READ && hio->ret == 0)
		iov_from_buf(hio->iov, hio->iovcnt, 0, hio->bounce, hio->bounce_iov.iov_len);
	free(hio->bounce);
	hio->bounce = NULL;
}

/*
 * Finishes a read or write from byte `done` on, one call at a time: what an
 * engine does after a short transfer. Reads past the end of the file see
 * zeroes (a qcow2 cluster or raw tail the file does not cover).
 */
int host_io_rw_from(struct host_io *hio, uint64_t done)
{
	unsigned n;
	const struct iovec *iov = host_io_iov(hio, &n);
	uint64_t total = iov_total(iov, n);

	while (done < total) {
		struct iovec part[64];
		int cnt = iov_slice(iov, n, done, total - done, part, ARRAY_SIZE(part));
		ssize_t r;

		if (cnt < 0)
			cnt = ARRAY_SIZE(part);
		if (hio->op == HOST_READ)
			r = preadv(hio->fd, part, cnt, hio->off + done);
		else
			r = pwritev2(hio->fd, part, cnt, hio->off + done, hio->mode);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {
			if (hio->op == HOST_WRITE)
				return -EIO;
			iov_memset(iov, n, done, 0, total - done);
			break;
		}
		done += r;
	}
	return 0;
}

int host_io_exec(struct host_io *hio)
{
	switch (hio->op) {
	case HOST_READ:
	case HOST_WRITE:
		return host_io_rw_from(hio, 0);
	case HOST_FDATASYNC:
		return fdatasync(hio->fd) < 0 ? -errno : 0;
	case HOST_FALLOCATE:
		return fallocate(hio->fd, hio->mode, hio->off, hio->len) < 0 ? -errno : 0;
	}
	return -EINVAL;
}

int (*blk_host_io_hook)(const struct host_io *hio);

void host_io_submit(struct blk_queue *q, struct host_io *hio)
{
	hio->bounce = NULL;
	hio->next = NULL;
	if (blk_host_io_hook) {
		int r = blk_host_io_hook(hio);

		if (r) {
			host_io_fail(q, hio, r);
			return;
		}
	}
	q->engine->submit(q, hio);
}

unsigned host_io_complete_list(struct host_io *hio)
{
	struct host_io *next;
	unsigned n = 0;

	for (; hio; hio = next, n++) {
		next = hio->next;
		hio->cb(hio, hio->ret);
	}
	return n;
}

void host_io_fail(struct blk_queue *q, struct host_io *hio, int ret)
{
	hio->ret = ret;
	hio->next = q->failed;
	q->failed = hio;
	blk_queue_signal(q);
}

void blk_host_io_init(struct host_io *hio, struct blk_dev *dev, enum host_op op,
		      uint64_t off, struct iovec *iov, unsigned iovcnt)
{
	memset(hio, 0, sizeof(*hio));
	hio->op = op;
	hio->fd = dev->fd;
	hio->off = off;
	hio->iov = iov;
	hio->iovcnt = iovcnt;
	hio->dio_align = dev->direct ? dev->dio_align : 0;
}

/* ---- synchronous metadata access ---- */

static int raw_rw(struct blk_dev *dev, bool write, void *buf, uint64_t len, uint64_t off)
{
	struct iovec iov = { buf, len };
	struct host_io h;

	blk_host_io_init(&h, dev, write ? HOST_WRITE : HOST_READ, off, &iov, 1);
	h.dio_align = 0; /* callers pass aligned buffers when direct */
	return host_io_exec(&h);
}

static int file_rw(struct blk_dev *dev, bool write, void *buf, uint64_t len, uint64_t off)
{
	uint64_t a = dev->direct ? dev->dio_align : 1;
	uint64_t start, end;
	uint8_t *b;
	int r;

	if (a <= 1 || (IS_ALIGNED(off, a) && IS_ALIGNED(len, a) && IS_ALIGNED((uintptr_t)buf, a)))
		return raw_rw(dev, write, buf, len, off);
	start = ALIGN_DOWN(off, a);
	end = ALIGN_UP(off + len, a);
	b = blk_alloc_aligned(end - start);
	if (!b)
		return -ENOMEM;
	/* Read-modify-write of the aligned span around an unaligned write. */
	r = (!write || start != off || end != off + len) ?
		raw_rw(dev, false, b, end - start, start) : 0;
	if (!r && write) {
		memcpy(b + (off - start), buf, len);
		r = raw_rw(dev, true, b, end - start, start);
	} else if (!r) {
		memcpy(buf, b + (off - start), len);
	}
	free(b);
	return r;
}

int blk_file_pread(struct blk_dev *dev, void *buf, uint64_t len, uint64_t off)
{
	return file_rw(dev, false, buf, len, off);
}

int blk_file_pwrite(struct blk_dev *dev, const void *buf, uint64_t len, uint64_t off)
{
	blk_dev_mark_written(dev);
	return file_rw(dev, true, (void *)buf, len, off);
}

int blk_file_sync(struct blk_dev *dev)
{
	if (dev->cache == BLK_CACHE_UNSAFE)
		return 0;
	return fdatasync(dev->fd) < 0 ? -errno : 0;
}

int64_t blk_file_size(struct blk_dev *dev)
{
	struct stat st;
	uint64_t sz;

	if (fstat(dev->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(dev->fd, BLKGETSIZE64, &sz) < 0)
			return -errno;
		return sz;
	}
	return st.st_size;
}

int blk_open_file(struct blk_dev *dev, const char *path, bool read_only,
		  enum blk_cache cache, char *err, size_t errlen)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int r;

	if (cache == BLK_CACHE_NONE)
		flags |= O_DIRECT;
	dev->fd = open(path, flags);
	if (dev->fd < 0) {
		r = -errno;
		if (r == -EINVAL && (flags & O_DIRECT))
			blk_set_err(err, errlen, "%s: the file system does not support "
				    "O_DIRECT (cache=none); use cache=writeback", path);
		else
			blk_set_err(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (fstat(dev->fd, &st) < 0) {
		r = -errno;
		blk_set_err(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		blk_set_err(err, errlen, "%s: not a regular file or block device", path);
		return -EINVAL;
	}
	dev->st_dev = st.st_dev;
	dev->st_ino = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_ino;
	dev->direct = flags & O_DIRECT;
	dev->dio_align = 512;
	if (S_ISBLK(st.st_mode)) {
		int ssz;

		if (ioctl(dev->fd, BLKSSZGET, &ssz) == 0 && ssz >= 512 && ssz <= 65536)
			dev->dio_align = ssz;
	} else if (dev->direct) {
#ifdef STATX_DIOALIGN
		struct statx sx;

		if (statx(dev->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
		    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align >= 512 &&
		    sx.stx_dio_offset_align <= 65536)
			dev->dio_align = sx.stx_dio_offset_align;
#endif
	}
	return 0;
}
