// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "virtio/blk.h"
#include "virtio/blk_defs.h"
#include "virtio/virtio.h"

#define BIT(b) (1ULL << (b))

/* Config layout (struct virtio_blk_config). */
#define C_CAPACITY 0
#define C_SEG_MAX 12
#define C_BLK_SIZE 20
#define C_PHYS_EXP 24
#define C_MIN_IO 26
#define C_OPT_IO 28
#define C_NUM_QUEUES 34
#define C_MAX_DISCARD_SECTORS 36
#define C_MAX_DISCARD_SEG 40
#define C_DISCARD_ALIGN 44
#define C_MAX_WZ_SECTORS 48
#define C_MAX_WZ_SEG 52
#define C_WZ_MAY_UNMAP 56
#define C_SIZE 60

#define QUEUE_SIZE 256
#define SEG_MAX (QUEUE_SIZE - 2)
#define MAX_RANGES 32                 /* discard / write-zeroes segments per request */
#define MAX_RANGE_SECTORS (1u << 22)  /* 2 GiB per segment */
#define SECTOR 512ULL
#define PCI_CLASS_STORAGE_SCSI 0x010000

struct blk_hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors, flags;
};

struct bq {
	struct virtio_blk *blk;
	unsigned index;
	struct blk_queue *q;
	struct event_handler done_h;
	unsigned inflight;
	bool dropping; /* reset in progress: complete without touching the ring */
	bool unsignalled; /* used entries pushed since the last notification */
	/* A read or write popped but waiting for the I/O limits; the queue stops meanwhile. */
	struct vreq *held;
	enum blk_op held_op;
	uint64_t held_off, held_since;
	struct blk_throttle_ticket tk_own, tk_group;
};

struct vreq {
	struct bq *bq;
	uint16_t head;
	uint8_t *status;
	uint32_t written; /* bytes for the used ring */
	unsigned pending;
	bool failed, unsupported;
	unsigned nreq;
	struct blk_req *reqs;
	unsigned iovcnt;
	struct iovec iov[]; /* the data buffers */
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct blk_dev *dev;
	struct blk_info info;
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned nq;
	struct bq q[VIRTIO_BLK_MAX_QUEUES];
	struct virtq_elem elem;

	struct blk_throttle own;    /* this disk's limits */
	struct blk_throttle *group; /* a group's, or NULL */
	struct blk_throttle_member own_m, group_m;
	struct event_timer thr_timer; /* when the first held request may go */
	bool thr_timer_ready;
	unsigned thr_next;            /* the queue served first when it fires */
	struct virtio_blk_throttle_stats thr_stats;
};

static void complete(struct vreq *r)
{
	struct bq *bq = r->bq;
	struct virtio_dev *vdev = &bq->blk->vdev;

	/* Live migration's dirty log: the data a read brought in (guest_mem.h). */
	if (r->written)
		guest_mem_mark_dirty_iov(vdev->mem, r->iov, r->iovcnt);
	if (!bq->dropping) {
		*r->status = r->unsupported ? S_UNSUPP : r->failed ? S_IOERR : S_OK;
		guest_mem_mark_dirty(vdev->mem, r->status, 1);
		virtq_push(virtio_vq(vdev, bq->index), r->head, r->written + 1);
		bq->unsignalled = true;
	}
	bq->inflight--;
	free(r);
}

static void req_done(struct blk_req *req, int ret)
{
	struct vreq *r = req->opaque;

	if (ret < 0) {
		r->failed = true;
		if (ret != -EROFS && ret != -EINVAL)
			log_warn("%s: %s: request failed: %s", r->bq->blk->vdev.name,
				 blk_dev_name(r->bq->blk->dev), strerror(-ret));
	}
	if (--r->pending == 0)
		complete(r);
}

/*
 * One notification for all the requests a pass completed, so a batch of
 * completions costs the guest one interrupt (EVENT_IDX would suppress most
 * of the others anyway, but only after each cost us an irqfd write).
 */
