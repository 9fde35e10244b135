// SPDX-License-Identifier: Apache-2.0
/*
 * The public side of the block layer: opening images, queues, and the path
 * of a request from blk_queue_submit() to its callback.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk_img.h"
#include "block_int.h"
#include "keel/compiler.h"
#include "keel/log.h"

void blk_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const struct blk_driver *probe_format(struct blk_dev *dev, enum blk_format fmt)
{
	uint8_t hdr[8];

	if (fmt == BLK_FORMAT_RAW)
		return &blk_driver_raw;
	if (fmt == BLK_FORMAT_QCOW2)
		return &blk_driver_qcow2;
	/* The probe recognises qcow2 only: magic and a version we know. */
	if (blk_file_pread(dev, hdr, sizeof(hdr), 0) == 0 &&
	    !memcmp(hdr, "QFI\xfb", 4) && hdr[4] == 0 && hdr[5] == 0 && hdr[6] == 0 &&
	    (hdr[7] == 2 || hdr[7] == 3))
		return &blk_driver_qcow2;
	return &blk_driver_raw;
}

static int open_chain(const struct blk_open_opts *opts, struct blk_dev *overlay,
		      struct blk_dev **out, char *err, size_t errlen)
{
	struct blk_dev *dev = calloc(1, sizeof(*dev));
	int r;

	if (!dev)
		return -ENOMEM;
	dev->fd = -1;
	dev->overlay = overlay;
	dev->depth = overlay ? overlay->depth + 1 : 0;
	dev->cache = opts->cache;
	dev->aio = opts->aio;
	dev->read_only = opts->read_only;
	dev->path = strdup(opts->path);
	if (!dev->path) {
		free(dev);
		return -ENOMEM;
	}
	r = blk_open_file(dev, opts->path, opts->read_only, opts->cache, err, errlen);
	if (r)
		goto fail;
	for (struct blk_dev *o = overlay; o; o = o->overlay) {
		if (o->st_dev == dev->st_dev && o->st_ino == dev->st_ino) {
			blk_set_err(err, errlen, "%s: backing chain loops back to %s",
				    overlay->path, opts->path);
			r = -ELOOP;
			goto fail;
		}
	}
	if (dev->depth >= BLK_MAX_CHAIN) {
		blk_set_err(err, errlen, "%s: backing chain deeper than %d images",
			    opts->path, BLK_MAX_CHAIN);
		r = -ELOOP;
		goto fail;
	}
	dev->inactive = opts->flags & BLK_OPEN_INACTIVE;
	dev->drv = probe_format(dev, opts->format);
	dev->info.read_only = opts->read_only;
	dev->info.format = dev->drv->name;
	r = dev->drv->open(dev, opts, err, errlen);
	if (r) {
		/* The driver frees what it had set up (nothing was written). */
		dev->drv->close(dev);
		dev->drv = NULL;
		goto fail;
	}
	*out = dev;
	return 0;
fail:
	blk_close(dev);
	return r;
}

int blk_open(const struct blk_open_opts *opts, struct blk_dev **out, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!opts || !opts->path || !opts->path[0]) {
		blk_set_err(err, errlen, "no image path given");
		return -EINVAL;
	}
	return open_chain(opts, NULL, out, err, errlen);
}

int blk_open_backing(struct blk_dev *dev, const char *path, enum blk_format fmt,
		     unsigned depth, char *err, size_t errlen)
{
	struct blk_open_opts o = {
		.path = path, .format = fmt, .read_only = true,
		.cache = dev->cache, .aio = dev->aio,
	};
	(void)depth;
	return open_chain(&o, dev, &dev->backing, err, errlen);
}

int blk_close(struct blk_dev *dev)
{
	int r = 0;

	if (!dev)
		return 0;
	if (dev->drv)
		r = dev->drv->close(dev);
	if (dev->backing)
		blk_close(dev->backing);
	if (dev->fd >= 0)
		close(dev->fd);
	free(dev->path);
	free(dev);
	return r;
}

int blk_inactivate(struct blk_dev *dev, char *err, size_t errlen)
{
	int r = 0;

	if (err && errlen)
		err[0] = 0;
	if (dev->inactive)
		return 0;
	if (dev->drv->inactivate)
		r = dev->drv->inactivate(dev);
	/* Raw data in this host's page cache must reach what the other host reads. */
	if (!r && !dev->read_only && dev->written)
		r = blk_file_sync(dev);
	if (r) {
		blk_set_err(err, errlen, "%s: cannot write the image back: %s", dev->path,
			    strerror(-r));
		return r;
	}
	dev->inactive = true;
	return 0;
}

