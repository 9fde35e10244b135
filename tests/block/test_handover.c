// SPDX-License-Identifier: Apache-2.0
/*
 * Handing an image over between two openers, as a live migration does
 * (block.h, "Handing an image over"): the source writes back and goes
 * inactive, the target opened inactive takes the image and sees every
 * write, and what the source does afterwards (its close) changes nothing.
 * Also the way back (a migration that failed before the switch-over).
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/blk_img.h"
#include "blk_test.h"
#include "keel/compiler.h"
#include "ktest.h"

#define SIZE (8 * MiB)
#define CS (64 * KiB)

static char *make_image(enum blk_format fmt)
{
	char *path = blk_test_tmpfile(fmt == BLK_FORMAT_RAW ? SIZE : 0);
	struct blk_create_opts o = { .path = path, .format = fmt, .size = SIZE, .cluster_size = CS };
	char err[BLK_ERR_LEN];

	if (fmt == BLK_FORMAT_QCOW2 && blk_img_create(&o, err, sizeof(err))) {
		printf("# create: %s\n", err);
		free(path);
		return NULL;
	}
	return path;
}

static struct blk_dev *open_flags(const char *path, enum blk_format fmt, unsigned flags)
{
	return blk_test_open_flags(path, fmt, BLK_CACHE_WRITEBACK, BLK_AIO_SYNC, false, flags);
}

/* Writes `n` 4 KiB blocks spread over the disk (each a fresh cluster). */
static int write_spread(struct blk_dev *dev, unsigned n, uint64_t seed, uint64_t first)
{
	struct blk_queue *q;
	uint8_t *buf = blk_alloc_aligned(4096);
	int r = buf ? blk_queue_create(dev, 8, &q) : -ENOMEM;

	for (unsigned i = 0; !r && i < n; i++) {
		uint64_t off = first + (uint64_t)i * 3 * CS;

		blk_test_fill(buf, 4096, seed, off);
		r = blk_pwrite(q, buf, 4096, off);
	}
	if (buf)
		blk_queue_destroy(q);
	free(buf);
	return r;
}

static int check_spread(struct blk_dev *dev, unsigned n, uint64_t seed, uint64_t first)
{
	struct blk_queue *q;
	uint8_t *buf = blk_alloc_aligned(4096), *want = malloc(4096);
	int r = buf && want ? blk_queue_create(dev, 8, &q) : -ENOMEM;

	for (unsigned i = 0; !r && i < n; i++) {
		uint64_t off = first + (uint64_t)i * 3 * CS;

		blk_test_fill(want, 4096, seed, off);
		r = blk_pread(q, buf, 4096, off);
		if (!r && memcmp(buf, want, 4096)) {
			printf("# block at 0x%llx differs\n", (unsigned long long)off);
			r = -EBADMSG;
		}
	}
	if (buf && want)
		blk_queue_destroy(q);
	free(buf);
	free(want);
	return r;
}

static int check_clean(const char *path)
{
	struct blk_dev *dev = open_flags(path, BLK_FORMAT_QCOW2, BLK_OPEN_NO_BACKING);
	struct blk_check_result res = { 0 };
	int r;

	if (!dev)
		return -EIO;
	r = blk_img_check(dev, 0, &res, stdout);
	blk_close(dev);
	if (!r && (res.corruptions || res.leaks || res.check_errors))
		r = -EUCLEAN;
	return r;
}

