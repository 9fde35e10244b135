/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest-physical memory map and fixed addresses of the x86 machine
 * keel-vmm builds. Everything that must agree (e820, ACPI tables, device
 * placement, boot structures) takes its numbers from here.
 *
 *   0x0000_0000  RAM (low): real-mode IVT/BDA, our boot structures at 0x500-0x2ffff
 *   0x0009_fc00  EBDA (reserved)
 *   0x000a_0000  VGA hole / option ROM area (reserved)
 *   0x000e_0000  ACPI tables + RSDP (reserved as ACPI data in e820)
 *   0x0010_0000  RAM continues up to min(memory, 3 GiB)
 *   0xc000_0000  32-bit PCI MMIO window (512 MiB)
 *   0xe000_0000  PCI ECAM (MMCONFIG), 1 MiB = bus 0 only
 *   0xfec0_0000  IOAPIC
 *   0xfee0_0000  local APIC
 *   0x1_0000_0000  RAM above 4 GiB: the part of --memory that did not fit below
 *   after RAM, 1 GiB aligned: 64-bit PCI MMIO window
 */
#ifndef KEEL_VMM_LAYOUT_H
#define KEEL_VMM_LAYOUT_H

#include "keel/compiler.h"

#define LAYOUT_BOOT_GDT 0x500ULL
#define LAYOUT_BOOT_PARAMS 0x7000ULL /* the "zero page" */
#define LAYOUT_PML4 0x9000ULL        /* identity page tables: PML4, PDPT, 4 PDs */
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL          /* 4 pages: 0xb000-0xefff map 0-4 GiB */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL /* 64 KiB, far above what kernels accept */

#define LAYOUT_EBDA_START 0x9fc00ULL
#define LAYOUT_HIGH_MEMORY 0x100000ULL /* 1 MiB */
#define LAYOUT_ACPI_START 0xe0000ULL
#define LAYOUT_ACPI_SIZE 0x20000ULL /* up to 1 MiB */

#define LAYOUT_MMIO32_START 0xc0000000ULL
#define LAYOUT_MMIO32_SIZE 0x20000000ULL
#define LAYOUT_PCI_ECAM_START 0xe0000000ULL
/*
 * Bus 0 only. MCFG advertises the buses ECAM covers, and Linux probes every
 * one of them for peer bridges at boot (pcibios_fixup_peer_bridges: 32 config
 * reads per bus, each a VM exit): 255 empty buses cost 1.3 s in the lab.
 */
#define LAYOUT_PCI_ECAM_SIZE 0x100000ULL
#define LAYOUT_IOAPIC_START 0xfec00000ULL
#define LAYOUT_LAPIC_START 0xfee00000ULL
/* KVM on Intel needs three pages for its TSS and one for the identity map. */
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS 0xfeffd000ULL

#define LAYOUT_RAM_BELOW_4G_MAX LAYOUT_MMIO32_START /* 3 GiB */
#define LAYOUT_RAM_ABOVE_4G_START 0x100000000ULL
#define LAYOUT_MMIO64_ALIGN GiB
#define LAYOUT_MMIO64_SIZE (64 * GiB)

#endif
