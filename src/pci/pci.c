// SPDX-License-Identifier: Apache-2.0
/*
 * The PCI host bridge and type-0 config space. Register semantics follow
 * PCI Local Bus 3.0 chapter 6; ECAM layout follows PCIe 4.0 section 7.2.2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/compiler.h"
#include "keel/log.h"
#include "pci/pci.h"


/* The host bridge's own identity: the generic PCIe host bridge ID Linux knows. */
#define HOST_BRIDGE_VENDOR 0x1b36
#define HOST_BRIDGE_DEVICE 0x0008
#define PCI_CLASS_BRIDGE_HOST 0x060000

struct pci_host {
	struct pci_host_config cfg;
	struct bus_region cf9; /* the reset register we took over, if any */
	pthread_mutex_t lock;
	uint32_t cf8; /* CONFIG_ADDRESS */
	struct pci_device *slots[PCI_MAX_SLOTS];
	uint64_t mmio32_next, mmio64_next, io_next;
};

void pci_cfg_write16(struct pci_device *dev, unsigned off, uint16_t v)
{
	dev->cfg[off] = (uint8_t)v;
	dev->cfg[off + 1] = (uint8_t)(v >> 8);
}

void pci_cfg_write32(struct pci_device *dev, unsigned off, uint32_t v)
{
	pci_cfg_write16(dev, off, (uint16_t)v);
	pci_cfg_write16(dev, off + 2, (uint16_t)(v >> 16));
}

static void wmask_set(struct pci_device *dev, unsigned off, uint32_t mask, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		dev->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

static uint16_t command(const struct pci_device *dev)
{
	return (uint16_t)(__atomic_load_n(&dev->cfg[PCI_COMMAND], __ATOMIC_ACQUIRE) |
			  __atomic_load_n(&dev->cfg[PCI_COMMAND + 1], __ATOMIC_ACQUIRE) << 8);
}

bool pci_bus_master_enabled(const struct pci_device *dev)
{
	return command(dev) & PCI_COMMAND_MASTER;
}

struct irq_chip *pci_host_irq_chip(const struct pci_host *host)
{
	return host->cfg.chip;
}

struct ioeventfd_provider *pci_host_ioevents(const struct pci_host *host)
{
	return host->cfg.ioevents;
}

const struct pci_host_config *pci_host_config(const struct pci_host *host)
{
	return &host->cfg;
}

/* Called from device threads: touches only the status byte, atomically. */
void pci_set_intx(struct pci_device *dev, bool level)
{
	if (!dev->intx.chip)
		return;
	__atomic_store_n(&dev->intx_level, level, __ATOMIC_RELEASE);
	if (level)
		__atomic_fetch_or(&dev->cfg[PCI_STATUS], PCI_STATUS_INTERRUPT, __ATOMIC_ACQ_REL);
	else
		__atomic_fetch_and(&dev->cfg[PCI_STATUS], (uint8_t)~PCI_STATUS_INTERRUPT,
				   __ATOMIC_ACQ_REL);
	irq_line_set(&dev->intx, level && !(command(dev) & PCI_COMMAND_INTX_DISABLE));
}

static uint64_t bar_address(const struct pci_device *dev, unsigned i)
{
	uint32_t lo = pci_cfg_read32(dev, PCI_BAR0 + 4 * i);

	switch (dev->bars[i].type) {
	case PCI_BAR_IO:
		return lo & ~3u;
	case PCI_BAR_MEM64:
		return (lo & ~0xfULL) | (uint64_t)pci_cfg_read32(dev, PCI_BAR0 + 4 * (i + 1)) << 32;
	default:
		return lo & ~0xfu;
	}
}

/*
 * Puts each BAR on the bus where the guest programmed it, or takes it off
 * when decode is disabled. Runs under the host lock after writes to the
 * command register or a BAR; the bus allows (un)registering from inside a
 * bus handler, which is where we are.
 */
static void update_mappings(struct pci_device *dev)
{
	uint16_t cmd = command(dev);

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar_desc *b = &dev->bars[i];
		bool io = b->type == PCI_BAR_IO;
		struct bus *bus = io ? dev->host->cfg.pio : dev->host->cfg.mmio;
		uint64_t addr, want = 0;

		if (b->type == PCI_BAR_NONE)
			continue;
		addr = bar_address(dev, i);
		if ((cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) && addr &&
		    addr + b->size - 1 > addr && (!io || addr + b->size <= 0x10000))
			want = addr;
		if (want == dev->bar_mapped_at[i])
			continue;
		if (dev->bar_mapped_at[i]) {
			if (dev->ops && dev->ops->bar_mapped)
				dev->ops->bar_mapped(dev, i, 0);
			bus_unregister(bus, dev->bar_mapped_at[i]);
			dev->bar_mapped_at[i] = 0;
		}
		if (!want)
			continue;
		if (bus_register(bus, want, b->size, b->ops, b->opaque, dev->name) < 0) {
			log_guest("%s: BAR%u at 0x%llx overlaps another region; not decoded",
				  dev->name, i, (unsigned long long)want);
			continue;
		}
		dev->bar_mapped_at[i] = want;
		if (dev->ops && dev->ops->bar_mapped)
			dev->ops->bar_mapped(dev, i, want);
	}
}

