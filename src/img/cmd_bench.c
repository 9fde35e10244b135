// SPDX-License-Identifier: Apache-2.0
/*
 * keel-img bench: the same request stream as qemu-img bench (same flags,
 * same offsets: start at -o, advance by -S, wrap at the end of the disk),
 * driven through the block layer's asynchronous queue.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"

struct bench {
	struct blk_queue *q;
	uint64_t offset, step, bufsize, image_size;
	unsigned long count, submitted, done, flush_interval, since_flush;
	bool write, drain, flushing, want_flush;
	int error;
	struct slot *parked;  /* slots waiting for a draining flush */
};

struct slot {
	struct blk_req req;
	struct iovec iov;
	struct bench *b;
	struct slot *next;
};

static void submit_next(struct bench *b, struct slot *s);
static void issue_flush(struct bench *b);

static void flush_done(struct blk_req *req, int ret)
{
	struct bench *b = req->opaque;
	struct slot *s = b->parked, *next;

	if (ret && !b->error)
		b->error = ret;
	b->flushing = false;
	free(req);
	/* the drained requests go on */
	b->parked = NULL;
	for (; s; s = next) {
		next = s->next;
		submit_next(b, s);
	}
}

static void issue_flush(struct bench *b)
{
	struct blk_req *f = calloc(1, sizeof(*f));

	if (!f) {
		b->error = -ENOMEM;
		return;
	}
	f->op = BLK_OP_FLUSH;
	f->done = flush_done;
	f->opaque = b;
	b->flushing = true;
	blk_queue_submit(b->q, f);
}

static void slot_done(struct blk_req *req, int ret)
{
	struct slot *s = container_of(req, struct slot, req);
	struct bench *b = s->b;

	if (ret && !b->error)
		b->error = ret;
	b->done++;
	if (b->flush_interval && ++b->since_flush >= b->flush_interval && b->write) {
		b->since_flush = 0;
		if (b->drain)
			b->want_flush = true; /* once everything in flight is done */
		else
			issue_flush(b);
	}
	if (b->want_flush) {
		s->next = b->parked;
		b->parked = s;
		if (b->submitted == b->done) {
			b->want_flush = false;
			issue_flush(b);
		}
		return;
	}
	submit_next(b, s);
}

static void submit_next(struct bench *b, struct slot *s)
{
	if (b->submitted >= b->count || b->error)
		return;
	s->req = (struct blk_req){ .op = b->write ? BLK_OP_WRITE : BLK_OP_READ,
				   .offset = b->offset, .iov = &s->iov, .iovcnt = 1,
				   .done = slot_done };
	b->submitted++;
	blk_queue_submit(b->q, &s->req);
	b->offset += b->step;
	if (b->image_size <= b->bufsize)
		b->offset = 0;
	else
		b->offset %= b->image_size - b->bufsize;
}

