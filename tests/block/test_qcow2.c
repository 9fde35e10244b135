// SPDX-License-Identifier: Apache-2.0
/*
 * qcow2 through the public interface: random workloads checked against an
 * in-memory reference (on every engine), reopen, backing files and COW,
 * two requests allocating one cluster, two queues on two threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "block/blk_img.h"
#include "block/block_int.h"
#include "blk_test.h"
#include "keel/compiler.h"
#include "ktest.h"

static const enum blk_aio engines[] = BLK_TEST_ALL_AIO;

static char *make_qcow2(uint64_t size, uint32_t cs, const char *backing, const char *bfmt)
{
	char *path = blk_test_tmpfile(0);
	struct blk_create_opts o = { .path = path, .format = BLK_FORMAT_QCOW2, .size = size,
				     .cluster_size = cs, .backing = backing, .backing_fmt = bfmt };
	char err[BLK_ERR_LEN];

	if (blk_img_create(&o, err, sizeof(err))) {
		printf("# create: %s\n", err);
		free(path);
		return NULL;
	}
	return path;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random writes, zeroes, discards and reads against `ref`. */
static int workload(struct blk_queue *q, uint8_t *ref, uint64_t size, unsigned ops, uint64_t seed)
{
	uint8_t *buf = blk_alloc_aligned(256 * KiB);
	uint64_t s = seed | 1;
	int bad = 0;

	for (unsigned i = 0; i < ops && !bad; i++) {
		uint64_t len = ((rnd(&s) % (128 * KiB / 512)) + 1) * 512;
		uint64_t off = (rnd(&s) % ((size - len) / 512)) * 512;
		unsigned what = rnd(&s) % 10;

		if (what < 5) {
			blk_test_fill(buf, len, seed + i, off);
			if (blk_pwrite(q, buf, len, off))
				bad = 1;
			memcpy(ref + off, buf, len);
		} else if (what == 5) {
			if (blk_op_sync(q, BLK_OP_WRITE_ZEROES, (i & 1) ? BLK_REQ_UNMAP : 0, off, len))
				bad = 2;
			memset(ref + off, 0, len);
		} else if (what == 6) {
			/* discard: only whole clusters change (to zeroes here: no backing) */
			if (blk_op_sync(q, BLK_OP_DISCARD, 0, off, len))
				bad = 3;
			for (uint64_t c = ALIGN_UP(off, 64 * KiB); c + 64 * KiB <= off + len; c += 64 * KiB)
				memset(ref + c, 0, 64 * KiB);
		} else if (what == 7) {
			if (blk_flush(q))
				bad = 4;
		} else {
			if (blk_pread(q, buf, len, off) || memcmp(buf, ref + off, len))
				bad = 5;
			for (uint64_t j = 0; bad && j < len; j++)
				if (buf[j] != ref[off + j]) {
					printf("# first diff at 0x%llx: %02x != %02x\n",
					       (unsigned long long)(off + j), buf[j], ref[off + j]);
					break;
				}
		}
		if (getenv("KTRACE"))
			printf("# op %u what %u off 0x%llx len 0x%llx bad %d\n", i, what,
			       (unsigned long long)off, (unsigned long long)len, bad);
	}
	free(buf);
	return bad;
}

static int verify_all(struct blk_queue *q, const uint8_t *ref, uint64_t size)
{
	uint8_t *buf = blk_alloc_aligned(1 * MiB);
	int bad = 0;

	for (uint64_t off = 0; off < size && !bad; off += 1 * MiB) {
		uint64_t n = MIN(1 * MiB, size - off);

		if (blk_pread(q, buf, n, off) || memcmp(buf, ref + off, n))
			bad = 1;
	}
	free(buf);
	return bad;
}