static struct pci_device *lookup(struct pci_host *host, unsigned bdf)
{
	/* Only bus 0, function 0 of each slot exists. */
	if (bdf >> 8 || (bdf & 7))
		return NULL;
	return host->slots[(bdf >> 3) & 31];
}

static bool access_ok(unsigned off, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) && off < PCI_CFG_SIZE &&
	       IS_ALIGNED(off, size);
}

void pci_host_config_read(struct pci_host *host, unsigned bdf, unsigned off, void *data,
			  unsigned size)
{
	struct pci_device *dev;

	memset(data, 0xff, size <= 8 ? size : 8);
	if (!access_ok(off, size)) {
		log_guest("pci: config read of %u bytes at 0x%x not naturally aligned", size, off);
		return;
	}
	pthread_mutex_lock(&host->lock);
	dev = lookup(host, bdf);
	if (dev) {
		if (dev->ops && dev->ops->config_read)
			dev->ops->config_read(dev, off, size);
		for (unsigned i = 0; i < size; i++)
			((uint8_t *)data)[i] = __atomic_load_n(&dev->cfg[off + i], __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&host->lock);
}

void pci_host_config_write(struct pci_host *host, unsigned bdf, unsigned off, const void *data,
			   unsigned size)
{
	const uint8_t *v = data;
	struct pci_device *dev;
	uint16_t old_cmd;

	if (!access_ok(off, size)) {
		log_guest("pci: config write of %u bytes at 0x%x not naturally aligned", size, off);
		return;
	}
	pthread_mutex_lock(&host->lock);
	dev = lookup(host, bdf);
	if (!dev)
		goto out;
	old_cmd = command(dev);
	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t n;

		if (!dev->wmask[o] && !dev->w1cmask[o])
			continue;
		n = (uint8_t)((dev->cfg[o] & ~dev->wmask[o]) | (v[i] & dev->wmask[o]));
		n &= (uint8_t)~(v[i] & dev->w1cmask[o]);
		__atomic_store_n(&dev->cfg[o], n, __ATOMIC_RELEASE);
	}
	if (off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) {
		uint16_t cmd = command(dev);

		if ((cmd ^ old_cmd) & PCI_COMMAND_INTX_DISABLE)
			irq_line_set(&dev->intx, __atomic_load_n(&dev->intx_level, __ATOMIC_ACQUIRE) &&
							 !(cmd & PCI_COMMAND_INTX_DISABLE));
	}
	if ((off < PCI_COMMAND + 2 && off + size > PCI_COMMAND) ||
	    (off < PCI_BAR0 + 4 * PCI_NUM_BARS && off + size > PCI_BAR0))
		update_mappings(dev);
	if (dev->ops && dev->ops->config_written)
		dev->ops->config_written(dev, off, size);
out:
	pthread_mutex_unlock(&host->lock);
}

