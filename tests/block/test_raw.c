// SPDX-License-Identifier: Apache-2.0
/*
 * The raw driver over every I/O engine and cache mode: data round trips
 * (aligned and bounced buffers), open flags per cache mode, the system
 * calls that make flush and FUA exact, discard/write-zeroes, errors, and
 * two queues driven from two threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_int.h"
#include "blk_test.h"
#include "keel/compiler.h"
#include "ktest.h"

static const enum blk_aio engines[] = BLK_TEST_ALL_AIO;

static void roundtrip(enum blk_aio aio, enum blk_cache cache)
{
	char *path = blk_test_tmpfile(4 * MiB);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, cache, aio, false);
	struct blk_queue *q = NULL;
	uint8_t *a, *b;

	KASSERT(dev);
	KASSERT(blk_queue_create(dev, 32, &q) == 0);
	a = blk_alloc_aligned(256 * KiB + 4096);
	b = blk_alloc_aligned(256 * KiB + 4096);
	blk_test_fill(a, 256 * KiB + 4096, aio * 10 + cache, 0);
	/* aligned */
	KCHECK_EQ(blk_pwrite(q, a, 128 * KiB, 1 * MiB), 0);
	KCHECK_EQ(blk_pread(q, b, 128 * KiB, 1 * MiB), 0);
	KCHECK(!memcmp(a, b, 128 * KiB));
	/* buffers off by one byte: bounced under O_DIRECT */
	KCHECK_EQ(blk_pwrite(q, a + 1, 64 * KiB, 2 * MiB + 512), 0);
	memset(b, 0, 128 * KiB);
	KCHECK_EQ(blk_pread(q, b + 3, 64 * KiB, 2 * MiB + 512), 0);
	KCHECK(!memcmp(a + 1, b + 3, 64 * KiB));
	KCHECK_EQ(blk_flush(q), 0);
	blk_queue_destroy(q);
	KCHECK_EQ(blk_close(dev), 0);
	unlink(path);
	free(path);
	free(a);
	free(b);
}

KTEST(raw_roundtrip_every_engine_and_cache_mode)
{
	for (unsigned e = 0; e < ARRAY_SIZE(engines); e++)
		for (int c = BLK_CACHE_WRITEBACK; c <= BLK_CACHE_UNSAFE; c++)
			roundtrip(engines[e], c);
}

KTEST(raw_cache_mode_open_flags)
{
	char *path = blk_test_tmpfile(1 * MiB);
	struct blk_dev *dev;
	int fl;

	dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_NONE, BLK_AIO_SYNC, false);
	KASSERT(dev);
	fl = fcntl(dev->fd, F_GETFL);
	KCHECK(fl & O_DIRECT);
	KCHECK_EQ(fl & O_ACCMODE, O_RDWR);
	blk_close(dev);
	dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, true);
	KASSERT(dev);
	fl = fcntl(dev->fd, F_GETFL);
	KCHECK(!(fl & O_DIRECT));
	KCHECK_EQ(fl & O_ACCMODE, O_RDONLY);
	blk_close(dev);
	unlink(path);
	free(path);
}

/* What reached the engine: counts per op, and RWF_DSYNC writes. */
static unsigned seen[4], seen_dsync;
static int fail_op = -1, fail_err;

static int count_hook(const struct host_io *hio)
{
	seen[hio->op]++;
	if (hio->op == HOST_WRITE && (hio->mode & RWF_DSYNC))
		seen_dsync++;
	if ((int)hio->op == fail_op)
		return fail_err;
	return 0;
}

static void reset_counts(void)
{
	memset(seen, 0, sizeof(seen));
	seen_dsync = 0;
}

KTEST(raw_flush_semantics_per_cache_mode)
{
	char *path = blk_test_tmpfile(1 * MiB);
	uint8_t buf[4096] = { 1 };

	blk_host_io_hook = count_hook;
	for (int c = BLK_CACHE_WRITEBACK; c <= BLK_CACHE_UNSAFE; c++) {
		struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, c, BLK_AIO_IO_URING, false);
		struct blk_queue *q;

		KASSERT(dev);
		KASSERT(blk_queue_create(dev, 8, &q) == 0);
		reset_counts();
		KCHECK_EQ(blk_pwrite(q, buf, sizeof(buf), 0), 0);
		/* writethrough: the write itself is durable (RWF_DSYNC) */
		KCHECK_EQ(seen_dsync, c == BLK_CACHE_WRITETHROUGH);
		KCHECK_EQ(blk_flush(q), 0);
		/* a flush reaches the disk in every mode but unsafe */
		KCHECK_EQ(seen[HOST_FDATASYNC], c != BLK_CACHE_UNSAFE);
		blk_queue_destroy(q);
		blk_close(dev);
	}
	blk_host_io_hook = NULL;
	unlink(path);
	free(path);
}

struct one {
	struct blk_req req;
	int ret, calls;
};

