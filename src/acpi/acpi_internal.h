/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the table builders of src/acpi (not for callers outside it). */
#ifndef KEEL_ACPI_INTERNAL_H
#define KEEL_ACPI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "acpi/acpi.h"

#define ACPI_HEADER_LEN 36
#define ACPI_OEM_ID "KEEL  "      /* 6 bytes */
#define ACPI_OEM_TABLE_ID "KEELVMM " /* 8 bytes */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "KEEL"
#define ACPI_CREATOR_REVISION 1

/* The caller's buffer, filled front to back; each piece knows its guest address. */
struct acpi_buf {
	uint8_t *base;
	size_t len, used;
	uint64_t gpa; /* of base */
};

/*
 * Takes `size` zeroed bytes at the next `align`ed guest address.
 * 0 or -ENOSPC.
 */
int acpi_buf_take(struct acpi_buf *b, size_t size, size_t align, uint8_t **p, uint64_t *gpa);

void acpi_put16(uint8_t *p, uint16_t v);
void acpi_put32(uint8_t *p, uint32_t v);
void acpi_put64(uint8_t *p, uint64_t v);

/* The standard header, with a zero checksum (acpi_checksum() sets it last). */
void acpi_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t revision);
/* Makes the bytes of t[0..len) sum to 0 by setting t[at]. */
void acpi_checksum(uint8_t *t, size_t len, size_t at);

int acpi_build_madt(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa);
int acpi_build_dsdt(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa);
/* srat.c: SRAT always, SLIT when distances are given (*slit 0 otherwise). */
int acpi_build_srat(const struct acpi_config *cfg, struct acpi_buf *b, uint64_t *gpa);
int acpi_build_slit(const struct acpi_numa_config *numa, struct acpi_buf *b, uint64_t *gpa);
int acpi_check_numa(const struct acpi_config *cfg);

/* pci.c: the root bridge, when acpi_config.pci is set. */
struct aml;
int acpi_build_mcfg(const struct acpi_pci_config *pci, struct acpi_buf *b, uint64_t *gpa);
/* PCI0 and the ECAM reservation, inside \_SB. */
void acpi_dsdt_pci(const struct acpi_pci_config *pci, struct aml *a);

#endif