/* ECAM: bus[27:20] device[19:15] function[14:12] register[11:0]. */
static void ecam_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	pci_host_config_read(opaque, (unsigned)(offset >> 12), offset & 0xfff, data, size);
}

static void ecam_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	pci_host_config_write(opaque, (unsigned)(offset >> 12), offset & 0xfff, data, size);
}

static const struct bus_ops ecam_ops = { .read = ecam_read, .write = ecam_write };

/*
 * Configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 is only decoded for
 * 32-bit accesses; a byte at 0xCF9 is the reset control register, and
 * Linux's type-1 probe writes a byte to 0xCFB, which must do nothing.
 */
static void cf8_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct pci_host *host = opaque;

	if (offset == 0 && size == 4) {
		uint32_t v = __atomic_load_n(&host->cf8, __ATOMIC_RELAXED);
		memcpy(data, &v, 4);
	} else if (offset == 1 && size == 1 && host->cf9.ops && host->cf9.ops->read) {
		host->cf9.ops->read(host->cf9.opaque, 0, data, 1);
	} else {
		memset(data, 0xff, size);
	}
}

static void cf8_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	struct pci_host *host = opaque;

	if (offset == 0 && size == 4) {
		uint32_t v;

		memcpy(&v, data, 4);
		__atomic_store_n(&host->cf8, v & 0x80fffffcu, __ATOMIC_RELAXED);
	} else if (offset == 1 && size == 1 && host->cf9.ops && host->cf9.ops->write) {
		host->cf9.ops->write(host->cf9.opaque, 0, data, 1);
	}
}

static const struct bus_ops cf8_ops = { .read = cf8_read, .write = cf8_write };

/*
 * A dword access at 0xCF8 must find one bus region covering 0xCF8-0xCFB,
 * but the reset control register (hw/reset_ctl.c) owns the byte at 0xCF9.
 * So we take that one-byte region off the bus and forward byte accesses
 * at 0xCF9 to it; pci_host_destroy() puts it back. The config may instead
 * name the handler directly (cf9_ops), for machines without reset_ctl.
 */
static void adopt_cf9(struct pci_host *host, struct bus *pio)
{
	bool found = false;

	if (host->cfg.cf9_ops) {
		host->cf9 = (struct bus_region){ .base = 0xcf9, .len = 1, .ops = host->cfg.cf9_ops,
						 .opaque = host->cfg.cf9_opaque };
		return;
	}
	pthread_rwlock_rdlock(&pio->lock);
	for (unsigned i = 0; i < pio->nr; i++) {
		if (pio->regions[i].base == 0xcf9 && pio->regions[i].len == 1) {
			host->cf9 = pio->regions[i];
			found = true;
		}
	}
	pthread_rwlock_unlock(&pio->lock);
	if (found)
		bus_unregister(pio, 0xcf9);
}

static void restore_cf9(struct pci_host *host, struct bus *pio)
{
	if (host->cf9.ops && !host->cfg.cf9_ops)
		bus_register(pio, host->cf9.base, 1, host->cf9.ops, host->cf9.opaque, host->cf9.name);
	memset(&host->cf9, 0, sizeof(host->cf9));
}

static bool cfc_target(struct pci_host *host, uint64_t offset, unsigned *bdf, unsigned *reg)
{
	uint32_t a = __atomic_load_n(&host->cf8, __ATOMIC_RELAXED);

	if (!(a & 0x80000000u))
		return false;
	*bdf = (a >> 8) & 0xffff;
	*reg = (a & 0xfc) + (unsigned)offset;
	return true;
}

