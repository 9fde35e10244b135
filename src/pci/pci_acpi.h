/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the ACPI table generator (src/acpi) needs to describe the PCI root
 * bridge, as plain data (acpi.h's `struct acpi_pci_config`): the MCFG entry (ECAM base, segment, bus range), the PNP0A08
 * device's _CRS (bus numbers, I/O ranges, the 32-bit and 64-bit MMIO
 * windows) and its _PRT (which GSI each slot's INTA# is wired to).
 */
#ifndef KEEL_PCI_ACPI_H
#define KEEL_PCI_ACPI_H

#include <stdint.h>

#include "pci/pci.h"

struct pci_acpi_range {
	uint64_t base;
	uint64_t size; /* 0: absent */
};

struct acpi_pci_config {
	/* MCFG */
	uint64_t ecam_base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	/* _CRS of the PNP0A08 device */
	struct pci_acpi_range io[2];  /* port ranges forwarded to PCI (0xCF8-0xCFF excluded) */
	struct pci_acpi_range mmio32; /* non-prefetchable, below 4 GiB */
	struct pci_acpi_range mmio64; /* above RAM, may be absent */
	/* The config ports the bridge itself consumes (an IO() in _CRS). */
	uint16_t cfg_port, cfg_port_len;
	/* _PRT: one entry per slot, INTA# only (pin 0). */
	unsigned nr_prt;
	struct {
		uint8_t slot;
		uint32_t gsi;
	} prt[PCI_MAX_SLOTS];
};

/* Fills cfg from the host bridge; acpi_config.pci then points at it. */
void pci_host_acpi_config(const struct pci_host *host, struct acpi_pci_config *out);

#endif
