// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio transport and split virtqueues, driven end to end through
 * virtio-rng by the mini driver, and the hostile-guest cases of issue 3:
 * each must leave the device in DEVICE_NEEDS_RESET (with a config
 * interrupt), a fresh driver must work after reset, and a second device
 * must keep working throughout.
 */
#include <errno.h>
#include <string.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "vdriver.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define FEAT(b) (1ULL << (b))
#define STD_FEATURES (FEAT(VIRTIO_F_INDIRECT_DESC) | FEAT(VIRTIO_F_EVENT_IDX))

struct rig {
	struct guest h;
	struct virtio_rng *rng[2];
	struct vdriver d[2];
};

static int rig_up(struct rig *r, const struct guest_opts *o, bool threads)
{
	if (guest_init(&r->h, o) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		r->rng[i] = virtio_rng_create(r->h.pci, &r->h.mem, threads ? NULL : &r->h.loop);
		if (!r->rng[i] || vd_probe(&r->d[i], &r->h, VIRTIO_ID_RNG, (unsigned)i) < 0)
			return -1;
	}
	return 0;
}

static void rig_down(struct rig *r)
{
	virtio_rng_destroy(r->rng[0]);
	virtio_rng_destroy(r->rng[1]);
	guest_destroy(&r->h);
}

static int driver_start(struct vdriver *d, uint16_t qsize, uint64_t features)
{
	int r = vd_negotiate(d, features);

	if (r < 0)
		return r;
	vd_setup_msix(d, 1);
	r = vd_setup_queue(d, 0, qsize);
	if (r < 0)
		return r;
	vd_driver_ok(d);
	return 0;
}

static bool all_same(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i] != p[0])
			return false;
	return true;
}

/* One request of `len` bytes must come back filled with random bytes. */
static bool rng_works(struct vdriver *d, uint32_t len)
{
	uint64_t buf = h_alloc(d->h, len, 16);
	uint32_t id, got;
	uint16_t head = vd_add(d, 0, &(struct vd_buf){ buf, len, true }, 1);

	vd_kick(d, 0);
	if (vd_get_used(d, 0, &id, &got, 5000) != 1 || id != head || got != len)
		return false;
	return !all_same(h_ptr(d->h, buf), len);
}

KTEST(rng_end_to_end_direct_and_indirect)
{
	struct rig r;
	uint64_t a = 0, b = 0, c = 0;
	uint32_t id, len;
	uint16_t h1, h2;

	KASSERT(rig_up(&r, NULL, false) == 0);
	KASSERT(driver_start(&r.d[0], 0, STD_FEATURES) == 0);
	KCHECK_EQ(r.d[0].features, STD_FEATURES | FEAT(VIRTIO_F_VERSION_1));
	KCHECK_EQ(vd_status(&r.d[0]), 0xf);
	KCHECK(rng_works(&r.d[0], 64));
	KCHECK_EQ(h_msi_count(&r.h, VD_MSI_DATA(r.d[0].slot, 0)), 1);
	a = h_alloc(&r.h, 4096, 16);
	b = h_alloc(&r.h, 100, 16);
	c = h_alloc(&r.h, 28, 16);
	h1 = vd_add(&r.d[0], 0, (struct vd_buf[]){ { a, 4096, true } }, 1);
	h2 = vd_add_indirect(&r.d[0], 0, (struct vd_buf[]){ { b, 100, true }, { c, 28, true } }, 2);
	vd_kick(&r.d[0], 0);
	KCHECK(vd_get_used(&r.d[0], 0, &id, &len, 5000) == 1 && id == h1 && len == 4096);
	KCHECK(vd_get_used(&r.d[0], 0, &id, &len, 5000) == 1 && id == h2 && len == 128);
	KCHECK(!all_same(h_ptr(&r.h, a), 4096));
	KCHECK(!all_same(h_ptr(&r.h, c), 28));
	KCHECK(memcmp(h_ptr(&r.h, a), h_ptr(&r.h, b), 100) != 0);
	rig_down(&r);
}