static void cfc_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	unsigned bdf, reg;

	if (!cfc_target(opaque, offset, &bdf, &reg)) {
		memset(data, 0xff, size);
		return;
	}
	pci_host_config_read(opaque, bdf, reg, data, size);
}

static void cfc_write(void *opaque, uint64_t offset, const void *data, unsigned size)
{
	unsigned bdf, reg;

	if (cfc_target(opaque, offset, &bdf, &reg))
		pci_host_config_write(opaque, bdf, reg, data, size);
}

static const struct bus_ops cfc_ops = { .read = cfc_read, .write = cfc_write };

static void init_header(struct pci_device *dev, const struct pci_device_desc *d)
{
	pci_cfg_write16(dev, PCI_VENDOR_ID, d->vendor_id);
	pci_cfg_write16(dev, PCI_DEVICE_ID, d->device_id);
	dev->cfg[PCI_REVISION_ID] = d->revision;
	dev->cfg[PCI_CLASS_PROG] = (uint8_t)d->class_code;
	dev->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(d->class_code >> 8);
	dev->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(d->class_code >> 16);
	pci_cfg_write16(dev, PCI_SUBSYSTEM_VENDOR_ID, d->subsystem_vendor_id);
	pci_cfg_write16(dev, PCI_SUBSYSTEM_ID, d->subsystem_id);
	/* I/O, memory, bus master, SERR, INTx disable. */
	wmask_set(dev, PCI_COMMAND, 0x0507, 2);
	/* Error bits of the status register are write-1-to-clear. */
	dev->w1cmask[PCI_STATUS + 1] = 0xf9;
	dev->wmask[0x0c] = 0xff; /* cache line size */
	dev->wmask[0x0d] = 0xff; /* latency timer */
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	dev->next_cap = 0x40;
}

/* Natural alignment from a bump pointer; 0 when the window is full. */
static uint64_t window_alloc(uint64_t *next, uint64_t base, uint64_t size, uint64_t len)
{
	uint64_t a = ALIGN_UP(*next, len);

	if (!size || a < *next || a + len < a || a + len > base + size)
		return 0;
	*next = a + len;
	return a;
}

static int assign_bars(struct pci_host *host, struct pci_device *dev)
{
	const struct pci_host_config *c = &host->cfg;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar_desc *b = &dev->bars[i];
		unsigned off = PCI_BAR0 + 4 * i;
		uint64_t addr = 0;
		uint32_t flags;

		if (b->type == PCI_BAR_NONE)
			continue;
		if (b->size & (b->size - 1) || b->size < (b->type == PCI_BAR_IO ? 4 : 4096) ||
		    !b->ops || (b->type == PCI_BAR_MEM64 && i == PCI_NUM_BARS - 1) ||
		    (b->type != PCI_BAR_MEM64 && b->size > 0x80000000ULL) ||
		    (b->type == PCI_BAR_IO && b->size > 256))
			return -EINVAL;
		if (b->type == PCI_BAR_MEM64)
			addr = window_alloc(&host->mmio64_next, c->mmio64_base, c->mmio64_size,
					    b->size);
		if (!addr && b->type != PCI_BAR_IO)
			addr = window_alloc(&host->mmio32_next, c->mmio32_base, c->mmio32_size,
					    b->size);
		if (b->type == PCI_BAR_IO)
			addr = window_alloc(&host->io_next, c->io_base, c->io_size, b->size);
		if (!addr)
			return -ENOSPC;
		flags = b->type == PCI_BAR_IO ? 1 : (b->type == PCI_BAR_MEM64 ? 4 : 0) |
							    (b->prefetchable ? 8 : 0);
		dev->bar_assigned[i] = addr;
		pci_cfg_write32(dev, off, (uint32_t)addr | flags);
		wmask_set(dev, off, (uint32_t)~(b->size - 1) & (b->type == PCI_BAR_IO ? ~3u : ~0xfu),
			  4);
		if (b->type == PCI_BAR_MEM64) {
			pci_cfg_write32(dev, off + 4, (uint32_t)(addr >> 32));
			wmask_set(dev, off + 4, (uint32_t)(~(b->size - 1) >> 32), 4);
			i++;
		}
	}
	return 0;
}

