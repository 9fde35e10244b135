/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI state for snapshots and live migration (docs/snapshot.md).
 *
 * A function's config space travels inside its device's section (virtio
 * devices: virtio_state.c): the whole conventional 256 bytes, its slot and
 * the level of its INTx line. Loading checks that every byte the guest
 * cannot write is what this function has (so a snapshot of another device
 * is refused) before taking the writable ones, BAR addresses included.
 *
 * The host bridge has a section of its own ("pci-host"): CONFIG_ADDRESS
 * (a guest may be stopped between writing 0xCF8 and using 0xCFC), the
 * bridge's own config space, and which device sits in which slot, so a VM
 * created with other --disk/--net/--rng options is refused with a line
 * naming the slot, before any device's state is looked at.
 */
#ifndef KEEL_PCI_STATE_H
#define KEEL_PCI_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/device.h"
#include "pci/pci.h"

#define PCI_STATE_CFG_BYTES 256

struct pci_saved_function {
	uint8_t slot;
	bool intx_level;
	uint8_t cfg[PCI_STATE_CFG_BYTES];
};

void pci_function_save(const struct pci_device *dev, struct state_writer *w);
void pci_function_read(struct state_section *s, struct pci_saved_function *f);
/* 0, or -EINVAL with the first difference in err. */
int pci_function_check(const struct pci_device *dev, const struct pci_saved_function *f,
		       char *err, size_t errlen);
/* Takes the writable bytes and BARs, then drives INTx to the saved level. */
void pci_function_apply(struct pci_device *dev, const struct pci_saved_function *f);

/* The host bridge; its device-list entry must come before its devices'. */
extern const struct device_ops pci_host_device_ops;

#endif
