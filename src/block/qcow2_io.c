// SPDX-License-Identifier: Apache-2.0
/*
 * The qcow2 request path. A request is cut into pieces at cluster
 * boundaries (reads merge clusters that are contiguous on the host). The
 * mapping is looked up under s->lock; guest data moves asynchronously on
 * the queue's engine with the lock dropped.
 *
 * First write to a guest cluster (allocation): the cluster is registered
 * in s->inflight, a host cluster allocated (refcount +1 in the cache), the
 * data written (whole cluster, merged with the old contents: backing file,
 * compressed or snapshot-shared cluster, or zeroes), and only when that
 * write has completed does the L2 entry point at it. A second write to the
 * same guest cluster meanwhile waits on the inflight entry and is
 * dispatched again (on its own queue's thread) afterwards.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "qcow2.h"

/* Private ops of pieces (never seen by validate()). */
#define QOP_HOST ((enum blk_op)100)        /* one host read/write */
#define QOP_WRITE_PIECE ((enum blk_op)101) /* one cluster of a write */
#define QOP_ZERO_PIECE ((enum blk_op)102)  /* a whole cluster of zeroes/discard */
#define QOP_WRITE_RUN ((enum blk_op)103)   /* several whole clusters of a write */

#define MAX_RUN 512 /* clusters in one run */

/* u[] of a write piece */
#define P_IN u[0]     /* offset inside the cluster */
#define P_HOST u[1]   /* host cluster being filled */
#define P_OLD u[2]    /* the old L2 entry */
#define P_FLAGS u[3]  /* the parent's op and flags (zero piece) */

static void piece_done(struct blk_io *piece, int ret);
static void write_piece(struct blk_io *p);
static void start_flush(struct blk_io *io);

int qcow2_read_compressed(struct qcow2 *s, uint64_t entry, uint8_t *out)
{
	unsigned x = 62 - (s->cluster_bits - 8);
	uint64_t coff = entry & ((1ULL << x) - 1);
	uint64_t nsec = ((entry >> x) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;
	uint64_t clen = nsec * 512 - (coff & 511), fend = s->end * s->cluster_size;
	uint8_t *in;
	int r;

	if (coff >= fend)
		return -EIO;
	clen = MIN(clen, fend - coff);
	in = malloc(clen);
	if (!in)
		return -ENOMEM;
	r = blk_file_pread(s->dev, in, clen, coff);
	if (!r && s->h.compression_type == 0) {
		z_stream z = { .next_in = in, .avail_in = clen, .next_out = out,
			       .avail_out = s->cluster_size };

		/* Raw deflate with a 4 KiB window, as QEMU writes it. */
		r = inflateInit2(&z, -12) == Z_OK ? 0 : -ENOMEM;
		if (!r) {
			int zr = inflate(&z, Z_FINISH);

			if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || z.avail_out)
				r = -EIO;
			inflateEnd(&z);
		}
	} else if (!r) {
		size_t fsz = ZSTD_findFrameCompressedSize(in, clen);
		size_t n = ZSTD_isError(fsz) ? fsz : ZSTD_decompress(out, s->cluster_size, in, fsz);

		if (ZSTD_isError(n) || n != s->cluster_size)
			r = -EIO;
	}
	free(in);
	if (r == -EIO)
		log_guest("%s: compressed cluster at 0x%llx does not decompress",
			  s->dev->path, (unsigned long long)coff);
	return r;
}

/* ---- completion of pieces and requests ---- */

static void finish_request(struct blk_io *io)
{
	if (!io->ret && (io->flags & BLK_REQ_FUA)) {
		io->flags &= ~BLK_REQ_FUA;
		start_flush(io);
		return;
	}
	blk_io_complete(io, io->ret);
}

static void piece_done(struct blk_io *piece, int ret)
{
	struct blk_io *parent = piece->opaque;

	free(piece->p[0]); /* a COW buffer */
	free(piece->p[1]); /* zeroes to write */
	piece->p[0] = piece->p[1] = NULL;
	blk_io_free(piece);
	if (ret && !parent->ret)
		parent->ret = ret;
	if (--parent->pending == 0)
		finish_request(parent);
}

static void host_done(struct host_io *hio, int ret)
{
	struct blk_io *piece = hio->opaque;

	blk_io_complete(piece, ret);
}