int pci_device_add(struct pci_host *host, const struct pci_device_desc *desc,
		   struct pci_device **out)
{
	struct pci_device *dev;
	unsigned slot;
	uint16_t cmd = 0;
	int r;

	pthread_mutex_lock(&host->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && host->slots[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS) {
		r = -ENOSPC;
		goto out;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		r = -ENOMEM;
		goto out;
	}
	dev->host = host;
	dev->slot = slot;
	dev->ops = desc->ops;
	dev->opaque = desc->opaque;
	snprintf(dev->name, sizeof(dev->name), "%s", desc->name ? desc->name : "pci");
	memcpy(dev->bars, desc->bars, sizeof(dev->bars));
	init_header(dev, desc);
	r = assign_bars(host, dev);
	if (r < 0) {
		free(dev);
		goto out;
	}
	if (desc->intx && host->cfg.chip && host->cfg.intx_gsi_count) {
		dev->intx.chip = host->cfg.chip;
		dev->intx.gsi = host->cfg.intx_gsi_base + slot % host->cfg.intx_gsi_count;
		dev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
		dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)dev->intx.gsi;
	}
	/* What firmware would leave behind: decode on for the BARs it placed. */
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (dev->bars[i].type == PCI_BAR_IO)
			cmd |= PCI_COMMAND_IO;
		else if (dev->bars[i].type != PCI_BAR_NONE)
			cmd |= PCI_COMMAND_MEMORY;
	}
	pci_cfg_write16(dev, PCI_COMMAND, cmd);
	dev->command_at_add = cmd;
	host->slots[slot] = dev;
	update_mappings(dev);
	*out = dev;
	r = 0;
out:
	pthread_mutex_unlock(&host->lock);
	return r;
}

static void reset_function(struct pci_device *dev)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		unsigned off = PCI_BAR0 + 4 * i;
		uint32_t flags = pci_cfg_read32(dev, off) & (dev->bars[i].type == PCI_BAR_IO ? 3 : 0xf);

		if (dev->bars[i].type == PCI_BAR_NONE)
			continue;
		pci_cfg_write32(dev, off, (uint32_t)dev->bar_assigned[i] | flags);
		if (dev->bars[i].type == PCI_BAR_MEM64)
			pci_cfg_write32(dev, off + 4, (uint32_t)(dev->bar_assigned[i] >> 32));
	}
	pci_cfg_write16(dev, PCI_COMMAND, dev->command_at_add);
	dev->cfg[PCI_STATUS + 1] = 0;
	dev->cfg[0x0c] = dev->cfg[0x0d] = 0;
	if (dev->intx.chip)
		dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)dev->intx.gsi;
	update_mappings(dev);
	if (dev->ops && dev->ops->reset)
		dev->ops->reset(dev);
	pci_set_intx(dev, false);
}

void pci_host_reset(struct pci_host *host)
{
	pthread_mutex_lock(&host->lock);
	host->cf8 = 0;
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++)
		if (host->slots[s])
			reset_function(host->slots[s]);
	pthread_mutex_unlock(&host->lock);
}

void pci_device_remove(struct pci_device *dev)
{
	struct pci_host *host;

	if (!dev)
		return;
	host = dev->host;
	pthread_mutex_lock(&host->lock);
	pci_cfg_write16(dev, PCI_COMMAND, 0);
	update_mappings(dev);
	host->slots[dev->slot] = NULL;
	pthread_mutex_unlock(&host->lock);
	free(dev);
}

unsigned pci_add_capability(struct pci_device *dev, uint8_t id, unsigned len)
{
	unsigned off = ALIGN_UP(dev->next_cap, 4u);

	if (len < 2 || off + len > 0x100)
		return 0;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0;
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->last_cap = (uint8_t)off;
	dev->next_cap = (uint8_t)MIN(off + len, 0xffu);
	return off;
}