static void one_done(struct blk_req *req, int ret)
{
	struct one *o = container_of(req, struct one, req);

	o->ret = ret;
	o->calls++;
}

static int submit_one(struct blk_queue *q, struct one *o)
{
	o->req.done = one_done;
	o->calls = 0;
	o->ret = 1;
	blk_queue_submit(q, &o->req);
	blk_queue_drain(q);
	return o->calls == 1 ? o->ret : -1000;
}

KTEST(raw_fua_write_is_dsync)
{
	char *path = blk_test_tmpfile(1 * MiB);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK,
					    BLK_AIO_THREADS, false);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct one o = { .req = { .op = BLK_OP_WRITE, .flags = BLK_REQ_FUA, .iov = &iov,
				  .iovcnt = 1 } };
	struct blk_queue *q;

	KASSERT(dev);
	KASSERT(blk_queue_create(dev, 8, &q) == 0);
	blk_host_io_hook = count_hook;
	reset_counts();
	KCHECK_EQ(submit_one(q, &o), 0);
	KCHECK_EQ(seen_dsync, 1);
	blk_host_io_hook = NULL;
	blk_queue_destroy(q);
	blk_close(dev);
	unlink(path);
	free(path);
}

KTEST(raw_injected_errors_reach_the_callback)
{
	char *path = blk_test_tmpfile(1 * MiB);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };

	for (unsigned e = 0; e < ARRAY_SIZE(engines); e++) {
		struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_NONE,
						    engines[e], false);
		struct one o = { .req = { .op = BLK_OP_WRITE, .iov = &iov, .iovcnt = 1 } };
		struct blk_queue *q;

		KASSERT(dev);
		KASSERT(blk_queue_create(dev, 8, &q) == 0);
		blk_host_io_hook = count_hook;
		fail_op = HOST_WRITE;
		fail_err = -ENOSPC;
		KCHECK_EQ(submit_one(q, &o), -ENOSPC);
		fail_op = HOST_FDATASYNC;
		fail_err = -EIO;
		o.req.op = BLK_OP_FLUSH;
		KCHECK_EQ(submit_one(q, &o), -EIO);
		fail_op = -1;
		KCHECK_EQ(submit_one(q, &o), 0);
		blk_host_io_hook = NULL;
		blk_queue_destroy(q);
		blk_close(dev);
	}
	unlink(path);
	free(path);
}

KTEST(raw_bad_requests_complete_with_errors)
{
	char *path = blk_test_tmpfile(1 * MiB);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK,
					    BLK_AIO_IO_URING, false);
	struct blk_dev *ro = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK,
					   BLK_AIO_IO_URING, true);
	uint8_t buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	struct one o = { .req = { .op = BLK_OP_READ, .iov = &iov, .iovcnt = 1 } };
	struct blk_queue *q, *qr;

	KASSERT(dev && ro);
	KASSERT(blk_queue_create(dev, 8, &q) == 0);
	KASSERT(blk_queue_create(ro, 8, &qr) == 0);
	o.req.offset = 100; /* not sector aligned */
	KCHECK_EQ(submit_one(q, &o), -EINVAL);
	o.req.offset = 1 * MiB - 2048; /* crosses the end */
	KCHECK_EQ(submit_one(q, &o), -EINVAL);
	o.req.offset = UINT64_MAX - 511; /* overflows */
	KCHECK_EQ(submit_one(q, &o), -EINVAL);
	o.req.offset = 0;
	o.req.op = 77;
	KCHECK_EQ(submit_one(q, &o), -EINVAL);
	o.req.op = BLK_OP_WRITE;
	KCHECK_EQ(submit_one(qr, &o), -EROFS);
	o.req.op = BLK_OP_DISCARD;
	o.req.len = 4096;
	KCHECK_EQ(submit_one(qr, &o), -EROFS);
	o.req.op = BLK_OP_READ;
	KCHECK_EQ(submit_one(qr, &o), 0);
	blk_queue_destroy(q);
	blk_queue_destroy(qr);
	blk_close(dev);
	blk_close(ro);
	unlink(path);
	free(path);
}