/* An in-place write landed: its cluster may be freed again. */
static void inplace_done(struct host_io *hio, int ret)
{
	struct blk_io *piece = hio->opaque;
	struct qcow2 *s = qcow2_of(piece->dev);

	pthread_mutex_lock(&s->lock);
	qcow2_busy_del(s, piece->P_HOST >> s->cluster_bits);
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(piece, ret);
}

/* A host read or write of piece->iov at `host`. */
static void host_rw(struct blk_io *piece, enum host_op op, uint64_t host,
		    void (*cb)(struct host_io *, int))
{
	blk_host_io_init(&piece->hio, piece->dev, op, host, piece->iov, piece->iovcnt);
	piece->hio.cb = cb;
	piece->hio.opaque = piece;
	host_io_submit(piece->q, &piece->hio);
}

/* ---- reads ---- */

enum kind { K_DATA, K_UNALLOC, K_ZERO, K_COMPRESSED };

static enum kind classify(uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return K_COMPRESSED;
	if (e & QCOW2_OFLAG_ZERO)
		return K_ZERO;
	return (e & QCOW2_OFFSET_MASK) ? K_DATA : K_UNALLOC;
}

static void read_backing(struct blk_io *io, uint64_t pos, uint64_t off, uint64_t n)
{
	struct blk_dev *b = io->dev->backing;
	uint64_t bsize = b ? ALIGN_UP(b->info.size, b->info.logical_block_size) : 0, m = 0;

	if (off < bsize)
		m = MIN(n, bsize - off);
	if (m) {
		struct blk_io *c = blk_io_child(io, b, BLK_OP_READ, off, pos, m, piece_done);

		if (!c) {
			io->ret = -ENOMEM;
			return;
		}
		io->pending++;
		blk_io_dispatch(c);
	}
	if (m < n)
		iov_memset(io->iov, io->iovcnt, pos + m, 0, n - m);
}

static void qread(struct blk_io *io)
{
	struct qcow2 *s = qcow2_of(io->dev);
	uint64_t cs = s->cluster_size, pos = 0;
	uint8_t *cbuf = NULL;

	io->pending = 1;
	while (pos < io->len && !io->ret) {
		uint64_t off = io->offset + pos, gc = off >> s->cluster_bits;
		uint64_t in = off & (cs - 1), n = MIN(cs - in, io->len - pos), e, e2;
		enum kind k;
		int r;

		pthread_mutex_lock(&s->lock);
		r = qcow2_l2_lookup(s, gc, &e);
		k = classify(e);
		/* Merge the following clusters of the same kind (contiguous on
		   the host for data) into one host or backing read. */
		while (!r && (k == K_DATA || k == K_UNALLOC || k == K_ZERO) && pos + n < io->len) {
			if (qcow2_l2_lookup(s, gc + 1, &e2) || classify(e2) != k)
				break;
			if (k == K_DATA && (e2 & QCOW2_OFFSET_MASK) !=
			    (e & QCOW2_OFFSET_MASK) + ((gc + 1 - (off >> s->cluster_bits)) << s->cluster_bits))
				break;
			gc++;
			n += MIN(cs, io->len - pos - n);
		}
		pthread_mutex_unlock(&s->lock);
		if (r) {
			io->ret = r;
			break;
		}
		switch (k) {
		case K_DATA: {
			struct blk_io *c = blk_io_child(io, io->dev, QOP_HOST, off, pos, n, piece_done);

			if (!c) {
				io->ret = -ENOMEM;
				break;
			}
			io->pending++;
			host_rw(c, HOST_READ, (e & QCOW2_OFFSET_MASK) + in, host_done);
			break;
		}
		case K_UNALLOC:
			read_backing(io, pos, off, n);
			break;
		case K_ZERO:
			iov_memset(io->iov, io->iovcnt, pos, 0, n);
			break;
		case K_COMPRESSED:
			if (!cbuf && !(cbuf = malloc(cs))) {
				io->ret = -ENOMEM;
				break;
			}
			r = qcow2_read_compressed(s, e, cbuf);
			if (r)
				io->ret = r;
			else
				iov_from_buf(io->iov, io->iovcnt, pos, cbuf + in, n);
			break;
		}
		pos += n;
	}
	free(cbuf);
	if (--io->pending == 0)
		finish_request(io);
}

