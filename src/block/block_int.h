/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the block layer: the format-driver table, the I/O engine table, and
 * the two units of work that flow between them.
 *
 *   blk_io   a request as a format driver sees it: an op on a blk_dev over a
 *            byte range with an iovec. The caller's blk_req becomes one; a
 *            driver may create child blk_ios (a qcow2 read of an unallocated
 *            cluster becomes a read of the backing blk_dev).
 *   host_io  one system call's worth of work on a file descriptor (preadv,
 *            pwritev, fdatasync, fallocate), executed by the queue's engine.
 *
 * Everything of a queue (its blk_ios, host_ios, lists) is touched only by
 * the thread that drives the queue, except q->remote (cross-queue wake-ups,
 * under q->remote_lock) and the worker pool's hand-off lists.
 */
#ifndef KEEL_BLOCK_INT_H
#define KEEL_BLOCK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "keel/block.h"

struct blk_io;
struct host_io;

enum host_op {
	HOST_READ,
	HOST_WRITE,
	HOST_FDATASYNC,
	HOST_FALLOCATE, /* fallocate(fd, mode, off, len) */
};

struct host_io {
	enum host_op op;
	int fd;
	int mode;            /* HOST_FALLOCATE mode; HOST_WRITE: RWF_* flags */
	uint64_t off, len;   /* len: FALLOCATE only */
	struct iovec *iov;
	unsigned iovcnt;
	uint32_t dio_align;  /* fd is O_DIRECT with this buffer alignment (the
				engine bounces misaligned buffers); 0: not */
	void (*cb)(struct host_io *hio, int ret);
	void *opaque;
	/* engine-private */
	int ret;
	void *bounce;
	struct iovec bounce_iov;
	struct host_io *next;
};

/* An I/O engine: one instance per queue (state in q->engine). */
struct blk_engine_ops {
	const char *name;
	int (*init)(struct blk_queue *q, unsigned depth);
	void (*fini)(struct blk_queue *q);
	/* Queue a host_io; it must not complete before kick. */
	void (*submit)(struct blk_queue *q, struct host_io *hio);
	void (*kick)(struct blk_queue *q);
	/* Run the callbacks of finished host_ios; never blocks. Engines
	   signal q->efd when host_ios finish. */
	unsigned (*reap)(struct blk_queue *q);
};

extern const struct blk_engine_ops blk_engine_uring;
extern const struct blk_engine_ops blk_engine_threads;
extern const struct blk_engine_ops blk_engine_sync;

typedef void (*blk_io_cb)(struct blk_io *io, int ret);

#define BLK_IO_INLINE_IOV 4

struct blk_io {
	struct blk_dev *dev;
	struct blk_queue *q;
	enum blk_op op;
	uint32_t flags;
	uint64_t offset, len;
	struct iovec *iov;
	unsigned iovcnt;
	blk_io_cb cb;        /* called once when the io is done */
	void *opaque;        /* the issuer's (parent io, or the blk_req) */
	/* for drivers: a small state machine per io */
	int pending;         /* outstanding sub-operations */
	int ret;             /* first error among them */
	int state;
	uint64_t u[4];
	void *p[2];
	struct blk_io *next;  /* waiting lists, free list */
	struct host_io hio;   /* the one host I/O most drivers need */
	struct iovec inline_iov[BLK_IO_INLINE_IOV];
};

/* A format driver. */
struct blk_driver {
	const char *name;
	/* Fills dev->size and the info fields; err gets one line. */
	int (*open)(struct blk_dev *dev, const struct blk_open_opts *opts,
		    char *err, size_t errlen);
	int (*close)(struct blk_dev *dev);
	/* Start an io; complete it with blk_io_complete() (maybe later). */
	void (*submit)(struct blk_io *io);
	/* Optional (block.h, "Handing an image over"): write back what is
	   held / forget it and read the metadata again. */
	int (*inactivate)(struct blk_dev *dev);
	int (*activate)(struct blk_dev *dev, char *err, size_t errlen);
};

extern const struct blk_driver blk_driver_raw;
extern const struct blk_driver blk_driver_qcow2;

struct blk_dev {
	const struct blk_driver *drv;
	char *path;
	int fd;
	bool direct;              /* fd has O_DIRECT */
	bool read_only;
	enum blk_cache cache;
	enum blk_aio aio;
	struct blk_info info;
	uint32_t dio_align;       /* buffer/offset alignment O_DIRECT needs */
	struct blk_dev *backing;  /* NULL: none */
	struct blk_dev *overlay;  /* the image whose backing this is */
	unsigned depth;           /* 0 for the top image */
	uint64_t st_dev, st_ino;  /* to detect backing loops */
	void *priv;               /* the driver's */
	bool inactive;            /* handed over: no request, no write (block.h) */
	bool written;             /* a write reached the file since open; set
				     from several queue threads: use
				     blk_dev_mark_written() */
};