static void signal_used(struct bq *bq)
{
	if (bq->unsignalled) {
		bq->unsignalled = false;
		virtio_notify_queue(&bq->blk->vdev, bq->index);
	}
}

/* Whether [sector, +bytes) lies on the disk, without overflowing. */
static bool range_ok(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = b->info.size;

	return sector <= cap / SECTOR && bytes <= cap - sector * SECTOR;
}

static void submit(struct vreq *r, unsigned i, enum blk_op op, uint32_t flags, uint64_t off,
		   uint64_t len)
{
	r->reqs[i] = (struct blk_req){
		.op = op, .flags = flags, .offset = off, .len = len,
		.iov = r->iov, .iovcnt = r->iovcnt, .done = req_done, .opaque = r,
	};
	r->pending++;
	blk_queue_submit(r->bq->q, &r->reqs[i]);
}

static uint64_t throttle_wait(struct virtio_blk *b, struct bq *bq, uint64_t now)
{
	uint64_t w = blk_throttle_wait_ns(&b->own, &bq->tk_own, now);

	if (b->group)
		w = MAX(w, blk_throttle_wait_ns(b->group, &bq->tk_group, now));
	return w;
}

/* Reserves a read or write in the limits; false when it must wait (it is then held). */
static bool throttle_admit(struct virtio_blk *b, struct bq *bq, struct vreq *r, enum blk_op op,
			   uint64_t off, uint64_t bytes)
{
	uint64_t now;
	bool write = op == BLK_OP_WRITE;

	/*
	 * No limits: no reservation, and above all no clock read per request
	 * (a system call where the clocksource is not the TSC, as in nested or
	 * emulated hosts). A limit set meanwhile counts from the next request.
	 */
	if (!blk_throttle_active(&b->own) && !(b->group && blk_throttle_active(b->group)))
		return true;
	now = tb_clock_ns();

	blk_throttle_reserve(&b->own, write, bytes, now, &bq->tk_own);
	if (b->group)
		blk_throttle_reserve(b->group, write, bytes, now, &bq->tk_group);
	if (!throttle_wait(b, bq, now))
		return true;
	bq->held = r;
	bq->held_op = op;
	bq->held_off = off;
	bq->held_since = now;
	return false;
}

/* Arms the timer for the first held request; with none held it may fire idle. */
static void throttle_schedule(struct virtio_blk *b)
{
	uint64_t now = tb_clock_ns(), first = UINT64_MAX;

	for (unsigned i = 0; i < b->nq; i++)
		if (b->q[i].held)
			first = MIN(first, throttle_wait(b, &b->q[i], now));
	if (first != UINT64_MAX && event_timer_arm(&b->thr_timer, first, 0) < 0)
		log_warn("%s: cannot arm the I/O limit timer: %s", b->vdev.name, strerror(errno));
}

/*
 * DISCARD / WRITE_ZEROES: the out data is an array of ranges (5.2.6.2),
 * copied once so the guest cannot change them between check and use.
 */
static void submit_ranges(struct virtio_blk *b, struct vreq *r, uint32_t type,
			  const struct virtq_elem *e, unsigned nranges)
{
	struct blk_range rg[MAX_RANGES];
	bool wz = type == T_WRITE_ZEROES;

	if (wz ? !b->info.can_write_zeroes : !b->info.can_discard) {
		r->unsupported = true;
		return;
	}
	if (b->info.read_only) {
		r->failed = true;
		return;
	}
	virtio_iov_to_buf(e->iov, e->n_out, sizeof(struct blk_hdr), rg, nranges * sizeof(rg[0]));
	for (unsigned i = 0; i < nranges; i++) {
		if (rg[i].flags & ~(uint32_t)(wz ? WZ_UNMAP : 0)) {
			log_guest("%s: range flags 0x%x", b->vdev.name, rg[i].flags);
			r->unsupported = true;
			return;
		}
		if (!rg[i].num_sectors || rg[i].num_sectors > MAX_RANGE_SECTORS ||
		    !range_ok(b, rg[i].sector, rg[i].num_sectors * SECTOR)) {
			log_guest("%s: range of %u sectors at %llu", b->vdev.name, rg[i].num_sectors,
				  (unsigned long long)rg[i].sector);
			r->failed = true;
			return;
		}
	}
	for (unsigned i = 0; i < nranges; i++)
		submit(r, i, wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD,
		       wz && (rg[i].flags & WZ_UNMAP) ? BLK_REQ_UNMAP : 0, rg[i].sector * SECTOR,
		       rg[i].num_sectors * SECTOR);
}

