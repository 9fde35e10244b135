// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-balloon driven the way Linux's virtio_balloon does: the target in
 * config space, page numbers on the inflate and deflate queues (unsorted,
 * repeated, outside RAM), the statistics buffer kept and handed back, free
 * page reporting at the queue index Linux uses, reset, and hostile buffers.
 * The device's memory backend is a recorder here; guest_ram's real one is
 * tested in tests/unit/test_guest_ram.c.
 */
#include <string.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "vdriver.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "virtio/virtio_state.h"

#define F(b) (1ULL << (b))
#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define F_REPORTING 5
#define INFLATEQ 0
#define DEFLATEQ 1

struct range {
	uint64_t gpa, len;
	bool free_report;
};

struct recorder {
	struct guest *h;
	struct range discarded[64], reused[64];
	unsigned nr_discarded, nr_reused, resets;
};

static uint64_t gpa_of(struct recorder *rec, void *hva)
{
	return (uint64_t)((uint8_t *)hva - rec->h->ram);
}

static int64_t rec_discard(void *opaque, void *hva, uint64_t len, bool free_report)
{
	struct recorder *rec = opaque;

	if (rec->nr_discarded < ARRAY_SIZE(rec->discarded))
		rec->discarded[rec->nr_discarded++] = (struct range){ gpa_of(rec, hva), len, free_report };
	return (int64_t)len;
}

static void rec_reuse(void *opaque, void *hva, uint64_t len)
{
	struct recorder *rec = opaque;

	if (rec->nr_reused < ARRAY_SIZE(rec->reused))
		rec->reused[rec->nr_reused++] = (struct range){ gpa_of(rec, hva), len, false };
}

static void rec_reset(void *opaque)
{
	((struct recorder *)opaque)->resets++;
}

struct brig {
	struct guest h;
	struct recorder rec;
	struct virtio_balloon *b;
	struct vdriver d;
};

static int brig_up(struct brig *r, const struct virtio_balloon_opts *o, uint64_t features)
{
	memset(r, 0, sizeof(*r));
	if (guest_init(&r->h, NULL) < 0)
		return -1;
	r->rec.h = &r->h;
	r->b = virtio_balloon_create(r->h.pci, &r->h.mem, o,
				     &(struct balloon_memory){ rec_discard, rec_reuse, rec_reset, &r->rec },
				     &r->h.loop);
	if (!r->b || vd_probe(&r->d, &r->h, VIRTIO_ID_BALLOON, 0) < 0 ||
	    vd_negotiate(&r->d, features) < 0)
		return -1;
	vd_setup_msix(&r->d, 4);
	for (unsigned q = 0; q < 4; q++)
		if (vd_setup_queue(&r->d, q, 0) < 0)
			return -1;
	vd_driver_ok(&r->d);
	return 0;
}

static void brig_down(struct brig *r)
{
	virtio_balloon_destroy(r->b);
	guest_destroy(&r->h);
}

/* Posts one device-readable buffer holding `len` bytes of `data` on queue q. */
static void post(struct brig *r, unsigned q, const void *data, uint32_t len)
{
	uint64_t g = h_alloc(&r->h, len, 16);

	memcpy(h_ptr(&r->h, g), data, len);
	vd_add(&r->d, q, &(struct vd_buf){ g, len, false }, 1);
	vd_kick(&r->d, q);
}

static void post_stats(struct brig *r, unsigned q, uint64_t free_bytes, uint64_t avail)
{
	struct {
		uint16_t tag;
		uint64_t val;
	} __attribute__((packed)) s[3] = {
		{ BALLOON_S_MEMFREE, free_bytes }, { BALLOON_S_AVAIL, avail }, { 77, 1 },
	};

	post(r, q, s, sizeof(s));
}

