// SPDX-License-Identifier: Apache-2.0
/*
 * A workload driver for the black-box image tests, using the block layer
 * the way virtio-blk does (many asynchronous requests on a queue).
 *
 *   blk-workload mirror IMAGE REF SEED OPS [aio] [cache]
 *       random writes, reads, discards and write-zeroes, up to 16 in flight
 *       (never overlapping each other, but often in the same cluster), each
 *       mirrored with plain pwrite into the raw file REF; reads are checked
 *       against REF. The test then runs qemu-img check and compare.
 *   blk-workload crash IMAGE LOG SEED [aio] [cache]
 *       writes and flushes forever, logging submissions (W), completions (C),
 *       flush submissions (S) and flush completions (F) to LOG; the test
 *       kills it with SIGKILL.
 *   blk-workload verify IMAGE LOG
 *       every write completed before the last completed flush was submitted
 *       must read back (or a later write to the same block).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/blk_img.h"
#include "keel/block.h"
#include "keel/compiler.h"

#define BS 4096ULL
#define DEPTH 16
#define MAXLEN (16 * BS)

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *b, uint64_t len, uint64_t gen, uint64_t off)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t x = (off + i) * 0x9e3779b97f4a7c15ULL ^ gen * 0xbf58476d1ce4e5b9ULL;

		x ^= x >> 31;
		memcpy(b + i, &x, 8);
	}
}

struct op {
	struct blk_req req;
	struct iovec iov;
	uint8_t *buf;
	uint64_t gen;
	bool busy;
};

static struct op ops[DEPTH];
static int failures, logfd = -1, ref_fd = -1;
static uint64_t cluster = 64 * KiB;
static bool raw_target;

static void logf_(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void logf_(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line: the kernel keeps it across SIGKILL */
	if (write(logfd, line, n) != n)
		exit(3);
}

static bool overlaps(uint64_t off, uint64_t len)
{
	for (int i = 0; i < DEPTH; i++) {
		struct op *o = &ops[i];
		uint64_t olen = o->req.op == BLK_OP_READ || o->req.op == BLK_OP_WRITE ?
				o->iov.iov_len : o->req.len;

		if (o->busy && off < o->req.offset + olen && o->req.offset < off + len)
			return true;
	}
	return false;
}

static void mirror_done(struct blk_req *req, int ret)
{
	struct op *o = container_of(req, struct op, req);

	o->busy = false;
	if (ret) {
		fprintf(stderr, "request op %d at %llu failed: %s\n", req->op,
			(unsigned long long)req->offset, strerror(-ret));
		failures++;
		return;
	}
	if (req->op == BLK_OP_READ) {
		uint8_t *want = malloc(o->iov.iov_len);

		if (pread(ref_fd, want, o->iov.iov_len, req->offset) != (ssize_t)o->iov.iov_len ||
		    memcmp(want, o->buf, o->iov.iov_len)) {
			fprintf(stderr, "read at %llu differs from the reference\n",
				(unsigned long long)req->offset);
			failures++;
		}
		free(want);
	}
}

/* What the reference must look like after a discard/zeroes on [off,len). */
static void ref_zero(uint64_t off, uint64_t len, bool whole_clusters_only)
{
	static uint8_t z[MAXLEN];
	uint64_t s = off, e = off + len;

	if (whole_clusters_only && !raw_target) {
		s = ALIGN_UP(off, cluster);
		e = ALIGN_DOWN(off + len, cluster);
	}
	for (uint64_t p = s; p < e; p += MIN(sizeof(z), e - p))
		if (pwrite(ref_fd, z, MIN(sizeof(z), e - p), p) < 0)
			exit(3);
}

static struct blk_dev *open_dev(const char *path, bool ro, const char *aio, const char *cache)
{
	struct blk_open_opts o = { .path = path, .format = BLK_FORMAT_PROBE_QCOW2, .read_only = ro };
	char err[BLK_ERR_LEN];
	struct blk_dev *dev;
	struct blk_info in;

