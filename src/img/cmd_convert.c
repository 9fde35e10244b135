// SPDX-License-Identifier: Apache-2.0
/*
 * keel-img convert: copies the guest-visible disk of one image into a new
 * (or, with -n, existing) image. Ranges the source chain says are zero are
 * not read; data read back as zero (by sparse_size blocks) is not written,
 * so the target stays thin. Several chunks are in flight at once, reads on
 * the source queue and writes on the target queue.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img.h"

#define CHUNK (2 * MiB)
#define SLOTS 8

struct conv;

struct wreq {
	struct blk_req req;
	struct iovec iov;
	struct conv *cv;
	struct wreq *next;
};

struct slot {
	struct blk_req rd;
	struct iovec iov;
	uint8_t *buf;
	uint64_t off, len;
	unsigned writes;   /* in flight */
	bool busy;
	struct conv *cv;
};

struct conv {
	struct blk_dev *src, *dst;
	struct blk_queue *qs, *qd;
	uint64_t size, next, sparse, done_bytes;
	bool target_zero;    /* the target reads zero where not written */
	bool skip_backed;    /* -B: leave what the source's backing holds */
	bool progress;
	int error;
	struct slot slots[SLOTS];
};

static void set_err(struct conv *cv, int r)
{
	if (r && !cv->error)
		cv->error = r;
}

static void slot_release(struct slot *s)
{
	if (--s->writes == 0) {
		s->busy = false;
		s->cv->done_bytes += s->len;
	}
}

static void write_done(struct blk_req *req, int ret)
{
	struct wreq *w = container_of(req, struct wreq, req);
	struct slot *s = req->opaque;

	set_err(w->cv, ret);
	free(w);
	slot_release(s);
}