KTEST(balloon_features_and_target)
{
	struct brig r;
	struct virtio_balloon_info info;
	struct virtio_balloon_opts o = { .deflate_on_oom = true };

	KASSERT(brig_up(&r, &o, F(F_STATS_VQ) | F(F_DEFLATE_ON_OOM) | F(F_REPORTING)) == 0);
	KCHECK(r.d.features & F(F_STATS_VQ));
	KCHECK(r.d.features & F(F_DEFLATE_ON_OOM));
	KCHECK(!(r.d.features & F(F_REPORTING))); /* not asked for */
	KCHECK_EQ(vd_config_read(&r.d, 0, 4), 0);
	virtio_balloon_set_target(r.b, 32768);
	KCHECK_EQ(vd_config_read(&r.d, 0, 4), 32768);
	KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d.slot, 4)) >= 1); /* config interrupt */
	/* The driver reports what it holds; num_pages is not the driver's to write. */
	h_write(&r.h, r.d.device + 4, 4, 1000);
	h_write(&r.h, r.d.device + 0, 4, 5);
	KCHECK_EQ(vd_config_read(&r.d, 4, 4), 1000);
	KCHECK_EQ(vd_config_read(&r.d, 0, 4), 32768);
	virtio_balloon_get_info(r.b, &info);
	KCHECK(info.driver_ok && info.deflate_on_oom && info.stats_queue);
	KCHECK(!info.free_page_reporting);
	KCHECK_EQ(info.target_pages, 32768);
	KCHECK_EQ(info.actual_pages, 1000);
	brig_down(&r);
}

KTEST(balloon_inflate_and_deflate_coalesce_pages)
{
	struct brig r;
	struct virtio_balloon_info info;
	/* Unsorted, one repeated, a run of four, and one page that is not RAM. */
	uint32_t inflate[] = { 0x103, 0x101, 0x200, 0x102, 0x100, 0x102, 0x10000, 0x300 };
	uint32_t deflate[] = { 0x101, 0x100 };
	uint32_t id;

	KASSERT(brig_up(&r, &(struct virtio_balloon_opts){ 0 }, F(F_STATS_VQ)) == 0);
	post(&r, INFLATEQ, inflate, sizeof(inflate));
	KCHECK(vd_get_used(&r.d, INFLATEQ, &id, NULL, 1000) == 1);
	KCHECK_EQ(r.rec.nr_discarded, 3);
	KCHECK_EQ(r.rec.discarded[0].gpa, 0x100000);
	KCHECK_EQ(r.rec.discarded[0].len, 4 * 4096);
	KCHECK_EQ(r.rec.discarded[1].gpa, 0x200000);
	KCHECK_EQ(r.rec.discarded[2].gpa, 0x300000);
	KCHECK(!r.rec.discarded[0].free_report);
	post(&r, DEFLATEQ, deflate, sizeof(deflate));
	KCHECK(vd_get_used(&r.d, DEFLATEQ, &id, NULL, 1000) == 1);
	KCHECK_EQ(r.rec.nr_reused, 1);
	KCHECK_EQ(r.rec.reused[0].gpa, 0x100000);
	KCHECK_EQ(r.rec.reused[0].len, 2 * 4096);
	virtio_balloon_get_info(r.b, &info);
	KCHECK_EQ(info.inflated_pages, 6);
	KCHECK_EQ(info.deflated_pages, 2);
	KCHECK_EQ(info.discarded_bytes, 6 * 4096);
	brig_down(&r);
}

KTEST(balloon_statistics_buffer_is_kept_and_returned)
{
	struct brig r;
	struct virtio_balloon_info info;
	uint32_t id;

	KASSERT(brig_up(&r, &(struct virtio_balloon_opts){ 0 }, F(F_STATS_VQ)) == 0);
	post_stats(&r, 2, 100 << 20, 150 << 20);
	h_pump(&r.h, 0);
	virtio_balloon_get_info(r.b, &info);
	KCHECK_EQ(info.stats_updates, 1);
	KCHECK(info.stats_valid[BALLOON_S_MEMFREE] && info.stats_valid[BALLOON_S_AVAIL]);
	KCHECK(!info.stats_valid[BALLOON_S_SWAP_IN]);
	KCHECK_EQ(info.stats[BALLOON_S_MEMFREE], 100 << 20);
	KCHECK_EQ(info.stats[BALLOON_S_AVAIL], 150 << 20);
	/* Kept until the host wants more; then it comes back to the driver. */
	KCHECK(vd_get_used(&r.d, 2, &id, NULL, 20) == 0);
	virtio_balloon_request_stats(r.b);
	KCHECK(vd_get_used(&r.d, 2, &id, NULL, 1000) == 1);
	post_stats(&r, 2, 50 << 20, 60 << 20);
	h_pump(&r.h, 0);
	virtio_balloon_get_info(r.b, &info);
	KCHECK_EQ(info.stats_updates, 2);
	KCHECK_EQ(info.stats[BALLOON_S_MEMFREE], 50 << 20);
	brig_down(&r);
}