int blk_activate(struct blk_dev *dev, char *err, size_t errlen)
{
	int r = 0;

	if (err && errlen)
		err[0] = 0;
	if (!dev->inactive)
		return 0;
	if (dev->drv->activate)
		r = dev->drv->activate(dev, err, errlen);
	if (r)
		return r;
	dev->inactive = false;
	return 0;
}

bool blk_is_active(const struct blk_dev *dev)
{
	return !dev->inactive;
}

void blk_get_info(const struct blk_dev *dev, struct blk_info *info)
{
	*info = dev->info;
}

const char *blk_dev_name(const struct blk_dev *dev)
{
	return dev->path;
}

/* ---- queues ---- */

int blk_queue_create(struct blk_dev *dev, unsigned depth, struct blk_queue **out)
{
	struct blk_queue *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return -ENOMEM;
	q->dev = dev;
	q->submitted_tail = &q->submitted;
	q->done_tail = &q->done_head;
	pthread_mutex_init(&q->remote_lock, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		r = -errno;
		free(q);
		return r;
	}
	switch (dev->aio) {
	case BLK_AIO_IO_URING: q->engine = &blk_engine_uring; break;
	case BLK_AIO_THREADS: q->engine = &blk_engine_threads; break;
	default: q->engine = &blk_engine_sync; break;
	}
	r = q->engine->init(q, depth ? depth : 64);
	if (r) {
		close(q->efd);
		free(q);
		return r;
	}
	*out = q;
	return 0;
}

void blk_queue_destroy(struct blk_queue *q)
{
	struct blk_io *io;

	if (!q)
		return;
	blk_queue_drain(q);
	q->engine->fini(q);
	while ((io = q->free_ios)) {
		q->free_ios = io->next;
		free(io);
	}
	pthread_mutex_destroy(&q->remote_lock);
	close(q->efd);
	free(q);
}

void blk_queue_set_eager(struct blk_queue *q, bool on)
{
	q->eager = on;
}

int blk_queue_fd(const struct blk_queue *q)
{
	return q->efd;
}

unsigned blk_queue_inflight(const struct blk_queue *q)
{
	return q->inflight;
}