KTEST(qcow2_random_workload_every_engine)
{
	const uint64_t size = 16 * MiB;

	for (unsigned e = 0; e < ARRAY_SIZE(engines); e++) {
		char *path = make_qcow2(size, 64 * KiB, NULL, NULL);
		uint8_t *ref = calloc(1, size);
		struct blk_dev *dev;
		struct blk_queue *q;

		KASSERT(path && ref);
		dev = blk_test_open(path, BLK_FORMAT_QCOW2, e == 0 ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
				    engines[e], false);
		KASSERT(dev);
		KASSERT(blk_queue_create(dev, 32, &q) == 0);
		KCHECK_EQ(workload(q, ref, size, 400, 1000 + e), 0);
		KCHECK_EQ(verify_all(q, ref, size), 0);
		blk_queue_destroy(q);
		KCHECK_EQ(blk_close(dev), 0);
		/* everything is there after reopening */
		dev = blk_test_open(path, BLK_FORMAT_PROBE_QCOW2, BLK_CACHE_WRITEBACK, engines[e], true);
		KASSERT(dev);
		KASSERT(blk_queue_create(dev, 32, &q) == 0);
		KCHECK_EQ(verify_all(q, ref, size), 0);
		blk_queue_destroy(q);
		blk_close(dev);
		if (!getenv("KEEP"))
			unlink(path);
		else
			printf("# kept %s\n", path);
		free(path);
		free(ref);
	}
}

/*
 * Two queues on two threads write interleaved 4 KiB blocks of the same
 * fresh clusters, 16 in flight each: every cluster is allocated by one of
 * them while the other's requests for it wait (block.h: queues may run
 * concurrently; qcow2_io.c: the in-flight allocation list).
 */
struct interleave {
	struct blk_dev *dev;
	unsigned parity;
	int errors;
};

struct ireq {
	struct blk_req req;
	struct iovec iov;
	int *errors;
};

static void idone(struct blk_req *req, int ret)
{
	struct ireq *r = container_of(req, struct ireq, req);

	if (ret)
		(*r->errors)++;
}

static void *interleave_worker(void *p)
{
	struct interleave *a = p;
	const unsigned nblk = 4 * MiB / 4096, depth = 16;
	struct ireq *r = calloc(depth, sizeof(*r));
	uint8_t *bufs = blk_alloc_aligned(depth * 4096);
	struct blk_queue *q;
	unsigned next = a->parity;

	if (!r || !bufs || blk_queue_create(a->dev, depth, &q)) {
		a->errors = 1000;
		return NULL;
	}
	while (next < nblk || blk_queue_inflight(q)) {
		for (unsigned i = 0; i < depth && next < nblk; i++) {
			if (r[i].req.internal) /* still in flight */
				continue;
			r[i].iov = (struct iovec){ bufs + i * 4096, 4096 };
			blk_test_fill(r[i].iov.iov_base, 4096, 5, next * 4096ULL);
			r[i].errors = &a->errors;
			r[i].req = (struct blk_req){ .op = BLK_OP_WRITE, .offset = next * 4096ULL,
						     .iov = &r[i].iov, .iovcnt = 1, .done = idone };
			blk_queue_submit(q, &r[i].req);
			next += 2;
		}
		blk_queue_kick(q);
		blk_queue_wait(q);
	}
	blk_queue_destroy(q);
	free(r);
	free(bufs);
	return NULL;
}

