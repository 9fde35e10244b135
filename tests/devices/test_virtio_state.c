// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshots and live migration of virtio devices (virtio_state.h): a device
 * driven by the mini driver in one guest is paused, saved, and loaded into
 * a fresh device of a second guest whose RAM is a copy of the first's; the
 * driver then carries on in the second guest as if nothing happened (ring
 * indexes, vectors, BARs, features, requests queued before the save). A
 * paused device serves nothing; a blk device completes what was in flight;
 * damaged or foreign state is refused with a reason and changes nothing;
 * the host bridge refuses a VM with other devices in its slots; device
 * writes into guest RAM reach the dirty log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "net/backend.h"
#include "pci/pci_state.h"
#include "vdriver.h"
#include "virtio/blk.h"
#include "virtio/blk_defs.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio/virtio_state.h"

#define FEAT(b) (1ULL << (b))
#define STD_FEATURES (FEAT(VIRTIO_F_INDIRECT_DESC) | FEAT(VIRTIO_F_EVENT_IDX))
/* KVM-like delivery: doorbells through ioeventfds, MSIs through irqfds. */
static const struct guest_opts kvm_like = { .irqfd = true, .ioevent = true, .kvm_mode = true };

static struct state_reader reader;

/* Pauses vdev, saves it into w and finds its section in the reader. */
static int save_paused(struct virtio_dev *vdev, struct state_writer *w, struct state_section *s)
{
	char err[200];

	virtio_dev_pause(vdev);
	state_writer_init(w);
	if (virtio_dev_save(vdev, "dev", w) || state_reader_init(&reader, w->buf, w->len, err,
								  sizeof(err)))
		return -1;
	return state_find(&reader, "dev", s);
}

/* The second guest takes over the first one's RAM and allocator, as after a migration. */
static void copy_ram(struct guest *to, const struct guest *from)
{
	memcpy(to->ram, from->ram, from->ram_size);
	to->alloc_next = from->alloc_next;
}

static bool all_same(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i] != p[0])
			return false;
	return true;
}

/* One rng request: the used entry comes with the right head and length, random bytes in. */
static bool rng_request(struct vdriver *d, uint32_t len)
{
	uint64_t buf = h_alloc(d->h, len, 16);
	uint16_t head = vd_add(d, 0, &(struct vd_buf){ buf, len, true }, 1);
	uint32_t id, got;

	vd_kick(d, 0);
	return vd_get_used(d, 0, &id, &got, 5000) == 1 && id == head && got == len &&
	       !all_same(h_ptr(d->h, buf), len);
}

static int rng_driver(struct vdriver *d, struct guest *h, uint16_t qsize)
{
	if (vd_probe(d, h, VIRTIO_ID_RNG, 0) < 0 || vd_negotiate(d, STD_FEATURES) < 0)
		return -1;
	vd_setup_msix(d, 1);
	if (vd_setup_queue(d, 0, qsize) < 0)
		return -1;
	vd_driver_ok(d);
	return 0;
}

static uint16_t used_idx(struct vdriver *d, unsigned q)
{
	return __atomic_load_n((uint16_t *)h_ptr(d->h, d->q[q].used) + 1, __ATOMIC_ACQUIRE);
}

/* A source and a target guest with one threaded virtio-rng each. */
struct rng_pair {
	struct guest a, b;
	struct virtio_rng *ra, *rb;
};

static int rng_pair_up(struct rng_pair *p)
{
	if (guest_init(&p->a, &kvm_like) < 0 || guest_init(&p->b, &kvm_like) < 0)
		return -1;
	p->ra = virtio_rng_create(p->a.pci, &p->a.mem, NULL);
	p->rb = virtio_rng_create(p->b.pci, &p->b.mem, NULL);
	return p->ra && p->rb ? 0 : -1;
}