/* Splits the chain into header, data and status, then issues it. */
static int handle(struct virtio_blk *b, struct bq *bq, struct virtq_elem *e)
{
	struct blk_hdr h;
	struct vreq *r;
	const struct iovec *last;
	uint64_t out_data, in_data;
	unsigned data_iovs, nranges = 0;

	if (!e->n_in) {
		log_guest("%s: request without a status byte", b->vdev.name);
		return -EIO;
	}
	last = &e->iov[e->n_out + e->n_in - 1];
	data_iovs = e->n_out + e->n_in;
	r = calloc(1, sizeof(*r) + data_iovs * sizeof(struct iovec) +
			      MAX_RANGES * sizeof(struct blk_req));
	if (!r)
		return -ENOMEM;
	r->bq = bq;
	r->head = e->head;
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->reqs = (struct blk_req *)&r->iov[data_iovs];
	bq->inflight++;
	r->pending = 1; /* held until every sub-request is submitted */
	if (e->out_len < sizeof(h)) {
		log_guest("%s: request header of %llu bytes", b->vdev.name,
			  (unsigned long long)e->out_len);
		r->failed = true;
		goto out;
	}
	virtio_iov_to_buf(e->iov, e->n_out, 0, &h, sizeof(h));
	out_data = e->out_len - sizeof(h);
	in_data = e->in_len - 1;
	switch (h.type) {
	case T_IN:
	case T_OUT: {
		bool in = h.type == T_IN;
		const struct iovec *src = in ? &e->iov[e->n_out] : e->iov;
		unsigned cnt = in ? e->n_in : e->n_out;
		size_t skip = in ? 0 : sizeof(h), left = in ? in_data : out_data;

		if ((in ? out_data : in_data) || !left || left % SECTOR ||
		    !range_ok(b, h.sector, left)) {
			log_guest("%s: %s of %zu bytes at sector %llu (disk %llu bytes; %llu bytes "
				  "the wrong way)", b->vdev.name, in ? "read" : "write", left,
				  (unsigned long long)h.sector, (unsigned long long)b->info.size,
				  (unsigned long long)(in ? out_data : in_data));
			r->failed = true;
			break;
		}
		if (!in && b->info.read_only) {
			r->failed = true;
			break;
		}
		/* Copy the data part of the iovecs, without header and status. */
		for (unsigned i = 0; i < cnt && left; i++) {
			size_t l = src[i].iov_len;
			uint8_t *p = src[i].iov_base;

			if (skip >= l) {
				skip -= l;
				continue;
			}
			p += skip;
			l -= skip;
			skip = 0;
			l = MIN(l, left);
			r->iov[r->iovcnt++] = (struct iovec){ .iov_base = p, .iov_len = l };
			left -= l;
		}
		if (in)
			r->written = (uint32_t)in_data;
		if (!throttle_admit(b, bq, r, in ? BLK_OP_READ : BLK_OP_WRITE, h.sector * SECTOR,
				    in ? in_data : out_data))
			return 1; /* held: the caller takes no more from this queue */
		submit(r, 0, in ? BLK_OP_READ : BLK_OP_WRITE, 0, h.sector * SECTOR, 0);
		break;
	}
	case T_FLUSH:
		submit(r, 0, BLK_OP_FLUSH, 0, 0, 0);
		break;
	case T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES];

		memcpy(id, b->serial, sizeof(id));
		r->written = (uint32_t)virtio_iov_from_buf(&e->iov[e->n_out], e->n_in, 0, id,
						    MIN(in_data, sizeof(id)));
		guest_mem_mark_dirty_iov(b->vdev.mem, &e->iov[e->n_out], e->n_in);
		break;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES:
		nranges = (unsigned)(out_data / sizeof(struct blk_range));
		if (!nranges || out_data % sizeof(struct blk_range) || nranges > MAX_RANGES ||
		    in_data) {
			log_guest("%s: %llu bytes of ranges", b->vdev.name,
				  (unsigned long long)out_data);
			r->failed = true;
			break;
		}
		submit_ranges(b, r, h.type, e, nranges);
		break;
	default:
		r->unsupported = true;
		break;
	}