void blk_queue_signal(struct blk_queue *q)
{
	uint64_t one = 1;

	if (write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort(); /* an eventfd write only fails on overflow or EBADF */
}

struct blk_io *blk_io_alloc(struct blk_queue *q)
{
	struct blk_io *io = q->free_ios;

	if (io)
		q->free_ios = io->next;
	else if (!(io = malloc(sizeof(*io))))
		return NULL;
	memset(io, 0, offsetof(struct blk_io, inline_iov));
	io->q = q;
	return io;
}

void blk_io_free(struct blk_io *io)
{
	struct blk_queue *q = io->q;

	if (io->iov && io->iov != io->inline_iov)
		free(io->iov);
	io->iov = NULL;
	io->next = q->free_ios;
	q->free_ios = io;
}

int blk_io_set_iov(struct blk_io *io, const struct iovec *src, unsigned n,
		   uint64_t skip, uint64_t len)
{
	int cnt = iov_slice(src, n, skip, len, io->inline_iov, BLK_IO_INLINE_IOV);

	if (cnt >= 0) {
		io->iov = io->inline_iov;
		io->iovcnt = cnt;
		return 0;
	}
	io->iov = malloc(sizeof(*io->iov) * n);
	if (!io->iov)
		return -ENOMEM;
	cnt = iov_slice(src, n, skip, len, io->iov, n);
	io->iovcnt = cnt < 0 ? 0 : cnt;
	return 0;
}

struct blk_io *blk_io_child(struct blk_io *parent, struct blk_dev *dev,
			    enum blk_op op, uint64_t offset,
			    uint64_t iov_skip, uint64_t len, blk_io_cb cb)
{
	struct blk_io *io = blk_io_alloc(parent->q);

	if (!io)
		return NULL;
	io->dev = dev;
	io->op = op;
	io->offset = offset;
	io->len = len;
	io->cb = cb;
	io->opaque = parent;
	if (parent->iov && blk_io_set_iov(io, parent->iov, parent->iovcnt, iov_skip, len)) {
		blk_io_free(io);
		return NULL;
	}
	return io;
}

void blk_io_complete(struct blk_io *io, int ret)
{
	io->cb(io, ret);
}

static int validate(struct blk_io *io)
{
	const struct blk_info *in = &io->dev->info;
	uint64_t lbs = in->logical_block_size;
	uint64_t size = ALIGN_UP(in->size, lbs); /* a raw file's partial tail */

	/* Handed over (or not yet taken): the file is another process's. */
	if (io->dev->inactive)
		return -EIO;
	switch (io->op) {
	case BLK_OP_FLUSH:
		return 0;
	case BLK_OP_READ:
		break;
	case BLK_OP_WRITE:
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (io->dev->read_only)
			return -EROFS;
		if (io->op == BLK_OP_DISCARD && !in->can_discard)
			return -ENOTSUP;
		if (io->op == BLK_OP_WRITE_ZEROES && !in->can_write_zeroes)
			return -ENOTSUP;
		break;
	default:
		return -EINVAL;
	}
	if (io->offset % lbs || io->len % lbs || io->offset > size ||
	    io->len > size - io->offset)
		return -EINVAL;
	return 0;
}

void blk_io_dispatch(struct blk_io *io)
{
	int r = validate(io);

	if (r) {
		blk_io_complete(io, r);
		return;
	}
	if (io->len == 0 && io->op != BLK_OP_FLUSH) {
		blk_io_complete(io, 0);
		return;
	}
	io->dev->drv->submit(io);
}

/* A public request finished: park it until process() runs its callback. */
static void top_done(struct blk_io *io, int ret)
{
	struct blk_queue *q = io->q;

	io->ret = ret;
	io->next = NULL;
	*q->done_tail = io;
	q->done_tail = &io->next;
}

void blk_queue_submit(struct blk_queue *q, struct blk_req *req)
{
	struct blk_io *io = blk_io_alloc(q);

	q->inflight++;
	req->internal = io;
	if (!io) {
		/* A few hundred bytes could not be had: nothing sane is left. */
		log_error("block: out of memory for a request");
		abort();
	}
	io->dev = q->dev;
	io->op = req->op;
	io->flags = req->flags;
	io->offset = req->offset;
	io->cb = top_done;
	io->opaque = req;
	if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) {
		if (req->iovcnt > BLK_MAX_IOV) {
			io->op = (enum blk_op)-1; /* validate() rejects it */
		} else {
			io->iov = (struct iovec *)req->iov;
			io->iovcnt = req->iovcnt;
			io->len = iov_total(req->iov, req->iovcnt);
		}
	} else {
		io->len = req->len;
	}
	/* Writethrough: every write is a FUA write (block.h, Durability). */
	if (q->dev->cache == BLK_CACHE_WRITETHROUGH &&
	    (io->op == BLK_OP_WRITE || io->op == BLK_OP_WRITE_ZEROES ||
	     io->op == BLK_OP_DISCARD))
		io->flags |= BLK_REQ_FUA;
	if (q->dev->cache == BLK_CACHE_UNSAFE)
		io->flags &= ~BLK_REQ_FUA;
	io->next = NULL;
	*q->submitted_tail = io;
	q->submitted_tail = &io->next;
}

static unsigned dispatch_submitted(struct blk_queue *q)
{
	struct blk_io *io = q->submitted, *next;
	unsigned n = 0;

	q->submitted = NULL;
	q->submitted_tail = &q->submitted;
	for (; io; io = next, n++) {
		next = io->next;
		io->next = NULL;
		/* The public iov belongs to the caller: top ios never free it. */
		blk_io_dispatch(io);
	}
	return n;
}

static unsigned dispatch_remote(struct blk_queue *q)
{
	struct blk_io *io, *next;
	unsigned n = 0;

	pthread_mutex_lock(&q->remote_lock);
	io = q->remote;
	q->remote = NULL;
	pthread_mutex_unlock(&q->remote_lock);
	for (; io; io = next, n++) {
		next = io->next;
		io->next = NULL;
		io->dev->drv->submit(io);
	}
	return n;
}

void blk_queue_post_remote(struct blk_queue *q, struct blk_io *io)
{
	pthread_mutex_lock(&q->remote_lock);
	io->next = q->remote;
	q->remote = io;
	pthread_mutex_unlock(&q->remote_lock);
	blk_queue_signal(q);
}

void blk_queue_kick(struct blk_queue *q)
{
	dispatch_submitted(q);
	q->engine->kick(q);
	/* Completions produced without the engine (errors, zero reads) must
	   still wake the poller. */
	if (q->done_head && !q->in_process)
		blk_queue_signal(q);
}

static unsigned run_failed(struct blk_queue *q)
{
	struct host_io *hio = q->failed;

	q->failed = NULL;
	return host_io_complete_list(hio);
}