KTEST(qcow2_two_queues_allocate_the_same_clusters)
{
	for (unsigned e = 0; e < ARRAY_SIZE(engines); e++) {
		char *path = make_qcow2(4 * MiB, 64 * KiB, NULL, NULL);
		struct blk_dev *dev;
		struct interleave a = { .parity = 0 }, b = { .parity = 1 };
		pthread_t ta, tb;
		uint8_t *buf = blk_alloc_aligned(4 * MiB), *want = malloc(4 * MiB);
		struct blk_queue *q;

		KASSERT(path && buf && want);
		dev = blk_test_open(path, BLK_FORMAT_QCOW2, BLK_CACHE_NONE, engines[e], false);
		KASSERT(dev);
		a.dev = b.dev = dev;
		pthread_create(&ta, NULL, interleave_worker, &a);
		pthread_create(&tb, NULL, interleave_worker, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		KCHECK_EQ(a.errors, 0);
		KCHECK_EQ(b.errors, 0);
		KASSERT(blk_queue_create(dev, 4, &q) == 0);
		KCHECK_EQ(blk_pread(q, buf, 4 * MiB, 0), 0);
		blk_test_fill(want, 4 * MiB, 5, 0);
		KCHECK(!memcmp(buf, want, 4 * MiB));
		blk_queue_destroy(q);
		KCHECK_EQ(blk_close(dev), 0);
		unlink(path);
		free(path);
		free(buf);
		free(want);
	}
}

/* A partial write into an overlay copies the rest of the cluster from the
   backing file; the backing file is never written. */
KTEST(qcow2_cow_from_backing)
{
	char *base = blk_test_tmpfile(2 * MiB), *top;
	struct blk_dev *bd = blk_test_open(base, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, false);
	uint8_t *buf = blk_alloc_aligned(2 * MiB), *want = malloc(2 * MiB);
	struct blk_queue *q;
	struct blk_dev *dev;

	KASSERT(bd && buf && want);
	KASSERT(blk_queue_create(bd, 4, &q) == 0);
	blk_test_fill(want, 2 * MiB, 1, 0);
	KCHECK_EQ(blk_pwrite(q, want, 2 * MiB, 0), 0);
	blk_queue_destroy(q);
	blk_close(bd);
	top = make_qcow2(3 * MiB, 64 * KiB, base, "raw"); /* larger than its backing */
	KASSERT(top);
	dev = blk_test_open(top, BLK_FORMAT_QCOW2, BLK_CACHE_WRITEBACK, BLK_AIO_IO_URING, false);
	KASSERT(dev);
	KASSERT(blk_queue_create(dev, 4, &q) == 0);
	blk_test_fill(buf, 4096, 2, 0);
	KCHECK_EQ(blk_pwrite(q, buf, 4096, 64 * KiB + 8192), 0);
	memcpy(want + 64 * KiB + 8192, buf, 4096);
	KCHECK_EQ(blk_pwrite(q, buf, 4096, 2 * MiB + 4096), 0); /* past the backing file */
	KCHECK_EQ(blk_pread(q, buf, 2 * MiB, 0), 0);
	KCHECK(!memcmp(buf, want, 2 * MiB));
	KCHECK_EQ(blk_pread(q, buf, 64 * KiB, 2 * MiB), 0);
	memset(want, 0, 64 * KiB);
	blk_test_fill(want + 4096, 4096, 2, 0);
	KCHECK(!memcmp(buf, want, 64 * KiB));
	/* discard in an overlay: reads zeroes, not the backing file */
	KCHECK_EQ(blk_op_sync(q, BLK_OP_DISCARD, 0, 0, 128 * KiB), 0);
	KCHECK_EQ(blk_pread(q, buf, 128 * KiB, 0), 0);
	memset(want, 0, 128 * KiB);
	KCHECK(!memcmp(buf, want, 128 * KiB));
	blk_queue_destroy(q);
	KCHECK_EQ(blk_close(dev), 0);
	/* the base is untouched */
	bd = blk_test_open(base, BLK_FORMAT_RAW, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, true);
	KASSERT(bd && blk_queue_create(bd, 4, &q) == 0);
	KCHECK_EQ(blk_pread(q, buf, 2 * MiB, 0), 0);
	blk_test_fill(want, 2 * MiB, 1, 0);
	KCHECK(!memcmp(buf, want, 2 * MiB));
	blk_queue_destroy(q);
	blk_close(bd);
	unlink(base);
	unlink(top);
	free(base);
	free(top);
	free(buf);
	free(want);
}

/* Writes while the image is read-only, and a corrupt image refusing writes. */
KTEST(qcow2_read_only_and_corrupt_refuse_writes)
{
	char *path = make_qcow2(1 * MiB, 64 * KiB, NULL, NULL);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_QCOW2, BLK_CACHE_WRITEBACK,
					    BLK_AIO_SYNC, true);
	uint8_t buf[4096] = { 0 };
	struct blk_queue *q;
	char err[BLK_ERR_LEN];
	struct blk_open_opts o = { .path = path, .format = BLK_FORMAT_QCOW2 };

	KASSERT(dev && blk_queue_create(dev, 4, &q) == 0);
	KCHECK_EQ(blk_pwrite(q, buf, 4096, 0), -EROFS);
	KCHECK_EQ(blk_pread(q, buf, 4096, 0), 0);
	blk_queue_destroy(q);
	blk_close(dev);
	/* mark it corrupt: a read-write open is refused with the fix named */
	{
		int fd = open(path, O_RDWR);
		uint8_t bit = 2;

		KASSERT(fd >= 0);
		KCHECK_EQ(pwrite(fd, &bit, 1, 79), 1);
		close(fd);
	}
	KCHECK_EQ(blk_open(&o, &dev, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "qcow2 image is marked corrupt; run 'keel-img check -r all'") != NULL);
	unlink(path);
	free(path);
}

