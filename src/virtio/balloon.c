// SPDX-License-Identifier: Apache-2.0
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "keel/parse.h"
#include "keel/token_bucket.h"
#include "virtio/balloon.h"
#include "virtio/options.h"
#include "virtio/virtio.h"

/* Feature bits (5.5.3). */
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define F_REPORTING 5
#define BIT(b) (1ULL << (b))

/* Config layout (struct virtio_balloon_config). */
#define C_NUM_PAGES 0
#define C_ACTUAL 4
#define C_SIZE 16 /* free_page_hint_cmd_id and poison_val follow, unused */

#define INFLATEQ 0
#define DEFLATEQ 1
#define NO_QUEUE 0xffffu
#define QUEUE_SIZE 128
#define PFNS_PER_ROUND 256 /* Linux sends at most 256 page numbers per buffer */
#define PCI_CLASS_OTHER 0xff0000

struct stat_entry {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

struct virtio_balloon {
	struct virtio_dev vdev;
	struct virtio_balloon_opts opts;
	struct balloon_memory bm;
	unsigned stats_q, report_q; /* where the negotiated queues are */
	bool stats_held;            /* the guest's statistics buffer, kept until we want more */
	uint16_t stats_head;
	uint64_t stats_at_ns;
	struct event_timer stats_timer;
	bool timer_ready;
	struct virtio_balloon_info info;
	struct virtq_elem elem;
};

static const char *const stat_names[BALLOON_S_COUNT] = {
	"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
	"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
};

const char *balloon_stat_name(enum balloon_stat s)
{
	return stat_names[s];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Drops repeats from a sorted array; returns the new length. */
static size_t unique(uint32_t *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (!k || v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

/* Pages [pfn, +n) given up (inflate) or taken back (deflate). */
static void pfn_run(struct virtio_balloon *b, uint64_t pfn, uint64_t n, bool inflate)
{
	void *hva = guest_mem_ptr(b->vdev.mem, pfn * BALLOON_PAGE, n * BALLOON_PAGE);

	if (!hva) {
		/* A run across a hole in guest RAM: page by page, skipping what is not RAM. */
		if (n > 1) {
			for (uint64_t i = 0; i < n; i++)
				pfn_run(b, pfn + i, 1, inflate);
			return;
		}
		log_guest("%s: page frame 0x%llx is not guest RAM", b->vdev.name,
			  (unsigned long long)pfn);
		return;
	}
	if (inflate) {
		int64_t r = b->bm.discard(b->bm.opaque, hva, n * BALLOON_PAGE, false);

		b->info.inflated_pages += n;
		if (r < 0)
			b->info.discard_errors++;
		else
			b->info.discarded_bytes += (uint64_t)r;
	} else {
		b->bm.reuse(b->bm.opaque, hva, n * BALLOON_PAGE);
		b->info.deflated_pages += n;
	}
}

/* One inflate or deflate buffer: little-endian 32-bit page frame numbers. */
static void pfn_buffer(struct virtio_balloon *b, const struct virtq_elem *e, bool inflate)
{
	uint32_t pfns[PFNS_PER_ROUND];

	for (uint64_t off = 0; off < e->out_len;) {
		size_t n = virtio_iov_to_buf(e->iov, e->n_out, off, pfns, sizeof(pfns)) / 4;

		if (!n)
			break;
		off += n * 4;
		/* Sorted and unique, neighbouring pages make one call to the host each. */
		qsort(pfns, n, sizeof(pfns[0]), cmp_u32);
		n = unique(pfns, n);
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;

			while (j < n && pfns[j] == pfns[j - 1] + 1)
				j++;
			pfn_run(b, pfns[i], j - i, inflate);
			i = j;
		}
	}
}

/* The guest's statistics: packed {le16 tag, le64 value} entries. */
static void stats_buffer(struct virtio_balloon *b, const struct virtq_elem *e)
{
	struct stat_entry s;

	for (uint64_t off = 0; off + sizeof(s) <= e->out_len; off += sizeof(s)) {
		virtio_iov_to_buf(e->iov, e->n_out, off, &s, sizeof(s));
		if (s.tag < BALLOON_S_COUNT) {
			b->info.stats[s.tag] = s.val;
			b->info.stats_valid[s.tag] = true;
		}
	}
	b->info.stats_updates++;
	b->stats_at_ns = tb_clock_ns();
}

/* Free page reporting: each buffer is a range of free guest memory. */
static void report_buffer(struct virtio_balloon *b, const struct virtq_elem *e)
{
	for (unsigned i = 0; i < e->n_out + e->n_in; i++) {
		const struct iovec *v = &e->iov[i];
		int64_t r;

		if ((uintptr_t)v->iov_base % BALLOON_PAGE || v->iov_len % BALLOON_PAGE) {
			log_guest("%s: reported range of %zu bytes is not whole pages", b->vdev.name,
				  v->iov_len);
			continue;
		}
		r = b->bm.discard(b->bm.opaque, v->iov_base, v->iov_len, true);
		if (r < 0)
			b->info.discard_errors++;
		else
			b->info.reported_bytes += (uint64_t)r;
	}
}

static void balloon_kick(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_balloon *b = container_of(vdev, struct virtio_balloon, vdev);
	struct virtq *vq = virtio_vq(vdev, q);
	bool pushed = false;
	int r;

	/* A queue set up for a feature not negotiated: the transport kicks it at DRIVER_OK. */
	if (q != INFLATEQ && q != DEFLATEQ && q != b->stats_q && q != b->report_q)
		return;
	do {
		virtq_disable_kicks(vq);
		while ((r = virtq_pop(vq, &b->elem)) > 0) {
			if (q != b->report_q && b->elem.n_in) {
				log_guest("%s: queue %u buffer is device-writable", vdev->name, q);
				r = -EIO;
				break;
			}
			if (q == b->stats_q) {
				/* Kept: giving it back is how we ask for the next statistics. */
				if (b->stats_held) {
					virtq_push(vq, b->stats_head, 0);
					pushed = true;
				}
				stats_buffer(b, &b->elem);
				b->stats_held = true;
				b->stats_head = b->elem.head;
				continue;
			}
			if (q == b->report_q)
				report_buffer(b, &b->elem);
			else
				pfn_buffer(b, &b->elem, q == INFLATEQ);
			virtq_push(vq, b->elem.head, 0);
			pushed = true;
		}
		if (r < 0) {
			virtio_dev_error(vdev);
			break;
		}
	} while (virtq_enable_kicks(vq));
	if (pushed)
		virtio_notify_queue(vdev, q);
}

static void request_stats(struct virtio_balloon *b)
{
	if (!b->stats_held || !virtio_dev_running(&b->vdev))
		return;
	b->stats_held = false;
	virtq_push(virtio_vq(&b->vdev, b->stats_q), b->stats_head, 0);
	virtio_notify_queue(&b->vdev, b->stats_q);
}

static void stats_tick(struct event_timer *t)
{
	struct virtio_balloon *b = container_of(t, struct virtio_balloon, stats_timer);

	pthread_mutex_lock(&b->vdev.lock);
	request_stats(b);
	pthread_mutex_unlock(&b->vdev.lock);
}

static int balloon_activate(struct virtio_dev *vdev)
{
	struct virtio_balloon *b = container_of(vdev, struct virtio_balloon, vdev);
	bool stats = virtio_has_feature(vdev, F_STATS_VQ);

	/* Linux numbers only the queues it uses: the next free index each. */
	b->stats_q = stats ? 2 : NO_QUEUE;
	b->report_q = virtio_has_feature(vdev, F_REPORTING) ? (stats ? 3 : 2) : NO_QUEUE;
	return 0;
}

static void balloon_reset(struct virtio_dev *vdev)
{
	struct virtio_balloon *b = container_of(vdev, struct virtio_balloon, vdev);

	b->stats_held = false;
	b->stats_q = b->report_q = NO_QUEUE;
	virtio_config_put32(vdev, C_ACTUAL, 0);
	/* A new driver starts with all of RAM; what was given up is simply touched again. */
	if (b->bm.reset)
		b->bm.reset(b->bm.opaque);
}

static void balloon_config_write(struct virtio_dev *vdev, unsigned off, const void *data,
				 unsigned size)
{
	/* Only `actual` is the driver's to write. */
	if (off < C_ACTUAL || off + size > C_ACTUAL + 4) {
		log_guest("%s: write to read-only config at %u", vdev->name, off);
		return;
	}
	memcpy(&vdev->config[off], data, size);
}

/*
 * The VM pauses (maybe for a snapshot or a migration): the statistics
 * buffer we hold goes back to the guest now, which is a request for fresh
 * statistics. A held buffer is the one thing the saved virtqueue state
 * cannot carry; this way the restored device holds none, and the guest
 * queues its buffer again once it runs.
 */
static void balloon_quiesce(struct virtio_dev *vdev)
{
	request_stats(container_of(vdev, struct virtio_balloon, vdev));
}

/* A loaded state's config: the target (host-set) and actual (the guest's) both carry over. */
static int balloon_load_config(struct virtio_dev *vdev, const uint8_t *config, char *err,
			       size_t errlen)
{
	memcpy(vdev->config, config, C_SIZE);
	return 0;
}

static const struct virtio_dev_ops balloon_ops = {
	.activate = balloon_activate,
	.reset = balloon_reset,
	.queue_kick = balloon_kick,
	.config_write = balloon_config_write,
	.quiesce = balloon_quiesce,
	.load_config = balloon_load_config,
};

struct virtio_balloon *virtio_balloon_create(struct pci_host *pci, const struct guest_mem *mem,
					     const struct virtio_balloon_opts *opts,
					     const struct balloon_memory *bm, struct event_loop *loop)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	uint64_t f = BIT(F_STATS_VQ);
	int r;

	if (!b)
		return NULL;
	b->opts = *opts;
	b->bm = *bm;
	b->stats_q = b->report_q = NO_QUEUE;
	if (opts->deflate_on_oom)
		f |= BIT(F_DEFLATE_ON_OOM);
	if (opts->free_page_reporting)
		f |= BIT(F_REPORTING);
	r = virtio_dev_init(&b->vdev, pci, mem, &(struct virtio_dev_desc){
		.name = "virtio-balloon",
		.device_id = VIRTIO_ID_BALLOON,
		.class_code = PCI_CLASS_OTHER,
		.features = f,
		.num_queues = 4,
		.queue_max_size = QUEUE_SIZE,
		.config_size = C_SIZE,
		.ops = &balloon_ops,
	}, loop);
	if (r < 0)
		goto fail;
	r = event_timer_init(b->vdev.loop, &b->stats_timer, stats_tick);
	if (!r) {
		b->timer_ready = true;
		if (opts->stats_interval_s)
			r = event_timer_arm(&b->stats_timer, opts->stats_interval_s * TB_NS_PER_S,
					    opts->stats_interval_s * TB_NS_PER_S);
	}
	if (!r)
		r = virtio_dev_start(&b->vdev);
	if (r < 0) {
		if (b->timer_ready)
			event_timer_destroy(b->vdev.loop, &b->stats_timer);
		virtio_dev_uninit(&b->vdev);
		goto fail;
	}
	return b;
fail:
	free(b);
	errno = -r;
	return NULL;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	virtio_dev_uninit(&b->vdev);
	event_timer_destroy(b->vdev.loop, &b->stats_timer);
	free(b);
}

struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b)
{
	return &b->vdev;
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint64_t pages)
{
	pthread_mutex_lock(&b->vdev.lock);
	virtio_config_put32(&b->vdev, C_NUM_PAGES, (uint32_t)MIN(pages, (uint64_t)UINT32_MAX));
	virtio_config_changed(&b->vdev);
	pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
	pthread_mutex_lock(&b->vdev.lock);
	request_stats(b);
	pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	uint32_t v;

	pthread_mutex_lock(&b->vdev.lock);
	*out = b->info;
	out->driver_ok = virtio_dev_running(&b->vdev);
	out->stats_queue = virtio_has_feature(&b->vdev, F_STATS_VQ);
	out->deflate_on_oom = virtio_has_feature(&b->vdev, F_DEFLATE_ON_OOM);
	out->free_page_reporting = virtio_has_feature(&b->vdev, F_REPORTING);
	memcpy(&v, &b->vdev.config[C_NUM_PAGES], 4);
	out->target_pages = le32toh(v);
	memcpy(&v, &b->vdev.config[C_ACTUAL], 4);
	out->actual_pages = le32toh(v);
	out->stats_age_ns = b->stats_at_ns ? tb_clock_ns() - b->stats_at_ns : 0;
	pthread_mutex_unlock(&b->vdev.lock);
}

static int balloon_opt(void *ctx, const char *key, const char *val, char *err, size_t errlen)
{
	struct virtio_balloon_opts *o = ctx;
	uint64_t n;
	int b;

	if (!strcmp(key, "stats-interval")) {
		if (parse_u64(val, 3600, &n) < 0) {
			snprintf(err, errlen, "--balloon: stats-interval '%s' is not 0 to 3600 seconds",
				 val);
			return -EINVAL;
		}
		o->stats_interval_s = (unsigned)n;
		return 0;
	}
	if (strcmp(key, "deflate-on-oom") && strcmp(key, "free-page-reporting")) {
		snprintf(err, errlen, "--balloon: unknown key '%s' (deflate-on-oom, "
			 "free-page-reporting, stats-interval)", key);
		return -EINVAL;
	}
	if (opts_bool(val, &b) < 0) {
		snprintf(err, errlen, "--balloon: %s '%s' is not on or off", key, val);
		return -EINVAL;
	}
	if (!strcmp(key, "deflate-on-oom"))
		o->deflate_on_oom = b;
	else
		o->free_page_reporting = b;
	return 0;
}

int virtio_balloon_parse(const char *s, struct virtio_balloon_opts *opts, char *err, size_t errlen)
{
	*opts = (struct virtio_balloon_opts){ .stats_interval_s = 5 };
	if (!*s || !strcmp(s, "on"))
		return 0;
	return opts_parse("--balloon", s, balloon_opt, opts, err, errlen);
}
