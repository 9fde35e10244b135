/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACPI tables a VM boots with, generated for its configuration:
 *
 *   RSDP (rev 2) -> XSDT -> FADT (rev 6.3) -> FACS, DSDT
 *                        -> MADT (APIC)
 *                        -> SRAT, SLIT (with guest NUMA nodes)
 *
 * The FADT describes the legacy fixed hardware of hw/acpi_pm.h (PM1a
 * event/control blocks, PM timer, reset register, SCI on IRQ 9), the
 * century byte of the CMOS RTC, an 8042 present and no VGA. The MADT lists
 * one local APIC per vCPU (an x2APIC entry when the APIC ID is above 254),
 * the I/O APIC, the ISA overrides (IRQ0 -> GSI2, SCI level/high) and the
 * LINT1 NMI. The DSDT has \_S5 and the ISA devices (COM1, RTC, keyboard
 * controller); the power button is the fixed-feature one in PM1.
 *
 * All tables go into one caller buffer that the guest will see at `gpa`
 * (the machine puts it in the BIOS area at 0xE0000, where a guest scanning
 * for "RSD PTR " also finds it, and passes the RSDP address in boot_params).
 */
#ifndef KEEL_ACPI_ACPI_H
#define KEEL_ACPI_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_LAPIC_ADDR 0xfee00000u
#define ACPI_IOAPIC_ADDR 0xfec00000u
#define ACPI_IOAPIC_ID 0 /* what KVM's in-kernel I/O APIC reports after reset */
/* The largest APIC ID an xAPIC (8-bit) MADT entry can carry; 0xff is broadcast. */
#define ACPI_XAPIC_MAX_ID 254

/* The PCI root bridge, as plain data: pci/pci_acpi.h (pci_host_acpi_config). */
struct acpi_pci_config;

#define ACPI_NUMA_MAX_NODES 64

/* A range of guest-physical memory and the NUMA node (proximity domain) it is in. */
struct acpi_numa_mem {
	uint64_t base, size;
	uint32_t node;
};

/*
 * Guest NUMA (SRAT: which node each vCPU and each memory range is in;
 * SLIT: the distances between nodes).
 */
struct acpi_numa_config {
	unsigned nr_nodes;
	const uint32_t *cpu_node;        /* acpi_config.nr_cpus entries, in vCPU order */
	unsigned nr_mem;
	const struct acpi_numa_mem *mem;
	const uint8_t *distance;         /* nr_nodes x nr_nodes, row-major; NULL: no SLIT */
};

struct acpi_config {
	unsigned nr_cpus;
	const uint32_t *apic_ids; /* nr_cpus entries, in vCPU order (ACPI UID = index) */

	/* Interrupt controllers. */
	uint32_t lapic_addr;
	uint32_t ioapic_addr;
	uint8_t ioapic_id;

	/* ACPI fixed hardware (hw/acpi_pm.h). */
	uint16_t pm1a_evt_port;
	uint16_t pm1a_cnt_port;
	uint16_t pm_tmr_port; /* 0: no PM timer */
	uint16_t reset_port;
	uint8_t reset_value;
	uint8_t sci_irq;
	uint8_t s5_slp_typ;

	/* ISA devices the DSDT describes (a port of 0 leaves the device out). */
	uint16_t com1_port;
	uint8_t com1_irq;
	uint16_t rtc_port;
	uint8_t rtc_irq;
	uint8_t rtc_century; /* CMOS index of the century byte, 0 for none */
	uint16_t kbd_data_port;
	uint16_t kbd_cmd_port;
	uint8_t kbd_irq;

	/* NULL: no PCI. Else MCFG, \_SB.PCI0 and the ECAM reservation. */
	const struct acpi_pci_config *pci;

	/* NULL: no NUMA tables. */
	const struct acpi_numa_config *numa;
};

/* Where the tables ended up. */
struct acpi_tables_info {
	uint64_t rsdp_gpa;
	size_t size; /* bytes of buf used, from its start */
};

/*
 * cfg filled with this machine's fixed layout (hw/ headers) and no CPUs;
 * the caller sets nr_cpus and apic_ids.
 */
void acpi_config_default(struct acpi_config *cfg);

/*
 * Writes all tables into buf, which the guest will see at gpa (16-byte
 * aligned, below 4 GiB: the FADT's 32-bit pointers must reach it).
 * 0, -EINVAL for a bad configuration or gpa, -ENOSPC when buf is too
 * small, -ENOMEM.
 */
int acpi_build_tables(const struct acpi_config *cfg, void *buf, size_t len, uint64_t gpa,
		      struct acpi_tables_info *info);

#endif
