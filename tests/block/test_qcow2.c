// SPDX-License-Identifier: Apache-2.0
/*
 * qcow2 through the public interface: random workloads checked against an
 * in-memory reference (on every engine), reopen, backing files and COW,
 * two requests allocating one cluster, two queues on two threads.
 */
#include <errno.h>
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

int main(void)
{
	return ktest_run_all();
}