/* ---- writes ---- */

static struct qcow2_inflight *inflight_find(struct qcow2 *s, uint64_t gc)
{
	for (struct qcow2_inflight *f = s->inflight; f; f = f->next)
		if (f->guest_cluster == gc)
			return f;
	return NULL;
}

/* Drops the inflight entry of gc; its waiters try again on their queues. */
static void inflight_end(struct qcow2 *s, uint64_t gc)
{
	struct qcow2_inflight **pp = &s->inflight, *f;
	struct blk_io *w, *next;

	while ((f = *pp) && f->guest_cluster != gc)
		pp = &f->next;
	if (!f)
		return;
	*pp = f->next;
	for (w = f->waiters; w; w = next) {
		next = w->next;
		blk_queue_post_remote(w->q, w);
	}
	free(f);
}

/* The new cluster's data is on disk: point the L2 entry at it. */
static void alloc_write_done(struct host_io *hio, int ret)
{
	struct blk_io *p = hio->opaque;
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t gc = p->offset >> s->cluster_bits, off, n;

	pthread_mutex_lock(&s->lock);
	if (!ret)
		ret = qcow2_l2_set(s, gc, p->P_HOST | QCOW2_OFLAG_COPIED);
	if (!ret) {
		qcow2_entry_clusters(s, p->P_OLD, &off, &n);
		ret = qcow2_free_later(s, off, n, false);
	} else {
		qcow2_free_later(s, p->P_HOST, 1, false);
	}
	inflight_end(s, gc);
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(p, ret);
}

/* Writes the merged cluster buffer p->p[0] to the new host cluster. */
static void write_cow_buffer(struct blk_io *p)
{
	struct qcow2 *s = qcow2_of(p->dev);

	iov_to_buf(p->iov, p->iovcnt, 0, (uint8_t *)p->p[0] + p->P_IN, p->len);
	p->inline_iov[0] = (struct iovec){ p->p[0], s->cluster_size };
	p->iov = p->inline_iov;
	p->iovcnt = 1;
	host_rw(p, HOST_WRITE, p->P_HOST, alloc_write_done);
}

/* An allocating write failed before its L2 update: undo and complete. */
static void alloc_failed(struct blk_io *p, int ret)
{
	struct qcow2 *s = qcow2_of(p->dev);

	pthread_mutex_lock(&s->lock);
	qcow2_free_later(s, p->P_HOST, 1, false);
	inflight_end(s, p->offset >> s->cluster_bits);
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(p, ret);
}

static void cow_read_done(struct blk_io *c, int ret)
{
	struct blk_io *p = c->opaque;

	blk_io_free(c);
	if (ret)
		alloc_failed(p, ret);
	else
		write_cow_buffer(p);
}

/* Fills the COW buffer with the cluster's old contents, then writes. */
static void cow_and_write(struct blk_io *p, bool was_zero)
{
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t cs = s->cluster_size, gstart = p->offset - p->P_IN;
	struct blk_dev *b = p->dev->backing;
	uint8_t *buf;
	int r = 0;

	if (p->P_IN == 0 && p->len == cs) { /* the write covers it all */
		host_rw(p, HOST_WRITE, p->P_HOST, alloc_write_done);
		return;
	}
	switch (classify(p->P_OLD)) {
	case K_UNALLOC:
		if (b && gstart < b->info.size)
			break;
		__attribute__((fallthrough)); /* no backing data: zeroes */
	case K_ZERO:
		if (was_zero) { /* a never-used cluster already reads as zeroes */
			host_rw(p, HOST_WRITE, p->P_HOST + p->P_IN, alloc_write_done);
			return;
		}
		break;
	default:
		break;
	}
	buf = blk_alloc_aligned(cs);
	if (!buf) {
		r = -ENOMEM;
		goto fail;
	}
	memset(buf, 0, cs);
	p->p[0] = buf;
	switch (classify(p->P_OLD)) {
	case K_DATA:
		r = blk_file_pread(p->dev, buf, cs, p->P_OLD & QCOW2_OFFSET_MASK);
		break;
	case K_COMPRESSED:
		r = qcow2_read_compressed(s, p->P_OLD, buf);
		break;
	case K_UNALLOC:
		if (b && gstart < b->info.size) {
			struct blk_io *c = blk_io_alloc(p->q);
			uint64_t m = MIN(cs, ALIGN_UP(b->info.size, b->info.logical_block_size) - gstart);

			if (!c) {
				r = -ENOMEM;
				break;
			}
			c->dev = b;
			c->op = BLK_OP_READ;
			c->offset = gstart;
			c->len = m;
			c->inline_iov[0] = (struct iovec){ buf, m };
			c->iov = c->inline_iov;
			c->iovcnt = 1;
			c->cb = cow_read_done;
			c->opaque = p;
			blk_io_dispatch(c);
			return;
		}
		break;
	case K_ZERO:
		break;
	}
fail:
	if (r)
		alloc_failed(p, r);
	else
		write_cow_buffer(p);
}