static uint64_t allocated(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

KTEST(raw_discard_punches_and_write_zeroes_zeroes)
{
	char *path = blk_test_tmpfile(4 * MiB);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK,
					    BLK_AIO_IO_URING, false);
	uint8_t *buf = malloc(1 * MiB), *z = calloc(1, 1 * MiB);
	struct blk_queue *q;
	uint64_t before;

	KASSERT(dev && buf && z);
	KASSERT(blk_queue_create(dev, 8, &q) == 0);
	blk_test_fill(buf, 1 * MiB, 7, 0);
	KCHECK_EQ(blk_pwrite(q, buf, 1 * MiB, 0), 0);
	KCHECK_EQ(blk_pwrite(q, buf, 1 * MiB, 1 * MiB), 0);
	KCHECK_EQ(blk_flush(q), 0);
	before = allocated(path);
	KCHECK_EQ(blk_op_sync(q, BLK_OP_DISCARD, 0, 0, 1 * MiB), 0);
	KCHECK(allocated(path) <= before - 1 * MiB);
	KCHECK_EQ(blk_op_sync(q, BLK_OP_WRITE_ZEROES, 0, 1 * MiB + 4096, 64 * KiB), 0);
	KCHECK_EQ(blk_pread(q, buf, 1 * MiB, 1 * MiB), 0);
	KCHECK(!memcmp(buf + 4096, z, 64 * KiB));
	blk_test_fill(z, 4096, 7, 0);
	KCHECK(!memcmp(buf, z, 4096)); /* the block before is untouched */
	KCHECK_EQ(blk_op_sync(q, BLK_OP_WRITE_ZEROES, BLK_REQ_UNMAP, 1 * MiB, 1 * MiB), 0);
	KCHECK_EQ(blk_pread(q, buf, 1 * MiB, 1 * MiB), 0);
	memset(z, 0, 1 * MiB);
	KCHECK(!memcmp(buf, z, 1 * MiB));
	blk_queue_destroy(q);
	blk_close(dev);
	unlink(path);
	free(path);
	free(buf);
	free(z);
}

/* Two queues, two threads, many requests in flight on each. */
struct worker_arg {
	struct blk_dev *dev;
	uint64_t base;
	int errors;
};

struct wreq {
	struct blk_req req;
	struct iovec iov;
	uint8_t *buf;
	int *errors;
};

static void wdone(struct blk_req *req, int ret)
{
	struct wreq *w = container_of(req, struct wreq, req);

	if (ret)
		(*w->errors)++;
}

static void *queue_worker(void *p)
{
	struct worker_arg *a = p;
	struct blk_queue *q;
	struct wreq w[32];
	uint8_t *bufs = blk_alloc_aligned(32 * 4096), *chk = blk_alloc_aligned(4096);

	if (blk_queue_create(a->dev, 32, &q)) {
		a->errors = 1000;
		return NULL;
	}
	for (int i = 0; i < 32; i++) {
		w[i].buf = bufs + i * 4096;
		blk_test_fill(w[i].buf, 4096, 99, a->base + i * 4096);
		w[i].iov = (struct iovec){ w[i].buf, 4096 };
		w[i].req = (struct blk_req){ .op = BLK_OP_WRITE, .offset = a->base + i * 4096,
					     .iov = &w[i].iov, .iovcnt = 1, .done = wdone };
		w[i].errors = &a->errors;
		blk_queue_submit(q, &w[i].req);
	}
	blk_queue_kick(q);
	while (blk_queue_inflight(q))
		blk_queue_wait(q);
	for (int i = 0; i < 32; i++) {
		if (blk_pread(q, chk, 4096, a->base + i * 4096) || memcmp(chk, w[i].buf, 4096))
			a->errors++;
	}
	blk_queue_destroy(q);
	free(bufs);
	free(chk);
	return NULL;
}

KTEST(raw_two_queues_on_two_threads)
{
	for (unsigned e = 0; e < ARRAY_SIZE(engines); e++) {
		char *path = blk_test_tmpfile(4 * MiB);
		struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_RAW, BLK_CACHE_NONE,
						    engines[e], false);
		struct worker_arg a = { dev, 0, 0 }, b = { dev, 2 * MiB, 0 };
		pthread_t ta, tb;

		KASSERT(dev);
		pthread_create(&ta, NULL, queue_worker, &a);
		pthread_create(&tb, NULL, queue_worker, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		KCHECK_EQ(a.errors, 0);
		KCHECK_EQ(b.errors, 0);
		blk_close(dev);
		unlink(path);
		free(path);
	}
}

KTEST(open_errors_are_one_clear_line)
{
	struct blk_open_opts o = { .path = "/nonexistent/disk.img" };
	struct blk_dev *dev = NULL;
	char err[BLK_ERR_LEN];

	KCHECK_EQ(blk_open(&o, &dev, err, sizeof(err)), -ENOENT);
	KCHECK_STR(err, "/nonexistent/disk.img: cannot open: No such file or directory");
	o.path = "/dev/null";
	o.read_only = true;
	KCHECK_EQ(blk_open(&o, &dev, err, sizeof(err)), -EINVAL);
	KCHECK_STR(err, "/dev/null: not a regular file or block device");
	KCHECK(dev == NULL);
}

KTEST(probe_takes_non_qcow2_as_raw)
{
	char *path = blk_test_tmpfile(64 * KiB);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_PROBE_QCOW2, BLK_CACHE_WRITEBACK,
					    BLK_AIO_SYNC, true);
	struct blk_info in;

	KASSERT(dev);
	blk_get_info(dev, &in);
	KCHECK_STR(in.format, "raw");
	KCHECK_EQ(in.size, 64 * KiB);
	KCHECK(in.read_only);
	blk_close(dev);
	unlink(path);
	free(path);
}

int main(void)
{
	return ktest_run_all();
}