out:
	if (--r->pending == 0)
		complete(r);
	return 0;
}

/*
 * Kicks the driver may skip while requests are in flight. Each kick is a VM
 * exit and a wake-up of this thread; with many requests outstanding a
 * completion comes soon anyway, and completions() looks at the ring then.
 * So a guest keeping the queue deep (fio at QD32) seldom kicks, and one with
 * few requests out kicks as usual: a new request never waits longer than
 * the next completion of one of at least KICK_SLACK_MIN in flight. With 4
 * the 1 MiB sequential write at QD8 looked slower in the lab (0.75x QEMU in
 * two runs, noisy), so only deep queues of small requests get the slack.
 */
#define KICK_SLACK_MIN 16

static uint16_t kick_slack(const struct bq *bq)
{
	return bq->inflight >= KICK_SLACK_MIN ? (uint16_t)(bq->inflight / 2) : 0;
}

static void process(struct virtio_blk *b, struct bq *bq)
{
	struct virtio_dev *vdev = &b->vdev;
	struct virtq *vq = virtio_vq(vdev, bq->index);
	int r = 0;

	for (;;) {
		virtq_disable_kicks(vq);
		/* A guest re-posting heads in flight cannot make us hold more than a ring. */
		while (!bq->held && bq->inflight < QUEUE_SIZE && (r = virtq_pop(vq, &b->elem)) > 0) {
			r = handle(b, bq, &b->elem);
			if (r == -ENOMEM)
				virtq_unpop(vq, 1); /* try again on the next kick or completion */
			if (r < 0)
				break;
		}
		blk_queue_kick(bq->q);
		/*
		 * Reap what finished already (the sync engine, errors), so
		 * inflight counts only requests whose completion wakes us later:
		 * the kick slack relies on that wake-up. The eventfd is left to
		 * its edge-triggered handler (below).
		 */
		blk_queue_poll(bq->q);
		if (r < 0 || bq->held || bq->inflight >= QUEUE_SIZE ||
		    !virtq_enable_kicks_after(vq, kick_slack(bq)))
			break;
	}
	signal_used(bq);
	if (r == -EIO)
		virtio_dev_error(vdev);
	else if (bq->held)
		throttle_schedule(b); /* kicks stay off until the held request goes */
}

/* The held request goes to the block layer. */
static void release_held(struct bq *bq)
{
	struct vreq *r = bq->held;

	bq->held = NULL;
	submit(r, 0, bq->held_op, 0, bq->held_off, 0);
	if (--r->pending == 0)
		complete(r);
}

/* The timer: held requests whose time has come go, queues in turn, then their queues resume. */
static void throttle_fire(struct event_timer *t)
{
	struct virtio_blk *b = container_of(t, struct virtio_blk, thr_timer);
	uint64_t now = tb_clock_ns();

	pthread_mutex_lock(&b->vdev.lock);
	if (virtio_dev_running(&b->vdev) && pci_bus_master_enabled(b->vdev.pci)) {
		for (unsigned k = 0; k < b->nq; k++) {
			struct bq *bq = &b->q[(b->thr_next + k) % b->nq];
			struct vreq *r = bq->held;

			if (!r || throttle_wait(b, bq, now))
				continue;
			b->thr_stats.delayed++;
			b->thr_stats.delay_ns += now - bq->held_since;
			release_held(bq);
			process(b, bq);
		}
		b->thr_next = (b->thr_next + 1) % b->nq;
		throttle_schedule(b);
	}
	pthread_mutex_unlock(&b->vdev.lock);
}

