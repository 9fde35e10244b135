/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading back what acpi_build_tables() wrote, the way an OS does: from the
 * RSDP through the XSDT and the FADT's pointers, checking every checksum,
 * length and pointer on the way. Shared by the ACPI unit tests.
 */
#ifndef KEEL_TESTS_ACPI_READ_H
#define KEEL_TESTS_ACPI_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi/acpi.h"
#include "pci/pci_acpi.h"
#include "ktest.h"

#define TABLES_GPA 0xe0000ull
#define TABLES_BUF_LEN (128 * 1024) /* the legacy BIOS area the machine gives us */

/* KASSERT for helpers that return bool. */
#define REQUIRE(cond)                                          \
	do {                                                   \
		if (!(cond)) {                                 \
			KFAIL("required: %s", #cond);          \
			return false;                          \
		}                                              \
	} while (0)

struct tables {
	struct acpi_tables_info info;
	const uint8_t *rsdp, *xsdt, *fadt, *facs, *dsdt, *madt;
	const uint8_t *mcfg; /* only with tables_pci */
};

/* When set, tables_build() describes this PCI root bridge too. */
extern const struct acpi_pci_config *tables_pci;
/* When set, tables_build() adds the SRAT (and SLIT) of these NUMA nodes. */
extern const struct acpi_numa_config *tables_numa;
/* The table with this signature the XSDT points at, checksum checked; NULL if none. */
const uint8_t *tables_find(const struct tables *t, const char *sig);

extern uint8_t tables_buf[TABLES_BUF_LEN];
extern uint32_t tables_ids[300];

uint16_t le16(const uint8_t *p);
uint32_t le32(const uint8_t *p);
uint64_t le64(const uint8_t *p);
uint8_t byte_sum(const uint8_t *p, size_t n);

/* tables_ids[i] = i * stride for i < n. */
void tables_fill_ids(unsigned n, uint32_t stride);
/*
 * Builds the default configuration with n vCPUs (tables_ids) into
 * tables_buf at TABLES_GPA and walks it; false (with KFAILs) if anything
 * an OS checks is wrong.
 */
bool tables_build(unsigned n, struct tables *t);

#endif
