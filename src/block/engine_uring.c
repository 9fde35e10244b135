// SPDX-License-Identifier: Apache-2.0
/*
 * The io_uring engine: one ring per queue, its completions signalled on the
 * queue's eventfd (io_uring_register_eventfd), so a queue's whole
 * completion path is its own. Requests beyond the ring's size wait in a
 * backlog instead of overflowing the completion ring.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

#include "block_int.h"
#include "keel/compiler.h"

struct uring_state {
	struct io_uring ring;
	unsigned entries;
	unsigned inflight;      /* host_ios given to the kernel */
	struct host_io *backlog, **backlog_tail;
};

static int uring_init(struct blk_queue *q, unsigned depth)
{
	struct uring_state *s = calloc(1, sizeof(*s));
	unsigned entries = 64;
	int r;

	if (!s)
		return -ENOMEM;
	/* Room for a request split in a few host_ios (qcow2 COW). */
	while (entries < depth * 2 && entries < 4096)
		entries *= 2;
	r = io_uring_queue_init(entries, &s->ring, 0);
	if (r < 0) {
		free(s);
		return r;
	}
	r = io_uring_register_eventfd(&s->ring, q->efd);
	if (r < 0) {
		io_uring_queue_exit(&s->ring);
		free(s);
		return r;
	}
	s->entries = entries;
	s->backlog_tail = &s->backlog;
	q->engine_state = s;
	return 0;
}

static void uring_fini(struct blk_queue *q)
{
	struct uring_state *s = q->engine_state;

	io_uring_queue_exit(&s->ring);
	free(s);
}

static bool to_sqe(struct uring_state *s, struct host_io *hio)
{
	struct io_uring_sqe *sqe;
	unsigned n;
	const struct iovec *iov;

	if (s->inflight >= s->entries || !(sqe = io_uring_get_sqe(&s->ring)))
		return false;
	switch (hio->op) {
	case HOST_READ:
		iov = host_io_iov(hio, &n);
		io_uring_prep_readv(sqe, hio->fd, iov, n, hio->off);
		break;
	case HOST_WRITE:
		iov = host_io_iov(hio, &n);
		io_uring_prep_writev2(sqe, hio->fd, iov, n, hio->off, hio->mode);
		break;
	case HOST_FDATASYNC:
		io_uring_prep_fsync(sqe, hio->fd, IORING_FSYNC_DATASYNC);
		break;
	case HOST_FALLOCATE:
		io_uring_prep_fallocate(sqe, hio->fd, hio->mode, hio->off, hio->len);
		break;
	}
	io_uring_sqe_set_data(sqe, hio);
	s->inflight++;
	return true;
}

static void uring_submit(struct blk_queue *q, struct host_io *hio)
{
	struct uring_state *s = q->engine_state;
	int r = host_io_prepare(hio);

	if (r) {
		host_io_fail(q, hio, r);
		return;
	}
	if (s->backlog || !to_sqe(s, hio)) {
		*s->backlog_tail = hio;
		s->backlog_tail = &hio->next;
	} else if (q->eager) {
		io_uring_submit(&s->ring);
	}
}

static void uring_kick(struct blk_queue *q)
{
	struct uring_state *s = q->engine_state;

	while (s->backlog && to_sqe(s, s->backlog)) {
		s->backlog = s->backlog->next;
		if (!s->backlog)
			s->backlog_tail = &s->backlog;
	}
	if (io_uring_sq_ready(&s->ring))
		io_uring_submit(&s->ring);
}

static void finish(struct host_io *hio, int res)
{
	hio->ret = res < 0 ? res : 0;
	if (res >= 0 && (hio->op == HOST_READ || hio->op == HOST_WRITE)) {
		unsigned n;
		const struct iovec *iov = host_io_iov(hio, &n);

		/* A short transfer (end of file, a signal): finish it here. */
		if ((uint64_t)res < iov_total(iov, n))
			hio->ret = host_io_rw_from(hio, res);
	}
	host_io_finish(hio);
	hio->cb(hio, hio->ret);
}

static unsigned uring_reap(struct blk_queue *q)
{
	struct uring_state *s = q->engine_state;
	struct io_uring_cqe *cqes[64];
	unsigned total = 0, n;

	do {
		n = io_uring_peek_batch_cqe(&s->ring, cqes, ARRAY_SIZE(cqes));
		for (unsigned i = 0; i < n; i++) {
			struct host_io *hio = io_uring_cqe_get_data(cqes[i]);
			int res = cqes[i]->res;

			io_uring_cqe_seen(&s->ring, cqes[i]);
			s->inflight--;
			finish(hio, res);
		}
		total += n;
	} while (n == ARRAY_SIZE(cqes));
	return total;
}

const struct blk_engine_ops blk_engine_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.kick = uring_kick,
	.reap = uring_reap,
};