	if ((aio && blk_aio_parse(aio, &o.aio)) || (cache && blk_cache_parse(cache, &o.cache))) {
		fprintf(stderr, "bad aio/cache\n");
		exit(2);
	}
	if (blk_open(&o, &dev, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	blk_get_info(dev, &in);
	raw_target = !strcmp(in.format, "raw");
	return dev;
}

static struct op *free_op(struct blk_queue *q)
{
	for (;;) {
		for (int i = 0; i < DEPTH; i++)
			if (!ops[i].busy)
				return &ops[i];
		blk_queue_wait(q);
	}
}

static int mirror(int argc, char **argv)
{
	struct blk_dev *dev = open_dev(argv[2], false, argc > 6 ? argv[6] : NULL,
				       argc > 7 ? argv[7] : NULL);
	unsigned long n = strtoul(argv[5], NULL, 0);
	struct blk_queue *q;
	struct blk_info in;

	rng = strtoull(argv[4], NULL, 0) | 1;
	ref_fd = open(argv[3], O_RDWR);
	blk_get_info(dev, &in);
	if (ref_fd < 0 || blk_queue_create(dev, DEPTH, &q))
		return 2;
	for (int i = 0; i < DEPTH; i++)
		ops[i].buf = blk_alloc_aligned(MAXLEN);
	for (unsigned long i = 0; i < n && !failures; i++) {
		uint64_t len = (rnd() % (MAXLEN / 512) + 1) * 512, off;
		unsigned what = rnd() % 20;
		struct op *o = free_op(q);

		/* half the requests land in the first 8 clusters: many share one */
		off = (rnd() % (((rnd() & 1) ? 8 * cluster : in.size) - len) / 512) * 512;
		while (overlaps(off, len))
			blk_queue_wait(q);
		o->iov = (struct iovec){ o->buf, len };
		o->req = (struct blk_req){ .offset = off, .iov = &o->iov, .iovcnt = 1, .len = len,
					   .done = mirror_done };
		if (what < 10) {
			o->req.op = BLK_OP_WRITE;
			fill(o->buf, len, i + 1, off);
			if (pwrite(ref_fd, o->buf, len, off) != (ssize_t)len)
				return 3;
		} else if (what < 12) {
			o->req.op = BLK_OP_DISCARD;
			ref_zero(off, len, true);
		} else if (what < 14) {
			o->req.op = BLK_OP_WRITE_ZEROES;
			o->req.flags = (what & 1) ? BLK_REQ_UNMAP : 0;
			ref_zero(off, len, false);
		} else if (what == 14) {
			o->req.op = BLK_OP_FLUSH;
		} else {
			o->req.op = BLK_OP_READ;
		}
		o->busy = true;
		blk_queue_submit(q, &o->req);
		blk_queue_kick(q);
	}
	blk_queue_drain(q);
	blk_queue_destroy(q);
	if (blk_close(dev))
		failures++;
	close(ref_fd);
	return failures ? 1 : 0;
}

static void crash_done(struct blk_req *req, int ret)
{
	struct op *o = container_of(req, struct op, req);

	if (ret) {
		logf_("E %d\n", ret);
		exit(4);
	}
	o->busy = false;
	if (req->op == BLK_OP_FLUSH)
		logf_("F %llu\n", (unsigned long long)o->gen);
	else
		logf_("C %llu\n", (unsigned long long)o->gen);
}

static int crash(int argc, char **argv)
{
	struct blk_dev *dev = open_dev(argv[2], false, argc > 5 ? argv[5] : NULL,
				       argc > 6 ? argv[6] : NULL);
	struct blk_queue *q;
	struct blk_info in;
	uint64_t gen = 0;

	rng = strtoull(argv[4], NULL, 0) | 1;
	logfd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	blk_get_info(dev, &in);
	if (logfd < 0 || blk_queue_create(dev, DEPTH, &q))
		return 2;
	for (int i = 0; i < DEPTH; i++)
		ops[i].buf = blk_alloc_aligned(MAXLEN);
	for (;;) {
		struct op *o = free_op(q);
		uint64_t len = (rnd() % (MAXLEN / BS) + 1) * BS;
		uint64_t off = (rnd() % ((in.size - len) / BS)) * BS;
		unsigned what = rnd() % 40;

		if (what == 0) {
			o->req = (struct blk_req){ .op = BLK_OP_FLUSH, .done = crash_done };
			o->gen = ++gen;
			logf_("S %llu\n", (unsigned long long)gen);
		} else {
			while (overlaps(off, len))
				blk_queue_wait(q);
			o->gen = ++gen;
			o->iov = (struct iovec){ o->buf, len };
			o->req = (struct blk_req){ .op = BLK_OP_WRITE, .offset = off, .iov = &o->iov,
						   .iovcnt = 1, .len = len, .done = crash_done };
			if (what == 1) {
				o->req.op = BLK_OP_WRITE_ZEROES;
				o->req.flags = BLK_REQ_UNMAP;
				logf_("Z %llu %llu %llu\n", (unsigned long long)gen,
				      (unsigned long long)off, (unsigned long long)len);
			} else {
				fill(o->buf, len, gen, off);
				logf_("W %llu %llu %llu\n", (unsigned long long)gen,
				      (unsigned long long)off, (unsigned long long)len);
			}
		}
		o->busy = true;
		blk_queue_submit(q, &o->req);
		blk_queue_kick(q);
	}
}

/* Per block: the gen that must be visible at least, and later candidates. */
struct blk_hist {
	uint64_t durable;      /* gen completed before the last flush's S (0: none) */
	uint64_t *later;       /* gens submitted after it */
	unsigned nlater, cap;
	bool durable_zero;
};

static int verify(int argc, char **argv)
{
	struct blk_dev *dev = open_dev(argv[2], true, "sync", NULL);
	FILE *f = fopen(argv[3], "r");
	struct blk_queue *q;
	struct blk_info in;
	char line[128];
	uint64_t nblocks, last_f = 0, s_line = 0, lineno = 0;
	uint64_t *wgen_off, *wgen_len, maxgen = 0;
	bool *zero;
	struct blk_hist *h;
	uint8_t *buf = blk_alloc_aligned(BS), *want = blk_alloc_aligned(BS);
	unsigned long bad = 0, checked = 0;

	if (!f) {
		fprintf(stderr, "%s: %s\n", argv[3], strerror(errno));
		return 2;
	}
	if (blk_queue_create(dev, 4, &q))
		return 2;
	blk_get_info(dev, &in);
	nblocks = in.size / BS;
	/* pass 1: the last completed flush and where it was submitted */
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, c;

		lineno++;
		if (sscanf(line, "F %llu", &a) == 1)
			last_f = a;
		if (sscanf(line, "W %llu %llu %llu", &a, &b, &c) == 3 ||
		    sscanf(line, "Z %llu %llu %llu", &a, &b, &c) == 3)
			maxgen = MAX(maxgen, a);
		if (sscanf(line, "S %llu", &a) == 1)
			maxgen = MAX(maxgen, a);
	}
	wgen_off = calloc(maxgen + 1, 8);
	wgen_len = calloc(maxgen + 1, 8);
	zero = calloc(maxgen + 1, 1);
	h = calloc(nblocks, sizeof(*h));
	rewind(f);
	lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;

		lineno++;
		if (sscanf(line, "S %llu", &a) == 1 && a == last_f)
			s_line = lineno;
	}
	/* pass 2: history per block */
	rewind(f);
	lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, c;
		bool z = line[0] == 'Z';