static unsigned run_callbacks(struct blk_queue *q)
{
	unsigned n = 0;

	while (q->done_head) {
		struct blk_io *io = q->done_head;
		struct blk_req *req = io->opaque;
		int ret = io->ret;

		q->done_head = io->next;
		if (!q->done_head)
			q->done_tail = &q->done_head;
		io->iov = NULL; /* the caller's */
		blk_io_free(io);
		req->internal = NULL;
		q->inflight--;
		req->done(req, ret);
		n++;
	}
	return n;
}

unsigned blk_queue_process(struct blk_queue *q)
{
	uint64_t v;

	if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return 0;
	return blk_queue_poll(q);
}

unsigned blk_queue_poll(struct blk_queue *q)
{
	unsigned done = 0;

	q->in_process = true;
	for (;;) {
		unsigned progress = dispatch_remote(q) + dispatch_submitted(q);
		unsigned n;

		q->engine->kick(q);
		progress += q->engine->reap(q) + run_failed(q);
		n = run_callbacks(q);
		done += n;
		if (!progress && !n)
			break;
	}
	q->in_process = false;
	return done;
}

unsigned blk_queue_wait(struct blk_queue *q)
{
	for (;;) {
		struct pollfd p = { .fd = q->efd, .events = POLLIN };
		unsigned n;

		blk_queue_kick(q);
		n = blk_queue_process(q);
		if (n || !q->inflight)
			return n;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return 0;
	}
}

void blk_queue_drain(struct blk_queue *q)
{
	blk_queue_kick(q);
	while (q->inflight)
		blk_queue_wait(q);
}

/* ---- synchronous helpers ---- */

struct sync_req {
	struct blk_req req;
	bool done;
	int ret;
};

static void sync_done(struct blk_req *req, int ret)
{
	struct sync_req *s = container_of(req, struct sync_req, req);

	s->done = true;
	s->ret = ret;
}

static int run_sync(struct blk_queue *q, struct sync_req *s)
{
	s->req.done = sync_done;
	blk_queue_submit(q, &s->req);
	blk_queue_kick(q);
	while (!s->done)
		blk_queue_wait(q);
	return s->ret;
}

int blk_pread(struct blk_queue *q, void *buf, uint64_t len, uint64_t offset)
{
	struct iovec iov = { buf, len };
	struct sync_req s = { .req = { .op = BLK_OP_READ, .offset = offset,
				       .iov = &iov, .iovcnt = 1 } };

	return run_sync(q, &s);
}

int blk_pwrite(struct blk_queue *q, const void *buf, uint64_t len, uint64_t offset)
{
	struct iovec iov = { (void *)buf, len };
	struct sync_req s = { .req = { .op = BLK_OP_WRITE, .offset = offset,
				       .iov = &iov, .iovcnt = 1 } };

	return run_sync(q, &s);
}

int blk_flush(struct blk_queue *q)
{
	struct sync_req s = { .req = { .op = BLK_OP_FLUSH } };

	return run_sync(q, &s);
}

int blk_op_sync(struct blk_queue *q, enum blk_op op, uint32_t flags,
		uint64_t offset, uint64_t len)
{
	struct sync_req s = { .req = { .op = op, .flags = flags, .offset = offset,
				       .len = len } };

	return run_sync(q, &s);
}

/* ---- names ---- */

static const char *const cache_names[] = {
	[BLK_CACHE_WRITEBACK] = "writeback", [BLK_CACHE_WRITETHROUGH] = "writethrough",
	[BLK_CACHE_NONE] = "none", [BLK_CACHE_UNSAFE] = "unsafe",
};
static const char *const aio_names[] = {
	[BLK_AIO_IO_URING] = "io_uring", [BLK_AIO_THREADS] = "threads",
	[BLK_AIO_SYNC] = "sync",
};

int blk_cache_parse(const char *s, enum blk_cache *out)
{
	for (unsigned i = 0; i < ARRAY_SIZE(cache_names); i++)
		if (!strcmp(s, cache_names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

int blk_aio_parse(const char *s, enum blk_aio *out)
{
	for (unsigned i = 0; i < ARRAY_SIZE(aio_names); i++)
		if (!strcmp(s, aio_names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

int blk_format_parse(const char *s, enum blk_format *out)
{
	if (!strcmp(s, "raw"))
		*out = BLK_FORMAT_RAW;
	else if (!strcmp(s, "qcow2"))
		*out = BLK_FORMAT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

const char *blk_cache_name(enum blk_cache c)
{
	return (unsigned)c < ARRAY_SIZE(cache_names) ? cache_names[c] : "?";
}

const char *blk_aio_name(enum blk_aio a)
{
	return (unsigned)a < ARRAY_SIZE(aio_names) ? aio_names[a] : "?";
}