/*
 * Takes s->lock, unless gc's first write is in flight: then p waits for it
 * (it is dispatched again when that write has set the L2 entry) and the
 * caller must stop.
 */
static bool lock_unless_inflight(struct qcow2 *s, struct blk_io *p, uint64_t gc)
{
	struct qcow2_inflight *f;

	pthread_mutex_lock(&s->lock);
	f = inflight_find(s, gc);
	if (!f)
		return false;
	p->next = f->waiters;
	f->waiters = p;
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void write_piece(struct blk_io *p)
{
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t gc = p->offset >> s->cluster_bits, e;
	struct qcow2_inflight *f;
	bool was_zero = false;
	int64_t host;
	int r;

	if (lock_unless_inflight(s, p, gc))
		return;
	r = s->corrupt ? -EIO : qcow2_l2_lookup(s, gc, &e);
	if (!r && classify(e) == K_DATA && (e & QCOW2_OFLAG_COPIED)) {
		p->P_HOST = e & QCOW2_OFFSET_MASK;
		r = qcow2_busy_add(s, p->P_HOST >> s->cluster_bits);
		pthread_mutex_unlock(&s->lock);
		if (r)
			blk_io_complete(p, r);
		else
			host_rw(p, HOST_WRITE, p->P_HOST + p->P_IN, inplace_done);
		return;
	}
	f = r ? NULL : calloc(1, sizeof(*f));
	if (!r && !f)
		r = -ENOMEM;
	host = r ? r : qcow2_alloc_clusters(s, 1, &was_zero);
	if (host < 0) {
		free(f);
		pthread_mutex_unlock(&s->lock);
		blk_io_complete(p, (int)host);
		return;
	}
	f->guest_cluster = gc;
	f->next = s->inflight;
	s->inflight = f;
	pthread_mutex_unlock(&s->lock);
	p->P_HOST = host;
	p->P_OLD = e;
	cow_and_write(p, was_zero);
}

/* A run's data is on disk: point each L2 entry at its cluster. */
static void run_write_done(struct host_io *hio, int ret)
{
	struct blk_io *p = hio->opaque;
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t gc = p->offset >> s->cluster_bits, m = p->len >> s->cluster_bits;
	uint64_t *old = p->p[0];

	pthread_mutex_lock(&s->lock);
	for (uint64_t i = 0; i < m; i++) {
		uint64_t host = p->P_HOST + (i << s->cluster_bits), off, n;
		int r = ret ? ret : qcow2_l2_set(s, gc + i, host | QCOW2_OFLAG_COPIED);

		if (!r) {
			qcow2_entry_clusters(s, old[i], &off, &n);
			r = qcow2_free_later(s, off, n, false);
		} else {
			qcow2_free_later(s, host, 1, false);
		}
		if (r && !ret)
			ret = r;
		inflight_end(s, gc + i);
	}
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(p, ret);
}

/* An in-place run landed. */
static void run_inplace_done(struct host_io *hio, int ret)
{
	struct blk_io *p = hio->opaque;
	struct qcow2 *s = qcow2_of(p->dev);

	pthread_mutex_lock(&s->lock);
	for (uint64_t i = 0; i < p->len >> s->cluster_bits; i++)
		qcow2_busy_del(s, (p->P_HOST >> s->cluster_bits) + i);
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(p, ret);
}

/* The run cannot go as one: one piece per cluster instead. */
static void split_run(struct blk_io *p)
{
	struct qcow2 *s = qcow2_of(p->dev);
	struct blk_io *parent = p->opaque;
	uint64_t cs = s->cluster_size;
	int ret = 0;

	for (uint64_t done = 0; done < p->len; done += cs) {
		struct blk_io *c = blk_io_child(p, p->dev, QOP_WRITE_PIECE, p->offset + done,
						done, cs, piece_done);

		if (!c) {
			ret = -ENOMEM;
			break;
		}
		c->opaque = parent; /* it reports to the request, like p */
		c->P_IN = 0;
		parent->pending++;
		write_piece(c);
	}
	blk_io_complete(p, ret);
}

/*
 * Whole clusters written in one go: if none is in flight and all need a
 * new cluster (none is writable in place), they get contiguous host
 * clusters and one host write; if all are writable in place and
 * contiguous on the host, one in-place write. Anything else is split.
 */
static void write_run(struct blk_io *p)
{
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t gc = p->offset >> s->cluster_bits, m = p->len >> s->cluster_bits, e = 0, first = 0;
	uint64_t *old = malloc(m * sizeof(*old));
	unsigned inplace = 0;
	int64_t host;
	int r = old ? 0 : -ENOMEM;

	pthread_mutex_lock(&s->lock);
	if (s->corrupt)
		r = -EIO;
	for (uint64_t i = 0; i < m && !r; i++) {
		if (inflight_find(s, gc + i)) {
			r = 1;
			break;
		}
		r = qcow2_l2_lookup(s, gc + i, &e);
		old[i] = e;
		if (!r && classify(e) == K_DATA && (e & QCOW2_OFLAG_COPIED)) {
			if (!i)
				first = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFFSET_MASK) != first + (i << s->cluster_bits))
				r = 1;
			inplace++;
		}
	}
	if (!r && inplace == m) {
		for (uint64_t i = 0; i < m && !r; i++)
			r = qcow2_busy_add(s, (first >> s->cluster_bits) + i);
		pthread_mutex_unlock(&s->lock);
		free(old);
		if (r) {
			blk_io_complete(p, r);
			return;
		}
		p->P_HOST = first;
		host_rw(p, HOST_WRITE, first, run_inplace_done);
		return;
	}
	if (r || inplace) {
		pthread_mutex_unlock(&s->lock);
		free(old);
		if (r < 0)
			blk_io_complete(p, r);
		else
			split_run(p);
		return;
	}
	host = qcow2_alloc_clusters(s, m, NULL);
	p->P_HOST = host >= 0 ? (uint64_t)host : (uint64_t)-1;
	for (uint64_t i = 0; host >= 0 && i < m; i++) {
		struct qcow2_inflight *f = calloc(1, sizeof(*f));

		if (!f) {
			host = -ENOMEM;
			break;
		}
		f->guest_cluster = gc + i;
		f->next = s->inflight;
		s->inflight = f;
	}
	if (host < 0) {
		if (p->P_HOST != (uint64_t)-1)
			qcow2_free_later(s, p->P_HOST, m, false);
		for (uint64_t i = 0; i < m; i++)
			inflight_end(s, gc + i);
		pthread_mutex_unlock(&s->lock);
		free(old);
		blk_io_complete(p, (int)host);
		return;
	}
	pthread_mutex_unlock(&s->lock);
	p->P_HOST = host;
	p->p[0] = old; /* freed by piece_done */
	host_rw(p, HOST_WRITE, host, run_write_done);
}

