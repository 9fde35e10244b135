// SPDX-License-Identifier: Apache-2.0
/*
 * MADT (ACPI 6.3, 5.2.12): the local APICs of the vCPUs, the I/O APIC, the
 * ISA interrupt overrides and the LINT1 NMI. The Debian cloud kernel has
 * no MP-table parser, so this table alone is how it finds its CPUs.
 */
#include <errno.h>
#include <stdbool.h>

#include "acpi/acpi_internal.h"

#define MADT_REVISION 5
#define MADT_PCAT_COMPAT 1 /* the in-kernel irqchip includes the two 8259s */

#define LAPIC_ENTRY_LEN 8
#define X2APIC_ENTRY_LEN 16
#define IOAPIC_ENTRY_LEN 12
#define ISO_ENTRY_LEN 10
#define LAPIC_NMI_LEN 6
#define X2APIC_NMI_LEN 12

enum {
	MADT_LAPIC = 0,
	MADT_IOAPIC = 1,
	MADT_ISO = 2,
	MADT_LAPIC_NMI = 4,
	MADT_X2APIC = 9,
	MADT_X2APIC_NMI = 10,
};

#define LAPIC_ENABLED 1
/* MPS INTI flags: polarity bits 1:0, trigger bits 3:2 (01 high/edge, 11 low/level). */
#define INTI_EDGE_HIGH 0x0005
#define INTI_LEVEL_HIGH 0x000d
#define INTI_CONFORMS 0x0000
#define ALL_PROCESSORS_UID8 0xff
#define ALL_PROCESSORS_UID32 0xffffffffu
#define NMI_LINT1 1
#define ISA_IRQ0 0
#define PIT_GSI 2 /* the 8254 is wired to I/O APIC pin 2 */

/*
 * An xAPIC entry carries an 8-bit APIC ID and an 8-bit processor UID; 0xff
 * is "all processors" in NMI entries, so both must stay below it.
 */
static bool needs_x2apic(uint32_t apic_id, unsigned uid)
{
	return apic_id > ACPI_XAPIC_MAX_ID || uid > ACPI_XAPIC_MAX_ID;
}

/* Interrupt Source Override for an ISA IRQ; returns the next entry. */
static uint8_t *put_iso(uint8_t *e, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	e[0] = MADT_ISO;
	e[1] = ISO_ENTRY_LEN;
	e[2] = 0; /* bus: ISA */
	e[3] = irq;
	acpi_put32(e + 4, gsi);
	acpi_put16(e + 8, flags);
	return e + ISO_ENTRY_LEN;
}

int acpi_build_madt(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa)
{
	uint32_t len = ACPI_HEADER_LEN + 8 + IOAPIC_ENTRY_LEN + 2 * ISO_ENTRY_LEN + LAPIC_NMI_LEN;
	unsigned x2apics = 0;
	uint8_t *t, *e;
	int r;

	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		bool x2 = needs_x2apic(cfg->apic_ids[i], i);

		x2apics += x2;
		len += x2 ? X2APIC_ENTRY_LEN : LAPIC_ENTRY_LEN;
	}
	if (x2apics)
		len += X2APIC_NMI_LEN;
	r = acpi_buf_take(b, len, 8, &t, gpa);
	if (r)
		return r;
	acpi_header(t, "APIC", len, MADT_REVISION);
	acpi_put32(t + 36, cfg->lapic_addr);
	acpi_put32(t + 40, MADT_PCAT_COMPAT);
	e = t + 44;
	/* vCPU order: the boot CPU (index 0) first, as OSes expect. */
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		if (needs_x2apic(cfg->apic_ids[i], i)) {
			e[0] = MADT_X2APIC;
			e[1] = X2APIC_ENTRY_LEN;
			acpi_put32(e + 4, cfg->apic_ids[i]);
			acpi_put32(e + 8, LAPIC_ENABLED);
			acpi_put32(e + 12, i);
			e += X2APIC_ENTRY_LEN;
		} else {
			e[0] = MADT_LAPIC;
			e[1] = LAPIC_ENTRY_LEN;
			e[2] = (uint8_t)i;
			e[3] = (uint8_t)cfg->apic_ids[i];
			acpi_put32(e + 4, LAPIC_ENABLED);
			e += LAPIC_ENTRY_LEN;
		}
	}
	e[0] = MADT_IOAPIC;
	e[1] = IOAPIC_ENTRY_LEN;
	e[2] = cfg->ioapic_id;
	acpi_put32(e + 4, cfg->ioapic_addr);
	acpi_put32(e + 8, 0); /* GSI base */
	e += IOAPIC_ENTRY_LEN;

	e = put_iso(e, ISA_IRQ0, PIT_GSI, INTI_EDGE_HIGH);
	/* The SCI is level-triggered; active high is how acpi_pm drives it. */
	e = put_iso(e, cfg->sci_irq, cfg->sci_irq, INTI_LEVEL_HIGH);

	e[0] = MADT_LAPIC_NMI;
	e[1] = LAPIC_NMI_LEN;
	e[2] = ALL_PROCESSORS_UID8;
	acpi_put16(e + 3, INTI_CONFORMS);
	e[5] = NMI_LINT1;
	e += LAPIC_NMI_LEN;
	if (x2apics) {
		e[0] = MADT_X2APIC_NMI;
		e[1] = X2APIC_NMI_LEN;
		acpi_put16(e + 2, INTI_CONFORMS);
		acpi_put32(e + 4, ALL_PROCESSORS_UID32);
		e[8] = NMI_LINT1;
		e += X2APIC_NMI_LEN;
	}
	acpi_checksum(t, len, 9);
	return (size_t)(e - t) == len ? 0 : -EINVAL;
}