/* The source may still be paused: it resumes before it goes. */
static void rng_pair_down(struct rng_pair *p, struct state_writer *w)
{
	state_writer_free(w);
	virtio_dev_resume(virtio_rng_dev(p->ra));
	virtio_rng_destroy(p->ra);
	virtio_rng_destroy(p->rb);
	guest_destroy(&p->a);
	guest_destroy(&p->b);
}

KTEST(rng_moves_between_guests_mid_stream)
{
	struct rng_pair p;
	struct guest *const a = &p.a, *const b = &p.b;
	struct vdriver d;
	struct state_writer w;
	struct state_section s;
	uint64_t buf, new_bar = 0x180000000ULL; /* in the 64-bit window, above the assigned one */
	uint16_t head;
	uint32_t id, len;
	char err[300];

	KASSERT(rng_pair_up(&p) == 0);
	KASSERT(rng_driver(&d, a, 8) == 0);
	/* The guest moves the BAR: the loaded device must decode (and ring) there. */
	h_cfg_write(a, d.slot, PCI_BAR0, 4, (uint32_t)new_bar | 0xc);
	h_cfg_write(a, d.slot, PCI_BAR0 + 4, 4, (uint32_t)(new_bar >> 32));
	d.common += new_bar - d.bar;
	d.notify += new_bar - d.bar;
	d.isr += new_bar - d.bar;
	d.device += new_bar - d.bar;
	d.q[0].notify_addr += new_bar - d.bar;
	d.bar = new_bar;
	/* 11 requests on a ring of 8: the indexes have wrapped. */
	for (int i = 0; i < 11; i++)
		KCHECK(rng_request(&d, 64));
	/* Paused, a doorbell is not answered... */
	KASSERT(save_paused(virtio_rng_dev(p.ra), &w, &s) == 0);
	state_writer_free(&w);
	buf = h_alloc(a, 32, 16);
	head = vd_add(&d, 0, &(struct vd_buf){ buf, 32, true }, 1);
	vd_kick(&d, 0);
	usleep(100 * 1000);
	KCHECK_EQ(used_idx(&d, 0), 11);
	/* ...and is served by the loaded device once it starts (queued before the save). */
	KASSERT(save_paused(virtio_rng_dev(p.ra), &w, &s) == 0);
	copy_ram(b, a);
	KCHECK_EQ(virtio_dev_load(virtio_rng_dev(p.rb), &s, err, sizeof(err)), 0);
	d.h = b;
	KCHECK_EQ(h_msi_total(b), 0);
	virtio_dev_resume(virtio_rng_dev(p.rb));
	KCHECK(vd_get_used(&d, 0, &id, &len, 5000) == 1 && id == head && len == 32);
	KCHECK(!all_same(h_ptr(b, buf), 32));
	KCHECK(h_msi_count(b, VD_MSI_DATA(d.slot, 0)) >= 1);
	for (int i = 0; i < 9; i++)
		KCHECK(rng_request(&d, 128));
	KCHECK_EQ(used_idx(&d, 0), 21);
	/* The source's BAR, config and ring state are the loaded device's. */
	KCHECK_EQ(h_cfg_read(b, d.slot, PCI_BAR0, 4) & ~0xfu, (uint32_t)new_bar);
	KCHECK_EQ(h_cfg_read(b, d.slot, PCI_BAR0 + 4, 4), (uint32_t)(new_bar >> 32));
	KCHECK_EQ(vd_status(&d), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	/* The driver's feature select was left at 1 (the high word) on the first guest. */
	KCHECK_EQ(vd_common_read(&d, 0x08, 4), 1);
	KCHECK_EQ(vd_common_read(&d, 0x0c, 4), (uint32_t)(d.features >> 32));
	vd_common_write(&d, 0x08, 4, 0);
	KCHECK_EQ(vd_common_read(&d, 0x0c, 4), (uint32_t)d.features);
	rng_pair_down(&p, &w);
}

KTEST(device_writes_reach_the_dirty_log)
{
	struct guest a;
	struct virtio_rng *r;
	struct vdriver d;
	uint64_t bits[(H_RAM_SIZE / 4096 + 63) / 64] = { 0 }, buf;

	KASSERT(guest_init(&a, &kvm_like) == 0);
	r = virtio_rng_create(a.pci, &a.mem, NULL);
	KASSERT(r && rng_driver(&d, &a, 16) == 0);
	KASSERT(guest_mem_dirty_start(&a.mem) == 0);
	buf = h_alloc(&a, 3 * 4096, 4096) + 4096;
	vd_add(&d, 0, &(struct vd_buf){ buf, 4096, true }, 1);
	vd_kick(&d, 0);
	KASSERT(vd_get_used(&d, 0, NULL, NULL, 5000) == 1);
	guest_mem_dirty_collect(&a.mem, 0, bits);
#define BIT(gpa) ((bits[(gpa) / 4096 / 64] >> ((gpa) / 4096 % 64)) & 1)
	KCHECK(BIT(buf));
	KCHECK(!BIT(buf - 4096) && !BIT(buf + 4096));
	KCHECK(BIT(d.q[0].used));  /* the used ring */
	KCHECK(!BIT(d.q[0].desc)); /* only read by the device */
#undef BIT
	guest_mem_dirty_free(&a.mem);
	virtio_rng_destroy(r);
	guest_destroy(&a);
}

/* --- virtio-blk ---------------------------------------------------------------- */

#define DISK (4u << 20)

struct blk_side {
	struct guest h;
	struct virtio_blk *blk;
};

static int blk_side_up(struct blk_side *s, const char *path, const char *extra)
{
	struct virtio_blk_opts o;
	char spec[300], err[300];

	if (guest_init(&s->h, &kvm_like) < 0)
		return -1;
	snprintf(spec, sizeof(spec), "path=%s,aio=threads,queues=2%s", path, extra);
	if (virtio_blk_parse(spec, &o, err, sizeof(err)) < 0)
		return -1;
	s->blk = virtio_blk_create(s->h.pci, &s->h.mem, &o, 1, 0, NULL, err, sizeof(err));
	if (!s->blk)
		printf("# %s\n", err);
	return s->blk ? 0 : -1;
}

static void blk_side_down(struct blk_side *s)
{
	virtio_blk_destroy(s->blk);
	guest_destroy(&s->h);
}

/* Posts a 4 KiB request on queue q: header, data, status. */
static uint16_t blk_post(struct vdriver *d, unsigned q, uint32_t type, uint64_t sector,
			 uint64_t data)
{
	uint64_t hdr = h_alloc(d->h, 16, 16), st = h_alloc(d->h, 1, 1);
	uint32_t h[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };

	memcpy(h_ptr(d->h, hdr), h, 16);
	*(uint8_t *)h_ptr(d->h, st) = 0xff;
	return vd_add(d, q, (struct vd_buf[]){ { hdr, 16, false }, { data, 4096, type == T_IN },
					       { st, 1, true } }, 3);
}

static char *make_disk(size_t size)
{
	char *path = strdup("/tmp/keel-vstate-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	close(fd);
	return path;
}

KTEST(blk_pause_completes_in_flight_and_moves)
{
	struct blk_side a, b;
	struct vdriver d;
	struct state_writer w;
	struct state_section s;
	char *path = make_disk(DISK), err[300];
	bool seen[2][128] = { { false } };
	unsigned done = 0;
	uint64_t data;

	KASSERT(blk_side_up(&a, path, "") == 0 && blk_side_up(&b, path, "") == 0);
	KASSERT(vd_probe(&d, &a.h, VIRTIO_ID_BLOCK, 0) == 0 && vd_negotiate(&d, STD_FEATURES) == 0);
	vd_setup_msix(&d, 2);
	KASSERT(vd_setup_queue(&d, 0, 128) == 0 && vd_setup_queue(&d, 1, 128) == 0);
	vd_driver_ok(&d);
	/*
	 * 48 writes of distinct patterns, kicked, and the VM pauses at once;
	 * then 8 more are queued and kicked while it is paused.
	 */
	data = h_alloc(&a.h, 56 * 4096ULL, 4096);
	for (unsigned i = 0; i < 56; i++)
		memset(h_ptr(&a.h, data + i * 4096ULL), 'A' + (int)(i % 26), 4096);
	for (unsigned i = 0; i < 48; i++)
		blk_post(&d, i % 2, T_OUT, i * 8, data + i * 4096ULL);
	vd_kick(&d, 0);
	vd_kick(&d, 1);
	KASSERT(save_paused(virtio_blk_dev(a.blk), &w, &s) == 0);
	for (unsigned i = 48; i < 56; i++)
		blk_post(&d, i % 2, T_OUT, i * 8, data + i * 4096ULL);
	vd_kick(&d, 0);
	vd_kick(&d, 1);
	/* Whatever the device took is complete: nothing moves while it is paused. */
	{
		uint16_t u0 = used_idx(&d, 0), u1 = used_idx(&d, 1);

		usleep(100 * 1000);
		KCHECK(used_idx(&d, 0) == u0 && used_idx(&d, 1) == u1);
		KCHECK(u0 + u1 <= 48);
		printf("# completed before the pause: %u of 56\n", u0 + u1);
	}
	state_writer_free(&w);
	KASSERT(save_paused(virtio_blk_dev(a.blk), &w, &s) == 0);
	copy_ram(&b.h, &a.h);
	KCHECK_EQ(virtio_dev_load(virtio_blk_dev(b.blk), &s, err, sizeof(err)), 0);
	virtio_dev_resume(virtio_blk_dev(b.blk));
	d.h = &b.h;
	/* Every request completes exactly once, on one side or the other. */
	for (unsigned q = 0; q < 2; q++) {
		uint32_t id;

		while (vd_get_used(&d, q, &id, NULL, 3000) == 1) {
			KCHECK(id < 128 && !seen[q][id]);
			seen[q][id % 128] = true;
			done++;
		}
	}
	KCHECK_EQ(done, 56);
	/* And the disk holds every write: read some back through the loaded device. */
	for (unsigned i = 0; i < 56; i += 11) {
		uint64_t rd = h_alloc(&b.h, 4096, 4096);

		blk_post(&d, 0, T_IN, i * 8, rd);
		vd_kick(&d, 0);
		KCHECK(vd_get_used(&d, 0, NULL, NULL, 5000) == 1);
		KCHECK(all_same(h_ptr(&b.h, rd), 4096) && *(uint8_t *)h_ptr(&b.h, rd) == 'A' + i % 26);
	}
	state_writer_free(&w);
	virtio_dev_resume(virtio_blk_dev(a.blk));
	blk_side_down(&a);
	blk_side_down(&b);
	unlink(path);
	free(path);
}

KTEST(blk_refuses_another_disk)
{
	struct blk_side a, b, c;
	struct vdriver d;
	struct state_writer w;
	struct state_section s;
	char *pa = make_disk(DISK), *pb = make_disk(2 * DISK), err[300];

	KASSERT(blk_side_up(&a, pa, "") == 0 && blk_side_up(&b, pb, "") == 0 &&
		blk_side_up(&c, pa, ",readonly=on") == 0);
	KASSERT(vd_probe(&d, &a.h, VIRTIO_ID_BLOCK, 0) == 0 && vd_negotiate(&d, STD_FEATURES) == 0);
	KASSERT(save_paused(virtio_blk_dev(a.blk), &w, &s) == 0);
	KCHECK_EQ(virtio_dev_load(virtio_blk_dev(b.blk), &s, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "the saved disk has 8192 sectors") && strstr(err, "has 16384"));
	KASSERT(state_find(&reader, "dev", &s) == 0);
	KCHECK_EQ(virtio_dev_load(virtio_blk_dev(c.blk), &s, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "offered features") != NULL);
	state_writer_free(&w);
	virtio_dev_resume(virtio_blk_dev(a.blk));
	blk_side_down(&a);
	blk_side_down(&b);
	blk_side_down(&c);
	unlink(pa);
	unlink(pb);
	free(pa);
	free(pb);
}

/* --- virtio-net over a fake backend -------------------------------------------- */

struct fake_net {
	int fd; /* readable while frames wait */
	unsigned offloads, offload_calls, frames;
};

static ssize_t fake_recv(void *opaque, void *buf, size_t len)
{
	struct fake_net *f = opaque;
	uint64_t v;

	if (!f->frames)
		return -EAGAIN;
	f->frames--;
	if (!f->frames && read(f->fd, &v, 8) < 0)
		return -EIO;
	memset(buf, 0, 12);                 /* virtio_net_hdr_v1 */
	memset((uint8_t *)buf + 12, 0x5a, 60); /* the frame */
	return MIN(len, 72u);
}

static int fake_send(void *opaque, const struct iovec *iov, unsigned n)
{
	return 0;
}

static int fake_fd(void *opaque)
{
	return ((struct fake_net *)opaque)->fd;
}

static int fake_offload(void *opaque, unsigned off)
{
	struct fake_net *f = opaque;

	f->offloads = off;
	f->offload_calls++;
	return 0;
}

static const struct net_backend_ops fake_ops = {
	.send = fake_send, .recv = fake_recv, .fd = fake_fd, .set_offload = fake_offload,
};

KTEST(net_takes_the_mac_link_and_offloads_to_the_new_backend)
{
	static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 1, 2, 3 }, mac_b[6] = { 0x52, 0x54, 0, 9, 9, 9 };
	struct fake_net fa = { .fd = eventfd(0, EFD_NONBLOCK) }, fb = { .fd = eventfd(0, EFD_NONBLOCK) };
	struct net_backend ba = { .ops = &fake_ops, .opaque = &fa, .can_offload = true };
	struct net_backend bb = { .ops = &fake_ops, .opaque = &fb, .can_offload = true };
	struct guest a, b;
	struct virtio_net *na, *nb;
	struct vdriver d;
	struct state_writer w;
	struct state_section s;
	uint64_t rx;
	uint32_t len;
	char err[300];

	KASSERT(guest_init(&a, &kvm_like) == 0 && guest_init(&b, &kvm_like) == 0);
	na = virtio_net_create_backend(a.pci, &a.mem, mac_a, &ba, NULL);
	nb = virtio_net_create_backend(b.pci, &b.mem, mac_b, &bb, NULL);
	KASSERT(na && nb);
	KASSERT(vd_probe(&d, &a, VIRTIO_ID_NET, 0) == 0);
	/* GUEST_CSUM (1) and GUEST_TSO4 (7). */
	KASSERT(vd_negotiate(&d, STD_FEATURES | FEAT(1) | FEAT(7)) == 0);
	vd_setup_msix(&d, 2);
	KASSERT(vd_setup_queue(&d, 0, 16) == 0 && vd_setup_queue(&d, 1, 16) == 0);
	vd_driver_ok(&d);
	KCHECK(fa.offloads != 0);
	KASSERT(save_paused(virtio_net_dev(na), &w, &s) == 0);
	/* A frame arrives while paused: nobody takes it yet. */
	rx = h_alloc(&a, 2048, 16);
	vd_add(&d, 0, &(struct vd_buf){ rx, 2048, true }, 1);
	vd_kick(&d, 0);
	copy_ram(&b, &a);
	KCHECK_EQ(virtio_dev_load(virtio_net_dev(nb), &s, err, sizeof(err)), 0);
	d.h = &b;
	/* The guest's MAC stays; the new backend gets nothing until the VM starts. */
	for (unsigned i = 0; i < 6; i++)
		KCHECK_EQ(vd_config_read(&d, i, 1), mac_a[i]);
	KCHECK_EQ(fb.offload_calls, 0);
	fb.frames = 1;
	KASSERT(write(fb.fd, &(uint64_t){ 1 }, 8) == 8);
	usleep(50 * 1000);
	KCHECK_EQ(fb.frames, 1);
	virtio_dev_resume(virtio_net_dev(nb));
	KCHECK(fb.offload_calls == 1 && fb.offloads == fa.offloads);
	/* The receive buffer posted before the move takes the new backend's frame. */
	KCHECK(vd_get_used(&d, 0, NULL, &len, 5000) == 1 && len == 72);
	KCHECK(*((uint8_t *)h_ptr(&b, rx) + 12) == 0x5a);
	state_writer_free(&w);
	virtio_dev_resume(virtio_net_dev(na));
	virtio_net_destroy(na);
	virtio_net_destroy(nb);
	close(fa.fd);
	close(fb.fd);
	guest_destroy(&a);
	guest_destroy(&b);
}

/* --- hostile state ---------------------------------------------------------------- */

/* Offsets in an rng section (virtio_state.c's layout): 2 MSI-X vectors, no config, 1 queue. */
#define O_SLOT 0
#define O_DEVICE_ID 4
#define O_MSIX 258
#define O_MSIX_CTRL0 (O_MSIX + 6 + 12)
#define O_PBA (O_MSIX + 6 + 32)
#define O_DEVF (O_MSIX + 46)
#define O_DRVF (O_DEVF + 8)
#define O_STATUS (O_DEVF + 24)
#define O_ISR (O_STATUS + 2)
#define O_CFGVEC (O_STATUS + 3)
#define O_NQ (O_STATUS + 7)
#define O_Q0 (O_STATUS + 15)
#define O_Q0_VEC (O_Q0 + 3)
#define O_Q0_DESC (O_Q0 + 5)

struct mutation {
	const char *what;
	unsigned off, size;
	uint64_t value;
	const char *expect;
};

static const struct mutation mutations[] = {
	{ "another slot", O_SLOT, 1, 7, "slot" },
	{ "another device", O_DEVICE_ID, 2, 0x1041, "PCI function is 1af4:1041" },
	{ "MSI-X vector count", O_MSIX, 4, 3, "MSI-X with 3 vectors" },
	{ "vector control", O_MSIX_CTRL0, 4, 2, "control bits" },
	{ "pending bits", O_PBA, 8, 1ULL << 40, "pending bits beyond" },
	{ "device features", O_DEVF, 8, 1, "offered features" },
	{ "features without VERSION_1", O_DRVF + 4, 4, 0, "refuse" },
	{ "status", O_STATUS, 1, 0x2f, "device status" },
	{ "ISR", O_ISR, 1, 4, "ISR" },
	{ "config vector", O_CFGVEC, 2, 2, "config vector" },
	{ "queue count", O_NQ, 4, 2, "2 queues" },
	{ "queue vector", O_Q0_VEC, 2, 9, "vector 9" },
	{ "ring outside RAM", O_Q0_DESC, 8, 0x7f0000000ULL, "do not fit" },
	{ "misaligned ring", O_Q0_DESC, 8, 0x10008, "do not fit" },
};

KTEST(hostile_state_is_refused_and_changes_nothing)
{
	struct rng_pair p;
	struct vdriver d, db;
	struct state_writer w;
	struct state_section s;
	uint8_t *copy;
	char err[300];

	KASSERT(rng_pair_up(&p) == 0 && rng_driver(&d, &p.a, 16) == 0 && rng_request(&d, 16));
	KASSERT(save_paused(virtio_rng_dev(p.ra), &w, &s) == 0);
	KASSERT(s.len == O_Q0 + 37);
	copy = malloc(s.len + 1);
	KASSERT(copy);
	for (unsigned i = 0; i < ARRAY_SIZE(mutations); i++) {
		const struct mutation *mu = &mutations[i];
		struct state_section t = s;

		memcpy(copy, s.data, s.len);
		memcpy(copy + mu->off, &mu->value, mu->size);
		t.data = copy;
		err[0] = 0;
		KCHECK(virtio_dev_load(virtio_rng_dev(p.rb), &t, err, sizeof(err)) < 0);
		if (!strstr(err, mu->expect))
			printf("# %s: got '%s'\n", mu->what, err);
		KCHECK(strstr(err, mu->expect) != NULL);
		KCHECK(strncmp(err, "dev: ", 5) == 0);
	}
	/* Framing: short, long, a version from the future. */
	{
		struct state_section t = s;

		t.len--;
		KCHECK(virtio_dev_load(virtio_rng_dev(p.rb), &t, err, sizeof(err)) < 0);
		memcpy(copy, s.data, s.len);
		copy[s.len] = 0;
		t = s;
		t.data = copy;
		t.len++;
		KCHECK_EQ(virtio_dev_load(virtio_rng_dev(p.rb), &t, err, sizeof(err)), -EBADMSG);
		KCHECK(strstr(err, "wrong length") != NULL);
		t = s;
		t.version = VIRTIO_STATE_VERSION + 1;
		KCHECK_EQ(virtio_dev_load(virtio_rng_dev(p.rb), &t, err, sizeof(err)), -EINVAL);
		KCHECK(strstr(err, "state version") != NULL);
	}
	/* Nothing of it stuck: a fresh driver on the second guest works as on a new device. */
	KCHECK_EQ(h_cfg_read(&p.b, d.slot, PCI_COMMAND, 2) & PCI_COMMAND_MASTER, 0);
	KASSERT(rng_driver(&db, &p.b, 16) == 0);
	KCHECK(rng_request(&db, 16));
	KCHECK_EQ(used_idx(&db, 0), 1);
	free(copy);
	rng_pair_down(&p, &w);
}

KTEST(pci_host_refuses_other_slots_and_keeps_cf8)
{
	struct guest a, b, c;
	struct virtio_rng *ra, *rc;
	struct virtio_blk *bb;
	struct virtio_blk_opts o;
	struct state_writer w;
	struct state_section s;
	char *path = make_disk(DISK), spec[100], err[300];

	KASSERT(guest_init(&a, NULL) == 0 && guest_init(&b, NULL) == 0 && guest_init(&c, NULL) == 0);
	ra = virtio_rng_create(a.pci, &a.mem, &a.loop);
	rc = virtio_rng_create(c.pci, &c.mem, &c.loop);
	snprintf(spec, sizeof(spec), "path=%s", path);
	KASSERT(virtio_blk_parse(spec, &o, err, sizeof(err)) == 0);
	bb = virtio_blk_create(b.pci, &b.mem, &o, 1, 0, &b.loop, err, sizeof(err));
	KASSERT(ra && rc && bb);
	/* The guest's CONFIG_ADDRESS, left set as between an outl to 0xcf8 and the data access. */
	bus_write(&a.pio, 0xcf8, &(uint32_t){ 0x80000810u }, 4);
	state_writer_init(&w);
	KASSERT(pci_host_device_ops.save(a.pci, "pci-host", &w) == 0);
	KASSERT(state_reader_init(&reader, w.buf, w.len, err, sizeof(err)) == 0);
	KASSERT(state_find(&reader, "pci-host", &s) == 0);
	KCHECK_EQ(pci_host_device_ops.load(b.pci, &s, err, sizeof(err)), -EINVAL);
	KCHECK(strstr(err, "pci-host: PCI slot 1: the saved VM has virtio-rng (1af4:1044) there, "
			   "this VM has virtio-blk (1af4:1042)") != NULL);
	KASSERT(state_find(&reader, "pci-host", &s) == 0);
	KCHECK_EQ(pci_host_device_ops.load(c.pci, &s, err, sizeof(err)), 0);
	{
		uint32_t v = 0;

		bus_read(&c.pio, 0xcf8, &v, 4);
		KCHECK_EQ(v, 0x80000810u);
	}
	state_writer_free(&w);
	virtio_rng_destroy(ra);
	virtio_rng_destroy(rc);
	virtio_blk_destroy(bb);
	guest_destroy(&a);
	guest_destroy(&b);
	guest_destroy(&c);
	unlink(path);
	free(path);
}

int main(void)
{
	return ktest_run_all();
}