static int run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, 0, 'h' }, { "flush-interval", required_argument, 0, 'F' },
		{ "no-drain", no_argument, 0, 'D' }, { "pattern", required_argument, 0, 'P' }, { 0 } };
	struct bench b = { .count = 75000, .bufsize = 4096, .drain = true };
	unsigned long depth = 64;
	const char *fmt = NULL, *aio_s = "threads", *cache_s = "writeback";
	bool quiet = false, step_given = false;
	uint64_t v, pattern = 0;
	enum blk_cache cache;
	enum blk_aio aio;
	struct blk_dev *dev;
	struct blk_info in;
	struct slot *slots;
	struct timespec t0, t1;
	uint8_t *bufs;
	int c;

	while ((c = getopt_long(argc, argv, "hc:d:f:i:no:qs:S:t:wU", lo, NULL)) != -1) {
		bool bad = false;

		switch (c) {
		case 'h': img_usage(&img_cmd_bench, stdout); return 0;
		case 'c': bad = img_parse_size(optarg, &v) || !v; b.count = v; break;
		case 'd': bad = img_parse_size(optarg, &v) || !v || v > 4096; depth = v; break;
		case 'f': fmt = optarg; break;
		case 'i': aio_s = optarg; break;
		case 'n': aio_s = "io_uring"; break; /* qemu: native AIO */
		case 'o': bad = img_parse_size(optarg, &b.offset); break;
		case 'q': quiet = true; break;
		case 's': bad = img_parse_size(optarg, &b.bufsize) || !b.bufsize; break;
		case 'S': bad = img_parse_size(optarg, &b.step); step_given = true; break;
		case 't': cache_s = optarg; break;
		case 'w': b.write = true; break;
		case 'U': break;
		case 'F': bad = img_parse_size(optarg, &v); b.flush_interval = v; break;
		case 'D': b.drain = false; break;
		case 'P': bad = img_parse_size(optarg, &pattern) || pattern > 255; break;
		default: return img_bad_option(&img_cmd_bench);
		}
		if (bad) {
			img_error("bench: invalid value for -%c: '%s'", c, optarg);
			return 1;
		}
	}
	if (optind != argc - 1) {
		img_error("bench: expected one file name");
		return 1;
	}
	if (!step_given)
		b.step = b.bufsize;
	if (blk_aio_parse(aio_s, &aio)) {
		img_error("invalid aio mode '%s' (io_uring, threads, sync)", aio_s);
		return 1;
	}
	if (img_parse_cache(cache_s, &cache))
		return 1;
	dev = img_open(argv[optind], fmt, !b.write, cache, aio, 0);
	if (!dev)
		return 1;
	blk_get_info(dev, &in);
	b.image_size = in.size;
	b.q = img_queue(dev, depth);
	if (b.q)
		blk_queue_set_eager(b.q, true); /* as qemu-img: one submission per request */
	slots = calloc(depth, sizeof(*slots));
	bufs = blk_alloc_aligned(depth * b.bufsize);
	if (!b.q || !slots || !bufs) {
		blk_queue_destroy(b.q);
		blk_close(dev);
		return 1;
	}
	memset(bufs, (int)pattern, depth * b.bufsize);
	if (!quiet) {
		printf("Sending %lu %s requests, %llu bytes each, %lu in parallel (starting at offset "
		       "%llu, step size %llu)\n", b.count, b.write ? "write" : "read",
		       (unsigned long long)b.bufsize, depth, (unsigned long long)b.offset,
		       (unsigned long long)b.step);
		if (b.flush_interval)
			printf("Sending flush every %lu requests\n", b.flush_interval);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < depth; i++) {
		slots[i].b = &b;
		slots[i].iov = (struct iovec){ bufs + i * b.bufsize, b.bufsize };
		submit_next(&b, &slots[i]);
	}
	blk_queue_kick(b.q);
	while (blk_queue_inflight(b.q))
		blk_queue_wait(b.q);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	blk_queue_destroy(b.q);
	if (blk_close(dev) && !b.error)
		b.error = -EIO;
	free(slots);
	free(bufs);
	if (b.error) {
		img_error("%s: request failed: %s", argv[optind], strerror(-b.error));
		return 1;
	}
	if (!quiet)
		printf("Run completed in %3.3f seconds.\n",
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

const struct img_cmd img_cmd_bench = {
	.name = "bench",
	.run = run,
	.usage = "bench [-q] [-c count] [-d depth] [-f fmt] [--flush-interval=N] [--no-drain] "
		 "[-i aio] [-n] [-o offset] [--pattern=N] [-s buffer_size] [-S step_size] "
		 "[-t cache] [-w] filename",
	.help =
	"Runs count read (or -w write) requests of buffer_size bytes, depth of them\n"
	"in flight, from offset on in steps of step_size (wrapping at the end), and\n"
	"prints the time taken, as qemu-img bench does.\n"
	"  -i aio   io_uring, threads (default) or sync\n"
	"  -n       native AIO (io_uring here; qemu-img uses Linux AIO)\n"
	"  -t cache none (O_DIRECT), writeback (default), writethrough, unsafe\n"
	"  --flush-interval=N   flush after every N writes, once the requests in\n"
	"                       flight have completed (--no-drain: at once)\n",
};