static void issue(struct slot *s, enum blk_op op, uint32_t flags, uint64_t off, uint8_t *buf,
		  uint64_t len)
{
	struct wreq *w = calloc(1, sizeof(*w));

	if (!w) {
		set_err(s->cv, -ENOMEM);
		return;
	}
	w->cv = s->cv;
	w->iov = (struct iovec){ buf, len };
	w->req = (struct blk_req){ .op = op, .flags = flags, .offset = off, .len = len,
				   .iov = &w->iov, .iovcnt = buf ? 1 : 0, .done = write_done,
				   .opaque = s };
	s->writes++;
	blk_queue_submit(s->cv->qd, &w->req);
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	const uint64_t *q = (const uint64_t *)p;

	for (uint64_t i = 0; i < n / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* The chunk is read: write its non-zero runs (and zeroes if needed). */
static void read_done(struct blk_req *req, int ret)
{
	struct slot *s = container_of(req, struct slot, rd);
	struct conv *cv = s->cv;
	uint64_t g = cv->sparse, p = 0;

	s->writes = 1; /* held while issuing */
	set_err(cv, ret);
	while (!ret && p < s->len) {
		uint64_t start = p;
		bool zero = g && all_zero(s->buf + p, MIN(g, s->len - p));

		/* a run of blocks that are all zero, or all not */
		while (p < s->len && (g && all_zero(s->buf + p, MIN(g, s->len - p))) == zero)
			p += g ? MIN(g, s->len - p) : s->len - p;
		if (!zero)
			issue(s, BLK_OP_WRITE, 0, s->off + start, s->buf + start, p - start);
		else if (!cv->target_zero)
			issue(s, BLK_OP_WRITE_ZEROES, BLK_REQ_UNMAP, s->off + start, NULL, p - start);
	}
	slot_release(s);
}

/* Whether [off, off+*len) is data somewhere in the chain (else zero). */
static int src_status(struct conv *cv, uint64_t off, uint64_t *len, bool *data)
{
	struct blk_dev *d = cv->src;

	for (unsigned depth = 0; d; depth++) {
		struct blk_info in;
		struct blk_status st;
		int r;

		blk_get_info(d, &in);
		if (off >= in.size)
			break;
		r = blk_img_block_status(d, off, MIN(*len, in.size - off), &st);
		if (r)
			return r;
		*len = st.len;
		if (st.kind == BLK_ST_DATA || st.kind == BLK_ST_COMPRESSED) {
			*data = true;
			return 0;
		}
		if (st.kind == BLK_ST_ZERO)
			break;
		if (cv->skip_backed) { /* the target's backing file provides it */
			*data = false;
			*len = -*len; /* marker: leave alone, even with -n */
			return 1;
		}
		d = blk_img_backing(d);
	}
	*data = false;
	return 0;
}

static void fill(struct conv *cv)
{
	for (unsigned i = 0; i < SLOTS && cv->next < cv->size && !cv->error; i++) {
		struct slot *s = &cv->slots[i];
		uint64_t len = MIN(CHUNK, cv->size - cv->next);
		bool data = false;
		int r;

		if (s->busy)
			continue;
		r = src_status(cv, cv->next, &len, &data);
		if (r == 1) { /* backed: skip */
			cv->next += -len;
			cv->done_bytes += -len;
			continue;
		}
		if (r < 0) {
			set_err(cv, r);
			return;
		}
		s->off = cv->next;
		s->len = len;
		cv->next += len;
		if (!data) {
			if (cv->target_zero) {
				cv->done_bytes += len;
				continue;
			}
			s->busy = true;
			s->writes = 1;
			issue(s, BLK_OP_WRITE_ZEROES, BLK_REQ_UNMAP, s->off, NULL, len);
			slot_release(s);
			continue;
		}
		s->busy = true;
		s->iov = (struct iovec){ s->buf, len };
		s->rd = (struct blk_req){ .op = BLK_OP_READ, .offset = s->off, .iov = &s->iov,
					  .iovcnt = 1, .done = read_done };
		blk_queue_submit(cv->qs, &s->rd);
	}
}

static bool busy(struct conv *cv)
{
	for (unsigned i = 0; i < SLOTS; i++)
		if (cv->slots[i].busy)
			return true;
	return false;
}

static int copy_all(struct conv *cv)
{
	while ((cv->next < cv->size && !cv->error) || busy(cv)) {
		struct pollfd p[2] = { { blk_queue_fd(cv->qs), POLLIN, 0 },
				       { blk_queue_fd(cv->qd), POLLIN, 0 } };

		fill(cv);
		blk_queue_kick(cv->qs);
		blk_queue_kick(cv->qd);
		if (!blk_queue_process(cv->qs) + !blk_queue_process(cv->qd) == 2 && busy(cv))
			poll(p, 2, -1);
		img_progress(cv->progress, cv->size ? cv->done_bytes * 100.0 / cv->size : 100);
	}
	return cv->error;
}

/*
 * io_uring for O_DIRECT; the worker pool for page-cache I/O, which
 * io_uring would hand to its own kernel workers anyway (buffered writes
 * on ext4) at the cost of an extra hop. Measured: the pool is no slower
 * here and steadier.
 */
static enum blk_aio engine_for(enum blk_cache c)
{
	return c == BLK_CACHE_NONE ? BLK_AIO_IO_URING : BLK_AIO_THREADS;
}

static int run(int argc, char **argv)
{
	static const struct option lo[] = { { "help", no_argument, 0, 'h' },
		{ "target-is-zero", no_argument, 0, 'Z' }, { 0 } };
	const char *fmt = NULL, *ofmt = "raw", *cache_s = "unsafe", *scache_s = "writeback";
	const char *backing = NULL, *bfmt = NULL, *out;
	struct blk_create_opts co = { 0 };
	bool no_create = false, quiet = false, progress = false, zero_flag = false;
	struct conv cv = { .sparse = 4096 };
	enum blk_cache cache, scache;
	char err[BLK_ERR_LEN], *o = NULL;
	struct blk_info in;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "hf:O:B:F:o:cpqnt:T:S:m:WU", lo, NULL)) != -1) {
		switch (c) {
		case 'h': img_usage(&img_cmd_convert, stdout); return 0;
		case 'f': fmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'B': backing = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'o': o = optarg; break;
		case 'c': img_error("writing compressed clusters (-c) is not supported"); return 1;
		case 'p': progress = true; break;
		case 'q': quiet = true; break;
		case 'n': no_create = true; break;
		case 't': cache_s = optarg; break;
		case 'T': scache_s = optarg; break;
		case 'S':
			if (img_parse_size(optarg, &cv.sparse) || cv.sparse % 512) {
				img_error("-S must be a multiple of 512");
				return 1;
			}
			break;
		case 'Z': zero_flag = true; break;
		case 'm': case 'W': case 'U': break;
		default: return img_bad_option(&img_cmd_convert);
		}
	}
	if (argc - optind != 2) {
		img_error("convert: expected one source and one target file name");
		return 1;
	}
	out = argv[optind + 1];
	if (img_parse_cache(cache_s, &cache) || img_parse_cache(scache_s, &scache))
		return 1;
	if (backing && !bfmt) {
		img_error("-B given without its format (-F raw|qcow2)");
		return 1;
	}
	cv.src = img_open(argv[optind], fmt, true, scache, engine_for(scache), 0);
	if (!cv.src)
		return 1;
	blk_get_info(cv.src, &in);
	cv.size = in.size;
	if (!no_create) {
		co.path = out;
		co.size = in.size;
		co.backing = backing;
		co.backing_fmt = bfmt;
		if (blk_format_parse(ofmt, &co.format)) {
			img_error("unknown output format '%s' (raw or qcow2)", ofmt);
			r = -EINVAL;
			goto out;
		}
		for (char *kv = o ? strtok(o, ",") : NULL; kv; kv = strtok(NULL, ",")) {
			uint64_t n;

			if (!strncmp(kv, "cluster_size=", 13) && !img_parse_size(kv + 13, &n))
				co.cluster_size = n;
			else if (!strncmp(kv, "refcount_bits=", 14) && !img_parse_size(kv + 14, &n))
				co.refcount_bits = n;
			else if (strcmp(kv, "compat=1.1")) {
				img_error("unsupported option '%s'", kv);
				r = -EINVAL;
				goto out;
			}
		}
		r = blk_img_create(&co, err, sizeof(err));
		if (r) {
			img_error("%s", err);
			goto out;
		}
	}
	cv.dst = img_open(out, no_create ? NULL : ofmt, false, cache, engine_for(cache),
			  BLK_OPEN_NO_BACKING);
	if (!cv.dst) {
		r = -EIO;
		goto out;
	}
	blk_get_info(cv.dst, &in);
	if (in.size < cv.size) {
		img_error("%s: the target is smaller than the source", out);
		r = -EINVAL;
		goto out;
	}
	/* A new image reads zero where nothing is written, unless it has a
	   backing file (-B): then zeroes the source decides must be written. */
	cv.target_zero = (!no_create && !backing) || zero_flag;
	cv.skip_backed = backing != NULL;
	cv.progress = progress && !quiet;
	cv.qs = img_queue(cv.src, SLOTS);
	cv.qd = img_queue(cv.dst, SLOTS * 4);
	if (!cv.qs || !cv.qd) {
		r = -EIO;
		goto out;
	}
	for (unsigned i = 0; i < SLOTS; i++) {
		cv.slots[i].cv = &cv;
		cv.slots[i].buf = blk_alloc_aligned(CHUNK);
		if (!cv.slots[i].buf) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = copy_all(&cv);
	if (!r)
		r = blk_flush(cv.qd);
	if (cv.progress)
		printf("\n");
	if (r)
		img_error("error while converting: %s", strerror(-r));
out:
	blk_queue_destroy(cv.qs);
	blk_queue_destroy(cv.qd);
	if (blk_close(cv.dst) && !r) {
		img_error("%s: cannot write the metadata", out);
		r = -EIO;
	}
	blk_close(cv.src);
	for (unsigned i = 0; i < SLOTS; i++)
		free(cv.slots[i].buf);
	return r ? 1 : 0;
}

const struct img_cmd img_cmd_convert = {
	.name = "convert",
	.run = run,
	.usage = "convert [-q] [-p] [-n] [-f fmt] [-O output_fmt] [-B backing_file -F backing_fmt] "
		 "[-o options] [-t cache] [-T src_cache] [-S sparse_size] filename output_filename",
	.help =
	"Copies the disk an image shows (its whole backing chain) into a new image\n"
	"of format output_fmt (raw by default). Zero ranges are skipped, so the\n"
	"target is thin. -B makes the target a qcow2 overlay of backing_file and\n"
	"copies only what the source holds above its own backing file. -n writes\n"
	"into an existing target. -p shows progress. The target cache mode\n"
	"defaults to unsafe, as in qemu-img: nothing is synced; pass -t writeback\n"
	"to have the data on disk when keel-img exits.\n",
};