static void hand_over(enum blk_format fmt)
{
	char *path = make_image(fmt), err[BLK_ERR_LEN];
	struct blk_dev *src, *dst;
	struct blk_queue *q;
	uint8_t buf[512];
	struct stat st;

	KASSERT(path);
	src = open_flags(path, fmt, 0);
	KASSERT(src);
	/* The target opens while the source still writes (pre-copy). */
	dst = open_flags(path, fmt, BLK_OPEN_INACTIVE);
	KASSERT(dst);
	KCHECK(!blk_is_active(dst));
	KCHECK_EQ(write_spread(src, 10, 1, 0), 0);
	/* An inactive image serves nothing. */
	KASSERT(blk_queue_create(dst, 4, &q) == 0);
	KCHECK_EQ(blk_pread(q, buf, sizeof(buf), 0), -EIO);
	blk_queue_destroy(q);

	KCHECK_EQ(blk_inactivate(src, err, sizeof(err)), 0);
	KCHECK_EQ(blk_activate(dst, err, sizeof(err)), 0);
	/* The target sees everything the source wrote, and writes on. */
	KCHECK_EQ(check_spread(dst, 10, 1, 0), 0);
	KCHECK_EQ(write_spread(dst, 10, 2, CS), 0);
	KASSERT(blk_queue_create(src, 4, &q) == 0);
	KCHECK_EQ(blk_pwrite(q, buf, sizeof(buf), 0), -EIO);
	blk_queue_destroy(q);
	/* The source's close (it exits after the switch-over) writes nothing. */
	KCHECK_EQ(stat(path, &st), 0);
	KCHECK_EQ(blk_close(src), 0);
	{
		struct stat after;

		KCHECK_EQ(stat(path, &after), 0);
		KCHECK_EQ(after.st_size, st.st_size);
	}
	KCHECK_EQ(blk_close(dst), 0);
	if (fmt == BLK_FORMAT_QCOW2)
		KCHECK_EQ(check_clean(path), 0);
	dst = open_flags(path, fmt, 0);
	KASSERT(dst);
	KCHECK_EQ(check_spread(dst, 10, 1, 0), 0);
	KCHECK_EQ(check_spread(dst, 10, 2, CS), 0);
	blk_close(dst);
	unlink(path);
	free(path);
}

KTEST(handover_qcow2_target_sees_every_write_and_the_source_writes_no_more)
{
	hand_over(BLK_FORMAT_QCOW2);
}

KTEST(handover_raw)
{
	hand_over(BLK_FORMAT_RAW);
}

/* A migration that failed before the switch-over: the source takes it back. */
KTEST(handover_qcow2_back_to_the_source)
{
	char *path = make_image(BLK_FORMAT_QCOW2), err[BLK_ERR_LEN];
	struct blk_dev *src, *dst;

	KASSERT(path);
	src = open_flags(path, BLK_FORMAT_QCOW2, 0);
	dst = open_flags(path, BLK_FORMAT_QCOW2, BLK_OPEN_INACTIVE);
	KASSERT(src && dst);
	KCHECK_EQ(write_spread(src, 8, 3, 0), 0);
	KCHECK_EQ(blk_inactivate(src, err, sizeof(err)), 0);
	/* The target gives up (it exits): it never wrote. */
	KCHECK_EQ(blk_close(dst), 0);
	KCHECK_EQ(blk_activate(src, err, sizeof(err)), 0);
	KCHECK_EQ(write_spread(src, 8, 4, CS), 0);
	KCHECK_EQ(check_spread(src, 8, 3, 0), 0);
	KCHECK_EQ(blk_close(src), 0);
	KCHECK_EQ(check_clean(path), 0);
	unlink(path);
	free(path);
}

/* The other side must not leave the image in a state we cannot take. */
KTEST(handover_qcow2_refuses_an_image_that_changed_size)
{
	char *path = make_image(BLK_FORMAT_QCOW2), err[BLK_ERR_LEN];
	struct blk_dev *src, *dst;
	struct blk_queue *q;
	uint8_t buf[512] = { 0 };

	KASSERT(path);
	src = open_flags(path, BLK_FORMAT_QCOW2, 0);
	dst = open_flags(path, BLK_FORMAT_QCOW2, BLK_OPEN_INACTIVE);
	KASSERT(src && dst);
	KCHECK_EQ(blk_inactivate(src, err, sizeof(err)), 0);
	blk_close(src);
	src = open_flags(path, BLK_FORMAT_QCOW2, 0); /* keel-img resize, say */
	KASSERT(src);
	KCHECK_EQ(blk_img_resize(src, 2 * SIZE, err, sizeof(err)), 0);
	blk_close(src);
	KCHECK_EQ(blk_activate(dst, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "changed size") != NULL);
	KCHECK(!blk_is_active(dst));
	KASSERT(blk_queue_create(dst, 4, &q) == 0);
	KCHECK_EQ(blk_pwrite(q, buf, sizeof(buf), 0), -EIO);
	blk_queue_destroy(q);
	blk_close(dst);
	KCHECK_EQ(check_clean(path), 0);
	unlink(path);
	free(path);
}

int main(void)
{
	return ktest_run_all();
}
