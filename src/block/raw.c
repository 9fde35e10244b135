// SPDX-License-Identifier: Apache-2.0
/*
 * The raw format: guest offset = file offset. Discard punches a hole;
 * write-zeroes uses fallocate (falling back to writing zeroes); FUA writes
 * carry RWF_DSYNC so a writethrough disk costs one system call per write.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "block_int.h"
#include "keel/compiler.h"

static int raw_open(struct blk_dev *dev, const struct blk_open_opts *opts,
		    char *err, size_t errlen)
{
	int64_t size = blk_file_size(dev);
	struct stat st;

	if (size < 0) {
		blk_set_err(err, errlen, "%s: cannot get the size: %s", dev->path,
			    strerror((int)-size));
		return (int)size;
	}
	dev->info.size = size;
	dev->info.logical_block_size = dev->direct ? MAX(dev->dio_align, 512u) : 512;
	dev->info.physical_block_size = MAX(dev->info.logical_block_size, 4096u);
	if (fstat(dev->fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		unsigned pbs;

		if (ioctl(dev->fd, BLKPBSZGET, &pbs) == 0 && pbs >= 512 && pbs <= 65536)
			dev->info.physical_block_size = pbs;
	}
	dev->info.discard_granularity = dev->info.physical_block_size;
	dev->info.opt_io_size = 0;
	dev->info.can_discard = true;
	dev->info.can_write_zeroes = true;
	return 0;
}

static int raw_close(struct blk_dev *dev)
{
	if (!dev->read_only && dev->written && !dev->inactive)
		return blk_file_sync(dev);
	return 0;
}

/* The fallback when the file system cannot fallocate zeroes. */
static int write_zeroes_slow(struct blk_dev *dev, uint64_t off, uint64_t len)
{
	const uint64_t chunk = 1 * MiB;
	void *z = blk_alloc_aligned(chunk);
	int r = 0;

	if (!z)
		return -ENOMEM;
	memset(z, 0, chunk);
	while (len && !r) {
		uint64_t n = MIN(len, chunk);

		r = blk_file_pwrite(dev, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

static void raw_io_done(struct host_io *hio, int ret);

static void raw_start(struct blk_io *io, enum host_op op)
{
	struct blk_dev *dev = io->dev;

	blk_host_io_init(&io->hio, dev, op, io->offset, io->iov, io->iovcnt);
	io->hio.cb = raw_io_done;
	io->hio.opaque = io;
	io->hio.len = io->len;
	host_io_submit(io->q, &io->hio);
}

/* io->state: 0 the main host_io, 1 the fdatasync after a FUA fallocate. */
static void raw_io_done(struct host_io *hio, int ret)
{
	struct blk_io *io = hio->opaque;

	if (io->state == 0 && hio->op == HOST_FALLOCATE) {
		if (ret == -EOPNOTSUPP || ret == -EINVAL) {
			/* Discard is a hint; zeroes must still be written. */
			ret = io->op == BLK_OP_DISCARD ? 0 :
				write_zeroes_slow(io->dev, io->offset, io->len);
		}
		if (!ret && (io->flags & BLK_REQ_FUA) && io->dev->cache != BLK_CACHE_UNSAFE) {
			io->state = 1;
			raw_start(io, HOST_FDATASYNC);
			return;
		}
	}
	blk_io_complete(io, ret);
}

static void raw_submit(struct blk_io *io)
{
	struct blk_dev *dev = io->dev;
	int mode;

	io->state = 0;
	switch (io->op) {
	case BLK_OP_READ:
		raw_start(io, HOST_READ);
		return;
	case BLK_OP_WRITE:
		blk_dev_mark_written(dev);
		blk_host_io_init(&io->hio, dev, HOST_WRITE, io->offset, io->iov, io->iovcnt);
		io->hio.mode = (io->flags & BLK_REQ_FUA) ? RWF_DSYNC : 0;
		io->hio.cb = raw_io_done;
		io->hio.opaque = io;
		host_io_submit(io->q, &io->hio);
		return;
	case BLK_OP_FLUSH:
		if (dev->cache == BLK_CACHE_UNSAFE || dev->read_only) {
			blk_io_complete(io, 0);
			return;
		}
		raw_start(io, HOST_FDATASYNC);
		return;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		blk_dev_mark_written(dev);
		mode = FALLOC_FL_KEEP_SIZE;
		if (io->op == BLK_OP_DISCARD || (io->flags & BLK_REQ_UNMAP))
			mode |= FALLOC_FL_PUNCH_HOLE;
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		blk_host_io_init(&io->hio, dev, HOST_FALLOCATE, io->offset, NULL, 0);
		io->hio.mode = mode;
		io->hio.len = io->len;
		io->hio.cb = raw_io_done;
		io->hio.opaque = io;
		host_io_submit(io->q, &io->hio);
		return;
	}
	blk_io_complete(io, -EINVAL);
}

const struct blk_driver blk_driver_raw = {
	.name = "raw",
	.open = raw_open,
	.close = raw_close,
	.submit = raw_submit,
};
