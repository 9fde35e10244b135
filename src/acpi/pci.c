// SPDX-License-Identifier: Apache-2.0
/*
 * The PCI root bridge in ACPI: the MCFG table (PCI Firmware 3.2, 4.1.2)
 * pointing at ECAM, the PNP0A08 device with the windows it forwards (_CRS)
 * and its INTx routing (_PRT), and a PNP0C02 motherboard resource reserving
 * the ECAM range: Linux uses MMCONFIG only when that range is reserved in
 * E820 or in ACPI motherboard resources; otherwise it stays on conf1.
 */
#include <string.h>

#include "acpi/acpi_internal.h"
#include "acpi/aml.h"
#include "pci/pci_acpi.h"

#define MCFG_REVISION 1
#define MCFG_ENTRY_LEN 16

int acpi_build_mcfg(const struct acpi_pci_config *pci, struct acpi_buf *b, uint64_t *gpa)
{
	size_t len = ACPI_HEADER_LEN + 8 + MCFG_ENTRY_LEN;
	uint8_t *t, *e;
	int r = acpi_buf_take(b, len, 8, &t, gpa);

	if (r)
		return r;
	acpi_header(t, "MCFG", (uint32_t)len, MCFG_REVISION);
	e = t + ACPI_HEADER_LEN + 8; /* after 8 reserved bytes */
	acpi_put64(e, pci->ecam_base);
	acpi_put16(e + 8, pci->segment);
	e[10] = pci->bus_start;
	e[11] = pci->bus_end;
	acpi_checksum(t, len, 9);
	return 0;
}

static void crs(const struct acpi_pci_config *pci, struct aml *a)
{
	aml_name(a, "_CRS");
	aml_resource_template(a);
	aml_word_space(a, AML_SPACE_BUS, pci->bus_start, pci->bus_end);
	aml_io(a, pci->cfg_port, pci->cfg_port, 1, (uint8_t)pci->cfg_port_len);
	for (unsigned i = 0; i < 2; i++)
		if (pci->io[i].size)
			aml_word_space(a, AML_SPACE_IO, (uint16_t)pci->io[i].base,
				       (uint16_t)(pci->io[i].base + pci->io[i].size - 1));
	/* Non-cacheable: any BAR, prefetchable or not, may be placed there. */
	if (pci->mmio32.size)
		aml_dword_space(a, AML_SPACE_MEMORY, (uint32_t)pci->mmio32.base,
				(uint32_t)(pci->mmio32.base + pci->mmio32.size - 1), false);
	if (pci->mmio64.size)
		aml_qword_space(a, AML_SPACE_MEMORY, pci->mmio64.base,
				pci->mmio64.base + pci->mmio64.size - 1, false);
	aml_end(a);
}

/* _PRT entries: Package { slot << 16 | 0xFFFF, pin, source 0, GSI }. */
static void prt(const struct acpi_pci_config *pci, struct aml *a)
{
	aml_name(a, "_PRT");
	aml_package(a);
	for (unsigned i = 0; i < pci->nr_prt; i++) {
		aml_package(a);
		aml_int(a, (uint64_t)pci->prt[i].slot << 16 | 0xffff);
		aml_int(a, 0); /* INTA# */
		aml_int(a, 0); /* no link device: the last field is a GSI */
		aml_int(a, pci->prt[i].gsi);
		aml_end(a);
	}
	aml_end(a);
}

void acpi_dsdt_pci(const struct acpi_pci_config *pci, struct aml *a)
{
	aml_device(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A08");
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_SEG");
	aml_int(a, pci->segment);
	aml_name(a, "_BBN");
	aml_int(a, pci->bus_start);
	aml_name(a, "_UID");
	aml_int(a, 0);
	crs(pci, a);
	if (pci->nr_prt)
		prt(pci, a);
	aml_end(a);

	aml_device(a, "MRES");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0C02");
	aml_name(a, "_UID");
	aml_int(a, 1);
	aml_name(a, "_CRS");
	aml_resource_template(a);
	aml_memory32_fixed(a, (uint32_t)pci->ecam_base,
			   (uint32_t)(((uint64_t)pci->bus_end - pci->bus_start + 1) << 20), true);
	aml_end(a);
	aml_end(a);
}