/*
 * A snapshot or a migration: pausing gives the held statistics buffer back
 * (the saved rings cannot carry it), and the target (host-set) and actual
 * (the driver's) move with the state to a device on another guest, which
 * then keeps the driver's next statistics buffer as the first one did.
 */
KTEST(balloon_pause_returns_the_statistics_buffer_and_the_state_moves)
{
	struct brig a, b;
	struct virtio_balloon_info info;
	struct virtio_balloon_opts o = { .deflate_on_oom = true };
	struct state_writer w;
	struct state_reader rd;
	struct state_section s;
	char err[300];
	uint32_t id;

	KASSERT(brig_up(&a, &o, F(F_STATS_VQ) | F(F_DEFLATE_ON_OOM)) == 0);
	virtio_balloon_set_target(a.b, 4096);
	h_write(&a.h, a.d.device + 4, 4, 1024);
	post_stats(&a, 2, 100 << 20, 150 << 20);
	h_pump(&a.h, 0);
	KCHECK(vd_get_used(&a.d, 2, &id, NULL, 20) == 0);
	virtio_dev_pause(virtio_balloon_dev(a.b));
	KCHECK(vd_get_used(&a.d, 2, &id, NULL, 1000) == 1);
	state_writer_init(&w);
	KASSERT(virtio_dev_save(virtio_balloon_dev(a.b), "virtio-balloon0", &w) == 0);
	KASSERT(state_reader_init(&rd, w.buf, w.len, err, sizeof(err)) == 0);
	KASSERT(state_find(&rd, "virtio-balloon0", &s) == 0);

	/* The second guest: same device, its RAM a copy of the first's. */
	KASSERT(guest_init(&b.h, NULL) == 0);
	b.rec = (struct recorder){ .h = &b.h };
	b.b = virtio_balloon_create(b.h.pci, &b.h.mem, &o,
				    &(struct balloon_memory){ rec_discard, rec_reuse, rec_reset, &b.rec },
				    &b.h.loop);
	KASSERT(b.b);
	memcpy(b.h.ram, a.h.ram, a.h.ram_size);
	b.h.alloc_next = a.h.alloc_next;
	virtio_dev_pause(virtio_balloon_dev(b.b));
	KCHECK_EQ(virtio_dev_load(virtio_balloon_dev(b.b), &s, err, sizeof(err)), 0);
	virtio_dev_resume(virtio_balloon_dev(b.b));
	b.d = a.d;
	b.d.h = &b.h;
	virtio_balloon_get_info(b.b, &info);
	KCHECK(info.driver_ok && info.deflate_on_oom && info.stats_queue);
	KCHECK_EQ(info.target_pages, 4096);
	KCHECK_EQ(info.actual_pages, 1024);
	/* The driver answers the returned buffer with fresh statistics: kept again. */
	post_stats(&b, 2, 70 << 20, 80 << 20);
	h_pump(&b.h, 0);
	virtio_balloon_get_info(b.b, &info);
	KCHECK_EQ(info.stats[BALLOON_S_MEMFREE], 70 << 20);
	KCHECK(vd_get_used(&b.d, 2, &id, NULL, 20) == 0);
	virtio_balloon_request_stats(b.b);
	KCHECK(vd_get_used(&b.d, 2, &id, NULL, 1000) == 1);
	state_writer_free(&w);
	brig_down(&b);
	virtio_dev_resume(virtio_balloon_dev(a.b));
	brig_down(&a);
}