struct blk_queue {
	struct blk_dev *dev;
	const struct blk_engine_ops *engine;
	void *engine_state;
	int efd;                  /* completion eventfd */
	unsigned inflight;        /* public requests not yet completed */
	struct blk_io *submitted, **submitted_tail; /* waiting for kick */
	struct blk_io *done_head, **done_tail;      /* completed, cb pending */
	struct blk_io *free_ios;
	/* Ios parked by another queue's thread (a qcow2 cluster allocation
	   they waited on has finished); re-dispatched by process(). */
	struct host_io *failed;   /* host_ios failed before reaching the engine */
	pthread_mutex_t remote_lock;
	struct blk_io *remote;
	bool in_process;
	bool eager;               /* blk_queue_set_eager() */
};

static inline void blk_dev_mark_written(struct blk_dev *dev)
{
	__atomic_store_n(&dev->written, true, __ATOMIC_RELAXED);
}

/* Completion plumbing. */
void blk_io_complete(struct blk_io *io, int ret);
struct blk_io *blk_io_alloc(struct blk_queue *q);
void blk_io_free(struct blk_io *io);
/* A child io over [off, off+len) of parent->iov starting at iov_skip. */
struct blk_io *blk_io_child(struct blk_io *parent, struct blk_dev *dev,
			    enum blk_op op, uint64_t offset,
			    uint64_t iov_skip, uint64_t len, blk_io_cb cb);
/* Start an io on its device (the driver's submit). */
void blk_io_dispatch(struct blk_io *io);
/* Hand an io to q's thread from another thread (it is dispatched again). */
void blk_queue_post_remote(struct blk_queue *q, struct blk_io *io);
void blk_queue_signal(struct blk_queue *q);

/* Host I/O through the queue's engine. */
void host_io_submit(struct blk_queue *q, struct host_io *hio);
/* Runs the callbacks of a list of finished host_ios; returns how many. */
unsigned host_io_complete_list(struct host_io *list);
/* Completes hio with ret from the queue's next process() (never inline). */
void host_io_fail(struct blk_queue *q, struct host_io *hio, int ret);
/* Synchronous execution of one host_io (threads/sync engines, metadata). */
int host_io_exec(struct host_io *hio);
/* Finishes a read/write from byte `done` on synchronously (short I/O). */
int host_io_rw_from(struct host_io *hio, uint64_t done);
/* Called by engines before running / after finishing an io: bounces
   misaligned buffers on O_DIRECT fds. */
int host_io_prepare(struct host_io *hio);
void host_io_finish(struct host_io *hio);
/* The iovec the system call must use (the bounce buffer, or hio->iov). */
static inline const struct iovec *host_io_iov(const struct host_io *hio, unsigned *cnt)
{
	*cnt = hio->bounce ? 1 : hio->iovcnt;
	return hio->bounce ? &hio->bounce_iov : hio->iov;
}

/*
 * Fault-injection and observation seam for tests: when set, called for
 * every host_io before the engine sees it (on the queue's thread). A
 * non-zero return fails that host_io with it instead of running it.
 */
extern int (*blk_host_io_hook)(const struct host_io *hio);

/* Synchronous, alignment-safe file access for metadata (any offset/len). */
int blk_file_pread(struct blk_dev *dev, void *buf, uint64_t len, uint64_t off);
int blk_file_pwrite(struct blk_dev *dev, const void *buf, uint64_t len, uint64_t off);
/* Same host_io setup a driver uses for data, with dev's fd and alignment. */
void blk_host_io_init(struct host_io *hio, struct blk_dev *dev, enum host_op op,
		      uint64_t off, struct iovec *iov, unsigned iovcnt);
int blk_file_sync(struct blk_dev *dev);
int64_t blk_file_size(struct blk_dev *dev);
void *blk_alloc_aligned(size_t len);

/* iovec helpers */
uint64_t iov_total(const struct iovec *iov, unsigned n);
void iov_memset(const struct iovec *iov, unsigned n, uint64_t skip, int c, uint64_t len);
void iov_to_buf(const struct iovec *iov, unsigned n, uint64_t skip, void *buf, uint64_t len);
void iov_from_buf(const struct iovec *iov, unsigned n, uint64_t skip, const void *buf, uint64_t len);
/* Fills dst (capacity cap) with the slice [skip, skip+len); count or -1. */
int iov_slice(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len,
	      struct iovec *dst, unsigned cap);
/* Same, into io->iov (inline or allocated). 0 or -ENOMEM. */
int blk_io_set_iov(struct blk_io *io, const struct iovec *src, unsigned n,
		   uint64_t skip, uint64_t len);

/* Open a file for a blk_dev per the options (O_DIRECT, O_DSYNC...). */
int blk_open_file(struct blk_dev *dev, const char *path, bool read_only,
		  enum blk_cache cache, char *err, size_t errlen);
/* Open a backing file for dev (qcow2) with dev's cache/aio, read-only. */
int blk_open_backing(struct blk_dev *dev, const char *path, enum blk_format fmt,
		     unsigned depth, char *err, size_t errlen);

#define DIV_ROUND_UP_U64(a, b) (((a) + (b) - 1) / (b))

#define BLK_MAX_CHAIN 256 /* backing chain depth; deeper is a loop */

void blk_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