struct pci_host *pci_host_create(const struct pci_host_config *cfg)
{
	struct pci_host *host = calloc(1, sizeof(*host));
	struct pci_device *bridge;
	int r;

	if (!host)
		return NULL;
	host->cfg = *cfg;
	host->mmio32_next = cfg->mmio32_base;
	host->mmio64_next = cfg->mmio64_base;
	host->io_next = cfg->io_base;
	pthread_mutex_init(&host->lock, NULL);
	bridge = calloc(1, sizeof(*bridge));
	if (!bridge) {
		r = -ENOMEM;
		goto fail;
	}
	bridge->host = host;
	snprintf(bridge->name, sizeof(bridge->name), "pci-host");
	init_header(bridge, &(struct pci_device_desc){
		.vendor_id = HOST_BRIDGE_VENDOR, .device_id = HOST_BRIDGE_DEVICE,
		.subsystem_vendor_id = HOST_BRIDGE_VENDOR, .subsystem_id = HOST_BRIDGE_DEVICE,
		.class_code = PCI_CLASS_BRIDGE_HOST,
	});
	host->slots[0] = bridge;
	r = bus_register(cfg->mmio, cfg->ecam_base, cfg->ecam_size, &ecam_ops, host, "pci-ecam");
	if (r < 0)
		goto fail;
	if (cfg->pio) {
		adopt_cf9(host, cfg->pio);
		r = bus_register(cfg->pio, PCI_CF8_PORT, 4, &cf8_ops, host, "pci-cf8");
		if (!r)
			r = bus_register(cfg->pio, PCI_CFC_PORT, 4, &cfc_ops, host, "pci-cfc");
		if (r < 0) {
			bus_unregister(cfg->pio, PCI_CF8_PORT);
			restore_cf9(host, cfg->pio);
			bus_unregister(cfg->mmio, cfg->ecam_base);
			goto fail;
		}
	}
	return host;
fail:
	log_error("pci: cannot register the host bridge: %s", strerror(-r));
	free(bridge);
	pthread_mutex_destroy(&host->lock);
	free(host);
	errno = -r;
	return NULL;
}

void pci_host_destroy(struct pci_host *host)
{
	if (!host)
		return;
	bus_unregister(host->cfg.mmio, host->cfg.ecam_base);
	if (host->cfg.pio) {
		bus_unregister(host->cfg.pio, PCI_CF8_PORT);
		bus_unregister(host->cfg.pio, PCI_CFC_PORT);
		restore_cf9(host, host->cfg.pio);
	}
	free(host->slots[0]);
	pthread_mutex_destroy(&host->lock);
	free(host);
}

struct pci_device *pci_host_device(struct pci_host *host, unsigned slot)
{
	return slot < PCI_MAX_SLOTS ? host->slots[slot] : NULL;
}

uint32_t pci_host_get_cf8(struct pci_host *host)
{
	return __atomic_load_n(&host->cf8, __ATOMIC_RELAXED);
}

void pci_host_set_cf8(struct pci_host *host, uint32_t v)
{
	__atomic_store_n(&host->cf8, v & 0x80fffffcu, __ATOMIC_RELAXED);
}

void pci_device_load_config(struct pci_device *dev, const uint8_t *cfg, unsigned len)
{
	pthread_mutex_lock(&dev->host->lock);
	for (unsigned o = 0; o < len && o < PCI_CFG_SIZE; o++) {
		uint8_t m = dev->wmask[o] | dev->w1cmask[o];

		if (o == PCI_STATUS)
			m |= PCI_STATUS_INTERRUPT;
		__atomic_store_n(&dev->cfg[o], (uint8_t)((dev->cfg[o] & ~m) | (cfg[o] & m)),
				 __ATOMIC_RELEASE);
	}
	update_mappings(dev);
	pthread_mutex_unlock(&dev->host->lock);
}
