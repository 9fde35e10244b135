/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conventional PCI as the guest sees it: one host bridge (bus 0, 32 slots,
 * function 0 of each), reached through ECAM on the MMIO bus and through the
 * legacy 0xCF8/0xCFC port pair. Each function has 4 KiB of config space
 * with a type-0 header, BARs, a capability list and the command register.
 *
 * No firmware runs, so the host bridge assigns BARs itself when a device is
 * added (from the 32-bit and 64-bit MMIO windows of src/vmm/layout.h) and
 * leaves memory decode on, as a BIOS would. When the guest rewrites a BAR or
 * the command register the BAR's bus region moves or goes away; devices are
 * told through `bar_mapped` so they can move their ioeventfds.
 *
 * Locking: one lock per host serializes config-space accesses (the CF8 index
 * is shared state). Lock order: pci host -> device (virtio) -> MSI-X. Device
 * code may read the command register at any time (pci_bus_master_enabled()).
 */
#ifndef KEEL_PCI_H
#define KEEL_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "keel/bus.h"
#include "keel/ioevent.h"
#include "keel/irq.h"

#define PCI_CFG_SIZE 4096
#define PCI_MAX_SLOTS 32
#define PCI_NUM_BARS 6
#define PCI_CF8_PORT 0xcf8 /* CONFIG_ADDRESS */
#define PCI_CFC_PORT 0xcfc /* CONFIG_DATA, 4 ports */

/* Header registers (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x8
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

enum pci_bar_type {
	PCI_BAR_NONE = 0,
	PCI_BAR_MEM32,
	PCI_BAR_MEM64, /* takes this BAR index and the next */
	PCI_BAR_IO,
};

struct pci_bar_desc {
	enum pci_bar_type type;
	bool prefetchable;
	uint64_t size; /* a power of two, >= 4 KiB for memory, >= 4 for I/O */
	const struct bus_ops *ops;
	void *opaque;
};

struct pci_device;

/* Optional device hooks; all run under the host's config lock. */
struct pci_device_ops {
	/*
	 * A config write landed in [off, off+size). Called after the generic
	 * code stored the writable bits, so the device reads cfg[] back.
	 */
	void (*config_written)(struct pci_device *dev, unsigned off, unsigned size);
	/* Before a config read, to refresh registers the device computes. */
	void (*config_read)(struct pci_device *dev, unsigned off, unsigned size);
	/* A BAR started (addr != 0) or stopped (addr == 0) decoding. */
	void (*bar_mapped)(struct pci_device *dev, unsigned bar, uint64_t addr);
	/* Machine reset: back to power-on state (capabilities, the device itself). */
	void (*reset)(struct pci_device *dev);
};

struct pci_device_desc {
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_id;
	uint8_t revision;
	uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
	bool intx;           /* uses INTA# (wired to a GSI by the host) */
	struct pci_bar_desc bars[PCI_NUM_BARS];
	const struct pci_device_ops *ops;
	void *opaque;
	const char *name;
};

struct pci_host;

struct pci_device {
	struct pci_host *host;
	unsigned slot;
	const struct pci_device_ops *ops;
	void *opaque;
	char name[32];
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];  /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* write-1-to-clear bits */
	struct pci_bar_desc bars[PCI_NUM_BARS];
	uint64_t bar_mapped_at[PCI_NUM_BARS]; /* 0: not on the bus */
	uint8_t next_cap;                     /* where the next capability goes */
	uint8_t last_cap;                     /* 0 until the first capability */
	struct irq_line intx;
	bool intx_level;
	uint64_t bar_assigned[PCI_NUM_BARS]; /* where pci_device_add() put them */
	uint16_t command_at_add;
};

/* What the VMM gives the host bridge (see src/vmm/layout.h). */
struct pci_host_config {
	struct bus *mmio;
	struct bus *pio;
	uint64_t ecam_base;     /* 256 MiB covers buses 0-255; only bus 0 has devices */
	uint64_t ecam_size;
	uint64_t mmio32_base, mmio32_size;
	uint64_t mmio64_base, mmio64_size;
	struct irq_chip *chip;  /* INTx lines and MSIs of every device */
	struct ioeventfd_provider *ioevents; /* optional doorbell fast path */
	uint64_t io_base, io_size; /* window for I/O BARs (0: none) */
	uint32_t intx_gsi_base; /* slot s uses GSI base + s % count (INTA# only) */
	uint32_t intx_gsi_count;
	/*
	 * The port region [0xCF8, 0xCFC) is ours because 32-bit accesses to
	 * 0xCF8 must find one bus region covering all four bytes. Byte
	 * accesses to 0xCF9 (the reset control register) go to whatever
	 * one-byte region was registered at 0xCF9 before pci_host_create()
	 * (hw/reset_ctl.c: create it first), which the host takes off the bus
	 * and gives back on destroy; or, if set, to these ops (offset 0).
	 */
	const struct bus_ops *cf9_ops;
	void *cf9_opaque;
};

