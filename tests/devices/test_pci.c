// SPDX-License-Identifier: Apache-2.0
/* PCI host bridge, config space, BAR sizing and moves, MSI-X. */
#include <errno.h>
#include <string.h>

#include "guest.h"
#include "keel/compiler.h"
#include "ktest.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "pci/pci_acpi.h"
#include "hw/reset_ctl.h"

struct toy {
	struct pci_device *pci;
	struct msix msix;
	uint32_t reg;
	unsigned mapped_calls;
	uint64_t mapped_at;
};

static void toy_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct toy *t = opaque;

	if (off >= 0x1000 && off < 0x2000)
		msix_table_access(&t->msix, off - 0x1000, data, size, false);
	else if (off >= 0x2000 && off < 0x3000)
		msix_pba_read(&t->msix, off - 0x2000, data, size);
	else
		memcpy(data, &t->reg, MIN(size, 4u));
}

static void toy_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct toy *t = opaque;

	if (off >= 0x1000 && off < 0x2000)
		msix_table_access(&t->msix, off - 0x1000, (void *)data, size, true);
	else
		memcpy(&t->reg, data, MIN(size, 4u));
}

static const struct bus_ops toy_bar_ops = { .read = toy_read, .write = toy_write };

static void toy_cfg_written(struct pci_device *dev, unsigned off, unsigned size)
{
	struct toy *t = dev->opaque;

	msix_config_written(&t->msix, off, size);
}

static void toy_mapped(struct pci_device *dev, unsigned bar, uint64_t addr)
{
	struct toy *t = dev->opaque;

	t->mapped_calls++;
	t->mapped_at = addr;
}

static const struct pci_device_ops toy_ops = {
	.config_written = toy_cfg_written,
	.bar_mapped = toy_mapped,
};

static int toy_add(struct guest *h, struct toy *t, enum pci_bar_type type, bool msix)
{
	int r;

	memset(t, 0, sizeof(*t));
	r = pci_device_add(h->pci, &(struct pci_device_desc){
		.vendor_id = 0x1234, .device_id = 0x5678, .class_code = 0xff0000,
		.bars[0] = { .type = type, .size = 0x4000, .ops = &toy_bar_ops, .opaque = t },
		.ops = &toy_ops, .opaque = t, .name = "toy", .intx = true,
	}, &t->pci);
	if (!r && msix)
		r = msix_init(&t->msix, t->pci, 4, 0, 0x1000, 0x2000);
	return r;
}

KTEST(pci_host_bridge_and_conf1_match_ecam)
{
	struct guest h;
	struct toy t;
	uint32_t v, a;

	KASSERT(guest_init(&h, NULL) == 0);
	KASSERT(toy_add(&h, &t, PCI_BAR_MEM32, false) == 0);
	KCHECK_EQ(h_cfg_read(&h, 0, 0, 4), 0x00081b36);       /* the host bridge */
	KCHECK_EQ(h_cfg_read(&h, 0, 0x0a, 2), 0x0600);
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 4), 0x56781234);
	KCHECK_EQ(h_cfg_read(&h, 2, 0, 4), 0xffffffff);       /* empty slot */
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 4) , 0x56781234);
	/* Same register through 0xCF8/0xCFC, including a sub-dword read. */
	a = 0x80000000u | 1u << 11;
	bus_write(&h.pio, 0xcf8, &a, 4);
	v = 0;
	bus_read(&h.pio, 0xcfc, &v, 4);
	KCHECK_EQ(v, 0x56781234);
	v = 0;
	bus_read(&h.pio, 0xcfe, &v, 2);
	KCHECK_EQ(v, 0x5678);
	bus_read(&h.pio, 0xcf8, &v, 4);
	KCHECK_EQ(v, a);
	/* Linux's conf1 probe pokes a byte at 0xCFB: harmless. */
	v = 1;
	bus_write(&h.pio, 0xcfb, &v, 1);
	bus_read(&h.pio, 0xcf8, &v, 4);
	KCHECK_EQ(v, a);
	/* Enable bit clear: all ones. */
	a = 1u << 11;
	bus_write(&h.pio, 0xcf8, &a, 4);
	bus_read(&h.pio, 0xcfc, &v, 4);
	KCHECK_EQ(v, 0xffffffff);
	/* Misaligned and oversized config accesses are dropped, not crashes. */
	KCHECK_EQ(h_cfg_read(&h, 1, 1, 2), 0xffff);
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 8) & 0xffffffff, 0xffffffff);
	h_cfg_write(&h, 1, 3, 4, 0);
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 4), 0x56781234);
	/* Read-only identity. */
	h_cfg_write(&h, 1, 0, 4, 0);
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 4), 0x56781234);
	/* Other buses and functions do not exist. */
	KCHECK_EQ(h_read(&h, 0xe0000000ULL + (1 << 20), 4), 0xffffffff);
	KCHECK_EQ(h_read(&h, 0xe0000000ULL + (1 << 15) + (1 << 12), 4), 0xffffffff);
	pci_device_remove(t.pci);
	guest_destroy(&h);
}