/* New limits: look at the held requests again now (not under t->lock: see throttle.h). */
static void throttle_wake(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->vdev.lock);
	if (b->thr_timer_ready)
		event_timer_arm(&b->thr_timer, 0, 0);
	pthread_mutex_unlock(&b->vdev.lock);
}

static void own_limits_changed(struct blk_throttle_member *m)
{
	throttle_wake(container_of(m, struct virtio_blk, own_m));
}

static void group_limits_changed(struct blk_throttle_member *m)
{
	throttle_wake(container_of(m, struct virtio_blk, group_m));
}

void virtio_blk_set_limits(struct virtio_blk *b, const struct blk_limits *lim)
{
	blk_throttle_set(&b->own, lim);
}

void virtio_blk_get_limits(struct virtio_blk *b, struct blk_limits *lim)
{
	blk_throttle_get(&b->own, lim);
}

void virtio_blk_join_group(struct virtio_blk *b, struct blk_throttle *group)
{
	b->group = group;
	blk_throttle_join(group, &b->group_m);
}

void virtio_blk_throttle_stats(struct virtio_blk *b, struct virtio_blk_throttle_stats *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	*out = b->thr_stats;
	out->waiting = 0;
	for (unsigned i = 0; i < b->nq; i++)
		out->waiting += b->q[i].held != NULL;
	pthread_mutex_unlock(&b->vdev.lock);
}

static void blk_kick(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_blk *b = container_of(vdev, struct virtio_blk, vdev);

	process(b, &b->q[q]);
}

static void completions(struct event_handler *h, uint32_t events)
{
	struct bq *bq = container_of(h, struct bq, done_h);
	struct virtio_blk *b = bq->blk;

	pthread_mutex_lock(&b->vdev.lock);
	blk_queue_poll(bq->q);
	signal_used(bq);
	/*
	 * Chains the driver made available without kicking (kick_slack()),
	 * or left waiting while the queue was full: the interrupt went first.
	 */
	if (!bq->held && bq->inflight < QUEUE_SIZE && virtio_dev_running(&b->vdev) &&
	    pci_bus_master_enabled(b->vdev.pci))
		process(b, bq);
	pthread_mutex_unlock(&b->vdev.lock);
}

static void blk_reset(struct virtio_dev *vdev)
{
	struct virtio_blk *b = container_of(vdev, struct virtio_blk, vdev);

	/* The guest may reuse its memory after reset: finish everything first. */
	for (unsigned i = 0; i < b->nq; i++) {
		struct vreq *held = b->q[i].held;

		b->q[i].dropping = true;
		b->q[i].held = NULL;
		if (held)
			complete(held);
		blk_queue_drain(b->q[i].q);
		b->q[i].dropping = false;
	}
}

/*
 * The VM pauses: every request in flight completes into its used ring. A
 * request the limits hold goes now, early: it is off the avail ring, so a
 * snapshot taken while it waited would lose it (its tokens are spent already).
 */
static void blk_quiesce(struct virtio_dev *vdev)
{
	struct virtio_blk *b = container_of(vdev, struct virtio_blk, vdev);

	for (unsigned i = 0; i < b->nq; i++) {
		if (b->q[i].held)
			release_held(&b->q[i]);
		blk_queue_drain(b->q[i].q);
	}
}

/* Before a snapshot or a switch-over: what the guest wrote is on the disk for the next opener. */
static int blk_sync(struct virtio_dev *vdev)
{
	struct virtio_blk *b = container_of(vdev, struct virtio_blk, vdev);
	int r;

	if (b->info.read_only)
		return 0;
	r = blk_flush(b->q[0].q);
	if (r < 0)
		log_error("%s: %s: cannot flush: %s", vdev->name, blk_dev_name(b->dev), strerror(-r));
	return r;
}