/* A whole cluster of write-zeroes or discard: only the L2 entry changes. */
static void zero_piece(struct blk_io *p)
{
	struct qcow2 *s = qcow2_of(p->dev);
	uint64_t gc = p->offset >> s->cluster_bits, e, ne, off = 0, n = 0;
	bool discard = p->P_FLAGS & 1, unmap = p->P_FLAGS & 2;
	int r;

	if (lock_unless_inflight(s, p, gc))
		return;
	r = s->corrupt ? -EIO : qcow2_l2_lookup(s, gc, &e);
	if (!r) {
		if (discard)
			ne = p->dev->backing ? QCOW2_OFLAG_ZERO : 0;
		else if (!unmap && classify(e) == K_DATA && (e & QCOW2_OFLAG_COPIED))
			ne = e | QCOW2_OFLAG_ZERO; /* keep the allocation */
		else
			ne = QCOW2_OFLAG_ZERO;
		if (!(ne & QCOW2_OFFSET_MASK))
			qcow2_entry_clusters(s, e, &off, &n);
		if (ne != e)
			r = qcow2_l2_set(s, gc, ne);
		if (!r)
			r = qcow2_free_later(s, off, n, true);
	}
	pthread_mutex_unlock(&s->lock);
	blk_io_complete(p, r);
}