/* Registers ECAM and 0xCF8/0xCFC-0xCFF; NULL with errno on failure. */
struct pci_host *pci_host_create(const struct pci_host_config *cfg);
/*
 * Machine reset (guest reboot): every function back to how pci_device_add()
 * left it (BARs at their assigned addresses, decode on, bus mastering and
 * INTx state off) and its `reset` hook called, which for virtio devices
 * resets the device and MSI-X. Not from a bus handler.
 */
void pci_host_reset(struct pci_host *host);
/* Unregisters and frees; remove devices first. NULL is fine. */
void pci_host_destroy(struct pci_host *host);
struct irq_chip *pci_host_irq_chip(const struct pci_host *host);
struct ioeventfd_provider *pci_host_ioevents(const struct pci_host *host);
/* What the host was created with. */
const struct pci_host_config *pci_host_config(const struct pci_host *host);

/*
 * Adds a function at the lowest free slot (>= 1; slot 0 is the bridge),
 * assigns and maps its BARs. 0 and *out, or -ENOSPC (slots or window full),
 * -EINVAL (bad BAR description).
 */
int pci_device_add(struct pci_host *host, const struct pci_device_desc *desc,
		   struct pci_device **out);
/* Unmaps its BARs and frees the slot. */
void pci_device_remove(struct pci_device *dev);

/*
 * Appends a capability of `len` bytes (header included) to the list and
 * returns its config offset, or 0 when config space is full. The caller
 * fills cfg[] after the 2-byte header and sets wmask for writable bits.
 */
unsigned pci_add_capability(struct pci_device *dev, uint8_t id, unsigned len);

static inline uint16_t pci_cfg_read16(const struct pci_device *dev, unsigned off)
{
	return (uint16_t)(dev->cfg[off] | dev->cfg[off + 1] << 8);
}
static inline uint32_t pci_cfg_read32(const struct pci_device *dev, unsigned off)
{
	return (uint32_t)dev->cfg[off] | (uint32_t)dev->cfg[off + 1] << 8 |
	       (uint32_t)dev->cfg[off + 2] << 16 | (uint32_t)dev->cfg[off + 3] << 24;
}
void pci_cfg_write16(struct pci_device *dev, unsigned off, uint16_t v);
void pci_cfg_write32(struct pci_device *dev, unsigned off, uint32_t v);

/* The device may issue DMA and MSIs (command.MASTER). Any thread. */
bool pci_bus_master_enabled(const struct pci_device *dev);
/* Drive INTA# (ignored when the device has none or INTx is disabled). */
void pci_set_intx(struct pci_device *dev, bool level);

/* For snapshots (pci_state.c): the function in a slot (NULL if none), CONFIG_ADDRESS. */
struct pci_device *pci_host_device(struct pci_host *host, unsigned slot);
uint32_t pci_host_get_cf8(struct pci_host *host);
void pci_host_set_cf8(struct pci_host *host, uint32_t v);
/*
 * Takes saved config space [0, len): the bytes the guest may write
 * (wmask, write-1-to-clear) and the interrupt status bit come from cfg,
 * the rest stays (the caller checked it is equal), and the BARs decode
 * where they now point (bar_mapped is called). Not from a bus handler.
 */
void pci_device_load_config(struct pci_device *dev, const uint8_t *cfg, unsigned len);

/*
 * Config access as the root complex sees it; used by the ECAM and CF8
 * handlers and by tests. bdf = bus << 8 | slot << 3 | fn.
 */
void pci_host_config_read(struct pci_host *host, unsigned bdf, unsigned off, void *data,
			  unsigned size);
void pci_host_config_write(struct pci_host *host, unsigned bdf, unsigned off, const void *data,
			   unsigned size);

#endif