/* The saved config must be this disk's: same size, block size, limits, queues. */
static int blk_load_config(struct virtio_dev *vdev, const uint8_t *config, char *err, size_t errlen)
{
	uint64_t saved, mine;

	if (!memcmp(config, vdev->config, C_SIZE))
		return 0;
	memcpy(&saved, config + C_CAPACITY, 8);
	memcpy(&mine, vdev->config + C_CAPACITY, 8);
	if (saved != mine)
		snprintf(err, errlen, "the saved disk has %llu sectors, %s has %llu: not the same disk",
			 (unsigned long long)saved, blk_dev_name(container_of(vdev, struct virtio_blk,
									     vdev)->dev),
			 (unsigned long long)mine);
	else
		snprintf(err, errlen, "the disk's block size, limits or queue count differ from the "
			 "saved one's");
	return -EINVAL;
}

static const struct virtio_dev_ops blk_ops = {
	.reset = blk_reset,
	.queue_kick = blk_kick,
	.quiesce = blk_quiesce,
	.sync = blk_sync,
	.load_config = blk_load_config,
};

static void fill_config(struct virtio_blk *b)
{
	struct virtio_dev *v = &b->vdev;
	uint32_t lbs = b->info.logical_block_size, pbs = b->info.physical_block_size;
	unsigned exp = 0;

	while (pbs > lbs && (lbs << (exp + 1)) <= pbs)
		exp++;
	virtio_config_put64(v, C_CAPACITY, b->info.size / SECTOR);
	virtio_config_put32(v, C_SEG_MAX, SEG_MAX);
	virtio_config_put32(v, C_BLK_SIZE, lbs);
	v->config[C_PHYS_EXP] = (uint8_t)exp;
	virtio_config_put16(v, C_MIN_IO, 1);
	virtio_config_put32(v, C_OPT_IO, b->info.opt_io_size / lbs);
	virtio_config_put16(v, C_NUM_QUEUES, (uint16_t)b->nq);
	virtio_config_put32(v, C_MAX_DISCARD_SECTORS, MAX_RANGE_SECTORS);
	virtio_config_put32(v, C_MAX_DISCARD_SEG, MAX_RANGES);
	virtio_config_put32(v, C_DISCARD_ALIGN,
			    MAX(b->info.discard_granularity, lbs) / (uint32_t)SECTOR);
	virtio_config_put32(v, C_MAX_WZ_SECTORS, MAX_RANGE_SECTORS);
	virtio_config_put32(v, C_MAX_WZ_SEG, MAX_RANGES);
	v->config[C_WZ_MAY_UNMAP] = 1;
}

static void teardown(struct virtio_blk *b)
{
	if (b->thr_timer_ready)
		event_timer_destroy(b->vdev.loop, &b->thr_timer);
	blk_throttle_leave(&b->own, &b->own_m);
	if (b->group)
		blk_throttle_leave(b->group, &b->group_m);
	blk_throttle_destroy(&b->own);
	for (unsigned i = 0; i < b->nq; i++) {
		if (!b->q[i].q)
			continue;
		event_loop_del(b->vdev.loop, &b->q[i].done_h);
		blk_queue_destroy(b->q[i].q);
	}
	blk_close(b->dev);
	free(b);
}