static void reporting_at(unsigned q, uint64_t features)
{
	struct brig r;
	struct virtio_balloon_info info;
	struct virtio_balloon_opts o = { .free_page_reporting = true };
	uint64_t a = 2 << 20, b = 6 << 20;
	uint32_t id;

	KASSERT(brig_up(&r, &o, features | F(F_REPORTING)) == 0);
	KCHECK(r.d.features & F(F_REPORTING));
	/* Linux posts device-writable buffers, one per free block. */
	vd_add(&r.d, q, (struct vd_buf[]){ { a, 2 << 20, true }, { b, 4 << 20, true } }, 2);
	vd_kick(&r.d, q);
	KCHECK(vd_get_used(&r.d, q, &id, NULL, 1000) == 1);
	KCHECK_EQ(r.rec.nr_discarded, 2);
	KCHECK(r.rec.discarded[0].free_report && r.rec.discarded[0].gpa == a);
	KCHECK_EQ(r.rec.discarded[1].len, 4 << 20);
	/* Not whole pages: skipped, the buffer still comes back. */
	vd_add(&r.d, q, &(struct vd_buf){ a + 100, 4096, true }, 1);
	vd_kick(&r.d, q);
	KCHECK(vd_get_used(&r.d, q, &id, NULL, 1000) == 1);
	KCHECK_EQ(r.rec.nr_discarded, 2);
	virtio_balloon_get_info(r.b, &info);
	KCHECK_EQ(info.reported_bytes, 6 << 20);
	KCHECK_EQ(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	brig_down(&r);
}

KTEST(balloon_free_page_reporting_after_stats_queue)
{
	reporting_at(3, F(F_STATS_VQ));
}

KTEST(balloon_free_page_reporting_without_stats_queue)
{
	reporting_at(2, 0);
}

KTEST(balloon_reset_returns_everything)
{
	struct brig r;
	uint32_t pfn = 0x100;
	unsigned resets;

	KASSERT(brig_up(&r, &(struct virtio_balloon_opts){ 0 }, F(F_STATS_VQ)) == 0);
	resets = r.rec.resets; /* the driver's own reset before negotiating */
	post(&r, INFLATEQ, &pfn, 4);
	KCHECK(vd_get_used(&r.d, INFLATEQ, NULL, NULL, 1000) == 1);
	h_write(&r.h, r.d.device + 4, 4, 1);
	vd_reset(&r.d);
	KCHECK_EQ(r.rec.resets, resets + 1);
	KCHECK_EQ(vd_config_read(&r.d, 4, 4), 0);
	brig_down(&r);
}

KTEST(hostile_balloon_buffers)
{
	struct brig r;
	uint32_t id;

	KASSERT(brig_up(&r, &(struct virtio_balloon_opts){ 0 }, F(F_STATS_VQ)) == 0);
	/* A partial page number and one far outside RAM: ignored, the buffer returns. */
	post(&r, INFLATEQ, (uint8_t[]){ 1, 0, 0, 0xff, 9, 9 }, 6);
	KCHECK(vd_get_used(&r.d, INFLATEQ, &id, NULL, 1000) == 1);
	KCHECK_EQ(r.rec.nr_discarded, 0);
	/* A kick on a queue this negotiation has not (no reporting): nothing happens. */
	vd_kick(&r.d, 3);
	h_pump(&r.h, 0);
	KCHECK_EQ(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET, 0);
	/* A device-writable inflate buffer breaks the rules. */
	vd_add(&r.d, INFLATEQ, &(struct vd_buf){ h_alloc(&r.h, 8, 8), 8, true }, 1);
	vd_kick(&r.d, INFLATEQ);
	h_pump(&r.h, 0);
	KCHECK(vd_status(&r.d) & VIRTIO_STATUS_NEEDS_RESET);
	brig_down(&r);
}

KTEST(balloon_option_strings)
{
	struct virtio_balloon_opts o;
	char err[256];

	KCHECK_EQ(virtio_balloon_parse("on", &o, err, sizeof(err)), 0);
	KCHECK(!o.deflate_on_oom && !o.free_page_reporting && o.stats_interval_s == 5);
	KCHECK_EQ(virtio_balloon_parse("deflate-on-oom=on,free-page-reporting=on,stats-interval=0",
				       &o, err, sizeof(err)), 0);
	KCHECK(o.deflate_on_oom && o.free_page_reporting && o.stats_interval_s == 0);
	KCHECK(virtio_balloon_parse("stats-interval=-1", &o, err, sizeof(err)) < 0);
	KCHECK_STR(err, "--balloon: stats-interval '-1' is not 0 to 3600 seconds");
	KCHECK(virtio_balloon_parse("size=5", &o, err, sizeof(err)) < 0);
	KCHECK_STR(err, "--balloon: unknown key 'size' (deflate-on-oom, free-page-reporting, "
		   "stats-interval)");
	KCHECK(virtio_balloon_parse("deflate-on-oom=maybe", &o, err, sizeof(err)) < 0);
	KCHECK_STR(err, "--balloon: deflate-on-oom 'maybe' is not on or off");
}

int main(void)
{
	return ktest_run_all();
}