/* The KVM-shaped paths: own I/O thread, doorbells through ioeventfd, MSIs through irqfd. */
KTEST(rng_threaded_with_ioeventfd_and_irqfd)
{
	struct rig r;

	KASSERT(rig_up(&r, &(struct guest_opts){ .irqfd = true, .ioevent = true, .kvm_mode = true },
		       true) == 0);
	KCHECK_EQ(r.h.ioev.nr, 2); /* one doorbell per device (one queue each) */
	KASSERT(driver_start(&r.d[0], 0, STD_FEATURES) == 0);
	KASSERT(driver_start(&r.d[1], 16, 0) == 0);
	for (int i = 0; i < 20; i++) {
		KCHECK(rng_works(&r.d[0], 512));
		KCHECK(rng_works(&r.d[1], 512));
	}
	KCHECK(r.h.ioev.hits >= 40);
	KCHECK(h_msi_count(&r.h, VD_MSI_DATA(r.d[1].slot, 0)) >= 1);
	/* Moving the BAR moves the doorbell registration with it. */
	h_cfg_write(&r.h, r.d[0].slot, PCI_COMMAND, 2, 0);
	KCHECK_EQ(r.h.ioev.nr, 1);
	h_cfg_write(&r.h, r.d[0].slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	KCHECK_EQ(r.h.ioev.nr, 2);
	KCHECK(rng_works(&r.d[0], 64));
	rig_down(&r);
	KCHECK_EQ(r.h.ioev.nr, 0);
}

KTEST(transport_feature_negotiation)
{
	struct rig r;
	struct vdriver *d;

	KASSERT(rig_up(&r, NULL, false) == 0);
	d = &r.d[0];
	/* Without VERSION_1 the device refuses FEATURES_OK (we are modern-only). */
	vd_reset(d);
	vd_common_write(d, 0x14, 1, 3);
	vd_common_write(d, 0x08, 4, 0);
	vd_common_write(d, 0x0c, 4, FEAT(VIRTIO_F_EVENT_IDX));
	vd_common_write(d, 0x14, 1, 0xb);
	KCHECK_EQ(vd_status(d) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* Features the device never offered are refused too. */
	vd_reset(d);
	vd_common_write(d, 0x14, 1, 3);
	vd_common_write(d, 0x08, 4, 1);
	vd_common_write(d, 0x0c, 4, 1 | 2);
	vd_common_write(d, 0x14, 1, 0xb);
	KCHECK_EQ(vd_status(d) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* A good negotiation; then the features are frozen. */
	KASSERT(vd_negotiate(d, 0) == 0);
	vd_common_write(d, 0x08, 4, 0);
	vd_common_write(d, 0x0c, 4, FEAT(VIRTIO_F_EVENT_IDX));
	KCHECK(vd_status(d) & VIRTIO_STATUS_NEEDS_RESET);
	/* Registers that describe what is missing. */
	vd_reset(d);
	KCHECK_EQ(vd_common_read(d, 0x12, 2), 1);           /* num_queues */
	vd_common_write(d, 0x16, 2, 7);
	KCHECK_EQ(vd_common_read(d, 0x18, 2), 0);           /* no queue 7 */
	vd_common_write(d, 0x16, 2, 0);
	KCHECK_EQ(vd_common_read(d, 0x18, 2), 256);
	vd_common_write(d, 0x1a, 2, 99);                    /* beyond the MSI-X table */
	KCHECK_EQ(vd_common_read(d, 0x1a, 2), VIRTIO_NO_VECTOR);
	vd_common_write(d, 0x10, 2, 1);
	KCHECK_EQ(vd_common_read(d, 0x10, 2), 1);
	/* 64-bit queue addresses in two halves, read back whole. */
	vd_common_write(d, 0x20, 4, 0x12345000);
	vd_common_write(d, 0x24, 4, 0x1);
	KCHECK_EQ(vd_common_read(d, 0x20, 8), 0x112345000ULL);
	KCHECK_EQ(r.d[0].device_len, 0);                     /* rng has no device config */
	KASSERT(driver_start(&r.d[1], 0, 0) == 0);
	KCHECK(rng_works(&r.d[1], 16));
	rig_down(&r);
}

KTEST(transport_reset_forgets_and_serves_again)
{
	struct rig r;
	struct vdriver *d;

	KASSERT(rig_up(&r, NULL, false) == 0);
	d = &r.d[0];
	KASSERT(driver_start(d, 0, STD_FEATURES) == 0);
	KCHECK(rng_works(d, 32));
	vd_reset(d);
	KCHECK_EQ(vd_status(d), 0);
	vd_common_write(d, 0x16, 2, 0);
	KCHECK_EQ(vd_common_read(d, 0x1c, 2), 0);
	KCHECK_EQ(vd_common_read(d, 0x1a, 2), VIRTIO_NO_VECTOR);
	KASSERT(driver_start(d, 8, 0) == 0);
	for (int i = 0; i < 20; i++) /* wraps the 8-entry ring a few times */
		KCHECK(rng_works(d, 8));
	rig_down(&r);
}

/* Guest reboot: PCI and the device back to power-on state, then a new boot's driver. */
KTEST(pci_host_reset_restores_power_on_state)
{
	struct rig r;
	struct vdriver *d;
	uint32_t bar_lo;
	unsigned c;

	KASSERT(rig_up(&r, NULL, false) == 0);
	d = &r.d[0];
	KASSERT(driver_start(d, 0, STD_FEATURES) == 0);
	KCHECK(rng_works(d, 32));
	bar_lo = h_cfg_read(&r.h, d->slot, PCI_BAR0, 4);
	/* The old guest moved the BAR below 4 GiB. */
	h_cfg_write(&r.h, d->slot, PCI_COMMAND, 2, 0);
	h_cfg_write(&r.h, d->slot, PCI_BAR0, 4, 0xd0000000);
	h_cfg_write(&r.h, d->slot, PCI_BAR0 + 4, 4, 0);
	h_cfg_write(&r.h, d->slot, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_host_reset(r.h.pci);
	KCHECK_EQ(h_cfg_read(&r.h, d->slot, PCI_BAR0, 4), bar_lo);
	KCHECK_EQ(h_cfg_read(&r.h, d->slot, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	c = h_cfg_read(&r.h, d->slot, PCI_CAPABILITY_LIST, 1);
	while (c && h_cfg_read(&r.h, d->slot, c, 1) != PCI_CAP_ID_MSIX)
		c = h_cfg_read(&r.h, d->slot, c + 1, 1);
	KCHECK_EQ(h_cfg_read(&r.h, d->slot, c + 2, 2) & 0xc000, 0);
	KCHECK_EQ(h_read(&r.h, d->bar + 0x4000 + 12, 4), 1); /* vector 0 masked again */
	KCHECK_EQ(h_read(&r.h, 0xd0000000 + 0x14, 1), 0xff);  /* nothing at the old place */
	KCHECK_EQ(vd_status(d), 0);
	/* The next boot probes from scratch. */
	KASSERT(vd_probe(d, &r.h, VIRTIO_ID_RNG, 0) == 0);
	KASSERT(driver_start(d, 0, STD_FEATURES) == 0);
	KCHECK(rng_works(d, 32));
	rig_down(&r);
}

/* INTx when the driver does not enable MSI-X; the ISR read acknowledges it. */
KTEST(transport_intx_and_isr)
{
	struct rig r;
	struct vdriver *d;
	unsigned gsi;

	KASSERT(rig_up(&r, NULL, false) == 0);
	d = &r.d[0];
	KASSERT(vd_negotiate(d, 0) == 0);
	KASSERT(vd_setup_queue(d, 0, 0) == 0);
	vd_driver_ok(d);
	gsi = h_cfg_read(&r.h, d->slot, PCI_INTERRUPT_LINE, 1);
	KCHECK(rng_works(d, 16));
	KCHECK(r.h.chip.levels[gsi]);
	KCHECK_EQ(h_read(&r.h, d->isr, 1), 1);
	KCHECK(!r.h.chip.levels[gsi]);
	KCHECK_EQ(h_read(&r.h, d->isr, 1), 0);
	KCHECK_EQ(h_msi_total(&r.h), 0);
	rig_down(&r);
}

/* ---- hostile guest ---- */

typedef void (*hostile_fn)(struct vdriver *d);

/*
 * Runs one hostile action on device 0 with device 1 active, then checks:
 * NEEDS_RESET set (and a config interrupt if DRIVER_OK was set), device 1
 * unaffected, and device 0 usable again by a fresh driver after reset.
 */
static void run_hostile(hostile_fn fn, bool start)
{
	struct rig r;
	struct vdriver *d;
	unsigned cfg_msi;

	KASSERT(rig_up(&r, NULL, false) == 0);
	d = &r.d[0];
	KASSERT(driver_start(&r.d[1], 0, STD_FEATURES) == 0);
	if (start)
		KASSERT(driver_start(d, 4, STD_FEATURES) == 0);
	cfg_msi = h_msi_count(&r.h, VD_MSI_DATA(d->slot, 1));
	fn(d);
	h_pump(&r.h, 0);
	KCHECK(vd_status(d) & VIRTIO_STATUS_NEEDS_RESET);
	if (start)
		KCHECK_EQ(h_msi_count(&r.h, VD_MSI_DATA(d->slot, 1)), cfg_msi + 1);
	KCHECK(rng_works(&r.d[1], 64));
	/* Nothing more is processed until the driver resets. */
	if (start) {
		uint64_t buf = h_alloc(&r.h, 16, 16);

		vd_add(d, 0, &(struct vd_buf){ buf, 16, true }, 1);
		vd_kick(d, 0);
		KCHECK(vd_get_used(d, 0, NULL, NULL, 20) == 0);
	}
	KASSERT(driver_start(d, 0, STD_FEATURES) == 0);
	KCHECK_EQ(vd_status(d), 0xf);
	KCHECK(rng_works(d, 64));
	KCHECK(rng_works(&r.d[1], 64));
	rig_down(&r);
}

#define HOSTILE(name, start)                                  \
	static void hostile_##name(struct vdriver *d);        \
	KTEST(hostile_##name)                                 \
	{                                                     \
		run_hostile(hostile_##name, start);           \
	}                                                     \
	static void hostile_##name(struct vdriver *d)

static void post_raw(struct vdriver *d, uint16_t head)
{
	vd_publish(d, 0, head);
	vd_kick(d, 0);
}

static uint64_t buf16(struct vdriver *d)
{
	return h_alloc(d->h, 16, 16);
}

HOSTILE(descriptor_loop, true)
{
	uint64_t b = buf16(d);

	vd_set_desc(d, 0, 0, b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vd_set_desc(d, 0, 1, b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	post_raw(d, 0);
}

HOSTILE(chain_longer_than_queue, true)
{
	/* Queue of 4: a chain visiting 5 entries must revisit one. */
	uint64_t b = buf16(d);

	for (uint16_t i = 0; i < 4; i++)
		vd_set_desc(d, 0, i, b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (i + 1) % 4);
	post_raw(d, 2);
}

HOSTILE(indirect_loop, true)
{
	uint64_t t = h_alloc(d->h, 32, 16), b = buf16(d);
	struct vring_desc desc[2] = {
		{ b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 },
		{ b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0 },
	};

	memcpy(h_ptr(d->h, t), desc, sizeof(desc));
	vd_set_desc(d, 0, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
	post_raw(d, 0);
}

HOSTILE(buffer_outside_ram, true)
{
	vd_set_desc(d, 0, 0, H_RAM_SIZE - 8, 16, VRING_DESC_F_WRITE, 0);
	post_raw(d, 0);
}

HOSTILE(buffer_address_overflows, true)
{
	vd_set_desc(d, 0, 0, UINT64_MAX - 7, 16, VRING_DESC_F_WRITE, 0);
	post_raw(d, 0);
}

HOSTILE(huge_length, true)
{
	vd_set_desc(d, 0, 0, 0x10000, 0xffffffff, VRING_DESC_F_WRITE, 0);
	post_raw(d, 0);
}

HOSTILE(zero_length, true)
{
	vd_set_desc(d, 0, 0, buf16(d), 0, VRING_DESC_F_WRITE, 0);
	post_raw(d, 0);
}

HOSTILE(wrong_direction_for_device, true)
{
	/* virtio-rng only writes: a device-readable buffer is a driver bug. */
	vd_set_desc(d, 0, 0, buf16(d), 16, 0, 0);
	post_raw(d, 0);
}

HOSTILE(readable_after_writable, true)
{
	uint64_t b = buf16(d);

	vd_set_desc(d, 0, 0, b, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vd_set_desc(d, 0, 1, b, 16, 0, 0);
	post_raw(d, 0);
}

HOSTILE(indirect_inside_indirect, true)
{
	uint64_t outer = h_alloc(d->h, 16, 16), inner = h_alloc(d->h, 16, 16);
	struct vring_desc in = { buf16(d), 16, VRING_DESC_F_WRITE, 0 };
	struct vring_desc out = { inner, 16, VRING_DESC_F_INDIRECT, 0 };

	memcpy(h_ptr(d->h, inner), &in, 16);
	memcpy(h_ptr(d->h, outer), &out, 16);
	vd_set_desc(d, 0, 0, outer, 16, VRING_DESC_F_INDIRECT, 0);
	post_raw(d, 0);
}

HOSTILE(indirect_with_next, true)
{
	uint64_t t = h_alloc(d->h, 16, 16);
	struct vring_desc in = { buf16(d), 16, VRING_DESC_F_WRITE, 0 };

	memcpy(h_ptr(d->h, t), &in, 16);
	vd_set_desc(d, 0, 0, t, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	post_raw(d, 0);
}

HOSTILE(indirect_table_bad_length, true)
{
	vd_set_desc(d, 0, 0, h_alloc(d->h, 32, 16), 24, VRING_DESC_F_INDIRECT, 0);
	post_raw(d, 0);
}

HOSTILE(indirect_table_outside_ram, true)
{
	vd_set_desc(d, 0, 0, H_RAM_SIZE - 16, 64, VRING_DESC_F_INDIRECT, 0);
	post_raw(d, 0);
}

HOSTILE(indirect_without_feature, false)
{
	uint64_t t = h_alloc(d->h, 16, 16);
	struct vring_desc in = { buf16(d), 16, VRING_DESC_F_WRITE, 0 };

	KASSERT(driver_start(d, 4, FEAT(VIRTIO_F_EVENT_IDX)) == 0);
	memcpy(h_ptr(d->h, t), &in, 16);
	vd_set_desc(d, 0, 0, t, 16, VRING_DESC_F_INDIRECT, 0);
	post_raw(d, 0);
}

HOSTILE(head_index_out_of_range, true)
{
	post_raw(d, 4);
}

HOSTILE(next_index_out_of_range, true)
{
	vd_set_desc(d, 0, 0, buf16(d), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 60000);
	post_raw(d, 0);
}

HOSTILE(avail_index_jumps, true)
{
	uint16_t *avail = h_ptr(d->h, d->q[0].avail);

	__atomic_store_n(&avail[1], 1000, __ATOMIC_RELEASE);
	vd_kick(d, 0);
}

HOSTILE(queue_size_not_power_of_two, false)
{
	KASSERT(vd_negotiate(d, STD_FEATURES) == 0);
	KCHECK(vd_setup_queue(d, 0, 3) == -EIO);
}

HOSTILE(queue_size_too_large, false)
{
	KASSERT(vd_negotiate(d, STD_FEATURES) == 0);
	KCHECK(vd_setup_queue(d, 0, 512) == -EIO);
}

HOSTILE(rings_outside_ram, false)
{
	KASSERT(vd_negotiate(d, STD_FEATURES) == 0);
	vd_common_write(d, 0x16, 2, 0);
	vd_common_write(d, 0x20, 8, H_RAM_SIZE - 64);
	vd_common_write(d, 0x28, 8, 0x20000);
	vd_common_write(d, 0x30, 8, 0x30000);
	vd_common_write(d, 0x1c, 2, 1);
	KCHECK_EQ(vd_common_read(d, 0x1c, 2), 0);
}

HOSTILE(misaligned_rings, false)
{
	KASSERT(vd_negotiate(d, STD_FEATURES) == 0);
	vd_common_write(d, 0x16, 2, 0);
	vd_common_write(d, 0x20, 8, 0x20008);
	vd_common_write(d, 0x28, 8, 0x21000);
	vd_common_write(d, 0x30, 8, 0x22000);
	vd_common_write(d, 0x1c, 2, 1);
}

HOSTILE(notify_queue_never_set_up, false)
{
	KASSERT(vd_negotiate(d, STD_FEATURES) == 0);
	h_write(d->h, d->notify, 2, 0);
}

HOSTILE(notify_beyond_last_queue, true)
{
	h_write(d->h, d->notify + 5 * d->notify_mult, 2, 5);
}

HOSTILE(device_config_out_of_range, true)
{
	/* virtio-rng has no device config at all. */
	h_read(d->h, d->bar + 0x2000, 4);
}

HOSTILE(common_config_wrong_width, true)
{
	vd_common_read(d, 0x14, 4); /* status is one byte */
}

HOSTILE(common_config_beyond_end, true)
{
	vd_common_write(d, 0x40, 4, 1);
}

HOSTILE(queue_reconfigured_while_enabled, true)
{
	vd_common_write(d, 0x16, 2, 0);
	vd_common_write(d, 0x20, 8, 0x40000);
}

HOSTILE(status_bits_cleared, true)
{
	vd_common_write(d, 0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE);
}

HOSTILE(driver_ok_without_features_ok, false)
{
	vd_reset(d);
	vd_common_write(d, 0x14, 1, 3);
	vd_common_write(d, 0x14, 1, 7);
}

int main(void)
{
	return ktest_run_all();
}
