/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The block layer: disk images (raw, qcow2 with backing chains) behind one
 * asynchronous request interface. This is the contract virtio-blk programs
 * against; keel-img uses the same calls.
 *
 * Objects
 *   struct blk_dev    an opened image (and, for qcow2, its backing chain).
 *   struct blk_queue  a submission/completion context on a blk_dev. One per
 *                     virtqueue (or per I/O thread). Each queue owns its own
 *                     I/O engine instance (an io_uring ring, or a slot in the
 *                     worker pool) and its own completion eventfd, so queues
 *                     never contend for a completion path.
 *   struct blk_req    one request, allocated and owned by the caller.
 *
 * Threading
 *   - blk_open()/blk_close() run on one thread with no queue alive.
 *   - blk_get_info() and blk_dev_name() may be called from any thread.
 *   - A blk_queue is single-threaded: blk_queue_submit/kick/process/drain on
 *     one queue must not run concurrently (typically the queue's I/O thread
 *     or the event loop owns it). Different queues of one blk_dev may be
 *     driven from different threads at the same time; the format driver
 *     serialises its metadata internally.
 *   - Completion callbacks run only inside blk_queue_process() or
 *     blk_queue_drain() on the thread calling them, never inside submit,
 *     so a callback may submit new requests on the same queue.
 *
 * Request lifetime
 *   From blk_queue_submit() until its `done` callback returns, the block
 *   layer may read req and the iovec array and may read (WRITE) or write
 *   (READ) the buffers they describe; the caller must not touch or free
 *   them. Every submitted request completes exactly once, errors included
 *   (a bad offset completes with -EINVAL through the callback, it is not
 *   returned by submit).
 *
 * Results (the `ret` of done): 0 on success, or -errno:
 *   -EINVAL  offset/length not a multiple of the logical block size, or past
 *            the end of the device, or an unknown op
 *   -EROFS   a write, discard or write-zeroes on a read-only device
 *   -EIO     the device is inactive (handed over, below), or
 *            the host I/O failed, or the image metadata is corrupt (the
 *            driver logs why once; a qcow2 image found corrupt stays open
 *            read-only and fails writes from then on)
 *   -ENOSPC  the host file system is full
 *   -ENOTSUP discard or write-zeroes where blk_info says unsupported
 *   A guest can trigger every one of these; none is fatal to the process.
 *
 * Durability (exact, per cache mode; the cache mode is fixed at open)
 *   BLK_CACHE_WRITEBACK    a completed WRITE may sit in the host page cache
 *                          (and, for qcow2, its metadata in the driver's
 *                          cache); FLUSH makes every write that completed
 *                          before the FLUSH was submitted durable. A write
 *                          with BLK_REQ_FUA is durable when it completes.
 *   BLK_CACHE_WRITETHROUGH a completed write is durable, data and the qcow2
 *                          metadata it needs (raw: the file is opened
 *                          O_DSYNC; qcow2: the driver flushes before it
 *                          completes the write). FLUSH is still honoured.
 *   BLK_CACHE_NONE         O_DIRECT (bypasses the page cache) and, like
 *                          QEMU's cache=none, a write is durable only after
 *                          a FLUSH (the disk's volatile cache, qcow2
 *                          metadata). virtio-blk advertises VIRTIO_BLK_F_FLUSH
 *                          for NONE and WRITEBACK, not for WRITETHROUGH.
 *   BLK_CACHE_UNSAFE       FLUSH is a no-op and blk_close() does not sync
 *                          either (keel-img convert's target, as qemu-img's).
 *   Writes in flight at the same time have no order between them; a FLUSH
 *   does not wait for writes submitted after it, nor do later writes wait
 *   for it (the caller orders, as virtio-blk's driver does).
 *
 * Errors on open
 *   blk_open() returns -errno and writes one line naming the file and what
 *   is wrong ("disk.qcow2: qcow2 L1 table offset 0x200 is not cluster
 *   aligned") into the caller's buffer. A raw image is never probed: the
 *   format comes from the caller, or from BLK_FORMAT_PROBE_QCOW2, which
 *   recognises qcow2 by its magic and version only and takes anything else
 *   as raw (so a raw disk whose guest wrote a qcow2 header becomes a qcow2
 *   image: use it only for files the operator created as qcow2).
 */
#ifndef KEEL_BLOCK_H
#define KEEL_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum blk_format {
	BLK_FORMAT_RAW,
	BLK_FORMAT_QCOW2,
	BLK_FORMAT_PROBE_QCOW2, /* qcow2 if the header says so, else raw */
};

enum blk_cache {
	BLK_CACHE_WRITEBACK, /* the default */
	BLK_CACHE_WRITETHROUGH,
	BLK_CACHE_NONE,
	BLK_CACHE_UNSAFE,
};

enum blk_aio {
	BLK_AIO_IO_URING, /* the default */
	BLK_AIO_THREADS,  /* a worker-thread pool (preadv/pwritev) */
	BLK_AIO_SYNC,     /* the I/O runs in blk_queue_kick() on the caller */
};

/* Open-time flags. */
#define BLK_OPEN_NO_BACKING (1u << 0) /* qcow2: do not open the backing file;
					 unallocated clusters read as zeroes */
#define BLK_OPEN_INACTIVE (1u << 1)  /* another process still writes the image
					 (the source of a live migration): read
					 what blk_get_info() needs, write nothing,
					 fail requests until blk_activate() */

struct blk_open_opts {
	const char *path;      /* regular file or host block device */
	enum blk_format format;
	bool read_only;        /* the file is opened O_RDONLY */
	enum blk_cache cache;
	enum blk_aio aio;
	unsigned flags;        /* BLK_OPEN_* */
	/* Backing files are opened read-only with the same cache and aio;
	   their format comes from the qcow2 header's backing-format
	   extension, else the qcow2-only probe. */
};

/* Room a caller should give blk_open() for its error line. */
#define BLK_ERR_LEN 512

struct blk_dev;
struct blk_queue;

/* 0 and *out set, or -errno with one line in err (may be NULL). */
int blk_open(const struct blk_open_opts *opts, struct blk_dev **out,
	     char *err, size_t errlen);
/*
 * Writes back cached metadata, syncs unless read-only or the image was
 * never written, and frees everything. All queues must have been destroyed.
 * Returns 0 or the -errno of the final write-back (the device is freed
 * either way). NULL is accepted.
 */
int blk_close(struct blk_dev *dev);

struct blk_info {
	uint64_t size;               /* virtual disk size in bytes */
	uint32_t logical_block_size; /* request granularity: 512, or the host
					device's sector size under O_DIRECT */
	uint32_t physical_block_size;/* topology hint (qcow2: min(cluster, 4K)) */
	uint32_t opt_io_size;        /* a good request size (qcow2: cluster size) */
	uint32_t discard_granularity;/* bytes; discard frees whole units */
	bool can_discard;            /* BLK_OP_DISCARD supported */
	bool can_write_zeroes;       /* BLK_OP_WRITE_ZEROES supported */
	bool read_only;
	const char *format;          /* "raw" or "qcow2" (static string) */
};
void blk_get_info(const struct blk_dev *dev, struct blk_info *info);
/* The path it was opened with (for log lines). */
const char *blk_dev_name(const struct blk_dev *dev);

enum blk_op {
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,      /* the range may read back as anything the
				device had, or zeroes; raw: punch hole */
	BLK_OP_WRITE_ZEROES, /* the range reads back as zeroes */
};

#define BLK_REQ_FUA   (1u << 0) /* WRITE/WRITE_ZEROES: durable on completion */
#define BLK_REQ_UNMAP (1u << 1) /* WRITE_ZEROES: may deallocate the range */

struct blk_req;
typedef void (*blk_done_fn)(struct blk_req *req, int ret);

struct blk_req {
	enum blk_op op;
	uint32_t flags;      /* BLK_REQ_* */
	uint64_t offset;     /* bytes, multiple of logical_block_size */
	uint64_t len;        /* DISCARD/WRITE_ZEROES only: bytes; READ/WRITE
				take the total of the iovecs, which must be a
				multiple of logical_block_size */
	const struct iovec *iov; /* READ/WRITE: any alignment; buffers the
				    engine cannot use directly under O_DIRECT
				    are bounced */
	unsigned iovcnt;     /* at most BLK_MAX_IOV */
	blk_done_fn done;
	void *opaque;        /* the caller's, untouched */
	void *internal;      /* the block layer's while in flight */
};

#define BLK_MAX_IOV 1024

/*
 * A queue on dev. `depth` is how many requests the caller will keep in
 * flight at most (the virtqueue size); more are accepted and wait inside
 * the layer. 0 and *out, or -errno.
 */
int blk_queue_create(struct blk_dev *dev, unsigned depth, struct blk_queue **out);
/* Completes everything in flight (running callbacks), then frees. NULL ok. */
void blk_queue_destroy(struct blk_queue *q);

/*
 * An eventfd that becomes readable when completions are ready. Poll it
 * (EPOLLIN) and call blk_queue_process(); process() drains the counter.
 * Or poll it edge-triggered (EPOLLIN | EPOLLET) and call blk_queue_poll(),
 * which leaves the counter alone: every signal is a new edge, so nothing
 * is missed, and each wake-up costs one system call less.
 */
int blk_queue_fd(const struct blk_queue *q);

/*
 * Queues a request. Nothing reaches the host until blk_queue_kick(), so a
 * device can batch a whole virtqueue notification into one system call.
 */
void blk_queue_submit(struct blk_queue *q, struct blk_req *req);
/* Issues what was submitted. Under BLK_AIO_SYNC the I/O happens here. */
void blk_queue_kick(struct blk_queue *q);
/*
 * Reaps finished I/O and runs `done` callbacks; kicks anything the
 * callbacks submitted. Never blocks. Returns how many requests completed.
 */
unsigned blk_queue_process(struct blk_queue *q);
/* blk_queue_process() without reading blk_queue_fd(): for edge-triggered
   pollers, and to reap right after a kick without a system call. */
unsigned blk_queue_poll(struct blk_queue *q);
/* Blocks until at least one request completes (then processes), unless
   none is in flight. Returns how many completed. For tools. */
unsigned blk_queue_wait(struct blk_queue *q);
/* Kicks, then blocks until nothing is in flight (device reset, shutdown). */
void blk_queue_drain(struct blk_queue *q);
/* Requests submitted and not yet completed. */
unsigned blk_queue_inflight(const struct blk_queue *q);

/*
 * Synchronous helpers for tools and tests: one request on q, waited for.
 * Other requests on q may complete (their callbacks run) meanwhile.
 */
int blk_pread(struct blk_queue *q, void *buf, uint64_t len, uint64_t offset);
int blk_pwrite(struct blk_queue *q, const void *buf, uint64_t len, uint64_t offset);
int blk_flush(struct blk_queue *q);
int blk_op_sync(struct blk_queue *q, enum blk_op op, uint32_t flags,
		uint64_t offset, uint64_t len);

/*
 * Handing an image over to another process (live migration with storage
 * both hosts see). Both run on one thread with no request in flight.
 *
 * blk_inactivate() writes back everything the driver holds (the qcow2
 * tables and refcounts, as blk_close() would), syncs, and stops touching
 * the file: requests fail with -EIO and blk_close() writes nothing, so the
 * other process may change the image from now on.
 *
 * blk_activate() takes the image (back): the driver forgets what it held
 * and reads the metadata afresh, as the other process left it. A device
 * opened with BLK_OPEN_INACTIVE starts this way. On failure the device
 * stays inactive. Both return 0 or -errno with one line in err.
 */
int blk_inactivate(struct blk_dev *dev, char *err, size_t errlen);
int blk_activate(struct blk_dev *dev, char *err, size_t errlen);
bool blk_is_active(const struct blk_dev *dev);

/* Names for the command line: "none", "io_uring"... NULL/-EINVAL if unknown. */
int blk_cache_parse(const char *s, enum blk_cache *out);
int blk_aio_parse(const char *s, enum blk_aio *out);
int blk_format_parse(const char *s, enum blk_format *out);
const char *blk_cache_name(enum blk_cache c);
const char *blk_aio_name(enum blk_aio a);

#endif