		lineno++;
		if ((sscanf(line, "W %llu %llu %llu", &a, &b, &c) == 3 ||
		     sscanf(line, "Z %llu %llu %llu", &a, &b, &c) == 3)) {
			wgen_off[a] = b;
			wgen_len[a] = c;
			zero[a] = z;
			for (uint64_t blk = b / BS; blk < (b + c) / BS; blk++) {
				struct blk_hist *x = &h[blk];

				if (x->nlater == x->cap) {
					x->cap = x->cap ? x->cap * 2 : 4;
					x->later = realloc(x->later, x->cap * 8);
				}
				x->later[x->nlater++] = a;
			}
		} else if (sscanf(line, "C %llu", &a) == 1 && last_f && lineno < s_line) {
			/* completed before the flush: everything before it in this
			   block's history is superseded */
			for (uint64_t blk = wgen_off[a] / BS; blk < (wgen_off[a] + wgen_len[a]) / BS; blk++) {
				struct blk_hist *x = &h[blk];
				unsigned k = 0;

				while (k < x->nlater && x->later[k] != a)
					k++;
				if (k == x->nlater)
					continue;
				x->durable = a;
				x->durable_zero = zero[a];
				memmove(x->later, x->later + k + 1, (x->nlater - k - 1) * 8);
				x->nlater -= k + 1;
			}
		}
	}
	for (uint64_t blk = 0; blk < nblocks; blk++) {
		struct blk_hist *x = &h[blk];
		bool ok;

		if (!x->durable)
			continue;
		checked++;
		if (blk_pread(q, buf, BS, blk * BS)) {
			bad++;
			continue;
		}
		if (x->durable_zero)
			memset(want, 0, BS);
		else
			fill(want, BS, x->durable, blk * BS);
		ok = !memcmp(buf, want, BS);
		for (unsigned k = 0; !ok && k < x->nlater; k++) {
			if (zero[x->later[k]])
				memset(want, 0, BS);
			else
				fill(want, BS, x->later[k], blk * BS);
			ok = !memcmp(buf, want, BS);
		}
		if (!ok) {
			if (bad < 5)
				fprintf(stderr, "block %llu: flushed gen %llu lost\n",
					(unsigned long long)blk, (unsigned long long)x->durable);
			bad++;
		}
	}
	printf("last flush %llu, %lu flushed blocks checked, %lu lost\n",
	       (unsigned long long)last_f, checked, bad);
	blk_queue_destroy(q);
	blk_close(dev);
	for (uint64_t blk = 0; blk < nblocks; blk++)
		free(h[blk].later);
	free(h);
	free(wgen_off);
	free(wgen_len);
	free(zero);
	free(buf);
	free(want);
	fclose(f);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && !strcmp(argv[1], "mirror"))
		return mirror(argc, argv);
	if (argc >= 5 && !strcmp(argv[1], "crash"))
		return crash(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return verify(argc, argv);
	fprintf(stderr, "usage: blk-workload mirror IMAGE REF SEED OPS [aio] [cache]\n"
		"       blk-workload crash IMAGE LOG SEED [aio] [cache]\n"
		"       blk-workload verify IMAGE LOG\n");
	return 2;
}