static void cf9_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	*(uint8_t *)opaque = *(const uint8_t *)data;
}

static const struct bus_ops cf9_ops = { .write = cf9_write };

KTEST(pci_cf9_byte_is_forwarded)
{
	struct bus mmio, pio;
	uint8_t seen = 0, v = 6;
	struct pci_host *host;

	bus_init(&mmio, "mmio");
	bus_init(&pio, "pio");
	host = pci_host_create(&(struct pci_host_config){
		.mmio = &mmio, .pio = &pio, .ecam_base = 0xe0000000, .ecam_size = 1 << 28,
		.cf9_ops = &cf9_ops, .cf9_opaque = &seen,
	});
	KASSERT(host);
	bus_write(&pio, 0xcf9, &v, 1);
	KCHECK_EQ(seen, 6);
	pci_host_destroy(host);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

struct stop_log {
	struct vm_events ev;
	enum vm_stop_reason last;
};

static void record_stop(struct vm_events *ev, enum vm_stop_reason why)
{
	container_of(ev, struct stop_log, ev)->last = why;
}

/* The machine's real neighbour at 0xCF9: conf1 and the reset register coexist. */
KTEST(pci_conf1_around_reset_ctl)
{
	struct stop_log stops = { .ev.request_stop = record_stop };
	struct bus mmio, pio;
	struct reset_ctl *rc;
	struct pci_host *host;
	uint32_t a = 0x80000000u, v = 0;
	uint8_t b = 0x02;

	bus_init(&mmio, "mmio");
	bus_init(&pio, "pio");
	rc = reset_ctl_create(&pio, &stops.ev);
	KASSERT(rc);
	host = pci_host_create(&(struct pci_host_config){
		.mmio = &mmio, .pio = &pio, .ecam_base = 0xe0000000, .ecam_size = 1 << 28,
	});
	KASSERT(host);
	bus_write(&pio, 0xcf8, &a, 4);
	bus_read(&pio, 0xcfc, &v, 4);
	KCHECK_EQ(v, 0x00081b36);
	bus_write(&pio, 0xcf9, &b, 1);          /* SYS_RST alone: kept, no reset */
	KCHECK_EQ(stops.last, VM_STOP_NONE);
	v = 0;
	bus_read(&pio, 0xcf9, &v, 1);
	KCHECK_EQ(v, 0x02);
	b = 0x06;                               /* RST_CPU */
	bus_write(&pio, 0xcf9, &b, 1);
	KCHECK_EQ(stops.last, VM_STOP_RESET);
	pci_host_destroy(host);
	/* The reset register is back on the bus on its own. */
	stops.last = VM_STOP_NONE;
	bus_write(&pio, 0xcf9, &b, 1);
	KCHECK_EQ(stops.last, VM_STOP_RESET);
	reset_ctl_destroy(rc);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

KTEST(pci_bar_sizing_and_moves)
{
	struct guest h;
	struct toy t;
	uint64_t base;
	uint32_t lo, hi;

	KASSERT(guest_init(&h, NULL) == 0);
	KASSERT(toy_add(&h, &t, PCI_BAR_MEM64, false) == 0);
	lo = h_cfg_read(&h, 1, PCI_BAR0, 4);
	hi = h_cfg_read(&h, 1, PCI_BAR0 + 4, 4);
	base = (lo & ~0xfULL) | (uint64_t)hi << 32;
	KCHECK_EQ(lo & 0xf, 0x4);                 /* 64-bit memory */
	KCHECK(base >= 0x100000000ULL);           /* placed in the 64-bit window */
	KCHECK_EQ(base % 0x4000, 0);
	KCHECK_EQ(t.mapped_at, base);
	KCHECK_EQ(h_cfg_read(&h, 1, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
	h_write(&h, base, 4, 0xabcd);
	KCHECK_EQ(t.reg, 0xabcd);

	/* Sizing the way Linux does it: decode off, all ones, read, restore. */
	h_cfg_write(&h, 1, PCI_COMMAND, 2, 0);
	KCHECK_EQ(t.mapped_at, 0);
	KCHECK_EQ(h_read(&h, base, 4), 0xffffffff);  /* nothing decodes there now */
	h_cfg_write(&h, 1, PCI_BAR0, 4, 0xffffffff);
	h_cfg_write(&h, 1, PCI_BAR0 + 4, 4, 0xffffffff);
	KCHECK_EQ(h_cfg_read(&h, 1, PCI_BAR0, 4), 0xffffc004);
	KCHECK_EQ(h_cfg_read(&h, 1, PCI_BAR0 + 4, 4), 0xffffffff);

	/* Move it below 4 GiB and turn decode back on. */
	h_cfg_write(&h, 1, PCI_BAR0, 4, 0xc8000000);
	h_cfg_write(&h, 1, PCI_BAR0 + 4, 4, 0);
	h_cfg_write(&h, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	KCHECK_EQ(t.mapped_at, 0xc8000000);
	t.reg = 0;
	h_write(&h, 0xc8000000, 4, 0x77);
	KCHECK_EQ(t.reg, 0x77);
	KCHECK_EQ(h_read(&h, base, 4), 0xffffffff);

	/* A BAR placed over ECAM cannot decode; the VMM keeps going. */
	h_cfg_write(&h, 1, PCI_BAR0, 4, 0xe0000000);
	KCHECK_EQ(t.mapped_at, 0);
	KCHECK_EQ(h_cfg_read(&h, 1, 0, 4), 0x56781234);
	pci_device_remove(t.pci);
	guest_destroy(&h);
}

KTEST(pci_capability_list_and_acpi_info)
{
	struct guest h;
	struct toy t;
	struct acpi_pci_config info;
	unsigned c;

	KASSERT(guest_init(&h, NULL) == 0);
	KASSERT(toy_add(&h, &t, PCI_BAR_MEM32, true) == 0);
	KCHECK(h_cfg_read(&h, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	c = h_cfg_read(&h, 1, PCI_CAPABILITY_LIST, 1);
	KCHECK_EQ(h_cfg_read(&h, 1, c, 1), PCI_CAP_ID_MSIX);
	KCHECK_EQ(h_cfg_read(&h, 1, c + 2, 2) & 0x7ff, 3);     /* 4 vectors */
	KCHECK_EQ(h_cfg_read(&h, 1, c + 4, 4), 0x1000);        /* table in BAR0 at 4 KiB */
	KCHECK_EQ(h_cfg_read(&h, 1, c + 8, 4), 0x2000);
	KCHECK_EQ(h_cfg_read(&h, 1, PCI_INTERRUPT_PIN, 1), 1);
	KCHECK_EQ(h_cfg_read(&h, 1, PCI_INTERRUPT_LINE, 1), 16 + 1);
	pci_host_acpi_config(h.pci, &info);
	KCHECK_EQ(info.ecam_base, 0xe0000000ULL);
	KCHECK_EQ(info.bus_end, 255);
	KCHECK_EQ(info.mmio32.base, 0xc0000000ULL);
	KCHECK_EQ(info.io[0].size, 0xcf8);
	KCHECK_EQ(info.nr_prt, 32);
	KCHECK_EQ(info.prt[1].gsi, 17);
	msix_destroy(&t.msix);
	pci_device_remove(t.pci);
	guest_destroy(&h);
}

static void msix_program(struct guest *h, uint64_t bar, unsigned v, uint32_t data, bool masked)
{
	h_write(h, bar + 0x1000 + 16 * v, 4, 0xfee00000);
	h_write(h, bar + 0x1000 + 16 * v + 4, 4, 0);
	h_write(h, bar + 0x1000 + 16 * v + 8, 4, data);
	h_write(h, bar + 0x1000 + 16 * v + 12, 4, masked);
}

static void msix_masks_and_pending(bool irqfd)
{
	struct guest h;
	struct toy t;
	uint64_t bar;
	unsigned c;

	KASSERT(guest_init(&h, &(struct guest_opts){ .irqfd = irqfd }) == 0);
	KASSERT(toy_add(&h, &t, PCI_BAR_MEM32, true) == 0);
	KCHECK_EQ(h.chip.nr_irqfd, irqfd ? 4u : 0u);
	bar = h_cfg_read(&h, 1, PCI_BAR0, 4) & ~0xfu;
	c = h_cfg_read(&h, 1, PCI_CAPABILITY_LIST, 1);
	h_cfg_write(&h, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	msix_program(&h, bar, 0, 0x41, false);
	msix_program(&h, bar, 1, 0x42, true);

	/* Disabled: held pending. */
	KCHECK(!msix_notify(&t.msix, 0));
	KCHECK_EQ(h_read(&h, bar + 0x2000, 8), 1);
	h_cfg_write(&h, 1, c + 2, 2, 0x8000); /* enable: pending vector 0 goes out */
	KCHECK_EQ(h_msi_count(&h, 0x41), 1);
	KCHECK_EQ(h_read(&h, bar + 0x2000, 8), 0);

	/* Per-vector mask. */
	KCHECK(!msix_notify(&t.msix, 1));
	KCHECK_EQ(h_msi_count(&h, 0x42), 0);
	KCHECK_EQ(h_read(&h, bar + 0x2000, 4), 2);
	h_write(&h, bar + 0x1000 + 16 + 12, 4, 0);
	KCHECK_EQ(h_msi_count(&h, 0x42), 1);

	/* Function mask holds everything back. */
	h_cfg_write(&h, 1, c + 2, 2, 0xc000);
	KCHECK(!msix_notify(&t.msix, 0));
	KCHECK(!msix_notify(&t.msix, 1));
	KCHECK_EQ(h_msi_total(&h), 2);
	h_cfg_write(&h, 1, c + 2, 2, 0x8000);
	KCHECK_EQ(h_msi_total(&h), 4);

	/* Retargeting a vector reaches the irqfd route (or the next signal_msi). */
	h_write(&h, bar + 0x1000 + 8, 4, 0x51);
	if (irqfd) {
		bool found = false;

		for (unsigned i = 0; i < h.chip.nr_irqfd; i++)
			found |= h.chip.irqfd[i].data == 0x51 && !h.chip.irqfd[i].masked;
		KCHECK(found);
	}
	KCHECK(msix_notify(&t.msix, 0));
	KCHECK_EQ(h_msi_count(&h, 0x51), 1);

	/* Bus mastering off: no MSI leaves the function. */
	h_cfg_write(&h, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	KCHECK(!msix_notify(&t.msix, 0));
	KCHECK_EQ(h_msi_count(&h, 0x51), 1);

	/* Hostile accesses: wrong sizes, beyond the table, out-of-range vectors. */
	h_write(&h, bar + 0x1000 + 1, 1, 0xff);
	h_write(&h, bar + 0x1000 + 16 * 3 + 12, 8, 0);
	KCHECK_EQ(h_read(&h, bar + 0x1000 + 2, 2), 0xffff);
	KCHECK(!msix_notify(&t.msix, 4));
	KCHECK(!msix_notify(&t.msix, 0xffff));
	KCHECK_EQ(h_read(&h, bar + 0x1000 + 8, 4), 0x51);
	msix_destroy(&t.msix);
	KCHECK_EQ(h.chip.nr_irqfd, 0);
	pci_device_remove(t.pci);
	guest_destroy(&h);
}

KTEST(msix_masks_pending_signal_msi)
{
	msix_masks_and_pending(false);
}

KTEST(msix_masks_pending_irqfd)
{
	msix_masks_and_pending(true);
}

KTEST(pci_intx_follows_disable_bit)
{
	struct guest h;
	struct toy t;

	KASSERT(guest_init(&h, NULL) == 0);
	KASSERT(toy_add(&h, &t, PCI_BAR_MEM32, false) == 0);
	pci_set_intx(t.pci, true);
	KCHECK(h.chip.levels[17]);
	KCHECK(h_cfg_read(&h, 1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	h_cfg_write(&h, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	KCHECK(!h.chip.levels[17]);
	h_cfg_write(&h, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	KCHECK(h.chip.levels[17]);
	pci_set_intx(t.pci, false);
	KCHECK(!h.chip.levels[17]);
	pci_device_remove(t.pci);
	guest_destroy(&h);
}

int main(void)
{
	return ktest_run_all();
}