static unsigned syncs, writes;

static int fail_writes(const struct host_io *hio)
{
	return hio->op == HOST_WRITE ? -EIO : 0;
}

static int count_syncs(const struct host_io *hio)
{
	syncs += hio->op == HOST_FDATASYNC;
	writes += hio->op == HOST_WRITE;
	return 0;
}

/* What reaches the disk per cache mode (block.h, Durability). */
KTEST(qcow2_flush_semantics_per_cache_mode)
{
	uint8_t *buf = blk_alloc_aligned(4096);

	memset(buf, 7, 4096);
	blk_host_io_hook = count_syncs;
	for (int c = BLK_CACHE_WRITEBACK; c <= BLK_CACHE_UNSAFE; c++) {
		char *path = make_qcow2(4 * MiB, 64 * KiB, NULL, NULL);
		struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_QCOW2, c, BLK_AIO_IO_URING, false);
		struct blk_queue *q;

		KASSERT(dev && blk_queue_create(dev, 4, &q) == 0);
		syncs = writes = 0;
		KCHECK_EQ(blk_pwrite(q, buf, 4096, 1 * MiB), 0); /* allocates */
		KCHECK_EQ(writes, 1);
		/* writethrough: durable before completion; else not yet */
		KCHECK_EQ(syncs, c == BLK_CACHE_WRITETHROUGH);
		syncs = 0;
		KCHECK_EQ(blk_flush(q), 0);
		KCHECK_EQ(syncs, c != BLK_CACHE_UNSAFE);
		blk_queue_destroy(q);
		KCHECK_EQ(blk_close(dev), 0);
		unlink(path);
		free(path);
	}
	blk_host_io_hook = NULL;
	free(buf);
}

/* An injected write error reaches the request and leaves the image sound. */
KTEST(qcow2_write_error_leaves_no_mapping)
{
	char *path = make_qcow2(4 * MiB, 64 * KiB, NULL, NULL);
	struct blk_dev *dev = blk_test_open(path, BLK_FORMAT_QCOW2, BLK_CACHE_WRITEBACK,
					    BLK_AIO_THREADS, false);
	uint8_t *buf = blk_alloc_aligned(8192);
	struct blk_queue *q;

	KASSERT(dev && buf && blk_queue_create(dev, 4, &q) == 0);
	memset(buf, 9, 8192);
	blk_host_io_hook = fail_writes;
	KCHECK_EQ(blk_pwrite(q, buf, 4096, 0), -EIO);
	blk_host_io_hook = NULL;
	KCHECK_EQ(blk_pread(q, buf, 8192, 0), 0);
	KCHECK(buf[0] == 0 && buf[4095] == 0); /* the failed write is not mapped */
	memset(buf, 9, 8192);
	KCHECK_EQ(blk_pwrite(q, buf, 4096, 0), 0); /* and it works again */
	KCHECK_EQ(blk_pread(q, buf + 4096, 4096, 0), 0);
	KCHECK(!memcmp(buf, buf + 4096, 4096));
	blk_queue_destroy(q);
	KCHECK_EQ(blk_close(dev), 0);
	unlink(path);
	free(path);
	free(buf);
}

int main(void)
{
	return ktest_run_all();
}