struct virtio_blk *virtio_blk_create_dev(struct pci_host *pci, const struct guest_mem *mem,
					 struct blk_dev *dev, enum blk_cache cache,
					 const char *serial, unsigned queues,
					 struct event_loop *loop)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	uint64_t f = BIT(BLK_F_SEG_MAX) | BIT(BLK_F_BLK_SIZE) | BIT(BLK_F_TOPOLOGY) | BIT(BLK_F_MQ);
	int r = -EINVAL;

	if (!b) {
		blk_close(dev);
		errno = ENOMEM;
		return NULL;
	}
	b->dev = dev;
	blk_throttle_init(&b->own, NULL, NULL);
	b->own_m.wake = own_limits_changed;
	b->group_m.wake = group_limits_changed;
	blk_throttle_join(&b->own, &b->own_m);
	blk_get_info(dev, &b->info);
	b->nq = MIN(MAX(queues, 1u), (unsigned)VIRTIO_BLK_MAX_QUEUES);
	strncpy(b->serial, serial ? serial : "", sizeof(b->serial));
	if (b->info.read_only)
		f |= BIT(BLK_F_RO);
	else
		f |= (b->info.can_discard ? BIT(BLK_F_DISCARD) : 0) |
		     (b->info.can_write_zeroes ? BIT(BLK_F_WRITE_ZEROES) : 0);
	/* block.h: writethrough needs no flush; the others do. */
	if (cache != BLK_CACHE_WRITETHROUGH)
		f |= BIT(BLK_F_FLUSH);
	if (!b->info.size || b->info.size % SECTOR || !b->info.logical_block_size)
		goto fail;
	r = virtio_dev_init(&b->vdev, pci, mem, &(struct virtio_dev_desc){
		.name = "virtio-blk",
		.device_id = VIRTIO_ID_BLOCK,
		.class_code = PCI_CLASS_STORAGE_SCSI,
		.features = f,
		.num_queues = b->nq,
		.queue_max_size = QUEUE_SIZE,
		.config_size = C_SIZE,
		.ops = &blk_ops,
	}, loop);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < b->nq; i++) {
		struct bq *bq = &b->q[i];

		bq->blk = b;
		bq->index = i;
		r = blk_queue_create(dev, QUEUE_SIZE, &bq->q);
		if (r < 0)
			goto fail_dev;
		bq->done_h = (struct event_handler){ .fd = blk_queue_fd(bq->q), .cb = completions };
		/*
		 * Edge-triggered, so the counter need not be read on each wake-up:
		 * in a nested or emulated host every system call per request
		 * shows in the IOPS.
		 */
		r = event_loop_add(b->vdev.loop, &bq->done_h, EPOLLIN | EPOLLET);
		if (r < 0)
			goto fail_dev;
	}
	r = event_timer_init(b->vdev.loop, &b->thr_timer, throttle_fire);
	if (r < 0)
		goto fail_dev;
	b->thr_timer_ready = true;
	fill_config(b);
	r = virtio_dev_start(&b->vdev);
	if (r < 0)
		goto fail_dev;
	return b;
fail_dev:
	virtio_dev_uninit(&b->vdev);
fail:
	teardown(b);
	errno = -r;
	return NULL;
}

struct virtio_blk *virtio_blk_create(struct pci_host *pci, const struct guest_mem *mem,
				     const struct virtio_blk_opts *opts, unsigned default_queues,
				     unsigned open_flags, struct event_loop *loop,
				     char *err, size_t errlen)
{
	struct blk_open_opts oo = {
		.path = opts->path, .format = opts->format, .read_only = opts->read_only,
		.cache = opts->cache, .aio = opts->aio, .flags = open_flags,
	};
	struct virtio_blk *b;
	struct blk_dev *dev;
	int r = blk_open(&oo, &dev, err, errlen);

	if (r < 0)
		return NULL;
	b = virtio_blk_create_dev(pci, mem, dev, opts->cache, opts->serial,
				  opts->queues ? opts->queues : default_queues, loop);
	if (!b)
		snprintf(err, errlen, "--disk %s: cannot create the device: %s", opts->path,
			 strerror(errno));
	else
		virtio_blk_set_limits(b, &opts->limits);
	return b;
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *b)
{
	return &b->vdev;
}

struct blk_dev *virtio_blk_image(struct virtio_blk *b)
{
	return b->dev;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	virtio_dev_uninit(&b->vdev); /* resets: drains every queue */
	teardown(b);
}