static void qwrite(struct blk_io *io, bool zeroes)
{
	struct qcow2 *s = qcow2_of(io->dev);
	uint64_t cs = s->cluster_size, pos = 0;

	blk_dev_mark_written(io->dev);
	io->pending = 1;
	while (pos < io->len) {
		uint64_t off = io->offset + pos, in = off & (cs - 1), n = MIN(cs - in, io->len - pos);
		bool whole = in == 0 && n == cs;
		struct blk_io *p;

		if (io->op == BLK_OP_DISCARD && !whole) { /* a hint: skip partial clusters */
			pos += n;
			continue;
		}
		if (zeroes && !whole) {
			/* Partial write-zeroes: an ordinary write of zeroes. */
			void *z = calloc(1, n);

			p = blk_io_alloc(io->q);
			if (!p || !z) {
				free(z);
				io->ret = -ENOMEM;
				break;
			}
			p->dev = io->dev;
			p->offset = off;
			p->len = n;
			p->p[1] = z;
			p->inline_iov[0] = (struct iovec){ z, n };
			p->iov = p->inline_iov;
			p->iovcnt = 1;
			p->cb = piece_done;
			p->opaque = io;
		} else {
			/* Whole clusters in a row go as one run (one allocation
			   of contiguous clusters, one host write). */
			while (!zeroes && whole && n < MAX_RUN * cs && io->len - pos - n >= cs)
				n += cs;
			p = blk_io_child(io, io->dev, QOP_WRITE_PIECE, off, pos, n, piece_done);
			if (!p) {
				io->ret = -ENOMEM;
				break;
			}
		}
		p->op = zeroes && whole ? QOP_ZERO_PIECE :
			n > cs ? QOP_WRITE_RUN : QOP_WRITE_PIECE;
		p->P_IN = in;
		p->P_FLAGS = (io->op == BLK_OP_DISCARD) | ((io->flags & BLK_REQ_UNMAP) ? 2 : 0);
		io->pending++;
		if (p->op == QOP_ZERO_PIECE)
			zero_piece(p);
		else if (p->op == QOP_WRITE_RUN)
			write_run(p);
		else
			write_piece(p);
		pos += n;
	}
	if (--io->pending == 0)
		finish_request(io);
}

/* ---- flush ---- */

static void flush_done(struct host_io *hio, int ret)
{
	blk_io_complete(hio->opaque, ret);
}

static void start_flush(struct blk_io *io)
{
	struct qcow2 *s = qcow2_of(io->dev);
	int r;

	if (s->read_only || io->dev->cache == BLK_CACHE_UNSAFE) {
		blk_io_complete(io, 0);
		return;
	}
	pthread_mutex_lock(&s->lock);
	r = qcow2_flush_metadata(s, false);
	pthread_mutex_unlock(&s->lock);
	if (r) {
		blk_io_complete(io, r);
		return;
	}
	/* The data barrier itself runs on the engine. */
	blk_host_io_init(&io->hio, io->dev, HOST_FDATASYNC, 0, NULL, 0);
	io->hio.cb = flush_done;
	io->hio.opaque = io;
	host_io_submit(io->q, &io->hio);
}

void qcow2_submit(struct blk_io *io)
{
	switch (io->op) {
	case BLK_OP_READ:
		qread(io);
		return;
	case BLK_OP_WRITE:
		qwrite(io, false);
		return;
	case BLK_OP_WRITE_ZEROES:
	case BLK_OP_DISCARD:
		qwrite(io, true);
		return;
	case BLK_OP_FLUSH:
		start_flush(io);
		return;
	}
	if (io->op == QOP_WRITE_PIECE) { /* dispatched again after waiting */
		write_piece(io);
		return;
	}
	if (io->op == QOP_ZERO_PIECE) {
		zero_piece(io);
		return;
	}
	if (io->op == QOP_WRITE_RUN) {
		write_run(io);
		return;
	}
	blk_io_complete(io, -EINVAL);
}
