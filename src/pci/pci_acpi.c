// SPDX-License-Identifier: Apache-2.0
/* The host bridge described for the ACPI tables (pci_acpi.h). */
#include <string.h>

#include "keel/compiler.h"
#include "pci/pci_acpi.h"

void pci_host_acpi_config(const struct pci_host *host, struct acpi_pci_config *out)
{
	const struct pci_host_config *c = pci_host_config(host);

	memset(out, 0, sizeof(*out));
	out->ecam_base = c->ecam_base;
	out->segment = 0;
	out->bus_start = 0;
	out->bus_end = (uint8_t)MIN((c->ecam_size >> 20) - 1, 255u);
	/* Everything but the config ports is forwarded to PCI, as on a PC. */
	out->io[0] = (struct pci_acpi_range){ .base = 0, .size = PCI_CF8_PORT };
	out->io[1] = (struct pci_acpi_range){ .base = 0xd00, .size = 0x10000 - 0xd00 };
	out->cfg_port = PCI_CF8_PORT;
	out->cfg_port_len = 8;
	out->mmio32 = (struct pci_acpi_range){ .base = c->mmio32_base, .size = c->mmio32_size };
	out->mmio64 = (struct pci_acpi_range){ .base = c->mmio64_base, .size = c->mmio64_size };
	if (c->chip && c->intx_gsi_count) {
		for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
			out->prt[out->nr_prt].slot = (uint8_t)s;
			out->prt[out->nr_prt].gsi = c->intx_gsi_base + s % c->intx_gsi_count;
			out->nr_prt++;
		}
	}
}
